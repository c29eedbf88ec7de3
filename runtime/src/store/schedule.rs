//! Binomial checkpointing: where to keep states when at most `slots` of them may be held at
//! once, for a number of steps known in advance (Griewank 1992; Griewank & Walther, revolve,
//! 2000) or not (the dynamic allocation of Wang, Moin & Iaccarino, 2009).
//!
//! Conventions: reversing `len` steps means calling the backward step of steps `len - 1, …, 0`
//! in that order, each needing the state at its start; the state at step 0 is held; advancing
//! one step costs one forward step. `free` counts the slots available besides the held one.

/// `β(s, t) = C(s + t, t)`: the most steps that `s` held states (the first included) reverse
/// when no step is advanced more than `t` times. Saturates.
pub(crate) fn beta(s: usize, t: usize) -> u128 {
    let mut r: u128 = 1;
    for i in 1..=t {
        // C(s + i, i) = C(s + i - 1, i - 1) · (s + i) / i, exact at every step.
        r = match r.checked_mul((s + i) as u128) {
            Some(v) => v / i as u128,
            None => return u128::MAX,
        };
    }
    r
}

/// The smallest repetition number `t` with `β(s, t) ≥ len`.
fn repetitions(len: usize, s: usize) -> usize {
    let (mut t, mut b) = (0usize, 1u128);
    while b < len as u128 {
        t += 1;
        b = b.saturating_mul((s + t) as u128) / t as u128;
    }
    t
}

/// The fewest forward steps that reverse `len` steps with `free` slots besides the held start
/// (Griewank 1992: `t·len − β(s + 1, t − 1)` with `s = free + 1` and `t` the repetition number).
pub(crate) fn optimal_advances(len: usize, free: usize) -> u128 {
    if len <= 1 {
        return 0;
    }
    let s = free + 1;
    let t = repetitions(len, s);
    (t as u128 * len as u128).saturating_sub(beta(s + 1, t - 1))
}

/// Where to keep the first state when reversing `len ≥ 2` steps with `free ≥ 1` slots: the
/// offset `c` (`1 ≤ c < len`) minimising `c + optimal(c, free) + optimal(len − c, free − 1)`.
/// Each term is convex in `c` (the optimum is piecewise linear with growing slopes), so the
/// first `c` whose forward difference is not negative is a minimiser.
pub(crate) fn split(len: usize, free: usize) -> usize {
    debug_assert!(len >= 2 && free >= 1);
    argmin_convex(1, len - 1, |c| {
        c as u128 + optimal_advances(c, free) + optimal_advances(len - c, free - 1)
    })
}

/// The fewest forward steps that reverse `len` steps from a held start with `free` more slots
/// when every step is first advanced once for free (the forward solve, which may keep any
/// states it passes within the slots). Allocating steps to the segments between kept states
/// by their marginal cost (the repetition number) shows it is `optimal(len + 1, free) − len`:
/// the revolve schedule of one more step, less one advance of each step.
pub(crate) fn optimal_after_forward(len: usize, free: usize) -> u128 {
    optimal_advances(len + 1, free).saturating_sub(len as u128)
}

/// [`CheckpointPolicy::binomial_recomputation`](super::CheckpointPolicy::binomial_recomputation).
pub(crate) fn binomial_recomputation(steps: usize, states: usize) -> Option<u128> {
    Some(optimal_after_forward(steps, states.checked_sub(1)?))
}

/// The states the forward solve keeps for `steps` steps known in advance and `slots` slots
/// (always including step 0, ascending): each next one splits the rest where the reversal of
/// the segment before it (with the slots then free) plus the optimum after it is least.
pub(crate) fn plan(steps: usize, slots: usize) -> Vec<usize> {
    let mut kept = vec![0];
    let (mut a, mut free) = (0, slots.saturating_sub(1));
    while steps > a + 1 && free > 0 {
        let len = steps - a;
        let cost = |c: usize| optimal_advances(c, free) + optimal_after_forward(len - c, free - 1);
        a += argmin_convex(1, len - 1, cost);
        free -= 1;
        kept.push(a);
    }
    kept.shrink_to_fit();
    kept
}

/// The first minimiser on `lo ..= hi` of a convex `f`.
fn argmin_convex(mut lo: usize, mut hi: usize, f: impl Fn(usize) -> u128) -> usize {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if f(mid + 1) >= f(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// What to do with the state at the start of a new step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Placement {
    /// Keep it.
    pub keep: bool,
    /// First drop the kept state of this step.
    pub drop: Option<usize>,
}

/// Wang, Moin & Iaccarino's dynamic allocation for a solve whose number of steps is unknown:
/// the newest state is always kept; once every slot is full it replaces a *dispensable* state
/// (one with a later state of higher level), the latest such, at level 0, or else it takes the
/// newest state's place one level up. The repetition number stays optimal as steps accrue.
#[derive(Clone, Debug)]
pub(crate) struct Online {
    slots: usize,
    /// (step, level) of the kept states, ascending by step.
    kept: Vec<(usize, u32)>,
}

impl Online {
    pub(crate) fn new(slots: usize) -> Self {
        Online {
            slots,
            kept: Vec::with_capacity(slots.min(1024)),
        }
    }

    /// Entries allocated.
    pub(crate) fn capacity(&self) -> usize {
        self.kept.capacity()
    }

    /// Called with the steps in increasing order.
    pub(crate) fn place(&mut self, step: usize) -> Placement {
        if self.kept.is_empty() {
            self.kept.push((step, u32::MAX));
            return Placement {
                keep: true,
                drop: None,
            };
        }
        if self.slots <= 1 {
            return Placement {
                keep: false,
                drop: None,
            };
        }
        if self.kept.len() < self.slots {
            self.kept.push((step, 0));
            return Placement {
                keep: true,
                drop: None,
            };
        }
        let mut later = 0;
        let mut dispensable = None;
        for (j, &(_, level)) in self.kept.iter().enumerate().rev() {
            if level < later {
                dispensable = Some(j);
                break;
            }
            later = later.max(level);
        }
        let (dropped, level) = match dispensable {
            Some(j) => (self.kept.remove(j).0, 0),
            None => {
                // No dispensable state: the levels fall from the initial state on, and the newest
                // (never the initial one: at least two slots) moves up a level.
                let (s, l) = self.kept.pop().unwrap_or((step, 0));
                (s, l.saturating_add(1))
            }
        };
        self.kept.push((step, level));
        Placement {
            keep: true,
            drop: Some(dropped),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cost[len][free]` by exhaustive dynamic programming over every first split.
    fn exhaustive(max_len: usize, max_free: usize) -> Vec<Vec<u128>> {
        let mut cost = vec![vec![0u128; max_free + 1]; max_len + 1];
        for len in 2..=max_len {
            cost[len][0] = (len * (len - 1) / 2) as u128;
            for free in 1..=max_free {
                cost[len][free] = (1..len)
                    .map(|c| c as u128 + cost[c][free] + cost[len - c][free - 1])
                    .min()
                    .unwrap_or(0);
            }
        }
        cost
    }

    #[test]
    fn beta_is_the_binomial_coefficient() {
        assert_eq!(beta(3, 2), 10);
        assert_eq!(beta(1, 7), 8);
        assert_eq!(beta(10, 0), 1);
        assert_eq!(beta(2_000_000, 2_000_000), u128::MAX);
    }

    #[test]
    fn closed_form_and_split_are_optimal() {
        let cost = exhaustive(90, 7);
        for len in 1..=90 {
            for free in 0..=7 {
                assert_eq!(
                    optimal_advances(len, free),
                    cost[len][free],
                    "len {len} free {free}"
                );
                if len >= 2 && free >= 1 {
                    let c = split(len, free);
                    assert!((1..len).contains(&c));
                    let total = c as u128 + cost[c][free] + cost[len - c][free - 1];
                    assert_eq!(
                        total, cost[len][free],
                        "split {c} of len {len}, free {free}"
                    );
                }
            }
        }
    }

    #[test]
    fn optimum_after_a_free_forward_matches_exhaustive_search() {
        let cost = exhaustive(90, 7);
        // after[len][free]: the chain of kept states placed during the forward, each segment
        // reversed with the slots free at its turn.
        let mut after = vec![vec![0u128; 8]; 91];
        for len in 2..=90 {
            after[len][0] = cost[len][0];
            for free in 1..=7 {
                after[len][free] = (1..len)
                    .map(|c| cost[c][free] + after[len - c][free - 1])
                    .min()
                    .unwrap_or(0);
            }
        }
        for (len, row) in after.iter().enumerate().skip(1) {
            for (free, &best) in row.iter().enumerate() {
                assert_eq!(optimal_after_forward(len, free), best, "{len} {free}");
            }
        }
    }

    #[test]
    fn recomputation_is_zero_with_a_slot_per_step() {
        assert_eq!(binomial_recomputation(1000, 1000), Some(0));
        assert_eq!(binomial_recomputation(1000, 0), None);
        // One slot: the state of step n is recomputed from the initial one, n steps.
        let n = 50u128;
        assert_eq!(binomial_recomputation(50, 1), Some(n * (n - 1) / 2));
        // Two slots, three steps: keep the state of step 1 or 2; one step is recomputed.
        assert_eq!(binomial_recomputation(3, 2), Some(1));
        // Two slots and the N ≤ β(2, t) regime: about t·N.
        let r = binomial_recomputation(100_000, 1000).unwrap();
        assert!(r > 50_000 && r < 100_000, "{r}");
    }

    #[test]
    fn plan_starts_at_zero_and_fits_the_slots() {
        for (steps, slots) in [(1, 1), (10, 1), (10, 3), (100, 10), (100, 200)] {
            let p = plan(steps, slots);
            assert_eq!(p[0], 0);
            assert!(p.len() <= slots.max(1));
            assert!(p.windows(2).all(|w| w[0] < w[1]));
            assert!(p.iter().all(|&s| s < steps.max(1)));
        }
        assert_eq!(plan(100, 200), (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn online_keeps_the_newest_within_the_slots() {
        for slots in [1, 2, 3, 7, 50] {
            let mut online = Online::new(slots);
            let mut kept: Vec<usize> = Vec::new();
            for step in 0..2000 {
                let p = online.place(step);
                if let Some(d) = p.drop {
                    let at = kept
                        .iter()
                        .position(|&k| k == d)
                        .expect("drops a kept step");
                    kept.remove(at);
                }
                if p.keep {
                    kept.push(step);
                }
                assert!(kept.len() <= slots, "slots {slots}");
                assert_eq!(kept[0], 0, "the initial state stays");
                if slots >= 2 {
                    assert_eq!(kept.last(), Some(&step), "the newest is kept");
                }
            }
        }
    }
}
