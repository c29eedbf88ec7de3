//! The adaptive checkpoint adjoint (ACA, Zhuang et al., ICML 2020): the same stored states as
//! the symplectic adjoint, but each step is recomputed on a tape through all its stages (and
//! its interpolated outputs) and differentiated as a whole, so one step's graph (s evaluations)
//! is alive at a time.

use dfdx::prelude::*;

use super::walk::{walk, StepBack};
use super::{reference, Back, Cotangents, GradientMethod, Model, Products};
use crate::backend::Backend;
use crate::error::Error;
use crate::real::Real;
use crate::rk::RungeKutta;
use crate::shape::StateShape;
use crate::stats::BackwardStats;
use crate::store::{CheckpointPolicy, Keep};

/// `GradMethod::Aca`.
pub(crate) struct Aca;

impl GradientMethod for Aca {
    fn keep(_: CheckpointPolicy) -> Keep {
        Keep::States
    }

    fn reverse<R, M, S, E, D>(back: &mut Back<'_, M, S, E, D>) -> Result<Cotangents<S, E, D>, Error>
    where
        R: RungeKutta,
        M: Model<S, E, D>,
        S: StateShape,
        E: Real,
        D: Backend<E>,
    {
        let model = back.model;
        let mut products = Products::new(model)?;
        let mut nfe_vjp = 0;
        let n_steps = back.record.grid.len();
        let walked = walk::<R, _, _, _, _>(back, |step| {
            let StepBack {
                t,
                h,
                x,
                lambda,
                inside,
                inside_rows,
                ..
            } = step;
            // Outputs inside the step: their interpolants are recorded with the step.
            let (thetas, cots): (Vec<E>, Vec<_>) = inside
                .into_iter()
                .map(|(theta, o)| (theta, o.clone()))
                .unzip();
            let (row_thetas, row_cots): (Vec<Vec<E>>, Vec<_>) = inside_rows.into_iter().unzip();
            let interpolated = !thetas.is_empty() || !row_thetas.is_empty();
            let x_bar = products.pull(x, |x| {
                if !row_thetas.is_empty() {
                    let (y, outputs) = reference::step_with_row_outputs::<R, _, _, _, _, _>(
                        model,
                        t,
                        h,
                        x,
                        &row_thetas,
                    );
                    let mut loss = (y * lambda).sum::<Rank0, _>();
                    for (o, c) in outputs.into_iter().zip(row_cots) {
                        loss = loss + (o * c).sum::<Rank0, _>();
                    }
                    return loss;
                }
                if thetas.is_empty() {
                    return (reference::step::<R, _, _, _, _, _>(model, t, h, x) * lambda)
                        .sum::<Rank0, _>();
                }
                let (y, outputs) =
                    reference::step_with_outputs::<R, _, _, _, _, _>(model, t, h, x, &thetas);
                let mut loss = (y * lambda).sum::<Rank0, _>();
                for (o, c) in outputs.into_iter().zip(cots) {
                    loss = loss + (o * c).sum::<Rank0, _>();
                }
                loss
            })?;
            nfe_vjp += if !interpolated {
                R::STAGES
            } else {
                R::INTERPOLANT_STAGES
            };
            Ok(x_bar)
        })?;
        Ok(Cotangents {
            x0: walked.lambda,
            params: products.params()?,
            stats: BackwardStats {
                nfe_vjp,
                nfe_rebuild: walked.nfe_rebuild,
                steps: n_steps,
                recomputed_steps: walked.recomputed_steps,
                non_finite_at: walked.non_finite_at,
                ..BackwardStats::default()
            },
        })
    }
}
