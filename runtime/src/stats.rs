//! Statistics reported by every solve, and the handle to its gradient pass's outcome.

use std::sync::{Arc, Mutex};

use crate::error::Error;

/// What the forward solve did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForwardStats {
    /// Accepted steps.
    pub accepted: usize,
    /// Rejected steps.
    pub rejected: usize,
    /// Vector-field evaluations in the forward solve (including initial-step selection).
    pub nfe: usize,
    /// Bytes the gradient pass will read from what the solve kept: the stored states and stage
    /// states (elements, buffer headers and bookkeeping) and, for the methods that replay the
    /// steps (`symplectic`, `aca`, `backprop`), the step grid; a solve without a tape and the
    /// continuous adjoint keep none.
    pub checkpoint_bytes: usize,
    /// Peak heap bytes of the forward solve above the level at its start, when the
    /// [`CountingAllocator`](crate::alloc::CountingAllocator) is the global allocator.
    pub peak_bytes: Option<usize>,
}

/// What the gradient pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BackwardStats {
    /// Vector–Jacobian products of the vector field (each one forward and one backward pass).
    pub nfe_vjp: usize,
    /// Plain (untraced) vector-field evaluations made to rebuild stages or recompute states.
    pub nfe_rebuild: usize,
    /// Steps taken going back (the continuous adjoint's own steps; the forward steps otherwise).
    pub steps: usize,
    /// Rejected steps going back (continuous adjoint only).
    pub rejected: usize,
    /// Forward steps recomputed to get back states the checkpoint policy did not keep
    /// (`EveryK`, `Budget`); each costs the method's stages in `nfe_rebuild`.
    pub recomputed_steps: usize,
    /// Where the state cotangent first became NaN or infinite walking back (the start time of
    /// that step), `None` if it stayed finite. Not a failure: as with backprop, non-finite
    /// values flow on, and parameter cotangents they never reach stay finite; check this (or
    /// the gradients) before an optimiser step if the model can produce them. Not computed for
    /// `backprop` (dfdx's own pass).
    pub non_finite_at: Option<f64>,
    /// `GradMethod::Reversible` only: how far the states rebuilt backwards from the final one
    /// landed from the initial state, `max(‖y₀ − x₀‖∞, ‖z₀ − x₀‖∞) / ‖x₀‖∞` (rounding, amplified by
    /// the steps; see the method's documentation for when it grows).
    pub reconstruction_error: Option<f64>,
    /// Peak heap bytes of the gradient pass alone, above the level at its start (which already
    /// holds the checkpoints, the outputs and whatever the caller's graph keeps), when the
    /// [`CountingAllocator`](crate::alloc::CountingAllocator) is the global allocator.
    pub peak_bytes: Option<usize>,
    /// Peak heap bytes of the whole solve, forward and gradient pass, above the level at the
    /// start of the solve: the larger of the forward's peak and the gradient pass's peak
    /// (measured from the solve's starting level; what the caller allocated between the two,
    /// such as the loss, counts as it is live during the gradient pass). `None` without the
    /// counting allocator.
    pub solve_peak_bytes: Option<usize>,
}

impl BackwardStats {
    /// Total evaluations, counting a vector–Jacobian product as one.
    pub fn nfe(&self) -> usize {
        self.nfe_vjp + self.nfe_rebuild
    }
}

/// A handle to the outcome of a solve's gradient pass.
///
/// The pass runs inside dfdx's `backward()`, which cannot carry this crate's errors, so a failed
/// pass leaves the caller's `Gradients` untouched and records its error here. Check it after
/// `backward()` when the gradient matters: `sol.report.stats()?`.
#[derive(Clone, Debug, Default)]
pub struct BackwardReport(Arc<Mutex<Option<Result<BackwardStats, Error>>>>);

impl BackwardReport {
    /// What the gradient pass did; its error if it failed, or [`Error::NoGradientPass`] if it
    /// has not run.
    pub fn stats(&self) -> Result<BackwardStats, Error> {
        self.get().unwrap_or(Err(Error::NoGradientPass))
    }

    /// `None` until the gradient pass has run, then its outcome.
    pub fn get(&self) -> Option<Result<BackwardStats, Error>> {
        self.0.lock().map(|g| g.clone()).unwrap_or(None)
    }

    pub(crate) fn set(&self, value: Result<BackwardStats, Error>) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some(value);
        }
    }
}
