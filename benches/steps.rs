//! The generated straight-line step against a generic loop over the tableau's arrays
//! (`neural_ode::hooks::reference_step`), one dopri5 / dopri8 step of an MLP field, batch 512: the
//! evidence that the code generator pays for itself.

mod common;

use std::hint::black_box;

use common::*;
use criterion::{criterion_group, criterion_main, Criterion};
use neural_ode::dfdx::prelude::*;
use neural_ode::hooks::reference_step;
use neural_ode::{NeuralOde, RungeKutta, VectorField};

fn compare<M>(c: &mut Criterion, name: &str, model: &M)
where
    M: NeuralOde + VectorField<State, f64, Cpu>,
{
    let dev = Cpu::seed_from_u64(3);
    let x: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(512, Const));
    let mut group = c.benchmark_group(format!("step/{name}/{}", M::Solver::NAME));
    group.sample_size(30);
    group.bench_function("generated", |b| {
        let mut ws = neural_ode::hooks::Workspace::new();
        b.iter(|| M::Solver::step(model, 0.0, 0.05, black_box(&x), None, &mut ws).y)
    });
    group.bench_function("generic loop", |b| {
        b.iter(|| {
            reference_step::<M::Solver, _, _, _, _, _>(model, 0.0, 0.05, black_box(x.clone()))
        })
    });
    group.finish();
}

fn bench_steps(c: &mut Criterion) {
    let dev = Cpu::seed_from_u64(0);
    compare(c, "mlp64", &Dopri5Mlp::<64>::build(&dev));
    compare(c, "mlp64", &Dopri8Mlp::<64>::build(&dev));
    compare(c, "mlp8", &Dopri8Mlp::<8>::build(&dev));
}

criterion_group!(benches, bench_steps);
criterion_main!(benches);
