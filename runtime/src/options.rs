//! Options of a solve.

use crate::error::Error;
use crate::group::BatchGroup;
use crate::model::GradMethod;
use crate::store::CheckpointPolicy;

/// How steps are chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stepping {
    /// Error-controlled steps (needs a method with an embedded estimate).
    Adaptive {
        /// Relative tolerance (`≥ 0`; if positive, at least the dtype's epsilon).
        rtol: f64,
        /// Absolute tolerance (`≥ 0`; `0` is pure relative control). Not both zero.
        atol: f64,
    },
    /// Equal steps of at most this size over the whole time span, outputs between them
    /// interpolated (with [`SolveOptions::land_on_outputs`]: each output interval split into
    /// equal steps of at most this size, so that outputs are step boundaries).
    FixedSize(f64),
    /// This many equal steps over the whole time span, outputs between them interpolated (with
    /// [`SolveOptions::land_on_outputs`]: rounded up per output interval, so that outputs are
    /// step boundaries).
    FixedSteps(usize),
}

impl Stepping {
    /// The largest fixed step over a time span of length `span`; `None` for adaptive steps.
    pub fn fixed_step(&self, span: f64) -> Option<f64> {
        match *self {
            Stepping::Adaptive { .. } => None,
            Stepping::FixedSize(h) => Some(h),
            Stepping::FixedSteps(n) => Some(span.abs() / n as f64),
        }
    }
}

/// What a failed gradient pass does. The pass runs inside dfdx's `backward()`, whose error
/// type (the device's) cannot carry this crate's errors; either way the error is recorded in
/// [`Solution::report`](crate::Solution::report) and the caller's `Gradients` are not touched.
/// (A non-finite cotangent is not a failure: see
/// [`BackwardStats::non_finite_at`](crate::BackwardStats::non_finite_at).)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GradientFailure {
    /// `backward()` (and `try_backward()`) panic with the error's message, as torch raises in
    /// `backward`: a training loop cannot go on with a missing gradient unnoticed.
    #[default]
    Panic,
    /// `backward()` returns normally without this solve's contribution; check
    /// `sol.report.stats()` before using the gradients (for example to skip a batch).
    Report,
}

/// Options of a solve. Start from [`SolveOptions::adaptive`], [`SolveOptions::fixed_steps`] or
/// [`SolveOptions::fixed_size`] and adjust with the `with_*` methods. (The step-size
/// controller's own parameters belong to the controller: see [`PiController`] and
/// [`solve_with`].)
///
/// [`PiController`]: crate::PiController
/// [`solve_with`]: crate::solve_with
#[derive(Clone, Debug, PartialEq)]
pub struct SolveOptions {
    /// How steps are chosen.
    pub stepping: Stepping,
    /// Upper bound on steps taken, accepted and rejected (default 100 000). A fixed-step solve
    /// that needs more is refused before solving.
    pub max_steps: usize,
    /// Smallest step size an adaptive solve may shrink to; `0` (the default) means 16 ulps of
    /// the current time. A step that lands on an output time may be shorter (two output times
    /// closer than that are still solved exactly). Adaptive steps only.
    pub min_step: f64,
    /// First step of an adaptive solve; `None` selects it as in Hairer, Nørsett & Wanner I,
    /// §II.4. Adaptive steps only.
    pub first_step: Option<f64>,
    /// Gradient method; `None` uses the one named in the model's attribute.
    pub grad: Option<GradMethod>,
    /// Which accepted states the state store keeps for `symplectic` and `aca`.
    pub checkpoints: CheckpointPolicy,
    /// What a failed gradient pass does (default: panic inside `backward()`).
    pub on_gradient_failure: GradientFailure,
    /// Whether every output time is a step boundary (see [`SolveOptions::land_on_outputs`]).
    /// `false` (the default): steps are chosen over the whole span, only the final time is
    /// landed on, and outputs inside a step are interpolated.
    pub land_on_outputs: bool,
    /// The coupling `λ` of the reversible scheme, when the forward solve runs it (see
    /// [`SolveOptions::with_reversible`]); `None`: the tableau's own steps (`GradMethod::
    /// Reversible` then runs the reversible scheme with `λ = 0.999`).
    pub reversible: Option<f64>,
    /// The largest relative reconstruction drift the reversible method accepts (see
    /// [`SolveOptions::with_reconstruction_limit`]); `None`: `√ε` of the dtype.
    pub reconstruction_limit: Option<f64>,
    /// The processes this solve's batch is split across, whose adaptive steps are chosen
    /// together (see [`SolveOptions::with_batch_group`]); `None`: this process holds the whole
    /// batch.
    pub batch_group: Option<BatchGroup>,
    /// Whether every sample (row of the batch) takes its own adaptive steps (see
    /// [`SolveOptions::per_sample_steps`]).
    pub per_sample_steps: bool,
}

impl SolveOptions {
    /// The coupling `λ` of the reversible scheme when `GradMethod::Reversible` is asked for
    /// without [`SolveOptions::with_reversible`] (diffrax's default).
    pub const DEFAULT_COUPLING: f64 = 0.999;

    /// Adaptive steps with these tolerances.
    pub fn adaptive(rtol: f64, atol: f64) -> Self {
        Self::with_stepping(Stepping::Adaptive { rtol, atol })
    }

    /// `n` equal steps over the time span.
    pub fn fixed_steps(n: usize) -> Self {
        Self::with_stepping(Stepping::FixedSteps(n))
    }

    /// Fixed steps of at most `h`.
    pub fn fixed_size(h: f64) -> Self {
        Self::with_stepping(Stepping::FixedSize(h))
    }

    fn with_stepping(stepping: Stepping) -> Self {
        SolveOptions {
            stepping,
            max_steps: 100_000,
            min_step: 0.0,
            first_step: None,
            grad: None,
            checkpoints: CheckpointPolicy::All,
            on_gradient_failure: GradientFailure::Panic,
            land_on_outputs: false,
            reversible: None,
            reconstruction_limit: None,
            batch_group: None,
            per_sample_steps: false,
        }
    }

    /// Every output time a step boundary, as in the symplectic adjoint paper's code: adaptive
    /// steps stop at each output time, and fixed steps split each output interval into equal
    /// steps. Without it (the default) the steps are chosen over the whole span as if only the
    /// final time were asked for (which is still landed on exactly), and the outputs inside a
    /// step are the method's interpolant there (the tableau's `[dense]` section, else cubic
    /// Hermite), with exact gradients through it for `symplectic`, `checkpoint` and `backprop`.
    pub fn land_on_outputs(mut self) -> Self {
        self.land_on_outputs = true;
        self
    }

    /// Runs the reversible scheme built on the tableau (McCallum & Foster 2024) with coupling
    /// `λ ∈ (0, 1]`: the state is a pair `(y, z)`, `y₀ = z₀ = x₀`, and one step of size `h` is
    /// `y' = λ(y − z) + Ψ_h(z)`, `z' = z + y' − Ψ_{−h}(y')`, where `Ψ_h` is one step of the
    /// tableau; the outputs are `y`. The step is algebraically invertible, so
    /// [`GradMethod::Reversible`](crate::GradMethod::Reversible) rebuilds every state from the
    /// final one instead of storing it; `backprop` differentiates the same scheme on the tape.
    /// Each step costs two steps of the tableau, adaptive steps are judged by the first one's
    /// error estimate, and every output time is a step boundary. Smaller `λ` damps the
    /// scheme's spurious mode more strongly (the scheme is stable for a smaller range of steps
    /// than the tableau itself); the default of `GradMethod::Reversible` is `0.999`, as in
    /// diffrax's implementation.
    pub fn with_reversible(mut self, coupling: f64) -> Self {
        self.reversible = Some(coupling);
        self
    }

    /// The largest relative drift of the reversible method's rebuilt initial state
    /// ([`BackwardStats::reconstruction_error`](crate::BackwardStats::reconstruction_error)) that
    /// it accepts before failing with `Error::ReconstructionDrift` (default `√ε` of the dtype:
    /// half the digits). The gradient's relative error is of the order of the drift; a looser
    /// limit trades exactness for longer horizons.
    pub fn with_reconstruction_limit(mut self, limit: f64) -> Self {
        self.reconstruction_limit = Some(limit);
        self
    }

    /// Solves one part of a batch split across processes: every error norm of an adaptive solve
    /// (the forward's, its first step's, the continuous adjoint's) is summed over the group, so
    /// every part takes the steps that the solve of the whole batch would take, and a failure
    /// in any part before the first step fails every part instead of leaving the others
    /// waiting. Every process of the group must make the same solves in the same order. Fixed
    /// steps share nothing. See `neural_ode::distributed` (feature `mpi`) for a group over MPI.
    pub fn with_batch_group(mut self, group: BatchGroup) -> Self {
        self.batch_group = Some(group);
        self
    }

    /// Every sample (row of the batch: the state's first axis) takes its own adaptive steps:
    /// its own time, step size, error norm (over its own entries) and accept/reject decision,
    /// over its own span (its first to its last output time), so that a hard sample no longer
    /// shrinks every sample's steps and a sample's result does not depend on the rest of its
    /// batch. A rejected row keeps its state while the others advance; a finished row is carried
    /// along at zero step size. The rows are still evaluated together, one batched call of the
    /// field per stage. Output times may differ per row
    /// ([`solve_per_sample`](crate::solve_per_sample)); a row's outputs inside its steps are
    /// interpolated at its own `θ` (every one a step boundary with
    /// [`land_on_outputs`](Self::land_on_outputs)).
    ///
    /// The gradient methods `symplectic`, `aca` and `backprop` are exact here as elsewhere
    /// (each row's steps are those it took); the continuous adjoint integrates back with each
    /// row's own adaptive steps. The reversible scheme is not available with per-sample steps,
    /// nor is a batch group. Adaptive steps only. A field that reads `t` implements
    /// [`VectorField::eval_rows`](crate::VectorField::eval_rows).
    pub fn per_sample_steps(mut self) -> Self {
        self.per_sample_steps = true;
        self
    }

    /// The coupling of the reversible scheme this solve runs with `grad`, if it runs it.
    pub(crate) fn coupling(&self, grad: crate::GradMethod) -> Option<f64> {
        match (self.reversible, grad) {
            (Some(c), _) => Some(c),
            (None, crate::GradMethod::Reversible) => Some(Self::DEFAULT_COUPLING),
            (None, _) => None,
        }
    }

    /// Overrides the gradient method named in the attribute.
    pub fn with_grad(mut self, grad: GradMethod) -> Self {
        self.grad = Some(grad);
        self
    }

    /// Sets `max_steps`.
    pub fn with_max_steps(mut self, max_steps: usize) -> Self {
        self.max_steps = max_steps;
        self
    }

    /// Sets `min_step`.
    pub fn with_min_step(mut self, min_step: f64) -> Self {
        self.min_step = min_step;
        self
    }

    /// Sets the first step of an adaptive solve (with fixed steps, `solve` reports it as an
    /// option that does not apply).
    pub fn with_first_step(mut self, h: f64) -> Self {
        self.first_step = Some(h);
        self
    }

    /// Sets what a failed gradient pass does.
    pub fn with_gradient_failure(mut self, on_failure: GradientFailure) -> Self {
        self.on_gradient_failure = on_failure;
        self
    }

    /// Sets the checkpoint policy.
    pub fn with_checkpoints(mut self, policy: CheckpointPolicy) -> Self {
        self.checkpoints = policy;
        self
    }

    /// Checks the options for a solve in dtype `E`: [`validate`](Self::validate), and that a
    /// positive `rtol` is not below `E`'s epsilon (it could not be met: the solve would shrink
    /// its steps to rounding noise).
    pub fn validate_for<E: crate::Real>(&self) -> Result<(), Error> {
        self.validate()?;
        if let Stepping::Adaptive { rtol, .. } = self.stepping {
            let epsilon: f64 = E::epsilon().into();
            if rtol > 0.0 && rtol < epsilon {
                return Err(Error::ToleranceBelowEpsilon {
                    name: "rtol",
                    value: rtol,
                    epsilon,
                });
            }
        }
        Ok(())
    }

    /// Checks every option; called by `solve` before anything is computed.
    pub fn validate(&self) -> Result<(), Error> {
        let positive = |name: &'static str, value: f64| {
            if value.is_finite() && value > 0.0 {
                Ok(())
            } else {
                Err(Error::InvalidOption {
                    name,
                    value,
                    reason: "expected a finite number > 0",
                })
            }
        };
        match self.stepping {
            Stepping::Adaptive { rtol, atol } => {
                for (name, value) in [("rtol", rtol), ("atol", atol)] {
                    if !(value.is_finite() && value >= 0.0) {
                        return Err(Error::InvalidTolerance { name, value });
                    }
                }
                if rtol == 0.0 && atol == 0.0 {
                    return Err(Error::InvalidTolerance {
                        name: "rtol and atol",
                        value: 0.0,
                    });
                }
                if let Some(h) = self.first_step {
                    positive("first_step", h)?;
                }
            }
            Stepping::FixedSize(h) => positive("step size", h)?,
            Stepping::FixedSteps(n) => {
                if n == 0 {
                    return Err(Error::InvalidOption {
                        name: "steps",
                        value: 0.0,
                        reason: "expected at least one step",
                    });
                }
            }
        }
        // Options that only adaptive steps read.
        if !matches!(self.stepping, Stepping::Adaptive { .. }) {
            if let Some(h) = self.first_step {
                return Err(Error::InvalidOption {
                    name: "first_step",
                    value: h,
                    reason:
                        "applies to adaptive steps only; fixed steps have no first step to choose",
                });
            }
            if self.min_step != 0.0 {
                return Err(Error::InvalidOption {
                    name: "min_step",
                    value: self.min_step,
                    reason: "applies to adaptive steps only",
                });
            }
        }
        if !(self.min_step.is_finite() && self.min_step >= 0.0) {
            return Err(Error::InvalidOption {
                name: "min_step",
                value: self.min_step,
                reason: "expected a finite number >= 0",
            });
        }
        if self.max_steps == 0 {
            return Err(Error::InvalidOption {
                name: "max_steps",
                value: 0.0,
                reason: "expected at least one step",
            });
        }
        if let Some(c) = self.reversible {
            if !(c > 0.0 && c <= 1.0) {
                return Err(Error::InvalidOption {
                    name: "reversible coupling",
                    value: c,
                    reason: "expected 0 < λ <= 1",
                });
            }
        }
        if let Some(limit) = self.reconstruction_limit {
            if limit.is_nan() || limit <= 0.0 {
                return Err(Error::InvalidOption {
                    name: "reconstruction limit",
                    value: limit,
                    reason: "expected a number > 0",
                });
            }
        }
        if let CheckpointPolicy::EveryK(0) = self.checkpoints {
            return Err(Error::InvalidOption {
                name: "checkpoints",
                value: 0.0,
                reason: "EveryK needs k >= 1",
            });
        }
        Ok(())
    }
}
