//! The reverse walk that `symplectic` and `aca` share: over the accepted steps, last first,
//! folding in the outputs' cotangents where they lie (at a step boundary, or interpolated inside
//! a step), getting each step's start state back from the store, and watching for a cotangent
//! that stops being finite. What a method does with one step is its own.

use dfdx::prelude::*;

use super::{add, Back};
use crate::backend::Backend;
use crate::controller::all_finite;
use crate::error::Error;
use crate::field::VectorField;
use crate::forward::outputs::{OutputAt, RowOutputs};
use crate::real::Real;
use crate::rk::{RungeKutta, Workspace};
use crate::shape::StateShape;

/// One step of the walk back, as a method's reverse step receives it.
pub(crate) struct StepBack<'a, S: Shape, E: Real, D: Backend<E>> {
    /// The step's start time and (signed) size.
    pub t: E,
    pub h: E,
    /// The state at the step's start.
    pub x: Tensor<S, E, D>,
    /// The cotangent of the state at the step's end (the outputs there included).
    pub lambda: Tensor<S, E, D>,
    /// The outputs interpolated inside the step, `(θ, ō)`, last first.
    pub inside: Vec<(E, &'a Tensor<S, E, D>)>,
    /// With per-sample steps, the outputs interpolated inside the step with each row at its own
    /// `θ`: `(θ per row, ō)`, `ō` zero in the rows that have no output there.
    pub inside_rows: Vec<RowOutput<S, E, D>>,
    /// The stage states the store kept for the step (the stage store).
    pub stages: Option<&'a [Tensor<S, E, D>]>,
    /// Buffers shared with the recomputation of states.
    pub ws: &'a mut Workspace<S, E, D>,
}

/// An output interpolated inside a step with each row at its own `θ`: `(θ per row, ō)`.
pub(crate) type RowOutput<S, E, D> = (Vec<E>, Tensor<S, E, D>);

/// What the walk produced besides the method's own results.
pub(crate) struct Walked<S: Shape, E: Real, D: Backend<E>> {
    /// The cotangent of the initial state.
    pub lambda: Tensor<S, E, D>,
    /// Evaluations spent recomputing states the store did not keep.
    pub nfe_rebuild: usize,
    /// Steps recomputed.
    pub recomputed_steps: usize,
    /// Where the state cotangent first stopped being finite.
    pub non_finite_at: Option<f64>,
}

/// Walks the accepted steps of `back`'s solve in reverse, calling `step_back` for each with the
/// cotangent of its end state; `step_back` returns the cotangent of its start state.
pub(crate) fn walk<R, M, S, E, D>(
    back: &mut Back<'_, M, S, E, D>,
    mut step_back: impl FnMut(StepBack<'_, S, E, D>) -> Result<Tensor<S, E, D>, Error>,
) -> Result<Walked<S, E, D>, Error>
where
    R: RungeKutta,
    M: VectorField<S, E, D>,
    S: StateShape,
    E: Real,
    D: Backend<E>,
{
    let model = back.model;
    let out = back.out;
    let record = &mut *back.record;
    // One workspace for recomputing states (EveryK, Budget) and for the method's steps: a
    // recomputed state still held by the store is copied before its slot is written again.
    let mut ws = Workspace::new();
    let mut nfe_rebuild = 0;
    let n_steps = record.grid.len();
    let mut lambda = out[0].device().zeros_like(out[0].shape());
    let mut outputs = OutputsBackward::new(&record.out_at);
    let mut host = Vec::new();
    let mut non_finite_at = None;
    // With per-sample steps, each row's outputs lie where that row reached them.
    let rows = record.rows.as_ref();
    for n in (0..n_steps).rev() {
        // Output jumps: outputs at the end of step n.
        match rows {
            Some(rows) => lambda = add_rows(lambda, out, rows, n + 1),
            None => {
                for k in outputs.at_boundary(n + 1) {
                    lambda = add(lambda, &out[k]);
                }
            }
        }
        // Outputs inside step n, interpolated.
        let inside: Vec<_> = outputs
            .inside(n)
            .into_iter()
            .map(|(k, theta)| (theta, &out[k]))
            .collect();
        let inside_rows: Vec<_> = match rows {
            Some(rows) => rows
                .inside(n)
                .map(|(k, thetas, members)| {
                    let o = if members.len() == rows.batch {
                        out[k].clone()
                    } else {
                        out[k].clone() * rows.mask(&out[k], &members)
                    };
                    (thetas, o)
                })
                .collect(),
            None => Vec::new(),
        };
        let (t, h) = record.grid.step(n).ok_or_else(|| missing("step", n))?;
        let (x, recomputed) = record
            .store
            .state(n, |m| record.grid.step(m), &mut |t, h, x| {
                R::step(model, t, h, x, None, &mut ws).y
            })
            .ok_or_else(|| missing("state", n))?;
        nfe_rebuild += recomputed * R::STAGES;
        lambda = step_back(StepBack {
            t,
            h,
            x,
            lambda,
            inside,
            inside_rows,
            stages: record.store.stages(n),
            ws: &mut ws,
        })?;
        // A non-finite cotangent is not a failure: it flows on as it would through backprop
        // (parameter cotangents the NaN never reaches stay finite); the report says where.
        if non_finite_at.is_none() && !all_finite(&lambda, &mut host) {
            non_finite_at = Some(t.into());
        }
    }
    match rows {
        Some(rows) => lambda = add_rows(lambda, out, rows, 0),
        None => {
            for k in outputs.rest() {
                lambda = add(lambda, &out[k]);
            }
        }
    }
    if non_finite_at.is_none() && !all_finite(&lambda, &mut host) {
        non_finite_at = record.grid.step(0).map(|(t, _)| t.into()).or(Some(0.0));
    }
    Ok(Walked {
        lambda,
        nfe_rebuild,
        recomputed_steps: record.store.recomputed(),
        non_finite_at,
    })
}

/// `λ` plus, for each row, the cotangents of the outputs that row reached at boundary `b`.
fn add_rows<S: Shape, E: Real, D: Backend<E>>(
    mut lambda: Tensor<S, E, D>,
    out: &[Tensor<S, E, D>],
    rows: &RowOutputs<E>,
    b: usize,
) -> Tensor<S, E, D> {
    for (k, members) in rows.at(b) {
        let masked = if members.len() == rows.batch {
            out[k].clone()
        } else {
            out[k].clone() * rows.mask(&lambda, members)
        };
        lambda = add(lambda, &masked);
    }
    lambda
}

/// The error for a step or state the forward should have kept and did not (a bug, not a user
/// error: the solve keeps what its gradient method reads).
fn missing(what: &str, n: usize) -> Error {
    Error::internal(format!("the forward record has no {what} for step {n}"))
}

/// The reverse passes' walk over the outputs, last first: after step `n`'s outputs at its end
/// boundary ([`Self::at_boundary`]`(n + 1)`) come those interpolated inside it
/// ([`Self::inside`]`(n)`), and what is left at the end ([`Self::rest`]) lies at the initial
/// state.
pub(crate) struct OutputsBackward<'a, E> {
    out_at: &'a [OutputAt<E>],
    k: usize,
}

impl<'a, E: Real> OutputsBackward<'a, E> {
    pub fn new(out_at: &'a [OutputAt<E>]) -> Self {
        OutputsBackward {
            out_at,
            k: out_at.len(),
        }
    }

    /// The indices of the outputs exactly at step boundary `b`, last first.
    pub fn at_boundary(&mut self, b: usize) -> core::iter::Rev<core::ops::Range<usize>> {
        let end = self.k;
        while self.k > 0 && self.out_at[self.k - 1] == OutputAt::boundary(b) {
            self.k -= 1;
        }
        (self.k..end).rev()
    }

    /// The outputs interpolated inside step `n`, as `(index, θ)`, last first.
    pub fn inside(&mut self, n: usize) -> Vec<(usize, E)> {
        let mut taken = Vec::new();
        while let Some(&OutputAt {
            after,
            theta: Some(theta),
        }) = self.k.checked_sub(1).map(|i| &self.out_at[i])
        {
            if after != n {
                break;
            }
            self.k -= 1;
            taken.push((self.k, theta));
        }
        taken
    }

    /// The indices of the outputs not yet taken, last first.
    pub fn rest(&mut self) -> core::iter::Rev<core::ops::Range<usize>> {
        let end = core::mem::take(&mut self.k);
        (0..end).rev()
    }
}

/// `Σⱼ bᵢ(θⱼ) ōⱼ` for each of the interpolant's stages, over the outputs `(θⱼ, ōⱼ)` inside one
/// step: the terms [`RungeKutta::adjoint_step`] adds to the stage cotangents. Stages whose
/// polynomial is identically zero get a handle to the first cotangent (never read).
pub(crate) fn stage_cotangents<R, S, E, D>(outs: &[(E, &Tensor<S, E, D>)]) -> Vec<Tensor<S, E, D>>
where
    R: RungeKutta,
    S: Shape,
    E: Real,
    D: Device<E>,
{
    let m = R::INTERPOLANT_STAGES;
    let mut weights = vec![E::zero(); m * outs.len()];
    for (j, (theta, _)) in outs.iter().enumerate() {
        R::interpolant_weights(*theta, &mut weights[j * m..(j + 1) * m]);
    }
    (0..m)
        .map(|i| {
            let terms: Vec<(E, &Tensor<S, E, D>)> = outs
                .iter()
                .enumerate()
                .map(|(j, (_, o))| (weights[j * m + i], *o))
                .filter(|(w, _)| *w != E::zero())
                .collect();
            match terms.split_first() {
                Some((&first, rest)) => crate::rk::combine(first, rest),
                // Never read: bᵢ(θ) is identically zero.
                None if R::INTERPOLANT[i].iter().all(|&c| c == 0.0) => outs[0].1.clone(),
                // bᵢ(θⱼ) = 0 at every output (a root of the polynomial, or θ = 1 for Hermite).
                None => outs[0].1.device().zeros_like(outs[0].1.shape()),
            }
        })
        .collect()
}

/// [`stage_cotangents`] with each row at its own `θ`: `Σⱼ bᵢ(θⱼ) ōⱼ` per interpolant stage, the
/// weights spread over each row's entries.
pub(crate) fn row_stage_cotangents<R, S, E, D>(outs: &[RowOutput<S, E, D>]) -> Vec<Tensor<S, E, D>>
where
    R: RungeKutta,
    S: Shape,
    E: Real,
    D: Backend<E>,
{
    let like = &outs[0].1;
    R::INTERPOLANT
        .iter()
        .map(|row| {
            if row.iter().all(|&c| c == 0.0) {
                // Never read: bᵢ(θ) is identically zero.
                return like.clone();
            }
            let mut acc = like.device().zeros_like(like.shape());
            for (thetas, o) in outs {
                let w: Vec<E> = thetas
                    .iter()
                    .map(|&theta| super::reference::interpolant_weight(row, theta))
                    .collect();
                acc = add(acc, &(o.clone() * crate::per_sample::per_row(o, &w)));
            }
            acc
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backward_walk_takes_every_output_once_where_it_lies() {
        let b = OutputAt::<f64>::boundary;
        let inside = |after, theta| OutputAt {
            after,
            theta: Some(theta),
        };
        // Two outputs at the start, two inside step 0, one at boundary 1 (twice), one inside
        // step 2, one at the end of step 2 (boundary 3).
        let out_at = [
            b(0),
            b(0),
            inside(0, 0.25),
            inside(0, 0.75),
            b(1),
            b(1),
            inside(2, 0.5),
            b(3),
        ];
        let mut walk = OutputsBackward::new(&out_at);
        let mut seen = Vec::new();
        for n in (0..3).rev() {
            seen.push(walk.at_boundary(n + 1).collect::<Vec<_>>());
            let inner = walk.inside(n);
            seen.push(inner.iter().map(|&(k, _)| k).collect());
            for (k, theta) in inner {
                assert_eq!(out_at[k].theta, Some(theta));
            }
        }
        seen.push(walk.rest().collect());
        let expected: [&[usize]; 7] = [&[7], &[6], &[], &[], &[5, 4], &[3, 2], &[1, 0]];
        assert_eq!(seen, expected);
        assert_eq!(walk.rest().count(), 0);
    }
}
