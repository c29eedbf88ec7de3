//! The continuous normalising flow of `cnf`, trained data-parallel over MPI: every rank solves
//! its shard of each batch with the symplectic adjoint, the parameter gradients are summed in
//! one all-reduce, and every rank takes the same Adam step. Needs `--features mpi`:
//!
//! ```text
//! cargo build --release --features mpi --example mpi_cnf
//! RAYON_NUM_THREADS=1 mpirun -np 2 target/release/examples/mpi_cnf --iters 100 --batch 2048
//! ```
//!
//! Rank 0 prints the throughput (samples per second), the all-reduce's share of a step, each
//! rank's peak memory, and writes `mpi_cnf.png`. Give each rank its own cores
//! (`RAYON_NUM_THREADS` × ranks ≤ cores).

mod common;
#[path = "common/flow.rs"]
mod flow;

use std::time::{Duration, Instant};

use flow::{eight_gaussians, log_density, plot, Flow};
use neural_ode::alloc::{self, CountingAllocator};
use neural_ode::dfdx::optim::{Adam, AdamConfig, Optimizer};
use neural_ode::dfdx::prelude::*;
use neural_ode::distributed::mpi::traits::*;
use neural_ode::distributed::{mpi, Contribution, DataParallel};
use neural_ode::SolveOptions;

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

fn main() {
    let universe = mpi::initialize().expect("MPI is initialised once");
    let world = universe.world();
    let dp = DataParallel::new(&world);
    let args = common::Args::parse(
        &["iters", "batch", "out"],
        "usage: mpirun -np N mpi_cnf [--iters N] [--batch B] [--out mpi_cnf.png] [--no-plot]",
    );
    let iters: usize = args.get("iters", 200);
    let batch: usize = args.get("batch", 1024);
    let out: String = args.get("out", "mpi_cnf.png".to_string());

    // Each rank builds its own random model; rank 0's parameters are copied to every rank.
    let mut flow = Flow::new(&Cpu::seed_from_u64(dp.rank() as u64));
    dp.broadcast_params(&mut flow).expect("broadcast");
    let mut opt = Adam::new(
        &flow,
        AdamConfig {
            lr: 5e-3,
            ..Default::default()
        },
    );
    // Adaptive steps chosen together: every rank takes the whole batch's steps.
    let opts = dp.options(SolveOptions::adaptive(1e-5, 1e-5));
    let shard = dp.shard(batch);
    // Every rank draws the same whole batch and keeps its rows (the data could as well be read
    // from a file by rows).
    let data = Cpu::seed_from_u64(1);
    let mut rng = 42u64;
    let dev = Cpu::default();
    if dp.is_root() {
        println!(
            "{} rank(s), batch {batch} ({} rows on rank 0), {iters} iterations",
            dp.size(),
            shard.len()
        );
    }

    alloc::reset_peak();
    let (mut waiting, mut reducing) = (Duration::ZERO, Duration::ZERO);
    let (mut first, mut last, mut skipped) = (None, 0.0, 0);
    world.barrier();
    let start = Instant::now();
    for it in 0..iters {
        let whole = eight_gaussians(&data, batch, &mut rng).as_vec();
        let rows = shard.select(&whole, 3).to_vec();
        let x: Tensor<flow::State, f64, Cpu> = dev.tensor_from_vec(rows, (shard.len(), Const));
        let (logp, sol) = log_density(&flow, x.trace(flow.alloc_grads()), &opts);
        // This shard's part of the batch's mean negative log-likelihood.
        let loss = logp.mean::<Rank0, _>().negate() * shard.weight();
        let part = loss.array();
        let mut grads = loss.backward();

        // The wait for the slowest rank, timed apart from the all-reduce itself.
        let t = Instant::now();
        world.barrier();
        let t_reduce = Instant::now();
        waiting += t_reduce - t;
        let reduced = dp.all_reduce(
            &flow,
            &mut grads,
            Contribution::loss(part).with_report(&sol.report),
        );
        reducing += t_reduce.elapsed();
        match reduced {
            Ok(r) => {
                opt.update(&mut flow, &grads).expect("update");
                last = r.loss;
                first.get_or_insert(last);
            }
            Err(failure) => {
                skipped += 1;
                if dp.is_root() {
                    println!("iteration {it}: skipped on every rank: {failure}");
                }
            }
        }
        if dp.is_root() && (it + 1) % (iters / 10).max(1) == 0 {
            println!(
                "iteration {:>4}/{iters}: −log-likelihood {last:.3}  steps {}",
                it + 1,
                sol.stats.accepted
            );
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let samples_per_s = (iters * batch) as f64 / elapsed;

    // Every rank's peak heap bytes and time shares, gathered for rank 0.
    let mine = [
        alloc::peak() as f64,
        waiting.as_secs_f64() / elapsed,
        reducing.as_secs_f64() / elapsed,
    ];
    let mut all = vec![0.0; 3 * dp.size()];
    world.all_gather_into(&mine[..], &mut all[..]);
    if dp.is_root() {
        println!(
            "trained in {elapsed:.2} s: −log-likelihood {:.3} -> {last:.3}, {skipped} step(s) skipped",
            first.unwrap_or(last)
        );
        println!(
            "throughput {samples_per_s:.0} samples/s with {} rank(s)",
            dp.size()
        );
        for (rank, r) in all.chunks(3).enumerate() {
            println!(
                "rank {rank}: peak heap {:.2} MiB, waiting for other ranks {:.2} %, all-reduce {:.3} %",
                r[0] / (1 << 20) as f64,
                100.0 * r[1],
                100.0 * r[2]
            );
        }
        if !args.flag("no-plot") {
            match plot(&flow, &SolveOptions::adaptive(1e-5, 1e-5), &out) {
                Ok(()) => println!("wrote {out}"),
                Err(e) => eprintln!("could not write {out}: {e}"),
            }
        }
    }
}
