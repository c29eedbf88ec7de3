//! The forward solve: one loop over accepted steps ([`integrate`]), the step grid it records
//! ([`StepGrid`]) and the outputs it places and interpolates ([`outputs`]). What it leaves for
//! the way back is a [`Record`].

mod grid;
mod integrate;
pub(crate) mod outputs;
pub(crate) mod scheme;

use dfdx::prelude::*;

pub(crate) use grid::Grid;
pub use grid::StepGrid;
pub(crate) use integrate::integrate;

use crate::backend::Backend;
use crate::real::Real;
use crate::stats::ForwardStats;
use crate::store::StateStore;
use outputs::OutputAt;

/// What the forward solve leaves for the gradient pass.
pub(crate) struct Record<S: Shape, E: Real, D: Backend<E>> {
    /// States at the output times (the first is the initial state); `solve` moves them into
    /// the stacked `ys`, which the gradient passes read from.
    pub outputs: Vec<Tensor<S, E, D>>,
    /// Where each output lies on the accepted steps.
    pub out_at: Vec<OutputAt<E>>,
    /// The accepted steps.
    pub grid: StepGrid<E>,
    /// What the gradient method asked to keep of them.
    pub store: StateStore<S, E, D>,
    /// When the forward ran the reversible scheme: its coupling and final `z` (its `y` is the
    /// last output).
    pub reversible: Option<(f64, Tensor<S, E, D>)>,
    /// With per-sample steps: where each row's outputs lie (`out_at` is then unused).
    pub rows: Option<outputs::RowOutputs<E>>,
    /// With per-sample steps: the state after the last step (rows with shared steps go on past
    /// their last output, so it is not an output).
    pub end: Option<Tensor<S, E, D>>,
    pub stats: ForwardStats,
}
