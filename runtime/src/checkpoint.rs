//! The checkpoint store: what the backward pass needs of each accepted step, and nothing else.

use dfdx::prelude::*;

/// Which accepted states the store keeps. The gradient methods only ever ask the store for the
/// state at the start of step `n`; states it did not keep are recomputed from the nearest kept
/// one, so new policies need no change to the gradient methods.
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
}

/// Recomputes one step: `(t, h, x) -> x_next`.
pub type Advance<'a, S, E, D> = dyn FnMut(E, E, &Tensor<S, E, D>) -> Tensor<S, E, D> + 'a;

/// Times, step sizes and (per the policy) states of the accepted steps of one solve.
#[derive(Debug)]
pub struct Checkpoints<S: Shape, E: Dtype, D: Storage<E>> {
    policy: CheckpointPolicy,
    steps: Vec<(E, E)>,
    states: Vec<Option<Tensor<S, E, D>>>,
    /// Stage states per step (`AllStages` with a method that uses them; else empty).
    stages: Vec<Vec<Tensor<S, E, D>>>,
    /// States recomputed for the segment being walked back through (`EveryK` only).
    cache: Vec<(usize, Tensor<S, E, D>)>,
}

impl<S: Shape, E: Dtype, D: Storage<E>> Checkpoints<S, E, D> {
    /// An empty store.
    pub fn new(policy: CheckpointPolicy) -> Self {
        Checkpoints {
            policy,
            steps: Vec::new(),
            states: Vec::new(),
            stages: Vec::new(),
            cache: Vec::new(),
        }
    }

    /// Records accepted step `n = len()` from `(t, x)` with size `h`.
    pub fn push(&mut self, t: E, h: E, x: &Tensor<S, E, D>) {
        let n = self.steps.len();
        let keep = match self.policy {
            CheckpointPolicy::All | CheckpointPolicy::AllStages => true,
            CheckpointPolicy::EveryK(k) => n.is_multiple_of(k.max(1)),
        };
        self.steps.push((t, h));
        self.states.push(keep.then(|| x.clone()));
    }

    /// Records the stage states of the step just pushed (kept by the stage store).
    pub fn push_stages(&mut self, stages: Vec<Tensor<S, E, D>>) {
        debug_assert_eq!(self.stages.len() + 1, self.steps.len());
        self.stages.push(stages);
    }

    /// The stage states recorded for step `n`, if the store kept them.
    pub fn stages(&self, n: usize) -> Option<&[Tensor<S, E, D>]> {
        self.stages.get(n).map(Vec::as_slice)
    }

    /// Number of accepted steps.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether no step was recorded.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// `(t, h)` of step `n`.
    pub fn step(&self, n: usize) -> (E, E) {
        self.steps[n]
    }

    /// The state at the start of step `n`, recomputing it with `advance(t, h, x)` from the
    /// nearest stored state if the policy did not keep it. Returns the state and the number of
    /// steps recomputed, or `None` if `n` is out of range.
    pub fn state(
        &mut self,
        n: usize,
        advance: &mut Advance<'_, S, E, D>,
    ) -> Option<(Tensor<S, E, D>, usize)> {
        if let Some(x) = self.states.get(n)? {
            return Some((x.clone(), 0));
        }
        if let Some((_, x)) = self.cache.iter().find(|(m, _)| *m == n) {
            return Some((x.clone(), 0));
        }
        // Recompute the whole segment between the stored states around `n` once.
        let (start, mut x) = (0..n)
            .rev()
            .find_map(|m| self.states[m].as_ref().map(|x| (m, x.clone())))?;
        let end = (n + 1..self.len())
            .find(|&m| self.states[m].is_some())
            .unwrap_or(self.len());
        self.cache.clear();
        let mut result = None;
        for m in start..end - 1 {
            let (t, h) = self.steps[m];
            x = advance(t, h, &x);
            if m + 1 == n {
                result = Some(x.clone());
            }
            self.cache.push((m + 1, x.clone()));
        }
        Some((result?, end - 1 - start))
    }

    /// Heap bytes of the stored states and stage states (step times and sizes included).
    pub fn bytes(&self) -> usize {
        let states: usize = self
            .states
            .iter()
            .flatten()
            .chain(self.stages.iter().flatten())
            .chain(self.cache.iter().map(|(_, x)| x))
            .map(|x| x.shape().num_elements())
            .sum();
        (states + 2 * self.steps.len()) * core::mem::size_of::<E>()
    }
}
