//! A continuous normalising flow (FFJORD-style, exact divergence in 2-D) learns the eight-Gaussians density with the symplectic adjoint and writes `cnf.png`.
//!
//! The model is in `examples/common/flow.rs` (shared with `mpi_cnf`, the same training over
//! MPI). Run with `cargo run --release --example cnf -- [--iters 1000] [--out cnf.png]`.

mod common;
#[path = "common/flow.rs"]
mod flow;

use std::time::Instant;

use flow::{eight_gaussians, log_density, plot, Flow};
use indicatif::{ProgressBar, ProgressStyle};
use neural_ode::dfdx::optim::{Adam, AdamConfig, Optimizer};
use neural_ode::dfdx::prelude::*;
use neural_ode::{SolveOptions, VectorField};

fn main() {
    let args = common::Args::parse(
        &["iters", "out", "batch"],
        "usage: cnf [--iters N] [--batch B] [--out cnf.png]",
    );
    let iters: usize = args.get("iters", 1000);
    let batch: usize = args.get("batch", 256);
    let out: String = args.get("out", "cnf.png".to_string());
    let dev = Cpu::seed_from_u64(0);
    let mut flow = Flow::new(&dev);
    let mut opt = Adam::new(
        &flow,
        AdamConfig {
            lr: 5e-3,
            ..Default::default()
        },
    );
    let opts = SolveOptions::adaptive(1e-5, 1e-5);
    let mut rng = 42u64;
    self_check(&flow, &opts, &mut rng);
    let bar = ProgressBar::new(iters as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .expect("template")
            .progress_chars("=> "),
    );
    let start = Instant::now();
    let mut first = None;
    let mut last = 0.0;
    for it in 0..iters {
        let x = eight_gaussians(&dev, batch, &mut rng);
        let grads = flow.alloc_grads();
        let (logp, sol) = log_density(&flow, x.trace(grads), &opts);
        let loss = logp.mean::<Rank0, _>().negate();
        last = loss.array();
        first.get_or_insert(last);
        let grads = loss.backward();
        if let Err(e) = sol.report.stats() {
            bar.println(format!("iteration {it}: gradient pass failed: {e}"));
            continue;
        }
        opt.update(&mut flow, &grads).expect("update");
        let msg = format!(
            "−log-likelihood {last:.3}  steps {}  nfe fwd {}",
            sol.stats.accepted, sol.stats.nfe
        );
        if bar.is_hidden() && (it + 1) % (iters / 10).max(1) == 0 {
            println!("iteration {:>4}/{iters}: {msg}", it + 1);
        }
        bar.set_message(msg);
        bar.inc(1);
    }
    bar.finish();
    println!(
        "trained in {:.1} s: negative log-likelihood {:.3} -> {last:.3} nats",
        start.elapsed().as_secs_f64(),
        first.unwrap_or(last)
    );
    match plot(&flow, &opts, &out) {
        Ok(()) => println!("wrote {out}"),
        Err(e) => eprintln!("could not write {out}: {e}"),
    }
}

/// Before training: the divergence against central differences of `g`, and the symplectic
/// gradient against backprop through the same solve.
fn self_check(flow: &Flow, opts: &SolveOptions, rng: &mut u64) {
    let dev = Cpu::default();
    let x = eight_gaussians(&dev, 16, rng);
    let f = flow.eval(0.3, x.clone()).as_vec();
    let xv = x.as_vec();
    let eps = 1e-6;
    let mut worst = 0.0f64;
    for i in 0..16 {
        let mut div = 0.0;
        for j in 0..2 {
            let (mut p, mut m) = (xv.clone(), xv.clone());
            p[3 * i + j] += eps;
            m[3 * i + j] -= eps;
            let fp = flow.eval(0.3, dev.tensor_from_vec(p, (16, Const))).as_vec();
            let fm = flow.eval(0.3, dev.tensor_from_vec(m, (16, Const))).as_vec();
            div += (fp[3 * i + j] - fm[3 * i + j]) / (2.0 * eps);
        }
        worst = worst.max((f[3 * i + 2] + div).abs());
    }
    let grad = |m: neural_ode::GradMethod| {
        let (logp, sol) = log_density(
            flow,
            x.trace(flow.alloc_grads()),
            &opts.clone().with_grad(m),
        );
        let g = logp.mean::<Rank0, _>().backward();
        sol.report.stats().unwrap();
        let mut v = g.get(&flow.l1.weight).as_vec();
        v.extend(g.get(&flow.l3.weight).as_vec());
        v.extend(g.get(&flow.t2).as_vec());
        v
    };
    let (a, b) = (
        grad(neural_ode::GradMethod::Symplectic),
        grad(neural_ode::GradMethod::Backprop),
    );
    let err = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt()
        / b.iter().map(|y| y * y).sum::<f64>().sqrt();
    println!("self-check: divergence vs finite differences {worst:.1e}; symplectic vs backprop gradient {err:.1e}");
}
