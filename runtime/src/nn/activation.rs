//! The activation modules and the device trait behind them.

use dfdx::nn::{Module, NonMutableModule, ZeroSizedModule};
use dfdx::prelude::*;

use super::apply::{self, Activation, DenseFloat, Kept};
use super::handoff;
use super::matmul;
use super::pool::Buf;

macro_rules! activation {
    ($(#[$doc:meta])* $name:ident, $method:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name;

        impl ZeroSizedModule for $name {}
        impl NonMutableModule for $name {}

        impl<S: Shape, E: Dtype, D: FastActivations<E>, T: Tape<E, D>> Module<Tensor<S, E, D, T>> for $name {
            type Output = Tensor<S, E, D, T>;
            type Error = D::Err;

            fn try_forward(&self, x: Tensor<S, E, D, T>) -> Result<Self::Output, D::Err> {
                D::$method(x)
            }
        }
    };
}

activation!(
    /// `tanh(x)`.
    Tanh,
    fast_tanh
);
activation!(
    /// `1 / (1 + e^(−x))`.
    Sigmoid,
    fast_sigmoid
);
activation!(
    /// `ln(1 + e^x)`.
    Softplus,
    fast_softplus
);
activation!(
    /// `x · sigmoid(x)` (also called swish).
    Silu,
    fast_silu
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

macro_rules! cpu_activations {
    ($($t:ty),*) => {$(
        impl FastActivations<$t> for Cpu {
            fn fast_tanh<S: Shape, T: Tape<$t, Self>>(
                x: Tensor<S, $t, Self, T>,
            ) -> Result<Tensor<S, $t, Self, T>, Self::Err> {
                cpu_activation::<Tanh, S, $t, T>(x)
            }
            fn fast_sigmoid<S: Shape, T: Tape<$t, Self>>(
                x: Tensor<S, $t, Self, T>,
            ) -> Result<Tensor<S, $t, Self, T>, Self::Err> {
                cpu_activation::<Sigmoid, S, $t, T>(x)
            }
            fn fast_softplus<S: Shape, T: Tape<$t, Self>>(
                x: Tensor<S, $t, Self, T>,
            ) -> Result<Tensor<S, $t, Self, T>, Self::Err> {
                cpu_activation::<Softplus, S, $t, T>(x)
            }
            fn fast_silu<S: Shape, T: Tape<$t, Self>>(
                x: Tensor<S, $t, Self, T>,
            ) -> Result<Tensor<S, $t, Self, T>, Self::Err> {
                cpu_activation::<Silu, S, $t, T>(x)
            }
        }
    )*};
}
cpu_activations!(f32, f64);

/// Forward through the activation's slice map; on a tape, a backward op that adds
/// `f'(·) ⊙ ȳ` into `x̄`, from the output (`tanh`, `sigmoid`) or the input (`softplus`, `silu`)
/// kept in a pooled buffer. The output is handed to dfdx as described in `handoff`: without a
/// copy, or copied into a dfdx allocation when dfdx's tensor cache is on, so that a buffer of
/// ours never enters the cache without one leaving it.
fn cpu_activation<A: Activation, S: Shape, E: DenseFloat, T: Tape<E, Cpu>>(
    x: Tensor<S, E, Cpu, T>,
) -> Result<Tensor<S, E, Cpu, T>, CpuError> {
    // `contiguous` is free for the usual (already contiguous) input and materialises views.
    let (x, mut tape) = x.try_contiguous()?.split_tape();
    let n = x.shape().num_elements();
    let mut values = Buf::<E>::take(n);
    x.copy_into(&mut values);
    let input = (T::OWNS_TAPE && A::KEPT == Kept::PreActivation).then(|| values.duplicate());
    A::apply(&mut values);
    let keep_output = T::OWNS_TAPE && A::KEPT == Kept::Output;
    let (y, output) = handoff::to_tensor(x.device(), *x.shape(), values, keep_output)?;
    if T::OWNS_TAPE {
        let kept = A::KEPT.pick(output, input);
        let (x_g, y_g) = (x.ghost(), y.ghost());
        tape.add_backward_op(move |grads| {
            let mut d = Buf::<E>::take(n);
            {
                let g = grads.get_or_alloc_mut(&y_g)?;
                apply::cotangent::<A, E>(kept.as_deref(), g, &mut d);
            }
            let gx = grads.get_or_alloc_mut(&x_g)?;
            matmul::add_into(gx, &d);
            Ok(())
        });
    }
    Ok(y.put_tape(tape))
}

#[cfg(feature = "cuda")]
macro_rules! cuda_activations {
    ($($t:ty),*) => {$(
        impl FastActivations<$t> for Cuda {
            fn fast_tanh<S: Shape, T: Tape<$t, Self>>(x: Tensor<S, $t, Self, T>) -> Result<Tensor<S, $t, Self, T>, Self::Err> {
                x.try_tanh()
            }
            fn fast_sigmoid<S: Shape, T: Tape<$t, Self>>(x: Tensor<S, $t, Self, T>) -> Result<Tensor<S, $t, Self, T>, Self::Err> {
                x.try_sigmoid()
            }
            fn fast_softplus<S: Shape, T: Tape<$t, Self>>(x: Tensor<S, $t, Self, T>) -> Result<Tensor<S, $t, Self, T>, Self::Err> {
                // max(x, 0) + ln(1 + e^(−|x|)), stable for large |x|.
                let tail = x.with_empty_tape().try_abs()?.try_negate()?.try_exp()?.try_add(1.0)?.try_ln()?;
                x.try_relu()?.try_add(tail)
            }
            fn fast_silu<S: Shape, T: Tape<$t, Self>>(x: Tensor<S, $t, Self, T>) -> Result<Tensor<S, $t, Self, T>, Self::Err> {
                let s = x.with_empty_tape().try_sigmoid()?;
                x.try_mul(s)
            }
        }
    )*};
}

#[cfg(feature = "cuda")]
cuda_activations!(f32, f64);

#[cfg(test)]
mod tests {
    use super::*;

    /// Forward values and the gradient of `Σ w ⊙ f(x)` against dfdx's own composition.
    fn check<M>(
        m: M,
        exact: fn(f64) -> f64,
        reference: impl Fn(
            Tensor<Rank1<9>, f64, Cpu, OwnedTape<f64, Cpu>>,
        ) -> Tensor<Rank1<9>, f64, Cpu, OwnedTape<f64, Cpu>>,
    ) where
        M: Module<
                Tensor<Rank1<9>, f64, Cpu, OwnedTape<f64, Cpu>>,
                Output = Tensor<Rank1<9>, f64, Cpu, OwnedTape<f64, Cpu>>,
            > + Module<Tensor<Rank1<9>, f64, Cpu>, Output = Tensor<Rank1<9>, f64, Cpu>>,
    {
        let dev = Cpu::default();
        let x: Tensor<Rank1<9>, f64, Cpu> =
            dev.tensor([-30.0, -5.0, -1.5, -0.3, -0.05, 0.2, 1.0, 4.0, 25.0]);
        let w: Tensor<Rank1<9>, f64, Cpu> =
            dev.tensor([0.5, -1.0, 2.0, 1.5, -0.7, 0.3, 1.1, -2.0, 0.9]);
        let fast = m.forward(x.clone()).as_vec();
        let slow: Vec<f64> = x.as_vec().into_iter().map(exact).collect();
        for (a, b) in fast.iter().zip(&slow) {
            assert!(
                (a - b).abs() <= 4.0 * f64::EPSILON * b.abs().max(1e-300),
                "{a} vs {b}"
            );
        }
        let g_fast = (m.forward(x.leaky_trace()) * w.clone())
            .sum::<Rank0, _>()
            .backward();
        let g_slow = (reference(x.leaky_trace()) * w.clone())
            .sum::<Rank0, _>()
            .backward();
        for (a, b) in g_fast.get(&x).as_vec().iter().zip(g_slow.get(&x).as_vec()) {
            assert!((a - b).abs() <= 1e-14 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }

    #[test]
    fn tanh_matches_dfdx() {
        check(Tanh, f64::tanh, |x| x.tanh());
    }

    #[test]
    fn sigmoid_matches_dfdx() {
        check(Sigmoid, |x| 1.0 / (1.0 + (-x).exp()), |x| x.sigmoid());
    }

    #[test]
    fn softplus_matches_a_stable_composition() {
        check(
            Softplus,
            |x| x.max(0.0) + (-x.abs()).exp().ln_1p(),
            |x| {
                let tail = (x.with_empty_tape().abs().negate().exp() + 1.0).ln();
                x.relu() + tail
            },
        );
    }

    #[test]
    fn silu_matches_dfdx() {
        check(
            Silu,
            |x| x / (1.0 + (-x).exp()),
            |x| {
                let s = x.with_empty_tape().sigmoid();
                x * s
            },
        );
    }

    #[test]
    fn works_in_a_model_tuple_and_in_f32() {
        let dev = Cpu::default();
        type Net = (
            dfdx::nn::builders::Linear<3, 4>,
            Tanh,
            dfdx::nn::builders::Linear<4, 2>,
            Silu,
        );
        let net = dev.build_module::<Net, f32>();
        let x: Tensor<(usize, Const<3>), f32, Cpu> = dev.sample_normal_like(&(5, Const));
        let g = net
            .forward(x.leaky_trace())
            .square()
            .sum::<Rank0, _>()
            .backward();
        assert!(g.get(&net.0.weight).as_vec().iter().any(|v| *v != 0.0));
        assert_eq!(net.num_trainable_params(), 3 * 4 + 4 + 4 * 2 + 2);
    }
}
