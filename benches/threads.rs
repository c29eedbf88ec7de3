//! Thread scaling of the symplectic gradient with the fused layers, for batches 16, 512 and 4096,
//! widths 64 and 256, f64 and f32 (an MLP 2 → W → W → 2 of `Dense` layers with tanh, called one
//! by one or fused into one `nn::Mlp`; dopri5, 10 fixed steps on [0, 1], loss Σ x(1)²): inside a
//! rayon pool of one thread, inside a pool of two threads, and called from the program's main
//! thread (what a program gets that sets nothing up: an `Mlp` shares its blocks with rayon's
//! global pool, `RAYON_NUM_THREADS` threads, by default one per core; the layers called one by
//! one compute on the main thread alone).
//!
//! ```text
//! cargo bench --bench threads            # criterion's group, then the paired table
//! cargo bench --bench threads -- --table # the paired table only
//! ```
//!
//! The table interleaves the three round by round and reports median times and the median of
//! each round's ratio to the pool of one thread (machines are noisy; ratios within a round are
//! less so).

mod common;

use common::{net_fields, DenseBuild, DenseLayers, State};

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, Criterion};
use neural_ode::dfdx::prelude::*;
use neural_ode::nn::Mlp;
use neural_ode::{solve, GradMethod, SolveOptions};

/// The symplectic gradient of 10 fixed steps, for each field.
macro_rules! gradients {
    ($($name:ident<$e:ty>),* $(,)?) => {$(
        impl Gradient for $name {
            fn gradient(&self, x0: &[f64]) {
                let dev = Cpu::default();
                let rows = x0.len() / 2;
                let x0: Tensor<State, $e, Cpu> =
                    dev.tensor_from_vec(x0.iter().map(|&v| v as $e).collect(), (rows, Const));
                let opts = SolveOptions::fixed_steps(10).with_grad(GradMethod::Symplectic);
                let sol = solve(self, x0.trace(self.alloc_grads()), &[0.0, 1.0], &opts).expect("solve");
                let g = sol.ys.square().sum::<Rank0, _>().backward();
                assert!(sol.report.stats().is_ok(), "the gradient pass failed");
                black_box(g);
            }
        }
    )*};
}

trait Gradient: Sync {
    fn gradient(&self, x0: &[f64]);
}

net_fields!(
    W64F64<f64>: DenseLayers<64, f64> = DenseBuild<64>,
    W256F64<f64>: DenseLayers<256, f64> = DenseBuild<256>,
    W64F32<f32>: DenseLayers<64, f32> = DenseBuild<64>,
    W256F32<f32>: DenseLayers<256, f32> = DenseBuild<256>,
    M64F64<f64>: Mlp<DenseLayers<64, f64>> = Mlp<DenseBuild<64>>,
    M256F64<f64>: Mlp<DenseLayers<256, f64>> = Mlp<DenseBuild<256>>,
    M64F32<f32>: Mlp<DenseLayers<64, f32>> = Mlp<DenseBuild<64>>,
    M256F32<f32>: Mlp<DenseLayers<256, f32>> = Mlp<DenseBuild<256>>,
);
gradients!(W64F64<f64>, W256F64<f64>, W64F32<f32>, W256F32<f32>);
gradients!(M64F64<f64>, M256F64<f64>, M64F32<f32>, M256F32<f32>);

fn initial(rows: usize) -> Vec<f64> {
    (0..2 * rows).map(|k| (0.37 * k as f64).sin()).collect()
}

fn pool(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .expect("thread pool")
}

fn bench_threads(c: &mut Criterion) {
    let dev = Cpu::seed_from_u64(0);
    let (m64, m256) = (W64F64::build(&dev), W256F64::build(&dev));
    let x0 = initial(512);
    let (one, two) = (pool(1), pool(2));
    let mut g = c.benchmark_group("symplectic gradient dopri5 10 steps f64 batch 512");
    g.sample_size(10);
    for (label, m) in [("W=64", &m64 as &dyn Gradient), ("W=256", &m256)] {
        g.bench_function(format!("{label} 1 thread"), |b| {
            b.iter(|| one.install(|| m.gradient(&x0)))
        });
        g.bench_function(format!("{label} 2 threads"), |b| {
            b.iter(|| two.install(|| m.gradient(&x0)))
        });
        g.bench_function(format!("{label} main thread"), |b| {
            b.iter(|| m.gradient(&x0))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_threads);

/// Median times (s) of one gradient in a pool of one thread, a pool of two and on the calling
/// thread, and the medians of the per-round ratios (two / one, calling thread / one).
fn scaling(m: &dyn Gradient, rows: usize, rounds: usize) -> ([f64; 3], [f64; 2]) {
    let x0 = initial(rows);
    let (one, two) = (pool(1), pool(2));
    m.gradient(&x0);
    // Enough calls per timing for about 50 ms on one thread.
    let start = Instant::now();
    one.install(|| m.gradient(&x0));
    let reps = ((0.05 / start.elapsed().as_secs_f64()).ceil() as usize).clamp(1, 2000);
    let time = |f: &dyn Fn()| {
        let start = Instant::now();
        for _ in 0..reps {
            f();
        }
        start.elapsed().as_secs_f64() / reps as f64
    };
    let (mut t, mut r) = ([vec![], vec![], vec![]], [vec![], vec![]]);
    for _ in 0..rounds {
        let a = time(&|| one.install(|| m.gradient(&x0)));
        let b = time(&|| two.install(|| m.gradient(&x0)));
        let c = time(&|| m.gradient(&x0));
        t[0].push(a);
        t[1].push(b);
        t[2].push(c);
        r[0].push(b / a);
        r[1].push(c / a);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let [t0, t1, t2] = &mut t;
    let [r0, r1] = &mut r;
    (
        [median(t0), median(t1), median(t2)],
        [median(r0), median(r1)],
    )
}

fn table() {
    let dev = Cpu::seed_from_u64(0);
    let models: [(&str, &str, &str, Box<dyn Gradient>); 8] = [
        ("64", "f64", "layers", Box::new(W64F64::build(&dev))),
        ("64", "f64", "Mlp", Box::new(M64F64::build(&dev))),
        ("256", "f64", "layers", Box::new(W256F64::build(&dev))),
        ("256", "f64", "Mlp", Box::new(M256F64::build(&dev))),
        ("64", "f32", "layers", Box::new(W64F32::build(&dev))),
        ("64", "f32", "Mlp", Box::new(M64F32::build(&dev))),
        ("256", "f32", "layers", Box::new(W256F32::build(&dev))),
        ("256", "f32", "Mlp", Box::new(M256F32::build(&dev))),
    ];
    println!(
        "\nsymplectic gradient, dopri5, 10 fixed steps; median of 7 interleaved rounds; \
         global pool: {} threads\n",
        rayon::current_num_threads()
    );
    println!(
        "| W | dtype | network | batch | pool of 1 | pool of 2 | main thread | pool of 2 / 1 | main thread / pool of 1 |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (w, e, net, m) in &models {
        for rows in [16, 512, 4096] {
            let (t, r) = scaling(m.as_ref(), rows, 7);
            let ms = |s: f64| format!("{:.3} ms", s * 1e3);
            println!(
                "| {w} | {e} | {net} | {rows} | {} | {} | {} | {:.3} | {:.3} |",
                ms(t[0]),
                ms(t[1]),
                ms(t[2]),
                r[0],
                r[1]
            );
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "--table") {
        table();
        return;
    }
    common::run(benches, table);
}
