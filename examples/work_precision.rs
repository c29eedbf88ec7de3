//! Work against precision: evaluations and accepted/rejected steps against the error of the
//! final state (max abs, vs a dopri8 reference at rtol = atol = 1e-13) for dopri5 and tsit5 at
//! 29 tolerances rtol = atol = 10^(-3 - j/4), j = 0 … 28 (1e-3 … 1e-10 in quarter decades;
//! `benches/work_precision_table.py` tabulates them), and, to separate the causes of a
//! difference with diffrax, dopri5 with Shampine's embedded weights
//! (`examples/dopri5_shampine.toml`) and runs with diffrax's default integral-only controller
//! (`"impl": "neural-ode-I"`). Three problems: the peers harness's MLP (2 → 64 → 64 → 2, tanh,
//! batch 512, t ∈ [0, 1]; weights from its `problem_W64.json`), Lotka–Volterra (α = 1.5,
//! β = 1, γ = 3, δ = 1, x0 = (1, 1), t ∈ [0, 10]) and Van der Pol (μ = 1, x0 = (2, 0),
//! t ∈ [0, 10]). Prints one JSON object per run.
//!
//! `cargo run --release --example work_precision -- [path/to/problem_W64.json]` (without the
//! file, the MLP problem is skipped). `benches/work_precision.py` runs diffrax on the same.

use neural_ode::dfdx::nn::modules::Linear;
use neural_ode::dfdx::prelude::*;
use neural_ode::{neural_ode, solve, NeuralOde, RungeKutta, SolveOptions, VectorField};

type State = (usize, Const<2>);

macro_rules! mlp {
    ($name:ident, $($attr:tt)*) => {
        #[neural_ode($($attr)*)]
        #[derive(Clone, Debug)]
        struct $name {
            l1: Linear<2, 64, f64, Cpu>,
            l2: Linear<64, 64, f64, Cpu>,
            l3: Linear<64, 2, f64, Cpu>,
        }
        impl VectorField<State, f64, Cpu> for $name {
            fn eval<T: Tape<f64, Cpu>>(
                &self,
                _t: f64,
                x: Tensor<State, f64, Cpu, T>,
            ) -> Tensor<State, f64, Cpu, T> {
                self.l3
                    .forward(self.l2.forward(self.l1.forward(x).tanh()).tanh())
            }
        }
    };
}
mlp!(MlpDopri5, solver = "dopri5");
mlp!(MlpTsit5, solver = "tsit5");
mlp!(MlpDopri8, solver = "dopri8");
mlp!(MlpShampine, tableau = "examples/dopri5_shampine.toml");

/// Lotka–Volterra and Van der Pol written with dfdx ops (any tape): `f = x L + (x² M) ⊙ (x N) ⊙ c`.
macro_rules! classic {
    ($name:ident, $($attr:tt)*) => {
        #[neural_ode($($attr)*)]
        #[derive(Clone, Debug)]
        struct $name {
            l: Tensor<Rank2<2, 2>, f64, Cpu>,
            m: Tensor<Rank2<2, 2>, f64, Cpu>,
            n: Tensor<Rank2<2, 2>, f64, Cpu>,
            c: Tensor<Rank1<2>, f64, Cpu>,
            /// Lotka–Volterra's product term is u·v, not u²·v.
            #[neural_ode(skip)]
            square: bool,
        }
        impl VectorField<State, f64, Cpu> for $name {
            fn eval<T: Tape<f64, Cpu>>(&self, _t: f64, x: Tensor<State, f64, Cpu, T>) -> Tensor<State, f64, Cpu, T> {
                let shape = *x.shape();
                let lin = x.with_empty_tape().matmul(self.l.clone());
                let first = if self.square { x.with_empty_tape().square() } else { x.with_empty_tape() };
                let a = first.matmul(self.m.clone());
                let b = x.matmul(self.n.clone());
                lin + a * b * self.c.clone().broadcast_like(&shape)
            }
        }
    };
}
classic!(ClassicDopri5, solver = "dopri5");
classic!(ClassicTsit5, solver = "tsit5");
classic!(ClassicDopri8, solver = "dopri8");
classic!(ClassicShampine, tableau = "examples/dopri5_shampine.toml");

/// One solve per tolerance, with the default controller or (`integral`) diffrax's.
fn run<M>(
    problem: &str,
    model: &M,
    x0: &Tensor<State, f64, Cpu>,
    t1: f64,
    reference: &[f64],
    integral: bool,
) where
    M: NeuralOde
        + VectorField<State, f64, Cpu>
        + neural_ode::dfdx::nn::tensor_collection::TensorCollection<f64, Cpu>,
{
    // Quarter decades from 1e-3 to 1e-10: whole decades for the tables, all for the ratios.
    for j in 0..=28 {
        let tol = 10f64.powf(-3.0 - f64::from(j) / 4.0);
        let opts = SolveOptions::adaptive(tol, tol);
        let sol = if integral {
            neural_ode::solve_with(model, x0.clone(), &[0.0, t1], &opts, &IController(0.2))
        } else {
            solve(model, x0.clone(), &[0.0, t1], &opts)
        }
        .expect("solve");
        let y = sol.ys.as_vec();
        let last = &y[y.len() - reference.len()..];
        let err = last
            .iter()
            .zip(reference)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        println!(
            "{{\"impl\": \"{}\", \"problem\": \"{problem}\", \"solver\": \"{}\", \"tol\": {tol:e}, \"nfe\": {}, \"accepted\": {}, \"rejected\": {}, \"error\": {err:e}}}",
            if integral { "neural-ode-I" } else { "neural-ode" },
            <M::Solver as RungeKutta>::NAME,
            sol.stats.nfe,
            sol.stats.accepted,
            sol.stats.rejected
        );
    }
}

/// diffrax's default controller: integral only, `h · safety · err^(−1/k)`, clamped to [0.2, 10].
#[derive(Clone)]
struct IController(f64);
impl neural_ode::StepSizeController for IController {
    fn reset(&mut self, k: u32) {
        self.0 = 1.0 / f64::from(k);
    }
    fn decide(&mut self, _t: f64, err: f64, h: f64) -> (bool, f64) {
        if !err.is_finite() {
            return (false, 0.2 * h);
        }
        let f = (0.9 * err.max(1e-30).powf(-self.0)).clamp(0.2, 10.0);
        (err <= 1.0, h * if err <= 1.0 { f } else { f.min(1.0) })
    }
}

fn reference<
    M: NeuralOde
        + VectorField<State, f64, Cpu>
        + neural_ode::dfdx::nn::tensor_collection::TensorCollection<f64, Cpu>,
>(
    model: &M,
    x0: &Tensor<State, f64, Cpu>,
    t1: f64,
) -> Vec<f64> {
    let sol = solve(
        model,
        x0.clone(),
        &[0.0, t1],
        &SolveOptions::adaptive(1e-13, 1e-13).with_max_steps(1_000_000),
    )
    .expect("reference");
    let y = sol.ys.as_vec();
    y[y.len() / 2..].to_vec()
}

fn main() {
    let dev = Cpu::default();
    let m2 = |v: [f64; 4]| dev.tensor_from_vec(v.to_vec(), (Const::<2>, Const::<2>));
    let c = |v: [f64; 2]| dev.tensor(v);
    // Lotka–Volterra: [αu − βuv, δuv − γv] = x·diag(α, −γ) + (x·[[1,1],[0,0]]) ⊙ (x·[[0,0],[1,1]]) ⊙ [−β, δ].
    let lotka = |square| {
        (
            m2([1.5, 0.0, 0.0, -3.0]),
            m2([1.0, 1.0, 0.0, 0.0]),
            m2([0.0, 0.0, 1.0, 1.0]),
            c([-1.0, 1.0]),
            square,
        )
    };
    // Van der Pol μ = 1: [v, μv − u − μu²v] = x·[[0, −1],[1, μ]] + (x²·[[1,1],[0,0]]) ⊙ (x·[[0,0],[1,1]]) ⊙ [0, −μ].
    let vdp = |square| {
        (
            m2([0.0, -1.0, 1.0, 1.0]),
            m2([1.0, 1.0, 0.0, 0.0]),
            m2([0.0, 0.0, 1.0, 1.0]),
            c([0.0, -1.0]),
            square,
        )
    };
    for (problem, parts, x0) in [
        ("lotka_volterra", lotka(false), [1.0, 1.0]),
        ("van_der_pol", vdp(true), [2.0, 0.0]),
    ] {
        let x0: Tensor<State, f64, Cpu> = dev.tensor_from_vec(x0.to_vec(), (1, Const));
        macro_rules! make {
            ($ty:ident) => {
                $ty {
                    l: parts.0.clone(),
                    m: parts.1.clone(),
                    n: parts.2.clone(),
                    c: parts.3.clone(),
                    square: parts.4,
                }
            };
        }
        let r = reference(&make!(ClassicDopri8), &x0, 10.0);
        println!("{{\"reference\": \"{problem}\", \"y\": {r:?}}}");
        run(problem, &make!(ClassicDopri5), &x0, 10.0, &r, false);
        run(problem, &make!(ClassicTsit5), &x0, 10.0, &r, false);
        run(problem, &make!(ClassicShampine), &x0, 10.0, &r, false);
        run(problem, &make!(ClassicDopri5), &x0, 10.0, &r, true);
        run(problem, &make!(ClassicShampine), &x0, 10.0, &r, true);
    }
    if let Some(path) = std::env::args().nth(1) {
        let text = std::fs::read_to_string(&path).expect("problem file");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        let get = |k: &str| -> Vec<f64> {
            v[k].as_array()
                .expect(k)
                .iter()
                .map(|x| x.as_f64().expect("number"))
                .collect()
        };
        let x0: Tensor<State, f64, Cpu> = dev.tensor_from_vec(get("x0"), (512, Const));
        macro_rules! make {
            ($ty:ident) => {
                $ty {
                    l1: Linear {
                        weight: dev.tensor_from_vec(get("W1"), (Const, Const)),
                        bias: dev.tensor_from_vec(get("b1"), (Const,)),
                    },
                    l2: Linear {
                        weight: dev.tensor_from_vec(get("W2"), (Const, Const)),
                        bias: dev.tensor_from_vec(get("b2"), (Const,)),
                    },
                    l3: Linear {
                        weight: dev.tensor_from_vec(get("W3"), (Const, Const)),
                        bias: dev.tensor_from_vec(get("b3"), (Const,)),
                    },
                }
            };
        }
        let r = reference(&make!(MlpDopri8), &x0, 1.0);
        println!("{{\"reference\": \"mlp\", \"y\": {:?}}}", &r[..4]);
        run("mlp", &make!(MlpDopri5), &x0, 1.0, &r, false);
        run("mlp", &make!(MlpTsit5), &x0, 1.0, &r, false);
        run("mlp", &make!(MlpShampine), &x0, 1.0, &r, false);
        run("mlp", &make!(MlpDopri5), &x0, 1.0, &r, true);
        run("mlp", &make!(MlpShampine), &x0, 1.0, &r, true);
    }
}
