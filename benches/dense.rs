//! The fused dense layer against dfdx 0.13's `Linear` + `neural_ode::nn::Tanh`: one evaluation
//! of the benchmark MLP (2 → W → W → 2, tanh after the first two layers, batch 512) forward and
//! forward + vector–Jacobian product at W = 64 and 256 in f64 and f32; the matrix products of
//! one layer; and the `symplectic` gradient with dopri5 over 100 fixed steps, with and without
//! the stage store (`CheckpointPolicy::AllStages`), also with 201 outputs interpolated inside
//! 20 steps (paired table only). For the published one-core figures:
//! `RAYON_NUM_THREADS=1 cargo bench --bench dense`.
//!
//! After criterion's groups (when no filter is given), paired A/B runs print the ratios
//! measured interleaved (rounds timing the two variants back to back; median of the per-round
//! ratios), which do not carry the drift between criterion's benchmarks.

mod common;

use std::hint::black_box;

use common::paired;

use criterion::{criterion_group, Criterion};
use neural_ode::dfdx::nn::modules::Linear;
use neural_ode::dfdx::prelude::*;
use neural_ode::nn::{matmul, Dense, Identity, Tanh};
use neural_ode::{neural_ode, solve, CheckpointPolicy, GradMethod, SolveOptions, VectorField};

const BATCH: usize = 512;
type State = (Const<BATCH>, Const<2>);

/// The MLP with dfdx's layers and with the fused ones, as dfdx module tuples.
type LinearMlp<const W: usize> = (
    neural_ode::dfdx::nn::builders::Linear<2, W>,
    Tanh,
    neural_ode::dfdx::nn::builders::Linear<W, W>,
    Tanh,
    neural_ode::dfdx::nn::builders::Linear<W, 2>,
);
type DenseMlp<const W: usize> = (
    neural_ode::nn::builders::Dense<2, W, Tanh>,
    neural_ode::nn::builders::Dense<W, W, Tanh>,
    neural_ode::nn::builders::Dense<W, 2, Identity>,
);

/// Input and output cotangent: deterministic values in [-2, 2].
fn inputs<E: Dtype>(dev: &Cpu) -> [Tensor<State, E, Cpu>; 2]
where
    Cpu: Device<E>,
{
    [0.0, 1.3].map(|phase| {
        let v = (0..2 * BATCH)
            .map(|i| E::from_f64(2.0 * (i as f64 * 0.7 + phase).sin()).expect("finite"))
            .collect();
        dev.tensor_from_vec(v, (Const, Const))
    })
}

/// One forward evaluation and one forward + VJP (cotangents for every parameter and the input).
fn eval_pair<'a, E, M>(
    net: &'a M,
    x: &Tensor<State, E, Cpu>,
    v: &Tensor<State, E, Cpu>,
) -> [Box<dyn FnMut() + 'a>; 2]
where
    E: Dtype,
    Cpu: Device<E>,
    M: Module<Tensor<State, E, Cpu>, Output = Tensor<State, E, Cpu>>
        + Module<
            Tensor<State, E, Cpu, OwnedTape<E, Cpu>>,
            Output = Tensor<State, E, Cpu, OwnedTape<E, Cpu>>,
        >,
{
    let x1 = x.clone();
    let (x2, v2) = (x.clone(), v.clone());
    [
        Box::new(move || drop(black_box(net.forward(x1.clone())))),
        Box::new(move || {
            let y = net.forward(x2.leaky_trace());
            drop(black_box((y * v2.clone()).sum::<Rank0, _>().backward()))
        }),
    ]
}

macro_rules! eval_benches {
    ($c:expr, $e:ty, $w:literal) => {{
        let dev = Cpu::seed_from_u64(0);
        let lin = dev.build_module::<LinearMlp<$w>, $e>();
        let dense = dev.build_module::<DenseMlp<$w>, $e>();
        let [x, v] = inputs::<$e>(&dev);
        let mut g =
            $c.benchmark_group(format!("mlp 2-{0}-{0}-2 batch 512/{1}", $w, stringify!($e)));
        let [mut lf, mut lv] = eval_pair(&lin, &x, &v);
        let [mut df, mut dv] = eval_pair(&dense, &x, &v);
        g.bench_function("Linear + Tanh forward", |b| b.iter(&mut lf));
        g.bench_function("Dense forward", |b| b.iter(&mut df));
        g.bench_function("Linear + Tanh forward + vjp", |b| b.iter(&mut lv));
        g.bench_function("Dense forward + vjp", |b| b.iter(&mut dv));
        g.finish();
    }};
}

fn bench_eval(c: &mut Criterion) {
    eval_benches!(c, f64, 64);
    eval_benches!(c, f64, 256);
    eval_benches!(c, f32, 64);
    eval_benches!(c, f32, 256);
}

/// The products of one layer, batch 512 (f64): forward, input and weight cotangents.
fn bench_matmul(c: &mut Criterion) {
    let mut g = c.benchmark_group("matmul f64 batch 512");
    for (i, o) in [(2, 64), (64, 64), (64, 2), (2, 256), (256, 256), (256, 2)] {
        let x: Vec<f64> = (0..BATCH * i).map(|k| (k as f64 * 0.37).sin()).collect();
        let w: Vec<f64> = (0..o * i).map(|k| (k as f64 * 0.11).cos()).collect();
        let d: Vec<f64> = (0..BATCH * o).map(|k| (k as f64 * 0.23).sin()).collect();
        let (mut y, mut xb, mut wb) =
            (vec![0.0; BATCH * o], vec![0.0; BATCH * i], vec![0.0; o * i]);
        g.bench_function(format!("forward {i}->{o}"), |b| {
            b.iter(|| matmul::forward(BATCH, i, o, black_box(&x), &w, &mut y))
        });
        g.bench_function(format!("input cotangent {o}->{i}"), |b| {
            b.iter(|| matmul::input_grad(BATCH, i, o, black_box(&d), &w, &mut xb))
        });
        g.bench_function(format!("weight cotangent {o}x{i}"), |b| {
            b.iter(|| matmul::weight_grad(BATCH, i, o, black_box(&d), &x, &mut wb))
        });
    }
    g.finish();
}

macro_rules! fields {
    ($($name:ident<$w:literal>),*) => {$(
        /// The benchmark MLP as a `#[neural_ode]` model with dfdx's layers.
        #[neural_ode(solver = "dopri5", grad = "symplectic")]
        #[derive(Clone, Debug)]
        struct $name {
            l1: Linear<2, $w, f64, Cpu>,
            l2: Linear<$w, $w, f64, Cpu>,
            l3: Linear<$w, 2, f64, Cpu>,
        }

        impl VectorField<State, f64, Cpu> for $name {
            fn eval<T: Tape<f64, Cpu>>(&self, _t: f64, x: Tensor<State, f64, Cpu, T>) -> Tensor<State, f64, Cpu, T> {
                self.l3.forward(Tanh.forward(self.l2.forward(Tanh.forward(self.l1.forward(x)))))
            }
        }
    )*};
}
fields!(LinearField64<64>, LinearField256<256>);

macro_rules! dense_fields {
    ($($name:ident<$w:literal>),*) => {$(
        /// The benchmark MLP with the fused layers.
        #[neural_ode(solver = "dopri5", grad = "symplectic")]
        #[derive(Clone, Debug)]
        struct $name {
            l1: Dense<2, $w, Tanh, f64, Cpu>,
            l2: Dense<$w, $w, Tanh, f64, Cpu>,
            l3: Dense<$w, 2, Identity, f64, Cpu>,
        }

        impl VectorField<State, f64, Cpu> for $name {
            fn eval<T: Tape<f64, Cpu>>(&self, _t: f64, x: Tensor<State, f64, Cpu, T>) -> Tensor<State, f64, Cpu, T> {
                self.l3.forward(self.l2.forward(self.l1.forward(x)))
            }
        }
    )*};
}
dense_fields!(DenseField64<64>, DenseField256<256>);

/// One gradient: solve on the tape, loss Σ x(1)², backward.
fn gradient<M>(model: &M, x0: &Tensor<State, f64, Cpu>, opts: &SolveOptions) -> Gradients<f64, Cpu>
where
    M: neural_ode::NeuralOde
        + VectorField<State, f64, Cpu>
        + neural_ode::dfdx::nn::tensor_collection::TensorCollection<f64, Cpu>,
{
    gradient_at(model, x0, &[0.0, 1.0], opts)
}

/// One gradient with outputs at `times`: loss Σ over the outputs of x(t)², backward.
fn gradient_at<M>(
    model: &M,
    x0: &Tensor<State, f64, Cpu>,
    times: &[f64],
    opts: &SolveOptions,
) -> Gradients<f64, Cpu>
where
    M: neural_ode::NeuralOde
        + VectorField<State, f64, Cpu>
        + neural_ode::dfdx::nn::tensor_collection::TensorCollection<f64, Cpu>,
{
    let sol = solve(model, x0.trace(model.alloc_grads()), times, opts).expect("solve");
    let g = sol.ys.square().sum::<Rank0, _>().backward();
    assert!(sol.report.stats().is_ok(), "the gradient pass failed");
    g
}

struct Fields {
    x0: Tensor<State, f64, Cpu>,
    lin64: LinearField64,
    dense64: DenseField64,
    lin256: LinearField256,
    dense256: DenseField256,
}

fn fields() -> Fields {
    let dev = Cpu::seed_from_u64(0);
    let lin64: LinearField64 = LinearField64 {
        l1: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<2, 64>, f64>(),
        l2: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<64, 64>, f64>(),
        l3: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<64, 2>, f64>(),
    };
    let lin256: LinearField256 = LinearField256 {
        l1: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<2, 256>, f64>(),
        l2: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<256, 256>, f64>(),
        l3: dev.build_module::<neural_ode::dfdx::nn::builders::Linear<256, 2>, f64>(),
    };
    let dense64 = DenseField64 {
        l1: dev.build_module::<neural_ode::nn::builders::Dense<2, 64, Tanh>, f64>(),
        l2: dev.build_module::<neural_ode::nn::builders::Dense<64, 64, Tanh>, f64>(),
        l3: dev.build_module::<neural_ode::nn::builders::Dense<64, 2, Identity>, f64>(),
    };
    let dense256 = DenseField256 {
        l1: dev.build_module::<neural_ode::nn::builders::Dense<2, 256, Tanh>, f64>(),
        l2: dev.build_module::<neural_ode::nn::builders::Dense<256, 256, Tanh>, f64>(),
        l3: dev.build_module::<neural_ode::nn::builders::Dense<256, 2, Identity>, f64>(),
    };
    Fields {
        x0: dev.sample_normal(),
        lin64,
        dense64,
        lin256,
        dense256,
    }
}

fn options(policy: CheckpointPolicy) -> SolveOptions {
    SolveOptions::fixed_steps(100)
        .with_grad(GradMethod::Symplectic)
        .with_checkpoints(policy)
}

fn bench_gradient(c: &mut Criterion) {
    let f = fields();
    let (all, stages) = (
        options(CheckpointPolicy::All),
        options(CheckpointPolicy::AllStages),
    );
    let mut g = c.benchmark_group("symplectic gradient dopri5 100 steps f64 batch 512");
    g.sample_size(10);
    g.bench_function("W=64 Linear + Tanh", |b| {
        b.iter(|| gradient(&f.lin64, &f.x0, &all))
    });
    g.bench_function("W=64 Dense", |b| {
        b.iter(|| gradient(&f.dense64, &f.x0, &all))
    });
    g.bench_function("W=64 Dense + stage store", |b| {
        b.iter(|| gradient(&f.dense64, &f.x0, &stages))
    });
    g.bench_function("W=256 Linear + Tanh", |b| {
        b.iter(|| gradient(&f.lin256, &f.x0, &all))
    });
    g.bench_function("W=256 Dense", |b| {
        b.iter(|| gradient(&f.dense256, &f.x0, &all))
    });
    g.bench_function("W=256 Dense + stage store", |b| {
        b.iter(|| gradient(&f.dense256, &f.x0, &stages))
    });
    g.finish();
}

criterion_group!(benches, bench_eval, bench_matmul, bench_gradient);

fn row(label: &str, (a, b, r): (f64, f64, f64), unit: f64, suffix: &str) {
    println!(
        "| {label} | {:.1} {suffix} | {:.1} {suffix} | {r:.2}× |",
        a * unit,
        b * unit
    );
}

macro_rules! paired_eval {
    ($e:ty, $w:literal) => {{
        let dev = Cpu::seed_from_u64(0);
        let lin = dev.build_module::<LinearMlp<$w>, $e>();
        let dense = dev.build_module::<DenseMlp<$w>, $e>();
        let [x, v] = inputs::<$e>(&dev);
        let [lf, lv] = eval_pair(&lin, &x, &v);
        let [df, dv] = eval_pair(&dense, &x, &v);
        let reps = if $w > 100 { 5 } else { 20 };
        let label = |what: &str| format!("{what}, W = {}, {}", $w, stringify!($e));
        row(&label("forward"), paired(60, reps, lf, df), 1e6, "µs");
        row(&label("forward + VJP"), paired(60, reps, lv, dv), 1e6, "µs");
    }};
}

fn paired_all() {
    println!("\npaired A/B ratios (median of per-round ratios; median times)\n");
    println!("| benchmark | A | B | A / B |\n| --- | --- | --- | --- |");
    println!("| *A = Linear + Tanh, B = Dense* | | | |");
    paired_eval!(f64, 64);
    paired_eval!(f64, 256);
    paired_eval!(f32, 64);
    paired_eval!(f32, 256);
    let f = fields();
    let (all, stages) = (
        options(CheckpointPolicy::All),
        options(CheckpointPolicy::AllStages),
    );
    let grad = |label: &str, a: &mut dyn FnMut(), b: &mut dyn FnMut(), rounds| {
        row(label, paired(rounds, 1, a, b), 1.0, "s");
    };
    grad(
        "symplectic gradient, W = 64",
        &mut || drop(gradient(&f.lin64, &f.x0, &all)),
        &mut || drop(gradient(&f.dense64, &f.x0, &all)),
        9,
    );
    grad(
        "symplectic gradient, W = 256",
        &mut || drop(gradient(&f.lin256, &f.x0, &all)),
        &mut || drop(gradient(&f.dense256, &f.x0, &all)),
        5,
    );
    println!("| *A = Dense, B = Dense + stage store* | | | |");
    grad(
        "symplectic gradient, W = 64",
        &mut || drop(gradient(&f.dense64, &f.x0, &all)),
        &mut || drop(gradient(&f.dense64, &f.x0, &stages)),
        9,
    );
    grad(
        "symplectic gradient, W = 256",
        &mut || drop(gradient(&f.dense256, &f.x0, &all)),
        &mut || drop(gradient(&f.dense256, &f.x0, &stages)),
        5,
    );
    // 201 output times interpolated inside 20 steps (about 10 per step).
    let times: Vec<f64> = (0..=200).map(|i| f64::from(i) / 200.0).collect();
    let (all, stages) = (
        SolveOptions::fixed_steps(20)
            .with_grad(GradMethod::Symplectic)
            .with_checkpoints(CheckpointPolicy::All),
        SolveOptions::fixed_steps(20)
            .with_grad(GradMethod::Symplectic)
            .with_checkpoints(CheckpointPolicy::AllStages),
    );
    row(
        "symplectic gradient, W = 64, 201 outputs inside 20 steps",
        paired(
            9,
            1,
            || drop(gradient_at(&f.dense64, &f.x0, &times, &all)),
            || drop(gradient_at(&f.dense64, &f.x0, &times, &stages)),
        ),
        1e3,
        "ms",
    );
}

fn main() {
    common::run(benches, paired_all);
}
