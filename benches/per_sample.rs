//! Per-sample steps against shared steps.
//!
//! 1. **Work saved** on a mixed-stiffness batch: 256 Van der Pol oscillators with μ spread
//!    evenly over [0.1, 5], all from (2, 0), on [0, 10], dopri5 at rtol = atol = 1e-6 (the
//!    batch `benches/torchode_vdp.py` solves with torchode and torchdiffeq). Steps (max, mean
//!    per row), evaluations, forward time; gradient of Σ x(10)² + v(10)² with respect to every
//!    μ: time and peak heap of the symplectic adjoint, backprop and the continuous adjoint.
//! 2. **Overhead where it cannot help**: the MLP 2 → 64 → 64 → 2 (`Dense`, tanh) on a batch of
//!    512 rows from one distribution, dopri5 at rtol = atol = 1e-6 on [0, 10]: symplectic
//!    gradient with shared and with per-sample steps, interleaved rounds, median of the paired
//!    ratios.
//!
//! ```text
//! cargo bench --bench per_sample
//! ROUNDS=7 cargo bench --bench per_sample
//! ```
//! Runs on the calling thread (pin it with `taskset -c 1` to compare with the Python script).

use std::hint::black_box;
use std::time::Instant;

use neural_ode::alloc::{self, CountingAllocator};
use neural_ode::dfdx::prelude::*;
use neural_ode::nn::{builders, Dense, Identity, Tanh};
use neural_ode::{neural_ode, solve, GradMethod, GradientFailure, SolveOptions, VectorField};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

type State = (usize, Const<2>);
const B: usize = 256;

/// Van der Pol oscillators, one μ per row (the parameters). The columns are picked with
/// products rather than `slice`: dfdx 0.13's `slice` backward on the CPU writes its cotangent
/// instead of adding it, which breaks `backprop` and `aca` (see the README's limitations).
#[neural_ode(solver = "dopri5", grad = "symplectic")]
#[derive(Clone, Debug)]
struct VanDerPol {
    mu: Tensor<Rank1<B>, f64, Cpu>,
    #[neural_ode(skip)]
    pick: [Tensor<Rank2<2, 1>, f64, Cpu>; 2],
    #[neural_ode(skip)]
    place: [Tensor<Rank2<1, 2>, f64, Cpu>; 2],
}

impl VanDerPol {
    fn new(dev: &Cpu, mu: Vec<f64>) -> Self {
        VanDerPol {
            mu: dev.tensor_from_vec(mu, (Const::<B>,)),
            pick: [dev.tensor([[1.0], [0.0]]), dev.tensor([[0.0], [1.0]])],
            place: [dev.tensor([[1.0, 0.0]]), dev.tensor([[0.0, 1.0]])],
        }
    }
}

impl VectorField<State, f64, Cpu> for VanDerPol {
    fn eval<T: Tape<f64, Cpu>>(
        &self,
        _t: f64,
        x: Tensor<State, f64, Cpu, T>,
    ) -> Tensor<State, f64, Cpu, T> {
        let rows = x.shape().0;
        let p = x.with_empty_tape().matmul(self.pick[0].clone());
        let v = x.matmul(self.pick[1].clone());
        let mu = self.mu.retaped::<T>().reshape_like(&(rows, Const::<1>));
        let damping = (p.with_empty_tape().square().negate() + 1.0) * mu;
        let dv = damping * v.with_empty_tape() - p;
        v.matmul(self.place[0].clone()) + dv.matmul(self.place[1].clone())
    }
}

/// MLP 2 → 64 → 64 → 2, the peers harness's field.
#[neural_ode(solver = "dopri5", grad = "symplectic")]
#[derive(Clone, Debug)]
struct Mlp {
    l1: Dense<2, 64, Tanh, f64, Cpu>,
    l2: Dense<64, 64, Tanh, f64, Cpu>,
    l3: Dense<64, 2, Identity, f64, Cpu>,
}

impl VectorField<State, f64, Cpu> for Mlp {
    fn eval<T: Tape<f64, Cpu>>(
        &self,
        _t: f64,
        x: Tensor<State, f64, Cpu, T>,
    ) -> Tensor<State, f64, Cpu, T> {
        self.l3.forward(self.l2.forward(self.l1.forward(x)))
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn timed<R>(f: impl FnOnce() -> R) -> (R, f64) {
    let start = Instant::now();
    let r = f();
    (r, start.elapsed().as_secs_f64())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    van_der_pol(rounds);
    overhead(rounds);
}

fn van_der_pol(rounds: usize) {
    let dev = Cpu::default();
    let mu: Vec<f64> = (0..B)
        .map(|i| 0.1 + 4.9 * i as f64 / (B - 1) as f64)
        .collect();
    let model = VanDerPol::new(&dev, mu);
    let x0: Tensor<State, f64, Cpu> = dev.tensor_from_vec([2.0, 0.0].repeat(B), (B, Const));
    let times = [0.0, 10.0];
    let shared = SolveOptions::adaptive(1e-6, 1e-6);
    let per = shared.clone().per_sample_steps();
    println!("## Van der Pol, B = {B}, mu in [0.1, 5], dopri5, rtol = atol = 1e-6, t in [0, 10]\n");
    // Forward: counts and time.
    let mut rows = Vec::new();
    for (name, opts) in [("shared steps", &shared), ("per-sample steps", &per)] {
        let sol = solve(&model, x0.clone(), &times, opts).unwrap();
        let t = median(
            (0..rounds)
                .map(|_| timed(|| black_box(solve(&model, x0.clone(), &times, opts).unwrap())).1)
                .collect(),
        );
        let (steps, mean, rejected, row_evals) = match &sol.samples {
            None => (
                sol.stats.accepted,
                sol.stats.accepted as f64,
                sol.stats.rejected,
                sol.stats.nfe * B,
            ),
            Some(s) => (
                s.max_accepted(),
                s.mean_accepted(),
                s.stats.iter().map(|s| s.rejected).max().unwrap_or(0),
                s.stats.iter().map(|s| s.nfe).sum(),
            ),
        };
        rows.push(format!(
            "| {name} | {steps} | {mean:.1} | {rejected} | {} | {row_evals} | {:.1} |",
            sol.stats.nfe,
            t * 1e3
        ));
    }
    println!("| forward | accepted steps (max row) | mean per row | rejected (max row) | batch evaluations | row evaluations needed | time (ms) |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for r in rows {
        println!("{r}");
    }
    // Gradients.
    println!("\n| gradient of sum x(10)^2 + v(10)^2 wrt mu | time (ms) | peak heap (MiB) |");
    println!("| --- | --- | --- |");
    for (name, opts) in [
        (
            "shared, symplectic",
            shared.clone().with_grad(GradMethod::Symplectic),
        ),
        (
            "shared, backprop",
            shared.clone().with_grad(GradMethod::Backprop),
        ),
        (
            "per-sample, symplectic",
            per.clone().with_grad(GradMethod::Symplectic),
        ),
        (
            "per-sample, backprop",
            per.clone().with_grad(GradMethod::Backprop),
        ),
        (
            "shared, continuous adjoint",
            shared.clone().with_grad(GradMethod::Adjoint),
        ),
        (
            "per-sample, continuous adjoint",
            per.clone().with_grad(GradMethod::Adjoint),
        ),
    ] {
        let opts = opts.with_gradient_failure(GradientFailure::Report);
        let mut times_ms = Vec::new();
        let mut peak = 0;
        let mut grad_row0 = 0.0;
        let mut failure = None;
        for _ in 0..rounds.max(1) {
            let base = alloc::current();
            alloc::reset_peak();
            let ((g, report), t) = timed(|| {
                let sol = solve(
                    &model,
                    x0.clone().traced(model.alloc_grads()),
                    &times,
                    &opts,
                )
                .unwrap();
                let n = sol.ys.shape().0;
                let last = sol.ys.select(dev.tensor(n - 1));
                (last.square().sum::<Rank0, _>().backward(), sol.report)
            });
            if let Err(e) = report.stats() {
                failure = Some(e);
                break;
            }
            peak = peak.max(alloc::peak().saturating_sub(base));
            grad_row0 = g.get(&model.mu).as_vec()[0];
            times_ms.push(t * 1e3);
        }
        match failure {
            Some(e) => println!("| {name} | failed: {e} | |"),
            None => println!(
                "| {name} | {:.1} | {:.2} |  (dL/dmu_0 = {grad_row0:.6e})",
                median(times_ms),
                peak as f64 / (1 << 20) as f64
            ),
        }
    }
}

fn overhead(rounds: usize) {
    let dev = Cpu::seed_from_u64(0);
    let model = Mlp {
        l1: dev.build_module::<builders::Dense<2, 64, Tanh>, f64>(),
        l2: dev.build_module::<builders::Dense<64, 64, Tanh>, f64>(),
        l3: dev.build_module::<builders::Dense<64, 2, Identity>, f64>(),
    };
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(512, Const));
    let times = [0.0, 10.0];
    let shared = SolveOptions::adaptive(1e-6, 1e-6);
    let per = shared.clone().per_sample_steps();
    let grad = |opts: &SolveOptions| {
        timed(|| {
            let sol = solve(&model, x0.clone().traced(model.alloc_grads()), &times, opts).unwrap();
            let g = sol.ys.square().sum::<Rank0, _>().backward();
            (g, sol.stats, sol.samples)
        })
    };
    let (_, _) = grad(&shared);
    let mut ratios = Vec::new();
    let (mut ts, mut tp) = (Vec::new(), Vec::new());
    let mut info = String::new();
    let mut per_step = Vec::new();
    for _ in 0..rounds.max(1) {
        let ((_, stats, _), a) = grad(&shared);
        let ((_, per_stats, samples), b) = grad(&per);
        let s = samples.unwrap();
        info = format!(
            "shared: {} steps ({} rejected); per-sample: {} rounds ({} without a move), rows \
             {}..{} accepted steps",
            stats.accepted,
            stats.rejected,
            s.rounds,
            per_stats.rejected,
            s.stats.iter().map(|s| s.accepted).min().unwrap_or(0),
            s.max_accepted()
        );
        ts.push(a);
        tp.push(b);
        ratios.push(b / a);
        // Per batch evaluation: what the per-sample machinery costs besides taking other steps.
        per_step.push((b / per_stats.nfe as f64) / (a / stats.nfe as f64));
    }
    println!("\n## Overhead: MLP 2-64-64-2 (Dense, tanh), batch 512, dopri5, rtol = atol = 1e-6, t in [0, 10]\n");
    println!("{info}\n");
    println!("| symplectic gradient | shared (s) | per-sample (s) | per-sample / shared (median of paired ratios) | the same per forward evaluation |");
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| {rounds} rounds | {:.3} | {:.3} | {:.3} | {:.3} |",
        median(ts),
        median(tp),
        median(ratios),
        median(per_step)
    );
}
