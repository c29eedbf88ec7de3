//! `#[neural_ode]` models built from `neural_ode::nn::Dense` against the same models built from
//! dfdx's `Linear` and dfdx's own activations (weights copied): the solution and the gradient of
//! every exact method, with and without the stage store, must agree with dfdx's autodiff through
//! the dfdx model (`backprop`), an independent computation of the same discrete solve.
#![deny(warnings)]

use neural_ode::dfdx::nn::modules::Linear;
use neural_ode::dfdx::prelude::*;
use neural_ode::nn::{builders, Dense, Identity, Softplus, Tanh};
use neural_ode::{neural_ode, solve, CheckpointPolicy, GradMethod, SolveOptions, VectorField};

type State = (usize, Const<2>);
type Stacked = (usize, usize, Const<2>);

/// `f(t, x) = (1 + t/2) · W3 softplus(W2 tanh(W1 x + b1) + b2) + b3`, fused layers.
#[neural_ode(solver = "dopri5")]
#[derive(Clone, Debug)]
struct Fused {
    l1: Dense<2, 12, Tanh, f64, Cpu>,
    l2: Dense<12, 12, Softplus, f64, Cpu>,
    l3: Dense<12, 2, Identity, f64, Cpu>,
}

impl VectorField<State, f64, Cpu> for Fused {
    fn eval<T: Tape<f64, Cpu>>(
        &self,
        t: f64,
        x: Tensor<State, f64, Cpu, T>,
    ) -> Tensor<State, f64, Cpu, T> {
        self.l3.forward(self.l2.forward(self.l1.forward(x))) * (1.0 + 0.5 * t)
    }
}

/// The same field with dfdx's layers and dfdx's activations.
#[neural_ode(solver = "dopri5")]
#[derive(Clone, Debug)]
struct Plain {
    l1: Linear<2, 12, f64, Cpu>,
    l2: Linear<12, 12, f64, Cpu>,
    l3: Linear<12, 2, f64, Cpu>,
}

impl VectorField<State, f64, Cpu> for Plain {
    fn eval<T: Tape<f64, Cpu>>(
        &self,
        t: f64,
        x: Tensor<State, f64, Cpu, T>,
    ) -> Tensor<State, f64, Cpu, T> {
        let h = self.l1.forward(x).tanh();
        let z = self.l2.forward(h);
        // softplus(z) = max(z, 0) + ln(1 + e^(−|z|)), stable for large |z|
        let tail = (z.with_empty_tape().abs().negate().exp() + 1.0).ln();
        self.l3.forward(z.relu() + tail) * (1.0 + 0.5 * t)
    }
}

fn models(dev: &Cpu) -> (Fused, Plain) {
    let fused = Fused {
        l1: dev.build_module::<builders::Dense<2, 12, Tanh>, f64>(),
        l2: dev.build_module::<builders::Dense<12, 12, Softplus>, f64>(),
        l3: dev.build_module::<builders::Dense<12, 2, Identity>, f64>(),
    };
    let copy = |w: &Tensor<Rank2<12, 2>, f64, Cpu>, b: &Tensor<Rank1<12>, f64, Cpu>| {
        let mut l = dev.build_module::<neural_ode::dfdx::nn::builders::Linear<2, 12>, f64>();
        l.weight.copy_from(&w.as_vec());
        l.bias.copy_from(&b.as_vec());
        l
    };
    let mut l2 = dev.build_module::<neural_ode::dfdx::nn::builders::Linear<12, 12>, f64>();
    l2.weight.copy_from(&fused.l2.weight.as_vec());
    l2.bias.copy_from(&fused.l2.bias.as_vec());
    let mut l3 = dev.build_module::<neural_ode::dfdx::nn::builders::Linear<12, 2>, f64>();
    l3.weight.copy_from(&fused.l3.weight.as_vec());
    l3.bias.copy_from(&fused.l3.bias.as_vec());
    let plain = Plain {
        l1: copy(&fused.l1.weight, &fused.l1.bias),
        l2,
        l3,
    };
    (fused, plain)
}

fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    (num / den).sqrt()
}

/// The gradient of `Σ w ⊙ ys` for x0 and every parameter (weights then biases, layer by layer).
macro_rules! gradient {
    ($model:expr, $x0:expr, $w:expr, $times:expr, $opts:expr) => {{
        let m = $model;
        let sol = solve(m, $x0.leaky_trace(), $times, $opts).expect("solve");
        let ys = sol.ys.retaped::<NoneTape>().as_vec();
        let g = (sol.ys * $w.clone()).sum::<Rank0, _>().backward();
        sol.report
            .get()
            .expect("the gradient pass ran")
            .expect("it succeeded");
        let mut out = g.get($x0).as_vec();
        for v in [
            g.get(&m.l1.weight).as_vec(),
            g.get(&m.l1.bias).as_vec(),
            g.get(&m.l2.weight).as_vec(),
            g.get(&m.l2.bias).as_vec(),
            g.get(&m.l3.weight).as_vec(),
            g.get(&m.l3.bias).as_vec(),
        ] {
            out.extend(v);
        }
        (ys, out)
    }};
}

#[test]
fn dense_models_match_dfdx_models_for_every_exact_method() {
    let dev = Cpu::seed_from_u64(21);
    let (fused, plain) = models(&dev);
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(5, Const));
    let times = [0.0, 0.4, 1.3];
    let w: Tensor<Stacked, f64, Cpu> = dev.sample_normal_like(&(times.len(), 5, Const));
    for base in [
        SolveOptions::fixed_steps(11),
        SolveOptions::adaptive(1e-7, 1e-9),
    ] {
        let reference = base.clone().with_grad(GradMethod::Backprop);
        let (ys_ref, g_ref) = gradient!(&plain, &x0, &w, &times, &reference);
        let variants = [
            (GradMethod::Backprop, CheckpointPolicy::All),
            (GradMethod::Aca, CheckpointPolicy::All),
            (GradMethod::Symplectic, CheckpointPolicy::All),
            (GradMethod::Symplectic, CheckpointPolicy::AllStages),
        ];
        for (method, policy) in variants {
            let opts = base.clone().with_grad(method).with_checkpoints(policy);
            let (ys, g) = gradient!(&fused, &x0, &w, &times, &opts);
            let (ey, eg) = (rel_err(&ys, &ys_ref), rel_err(&g, &g_ref));
            println!(
                "{:?} {method} {policy:?}: solution {ey:.1e}, gradient {eg:.1e}",
                base.stepping
            );
            assert!(
                ey <= 1e-13,
                "{method} {policy:?}: solution differs by {ey:e}"
            );
            assert!(
                eg <= 1e-11,
                "{method} {policy:?}: gradient differs by {eg:e}"
            );
        }
    }
}
