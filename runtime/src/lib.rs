//! Runtime of [neural-ode](https://docs.rs/neural-ode): step-size control, checkpoint storage,
//! the gradient methods, and the glue to dfdx's tape. Users normally depend on the facade crate
//! `neural-ode`, which re-exports this one.

#![warn(missing_docs)]

pub mod alloc;
mod backend;
mod checkpoint;
mod control;
mod dense;
mod device;
mod driver;
mod error;
mod field;
mod grad;
mod integrate;
mod model;
pub mod nn;

/// The dfdx this crate is built against.
pub use dfdx;
mod options;
mod real;
mod rk;
mod shape;
mod solve;
mod stats;
mod steps;

pub use backend::Backend;
pub use checkpoint::{binomial_recomputation, Advance, CheckpointPolicy, Checkpoints, Keep};
pub use control::{rms_norm, PiController, StepSizeController};
pub use device::Device;
pub use error::Error;
pub use field::VectorField;
pub use grad::generic::step as generic_step;
pub use model::{GradMethod, NeuralOde};
pub use options::{GradientFailure, SolveOptions, Stepping};
pub use real::{lit, Real};
pub use rk::{combine, eval, stage, AdjointStep, RungeKutta, Step, Workspace};
pub use shape::StateShape;
pub use solve::{solve, solve_with, BackwardReport, Solution, SolveError, SolveResult};
pub use stats::{BackwardStats, ForwardStats};
pub use steps::StepTimes;

/// Names used only by code that `#[neural_ode]` generates.
#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
