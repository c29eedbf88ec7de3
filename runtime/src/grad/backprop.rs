//! Backpropagation through the solver: the accepted steps of the forward solve are replayed on
//! the caller's tape with dfdx's own operations ([`reference`](super::reference): a plain loop
//! over the tableau's arrays), so dfdx differentiates the whole discrete solve. Exact; memory
//! grows with steps × stages × the network's graph.

use dfdx::prelude::*;

use super::{reference, Attached, GradientMethod, Model, Solved};
use crate::backend::Backend;
use crate::field::VectorField;
use crate::forward::outputs::{OutputAt, RowOutputs};
use crate::forward::scheme::reversible_step;
use crate::forward::StepGrid;
use crate::real::Real;
use crate::rk::RungeKutta;
use crate::shape::StateShape;
use crate::stats::BackwardStats;
use crate::store::{CheckpointPolicy, Keep};

/// `GradMethod::Backprop`.
pub(crate) struct Backprop;

impl GradientMethod for Backprop {
    fn keep(_: CheckpointPolicy) -> Keep {
        Keep::Grid
    }

    const DIFFERENTIATES_REVERSIBLE: bool = true;

    fn attach<R, M, S, E, D, T>(solved: Solved<'_, M, S, E, D>, tape: T) -> Attached<S, E, D, T>
    where
        R: RungeKutta,
        M: Model<S, E, D>,
        S: StateShape,
        E: Real,
        D: Backend<E>,
        T: Tape<E, D> + 'static,
    {
        let Solved {
            model,
            x0,
            record,
            report,
            solve_base,
            forward_peak,
            ..
        } = solved;
        let coupling = record.reversible.as_ref().map(|(c, _)| *c);
        // The solve is recorded on the caller's tape now: part of the forward's memory.
        let level = crate::alloc::current();
        let x0 = x0.put_tape(tape);
        let (ys, replay_peak) = crate::alloc::measure(|| {
            let coupling = coupling.map(E::from_f64_lossy);
            match &record.rows {
                Some(rows) => replay_rows::<R, M, S, E, D, T>(model, x0, &record.grid, rows),
                None => {
                    replay::<R, M, S, E, D, T>(model, x0, coupling, &record.grid, &record.out_at)
                }
            }
        });
        let peak = forward_peak
            .zip(replay_peak)
            .map(|(f, r)| f.max((level + r).saturating_sub(solve_base)));
        let n = record.grid.len();
        let per_step = if coupling.is_some() { 2 } else { 1 };
        report.set(Ok(BackwardStats {
            nfe_vjp: n * R::STAGES * per_step,
            steps: n,
            ..BackwardStats::default()
        }));
        Ok((ys, peak))
    }
}

/// The forward solve's steps and outputs again, on `x0`'s tape: the tableau's own steps, or
/// with a `coupling` the reversible scheme's (which lands on every output time).
fn replay<R, M, S, E, D, T>(
    model: &M,
    x0: Tensor<S, E, D, T>,
    coupling: Option<E>,
    grid: &StepGrid<E>,
    out_at: &[OutputAt<E>],
) -> Tensor<S::Stacked, E, D, T>
where
    R: RungeKutta,
    M: VectorField<S, E, D>,
    S: StateShape,
    E: Real,
    D: Backend<E>,
    T: Tape<E, D>,
{
    let mut outputs: Vec<Tensor<S, E, D, T>> = Vec::with_capacity(out_at.len());
    // The reversible scheme's `z₀ = x₀`, as a tensor of its own (dfdx's binary operations need
    // distinct operands).
    let mut z = coupling.map(|_| x0.with_empty_tape() * E::one());
    let mut x = x0;
    let mut step =
        |t: E, h: E, x: Tensor<S, E, D, T>| reference::step::<R, S, E, D, T, M>(model, t, h, x);
    let mut k = 0;
    let mut n = 0;
    loop {
        while out_at.get(k) == Some(&OutputAt::boundary(n)) {
            outputs.push(x.with_empty_tape());
            k += 1;
        }
        let Some((t, h)) = grid.step(n) else { break };
        // Outputs inside step n, interpolated on the tape.
        let mut thetas = Vec::new();
        while let Some(OutputAt {
            after,
            theta: Some(theta),
        }) = out_at.get(k)
        {
            if *after != n {
                break;
            }
            thetas.push(*theta);
            k += 1;
        }
        x = match (coupling, z.take()) {
            (Some(c), Some(z_n)) => {
                let end = grid.boundary(n + 1).unwrap_or(t + h);
                let (y, z_next) = reversible_step(c, (t, h, end), (x, z_n), &mut step);
                z = Some(z_next);
                y
            }
            _ if thetas.is_empty() => step(t, h, x),
            _ => {
                let (y, inside) =
                    reference::step_with_outputs::<R, S, E, D, T, M>(model, t, h, x, &thetas);
                outputs.extend(inside);
                y
            }
        };
        n += 1;
    }
    // The last output (the final time, a step boundary) carries the tape with the steps'
    // operations (and `z`'s, for the reversible scheme); interpolated outputs carry their own,
    // merged by the stack.
    outputs.pop();
    if let Some(z) = z {
        let (_, z_tape) = z.split_tape();
        let (y, y_tape) = x.split_tape();
        x = y.put_tape(y_tape.merge(z_tape));
    }
    outputs.push(x);
    S::stack_taped(outputs)
}

/// [`replay`] for a solve with per-sample steps or output times per row: output `k` of each
/// row is taken from the boundary where that row reached it, or interpolated inside the step
/// where it passed it (a blend with zero and one weights: the same values, and the cotangent
/// goes there alone).
fn replay_rows<R, M, S, E, D, T>(
    model: &M,
    x0: Tensor<S, E, D, T>,
    grid: &StepGrid<E>,
    rows: &RowOutputs<E>,
) -> Tensor<S::Stacked, E, D, T>
where
    R: RungeKutta,
    M: VectorField<S, E, D>,
    S: StateShape,
    E: Real,
    D: Backend<E>,
    T: Tape<E, D>,
{
    let n_out = rows.outputs();
    let mut outputs: Vec<Option<Tensor<S, E, D, T>>> = (0..n_out).map(|_| None).collect();
    // Output k takes `value` in the rows `members` (the rows that reach it later replace
    // their part).
    let place = |outputs: &mut Vec<Option<Tensor<S, E, D, T>>>,
                 k: usize,
                 value: Tensor<S, E, D, T>,
                 members: &[usize]| {
        outputs[k] = Some(match outputs[k].take() {
            None => value,
            Some(before) => {
                let plain = value.retaped::<NoneTape>();
                let mut member = vec![false; rows.batch];
                for &i in members {
                    member[i] = true;
                }
                let others: Vec<usize> = (0..rows.batch).filter(|&i| !member[i]).collect();
                value * rows.mask(&plain, members) + before * rows.mask(&plain, &others)
            }
        });
    };
    let mut x = x0;
    for n in 0..=grid.len() {
        for (k, members) in rows.at(n) {
            // A tensor of its own (times one, exactly): dfdx's stack needs distinct operands,
            // and padded outputs repeat a state.
            place(&mut outputs, k, x.with_empty_tape() * E::one(), members);
        }
        let Some((t, h)) = grid.step(n) else { continue };
        let inside: Vec<_> = rows.inside(n).collect();
        if inside.is_empty() {
            x = reference::step::<R, S, E, D, T, M>(model, t, h, x);
        } else {
            let thetas: Vec<Vec<E>> = inside.iter().map(|(_, th, _)| th.clone()).collect();
            let (y, values) =
                reference::step_with_row_outputs::<R, S, E, D, T, M>(model, t, h, x, &thetas);
            for ((k, _, members), value) in inside.iter().zip(values) {
                place(&mut outputs, *k, value, members);
            }
            x = y;
        }
    }
    // The steps' operations reach the outputs through tape-less handles; their tape goes with
    // the last output.
    let (_, steps_tape) = x.split_tape();
    if let Some(last) = outputs[n_out - 1].take() {
        let (last, tape) = last.split_tape();
        outputs[n_out - 1] = Some(last.put_tape(tape.merge(steps_tape)));
    }
    S::stack_taped(outputs.into_iter().flatten().collect())
}
