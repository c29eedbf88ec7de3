//! Fast layers for dfdx models: the fused dense layer [`Dense`], a stack of them evaluated as one
//! operation ([`Mlp`]), and the activation modules [`Tanh`], [`Sigmoid`], [`Softplus`], [`Silu`]
//! (plus [`Identity`]).
//!
//! - [`Dense<I, O, A, E, D>`](Dense): `act(x Wᵀ + b)` as one dfdx module, with `weight` (O × I)
//!   and `bias` (O) laid out like dfdx's `Linear` (same `TensorCollection` keys, so safetensors
//!   files and optimisers see the same thing). On the CPU the forward pass is one matrix product
//!   into a bias-initialised buffer with the activation applied in place, and the backward pass
//!   computes the input, weight and bias cotangents with the same products from what the
//!   forward pass kept (the output for `tanh`/`sigmoid`, the pre-activation for
//!   `softplus`/`silu`). Build it with `dev.build_module::<builders::Dense<I, O, Tanh>, E>()`.
//! - [`Mlp<(Dense<…>, …)>`](Mlp): the layers of a tuple as one dfdx operation with one backward
//!   operation, bit for bit what the tuple computes; hidden activations in pooled buffers, each
//!   block of rows through every layer in turn.
//! - The activations are drop-in replacements for dfdx's (`(Linear<2, 64>, Tanh, Linear<64,
//!   2>)` works with either), with forward and backward on dfdx's tape, for `f32` and `f64`. On
//!   the CPU they evaluate branch-free approximations (tested within 4 ulp of the standard
//!   library; see [`kernels`]) over whole buffers.
//!
//! Threads: a batch is split into blocks of a fixed number of rows, run by the calling thread
//! with helpers from rayon's pool, bit-identical for every thread count ([`threads`]).
//!
//! Instruction sets are chosen at run time (AVX-512, AVX2 + FMA, or the x86-64 baseline; no
//! `target-cpu` flag needed) by one dispatcher ([`isa`]), for the activations ([`map`] and
//! their derivative passes) and the small matrix products ([`matmul`]; the others run in
//! `gemm`, which dispatches for itself). On CUDA both fall back to dfdx's own kernels.
//!
//! Memory: buffers a layer needs on the host (copies of the input and parameters, the output,
//! pre-activations, cotangents) come from a small per-thread pool (which keeps at most 16
//! buffers per thread and element type) and go back to it when dropped. The output is handed
//! to dfdx without a copy: its buffer leaves the pool, becomes the tensor's and is freed with it
//! (when the backward pass keeps the output, the tensor gets a copy instead). When dfdx's tensor
//! cache is on (`dev.enable_cache()`), the output is copied into a tensor that dfdx allocates,
//! so that the cache recycles outputs like any dfdx tensor's and never fills with buffers it
//! did not allocate. The small kernels' scratch (a narrow layer's transposed weight or weight
//! cotangent, at most 4 × O values) is allocated per call; `gemm` manages its own packing
//! memory.
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
mod mlp;
mod pool;
mod simd;
pub mod threads;
mod time;

pub use activation::{Activation, FastActivations, Identity, Sigmoid, Silu, Softplus, Tanh};
pub use dense::{builders, Dense, DenseResult, FastDense};
pub use mlp::{LayerVisitor, Layers, Mlp, MlpResult};
pub use simd::map;
pub use time::{with_row_times, with_time};
