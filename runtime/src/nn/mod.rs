//! Fast layers for dfdx models: the fused dense layer [`Dense`] and the activation modules
//! [`Tanh`], [`Sigmoid`], [`Softplus`], [`Silu`] (plus [`Identity`]).
//!
//! - [`Dense<I, O, A, E, D>`](Dense): `act(x Wᵀ + b)` as one dfdx module, with `weight` (O × I)
//!   and `bias` (O) laid out like dfdx's `Linear` (same `TensorCollection` keys, so safetensors
//!   files and optimisers see the same thing). On the CPU the forward pass is one matrix product
//!   into a bias-initialised buffer with the activation applied in place, and the backward pass
//!   computes the input, weight and bias cotangents with the same products from what the
//!   forward pass kept (the output for `tanh`/`sigmoid`, the pre-activation for
//!   `softplus`/`silu`). Build it with `dev.build_module::<builders::Dense<I, O, Tanh>, E>()`.
//! - The activations are drop-in replacements for dfdx's (`(Linear<2, 64>, Tanh, Linear<64,
//!   2>)` works with either), with forward and backward on dfdx's tape, for `f32` and `f64`. On
//!   the CPU they evaluate branch-free approximations (tested within 4 ulp of the standard
//!   library; see [`kernels`]) over whole buffers.
//!
//! Instruction sets are chosen at run time (AVX-512, AVX2 + FMA, or the x86-64 baseline; no
//! `target-cpu` flag needed), for the activations ([`map`]) and the matrix products
//! ([`matmul`]). On CUDA both fall back to dfdx's own kernels.
//!
//! Memory: outputs are allocated through dfdx (so `dev.enable_cache()` recycles them like any
//! dfdx tensor); intermediate buffers come from a small per-thread pool and are reused.
//!
//! Why: in a neural ODE nearly all time goes into evaluating the network. dfdx 0.13's `Tanh`
//! calls libm once per element, and its `Linear` runs a matrix product (AVX2 kernels on stable
//! Rust), a separate broadcast pass for the bias and tape bookkeeping per operation.

mod activation;
mod apply;
mod dense;
mod handoff;
pub mod isa;
pub mod kernels;
pub mod matmul;
mod pool;
mod simd;
mod time;

pub use activation::{Activation, FastActivations, Identity, Sigmoid, Silu, Softplus, Tanh};
pub use dense::{builders, Dense, DenseResult, FastDense};
pub use simd::map;
pub use time::with_time;
