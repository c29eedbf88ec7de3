//! The symplectic adjoint (Matsubara, Miyatake & Yaguchi, NeurIPS 2021): walk the accepted steps
//! in reverse; for each, rebuild its stage states from the stored state without a tape (or take
//! them from the stage store, `CheckpointPolicy::AllStages`) and run the generated
//! symplectic-partner step, one vector–Jacobian product per live stage. Memory: the stored
//! states and one evaluation's graph.

use super::walk::{row_stage_cotangents, stage_cotangents, walk, StepBack};
use super::{add, Back, Cotangents, GradientMethod, Model, Products};
use crate::backend::Backend;
use crate::error::Error;
use crate::forward::outputs::OutputAt;
use crate::real::Real;
use crate::rk::{AdjointInput, RungeKutta, StoredStages};
use crate::shape::StateShape;
use crate::stats::BackwardStats;
use crate::store::{CheckpointPolicy, Keep};

/// `GradMethod::Symplectic`.
pub(crate) struct Symplectic;

impl GradientMethod for Symplectic {
    fn keep(policy: CheckpointPolicy) -> Keep {
        // Only this method reads stage states.
        if policy == CheckpointPolicy::AllStages {
            Keep::Stages
        } else {
            Keep::States
        }
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
        let mut nfe_rebuild = 0;
        // With the stage store, the state at the end of the step being swept (the next step's
        // start, or the final state): the state of the stage only the interpolant reads.
        let n_steps = back.record.grid.len();
        let keeps_stages = back.record.store.keeps_stages();
        let mut y_end = keeps_stages
            .then(|| {
                if let Some(end) = &back.record.end {
                    return Some(end.clone());
                }
                let end = OutputAt::boundary(n_steps);
                let last = back.record.out_at.iter().rposition(|at| *at == end)?;
                Some(S::unstack(back.ys.clone(), last))
            })
            .flatten();
        let walked = walk::<R, _, _, _, _>(back, |step| {
            let StepBack {
                t,
                h,
                x,
                lambda,
                inside,
                inside_rows,
                stages,
                ws,
                ..
            } = step;
            // With the stage store, the recorded stage states replace the rebuild. (A step always
            // records exactly `KEPT_STAGES`; the length check only keeps a bug from indexing past
            // the slice in release builds, and the debug assertion makes the tests catch one.)
            // A step with outputs inside also needs the state only the interpolant reads: the
            // step's result, `y_end`.
            debug_assert!(stages.is_none_or(|s| s.len() == R::KEPT_STAGES.len()));
            debug_assert!(stages.is_none() || y_end.is_some());
            let stored = stages
                .filter(|s| s.len() == R::KEPT_STAGES.len())
                .zip(y_end.as_ref())
                .map(|(stages, y)| StoredStages { stages, y });
            let outputs = if !inside_rows.is_empty() {
                Some(row_stage_cotangents::<R, S, E, D>(&inside_rows))
            } else {
                (!inside.is_empty()).then(|| stage_cotangents::<R, S, E, D>(&inside))
            };
            let input = AdjointInput {
                t,
                h,
                x: &x,
                y_bar: &lambda,
                stored,
                outputs: outputs.as_deref(),
            };
            let back = R::adjoint_step(model, input, &mut |t, x, v| products.vjp(t, x, v), ws)?;
            nfe_rebuild += back.evals;
            let mut lambda = back.x_bar;
            if keeps_stages {
                y_end = Some(x);
            }
            // The interpolant's direct dependence on x.
            for (_, o) in &inside {
                lambda = add(lambda, o);
            }
            for (_, o) in &inside_rows {
                lambda = add(lambda, o);
            }
            Ok(lambda)
        })?;
        let nfe_vjp = products.count;
        Ok(Cotangents {
            x0: walked.lambda,
            params: products.params()?,
            stats: BackwardStats {
                nfe_vjp,
                nfe_rebuild: nfe_rebuild + walked.nfe_rebuild,
                steps: n_steps,
                recomputed_steps: walked.recomputed_steps,
                non_finite_at: walked.non_finite_at,
                ..BackwardStats::default()
            },
        })
    }
}
