//! Peak memory of a symplectic solve + gradient under `CheckpointPolicy::Budget`, measured with
//! the counting global allocator (one test in this file, so nothing else allocates meanwhile):
//! peak ≤ budget + one evaluation's graph + (2s + 2) states, + 5 %.
#![deny(warnings)]

use neural_ode::alloc::{self, CountingAllocator};
use neural_ode::dfdx::prelude::*;
use neural_ode::{solve, CheckpointPolicy, SolveOptions, VectorField};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

mod common;

use common::{SmallDense as Mlp, State};

fn peak_of(f: impl FnOnce()) -> usize {
    let base = alloc::current();
    alloc::reset_peak();
    f();
    alloc::peak().saturating_sub(base)
}

#[test]
fn budget_bounds_the_peak_of_solve_and_gradient() {
    let dev = Cpu::seed_from_u64(0);
    dev.disable_cache();
    let model = Mlp::build(&dev);
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(64, Const));
    let state = 64 * 2 * 8;
    let steps = 2000;
    let s = 7;
    let run = |policy: CheckpointPolicy| {
        let opts = SolveOptions::fixed_steps(steps).with_checkpoints(policy);
        let grads = model.alloc_grads();
        let mut stats = None;
        let peak = peak_of(|| {
            let sol = solve(&model, x0.trace(grads), &[0.0, 1.0], &opts).expect("solve");
            let forward = sol.stats;
            let report = sol.report.clone();
            let g = sol.ys.square().sum::<Rank0, _>().backward();
            drop(g);
            stats = Some((forward, report.stats().unwrap()));
        });
        let (forward, backward) = stats.expect("ran");
        (peak, forward, backward)
    };
    // One evaluation's graph with its scratch buffers: measured on a fresh thread, whose pool
    // of layer buffers starts empty (this thread's is warm from the solves).
    let graph = || {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    peak_of(|| {
                        let y = model.eval(0.0, x0.leaky_trace());
                        let g = y.square().sum::<Rank0, _>().backward();
                        drop(g);
                    })
                })
                .join()
                .expect("graph thread")
        })
    };
    run(CheckpointPolicy::All); // warm up lazily allocated buffers
    graph();
    let graph = graph();
    let (full_peak, full, _) = run(CheckpointPolicy::All);
    let full_store = full.checkpoint_bytes;
    println!("full store {full_store} B, peak {full_peak} B, graph {graph} B");
    assert_eq!(full.accepted, steps);
    for percent in [1, 10, 100] {
        let budget = full_store * percent / 100;
        let (peak, forward, backward) = run(CheckpointPolicy::Budget(budget));
        let bound = budget + graph + (2 * s + 2) * state;
        let limit = bound + bound / 20;
        let slots = budget / neural_ode::hooks::slot_bytes(&x0);
        let optimum =
            neural_ode::CheckpointPolicy::binomial_recomputation(steps, slots).unwrap_or(0);
        println!(
            "budget {percent:>3} % = {budget} B: peak {peak} B (runtime's figure {:?}), bound {bound} B, ratio {:.3}; store {} B; {slots} slots, recomputed {} steps = {:.2} N (optimum {:.2} N); forward peak {:?}, gradient pass {:?}",
            backward.solve_peak_bytes,
            peak as f64 / bound as f64,
            forward.checkpoint_bytes,
            backward.recomputed_steps,
            backward.recomputed_steps as f64 / steps as f64,
            optimum as f64 / steps as f64,
            forward.peak_bytes,
            backward.peak_bytes,
        );
        assert!(peak <= limit, "{percent} %: peak {peak} above {limit}");
        // The states and their bookkeeping stay within the budget (the fixed-step grid: one
        // entry per output interval, on top).
        assert!(
            forward.checkpoint_bytes <= budget + 64,
            "{}",
            forward.checkpoint_bytes
        );
        assert_eq!(backward.recomputed_steps as u128, optimum);
        let reported = backward
            .solve_peak_bytes
            .expect("counting allocator installed");
        assert!(
            reported <= peak && reported * 10 >= peak * 8,
            "runtime's peak {reported} vs {peak}"
        );
    }
}
