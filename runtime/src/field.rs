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
}
