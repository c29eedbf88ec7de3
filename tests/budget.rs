//! `CheckpointPolicy::Budget` (binomial checkpointing) gives the gradient of the `All` policy
//! within its budget, recomputing as many steps as the optimal schedule (fixed steps) or close
//! to it (adaptive steps); and every solve keeps only what its gradient pass reads.
#![deny(warnings)]

mod common;

use common::*;
use neural_ode::dfdx::prelude::*;
use neural_ode::{
    solve, BackwardStats, CheckpointPolicy, Error, ForwardStats, GradMethod, SolveOptions,
};

type Model = Dopri5<f64, Cpu>;

struct Run {
    grad: Vec<f64>,
    forward: ForwardStats,
    backward: BackwardStats,
}

fn run(model: &Model, x0: &Tensor<State, f64, Cpu>, times: &[f64], opts: &SolveOptions) -> Run {
    let w: Tensor<Stacked, f64, Cpu> =
        Cpu::seed_from_u64(3).sample_normal_like(&(times.len(), x0.shape().0, Const));
    let sol = solve(model, x0.leaky_trace(), times, opts).unwrap();
    let forward = sol.stats;
    let g = (sol.ys * w).sum::<Rank0, _>().backward();
    let backward = sol.report.stats().unwrap();
    let mut grad = g.get(x0).as_vec();
    grad.extend(model.grads(&g));
    Run {
        grad,
        forward,
        backward,
    }
}

/// Bytes one state takes in the budget (elements, buffer header, its place in the store).
fn per_state(x0: &Tensor<State, f64, Cpu>) -> usize {
    neural_ode::hooks::slot_bytes(x0)
}

#[test]
fn budget_gives_the_gradient_of_all_with_the_optimal_recomputation() {
    let dev = Cpu::seed_from_u64(21);
    let model = Model::create(&dev);
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(5, Const));
    let times = [0.0, 0.7, 1.6, 2.0];
    for method in [GradMethod::Symplectic, GradMethod::Aca] {
        for (fixed, base) in [
            (true, SolveOptions::fixed_steps(60)),
            (false, SolveOptions::adaptive(1e-9, 1e-11)),
        ] {
            let base = base.with_grad(method);
            let all = run(&model, &x0, &times, &base);
            let n = all.forward.accepted;
            assert_eq!(all.backward.recomputed_steps, 0);
            for slots in [1, 2, 3, 7, n / 10, n / 2, n, 2 * n] {
                let budget = slots * per_state(&x0);
                let opts = base
                    .clone()
                    .with_checkpoints(CheckpointPolicy::Budget(budget));
                let got = run(&model, &x0, &times, &opts);
                let what = format!("{method} {:?}, {n} steps, {slots} slots", base.stepping);
                assert_eq!(got.forward.accepted, n, "{what}: same steps");
                let err = rel_err(&got.grad, &all.grad);
                assert!(err <= 1e-13, "{what}: gradient off by {err:e}");
                let recomputed = got.backward.recomputed_steps;
                let optimum = neural_ode::CheckpointPolicy::binomial_recomputation(n, slots)
                    .unwrap() as usize;
                if fixed {
                    assert_eq!(recomputed, optimum, "{what}: the optimal schedule");
                } else {
                    let bound = 1.25 * optimum as f64 + 0.65 * n as f64 + 1.0;
                    assert!(
                        recomputed as f64 <= bound,
                        "{what}: {recomputed} vs {optimum}"
                    );
                }
                assert_eq!(
                    got.backward.nfe_rebuild - all.backward.nfe_rebuild,
                    recomputed * 7,
                    "{what}: each recomputed step costs the method's stages"
                );
                // The states stay within the budget; the adaptive step grid (two f64 per step,
                // by capacity) and the schedule come on top.
                let extra = if fixed { 0 } else { 2 * n * 16 } + 4 * slots.min(n) * 8 + 256;
                assert!(
                    got.forward.checkpoint_bytes <= budget + extra,
                    "{what}: {} bytes for a budget of {budget}",
                    got.forward.checkpoint_bytes
                );
                println!(
                    "{what}: recomputed {recomputed} (optimum {optimum}), rel err {err:.1e}, {} bytes",
                    got.forward.checkpoint_bytes
                );
            }
        }
    }
}

#[test]
fn a_budget_below_one_state_is_an_error_before_solving() {
    let dev = Cpu::seed_from_u64(2);
    let model = Model::create(&dev);
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(5, Const));
    let slot = per_state(&x0);
    for budget in [0, 10, slot - 1] {
        let opts = SolveOptions::fixed_steps(10).with_checkpoints(CheckpointPolicy::Budget(budget));
        let err = neural_ode::solve_returning_input(
            &model,
            x0.leaky_trace(),
            &[0.0, 1.0],
            &opts,
            &neural_ode::PiController::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.error,
            Error::CheckpointBudgetTooSmall {
                budget,
                slot_bytes: slot
            }
        );
        let message = err.error.to_string();
        assert!(message.contains("holds no state"), "{message}");
        // Nothing was solved: the input comes back as it was passed in.
        assert_eq!(err.input.as_vec(), x0.as_vec());
    }
    let opts = SolveOptions::fixed_steps(10)
        .with_checkpoints(CheckpointPolicy::Budget(per_state(&x0)))
        .with_grad(GradMethod::Symplectic);
    // The smallest budget, one state: every state is recomputed from the initial one.
    let one = run(&model, &x0, &[0.0, 1.0], &opts);
    assert_eq!(one.backward.recomputed_steps, 45);
}

/// Checkpoint bytes of a solve with `steps` fixed steps, taped or not.
fn bytes(model: &Model, x0: &Tensor<State, f64, Cpu>, steps: usize, opts: SolveOptions) -> usize {
    let opts = SolveOptions {
        stepping: neural_ode::Stepping::FixedSteps(steps),
        ..opts
    };
    let taped = solve(model, x0.leaky_trace(), &[0.0, 0.5, 1.0], &opts).unwrap();
    taped.stats.checkpoint_bytes
}

#[test]
fn solves_keep_only_what_their_gradient_reads() {
    let dev = Cpu::seed_from_u64(5);
    let model = Model::create(&dev);
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(64, Const));
    let state = neural_ode::hooks::state_bytes(&x0);
    let (small, large) = (100, 1000);
    let base = SolveOptions::fixed_steps(1);
    // Without a tape: nothing, whatever the policy.
    for policy in [CheckpointPolicy::All, CheckpointPolicy::AllStages] {
        let opts = SolveOptions::fixed_steps(large).with_checkpoints(policy);
        let sol = solve(&model, x0.clone(), &[0.0, 0.5, 1.0], &opts).unwrap();
        assert_eq!(sol.stats.checkpoint_bytes, 0, "{policy:?}");
        assert_eq!(sol.stats.accepted, large);
    }
    let flat = |opts: SolveOptions, name: &str| {
        let (a, b) = (
            bytes(&model, &x0, small, opts.clone()),
            bytes(&model, &x0, large, opts),
        );
        println!("{name}: {a} B at {small} steps, {b} B at {large}");
        assert_eq!(a, b, "{name}: flat in the number of steps");
        b
    };
    // The continuous adjoint integrates the state backwards: nothing stored.
    assert_eq!(
        flat(base.clone().with_grad(GradMethod::Adjoint), "adjoint"),
        0
    );
    // Backprop replays the grid, which fixed steps compute: a few bytes per output interval.
    assert!(flat(base.clone().with_grad(GradMethod::Backprop), "backprop") < 256);
    // One kept state (the initial one) and no per-step bookkeeping.
    let sparse = base
        .clone()
        .with_grad(GradMethod::Symplectic)
        .with_checkpoints(CheckpointPolicy::EveryK(usize::MAX));
    assert!(flat(sparse, "EveryK(MAX)") < 2 * state);
    let budget = base
        .clone()
        .with_grad(GradMethod::Symplectic)
        .with_checkpoints(CheckpointPolicy::Budget(8 * per_state(&x0)));
    assert!(flat(budget, "Budget(8 states)") <= 8 * per_state(&x0) + 256);
    // The full store: every state.
    let all = bytes(&model, &x0, large, base.with_grad(GradMethod::Symplectic));
    assert!(
        all >= large * state && all <= large * (state + 128),
        "{all}"
    );
    // Adaptive backprop keeps its grid: two f64 per step, nothing else.
    let adaptive = SolveOptions::adaptive(1e-8, 1e-10).with_grad(GradMethod::Backprop);
    let sol = solve(&model, x0.leaky_trace(), &[0.0, 1.0], &adaptive).unwrap();
    assert!(sol.stats.checkpoint_bytes <= 2 * sol.stats.accepted * 16 + 64);
}
