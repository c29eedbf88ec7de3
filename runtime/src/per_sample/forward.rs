//! The forward loop of a solve with output times per sample: rounds in which every row still
//! running attempts a step of its own size from its own time (or the batch's shared step), all
//! rows evaluated together (one step of the batched problem of [`clock`](super::clock)). With
//! per-sample steps each row's step is judged by its own error norm and its own copy of the
//! step-size controller, and a rejected row stays where it was (its size in the round becomes
//! zero). A row's outputs are interpolated inside its steps ([`interpolate`](super::interpolate))
//! or landed on, and it stops at its last. A round in which some row moved is recorded like an
//! accepted step of a shared solve (step grid, state store), so the gradient methods walk the
//! rounds.

use dfdx::prelude::*;

use super::clock::{check_autonomous, eval_rows, Clock, Clocked};
use super::interpolate::{interpolate_rows, passed};
use super::{in_row, SampleStats, SampleTimes};
use crate::backend::Backend;
use crate::controller::adaptive::{first_guess, first_step, initial_step, Adaptive, Limits};
use crate::controller::{rms_norm, Attempt, ErrorNorm, StepControl, StepSizeController};
use crate::error::Error;
use crate::field::VectorField;
use crate::forward::outputs::{OutputAt, RowOutputs};
use crate::forward::{Grid, Record};
use crate::options::{SolveOptions, Stepping};
use crate::real::Real;
use crate::rk::{RungeKutta, Workspace};
use crate::shape::StateShape;
use crate::stats::ForwardStats;
use crate::store::{CheckpointPolicy, Keep, StateStore};

/// What the per-sample forward solve leaves: the record for the gradient pass, and per row its
/// counts and its accepted steps `(t, h)`.
pub(crate) struct RowRecord<S: Shape, E: Real, D: Backend<E>> {
    pub record: Record<S, E, D>,
    pub samples: Vec<SampleStats>,
    pub steps: Vec<Vec<(E, E)>>,
}

/// One row of the batch as the loop drives it.
struct Row<'c, 'a, E: Real> {
    times: &'a [E],
    /// The next output to reach.
    next: usize,
    t: E,
    control: Adaptive<'c, E>,
    attempt: Option<Attempt<E>>,
    stats: SampleStats,
}

/// Integrates each row of `x0` through its own output times with its own adaptive steps, on
/// the field `clocked` (whose clock this fills in), keeping what `keep` says.
pub(crate) fn integrate_rows<R, M, S, E, D>(
    clocked: &Clocked<M, S, E, D>,
    x0: &Tensor<S, E, D>,
    times: &SampleTimes<E>,
    opts: &SolveOptions,
    (controllers, shared_controller): (
        &mut [Box<dyn StepSizeController>],
        &mut dyn StepSizeController,
    ),
    keep: Keep,
) -> Result<RowRecord<S, E, D>, Error>
where
    R: RungeKutta,
    M: VectorField<S, E, D>,
    S: StateShape,
    E: Real,
    D: Backend<E>,
{
    let f = &clocked.model;
    let per_sample = opts.per_sample_steps;
    let land = opts.land_on_outputs;
    let batch = times.rows();
    let x0 = x0.clone().contiguous();
    let len = x0.shape().num_elements();
    let width = len.checked_div(batch).unwrap_or(0);
    let tol =
        match opts.stepping {
            Stepping::Adaptive { rtol, atol } => (rtol, atol),
            _ => return Err(Error::InvalidOption {
                name: "per_sample_steps",
                value: 0.0,
                reason:
                    "`solve_per_sample` takes adaptive steps: start from `SolveOptions::adaptive`",
            }),
        };
    let embedded = match (R::B_ERR, R::EMBEDDED_ORDER) {
        (Some(_), Some(q)) => q,
        _ => return Err(Error::NotAdaptive { solver: R::NAME }),
    };
    let mut host = x0.as_vec();
    if let Some(index) = host.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFiniteInitialState {
            index,
            value: host[index].into(),
        });
    }
    let mut store = StateStore::new(opts.checkpoints, keep);
    if store.start(&x0, None).is_none() {
        if let CheckpointPolicy::Budget(budget) = opts.checkpoints {
            return Err(Error::CheckpointBudgetTooSmall {
                budget,
                slot_bytes: StateStore::<S, E, D>::slot_bytes(&x0),
            });
        }
    }
    let n_out = times.len();
    // Outputs gathered row by row, on the host.
    let mut out_host: Vec<Vec<E>> = vec![Vec::new(); n_out];
    let mut placed = Vec::new();
    let mut stats = ForwardStats::default();
    let mut steps = vec![Vec::new(); batch];
    let starts: Vec<E> = (0..batch).map(|i| times.row(i)[0]).collect();
    let ends: Vec<E> = (0..batch).map(|i| times.row(i)[n_out - 1]).collect();
    let running = (0..batch).any(|i| starts[i] != ends[i]);
    let finish = |out_host: Vec<Vec<E>>,
                  (placed, inside, last),
                  grid: Grid<E>,
                  store,
                  stats,
                  samples,
                  steps| {
        let outputs = out_host
            .into_iter()
            .map(|v| x0.device().tensor_from_vec(v, *x0.shape()))
            .collect();
        let steps_taken = grid.len();
        RowRecord {
            record: Record {
                outputs,
                out_at: vec![OutputAt::boundary(steps_taken); n_out],
                grid: grid.into(),
                store,
                reversible: None,
                rows: Some(RowOutputs::new(batch, placed, inside)),
                end: Some(last),
                stats,
            },
            samples,
            steps,
        }
    };
    if len == 0 || !running {
        for (k, out) in out_host.iter_mut().enumerate() {
            *out = host.clone();
            placed.extend((0..batch).map(|i| (0, k, i)));
        }
        return Ok(finish(
            out_host,
            (placed, Vec::new(), x0.clone()),
            Grid::new(E::zero()),
            store,
            stats,
            vec![SampleStats::default(); batch],
            steps,
        ));
    }

    // The field takes row times, or one time and must not read it.
    let f0 = match f.eval_rows(&starts, x0.clone()) {
        Ok(f0) => f0,
        Err(x) => {
            // (With shared steps every row is at the same time.)
            if per_sample {
                let lo = starts.iter().chain(&ends).copied().fold(starts[0], E::min);
                let hi = starts.iter().chain(&ends).copied().fold(starts[0], E::max);
                check_autonomous(f, &x0, (lo, hi))?;
                stats.nfe += 2;
            }
            clocked.clock.borrow_mut().set_scalar_time(true);
            f.eval(starts[0], x)
        }
    }
    .contiguous();
    if f0.shape().concrete() != x0.shape().concrete() {
        return Err(Error::ShapeMismatch {
            expected: format!("{:?}", x0.shape().concrete()),
            found: format!("{:?}", f0.shape().concrete()),
        });
    }
    stats.nfe += 1;
    let h0 = if per_sample {
        first_steps(
            f,
            &x0,
            &f0,
            (&starts, &ends),
            tol,
            R::ORDER.min(embedded),
            opts,
        )
    } else {
        vec![0.0; batch]
    };
    if opts.first_step.is_none() {
        stats.nfe += 1;
    }
    let limits = Limits {
        max_steps: opts.max_steps,
        min_step: opts.min_step,
    };
    // Shared steps: one controller for the batch, judged by the norm over all its entries, from
    // the common start to the farthest last time (landing on every row's times, or on that one).
    let mut shared = (!per_sample).then(|| {
        let t0 = starts[0];
        let far = ends.iter().copied().fold(t0, |a, b| {
            if (b - t0).abs() > (a - t0).abs() {
                b
            } else {
                a
            }
        });
        let span: f64 = (far - t0).into();
        let dir = if span < 0.0 { -1.0 } else { 1.0 };
        let mut targets: Vec<E> = if land {
            (0..batch)
                .flat_map(|i| times.row(i)[1..].iter().copied())
                .filter(|&t| t != t0)
                .collect()
        } else {
            vec![far]
        };
        targets.sort_by(|a, b| {
            let (a, b): (f64, f64) = ((*a).into(), (*b).into());
            (a * dir).total_cmp(&(b * dir))
        });
        targets.dedup();
        let h0 = match opts.first_step {
            Some(h) => h.min(span.abs()),
            None => {
                let norm = ErrorNorm::new(tol, None);
                initial_step(f, t0, &x0, &f0, R::ORDER.min(embedded), &norm, span)
            }
        };
        let control = Adaptive::new(shared_controller, limits, dir, embedded + 1, h0, None);
        (control, targets, 0usize, t0)
    });
    let mut rows: Vec<Row<'_, '_, E>> = controllers
        .iter_mut()
        .enumerate()
        .map(|(i, c)| {
            let span: f64 = (ends[i] - starts[i]).into();
            let dir = if span < 0.0 { -1.0 } else { 1.0 };
            Row {
                times: times.row(i),
                next: 1,
                t: starts[i],
                control: Adaptive::new(c.as_mut(), limits, dir, embedded + 1, h0[i], None),
                attempt: None,
                stats: SampleStats {
                    // A row with nothing to integrate needs no evaluation.
                    nfe: if span == 0.0 {
                        0
                    } else {
                        1 + usize::from(opts.first_step.is_none())
                    },
                    ..SampleStats::default()
                },
            }
        })
        .collect();
    for out in &mut out_host[..1] {
        *out = host.clone();
    }
    placed.extend((0..batch).map(|i| (0, 0, i)));
    for out in &mut out_host[1..] {
        out.resize(len, E::zero());
    }

    let max_rounds = clocked.clock.borrow().max_rounds();
    let mut grid = Grid::new(Clock::<S, E, D>::start(0));
    let mut ws: Workspace<S, E, D> = Workspace::new();
    ws.keep_stages(keep == Keep::Stages);
    ws.record_derivatives(!land && n_out > 2);
    let mut inside = Vec::new();
    let mut x = x0.clone();
    // The unscaled `f(tᵢ, xᵢ)` of every row, for FSAL methods.
    let mut u = R::FSAL.then(|| f0.clone());
    let (mut t_round, mut h_round) = (vec![E::zero(); batch], vec![E::zero(); batch]);
    loop {
        // Each running row's next attempt; a row on an output time records it first.
        let n = grid.len();
        let mut any = false;
        for (i, row) in rows.iter_mut().enumerate() {
            row.attempt = None;
            // Outputs at the row's time lie at this boundary.
            while row.next < n_out && row.times[row.next] == row.t {
                out_host[row.next][i * width..(i + 1) * width]
                    .copy_from_slice(&host[i * width..(i + 1) * width]);
                placed.push((n, row.next, i));
                row.next += 1;
            }
            if shared.is_some() {
                continue;
            }
            if row.next < n_out {
                // Steps land on every output time, or on the last (the rest interpolated).
                let target = row.times[if land { row.next } else { n_out - 1 }];
                match row.control.attempt(row.t, target).map_err(in_row(i))? {
                    Some(a) => row.attempt = Some(a),
                    None => {
                        return Err(Error::internal(
                            "a row reached its target before its output times",
                        ))
                    }
                }
            }
            t_round[i] = row.t;
            h_round[i] = row.attempt.map_or(E::zero(), |a| a.h);
            any |= row.attempt.is_some();
        }
        if let Some((control, targets, next, t)) = shared.as_mut() {
            let mut attempt = None;
            while let Some(&target) = targets.get(*next) {
                match control.attempt(*t, target)? {
                    Some(a) => {
                        attempt = Some(a);
                        break;
                    }
                    None => *next += 1,
                }
            }
            for (i, row) in rows.iter_mut().enumerate() {
                row.attempt = attempt;
                t_round[i] = row.t;
                h_round[i] = attempt.map_or(E::zero(), |a| a.h);
            }
            any = attempt.is_some();
        }
        if !any {
            break;
        }
        if n >= max_rounds {
            return Err(Error::InvalidOption {
                name: "per_sample_steps",
                value: n as f64,
                reason: "more rounds of steps than this dtype resolves with per-sample steps \
                         (their pseudo-times lose the stage nodes); use f64, or fewer steps",
            });
        }
        let step = {
            let mut clock = clocked.clock.borrow_mut();
            clock.set_round(n, &t_round, &h_round);
            clock.stash_ends(R::FSAL);
            // `g(2n, x) = h ⊙ f(t, x)` from the kept `f(t, x)`, with the scale the field uses.
            let k1 = u.as_ref().map(|u| u.clone() * clock.scale(n, &x));
            drop(clock);
            R::step(
                clocked,
                Clock::<S, E, D>::start(n),
                E::one(),
                &x,
                k1,
                &mut ws,
            )
        };
        let ks = ws.take_derivatives();
        let stash = clocked.clock.borrow_mut().take_stash();
        clocked.clock.borrow_mut().stash_ends(false);
        stats.nfe += step.evals;
        let y_host = step.y.as_vec();
        let err_host = step.err.as_ref().map(|e| e.as_vec());
        let mut held = Vec::new();
        let mut moved = false;
        // Rows that moved with outputs inside their step: (row, t, h, first output, end).
        let mut passing = Vec::new();
        // With shared steps, one decision for the batch.
        let verdict = match (shared.as_mut(), rows.first().and_then(|r| r.attempt)) {
            (Some((control, _, _, t)), Some(attempt)) => {
                let norm = match &err_host {
                    Some(err) => rms_norm(err, &host, &y_host, tol, None),
                    None => 0.0,
                };
                let accept = control.decide(*t, norm, &attempt);
                if accept {
                    *t = attempt.end;
                }
                Some(accept)
            }
            _ => None,
        };
        for (i, row) in rows.iter_mut().enumerate() {
            let Some(attempt) = row.attempt else { continue };
            row.stats.nfe += step.evals;
            let r = i * width..(i + 1) * width;
            let accept = verdict.unwrap_or_else(|| {
                let norm = match &err_host {
                    Some(err) => rms_norm(
                        &err[r.clone()],
                        &host[r.clone()],
                        &y_host[r.clone()],
                        tol,
                        None,
                    ),
                    None => 0.0,
                };
                row.control.decide(row.t, norm, &attempt)
            });
            if accept {
                steps[i].push((row.t, attempt.h));
                let first = row.next;
                while row.next < n_out && passed(row.times[row.next], attempt.end, attempt.h) {
                    row.next += 1;
                }
                if row.next > first {
                    passing.push((i, row.t, attempt.h, first..row.next));
                }
                row.t = attempt.end;
                row.stats.accepted += 1;
                moved = true;
            } else {
                row.stats.rejected += 1;
                held.push(i);
            }
        }
        if !moved {
            ws.discard_kept();
            stats.rejected += 1;
            continue;
        }
        // Held rows do not move in this round (their size in it is zero).
        {
            let mut clock = clocked.clock.borrow_mut();
            for &i in &held {
                clock.hold(n, i);
            }
        }
        if !passing.is_empty() {
            interpolate_rows::<R, _, S, E, D>(
                clocked,
                (n, &x, &host, &y_host, &held),
                ks,
                &passing,
                times,
                (&mut out_host, &mut inside),
                &mut stats,
            );
        }
        let mut kept = ws.take_kept();
        let x_next = if held.is_empty() {
            host = y_host;
            step.y
        } else {
            // Held rows keep their state (and, for the stage store, stage states equal to it,
            // as a step of size zero builds them).
            let mut next = y_host;
            for &i in &held {
                let r = i * width..(i + 1) * width;
                next[r.clone()].copy_from_slice(&host[r]);
            }
            for stage in &mut kept {
                let mut v = stage.as_vec();
                for &i in &held {
                    let r = i * width..(i + 1) * width;
                    v[r.clone()].copy_from_slice(&host[r]);
                }
                *stage = x.device().tensor_from_vec(v, *x.shape());
            }
            host = next.clone();
            x.device().tensor_from_vec(next, *x.shape())
        };
        if let (Some(u), Some(end)) = (u.as_mut(), stash) {
            *u = if held.is_empty() {
                end
            } else {
                let mut v = end.as_vec();
                let old = u.as_vec();
                for &i in &held {
                    let r = i * width..(i + 1) * width;
                    v[r.clone()].copy_from_slice(&old[r]);
                }
                x.device().tensor_from_vec(v, *x.shape())
            };
        }
        store.push(&x, kept);
        let t = Clock::<S, E, D>::start(n);
        grid.accept(t, E::one(), t + E::one());
        stats.accepted += 1;
        x = x_next;
    }
    let samples = rows.iter().map(|row| row.stats).collect();
    stats.checkpoint_bytes = store.bytes() + grid.bytes() + clocked.clock.borrow().bytes();
    Ok(finish(
        out_host,
        (placed, inside, x),
        grid,
        store,
        stats,
        samples,
        steps,
    ))
}

/// Each row's first step: Hairer, Nørsett & Wanner I, §II.4 on the row's own entries (the
/// formulas of `initial_step`, which takes one for the whole batch), or `opts.first_step` for every row. Costs one
/// evaluation of the batch (none with a given first step).
fn first_steps<M, S, E, D>(
    f: &M,
    x0: &Tensor<S, E, D>,
    f0: &Tensor<S, E, D>,
    (starts, ends): (&[E], &[E]),
    tol: (f64, f64),
    order: u32,
    opts: &SolveOptions,
) -> Vec<f64>
where
    M: VectorField<S, E, D>,
    S: StateShape,
    E: Real,
    D: Backend<E>,
{
    let batch = starts.len();
    let spans: Vec<f64> = (0..batch).map(|i| (ends[i] - starts[i]).into()).collect();
    if let Some(h) = opts.first_step {
        return spans.iter().map(|s| h.min(s.abs())).collect();
    }
    let x = x0.as_vec();
    let k = f0.as_vec();
    let width = x.len() / batch;
    let row = |v: &[E], i: usize| v[i * width..(i + 1) * width].to_vec();
    let mut h0 = vec![0.0; batch];
    let mut d1s = vec![0.0; batch];
    let mut x1 = x.clone();
    for i in 0..batch {
        let (xi, ki) = (row(&x, i), row(&k, i));
        let d0 = rms_norm(&xi, &xi, &xi, tol, None);
        let d1 = rms_norm(&ki, &xi, &xi, tol, None);
        h0[i] = first_guess(d0, d1, spans[i]);
        d1s[i] = d1;
        let c = E::from_f64_lossy(h0[i] * spans[i].signum());
        for j in i * width..(i + 1) * width {
            x1[j] = x[j] + c * k[j];
        }
    }
    let t1: Vec<E> = (0..batch)
        .map(|i| starts[i] + E::from_f64_lossy(h0[i] * spans[i].signum()))
        .collect();
    let x1 = x0.device().tensor_from_vec(x1, *x0.shape());
    let k1 = eval_rows(f, &t1, x1).as_vec();
    (0..batch)
        .map(|i| {
            let inv = E::from_f64_lossy(1.0 / h0[i]);
            let diff: Vec<E> = (i * width..(i + 1) * width)
                .map(|j| (k1[j] - k[j]) * inv)
                .collect();
            let xi = row(&x, i);
            let d2 = rms_norm(&diff, &xi, &xi, tol, None);
            first_step(h0[i], (d1s[i], d2), order, spans[i])
        })
        .collect()
}
