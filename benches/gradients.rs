//! Gradient time per method and solver (MLP widths 64 and 256, batch 512, 20 fixed steps on
//! [0, 1]), forward-only solve time, and the spiral model with dopri5 (symplectic vs checkpoint).

mod common;

use std::hint::black_box;

use common::*;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use neural_ode::dfdx::nn::tensor_collection::TensorCollection;
use neural_ode::dfdx::prelude::*;
use neural_ode::{solve, GradMethod, NeuralOde, RungeKutta, SolveOptions, VectorField};

const BATCH: usize = 512;

fn gradient<M>(model: &M, x0: &Tensor<State, f64, Cpu>, times: &[f64], opts: &SolveOptions) -> f64
where
    M: NeuralOde + VectorField<State, f64, Cpu> + TensorCollection<f64, Cpu>,
{
    let grads = model.alloc_grads();
    let sol = solve(model, x0.trace(grads), times, opts).expect("solve");
    let loss = sol.ys.square().mean::<Rank0, _>();
    let value = loss.array();
    let g = loss.backward();
    black_box(g);
    value
}

fn methods<M>(c: &mut Criterion, name: &str, model: &M)
where
    M: NeuralOde + VectorField<State, f64, Cpu> + TensorCollection<f64, Cpu>,
{
    let dev = Cpu::seed_from_u64(1);
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(BATCH, Const));
    let mut group = c.benchmark_group(format!("gradient/{name}/{}", M::Solver::NAME));
    group.sample_size(10);
    for method in [
        GradMethod::Symplectic,
        GradMethod::Aca,
        GradMethod::Backprop,
        GradMethod::Adjoint,
    ] {
        let opts = SolveOptions::fixed_steps(20).with_grad(method);
        group.bench_with_input(BenchmarkId::from_parameter(method), &opts, |b, opts| {
            b.iter(|| gradient(model, black_box(&x0), &[0.0, 1.0], opts))
        });
    }
    group.finish();
    let mut group = c.benchmark_group(format!("forward/{name}/{}", M::Solver::NAME));
    group.sample_size(10);
    group.bench_function("solve", |b| {
        b.iter(|| {
            solve(
                model,
                black_box(x0.clone()),
                &[0.0, 1.0],
                &SolveOptions::fixed_steps(20),
            )
            .expect("solve")
            .ys
        })
    });
    group.finish();
}

fn bench_gradients(c: &mut Criterion) {
    let dev = Cpu::seed_from_u64(0);
    methods(c, "mlp64", &Dopri5Mlp::<64>::build(&dev));
    methods(c, "mlp256", &Dopri5Mlp::<256>::build(&dev));
    methods(c, "mlp64", &Dopri8Mlp::<64>::build(&dev));
}

/// The performance goal: symplectic ≤ 1.5 × checkpoint on the spiral model with dopri5
/// (adaptive steps as in the example: a batch of 20 windows of 10 outputs).
fn bench_spiral(c: &mut Criterion) {
    let dev = Cpu::seed_from_u64(0);
    let model = SpiralField::build(&dev);
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(20, Const)) * 0.5;
    let times: Vec<f64> = (0..10).map(|i| i as f64 * 25.0 / 999.0 * 20.0).collect();
    let mut group = c.benchmark_group("spiral/dopri5");
    group.sample_size(20);
    for method in [GradMethod::Symplectic, GradMethod::Aca] {
        let opts = SolveOptions::adaptive(1e-7, 1e-9).with_grad(method);
        group.bench_with_input(BenchmarkId::from_parameter(method), &opts, |b, opts| {
            b.iter(|| gradient(&model, black_box(&x0), &times, opts))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_spiral, bench_gradients);
criterion_main!(benches);
