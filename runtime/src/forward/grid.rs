//! The accepted steps of a solve, recorded once by the forward loop and read by everyone after
//! it: [`Solution::steps`](crate::Solution::steps), the state store (to recompute states it did
//! not keep) and every gradient method. A fixed grid is kept as one run per interval (its times
//! are computed, exactly as the solve computed them); an adaptive grid as `(t, h)` per step.

use std::sync::Arc;

use crate::controller::constant::{fixed_time, Run};
use crate::real::Real;

/// The accepted steps of a solve: their start times and sizes, and the step boundaries
/// `t₀, t₁, …, t_end` (see [`Solution::steps`](crate::Solution::steps)). Costs two values per
/// accepted step for adaptive solves and one entry per output interval for fixed steps; a clone
/// shares them.
#[derive(Clone, Debug, PartialEq)]
pub struct StepGrid<E>(Arc<Grid<E>>);

impl<E: Real> StepGrid<E> {
    /// Number of accepted steps.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no step was taken.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `(t, h)` of step `n`: where it starts and its (signed) size.
    pub fn step(&self, n: usize) -> Option<(E, E)> {
        self.0.step(n)
    }

    /// The time of step boundary `j` (after `j` steps), `0 ≤ j ≤ len()`.
    pub fn boundary(&self, j: usize) -> Option<E> {
        self.0.boundary(j)
    }

    /// Every boundary in order: the start of the first step, then the end of each (`len() + 1`
    /// values; empty if no step was taken).
    pub fn to_vec(&self) -> Vec<E> {
        self.0.to_vec()
    }
}

impl<E> From<Grid<E>> for StepGrid<E> {
    fn from(grid: Grid<E>) -> Self {
        StepGrid(Arc::new(grid))
    }
}

/// The step grid as the forward loop records it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Grid<E> {
    /// Fixed steps: the runs, and the index of each run's first step.
    runs: Vec<(usize, Run<E>)>,
    /// Adaptive steps: `(t, h)` of each accepted step.
    steps: Vec<(E, E)>,
    /// The end of the last step (the start time before the first).
    end: E,
    len: usize,
}

impl<E: Real> Grid<E> {
    /// No steps yet, from `t0`.
    pub(crate) fn new(t0: E) -> Self {
        Grid {
            runs: Vec::new(),
            steps: Vec::new(),
            end: t0,
            len: 0,
        }
    }

    /// Declares the next `run.n` accepted steps equal steps of `run`: their times are computed,
    /// not stored.
    pub(crate) fn run(&mut self, run: Run<E>) {
        let first = self.runs.last().map_or(0, |(f, r)| f + r.n);
        self.runs.push((first, run));
    }

    /// Records the accepted step `len()` from `t` of size `h`, ending at `end`.
    pub(crate) fn accept(&mut self, t: E, h: E, end: E) {
        if self.runs.is_empty() {
            self.steps.push((t, h));
        } else {
            debug_assert_eq!(self.step(self.len), Some((t, h)), "off the fixed grid");
        }
        self.len += 1;
        self.end = end;
    }

    /// Number of accepted steps.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no step was taken.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `(t, h)` of step `n`: where it starts and its (signed) size.
    pub fn step(&self, n: usize) -> Option<(E, E)> {
        if self.runs.is_empty() {
            return self.steps.get(n).copied();
        }
        if n >= self.run_steps() {
            return None;
        }
        let i = self
            .runs
            .partition_point(|(first, _)| *first <= n)
            .checked_sub(1)?;
        let (first, r) = self.runs[i];
        let j = n - first;
        let t = fixed_time(r.start, r.target, j, r.n);
        Some((t, fixed_time(r.start, r.target, j + 1, r.n) - t))
    }

    /// The time of step boundary `j` (after `j` steps), `0 ≤ j ≤ len()`.
    pub fn boundary(&self, j: usize) -> Option<E> {
        if j == self.len {
            return Some(self.end);
        }
        self.step(j).map(|(t, _)| t)
    }

    /// Every boundary in order: the start of the first step, then the end of each (`len() + 1`
    /// values; empty if no step was taken).
    pub fn to_vec(&self) -> Vec<E> {
        if self.is_empty() {
            return Vec::new();
        }
        (0..=self.len).filter_map(|j| self.boundary(j)).collect()
    }

    /// The steps the declared runs hold (accepted or not yet).
    fn run_steps(&self) -> usize {
        self.runs.last().map_or(0, |(f, r)| f + r.n)
    }

    /// Heap bytes the grid holds (by capacity).
    pub(crate) fn bytes(&self) -> usize {
        self.steps.capacity() * core::mem::size_of::<(E, E)>()
            + self.runs.capacity() * core::mem::size_of::<(usize, Run<E>)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_runs_are_computed_and_adaptive_steps_stored() {
        let mut g = Grid::new(0.0);
        g.run(Run {
            start: 0.0,
            target: 1.0,
            n: 2,
        });
        g.run(Run {
            start: 1.0,
            target: 4.0,
            n: 3,
        });
        let mut t = 0.0;
        for n in 0..5 {
            let (s, h) = g.step(n).unwrap();
            assert_eq!(s, t);
            g.accept(s, h, s + h);
            t = s + h;
        }
        assert_eq!(g.to_vec(), [0.0, 0.5, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(g.step(5), None);
        assert_eq!(g.boundary(5), Some(4.0));

        let mut g = Grid::new(1.0);
        assert!(g.to_vec().is_empty());
        g.accept(1.0, -0.25, 0.75);
        g.accept(0.75, -0.75, 0.0);
        assert_eq!(g.to_vec(), [1.0, 0.75, 0.0]);
        assert_eq!(g.step(1), Some((0.75, -0.75)));
        assert_eq!(g.step(2), None);
    }
}
