//! A model generic over its dtype and device, as dfdx users write them: one struct, trained at
//! f32 and f64 through one generic function whose only device bound is `neural_ode::OdeDevice<E>`,
//! and converted between dtypes with `to_dtype`.
#![deny(warnings)]

use neural_ode::dfdx::optim::{Adam, AdamConfig, Optimizer};
use neural_ode::dfdx::prelude::*;
use neural_ode::nn::{builders, Dense, Identity, Tanh};
use neural_ode::{neural_ode, solve, Real, SolveOptions, VectorField};

type State = (usize, Const<2>);

/// dfdx's own bounds on the struct (so the generated `TensorCollection` can rebuild it at
/// another dtype or device); `neural_ode::OdeDevice<E>` on the code that runs it.
#[neural_ode(solver = "dopri5")]
#[derive(Clone, Debug)]
struct Field<E: Dtype, D: Storage<E>> {
    l1: Dense<2, 16, Tanh, E, D>,
    l2: Dense<16, 2, Identity, E, D>,
}

impl<E: Real, D: neural_ode::OdeDevice<E>> VectorField<State, E, D> for Field<E, D> {
    fn eval<T: Tape<E, D>>(&self, t: E, x: Tensor<State, E, D, T>) -> Tensor<State, E, D, T> {
        self.l2.forward(self.l1.forward(x)) * (E::one() + t)
    }
}

fn build<E: Real, D: neural_ode::OdeDevice<E>>(dev: &D) -> Field<E, D> {
    Field {
        l1: dev.build_module::<builders::Dense<2, 16, Tanh>, E>(),
        l2: dev.build_module::<builders::Dense<16, 2, Identity>, E>(),
    }
}

/// A few Adam steps on `Σ x(1)²`; returns the losses.
fn train<E: Real, D: neural_ode::OdeDevice<E>>(
    field: &mut Field<E, D>,
    x0: Tensor<State, E, D>,
) -> Vec<f64> {
    let mut opt = Adam::new(field, AdamConfig::default());
    let one = E::one();
    (0..5)
        .map(|_| {
            let grads = field.alloc_grads();
            let sol = solve(
                field,
                x0.trace(grads),
                &[E::zero(), one],
                &SolveOptions::fixed_steps(4),
            )
            .expect("solve");
            let loss = sol.ys.square().sum::<Rank0, _>();
            let value: f64 = loss.as_vec()[0].into();
            let grads = loss.backward();
            sol.report.stats().unwrap();
            opt.update(field, &grads).expect("update");
            value
        })
        .collect()
}

#[test]
fn one_generic_model_trains_in_f32_and_f64_and_converts() {
    let dev = Cpu::seed_from_u64(4);
    let mut m64: Field<f64, Cpu> = build(&dev);
    // `to_dtype` rebuilds the struct at f32 with the same (rounded) weights.
    let mut m32: Field<f32, Cpu> = m64.to_dtype::<f32>();
    assert_eq!(m32.l1.weight.as_vec()[3], m64.l1.weight.as_vec()[3] as f32);
    let m_copy: Field<f64, Cpu> = m64.to_device(&dev);
    assert_eq!(m_copy.l2.bias.as_vec(), m64.l2.bias.as_vec());

    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(6, Const));
    let l64 = train(&mut m64, x0.clone());
    let l32 = train(&mut m32, x0.to_dtype::<f32>());
    println!("losses f64 {l64:?}\nlosses f32 {l32:?}");
    assert!(
        l64.last() < l64.first(),
        "training reduces the loss: {l64:?}"
    );
    for (a, b) in l64.iter().zip(&l32) {
        assert!(
            (a - b).abs() <= 1e-4 * a.abs(),
            "f32 follows f64: {a} vs {b}"
        );
    }
}
