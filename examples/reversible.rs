//! When to pick the reversible method: its stability against the coupling λ, how far its
//! reconstruction drifts, and its memory and time next to the symplectic adjoint (storing every
//! state, and under a byte budget equal to the reversible method's peak).
//!
//! `cargo run --release --example reversible` (`--steps N` for the memory/time table, default
//! 10000; `--quick` for a shorter run)

#[path = "common/mod.rs"]
mod common;

use std::time::Instant;

use neural_ode::alloc::{self, CountingAllocator};
use neural_ode::dfdx::prelude::*;
use neural_ode::nn::{builders, Dense, Identity, Tanh};
use neural_ode::{neural_ode, solve, CheckpointPolicy, GradMethod, SolveOptions, VectorField};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

type State = (usize, Const<2>);

/// `x' = μ x` on 2-vectors: the linear test problem of stability analysis.
macro_rules! linear {
    ($name:ident, $solver:literal) => {
        #[neural_ode(solver = $solver)]
        #[derive(Clone, Debug)]
        struct $name {
            // A parameter tensor for the derive to walk; the rate is `mu`.
            scale: Tensor<Rank1<1>, f64, Cpu>,
            #[neural_ode(skip)]
            mu: f64,
        }

        impl VectorField<State, f64, Cpu> for $name {
            fn eval<T: Tape<f64, Cpu>>(
                &self,
                _t: f64,
                x: Tensor<State, f64, Cpu, T>,
            ) -> Tensor<State, f64, Cpu, T> {
                x * self.mu
            }
        }
    };
}
linear!(LinearRk4, "rk4");
linear!(LinearDopri5, "dopri5");

/// MLP 2 → 32 → 32 → 2 of fused layers, dopri5.
#[neural_ode(solver = "dopri5")]
#[derive(Clone, Debug)]
struct Mlp {
    l1: Dense<2, 32, Tanh, f64, Cpu>,
    l2: Dense<32, 32, Tanh, f64, Cpu>,
    l3: Dense<32, 2, Identity, f64, Cpu>,
}

impl VectorField<State, f64, Cpu> for Mlp {
    fn eval<T: Tape<f64, Cpu>>(
        &self,
        _t: f64,
        x: Tensor<State, f64, Cpu, T>,
    ) -> Tensor<State, f64, Cpu, T> {
        self.l3.forward(self.l2.forward(self.l1.forward(x))) * 0.2
    }
}

/// The largest `|hμ|` (on a grid of 0.02) for which 2000 steps of `x' = μx` stay bounded,
/// searched from small steps up: the scheme's real stability interval.
fn stability_limit<
    M: neural_ode::NeuralOde
        + VectorField<State, f64, Cpu>
        + neural_ode::dfdx::nn::tensor_collection::TensorCollection<f64, Cpu>,
>(
    build: impl Fn(f64) -> M,
    coupling: Option<f64>,
) -> f64 {
    let dev = Cpu::default();
    let x0: Tensor<State, f64, Cpu> = dev.ones_like(&(1, Const));
    let steps = 2000;
    let mut last_stable = 0.0;
    for i in 1..=250 {
        let h_mu = -0.02 * i as f64;
        // h = 1e-3 · (span 2): μ = hμ / h.
        let h = 2.0 / steps as f64;
        let model = build(h_mu / h);
        let mut opts = SolveOptions::fixed_steps(steps);
        if let Some(c) = coupling {
            opts = opts.with_reversible(c);
        }
        let bounded = match solve(&model, x0.clone(), &[0.0, 2.0], &opts) {
            Ok(sol) => sol
                .ys
                .as_vec()
                .iter()
                .all(|v| v.is_finite() && v.abs() <= 10.0),
            Err(_) => false,
        };
        if !bounded {
            break;
        }
        last_stable = -h_mu;
    }
    last_stable
}

struct Run {
    peak: usize,
    forward_s: f64,
    total_s: f64,
    drift: Option<f64>,
    recomputed: usize,
}

fn run(model: &Mlp, x0: &Tensor<State, f64, Cpu>, opts: &SolveOptions) -> Run {
    let grads = model.alloc_grads();
    let base = alloc::current();
    alloc::reset_peak();
    let start = Instant::now();
    let sol = solve(model, x0.trace(grads), &[0.0, 10.0], opts).expect("solve");
    let forward_s = start.elapsed().as_secs_f64();
    let report = sol.report.clone();
    let _g = sol.ys.square().sum::<Rank0, _>().backward();
    let total_s = start.elapsed().as_secs_f64();
    let stats = match report.stats() {
        Ok(stats) => stats,
        Err(neural_ode::Error::ReconstructionDrift { drift, .. }) => neural_ode::BackwardStats {
            reconstruction_error: Some(drift),
            ..Default::default()
        },
        Err(e) => panic!("gradient pass: {e}"),
    };
    Run {
        peak: alloc::peak() - base,
        forward_s,
        total_s,
        drift: stats.reconstruction_error,
        recomputed: stats.recomputed_steps,
    }
}

fn main() {
    let args = common::Args::parse(
        &["steps"],
        "reversible [--steps N] [--quick]: stability, reconstruction drift, memory and time",
    );
    let quick = args.flag("quick");
    let steps: usize = args.get("steps", if quick { 2000 } else { 10_000 });

    println!("## Stability on x' = μx (largest |hμ| with 2000 bounded steps)\n");
    println!("| coupling λ | rk4 | dopri5 |");
    println!("| --- | --- | --- |");
    let rk4 = |mu| LinearRk4 {
        scale: Cpu::default().ones(),
        mu,
    };
    let dopri5 = |mu| LinearDopri5 {
        scale: Cpu::default().ones(),
        mu,
    };
    println!(
        "| the tableau alone | {:.2} | {:.2} |",
        stability_limit(rk4, None),
        stability_limit(dopri5, None)
    );
    for coupling in [1.0, 0.999, 0.99, 0.9, 0.7, 0.5] {
        println!(
            "| {coupling} | {:.2} | {:.2} |",
            stability_limit(rk4, Some(coupling)),
            stability_limit(dopri5, Some(coupling))
        );
    }

    let dev = Cpu::seed_from_u64(0);
    let model = Mlp {
        l1: dev.build_module::<builders::Dense<2, 32, Tanh>, f64>(),
        l2: dev.build_module::<builders::Dense<32, 32, Tanh>, f64>(),
        l3: dev.build_module::<builders::Dense<32, 2, Identity>, f64>(),
    };
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(128, Const));

    println!("\n## Reconstruction drift (MLP 2→32→32→2, batch 128, dopri5 on [0, 10]): `reconstruction_error`\n");
    println!("| coupling λ | 100 steps | 1000 steps | 10000 steps |");
    println!("| --- | --- | --- | --- |");
    let drift_steps: &[usize] = if quick {
        &[100, 1000]
    } else {
        &[100, 1000, 10_000]
    };
    for coupling in [1.0, 0.999, 0.99, 0.9] {
        let cells: Vec<String> = drift_steps
            .iter()
            .map(|&n| {
                let opts = SolveOptions::fixed_steps(n)
                    .with_grad(GradMethod::Reversible)
                    .with_reversible(coupling)
                    .with_gradient_failure(neural_ode::GradientFailure::Report);
                format!("{:.1e}", run(&model, &x0, &opts).drift.unwrap_or(f64::NAN))
            })
            .collect();
        println!("| {coupling} | {} |", cells.join(" | "));
    }

    println!("\n## Memory and time, {steps} fixed dopri5 steps (same model; one thread unless RAYON_NUM_THREADS says otherwise)\n");
    println!("| method | peak bytes (solve + gradient) | forward | forward + gradient | recomputed steps |");
    println!("| --- | --- | --- | --- | --- |");
    // Warm the layers' buffer pools first.
    run(
        &model,
        &x0,
        &SolveOptions::fixed_steps(10).with_grad(GradMethod::Reversible),
    );
    let reversible = run(
        &model,
        &x0,
        &SolveOptions::fixed_steps(steps).with_grad(GradMethod::Reversible),
    );
    let all = run(
        &model,
        &x0,
        &SolveOptions::fixed_steps(steps).with_grad(GradMethod::Symplectic),
    );
    // A budget of 16 states brings the symplectic peak to about the reversible one (what the
    // symplectic pass needs besides its stored states is about what the reversible pass
    // needs in all).
    let budget_bytes = 16 * neural_ode::hooks::slot_bytes(&x0);
    let budget = run(
        &model,
        &x0,
        &SolveOptions::fixed_steps(steps)
            .with_grad(GradMethod::Symplectic)
            .with_checkpoints(CheckpointPolicy::Budget(budget_bytes)),
    );
    for (label, r) in [
        ("`reversible` (λ = 0.999)", &reversible),
        ("`symplectic`, `All`", &all),
        ("`symplectic`, `Budget` of 16 states", &budget),
    ] {
        println!(
            "| {label} | {} | {:.2} s | {:.2} s | {} |",
            common::bytes(r.peak),
            r.forward_s,
            r.total_s,
            r.recomputed
        );
    }
}
