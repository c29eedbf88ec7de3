//! A Runge–Kutta step written as a plain loop over the tableau's arrays, with dfdx's ordinary
//! operations on any tape. It is the independent reference that `backprop` differentiates with
//! dfdx's own autodiff, and the step that `aca` records; the generated straight-line code
//! is what `symplectic` and the forward solve use.

use dfdx::prelude::*;

use crate::backend::Backend;
use crate::field::VectorField;
use crate::real::{lit, Real};
use crate::rk::RungeKutta;
use crate::shape::StateShape;

/// `y = x + h Σ b_i k_i` with `k_i = f(t + c_i h, x + h Σ_j a_ij k_j)`, recorded on `x`'s tape:
/// one step as a plain loop over the tableau's arrays (`R::A`, `R::B`, `R::C`). The reference
/// that `backprop` differentiates, and the baseline the generated straight-line step is
/// benchmarked against.
pub fn step<R, S, E, D, T, F>(f: &F, t: E, h: E, x: Tensor<S, E, D, T>) -> Tensor<S, E, D, T>
where
    R: RungeKutta,
    S: StateShape,
    E: Real,
    D: Backend<E>,
    T: Tape<E, D>,
    F: VectorField<S, E, D> + ?Sized,
{
    let ks = stages::<R, _, _, _, _, _>(f, t, h, &x);
    let mut y = x;
    for (k, &b) in ks.into_iter().zip(R::B) {
        // Terms with b = 0 are still merged so that their stage's operations reach the tape.
        y = y + k * (h * lit::<E>(b));
    }
    y
}

/// A step's result and its interpolated outputs, on a tape.
pub type StepOutputs<S, E, D, T> = (Tensor<S, E, D, T>, Vec<Tensor<S, E, D, T>>);

/// [`step`] and the method's interpolant ([`RungeKutta::INTERPOLANT`], evaluated from the
/// constants, independently of the generated code) at each of `thetas` inside the step, all
/// recorded on `x`'s tape: `(y, outputs)`. The reference `backprop` differentiates for outputs
/// between step boundaries.
pub fn step_with_outputs<R, S, E, D, T, F>(
    f: &F,
    t: E,
    h: E,
    x: Tensor<S, E, D, T>,
    thetas: &[E],
) -> StepOutputs<S, E, D, T>
where
    R: RungeKutta,
    S: StateShape,
    E: Real,
    D: Backend<E>,
    T: Tape<E, D>,
    F: VectorField<S, E, D> + ?Sized,
{
    with_interpolant::<R, S, E, D, T, F>(f, t, h, x, thetas.len(), |k, row, j| {
        k * (h * interpolant_weight(row, thetas[j]))
    })
}

/// [`step_with_outputs`] with each row of the batch at its own `θ` (`thetas[j][i]`: output
/// `j`, row `i`): the interpolant of a solve with per-sample steps, whose rounds are steps of
/// size 1 (`h` is then 1 and each row's own step size is in the stages).
pub(crate) fn step_with_row_outputs<R, S, E, D, T, F>(
    f: &F,
    t: E,
    h: E,
    x: Tensor<S, E, D, T>,
    thetas: &[Vec<E>],
) -> StepOutputs<S, E, D, T>
where
    R: RungeKutta,
    S: StateShape,
    E: Real,
    D: Backend<E>,
    T: Tape<E, D>,
    F: VectorField<S, E, D> + ?Sized,
{
    let like = x.retaped::<NoneTape>();
    with_interpolant::<R, S, E, D, T, F>(f, t, h, x, thetas.len(), |k, row, j| {
        let w: Vec<E> = thetas[j]
            .iter()
            .map(|&theta| h * interpolant_weight(row, theta))
            .collect();
        k * crate::per_sample::per_row(&like, &w)
    })
}

/// `bᵢ(θ)` from the constants of one row of [`RungeKutta::INTERPOLANT`] (the coefficients of
/// `θ, θ², …`).
pub(crate) fn interpolant_weight<E: Real>(row: &[f64], theta: E) -> E {
    let mut acc = E::zero();
    let mut pow = theta;
    for &c in row {
        acc += lit::<E>(c) * pow;
        pow *= theta;
    }
    acc
}

/// A step and `n` outputs of its interpolant, `o_j = x + Σᵢ scale(kᵢ, rowᵢ, j)`, on the tape.
fn with_interpolant<R, S, E, D, T, F>(
    f: &F,
    t: E,
    h: E,
    x: Tensor<S, E, D, T>,
    n: usize,
    scale: impl Fn(Tensor<S, E, D, T>, &[f64], usize) -> Tensor<S, E, D, T>,
) -> StepOutputs<S, E, D, T>
where
    R: RungeKutta,
    S: StateShape,
    E: Real,
    D: Backend<E>,
    T: Tape<E, D>,
    F: VectorField<S, E, D> + ?Sized,
{
    let ks = stages::<R, _, _, _, _, _>(f, t, h, &x);
    // The outputs read the stages through tape-less handles; the stages' own tapes go into `y`
    // (and the interpolant's extra stage's into the first output), so each operation is recorded once.
    let handles: Vec<Tensor<S, E, D, T>> = ks.iter().map(|k| k.with_empty_tape()).collect();
    let x_handle = x.with_empty_tape();
    let mut y = x;
    for (k, &b) in ks.into_iter().zip(R::B) {
        y = y + k * (h * lit::<E>(b));
    }
    let mut extra = (R::INTERPOLANT_STAGES > R::STAGES).then(|| f.eval(t + h, y.with_empty_tape()));
    let extra_handle = extra.as_ref().map(|k| k.with_empty_tape());
    let mut outputs = Vec::with_capacity(n);
    for j in 0..n {
        let mut o = x_handle.with_empty_tape();
        for (i, row) in R::INTERPOLANT.iter().enumerate() {
            if row.iter().all(|&c| c == 0.0) {
                continue;
            }
            let k = match (handles.get(i), extra.take(), &extra_handle) {
                (Some(k), back, _) => {
                    extra = back;
                    k.with_empty_tape()
                }
                // The extra stage: its tape goes with its first use.
                (None, Some(k), _) => k,
                (None, None, Some(k)) => k.with_empty_tape(),
                (None, None, None) => continue,
            };
            o = o + scale(k, row, j);
        }
        outputs.push(o);
    }
    (y, outputs)
}

/// The stage derivatives `k_i = f(t + c_i h, x + h Σ_j a_ij k_j)` on `x`'s tape.
fn stages<R, S, E, D, T, F>(f: &F, t: E, h: E, x: &Tensor<S, E, D, T>) -> Vec<Tensor<S, E, D, T>>
where
    R: RungeKutta,
    S: StateShape,
    E: Real,
    D: Backend<E>,
    T: Tape<E, D>,
    F: VectorField<S, E, D> + ?Sized,
{
    let mut ks: Vec<Tensor<S, E, D, T>> = Vec::with_capacity(R::STAGES);
    for i in 0..R::STAGES {
        // `with_empty_tape` shares the value and id; each operation is recorded exactly once,
        // on the tape of the tensor that is finally merged into the step's result.
        let mut xi = x.with_empty_tape();
        for (j, &a) in R::A[i].iter().enumerate() {
            if a != 0.0 {
                xi = xi + ks[j].with_empty_tape() * (h * lit::<E>(a));
            }
        }
        ks.push(f.eval(t + h * lit::<E>(R::C[i]), xi));
    }
    ks
}
