//! The scaled error norm that adaptive steps are judged by: one definition for the forward
//! solve and for the continuous adjoint's augmented state.

use dfdx::prelude::*;

use crate::group::BatchGroup;
use crate::real::Real;

/// Hairer's scaled RMS norm: `sqrt(mean((e_i / (atol + rtol · max(|x_i|, |y_i|)))²))`, on
/// buffers of any real type. Returns `∞` when any entry is not finite. With a `group`, the mean
/// is over the entries of every process of the group.
pub(crate) fn rms_norm<T: Copy + Into<f64>>(
    err: &[T],
    x: &[T],
    y: &[T],
    (rtol, atol): (f64, f64),
    group: Option<&BatchGroup>,
) -> f64 {
    let mut sums = square_sums(err, x, y, rtol, atol);
    if let Some(group) = group {
        group.sum(&mut sums);
    }
    let [sum, len, non_finite] = sums;
    if len == 0.0 {
        return 0.0;
    }
    let norm = (sum / len).sqrt();
    if norm.is_finite() && non_finite == 0.0 {
        norm
    } else {
        f64::INFINITY
    }
}

/// `[Σ (e_i / scale_i)², entries, 1 if some y_i is not finite]`: what the norm of a split batch
/// sums over its processes.
fn square_sums<T: Copy + Into<f64>>(err: &[T], x: &[T], y: &[T], rtol: f64, atol: f64) -> [f64; 3] {
    let mut sum = 0.0;
    let mut y_finite = true;
    for ((&e, &a), &b) in err.iter().zip(x).zip(y) {
        let (e, a, b): (f64, f64, f64) = (e.into(), a.into(), b.into());
        y_finite &= b.is_finite();
        let scale = atol + rtol * a.abs().max(b.abs());
        // With atol = 0 an entry at exactly zero has no scale: it is on target only if exact.
        let r = if scale == 0.0 {
            if e == 0.0 {
                0.0
            } else {
                f64::INFINITY
            }
        } else {
            e / scale
        };
        sum += r * r;
    }
    [sum, err.len() as f64, if y_finite { 0.0 } else { 1.0 }]
}

/// An error estimate with the start and end states it is scaled by.
pub(crate) type Part<'a, S, E, D> = (
    &'a Tensor<S, E, D>,
    &'a Tensor<S, E, D>,
    &'a Tensor<S, E, D>,
);

/// The error norm of one solve with its tolerances, reading tensors through host buffers that
/// are allocated once and reused for every step.
pub(crate) struct ErrorNorm<E> {
    tolerances: (f64, f64),
    group: Option<BatchGroup>,
    host: [Vec<E>; 3],
}

impl<E: Real> ErrorNorm<E> {
    /// The norm with tolerances `(rtol, atol)`, over the whole `group` when the batch is split.
    pub fn new(tolerances: (f64, f64), group: Option<BatchGroup>) -> Self {
        ErrorNorm {
            tolerances,
            group,
            host: [Vec::new(), Vec::new(), Vec::new()],
        }
    }

    /// The norm of `err` scaled by `x` and `y`, given as host buffers.
    pub fn of_slices<T: Copy + Into<f64>>(&self, err: &[T], x: &[T], y: &[T]) -> f64 {
        rms_norm(err, x, y, self.tolerances, self.group.as_ref())
    }

    /// The norm of the error estimate `err` of a step from `x` to `y`.
    pub fn of<S: Shape, D: Device<E>>(
        &mut self,
        err: &Tensor<S, E, D>,
        x: &Tensor<S, E, D>,
        y: &Tensor<S, E, D>,
    ) -> f64 {
        self.of_parts(&[(err, x, y)], 1)
    }

    /// The norm over the concatenation of the first `take` of `parts` (error, start, end):
    /// the continuous adjoint's state and cotangent as one vector.
    pub fn of_parts<S: Shape, D: Device<E>>(
        &mut self,
        parts: &[Part<'_, S, E, D>],
        take: usize,
    ) -> f64 {
        let parts = &parts[..take.min(parts.len())];
        let n: usize = parts.iter().map(|p| p.0.shape().num_elements()).sum();
        for buf in &mut self.host {
            buf.resize(n, E::zero());
        }
        let [he, hx, hy] = &mut self.host;
        let mut at = 0;
        for (e, x, y) in parts {
            let len = e.shape().num_elements();
            e.copy_into(&mut he[at..at + len]);
            x.copy_into(&mut hx[at..at + len]);
            y.copy_into(&mut hy[at..at + len]);
            at += len;
        }
        rms_norm(he, hx, hy, self.tolerances, self.group.as_ref())
    }
}

/// Whether every entry of `x` is finite, read through `host`, a host buffer the caller reuses
/// across calls (one memcpy, no allocation once it has `x`'s length).
pub(crate) fn all_finite<S: Shape, E: Real, D: Device<E>>(
    x: &Tensor<S, E, D>,
    host: &mut Vec<E>,
) -> bool {
    let x = x.clone().contiguous();
    host.resize(x.shape().num_elements(), E::zero());
    x.copy_into(host);
    host.iter().all(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norm_mixes_absolute_and_relative_tolerances() {
        let n = rms_norm(
            &[1e-6, 1e-6],
            &[0.0, 100.0],
            &[0.0, 100.0],
            (1e-6, 1e-6),
            None,
        );
        // scales 1e-6 and 1e-6 + 1e-4.
        let expect = ((1.0 + (1e-6f64 / (1e-6 + 1e-4)).powi(2)) / 2.0).sqrt();
        assert!((n - expect).abs() < 1e-12);
        assert_eq!(
            rms_norm(&[f64::NAN], &[0.0], &[0.0], (1e-6, 1e-6), None),
            f64::INFINITY
        );
        assert_eq!(
            rms_norm(&[0.0], &[0.0], &[f64::INFINITY], (1e-6, 1e-6), None),
            f64::INFINITY
        );
    }

    #[test]
    fn parts_are_one_vector() {
        let dev = Cpu::default();
        let t = |v: [f64; 2]| dev.tensor(v);
        let (e1, x1, y1) = (t([1e-6, 2e-6]), t([1.0, 2.0]), t([1.5, 0.5]));
        let (e2, x2, y2) = (t([3e-6, 0.0]), t([0.0, -4.0]), t([0.1, 3.0]));
        let mut norm = ErrorNorm::new((1e-3, 1e-6), None);
        let both = norm.of_parts(&[(&e1, &x1, &y1), (&e2, &x2, &y2)], 2);
        let cat = |a: &Tensor<Rank1<2>, f64, Cpu>, b: &Tensor<Rank1<2>, f64, Cpu>| {
            let mut v = a.as_vec();
            v.extend(b.as_vec());
            v
        };
        let expect = rms_norm(
            &cat(&e1, &e2),
            &cat(&x1, &x2),
            &cat(&y1, &y2),
            (1e-3, 1e-6),
            None,
        );
        assert_eq!(both.to_bits(), expect.to_bits());
        assert_eq!(norm.of(&e1, &x1, &y1), norm.of_parts(&[(&e1, &x1, &y1)], 1));
    }
}
