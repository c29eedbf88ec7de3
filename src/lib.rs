//! # neural-ode
//!
//! Neural ordinary differential equations on [dfdx](https://docs.rs/dfdx) with **exact
//! gradients and minimal memory**.
//!
//! A neural ODE integrates `dx/dt = f(t, x; θ)` with a Runge–Kutta method that calls the network
//! `f` at every stage of every step. Backpropagating through the solver keeps every stage's graph
//! (memory ∝ steps × stages × network); the continuous adjoint keeps almost nothing but its
//! gradient is only approximate. The **symplectic adjoint method** (Matsubara, Miyatake &
//! Yaguchi, NeurIPS 2021) gets the exact gradient of the discrete solve while storing one state
//! per step plus one network evaluation's graph: on the way back it rebuilds each step's stages
//! and sweeps them with the method's symplectic partner, one vector–Jacobian product at a time.
//!
//! ## Use
//!
//! Annotate a struct of dfdx modules, write its vector field once (generic over the tape), and
//! solve inside an ordinary dfdx training loop:
//!
//! ```
//! use neural_ode::dfdx::optim::{Adam, AdamConfig, Optimizer};
//! use neural_ode::dfdx::prelude::*;
//! use neural_ode::nn::{builders, Dense, Identity, Tanh}; // fused dense layers
//! use neural_ode::{neural_ode, solve, SolveOptions, VectorField};
//!
//! #[neural_ode(solver = "dopri5", grad = "symplectic")]
//! #[derive(Clone, Debug)]
//! struct Field {
//!     l1: Dense<2, 16, Tanh, f64, Cpu>,     // tanh(x W1ᵀ + b1)
//!     l2: Dense<16, 2, Identity, f64, Cpu>, // h W2ᵀ + b2
//! }
//!
//! type State = (usize, Const<2>); // a batch of 2-vectors
//!
//! impl VectorField<State, f64, Cpu> for Field {
//!     fn eval<T: Tape<f64, Cpu>>(&self, _t: f64, x: Tensor<State, f64, Cpu, T>) -> Tensor<State, f64, Cpu, T> {
//!         self.l2.forward(self.l1.forward(x))
//!     }
//! }
//!
//! let dev = Cpu::default();
//! let mut field = Field {
//!     l1: dev.build_module::<builders::Dense<2, 16, Tanh>, f64>(),
//!     l2: dev.build_module::<builders::Dense<16, 2, Identity>, f64>(),
//! };
//! let mut opt = Adam::new(&field, AdamConfig::default());
//! let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(8, Const));
//! let target: Tensor<(usize, usize, Const<2>), f64, Cpu> = dev.zeros_like(&(2, 8, Const));
//!
//! let grads = field.alloc_grads();
//! let sol = solve(&field, x0.trace(grads), &[0.0, 1.0], &SolveOptions::adaptive(1e-6, 1e-8)).unwrap();
//! let loss = mse_loss(sol.ys, target);
//! let grads = loss.backward(); // runs the symplectic adjoint
//! sol.report.stats().unwrap(); // what the gradient pass did (or why it failed)
//! opt.update(&mut field, &grads).unwrap();
//! ```
//!
//! `solve` returns the states at every requested time stacked on a new leading axis, on the
//! caller's tape; the gradient method runs during `backward()` and adds into the same
//! `Gradients`. [`Solution::stats`] and [`Solution::report`] say what the solve and its gradient
//! pass cost.
//!
//! ## Set up your own crate
//!
//! Depend on `neural-ode` (it brings dfdx 0.13 as [`dfdx`]) and optimise the dependencies in
//! debug builds too, or a debug build runs the numerics unoptimised (many times slower):
//!
//! ```toml
//! [profile.dev.package."*"]
//! opt-level = 3
//! ```
//!
//! For a model generic over dtype and device, declare the struct with dfdx's bounds
//! (`E: Dtype, D: Storage<E>`) and use [`OdeDevice<E>`](OdeDevice) and [`Real`] as the bounds
//! of the code that runs it; `to_dtype` / `to_device` then rebuild the model. [`Error`] is
//! `Send + Sync + 'static`, so `solve(…)?` works in functions returning `anyhow::Result` or a
//! boxed error; [`solve_returning_input`] gives the initial state (and its tape) back on
//! failure. Time can enter the network as a feature column with [`nn::with_time`].
//!
//! ## Pieces
//!
//! - `#[neural_ode(solver = "...", tableau = "...", grad = "...")]`
//!   ([`neural_ode`](macro@neural_ode)) reads a Butcher tableau file (shipped: euler, midpoint,
//!   heun, ralston, rk4, rk38, heun_euler, fehlberg2, bosh3, fehlberg45, cash_karp, dopri5,
//!   tsit5, dopri8; or your own TOML file), validates it at compile time, and generates the
//!   straight-line forward step and its symplectic-partner backward step, a [`NeuralOde`] impl
//!   and dfdx's `TensorCollection` impl for the struct.
//! - [`solve`] with [`SolveOptions`]: adaptive steps ([`PiController`], or your own
//!   [`StepSizeController`] through [`solve_with`]) or fixed steps ([`Stepping`]), outputs at
//!   any increasing or decreasing list of times. Steps are chosen over the whole span and
//!   outputs between step boundaries are interpolated (the tableau's `[dense]` section, else
//!   cubic Hermite; [`RungeKutta::INTERPOLANT_ORDER`]), with exact gradients through the
//!   interpolant for `Symplectic`, `Aca` and `Backprop`; [`SolveOptions::land_on_outputs`] makes
//!   every output time a step boundary instead. [`Solution::steps`] holds the accepted steps.
//! - [`GradMethod`]: `Symplectic`, `Aca` (the adaptive checkpoint adjoint), `Backprop`,
//!   `Adjoint` (continuous, approximate), `Reversible` (the reversible scheme built on the
//!   tableau, rebuilt backwards: memory flat in the number of steps;
//!   [`SolveOptions::with_reversible`]); [`CheckpointPolicy`]: `All`, `EveryK(k)`, `AllStages`
//!   (the stage store: the symplectic backward pass skips rebuilding the stages, for (live
//!   stages − 1) more states per step), or `Budget(bytes)` (binomial checkpointing: at most that
//!   many bytes of states, whatever the number of steps). A solve keeps only what its gradient
//!   method reads.
//! - [`nn`]: the fused dense layer [`nn::Dense`] (`act(x Wᵀ + b)` in one module, laid out like
//!   dfdx's `Linear`; AVX-512 matrix products on stable Rust) and the activations `Tanh`,
//!   `Sigmoid`, `Softplus`, `Silu` (drop-in for dfdx's), all with forward and backward on dfdx's
//!   tape.
//! - [`alloc::CountingAllocator`] to measure the peak memory of a gradient pass.

pub use neural_ode_macros::neural_ode;
pub use neural_ode_runtime::{
    alloc, solve, solve_per_sample, solve_per_sample_with, solve_returning_input, solve_with,
    BackwardReport, BackwardStats, CheckpointPolicy, Error, ForwardStats, GradMethod,
    GradientFailure, NeuralOde, OdeDevice, PiController, Real, RungeKutta, SampleStats,
    SampleTimes, Samples, Solution, SolveError, SolveOptions, StateShape, StepGrid,
    StepSizeController, Stepping, VectorField,
};

/// Fast layers: the fused dense layer `Dense` and the activations `Tanh`, `Sigmoid`, `Softplus`,
/// `Silu` (drop-in for dfdx's).
pub use neural_ode_runtime::nn;

pub use neural_ode_runtime::group;

#[cfg(feature = "mpi")]
pub use neural_ode_runtime::distributed;

/// The dfdx this crate is built against; use it to name tensors, modules and optimisers.
pub use dfdx;

#[doc(hidden)]
pub use neural_ode_runtime::{__private, hooks};

// Lets this crate's own code use `#[neural_ode]`, whose expansion names `::neural_ode`.
extern crate self as neural_ode;

#[cfg(feature = "cuda")]
mod cuda_check;

/// The README's code blocks, compiled and run as doc tests so that they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
