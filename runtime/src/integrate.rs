//! The forward loop shared by every gradient method: steps, step-size control, outputs exactly
//! at the requested times, and checkpoints of the accepted steps.

use dfdx::prelude::*;

use crate::backend::Backend;
use crate::checkpoint::{fixed_time, Checkpoints, Keep};
use crate::control::{rms_norm, StepSizeController};
use crate::driver::Driver;
use crate::error::Error;
use crate::field::VectorField;
use crate::options::{SolveOptions, Stepping};
use crate::real::Real;
use crate::rk::{RungeKutta, Workspace};
use crate::shape::StateShape;
use crate::stats::ForwardStats;
use crate::steps::StepTimes;

/// The result of the forward loop.
pub(crate) struct Forward<S: Shape, E: Real, D: Backend<E>> {
    /// States at the output times (the first is the initial state).
    pub outputs: Vec<Tensor<S, E, D>>,
    /// Output `k` is the state after `out_steps[k]` accepted steps.
    pub out_steps: Vec<usize>,
    pub checkpoints: Checkpoints<S, E, D>,
    pub stats: ForwardStats,
    /// The accepted step boundaries.
    pub steps: StepTimes<E>,
}

/// Checks the output times and returns `t_end - t_0`'s direction (+1 or -1; +1 for one time).
pub(crate) fn check_times<E: Real>(times: &[E]) -> Result<f64, Error> {
    let first = *times.first().ok_or(Error::EmptyTimes)?;
    for (index, t) in times.iter().enumerate() {
        if !t.is_finite() {
            return Err(Error::NonFiniteTime {
                index,
                value: (*t).into(),
            });
        }
    }
    let dir = match times.get(1) {
        Some(&second) if second < first => -1.0,
        _ => 1.0,
    };
    for (index, w) in times.windows(2).enumerate() {
        let (previous, value): (f64, f64) = (w[0].into(), w[1].into());
        if (value - previous) * dir <= 0.0 {
            return Err(Error::TimesNotMonotonic {
                index: index + 1,
                previous,
                value,
            });
        }
    }
    Ok(dir)
}

pub(crate) fn shape_string<S: Shape>(s: &S) -> String {
    format!("{:?}", s.concrete())
}

/// Evaluates `f(t, x)` without a tape and checks the result's shape.
pub(crate) fn eval_checked<S, E, D, F>(
    f: &F,
    t: E,
    x: &Tensor<S, E, D>,
) -> Result<Tensor<S, E, D>, Error>
where
    S: StateShape,
    E: Real,
    D: Backend<E>,
    F: VectorField<S, E, D> + ?Sized,
{
    let k = f.eval(t, x.clone());
    if k.shape().concrete() != x.shape().concrete() {
        return Err(Error::ShapeMismatch {
            expected: shape_string(x.shape()),
            found: shape_string(k.shape()),
        });
    }
    Ok(k.contiguous())
}

/// Hairer, Nørsett & Wanner I, §II.4: a first step from the sizes of `x0`, `f(t0, x0)` and a
/// finite-difference estimate of the second derivative. Costs one evaluation.
fn initial_step<S, E, D, F>(
    f: &F,
    t0: E,
    x0: &Tensor<S, E, D>,
    f0: &Tensor<S, E, D>,
    order: u32,
    (rtol, atol): (f64, f64),
    span: f64,
) -> f64
where
    S: StateShape,
    E: Real,
    D: Backend<E>,
    F: VectorField<S, E, D> + ?Sized,
{
    let x = x0.as_vec();
    let d0 = rms_norm(&x, &x, &x, rtol, atol);
    let d1 = rms_norm(&f0.as_vec(), &x, &x, rtol, atol);
    let h0 = if d0 < 1e-5 || d1 < 1e-5 || !d0.is_finite() || !d1.is_finite() {
        1e-6
    } else {
        0.01 * d0 / d1
    };
    let h0 = h0.min(span.abs());
    let mut x1 = x0.clone();
    x1.axpy(1.0, f0, h0 * span.signum());
    let f1 = f.eval(t0 + E::from_f64_lossy(h0 * span.signum()), x1);
    let inv_h0 = E::from_f64_lossy(1.0 / h0);
    let diff: Vec<E> = f1
        .as_vec()
        .iter()
        .zip(f0.as_vec())
        .map(|(&a, b)| (a - b) * inv_h0)
        .collect();
    let d2 = rms_norm(&diff, &x, &x, rtol, atol);
    let h1 = if d1.max(d2) <= 1e-15 || !d2.is_finite() {
        (h0 * 1e-3).max(1e-6)
    } else {
        (0.01 / d1.max(d2)).powf(1.0 / f64::from(order + 1))
    };
    (100.0 * h0).min(h1).min(span.abs())
}

/// The number of steps of each output interval of a fixed-step solve (`None` for adaptive
/// steps), chosen before solving.
fn fixed_counts<E: Real>(times: &[E], stepping: &Stepping) -> Option<Vec<usize>> {
    let span: f64 = (*times.last()? - times[0]).into();
    let h_max = stepping.fixed_step(span)?;
    Some(
        times
            .windows(2)
            .map(|w| {
                let interval: f64 = (w[1] - w[0]).into();
                ((interval.abs() / h_max) * (1.0 - 1e-12)).ceil().max(1.0) as usize
            })
            .collect(),
    )
}

/// Integrates from `times[0]` through every output time, keeping in the checkpoint store what
/// `keep` says the gradient pass reads.
pub(crate) fn integrate<R, S, E, D, F>(
    f: &F,
    x0: &Tensor<S, E, D>,
    times: &[E],
    opts: &SolveOptions,
    controller: &mut dyn StepSizeController,
    keep: Keep,
) -> Result<Forward<S, E, D>, Error>
where
    R: RungeKutta,
    S: StateShape,
    E: Real,
    D: Backend<E>,
    F: VectorField<S, E, D> + ?Sized,
{
    opts.validate_for::<E>()?;
    let dir = check_times(times)?;
    // The loop reads states as plain buffers; a strided or broadcast initial state is laid out
    // first (free when it already is contiguous).
    let x0 = &x0.clone().contiguous();
    let mut checkpoints = Checkpoints::keeping(opts.checkpoints, keep);
    let counts = fixed_counts(times, &opts.stepping);
    let total: Option<usize> = counts
        .as_ref()
        .map(|c| c.iter().fold(0usize, |a, &n| a.saturating_add(n)));
    if let Some(steps) = total.filter(|&n| n > opts.max_steps) {
        return Err(Error::TooManySteps {
            steps,
            max_steps: opts.max_steps,
        });
    }
    {
        let mut host = Vec::new();
        if !all_finite(x0, &mut host) {
            let index = host.iter().position(|v| !v.is_finite()).unwrap_or(0);
            return Err(Error::NonFiniteInitialState {
                index,
                value: host.get(index).map_or(f64::NAN, |&v| v.into()),
            });
        }
    }
    if checkpoints.start(x0, total).is_none() {
        if let crate::CheckpointPolicy::Budget(budget) = opts.checkpoints {
            return Err(Error::CheckpointBudgetTooSmall {
                budget,
                slot_bytes: Checkpoints::<S, E, D>::slot_bytes(x0),
            });
        }
    }
    let mut stats = ForwardStats::default();
    let mut outputs = vec![x0.clone()];
    let mut out_steps = vec![0];
    let t0 = times[0];
    let t_end = *times.last().unwrap_or(&t0);
    // An empty state (an empty batch, a zero-sized shape) has nothing to integrate: every output
    // is the empty state, and the field is not evaluated (layers need not handle zero rows).
    if x0.shape().num_elements() == 0 {
        outputs.resize(times.len(), x0.clone());
        out_steps.resize(times.len(), 0);
        return Ok(Forward {
            outputs,
            out_steps,
            checkpoints,
            stats,
            steps: StepTimes::new(times[0]),
        });
    }
    if times.len() == 1 {
        return Ok(Forward {
            outputs,
            out_steps,
            checkpoints,
            stats,
            steps: StepTimes::new(times[0]),
        });
    }

    let mut t = t0;
    let mut x = x0.clone();
    let mut steps = StepTimes::new(t0);
    // Buffers reused by every step of this solve: stage states, error estimate, host copies
    // for the error norm.
    let mut ws = Workspace::new();
    let keep_stages = keep == Keep::Stages;
    ws.keep_stages(keep_stages);
    let n = x0.shape().num_elements();
    let mut host: [Vec<E>; 3] = [vec![E::zero(); n], vec![E::zero(); n], vec![E::zero(); n]];
    let f0 = eval_checked(f, t0, x0)?;
    stats.nfe += 1;
    let span: f64 = (t_end - t0).into();

    if let Stepping::Adaptive { rtol, atol } = opts.stepping {
        let embedded = match (R::B_ERR, R::EMBEDDED_ORDER) {
            (Some(_), Some(q)) => q,
            _ => return Err(Error::NotAdaptive { solver: R::NAME }),
        };
        let h0 = match opts.first_step {
            Some(h) => h,
            None => {
                stats.nfe += 1;
                initial_step(f, t0, x0, &f0, R::ORDER.min(embedded), (rtol, atol), span)
            }
        };
        let mut driver = Driver::new(controller, opts, embedded + 1, h0);
        let mut k1 = Some(f0);
        for &target in &times[1..] {
            while let Some(attempt) = driver.attempt(t, target, dir)? {
                let step = R::step(f, t, attempt.h, &x, k1.take(), &mut ws);
                stats.nfe += step.evals;
                let norm = match &step.err {
                    Some(err) => {
                        let [he, hx, hy] = &mut host;
                        err.copy_into(he);
                        x.copy_into(hx);
                        step.y.copy_into(hy);
                        rms_norm(he, hx, hy, rtol, atol)
                    }
                    None => 0.0,
                };
                if driver.decide(t, norm, &attempt) {
                    checkpoints.push(t, attempt.h, &x);
                    if keep_stages {
                        checkpoints.push_stages(ws.take_kept());
                    }
                    x = step.y;
                    t = attempt.end(t, target);
                    steps.push(t);
                    k1 = if R::FSAL { step.k_last } else { None };
                } else {
                    ws.discard_kept();
                    k1 = Some(step.k1);
                }
            }
            stats.accepted = driver.accepted;
            stats.rejected = driver.rejected;
            outputs.push(x.clone());
            out_steps.push(stats.accepted);
        }
    } else if let Some(counts) = counts {
        let mut k1 = Some(f0);
        let mut start = t0;
        for (&target, &n) in times[1..].iter().zip(&counts) {
            checkpoints.fixed_run(start, target, n);
            steps.run(start, target, n);
            // (The step count was held to `max_steps` before solving.)
            for i in 0..n {
                // Step i ends at start + (i+1)/n · interval: no drift, exact landing.
                let t_next = fixed_time(start, target, i + 1, n);
                let h_e = t_next - t;
                let step = R::step(f, t, h_e, &x, k1.take(), &mut ws);
                stats.nfe += step.evals;
                if !all_finite(&step.y, &mut host[0]) {
                    return Err(Error::NonFinite {
                        t: t.into(),
                        h: h_e.into(),
                    });
                }
                checkpoints.push(t, h_e, &x);
                if keep_stages {
                    checkpoints.push_stages(ws.take_kept());
                }
                stats.accepted += 1;
                x = step.y;
                t = t_next;
                k1 = if R::FSAL { step.k_last } else { None };
            }
            start = target;
            outputs.push(x.clone());
            out_steps.push(stats.accepted);
        }
    }
    stats.checkpoint_bytes = checkpoints.bytes();
    Ok(Forward {
        outputs,
        out_steps,
        checkpoints,
        stats,
        steps,
    })
}

/// Whether every entry of `x` is finite, read through `host`, a host buffer the caller reuses
/// across calls (one memcpy, no allocation once it has `x`'s length).
pub(crate) fn all_finite<S: Shape, E: Real, D: Device<E>>(
    x: &Tensor<S, E, D>,
    host: &mut Vec<E>,
) -> bool {
    let x = x.clone().contiguous();
    host.resize(x.shape().num_elements(), E::zero());
    x.copy_into(host);
    host.iter().all(|v| v.is_finite())
}
