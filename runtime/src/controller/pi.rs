//! The proportional–integral step-size controller, the default of every adaptive solve.

use super::StepSizeController;
use crate::error::Error;

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
    /// A controller with these factors (checked when a solve starts: `0 < safety ≤ 1`,
    /// `0 < factor_min < 1`, `1 < factor_max < ∞`).
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
    /// `safety` 0.9, `factor_min` 0.2, `factor_max` 10 (Hairer's DOPRI5).
    fn default() -> Self {
        Self::new(0.9, 0.2, 10.0)
    }
}

impl StepSizeController for PiController {
    fn validate(&self) -> Result<(), Error> {
        let invalid = |name, value, reason| {
            Err(Error::InvalidOption {
                name,
                value,
                reason,
            })
        };
        if !(self.safety > 0.0 && self.safety <= 1.0) {
            return invalid("safety", self.safety, "expected 0 < safety <= 1");
        }
        if !(self.factor_min > 0.0 && self.factor_min < 1.0) {
            return invalid("factor_min", self.factor_min, "expected 0 < factor_min < 1");
        }
        if !(self.factor_max > 1.0 && self.factor_max.is_finite()) {
            return invalid(
                "factor_max",
                self.factor_max,
                "expected a finite factor_max > 1",
            );
        }
        Ok(())
    }

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
    fn parameters_are_checked() {
        assert!(PiController::default().validate().is_ok());
        for (c, name) in [
            (PiController::new(1.5, 0.2, 10.0), "safety"),
            (PiController::new(0.9, 0.0, 10.0), "factor_min"),
            (PiController::new(0.9, 0.2, 1.0), "factor_max"),
            (PiController::new(0.9, 0.2, f64::INFINITY), "factor_max"),
        ] {
            match c.validate() {
                Err(Error::InvalidOption { name: got, .. }) => assert_eq!(got, name),
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}
