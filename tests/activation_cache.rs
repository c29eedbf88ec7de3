//! The fast layers hand their outputs to dfdx so that they take part in dfdx's tensor cache: with
//! `enable_cache()`, a training loop's live memory reaches a steady state. (Before this was so,
//! every output buffer entered the cache on drop without one ever leaving it, and the cache grew
//! by one activation-sized buffer per call.) The dense layers observe whether the cache is on;
//! the test runs them with it on, then off, then on again. One test in this binary, so nothing
//! else allocates concurrently.

use neural_ode::alloc::{self, CountingAllocator};
use neural_ode::dfdx::nn::{BuildOnDevice, Module, ZeroGrads};
use neural_ode::dfdx::prelude::*;
use neural_ode::nn::{builders, Identity, Sigmoid, Silu, Softplus, Tanh};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

type Net = (
    (
        neural_ode::dfdx::nn::builders::Linear<4, 32>,
        Tanh,
        neural_ode::dfdx::nn::builders::Linear<32, 32>,
        Sigmoid,
    ),
    (
        neural_ode::dfdx::nn::builders::Linear<32, 32>,
        Softplus,
        neural_ode::dfdx::nn::builders::Linear<32, 4>,
        Silu,
    ),
);

/// The same shapes with fused dense layers.
type DenseNet = (
    (
        builders::Dense<4, 32, Tanh>,
        builders::Dense<32, 32, Sigmoid>,
    ),
    (
        builders::Dense<32, 32, Softplus>,
        builders::Dense<32, 4, Silu>,
    ),
    builders::Dense<4, 4, Identity>,
);

#[test]
fn live_memory_is_steady_with_dfdx_s_tensor_cache() {
    let dev = Cpu::seed_from_u64(0);
    dev.enable_cache();
    steady::<Net>(&dev, "activations, cache on");
    let dev = Cpu::seed_from_u64(1);
    dev.enable_cache();
    steady::<DenseNet>(&dev, "dense, cache on");
    dev.disable_cache();
    steady::<DenseNet>(&dev, "dense, cache off");
    dev.enable_cache();
    steady::<DenseNet>(&dev, "dense, cache on again");
}

/// Live bytes after 5 and after 35 training iterations of `N` must be the same.
fn steady<N>(dev: &Cpu, label: &str)
where
    N: BuildOnDevice<Cpu, f64>,
    N::Built: Module<Tensor<(usize, Const<4>), f64, Cpu>, Output = Tensor<(usize, Const<4>), f64, Cpu>>
        + Module<
            Tensor<(usize, Const<4>), f64, Cpu, OwnedTape<f64, Cpu>>,
            Output = Tensor<(usize, Const<4>), f64, Cpu, OwnedTape<f64, Cpu>>,
        > + ZeroGrads<f64, Cpu>,
{
    let net = dev.build_module::<N, f64>();
    let x: Tensor<(usize, Const<4>), f64, Cpu> = dev.sample_normal_like(&(256, Const));
    let mut grads = net.alloc_grads();
    let mut step = || {
        // Without a tape (as in a forward solve) and with one (as in a vector–Jacobian product).
        std::hint::black_box(net.forward(x.clone()));
        let y = net.forward(x.trace(grads.clone()));
        grads = y.square().sum::<Rank0, _>().backward();
    };
    for _ in 0..5 {
        step();
    }
    let settled = alloc::current();
    for _ in 0..30 {
        step();
    }
    let after = alloc::current();
    println!("{label}: live bytes {settled} after 5 iterations, {after} after 35");
    // One layer output is 256 × 32 × 8 = 64 KiB; a leak would add several per iteration.
    assert!(
        after <= settled + 4096,
        "{label}: live memory grew by {} bytes over 30 iterations",
        after - settled
    );
}
