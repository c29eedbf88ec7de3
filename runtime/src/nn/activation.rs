//! The activation modules and the device trait behind them.

use dfdx::nn::{Module, NonMutableModule, ZeroSizedModule};
use dfdx::prelude::*;

use super::kernels;
use super::map;

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

/// How the backward pass gets `f'(x)` from what it kept.
#[derive(Clone, Copy)]
enum Derivative {
    /// `1 − y²` from the output.
    Tanh,
    /// `y (1 − y)` from the output.
    Sigmoid,
    /// `sigmoid(x)` from the input.
    Softplus,
    /// `s + x s (1 − s)`, `s = sigmoid(x)`, from the input.
    Silu,
}

macro_rules! cpu_activations {
    ($t:ty, $unary:ident, $tanh:path, $sigmoid:path, $softplus:path, $silu:path, $sig_kernel:path) => {
        impl FastActivations<$t> for Cpu {
            fn fast_tanh<S: Shape, T: Tape<$t, Self>>(
                x: Tensor<S, $t, Self, T>,
            ) -> Result<Tensor<S, $t, Self, T>, Self::Err> {
                $unary(x, $tanh, Derivative::Tanh, $sig_kernel)
            }
            fn fast_sigmoid<S: Shape, T: Tape<$t, Self>>(
                x: Tensor<S, $t, Self, T>,
            ) -> Result<Tensor<S, $t, Self, T>, Self::Err> {
                $unary(x, $sigmoid, Derivative::Sigmoid, $sig_kernel)
            }
            fn fast_softplus<S: Shape, T: Tape<$t, Self>>(
                x: Tensor<S, $t, Self, T>,
            ) -> Result<Tensor<S, $t, Self, T>, Self::Err> {
                $unary(x, $softplus, Derivative::Softplus, $sig_kernel)
            }
            fn fast_silu<S: Shape, T: Tape<$t, Self>>(
                x: Tensor<S, $t, Self, T>,
            ) -> Result<Tensor<S, $t, Self, T>, Self::Err> {
                $unary(x, $silu, Derivative::Silu, $sig_kernel)
            }
        }
    };
}

macro_rules! cpu_unary_impl {
    ($name:ident, $t:ty, $scratch:ident) => {
        thread_local! {
            /// One activation-sized buffer per thread, reused by every call (forward and
            /// backward), so the only allocation per call is the output tensor's.
            static $scratch: std::cell::RefCell<Vec<$t>> = const { std::cell::RefCell::new(Vec::new()) };
        }

        /// Forward through `map`; on a tape, a backward op that adds `f'(x) ⊙ ȳ` into `x̄`.
        ///
        /// The output is allocated by dfdx (`zeros_like`), not from a `Vec` of ours, so it takes
        /// part in dfdx's tensor cache: with `dev.enable_cache()` its buffer is reused instead
        /// of allocated, and a buffer of ours never enters the cache without one leaving it.
        fn $name<S: Shape, T: Tape<$t, Cpu>>(
            x: Tensor<S, $t, Cpu, T>,
            map: fn(&mut [$t]),
            derivative: Derivative,
            sigmoid: fn($t) -> $t,
        ) -> Result<Tensor<S, $t, Cpu, T>, CpuError> {
            // `contiguous` is free for the usual (already contiguous) input and materialises
            // views; `copy_into` / `copy_from` are memcpys, unlike dfdx's element-wise `as_vec`.
            let (x, mut tape) = x.try_contiguous()?.split_tape();
            let n = x.shape().num_elements();
            let mut y = x.device().try_zeros_like(x.shape())?;
            $scratch.with_borrow_mut(|values| {
                values.resize(n, 0.0);
                x.copy_into(values);
                map(values);
                y.copy_from(values);
            });
            if T::OWNS_TAPE {
                let y_kept = y.clone();
                let x_kept = match derivative {
                    Derivative::Tanh | Derivative::Sigmoid => None,
                    Derivative::Softplus | Derivative::Silu => Some(x.clone()),
                };
                let x_ghost = x.ghost();
                tape.add_backward_op(move |grads| {
                    $scratch.with_borrow_mut(|d| {
                        // d = f'(x) ⊙ ȳ, built in one buffer: first the kept values, then in place.
                        d.resize(n, 0.0);
                        match &x_kept {
                            Some(x) => x.copy_into(d),
                            None => y_kept.copy_into(d),
                        }
                        let gy = grads.get_or_alloc_mut(&y_kept)?;
                        let one: $t = 1.0;
                        match derivative {
                            Derivative::Tanh => {
                                for (v, g) in d.iter_mut().zip(gy.iter()) {
                                    *v = g * (one - *v * *v);
                                }
                            }
                            Derivative::Sigmoid => {
                                for (v, g) in d.iter_mut().zip(gy.iter()) {
                                    *v = g * (*v * (one - *v));
                                }
                            }
                            Derivative::Softplus => {
                                for (v, g) in d.iter_mut().zip(gy.iter()) {
                                    *v = g * sigmoid(*v);
                                }
                            }
                            Derivative::Silu => {
                                for (v, g) in d.iter_mut().zip(gy.iter()) {
                                    let s = sigmoid(*v);
                                    *v = g * (s + *v * s * (one - s));
                                }
                            }
                        }
                        let gx = grads.get_or_alloc_mut(&x_ghost)?;
                        for (g, v) in gx.iter_mut().zip(d.iter()) {
                            *g += v;
                        }
                        Ok(())
                    })
                });
            }
            Ok(y.put_tape(tape))
        }
    };
}

cpu_unary_impl!(cpu_unary_f64, f64, SCRATCH_F64);
cpu_unary_impl!(cpu_unary_f32, f32, SCRATCH_F32);

cpu_activations!(
    f64,
    cpu_unary_f64,
    map::tanh_f64,
    map::sigmoid_f64,
    map::softplus_f64,
    map::silu_f64,
    kernels::sigmoid_f64
);
cpu_activations!(
    f32,
    cpu_unary_f32,
    map::tanh_f32,
    map::sigmoid_f32,
    map::softplus_f32,
    map::silu_f32,
    kernels::sigmoid_f32
);

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

    #[test]
    fn every_compiled_path_gives_the_scalar_results() {
        let xs64: Vec<f64> = (0..1000)
            .map(|i| (i as f64 - 500.0) * 0.037)
            .chain([0.0, -0.0, f64::INFINITY, f64::NAN, 1e-310])
            .collect();
        let xs32: Vec<f32> = xs64.iter().map(|&x| x as f32).collect();
        // Each path must apply the scalar kernel meant for it, bit for bit: the plain kernel on
        // the baseline, the `mul_add` kernel (where a function has one) on the FMA paths.
        macro_rules! check {
            ($($map:ident, $kernel:path, $fma_kernel:path, $xs:expr;)*) => {$(
                let paths = map::$map::every_path(&$xs);
                assert!(!paths.is_empty());
                for (path, ys) in paths {
                    let expected: fn(_) -> _ = if path == "baseline" { $kernel } else { $fma_kernel };
                    for (x, y) in $xs.iter().zip(&ys) {
                        assert_eq!(y.to_bits(), expected(*x).to_bits(), "{} on the {path} path at {x}", stringify!($map));
                    }
                }
                // The biased maps: `kernel(x + b)` row by row, on every path.
                let bias: Vec<_> = $xs[..5].iter().map(|b| *b * 0.5).collect();
                let n = $xs.len() / 5 * 5;
                for (path, ys) in map::$map::every_path_biased(&$xs[..n], &bias) {
                    let expected: fn(_) -> _ = if path == "baseline" { $kernel } else { $fma_kernel };
                    for (idx, (x, y)) in $xs[..n].iter().zip(&ys).enumerate() {
                        let want = expected(*x + bias[idx % 5]);
                        assert!(y.to_bits() == want.to_bits() || (y.is_nan() && want.is_nan()), "{} biased on the {path} path at {x}", stringify!($map));
                    }
                }
            )*};
        }
        check! {
            tanh_f64, kernels::tanh_f64, kernels::tanh_f64_fma, xs64;
            sigmoid_f64, kernels::sigmoid_f64, kernels::sigmoid_f64, xs64;
            softplus_f64, kernels::softplus_f64, kernels::softplus_f64, xs64;
            silu_f64, kernels::silu_f64, kernels::silu_f64, xs64;
            tanh_f32, kernels::tanh_f32, kernels::tanh_f32, xs32;
            sigmoid_f32, kernels::sigmoid_f32, kernels::sigmoid_f32, xs32;
            softplus_f32, kernels::softplus_f32, kernels::softplus_f32, xs32;
            silu_f32, kernels::silu_f32, kernels::silu_f32, xs32;
        }
    }
}
