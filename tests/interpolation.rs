//! The continuous extensions shipped in the tableaux' `[dense]` sections, as the macro emits them
//! (`RungeKutta::INTERPOLANT`): the observed order of the interpolant on an ODE with a known
//! solution is the declared one, within ±0.3, and it ends at the step's solution; and the
//! interpolated outputs of `solve` (every method's `interpolate`: the `[dense]` sections and the
//! cubic Hermite fallback, with and without FSAL) show the order `INTERPOLANT_ORDER` declares.
#![deny(warnings)]

mod common;

use common::*;
use neural_ode::dfdx::prelude::*;
use neural_ode::{NeuralOde, RungeKutta};

/// `x' = cos(t) x`, `x(t) = exp(sin t)` (scalar, evaluated on the host: only the
/// coefficients are under test here).
fn f(t: f64, x: f64) -> f64 {
    t.cos() * x
}

fn exact(t: f64) -> f64 {
    t.sin().exp()
}

/// Max error of the interpolant over θ ∈ {0.1, …, 0.9} after one step of size `h` from the
/// exact solution at `t0`, and the gap between `b(1)` and the step's solution.
fn dense_error<R: RungeKutta>(t0: f64, h: f64) -> (f64, f64) {
    assert!(!R::HERMITE, "a [dense] section");
    let b_dense = R::INTERPOLANT;
    let x0 = exact(t0);
    let mut k: Vec<f64> = Vec::with_capacity(R::STAGES);
    for i in 0..R::STAGES {
        let xi = x0 + h * R::A[i].iter().zip(&k).map(|(a, kj)| a * kj).sum::<f64>();
        k.push(f(t0 + R::C[i] * h, xi));
    }
    let y1 = x0 + h * R::B.iter().zip(&k).map(|(b, ki)| b * ki).sum::<f64>();
    if b_dense.len() > R::STAGES {
        // The extra stage f(t + h, y) (dopri8).
        k.push(f(t0 + h, y1));
    }
    let interp = |theta: f64| {
        let mut acc = 0.0;
        for (row, ki) in b_dense.iter().zip(&k) {
            let mut p = 0.0;
            let mut pow = theta;
            for c in row.iter() {
                p += c * pow;
                pow *= theta;
            }
            acc += p * ki;
        }
        x0 + h * acc
    };
    let err = (1..10)
        .map(|j| {
            let theta = j as f64 / 10.0;
            (interp(theta) - exact(t0 + theta * h)).abs()
        })
        .fold(0.0, f64::max);
    (err, (interp(1.0) - y1).abs())
}

fn observed_order<M: NeuralOde>(h: f64) -> (f64, u32) {
    let declared = <M::Solver as RungeKutta>::INTERPOLANT_ORDER;
    let (e1, end1) = dense_error::<M::Solver>(0.3, h);
    let (e2, end2) = dense_error::<M::Solver>(0.3, h / 2.0);
    assert!(end1 < 1e-15 && end2 < 1e-15, "b(1) = b");
    // Local error of an order-p interpolant: O(h^(p+1)).
    ((e1 / e2).log2() - 1.0, declared)
}

#[test]
fn interpolants_have_their_declared_order() {
    for (name, (observed, declared)) in [
        ("dopri5", observed_order::<Dopri5<f64, Cpu>>(0.05)),
        ("tsit5", observed_order::<Tsit5<f64, Cpu>>(0.05)),
        ("bosh3", observed_order::<Bosh3<f64, Cpu>>(0.05)),
        // Order 5 with the extra stage f(t + h, y); larger steps keep its error above rounding.
        ("dopri8", observed_order::<Dopri8<f64, Cpu>>(0.2)),
    ] {
        println!("{name}: declared dense order {declared}, observed {observed:.2}");
        assert!(
            (observed - f64::from(declared)).abs() <= 0.3,
            "{name}: observed {observed:.2}, declared {declared}"
        );
    }
    // Tableaux without a section have none (checked at compile time).
    const { assert!(<<Rk4<f64, Cpu> as NeuralOde>::Solver as RungeKutta>::HERMITE) };
}

/// `x' = cos(t) · (w ⊙ x)` with `w = 1`: the known solution `x(t) = x(t₀) exp(sin t − sin t₀)`,
/// one model type per method (the parameter only gives the derive a tensor to walk).
macro_rules! cosine {
    ($($name:ident => $solver:literal),* $(,)?) => {$(
        #[neural_ode::neural_ode(solver = $solver)]
        #[derive(Clone, Debug)]
        struct $name {
            w: Tensor<Rank1<2>, f64, Cpu>,
        }
        impl neural_ode::VectorField<State, f64, Cpu> for $name {
            fn eval<T: Tape<f64, Cpu>>(&self, t: f64, x: Tensor<State, f64, Cpu, T>) -> Tensor<State, f64, Cpu, T> {
                let shape = *x.shape();
                x * self.w.clone().broadcast_like(&shape) * t.cos()
            }
        }
    )*};
}
cosine! {
    CosDopri5 => "dopri5",
    CosTsit5 => "tsit5",
    CosBosh3 => "bosh3",
    CosRk4 => "rk4",
    CosRk38 => "rk38",
    CosHeun => "heun",
    CosCashKarp => "cash_karp",
    CosDopri8 => "dopri8",
}

/// Max error over the outputs at θ ∈ {0.1, …, 0.9} of one fixed step of size `h` from the
/// exact solution at `t0`, through `solve` (so through the generated `interpolate`, and for
/// tableaux without a `[dense]` section the cubic Hermite interpolant and its extra stage).
fn solved_dense_error<M>(model: &M, t0: f64, h: f64) -> f64
where
    M: NeuralOde
        + neural_ode::VectorField<State, f64, Cpu>
        + neural_ode::dfdx::nn::tensor_collection::TensorCollection<f64, Cpu>,
{
    let dev = Cpu::default();
    let x0 = [1.0, -2.0];
    let start: Vec<f64> = x0.iter().map(|v| v * exact(t0)).collect();
    let x: Tensor<State, f64, Cpu> = dev.tensor_from_vec(start, (1, Const));
    let times: Vec<f64> = (0..=10).map(|j| t0 + h * j as f64 / 10.0).collect();
    let sol = neural_ode::solve(model, x, &times, &neural_ode::SolveOptions::fixed_steps(1))
        .expect("solve");
    assert_eq!(sol.stats.accepted, 1, "one step, the outputs interpolated");
    let ys = sol.ys.as_vec();
    let mut err = 0.0f64;
    for (j, t) in times.iter().enumerate().take(10).skip(1) {
        for (i, v) in x0.iter().enumerate() {
            err = err.max((ys[2 * j + i] - v * exact(*t)).abs());
        }
    }
    err
}

#[test]
fn interpolated_outputs_have_the_interpolants_order_through_solve() {
    let dev = Cpu::default();
    let w = || dev.tensor([1.0, 1.0]);
    fn observed<M>(model: &M) -> (f64, u32, bool)
    where
        M: NeuralOde
            + neural_ode::VectorField<State, f64, Cpu>
            + neural_ode::dfdx::nn::tensor_collection::TensorCollection<f64, Cpu>,
    {
        let (e1, e2) = (
            solved_dense_error(model, 0.3, 0.1),
            solved_dense_error(model, 0.3, 0.05),
        );
        // Local error of an order-q interpolant: O(h^(q+1)).
        (
            (e1 / e2).log2() - 1.0,
            <M::Solver as RungeKutta>::INTERPOLANT_ORDER,
            <M::Solver as RungeKutta>::HERMITE,
        )
    }
    let cases = [
        ("dopri5", observed(&CosDopri5 { w: w() })),
        ("tsit5", observed(&CosTsit5 { w: w() })),
        ("bosh3", observed(&CosBosh3 { w: w() })),
        ("rk4", observed(&CosRk4 { w: w() })),
        ("rk38", observed(&CosRk38 { w: w() })),
        ("heun", observed(&CosHeun { w: w() })),
        ("cash_karp", observed(&CosCashKarp { w: w() })),
        ("dopri8", observed(&CosDopri8 { w: w() })),
    ];
    for (name, (observed, declared, hermite)) in cases {
        println!(
            "{name}: interpolant order {declared} (Hermite: {hermite}), observed {observed:.2}"
        );
        assert!(
            (observed - f64::from(declared)).abs() <= 0.3,
            "{name}: observed {observed:.2}, declared {declared}"
        );
    }
    // The fallback is what the tableaux without a section get, at its documented order.
    const {
        assert!(
            <CosRk4 as NeuralOde>::Solver::HERMITE
                && <CosRk4 as NeuralOde>::Solver::INTERPOLANT_ORDER == 3
        )
    };
    const { assert!(<CosHeun as NeuralOde>::Solver::INTERPOLANT_ORDER == 2) };
    const { assert!(!<CosDopri5 as NeuralOde>::Solver::HERMITE) };
}
