//! A batch split across processes (data parallelism): what adaptive solves of the parts share so
//! that every part takes the steps the whole batch would take.
//!
//! An adaptive solve judges each step by an error norm over the whole state. When the batch is
//! split across processes, each process holds only its rows; without sharing, each part would
//! choose its own steps and the parts together would not be the solve of the whole batch. With a
//! [`BatchGroup`] in [`SolveOptions`](crate::SolveOptions), every norm is summed over the group
//! before it is used (a few numbers per step attempt), so every part makes the same decisions:
//! the same first step, the same accepted and rejected steps, the same failures. Fixed steps need
//! nothing shared and ignore the group.
//!
//! `neural_ode::distributed` (feature `mpi`) builds one over an MPI communicator.

use std::fmt;
use std::sync::Arc;

use crate::error::Error;

/// Element-wise sums of small vectors over the processes that share a batch: the one
/// collective operation a split adaptive solve needs.
pub trait GroupSum: Send + Sync {
    /// Replaces every entry of `values` by its sum over the group. Every process must get the
    /// same bits, and every process calls this the same number of times in the same order.
    fn sum(&self, values: &mut [f64]);
}

/// The processes that share a batch, for [`SolveOptions::with_batch_group`]: a [`GroupSum`]
/// behind a shared pointer (two groups are equal when they are the same object).
///
/// [`SolveOptions::with_batch_group`]: crate::SolveOptions::with_batch_group
#[derive(Clone)]
pub struct BatchGroup(Arc<dyn GroupSum>);

impl BatchGroup {
    /// Wraps the group's sum.
    pub fn new(sum: impl GroupSum + 'static) -> Self {
        BatchGroup(Arc::new(sum))
    }

    /// Sums `values` over the group.
    pub(crate) fn sum(&self, values: &mut [f64]) {
        self.0.sum(values);
    }

    /// Agrees on a local outcome before the first shared norm: every process learns whether
    /// any failed, so none waits for a process that stopped. A local error is returned as it
    /// is; a process that succeeded while others failed gets [`Error::GroupFailed`].
    pub(crate) fn agree(&self, local: Result<(), Error>) -> Result<(), Error> {
        let mut failed = [if local.is_err() { 1.0 } else { 0.0 }];
        self.sum(&mut failed);
        local?;
        match failed[0] {
            0.0 => Ok(()),
            n => Err(Error::GroupFailed { parts: n as usize }),
        }
    }

    /// Whether `local` holds in every process of the group.
    pub(crate) fn all(&self, local: bool) -> bool {
        let mut failed = [if local { 0.0 } else { 1.0 }];
        self.sum(&mut failed);
        failed[0] == 0.0
    }
}

impl fmt::Debug for BatchGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BatchGroup({:p})", Arc::as_ptr(&self.0))
    }
}

impl PartialEq for BatchGroup {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process alone: its sums are its own values.
    struct Alone;

    impl GroupSum for Alone {
        fn sum(&self, _values: &mut [f64]) {}
    }

    #[test]
    fn agreement_passes_local_errors_through() {
        let group = BatchGroup::new(Alone);
        assert_eq!(group.agree(Ok(())), Ok(()));
        assert_eq!(group.agree(Err(Error::EmptyTimes)), Err(Error::EmptyTimes));
        assert!(group.all(true) && !group.all(false));
        assert_eq!(group, group.clone());
        assert_ne!(group, BatchGroup::new(Alone));
    }

    /// A group in which another process failed (its sums add one failure).
    struct OtherFailed;

    impl GroupSum for OtherFailed {
        fn sum(&self, values: &mut [f64]) {
            values[0] += 1.0;
        }
    }

    #[test]
    fn a_failure_elsewhere_fails_everywhere() {
        let group = BatchGroup::new(OtherFailed);
        assert_eq!(group.agree(Ok(())), Err(Error::GroupFailed { parts: 1 }));
        assert!(!group.all(true));
    }
}
