//! A batch split across a group of processes (here: threads of one process, joined by a
//! barrier-based `GroupSum`), as `neural_ode::distributed` does over MPI: with the group, the
//! parts' adaptive solves take the whole batch's steps, so the parts' gradients put together are
//! the whole batch's gradient (to rounding), for every gradient method; failures in one part
//! before the first step fail every part, without waiting.

mod common;

use std::sync::{Arc, Barrier, Mutex};

use common::{Build, Dopri5, State, Tsit5};
use neural_ode::dfdx::nn::tensor_collection::TensorCollection;
use neural_ode::dfdx::prelude::*;
use neural_ode::group::{BatchGroup, GroupSum};
use neural_ode::{solve, Error, GradMethod, NeuralOde, SolveOptions, VectorField};

/// What the members of a threaded group share: one slot per member, and a barrier.
struct Shared {
    slots: Mutex<Vec<Vec<f64>>>,
    barrier: Barrier,
}

/// One member of a group of threads: sums in member order, so every member gets the same bits.
struct Member {
    rank: usize,
    shared: Arc<Shared>,
}

impl GroupSum for Member {
    fn sum(&self, values: &mut [f64]) {
        self.shared.slots.lock().unwrap()[self.rank] = values.to_vec();
        self.shared.barrier.wait();
        {
            let slots = self.shared.slots.lock().unwrap();
            for (i, v) in values.iter_mut().enumerate() {
                *v = slots.iter().map(|s| s[i]).fold(0.0, |a, b| a + b);
            }
        }
        // Nobody writes the next round's values before everyone has read this round's.
        self.shared.barrier.wait();
    }
}

fn groups(parts: usize) -> Vec<BatchGroup> {
    let shared = Arc::new(Shared {
        slots: Mutex::new(vec![Vec::new(); parts]),
        barrier: Barrier::new(parts),
    });
    (0..parts)
        .map(|rank| {
            BatchGroup::new(Member {
                rank,
                shared: shared.clone(),
            })
        })
        .collect()
}

const ROWS: usize = 6;

fn initial(rows: &[[f64; 2]]) -> Tensor<State, f64, Cpu> {
    let dev = Cpu::default();
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    dev.tensor_from_vec(flat, (rows.len(), Const))
}

fn batch() -> Vec<[f64; 2]> {
    (0..ROWS)
        .map(|i| {
            let a = i as f64;
            // Rows of different sizes, so that one part alone would take other steps.
            [(0.7 * a).sin() * (1.0 + a), (1.3 * a).cos() * 0.5 - 0.2 * a]
        })
        .collect()
}

/// The loss `Σ_k Σ_rows (k+1)·(row index + 1)·ys[k, row, 0] − ys[k, row, 1]` over the rows
/// `first..first+n` of the whole batch: a sum over rows, so the parts' losses add up.
fn weights(times: usize, first: usize, n: usize) -> Tensor<(usize, usize, Const<2>), f64, Cpu> {
    let mut w = Vec::new();
    for k in 0..times {
        for r in first..first + n {
            w.push((k + 1) as f64 * 0.1 * (r + 1) as f64);
            w.push(-0.3);
        }
    }
    Cpu::default().tensor_from_vec(w, (times, n, Const))
}

/// `(parameter gradient, initial-state gradient, accepted steps)` of a part.
type Part = (Vec<f64>, Vec<f64>, usize);

/// [`Part`] of the rows `first..first+n`.
fn part_gradient<M>(
    model: &M,
    rows: &[[f64; 2]],
    first: usize,
    times: &[f64],
    opts: &SolveOptions,
) -> Result<Part, Error>
where
    M: NeuralOde + VectorField<State, f64, Cpu> + TensorCollection<f64, Cpu> + Build,
{
    let x0 = initial(rows);
    let sol = solve(model, x0.leaky_trace(), times, opts)?;
    let w = weights(times.len(), first, rows.len());
    let g = (sol.ys * w).sum::<Rank0, _>().backward();
    sol.report.stats()?;
    Ok((model.grads(&g), g.get(&x0).as_vec(), sol.stats.accepted))
}

/// Every part's result, each part solved on its own thread within the group.
fn split<M>(
    model: &M,
    parts: &[Vec<[f64; 2]>],
    times: &[f64],
    opts: &SolveOptions,
) -> Vec<Result<Part, Error>>
where
    M: NeuralOde + VectorField<State, f64, Cpu> + TensorCollection<f64, Cpu> + Build + Sync,
{
    let groups = groups(parts.len());
    let mut firsts = Vec::new();
    let mut first = 0;
    for p in parts {
        firsts.push(first);
        first += p.len();
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .iter()
            .zip(groups)
            .zip(&firsts)
            .map(|((rows, group), &first)| {
                let opts = opts.clone().with_batch_group(group);
                s.spawn(move || part_gradient(model, rows, first, times, &opts))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn check_split<M>(model: &M, parts: usize, times: &[f64], opts: &SolveOptions) -> bool
where
    M: NeuralOde + VectorField<State, f64, Cpu> + TensorCollection<f64, Cpu> + Build + Sync,
{
    let rows = batch();
    let (g_whole, x_whole, accepted) = part_gradient(model, &rows, 0, times, opts).unwrap();
    let chunks: Vec<Vec<[f64; 2]>> = rows.chunks(ROWS / parts).map(<[_]>::to_vec).collect();
    let results = split(model, &chunks, times, opts);
    let mut g_sum = vec![0.0; g_whole.len()];
    let mut x_cat = Vec::new();
    for r in results {
        let (g, x, acc) = r.unwrap();
        assert_eq!(
            acc, accepted,
            "every part takes the whole batch's steps ({opts:?})"
        );
        for (s, v) in g_sum.iter_mut().zip(g) {
            *s += v;
        }
        x_cat.extend(x);
    }
    let (eg, ex) = (
        common::max_rel(&g_sum, &g_whole),
        common::max_rel(&x_cat, &x_whole),
    );
    assert!(
        eg <= 1e-13 && ex <= 1e-13,
        "{parts} parts, {:?}: parameters {eg:e}, initial state {ex:e}",
        opts.grad
    );
    // Whether a part alone (no group) would have taken other steps: the group mattered.
    let alone = part_gradient(model, &chunks[0], 0, times, opts).unwrap();
    alone.2 != accepted
}

#[test]
fn split_adaptive_solves_take_the_whole_batchs_steps_and_gradient() {
    let dev = Cpu::default();
    let model = Dopri5::create(&dev);
    let times: &[f64] = &[0.0, 0.4, 1.5];
    let mut mattered = false;
    for grad in [
        GradMethod::Symplectic,
        GradMethod::Aca,
        GradMethod::Backprop,
        GradMethod::Adjoint,
    ] {
        for parts in [2, 3] {
            let opts = SolveOptions::adaptive(1e-7, 1e-9).with_grad(grad);
            mattered |= check_split(&model, parts, times, &opts);
        }
    }
    let tsit = Tsit5::create(&dev);
    let opts = SolveOptions::adaptive(1e-6, 1e-8).with_grad(GradMethod::Reversible);
    mattered |= check_split(&tsit, 2, &[0.0, 1.0], &opts);
    assert!(
        mattered,
        "the batch is chosen so that a part alone takes other steps than the whole batch"
    );
}

#[test]
fn fixed_steps_share_nothing() {
    let model = Dopri5::create(&Cpu::default());
    check_split(&model, 2, &[0.0, 1.0], &SolveOptions::fixed_steps(5));
    // A group that must not be called: fixed steps, forward and every gradient method, never
    // call it; an adaptive solve does (so the check can fail).
    let rows = batch();
    let forbidden = BatchGroup::new(Forbidden);
    for grad in [
        GradMethod::Symplectic,
        GradMethod::Aca,
        GradMethod::Backprop,
        GradMethod::Adjoint,
    ] {
        let opts = SolveOptions::fixed_steps(5)
            .with_grad(grad)
            .with_batch_group(forbidden.clone());
        part_gradient(&model, &rows, 0, &[0.0, 1.0], &opts).unwrap();
    }
    let adaptive = SolveOptions::adaptive(1e-6, 1e-8).with_batch_group(forbidden);
    let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        part_gradient(&model, &rows, 0, &[0.0, 1.0], &adaptive)
    }));
    assert!(
        called.is_err(),
        "an adaptive solve sums its norms over the group"
    );
}

/// A group whose sum must not be called.
struct Forbidden;

impl GroupSum for Forbidden {
    fn sum(&self, _values: &mut [f64]) {
        panic!("the group was called");
    }
}

#[test]
fn a_part_that_fails_before_the_first_step_fails_every_part() {
    let model = Dopri5::create(&Cpu::default());
    let opts = SolveOptions::adaptive(1e-6, 1e-8);
    let times: &[f64] = &[0.0, 1.0];
    let mut rows = batch();
    rows[4][1] = f64::NAN;
    let parts: Vec<Vec<[f64; 2]>> = rows.chunks(3).map(<[_]>::to_vec).collect();
    let results = split(&model, &parts, times, &opts);
    assert_eq!(
        results[0].as_ref().unwrap_err(),
        &Error::GroupFailed { parts: 1 }
    );
    assert!(matches!(
        results[1].as_ref().unwrap_err(),
        Error::NonFiniteInitialState { index: 3, .. }
    ));

    // An empty part cannot take part in the shared norms: it fails, and so does the other.
    let parts = vec![batch(), Vec::new()];
    let results = split(&model, &parts, times, &opts);
    assert_eq!(
        results[0].as_ref().unwrap_err(),
        &Error::GroupFailed { parts: 1 }
    );
    assert!(matches!(
        results[1].as_ref().unwrap_err(),
        Error::InvalidOption {
            name: "batch_group",
            ..
        }
    ));
}
