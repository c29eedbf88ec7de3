//! Many outputs, interpolated or landed on: 1001 output times on [0, 10], dopri5 at
//! rtol = atol = 1e-6, an MLP 2 → 64 → 64 → 2 (tanh) over a batch of 512, f64. Prints accepted
//! steps, forward and backward evaluations, peak memory (counting allocator) and times for the
//! default (outputs interpolated; also with the stage store, `CheckpointPolicy::AllStages`) and
//! for `land_on_outputs()`, with the symplectic adjoint.
//!
//! `cargo run --release --example interpolated_outputs`

use std::time::Instant;

use neural_ode::alloc::CountingAllocator;
use neural_ode::dfdx::nn::{builders, modules::Linear};
use neural_ode::dfdx::prelude::*;
use neural_ode::{neural_ode, solve, CheckpointPolicy, GradMethod, SolveOptions, VectorField};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

type State = (usize, Const<2>);

#[neural_ode(solver = "dopri5", grad = "symplectic")]
#[derive(Clone, Debug)]
struct Mlp {
    l1: Linear<2, 64, f64, Cpu>,
    l2: Linear<64, 64, f64, Cpu>,
    l3: Linear<64, 2, f64, Cpu>,
}

impl VectorField<State, f64, Cpu> for Mlp {
    fn eval<T: Tape<f64, Cpu>>(
        &self,
        _t: f64,
        x: Tensor<State, f64, Cpu, T>,
    ) -> Tensor<State, f64, Cpu, T> {
        // Scaled down so the flow stays tame over [0, 10].
        self.l3
            .forward(self.l2.forward(self.l1.forward(x).tanh()).tanh())
            * 0.2
    }
}

fn main() {
    let dev = Cpu::seed_from_u64(0);
    let model = Mlp {
        l1: dev.build_module::<builders::Linear<2, 64>, f64>(),
        l2: dev.build_module::<builders::Linear<64, 64>, f64>(),
        l3: dev.build_module::<builders::Linear<64, 2>, f64>(),
    };
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(512, Const));
    let times: Vec<f64> = (0..=1000).map(|i| i as f64 / 100.0).collect();
    let w: Tensor<(usize, usize, Const<2>), f64, Cpu> =
        dev.sample_normal_like(&(times.len(), 512, Const));
    println!("| outputs | steps | fwd evals | bwd products | bwd rebuild evals | solve peak | forward | gradient |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let base = SolveOptions::adaptive(1e-6, 1e-6).with_grad(GradMethod::Symplectic);
    let mut last = None;
    for (label, opts) in [
        ("interpolated (default)", base.clone()),
        (
            "interpolated, AllStages",
            base.clone().with_checkpoints(CheckpointPolicy::AllStages),
        ),
        ("land_on_outputs()", base.clone().land_on_outputs()),
    ] {
        for _ in 0..3 {
            let t0 = Instant::now();
            let sol = solve(&model, x0.leaky_trace(), &times, &opts).unwrap();
            let fwd = t0.elapsed();
            let t1 = Instant::now();
            let ys = sol.ys;
            let _g = (ys * w.clone()).sum::<Rank0, _>().backward();
            let bwd = t1.elapsed();
            let r = sol.report.stats().unwrap();
            last = Some(format!(
                "| {label} | {} | {} | {} | {} | {:.2} MB | {:.0} ms | {:.0} ms |",
                sol.stats.accepted,
                sol.stats.nfe,
                r.nfe_vjp,
                r.nfe_rebuild,
                r.solve_peak_bytes.unwrap_or(0) as f64 / 1e6,
                fwd.as_secs_f64() * 1e3,
                bwd.as_secs_f64() * 1e3
            ));
        }
        println!("{}", last.take().unwrap());
    }
}
