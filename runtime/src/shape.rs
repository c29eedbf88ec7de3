//! Shapes a state can have, and the few shape-generic operations the runtime needs.

use dfdx::prelude::*;

/// The shape of an ODE state: any dfdx shape of rank ≤ 4 (for example `(usize, Const<2>)`,
/// a batch of 2-vectors). Outputs at `K` times are stacked along a new leading axis
/// into a tensor of shape [`StateShape::Stacked`].
pub trait StateShape: Shape {
    /// `Self` with a new leading axis of length `usize`.
    type Stacked: Shape;

    /// Stacks states along a new leading axis.
    fn stack<E: Dtype, D: Device<E>>(
        states: Vec<Tensor<Self, E, D>>,
    ) -> Tensor<Self::Stacked, E, D>;

    /// Selects entry `k` of the leading axis.
    fn unstack<E: Dtype, D: Device<E>>(
        stacked: Tensor<Self::Stacked, E, D>,
        k: usize,
    ) -> Tensor<Self, E, D>;

    /// Same as [`StateShape::stack`] for tensors on a tape.
    fn stack_taped<E: Dtype, D: Device<E>, T: Tape<E, D>>(
        states: Vec<Tensor<Self, E, D, T>>,
    ) -> Tensor<Self::Stacked, E, D, T>;
}

macro_rules! state_shape {
    ($($dim:ident),*) => {
        impl<$($dim: Dim),*> StateShape for ($($dim,)*) {
            type Stacked = (usize, $($dim,)*);

            fn stack<E: Dtype, D: Device<E>>(states: Vec<Tensor<Self, E, D>>) -> Tensor<Self::Stacked, E, D> {
                states.stack()
            }

            fn unstack<E: Dtype, D: Device<E>>(stacked: Tensor<Self::Stacked, E, D>, k: usize) -> Tensor<Self, E, D> {
                let idx = stacked.device().tensor(k);
                stacked.select(idx)
            }

            fn stack_taped<E: Dtype, D: Device<E>, T: Tape<E, D>>(states: Vec<Tensor<Self, E, D, T>>) -> Tensor<Self::Stacked, E, D, T> {
                states.stack()
            }
        }
    };
}

state_shape!();
state_shape!(A);
state_shape!(A, B);
state_shape!(A, B, C);
state_shape!(A, B, C, F);
