//! The accepted step boundaries of a solve, kept compactly: a fixed-step grid as one run per
//! output interval (the times are computed on demand, exactly as the solve computed them), an
//! adaptive grid as one time per accepted step.

use crate::checkpoint::fixed_time;
use crate::real::Real;

/// The times of every accepted step boundary of a solve, `t₀, t₁, …, t_end` (see
/// [`Solution::steps`](crate::Solution::steps)). Costs one value per accepted step for
/// adaptive solves and one entry per output interval for fixed steps.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepTimes<E> {
    start: Option<E>,
    /// Fixed steps: `(from, to, n)` per output interval.
    runs: Vec<(E, E, usize)>,
    /// Adaptive steps: the end of each accepted step.
    ends: Vec<E>,
}

impl<E: Real> StepTimes<E> {
    pub(crate) fn new(t0: E) -> Self {
        StepTimes {
            start: Some(t0),
            runs: Vec::new(),
            ends: Vec::new(),
        }
    }

    /// `n` equal steps from `from` to `to` (a fixed-step output interval).
    pub(crate) fn run(&mut self, from: E, to: E, n: usize) {
        self.runs.push((from, to, n));
    }

    /// An accepted adaptive step ending at `t`.
    pub(crate) fn push(&mut self, t: E) {
        self.ends.push(t);
    }

    /// Number of accepted steps.
    pub fn len(&self) -> usize {
        self.ends.len() + self.runs.iter().map(|r| r.2).sum::<usize>()
    }

    /// Whether no step was taken.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every boundary in order: the start of the first step, then the end of each (`len() + 1`
    /// values; empty if no step was taken).
    pub fn to_vec(&self) -> Vec<E> {
        if self.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(self.len() + 1);
        out.extend(self.start);
        out.extend_from_slice(&self.ends);
        for &(from, to, n) in &self.runs {
            out.extend((1..=n).map(|i| fixed_time(from, to, i, n)));
        }
        out
    }
}
