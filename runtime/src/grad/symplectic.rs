//! The symplectic adjoint (Matsubara, Miyatake & Yaguchi, NeurIPS 2021): walk the accepted steps
//! in reverse; for each, rebuild its stage states from the checkpoint without a tape (or take
//! them from the stage store, `CheckpointPolicy::AllStages`) and run the generated
//! symplectic-partner step, one vector–Jacobian product per live stage.

use dfdx::nn::tensor_collection::TensorCollection;
use dfdx::nn::ZeroGrads;
use dfdx::prelude::*;

use super::{add, all_finite, missing, pullback, Cotangents, OutputGrads};
use crate::backend::Backend;
use crate::dense::{stage_cotangents, OutputAt, OutputsBackward};
use crate::error::Error;
use crate::field::VectorField;
use crate::integrate::Forward;
use crate::real::Real;
use crate::rk::{AdjointInput, RungeKutta, StoredStages};
use crate::shape::StateShape;

pub(crate) fn backward<R, M, S, E, D>(
    model: &M,
    fwd: &mut Forward<S, E, D>,
    ys: &Tensor<S::Stacked, E, D>,
    out: &OutputGrads<S, E, D>,
) -> Result<Cotangents<S, E, D>, Error>
where
    R: RungeKutta,
    M: VectorField<S, E, D> + TensorCollection<E, D>,
    S: StateShape,
    E: Real,
    D: Backend<E>,
{
    // Parameter cotangents accumulate here, on the device, across every product of the pass.
    let mut params = Some(model.try_alloc_grads().map_err(Error::device)?);
    // One workspace for recomputing states (EveryK, Budget) and for the partner steps: a
    // recomputed state still held by the store is copied before its slot is written again.
    let mut ws = crate::rk::Workspace::new();
    let mut nfe_vjp = 0;
    let mut nfe_rebuild = 0;
    let n_steps = fwd.checkpoints.len();
    let mut lambda = out[0].device().zeros_like(out[0].shape());
    let mut walk = OutputsBackward::new(&fwd.out_at);
    let mut host = Vec::new();
    let mut non_finite_at = None;
    // With the stage store, the state at the end of the step being swept (the next step's
    // start, or the final state): the state of the stage only the interpolant reads.
    let keeps_stages = fwd.checkpoints.stages(0).is_some();
    let mut y_end = keeps_stages
        .then(|| {
            let end = OutputAt::boundary(n_steps);
            let last = fwd.out_at.iter().rposition(|at| *at == end)?;
            Some(S::unstack(ys.clone(), last))
        })
        .flatten();
    for n in (0..n_steps).rev() {
        // Output jumps: outputs at the end of step n.
        for k in walk.at_boundary(n + 1) {
            lambda = add(lambda, &out[k]);
        }
        // Outputs inside step n, interpolated: their cotangents join the stage sweep.
        let inside: Vec<_> = walk
            .inside(n)
            .into_iter()
            .map(|(k, theta)| (theta, &out[k]))
            .collect();
        let (t, h) = fwd.checkpoints.step(n).ok_or_else(|| missing("step", n))?;
        let (x, recomputed) = fwd
            .checkpoints
            .state(n, &mut |t, h, x| R::step(model, t, h, x, None, &mut ws).y)
            .ok_or_else(|| missing("state", n))?;
        nfe_rebuild += recomputed * R::STAGES;
        let mut closure =
            |ti: E, xi: Tensor<S, E, D>, v: Tensor<S, E, D>| -> Result<Tensor<S, E, D>, Error> {
                nfe_vjp += 1;
                let acc = params.take().ok_or(Error::Device {
                    message: "gradient store lost by a failed product".into(),
                })?;
                let (x_bar, acc) =
                    pullback(acc, xi, |x| (model.eval(ti, x) * v).sum::<Rank0, _>())?;
                params = Some(acc);
                Ok(x_bar)
            };
        // With the stage store, the recorded stage states replace the rebuild. (A step always
        // records exactly `KEPT_STAGES`; the length check only keeps a bug from indexing past
        // the slice in release builds, and the debug assertion makes the tests catch one.)
        // A step with outputs inside also needs the state only the interpolant reads: the
        // step's result, `y_end`, known whenever stages are (every solve ends on an output at
        // its last boundary).
        let stored = fwd.checkpoints.stages(n);
        debug_assert!(stored.is_none_or(|s| s.len() == R::KEPT_STAGES.len()));
        debug_assert!(stored.is_none() || y_end.is_some());
        let stored = stored
            .filter(|s| s.len() == R::KEPT_STAGES.len())
            .zip(y_end.as_ref())
            .map(|(stages, y)| StoredStages { stages, y });
        let back = {
            let outputs = (!inside.is_empty()).then(|| stage_cotangents::<R, S, E, D>(&inside));
            let input = AdjointInput {
                t,
                h,
                x: &x,
                y_bar: &lambda,
                stored,
                outputs: outputs.as_deref(),
            };
            R::adjoint_step(model, input, &mut closure, &mut ws)?
        };
        nfe_rebuild += back.evals;
        lambda = back.x_bar;
        if keeps_stages {
            y_end = Some(x);
        }
        // The interpolant's direct dependence on x.
        for (_, o) in &inside {
            lambda = add(lambda, o);
        }
        // A non-finite cotangent is not a failure: it flows on as it would through backprop
        // (parameter cotangents the NaN never reaches stay finite); the report says where.
        if non_finite_at.is_none() && !all_finite(&lambda, &mut host) {
            non_finite_at = Some(t.into());
        }
    }
    for k in walk.rest() {
        lambda = add(lambda, &out[k]);
    }
    if non_finite_at.is_none() && !all_finite(&lambda, &mut host) {
        non_finite_at = fwd.checkpoints.step(0).map(|(t, _)| t.into()).or(Some(0.0));
    }
    let params = params.ok_or(Error::Device {
        message: "gradient store lost by a failed product".into(),
    })?;
    Ok(Cotangents {
        x0: lambda,
        params,
        nfe_vjp,
        nfe_rebuild,
        steps: n_steps,
        rejected: 0,
        recomputed_steps: fwd.checkpoints.recomputed(),
        non_finite_at,
    })
}
