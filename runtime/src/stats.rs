//! Statistics reported by every solve.

/// What the forward solve did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForwardStats {
    /// Accepted steps.
    pub accepted: usize,
    /// Rejected steps.
    pub rejected: usize,
    /// Vector-field evaluations in the forward solve (including initial-step selection).
    pub nfe: usize,
    /// Bytes held by the checkpoint store after the solve.
    pub checkpoint_bytes: usize,
}

/// What the gradient pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackwardStats {
    /// Vector–Jacobian products of the vector field (each one forward and one backward pass).
    pub nfe_vjp: usize,
    /// Plain (untraced) vector-field evaluations made to rebuild stages or recompute states.
    pub nfe_rebuild: usize,
    /// Steps taken going back (the continuous adjoint's own steps; the forward steps otherwise).
    pub steps: usize,
    /// Rejected steps going back (continuous adjoint only).
    pub rejected: usize,
    /// Peak heap bytes above the level at the start of the gradient pass, when the
    /// [`CountingAllocator`](crate::alloc::CountingAllocator) is the global allocator.
    pub peak_bytes: Option<usize>,
}

impl BackwardStats {
    /// Total evaluations, counting a vector–Jacobian product as one.
    pub fn nfe(&self) -> usize {
        self.nfe_vjp + self.nfe_rebuild
    }
}
