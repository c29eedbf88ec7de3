//! `solve`: the neural ODE as one differentiable operation on the caller's dfdx tape.

use std::sync::{Arc, Mutex};

use dfdx::nn::tensor_collection::TensorCollection;
use dfdx::prelude::*;

use crate::backend::Backend;
use crate::checkpoint::{CheckpointPolicy, Keep};
use crate::control::{PiController, StepSizeController};
use crate::dense::OutputAt;
use crate::error::Error;
use crate::field::VectorField;
use crate::grad::{self, generic, merge_params, Cotangents, OutputGrads};
use crate::integrate::{integrate, Forward};
use crate::model::{GradMethod, NeuralOde};
use crate::options::{GradientFailure, SolveOptions};
use crate::real::Real;
use crate::rk::RungeKutta;
use crate::shape::StateShape;
use crate::stats::{BackwardStats, ForwardStats};
use crate::steps::StepTimes;

/// The result of a solve.
#[derive(Debug)]
pub struct Solution<S: StateShape, E: Real, D: Backend<E>, T> {
    /// The states at the output times, stacked along a new leading axis, on the caller's tape.
    pub ys: Tensor<S::Stacked, E, D, T>,
    /// What the forward solve did.
    pub stats: ForwardStats,
    /// The times of every accepted step boundary (`t₀ … t_end`), to inspect or reproduce the
    /// grid (for example as the output times of a fixed-step solve with one step per interval).
    pub steps: StepTimes<E>,
    /// Filled in when the gradient pass runs (during the caller's `backward()`).
    pub report: BackwardReport,
}

/// A handle to the outcome of a solve's gradient pass.
///
/// The pass runs inside dfdx's `backward()`, which cannot carry this crate's errors, so a failed
/// pass leaves the caller's `Gradients` untouched and records its error here. Check it after
/// `backward()` when the gradient matters.
#[derive(Clone, Debug, Default)]
pub struct BackwardReport(Arc<Mutex<Option<Result<BackwardStats, Error>>>>);

impl BackwardReport {
    /// `None` until the gradient pass has run.
    pub fn get(&self) -> Option<Result<BackwardStats, Error>> {
        self.0.lock().map(|g| g.clone()).unwrap_or(None)
    }

    fn set(&self, value: Result<BackwardStats, Error>) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some(value);
        }
    }
}

/// A failed solve: the error and the initial state as it was passed in, tape and all, so
/// nothing the caller had recorded is lost.
pub struct SolveError<X> {
    /// What went wrong.
    pub error: Error,
    /// The initial state, returned untouched.
    pub input: X,
}

impl<X> core::fmt::Debug for SolveError<X> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SolveError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<X> core::fmt::Display for SolveError<X> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.error.fmt(f)
    }
}

impl<X> std::error::Error for SolveError<X> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Drops the returned input and keeps the error, so that `?` works in functions returning
/// [`Error`], `anyhow::Result` or `Result<_, Box<dyn std::error::Error + Send + Sync>>`:
/// `solve(..).map_err(Error::from)?` (a taped input is neither `Send` nor `Sync`, so
/// `SolveError` itself cannot be boxed that way). Match on `SolveError { error, input }`
/// instead to keep the input and its tape.
impl<X> From<SolveError<X>> for Error {
    fn from(e: SolveError<X>) -> Error {
        e.error
    }
}

/// What [`solve`] returns: the solution, or the error together with the untouched input.
pub type SolveResult<S, E, D, T> = Result<Solution<S, E, D, T>, SolveError<Tensor<S, E, D, T>>>;

/// Solves `dx/dt = model(t, x)` from `x0` at `times[0]` and returns the states at every time in
/// `times` (the first is `x0`). If `x0` is on a tape, the result is on the same tape and the
/// gradient method (`opts.grad`, else the model's attribute) runs during `backward()`,
/// accumulating into the caller's `Gradients` for the model's parameters and for `x0`.
pub fn solve<M, S, E, D, T>(
    model: &M,
    x0: Tensor<S, E, D, T>,
    times: &[E],
    opts: &SolveOptions,
) -> SolveResult<S, E, D, T>
where
    M: NeuralOde + VectorField<S, E, D> + TensorCollection<E, D>,
    S: StateShape,
    E: Real,
    D: Backend<E>,
    T: Tape<E, D> + 'static,
{
    let mut controller = PiController::new(opts.safety, opts.factor_min, opts.factor_max);
    solve_with(model, x0, times, opts, &mut controller)
}

/// [`solve`] with a step-size controller of the caller's choice for the forward solve.
pub fn solve_with<M, S, E, D, T>(
    model: &M,
    x0: Tensor<S, E, D, T>,
    times: &[E],
    opts: &SolveOptions,
    controller: &mut dyn StepSizeController,
) -> SolveResult<S, E, D, T>
where
    M: NeuralOde + VectorField<S, E, D> + TensorCollection<E, D>,
    S: StateShape,
    E: Real,
    D: Backend<E>,
    T: Tape<E, D> + 'static,
{
    let method = opts.grad.unwrap_or(M::GRAD);
    let keep = keeps(T::OWNS_TAPE, method, opts.checkpoints);
    let (x, tape) = x0.split_tape();
    let solve_base = crate::alloc::current();
    let (fwd, forward_peak) = crate::alloc::measure(|| {
        integrate::<M::Solver, S, E, D, M>(model, &x, times, opts, controller, keep)
    });
    let mut fwd = match fwd {
        Ok(fwd) => fwd,
        Err(error) => {
            return Err(SolveError {
                error,
                input: x.put_tape(tape),
            })
        }
    };
    let mut stats = fwd.stats;
    let steps = std::mem::take(&mut fwd.steps);
    let report = BackwardReport::default();
    if !T::OWNS_TAPE {
        stats.peak_bytes = forward_peak;
        let ys = S::stack(fwd.outputs).put_tape(tape);
        return Ok(Solution {
            ys,
            stats,
            steps,
            report,
        });
    }
    if method == GradMethod::Backprop {
        // The solve is recorded on the caller's tape now: part of the forward's memory.
        let level = crate::alloc::current();
        let (ys, replay_peak) = crate::alloc::measure(|| {
            let grid = (0..fwd.checkpoints.len())
                .map(|n| {
                    fwd.checkpoints
                        .step(n)
                        .ok_or_else(|| grad::missing("step", n))
                })
                .collect::<Result<Vec<_>, Error>>();
            match grid {
                Ok(grid) => Ok(backprop::<M::Solver, M, S, E, D, T>(
                    model,
                    x.put_tape(tape),
                    &grid,
                    &fwd.out_at,
                )),
                Err(error) => Err(SolveError {
                    error,
                    input: x.put_tape(tape),
                }),
            }
        });
        let ys = ys?;
        stats.peak_bytes = forward_peak
            .zip(replay_peak)
            .map(|(f, r)| f.max((level + r).saturating_sub(solve_base)));
        let n = fwd.checkpoints.len();
        report.set(Ok(BackwardStats {
            nfe_vjp: n * M::Solver::STAGES,
            steps: n,
            ..BackwardStats::default()
        }));
        return Ok(Solution {
            ys,
            stats,
            steps,
            report,
        });
    }
    stats.peak_bytes = forward_peak;
    // The outputs live on in `ys` alone (the backward pass reads them from there), not twice.
    let n_outputs = fwd.outputs.len();
    let ys = S::stack(core::mem::take(&mut fwd.outputs));
    let ys_key = ys.clone();
    let x0_key = x.clone();
    let model = model.clone();
    let times = times.to_vec();
    let opts = opts.clone();
    let report_in_op = report.clone();
    let on_failure = opts.on_gradient_failure;
    let mut fwd = fwd;
    let mut tape = tape;
    tape.add_backward_op(move |grads| {
        grads.try_alloc_for(&ys_key)?;
        let g = grads.get(&ys_key);
        let out: OutputGrads<S, E, D> = (0..n_outputs).map(|k| S::unstack(g.clone(), k)).collect();
        drop(g);
        let level = crate::alloc::current();
        let (result, peak_bytes) = crate::alloc::measure(|| {
            backward::<M::Solver, M, S, E, D>(
                method, &model, &mut fwd, &ys_key, &out, &opts, &times,
            )
        });
        let solve_peak_bytes = peak_bytes.map(|p| {
            (level + p)
                .saturating_sub(solve_base)
                .max(forward_peak.unwrap_or(0))
        });
        drop(fwd);
        match result {
            Ok(mut cot) => {
                // Only now, with every cotangent computed, touch the caller's gradients.
                D::accumulate(grads, &x0_key, &cot.x0)?;
                let merged = merge_params(&model, &mut cot.params, grads, None);
                report_in_op.set(merged.map(|()| BackwardStats {
                    nfe_vjp: cot.nfe_vjp,
                    nfe_rebuild: cot.nfe_rebuild,
                    steps: cot.steps,
                    rejected: cot.rejected,
                    recomputed_steps: cot.recomputed_steps,
                    non_finite_at: cot.non_finite_at,
                    peak_bytes,
                    solve_peak_bytes,
                }));
            }
            Err(e) => report_in_op.set(Err(e)),
        }
        if let (Some(Err(e)), GradientFailure::Panic) = (report_in_op.get(), on_failure) {
            panic!(
                "neural-ode: the gradient pass failed, this solve contributed no gradient: {e} \
                 (the error is also in `sol.report`; `SolveOptions::with_gradient_failure(\
                 GradientFailure::Report)` returns normally instead)"
            );
        }
        Ok(())
    });
    Ok(Solution {
        ys: ys.put_tape(tape),
        stats,
        steps,
        report,
    })
}

/// What the gradient pass of a solve reads, so the forward keeps that and nothing more.
fn keeps(taped: bool, method: GradMethod, policy: CheckpointPolicy) -> Keep {
    match method {
        _ if !taped => Keep::Nothing,
        // It integrates the state backwards from the outputs: only its first step size.
        GradMethod::Adjoint => Keep::LastStep,
        GradMethod::Backprop => Keep::Grid,
        // Only the symplectic backward pass reads stage states.
        GradMethod::Symplectic if policy == CheckpointPolicy::AllStages => Keep::Stages,
        GradMethod::Symplectic | GradMethod::Aca => Keep::States,
    }
}

fn backward<R, M, S, E, D>(
    method: GradMethod,
    model: &M,
    fwd: &mut Forward<S, E, D>,
    ys: &Tensor<S::Stacked, E, D>,
    out: &OutputGrads<S, E, D>,
    opts: &SolveOptions,
    times: &[E],
) -> Result<Cotangents<S, E, D>, Error>
where
    R: RungeKutta,
    M: VectorField<S, E, D> + TensorCollection<E, D>,
    S: StateShape,
    E: Real,
    D: Backend<E>,
{
    match method {
        GradMethod::Symplectic => grad::symplectic::backward::<R, M, S, E, D>(model, fwd, ys, out),
        // `backprop` records the solve on the caller's tape instead of registering this pass
        // (see `solve_with`); were it routed here, checkpointing gives the same gradient.
        GradMethod::Aca | GradMethod::Backprop => {
            grad::checkpoint::backward::<R, M, S, E, D>(model, fwd, out)
        }
        GradMethod::Adjoint => {
            let mut controller = PiController::new(opts.safety, opts.factor_min, opts.factor_max);
            grad::adjoint::backward::<R, M, S, E, D>(
                model,
                fwd,
                ys,
                out,
                opts,
                times,
                &mut controller,
            )
        }
    }
}

/// `backprop`: replays the accepted steps of the forward solve on the caller's tape with dfdx's
/// own operations, so dfdx differentiates the whole discrete solve.
fn backprop<R, M, S, E, D, T>(
    model: &M,
    x0: Tensor<S, E, D, T>,
    grid: &[(E, E)],
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
    let mut x = x0;
    let mut k = 0;
    let mut n = 0;
    loop {
        while out_at.get(k) == Some(&OutputAt::boundary(n)) {
            outputs.push(x.with_empty_tape());
            k += 1;
        }
        let Some(&(t, h)) = grid.get(n) else { break };
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
        x = if thetas.is_empty() {
            generic::step::<R, S, E, D, T, M>(model, t, h, x)
        } else {
            let (y, inside) =
                generic::step_with_outputs::<R, S, E, D, T, M>(model, t, h, x, &thetas);
            outputs.extend(inside);
            y
        };
        n += 1;
    }
    // The last output (the final time, a step boundary) carries the tape with the steps'
    // operations; interpolated outputs carry their own, merged by the stack.
    outputs.pop();
    outputs.push(x);
    S::stack_taped(outputs)
}
