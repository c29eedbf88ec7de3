//! A tableau file from the test tree (not `macros/tableaux/`) works end to end: it compiles, converges
//! at its order, and its symplectic adjoint matches backprop. So does one whose `[dense]` section
//! reads a stage the step does not need (the stage store cannot serve a step with outputs).
#![deny(warnings)]

use neural_ode::dfdx::nn::modules::Linear;
use neural_ode::dfdx::prelude::*;
use neural_ode::{
    neural_ode, solve, CheckpointPolicy, GradMethod, NeuralOde, RungeKutta, SolveOptions,
    VectorField,
};

type State = (usize, Const<2>);

/// A small MLP field, one model type per tableau file.
macro_rules! field {
    ($name:ident, $file:literal) => {
        #[neural_ode(tableau = $file, grad = "symplectic")]
        #[derive(Clone, Debug)]
        struct $name {
            l1: Linear<2, 5, f64, Cpu>,
            l2: Linear<5, 2, f64, Cpu>,
        }

        impl VectorField<State, f64, Cpu> for $name {
            fn eval<T: Tape<f64, Cpu>>(
                &self,
                t: f64,
                x: Tensor<State, f64, Cpu, T>,
            ) -> Tensor<State, f64, Cpu, T> {
                self.l2.forward(self.l1.forward(x).tanh()) * (1.0 + t)
            }
        }
    };
}

field!(Field, "tests/data/kutta3.toml");
field!(DeadStage, "tests/data/dead_stage.toml");

#[neural_ode(tableau = "tests/data/kutta3.toml")]
#[derive(Clone, Debug, Default)]
struct Growth;

impl VectorField<(usize,), f64, Cpu> for Growth {
    fn eval<T: Tape<f64, Cpu>>(
        &self,
        t: f64,
        x: Tensor<(usize,), f64, Cpu, T>,
    ) -> Tensor<(usize,), f64, Cpu, T> {
        x * (2.0 * t)
    }
}

#[test]
fn constants_come_from_the_file() {
    type R = <Field as neural_ode::NeuralOde>::Solver;
    assert_eq!(R::NAME, "kutta3");
    assert_eq!(R::STAGES, 3);
    assert_eq!(R::ORDER, 3);
    assert_eq!(R::EMBEDDED_ORDER, None);
    assert_eq!(R::A[2], &[-1.0, 2.0]);
}

#[test]
fn converges_at_order_three() {
    let dev = Cpu::default();
    let x0 = dev.tensor_from_vec(vec![1.0], (1,));
    let err = |n: usize| {
        let sol = solve(
            &Growth,
            x0.clone(),
            &[0.0, 1.0],
            &SolveOptions::fixed_steps(n),
        )
        .unwrap();
        (sol.ys.as_vec()[1] - 1f64.exp()).abs()
    };
    let observed = (err(64) / err(128)).log2();
    assert!((observed - 3.0).abs() < 0.1, "observed order {observed}");
}

#[test]
fn symplectic_matches_backprop() {
    let dev = Cpu::seed_from_u64(2);
    let field = Field {
        l1: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<2, 5>, f64>(),
        l2: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<5, 2>, f64>(),
    };
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(4, Const));
    let w: Tensor<(usize, usize, Const<2>), f64, Cpu> = dev.sample_normal_like(&(3, 4, Const));
    let grad = |m: GradMethod| {
        let sol = solve(
            &field,
            x0.leaky_trace(),
            &[0.0, 0.4, 1.0],
            &SolveOptions::fixed_steps(10).with_grad(m),
        )
        .unwrap();
        let g = (sol.ys * w.clone()).sum::<Rank0, _>().backward();
        sol.report.stats().unwrap();
        let mut v = g.get(&x0).as_vec();
        v.extend(g.get(&field.l1.weight).as_vec());
        v.extend(g.get(&field.l2.bias).as_vec());
        v
    };
    let (a, b) = (grad(GradMethod::Symplectic), grad(GradMethod::Backprop));
    let err = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
        / b.iter().fold(0.0f64, |m, y| m.max(y.abs()));
    assert!(err < 1e-12, "{err:e}");
}

#[test]
fn a_stage_only_the_interpolant_reads_is_rebuilt_for_steps_with_outputs() {
    type R = <DeadStage as NeuralOde>::Solver;
    // Stage 2 is live only with outputs, so the store keeps no stage; the interpolant reads it.
    assert_eq!(R::KEPT_STAGES, &[] as &[usize]);
    assert_eq!((R::INTERPOLANT_STAGES, R::HERMITE), (2, false));
    let dev = Cpu::seed_from_u64(5);
    let field = DeadStage {
        l1: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<2, 5>, f64>(),
        l2: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<5, 2>, f64>(),
    };
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(4, Const));
    let w: Tensor<(usize, usize, Const<2>), f64, Cpu> = dev.sample_normal_like(&(3, 4, Const));
    let grad = |m: GradMethod, p: CheckpointPolicy| {
        // 0.37 lies inside the fourth of ten steps: interpolated.
        let opts = SolveOptions::fixed_steps(10)
            .with_grad(m)
            .with_checkpoints(p);
        let sol = solve(&field, x0.leaky_trace(), &[0.0, 0.37, 1.0], &opts).unwrap();
        let g = (sol.ys * w.clone()).sum::<Rank0, _>().backward();
        let report = sol.report.get().unwrap().unwrap();
        let mut v = g.get(&x0).as_vec();
        v.extend(g.get(&field.l1.weight).as_vec());
        v.extend(g.get(&field.l2.bias).as_vec());
        (v, report.nfe_vjp, report.nfe_rebuild)
    };
    let (want, ..) = grad(GradMethod::Backprop, CheckpointPolicy::All);
    let scale = want.iter().fold(0.0f64, |m, y| m.max(y.abs()));
    for policy in [CheckpointPolicy::All, CheckpointPolicy::AllStages] {
        let (got, vjp, rebuild) = grad(GradMethod::Symplectic, policy);
        let err = got
            .iter()
            .zip(&want)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
            / scale;
        assert!(err < 1e-12, "{policy:?}: {err:e}");
        // One product per step, one more for stage 2 in the step with the output inside, and
        // one evaluation (k1, to rebuild stage 2) for that step only, with or without the store.
        assert_eq!((vjp, rebuild), (11, 1), "{policy:?}");
    }
}
