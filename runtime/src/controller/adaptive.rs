//! Adaptive steps: land on target times, bound the step count and the step size, and ask a
//! [`StepSizeController`] to accept or reject each step by its error norm. Used by the forward
//! solve and by the continuous adjoint's backward integration; also Hairer's choice of the
//! first step.

use dfdx::prelude::*;

use super::norm::ErrorNorm;
use super::{Attempt, StepControl, StepSizeController, Taken};
use crate::error::Error;
use crate::field::VectorField;
use crate::real::Real;

/// Stepping state of one adaptive integration.
pub(crate) struct Adaptive<'c, E> {
    controller: &'c mut dyn StepSizeController,
    max_steps: usize,
    min_step: f64,
    /// The direction of time, ±1.
    dir: f64,
    /// The size proposed for the next step (positive).
    h: f64,
    accepted: usize,
    rejected: usize,
    last_non_finite: bool,
    /// The error norm of [`StepControl::judge`] (`None`: the caller computes its own norm and
    /// calls [`Adaptive::decide`]).
    norm: Option<ErrorNorm<E>>,
}

/// The bounds of an adaptive integration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub max_steps: usize,
    /// `0`: 16 ulps of the current time.
    pub min_step: f64,
}

impl<'c, E: Real> Adaptive<'c, E> {
    /// Steps in direction `dir` whose first attempt has size `h0` (positive), for a method
    /// whose error estimate has order `error_order`, judged with `norm` when given.
    pub fn new(
        controller: &'c mut dyn StepSizeController,
        limits: Limits,
        dir: f64,
        error_order: u32,
        h0: f64,
        norm: Option<ErrorNorm<E>>,
    ) -> Self {
        controller.reset(error_order);
        Adaptive {
            controller,
            max_steps: limits.max_steps,
            min_step: limits.min_step,
            dir,
            h: h0,
            accepted: 0,
            rejected: 0,
            last_non_finite: false,
            norm,
        }
    }

    /// Accepts or rejects `attempt` from `t` given its scaled error norm (`∞` when not finite);
    /// returns whether it was accepted.
    pub fn decide(&mut self, t: E, err_norm: f64, attempt: &Attempt<E>) -> bool {
        let (accept, h_next) = self.controller.decide(t.into(), err_norm, attempt.h_abs);
        if accept {
            self.accepted += 1;
            self.last_non_finite = false;
            // A step shortened to land on a target does not shrink the next one.
            self.h = if attempt.lands {
                h_next.max(self.h)
            } else {
                h_next
            };
        } else {
            self.rejected += 1;
            self.last_non_finite = !err_norm.is_finite();
            self.h = h_next;
        }
        accept
    }
}

impl<E: Real> StepControl<E> for Adaptive<'_, E> {
    fn known_steps(&self) -> Option<usize> {
        None
    }

    /// A step that would reach or nearly reach `target` lands on it exactly, whatever its size
    /// (output times may be closer than the minimum step); a step the controller shrank below
    /// the minimum step is an error (`NonFinite` if the last rejection was for a non-finite
    /// error estimate).
    fn attempt(&mut self, t: E, target: E) -> Result<Option<Attempt<E>>, Error> {
        let dir = self.dir;
        let remaining: f64 = (target - t).into();
        if remaining * dir <= 0.0 {
            return Ok(None);
        }
        let t_f: f64 = t.into();
        if self.accepted + self.rejected >= self.max_steps {
            return Err(Error::MaxStepsReached {
                t: t_f,
                max_steps: self.max_steps,
            });
        }
        let min_step = if self.min_step > 0.0 {
            self.min_step
        } else {
            16.0 * f64::EPSILON * t_f.abs().max(remaining.abs())
        };
        let lands = self.h >= remaining.abs() * (1.0 - 1e-12);
        let h_abs = if lands { remaining.abs() } else { self.h };
        if (!lands && h_abs < min_step) || E::from_f64_lossy(h_abs) == E::zero() {
            let h = h_abs * dir;
            return Err(if self.last_non_finite {
                Error::NonFinite { t: t_f, h }
            } else {
                Error::StepSizeUnderflow { t: t_f, h }
            });
        }
        let h = E::from_f64_lossy(h_abs * dir);
        Ok(Some(Attempt {
            h,
            end: if lands { target } else { t + h },
            lands,
            h_abs,
        }))
    }

    fn judge<S: Shape, D: Device<E>>(
        &mut self,
        t: E,
        attempt: &Attempt<E>,
        (x, y, err): Taken<'_, S, E, D>,
    ) -> Result<bool, Error> {
        let norm = match (err, &mut self.norm) {
            (Some(err), Some(norm)) => norm.of(err, x, y),
            (Some(_), None) => {
                return Err(Error::internal(
                    "an adaptive step was judged without an error norm",
                ))
            }
            (None, _) => 0.0,
        };
        Ok(self.decide(t, norm, attempt))
    }

    fn counts(&self) -> (usize, usize) {
        (self.accepted, self.rejected)
    }
}

/// Hairer, Nørsett & Wanner I, §II.4: a first step from the sizes of `x0`, `f(t0, x0)` and a
/// finite-difference estimate of the second derivative. Costs one evaluation.
pub(crate) fn initial_step<S, E, D, F>(
    f: &F,
    t0: E,
    x0: &Tensor<S, E, D>,
    f0: &Tensor<S, E, D>,
    order: u32,
    norm: &ErrorNorm<E>,
    span: f64,
) -> f64
where
    S: Shape,
    E: Real,
    D: Device<E>,
    F: VectorField<S, E, D> + ?Sized,
{
    let x = x0.as_vec();
    let d0 = norm.of_slices(&x, &x, &x);
    let d1 = norm.of_slices(&f0.as_vec(), &x, &x);
    let h0 = first_guess(d0, d1, span);
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
    let d2 = norm.of_slices(&diff, &x, &x);
    first_step(h0, (d1, d2), order, span)
}

/// Hairer's first guess from the norms of the state (`d0`) and of its derivative (`d1`), at
/// most the span: the size of the explicit Euler step that probes the second derivative.
pub(crate) fn first_guess(d0: f64, d1: f64, span: f64) -> f64 {
    let h0 = if d0 < 1e-5 || d1 < 1e-5 || !d0.is_finite() || !d1.is_finite() {
        1e-6
    } else {
        0.01 * d0 / d1
    };
    h0.min(span.abs())
}

/// Hairer's first step from the guess `h0`, the derivative's norm `d1` and the norm `d2` of
/// the second-derivative estimate, for a method of order `order`, at most the span.
pub(crate) fn first_step(h0: f64, (d1, d2): (f64, f64), order: u32, span: f64) -> f64 {
    let h1 = if d1.max(d2) <= 1e-15 || !d2.is_finite() {
        (h0 * 1e-3).max(1e-6)
    } else {
        (0.01 / d1.max(d2)).powf(1.0 / f64::from(order + 1))
    };
    (100.0 * h0).min(h1).min(span.abs())
}
