//! Runtime of [neural-ode](https://docs.rs/neural-ode): step-size control, checkpoint storage,
//! the gradient methods, and the glue to dfdx's tape. Users normally depend on the facade crate
//! `neural-ode`, which re-exports this one.

#![warn(missing_docs)]

pub mod alloc;
mod backend;
mod controller;
mod device;
#[cfg(feature = "mpi")]
pub mod distributed;
mod error;
mod field;
mod forward;
mod grad;
pub mod group;
#[doc(hidden)]
pub mod hooks;
mod model;
pub mod nn;
mod options;
mod per_sample;
mod real;
mod rk;
mod shape;
mod solve;
mod stats;
mod store;

/// The dfdx this crate is built against.
pub use dfdx;

pub use controller::{PiController, StepSizeController};
pub use device::OdeDevice;
pub use error::{Error, SolveError};
pub use field::VectorField;
pub use forward::StepGrid;
pub use model::{GradMethod, NeuralOde};
pub use options::{GradientFailure, SolveOptions, Stepping};
pub use per_sample::{solve_per_sample, solve_per_sample_with, SampleStats, SampleTimes, Samples};
pub use real::Real;
pub use rk::RungeKutta;
pub use shape::StateShape;
pub use solve::{solve, solve_returning_input, solve_with, Solution};
pub use stats::{BackwardReport, BackwardStats, ForwardStats};
pub use store::CheckpointPolicy;

/// Names used only by code that `#[neural_ode]` generates.
#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
