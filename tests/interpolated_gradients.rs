//! Gradients through outputs between step boundaries (the default: steps are chosen over the
//! whole span and outputs are interpolated): 200 output times inside [0, 10], `symplectic` and
//! `checkpoint` against `backprop` through the same interpolated solve (dfdx's autodiff of the
//! interpolant evaluated from the tableau's constants), and against central finite differences
//! of the solve; `adjoint` (approximate) converging to the exact gradient with the tolerance.
#![deny(warnings)]

mod common;

use common::*;
use neural_ode::dfdx::nn::tensor_collection::TensorCollection;
use neural_ode::dfdx::prelude::*;
use neural_ode::{
    solve, CheckpointPolicy, GradMethod, NeuralOde, RungeKutta, SolveOptions, VectorField,
};

fn times() -> Vec<f64> {
    // 200 output times inside (0, 10), irregular, plus both ends.
    let mut t: Vec<f64> = (0..200)
        .map(|i| 10.0 * (i as f64 + 0.5 + 0.3 * (i as f64 * 1.7).sin()) / 200.0)
        .collect();
    t.insert(0, 0.0);
    t.push(10.0);
    t
}

/// A model, an initial state, the output times and the loss weights, from `seed`.
struct Problem<M> {
    model: M,
    x0: Tensor<State, f64, Cpu>,
    times: Vec<f64>,
    w: Tensor<Stacked, f64, Cpu>,
}

fn problem<M: Build>(seed: u64) -> Problem<M> {
    let dev = Cpu::seed_from_u64(seed);
    let model = M::create(&dev);
    let x0 = dev.sample_normal_like(&(2, Const));
    let times = times();
    let w = dev.sample_normal_like(&(times.len(), 2, Const));
    Problem {
        model,
        x0,
        times,
        w,
    }
}

/// The gradient and the number of accepted steps.
fn gradient_steps<M>(
    model: &M,
    x0: &Tensor<State, f64, Cpu>,
    w: &Tensor<Stacked, f64, Cpu>,
    times: &[f64],
    opts: &SolveOptions,
) -> (Vec<f64>, usize)
where
    M: NeuralOde + VectorField<State, f64, Cpu> + TensorCollection<f64, Cpu> + Build,
{
    let (g, forward, _) = gradient_and_stats(model, x0, w, times, opts);
    (g, forward.accepted)
}

fn check<M>(opts: SolveOptions)
where
    M: NeuralOde + VectorField<State, f64, Cpu> + TensorCollection<f64, Cpu> + Build,
{
    let name = <M::Solver as RungeKutta>::NAME;
    let Problem {
        model,
        x0,
        times,
        w,
    } = problem::<M>(21);
    let (reference, steps) = gradient_steps(
        &model,
        &x0,
        &w,
        &times,
        &opts.clone().with_grad(GradMethod::Backprop),
    );
    // The outputs really are inside steps: far fewer steps than outputs.
    assert!(steps < 100, "{name}: {steps} steps for 202 outputs");
    for method in [GradMethod::Symplectic, GradMethod::Aca] {
        let (g, _) = gradient_steps(&model, &x0, &w, &times, &opts.clone().with_grad(method));
        let err = rel_err(&g, &reference);
        println!("{name} {method}: {steps} steps, rel err vs backprop {err:.2e}");
        assert!(err <= 1e-12, "{name} {method}: {err:e} against backprop");
    }
    // Central differences of the solve for x0 and a few parameters (fixed steps only: an
    // adaptive step sequence may change under the perturbation).
    if !matches!(opts.stepping, neural_ode::Stepping::Adaptive { .. }) {
        let (g, _) = gradient_steps(
            &model,
            &x0,
            &w,
            &times,
            &opts.clone().with_grad(GradMethod::Symplectic),
        );
        // x0's entries, then every fifth parameter.
        let params = (0..N_PARAMS).step_by(5);
        let fd = central_differences(&model, &x0, params.clone(), 1e-6, |m, x| {
            loss_value(m, x, &w, &times, &opts)
        });
        let n_x = x0.as_vec().len();
        let ours: Vec<f64> = (0..n_x)
            .chain(params.map(|i| n_x + i))
            .map(|i| g[i])
            .collect();
        let err = rel_err(&ours, &fd);
        println!("{name}: rel err vs finite differences {err:.2e}");
        assert!(err < 1e-7, "{name}: {err:e} against finite differences");
    }
}

#[test]
fn dopri5_interpolated_outputs() {
    check::<Dopri5<f64, Cpu>>(SolveOptions::adaptive(1e-6, 1e-8));
    check::<Dopri5<f64, Cpu>>(SolveOptions::fixed_steps(40));
}

#[test]
fn tsit5_interpolated_outputs() {
    check::<Tsit5<f64, Cpu>>(SolveOptions::adaptive(1e-6, 1e-8));
    check::<Tsit5<f64, Cpu>>(SolveOptions::fixed_steps(40));
}

#[test]
fn bosh3_interpolated_outputs() {
    check::<Bosh3<f64, Cpu>>(SolveOptions::adaptive(1e-5, 1e-7));
    check::<Bosh3<f64, Cpu>>(SolveOptions::fixed_steps(60));
}

#[test]
fn rk4_hermite_interpolated_outputs() {
    // rk4 has no [dense] section: cubic Hermite with one extra evaluation per step.
    check::<Rk4<f64, Cpu>>(SolveOptions::fixed_steps(50));
}

#[test]
fn dopri8_extra_stage_interpolated_outputs() {
    // dopri8's [dense] section weighs the extra stage f(t + h, y) too (not FSAL).
    check::<Dopri8<f64, Cpu>>(SolveOptions::fixed_steps(20));
    check::<Dopri8<f64, Cpu>>(SolveOptions::adaptive(1e-7, 1e-9));
}

/// The stage store (`CheckpointPolicy::AllStages`) serves steps with outputs inside too: the
/// stored stage states and the step's result replace the rebuild (no evaluations but the
/// products, and the same products), and the gradient is backprop's.
fn check_stage_store<M>(opts: SolveOptions)
where
    M: NeuralOde + VectorField<State, f64, Cpu> + TensorCollection<f64, Cpu> + Build,
{
    let name = <M::Solver as RungeKutta>::NAME;
    let Problem {
        model,
        x0,
        times,
        w,
    } = problem::<M>(33);
    let (reference, _) = gradient_steps(
        &model,
        &x0,
        &w,
        &times,
        &opts.clone().with_grad(GradMethod::Backprop),
    );
    let run = |policy| {
        let opts = opts
            .clone()
            .with_grad(GradMethod::Symplectic)
            .with_checkpoints(policy);
        let sol = solve(&model, x0.leaky_trace(), &times, &opts).unwrap();
        let steps = sol.stats.accepted;
        let g = (sol.ys * w.clone()).sum::<Rank0, _>().backward();
        let report = sol.report.stats().unwrap();
        let mut out = g.get(&x0).as_vec();
        out.extend(model.grads(&g));
        (out, steps, report)
    };
    let (g_all, steps, r_all) = run(CheckpointPolicy::All);
    let (g_st, _, r_st) = run(CheckpointPolicy::AllStages);
    assert!(steps < 100, "{name}: {steps} steps for 202 outputs");
    assert!(r_all.nfe_rebuild > 0, "{name}: the default rebuilds");
    assert_eq!(r_st.nfe_rebuild, 0, "{name}: nothing is rebuilt");
    assert_eq!(r_st.nfe_vjp, r_all.nfe_vjp, "{name}: the same products");
    let err_all = rel_err(&g_st, &g_all);
    let err_ref = rel_err(&g_st, &reference);
    println!(
        "{name}: stage store, {steps} steps: rebuild {} -> 0; rel err vs All {err_all:.1e}, vs backprop {err_ref:.1e}",
        r_all.nfe_rebuild
    );
    assert!(err_all <= 1e-14, "{name}: {err_all:e} against All");
    assert!(err_ref <= 1e-12, "{name}: {err_ref:e} against backprop");
}

#[test]
fn stage_store_serves_steps_with_outputs_inside() {
    // [dense] sections (dopri5, tsit5, bosh3: the FSAL stage is the step's result; dopri8: the
    // extra stage f(t + h, y)) and the Hermite fallback, FSAL (dopri5 with Shampine's b̂) or
    // not (fehlberg2, rk4: the extra stage).
    check_stage_store::<Dopri5<f64, Cpu>>(SolveOptions::adaptive(1e-6, 1e-8));
    check_stage_store::<Tsit5<f64, Cpu>>(SolveOptions::fixed_steps(40));
    check_stage_store::<Bosh3<f64, Cpu>>(SolveOptions::adaptive(1e-5, 1e-7));
    check_stage_store::<Fehlberg2<f64, Cpu>>(SolveOptions::fixed_steps(60));
    check_stage_store::<Rk4<f64, Cpu>>(SolveOptions::fixed_steps(50));
    check_stage_store::<Dopri8<f64, Cpu>>(SolveOptions::fixed_steps(20));
    check_stage_store::<Dopri5Shampine<f64, Cpu>>(SolveOptions::adaptive(1e-6, 1e-8));
}

#[test]
fn adjoint_with_interpolated_outputs_converges() {
    // `adjoint` keeps working with outputs inside steps: it integrates the adjoint ODE backwards
    // from the interpolated states (approximate), and its gradient converges with the tolerance
    // to the exact gradient of a tight solve (symplectic through the same interpolated outputs).
    let Problem {
        model,
        x0,
        times,
        w,
    } = problem::<Dopri5<f64, Cpu>>(47);
    let (exact, _) = gradient_steps(
        &model,
        &x0,
        &w,
        &times,
        &SolveOptions::adaptive(1e-12, 1e-12).with_grad(GradMethod::Symplectic),
    );
    let mut errors = Vec::new();
    for tol in [1e-4, 1e-6, 1e-8, 1e-10] {
        let opts = SolveOptions::adaptive(tol, tol).with_grad(GradMethod::Adjoint);
        let (g, steps) = gradient_steps(&model, &x0, &w, &times, &opts);
        assert!(steps < 150, "tol {tol:e}: {steps} steps for 202 outputs");
        errors.push(rel_err(&g, &exact));
    }
    println!("adjoint, 202 interpolated outputs, tol 1e-4..1e-10: rel err {errors:?}");
    assert_converges(&errors, 1e-7, 1e-10);
}
