//! Compares the five gradient methods on one model and data: gradient error against backprop
//! (for `reversible`, backprop through the same reversible scheme), evaluations, peak memory and
//! time.
//!
//! `cargo run --release --example compare` prints a table for dopri5 and dopri8 at several
//! tolerances; `--json` prints one JSON object per row instead; `--steps N` uses rk4 with
//! N, 2N, 4N and 8N fixed steps to show how each method's peak memory grows with the number of
//! steps. `--batch B` sizes the batch; `--reps R` sets how many timed repetitions the median is
//! taken over. The 9 output times are interpolated (the default); `--land-on-outputs` makes each
//! a step boundary instead (`SolveOptions::land_on_outputs`).
//!
//! Two errors are reported: against `backprop` through the same discretisation (what the exact
//! methods reproduce to rounding), and against the gradient of the continuous problem (dopri8
//! at rtol = 1e-12, atol = 1e-14 landing on every output), which shows what the discretisation
//! itself costs, interpolant included.

mod common;

use std::time::Instant;

use neural_ode::alloc::{self, CountingAllocator};
use neural_ode::dfdx::nn::tensor_collection::TensorCollection;
use neural_ode::dfdx::prelude::*;
use neural_ode::nn::{builders, Dense, Identity, Tanh};
use neural_ode::{neural_ode, solve, GradMethod, NeuralOde, RungeKutta, SolveOptions, VectorField};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

type State = (usize, Const<2>);
type Series = (usize, usize, Const<2>);
const WIDTH: usize = 64;

macro_rules! models {
    ($($name:ident => $solver:literal),* $(,)?) => {$(
        #[neural_ode(solver = $solver)]
        #[derive(Clone, Debug)]
        struct $name {
            l1: Dense<2, WIDTH, Tanh, f64, Cpu>,
            l2: Dense<WIDTH, WIDTH, Tanh, f64, Cpu>,
            l3: Dense<WIDTH, 2, Identity, f64, Cpu>,
        }

        impl VectorField<State, f64, Cpu> for $name {
            fn eval<T: Tape<f64, Cpu>>(&self, t: f64, x: Tensor<State, f64, Cpu, T>) -> Tensor<State, f64, Cpu, T> {
                self.l3.forward(self.l2.forward(self.l1.forward(x))) * (2.0 + 0.5 * t)
            }
        }

        impl From<&Params> for $name {
            fn from(p: &Params) -> Self {
                $name { l1: p.0.clone(), l2: p.1.clone(), l3: p.2.clone() }
            }
        }
    )*};
}

/// The parameters shared by every model type (one type per solver).
struct Params(
    Dense<2, WIDTH, Tanh, f64, Cpu>,
    Dense<WIDTH, WIDTH, Tanh, f64, Cpu>,
    Dense<WIDTH, 2, Identity, f64, Cpu>,
);

models! {
    Dopri5Field => "dopri5",
    Dopri8Field => "dopri8",
    Rk4Field => "rk4",
}

struct Problem {
    x0: Tensor<State, f64, Cpu>,
    times: Vec<f64>,
    target: Tensor<Series, f64, Cpu>,
}

struct Row {
    solver: &'static str,
    rtol: Option<f64>,
    method: GradMethod,
    steps: usize,
    nfe_forward: usize,
    nfe_backward: usize,
    grad_rel_err: f64,
    continuous_rel_err: f64,
    peak_bytes: usize,
    seconds: f64,
}

/// One gradient: (flattened gradient, steps, nfe forward, nfe backward, peak bytes above the
/// level before the solve, over solve and gradient pass).
fn gradient<M>(
    model: &M,
    p: &Problem,
    opts: &SolveOptions,
) -> (Vec<f64>, usize, usize, usize, usize)
where
    M: NeuralOde + VectorField<State, f64, Cpu> + TensorCollection<f64, Cpu> + Params3,
{
    let grads = model.alloc_grads();
    let base = alloc::current();
    alloc::reset_peak();
    let sol = solve(model, p.x0.trace(grads), &p.times, opts).expect("solve");
    let report = sol.report.clone();
    let stats = sol.stats;
    let loss = (sol.ys - p.target.clone()).square().mean::<Rank0, _>();
    let g = loss.backward();
    let peak = alloc::peak().saturating_sub(base);
    let back = report
        .get()
        .expect("gradient pass ran")
        .expect("gradient pass succeeded");
    let flat = model.flat_grads(&g);
    (flat, stats.accepted, stats.nfe, back.nfe(), peak)
}

trait Params3 {
    fn flat_grads(&self, g: &Gradients<f64, Cpu>) -> Vec<f64>;
}

macro_rules! params3 {
    ($($name:ident),*) => {$(
        impl Params3 for $name {
            fn flat_grads(&self, g: &Gradients<f64, Cpu>) -> Vec<f64> {
                let mut v = Vec::new();
                for t in [g.get(&self.l1.weight).as_vec(), g.get(&self.l1.bias).as_vec(), g.get(&self.l2.weight).as_vec(),
                          g.get(&self.l2.bias).as_vec(), g.get(&self.l3.weight).as_vec(), g.get(&self.l3.bias).as_vec()] {
                    v.extend(t);
                }
                v
            }
        }
    )*};
}
params3!(Dopri5Field, Dopri8Field, Rk4Field);

fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt();
    let den: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    num / den
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// What every row shares: the problem, how outputs are met, the continuous problem's gradient,
/// and the number of timed repetitions.
struct Setup<'a> {
    p: &'a Problem,
    land: bool,
    continuous: &'a [f64],
    reps: usize,
}

fn rows_for<M>(model: &M, s: &Setup, rtols: &[Option<f64>], steps: Option<usize>) -> Vec<Row>
where
    M: NeuralOde + VectorField<State, f64, Cpu> + TensorCollection<f64, Cpu> + Params3,
{
    let mut rows = Vec::new();
    for &rtol in rtols {
        let base = match (rtol, steps) {
            (Some(r), _) => SolveOptions::adaptive(r, r * 1e-2),
            (None, Some(n)) => SolveOptions::fixed_steps(n),
            (None, None) => SolveOptions::fixed_steps(100),
        };
        let base = if s.land { base.land_on_outputs() } else { base };
        let p = s.p;
        let reference = gradient(model, p, &base.clone().with_grad(GradMethod::Backprop)).0;
        // The reversible method differentiates its own scheme: its reference is backprop
        // through that scheme.
        let reversible = base.clone().with_reversible(SolveOptions::DEFAULT_COUPLING);
        let reference_reversible = gradient(
            model,
            p,
            &reversible.clone().with_grad(GradMethod::Backprop),
        )
        .0;
        for method in [
            GradMethod::Backprop,
            GradMethod::Aca,
            GradMethod::Adjoint,
            GradMethod::Symplectic,
            GradMethod::Reversible,
        ] {
            let (opts, reference) = match method {
                GradMethod::Reversible => (reversible.clone(), &reference_reversible),
                _ => (base.clone(), &reference),
            };
            let opts = opts.with_grad(method);
            let (g, n_steps, nfe_f, nfe_b, peak) = gradient(model, p, &opts);
            let times: Vec<f64> = (0..s.reps)
                .map(|_| {
                    let start = Instant::now();
                    std::hint::black_box(gradient(model, p, &opts));
                    start.elapsed().as_secs_f64()
                })
                .collect();
            rows.push(Row {
                solver: M::Solver::NAME,
                rtol,
                method,
                steps: n_steps,
                nfe_forward: nfe_f,
                nfe_backward: nfe_b,
                grad_rel_err: rel_err(&g, reference),
                continuous_rel_err: rel_err(&g, s.continuous),
                peak_bytes: peak,
                seconds: median(times),
            });
        }
    }
    rows
}

const USAGE: &str =
    "usage: compare [--json] [--land-on-outputs] [--steps N] [--batch B] [--reps R] [--seed S]";

fn main() {
    let args = common::Args::parse(&["steps", "batch", "reps", "seed"], USAGE);
    let json = args.flag("json");
    let land = args.flag("land-on-outputs");
    let batch: usize = args.get("batch", 256);
    let reps: usize = args.get("reps", 5);
    let seed: u64 = args.get("seed", 0);
    let steps: Option<usize> = Some(args.get("steps", 0usize)).filter(|&n| n > 0);

    let dev = Cpu::seed_from_u64(seed);
    let params = Params(
        dev.build_module::<builders::Dense<2, WIDTH, Tanh>, f64>(),
        dev.build_module::<builders::Dense<WIDTH, WIDTH, Tanh>, f64>(),
        dev.build_module::<builders::Dense<WIDTH, 2, Identity>, f64>(),
    );
    // `--steps` mode: one interval, so that N steps are exactly N steps.
    let times: Vec<f64> = if steps.is_some() {
        vec![0.0, 4.0]
    } else {
        (0..9).map(|i| i as f64 * 0.5).collect()
    };
    let p = Problem {
        x0: dev.sample_normal_like(&(batch, Const)),
        target: dev.sample_normal_like(&(times.len(), batch, Const)),
        times,
    };

    let tight = SolveOptions::adaptive(1e-12, 1e-14)
        .land_on_outputs()
        .with_grad(GradMethod::Symplectic);
    let continuous = gradient(&Dopri8Field::from(&params), &p, &tight).0;
    let s = Setup {
        p: &p,
        land,
        continuous: &continuous,
        reps,
    };
    let rows = match steps {
        None => {
            let rtols = [Some(1e-3), Some(1e-6), Some(1e-9)];
            let mut rows = rows_for(&Dopri5Field::from(&params), &s, &rtols, None);
            rows.extend(rows_for(&Dopri8Field::from(&params), &s, &rtols, None));
            rows
        }
        Some(n) => {
            let model = Rk4Field::from(&params);
            let mut rows = Vec::new();
            for k in [1, 2, 4, 8] {
                rows.extend(rows_for(&model, &s, &[None], Some(n * k)));
            }
            rows
        }
    };

    if json {
        for r in &rows {
            let obj = serde_json::json!({
                "solver": r.solver,
                "rtol": r.rtol,
                "method": r.method.name(),
                "steps": r.steps,
                "nfe_forward": r.nfe_forward,
                "nfe_backward": r.nfe_backward,
                "grad_rel_err": r.grad_rel_err,
                "continuous_rel_err": r.continuous_rel_err,
                "peak_bytes": r.peak_bytes,
                "seconds": r.seconds,
            });
            println!("{obj}");
        }
        return;
    }
    println!(
        "MLP 2→{WIDTH}→{WIDTH}→2 (tanh), batch {batch}, f64, {} output times on [0, 4], {}; peak = heap above the level before the solve, over solve + gradient pass; time = median of {reps}",
        p.times.len(),
        if land { "each a step boundary (land_on_outputs)" } else { "interpolated" }
    );
    println!(
        "| solver | rtol | method | steps | nfe fwd | nfe bwd | grad rel err vs backprop | vs continuous | peak memory | time (ms) |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for r in &rows {
        let rtol = r
            .rtol
            .map(|x| format!("{x:.0e}"))
            .unwrap_or_else(|| "fixed".into());
        println!(
            "| {} | {rtol} | {} | {} | {} | {} | {:.1e} | {:.1e} | {} | {:.1} |",
            r.solver,
            r.method,
            r.steps,
            r.nfe_forward,
            r.nfe_backward,
            r.grad_rel_err,
            r.continuous_rel_err,
            common::bytes(r.peak_bytes),
            r.seconds * 1e3
        );
    }
}
