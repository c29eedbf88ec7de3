//! Gradients of every method against an independent computation: `backprop` (dfdx's own
//! autodiff through a plain loop over the tableau's arrays, replaying the same accepted steps)
//! and central finite differences of the discrete solve.
#![deny(warnings)]

mod common;

use common::*;
use neural_ode::dfdx::nn::tensor_collection::TensorCollection;
use neural_ode::dfdx::prelude::*;
use neural_ode::{
    solve, solve_with, CheckpointPolicy, GradMethod, NeuralOde, PiController, RungeKutta,
    SolveOptions, StepSizeController, VectorField,
};

fn check_exact<M>()
where
    M: NeuralOde + VectorField<State, f64, Cpu> + TensorCollection<f64, Cpu> + Build,
{
    let dev = Cpu::seed_from_u64(7);
    let model = M::create(&dev);
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(3, Const));
    let adaptive = <M::Solver as RungeKutta>::EMBEDDED_ORDER.is_some();
    for case in cases(adaptive) {
        let w: Tensor<Stacked, f64, Cpu> = dev.sample_normal_like(&(case.times.len(), 3, Const));
        let reference = gradient(
            &model,
            &x0,
            &w,
            case.times,
            &case.opts.clone().with_grad(GradMethod::Backprop),
        );
        let variants = [
            (GradMethod::Symplectic, CheckpointPolicy::All),
            (GradMethod::Symplectic, CheckpointPolicy::AllStages),
            (GradMethod::Aca, CheckpointPolicy::All),
        ];
        for (method, policy) in variants {
            let g = gradient(
                &model,
                &x0,
                &w,
                case.times,
                &case.opts.clone().with_grad(method).with_checkpoints(policy),
            );
            let err = rel_err(&g, &reference);
            let name = <M::Solver as RungeKutta>::NAME;
            println!(
                "{name:>10} {method:>10} {policy:?} {:?} {:?}: rel err {err:.2e}",
                case.opts.stepping, case.times
            );
            assert!(
                err <= 1e-11,
                "{name} {method} {policy:?} {:?} {:?}: relative error {err:e}",
                case.opts.stepping,
                case.times
            );
        }
    }
}

/// Every shipped tableau.
mod matches_backprop {
    use super::*;
    crate::every_tableau!(check_exact);
}

/// Central differences of the discrete solve (fixed steps, so the step sequence cannot change
/// under the perturbation) against the symplectic adjoint, for every parameter and x0 entry.
fn check_finite_differences<M>()
where
    M: NeuralOde + VectorField<State, f64, Cpu> + TensorCollection<f64, Cpu> + Build,
{
    let dev = Cpu::seed_from_u64(11);
    let model = M::create(&dev);
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(2, Const));
    let times = [0.0, 0.6, 1.3];
    let opts = SolveOptions::fixed_steps(6).with_grad(GradMethod::Symplectic);
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
    assert!(
        err < 1e-7,
        "relative error {err:e} against finite differences"
    );
}

#[test]
fn finite_differences_agree() {
    check_finite_differences::<Euler<f64, Cpu>>();
    check_finite_differences::<Midpoint<f64, Cpu>>();
    check_finite_differences::<Dopri5<f64, Cpu>>();
    check_finite_differences::<Dopri8<f64, Cpu>>();
}

#[test]
fn adjoint_converges_to_the_exact_gradient() {
    let dev = Cpu::seed_from_u64(3);
    let model = Dopri5::<f64, Cpu>::create(&dev);
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(3, Const));
    let times = [0.0, 0.5, 1.5];
    let w: Tensor<Stacked, f64, Cpu> = dev.sample_normal_like(&(times.len(), 3, Const));
    // The exact gradient of the continuous problem, to far below the errors measured here.
    let exact = gradient(
        &model,
        &x0,
        &w,
        &times,
        &SolveOptions::adaptive(1e-12, 1e-12).with_grad(GradMethod::Symplectic),
    );
    let mut errors = Vec::new();
    for tol in [1e-3, 1e-5, 1e-7, 1e-9] {
        let g = gradient(
            &model,
            &x0,
            &w,
            &times,
            &SolveOptions::adaptive(tol, tol).with_grad(GradMethod::Adjoint),
        );
        errors.push(rel_err(&g, &exact));
    }
    println!("adjoint relative errors for tol 1e-3..1e-9: {errors:?}");
    assert_converges(&errors, 1e-6, 1e-9);
}

/// A PI controller that counts its decisions (shared between its copies).
#[derive(Clone, Default)]
struct Counting {
    pi: PiController,
    decisions: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl StepSizeController for Counting {
    fn reset(&mut self, error_order: u32) {
        self.pi.reset(error_order);
    }
    fn decide(&mut self, t: f64, err_norm: f64, h: f64) -> (bool, f64) {
        self.decisions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.pi.decide(t, err_norm, h)
    }
}

/// The continuous adjoint steps back with the caller's controller, not a default one: every
/// step it takes back (accepted or rejected) is one decision of the caller's controller, and a
/// more cautious controller (smaller safety factor and growth cap) takes more steps back.
#[test]
fn the_adjoint_steps_back_with_the_callers_controller() {
    let dev = Cpu::seed_from_u64(5);
    let model = Dopri5::<f64, Cpu>::create(&dev);
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(3, Const));
    let times = [0.0, 0.7, 2.0];
    let opts = SolveOptions::adaptive(1e-6, 1e-8).with_grad(GradMethod::Adjoint);
    let back = |controller: &Counting| {
        let sol = solve_with(&model, x0.leaky_trace(), &times, &opts, controller).unwrap();
        let forward = controller
            .decisions
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(forward, sol.stats.accepted + sol.stats.rejected);
        let _ = sol.ys.sum::<Rank0, _>().backward();
        let stats = sol.report.stats().unwrap();
        let backward = controller
            .decisions
            .load(std::sync::atomic::Ordering::Relaxed)
            - forward;
        assert!(stats.steps > 0);
        assert_eq!(backward, stats.steps + stats.rejected);
        stats.steps
    };
    let default_steps = back(&Counting::default());
    let cautious = Counting {
        pi: PiController::new(0.5, 0.2, 1.05),
        ..Counting::default()
    };
    let cautious_steps = back(&cautious);
    assert!(
        cautious_steps > default_steps,
        "a cautious controller takes more steps back: {cautious_steps} vs {default_steps}"
    );
}

#[test]
fn f32_gradients_are_within_f32_rounding_of_f64() {
    let dev = Cpu::seed_from_u64(5);
    let m64 = Dopri5::<f64, Cpu>::create(&dev);
    let m32 = Dopri5::<f32, Cpu> {
        l1: neural_ode::dfdx::nn::modules::Linear {
            weight: m64.l1.weight.clone().to_dtype(),
            bias: m64.l1.bias.clone().to_dtype(),
        },
        l2: neural_ode::dfdx::nn::modules::Linear {
            weight: m64.l2.weight.clone().to_dtype(),
            bias: m64.l2.bias.clone().to_dtype(),
        },
    };
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(3, Const));
    let times = [0.0, 1.0];
    let w: Tensor<Stacked, f64, Cpu> = dev.sample_normal_like(&(2, 3, Const));
    let opts = SolveOptions::fixed_steps(10).with_grad(GradMethod::Symplectic);
    let g64 = gradient(&m64, &x0, &w, &times, &opts);

    let x32: Tensor<State, f32, Cpu> = x0.clone().to_dtype();
    let sol = solve(&m32, x32.leaky_trace(), &[0.0f32, 1.0], &opts).unwrap();
    let loss = (sol.ys * w.clone().to_dtype::<f32>()).sum::<Rank0, _>();
    let g = loss.backward();
    sol.report.stats().unwrap();
    let mut g32: Vec<f64> = g.get(&x32).as_vec().into_iter().map(f64::from).collect();
    for p in [
        g.get(&m32.l1.weight).as_vec(),
        g.get(&m32.l1.bias).as_vec(),
        g.get(&m32.l2.weight).as_vec(),
        g.get(&m32.l2.bias).as_vec(),
    ] {
        g32.extend(p.into_iter().map(f64::from));
    }
    let err = rel_err(&g32, &g64);
    println!("f32 vs f64 relative difference {err:.2e}");
    assert!(err < 1e-5, "{err:e}");
    assert!(err > 0.0, "f32 really ran in f32");
}

#[test]
fn unused_parameters_get_zero_gradients() {
    // A field that ignores `l2` entirely.
    #[neural_ode::neural_ode(solver = "rk4")]
    #[derive(Clone, Debug)]
    struct Partial {
        l1: neural_ode::dfdx::nn::modules::Linear<2, 2, f64, Cpu>,
        unused: neural_ode::dfdx::nn::modules::Linear<2, 2, f64, Cpu>,
    }
    impl VectorField<State, f64, Cpu> for Partial {
        fn eval<T: Tape<f64, Cpu>>(
            &self,
            _t: f64,
            x: Tensor<State, f64, Cpu, T>,
        ) -> Tensor<State, f64, Cpu, T> {
            self.l1.forward(x)
        }
    }
    let dev = Cpu::seed_from_u64(1);
    let m = Partial {
        l1: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<2, 2>, f64>(),
        unused: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<2, 2>, f64>(),
    };
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(2, Const));
    let grads = m.alloc_grads();
    let sol = solve(
        &m,
        x0.trace(grads),
        &[0.0, 1.0],
        &SolveOptions::fixed_steps(4),
    )
    .unwrap();
    let g = sol.ys.square().sum::<Rank0, _>().backward();
    sol.report.stats().unwrap();
    assert!(g.get(&m.unused.weight).as_vec().iter().all(|&v| v == 0.0));
    assert!(g.get(&m.l1.weight).as_vec().iter().any(|&v| v != 0.0));
}

#[test]
fn sparser_checkpoints_give_the_same_gradient_with_fewer_bytes() {
    let dev = Cpu::seed_from_u64(9);
    let model = Dopri5::<f64, Cpu>::create(&dev);
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(3, Const));
    let times = [0.0, 0.7, 1.6];
    let w: Tensor<Stacked, f64, Cpu> = dev.sample_normal_like(&(times.len(), 3, Const));
    for base in [
        SolveOptions::fixed_steps(17),
        SolveOptions::adaptive(1e-7, 1e-9),
    ] {
        let all = base.clone().with_grad(GradMethod::Symplectic);
        let sparse = all
            .clone()
            .with_checkpoints(neural_ode::CheckpointPolicy::EveryK(4));
        let reference = gradient(&model, &x0, &w, &times, &all);
        let g = gradient(&model, &x0, &w, &times, &sparse);
        let err = rel_err(&g, &reference);
        assert!(err <= 1e-13, "{err:e}");
        // A taped solve keeps what its gradient reads (an untaped one keeps nothing).
        let bytes = |opts: &SolveOptions| {
            solve(&model, x0.leaky_trace(), &times, opts)
                .unwrap()
                .stats
                .checkpoint_bytes
        };
        let (b_all, b_sparse) = (bytes(&all), bytes(&sparse));
        println!("EveryK(4): rel err {err:.1e}, checkpoint bytes {b_all} -> {b_sparse}");
        assert!(b_sparse * 2 < b_all, "{b_sparse} vs {b_all}");
    }
}

/// The stage store gives the symplectic gradient bit for bit (the stored stage states are the
/// rebuilt ones), with no rebuild evaluations, for the price of the stage states' bytes.
fn check_stage_store<M>()
where
    M: NeuralOde + VectorField<State, f64, Cpu> + TensorCollection<f64, Cpu> + Build,
{
    let dev = Cpu::seed_from_u64(13);
    let model = M::create(&dev);
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(3, Const));
    let times = [0.0, 0.4, 1.1];
    let w: Tensor<Stacked, f64, Cpu> = dev.sample_normal_like(&(times.len(), 3, Const));
    let name = <M::Solver as RungeKutta>::NAME;
    let kept = <M::Solver as RungeKutta>::KEPT_STAGES.len();
    // Outputs interpolated inside steps (the default) and landed on.
    let mut bases = vec![
        SolveOptions::fixed_steps(9),
        SolveOptions::fixed_steps(9).land_on_outputs(),
    ];
    if <M::Solver as RungeKutta>::EMBEDDED_ORDER.is_some() {
        bases.push(SolveOptions::adaptive(1e-7, 1e-9));
        bases.push(SolveOptions::adaptive(1e-7, 1e-9).land_on_outputs());
    }
    for base in bases {
        let run = |policy| {
            let opts = base
                .clone()
                .with_grad(GradMethod::Symplectic)
                .with_checkpoints(policy);
            let sol = solve(&model, x0.leaky_trace(), &times, &opts).unwrap();
            let bytes = sol.stats.checkpoint_bytes;
            let steps = sol.stats.accepted;
            let g = (sol.ys * w.clone()).sum::<Rank0, _>().backward();
            let stats = sol.report.stats().unwrap();
            let mut out = g.get(&x0).as_vec();
            out.extend(model.grads(&g));
            (out, bytes, steps, stats)
        };
        let (g_all, b_all, steps, s_all) = run(CheckpointPolicy::All);
        let (g_st, b_st, _, s_st) = run(CheckpointPolicy::AllStages);
        assert_eq!(
            g_all, g_st,
            "{name} {:?}: the stage store changed the gradient",
            base.stepping
        );
        assert_eq!(s_st.nfe_rebuild, 0, "{name}: nothing is rebuilt");
        assert_eq!(s_st.nfe_vjp, s_all.nfe_vjp, "{name}: same products");
        // Each accepted step keeps `kept` more states of 3 × 2 f64, each with its buffer's
        // header and its place in the store.
        let per_stage =
            neural_ode::hooks::state_bytes(&x0) + std::mem::size_of::<Tensor<State, f64, Cpu>>();
        assert!(per_stage > 6 * 8 && per_stage < 6 * 8 + 256);
        let expected = steps * kept * per_stage;
        // (The stage vectors' own headers and spare capacity come on top.)
        assert!(
            b_st - b_all >= expected && b_st - b_all <= expected + steps * (24 + 4 * per_stage),
            "{name}: stage bytes {} for {expected}",
            b_st - b_all
        );
        println!(
            "{name}: {:?}: rebuild evaluations {} -> 0, checkpoint bytes {b_all} -> {b_st}",
            base.stepping, s_all.nfe_rebuild
        );
    }
}

#[test]
fn stage_store_gives_the_same_gradient_without_rebuilding() {
    check_stage_store::<Euler<f64, Cpu>>();
    check_stage_store::<Midpoint<f64, Cpu>>();
    check_stage_store::<Rk4<f64, Cpu>>();
    check_stage_store::<Bosh3<f64, Cpu>>();
    check_stage_store::<Dopri5<f64, Cpu>>();
    check_stage_store::<Tsit5<f64, Cpu>>();
    check_stage_store::<Dopri8<f64, Cpu>>();
}
