//! The state store: what a gradient method asks the forward solve to keep of each accepted
//! step (states per the [`CheckpointPolicy`], the stage states of the stage store), and the way
//! back to the states it did not keep, recomputed along the step grid the caller gives.

mod schedule;
mod slots;

use dfdx::prelude::*;

use slots::{Rule, Slots};

use crate::real::Real;

/// Which accepted states the store keeps. The gradient methods only ever ask the store for the
/// state at the start of step `n`; states it did not keep are recomputed from the nearest kept
/// one, so new policies need no change to the gradient methods. Only `symplectic` and
/// `aca` read states; the other methods, and solves without a tape, keep none whatever the policy.
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
    /// checkpointing. The budget holds `budget / slot bytes` states (a slot is the state's
    /// elements and about 120 B of bookkeeping with dfdx's CPU tensors), the initial one
    /// included, placed by the optimal schedule for that many (revolve) when the number of
    /// steps is known before solving (fixed steps), or by an online schedule when it
    /// is not (adaptive steps: Wang, Moin & Iaccarino's dynamic allocation); the backward pass
    /// recomputes the others with the fewest forward steps the schedule allows and reuses the
    /// freed slots as it goes. The gradient is the `All` policy's (to rounding: a recomputed
    /// step evaluates its first stage instead of reusing the previous step's last).
    /// [`BackwardStats::recomputed_steps`](crate::BackwardStats::recomputed_steps) reports the
    /// cost; [`binomial_recomputation`](Self::binomial_recomputation) gives the optimum it is
    /// measured against. A budget below
    /// one state is an error before solving. Adaptive solves also keep the step grid (two
    /// scalars per step, outside the budget); fixed-step solves compute it.
    Budget(usize),
}

impl CheckpointPolicy {
    /// The fewest steps any schedule recomputes to reverse `steps` steps while holding at most
    /// `states` states at once (the initial state included), the forward solve's own steps
    /// being free: the binomial optimum that [`CheckpointPolicy::Budget`] is measured against.
    /// `None` for `states == 0`.
    pub fn binomial_recomputation(steps: usize, states: usize) -> Option<u128> {
        schedule::binomial_recomputation(steps, states)
    }
}

/// What the gradient pass of a solve reads from the store, chosen by the gradient method (and
/// nothing at all without a tape): nothing more is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Keep {
    /// No state (solves without a tape, the continuous adjoint): the step grid, which every
    /// solve records, is all the way back reads.
    Nothing,
    /// No state, but the way back replays every step of the grid (`backprop`).
    Grid,
    /// The states the policy keeps (`symplectic`, `aca`).
    States,
    /// Every state and the states of each step's live stages (the stage store).
    Stages,
}

impl Keep {
    /// Whether the way back replays the step grid (so its bytes count as kept for it).
    pub fn replays_grid(self) -> bool {
        self != Keep::Nothing
    }
}

/// Heap bytes a stored tensor takes besides its elements: the reference-counted buffer's
/// header (dfdx keeps data in an `Arc<Vec<E>>`).
const BUFFER_HEADER: usize = 2 * core::mem::size_of::<usize>() + core::mem::size_of::<Vec<u8>>();

/// Bytes of one slot's entry in a budget's schedule (the online schedule's step and level).
const SCHEDULE_ENTRY: usize = 2 * core::mem::size_of::<usize>();

/// Recomputes one step: `(t, h, x) -> x_next`.
pub(crate) type Advance<'a, S, E, D> = dyn FnMut(E, E, &Tensor<S, E, D>) -> Tensor<S, E, D> + 'a;

/// The states (per the policy) and stage states of the accepted steps of one solve.
#[derive(Debug)]
pub(crate) struct StateStore<S: Shape, E: Dtype, D: Storage<E>> {
    policy: CheckpointPolicy,
    keep: Keep,
    slots: Slots<Tensor<S, E, D>>,
    /// Stage states per step (the stage store; else empty).
    stages: Vec<Vec<Tensor<S, E, D>>>,
}

impl<S: Shape, E: Real, D: Storage<E>> StateStore<S, E, D> {
    /// An empty store keeping `keep` (states per `policy` for [`Keep::States`]).
    pub fn new(policy: CheckpointPolicy, keep: Keep) -> Self {
        let rule = match policy {
            CheckpointPolicy::EveryK(k) => Rule::EveryK(k),
            CheckpointPolicy::Budget(_) => Rule::Budget {
                slots: 0,
                plan: Vec::new(),
                online: None,
            },
            _ => Rule::All,
        };
        StateStore {
            policy,
            keep,
            slots: Slots::new(rule),
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
            self.slots = Slots::budget(slots, steps);
        }
        Some(slots)
    }

    /// Records the state `x` at the start of the next accepted step and, for the stage store,
    /// the stage states its forward step recorded.
    pub fn push(&mut self, x: &Tensor<S, E, D>, stages: Vec<Tensor<S, E, D>>) {
        if matches!(self.keep, Keep::States | Keep::Stages) {
            self.slots.record(x);
        }
        if self.keep == Keep::Stages {
            self.stages.push(stages);
        }
    }

    /// The stage states recorded for step `n`, if the store kept them.
    pub fn stages(&self, n: usize) -> Option<&[Tensor<S, E, D>]> {
        self.stages.get(n).map(Vec::as_slice)
    }

    /// Whether the store keeps stage states.
    pub fn keeps_stages(&self) -> bool {
        self.keep == Keep::Stages
    }

    /// The state at the start of step `n`, recomputing it with `advance(t, h, x)` from the
    /// nearest stored state if the policy did not keep it (`step(m)`: step `m`'s `(t, h)`).
    /// Meant for walking back, last step first: the states of later steps are released as it
    /// goes. Returns the state and the number of steps recomputed, or `None` if `n` is out of
    /// range or no state was kept.
    pub fn state(
        &mut self,
        n: usize,
        step: impl Fn(usize) -> Option<(E, E)>,
        advance: &mut Advance<'_, S, E, D>,
    ) -> Option<(Tensor<S, E, D>, usize)> {
        if !matches!(self.keep, Keep::States | Keep::Stages) {
            return None;
        }
        self.slots
            .state(n, &mut |m, x| step(m).map(|(t, h)| advance(t, h, x)))
    }

    /// Steps recomputed by [`state`](Self::state) so far.
    pub fn recomputed(&self) -> usize {
        self.slots.recomputed()
    }

    /// Bytes the store holds: stored states and stage states (elements and buffer headers;
    /// a buffer shared with an output or the caller counts too) and the bookkeeping vectors
    /// (by capacity).
    pub fn bytes(&self) -> usize {
        let tensor = core::mem::size_of::<Tensor<S, E, D>>();
        let states: usize = self.slots.states().map(Self::state_bytes).sum();
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
        let (entries, schedule) = self.slots.entries();
        states
            + stages
            + entries * core::mem::size_of::<(usize, Tensor<S, E, D>)>()
            + schedule * core::mem::size_of::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `CheckpointPolicy::Budget`'s documentation says a slot costs besides the state's
    /// elements ("about 120 B" with dfdx's CPU tensors).
    #[test]
    fn a_budget_slot_costs_the_state_and_about_120_bytes() {
        let dev = Cpu::default();
        let x: Tensor<(usize, Const<2>), f64, Cpu> = dev.zeros_like(&(5, Const));
        let slot = StateStore::<_, f64, Cpu>::slot_bytes(&x);
        let overhead = slot - 10 * core::mem::size_of::<f64>();
        println!("slot overhead: {overhead} B");
        assert!((100..=140).contains(&overhead), "{overhead} B");
    }
}
