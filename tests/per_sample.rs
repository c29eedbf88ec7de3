//! Samples on their own clocks: per-sample output times and per-sample steps. Gradients against
//! backprop through the same rounds of steps and against central differences; each row as if
//! solved alone (the no-interaction property); padded rows; what does not combine, refused.
#![deny(warnings)]

mod common;

use common::*;
use neural_ode::dfdx::nn::tensor_collection::TensorCollection;
use neural_ode::dfdx::prelude::*;
use neural_ode::{
    solve, solve_per_sample, CheckpointPolicy, Error, GradMethod, NeuralOde, RungeKutta,
    SampleTimes, SolveOptions, VectorField,
};

/// Five ragged sequences: forward and backward in time, different starts, one of a single
/// time, one padded.
fn ragged() -> SampleTimes<f64> {
    SampleTimes::ragged(&[
        vec![0.0, 0.3, 0.35, 1.2, 2.0],
        vec![0.5, 1.0, 1.7],
        vec![1.0, 0.4, -0.5, -0.6],
        vec![0.2],
        vec![-1.0, -0.2, 0.9, 0.9, 1.5],
    ])
    .unwrap()
}

fn opts() -> SolveOptions {
    SolveOptions::adaptive(1e-7, 1e-7).per_sample_steps()
}

/// `Σ w · ys` and its gradients `(x̄₀, θ̄)`, with the outputs.
fn gradient<M>(
    model: &M,
    x0: &Tensor<State, f64, Cpu>,
    w: &Tensor<Stacked, f64, Cpu>,
    times: &SampleTimes<f64>,
    opts: &SolveOptions,
) -> (Vec<f64>, Vec<f64>, neural_ode::Samples<f64>)
where
    M: NeuralOde + VectorField<State, f64, Cpu> + TensorCollection<f64, Cpu> + Build,
{
    let sol = solve_per_sample(model, x0.leaky_trace(), times, opts).unwrap();
    let ys = sol.ys.retaped::<NoneTape>().as_vec();
    let grads = (sol.ys * w.clone()).sum::<Rank0, _>().backward();
    sol.report.stats().unwrap();
    let mut g = grads.get(x0).as_vec();
    g.extend(model.grads(&grads));
    (g, ys, sol.samples.unwrap())
}

fn check_exact<M>()
where
    M: NeuralOde + VectorField<State, f64, Cpu> + TensorCollection<f64, Cpu> + Build,
{
    if <M::Solver as RungeKutta>::EMBEDDED_ORDER.is_none() {
        return;
    }
    let dev = Cpu::seed_from_u64(5);
    let model = M::create(&dev);
    let times = ragged();
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(times.rows(), Const));
    let w: Tensor<Stacked, f64, Cpu> = dev.sample_normal_like(&(times.len(), times.rows(), Const));
    // Outputs interpolated inside each row's steps (the default), and every output a step
    // boundary.
    for base in [opts(), opts().land_on_outputs()] {
        check_exact_with(&model, &x0, &w, &times, base);
    }
    // Shared steps, each row's outputs at its own times.
    let times = common_start();
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(times.rows(), Const));
    let w: Tensor<Stacked, f64, Cpu> = dev.sample_normal_like(&(times.len(), times.rows(), Const));
    let shared = SolveOptions::adaptive(1e-7, 1e-7);
    for base in [shared.clone(), shared.land_on_outputs()] {
        check_exact_with(&model, &x0, &w, &times, base);
    }
}

/// Ragged sequences from one start time, one direction.
fn common_start() -> SampleTimes<f64> {
    SampleTimes::ragged(&[
        vec![0.0, 0.3, 0.35, 1.2, 2.0],
        vec![0.0, 1.0, 1.7],
        vec![0.0],
        vec![0.0, 0.9, 0.9, 1.5, 1.6],
    ])
    .unwrap()
}

fn check_exact_with<M>(
    model: &M,
    x0: &Tensor<State, f64, Cpu>,
    w: &Tensor<Stacked, f64, Cpu>,
    times: &SampleTimes<f64>,
    base: SolveOptions,
) where
    M: NeuralOde + VectorField<State, f64, Cpu> + TensorCollection<f64, Cpu> + Build,
{
    let (reference, ys_ref, samples) = gradient(
        model,
        x0,
        w,
        times,
        &base.clone().with_grad(GradMethod::Backprop),
    );
    let accepted: Vec<usize> = samples.stats.iter().map(|s| s.accepted).collect();
    if base.per_sample_steps {
        // The rows took different numbers of steps.
        assert!(accepted.iter().any(|&a| a != accepted[0]), "{accepted:?}");
        assert_eq!(accepted[3], 0, "a row with one time takes no step");
    } else {
        assert!(accepted.iter().all(|&a| a == accepted[0]), "{accepted:?}");
    }
    let name = <M::Solver as RungeKutta>::NAME;
    for (method, policy) in [
        (GradMethod::Symplectic, CheckpointPolicy::All),
        (GradMethod::Symplectic, CheckpointPolicy::AllStages),
        (GradMethod::Symplectic, CheckpointPolicy::EveryK(3)),
        (GradMethod::Aca, CheckpointPolicy::All),
    ] {
        let (g, ys, _) = gradient(
            model,
            x0,
            w,
            times,
            &base.clone().with_grad(method).with_checkpoints(policy),
        );
        let land = base.land_on_outputs;
        assert_eq!(
            ys, ys_ref,
            "{name} {method} {policy:?} land {land}: outputs"
        );
        let err = rel_err(&g, &reference);
        println!("{name:>10} {method:>10} {policy:?} land {land}: rel err {err:.2e}");
        assert!(
            err <= 1e-12,
            "{name} {method} {policy:?} land {land}: relative error {err:e}"
        );
    }
}

/// Every shipped adaptive tableau: symplectic (all states, stage store, every third state)
/// and ACA against backprop through the same rounds.
mod matches_backprop {
    use super::*;
    crate::every_tableau!(check_exact);
}

/// Central differences of the solve, at tolerances tight enough that the perturbation does not
/// move the accepted steps' effect beyond the bound.
#[test]
fn matches_central_differences() {
    let dev = Cpu::seed_from_u64(9);
    let model = Dopri5::<f64, Cpu>::create(&dev);
    let times = ragged();
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(times.rows(), Const));
    let w: Tensor<Stacked, f64, Cpu> = dev.sample_normal_like(&(times.len(), times.rows(), Const));
    let tight = SolveOptions::adaptive(1e-12, 1e-12).per_sample_steps();
    let (g, _, _) = gradient(
        &model,
        &x0,
        &w,
        &times,
        &tight.clone().with_grad(GradMethod::Symplectic),
    );
    let loss = |m: &Dopri5<f64, Cpu>, x: &Tensor<State, f64, Cpu>| {
        let sol = solve_per_sample(m, x.clone(), &times, &tight).unwrap();
        (sol.ys * w.clone()).sum::<Rank0, _>().array()
    };
    let fd = central_differences(&model, &x0, 0..N_PARAMS, 1e-6, loss);
    let err = max_rel(&g, &fd);
    println!("symplectic vs central differences: {err:.2e}");
    assert!(err < 1e-6, "relative error {err:e}");
}

/// Each row's outputs, steps and share of the gradient are those of solving that row alone.
#[test]
fn rows_do_not_interact() {
    let dev = Cpu::seed_from_u64(3);
    let model = Tsit5::<f64, Cpu>::create(&dev);
    let times = ragged();
    let rows = times.rows();
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(rows, Const));
    let w: Tensor<Stacked, f64, Cpu> = dev.sample_normal_like(&(times.len(), rows, Const));
    for method in [GradMethod::Symplectic, GradMethod::Backprop] {
        let o = opts().with_grad(method);
        let (g, ys, samples) = gradient(&model, &x0, &w, &times, &o);
        let (xs, ws) = (x0.as_vec(), w.as_vec());
        let mut params = vec![0.0; N_PARAMS];
        let mut worst: f64 = 0.0;
        for i in 0..rows {
            let alone = SampleTimes::new(1, times.row(i).to_vec()).unwrap();
            if times.row(i).iter().all(|&t| t == times.row(i)[0]) {
                // Nothing to integrate (alone, the parameters are not even reached): every
                // output is the initial state, so its cotangent is the sum of the weights.
                assert_eq!(samples.stats[i], Default::default());
                for d in 0..2 {
                    let sum: f64 = (0..times.len()).map(|k| ws[(k * rows + i) * 2 + d]).sum();
                    worst = worst.max((g[2 * i + d] - sum).abs());
                }
                continue;
            }
            let xi = dev.tensor_from_vec(xs[2 * i..2 * i + 2].to_vec(), (1, Const));
            let wi: Vec<f64> = (0..times.len())
                .flat_map(|k| ws[(k * rows + i) * 2..(k * rows + i) * 2 + 2].to_vec())
                .collect();
            let wi = dev.tensor_from_vec(wi, (times.len(), 1, Const));
            let (gi, yi, si) = gradient(&model, &xi, &wi, &alone, &o);
            assert_eq!(si.stats[0], samples.stats[i], "row {i}: steps");
            for k in 0..times.len() {
                let batch = &ys[(k * rows + i) * 2..(k * rows + i) * 2 + 2];
                for (a, b) in batch.iter().zip(&yi[2 * k..2 * k + 2]) {
                    worst = worst.max((a - b).abs() / b.abs().max(1.0));
                }
            }
            for (a, b) in g[2 * i..2 * i + 2].iter().zip(&gi[..2]) {
                worst = worst.max((a - b).abs() / b.abs().max(1.0));
            }
            for (p, q) in params.iter_mut().zip(&gi[2..]) {
                *p += q;
            }
        }
        let err = rel_err(&g[2 * rows..], &params);
        println!("{method}: outputs and x0 rows within {worst:.1e}, parameters {err:.1e}");
        assert!(
            worst <= 1e-13,
            "{method}: a row differs from its solve alone by {worst:e}"
        );
        assert!(
            err <= 1e-13,
            "{method}: parameter gradients differ by {err:e}"
        );
    }
}

/// A padded output equals the row's last one, and its cotangent counts.
#[test]
fn padded_outputs_repeat_the_last() {
    let dev = Cpu::seed_from_u64(4);
    let model = Dopri5::<f64, Cpu>::create(&dev);
    let times = ragged();
    let rows = times.rows();
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(rows, Const));
    let w: Tensor<Stacked, f64, Cpu> = dev.sample_normal_like(&(times.len(), rows, Const));
    let (g, ys, _) = gradient(&model, &x0, &w, &times, &opts());
    for i in 0..rows {
        let n = times.observed(i);
        for k in n..times.len() {
            let at = |k: usize| &ys[(k * rows + i) * 2..(k * rows + i) * 2 + 2];
            assert_eq!(at(k), at(n - 1), "row {i}, output {k}");
        }
    }
    // The padded cotangents add to the last output's: moving a padded weight onto it changes
    // nothing.
    let mut wv = w.as_vec();
    let k_last = times.observed(1) - 1;
    for k in times.observed(1)..times.len() {
        for d in 0..2 {
            wv[(k_last * rows + 1) * 2 + d] += wv[(k * rows + 1) * 2 + d];
            wv[(k * rows + 1) * 2 + d] = 0.0;
        }
    }
    let moved = dev.tensor_from_vec(wv, *w.shape());
    let (g2, _, _) = gradient(&model, &x0, &moved, &times, &opts());
    assert!(rel_err(&g2, &g) <= 1e-13);
}

/// `solve` with shared times and per-sample steps is `solve_per_sample` with the times
/// repeated; with every row alike, each row takes the steps the shared solve takes.
#[test]
fn shared_times_with_per_sample_steps() {
    let dev = Cpu::seed_from_u64(6);
    let model = Dopri5::<f64, Cpu>::create(&dev);
    let times = [0.0, 0.5, 1.5];
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(4, Const));
    let a = solve(&model, x0.clone(), &times, &opts()).unwrap();
    let shared = SampleTimes::shared(4, &times).unwrap();
    let b = solve_per_sample(&model, x0.clone(), &shared, &opts()).unwrap();
    assert_eq!(a.ys.as_vec(), b.ys.as_vec());
    // Identical rows: per-sample steps are the shared steps.
    let row = x0.as_vec()[..2].to_vec();
    let same = dev.tensor_from_vec(row.repeat(4), (4, Const));
    let per = solve(&model, same.clone(), &times, &opts()).unwrap();
    let one = solve(&model, same, &times, &SolveOptions::adaptive(1e-7, 1e-7)).unwrap();
    let samples = per.samples.unwrap();
    for s in &samples.stats {
        assert_eq!(s.accepted, one.stats.accepted);
        assert_eq!(s.rejected, one.stats.rejected);
    }
    assert_eq!(samples.rounds, one.stats.accepted);
    let (p, q) = (per.ys.as_vec(), one.ys.as_vec());
    assert!(max_rel(&p, &q) <= 1e-14, "{}", max_rel(&p, &q));
}

/// An autonomous field that takes one time.
#[neural_ode::neural_ode(solver = "dopri5")]
#[derive(Clone, Debug)]
struct Autonomous {
    l1: neural_ode::dfdx::nn::modules::Linear<2, 6, f64, Cpu>,
    l2: neural_ode::dfdx::nn::modules::Linear<6, 2, f64, Cpu>,
    #[neural_ode(skip)]
    reads_time: bool,
}

impl VectorField<State, f64, Cpu> for Autonomous {
    fn eval<T: Tape<f64, Cpu>>(
        &self,
        t: f64,
        x: Tensor<State, f64, Cpu, T>,
    ) -> Tensor<State, f64, Cpu, T> {
        let y = self.l2.forward(self.l1.forward(x).tanh());
        if self.reads_time {
            y * (1.0 + t)
        } else {
            y
        }
    }
}

#[test]
fn a_field_with_one_time_must_not_read_it() {
    let dev = Cpu::seed_from_u64(8);
    let mut model = Autonomous {
        l1: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<2, 6>, f64>(),
        l2: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<6, 2>, f64>(),
        reads_time: false,
    };
    let times = ragged();
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(times.rows(), Const));
    let sol = solve_per_sample(&model, x0.clone(), &times, &opts()).unwrap();
    assert!(sol.ys.as_vec().iter().all(|v| v.is_finite()));
    model.reads_time = true;
    let err = solve_per_sample(&model, x0, &times, &opts()).unwrap_err();
    assert!(matches!(err, Error::ScalarTimeField { .. }), "{err}");
    assert!(err.to_string().contains("eval_rows"), "{err}");
}

#[test]
fn what_does_not_combine_is_refused() {
    let dev = Cpu::seed_from_u64(2);
    let model = Dopri5::<f64, Cpu>::create(&dev);
    let times = ragged();
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(times.rows(), Const));
    let refused = |o: SolveOptions| {
        let e = solve_per_sample(&model, x0.clone(), &times, &o).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidOption {
                    name: "per_sample_steps",
                    ..
                }
            ),
            "{e}"
        );
    };
    refused(SolveOptions::adaptive(1e-6, 1e-6));
    refused(opts().with_grad(GradMethod::Reversible));
    refused(SolveOptions::fixed_steps(4).per_sample_steps());
    let few: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(2, Const));
    let e = solve_per_sample(&model, few, &times, &opts()).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { .. }), "{e}");
    // A row that fails says which.
    let e = solve_per_sample(&model, x0, &times, &opts().with_max_steps(3)).unwrap_err();
    assert!(matches!(e, Error::InSample { .. }), "{e}");
}

/// Shared steps with output times per row: the steps and the outputs of `solve` over the union
/// of the rows' times (interpolated there).
#[test]
fn shared_steps_with_times_per_row() {
    let dev = Cpu::seed_from_u64(12);
    let model = Dopri5::<f64, Cpu>::create(&dev);
    let times = common_start();
    let rows = times.rows();
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(rows, Const));
    let o = SolveOptions::adaptive(1e-7, 1e-7);
    let per_row = solve_per_sample(&model, x0.clone(), &times, &o).unwrap();
    let mut union: Vec<f64> = (0..rows).flat_map(|i| times.row(i).to_vec()).collect();
    union.sort_by(f64::total_cmp);
    union.dedup();
    let all = solve(&model, x0, &union, &o).unwrap();
    let samples = per_row.samples.unwrap();
    assert_eq!(samples.stats[0].accepted, all.stats.accepted);
    assert_eq!(samples.stats[0].rejected, all.stats.rejected);
    let (a, b) = (per_row.ys.as_vec(), all.ys.as_vec());
    let mut worst: f64 = 0.0;
    for i in 0..rows {
        for (k, t) in times.row(i).iter().enumerate() {
            let u = union.iter().position(|s| s == t).unwrap();
            for d in 0..2 {
                let (p, q) = (a[(k * rows + i) * 2 + d], b[(u * rows + i) * 2 + d]);
                worst = worst.max((p - q).abs() / q.abs().max(1.0));
            }
        }
    }
    println!("shared steps, outputs per row against solve over the union: {worst:.1e}");
    assert!(worst <= 1e-14, "{worst:e}");
}

/// Dense observations: interpolating inside each row's steps takes fewer steps than landing
/// on every time.
#[test]
fn interpolation_takes_fewer_steps_than_landing() {
    let dev = Cpu::seed_from_u64(13);
    let model = Dopri5::<f64, Cpu>::create(&dev);
    let rows: Vec<Vec<f64>> = (0..3)
        .map(|i| (0..60).map(|k| 0.1 * i as f64 + 0.05 * k as f64).collect())
        .collect();
    let times = SampleTimes::ragged(&rows).unwrap();
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(3, Const));
    let steps = |o: &SolveOptions| {
        let s = solve_per_sample(&model, x0.clone(), &times, o).unwrap();
        s.samples.unwrap().max_accepted()
    };
    let (inside, landing) = (steps(&opts()), steps(&opts().land_on_outputs()));
    assert!(inside * 3 < landing, "{inside} vs {landing}");
}

/// f32: per-sample steps and interpolated outputs, symplectic against backprop.
#[test]
fn f32_matches_backprop() {
    let dev = Cpu::seed_from_u64(14);
    let model = Tsit5::<f32, Cpu> {
        l1: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<2, 6>, f32>(),
        l2: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<6, 2>, f32>(),
    };
    let rows: Vec<Vec<f32>> = vec![
        vec![0.0, 0.4, 1.0, 2.0],
        vec![0.5, 0.6],
        vec![1.0, -1.0, -1.5],
    ];
    let times = SampleTimes::ragged(&rows).unwrap();
    let x0: Tensor<State, f32, Cpu> = dev.sample_normal_like(&(3, Const));
    let w: Tensor<Stacked, f32, Cpu> = dev.sample_normal_like(&(times.len(), 3, Const));
    let grad = |method| {
        let o = SolveOptions::adaptive(1e-5, 1e-5)
            .per_sample_steps()
            .with_grad(method);
        let sol = solve_per_sample(&model, x0.leaky_trace(), &times, &o).unwrap();
        let g = (sol.ys * w.clone()).sum::<Rank0, _>().backward();
        let mut v = g.get(&x0).as_vec();
        v.extend(g.get(&model.l1.weight).as_vec());
        v.into_iter().map(f64::from).collect::<Vec<_>>()
    };
    let err = rel_err(&grad(GradMethod::Symplectic), &grad(GradMethod::Backprop));
    assert!(err <= 1e-5, "{err:e}");
}

/// The continuous adjoint with each row on its own clock: each row's share is the continuous
/// adjoint of that row solved alone (`solve`, shared steps, one row), and it approaches the
/// exact gradient as the tolerance tightens.
#[test]
fn continuous_adjoint_per_row() {
    let dev = Cpu::seed_from_u64(15);
    let model = Dopri5::<f64, Cpu>::create(&dev);
    let rows = [
        vec![0.0, 0.5, 1.0],
        vec![0.3, 0.9, 2.0],
        vec![1.0, 0.2, -0.5],
    ];
    let times = SampleTimes::ragged(&rows).unwrap();
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(3, Const));
    let w: Tensor<Stacked, f64, Cpu> = dev.sample_normal_like(&(3, 3, Const));
    let o = SolveOptions::adaptive(1e-8, 1e-8).per_sample_steps();
    let (g, _, _) = gradient(
        &model,
        &x0,
        &w,
        &times,
        &o.clone().with_grad(GradMethod::Adjoint),
    );
    let (xs, ws) = (x0.as_vec(), w.as_vec());
    let mut params = vec![0.0; N_PARAMS];
    let mut worst: f64 = 0.0;
    for (i, row) in rows.iter().enumerate() {
        let xi = dev.tensor_from_vec(xs[2 * i..2 * i + 2].to_vec(), (1, Const));
        let wi: Vec<f64> = (0..3)
            .flat_map(|k| ws[(k * 3 + i) * 2..(k * 3 + i) * 2 + 2].to_vec())
            .collect();
        let wi = dev.tensor_from_vec(wi, (3, 1, Const));
        let alone = SolveOptions::adaptive(1e-8, 1e-8).with_grad(GradMethod::Adjoint);
        let gi = common::gradient(&model, &xi, &wi, row, &alone);
        for (a, b) in g[2 * i..2 * i + 2].iter().zip(&gi[..2]) {
            worst = worst.max((a - b).abs() / b.abs().max(1.0));
        }
        for (p, q) in params.iter_mut().zip(&gi[2..]) {
            *p += q;
        }
    }
    let err = rel_err(&g[6..], &params);
    println!("adjoint per row against each row alone: x0 {worst:.1e}, parameters {err:.1e}");
    assert!(worst <= 1e-12 && err <= 1e-12, "{worst:e} {err:e}");
    // Against the exact gradient of the discrete solve.
    let (exact, _, _) = gradient(
        &model,
        &x0,
        &w,
        &times,
        &o.with_grad(GradMethod::Symplectic),
    );
    let gap = rel_err(&g, &exact);
    println!("adjoint per row against symplectic at rtol 1e-8: {gap:.1e}");
    assert!(gap <= 1e-5, "{gap:e}");
}
