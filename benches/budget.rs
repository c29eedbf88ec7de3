//! `CheckpointPolicy::Budget` at 10⁵ fixed dopri5 steps (MLP 2 → 16 → 2 of `Dense` layers,
//! batch 64, f64): peak memory of solve + symplectic gradient (counting allocator) at budgets
//! of 1 %, 10 % and 100 % of the full store against budget + one evaluation's graph + (2s + 2)
//! states, the recomputed steps against the binomial optimum, and the time; then what a solve
//! without a tape and the continuous adjoint keep as the number of steps grows. Not a criterion
//! bench: memory is deterministic and one 10⁵-step run takes seconds.
//!
//! `cargo bench --bench budget` (`-- --steps N` for another step count).

use std::time::Instant;

use neural_ode::alloc::{self, CountingAllocator};
use neural_ode::dfdx::prelude::*;
use neural_ode::nn::{builders, Dense, Identity, Tanh};
use neural_ode::{neural_ode, solve, CheckpointPolicy, GradMethod, SolveOptions, VectorField};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

type State = (usize, Const<2>);
const BATCH: usize = 64;

#[neural_ode(solver = "dopri5", grad = "symplectic")]
#[derive(Clone, Debug)]
struct Mlp {
    l1: Dense<2, 16, Tanh, f64, Cpu>,
    l2: Dense<16, 2, Identity, f64, Cpu>,
}

impl VectorField<State, f64, Cpu> for Mlp {
    fn eval<T: Tape<f64, Cpu>>(
        &self,
        _t: f64,
        x: Tensor<State, f64, Cpu, T>,
    ) -> Tensor<State, f64, Cpu, T> {
        self.l2.forward(self.l1.forward(x))
    }
}

fn peak_of<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let base = alloc::current();
    alloc::reset_peak();
    let r = f();
    (r, alloc::peak().saturating_sub(base))
}

fn mb(b: usize) -> String {
    format!("{:.3} MB", b as f64 / 1e6)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let steps = args
        .iter()
        .position(|a| a == "--steps")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000usize);
    let dev = Cpu::seed_from_u64(0);
    dev.disable_cache();
    let model = Mlp {
        l1: dev.build_module::<builders::Dense<2, 16, Tanh>, f64>(),
        l2: dev.build_module::<builders::Dense<16, 2, Identity>, f64>(),
    };
    let x0: Tensor<State, f64, Cpu> = dev.sample_normal_like(&(BATCH, Const));
    let state = neural_ode::hooks::state_bytes(&x0);
    let s = 7;
    // One evaluation's graph with its scratch buffers (a fresh thread: an empty buffer pool).
    let graph = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                peak_of(|| {
                    let y = model.eval(0.0, x0.leaky_trace());
                    drop(y.square().sum::<Rank0, _>().backward());
                })
                .1
            })
            .join()
            .expect("graph thread")
    });
    let run = |policy: CheckpointPolicy| {
        let opts = SolveOptions::fixed_steps(steps).with_checkpoints(policy);
        let grads = model.alloc_grads();
        let (out, peak) = peak_of(|| {
            let start = Instant::now();
            let sol = solve(&model, x0.trace(grads), &[0.0, 1.0], &opts).expect("solve");
            let forward_time = start.elapsed();
            let report = sol.report.clone();
            let stats = sol.stats;
            let start = Instant::now();
            drop(sol.ys.square().sum::<Rank0, _>().backward());
            let backward_time = start.elapsed();
            let back = report.stats().unwrap();
            (stats, back, forward_time, backward_time)
        });
        (out, peak)
    };
    println!(
        "{steps} fixed dopri5 steps, MLP 2-16-2 (Dense), batch {BATCH}, f64; state {state} B, graph {graph} B"
    );
    let ((full, _, _, _), _) = run(CheckpointPolicy::All);
    let full_store = full.checkpoint_bytes;
    println!("| budget | slots | peak | bound | peak / bound | recomputed / N | optimum / N | forward | gradient |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (name, policy) in [
        ("All".to_string(), CheckpointPolicy::All),
        ("1 %".into(), CheckpointPolicy::Budget(full_store / 100)),
        ("10 %".into(), CheckpointPolicy::Budget(full_store / 10)),
        ("100 %".into(), CheckpointPolicy::Budget(full_store)),
    ] {
        let ((fwd, back, tf, tb), peak) = run(policy);
        let (budget, slots) = match policy {
            CheckpointPolicy::Budget(b) => (b, b / neural_ode::hooks::slot_bytes(&x0)),
            _ => (full_store, steps),
        };
        let bound = budget + graph + (2 * s + 2) * state;
        let optimum =
            neural_ode::CheckpointPolicy::binomial_recomputation(steps, slots).unwrap_or(0);
        println!(
            "| {name} ({}) | {slots} | {} | {} | {:.3} | {:.3} | {:.3} | {:.2} s | {:.2} s |",
            mb(budget),
            mb(peak),
            mb(bound),
            peak as f64 / bound as f64,
            back.recomputed_steps as f64 / steps as f64,
            optimum as f64 / steps as f64,
            tf.as_secs_f64(),
            tb.as_secs_f64(),
        );
        assert_eq!(fwd.accepted, steps);
    }
    println!();
    println!("| steps | without a tape: store, forward peak | adjoint: store, solve + gradient peak | EveryK(MAX): store |");
    println!("| --- | --- | --- | --- |");
    for n in [steps / 100, steps / 10, steps] {
        let opts = SolveOptions::fixed_steps(n);
        let (plain, plain_peak) = peak_of(|| {
            solve(&model, x0.clone(), &[0.0, 1.0], &opts)
                .expect("solve")
                .stats
        });
        let adjoint = opts.clone().with_grad(GradMethod::Adjoint);
        let ((adj, adj_back), adj_peak) = peak_of(|| {
            let sol = solve(&model, x0.leaky_trace(), &[0.0, 1.0], &adjoint).expect("solve");
            let r = sol.report.clone();
            let st = sol.stats;
            drop(sol.ys.square().sum::<Rank0, _>().backward());
            (st, r.get().expect("ran").expect("gradient"))
        });
        let sparse = opts
            .clone()
            .with_checkpoints(CheckpointPolicy::EveryK(usize::MAX));
        let sp = solve(&model, x0.leaky_trace(), &[0.0, 1.0], &sparse)
            .expect("solve")
            .stats;
        let _ = adj_back;
        println!(
            "| {n} | {} B, {} | {} B, {} | {} B |",
            plain.checkpoint_bytes,
            mb(plain_peak),
            adj.checkpoint_bytes,
            mb(adj_peak),
            sp.checkpoint_bytes,
        );
    }
}
