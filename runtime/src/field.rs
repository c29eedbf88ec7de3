//! What a user writes: the vector field.

use dfdx::prelude::*;

/// The right-hand side `f(t, x)` of `dx/dt = f(t, x; θ)`.
///
/// Write it once, generic over the tape `T`: the runtime calls it without a tape in the forward
/// solve and when it rebuilds stages, and with a tape for each vector–Jacobian product.
///
/// ```ignore
/// impl VectorField<(usize, Const<2>), f64, Cpu> for Model {
///     fn eval<T: Tape<f64, Cpu>>(&self, _t: f64, x: Tensor<(usize, Const<2>), f64, Cpu, T>)
///         -> Tensor<(usize, Const<2>), f64, Cpu, T> {
///         self.mlp.forward(x)
///     }
/// }
/// ```
pub trait VectorField<S: Shape, E: Dtype, D: Device<E>> {
    /// Evaluates the field at time `t` and state `x`. The result must have the shape of `x`.
    fn eval<T: Tape<E, D>>(&self, t: E, x: Tensor<S, E, D, T>) -> Tensor<S, E, D, T>;

    /// Evaluates the field with each row of the batch (the state's first axis) at its own time,
    /// `t[i]` for row `i`: what a solve with per-sample steps
    /// ([`SolveOptions::per_sample_steps`](crate::SolveOptions::per_sample_steps)) calls, where
    /// rows are at different times.
    ///
    /// The default returns `Err(x)`, untouched: "this field takes one time". A solve then calls
    /// [`eval`](Self::eval) instead, which is right for an autonomous field (one that ignores
    /// `t`), and checks before solving that the field is one: if `f(t, x₀)` differs between two
    /// of the rows' start times it fails with
    /// [`Error::ScalarTimeField`](crate::Error::ScalarTimeField) rather than give some rows the
    /// wrong time. A field that reads `t` implements this method (for a time column,
    /// [`nn::with_row_times`](crate::nn::with_row_times) is [`nn::with_time`](crate::nn::with_time)
    /// per row).
    #[allow(clippy::type_complexity)]
    fn eval_rows<T: Tape<E, D>>(
        &self,
        t: &[E],
        x: Tensor<S, E, D, T>,
    ) -> Result<Tensor<S, E, D, T>, Tensor<S, E, D, T>> {
        let _ = t;
        Err(x)
    }
}
