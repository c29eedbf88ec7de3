//! The activations on the CPU: the slice maps forward, the derivative passes backward.

use dfdx::prelude::*;

use super::{cotangent, Activation, FastActivations, Kept, Sigmoid, Silu, Softplus, Tanh};
use crate::nn::apply::DenseFloat;
use crate::nn::handoff;
use crate::nn::matmul;
use crate::nn::pool::Buf;

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
    let mut values = Buf::<E>::take_to_hand_over(n);
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
                cotangent::<A, E>(kept.as_deref(), g, &mut d);
            }
            let gx = grads.get_or_alloc_mut(&x_g)?;
            matmul::add_into(gx, &d);
            Ok(())
        });
    }
    Ok(y.put_tape(tape))
}
