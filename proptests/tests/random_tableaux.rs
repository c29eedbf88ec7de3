//! Properties over random explicit tableaux (drawn by `build.rs`, brought through the real
//! `#[neural_ode]` macro) and random weights, states and step sizes:
//! - the generated straight-line step equals the generic loop over the tableau's arrays
//!   (`neural_ode::hooks::reference_step`, independent of the generated code) to a few ulps;
//! - the generated symplectic partner gives the gradient of backprop through the same
//!   discretisation to rounding.
#![deny(warnings)]

use neural_ode::dfdx::nn::builders;
use neural_ode::dfdx::nn::modules::Linear;
use neural_ode::dfdx::nn::tensor_collection::TensorCollection;
use neural_ode::dfdx::prelude::*;
use neural_ode::hooks::{reference_step, Workspace};
use neural_ode::{neural_ode, solve, GradMethod, NeuralOde, RungeKutta, SolveOptions, VectorField};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

type State = (usize, Const<2>);

pub trait Random: NeuralOde + VectorField<State, f64, Cpu> + TensorCollection<f64, Cpu> {
    fn build(dev: &Cpu) -> Self;
    fn params(&self, g: &Gradients<f64, Cpu>) -> Vec<f64>;
}

pub trait Check {
    fn run<M: Random>(&mut self);
}

include!(concat!(env!("OUT_DIR"), "/models.rs"));

/// One random case: weights (by seed), a state, a time and a step.
#[derive(Clone, Debug)]
struct Case {
    seed: u64,
    x: Vec<f64>,
    t: f64,
    h: f64,
}

fn cases() -> impl Strategy<Value = Case> {
    (
        any::<u64>(),
        proptest::collection::vec(-2.0f64..2.0, 6),
        -1.0f64..1.0,
        prop_oneof![-0.7f64..-0.01, 0.01f64..0.7],
    )
        .prop_map(|(seed, x, t, h)| Case { seed, x, t, h })
}

/// Largest difference between the generated and the generic step, in units of
/// ε · (|x| + |h| Σ|b_i| max|k|) (the size of the terms summed), over every random model.
struct StepsAgree {
    case: Case,
    worst: f64,
}

impl Check for StepsAgree {
    fn run<M: Random>(&mut self) {
        let dev = Cpu::seed_from_u64(self.case.seed);
        let model = M::build(&dev);
        let x: Tensor<State, f64, Cpu> = dev.tensor_from_vec(self.case.x.clone(), (3, Const));
        let (t, h) = (self.case.t, self.case.h);
        let mut ws = Workspace::new();
        let generated = <M::Solver as RungeKutta>::step(&model, t, h, &x, None, &mut ws).y;
        let generic = reference_step::<M::Solver, _, _, _, _, _>(&model, t, h, x.clone());
        let k_max = model
            .eval(t, x.clone())
            .as_vec()
            .iter()
            .fold(1.0f64, |m, v| m.max(v.abs()));
        let b_abs: f64 = <M::Solver as RungeKutta>::B.iter().map(|b| b.abs()).sum();
        for ((g, r), x0) in generated
            .as_vec()
            .iter()
            .zip(generic.as_vec())
            .zip(x.as_vec())
        {
            let scale = f64::EPSILON * (x0.abs() + h.abs() * b_abs * 4.0 * k_max);
            self.worst = self.worst.max((g - r).abs() / scale);
        }
    }
}

/// Largest relative difference between the symplectic and the backprop gradient.
struct GradientsAgree {
    case: Case,
    worst: f64,
    adaptive: bool,
}

impl Check for GradientsAgree {
    fn run<M: Random>(&mut self) {
        let dev = Cpu::seed_from_u64(self.case.seed);
        let model = M::build(&dev);
        let x0: Tensor<State, f64, Cpu> = dev.tensor_from_vec(self.case.x.clone(), (3, Const));
        let t0 = self.case.t;
        let times = [t0, t0 + self.case.h, t0 + 2.0 * self.case.h];
        let w: Tensor<(usize, usize, Const<2>), f64, Cpu> =
            dev.sample_normal_like(&(times.len(), 3, Const));
        let adaptive = self.adaptive && <M::Solver as RungeKutta>::EMBEDDED_ORDER.is_some();
        let base = if adaptive {
            SolveOptions::adaptive(1e-6, 1e-8)
        } else {
            SolveOptions::fixed_steps(5)
        };
        let gradient = |method| {
            let opts = base.clone().with_grad(method);
            let sol = solve(&model, x0.leaky_trace(), &times, &opts).expect("solve");
            let report = sol.report.clone();
            let g = (sol.ys * w.clone()).sum::<Rank0, _>().backward();
            report.stats().unwrap();
            let mut v = g.get(&x0).as_vec();
            v.extend(model.params(&g));
            v
        };
        let reference = gradient(GradMethod::Backprop);
        let got = gradient(GradMethod::Symplectic);
        let norm = reference.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
        let err = got
            .iter()
            .zip(&reference)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
            / norm;
        self.worst = self.worst.max(err);
    }
}

proptest! {
    // A fixed seed, so CI is deterministic; `PROPTEST_RNG_SEED` and `PROPTEST_CASES` explore.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(48),
        rng_seed: RngSeed::Fixed(
            std::env::var("PROPTEST_RNG_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20261202),
        ),
        ..ProptestConfig::default()
    })]

    #[test]
    fn generated_step_equals_the_generic_loop(case in cases()) {
        let mut check = StepsAgree { case, worst: 0.0 };
        for_each(&mut check);
        prop_assert!(check.worst <= 2.0, "{} ulps of the terms' size", check.worst);
    }

    #[test]
    fn symplectic_equals_backprop(case in cases(), adaptive in any::<bool>()) {
        let mut check = GradientsAgree { case, worst: 0.0, adaptive };
        for_each(&mut check);
        prop_assert!(check.worst <= 1e-12, "relative error {:e}", check.worst);
    }
}

#[test]
fn the_random_tableaux_cover_several_shapes() {
    struct Shapes(Vec<(usize, u32, bool)>);
    impl Check for Shapes {
        fn run<M: Random>(&mut self) {
            type R<M> = <M as NeuralOde>::Solver;
            self.0.push((
                <R<M> as RungeKutta>::STAGES,
                <R<M> as RungeKutta>::ORDER,
                <R<M> as RungeKutta>::EMBEDDED_ORDER.is_some(),
            ));
        }
    }
    let mut shapes = Shapes(Vec::new());
    for_each(&mut shapes);
    assert_eq!(shapes.0.len(), COUNT);
    let stages: std::collections::BTreeSet<usize> = shapes.0.iter().map(|s| s.0).collect();
    println!("random tableaux (stages, order, embedded): {:?}", shapes.0);
    assert!(stages.len() >= 4, "stage counts {stages:?}");
    assert!(shapes.0.iter().any(|s| s.1 == 2) && shapes.0.iter().any(|s| s.1 == 1));
    assert!(shapes.0.iter().any(|s| s.2), "some with an embedded pair");
}
