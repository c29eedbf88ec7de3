//! Soak: 1000 training iterations (solve + backward + Adam) with each gradient method; the live
//! heap (counting allocator) must be flat after warm-up. One test in this file, so nothing else
//! allocates meanwhile.
#![deny(warnings)]

use neural_ode::alloc::{self, CountingAllocator};
use neural_ode::dfdx::optim::{Adam, AdamConfig, Optimizer};
use neural_ode::dfdx::prelude::*;
use neural_ode::{solve, GradMethod, SolveOptions};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

mod common;

use common::{SmallDense as Mlp, State};

#[test]
fn training_loops_do_not_leak() {
    let dev = Cpu::seed_from_u64(11);
    dev.disable_cache();
    let iterations = 1000;
    let warm_up = 100;
    for method in [
        GradMethod::Symplectic,
        GradMethod::Aca,
        GradMethod::Backprop,
        GradMethod::Adjoint,
    ] {
        let mut model = Mlp::build(&dev);
        let mut opt = Adam::new(
            &model,
            AdamConfig {
                lr: 1e-3,
                ..Default::default()
            },
        );
        let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(16, Const));
        let target: Tensor<(usize, usize, Const<2>), f64, Cpu> =
            dev.sample_normal_like(&(3, 16, Const));
        let opts = SolveOptions::adaptive(1e-5, 1e-7).with_grad(method);
        let mut grads = model.alloc_grads();
        let mut live = Vec::with_capacity(iterations);
        let start = std::time::Instant::now();
        for _ in 0..iterations {
            let sol = solve(&model, x0.trace(grads), &[0.0, 0.5, 1.0], &opts).expect("solve");
            let report = sol.report.clone();
            let loss = (sol.ys - target.clone()).square().mean();
            grads = loss.backward();
            report.stats().unwrap();
            opt.update(&mut model, &grads).expect("update");
            model.zero_grads(&mut grads);
            live.push(alloc::current());
        }
        let after_warm_up = live[warm_up];
        let last = *live.last().expect("iterations");
        let max = *live[warm_up..].iter().max().expect("iterations");
        println!(
            "{method:>10}: live {after_warm_up} B after {warm_up} iterations, {last} B after {iterations} (max {max} B); {:.2} s",
            start.elapsed().as_secs_f64()
        );
        // Flat: no growth beyond allocator-size noise (a few layer-sized buffers).
        assert!(
            last <= after_warm_up + 16 * 1024 && max <= after_warm_up + 64 * 1024,
            "{method}: live bytes grew from {after_warm_up} to {last} (max {max})"
        );
    }
}
