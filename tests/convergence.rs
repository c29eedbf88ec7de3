//! Observed orders of every shipped tableau on the non-autonomous equation `x' = 2 t x`
//! (solution `x0 e^(t²)`; chosen because every method, dopri8 included, reaches its asymptotic
//! regime above rounding on it — on a modulated logistic equation dopri8 still shows ~8.8):
//! the global error's log–log slope matches the declared order, and the embedded error
//! estimate of one step scales like `h^(embedded_order + 1)`.
#![deny(warnings)]

use neural_ode::dfdx::prelude::*;
use neural_ode::{neural_ode, solve, RungeKutta, SolveOptions, VectorField};

type State = (usize, Const<1>);

macro_rules! fields {
    ($($name:ident => $solver:literal),* $(,)?) => {$(
        #[neural_ode(solver = $solver)]
        #[derive(Clone, Debug, Default)]
        struct $name;

        impl VectorField<State, f64, Cpu> for $name {
            fn eval<T: Tape<f64, Cpu>>(&self, t: f64, x: Tensor<State, f64, Cpu, T>) -> Tensor<State, f64, Cpu, T> {
                x * (2.0 * t)
            }
        }
    )*};
}

fields! {
    Euler => "euler", Midpoint => "midpoint", Heun => "heun", Ralston => "ralston", Rk4 => "rk4",
    Rk38 => "rk38", HeunEuler => "heun_euler", Fehlberg2 => "fehlberg2", Bosh3 => "bosh3",
    Fehlberg45 => "fehlberg45", CashKarp => "cash_karp", Dopri5 => "dopri5", Tsit5 => "tsit5",
    Dopri8 => "dopri8",
}

const X0: [f64; 3] = [1.0, 0.5, -2.0];
const T_END: f64 = 1.5;

fn exact(x0: f64, t: f64) -> f64 {
    x0 * (t * t).exp()
}

/// Least-squares slope of log(error) against log(h) over the three finest step sizes whose
/// errors stay well above rounding (`floor`), where the error is in its asymptotic regime.
fn slope(hs: &[f64], errs: &[f64], floor: f64) -> f64 {
    let in_range: Vec<(f64, f64)> = hs
        .iter()
        .zip(errs)
        .filter(|(_, &e)| e > floor && e < 1e-2)
        .map(|(h, e)| (h.ln(), e.ln()))
        .collect();
    assert!(in_range.len() >= 3, "too few errors in range: {errs:?}");
    let pts = &in_range[in_range.len() - 3..];
    let n = pts.len() as f64;
    let (mx, my) = (
        pts.iter().map(|p| p.0).sum::<f64>() / n,
        pts.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxy: f64 = pts.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = pts.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
    sxy / sxx
}

fn orders<M: RungeKutta, F>(field: F) -> (f64, Option<f64>)
where
    F: neural_ode::NeuralOde<Solver = M>
        + VectorField<State, f64, Cpu>
        + neural_ode::dfdx::nn::tensor_collection::TensorCollection<f64, Cpu>,
{
    let dev = Cpu::default();
    let x0: Tensor<State, f64, Cpu> = dev.tensor_from_vec(X0.to_vec(), (3, Const));
    // Step counts a factor √2 apart, so that high-order methods have several errors between
    // their pre-asymptotic range and rounding.
    let ns: Vec<usize> = (0..21)
        .map(|k| (2.0 * 2f64.powf(k as f64 / 2.0)).round() as usize)
        .collect();
    let mut hs = Vec::new();
    let mut errs = Vec::new();
    for &n in &ns {
        // Very coarse steps may blow up (a NonFinite error): no error to measure there.
        let err = match solve(
            &field,
            x0.clone(),
            &[0.0, T_END],
            &SolveOptions::fixed_steps(n),
        ) {
            Ok(sol) => {
                let end = sol.ys.as_vec()[3..].to_vec();
                end.iter()
                    .zip(X0)
                    .map(|(y, x)| ((y - exact(x, T_END)) / exact(x, T_END)).abs())
                    .fold(0.0, f64::max)
            }
            Err(_) => f64::INFINITY,
        };
        hs.push(T_END / n as f64);
        errs.push(err);
    }
    let global = slope(&hs, &errs, 3e-13);
    let embedded = M::EMBEDDED_ORDER.map(|_| {
        let t0 = 0.3;
        let x: Tensor<State, f64, Cpu> =
            dev.tensor_from_vec(X0.iter().map(|&x| exact(x, t0)).collect(), (3, Const));
        let hs: Vec<f64> = (0..24).map(|i| 1.6 / 2f64.powf(i as f64 / 2.0)).collect();
        let errs: Vec<f64> = hs
            .iter()
            .map(|&h| {
                let step = M::step(
                    &field,
                    t0,
                    h,
                    &x,
                    None,
                    &mut neural_ode::hooks::Workspace::new(),
                );
                step.err
                    .map(|e| e.as_vec().iter().fold(0.0f64, |m, v| m.max(v.abs())))
                    .unwrap_or(0.0)
            })
            .collect();
        // The estimate is a local error: order embedded_order + 1.
        // One step's estimate carries no accumulated rounding: a lower floor.
        slope(&hs, &errs, 1e-16) - 1.0
    });
    (global, embedded)
}

fn check<M: RungeKutta, F>(field: F)
where
    F: neural_ode::NeuralOde<Solver = M>
        + VectorField<State, f64, Cpu>
        + neural_ode::dfdx::nn::tensor_collection::TensorCollection<f64, Cpu>,
{
    let (global, embedded) = orders(field);
    println!(
        "{:>10}: order {} observed {global:.2}; embedded {:?} observed {:?}",
        M::NAME,
        M::ORDER,
        M::EMBEDDED_ORDER,
        embedded.map(|e| (e * 100.0).round() / 100.0)
    );
    assert!(
        (global - f64::from(M::ORDER)).abs() <= 0.3,
        "{}: observed order {global}",
        M::NAME
    );
    if let (Some(q), Some(e)) = (M::EMBEDDED_ORDER, embedded) {
        assert!(
            (e - f64::from(q)).abs() <= 0.3,
            "{}: observed embedded order {e}",
            M::NAME
        );
    }
}

#[test]
fn observed_orders_match_declared_orders() {
    check(Euler);
    check(Midpoint);
    check(Heun);
    check(Ralston);
    check(Rk4);
    check(Rk38);
    check(HeunEuler);
    check(Fehlberg2);
    check(Bosh3);
    check(Fehlberg45);
    check(CashKarp);
    check(Dopri5);
    check(Tsit5);
    check(Dopri8);
}
