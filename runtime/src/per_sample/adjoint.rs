//! The continuous adjoint with each row on its own clock: the state, its adjoint and the
//! parameter cotangent integrated backwards as in [`grad::adjoint`](crate::grad::adjoint), each
//! row from its last output time to its first with its own adaptive steps (its own error norm
//! over its state and adjoint entries, its own copy of the controller), reset to the forward's
//! output and its cotangent added at each of its own output times. Like the forward, a round of
//! per-row steps is one step of size 1 of the augmented system on the row-scaled field
//! ([`Clocked`](super::clock::Clocked)): `θ̄` then collects each row's own quadrature. A round
//! in which some rows are rejected is taken again with those rows at size zero, so that only
//! accepted steps reach `θ̄`. Approximate by nature, as the continuous adjoint always is.

use std::cell::RefCell;
use std::rc::Rc;

use dfdx::prelude::*;

use super::clock::Clock;
use super::{in_row, SampleTimes};
use crate::backend::Backend;
use crate::controller::adaptive::{Adaptive, Limits};
use crate::controller::{rms_norm, Attempt, StepControl, StepSizeController};
use crate::error::Error;
use crate::grad::adjoint::aug_step;
use crate::grad::{merge_params, Back, Cotangents, Model};
use crate::options::Stepping;
use crate::real::Real;
use crate::rk::RungeKutta;
use crate::shape::StateShape;
use crate::stats::BackwardStats;

/// The reverse pass of [`GradMethod::Adjoint`](crate::GradMethod::Adjoint) for a solve with
/// output times per sample; `back.model` is the row-scaled field whose clock is `clock`.
pub(crate) fn reverse<R, M, S, E, D>(
    back: &mut Back<'_, M, S, E, D>,
    clock: &Rc<RefCell<Clock<S, E, D>>>,
    times: &SampleTimes<E>,
    controllers: &mut [Box<dyn StepSizeController>],
) -> Result<Cotangents<S, E, D>, Error>
where
    R: RungeKutta,
    M: Model<S, E, D>,
    S: StateShape,
    E: Real,
    D: Backend<E>,
{
    let (model, ys, out, opts) = (back.model, back.ys, back.out, back.opts);
    let (tol, embedded) = match (opts.stepping, R::EMBEDDED_ORDER) {
        (Stepping::Adaptive { rtol, atol }, Some(q)) => ((rtol, atol), q),
        _ => return Err(Error::NotAdaptive { solver: R::NAME }),
    };
    let (batch, n_out) = (times.rows(), times.len());
    let last = n_out - 1;
    // The forward's outputs and their cotangents, on the host once.
    let outputs: Vec<Vec<E>> = (0..n_out)
        .map(|k| S::unstack(ys.clone(), k).as_vec())
        .collect();
    let cots: Vec<Vec<E>> = out.iter().map(|o| o.as_vec()).collect();
    let mut x = outputs[last].clone();
    let mut a = cots[last].clone();
    let width = x.len().checked_div(batch).unwrap_or(0);
    let like = out[last].clone();
    let tensor = |v: Vec<E>| like.device().tensor_from_vec(v, *like.shape());
    // Each row's first proposal: its last forward step (from the forward's rounds).
    let h0: Vec<f64> = {
        let clock = clock.borrow();
        (0..batch)
            .map(|i| {
                (0..clock.len())
                    .rev()
                    .map(|n| clock.round(n).1[i])
                    .find(|h| *h != E::zero())
                    .map_or(1.0, |h| Into::<f64>::into(h).abs())
            })
            .collect()
    };
    let limits = Limits {
        max_steps: opts.max_steps,
        min_step: opts.min_step,
    };
    let mut next: Vec<usize> = vec![last; batch];
    let mut t: Vec<E> = (0..batch).map(|i| times.row(i)[last]).collect();
    let mut controls: Vec<Adaptive<'_, E>> = controllers
        .iter_mut()
        .enumerate()
        .map(|(i, c)| {
            let row = times.row(i);
            let span: f64 = (row[0] - row[last]).into();
            let dir = if span < 0.0 { -1.0 } else { 1.0 };
            Adaptive::new(c.as_mut(), limits, dir, embedded + 1, h0[i], None)
        })
        .collect();
    let mut params = Gradients::leaky();
    let (mut nfe_vjp, mut rounds) = (0, 0);
    let mut non_finite_at = None;
    let mut h = vec![E::zero(); batch];
    let mut attempts: Vec<Option<Attempt<E>>> = vec![None; batch];
    loop {
        // At a row's output time: the forward's state there, and the output's cotangent.
        let mut any = false;
        for i in 0..batch {
            let r = i * width..(i + 1) * width;
            while next[i] > 0 && times.row(i)[next[i] - 1] == t[i] {
                next[i] -= 1;
                x[r.clone()].copy_from_slice(&outputs[next[i]][r.clone()]);
                for (a, c) in a[r.clone()].iter_mut().zip(&cots[next[i]][r.clone()]) {
                    *a += *c;
                }
            }
            attempts[i] = None;
            if next[i] > 0 {
                let target = times.row(i)[next[i] - 1];
                attempts[i] = controls[i].attempt(t[i], target).map_err(in_row(i))?;
            }
            h[i] = attempts[i].map_or(E::zero(), |a| a.h);
            any |= attempts[i].is_some();
        }
        if !any {
            break;
        }
        clock.borrow_mut().set_round(0, &t, &h);
        let (xt, at) = (tensor(x.clone()), tensor(a.clone()));
        let mut st = aug_step::<R, _, _, _, _>(
            model,
            Clock::<S, E, D>::start(0),
            E::one(),
            (&xt, &at),
            true,
        )?;
        nfe_vjp += R::STAGES;
        let [ex, ea] = st
            .err
            .as_ref()
            .map(|[ex, ea]| [ex.as_vec(), ea.as_vec()])
            .ok_or(Error::NotAdaptive { solver: R::NAME })?;
        let (yx, ya) = (st.x.as_vec(), st.a.as_vec());
        let mut held = Vec::new();
        let mut moved = Vec::new();
        for i in 0..batch {
            let Some(attempt) = attempts[i] else { continue };
            let r = i * width..(i + 1) * width;
            // A cotangent that is not finite cannot be error-controlled; the state part still is.
            let finite = a[r.clone()].iter().all(|v| v.is_finite());
            let mut e = ex[r.clone()].to_vec();
            let mut p = x[r.clone()].to_vec();
            let mut q = yx[r.clone()].to_vec();
            if finite {
                e.extend_from_slice(&ea[r.clone()]);
                p.extend_from_slice(&a[r.clone()]);
                q.extend_from_slice(&ya[r.clone()]);
            }
            let norm = rms_norm(&e, &p, &q, tol, None);
            if controls[i].decide(t[i], norm, &attempt) {
                moved.push((i, attempt.end));
            } else {
                held.push(i);
            }
        }
        if moved.is_empty() {
            continue;
        }
        if !held.is_empty() {
            // Again without the rejected rows, so that only accepted steps reach θ̄ (the rows
            // that moved get the same bits: rows do not mix).
            let mut clock = clock.borrow_mut();
            for &i in &held {
                clock.hold(0, i);
            }
            drop(clock);
            st = aug_step::<R, _, _, _, _>(
                model,
                Clock::<S, E, D>::start(0),
                E::one(),
                (&xt, &at),
                false,
            )?;
            nfe_vjp += R::STAGES;
        }
        merge_params(model, &mut st.params, &mut params, None)?;
        let (yx, ya) = (st.x.as_vec(), st.a.as_vec());
        for &(i, end) in &moved {
            let r = i * width..(i + 1) * width;
            x[r.clone()].copy_from_slice(&yx[r.clone()]);
            a[r.clone()].copy_from_slice(&ya[r.clone()]);
            t[i] = end;
            if non_finite_at.is_none() && a[r].iter().any(|v| !v.is_finite()) {
                non_finite_at = Some(end.into());
            }
        }
        rounds += 1;
    }
    let rejected = controls.iter().map(|c| c.counts().1).sum();
    Ok(Cotangents {
        x0: tensor(a),
        params,
        stats: BackwardStats {
            nfe_vjp,
            steps: rounds,
            rejected,
            non_finite_at,
            ..BackwardStats::default()
        },
    })
}
