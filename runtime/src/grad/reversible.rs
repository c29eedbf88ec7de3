//! Reversible Runge–Kutta (McCallum & Foster, "Efficient, accurate and stable gradients for
//! neural ODEs", 2024): the forward runs the reversible scheme on the tableau
//! (`forward/scheme.rs`), whose step can be inverted algebraically; the way back rebuilds each
//! step's pair from the next one instead of storing it, and pulls the cotangents of the pair
//! through both base steps with the generated backward step, on the stages the rebuild has
//! just recorded. Memory: the final pair, the step grid, one step's stages and one evaluation's
//! graph, whatever the number of steps.
//!
//! For `y' = λ(y − z) + a`, `a = Ψ_h(z)`, `z' = (z + y') − b`, `b = Ψ_{−h}(y')`, the cotangents
//! `(ȳ', z̄')` of a step's end give those of its start:
//! `ŷ = ȳ' + z̄' − J_bᵀ z̄'`, `ȳ = λ ŷ`, `z̄ = z̄' − λ ŷ + J_aᵀ ŷ`, with `J_bᵀ` and `J_aᵀ` (and the
//! parameter cotangents `−(∂b/∂θ)ᵀ z̄'` and `(∂a/∂θ)ᵀ ŷ`) from the symplectic-partner sweep.

use dfdx::prelude::*;

use super::walk::OutputsBackward;
use super::{add, Back, Cotangents, GradientMethod, Model, Products};
use crate::backend::Backend;
use crate::controller::all_finite;
use crate::error::Error;
use crate::forward::scheme::reverse_reversible_step;
use crate::real::Real;
use crate::rk::{AdjointInput, RungeKutta, StoredStages, Workspace};
use crate::shape::StateShape;
use crate::stats::BackwardStats;
use crate::store::{CheckpointPolicy, Keep};

/// `GradMethod::Reversible`.
pub(crate) struct Reversible;

impl GradientMethod for Reversible {
    /// Nothing per step but the step grid, which every solve records (and the final pair).
    fn keep(_: CheckpointPolicy) -> Keep {
        Keep::Grid
    }

    const DIFFERENTIATES_REVERSIBLE: bool = true;

    fn reverse<R, M, S, E, D>(back: &mut Back<'_, M, S, E, D>) -> Result<Cotangents<S, E, D>, Error>
    where
        R: RungeKutta,
        M: Model<S, E, D>,
        S: StateShape,
        E: Real,
        D: Backend<E>,
    {
        let model = back.model;
        let (out, record) = (back.out, &*back.record);
        let grid = &record.grid;
        let n_steps = grid.len();
        let last = record.out_at.len().checked_sub(1);
        let (coupling, mut y, mut z) = match (last, &record.reversible) {
            (Some(last), Some((c, z))) => (*c, S::unstack(back.ys.clone(), last), z.clone()),
            _ => return Err(Error::internal("the reversible solve kept no final pair")),
        };
        let lambda = E::from_f64_lossy(coupling);
        let x0 = S::unstack(back.ys.clone(), 0);
        let mut y_bar = x0.device().zeros_like(x0.shape());
        let mut z_bar = y_bar.clone();
        let mut products = Products::new(model)?;
        let mut nfe_rebuild = 0;
        let mut vjp = |t: E, x: Tensor<S, E, D>, v: Tensor<S, E, D>| products.vjp(t, x, v);
        // The rebuild records the stage states the backward sweeps read, one workspace per
        // base step.
        let (mut ws_a, mut ws_b) = (Workspace::new(), Workspace::new());
        ws_a.keep_stages(true);
        ws_b.keep_stages(true);
        let mut outputs = OutputsBackward::new(&record.out_at);
        let mut host = Vec::new();
        let mut non_finite_at = None;
        for n in (0..n_steps).rev() {
            for k in outputs.at_boundary(n + 1) {
                y_bar = add(y_bar, &out[k]);
            }
            let missing = || Error::internal(format!("the step grid has no step {n}"));
            let (t, h) = grid.step(n).ok_or_else(missing)?;
            let end = grid.boundary(n + 1).ok_or_else(missing)?;
            // Rebuild: b = Ψ_{−h}(y') from the step's end, then z, then a = Ψ_h(z), then y.
            let b = R::step(model, end, -h, &y, None, &mut ws_b);
            let b_stages = ws_b.take_kept();
            let mut a = None;
            let (y0, z0) = reverse_reversible_step(lambda, (&y, &z), &b.y, |z| {
                let step = R::step(model, t, h, z, None, &mut ws_a);
                let result = step.y.clone();
                a = Some(step);
                result
            });
            let a = a.ok_or_else(|| Error::internal("the rebuild took no step"))?;
            let a_stages = ws_a.take_kept();
            nfe_rebuild += a.evals + b.evals;
            // Through z' = (z + y') − b.
            let minus_z_bar = z_bar.clone().negate();
            let through_b = R::adjoint_step(
                model,
                AdjointInput {
                    t: end,
                    h: -h,
                    x: &y,
                    y_bar: &minus_z_bar,
                    stored: Some(StoredStages {
                        stages: &b_stages,
                        y: &b.y,
                    }),
                    outputs: None,
                },
                &mut vjp,
                &mut ws_b,
            )?;
            let y_hat = add(add(y_bar, &z_bar), &through_b.x_bar);
            // Through y' = λ(y − z) + Ψ_h(z).
            let through_a = R::adjoint_step(
                model,
                AdjointInput {
                    t,
                    h,
                    x: &z0,
                    y_bar: &y_hat,
                    stored: Some(StoredStages {
                        stages: &a_stages,
                        y: &a.y,
                    }),
                    outputs: None,
                },
                &mut vjp,
                &mut ws_a,
            )?;
            nfe_rebuild += through_a.evals + through_b.evals;
            let scaled = y_hat * lambda;
            z_bar = add(z_bar - scaled.clone(), &through_a.x_bar);
            y_bar = scaled;
            (y, z) = (y0, z0);
            if non_finite_at.is_none()
                && !(all_finite(&y_bar, &mut host) && all_finite(&z_bar, &mut host))
            {
                non_finite_at = Some(t.into());
            }
        }
        for k in outputs.rest() {
            y_bar = add(y_bar, &out[k]);
        }
        let x0_bar = add(y_bar, &z_bar);
        if non_finite_at.is_none() && !all_finite(&x0_bar, &mut host) {
            non_finite_at = grid.step(0).map(|(t, _)| t.into()).or(Some(0.0));
        }
        let reconstruction_error = relative_difference(&[&y, &z], &x0);
        let limit = back
            .opts
            .reconstruction_limit
            .unwrap_or_else(|| Into::<f64>::into(E::epsilon()).sqrt());
        // (A NaN drift is infinite: `relative_difference` maps it so.)
        if reconstruction_error > limit {
            return Err(Error::ReconstructionDrift {
                drift: reconstruction_error,
                limit,
            });
        }
        let nfe_vjp = products.count;
        let params = products.params()?;
        Ok(Cotangents {
            x0: x0_bar,
            params,
            stats: BackwardStats {
                nfe_vjp,
                nfe_rebuild,
                steps: n_steps,
                non_finite_at,
                reconstruction_error: Some(reconstruction_error),
                ..BackwardStats::default()
            },
        })
    }
}

/// `max ‖r − x‖∞ / ‖x‖∞` over the rebuilt states `r` (`‖x‖∞` taken as 1 when `x` is zero); `∞`
/// when a rebuilt entry is not finite.
fn relative_difference<S: Shape, E: Real, D: Backend<E>>(
    rebuilt: &[&Tensor<S, E, D>],
    x: &Tensor<S, E, D>,
) -> f64 {
    let x = x.as_vec();
    let scale = x
        .iter()
        .map(|&v| Into::<f64>::into(v).abs())
        .fold(0.0, f64::max);
    let scale = if scale > 0.0 { scale } else { 1.0 };
    rebuilt
        .iter()
        .map(|r| {
            r.as_vec()
                .iter()
                .zip(&x)
                .map(|(&a, &b)| {
                    let d = (Into::<f64>::into(a) - Into::<f64>::into(b)).abs();
                    if d.is_nan() {
                        f64::INFINITY
                    } else {
                        d
                    }
                })
                .fold(0.0, f64::max)
        })
        .fold(0.0, f64::max)
        / scale
}
