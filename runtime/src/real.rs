//! The floating-point types a neural ODE can be solved in.

use dfdx::prelude::Dtype;

/// A real scalar type for states, times and coefficients: `f32` or `f64`. It implies what dfdx
/// asks of a dtype to build and initialise layers (`num_traits::Float`, `SampleUniform`), so
/// `E: Real` is the one dtype bound generic code needs.
///
/// Tableau coefficients are generated as correctly rounded `f64` literals and converted with
/// [`Real::from_f64_lossy`], so an `f32` solve sees each coefficient rounded once more.
pub trait Real:
    Dtype
    + num_traits::Float
    + rand_distr::uniform::SampleUniform
    + Into<f64>
    + core::fmt::Debug
    + core::fmt::Display
    + Send
    + Sync
    + 'static
{
    /// Converts an `f64`, rounding to nearest.
    fn from_f64_lossy(v: f64) -> Self;
}

impl Real for f32 {
    fn from_f64_lossy(v: f64) -> Self {
        v as f32
    }
}

impl Real for f64 {
    fn from_f64_lossy(v: f64) -> Self {
        v
    }
}

/// Shorthand used by generated code for a coefficient literal.
#[inline(always)]
pub fn lit<E: Real>(v: f64) -> E {
    E::from_f64_lossy(v)
}
