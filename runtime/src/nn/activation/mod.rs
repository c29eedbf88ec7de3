//! The activations: the marker types as dfdx modules, what a [`Dense`](super::Dense) layer does
//! with them ([`Activation`]), and the devices that run them on a tape ([`FastActivations`]).
//! Each activation is declared once, below, with all of its parts; the devices' tape operations
//! live in `cpu` and `cuda`.

use dfdx::nn::{Module, NonMutableModule, ZeroSizedModule};
use dfdx::prelude::*;

use super::apply::DenseFloat;
use super::matmul;

mod cpu;
#[cfg(feature = "cuda")]
mod cuda;
#[cfg(test)]
mod tests;

mod sealed {
    pub trait Sealed {}
}

/// Devices with the four activations on any tape. Implemented for `Cpu` (fast kernels) and, with
/// the `cuda` feature, `Cuda` (dfdx's kernels).
pub trait FastActivations<E: Dtype>: Device<E> {
    /// `tanh` on the tape.
    fn fast_tanh<S: Shape, T: Tape<E, Self>>(
        x: Tensor<S, E, Self, T>,
    ) -> Result<Tensor<S, E, Self, T>, Self::Err>;
    /// `sigmoid` on the tape.
    fn fast_sigmoid<S: Shape, T: Tape<E, Self>>(
        x: Tensor<S, E, Self, T>,
    ) -> Result<Tensor<S, E, Self, T>, Self::Err>;
    /// `softplus` on the tape.
    fn fast_softplus<S: Shape, T: Tape<E, Self>>(
        x: Tensor<S, E, Self, T>,
    ) -> Result<Tensor<S, E, Self, T>, Self::Err>;
    /// `silu` on the tape.
    fn fast_silu<S: Shape, T: Tape<E, Self>>(
        x: Tensor<S, E, Self, T>,
    ) -> Result<Tensor<S, E, Self, T>, Self::Err>;
}

/// What the backward pass of a [`Dense`](super::Dense) layer keeps of its forward pass.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kept {
    /// Nothing (the derivative is 1).
    Nothing,
    /// The output `act(z)`.
    Output,
    /// The pre-activation `z`.
    PreActivation,
}

impl Kept {
    /// Of the forward pass's output and pre-activation copy (each kept only if asked for), the
    /// one this activation's backward pass reads.
    pub(crate) fn pick<B>(self, output: Option<B>, pre_activation: Option<B>) -> Option<B> {
        match self {
            Kept::Nothing => None,
            Kept::Output => output,
            Kept::PreActivation => pre_activation,
        }
    }
}

/// `d = ȳ ⊙ act'(·)` from what the forward pass kept (`None`: the derivative is 1).
pub(crate) fn cotangent<A: Activation, E: DenseFloat>(kept: Option<&[E]>, g: &[E], d: &mut [E]) {
    match kept {
        Some(kept) => A::derivative(kept, g, d),
        None => d.copy_from_slice(g),
    }
}

/// An activation a [`Dense`](super::Dense) layer can apply in place: [`Tanh`], [`Sigmoid`], [`Softplus`],
/// [`Silu`] or [`Identity`]. Sealed; the methods are the layer's, not an interface to implement.
pub trait Activation: sealed::Sealed + Copy + Default + core::fmt::Debug + 'static {
    #[doc(hidden)]
    const KEPT: Kept;
    /// `xs[j] = act(xs[j])`.
    #[doc(hidden)]
    fn apply<E: DenseFloat>(xs: &mut [E]);
    /// `xs[r, j] = act(xs[r, j] + bias[j])` for each row of `bias.len()` elements, in one pass.
    #[doc(hidden)]
    fn apply_biased<E: DenseFloat>(xs: &mut [E], bias: &[E]);
    /// `d[j] = g[j] · act'(·)` from what [`Activation::KEPT`] says was kept.
    #[doc(hidden)]
    fn derivative<E: DenseFloat>(kept: &[E], g: &[E], d: &mut [E]);
    /// The activation with dfdx operations (the fallback for devices without fused kernels).
    #[doc(hidden)]
    fn on_tape<S: Shape, E: Dtype, D: FastActivations<E>, T: Tape<E, D>>(
        x: Tensor<S, E, D, T>,
    ) -> Result<Tensor<S, E, D, T>, D::Err>;
}

/// An activation: the marker type, its module (the device's `$fast` on the tape) and its
/// [`Activation`] methods (what it keeps for the backward pass and [`DenseFloat`]'s host passes).
macro_rules! activation {
    (
        $(#[$doc:meta])*
        $name:ident, $fast:ident, $kept:ident, $apply:ident, $biased:ident, $grad:ident
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name;

        impl ZeroSizedModule for $name {}
        impl NonMutableModule for $name {}

        impl<S: Shape, E: Dtype, D: FastActivations<E>, T: Tape<E, D>> Module<Tensor<S, E, D, T>> for $name {
            type Output = Tensor<S, E, D, T>;
            type Error = D::Err;

            fn try_forward(&self, x: Tensor<S, E, D, T>) -> Result<Self::Output, D::Err> {
                D::$fast(x)
            }
        }

        impl sealed::Sealed for $name {}
        impl Activation for $name {
            const KEPT: Kept = Kept::$kept;
            fn apply<E: DenseFloat>(xs: &mut [E]) {
                E::$apply(xs)
            }
            fn apply_biased<E: DenseFloat>(xs: &mut [E], bias: &[E]) {
                E::$biased(xs, bias)
            }
            fn derivative<E: DenseFloat>(kept: &[E], g: &[E], d: &mut [E]) {
                E::$grad(kept, g, d)
            }
            fn on_tape<S: Shape, E: Dtype, D: FastActivations<E>, T: Tape<E, D>>(
                x: Tensor<S, E, D, T>,
            ) -> Result<Tensor<S, E, D, T>, D::Err> {
                D::$fast(x)
            }
        }
    };
}

activation!(
    /// `tanh(x)`.
    Tanh, fast_tanh, Output, tanh, tanh_biased, tanh_grad
);
activation!(
    /// `1 / (1 + e^(−x))`.
    Sigmoid, fast_sigmoid, Output, sigmoid, sigmoid_biased, sigmoid_grad
);
activation!(
    /// `ln(1 + e^x)`.
    Softplus, fast_softplus, PreActivation, softplus, softplus_biased, softplus_grad
);
activation!(
    /// `x · sigmoid(x)` (also called swish).
    Silu, fast_silu, PreActivation, silu, silu_biased, silu_grad
);

/// `x`: no activation. As a [`Dense`](super::Dense) activation it makes the layer affine; as a
/// module it passes its input through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Identity;

impl ZeroSizedModule for Identity {}
impl NonMutableModule for Identity {}

impl<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>> Module<Tensor<S, E, D, T>> for Identity {
    type Output = Tensor<S, E, D, T>;
    type Error = D::Err;

    fn try_forward(&self, x: Tensor<S, E, D, T>) -> Result<Self::Output, D::Err> {
        Ok(x)
    }
}

impl sealed::Sealed for Identity {}
impl Activation for Identity {
    const KEPT: Kept = Kept::Nothing;
    fn apply<E: DenseFloat>(_: &mut [E]) {}
    fn apply_biased<E: DenseFloat>(xs: &mut [E], bias: &[E]) {
        matmul::add_bias(xs, bias)
    }
    fn derivative<E: DenseFloat>(_: &[E], g: &[E], d: &mut [E]) {
        d.copy_from_slice(g);
    }
    fn on_tape<S: Shape, E: Dtype, D: FastActivations<E>, T: Tape<E, D>>(
        x: Tensor<S, E, D, T>,
    ) -> Result<Tensor<S, E, D, T>, D::Err> {
        Ok(x)
    }
}
