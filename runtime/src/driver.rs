//! The adaptive step driver, one for the forward solve and the continuous adjoint's backward
//! integration: it lands on target times, bounds the step count and the step size, and asks
//! the step-size controller. What a step computes is the caller's; this is only the stepping.

use crate::control::StepSizeController;
use crate::error::Error;
use crate::options::SolveOptions;
use crate::real::Real;

/// One attempted step.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attempt<E> {
    /// Its (signed) size.
    pub h: E,
    /// Whether it ends exactly on the target time.
    pub lands: bool,
    h_abs: f64,
}

impl<E: Real> Attempt<E> {
    /// Where the step ends: exactly on the target when it lands there.
    pub fn end(&self, t: E, target: E) -> E {
        if self.lands {
            target
        } else {
            t + self.h
        }
    }
}

/// Stepping state of one adaptive integration.
pub(crate) struct Driver<'c> {
    controller: &'c mut dyn StepSizeController,
    max_steps: usize,
    min_step: f64,
    /// The size proposed for the next step (positive).
    h: f64,
    /// Steps attempted so far, accepted and rejected.
    pub accepted: usize,
    pub rejected: usize,
    last_non_finite: bool,
}

impl<'c> Driver<'c> {
    /// A driver whose first attempt has size `h0` (positive), for a method whose error estimate
    /// has order `error_order`.
    pub fn new(
        controller: &'c mut dyn StepSizeController,
        opts: &SolveOptions,
        error_order: u32,
        h0: f64,
    ) -> Self {
        controller.reset(error_order);
        Driver {
            controller,
            max_steps: opts.max_steps,
            min_step: opts.min_step,
            h: h0,
            accepted: 0,
            rejected: 0,
            last_non_finite: false,
        }
    }

    /// The next step from `t` towards `target` (`dir`: the direction of time, ±1), or `None`
    /// once `target` is reached. A step that would reach or nearly reach `target` lands on it
    /// exactly, whatever its size (output times may be closer than the minimum step); a step
    /// the controller shrank below the minimum step is an error (`NonFinite` if the last
    /// rejection was for a non-finite error estimate).
    pub fn attempt<E: Real>(&self, t: E, target: E, dir: f64) -> Result<Option<Attempt<E>>, Error> {
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
        Ok(Some(Attempt {
            h: E::from_f64_lossy(h_abs * dir),
            lands,
            h_abs,
        }))
    }

    /// Accepts or rejects `attempt` from `t` given its scaled error norm (`∞` when not finite);
    /// returns whether it was accepted.
    pub fn decide<E: Real>(&mut self, t: E, err_norm: f64, attempt: &Attempt<E>) -> bool {
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
