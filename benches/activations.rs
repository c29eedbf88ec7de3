//! Fast activations against dfdx 0.13's: tanh on 512×64, the spiral-size MLP (2→64→64→2,
//! batch 512) forward and forward + vector–Jacobian product, and a full `symplectic` gradient
//! with dopri5 over 100 fixed steps; f64 and f32. For the published one-core figures:
//! `RAYON_NUM_THREADS=1 cargo bench --bench activations`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
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

fn mlp<E, A>(c: &mut Criterion, label: &str)
where
    E: Dtype,
    MlpOf<A>: BuildOnDevice<Cpu, E>,
    <MlpOf<A> as BuildOnDevice<Cpu, E>>::Built: Module<Tensor<(usize, Const<2>), E, Cpu>, Output = Tensor<(usize, Const<2>), E, Cpu>>
        + Module<
            Tensor<(usize, Const<2>), E, Cpu, OwnedTape<E, Cpu>>,
            Output = Tensor<(usize, Const<2>), E, Cpu, OwnedTape<E, Cpu>>,
        >,
    Cpu: Device<E>,
{
    let dev = Cpu::seed_from_u64(0);
    let net = dev.build_module::<MlpOf<A>, E>();
    // Deterministic inputs in [-2, 2] without needing a distribution for `E`.
    let data = |phase: f64| {
        (0..1024)
            .map(|i| E::from_f64(2.0 * (i as f64 * 0.7 + phase).sin()).expect("finite"))
            .collect::<Vec<E>>()
    };
    let x: Tensor<(usize, Const<2>), E, Cpu> = dev.tensor_from_vec(data(0.0), (512, Const));
    let v: Tensor<(usize, Const<2>), E, Cpu> = dev.tensor_from_vec(data(1.3), (512, Const));
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
    mlp::<f64, neural_ode::dfdx::nn::builders::Tanh>(c, "f64 dfdx Tanh");
    mlp::<f64, neural_ode::nn::Tanh>(c, "f64 neural_ode::nn::Tanh");
    mlp::<f32, neural_ode::dfdx::nn::builders::Tanh>(c, "f32 dfdx Tanh");
    mlp::<f32, neural_ode::nn::Tanh>(c, "f32 neural_ode::nn::Tanh");
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
criterion_main!(benches);
