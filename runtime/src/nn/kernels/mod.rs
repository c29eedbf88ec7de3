//! Branch-free scalar kernels for `exp`, `expm1`, `tanh`, `sigmoid`, `softplus` and `silu`, in
//! `f64` and `f32`, written to be inlined into plain slice loops and auto-vectorised.
//!
//! The kernels use only `+ - * /`, comparisons feeding value selects, `abs`, `copysign`, bit
//! casts and wrapping integer add/sub/shift on the bit patterns: no libm calls, no tables, no
//! early returns, no loops and no `mul_add` (so results are identical with or without FMA
//! hardware, and identical to the numpy model they were validated against). The `f32` kernels
//! compute in `f32` only, so they vectorise at full `f32` width. The exceptions are
//! [`tanh_f64_fma`] and [`tanh_f32_fma`], `mul_add` rewrites of [`tanh_f64`] and [`tanh_f32`] that
//! the dispatcher uses on the instruction-set paths with FMA (faster there: fewer, fused
//! operations); their results differ from the plain kernels' by at most 1 ulp on the tested grids
//! (for `f32`, also every 97th `f32` in ±[2⁻¹²⁶, 12]), so `tanh` results depend on whether the CPU
//! has FMA. [`tanh_f32_fma`] is checked against `f64::tanh` with the 4-ulp bound of the unit
//! tests; it has not been through the offline high-precision validation.
//!
//! Accuracy, measured against correctly rounded 50-digit references (mpmath) on several million
//! points per type, including subnormals, the overflow/underflow thresholds and every switch
//! point, plus tens of millions of random/strided points against 80-bit references: at most
//! 0.75 ulp for `exp`, 1.25 ulp for `expm1`/`tanh`/`sigmoid`, 1.5 ulp for `softplus` and 2 ulp
//! for `silu` (both types). Limits are exact: `tanh` gives exactly ±1 for large |x|, `sigmoid`
//! exactly 1 / 0 (or the correctly rounded subnormal), `softplus(x) == x` for large x, `silu(x)
//! == x` for large x and `-0.0` or the correctly rounded tiny negative for very negative x;
//! `tanh(-0) == -0`, `silu(-0) == -0`, `expm1(-0) == -0`; NaN in gives NaN out.
//!
//! Method: Cody–Waite reduction `x = k ln2 + r`, `|r| <= ln2/2`, with `k` found by the
//! `1.5·2^p` rounding trick and the rounding error of `r` carried along; a minimax polynomial for
//! `e^r - 1 - r - r²/2`; the leading sum `c + r + tail` done as an error-free (Fast2Sum) pair so
//! `exp`, `expm1` (`c = 1 - 2^-k`) and `e^x` as a hi/lo pair share one kernel; `2^k` built from
//! bits as two normal factors so subnormal results are rounded once. `tanh`, `sigmoid` and `silu`
//! divide once and correct the quotient with the low parts of numerator and denominator.
//! `softplus` uses an fdlibm-style `log1p` on `[0, 1]` with an exact reduction.
//!
//! The accuracy figures come from a bit-exact numpy model of these functions (the same IEEE
//! operations in the same order), checked against mpmath; the unit tests below re-check the Rust
//! code against std on grids, thresholds and special values with a 4-ulp bound. For
//! [`tanh_f64_fma`], the largest error found against 200-bit mpmath references on 2.1 million
//! points (a dense sweep of 0.15–0.40, where its error peaks, a log sweep of 1e-8–2.5 and
//! pseudo-random points in ±10) was 1.54 ulp (`tanh_f64`: 1.19 ulp on the same points).

mod double;
mod single;

pub use double::*;
pub use single::*;

#[cfg(test)]
mod tests;
