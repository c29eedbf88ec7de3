//! Bad input and failures: a clear error, and nothing the caller had is lost.
#![deny(warnings)]

use neural_ode::dfdx::nn::modules::Linear;
use neural_ode::dfdx::prelude::*;
use neural_ode::{
    neural_ode, solve, solve_returning_input, solve_with, Error, GradMethod, PiController,
    SolveOptions, VectorField,
};

type State = (usize, Const<2>);

#[neural_ode(solver = "dopri5")]
#[derive(Clone, Debug)]
struct Field {
    l1: Linear<2, 2, f64, Cpu>,
}

impl VectorField<State, f64, Cpu> for Field {
    fn eval<T: Tape<f64, Cpu>>(
        &self,
        _t: f64,
        x: Tensor<State, f64, Cpu, T>,
    ) -> Tensor<State, f64, Cpu, T> {
        self.l1.forward(x)
    }
}

#[neural_ode(solver = "dopri5")]
#[derive(Clone, Debug)]
struct Field32 {
    l1: Linear<2, 2, f32, Cpu>,
}

impl VectorField<State, f32, Cpu> for Field32 {
    fn eval<T: Tape<f32, Cpu>>(
        &self,
        _t: f32,
        x: Tensor<State, f32, Cpu, T>,
    ) -> Tensor<State, f32, Cpu, T> {
        self.l1.forward(x)
    }
}

/// `x' = x²`: blows up at `t = 1/x0`.
#[neural_ode(solver = "dopri5")]
#[derive(Clone, Debug, Default)]
struct BlowUp;

impl VectorField<State, f64, Cpu> for BlowUp {
    fn eval<T: Tape<f64, Cpu>>(
        &self,
        _t: f64,
        x: Tensor<State, f64, Cpu, T>,
    ) -> Tensor<State, f64, Cpu, T> {
        x.square()
    }
}

/// Returns a state with one row fewer than it was given.
#[neural_ode(solver = "rk4")]
#[derive(Clone, Debug, Default)]
struct WrongShape;

impl VectorField<State, f64, Cpu> for WrongShape {
    fn eval<T: Tape<f64, Cpu>>(
        &self,
        _t: f64,
        x: Tensor<State, f64, Cpu, T>,
    ) -> Tensor<State, f64, Cpu, T> {
        let n = x.shape().0;
        x.slice((1..n, ..))
    }
}

fn setup() -> (Cpu, Field, Tensor<State, f64, Cpu>) {
    let dev = Cpu::seed_from_u64(0);
    let field = Field {
        l1: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<2, 2>, f64>(),
    };
    let x0 = dev.sample_normal_like(&(3, Const));
    (dev, field, x0)
}

fn error_of(
    field: &Field,
    x0: &Tensor<State, f64, Cpu>,
    times: &[f64],
    opts: &SolveOptions,
) -> Error {
    solve(field, x0.clone(), times, opts).unwrap_err()
}

#[test]
fn bad_times() {
    let (_, field, x0) = setup();
    let opts = SolveOptions::adaptive(1e-6, 1e-6);
    assert_eq!(error_of(&field, &x0, &[], &opts), Error::EmptyTimes);
    assert_eq!(
        error_of(&field, &x0, &[0.0, 1.0, 0.5], &opts),
        Error::TimesNotMonotonic {
            index: 2,
            previous: 1.0,
            value: 0.5
        }
    );
    assert_eq!(
        error_of(&field, &x0, &[0.0, 1.0, 1.0], &opts),
        Error::TimesNotMonotonic {
            index: 2,
            previous: 1.0,
            value: 1.0
        }
    );
    assert_eq!(
        error_of(&field, &x0, &[1.0, 0.0, 0.5], &opts),
        Error::TimesNotMonotonic {
            index: 2,
            previous: 0.0,
            value: 0.5
        }
    );
    assert!(matches!(
        error_of(&field, &x0, &[0.0, f64::NAN], &opts),
        Error::NonFiniteTime { index: 1, .. }
    ));
    assert!(matches!(
        error_of(&field, &x0, &[f64::INFINITY, 1.0], &opts),
        Error::NonFiniteTime { index: 0, .. }
    ));
}

#[test]
fn bad_options() {
    let (_, field, x0) = setup();
    let t = [0.0, 1.0];
    assert_eq!(
        error_of(&field, &x0, &t, &SolveOptions::adaptive(0.0, 0.0)),
        Error::InvalidTolerance {
            name: "rtol and atol",
            value: 0.0
        }
    );
    assert_eq!(
        error_of(&field, &x0, &t, &SolveOptions::adaptive(-1e-6, 1e-6)),
        Error::InvalidTolerance {
            name: "rtol",
            value: -1e-6
        }
    );
    assert_eq!(
        error_of(&field, &x0, &t, &SolveOptions::adaptive(1e-6, -1.0)),
        Error::InvalidTolerance {
            name: "atol",
            value: -1.0
        }
    );
    assert!(matches!(
        error_of(&field, &x0, &t, &SolveOptions::adaptive(f64::NAN, 1e-6)),
        Error::InvalidTolerance { name: "rtol", .. }
    ));
    assert!(matches!(
        error_of(&field, &x0, &t, &SolveOptions::fixed_steps(0)),
        Error::InvalidOption { name: "steps", .. }
    ));
    assert!(matches!(
        error_of(&field, &x0, &t, &SolveOptions::fixed_size(-0.1)),
        Error::InvalidOption {
            name: "step size",
            ..
        }
    ));
    assert!(matches!(
        error_of(
            &field,
            &x0,
            &t,
            &SolveOptions::adaptive(1e-6, 1e-6).with_max_steps(0)
        ),
        Error::InvalidOption {
            name: "max_steps",
            ..
        }
    ));
    // The controller's own parameters are checked by the controller, before solving.
    let opts = SolveOptions::adaptive(1e-6, 1e-6);
    for (controller, name) in [
        (PiController::new(1.5, 0.2, 10.0), "safety"),
        (PiController::new(0.9, 1.2, 10.0), "factor_min"),
        (PiController::new(0.9, 0.2, 0.5), "factor_max"),
    ] {
        let err = solve_with(&field, x0.clone(), &t, &opts, &controller).unwrap_err();
        assert!(
            matches!(err, Error::InvalidOption { name: got, .. } if got == name),
            "{err}"
        );
    }
}

#[test]
fn fixed_step_methods_cannot_take_adaptive_steps() {
    let dev = Cpu::default();
    #[neural_ode(solver = "rk4")]
    #[derive(Clone, Debug, Default)]
    struct Decay;
    impl VectorField<State, f64, Cpu> for Decay {
        fn eval<T: Tape<f64, Cpu>>(
            &self,
            _t: f64,
            x: Tensor<State, f64, Cpu, T>,
        ) -> Tensor<State, f64, Cpu, T> {
            -x
        }
    }
    let x0: Tensor<State, f64, Cpu> = dev.ones_like(&(2, Const));
    let err = solve(&Decay, x0, &[0.0, 1.0], &SolveOptions::adaptive(1e-6, 1e-6)).unwrap_err();
    assert_eq!(err, Error::NotAdaptive { solver: "rk4" });
    assert_eq!(
        err.to_string(),
        "`rk4` has no embedded error estimate, so it cannot take adaptive steps; use fixed steps"
    );
}

#[test]
fn shape_mismatch_is_an_error_not_a_panic() {
    let dev = Cpu::default();
    let x0: Tensor<State, f64, Cpu> = dev.ones_like(&(3, Const));
    let err = solve(&WrongShape, x0, &[0.0, 1.0], &SolveOptions::fixed_steps(4)).unwrap_err();
    assert_eq!(
        err,
        Error::ShapeMismatch {
            expected: "[3, 2]".into(),
            found: "[2, 2]".into()
        }
    );
}

#[test]
fn max_steps_and_underflow() {
    let (_, field, x0) = setup();
    let err = error_of(
        &field,
        &x0,
        &[0.0, 10.0],
        &SolveOptions::adaptive(1e-10, 1e-10).with_max_steps(5),
    );
    assert!(
        matches!(err, Error::MaxStepsReached { max_steps: 5, .. }),
        "{err}"
    );
    // A fixed-step solve knows its step count: refused before solving, not half way.
    let err = error_of(
        &field,
        &x0,
        &[0.0, 10.0],
        &SolveOptions::fixed_size(0.1).with_max_steps(50),
    );
    assert_eq!(
        err,
        Error::TooManySteps {
            steps: 100,
            max_steps: 50
        }
    );
    assert!(err.to_string().contains("with_max_steps"), "{err}");
    let err = error_of(
        &field,
        &x0,
        &[0.0, 10.0],
        &SolveOptions::adaptive(1e-12, 1e-12)
            .with_min_step(0.5)
            .with_first_step(0.6),
    );
    assert!(matches!(err, Error::StepSizeUnderflow { .. }), "{err}");
}

#[test]
fn blow_up_is_reported() {
    let dev = Cpu::default();
    let x0: Tensor<State, f64, Cpu> = dev.ones_like(&(1, Const));
    // Adaptive: the step shrinks towards the singularity at t = 1 until it cannot.
    let err = solve(
        &BlowUp,
        x0.clone(),
        &[0.0, 2.0],
        &SolveOptions::adaptive(1e-6, 1e-6),
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::StepSizeUnderflow { t, .. } | Error::NonFinite { t, .. } if (t - 1.0).abs() < 1e-2),
        "{err}"
    );
    // Fixed steps straight through the singularity overflow.
    let err = solve(&BlowUp, x0, &[0.0, 3.0], &SolveOptions::fixed_steps(3)).unwrap_err();
    assert!(matches!(err, Error::NonFinite { .. }), "{err}");
}

#[test]
fn a_failed_solve_returns_the_input_with_its_tape() {
    let (_, field, x0) = setup();
    let grads = Gradients::leaky();
    let taped = x0.clone().traced(grads);
    let failed = solve_returning_input(
        &field,
        taped,
        &[0.0, f64::NAN],
        &SolveOptions::adaptive(1e-6, 1e-6),
        &PiController::default(),
    )
    .unwrap_err();
    assert!(matches!(
        failed.error,
        Error::NonFiniteTime { index: 1, .. }
    ));
    // The caller can still use the state and its tape.
    let g = failed.input.square().sum::<Rank0, _>().backward();
    let expected: Vec<f64> = x0.as_vec().iter().map(|v| 2.0 * v).collect();
    assert_eq!(g.get(&x0).as_vec(), expected);
}

#[test]
fn a_broadcast_initial_state_is_accepted() {
    let (dev, field, _) = setup();
    let row: Tensor<Rank1<2>, f64, Cpu> = dev.tensor([0.5, -1.0]);
    let x0: Tensor<State, f64, Cpu> = row.broadcast_like(&(3, Const));
    let sol = solve(&field, x0, &[0.0, 1.0], &SolveOptions::adaptive(1e-6, 1e-8)).unwrap();
    let ys = sol.ys.as_vec();
    // Every batch row starts equal, so every row ends equal.
    assert_eq!(&ys[6..8], &ys[8..10]);
    assert_eq!(&ys[6..8], &ys[10..12]);
}

/// `neural_ode::Error` is an ordinary `Send + Sync + 'static` error and `solve` returns it, so
/// `solve(…)?` works as written in functions returning `Error`, `anyhow::Result` or a boxed
/// `Send + Sync` error.
#[test]
fn errors_compose_with_question_marks() {
    fn assert_error<T: std::error::Error + Send + Sync + 'static>() {}
    assert_error::<Error>();

    fn typed(field: &Field, x0: Tensor<State, f64, Cpu>) -> Result<usize, Error> {
        let sol = solve(
            field,
            x0.leaky_trace(),
            &[0.0, f64::NAN],
            &SolveOptions::fixed_steps(2),
        )?;
        Ok(sol.stats.accepted)
    }
    fn boxed(
        field: &Field,
        x0: Tensor<State, f64, Cpu>,
    ) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
        let sol = solve(field, x0.leaky_trace(), &[], &SolveOptions::fixed_steps(2))?;
        Ok(sol.stats.accepted)
    }
    fn with_anyhow(field: &Field, x0: Tensor<State, f64, Cpu>) -> anyhow::Result<usize> {
        let sol = solve(
            field,
            x0.leaky_trace(),
            &[1.0, 1.0],
            &SolveOptions::fixed_steps(2),
        )?;
        Ok(sol.stats.accepted)
    }
    let (_, field, x0) = setup();
    assert!(matches!(
        typed(&field, x0.clone()),
        Err(Error::NonFiniteTime { index: 1, .. })
    ));
    let e = boxed(&field, x0.clone()).unwrap_err();
    assert_eq!(e.downcast_ref::<Error>(), Some(&Error::EmptyTimes));
    let e = with_anyhow(&field, x0).unwrap_err();
    assert!(matches!(
        e.downcast_ref::<Error>(),
        Some(Error::TimesNotMonotonic { index: 1, .. })
    ));
}

/// An empty batch (and any zero-sized state) gives empty outputs with every method and
/// stepping, without evaluating the field. (Its gradient pass cannot be reached from a dfdx
/// loss: dfdx 0.13's reductions divide by zero on empty tensors.)
#[test]
fn an_empty_batch_solves_to_empty_outputs() {
    let (dev, field, _) = setup();
    let empty: Tensor<State, f64, Cpu> = dev.zeros_like(&(0, Const));
    for opts in [
        SolveOptions::adaptive(1e-6, 1e-8),
        SolveOptions::fixed_steps(4),
    ] {
        for method in [
            GradMethod::Symplectic,
            GradMethod::Aca,
            GradMethod::Backprop,
            GradMethod::Adjoint,
        ] {
            let opts = opts.clone().with_grad(method);
            let sol = solve(&field, empty.leaky_trace(), &[0.0, 0.5, 1.0], &opts).unwrap();
            assert_eq!(sol.ys.shape().concrete(), [3, 0, 2]);
            assert_eq!(sol.stats.accepted, 0);
            assert_eq!(sol.stats.nfe, 0);
            assert_eq!(sol.stats.checkpoint_bytes, 0);
        }
        // Without a tape too.
        let sol = solve(&field, empty.clone(), &[0.0, 1.0], &opts).unwrap();
        assert_eq!(sol.ys.shape().concrete(), [2, 0, 2]);
    }
}

/// Checks made before anything is solved, and what is now allowed.
#[test]
fn up_front_checks() {
    let (dev, field, x0) = setup();
    let t = [0.0, 1.0];
    // Not finite initial states: named, with the first bad entry.
    for bad in [f64::NAN, f64::INFINITY] {
        let mut v = x0.as_vec();
        v[3] = bad;
        let x: Tensor<State, f64, Cpu> = dev.tensor_from_vec(v, (3, Const));
        for opts in [
            SolveOptions::adaptive(1e-6, 1e-8),
            SolveOptions::fixed_steps(3),
        ] {
            let err = error_of(&field, &x, &t, &opts);
            assert!(
                matches!(err, Error::NonFiniteInitialState { index: 3, value } if value.is_nan() == bad.is_nan()),
                "{err:?}"
            );
        }
    }
    // Options that do not apply to fixed steps.
    let err = error_of(
        &field,
        &x0,
        &t,
        &SolveOptions::fixed_steps(4).with_first_step(0.1),
    );
    assert!(
        matches!(
            err,
            Error::InvalidOption {
                name: "first_step",
                ..
            }
        ),
        "{err}"
    );
    let err = error_of(
        &field,
        &x0,
        &t,
        &SolveOptions::fixed_size(0.1).with_min_step(1e-3),
    );
    assert!(
        matches!(
            err,
            Error::InvalidOption {
                name: "min_step",
                ..
            }
        ),
        "{err}"
    );
    // A relative tolerance below f32's epsilon cannot be met.
    let x32: Tensor<State, f32, Cpu> = x0.clone().to_dtype::<f32>();
    let field32 = Field32 {
        l1: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<2, 2>, f32>(),
    };
    let t32 = [0.0f32, 1.0];
    let err = solve(
        &field32,
        x32.clone(),
        &t32,
        &SolveOptions::adaptive(1e-10, 1e-6),
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::ToleranceBelowEpsilon { name: "rtol", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("1e-10"), "{err}");
    solve(&field32, x32, &t32, &SolveOptions::adaptive(1e-6, 1e-6)).expect("f32 at 1e-6");
    // Pure relative (atol = 0) and pure absolute (rtol = 0) control.
    for opts in [
        SolveOptions::adaptive(1e-6, 0.0),
        SolveOptions::adaptive(0.0, 1e-6),
    ] {
        let sol = solve(&field, x0.clone(), &t, &opts).expect("one tolerance zero is fine");
        assert!(sol.ys.as_vec().iter().all(|v| v.is_finite()));
    }
    // atol = 0 with an entry that stays exactly zero (no scale: on target only if exact).
    let zeros: Tensor<State, f64, Cpu> = dev.zeros_like(&(3, Const));
    let zero_field = Field {
        l1: Linear {
            weight: dev.zeros(),
            bias: dev.zeros(),
        },
    };
    let sol = solve(&zero_field, zeros, &t, &SolveOptions::adaptive(1e-6, 0.0)).unwrap();
    assert!(sol.stats.accepted >= 1 && sol.stats.rejected == 0);
    // Fixed steps beyond the default max_steps are fine once the limit is raised.
    let sol = solve(
        &field,
        x0.clone(),
        &t,
        &SolveOptions::fixed_steps(150_000).with_max_steps(150_000),
    );
    assert_eq!(sol.unwrap().stats.accepted, 150_000);
}

/// Two output times closer than the smallest step the controller may take are solved exactly:
/// the step that lands on an output time may be as short as the interval.
#[test]
fn output_times_closer_than_the_minimum_step() {
    let (_, field, x0) = setup();
    for gap in [1e-15, 4e-16, f64::EPSILON] {
        let t = [0.0, 1.0, 1.0 + gap, 2.0];
        assert!(t[2] > t[1]);
        for method in [GradMethod::Symplectic, GradMethod::Adjoint] {
            let opts = SolveOptions::adaptive(1e-6, 1e-8).with_grad(method);
            let sol = solve(&field, x0.leaky_trace(), &t, &opts).expect("close times");
            let ys = sol.ys.as_vec();
            assert!(ys.iter().all(|v| v.is_finite()));
            // The states at the two close times agree to rounding.
            for i in 0..6 {
                assert!((ys[6 + i] - ys[12 + i]).abs() <= 1e-12, "{gap}");
            }
            let report = sol.report.clone();
            let g = sol.ys.square().sum::<Rank0, _>().backward();
            report.stats().unwrap();
            assert!(g.get(&x0).as_vec().iter().all(|v| v.is_finite()));
        }
    }
}

/// Small and large numbers print in exponent form.
#[test]
fn messages_print_small_numbers_with_exponents() {
    let e = Error::StepSizeUnderflow {
        t: 0.5,
        h: 8.192000000000006e-16,
    };
    assert_eq!(
        e.to_string(),
        "step size underflow at t = 0.5: h = 8.192000000000006e-16 is below the minimum step size"
    );
    let e = Error::InvalidTolerance {
        name: "rtol",
        value: -0.000001,
    };
    assert!(e.to_string().contains("is -1e-6,"), "{e}");
    let e = Error::MaxStepsReached {
        t: 12345678.0,
        max_steps: 10,
    };
    assert!(e.to_string().contains("t = 1.2345678e7"), "{e}");
}
