//! Constant steps: the fixed grid, known before solving, every step accepted. The steps of an
//! interval are computed from its ends, so they land on it exactly and do not drift.

use dfdx::prelude::*;

use super::{all_finite, Attempt, StepControl, Taken};
use crate::error::Error;
use crate::real::Real;

/// `n` equal steps from `start` to `target`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Run<E> {
    pub start: E,
    pub target: E,
    pub n: usize,
}

/// The time at which step `i` of `n` equal steps from `start` to `target` starts (`i ≤ n`): the
/// fixed-step grid, computed the same way wherever it is needed, so it need not be stored.
pub(crate) fn fixed_time<E: Real>(start: E, target: E, i: usize, n: usize) -> E {
    if i == 0 {
        start
    } else if i == n {
        target
    } else {
        let interval: f64 = (target - start).into();
        start + E::from_f64_lossy(interval * i as f64 / n as f64)
    }
}

/// The equal steps of a fixed-step solve over `targets` (each reached in turn from `t0`), at
/// most `h_max` long: one run per target.
pub(crate) fn runs<E: Real>(t0: E, targets: &[E], h_max: f64) -> Vec<Run<E>> {
    let mut from = t0;
    let mut runs = Vec::new();
    for &to in targets {
        let interval: f64 = (to - from).into();
        let n = ((interval.abs() / h_max) * (1.0 - 1e-12)).ceil().max(1.0) as usize;
        runs.push(Run {
            start: from,
            target: to,
            n,
        });
        from = to;
    }
    runs
}

/// Constant steps along runs of equal steps, one run per target time.
pub(crate) struct Constant<E> {
    runs: Vec<Run<E>>,
    /// The run being stepped through, and the steps taken in it.
    run: usize,
    taken: usize,
    accepted: usize,
    host: Vec<E>,
}

impl<E: Real> Constant<E> {
    pub fn new(runs: Vec<Run<E>>) -> Self {
        Constant {
            runs,
            run: 0,
            taken: 0,
            accepted: 0,
            host: Vec::new(),
        }
    }

    /// The runs of the whole solve.
    pub fn runs(&self) -> &[Run<E>] {
        &self.runs
    }
}

impl<E: Real> StepControl<E> for Constant<E> {
    fn known_steps(&self) -> Option<usize> {
        Some(self.runs.iter().fold(0usize, |a, r| a.saturating_add(r.n)))
    }

    /// The next step of the current run; `None` (and on to the next run) once it is done.
    fn attempt(&mut self, t: E, _target: E) -> Result<Option<Attempt<E>>, Error> {
        let Some(run) = self.runs.get(self.run) else {
            return Ok(None);
        };
        if self.taken == run.n {
            self.run += 1;
            self.taken = 0;
            return Ok(None);
        }
        // Step i ends at start + (i+1)/n · interval: no drift, exact landing.
        let end = fixed_time(run.start, run.target, self.taken + 1, run.n);
        let h = end - t;
        Ok(Some(Attempt {
            h,
            end,
            lands: self.taken + 1 == run.n,
            h_abs: Into::<f64>::into(h).abs(),
        }))
    }

    /// Every step is accepted; a non-finite result ends the solve at once (no smaller step to
    /// try).
    fn judge<S: Shape, D: Device<E>>(
        &mut self,
        t: E,
        attempt: &Attempt<E>,
        (_, y, _): Taken<'_, S, E, D>,
    ) -> Result<bool, Error> {
        if !all_finite(y, &mut self.host) {
            return Err(Error::NonFinite {
                t: t.into(),
                h: attempt.h.into(),
            });
        }
        self.taken += 1;
        self.accepted += 1;
        Ok(true)
    }

    fn counts(&self) -> (usize, usize) {
        (self.accepted, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_split_each_interval_into_equal_steps_that_land() {
        let runs = runs(0.0, &[0.3, 0.7, 1.2], 0.1);
        let n: Vec<usize> = runs.iter().map(|r| r.n).collect();
        assert_eq!(n, [3, 4, 5]);
        let mut c = Constant::new(runs);
        assert_eq!(c.known_steps(), Some(12));
        let dev = Cpu::default();
        let y: Tensor<Rank1<1>, f64, Cpu> = dev.zeros();
        let mut t = 0.0;
        let mut ends = Vec::new();
        for target in [0.3, 0.7, 1.2] {
            while let Some(a) = c.attempt(t, target).unwrap() {
                assert!(c.judge(t, &a, (&y, &y, None)).unwrap());
                t = a.end;
                ends.push(t);
            }
            assert_eq!(t, target, "each run lands on its target exactly");
        }
        assert_eq!(ends.len(), 12);
        assert_eq!(c.counts(), (12, 0));
    }
}
