//! The forward loop shared by every gradient method: steps, step-size control, outputs exactly
//! at the requested times, and checkpoints of the accepted steps.

use dfdx::prelude::*;

use crate::backend::Backend;
use crate::checkpoint::{fixed_time, Checkpoints, Keep};
use crate::control::{rms_norm, StepSizeController};
use crate::dense::{fixed_runs, OutputAt};
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
    /// States at the output times (the first is the initial state); `solve` moves them into
    /// the stacked `ys`, which the backward passes read from.
    pub outputs: Vec<Tensor<S, E, D>>,
    /// Where each output lies on the accepted steps.
    pub out_at: Vec<OutputAt<E>>,
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
    let runs = fixed_runs(times, opts);
    let total: Option<usize> = runs
        .as_ref()
        .map(|r| r.iter().fold(0usize, |a, &(_, _, n)| a.saturating_add(n)));
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
    let mut out_at = vec![OutputAt::boundary(0)];
    let t0 = times[0];
    let t_end = *times.last().unwrap_or(&t0);
    // An empty state (an empty batch, a zero-sized shape) has nothing to integrate: every output
    // is the empty state, and the field is not evaluated (layers need not handle zero rows).
    if x0.shape().num_elements() == 0 {
        outputs.resize(times.len(), x0.clone());
        out_at.resize(times.len(), OutputAt::boundary(0));
        return Ok(Forward {
            outputs,
            out_at,
            checkpoints,
            stats,
            steps: StepTimes::new(times[0]),
        });
    }
    if times.len() == 1 {
        return Ok(Forward {
            outputs,
            out_at,
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

    // Outputs inside a step are interpolated from its stage derivatives, recorded by the steps.
    let interpolating = !opts.land_on_outputs && times.len() > 2;
    ws.record_derivatives(interpolating);
    let mut outs = Outputs {
        times,
        next: 1,
        dir,
        outputs,
        out_at,
    };

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
        // Landing on every output time, or only on the last.
        let targets = if opts.land_on_outputs {
            &times[1..]
        } else {
            &times[times.len() - 1..]
        };
        for &target in targets {
            while let Some(attempt) = driver.attempt(t, target, dir)? {
                let step = R::step(f, t, attempt.h, &x, k1.take(), &mut ws);
                let ks = ws.take_derivatives();
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
                    let t_next = attempt.end(t, target);
                    k1 = if R::FSAL { step.k_last } else { None };
                    let done = driver.accepted - 1;
                    let handed = outs.after_step::<R, _>(
                        f,
                        (t, attempt.h, t_next, done),
                        (&x, &step.y),
                        ks,
                        &mut stats,
                    );
                    if k1.is_none() {
                        k1 = handed;
                    }
                    x = step.y;
                    t = t_next;
                    steps.push(t);
                } else {
                    ws.discard_kept();
                    k1 = Some(step.k1);
                }
            }
            stats.accepted = driver.accepted;
            stats.rejected = driver.rejected;
        }
    } else if let Some(runs) = runs {
        let mut k1 = Some(f0);
        for &(start, target, n) in &runs {
            checkpoints.fixed_run(start, target, n);
            steps.run(start, target, n);
            // (The step count was held to `max_steps` before solving.)
            for i in 0..n {
                // Step i ends at start + (i+1)/n · interval: no drift, exact landing.
                let t_next = fixed_time(start, target, i + 1, n);
                let h_e = t_next - t;
                let step = R::step(f, t, h_e, &x, k1.take(), &mut ws);
                let ks = ws.take_derivatives();
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
                k1 = if R::FSAL { step.k_last } else { None };
                let handed = outs.after_step::<R, _>(
                    f,
                    (t, h_e, t_next, stats.accepted - 1),
                    (&x, &step.y),
                    ks,
                    &mut stats,
                );
                if k1.is_none() {
                    k1 = handed;
                }
                x = step.y;
                t = t_next;
            }
        }
    }
    let Outputs {
        outputs, out_at, ..
    } = outs;
    stats.checkpoint_bytes = checkpoints.bytes();
    Ok(Forward {
        outputs,
        out_at,
        checkpoints,
        stats,
        steps,
    })
}

/// The outputs produced so far, and the next output time to produce.
struct Outputs<'a, S: Shape, E: Real, D: Backend<E>> {
    times: &'a [E],
    next: usize,
    dir: f64,
    outputs: Vec<Tensor<S, E, D>>,
    out_at: Vec<OutputAt<E>>,
}

impl<S: StateShape, E: Real, D: Backend<E>> Outputs<'_, S, E, D> {
    /// After accepted step `n` from `(t, x)` of size `h` to `(t_next, y)` with stage derivatives
    /// `ks`: the outputs inside the step, interpolated, and the one at `t_next`, if any. Where
    /// the interpolant has an extra stage (a method that is not FSAL, with the Hermite fallback
    /// or a `[dense]` section's extra row) this evaluates `f(t + h, y)` once, and returns it as
    /// the next step's first evaluation when that is at `t_next`.
    fn after_step<R, F>(
        &mut self,
        f: &F,
        (t, h, t_next, n): (E, E, E, usize),
        (x, y): (&Tensor<S, E, D>, &Tensor<S, E, D>),
        mut ks: Vec<Tensor<S, E, D>>,
        stats: &mut ForwardStats,
    ) -> Option<Tensor<S, E, D>>
    where
        R: RungeKutta,
        F: VectorField<S, E, D> + ?Sized,
    {
        let mut handed = None;
        while let Some(&tau) = self.times.get(self.next) {
            let ahead: f64 = (tau - t_next).into();
            if tau == t_next {
                self.outputs.push(y.clone());
                self.out_at.push(OutputAt::boundary(n + 1));
            } else if ahead * self.dir < 0.0 && ks.len() >= R::STAGES {
                if ks.len() < R::INTERPOLANT_STAGES {
                    // The interpolant's extra stage f(t + h, y) (the Hermite fallback, or a
                    // [dense] section's extra row, on a method that is not FSAL).
                    let t_end = t + h;
                    let k_end = crate::rk::eval(f, t_end, y.clone());
                    stats.nfe += 1;
                    if t_end == t_next {
                        handed = Some(k_end.clone());
                    }
                    ks.push(k_end);
                }
                let theta = (tau - t) / h;
                self.outputs.push(R::interpolate(h, x, &ks, theta));
                self.out_at.push(OutputAt {
                    after: n,
                    theta: Some(theta),
                });
            } else {
                break;
            }
            self.next += 1;
        }
        handed
    }
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
