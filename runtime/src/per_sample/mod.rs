//! Samples on their own clocks: output times per sample ([`SampleTimes`]) and per-sample step
//! control ([`SolveOptions::per_sample_steps`]), through [`solve_per_sample`]. Each row of the
//! batch (the state's first axis) takes its own adaptive steps over its own span (or the
//! batch's shared steps) and gets its outputs at its own times, interpolated inside its steps;
//! the rows are still evaluated together. The rounds of steps are steps
//! of one batched problem ([`clock`]), which the gradient methods differentiate as they do any
//! solve: exactly, for each row's own steps.

mod adjoint;
mod clock;
mod forward;
mod interpolate;
mod times;

use std::cell::RefCell;
use std::rc::Rc;

use dfdx::nn::tensor_collection::TensorCollection;
use dfdx::prelude::*;

pub(crate) use clock::per_row;
pub use times::SampleTimes;

use crate::backend::Backend;
use crate::controller::{PiController, StepSizeController};
use crate::error::{Error, SolveError};
use crate::field::VectorField;
use crate::forward::{Grid, StepGrid};
use crate::grad::{self, GradientMethod, Solved, Visit};
use crate::model::{GradMethod, NeuralOde};
use crate::options::SolveOptions;
use crate::real::Real;
use crate::shape::StateShape;
use crate::solve::Solution;
use crate::stats::BackwardReport;
use crate::store::Keep;
use clock::{Clock, Clocked};

/// What one sample (row of the batch) did in a solve with per-sample steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SampleStats {
    /// Steps of this row accepted.
    pub accepted: usize,
    /// Steps of this row rejected.
    pub rejected: usize,
    /// Evaluations of this row's field (its first step's included); the batch is evaluated
    /// together, so each round's evaluations count for every row that stepped in it.
    pub nfe: usize,
}

/// Per-sample results of a solve with per-sample steps ([`Solution::samples`]).
#[derive(Clone, Debug)]
pub struct Samples<E> {
    /// Per row: its counts.
    pub stats: Vec<SampleStats>,
    /// Per row: its accepted steps.
    pub steps: Vec<StepGrid<E>>,
    /// Rounds of the batch: steps in which some row moved (each evaluated the whole batch).
    pub rounds: usize,
}

impl<E> Samples<E> {
    /// The largest number of accepted steps of any row.
    pub fn max_accepted(&self) -> usize {
        self.stats.iter().map(|s| s.accepted).max().unwrap_or(0)
    }

    /// The mean number of accepted steps per row.
    pub fn mean_accepted(&self) -> f64 {
        let n = self.stats.len().max(1) as f64;
        self.stats.iter().map(|s| s.accepted as f64).sum::<f64>() / n
    }
}

/// Solves every sample of the batch `x0` (its first axis) over its own output times, row `i`
/// from `x0[i]` at `times.row(i)[0]` through `times.row(i)`. Returns the states at the output
/// times stacked as [`solve`](crate::solve) does: output `k` of row `i` is row `i`'s state at
/// its `k`-th time (a padded time repeats the row's last output), interpolated inside a step
/// unless the options say [`land_on_outputs`](SolveOptions::land_on_outputs).
///
/// With [`SolveOptions::per_sample_steps`] each row takes its own adaptive steps, controlled by
/// its own copy of [`PiController::default`], and its outputs and its share of the gradients
/// are those of solving that row alone. Without, the batch takes shared steps (one controller,
/// the norm over the whole batch) from the rows' common start time to the farthest last time;
/// rows that start at different times, or run in different directions, need per-sample steps.
/// Adaptive steps only.
///
/// On a tape, the gradient method of `opts.grad` or the model's attribute runs during
/// `backward()`: `symplectic`, `aca` or `backprop` (exact), or `adjoint` (the continuous
/// adjoint, each row stepping back on its own clock whatever the forward's steps were).
pub fn solve_per_sample<M, S, E, D, T>(
    model: &M,
    x0: Tensor<S, E, D, T>,
    times: &SampleTimes<E>,
    opts: &SolveOptions,
) -> Result<Solution<S, E, D, T>, Error>
where
    M: NeuralOde + VectorField<S, E, D> + TensorCollection<E, D>,
    S: StateShape,
    E: Real,
    D: Backend<E>,
    T: Tape<E, D> + 'static,
{
    solve_per_sample_with(model, x0, times, opts, &PiController::default())
}

/// [`solve_per_sample`] with a step-size controller of the caller's choice (one copy per row).
pub fn solve_per_sample_with<M, S, E, D, T, C>(
    model: &M,
    x0: Tensor<S, E, D, T>,
    times: &SampleTimes<E>,
    opts: &SolveOptions,
    controller: &C,
) -> Result<Solution<S, E, D, T>, Error>
where
    M: NeuralOde + VectorField<S, E, D> + TensorCollection<E, D>,
    S: StateShape,
    E: Real,
    D: Backend<E>,
    T: Tape<E, D> + 'static,
    C: StepSizeController + Clone + 'static,
{
    returning_input(model, x0, times, opts, controller).map_err(Error::from)
}

/// [`solve_per_sample_with`], returning the initial state on failure.
#[allow(clippy::type_complexity)]
pub(crate) fn returning_input<M, S, E, D, T, C>(
    model: &M,
    x0: Tensor<S, E, D, T>,
    times: &SampleTimes<E>,
    opts: &SolveOptions,
    controller: &C,
) -> Result<Solution<S, E, D, T>, SolveError<Tensor<S, E, D, T>>>
where
    M: NeuralOde + VectorField<S, E, D> + TensorCollection<E, D>,
    S: StateShape,
    E: Real,
    D: Backend<E>,
    T: Tape<E, D> + 'static,
    C: StepSizeController + Clone + 'static,
{
    let method = opts.grad.unwrap_or(M::GRAD);
    if let Err(error) = check(opts, method, times, x0.shape()) {
        return Err(SolveError { error, input: x0 });
    }
    let solve = PerSample {
        model,
        x0,
        times,
        opts,
        controller,
    };
    match method {
        // The continuous adjoint steps back on each row's own clock; it keeps nothing.
        GradMethod::Adjoint => {
            let times = times.clone();
            let controller = controller.clone();
            solve.run(Keep::Nothing, move |solved, tape, clock| {
                let mut controllers: Vec<Box<dyn StepSizeController>> = (0..times.rows())
                    .map(|_| Box::new(controller.clone()) as Box<dyn StepSizeController>)
                    .collect();
                grad::on_tape(solved, tape, move |back| {
                    adjoint::reverse::<M::Solver, _, S, E, D>(
                        back,
                        &clock,
                        &times,
                        &mut controllers,
                    )
                })
            })
        }
        _ => grad::with_method(method, solve),
    }
}

/// What per-sample steps do not combine with, and whether `times` fits the batch.
fn check<E: Real, S: Shape>(
    opts: &SolveOptions,
    method: GradMethod,
    times: &SampleTimes<E>,
    shape: &S,
) -> Result<(), Error> {
    let refuse = |reason| {
        Err(Error::InvalidOption {
            name: "per_sample_steps",
            value: 1.0,
            reason,
        })
    };
    if !opts.per_sample_steps {
        // Shared steps: one clock for the batch, so one start and one direction.
        let t0 = times.row(0)[0];
        let mut dir = 0.0;
        for i in 0..times.rows() {
            let row = times.row(i);
            if row[0] != t0 {
                return refuse(
                    "the rows start at different times, and shared steps need one start time \
                     (use `SolveOptions::per_sample_steps()`)",
                );
            }
            let span: f64 = (row[row.len() - 1] - t0).into();
            if span * dir < 0.0 {
                return refuse(
                    "the rows run in different directions of time, and shared steps need one \
                     (use `SolveOptions::per_sample_steps()`)",
                );
            }
            if span != 0.0 {
                dir = span;
            }
        }
    }
    if opts.batch_group.is_some() {
        return refuse("a batch split across processes takes shared steps; drop the batch group");
    }
    if opts.reversible.is_some() || method == GradMethod::Reversible {
        return refuse(
            "output times per sample are differentiated by `symplectic`, `aca`, `backprop` or \
             `adjoint` (the reversible scheme lands on shared steps)",
        );
    }
    opts.validate_for::<E>()?;
    let dims = shape.concrete();
    let rows = dims.as_ref().first().copied();
    if rows != Some(times.rows()) {
        return Err(Error::ShapeMismatch {
            expected: format!("output times for {} rows", rows.unwrap_or(0)),
            found: format!("{} rows of output times", times.rows()),
        });
    }
    Ok(())
}

/// A per-sample solve waiting for its gradient method.
struct PerSample<'a, M, S: Shape, E: Dtype, D: Storage<E>, T, C> {
    model: &'a M,
    x0: Tensor<S, E, D, T>,
    times: &'a SampleTimes<E>,
    opts: &'a SolveOptions,
    controller: &'a C,
}

impl<M, S, E, D, T, C> Visit for PerSample<'_, M, S, E, D, T, C>
where
    M: NeuralOde + VectorField<S, E, D> + TensorCollection<E, D>,
    S: StateShape,
    E: Real,
    D: Backend<E>,
    T: Tape<E, D> + 'static,
    C: StepSizeController + Clone + 'static,
{
    type Out = Result<Solution<S, E, D, T>, SolveError<Tensor<S, E, D, T>>>;

    fn visit<G: GradientMethod>(self) -> Self::Out {
        let keep = if T::OWNS_TAPE {
            G::keep(self.opts.checkpoints)
        } else {
            Keep::Nothing
        };
        self.run(keep, |solved, tape, _| {
            G::attach::<M::Solver, _, S, E, D, T>(solved, tape)
        })
    }
}

impl<'a, M, S, E, D, T, C> PerSample<'a, M, S, E, D, T, C>
where
    M: NeuralOde + VectorField<S, E, D> + TensorCollection<E, D>,
    S: StateShape,
    E: Real,
    D: Backend<E>,
    T: Tape<E, D> + 'static,
    C: StepSizeController + Clone + 'static,
{
    /// The forward solve, keeping what `keep` says, then `attach` puts it on the caller's tape
    /// (given the row-scaled field's clock).
    #[allow(clippy::type_complexity)]
    fn run(
        self,
        keep: Keep,
        attach: impl FnOnce(
            Solved<'_, Clocked<M, S, E, D>, S, E, D>,
            T,
            Rc<RefCell<Clock<S, E, D>>>,
        ) -> grad::Attached<S, E, D, T>,
    ) -> Result<Solution<S, E, D, T>, SolveError<Tensor<S, E, D, T>>> {
        let PerSample {
            model,
            x0,
            times,
            opts,
            controller,
        } = self;
        let (x, tape) = x0.split_tape();
        let clocked = Clocked::new::<M::Solver>(model.clone(), times.rows());
        if let Err(error) = controller.validate() {
            return Err(SolveError {
                error,
                input: x.put_tape(tape),
            });
        }
        let mut controllers: Vec<Box<dyn StepSizeController>> = (0..times.rows())
            .map(|_| Box::new(controller.clone()) as Box<dyn StepSizeController>)
            .collect();
        let mut shared_controller = controller.clone();
        let solve_base = crate::alloc::current();
        let (rows, forward_peak) = crate::alloc::measure(|| {
            forward::integrate_rows::<M::Solver, _, S, E, D>(
                &clocked,
                &x,
                times,
                opts,
                (&mut controllers, &mut shared_controller),
                keep,
            )
        });
        let forward::RowRecord {
            mut record,
            samples,
            steps,
        } = match rows {
            Ok(rows) => rows,
            Err(error) => {
                return Err(SolveError {
                    error,
                    input: x.put_tape(tape),
                })
            }
        };
        let mut stats = record.stats;
        stats.peak_bytes = forward_peak;
        let samples = Samples {
            steps: steps
                .into_iter()
                .enumerate()
                .map(|(i, s)| row_grid(times.row(i), s))
                .collect(),
            stats: samples,
            rounds: record.grid.len(),
        };
        let no_steps: StepGrid<E> = Grid::new(times.row(0)[0]).into();
        let report = BackwardReport::default();
        if !T::OWNS_TAPE {
            let ys = S::stack(core::mem::take(&mut record.outputs)).put_tape(tape);
            return Ok(Solution {
                ys,
                stats,
                steps: no_steps,
                report,
                samples: Some(samples),
            });
        }
        let solved = Solved {
            model: &clocked,
            x0: x,
            record,
            times: times.row(0),
            opts,
            controller: Box::new(controller.clone()),
            report: report.clone(),
            solve_base,
            forward_peak,
        };
        let clock = Rc::clone(&clocked.clock);
        match attach(solved, tape, clock) {
            Ok((ys, peak_bytes)) => Ok(Solution {
                ys,
                stats: crate::stats::ForwardStats {
                    peak_bytes,
                    ..stats
                },
                steps: no_steps,
                report,
                samples: Some(samples),
            }),
            Err((error, input)) => Err(SolveError { error, input }),
        }
    }
}

/// Names the row an error happened in.
fn in_row(row: usize) -> impl Fn(Error) -> Error {
    move |error| Error::InSample {
        row,
        error: Box::new(error),
    }
}

/// A row's accepted steps as a step grid (ending on its last output time).
fn row_grid<E: Real>(times: &[E], steps: Vec<(E, E)>) -> StepGrid<E> {
    let mut grid = Grid::new(times[0]);
    let last = times[times.len() - 1];
    for (j, &(t, h)) in steps.iter().enumerate() {
        let end = steps.get(j + 1).map_or(last, |s| s.0);
        grid.accept(t, h, end);
    }
    grid.into()
}
