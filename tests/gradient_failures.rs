//! A failed gradient pass cannot go unnoticed and loses nothing; non-finite cotangents are not
//! failures and flow on as they do through backprop, the same in every method.
#![deny(warnings)]

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use neural_ode::dfdx::nn::modules::Linear;
use neural_ode::dfdx::prelude::*;
use neural_ode::{
    neural_ode, solve, Error, GradMethod, GradientFailure, SolveOptions, VectorField,
};

type State = (usize, Const<2>);

/// `f(x) = mlp(x) + sqrt(x²)`: the derivative of `sqrt(x²)` is 0/0 at `x = 0`.
#[neural_ode(solver = "dopri5")]
#[derive(Clone, Debug)]
struct Kink {
    l1: Linear<2, 4, f64, Cpu>,
    l2: Linear<4, 2, f64, Cpu>,
}

impl VectorField<State, f64, Cpu> for Kink {
    fn eval<T: Tape<f64, Cpu>>(
        &self,
        _t: f64,
        x: Tensor<State, f64, Cpu, T>,
    ) -> Tensor<State, f64, Cpu, T> {
        let mlp = self.l2.forward(self.l1.forward(x.with_empty_tape()).tanh());
        mlp + x.square().sqrt()
    }
}

/// Finite for its first `budget` evaluations, NaN after: the continuous adjoint's backward
/// integration then cannot proceed (a failure), while the exact methods carry the NaN on.
#[neural_ode(solver = "dopri5")]
#[derive(Clone, Debug)]
struct Breaks {
    l1: Linear<2, 2, f64, Cpu>,
    #[neural_ode(skip)]
    evals: Cell<usize>,
    #[neural_ode(skip)]
    budget: usize,
}

impl VectorField<State, f64, Cpu> for Breaks {
    fn eval<T: Tape<f64, Cpu>>(
        &self,
        _t: f64,
        x: Tensor<State, f64, Cpu, T>,
    ) -> Tensor<State, f64, Cpu, T> {
        self.evals.set(self.evals.get() + 1);
        let y = self.l1.forward(x);
        if self.evals.get() > self.budget {
            y * f64::NAN
        } else {
            y
        }
    }
}

fn kink(dev: &Cpu) -> Kink {
    Kink {
        l1: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<2, 4>, f64>(),
        l2: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<4, 2>, f64>(),
    }
}

fn params(m: &Kink, g: &Gradients<f64, Cpu>) -> Vec<f64> {
    let mut out = g.get(&m.l1.weight).as_vec();
    out.extend(g.get(&m.l1.bias).as_vec());
    out.extend(g.get(&m.l2.weight).as_vec());
    out.extend(g.get(&m.l2.bias).as_vec());
    out
}

#[test]
fn non_finite_cotangents_flow_on_as_through_backprop() {
    let dev = Cpu::seed_from_u64(4);
    let model = kink(&dev);
    // x0 = 0 in one row: the state cotangent is NaN there after the last step back.
    let x0: Tensor<State, f64, Cpu> = dev.tensor_from_vec(vec![0.0, 0.0, 0.5, -0.3], (2, Const));
    let run = |method: GradMethod, base: &SolveOptions| {
        let opts = base.clone().with_grad(method);
        let sol = solve(&model, x0.leaky_trace(), &[0.0, 0.5, 1.0], &opts).unwrap();
        let report = sol.report.clone();
        let g = sol.ys.square().sum::<Rank0, _>().backward();
        let stats = report.stats().unwrap();
        (params(&model, &g), g.get(&x0).as_vec(), stats)
    };
    for base in [
        SolveOptions::fixed_steps(8),
        SolveOptions::adaptive(1e-8, 1e-10),
    ] {
        let (reference, x0_ref, _) = run(GradMethod::Backprop, &base);
        assert!(
            reference.iter().all(|v| v.is_finite()),
            "backprop: finite parameter gradients"
        );
        assert!(
            x0_ref.iter().any(|v| v.is_nan()),
            "backprop: NaN cotangent of x0 = 0"
        );
        for method in [GradMethod::Symplectic, GradMethod::Aca, GradMethod::Adjoint] {
            let (p, x0_bar, stats) = run(method, &base);
            let what = format!("{method} {:?}", base.stepping);
            assert!(
                p.iter().all(|v| v.is_finite()),
                "{what}: parameter gradients kept: {p:?}"
            );
            let err = p
                .iter()
                .zip(&reference)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max)
                / reference.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            // (The continuous adjoint is approximate by nature: 8 fixed steps are coarse.)
            let tol = if method == GradMethod::Adjoint {
                1e-2
            } else {
                1e-12
            };
            assert!(err <= tol, "{what}: {err:e} from backprop");
            if method == GradMethod::Adjoint {
                // It integrates the state back instead of replaying it, so it does not land on
                // x = 0 exactly: its x0 cotangent is an approximation, finite here.
                continue;
            }
            // NaN where backprop has NaN, finite where it is finite.
            for (a, b) in x0_bar.iter().zip(&x0_ref) {
                assert_eq!(a.is_nan(), b.is_nan(), "{what}: {x0_bar:?} vs {x0_ref:?}");
            }
            assert_eq!(stats.non_finite_at, Some(0.0), "{what}: reported where");
        }
    }
}

/// What `backward()` did, the report, and the model.
type Outcome = (
    std::thread::Result<Gradients<f64, Cpu>>,
    Option<Result<neural_ode::BackwardStats, Error>>,
    Breaks,
);

/// The adjoint fails on `Breaks` (its backward integration meets NaN states).
fn failing_adjoint(on_failure: GradientFailure) -> Outcome {
    let dev = Cpu::seed_from_u64(7);
    let model = Breaks {
        l1: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<2, 2>, f64>(),
        evals: Cell::new(0),
        budget: 0,
    };
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(3, Const));
    let opts = SolveOptions::adaptive(1e-6, 1e-8)
        .with_grad(GradMethod::Adjoint)
        .with_gradient_failure(on_failure);
    let mut probe = model.clone();
    probe.budget = usize::MAX;
    // The forward solve's evaluations: the backward pass's are the ones that break.
    let sol = solve(&probe, x0.clone(), &[0.0, 1.0], &opts).unwrap();
    let mut model = model;
    model.budget = sol.stats.nfe;
    let grads = model.alloc_grads();
    let sol = solve(&model, x0.trace(grads), &[0.0, 1.0], &opts).unwrap();
    let report = sol.report.clone();
    let loss = sol.ys.square().sum::<Rank0, _>();
    let result = catch_unwind(AssertUnwindSafe(move || loss.backward()));
    (result, report.get(), model)
}

#[test]
fn a_failed_gradient_pass_panics_in_backward_by_default() {
    let (result, report, _) = failing_adjoint(GradientFailure::Panic);
    let payload = result.expect_err("backward() panics");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("the gradient pass failed"), "{message}");
    let error = report.expect("ran").expect_err("the typed error is kept");
    assert!(message.contains(&error.to_string()), "{message} / {error}");
    assert!(
        matches!(
            error,
            Error::NonFinite { .. } | Error::StepSizeUnderflow { .. }
        ),
        "{error:?}"
    );
}

#[test]
fn a_failed_gradient_pass_can_be_reported_instead() {
    let (result, report, model) = failing_adjoint(GradientFailure::Report);
    let g = result.expect("backward() returns");
    assert!(report.expect("ran").is_err());
    // The caller's gradients are untouched: zero, not NaN, not partial.
    assert!(g.get(&model.l1.weight).as_vec().iter().all(|&v| v == 0.0));
    assert!(g.get(&model.l1.bias).as_vec().iter().all(|&v| v == 0.0));
}
