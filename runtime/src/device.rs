//! One bound for generic code: everything `solve` and the fast layers need of a device.

use dfdx::nn::DeviceBuildExt;

use crate::backend::Backend;
use crate::nn::FastDense;
use crate::real::Real;

/// A device that models written against this crate can run on: dfdx's `Device<E>` with what
/// the runtime needs to add into a `Gradients`, the fast layers of [`nn`](crate::nn)
/// (`FastDense`, which includes `FastActivations`) and `dev.build_module` (`DeviceBuildExt`).
/// Implemented for every such device: `Cpu` for `f32` and `f64`, and `Cuda` with the `cuda`
/// feature. Use it as the one bound of generic models and training code (named so that it does
/// not collide with dfdx's `Device` under `use dfdx::prelude::*`):
///
/// ```
/// use neural_ode_runtime::dfdx::prelude::*;
/// use neural_ode_runtime::nn::{Dense, Identity, Tanh};
/// use neural_ode_runtime::{Real, VectorField};
///
/// // The struct takes dfdx's own bounds (so it can be rebuilt at another dtype or device) ...
/// #[derive(Clone, Debug)]
/// struct Field<E: Dtype, D: Storage<E>> {
///     l1: Dense<2, 16, Tanh, E, D>,
///     l2: Dense<16, 2, Identity, E, D>,
/// }
///
/// // ... and the code that runs it this one.
/// impl<E: Real, D: neural_ode_runtime::OdeDevice<E>> VectorField<(usize, Const<2>), E, D> for Field<E, D> {
///     fn eval<T: Tape<E, D>>(&self, _t: E, x: Tensor<(usize, Const<2>), E, D, T>) -> Tensor<(usize, Const<2>), E, D, T> {
///         self.l2.forward(self.l1.forward(x))
///     }
/// }
/// ```
pub trait OdeDevice<E: Real>: Backend<E> + FastDense<E> + DeviceBuildExt {}

impl<E: Real, D: Backend<E> + FastDense<E> + DeviceBuildExt> OdeDevice<E> for D {}
