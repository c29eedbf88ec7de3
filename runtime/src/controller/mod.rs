//! Step-size control: which step to try next, and whether a tried step is accepted. One
//! interface, [`StepControl`], for adaptive steps ([`adaptive`], asking a [`StepSizeController`]
//! such as [`PiController`]) and constant steps ([`constant`], the fixed grid); the forward loop
//! and the continuous adjoint's backward integration drive either the same way. Nothing here
//! knows about gradients.

pub(crate) mod adaptive;
pub(crate) mod constant;
mod norm;
mod pi;

use dfdx::prelude::*;

pub(crate) use norm::{all_finite, rms_norm, ErrorNorm};
pub use pi::PiController;

use crate::error::Error;
use crate::real::Real;

/// Decides whether an adaptive step is accepted and what size the next step has.
///
/// Implement it to control steps your own way and pass it to
/// [`solve_with`](crate::solve_with). The solve keeps its own copies (`Clone`): one for the
/// forward solve and, for the continuous adjoint, one for the backward integration, each
/// [`reset`](Self::reset) before its first step.
pub trait StepSizeController {
    /// Called once per integration with the order of the error estimate (`embedded_order + 1`
    /// for the local error) before the first step.
    fn reset(&mut self, error_order: u32);

    /// Given the scaled error norm of a step of size `h` (positive; `∞` when the norm was not
    /// finite) taken from time `t`, returns whether to accept it and the size of the next
    /// attempt. (`t` lets a controller vary with time, say to step carefully near a known
    /// event; the shipped [`PiController`] does not use it.)
    fn decide(&mut self, t: f64, err_norm: f64, h: f64) -> (bool, f64);

    /// Checks the controller's own parameters before anything is solved (default: none to
    /// check). Report a bad value as [`Error::InvalidOption`].
    fn validate(&self) -> Result<(), Error> {
        Ok(())
    }
}

/// A step taken: its start state, its result and its error estimate (adaptive methods).
pub(crate) type Taken<'a, S, E, D> = (
    &'a Tensor<S, E, D>,
    &'a Tensor<S, E, D>,
    Option<&'a Tensor<S, E, D>>,
);

/// One attempted step.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attempt<E> {
    /// Its (signed) size.
    pub h: E,
    /// Where it ends (exactly on the target time when it lands there).
    pub end: E,
    /// Whether it ends on the target time.
    lands: bool,
    /// `|h|` as the controller proposed it.
    h_abs: f64,
}

/// What the forward loop (and the continuous adjoint's backward integration) asks of step-size
/// control: the next step towards a target time, and a verdict on the step once it is taken.
pub(crate) trait StepControl<E: Real> {
    /// The number of steps of the whole solve, when it is known before solving (a fixed grid).
    fn known_steps(&self) -> Option<usize>;

    /// The next step from `t` towards `target`, or `None` once `target` is reached.
    fn attempt(&mut self, t: E, target: E) -> Result<Option<Attempt<E>>, Error>;

    /// Accepts or rejects the step `attempt` from `(t, x)` to `y` with error estimate `err`.
    /// An error ends the solve.
    fn judge<S: Shape, D: Device<E>>(
        &mut self,
        t: E,
        attempt: &Attempt<E>,
        step: Taken<'_, S, E, D>,
    ) -> Result<bool, Error>;

    /// Steps accepted and rejected so far.
    fn counts(&self) -> (usize, usize);
}
