//! Activations applied to host buffers, forward and derivative: what the CPU paths of the
//! activation modules and of [`Dense`](super::Dense) share. The kernels are the slice maps of
//! [`map`]; the derivative passes are vectorised loops compiled for every instruction set.

use dfdx::prelude::*;

use super::activation::{FastActivations, Identity, Sigmoid, Silu, Softplus, Tanh};
use super::map;
use super::isa::{isa_kernel, Float, Isa};
use super::matmul::{self, Kernels};
use super::pool::Pooled;

mod sealed {
    pub trait Sealed {}
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

macro_rules! activation {
    ($name:ident, $kept:ident, $map:ident, $biased:ident, $grad:ident, $fast:ident) => {
        impl sealed::Sealed for $name {}
        impl Activation for $name {
            const KEPT: Kept = Kept::$kept;
            fn apply<E: DenseFloat>(xs: &mut [E]) {
                E::$map(xs)
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
activation!(Tanh, Output, tanh, tanh_biased, tanh_grad, fast_tanh);
activation!(
    Sigmoid,
    Output,
    sigmoid,
    sigmoid_biased,
    sigmoid_grad,
    fast_sigmoid
);
activation!(
    Softplus,
    PreActivation,
    softplus,
    softplus_biased,
    softplus_grad,
    fast_softplus
);
activation!(Silu, PreActivation, silu, silu_biased, silu_grad, fast_silu);

isa_kernel!(
    /// `d = g (1 − y²)`.
    tanh_grad_kernel<E> => tanh_grad_body(y: &[E], g: &[E], d: &mut [E])
);
#[inline(always)]
fn tanh_grad_body<E: Float, const FMA: bool>(y: &[E], g: &[E], d: &mut [E]) {
    for ((d, y), g) in d.iter_mut().zip(y).zip(g) {
        *d = *g * (E::ONE - *y * *y);
    }
}

isa_kernel!(
    /// `d = g y (1 − y)`.
    sigmoid_grad_kernel<E> => sigmoid_grad_body(y: &[E], g: &[E], d: &mut [E])
);
#[inline(always)]
fn sigmoid_grad_body<E: Float, const FMA: bool>(y: &[E], g: &[E], d: &mut [E]) {
    for ((d, y), g) in d.iter_mut().zip(y).zip(g) {
        *d = *g * (*y * (E::ONE - *y));
    }
}

isa_kernel!(
    /// `d = g s` with `s = sigmoid(z)` already in `d`.
    softplus_grad_kernel<E> => softplus_grad_body(g: &[E], d: &mut [E])
);
#[inline(always)]
fn softplus_grad_body<E: Float, const FMA: bool>(g: &[E], d: &mut [E]) {
    for (d, g) in d.iter_mut().zip(g) {
        *d = *g * *d;
    }
}

isa_kernel!(
    /// `d = g (s + z s (1 − s))` with `s = sigmoid(z)` already in `d`.
    silu_grad_kernel<E> => silu_grad_body(z: &[E], g: &[E], d: &mut [E])
);
#[inline(always)]
fn silu_grad_body<E: Float, const FMA: bool>(z: &[E], g: &[E], d: &mut [E]) {
    for ((d, z), g) in d.iter_mut().zip(z).zip(g) {
        let s = *d;
        *d = *g * (s + *z * s * (E::ONE - s));
    }
}

// Called through `DenseFloat`'s non-generic methods, so they are compiled in this crate.
fn tanh_grad<E: DenseFloat>(y: &[E], g: &[E], d: &mut [E]) {
    tanh_grad_kernel(Isa::best(), y, g, d)
}
fn sigmoid_grad<E: DenseFloat>(y: &[E], g: &[E], d: &mut [E]) {
    sigmoid_grad_kernel(Isa::best(), y, g, d)
}
fn softplus_grad<E: DenseFloat>(z: &[E], g: &[E], d: &mut [E]) {
    d.copy_from_slice(z);
    E::sigmoid(d);
    softplus_grad_kernel(Isa::best(), g, d)
}
fn silu_grad<E: DenseFloat>(z: &[E], g: &[E], d: &mut [E]) {
    d.copy_from_slice(z);
    E::sigmoid(d);
    silu_grad_kernel(Isa::best(), z, g, d)
}

/// `f32` and `f64`: the element types of the CPU kernels.
#[doc(hidden)]
pub trait DenseFloat: Dtype + Kernels + Pooled + sealed::Sealed {
    fn tanh_grad(y: &[Self], g: &[Self], d: &mut [Self]);
    fn sigmoid_grad(y: &[Self], g: &[Self], d: &mut [Self]);
    fn softplus_grad(z: &[Self], g: &[Self], d: &mut [Self]);
    fn silu_grad(z: &[Self], g: &[Self], d: &mut [Self]);
    fn tanh(xs: &mut [Self]);
    fn sigmoid(xs: &mut [Self]);
    fn softplus(xs: &mut [Self]);
    fn silu(xs: &mut [Self]);
    fn tanh_biased(xs: &mut [Self], bias: &[Self]);
    fn sigmoid_biased(xs: &mut [Self], bias: &[Self]);
    fn softplus_biased(xs: &mut [Self], bias: &[Self]);
    fn silu_biased(xs: &mut [Self], bias: &[Self]);
}

macro_rules! dense_float {
    ($t:ty, $tanh:ident, $sigmoid:ident, $softplus:ident, $silu:ident) => {
        impl sealed::Sealed for $t {}
        impl DenseFloat for $t {
            fn tanh_grad(y: &[Self], g: &[Self], d: &mut [Self]) {
                tanh_grad(y, g, d)
            }
            fn sigmoid_grad(y: &[Self], g: &[Self], d: &mut [Self]) {
                sigmoid_grad(y, g, d)
            }
            fn softplus_grad(z: &[Self], g: &[Self], d: &mut [Self]) {
                softplus_grad(z, g, d)
            }
            fn silu_grad(z: &[Self], g: &[Self], d: &mut [Self]) {
                silu_grad(z, g, d)
            }
            fn tanh(xs: &mut [Self]) {
                map::$tanh(xs)
            }
            fn sigmoid(xs: &mut [Self]) {
                map::$sigmoid(xs)
            }
            fn softplus(xs: &mut [Self]) {
                map::$softplus(xs)
            }
            fn silu(xs: &mut [Self]) {
                map::$silu(xs)
            }
            fn tanh_biased(xs: &mut [Self], bias: &[Self]) {
                map::$tanh::biased(xs, bias)
            }
            fn sigmoid_biased(xs: &mut [Self], bias: &[Self]) {
                map::$sigmoid::biased(xs, bias)
            }
            fn softplus_biased(xs: &mut [Self], bias: &[Self]) {
                map::$softplus::biased(xs, bias)
            }
            fn silu_biased(xs: &mut [Self], bias: &[Self]) {
                map::$silu::biased(xs, bias)
            }
        }
    };
}
dense_float!(f64, tanh_f64, sigmoid_f64, softplus_f64, silu_f64);
dense_float!(f32, tanh_f32, sigmoid_f32, softplus_f32, silu_f32);

#[cfg(test)]
mod tests {
    use super::*;

    /// Each derivative pass on every instruction set this CPU has, bit for bit against the
    /// plain formula (the passes use no `mul_add`, so every path rounds alike).
    #[test]
    fn derivative_passes_on_every_instruction_set() {
        macro_rules! check {
            ($($t:ty),*) => {$(
                let n = 203;
                let y: Vec<$t> = (0..n).map(|i| (i as $t - 101.0) * 0.0097).collect();
                let g: Vec<$t> = (0..n).map(|i| (i as $t * 0.37).sin() * 2.0).collect();
                let s: Vec<$t> = y.iter().map(|v| 0.5 + 0.4 * v).collect();
                let one: $t = 1.0;
                for isa in Isa::available() {
                    let what = |f: &str| format!("{f} {} on {isa:?}", stringify!($t));
                    let bits = |v: &[$t]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    let mut d = vec![0.0; n];
                    tanh_grad_kernel(isa, &y, &g, &mut d);
                    let want: Vec<$t> = y.iter().zip(&g).map(|(y, g)| g * (one - y * y)).collect();
                    assert_eq!(bits(&d), bits(&want), "{}", what("tanh"));

                    sigmoid_grad_kernel(isa, &y, &g, &mut d);
                    let want: Vec<$t> = y.iter().zip(&g).map(|(y, g)| g * (y * (one - y))).collect();
                    assert_eq!(bits(&d), bits(&want), "{}", what("sigmoid"));

                    let mut d = s.clone();
                    softplus_grad_kernel(isa, &g, &mut d);
                    let want: Vec<$t> = s.iter().zip(&g).map(|(s, g)| g * s).collect();
                    assert_eq!(bits(&d), bits(&want), "{}", what("softplus"));

                    let mut d = s.clone();
                    silu_grad_kernel(isa, &y, &g, &mut d);
                    let want: Vec<$t> = s
                        .iter()
                        .zip(&y)
                        .zip(&g)
                        .map(|((s, z), g)| g * (s + z * s * (one - s)))
                        .collect();
                    assert_eq!(bits(&d), bits(&want), "{}", what("silu"));
                }
            )*};
        }
        check!(f64, f32);
    }
}
