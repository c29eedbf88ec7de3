//! Outputs between step boundaries: where each output lies on the step grid, the fixed-step
//! grid over the whole span, and the output cotangents folded into a step's stage cotangents.

use dfdx::prelude::*;

use crate::checkpoint::fixed_time;
use crate::options::SolveOptions;
use crate::real::Real;
use crate::rk::RungeKutta;

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

/// The reverse passes' walk over the outputs, last first: after step `n`'s outputs at its end
/// boundary ([`Self::at_boundary`]`(n + 1)`) come those interpolated inside it
/// ([`Self::inside`]`(n)`), and what is left at the end ([`Self::rest`]) lies at the initial
/// state.
pub(crate) struct OutputsBackward<'a, E> {
    out_at: &'a [OutputAt<E>],
    k: usize,
}

impl<'a, E: Real> OutputsBackward<'a, E> {
    pub fn new(out_at: &'a [OutputAt<E>]) -> Self {
        OutputsBackward {
            out_at,
            k: out_at.len(),
        }
    }

    /// The indices of the outputs exactly at step boundary `b`, last first.
    pub fn at_boundary(&mut self, b: usize) -> core::iter::Rev<core::ops::Range<usize>> {
        let end = self.k;
        while self.k > 0 && self.out_at[self.k - 1] == OutputAt::boundary(b) {
            self.k -= 1;
        }
        (self.k..end).rev()
    }

    /// The outputs interpolated inside step `n`, as `(index, θ)`, last first.
    pub fn inside(&mut self, n: usize) -> Vec<(usize, E)> {
        let mut taken = Vec::new();
        while let Some(&OutputAt {
            after,
            theta: Some(theta),
        }) = self.k.checked_sub(1).map(|i| &self.out_at[i])
        {
            if after != n {
                break;
            }
            self.k -= 1;
            taken.push((self.k, theta));
        }
        taken
    }

    /// The indices of the outputs not yet taken, last first.
    pub fn rest(&mut self) -> core::iter::Rev<core::ops::Range<usize>> {
        let end = core::mem::take(&mut self.k);
        (0..end).rev()
    }
}

/// The equal steps of a fixed-step solve, as `(from, to, n)` runs: one over the whole span
/// (outputs interpolated), or one per output interval when the solve lands on its outputs.
/// `None` for adaptive steps.
pub(crate) fn fixed_runs<E: Real>(times: &[E], opts: &SolveOptions) -> Option<Vec<(E, E, usize)>> {
    let t0 = *times.first()?;
    let t_end = *times.last()?;
    let span: f64 = (t_end - t0).into();
    let h_max = opts.stepping.fixed_step(span)?;
    let count = |from: E, to: E| -> usize {
        let interval: f64 = (to - from).into();
        ((interval.abs() / h_max) * (1.0 - 1e-12)).ceil().max(1.0) as usize
    };
    if times.len() < 2 {
        return Some(Vec::new());
    }
    if opts.land_on_outputs {
        Some(
            times
                .windows(2)
                .map(|w| (w[0], w[1], count(w[0], w[1])))
                .collect(),
        )
    } else {
        Some(vec![(t0, t_end, count(t0, t_end))])
    }
}

/// The time of step boundary `j` (after `j` steps) on fixed-step `runs`.
pub(crate) fn run_time<E: Real>(runs: &[(E, E, usize)], mut j: usize) -> Option<E> {
    for &(from, to, n) in runs {
        if j <= n {
            return Some(fixed_time(from, to, j, n));
        }
        j -= n;
    }
    None
}

/// `Σⱼ bᵢ(θⱼ) ōⱼ` for each of the interpolant's stages, over the outputs `(θⱼ, ōⱼ)` inside one
/// step: the terms [`RungeKutta::adjoint_step`] adds to the stage cotangents (`AdjointInput::outputs`). Stages whose
/// polynomial is identically zero get a handle to the first cotangent (never read).
pub(crate) fn stage_cotangents<R, S, E, D>(outs: &[(E, &Tensor<S, E, D>)]) -> Vec<Tensor<S, E, D>>
where
    R: RungeKutta,
    S: Shape,
    E: Real,
    D: Device<E>,
{
    let m = R::INTERPOLANT_STAGES;
    let mut weights = vec![E::zero(); m * outs.len()];
    for (j, (theta, _)) in outs.iter().enumerate() {
        R::interpolant_weights(*theta, &mut weights[j * m..(j + 1) * m]);
    }
    (0..m)
        .map(|i| {
            let terms: Vec<(E, &Tensor<S, E, D>)> = outs
                .iter()
                .enumerate()
                .map(|(j, (_, o))| (weights[j * m + i], *o))
                .filter(|(w, _)| *w != E::zero())
                .collect();
            match terms.split_first() {
                Some((&first, rest)) => crate::rk::combine(first, rest),
                // Never read: bᵢ(θ) is identically zero.
                None if R::INTERPOLANT[i].iter().all(|&c| c == 0.0) => outs[0].1.clone(),
                // bᵢ(θⱼ) = 0 at every output (a root of the polynomial, or θ = 1 for Hermite).
                None => outs[0].1.device().zeros_like(outs[0].1.shape()),
            }
        })
        .collect()
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

    #[test]
    fn the_backward_walk_takes_every_output_once_where_it_lies() {
        let b = OutputAt::<f64>::boundary;
        let inside = |after, theta| OutputAt {
            after,
            theta: Some(theta),
        };
        // Two outputs at the start, two inside step 0, one at boundary 1 (twice), one inside
        // step 2, one at the end of step 2 (boundary 3).
        let out_at = [
            b(0),
            b(0),
            inside(0, 0.25),
            inside(0, 0.75),
            b(1),
            b(1),
            inside(2, 0.5),
            b(3),
        ];
        let mut walk = OutputsBackward::new(&out_at);
        let mut seen = Vec::new();
        for n in (0..3).rev() {
            seen.push(walk.at_boundary(n + 1).collect::<Vec<_>>());
            let inner = walk.inside(n);
            seen.push(inner.iter().map(|&(k, _)| k).collect());
            for (k, theta) in inner {
                assert_eq!(out_at[k].theta, Some(theta));
            }
        }
        seen.push(walk.rest().collect());
        let expected: [&[usize]; 7] = [&[7], &[6], &[], &[], &[5, 4], &[3, 2], &[1, 0]];
        assert_eq!(seen, expected);
        assert_eq!(walk.rest().count(), 0);
    }

    #[test]
    fn run_times_walk_every_run() {
        let runs = [(0.0, 1.0, 2), (1.0, 4.0, 3)];
        let got: Vec<f64> = (0..=5).map(|j| run_time(&runs, j).unwrap()).collect();
        assert_eq!(got, [0.0, 0.5, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(run_time(&runs, 6), None);
    }
}
