//! Peak memory of a `symplectic` gradient against the bound the paper states: checkpoints plus
//! one network evaluation's graph plus (2s + 2) state buffers. Measured with the counting
//! allocator; prints the ratio (goal ≤ 1.3) for dopri5 and dopri8 at several step counts.
//! Not a criterion bench: memory is deterministic, so one run per configuration suffices.

mod common;

use common::*;
use neural_ode::alloc::{self, CountingAllocator};
use neural_ode::dfdx::nn::tensor_collection::TensorCollection;
use neural_ode::dfdx::prelude::*;
use neural_ode::{solve, GradMethod, NeuralOde, RungeKutta, SolveOptions, VectorField};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

const BATCH: usize = 512;

/// Peak bytes above the level before `f` runs.
fn peak_of(f: impl FnOnce()) -> usize {
    let base = alloc::current();
    alloc::reset_peak();
    f();
    alloc::peak().saturating_sub(base)
}

fn report<M>(model: &M, width: usize)
where
    M: NeuralOde + VectorField<State, f64, Cpu> + TensorCollection<f64, Cpu>,
{
    let dev = Cpu::seed_from_u64(1);
    // dfdx's tensor cache would keep freed buffers alive and make peaks depend on history.
    dev.disable_cache();
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(BATCH, Const));
    let state = BATCH * 2 * std::mem::size_of::<f64>();
    // One evaluation's graph: a traced evaluation and its backward pass (measured twice; the
    // first run also pays for lazily allocated buffers of the matmul backend).
    let graph = || {
        peak_of(|| {
            let y = model.eval(0.0, x0.leaky_trace());
            let g = y.square().sum::<Rank0, _>().backward();
            std::hint::black_box(g);
        })
    };
    graph();
    let graph = graph();
    let s = M::Solver::STAGES;
    for steps in [10, 40, 160] {
        let opts = SolveOptions::fixed_steps(steps).with_grad(GradMethod::Symplectic);
        // The caller's gradient buffers are the result, not working memory: allocated outside.
        let grads = model.alloc_grads();
        let measured = peak_of(|| {
            let sol = solve(model, x0.trace(grads), &[0.0, 1.0], &opts).expect("solve");
            let report = sol.report.clone();
            let g = sol.ys.square().sum::<Rank0, _>().backward();
            std::hint::black_box(g);
            report
                .get()
                .expect("ran")
                .expect("the gradient pass succeeds");
        });
        let bound = steps * state + graph + (2 * s + 2) * state;
        println!(
            "{:>7} width {width:>3} N = {steps:>3}: peak {:>9} B; bound (N states {:>8} + graph {:>8} + (2s+2) states {:>7}) = {:>9} B; ratio {:.2}",
            M::Solver::NAME,
            measured,
            steps * state,
            graph,
            (2 * s + 2) * state,
            bound,
            measured as f64 / bound as f64
        );
    }
}

fn main() {
    let dev = Cpu::seed_from_u64(0);
    dev.disable_cache();
    report(&Dopri5Mlp::<64>::build(&dev), 64);
    report(&Dopri5Mlp::<256>::build(&dev), 256);
    report(&Dopri8Mlp::<64>::build(&dev), 64);
}
