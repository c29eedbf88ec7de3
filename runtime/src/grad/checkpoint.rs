//! The adaptive checkpoint adjoint (ACA, Zhuang et al., ICML 2020): the same checkpoints as the
//! symplectic adjoint, but each step is recomputed on a tape through all its stages and
//! differentiated as a whole, so one step's graph (s evaluations) is alive at a time.

use dfdx::nn::tensor_collection::TensorCollection;
use dfdx::nn::ZeroGrads;
use dfdx::prelude::*;

use super::{add, all_finite, generic, missing, pullback, Cotangents, OutputGrads};
use crate::backend::Backend;
use crate::dense::OutputsBackward;
use crate::error::Error;
use crate::field::VectorField;
use crate::integrate::Forward;
use crate::real::Real;
use crate::rk::RungeKutta;
use crate::shape::StateShape;

pub(crate) fn backward<R, M, S, E, D>(
    model: &M,
    fwd: &mut Forward<S, E, D>,
    out: &OutputGrads<S, E, D>,
) -> Result<Cotangents<S, E, D>, Error>
where
    R: RungeKutta,
    M: VectorField<S, E, D> + TensorCollection<E, D>,
    S: StateShape,
    E: Real,
    D: Backend<E>,
{
    let mut params = model.try_alloc_grads().map_err(Error::device)?;
    let mut ws = crate::rk::Workspace::new();
    let mut nfe_rebuild = 0;
    let n_steps = fwd.checkpoints.len();
    let mut lambda = out[0].device().zeros_like(out[0].shape());
    let mut walk = OutputsBackward::new(&fwd.out_at);
    let mut host = Vec::new();
    let mut non_finite_at = None;
    let mut nfe_vjp = 0;
    for n in (0..n_steps).rev() {
        for k in walk.at_boundary(n + 1) {
            lambda = add(lambda, &out[k]);
        }
        // Outputs inside step n: their interpolants are recorded with the step.
        let (thetas, cots): (Vec<E>, Vec<_>) = walk
            .inside(n)
            .into_iter()
            .map(|(k, theta)| (theta, out[k].clone()))
            .unzip();
        let (t, h) = fwd.checkpoints.step(n).ok_or_else(|| missing("step", n))?;
        let (x, recomputed) = fwd
            .checkpoints
            .state(n, &mut |t, h, x| R::step(model, t, h, x, None, &mut ws).y)
            .ok_or_else(|| missing("state", n))?;
        nfe_rebuild += recomputed * R::STAGES;
        let cotangent = lambda.clone();
        let (x_bar, acc) = pullback(params, x, |x| {
            if thetas.is_empty() {
                return (generic::step::<R, _, _, _, _, _>(model, t, h, x) * cotangent)
                    .sum::<Rank0, _>();
            }
            let (y, outputs) =
                generic::step_with_outputs::<R, _, _, _, _, _>(model, t, h, x, &thetas);
            let mut loss = (y * cotangent).sum::<Rank0, _>();
            for (o, c) in outputs.into_iter().zip(cots) {
                loss = loss + (o * c).sum::<Rank0, _>();
            }
            loss
        })?;
        nfe_vjp += if thetas.is_empty() {
            R::STAGES
        } else {
            R::INTERPOLANT_STAGES
        };
        params = acc;
        lambda = x_bar;
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
