//! Data-parallel training over MPI: run under `mpirun -np N` (any N; CI runs 2, and with one
//! process every check holds trivially). Needs `--features mpi`. Every rank runs every check;
//! a failed check panics, which makes `mpirun` fail.
//!
//! ```text
//! CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="mpirun -np 2" cargo test --features mpi --test mpi
//! ```

mod common;

use common::{Build, Dopri5};
use neural_ode::dfdx::optim::{Adam, AdamConfig};
use neural_ode::dfdx::prelude::*;
use neural_ode::distributed::mpi::traits::*;
use neural_ode::distributed::{mpi, Contribution, DataParallel, StepFailure};
use neural_ode::{solve, BackwardReport, Error, GradMethod, SolveOptions};

const BATCH: usize = 24;

fn rows(batch: usize) -> Vec<f64> {
    (0..batch)
        .flat_map(|i| {
            let a = i as f64;
            [
                (0.7 * a).sin() * (1.0 + 0.2 * a),
                (1.3 * a).cos() - 0.05 * a,
            ]
        })
        .collect()
}

/// The loss over `data`'s rows `range` as its part of the whole batch's mean:
/// `mean over the rows of Σ_k w_k · ys[k]`, times the rows' share of the batch.
fn loss(
    model: &Dopri5<f64, Cpu>,
    data: &[f64],
    range: std::ops::Range<usize>,
    batch: usize,
    opts: &SolveOptions,
) -> Result<(f64, Gradients<f64, Cpu>, Solved), Error> {
    let dev = Cpu::default();
    let n = range.len();
    let x0 = dev.tensor_from_vec(data[range.start * 2..range.end * 2].to_vec(), (n, Const));
    let times = [0.0, 0.5, 1.5];
    let sol = solve(model, x0.leaky_trace(), &times, opts)?;
    // Weights of (time, row of the whole batch, component).
    let mut w = Vec::new();
    for k in 0..times.len() {
        for r in range.clone() {
            w.extend([0.0, 3.0].map(|c| 0.3 + 0.1 * ((k + 2 * r) as f64 + c).rem_euclid(5.0)));
        }
    }
    let w = dev.tensor_from_vec(w, (times.len(), n, Const));
    let solved = Solved {
        accepted: sol.stats.accepted,
        report: sol.report,
    };
    let mean = (sol.ys * w).sum::<Rank0, _>() / n as f64;
    let part = mean * (n as f64 / batch as f64);
    let value = part.array();
    let grads = part.backward();
    Ok((value, grads, solved))
}

/// What a solve reported.
struct Solved {
    accepted: usize,
    report: BackwardReport,
}

fn params(model: &Dopri5<f64, Cpu>) -> Vec<f64> {
    let mut v = model.l1.weight.as_vec();
    v.extend(model.l1.bias.as_vec());
    v.extend(model.l2.weight.as_vec());
    v.extend(model.l2.bias.as_vec());
    v
}

/// Asserts that every rank holds the same bits in `values`.
fn assert_same_everywhere(world: &impl Communicator, values: &[f64], what: &str) {
    let all = gather_all(world, values);
    for (rank, other) in all.iter().enumerate() {
        let same = other
            .iter()
            .zip(&all[0])
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{what}: rank {rank} differs from rank 0");
    }
}

/// Every rank's `values`, in rank order.
fn gather_all(world: &impl Communicator, values: &[f64]) -> Vec<Vec<f64>> {
    let mut all = vec![0.0; values.len() * world.size() as usize];
    world.all_gather_into(values, &mut all[..]);
    all.chunks(values.len()).map(<[f64]>::to_vec).collect()
}

fn main() {
    let universe = mpi::initialize().expect("MPI initialised once");
    let world = universe.world();
    let dp = DataParallel::new(&world);
    let (rank, size) = (dp.rank(), dp.size());

    // Each rank starts from its own random model; rank 0's wins everywhere.
    let dev = Cpu::seed_from_u64(17 + rank as u64);
    let mut model = Dopri5::create(&dev);
    dp.broadcast_params(&mut model).unwrap();
    assert_same_everywhere(&world, &params(&model), "broadcast: rank 0's parameters");

    // The summed shard gradients are the whole batch's gradient, for every method, with
    // adaptive steps (chosen together) and fixed steps.
    let data = rows(BATCH);
    let shard = dp.shard(BATCH);
    assert_eq!(shard.select(&data, 2).len(), shard.len() * 2);
    let mut worst: f64 = 0.0;
    for grad in [
        GradMethod::Symplectic,
        GradMethod::Aca,
        GradMethod::Backprop,
        GradMethod::Adjoint,
    ] {
        for base in [
            SolveOptions::adaptive(1e-7, 1e-9),
            SolveOptions::fixed_steps(6),
        ] {
            let opts = base.with_grad(grad);
            let (whole_loss, whole, whole_sol) =
                loss(&model, &data, 0..BATCH, BATCH, &opts).unwrap();
            let (part_loss, mut grads, sol) = loss(
                &model,
                &data,
                shard.rows.clone(),
                BATCH,
                &dp.options(opts.clone()),
            )
            .unwrap();
            assert_eq!(sol.accepted, whole_sol.accepted, "{opts:?}");
            let contribution = Contribution::loss(part_loss).with_report(&sol.report);
            let reduced = dp.all_reduce(&model, &mut grads, contribution).unwrap();
            let err = common::max_rel(&model.grads(&grads), &model.grads(&whole));
            assert!(err <= 1e-13, "{grad:?}: {err:e} ({opts:?})");
            assert!(((reduced.loss - whole_loss) / whole_loss).abs() <= 1e-13);
            worst = worst.max(err);
            let stats = dp.reduce_stats(&sol.report.stats().unwrap());
            if grad != GradMethod::Backprop {
                let mine = sol.report.stats().unwrap().steps;
                assert_eq!(stats.steps, mine * size, "the ranks' steps summed");
            }
        }
    }

    // k optimiser steps: the ranks' models stay bit-identical.
    let mut opt = Adam::new(&model, AdamConfig::default());
    let opts = dp.options(SolveOptions::adaptive(1e-6, 1e-8));
    for _ in 0..5 {
        let (part, mut grads, sol) = loss(&model, &data, shard.rows.clone(), BATCH, &opts).unwrap();
        let c = Contribution::loss(part).with_report(&sol.report);
        dp.all_reduce(&model, &mut grads, c).unwrap();
        opt.update(&mut model, &grads).unwrap();
    }
    assert_same_everywhere(&world, &params(&model), "after 5 Adam steps");

    // A failure on one rank is every rank's failure, and nobody's gradients change.
    let opts = dp.options(SolveOptions::adaptive(1e-6, 1e-8));
    let last = size - 1;
    let (part, mut grads, _) = loss(&model, &data, shard.rows.clone(), BATCH, &opts).unwrap();
    let before = model.grads(&grads);
    let mut c = Contribution::loss(part);
    if rank == last {
        c = c.failed("a deliberate failure");
    }
    let failure: StepFailure = dp.all_reduce(&model, &mut grads, c).unwrap_err();
    assert_eq!(failure.failed, vec![last]);
    assert!(failure.non_finite.is_empty());
    assert_eq!(failure.local.is_some(), rank == last);
    assert!(failure.to_string().contains("no rank updates"));
    assert_eq!(
        model.grads(&grads),
        before,
        "gradients untouched on failure"
    );

    // A non-finite gradient on rank 0.
    let (part, mut grads, _) = loss(&model, &data, shard.rows.clone(), BATCH, &opts).unwrap();
    if rank == 0 {
        grads.get_or_alloc_mut(&model.l1.weight).unwrap()[0] = f64::NAN;
    }
    let failure = dp
        .all_reduce(&model, &mut grads, Contribution::loss(part))
        .unwrap_err();
    assert_eq!(failure.non_finite, vec![0]);
    assert!(failure.failed.is_empty());

    // A batch with fewer rows than ranks: the empty rank cannot share adaptive norms, and every
    // rank's solve fails instead of waiting for it.
    if size > 1 {
        let small = dp.shard(size - 1);
        let outcome = loss(&model, &data, small.rows.clone(), size - 1, &opts);
        match outcome {
            Err(Error::InvalidOption { name, .. }) => {
                assert!(small.is_empty() && name == "batch_group")
            }
            Err(Error::GroupFailed { parts }) => assert!(!small.is_empty() && parts == 1),
            other => panic!(
                "expected a failure on every rank, got {:?}",
                other.map(|o| o.0)
            ),
        }
    }

    // The one-value reductions for logging.
    assert_eq!(dp.sum(1.0), size as f64);
    assert_eq!(dp.max(rank as f64), (size - 1) as f64);

    world.barrier();
    if dp.is_root() {
        println!(
            "mpi: {size} rank(s): broadcast, whole-batch gradients (worst {worst:.1e} relative), \
             5 identical Adam steps, failure agreement: ok"
        );
    }
}
