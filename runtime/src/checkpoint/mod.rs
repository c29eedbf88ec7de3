//! The checkpoint store: what the backward pass needs of each accepted step, and nothing else.

mod schedule;
mod store;

use dfdx::prelude::*;

pub use schedule::binomial_recomputation;
use store::{Rule, Store};

use crate::real::Real;

/// Which accepted states the store keeps. The gradient methods only ever ask the store for the
/// state at the start of step `n`; states it did not keep are recomputed from the nearest kept
/// one, so new policies need no change to the gradient methods. Only `symplectic` and
/// `checkpoint` read states; the other solves keep none whatever the policy (see [`Keep`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CheckpointPolicy {
    /// Keep the state at the start of every accepted step (the paper's setting).
    #[default]
    All,
    /// Keep every `k`-th state and recompute the others, one segment at a time, on the way back:
    /// fewer stored states for about one more forward solve.
    EveryK(usize),
    /// The stage store: keep every accepted state *and* the states of its live stages, so the
    /// `symplectic` backward pass skips rebuilding them (per live stage 2 evaluations + 1
    /// product instead of 3 + 1, counting the forward's), with the same gradient. Costs
    /// (live stages − 1) more states per step: dopri5 keeps 6 states per step instead of 1.
    /// Pick it when states are small next to the network (a batch of low-dimensional states
    /// through a wide MLP, as in most neural ODEs); keep [`All`](Self::All) when the state
    /// dominates memory (images, PDE grids). Only `symplectic` uses the stages; the other
    /// methods treat it as `All`.
    AllStages,
    /// At most this many bytes of stored states, whatever the number of steps: binomial
    /// checkpointing. The budget holds `budget / slot bytes` states ([`Checkpoints::slot_bytes`]:
    /// the state's elements and ~100 B of bookkeeping),
    /// the initial one included, placed by the optimal schedule for that many (revolve) when the
    /// number of steps is known before solving (fixed steps), or by an online schedule when it
    /// is not (adaptive steps: Wang, Moin & Iaccarino's dynamic allocation); the backward pass
    /// recomputes the others with the fewest forward steps the schedule allows and reuses the
    /// freed slots as it goes. The gradient is the `All` policy's (to rounding: a recomputed
    /// step evaluates its first stage instead of reusing the previous step's last).
    /// [`BackwardStats::recomputed_steps`](crate::BackwardStats::recomputed_steps) reports the
    /// cost; [`binomial_recomputation`] gives the optimum it is measured against. A budget below
    /// one state is an error before solving. Adaptive solves also keep the step grid (two
    /// scalars per step, outside the budget); fixed-step solves compute it.
    Budget(usize),
}

/// What the gradient pass of a solve reads from the store, chosen by the solve from its tape
/// and gradient method: nothing more is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Nothing but the number of steps: solves without a tape.
    Nothing,
    /// The last step's time and size (the continuous adjoint's first backward step).
    LastStep,
    /// The step grid, the times and sizes of every step (`backprop` replays it).
    Grid,
    /// The grid and the states the policy keeps (`symplectic`, `checkpoint`).
    States,
    /// The grid, every state and the states of each step's live stages (the stage store).
    Stages,
}

/// The time at which step `i` of `n` equal steps from `start` to `target` starts (`i ≤ n`): the
/// fixed-step grid, computed the same way by the forward loop and the store, so that the store
/// need not keep it.
pub(crate) fn fixed_time<E: Real>(start: E, target: E, i: usize, n: usize) -> E {
    if i == 0 {
        start
    } else if i == n {
        target
    } else {
        let interval: f64 = (target - start).into();
        start + E::from_f64_lossy(interval * i as f64 / n as f64)
    }
}

/// `n` equal steps from `start` to `target`, the first of them step `first` of the solve.
#[derive(Clone, Copy, Debug)]
struct Run<E> {
    first: usize,
    n: usize,
    start: E,
    target: E,
}

/// Heap bytes a stored tensor takes besides its elements: the reference-counted buffer's
/// header (dfdx keeps data in an `Arc<Vec<E>>`).
const BUFFER_HEADER: usize = 2 * core::mem::size_of::<usize>() + core::mem::size_of::<Vec<u8>>();

/// `(t, h)` of step `n` from the fixed-step runs or the stored grid (`last`: the last step's).
fn grid_step<E: Real>(
    runs: &[Run<E>],
    grid: &[(E, E)],
    last: Option<(E, E)>,
    len: usize,
    n: usize,
) -> Option<(E, E)> {
    if n >= len {
        return None;
    }
    if n + 1 == len {
        return last;
    }
    if runs.is_empty() {
        return grid.get(n).copied();
    }
    let r = runs[runs.partition_point(|r| r.first <= n).checked_sub(1)?];
    let i = n - r.first;
    let t = fixed_time(r.start, r.target, i, r.n);
    Some((t, fixed_time(r.start, r.target, i + 1, r.n) - t))
}

/// Bytes of one slot's entry in a budget's schedule (the online schedule's step and level).
const SCHEDULE_ENTRY: usize = 2 * core::mem::size_of::<usize>();

/// Recomputes one step: `(t, h, x) -> x_next`.
pub type Advance<'a, S, E, D> = dyn FnMut(E, E, &Tensor<S, E, D>) -> Tensor<S, E, D> + 'a;

/// Times, step sizes and (per the policy) states of the accepted steps of one solve.
#[derive(Debug)]
pub struct Checkpoints<S: Shape, E: Dtype, D: Storage<E>> {
    policy: CheckpointPolicy,
    keep: Keep,
    len: usize,
    /// `(t, h)` per step (adaptive solves keeping the grid).
    grid: Vec<(E, E)>,
    /// The fixed-step grid, one run per output interval.
    runs: Vec<Run<E>>,
    last: Option<(E, E)>,
    store: Store<Tensor<S, E, D>>,
    /// Stage states per step (the stage store; else empty).
    stages: Vec<Vec<Tensor<S, E, D>>>,
}

impl<S: Shape, E: Real, D: Storage<E>> Checkpoints<S, E, D> {
    /// An empty store keeping what `symplectic` and `checkpoint` need under `policy`.
    pub fn new(policy: CheckpointPolicy) -> Self {
        Self::keeping(policy, Keep::States)
    }

    /// An empty store keeping `keep` (states per `policy` for [`Keep::States`]).
    pub fn keeping(policy: CheckpointPolicy, keep: Keep) -> Self {
        let rule = match policy {
            CheckpointPolicy::EveryK(k) => Rule::EveryK(k),
            CheckpointPolicy::Budget(_) => Rule::Budget {
                slots: 0,
                plan: Vec::new(),
                online: None,
            },
            _ => Rule::All,
        };
        Checkpoints {
            policy,
            keep,
            len: 0,
            grid: Vec::new(),
            runs: Vec::new(),
            last: None,
            store: Store::new(rule),
            stages: Vec::new(),
        }
    }

    /// Bytes one stored state of `x`'s shape takes (elements and buffer header).
    pub fn state_bytes(x: &Tensor<S, E, D>) -> usize {
        x.shape().num_elements() * core::mem::size_of::<E>() + BUFFER_HEADER
    }

    /// Bytes one slot of a [`CheckpointPolicy::Budget`] takes for states shaped like `x`: the
    /// state, its place in the store and its schedule entry.
    pub fn slot_bytes(x: &Tensor<S, E, D>) -> usize {
        Self::state_bytes(x) + core::mem::size_of::<(usize, Tensor<S, E, D>)>() + SCHEDULE_ENTRY
    }

    /// Prepares the store for a solve from `x0` with `steps` steps if known in advance (fixed
    /// steps); call it before the first [`push`](Self::push) (a budget keeps nothing until it
    /// knows its slots). With a budget: the states it holds, or `None` if it holds not even
    /// `x0`.
    pub fn start(&mut self, x0: &Tensor<S, E, D>, steps: Option<usize>) -> Option<usize> {
        let CheckpointPolicy::Budget(bytes) = self.policy else {
            return Some(usize::MAX);
        };
        let slots = bytes / Self::slot_bytes(x0);
        if slots == 0 {
            return None;
        }
        if matches!(self.keep, Keep::States | Keep::Stages) {
            self.store = Store::budget(slots, steps);
        }
        Some(slots)
    }

    /// Declares the next `n` steps equal steps from `start` to `target` (a fixed-step output
    /// interval): their times and sizes are computed, not stored.
    pub fn fixed_run(&mut self, start: E, target: E, n: usize) {
        if matches!(self.keep, Keep::Grid | Keep::States | Keep::Stages) {
            self.runs.push(Run {
                first: self.len,
                n,
                start,
                target,
            });
        }
    }

    /// Records accepted step `n = len()` from `(t, x)` with size `h`.
    pub fn push(&mut self, t: E, h: E, x: &Tensor<S, E, D>) {
        let n = self.len;
        self.len += 1;
        self.last = Some((t, h));
        if matches!(self.keep, Keep::Nothing | Keep::LastStep) {
            return;
        }
        if self.runs.is_empty() {
            self.grid.push((t, h));
        } else {
            debug_assert_eq!(self.step(n), Some((t, h)), "step {n} off the fixed grid");
        }
        if matches!(self.keep, Keep::States | Keep::Stages) {
            self.store.record(n, x);
        }
    }

    /// Records the stage states of the step just pushed (kept by the stage store).
    pub fn push_stages(&mut self, stages: Vec<Tensor<S, E, D>>) {
        if self.keep == Keep::Stages {
            debug_assert_eq!(self.stages.len() + 1, self.len);
            self.stages.push(stages);
        }
    }

    /// The stage states recorded for step `n`, if the store kept them.
    pub fn stages(&self, n: usize) -> Option<&[Tensor<S, E, D>]> {
        self.stages.get(n).map(Vec::as_slice)
    }

    /// Number of accepted steps.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no step was recorded.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// What the store keeps.
    pub fn keeps(&self) -> Keep {
        self.keep
    }

    /// `(t, h)` of step `n`, if the store kept the grid (or `n` is the last step).
    pub fn step(&self, n: usize) -> Option<(E, E)> {
        grid_step(&self.runs, &self.grid, self.last, self.len, n)
    }

    /// The state at the start of step `n`, recomputing it with `advance(t, h, x)` from the
    /// nearest stored state if the policy did not keep it. Meant for walking back, `n = len() −
    /// 1, …, 0`: the states of later steps are released as it goes. Returns the state and the
    /// number of steps recomputed, or `None` if `n` is out of range or no state was kept.
    pub fn state(
        &mut self,
        n: usize,
        advance: &mut Advance<'_, S, E, D>,
    ) -> Option<(Tensor<S, E, D>, usize)> {
        if !matches!(self.keep, Keep::States | Keep::Stages) {
            return None;
        }
        let (runs, grid, last, len) = (&self.runs, &self.grid, self.last, self.len);
        let step = |m: usize| grid_step(runs, grid, last, len, m);
        self.store
            .state(n, &mut |m, x| step(m).map(|(t, h)| advance(t, h, x)))
    }

    /// Steps recomputed by [`state`](Self::state) so far.
    pub fn recomputed(&self) -> usize {
        self.store.recomputed()
    }

    /// Bytes the store holds: stored states and stage states (elements and buffer headers;
    /// a buffer shared with an output or the caller counts too), the step grid and the
    /// bookkeeping vectors (by capacity).
    pub fn bytes(&self) -> usize {
        let tensor = core::mem::size_of::<Tensor<S, E, D>>();
        let states: usize = self.store.states().map(Self::state_bytes).sum();
        let stages: usize = self
            .stages
            .iter()
            .flatten()
            .map(Self::state_bytes)
            .sum::<usize>()
            + self
                .stages
                .iter()
                .map(|s| s.capacity() * tensor)
                .sum::<usize>()
            + self.stages.capacity() * core::mem::size_of::<Vec<Tensor<S, E, D>>>();
        let (entries, schedule) = self.store.entries();
        states
            + stages
            + entries * core::mem::size_of::<(usize, Tensor<S, E, D>)>()
            + schedule * core::mem::size_of::<usize>()
            + self.grid.capacity() * core::mem::size_of::<(E, E)>()
            + self.runs.capacity() * core::mem::size_of::<Run<E>>()
    }
}
