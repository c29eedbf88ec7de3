//! The activations on CUDA: dfdx's own operations.

use dfdx::prelude::*;

use super::FastActivations;

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

cuda_activations!(f32, f64);
