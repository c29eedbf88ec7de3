//! Peak memory of a solve with many interpolated outputs, measured with the counting global
//! allocator (this file holds one test so that no other test allocates concurrently).
//!
//! The outputs are held once, in the stacked `ys`: going from 2 to 1001 output times adds, per
//! output, `ys` itself, the caller's loss graph (here `ys²`: its value and its gradient, and the
//! gradient of `ys`) and the backward pass's copy of the output cotangents, about 5 states.
//! Keeping the forward's per-output states next to `ys` would make it 6.

use neural_ode::alloc::{self, CountingAllocator};
use neural_ode::dfdx::nn::modules::Linear;
use neural_ode::dfdx::prelude::*;
use neural_ode::{neural_ode, solve, GradMethod, SolveOptions, VectorField};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

type State = (usize, Const<2>);
const BATCH: usize = 256;

#[neural_ode(solver = "dopri5")]
#[derive(Clone, Debug)]
struct Mlp {
    l1: Linear<2, 16, f64, Cpu>,
    l2: Linear<16, 2, f64, Cpu>,
}

impl VectorField<State, f64, Cpu> for Mlp {
    fn eval<T: Tape<f64, Cpu>>(
        &self,
        _t: f64,
        x: Tensor<State, f64, Cpu, T>,
    ) -> Tensor<State, f64, Cpu, T> {
        self.l2.forward(self.l1.forward(x).tanh())
    }
}

/// Peak bytes above the level before the solve, forward and gradient pass together.
fn peak(model: &Mlp, x0: &Tensor<State, f64, Cpu>, times: &[f64], method: GradMethod) -> usize {
    let opts = SolveOptions::adaptive(1e-6, 1e-8).with_grad(method);
    let grads = model.alloc_grads();
    let base = alloc::current();
    alloc::reset_peak();
    let sol = solve(model, x0.trace(grads), times, &opts).unwrap();
    let report = sol.report.clone();
    let g = sol.ys.square().sum::<Rank0, _>().backward();
    let total = alloc::peak() - base;
    drop(g);
    report.get().unwrap().unwrap();
    total
}

#[test]
fn many_interpolated_outputs_are_held_once() {
    let dev = Cpu::seed_from_u64(0);
    dev.disable_cache();
    let model = Mlp {
        l1: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<2, 16>, f64>(),
        l2: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<16, 2>, f64>(),
    };
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(BATCH, Const));
    let state = (BATCH * 2 * 8) as f64;
    let many: Vec<f64> = (0..=1000).map(|i| f64::from(i) / 100.0).collect();
    for method in [GradMethod::Symplectic, GradMethod::Aca, GradMethod::Adjoint] {
        peak(&model, &x0, &[0.0, 10.0], method); // warm up lazily allocated buffers
        let few = peak(&model, &x0, &[0.0, 10.0], method);
        let lots = peak(&model, &x0, &many, method);
        let per_output = (lots as f64 - few as f64) / (999.0 * state);
        println!("{method:>10}: peak {few} B with 2 outputs, {lots} B with 1001: {per_output:.2} states per output");
        assert!(
            per_output < 5.5,
            "{method}: {per_output:.2} states per output (the outputs are held twice?)"
        );
    }
}
