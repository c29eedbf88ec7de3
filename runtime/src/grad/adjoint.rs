//! The continuous adjoint (Chen et al., NeurIPS 2018): integrate the state, its adjoint and the
//! parameter cotangent backwards in time with the same tableau and tolerances,
//! `dx/dt = f`, `da/dt = −J_xᵀ a`, `dθ̄/dt = −J_θᵀ a`. Little memory, but the result is the
//! gradient of the continuous problem, not of the discrete solve: it is approximate by nature.
//! The state is reset to the forward solution at every output time.

use dfdx::nn::tensor_collection::TensorCollection;
use dfdx::prelude::*;

use super::{add, merge_params, weighted_vjp, Cotangents, OutputGrads};
use crate::backend::Backend;
use crate::control::{rms_norm, StepSizeController};
use crate::dense::{fixed_runs, run_time};
use crate::driver::Driver;
use crate::error::Error;
use crate::field::VectorField;
use crate::integrate::Forward;
use crate::options::{SolveOptions, Stepping};
use crate::real::{lit, Real};
use crate::rk::{combine, stage, RungeKutta};
use crate::shape::StateShape;

struct AugStep<S: Shape, E: Real, D: Backend<E>> {
    x: Tensor<S, E, D>,
    a: Tensor<S, E, D>,
    err: Vec<f64>,
    params: Gradients<E, D>,
}

/// `(h w_j, &k_j)` for the nonzero weights.
fn weighted<'a, S: Shape, E: Real, D: Backend<E>>(
    h: E,
    ks: &'a [Tensor<S, E, D>],
    w: &[f64],
) -> Vec<(E, &'a Tensor<S, E, D>)> {
    ks.iter()
        .zip(w)
        .filter(|(_, &wi)| wi != 0.0)
        .map(|(k, &wi)| (h * lit::<E>(wi), k))
        .collect()
}

/// One step of the augmented system with the tableau's arrays.
fn aug_step<R, M, S, E, D>(
    model: &M,
    t: E,
    h: E,
    x: &Tensor<S, E, D>,
    a: &Tensor<S, E, D>,
) -> Result<AugStep<S, E, D>, Error>
where
    R: RungeKutta,
    M: VectorField<S, E, D> + TensorCollection<E, D>,
    S: StateShape,
    E: Real,
    D: Backend<E>,
{
    let mut params = Gradients::leaky();
    let mut kx: Vec<Tensor<S, E, D>> = Vec::with_capacity(R::STAGES);
    let mut ka: Vec<Tensor<S, E, D>> = Vec::with_capacity(R::STAGES);
    for i in 0..R::STAGES {
        let xi = stage(x, &weighted(h, &kx, R::A[i]));
        let ai = stage(a, &weighted(h, &ka, R::A[i]));
        // θ̄ advances by h Σ b_i (−J_θᵀ A_i).
        let scale = -(h * lit::<E>(R::B[i]));
        let (mu, fx) = weighted_vjp(model, &mut params, t + h * lit::<E>(R::C[i]), xi, ai, scale)?;
        kx.push(fx);
        ka.push(mu * (-E::one()));
    }
    let y_x = stage(x, &weighted(h, &kx, R::B));
    let y_a = stage(a, &weighted(h, &ka, R::B));
    let err = match R::B_ERR {
        Some(e) => {
            let (ex, ea) = (weighted(h, &kx, e), weighted(h, &ka, e));
            match (ex.split_first(), ea.split_first()) {
                (Some((fx, rx)), Some((fa, ra))) => {
                    let (zx, za) = (combine(*fx, rx), combine(*fa, ra));
                    zx.as_vec()
                        .into_iter()
                        .chain(za.as_vec())
                        .map(Into::into)
                        .collect()
                }
                _ => Vec::new(),
            }
        }
        None => Vec::new(),
    };
    Ok(AugStep {
        x: y_x,
        a: y_a,
        err,
        params,
    })
}

pub(crate) fn backward<R, M, S, E, D>(
    model: &M,
    fwd: &mut Forward<S, E, D>,
    ys: &Tensor<S::Stacked, E, D>,
    out: &OutputGrads<S, E, D>,
    opts: &SolveOptions,
    times: &[E],
    controller: &mut dyn StepSizeController,
) -> Result<Cotangents<S, E, D>, Error>
where
    R: RungeKutta,
    M: VectorField<S, E, D> + TensorCollection<E, D>,
    S: StateShape,
    E: Real,
    D: Backend<E>,
{
    let mut params = Gradients::leaky();
    let last = out.len() - 1;
    let mut a = out[last].clone();
    let (mut nfe_vjp, mut steps) = (0, 0);
    // Adaptive: one driver for the whole way back, its first proposal the forward's last step.
    let mut driver = match (opts.stepping, R::EMBEDDED_ORDER) {
        (Stepping::Adaptive { .. }, Some(q)) => {
            let h0 = fwd
                .checkpoints
                .len()
                .checked_sub(1)
                .and_then(|n| fwd.checkpoints.step(n))
                .map(|(_, h)| Into::<f64>::into(h).abs())
                .unwrap_or_else(|| {
                    let span: f64 = (times[0] - times[last]).into();
                    span.abs()
                });
            Some(Driver::new(controller, opts, q + 1, h0))
        }
        _ => None,
    };
    let mut host = Vec::new();
    let mut non_finite_at = None;
    if !super::all_finite(&a, &mut host) {
        non_finite_at = times.last().map(|&t| t.into());
    }
    for k in (1..=last).rev() {
        let mut x = S::unstack(ys.clone(), k);
        let (t_from, t_to) = (times[k], times[k - 1]);
        let interval: f64 = (t_to - t_from).into();
        let dir = interval.signum();
        let mut t = t_from;
        match opts.stepping {
            Stepping::Adaptive { rtol, atol } => {
                let driver = driver
                    .as_mut()
                    .ok_or(Error::NotAdaptive { solver: R::NAME })?;
                while let Some(attempt) = driver.attempt(t, t_to, dir)? {
                    let mut st = aug_step::<R, _, _, _, _>(model, t, attempt.h, &x, &a)?;
                    nfe_vjp += R::STAGES;
                    let scale_ref: Vec<f64> = x
                        .as_vec()
                        .into_iter()
                        .chain(a.as_vec())
                        .map(Into::into)
                        .collect();
                    let scale_new: Vec<f64> =
                        st.x.as_vec()
                            .into_iter()
                            .chain(st.a.as_vec())
                            .map(Into::into)
                            .collect();
                    // A cotangent that entered the step non-finite (a NaN from the loss, say)
                    // cannot be error-controlled; the state part still is.
                    let n_x = x.shape().num_elements();
                    let finite_in = scale_ref[n_x..].iter().all(|v| v.is_finite());
                    let len = if finite_in { st.err.len() } else { n_x };
                    let norm = rms_norm(
                        &st.err[..len],
                        &scale_ref[..len],
                        &scale_new[..len],
                        rtol,
                        atol,
                    );
                    if driver.decide(t, norm, &attempt) {
                        merge_params(model, &mut st.params, &mut params, None)?;
                        x = st.x;
                        a = st.a;
                        t = attempt.end(t, t_to);
                        steps += 1;
                    }
                }
            }
            Stepping::FixedSize(_) | Stepping::FixedSteps(_) => {
                // The forward solve's grid (the same points, computed the same way), walked
                // backwards: the step boundaries between the two outputs, then the earlier one.
                let runs = fixed_runs(times, opts).unwrap_or_default();
                let inner = fwd.out_at[k - 1].boundaries_before(&fwd.out_at[k]);
                let points = inner
                    .rev()
                    .filter_map(|j| run_time(&runs, j))
                    .chain(core::iter::once(t_to));
                for t_next in points {
                    let mut st = aug_step::<R, _, _, _, _>(model, t, t_next - t, &x, &a)?;
                    nfe_vjp += R::STAGES;
                    merge_params(model, &mut st.params, &mut params, None)?;
                    x = st.x;
                    a = st.a;
                    t = t_next;
                    steps += 1;
                }
            }
        }
        a = add(a, &out[k - 1]);
        if non_finite_at.is_none() && !super::all_finite(&a, &mut host) {
            non_finite_at = Some(t.into());
        }
    }
    Ok(Cotangents {
        x0: a,
        params,
        nfe_vjp,
        nfe_rebuild: 0,
        steps,
        rejected: driver.map_or(0, |d| d.rejected),
        recomputed_steps: 0,
        non_finite_at,
    })
}
