//! The fused stack `nn::Mlp` against the same `Dense` layers called one by one (an MLP
//! 2 → W → W → 2 with tanh, W = 64 and 256, f64 and f32, batch 512 and 4096): one evaluation
//! without a tape, one evaluation with its backward pass, and the symplectic gradient of a
//! solve (dopri5, 10 fixed steps on [0, 1], loss Σ x(1)²). Each on one thread (inside a rayon
//! pool of one) and as a program that sets nothing up runs it (the main thread, rayon's default
//! global pool).
//!
//! ```text
//! cargo bench --bench mlp    # the paired table (median of 7 interleaved rounds)
//! MLP_CASES="64 f64, 256 f32" MLP_ROWS=512 cargo bench --bench mlp   # some of it
//! cargo bench --bench mlp -- --memory   # peak heap of the symplectic and backprop gradients
//! taskset -c 0 cargo bench --bench mlp -- --peer   # the peers harness's case, f32 and f64
//!                                                  # (with benches/diffrax_dtype.py)
//! ```
//!
//! The two are bit-identical (`nn::mlp`'s tests); this measures only the work around the
//! arithmetic.

mod common;

use std::hint::black_box;
use std::time::Instant;

use common::{net_fields, DenseBuild, DenseLayers, State};
use neural_ode::alloc::{self, CountingAllocator};
use neural_ode::dfdx::prelude::*;
use neural_ode::nn::Mlp;
use neural_ode::{solve, GradMethod, SolveOptions};

/// What the table times, per model.
trait Probe: Sync {
    fn eval(&self, x0: &[f64]);
    fn vjp(&self, x0: &[f64]);
    fn gradient(&self, x0: &[f64]);
    fn gradient_with(&self, x0: &[f64], grad: GradMethod, steps: usize);
}

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

/// Peak heap bytes while `f` runs a second time (the counting allocator), above the level after
/// the first call: the steady state, what a call adds to what the first left in the layers'
/// buffer pools and `gemm`'s workspace.
fn peak_of(f: impl Fn()) -> usize {
    f();
    let warm = alloc::current();
    alloc::reset_peak();
    f();
    alloc::peak().saturating_sub(warm)
}

/// What the table times, for each field.
macro_rules! probes {
    ($($name:ident<$e:ty>),* $(,)?) => {$(
        impl $name {
            fn x0(x0: &[f64]) -> Tensor<State, $e, Cpu> {
                let rows = x0.len() / 2;
                Cpu::default().tensor_from_vec(x0.iter().map(|&v| v as $e).collect(), (rows, Const))
            }
        }

        impl Probe for $name {
            fn eval(&self, x0: &[f64]) {
                black_box(self.net.forward(Self::x0(x0)));
            }
            fn vjp(&self, x0: &[f64]) {
                let x = Self::x0(x0);
                let g = self.net.forward(x.leaky_trace()).square().sum::<Rank0, _>().backward();
                black_box(g.get(&x));
            }
            fn gradient(&self, x0: &[f64]) {
                self.gradient_with(x0, GradMethod::Symplectic, 10)
            }
            fn gradient_with(&self, x0: &[f64], grad: GradMethod, steps: usize) {
                let opts = SolveOptions::fixed_steps(steps).with_grad(grad);
                let times: [$e; 2] = [0.0, 1.0];
                let sol = solve(self, Self::x0(x0).leaky_trace(), &times, &opts).expect("solve");
                black_box(sol.ys.square().sum::<Rank0, _>().backward());
            }
        }
    )*};
}

net_fields!(
    L64F64<f64>: DenseLayers<64, f64> = DenseBuild<64>,
    M64F64<f64>: Mlp<DenseLayers<64, f64>> = Mlp<DenseBuild<64>>,
    L256F64<f64>: DenseLayers<256, f64> = DenseBuild<256>,
    M256F64<f64>: Mlp<DenseLayers<256, f64>> = Mlp<DenseBuild<256>>,
    L64F32<f32>: DenseLayers<64, f32> = DenseBuild<64>,
    M64F32<f32>: Mlp<DenseLayers<64, f32>> = Mlp<DenseBuild<64>>,
    L256F32<f32>: DenseLayers<256, f32> = DenseBuild<256>,
    M256F32<f32>: Mlp<DenseLayers<256, f32>> = Mlp<DenseBuild<256>>,
);
probes!(L64F64<f64>, M64F64<f64>, L256F64<f64>, M256F64<f64>);
probes!(L64F32<f32>, M64F32<f32>, L256F32<f32>, M256F32<f32>);

/// A case: width, dtype, the layers one by one, the same fused.
type Case = (&'static str, &'static str, Box<dyn Probe>, Box<dyn Probe>);

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median times of `a` and `b` and the median of the per-round ratios b / a, over `rounds`
/// interleaved rounds of about 50 ms each.
fn paired(a: &dyn Fn(), b: &dyn Fn(), rounds: usize) -> (f64, f64, f64) {
    a();
    b();
    let start = Instant::now();
    a();
    let reps = ((0.05 / start.elapsed().as_secs_f64()).ceil() as usize).clamp(1, 5000);
    let time = |f: &dyn Fn()| {
        let start = Instant::now();
        for _ in 0..reps {
            f();
        }
        start.elapsed().as_secs_f64() / reps as f64
    };
    let (mut ta, mut tb, mut r) = (vec![], vec![], vec![]);
    for _ in 0..rounds {
        let (x, y) = (time(a), time(b));
        ta.push(x);
        tb.push(y);
        r.push(y / x);
    }
    (median(&mut ta), median(&mut tb), median(&mut r))
}

/// Peak heap of a gradient, the layers against `Mlp`, each on a fresh thread (a new pool of one,
/// so no buffers pooled by an earlier measurement are counted or reused).
fn memory(models: &[Case]) {
    let fresh = |f: &(dyn Fn() -> usize + Sync)| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("pool")
            .install(f)
    };
    println!(
        "\npeak heap (counting allocator, one thread, batch 512; the second of two calls, above \
         the level after the first)\n"
    );
    println!("| W | dtype | what | layers | Mlp | Mlp / layers |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let mib = |v: usize| format!("{:.3} MiB", v as f64 / (1 << 20) as f64);
    let row = |what: &str, a: usize, b: usize| {
        format!(
            "{what} | {} | {} | {:.3}",
            mib(a),
            mib(b),
            b as f64 / a as f64
        )
    };
    let x0: Vec<f64> = (0..1024).map(|k| (0.37 * k as f64).sin()).collect();
    for (w, e, layers, fused) in models {
        let peak = |p: &dyn Probe| fresh(&|| peak_of(|| p.vjp(&x0)));
        let (a, b) = (peak(layers.as_ref()), peak(fused.as_ref()));
        println!("| {w} | {e} | {} |", row("one evaluation + backward", a, b));
        for grad in [GradMethod::Symplectic, GradMethod::Backprop] {
            let peak = |p: &dyn Probe| fresh(&|| peak_of(|| p.gradient_with(&x0, grad, 10)));
            let (a, b) = (peak(layers.as_ref()), peak(fused.as_ref()));
            println!("| {w} | {e} | {} |", row(&format!("{grad:?}"), a, b));
        }
    }
}

/// The peers harness's gradient case (`c2_dopri5_N100`: dopri5, 100 fixed steps, batch 512),
/// on the threads the process is given (`taskset`, `RAYON_NUM_THREADS`), for comparison with
/// `benches/diffrax_dtype.py` run the same way: median seconds per symplectic gradient and
/// microseconds per evaluation without a tape, of 7.
fn peer(models: &[Case]) {
    println!(
        "\npeers case c2_dopri5_N100 (global pool: {} threads)\n",
        rayon::current_num_threads()
    );
    println!("| W | dtype | network | symplectic gradient | one evaluation |");
    println!("| --- | --- | --- | --- | --- |");
    let x0: Vec<f64> = (0..1024).map(|k| (0.37 * k as f64).sin()).collect();
    let median_of = |f: &dyn Fn(), reps: usize, inner: usize| {
        f();
        let mut t: Vec<f64> = (0..reps)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..inner {
                    f();
                }
                start.elapsed().as_secs_f64() / inner as f64
            })
            .collect();
        median(&mut t)
    };
    for (w, e, layers, fused) in models {
        for (net, p) in [("layers", layers), ("Mlp", fused)] {
            let g = median_of(&|| p.gradient_with(&x0, GradMethod::Symplectic, 100), 7, 1);
            let ev = median_of(&|| p.eval(&x0), 7, 200);
            println!("| {w} | {e} | {net} | {g:.4} s | {:.1} µs |", ev * 1e6);
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let dev = Cpu::seed_from_u64(0);
    let models: [Case; 4] = [
        (
            "64",
            "f64",
            Box::new(L64F64::build(&dev)),
            Box::new(M64F64::build(&dev)),
        ),
        (
            "256",
            "f64",
            Box::new(L256F64::build(&dev)),
            Box::new(M256F64::build(&dev)),
        ),
        (
            "64",
            "f32",
            Box::new(L64F32::build(&dev)),
            Box::new(M64F32::build(&dev)),
        ),
        (
            "256",
            "f32",
            Box::new(L256F32::build(&dev)),
            Box::new(M256F32::build(&dev)),
        ),
    ];
    if std::env::args().any(|a| a == "--peer") {
        peer(&models);
        return;
    }
    if std::env::args().any(|a| a == "--memory") {
        memory(&models);
        return;
    }
    println!(
        "\nnn::Mlp against its Dense layers one by one; median of 7 interleaved rounds \
         (global pool: {} threads)\n",
        rayon::current_num_threads()
    );
    println!("| W | dtype | batch | what | threads | layers | Mlp | Mlp / layers |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    // `MLP_CASES="64 f64, 256 f32"` picks cases (all by default); `MLP_ROWS="512"` batches.
    let pick = |var: &str, case: &str| {
        std::env::var(var).map_or(true, |v| v.split(',').any(|c| c.trim() == case))
    };
    for (w, e, layers, fused) in &models {
        if !pick("MLP_CASES", &format!("{w} {e}")) {
            continue;
        }
        for rows in [512usize, 4096] {
            if !pick("MLP_ROWS", &rows.to_string()) {
                continue;
            }
            let x0: Vec<f64> = (0..2 * rows).map(|k| (0.37 * k as f64).sin()).collect();
            type Pick = fn(&dyn Probe, &[f64]);
            let whats: [(&str, Pick); 3] = [
                ("forward", |p, x| p.eval(x)),
                ("forward + backward", |p, x| p.vjp(x)),
                ("symplectic gradient", |p, x| p.gradient(x)),
            ];
            for (what, f) in whats {
                for threads in ["1", "default"] {
                    let run = |p: &dyn Probe| {
                        if threads == "1" {
                            one.install(|| f(p, &x0))
                        } else {
                            f(p, &x0)
                        }
                    };
                    let (a, b, r) = paired(&|| run(layers.as_ref()), &|| run(fused.as_ref()), 7);
                    let us = |s: f64| format!("{:.1} µs", s * 1e6);
                    println!(
                        "| {w} | {e} | {rows} | {what} | {threads} | {} | {} | {r:.3} |",
                        us(a),
                        us(b)
                    );
                }
            }
        }
    }
}
