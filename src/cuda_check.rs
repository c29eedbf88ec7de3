//! Compiled only with the `cuda` feature (CI: `cargo check --features cuda,ci-check`): a
//! generic model of fused layers, built, solved and differentiated on `Cuda` at f32 and f64, so
//! that the generic bounds and the CUDA paths type-check without a GPU.
#![allow(dead_code)]

use crate::dfdx::prelude::*;
use crate::nn::{builders, Dense, Identity, Tanh};
use crate::{neural_ode, solve, Real, SolveOptions, VectorField};

type State = (usize, Const<2>);

#[neural_ode(solver = "dopri5")]
#[derive(Clone, Debug)]
struct Field<E: Dtype, D: Storage<E>> {
    l1: Dense<2, 8, Tanh, E, D>,
    l2: Dense<8, 2, Identity, E, D>,
}

impl<E: Real, D: crate::OdeDevice<E>> VectorField<State, E, D> for Field<E, D> {
    fn eval<T: Tape<E, D>>(&self, _t: E, x: Tensor<State, E, D, T>) -> Tensor<State, E, D, T> {
        self.l2.forward(self.l1.forward(x))
    }
}

fn gradient<E: Real, D: crate::OdeDevice<E>>(dev: &D) -> Option<Gradients<E, D>> {
    let field = Field {
        l1: dev.build_module::<builders::Dense<2, 8, Tanh>, E>(),
        l2: dev.build_module::<builders::Dense<8, 2, Identity>, E>(),
    };
    let x0: Tensor<State, E, D> = dev.zeros_like(&(4, Const));
    let sol = solve(
        &field,
        x0.trace(field.alloc_grads()),
        &[E::zero(), E::one()],
        &SolveOptions::fixed_steps(2),
    )
    .ok()?;
    Some(sol.ys.square().sum::<Rank0, _>().backward())
}

fn on_cuda(dev: &Cuda) {
    let _ = gradient::<f32, Cuda>(dev);
    let _ = gradient::<f64, Cuda>(dev);
}
