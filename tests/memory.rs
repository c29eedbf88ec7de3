//! Peak memory of a gradient pass, measured with the counting global allocator (this file holds
//! one test so that no other test allocates concurrently).
//!
//! For `symplectic`, going from N to 4N steps adds about 3N stored states and nothing that
//! scales with the network's activations; for `backprop` the growth is N·s·(activations).

use neural_ode::alloc::{self, CountingAllocator};
use neural_ode::dfdx::nn::modules::Linear;
use neural_ode::dfdx::prelude::*;
use neural_ode::{neural_ode, solve, GradMethod, SolveOptions, VectorField};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

type State = (usize, Const<2>);
const BATCH: usize = 128;
const WIDTH: usize = 64;

#[neural_ode(solver = "dopri5")]
#[derive(Clone, Debug)]
struct Mlp {
    l1: Linear<2, WIDTH, f64, Cpu>,
    l2: Linear<WIDTH, WIDTH, f64, Cpu>,
    l3: Linear<WIDTH, 2, f64, Cpu>,
}

impl VectorField<State, f64, Cpu> for Mlp {
    fn eval<T: Tape<f64, Cpu>>(
        &self,
        _t: f64,
        x: Tensor<State, f64, Cpu, T>,
    ) -> Tensor<State, f64, Cpu, T> {
        self.l3
            .forward(self.l2.forward(self.l1.forward(x).tanh()).tanh())
    }
}

/// Peak bytes above the level before the solve, over forward and gradient pass together, and the
/// gradient pass's own figure as the runtime reports it.
fn peak(
    model: &Mlp,
    x0: &Tensor<State, f64, Cpu>,
    steps: usize,
    method: GradMethod,
) -> (usize, Option<usize>) {
    let opts = SolveOptions::fixed_steps(steps).with_grad(method);
    let grads = model.alloc_grads();
    let base = alloc::current();
    alloc::reset_peak();
    let sol = solve(model, x0.trace(grads), &[0.0, 1.0], &opts).unwrap();
    let report = sol.report.clone();
    let g = sol.ys.square().sum::<Rank0, _>().backward();
    let total = alloc::peak() - base;
    drop(g);
    let stats = report.stats().unwrap();
    (total, stats.peak_bytes)
}

#[test]
fn symplectic_memory_grows_with_checkpoints_only() {
    let dev = Cpu::seed_from_u64(0);
    dev.disable_cache();
    let model = Mlp {
        l1: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<2, WIDTH>, f64>(),
        l2: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<WIDTH, WIDTH>, f64>(),
        l3: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<WIDTH, 2>, f64>(),
    };
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(BATCH, Const));
    let state = BATCH * 2 * 8;
    let activation = BATCH * WIDTH * 8;
    let n = 20;
    let mut rows = Vec::new();
    for method in [
        GradMethod::Symplectic,
        GradMethod::Aca,
        GradMethod::Backprop,
    ] {
        peak(&model, &x0, n, method); // warm up lazily allocated buffers
        let (small, pass_small) = peak(&model, &x0, n, method);
        let (large, pass_large) = peak(&model, &x0, 4 * n, method);
        let growth = large as f64 - small as f64;
        println!(
            "{method:>10}: peak {small} B at N={n}, {large} B at N={}; growth {growth:.0} B = {:.2} x (3N states), {:.2} x (3N·s activations); gradient pass alone {pass_small:?} -> {pass_large:?}",
            4 * n,
            growth / (3 * n * state) as f64,
            growth / (3 * n * 7 * activation) as f64,
        );
        rows.push((method, growth));
    }
    let symplectic = rows[0].1;
    let backprop = rows[2].1;
    // About 3N checkpoints (one state each), with slack for the store's bookkeeping.
    assert!(
        symplectic <= 1.5 * (3 * n * state) as f64 + 64.0 * 1024.0,
        "symplectic growth {symplectic}"
    );
    // Backprop keeps every stage's activations: far more than the checkpoints.
    assert!(
        backprop >= (3 * n * 6 * activation) as f64,
        "backprop growth {backprop}"
    );
}
