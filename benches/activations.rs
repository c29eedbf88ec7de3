//! Fast activations against dfdx 0.13's: tanh on 512×64, the spiral-size MLP (2→64→64→2,
//! batch 512) forward and forward + vector–Jacobian product, and a full `symplectic` gradient
//! with dopri5 over 100 fixed steps; f64 and f32. For the published one-core figures:
//! `RAYON_NUM_THREADS=1 cargo bench --bench activations`.
//!
//! After criterion's groups (when no filter is given), a paired run prints the same ratios
//! measured A/B-interleaved: rounds that time dfdx's version and ours back to back, and the
//! median of the per-round ratios. Criterion measures one benchmark after another, so its ratios
//! also carry whatever changed in between (load on a shared machine, and the allocator's state:
//! glibc returning freed memory to the system makes later allocations page-fault); the paired
//! ratios do not.

mod common;

use std::hint::black_box;

use common::paired;

use criterion::{criterion_group, Criterion};
use neural_ode::dfdx::nn::modules::Linear;
use neural_ode::dfdx::nn::{BuildOnDevice, Module};
use neural_ode::dfdx::prelude::*;
use neural_ode::{neural_ode, solve, GradMethod, SolveOptions, VectorField};

fn bench_tanh(c: &mut Criterion) {
    let dev = Cpu::seed_from_u64(0);
    let x64: Tensor<(usize, Const<64>), f64, Cpu> = dev.sample_normal_like(&(512, Const));
    let x32: Tensor<(usize, Const<64>), f32, Cpu> = dev.sample_normal_like(&(512, Const));
    let mut g = c.benchmark_group("tanh 512x64");
    g.bench_function("f64 dfdx", |b| {
        b.iter(|| neural_ode::dfdx::nn::modules::Tanh.forward(black_box(x64.clone())))
    });
    g.bench_function("f64 neural_ode::nn", |b| {
        b.iter(|| neural_ode::nn::Tanh.forward(black_box(x64.clone())))
    });
    g.bench_function("f32 dfdx", |b| {
        b.iter(|| neural_ode::dfdx::nn::modules::Tanh.forward(black_box(x32.clone())))
    });
    g.bench_function("f32 neural_ode::nn", |b| {
        b.iter(|| neural_ode::nn::Tanh.forward(black_box(x32.clone())))
    });
    g.finish();
}

type MlpOf<A> = (
    neural_ode::dfdx::nn::builders::Linear<2, 64>,
    A,
    neural_ode::dfdx::nn::builders::Linear<64, 64>,
    A,
    neural_ode::dfdx::nn::builders::Linear<64, 2>,
);

/// The MLP's input and the cotangent of its output: deterministic values in [-2, 2] (without
/// needing a distribution for `E`).
#[allow(clippy::type_complexity)]
fn inputs<E: Dtype>(
    dev: &Cpu,
) -> (
    Tensor<(usize, Const<2>), E, Cpu>,
    Tensor<(usize, Const<2>), E, Cpu>,
)
where
    Cpu: Device<E>,
{
    let data = |phase: f64| {
        (0..1024)
            .map(|i| E::from_f64(2.0 * (i as f64 * 0.7 + phase).sin()).expect("finite"))
            .collect::<Vec<E>>()
    };
    (
        dev.tensor_from_vec(data(0.0), (512, Const)),
        dev.tensor_from_vec(data(1.3), (512, Const)),
    )
}

/// The same three `Linear` layers with no activation: what dfdx's layers alone cost, i.e. the
/// floor under any activation's timings.
type LinearOnly = (
    neural_ode::dfdx::nn::builders::Linear<2, 64>,
    neural_ode::dfdx::nn::builders::Linear<64, 64>,
    neural_ode::dfdx::nn::builders::Linear<64, 2>,
);

fn mlp<E, N>(c: &mut Criterion, label: &str)
where
    E: Dtype,
    N: BuildOnDevice<Cpu, E>,
    N::Built: Module<Tensor<(usize, Const<2>), E, Cpu>, Output = Tensor<(usize, Const<2>), E, Cpu>>
        + Module<
            Tensor<(usize, Const<2>), E, Cpu, OwnedTape<E, Cpu>>,
            Output = Tensor<(usize, Const<2>), E, Cpu, OwnedTape<E, Cpu>>,
        >,
    Cpu: Device<E>,
{
    let dev = Cpu::seed_from_u64(0);
    let net = dev.build_module::<N, E>();
    let (x, v) = inputs::<E>(&dev);
    let mut g = c.benchmark_group(format!("mlp 2-64-64-2 batch 512/{label}"));
    g.bench_function("forward", |b| b.iter(|| net.forward(black_box(x.clone()))));
    g.bench_function("forward + vjp", |b| {
        b.iter(|| {
            let y = net.forward(black_box(x.leaky_trace()));
            (y * v.clone()).sum::<Rank0, _>().backward()
        })
    });
    g.finish();
}

fn bench_mlp(c: &mut Criterion) {
    mlp::<f64, MlpOf<neural_ode::dfdx::nn::builders::Tanh>>(c, "f64 dfdx Tanh");
    mlp::<f64, MlpOf<neural_ode::nn::Tanh>>(c, "f64 neural_ode::nn::Tanh");
    mlp::<f64, LinearOnly>(c, "f64 linear layers only");
    mlp::<f32, MlpOf<neural_ode::dfdx::nn::builders::Tanh>>(c, "f32 dfdx Tanh");
    mlp::<f32, MlpOf<neural_ode::nn::Tanh>>(c, "f32 neural_ode::nn::Tanh");
    mlp::<f32, LinearOnly>(c, "f32 linear layers only");
}

type State = (usize, Const<2>);

macro_rules! fields {
    ($($name:ident => $act:ty),*) => {$(
        #[neural_ode(solver = "dopri5", grad = "symplectic")]
        #[derive(Clone, Debug)]
        struct $name {
            l1: Linear<2, 64, f64, Cpu>,
            l2: Linear<64, 64, f64, Cpu>,
            l3: Linear<64, 2, f64, Cpu>,
        }

        impl VectorField<State, f64, Cpu> for $name {
            fn eval<T: Tape<f64, Cpu>>(&self, _t: f64, x: Tensor<State, f64, Cpu, T>) -> Tensor<State, f64, Cpu, T> {
                let act = <$act>::default();
                self.l3.forward(act.forward(self.l2.forward(act.forward(self.l1.forward(x)))))
            }
        }

        impl $name {
            fn build(dev: &Cpu) -> Self {
                $name {
                    l1: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<2, 64>, f64>(),
                    l2: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<64, 64>, f64>(),
                    l3: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<64, 2>, f64>(),
                }
            }
        }
    )*};
}

fields!(DfdxTanhField => neural_ode::dfdx::nn::modules::Tanh, FastTanhField => neural_ode::nn::Tanh);

fn bench_gradient(c: &mut Criterion) {
    let dev = Cpu::seed_from_u64(0);
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(512, Const));
    let opts = SolveOptions::fixed_steps(100).with_grad(GradMethod::Symplectic);
    let mut g = c.benchmark_group("symplectic gradient dopri5 100 steps f64");
    g.sample_size(10);
    let slow = DfdxTanhField::build(&dev);
    let fast = FastTanhField::build(&dev);
    g.bench_function("dfdx Tanh", |b| {
        b.iter(|| {
            let sol =
                solve(&slow, x0.trace(slow.alloc_grads()), &[0.0, 1.0], &opts).expect("solve");
            sol.ys.square().sum::<Rank0, _>().backward()
        })
    });
    g.bench_function("neural_ode::nn::Tanh", |b| {
        b.iter(|| {
            let sol =
                solve(&fast, x0.trace(fast.alloc_grads()), &[0.0, 1.0], &opts).expect("solve");
            sol.ys.square().sum::<Rank0, _>().backward()
        })
    });
    g.finish();
}

criterion_group!(benches, bench_tanh, bench_mlp, bench_gradient);

fn paired_mlp<E: Dtype>(label: &str)
where
    MlpOf<neural_ode::dfdx::nn::builders::Tanh>: BuildOnDevice<Cpu, E>,
    MlpOf<neural_ode::nn::Tanh>: BuildOnDevice<Cpu, E>,
    <MlpOf<neural_ode::dfdx::nn::builders::Tanh> as BuildOnDevice<Cpu, E>>::Built: Module<Tensor<(usize, Const<2>), E, Cpu>, Output = Tensor<(usize, Const<2>), E, Cpu>>
        + Module<
            Tensor<(usize, Const<2>), E, Cpu, OwnedTape<E, Cpu>>,
            Output = Tensor<(usize, Const<2>), E, Cpu, OwnedTape<E, Cpu>>,
        >,
    <MlpOf<neural_ode::nn::Tanh> as BuildOnDevice<Cpu, E>>::Built: Module<Tensor<(usize, Const<2>), E, Cpu>, Output = Tensor<(usize, Const<2>), E, Cpu>>
        + Module<
            Tensor<(usize, Const<2>), E, Cpu, OwnedTape<E, Cpu>>,
            Output = Tensor<(usize, Const<2>), E, Cpu, OwnedTape<E, Cpu>>,
        >,
    Cpu: Device<E>,
{
    let dev = Cpu::seed_from_u64(0);
    let slow = dev.build_module::<MlpOf<neural_ode::dfdx::nn::builders::Tanh>, E>();
    let fast = dev.build_module::<MlpOf<neural_ode::nn::Tanh>, E>();
    let (x, v) = inputs::<E>(&dev);
    let (a, b, r) = paired(
        100,
        10,
        || drop(black_box(slow.forward(x.clone()))),
        || drop(black_box(fast.forward(x.clone()))),
    );
    println!(
        "| MLP forward, {label} | {:.0} µs | {:.0} µs | {r:.2}× |",
        a * 1e6,
        b * 1e6
    );
    let (a, b, r) = paired(
        100,
        10,
        || {
            drop(black_box(
                (slow.forward(x.leaky_trace()) * v.clone())
                    .sum::<Rank0, _>()
                    .backward(),
            ))
        },
        || {
            drop(black_box(
                (fast.forward(x.leaky_trace()) * v.clone())
                    .sum::<Rank0, _>()
                    .backward(),
            ))
        },
    );
    println!(
        "| MLP forward + VJP, {label} | {:.0} µs | {:.0} µs | {r:.2}× |",
        a * 1e6,
        b * 1e6
    );
}

fn paired_tanh<E: Dtype>(x: Tensor<(usize, Const<64>), E, Cpu>, label: &str)
where
    Cpu: Device<E> + neural_ode::nn::FastActivations<E>,
{
    let (a, b, r) = paired(
        200,
        10,
        || {
            drop(black_box(
                neural_ode::dfdx::nn::modules::Tanh.forward(x.clone()),
            ))
        },
        || drop(black_box(neural_ode::nn::Tanh.forward(x.clone()))),
    );
    println!(
        "| tanh 512×64, {label} | {:.0} µs | {:.1} µs | {r:.2}× |",
        a * 1e6,
        b * 1e6
    );
}

fn paired_all() {
    println!("\npaired A/B ratios (median of per-round ratios; median times)\n");
    println!("| benchmark | dfdx 0.13 | neural_ode::nn | ratio |\n| --- | --- | --- | --- |");
    let dev = Cpu::seed_from_u64(0);
    paired_tanh::<f64>(dev.sample_normal_like(&(512, Const)), "f64");
    paired_tanh::<f32>(dev.sample_normal_like(&(512, Const)), "f32");
    paired_mlp::<f64>("f64");
    paired_mlp::<f32>("f32");
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(512, Const));
    let opts = SolveOptions::fixed_steps(100).with_grad(GradMethod::Symplectic);
    let slow = DfdxTanhField::build(&dev);
    let fast = FastTanhField::build(&dev);
    let (a, b, r) = paired(
        7,
        1,
        || {
            let sol =
                solve(&slow, x0.trace(slow.alloc_grads()), &[0.0, 1.0], &opts).expect("solve");
            drop(black_box(sol.ys.square().sum::<Rank0, _>().backward()))
        },
        || {
            let sol =
                solve(&fast, x0.trace(fast.alloc_grads()), &[0.0, 1.0], &opts).expect("solve");
            drop(black_box(sol.ys.square().sum::<Rank0, _>().backward()))
        },
    );
    println!("| symplectic gradient, dopri5, 100 steps, f64 | {a:.2} s | {b:.2} s | {r:.2}× |");
}

fn main() {
    common::run(benches, paired_all);
}
