//! Learns the classic 2-D spiral `dx/dt = A x³` with an MLP vector field, dopri5 and the symplectic adjoint, and writes `spiral.png`.
//!
//! The data come from this crate's own solver (the torchdiffeq demo's system and sampling:
//! 1000 points on t ∈ [0, 25], batches of 20 windows of 10 points). Run with
//! `cargo run --release --example spiral -- [--iters 2000] [--solver dopri5|tsit5|bosh3|dopri8]
//! [--grad symplectic|checkpoint|backprop|adjoint] [--out spiral.png]`.

mod common;

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use neural_ode::alloc::CountingAllocator;
use neural_ode::dfdx::nn::tensor_collection::TensorCollection;
use neural_ode::dfdx::optim::{Adam, AdamConfig, Optimizer};
use neural_ode::dfdx::prelude::*;
use neural_ode::nn::{builders, Dense, Identity, Tanh};
use neural_ode::{neural_ode, solve, GradMethod, NeuralOde, SolveOptions, VectorField};
use plotters::prelude::*;

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

type State = (usize, Const<2>);
type Series = (usize, usize, Const<2>);

const DATA_SIZE: usize = 1000;
const T_END: f64 = 25.0;
const BATCH_TIME: usize = 10;
const BATCH_SIZE: usize = 20;
const HIDDEN: usize = 50;

/// The true system: `dx/dt = x³ A` with `A = [[-0.1, 2], [-2, -0.1]]` (row-vector convention).
#[neural_ode(solver = "dopri5")]
#[derive(Clone, Debug)]
struct Spiral {
    #[neural_ode(skip)]
    a: Tensor<Rank2<2, 2>, f64, Cpu>,
}

impl VectorField<State, f64, Cpu> for Spiral {
    fn eval<T: Tape<f64, Cpu>>(
        &self,
        _t: f64,
        x: Tensor<State, f64, Cpu, T>,
    ) -> Tensor<State, f64, Cpu, T> {
        x.powi(3).matmul(self.a.clone())
    }
}

macro_rules! models {
    ($($name:ident => $solver:literal),* $(,)?) => {$(
        /// torchdiffeq's `ODEFunc`: an MLP applied to `x³`.
        #[neural_ode(solver = $solver)]
        #[derive(Clone, Debug)]
        struct $name {
            l1: Dense<2, HIDDEN, Tanh, f64, Cpu>,
            l2: Dense<HIDDEN, 2, Identity, f64, Cpu>,
        }

        impl VectorField<State, f64, Cpu> for $name {
            fn eval<T: Tape<f64, Cpu>>(&self, _t: f64, x: Tensor<State, f64, Cpu, T>) -> Tensor<State, f64, Cpu, T> {
                self.l2.forward(self.l1.forward(x.powi(3)))
            }
        }

        impl Build for $name {
            fn build(dev: &Cpu) -> Self {
                let mut m = $name {
                    l1: dev.build_module::<builders::Dense<2, HIDDEN, Tanh>, f64>(),
                    l2: dev.build_module::<builders::Dense<HIDDEN, 2, Identity>, f64>(),
                };
                // torchdiffeq initialises weights N(0, 0.1) and biases 0.
                m.l1.weight = dev.sample_normal::<Rank2<HIDDEN, 2>>() * 0.1;
                m.l2.weight = dev.sample_normal::<Rank2<2, HIDDEN>>() * 0.1;
                m.l1.bias.fill_with_zeros();
                m.l2.bias.fill_with_zeros();
                m
            }
        }
    )*};
}

trait Build {
    fn build(dev: &Cpu) -> Self;
}

models! {
    Dopri5Field => "dopri5",
    Tsit5Field => "tsit5",
    Bosh3Field => "bosh3",
    Dopri8Field => "dopri8",
}

const USAGE: &str = "usage: spiral [--iters N] [--solver dopri5|tsit5|bosh3|dopri8] [--grad symplectic|checkpoint|backprop|adjoint] [--out spiral.png] [--seed N]";

fn main() {
    let args = common::Args::parse(&["iters", "solver", "grad", "out", "seed"], USAGE);
    let iters: usize = args.get("iters", 2000);
    let solver: String = args.get("solver", "dopri5".to_string());
    let grad: GradMethod = args.get("grad", GradMethod::Symplectic);
    let out: String = args.get("out", "spiral.png".to_string());
    let seed: u64 = args.get("seed", 0);
    match solver.as_str() {
        "dopri5" => train::<Dopri5Field>(iters, grad, &out, seed),
        "tsit5" => train::<Tsit5Field>(iters, grad, &out, seed),
        "bosh3" => train::<Bosh3Field>(iters, grad, &out, seed),
        "dopri8" => train::<Dopri8Field>(iters, grad, &out, seed),
        other => {
            eprintln!("unknown solver `{other}`\n{USAGE}");
            std::process::exit(2);
        }
    }
}

fn train<M>(iters: usize, grad: GradMethod, out: &str, seed: u64)
where
    M: NeuralOde + VectorField<State, f64, Cpu> + TensorCollection<f64, Cpu> + Build,
{
    let dev = Cpu::seed_from_u64(seed);
    let times: Vec<f64> = (0..DATA_SIZE)
        .map(|i| T_END * i as f64 / (DATA_SIZE - 1) as f64)
        .collect();
    let y0: Tensor<State, f64, Cpu> = dev.tensor_from_vec(vec![2.0, 0.0], (1, Const));

    // Data from this crate's own solver, at a tight tolerance.
    let truth = Spiral {
        a: dev.tensor([[-0.1, 2.0], [-2.0, -0.1]]),
    };
    let data = solve(
        &truth,
        y0.clone(),
        &times,
        &SolveOptions::adaptive(1e-10, 1e-10),
    )
    .expect("the true system solves");
    let true_y: Vec<f64> = data.ys.as_vec(); // DATA_SIZE × 1 × 2

    let mut model = M::build(&dev);
    let mut opt = Adam::new(
        &model,
        AdamConfig {
            lr: 1e-3,
            ..Default::default()
        },
    );
    let opts = SolveOptions::adaptive(1e-7, 1e-9).with_grad(grad);
    let batch_t: Vec<f64> = times[..BATCH_TIME].to_vec();

    let full_loss = |model: &M| -> (f64, Vec<f64>) {
        let sol = solve(model, y0.clone(), &times, &opts).expect("the model solves");
        let pred = sol.ys.as_vec();
        let loss = pred
            .iter()
            .zip(&true_y)
            .map(|(p, t)| (p - t).abs())
            .sum::<f64>()
            / pred.len() as f64;
        (loss, pred)
    };
    let (initial_loss, _) = full_loss(&model);
    println!(
        "spiral: {} with `{grad}` gradients, Adam lr 1e-3, {iters} iterations; full-trajectory loss {initial_loss:.4}",
        <M::Solver as neural_ode::RungeKutta>::TITLE
    );

    let bar = ProgressBar::new(iters as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let start = Instant::now();
    let mut rng_state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut peak = 0usize;
    for it in 0..iters {
        // A batch of windows: BATCH_SIZE random starts, BATCH_TIME consecutive points each.
        let mut x0 = Vec::with_capacity(BATCH_SIZE * 2);
        let mut target = vec![0.0; BATCH_TIME * BATCH_SIZE * 2];
        for b in 0..BATCH_SIZE {
            rng_state = rng_state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let s = ((rng_state >> 33) as usize) % (DATA_SIZE - BATCH_TIME);
            x0.extend_from_slice(&true_y[2 * s..2 * s + 2]);
            for k in 0..BATCH_TIME {
                let dst = (k * BATCH_SIZE + b) * 2;
                target[dst..dst + 2].copy_from_slice(&true_y[2 * (s + k)..2 * (s + k) + 2]);
            }
        }
        let x0: Tensor<State, f64, Cpu> = dev.tensor_from_vec(x0, (BATCH_SIZE, Const));
        let target: Tensor<Series, f64, Cpu> =
            dev.tensor_from_vec(target, (BATCH_TIME, BATCH_SIZE, Const));

        let grads = model.alloc_grads();
        let sol = match solve(&model, x0.trace(grads), &batch_t, &opts) {
            Ok(sol) => sol,
            Err(e) => {
                bar.println(format!("iteration {it}: {e}; skipped"));
                continue;
            }
        };
        let loss = (sol.ys - target).abs().mean::<Rank0, _>();
        let loss_value = loss.array();
        let grads = loss.backward();
        let (nfe_f, nfe_b) = match sol.report.stats() {
            Ok(stats) => {
                peak = peak.max(stats.peak_bytes.unwrap_or(0));
                (sol.stats.nfe, stats.nfe())
            }
            Err(e) => {
                bar.println(format!(
                    "iteration {it}: gradient pass failed: {e}; skipped"
                ));
                continue;
            }
        };
        opt.update(&mut model, &grads)
            .expect("every parameter has a gradient");
        let msg = format!(
            "loss {loss_value:.4}  nfe fwd {nfe_f} bwd {nfe_b}  peak grad mem {}",
            common::bytes(peak)
        );
        if bar.is_hidden() && (it + 1) % (iters / 10).max(1) == 0 {
            // Not a terminal: a plain line every 10%.
            println!("iteration {:>5}/{iters}: {msg}", it + 1);
        }
        bar.set_message(msg);
        bar.inc(1);
    }
    bar.finish();
    let elapsed = start.elapsed();
    let (final_loss, pred) = full_loss(&model);
    println!(
        "trained in {:.1} s; full-trajectory loss {initial_loss:.4} -> {final_loss:.4} ({:.1}x lower)",
        elapsed.as_secs_f64(),
        initial_loss / final_loss
    );
    match plot(out, &true_y, &pred) {
        Ok(()) => println!("wrote {out}"),
        Err(e) => eprintln!("could not write {out}: {e}"),
    }
}

fn plot(path: &str, truth: &[f64], pred: &[f64]) -> Result<(), Box<dyn std::error::Error>> {
    let text = common::register_font();
    let root = BitMapBackend::new(path, (800, 800)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(20);
    if text {
        builder
            .caption("spiral: true (blue) vs learned (red)", ("sans-serif", 24))
            .x_label_area_size(30)
            .y_label_area_size(40);
    }
    let mut chart = builder.build_cartesian_2d(-2.2f64..2.2f64, -2.2f64..2.2f64)?;
    if text {
        chart.configure_mesh().x_desc("x₁").y_desc("x₂").draw()?;
    }
    let points = |v: &[f64]| v.chunks(2).map(|p| (p[0], p[1])).collect::<Vec<_>>();
    chart.draw_series(LineSeries::new(points(truth), BLUE.stroke_width(2)))?;
    chart.draw_series(LineSeries::new(points(pred), RED.stroke_width(2)))?;
    root.present()?;
    Ok(())
}
