//! Hooks for this crate's tests, benchmarks and examples: not part of the public API, and free
//! to change.

use dfdx::prelude::*;

pub use crate::grad::reference::step as reference_step;
pub use crate::rk::Workspace;

use crate::real::Real;
use crate::store::StateStore;

/// Bytes one stored state shaped like `x` takes (elements and buffer header).
pub fn state_bytes<S: Shape, E: Real, D: Storage<E>>(x: &Tensor<S, E, D>) -> usize {
    StateStore::<S, E, D>::state_bytes(x)
}

/// Bytes one slot of a `CheckpointPolicy::Budget` takes for states shaped like `x`.
pub fn slot_bytes<S: Shape, E: Real, D: Storage<E>>(x: &Tensor<S, E, D>) -> usize {
    StateStore::<S, E, D>::slot_bytes(x)
}
