//! A latent ODE on irregularly sampled sequences, every sequence on its own clock: damped
//! oscillations with random frequency and phase, each observed at its own random times (5 to 20
//! observations in [0, 5], with noise). An encoder maps a sequence's first three observations to
//! the latent state at its first observation time, the ODE carries it through that sequence's
//! own observation times with per-sample steps (`solve_per_sample`), and a linear decoder reads
//! the observations back. Trained with the symplectic adjoint; writes `latent_ode.png`: observed
//! points, reconstruction (to t = 5) and extrapolation (to t = 8) for four sequences.
//!
//! Run with `cargo run --release --example latent_ode -- [--iters 4000] [--batch 64]
//! [--rtol 1e-5] [--out latent_ode.png]`.

mod common;

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use neural_ode::dfdx::optim::{Adam, AdamConfig, Optimizer};
use neural_ode::dfdx::prelude::*;
use neural_ode::nn::{builders, Dense, Identity, Tanh};
use neural_ode::{neural_ode, solve_per_sample, SampleTimes, SolveOptions, VectorField};
use plotters::prelude::*;

const LATENT: usize = 4;
const HIDDEN: usize = 32;
/// Observations the encoder reads: three, as (x₁, x₂) and their times after the first.
const ENCODED: usize = 3;
const FEATURES: usize = 2 * ENCODED + ENCODED - 1;
const T_OBS: f64 = 5.0;
const T_EXTRAPOLATE: f64 = 8.0;

type Latent = (usize, Const<LATENT>);

/// Encoder, latent vector field and decoder in one model (one optimiser); the vector field
/// uses `f1`..`f3`.
#[neural_ode(solver = "dopri5", grad = "symplectic")]
#[derive(Clone, Debug)]
struct LatentOde {
    enc1: Dense<FEATURES, HIDDEN, Tanh, f64, Cpu>,
    enc2: Dense<HIDDEN, LATENT, Identity, f64, Cpu>,
    f1: Dense<LATENT, HIDDEN, Tanh, f64, Cpu>,
    f2: Dense<HIDDEN, HIDDEN, Tanh, f64, Cpu>,
    f3: Dense<HIDDEN, LATENT, Identity, f64, Cpu>,
    dec: Dense<LATENT, 2, Identity, f64, Cpu>,
}

/// Autonomous: the latent dynamics do not read `t` (rows are at different times, and a field
/// that takes one time is checked to ignore it).
impl VectorField<Latent, f64, Cpu> for LatentOde {
    fn eval<T: Tape<f64, Cpu>>(
        &self,
        _t: f64,
        z: Tensor<Latent, f64, Cpu, T>,
    ) -> Tensor<Latent, f64, Cpu, T> {
        self.f3.forward(self.f2.forward(self.f1.forward(z)))
    }
}

impl LatentOde {
    fn build(dev: &Cpu) -> Self {
        LatentOde {
            enc1: dev.build_module::<builders::Dense<FEATURES, HIDDEN, Tanh>, f64>(),
            enc2: dev.build_module::<builders::Dense<HIDDEN, LATENT, Identity>, f64>(),
            f1: dev.build_module::<builders::Dense<LATENT, HIDDEN, Tanh>, f64>(),
            f2: dev.build_module::<builders::Dense<HIDDEN, HIDDEN, Tanh>, f64>(),
            f3: dev.build_module::<builders::Dense<HIDDEN, LATENT, Identity>, f64>(),
            dec: dev.build_module::<builders::Dense<LATENT, 2, Identity>, f64>(),
        }
    }
}

/// A small deterministic generator (xorshift64*), so the data need no extra crate.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform().max(1e-300), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// One sequence: `x(t) = e^{-γt} (cos(ωt + φ), sin(ωt + φ))`.
#[derive(Clone, Debug)]
struct Sequence {
    omega: f64,
    phase: f64,
    times: Vec<f64>,
    values: Vec<[f64; 2]>,
}

const DAMPING: f64 = 0.15;

fn truth(omega: f64, phase: f64, t: f64) -> [f64; 2] {
    let a = (-DAMPING * t).exp();
    [a * (omega * t + phase).cos(), a * (omega * t + phase).sin()]
}

fn sequence(rng: &mut Rng) -> Sequence {
    let omega = 0.8 + 0.8 * rng.uniform();
    let phase = 2.0 * std::f64::consts::PI * rng.uniform();
    let n = 5 + (rng.uniform() * 16.0) as usize;
    let mut times: Vec<f64> = (0..n).map(|_| T_OBS * rng.uniform()).collect();
    times.sort_by(f64::total_cmp);
    times.dedup();
    let values = times
        .iter()
        .map(|&t| {
            let [a, b] = truth(omega, phase, t);
            [a + 0.02 * rng.normal(), b + 0.02 * rng.normal()]
        })
        .collect();
    Sequence {
        omega,
        phase,
        times,
        values,
    }
}

/// The encoder's input: the first three observations and their times after the first.
fn features(batch: &[&Sequence]) -> Vec<f64> {
    batch
        .iter()
        .flat_map(|s| {
            let mut f: Vec<f64> = s.values[..ENCODED].iter().flatten().copied().collect();
            f.extend((1..ENCODED).map(|j| s.times[j] - s.times[0]));
            f
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = common::Args::parse(
        &["iters", "batch", "rtol", "out", "train"],
        "latent_ode [--iters 4000] [--batch 64] [--rtol 1e-5] [--train 512] [--out latent_ode.png]",
    );
    let iters: usize = args.get("iters", 4000);
    let batch_size: usize = args.get("batch", 64);
    let rtol: f64 = args.get("rtol", 1e-5);
    let n_train: usize = args.get("train", 512);
    let out: String = args.get("out", "latent_ode.png".to_string());

    let dev = Cpu::seed_from_u64(0);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let data: Vec<Sequence> = (0..n_train).map(|_| sequence(&mut rng)).collect();
    let mut model = LatentOde::build(&dev);
    let mut grads = model.alloc_grads();
    let mut adam = Adam::new(
        &model,
        AdamConfig {
            lr: 3e-3,
            ..Default::default()
        },
    );
    let opts = SolveOptions::adaptive(rtol, rtol).per_sample_steps();

    let bar = ProgressBar::new(iters as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .expect("valid template"),
    );
    let start = Instant::now();
    let (mut steps_max, mut steps_mean, mut rounds) = (0usize, 0.0, 0usize);
    for it in 0..iters {
        let batch: Vec<&Sequence> = (0..batch_size)
            .map(|_| &data[(rng.uniform() * n_train as f64) as usize % n_train])
            .collect();
        // Each row's own times, padded to the longest; the padding is masked out of the loss.
        let times =
            SampleTimes::ragged(&batch.iter().map(|s| s.times.clone()).collect::<Vec<_>>())?;
        let (rows, len) = (times.rows(), times.len());
        let mut target = vec![0.0; len * rows * 2];
        let mut mask = vec![0.0; len * rows * 2];
        for (i, s) in batch.iter().enumerate() {
            for (k, v) in s.values.iter().enumerate() {
                target[(k * rows + i) * 2..(k * rows + i) * 2 + 2].copy_from_slice(v);
                mask[(k * rows + i) * 2..(k * rows + i) * 2 + 2].copy_from_slice(&[1.0, 1.0]);
            }
        }
        let count: f64 = mask.iter().sum();
        let target = dev.tensor_from_vec(target, (len * rows, Const::<2>));
        let mask = dev.tensor_from_vec(mask, (len * rows, Const::<2>));

        let input = dev.tensor_from_vec(features(&batch), (rows, Const::<FEATURES>));
        let z0 = model.enc2.forward(model.enc1.forward(input.traced(grads)));
        let sol = solve_per_sample(&model, z0, &times, &opts)?;
        let samples = sol.samples.as_ref().expect("per-sample steps");
        (steps_max, steps_mean, rounds) = (
            samples.max_accepted(),
            samples.mean_accepted(),
            samples.rounds,
        );
        let zs = sol.ys.reshape_like(&(len * rows, Const::<LATENT>));
        let pred = model.dec.forward(zs);
        let loss = ((pred - target) * mask).square().sum::<Rank0, _>() / count;
        let value = loss.array();
        grads = loss.backward();
        sol.report.stats()?;
        adam.update(&mut model, &grads)?;
        model.zero_grads(&mut grads);
        bar.set_message(format!(
            "mse {value:.2e}, steps per row ≤ {steps_max} (mean {steps_mean:.1}), {rounds} rounds"
        ));
        bar.inc(1);
        if it + 1 == iters {
            bar.finish();
        }
    }
    println!(
        "{iters} iterations in {:.1} s; last batch: steps per row max {steps_max}, mean {steps_mean:.1}, rounds {rounds}",
        start.elapsed().as_secs_f64()
    );

    // Four sequences: reconstruction through their observations, then extrapolation to 8.
    let shown: Vec<&Sequence> = data.iter().take(4).collect();
    let grid: Vec<Vec<f64>> = shown
        .iter()
        .map(|s| {
            let t0 = s.times[0];
            (0..=120)
                .map(|j| t0 + (T_EXTRAPOLATE - t0) * j as f64 / 120.0)
                .collect()
        })
        .collect();
    let times = SampleTimes::ragged(&grid)?;
    let input = dev.tensor_from_vec(features(&shown), (shown.len(), Const::<FEATURES>));
    let z0 = model.enc2.forward(model.enc1.forward(input));
    let sol = solve_per_sample(&model, z0, &times, &opts)?;
    let (rows, len) = (times.rows(), times.len());
    let pred = model
        .dec
        .forward(sol.ys.reshape_like(&(len * rows, Const::<LATENT>)))
        .as_vec();
    let mut mse_extrapolation = 0.0;
    let mut n = 0.0;
    for (i, s) in shown.iter().enumerate() {
        for (k, &t) in times.row(i).iter().enumerate() {
            if t > T_OBS {
                let [a, b] = truth(s.omega, s.phase, t);
                let p = &pred[(k * rows + i) * 2..(k * rows + i) * 2 + 2];
                mse_extrapolation += (p[0] - a).powi(2) + (p[1] - b).powi(2);
                n += 2.0;
            }
        }
    }
    println!(
        "extrapolation t in (5, 8], four sequences: mse {:.2e} against the noise-free truth",
        mse_extrapolation / n
    );
    plot(&out, &shown, &times, &pred)?;
    println!("wrote {out}");
    Ok(())
}

fn plot(
    path: &str,
    shown: &[&Sequence],
    times: &SampleTimes<f64>,
    pred: &[f64],
) -> Result<(), Box<dyn std::error::Error>> {
    let text = common::register_font();
    let root = BitMapBackend::new(path, (960, 640)).into_drawing_area();
    root.fill(&WHITE)?;
    let rows = times.rows();
    for (i, (area, s)) in root.split_evenly((2, 2)).iter().zip(shown).enumerate() {
        let mut builder = ChartBuilder::on(area);
        builder.margin(15);
        if text {
            builder
                .caption(
                    format!(
                        "sequence {i}: ω = {:.2}, {} observations",
                        s.omega,
                        s.times.len()
                    ),
                    ("sans-serif", 18),
                )
                .x_label_area_size(25)
                .y_label_area_size(35);
        }
        let mut chart = builder.build_cartesian_2d(0f64..T_EXTRAPOLATE, -1.2f64..1.2f64)?;
        if text {
            chart.configure_mesh().x_desc("t").draw()?;
        }
        for (d, color) in [(0, BLUE), (1, RED)] {
            let curve = |pick: &dyn Fn(f64) -> bool| -> Vec<(f64, f64)> {
                times
                    .row(i)
                    .iter()
                    .enumerate()
                    .filter(|(_, &t)| pick(t))
                    .map(|(k, &t)| (t, pred[(k * rows + i) * 2 + d]))
                    .collect()
            };
            chart.draw_series(LineSeries::new(
                curve(&|t| t <= T_OBS),
                color.stroke_width(2),
            ))?;
            chart.draw_series(DashedLineSeries::new(
                curve(&|t| t >= T_OBS),
                6,
                4,
                color.stroke_width(2),
            ))?;
            let truth_curve: Vec<(f64, f64)> = (0..=160)
                .map(|j| {
                    let t = T_EXTRAPOLATE * j as f64 / 160.0;
                    (t, truth(s.omega, s.phase, t)[d])
                })
                .collect();
            chart.draw_series(LineSeries::new(truth_curve, color.mix(0.25)))?;
            chart.draw_series(
                s.times
                    .iter()
                    .zip(&s.values)
                    .map(|(&t, v)| Circle::new((t, v[d]), 4, color.filled())),
            )?;
        }
    }
    root.present()?;
    Ok(())
}
