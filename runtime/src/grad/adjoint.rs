//! The continuous adjoint (Chen et al., NeurIPS 2018): integrate the state, its adjoint and the
//! parameter cotangent backwards in time with the same tableau and tolerances,
//! `dx/dt = f`, `da/dt = −J_xᵀ a`, `dθ̄/dt = −J_θᵀ a`. Little memory, but the result is the
//! gradient of the continuous problem, not of the discrete solve: it is approximate by nature.
//! The state is reset to the forward solution at every output time. Adaptive steps back are
//! chosen by the caller's step-size controller with the forward's tolerances; fixed steps walk
//! the forward's grid back.

use dfdx::nn::tensor_collection::TensorCollection;
use dfdx::prelude::*;

use super::{add, merge_params, pullback, Back, Cotangents, GradientMethod, Model};
use crate::backend::Backend;
use crate::controller::adaptive::{Adaptive, Limits};
use crate::controller::{all_finite, ErrorNorm, StepControl};
use crate::error::Error;
use crate::field::VectorField;
use crate::options::Stepping;
use crate::real::{lit, Real};
use crate::rk::{combine, stage, RungeKutta};
use crate::shape::StateShape;
use crate::stats::BackwardStats;
use crate::store::{CheckpointPolicy, Keep};

/// `GradMethod::Adjoint`.
pub(crate) struct Adjoint;

impl GradientMethod for Adjoint {
    /// It integrates the state backwards from the outputs: no state is kept.
    fn keep(_: CheckpointPolicy) -> Keep {
        Keep::Nothing
    }

    fn reverse<R, M, S, E, D>(back: &mut Back<'_, M, S, E, D>) -> Result<Cotangents<S, E, D>, Error>
    where
        R: RungeKutta,
        M: Model<S, E, D>,
        S: StateShape,
        E: Real,
        D: Backend<E>,
    {
        let (model, ys, out, times, opts) = (back.model, back.ys, back.out, back.times, back.opts);
        let record = &*back.record;
        let grid = &record.grid;
        let mut params = Gradients::leaky();
        let last = out.len() - 1;
        let mut a = out[last].clone();
        let (mut nfe_vjp, mut steps) = (0, 0);
        // Adaptive: one controller for the whole way back, its first proposal the forward's last
        // step.
        let adaptive = match (opts.stepping, R::EMBEDDED_ORDER) {
            (Stepping::Adaptive { rtol, atol }, Some(q)) => {
                let h0 = grid
                    .len()
                    .checked_sub(1)
                    .and_then(|n| grid.step(n))
                    .map(|(_, h)| Into::<f64>::into(h).abs())
                    .unwrap_or_else(|| {
                        let span: f64 = (times[0] - times[last]).into();
                        span.abs()
                    });
                let dir = match times.len() {
                    1 => 1.0,
                    _ => Into::<f64>::into(times[0] - times[last]).signum(),
                };
                let limits = Limits {
                    max_steps: opts.max_steps,
                    min_step: opts.min_step,
                };
                let control = Adaptive::new(&mut *back.controller, limits, dir, q + 1, h0, None);
                Some((control, (rtol, atol)))
            }
            _ => None,
        };
        let mut adaptive = adaptive;
        let group = opts.batch_group.clone();
        let mut host = Vec::new();
        let mut non_finite_at = None;
        if !all_finite(&a, &mut host) {
            non_finite_at = times.last().map(|&t| t.into());
        }
        for k in (1..=last).rev() {
            let mut x = S::unstack(ys.clone(), k);
            let t_to = times[k - 1];
            let mut t = times[k];
            match opts.stepping {
                Stepping::Adaptive { .. } => {
                    let (control, tolerances) = adaptive
                        .as_mut()
                        .ok_or(Error::NotAdaptive { solver: R::NAME })?;
                    while let Some(attempt) = control.attempt(t, t_to)? {
                        let mut st =
                            aug_step::<R, _, _, _, _>(model, t, attempt.h, (&x, &a), true)?;
                        nfe_vjp += R::STAGES;
                        let [ex, ea] = st
                            .err
                            .as_ref()
                            .ok_or(Error::NotAdaptive { solver: R::NAME })?;
                        // A cotangent that entered the step non-finite (a NaN from the loss, say)
                        // cannot be error-controlled; the state part still is.
                        // With a split batch, every part decides as the whole batch does.
                        let finite = all_finite(&a, &mut host);
                        let finite = group.as_ref().map_or(finite, |g| g.all(finite));
                        let take = if finite { 2 } else { 1 };
                        // Host buffers for this step only: the pass keeps nothing state-sized
                        // between its steps but the state and the cotangent.
                        let mut norm = ErrorNorm::new(*tolerances, group.clone());
                        let norm = norm.of_parts(&[(ex, &x, &st.x), (ea, &a, &st.a)], take);
                        if control.decide(t, norm, &attempt) {
                            merge_params(model, &mut st.params, &mut params, None)?;
                            x = st.x;
                            a = st.a;
                            t = attempt.end;
                            steps += 1;
                        }
                    }
                }
                Stepping::FixedSize(_) | Stepping::FixedSteps(_) => {
                    // The forward's grid walked backwards: the step boundaries between the two
                    // outputs, then the earlier output.
                    let inner = record.out_at[k - 1].boundaries_before(&record.out_at[k]);
                    let points = inner
                        .rev()
                        .filter_map(|j| grid.boundary(j))
                        .chain(core::iter::once(t_to));
                    for t_next in points {
                        let mut st =
                            aug_step::<R, _, _, _, _>(model, t, t_next - t, (&x, &a), false)?;
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
            if non_finite_at.is_none() && !all_finite(&a, &mut host) {
                non_finite_at = Some(t.into());
            }
        }
        Ok(Cotangents {
            x0: a,
            params,
            stats: BackwardStats {
                nfe_vjp,
                steps,
                rejected: adaptive.map_or(0, |(control, _)| control.counts().1),
                non_finite_at,
                ..BackwardStats::default()
            },
        })
    }
}

pub(crate) struct AugStep<S: Shape, E: Real, D: Backend<E>> {
    pub x: Tensor<S, E, D>,
    pub a: Tensor<S, E, D>,
    /// The error estimates of `x` and `a` (when asked for).
    pub err: Option<[Tensor<S, E, D>; 2]>,
    pub params: Gradients<E, D>,
}

/// `(J_f(t, x)ᵀ v, f(t, x))`.
type VjpOut<S, E, D> = (Tensor<S, E, D>, Tensor<S, E, D>);

/// One vector–Jacobian product with a weighted parameter cotangent: returns `J_f(t, x)ᵀ v` and
/// `f(t, x)`, and adds `scale · J_θ(t, x)ᵀ v` into `params` (the quadrature weights). The weight
/// cannot be folded into `v` without dividing `x̄` by it (and it may be zero), so the product
/// runs through [`pullback`] into its own parameter store, which is then merged with the weight.
fn weighted_vjp<M, S, E, D>(
    model: &M,
    params: &mut Gradients<E, D>,
    t: E,
    x: Tensor<S, E, D>,
    v: Tensor<S, E, D>,
    scale: E,
) -> Result<VjpOut<S, E, D>, Error>
where
    M: VectorField<S, E, D> + TensorCollection<E, D>,
    S: StateShape,
    E: Real,
    D: Backend<E>,
{
    let scratch = model.try_alloc_grads().map_err(Error::device)?;
    let mut value = None;
    let (x_bar, mut scratch) = pullback(scratch, x, |x| {
        let y = model.eval(t, x);
        value = Some(y.retaped::<NoneTape>());
        (y * v).sum::<Rank0, _>()
    })?;
    merge_params(model, &mut scratch, params, Some(scale))?;
    let value = value.ok_or_else(|| Error::internal("the product did not evaluate the field"))?;
    Ok((x_bar, value))
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

/// One step of the augmented system with the tableau's arrays (and its error estimate when
/// `with_err`).
pub(crate) fn aug_step<R, M, S, E, D>(
    model: &M,
    t: E,
    h: E,
    (x, a): (&Tensor<S, E, D>, &Tensor<S, E, D>),
    with_err: bool,
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
    let err = match R::B_ERR.filter(|_| with_err) {
        Some(e) => {
            let (ex, ea) = (weighted(h, &kx, e), weighted(h, &ka, e));
            match (ex.split_first(), ea.split_first()) {
                (Some((fx, rx)), Some((fa, ra))) => Some([combine(*fx, rx), combine(*fa, ra)]),
                _ => None,
            }
        }
        None => None,
    };
    Ok(AugStep {
        x: y_x,
        a: y_a,
        err,
        params,
    })
}
