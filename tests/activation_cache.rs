//! The fast layers hand their outputs to dfdx so that they take part in dfdx's tensor cache: with
//! `enable_cache()`, a training loop's live memory reaches a steady state. (Before this was so,
//! every output buffer entered the cache on drop without one ever leaving it, and the cache grew
//! by one activation-sized buffer per call.) The dense layers observe whether the cache is on;
//! the test runs them with it on, then off, then on again. One test in this binary, so nothing
//! else allocates concurrently.

use neural_ode::alloc::{self, CountingAllocator};
use neural_ode::dfdx::nn::Module;
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
    activations_with_the_cache();
    let dev = Cpu::seed_from_u64(1);
    dev.enable_cache();
    dense_layers(&dev, "cache on");
    dev.disable_cache();
    dense_layers(&dev, "cache off");
    dev.enable_cache();
    dense_layers(&dev, "cache on again");
}

fn dense_layers(dev: &Cpu, label: &str) {
    let net = dev.build_module::<DenseNet, f64>();
    let x: Tensor<(usize, Const<4>), f64, Cpu> = dev.sample_normal_like(&(256, Const));
    let mut grads = net.alloc_grads();
    let mut step = || {
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
    println!("dense, {label}: live bytes {settled} after 5 iterations, {after} after 35");
    assert!(
        after <= settled + 4096,
        "dense, {label}: live memory grew by {} bytes over 30 iterations",
        after - settled
    );
}

fn activations_with_the_cache() {
    let dev = Cpu::seed_from_u64(0);
    dev.enable_cache();
    let net = dev.build_module::<Net, f64>();
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
    println!("live bytes: {settled} after 5 iterations, {after} after 35");
    // One activation output is 256 × 32 × 8 = 64 KiB; a leak would add several per iteration.
    assert!(
        after <= settled + 4096,
        "live memory grew by {} bytes over 30 iterations",
        after - settled
    );
}
