//! The continuous extensions shipped in the tableaux' `[dense]` sections, as the macro emits them
//! (`RungeKutta::B_DENSE`): the observed order of the interpolant on an ODE with a known
//! solution is the declared one, within ±0.3, and it ends at the step's solution.
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
    let b_dense = R::B_DENSE.expect("a [dense] section");
    let x0 = exact(t0);
    let mut k: Vec<f64> = Vec::with_capacity(R::STAGES);
    for i in 0..R::STAGES {
        let xi = x0 + h * R::A[i].iter().zip(&k).map(|(a, kj)| a * kj).sum::<f64>();
        k.push(f(t0 + R::C[i] * h, xi));
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
    let y1 = x0 + h * R::B.iter().zip(&k).map(|(b, ki)| b * ki).sum::<f64>();
    let err = (1..10)
        .map(|j| {
            let theta = j as f64 / 10.0;
            (interp(theta) - exact(t0 + theta * h)).abs()
        })
        .fold(0.0, f64::max);
    (err, (interp(1.0) - y1).abs())
}

fn observed_order<M: NeuralOde>() -> (f64, u32) {
    let declared = <M::Solver as RungeKutta>::DENSE_ORDER.expect("dense order");
    let (e1, end1) = dense_error::<M::Solver>(0.3, 0.05);
    let (e2, end2) = dense_error::<M::Solver>(0.3, 0.025);
    assert!(end1 < 1e-15 && end2 < 1e-15, "b(1) = b");
    // Local error of an order-p interpolant: O(h^(p+1)).
    ((e1 / e2).log2() - 1.0, declared)
}

#[test]
fn interpolants_have_their_declared_order() {
    for (name, (observed, declared)) in [
        ("dopri5", observed_order::<Dopri5<f64, Cpu>>()),
        ("tsit5", observed_order::<Tsit5<f64, Cpu>>()),
        ("bosh3", observed_order::<Bosh3<f64, Cpu>>()),
    ] {
        println!("{name}: declared dense order {declared}, observed {observed:.2}");
        assert!(
            (observed - f64::from(declared)).abs() <= 0.3,
            "{name}: observed {observed:.2}, declared {declared}"
        );
    }
    // Tableaux without a section have none.
    assert!(<<Rk4<f64, Cpu> as NeuralOde>::Solver as RungeKutta>::B_DENSE.is_none());
}
