//! `GradMethod::Reversible` against independent computations: `backprop` through the same
//! reversible discretisation (dfdx's autodiff through a plain loop over the tableau), central
//! differences, and a directional (dot-product) test; its counts, reconstruction error, options
//! and errors.
#![deny(warnings)]

mod common;

use common::*;
use neural_ode::dfdx::nn::tensor_collection::TensorCollection;
use neural_ode::dfdx::prelude::*;
use neural_ode::{solve, Error, GradMethod, NeuralOde, RungeKutta, SolveOptions, VectorField};

fn check_against_backprop<M>()
where
    M: NeuralOde + VectorField<State, f64, Cpu> + TensorCollection<f64, Cpu> + Build,
{
    let dev = Cpu::seed_from_u64(17);
    let model = M::create(&dev);
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(3, Const));
    let adaptive = <M::Solver as RungeKutta>::EMBEDDED_ORDER.is_some();
    let name = <M::Solver as RungeKutta>::NAME;
    for case in cases(adaptive) {
        // A smaller coupling damps the scheme's spurious mode harder going forwards, and so
        // amplifies rounding by 1/λ per step going back: λ = 0.5 only over a few steps.
        let few_steps = !matches!(case.opts.stepping, neural_ode::Stepping::Adaptive { .. });
        for coupling in [0.999, 0.5] {
            if coupling < 0.9 && !few_steps {
                continue;
            }
            let (tolerance, drift_tolerance) = if coupling > 0.9 {
                (1e-12, 1e-10)
            } else {
                (1e-11, 1e-10)
            };
            let w: Tensor<Stacked, f64, Cpu> =
                dev.sample_normal_like(&(case.times.len(), 3, Const));
            let opts = case.opts.clone().with_reversible(coupling);
            let reference = gradient(
                &model,
                &x0,
                &w,
                case.times,
                &opts.clone().with_grad(GradMethod::Backprop),
            );
            let (g, _, stats) = gradient_and_stats(
                &model,
                &x0,
                &w,
                case.times,
                &opts.with_grad(GradMethod::Reversible),
            );
            let err = rel_err(&g, &reference);
            let drift = stats.reconstruction_error.expect("reported");
            println!(
                "{name:>10} λ = {coupling} {:?} {:?}: rel err {err:.2e}, reconstruction {drift:.1e}",
                case.opts.stepping, case.times
            );
            assert!(
                err <= tolerance,
                "{name} λ = {coupling} {:?} {:?}: relative error {err:e}",
                case.opts.stepping,
                case.times
            );
            assert!(
                drift < drift_tolerance,
                "{name}: reconstruction error {drift:e}"
            );
        }
    }
}

/// Every shipped tableau.
mod matches_backprop {
    use super::*;
    crate::every_tableau!(check_against_backprop);
}

/// Central differences of the discrete reversible solve (fixed steps) in every parameter and
/// initial-state entry.
#[test]
fn finite_differences_agree() {
    fn check<M>()
    where
        M: NeuralOde + VectorField<State, f64, Cpu> + TensorCollection<f64, Cpu> + Build,
    {
        let dev = Cpu::seed_from_u64(11);
        let model = M::create(&dev);
        let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(2, Const));
        let times = [0.0, 0.6, 1.3];
        let opts = SolveOptions::fixed_steps(6).with_grad(GradMethod::Reversible);
        let w: Tensor<Stacked, f64, Cpu> = dev.sample_normal_like(&(times.len(), 2, Const));
        let g = gradient(&model, &x0, &w, &times, &opts);
        let fd = central_differences(&model, &x0, 0..N_PARAMS, 1e-6, |m, x| {
            loss_value(m, x, &w, &times, &opts)
        });
        let err = rel_err(&g, &fd);
        println!(
            "{}: finite differences rel err {err:.2e}",
            <M::Solver as RungeKutta>::NAME
        );
        assert!(err < 1e-7, "relative error {err:e}");
    }
    check::<Rk4<f64, Cpu>>();
    check::<Dopri5<f64, Cpu>>();
    check::<Dopri8<f64, Cpu>>();
}

/// The dot-product test of one reversible step's vector–Jacobian product: for random
/// directions `v` of the initial state, `⟨∇L, v⟩` equals the directional derivative of `L`
/// (central differences along `v`).
#[test]
fn one_steps_vjp_passes_the_dot_product_test() {
    let dev = Cpu::seed_from_u64(23);
    let model = Dopri5::<f64, Cpu>::create(&dev);
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(4, Const));
    let times = [0.0, 0.4];
    let opts = SolveOptions::fixed_steps(1)
        .with_grad(GradMethod::Reversible)
        .with_reversible(0.7);
    let w: Tensor<Stacked, f64, Cpu> = dev.sample_normal_like(&(2, 4, Const));
    let g = gradient(&model, &x0, &w, &times, &opts);
    for seed in 0..4 {
        let v: Tensor<State, f64, Cpu> =
            Cpu::seed_from_u64(100 + seed).sample_normal_like(&(4, Const));
        let eps = 1e-6;
        let plus = x0.clone() + v.clone() * eps;
        let minus = x0.clone() - v.clone() * eps;
        let fd = (loss_value(&model, &plus, &w, &times, &opts)
            - loss_value(&model, &minus, &w, &times, &opts))
            / (2.0 * eps);
        let dot: f64 = g.iter().zip(v.as_vec()).map(|(a, b)| a * b).sum();
        println!("direction {seed}: ⟨∇L, v⟩ = {dot:.12}, central difference {fd:.12}");
        assert!(
            (dot - fd).abs() <= 1e-8 * fd.abs().max(1.0),
            "{dot} vs {fd}"
        );
    }
}

/// Per step: the rebuild takes two base steps (every stage evaluated), and the backward sweeps
/// read the stages it recorded: one product per live stage of each, nothing rebuilt twice.
#[test]
fn counts_are_two_base_steps_each_way() {
    let dev = Cpu::seed_from_u64(5);
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(3, Const));
    let times = [0.0, 1.0];
    let w: Tensor<Stacked, f64, Cpu> = dev.sample_normal_like(&(2, 3, Const));
    let opts = SolveOptions::fixed_steps(10).with_grad(GradMethod::Reversible);
    // rk4: 4 stages, all live. dopri5: 7 stages, the FSAL one dead in the sweep.
    let rk4 = Rk4::<f64, Cpu>::create(&dev);
    let sol = solve(&rk4, x0.leaky_trace(), &times, &opts).unwrap();
    assert_eq!(
        sol.stats.nfe,
        1 + 10 * 2 * 4 - 1,
        "first evaluation shared with the first step"
    );
    let (_, _, stats) = gradient_and_stats(&rk4, &x0, &w, &times, &opts);
    assert_eq!(
        (stats.nfe_rebuild, stats.nfe_vjp, stats.steps),
        (80, 80, 10)
    );
    let dopri5 = Dopri5::<f64, Cpu>::create(&dev);
    let (_, _, stats) = gradient_and_stats(&dopri5, &x0, &w, &times, &opts);
    assert_eq!((stats.nfe_rebuild, stats.nfe_vjp), (10 * 2 * 7, 10 * 2 * 6));
}

#[test]
fn the_coupling_is_checked_and_other_methods_refuse_the_scheme() {
    let dev = Cpu::seed_from_u64(2);
    let model = Rk4::<f64, Cpu>::create(&dev);
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(2, Const));
    for coupling in [0.0, -0.5, 1.5, f64::NAN] {
        let opts = SolveOptions::fixed_steps(4).with_reversible(coupling);
        let err = solve(&model, x0.leaky_trace(), &[0.0, 1.0], &opts).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidOption {
                    name: "reversible coupling",
                    ..
                }
            ),
            "{coupling}: {err}"
        );
    }
    for method in [GradMethod::Symplectic, GradMethod::Aca, GradMethod::Adjoint] {
        let opts = SolveOptions::fixed_steps(4)
            .with_reversible(0.9)
            .with_grad(method);
        let err = solve(&model, x0.leaky_trace(), &[0.0, 1.0], &opts).unwrap_err();
        assert!(
            err.to_string()
                .contains("differentiated by `GradMethod::Reversible`"),
            "{method}: {err}"
        );
        // Without a tape there is no gradient to refuse: the scheme just runs.
        solve(&model, x0.clone(), &[0.0, 1.0], &opts).unwrap();
    }
}

/// The outputs are the scheme's `y` at each output time (landed on, in either direction), the
/// same with and without a tape and whatever the method, and close to the tableau's own.
#[test]
fn outputs_are_the_schemes_y_at_every_output_time() {
    let dev = Cpu::seed_from_u64(8);
    let model = Dopri5::<f64, Cpu>::create(&dev);
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(3, Const));
    for times in [&[0.0, 0.3, 0.35, 1.0][..], &[1.0, 0.2, -0.4][..]] {
        let opts = SolveOptions::adaptive(1e-8, 1e-10).with_grad(GradMethod::Reversible);
        let sol = solve(&model, x0.clone(), times, &opts).unwrap();
        let taped = solve(&model, x0.leaky_trace(), times, &opts).unwrap();
        assert_eq!(sol.ys.as_vec(), taped.ys.retaped::<NoneTape>().as_vec());
        let steps = sol.steps.to_vec();
        for t in times {
            assert!(steps.contains(t), "{t} is a step boundary: {steps:?}");
        }
        let plain = solve(
            &model,
            x0.clone(),
            times,
            &SolveOptions::adaptive(1e-8, 1e-10),
        )
        .unwrap()
        .ys
        .as_vec();
        let err = rel_err(&sol.ys.as_vec(), &plain);
        assert!(
            err < 1e-6,
            "the reversible scheme solves the same ODE: {err:e}"
        );
    }
}

/// Going back, each step amplifies rounding by about 1/λ: with λ = 0.5 over 200 steps the
/// rebuilt initial state is meaningless, and the pass says so instead of returning a gradient.
#[test]
fn a_drifting_reconstruction_is_an_error_not_a_gradient() {
    let dev = Cpu::seed_from_u64(4);
    let model = Rk4::<f64, Cpu>::create(&dev);
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(3, Const));
    let opts = SolveOptions::fixed_steps(200)
        .with_grad(GradMethod::Reversible)
        .with_reversible(0.5)
        .with_gradient_failure(neural_ode::GradientFailure::Report);
    let grads = Gradients::leaky();
    let sol = solve(&model, x0.clone().traced(grads), &[0.0, 1.0], &opts).unwrap();
    let mut g = sol.ys.square().sum::<Rank0, _>().backward();
    match sol.report.stats() {
        Err(Error::ReconstructionDrift { drift, limit }) => {
            println!("λ = 0.5, 200 steps: drift {drift:e} > {limit:e}");
            assert!(drift > limit && limit < 1e-7);
        }
        other => panic!("expected a drift error, got {other:?}"),
    }
    // The caller's gradients are untouched: nothing was merged for x0 (a fresh zero gradient).
    g.try_alloc_for(&x0).unwrap();
    assert!(g.get(&x0).as_vec().iter().all(|&v| v == 0.0));
}
