//! Step-size control: it proposes step sizes and accepts or rejects steps, and knows nothing of
//! gradients or of the method beyond its error order.

/// Decides whether a step is accepted and what size the next step has.
pub trait StepSizeController {
    /// Called once per solve with the order of the error estimate (`embedded_order + 1` for the
    /// local error) before the first step.
    fn reset(&mut self, error_order: u32);

    /// Given the scaled error norm of a step of size `h` (positive; `∞` when the norm was not
    /// finite) taken from time `t`, returns whether to accept it and the size of the next
    /// attempt. (`t` lets a controller vary with time, say to step carefully near a known
    /// event; the shipped [`PiController`] does not use it.)
    fn decide(&mut self, t: f64, err_norm: f64, h: f64) -> (bool, f64);
}

/// The proportional–integral controller of Hairer, Nørsett & Wanner (II.4) and Söderlind:
/// `h_new = h · safety · err^(-α) · err_prev^(β)`, clamped to `[factor_min, factor_max]`,
/// with `α = 0.7 / k`, `β = 0.4 / k` for an error of order `k`. After a rejection the step only
/// shrinks.
#[derive(Clone, Debug, PartialEq)]
pub struct PiController {
    /// Safety factor (`0 < safety ≤ 1`).
    pub safety: f64,
    /// Smallest shrink factor.
    pub factor_min: f64,
    /// Largest growth factor.
    pub factor_max: f64,
    alpha: f64,
    beta: f64,
    prev_err: f64,
    rejected_last: bool,
}

impl PiController {
    /// A controller with these factors.
    pub fn new(safety: f64, factor_min: f64, factor_max: f64) -> Self {
        PiController {
            safety,
            factor_min,
            factor_max,
            alpha: 0.2,
            beta: 0.0,
            prev_err: 1.0,
            rejected_last: false,
        }
    }
}

impl Default for PiController {
    fn default() -> Self {
        Self::new(0.9, 0.2, 10.0)
    }
}

impl StepSizeController for PiController {
    fn reset(&mut self, error_order: u32) {
        let k = f64::from(error_order.max(1));
        self.alpha = 0.7 / k;
        self.beta = 0.4 / k;
        self.prev_err = 1.0;
        self.rejected_last = false;
    }

    fn decide(&mut self, _t: f64, err_norm: f64, h: f64) -> (bool, f64) {
        if !err_norm.is_finite() {
            self.rejected_last = true;
            return (false, h * self.factor_min);
        }
        if err_norm <= 1.0 {
            let err = err_norm.max(1e-10);
            let mut factor = self.safety * err.powf(-self.alpha) * self.prev_err.powf(self.beta);
            factor = factor.clamp(self.factor_min, self.factor_max);
            if self.rejected_last {
                factor = factor.min(1.0);
            }
            // As in Hairer's DOPRI5: a very accurate step does not damp the next one too hard.
            self.prev_err = err.max(1e-4);
            self.rejected_last = false;
            (true, h * factor)
        } else {
            let factor = (self.safety * err_norm.powf(-1.0 / (self.alpha.recip() * 0.7)))
                .clamp(self.factor_min, 1.0);
            self.rejected_last = true;
            (false, h * factor)
        }
    }
}

/// Hairer's scaled RMS norm: `sqrt(mean((e_i / (atol + rtol · max(|x_i|, |y_i|)))²))`, on
/// buffers of any real type. Returns `∞` when any entry is not finite.
pub fn rms_norm<T: Copy + Into<f64>>(err: &[T], x: &[T], y: &[T], rtol: f64, atol: f64) -> f64 {
    if err.is_empty() {
        return 0.0;
    }
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
    let norm = (sum / err.len() as f64).sqrt();
    if norm.is_finite() && y_finite {
        norm
    } else {
        f64::INFINITY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_small_errors_and_grows_within_limits() {
        let mut c = PiController::default();
        c.reset(5);
        let (ok, h) = c.decide(0.0, 1e-12, 1.0);
        assert!(ok);
        assert_eq!(h, 10.0, "growth is capped at factor_max");
        c.reset(5);
        let (ok, h) = c.decide(0.0, 0.5, 1.0);
        assert!(ok);
        assert!(h > 0.5 && h < 10.0);
    }

    #[test]
    fn rejects_large_and_non_finite_errors() {
        let mut c = PiController::default();
        c.reset(5);
        let (ok, h) = c.decide(0.0, 1e3, 1.0);
        assert!(!ok);
        assert!((0.2..1.0).contains(&h), "{h}");
        let (ok, h) = c.decide(0.0, f64::NAN, 1.0);
        assert!(!ok);
        assert_eq!(h, 0.2);
        // After a rejection the next accepted step does not grow.
        let (ok, h) = c.decide(0.0, 1e-8, 1.0);
        assert!(ok);
        assert!(h <= 1.0);
    }

    #[test]
    fn norm_mixes_absolute_and_relative_tolerances() {
        let n = rms_norm(&[1e-6, 1e-6], &[0.0, 100.0], &[0.0, 100.0], 1e-6, 1e-6);
        // scales 1e-6 and 1e-6 + 1e-4.
        let expect = ((1.0 + (1e-6f64 / (1e-6 + 1e-4)).powi(2)) / 2.0).sqrt();
        assert!((n - expect).abs() < 1e-12);
        assert_eq!(
            rms_norm(&[f64::NAN], &[0.0], &[0.0], 1e-6, 1e-6),
            f64::INFINITY
        );
        assert_eq!(
            rms_norm(&[0.0], &[0.0], &[f64::INFINITY], 1e-6, 1e-6),
            f64::INFINITY
        );
    }
}
