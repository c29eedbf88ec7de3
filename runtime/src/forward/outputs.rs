//! Outputs: where each output time lies on the accepted steps, and its value: a step boundary,
//! or the method's interpolant inside a step (from the step's stage derivatives).

use dfdx::prelude::*;

use crate::backend::Backend;
use crate::field::VectorField;
use crate::real::Real;
use crate::rk::RungeKutta;
use crate::shape::StateShape;
use crate::stats::ForwardStats;

/// Where an output lies on the accepted steps: at the boundary after `after` steps
/// (`theta: None`), or inside step `after` at `t + θh` (`theta: Some(θ)`, `0 < θ < 1` up to
/// rounding), interpolated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct OutputAt<E> {
    pub after: usize,
    pub theta: Option<E>,
}

impl<E> OutputAt<E> {
    pub fn boundary(after: usize) -> Self {
        OutputAt { after, theta: None }
    }

    /// The first and last step boundaries strictly after this output and strictly before
    /// `next` (an empty range when there are none).
    pub fn boundaries_before(&self, next: &OutputAt<E>) -> core::ops::RangeInclusive<usize> {
        let first = self.after + 1;
        let last = match next.theta {
            Some(_) => next.after,
            None => next.after.saturating_sub(1),
        };
        // (Empty when `last < first`, as for two outputs inside one step or at the same boundary.)
        first..=last
    }
}

/// Where the outputs of a solve with per-sample steps lie: output `k` of row `i` at the step
/// boundary where row `i` reached its `k`-th time (`groups`: `(boundary, k, rows)`, ordered by
/// boundary), or inside the step where row `i` passed it, at its own `θ` (`inside`:
/// `(step, k, [(row, θ)])`, ordered by step).
#[derive(Clone, Debug)]
pub(crate) struct RowOutputs<E> {
    /// Rows of the batch.
    pub batch: usize,
    pub groups: Vec<(usize, usize, Vec<usize>)>,
    pub inside: Vec<Within<E>>,
}

/// Outputs inside one step: `(step, k, [(row, θ)])`.
pub(crate) type Within<E> = (usize, usize, Vec<(usize, E)>);

impl<E: Real> RowOutputs<E> {
    /// From `(boundary, k, row)` and `(step, k, row, θ)` in any order, for `batch` rows.
    pub fn new(
        batch: usize,
        mut placed: Vec<(usize, usize, usize)>,
        mut inside: Vec<(usize, usize, usize, E)>,
    ) -> Self {
        placed.sort_unstable();
        let mut groups: Vec<(usize, usize, Vec<usize>)> = Vec::new();
        for (b, k, i) in placed {
            match groups.last_mut() {
                Some((gb, gk, rows)) if *gb == b && *gk == k => rows.push(i),
                _ => groups.push((b, k, vec![i])),
            }
        }
        inside.sort_by_key(|&(n, k, i, _)| (n, k, i));
        let mut within: Vec<Within<E>> = Vec::new();
        for (n, k, i, theta) in inside {
            match within.last_mut() {
                Some((gn, gk, rows)) if *gn == n && *gk == k => rows.push((i, theta)),
                _ => within.push((n, k, vec![(i, theta)])),
            }
        }
        RowOutputs {
            batch,
            groups,
            inside: within,
        }
    }

    /// The number of outputs (one more than the largest index placed).
    pub fn outputs(&self) -> usize {
        let at = self.groups.iter().map(|g| g.1);
        at.chain(self.inside.iter().map(|g| g.1))
            .max()
            .map_or(1, |k| k + 1)
    }

    /// The groups at boundary `b`, as `(k, rows)`.
    pub fn at(&self, b: usize) -> impl Iterator<Item = (usize, &[usize])> {
        let start = self.groups.partition_point(|g| g.0 < b);
        self.groups[start..]
            .iter()
            .take_while(move |g| g.0 == b)
            .map(|(_, k, rows)| (*k, rows.as_slice()))
    }

    /// The outputs interpolated inside step `n`, as `(k, θ per row, rows)`: rows that are not
    /// in the group get `θ = 0`.
    pub fn inside(&self, n: usize) -> impl Iterator<Item = (usize, Vec<E>, Vec<usize>)> + '_ {
        let start = self.inside.partition_point(|g| g.0 < n);
        self.inside[start..]
            .iter()
            .take_while(move |g| g.0 == n)
            .map(|(_, k, rows)| {
                let mut thetas = vec![E::zero(); self.batch];
                for &(i, theta) in rows {
                    thetas[i] = theta;
                }
                (*k, thetas, rows.iter().map(|r| r.0).collect())
            })
    }

    /// A state-shaped mask: one in the entries of `rows`, zero elsewhere.
    pub fn mask<S: Shape, D: Device<E>>(
        &self,
        like: &Tensor<S, E, D>,
        rows: &[usize],
    ) -> Tensor<S, E, D> {
        let mut v = vec![E::zero(); self.batch];
        for &i in rows {
            v[i] = E::one();
        }
        crate::per_sample::per_row(like, &v)
    }
}

/// The outputs produced so far, and the next output time to produce.
pub(crate) struct Outputs<'a, S: Shape, E: Real, D: Backend<E>> {
    times: &'a [E],
    next: usize,
    dir: f64,
    /// States at the output times so far (the first is the initial state).
    pub values: Vec<Tensor<S, E, D>>,
    /// Where each lies.
    pub at: Vec<OutputAt<E>>,
}

impl<'a, S: StateShape, E: Real, D: Backend<E>> Outputs<'a, S, E, D> {
    /// The first output, `x0` at `times[0]`, and the rest to come in direction `dir`.
    pub fn new(times: &'a [E], dir: f64, x0: &Tensor<S, E, D>) -> Self {
        Outputs {
            times,
            next: 1,
            dir,
            values: vec![x0.clone()],
            at: vec![OutputAt::boundary(0)],
        }
    }

    /// Every output is `x0` (a state with no entries: nothing to integrate).
    pub fn all_initial(&mut self) {
        let x0 = self.values[0].clone();
        self.values.resize(self.times.len(), x0);
        self.at.resize(self.times.len(), OutputAt::boundary(0));
        self.next = self.times.len();
    }

    /// After accepted step `n` from `(t, x)` of size `h` to `(t_next, y)` with stage derivatives
    /// `ks`: the outputs inside the step, interpolated, and the one at `t_next`, if any. Where
    /// the interpolant has an extra stage (a method that is not FSAL, with the Hermite fallback
    /// or a `[dense]` section's extra row) this evaluates `f(t + h, y)` once, and returns it as
    /// the next step's first evaluation when that is at `t_next`.
    pub fn after_step<R, F>(
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
                self.values.push(y.clone());
                self.at.push(OutputAt::boundary(n + 1));
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
                self.values.push(R::interpolate(h, x, &ks, theta));
                self.at.push(OutputAt {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_between_outputs() {
        let b = OutputAt::<f64>::boundary;
        let inside = |after, theta| OutputAt {
            after,
            theta: Some(theta),
        };
        // Boundary 2 to boundary 5: boundaries 3 and 4 lie between.
        assert_eq!(b(2).boundaries_before(&b(5)), 3..=4);
        // Inside step 2 (between boundaries 2 and 3) to inside step 5: boundaries 3, 4, 5.
        assert_eq!(inside(2, 0.5).boundaries_before(&inside(5, 0.1)), 3..=5);
        // Two outputs inside the same step: none.
        assert!(inside(4, 0.2).boundaries_before(&inside(4, 0.7)).is_empty());
        // Boundary 0 to inside step 0: none; boundary 0 to boundary 1: none.
        assert!(b(0).boundaries_before(&inside(0, 0.5)).is_empty());
        assert!(b(0).boundaries_before(&b(1)).is_empty());
        assert!(b(0).boundaries_before(&b(0)).is_empty());
    }
}
