//! A Runge–Kutta step written as a plain loop over the tableau's arrays, with dfdx's ordinary
//! operations on any tape. It is the independent reference that `backprop` differentiates with
//! dfdx's own autodiff, and the step that `checkpoint` records; the generated straight-line code
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
    let mut ks: Vec<Tensor<S, E, D, T>> = Vec::with_capacity(R::STAGES);
    for i in 0..R::STAGES {
        // `with_empty_tape` shares the value and id; each operation is recorded exactly once,
        // on the tape of the tensor that is finally merged into `y`.
        let mut xi = x.with_empty_tape();
        for (j, &a) in R::A[i].iter().enumerate() {
            if a != 0.0 {
                xi = xi + ks[j].with_empty_tape() * (h * lit::<E>(a));
            }
        }
        ks.push(f.eval(t + h * lit::<E>(R::C[i]), xi));
    }
    let mut y = x;
    for (k, &b) in ks.into_iter().zip(R::B) {
        // Terms with b = 0 are still merged so that their stage's operations reach the tape.
        y = y + k * (h * lit::<E>(b));
    }
    y
}
