//! A row's outputs inside its step: each row at its own `θ`, computed as the reference
//! interpolant on the tape computes it, so that `backprop`'s replay gives the same bits.

use dfdx::prelude::*;

use super::clock::{Clock, Clocked};
use super::SampleTimes;
use crate::backend::Backend;
use crate::field::VectorField;
use crate::grad::reference::interpolant_weight;
use crate::real::Real;
use crate::rk::RungeKutta;
use crate::shape::StateShape;
use crate::stats::ForwardStats;

/// Whether an output at `tau` lies strictly inside a step of (signed) size `h` ending at `end`.
pub(super) fn passed<E: Real>(tau: E, end: E, h: E) -> bool {
    let ahead: f64 = (tau - end).into();
    let dir: f64 = h.into();
    tau != end && ahead * dir < 0.0
}

/// The outputs that rows passed inside their accepted step of round `n` (`passing`: row, its
/// `t` and `h`, its outputs), each `x + Σᵢ bᵢ(θ) gᵢ` with the round's stage derivatives `ks`
/// (each row's own size is in them) and the row's own `θ`, computed as the reference
/// interpolant on the tape computes it. Evaluates the interpolant's extra stage at the round's
/// result where the method has one.
#[allow(clippy::type_complexity)]
pub(super) fn interpolate_rows<R, M, S, E, D>(
    clocked: &Clocked<M, S, E, D>,
    (n, x, host, y_host, held): (usize, &Tensor<S, E, D>, &[E], &[E], &[usize]),
    mut ks: Vec<Tensor<S, E, D>>,
    passing: &[(usize, E, E, core::ops::Range<usize>)],
    times: &SampleTimes<E>,
    (out_host, inside): (&mut [Vec<E>], &mut Vec<(usize, usize, usize, E)>),
    stats: &mut ForwardStats,
) where
    R: RungeKutta,
    M: VectorField<S, E, D>,
    S: StateShape,
    E: Real,
    D: Backend<E>,
{
    let width = host.len() / times.rows();
    if ks.len() < R::INTERPOLANT_STAGES {
        // The extra stage g(2n + 1, y) at the state the round leaves (held rows where they were).
        let mut y = y_host.to_vec();
        for &i in held {
            let r = i * width..(i + 1) * width;
            y[r.clone()].copy_from_slice(&host[r]);
        }
        let y = x.device().tensor_from_vec(y, *x.shape());
        ks.push(crate::rk::eval(
            clocked,
            Clock::<S, E, D>::start(n) + E::one(),
            y,
        ));
        stats.nfe += 1;
    }
    let ks: Vec<Vec<E>> = ks.iter().map(|k| k.as_vec()).collect();
    for (i, t, h, outputs) in passing {
        let r = i * width..(i + 1) * width;
        for k in outputs.clone() {
            let theta = (times.row(*i)[k] - *t) / *h;
            let mut o = host[r.clone()].to_vec();
            for (stage, row) in R::INTERPOLANT.iter().enumerate() {
                if row.iter().all(|&c| c == 0.0) {
                    continue;
                }
                let Some(g) = ks.get(stage) else { continue };
                let w = E::one() * interpolant_weight(row, theta);
                for (o, &g) in o.iter_mut().zip(&g[r.clone()]) {
                    *o += g * w;
                }
            }
            out_host[k][r.clone()].copy_from_slice(&o);
            inside.push((n, k, *i, theta));
        }
    }
}
