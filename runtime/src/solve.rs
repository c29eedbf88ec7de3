//! `solve`: the neural ODE as one differentiable operation on the caller's dfdx tape. The
//! forward solve keeps what the gradient method asks for; the method then puts the solve on the
//! caller's tape.

use dfdx::nn::tensor_collection::TensorCollection;
use dfdx::prelude::*;

use crate::backend::Backend;
use crate::controller::{PiController, StepSizeController};
use crate::error::{Error, SolveError};
use crate::field::VectorField;
use crate::forward::{integrate, StepGrid};
use crate::grad::{self, GradientMethod, Solved, Visit};
use crate::model::NeuralOde;
use crate::options::SolveOptions;
use crate::per_sample::{SampleTimes, Samples};
use crate::real::Real;
use crate::shape::StateShape;
use crate::stats::{BackwardReport, ForwardStats};
use crate::store::Keep;

/// The result of a solve.
#[derive(Debug)]
pub struct Solution<S: StateShape, E: Real, D: Backend<E>, T> {
    /// The states at the output times, stacked along a new leading axis, on the caller's tape.
    pub ys: Tensor<S::Stacked, E, D, T>,
    /// What the forward solve did.
    pub stats: ForwardStats,
    /// The accepted steps (`t₀ … t_end`), to inspect or reproduce the grid (for example as the
    /// output times of a fixed-step solve with one step per interval).
    pub steps: StepGrid<E>,
    /// Filled in when the gradient pass runs (during the caller's `backward()`).
    pub report: BackwardReport,
    /// With per-sample steps: each row's counts and steps (`steps` above is then empty).
    pub samples: Option<Samples<E>>,
}

/// Solves `dx/dt = model(t, x)` from `x0` at `times[0]` and returns the states at every time in
/// `times` (the first is `x0`). If `x0` is on a tape, the result is on the same tape and the
/// gradient method (`opts.grad`, else the model's attribute) runs during `backward()`,
/// accumulating into the caller's `Gradients` for the model's parameters and for `x0`.
/// Adaptive steps are controlled by [`PiController::default`].
///
/// On failure the initial state (and whatever its tape recorded) is dropped; use
/// [`solve_returning_input`] to get it back.
pub fn solve<M, S, E, D, T>(
    model: &M,
    x0: Tensor<S, E, D, T>,
    times: &[E],
    opts: &SolveOptions,
) -> Result<Solution<S, E, D, T>, Error>
where
    M: NeuralOde + VectorField<S, E, D> + TensorCollection<E, D>,
    S: StateShape,
    E: Real,
    D: Backend<E>,
    T: Tape<E, D> + 'static,
{
    solve_with(model, x0, times, opts, &PiController::default())
}

/// [`solve`] with a step-size controller of the caller's choice for adaptive steps (the forward
/// solve and, for the continuous adjoint, the backward integration each use a copy).
pub fn solve_with<M, S, E, D, T, C>(
    model: &M,
    x0: Tensor<S, E, D, T>,
    times: &[E],
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
    solve_returning_input(model, x0, times, opts, controller).map_err(Error::from)
}

/// [`solve_with`] that returns the initial state on failure, tape and all
/// (`Err(SolveError { error, input })`), for callers who want to retry (with other options,
/// say) without losing what the tape had recorded before the solve.
#[allow(clippy::type_complexity)]
pub fn solve_returning_input<M, S, E, D, T, C>(
    model: &M,
    x0: Tensor<S, E, D, T>,
    times: &[E],
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
    if opts.per_sample_steps {
        let rows = x0.shape().concrete().as_ref().first().copied().unwrap_or(0);
        return match SampleTimes::shared(rows.max(1), times) {
            Ok(times) => crate::per_sample::returning_input(model, x0, &times, opts, controller),
            Err(error) => Err(SolveError { error, input: x0 }),
        };
    }
    let method = opts.grad.unwrap_or(M::GRAD);
    grad::with_method(
        method,
        Solve {
            coupling: opts.coupling(method),
            model,
            x0,
            times,
            opts,
            controller,
        },
    )
}

/// A solve waiting for its gradient method.
struct Solve<'a, M, S: Shape, E: Dtype, D: Storage<E>, T, C> {
    /// The reversible scheme's coupling, if the forward runs it.
    coupling: Option<f64>,
    model: &'a M,
    x0: Tensor<S, E, D, T>,
    times: &'a [E],
    opts: &'a SolveOptions,
    controller: &'a C,
}

impl<M, S, E, D, T, C> Visit for Solve<'_, M, S, E, D, T, C>
where
    M: NeuralOde + VectorField<S, E, D> + TensorCollection<E, D>,
    S: StateShape,
    E: Real,
    D: Backend<E>,
    T: Tape<E, D> + 'static,
    C: StepSizeController + Clone + 'static,
{
    type Out = Result<Solution<S, E, D, T>, SolveError<Tensor<S, E, D, T>>>;

    /// The forward solve keeps what `G` reads (nothing without a tape); then `G` puts the solve
    /// on the caller's tape.
    fn visit<G: GradientMethod>(self) -> Self::Out {
        let Solve {
            coupling,
            model,
            x0,
            times,
            opts,
            controller,
        } = self;
        if T::OWNS_TAPE && coupling.is_some() && !G::DIFFERENTIATES_REVERSIBLE {
            return Err(SolveError {
                error: Error::InvalidOption {
                    name: "reversible coupling",
                    value: coupling.unwrap_or(f64::NAN),
                    reason: "the reversible scheme is differentiated by `GradMethod::Reversible` \
                             or `GradMethod::Backprop`; `symplectic`, `aca` and `adjoint` run the \
                             tableau's own steps (drop `with_reversible` for them)",
                },
                input: x0,
            });
        }
        let keep = if T::OWNS_TAPE {
            G::keep(opts.checkpoints)
        } else {
            Keep::Nothing
        };
        let (x, tape) = x0.split_tape();
        let solve_base = crate::alloc::current();
        let mut forward_controller = controller.clone();
        let (record, forward_peak) = crate::alloc::measure(|| {
            integrate::<M::Solver, S, E, D, M>(
                model,
                &x,
                times,
                opts,
                &mut forward_controller,
                keep,
                coupling,
            )
        });
        let mut record = match record {
            Ok(record) => record,
            Err(error) => {
                return Err(SolveError {
                    error,
                    input: x.put_tape(tape),
                })
            }
        };
        let mut stats = record.stats;
        stats.peak_bytes = forward_peak;
        let steps = record.grid.clone();
        let report = BackwardReport::default();
        if !T::OWNS_TAPE {
            let ys = S::stack(core::mem::take(&mut record.outputs)).put_tape(tape);
            return Ok(Solution {
                ys,
                stats,
                steps,
                report,
                samples: None,
            });
        }
        let solved = Solved {
            model,
            x0: x,
            record,
            times,
            opts,
            controller: Box::new(controller.clone()),
            report: report.clone(),
            solve_base,
            forward_peak,
        };
        match G::attach::<M::Solver, M, S, E, D, T>(solved, tape) {
            Ok((ys, peak_bytes)) => Ok(Solution {
                ys,
                stats: ForwardStats {
                    peak_bytes,
                    ..stats
                },
                steps,
                report,
                samples: None,
            }),
            Err((error, input)) => Err(SolveError { error, input }),
        }
    }
}
