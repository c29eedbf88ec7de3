//! The runtime's one error type.

/// Why a solve or its gradient pass failed. Numbers are reported as `f64` whatever the solve's
/// dtype. A failed solve leaves the model and the caller's `Gradients` untouched.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The step-size controller asked for a step below the minimum step.
    #[error("step size underflow at t = {}: h = {} is below the minimum step size", Num(*t), Num(*h))]
    StepSizeUnderflow {
        /// Time reached.
        t: f64,
        /// The step size asked for.
        h: f64,
    },
    /// `max_steps` steps (accepted and rejected) were taken before the last output time.
    #[error("maximum number of steps ({max_steps}) reached at t = {}", Num(*t))]
    MaxStepsReached {
        /// Time reached.
        t: f64,
        /// The limit.
        max_steps: usize,
    },
    /// The state or the error estimate became NaN or infinite and smaller steps did not help
    /// (fixed steps: at once).
    #[error("non-finite state or error estimate at t = {} with h = {}", Num(*t), Num(*h))]
    NonFinite {
        /// Time of the step's start.
        t: f64,
        /// The step size tried last.
        h: f64,
    },
    /// The output times are not strictly increasing or strictly decreasing.
    #[error("output times are not strictly monotonic: times[{index}] = {} after {}", Num(*value), Num(*previous))]
    TimesNotMonotonic {
        /// Index of the offending time.
        index: usize,
        /// The time before it.
        previous: f64,
        /// The offending time.
        value: f64,
    },
    /// An output time is NaN or infinite.
    #[error("output time times[{index}] = {} is not finite", Num(*value))]
    NonFiniteTime {
        /// Index of the offending time.
        index: usize,
        /// Its value.
        value: f64,
    },
    /// No output times were given (the first is the initial time).
    #[error("no output times given; the first output time is the initial time")]
    EmptyTimes,
    /// A tolerance is negative or not finite, or both tolerances are zero.
    #[error("tolerance `{name}` is {}, expected a finite number >= 0 (rtol and atol not both 0)", Num(*value))]
    InvalidTolerance {
        /// `rtol` or `atol`.
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// Another option is out of range.
    #[error("option `{name}` is {}: {reason}", Num(*value))]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// The value given.
        value: f64,
        /// What it must be.
        reason: &'static str,
    },
    /// Adaptive steps were asked of a method without an embedded error estimate.
    #[error("`{solver}` has no embedded error estimate, so it cannot take adaptive steps; use fixed steps")]
    NotAdaptive {
        /// The method's name.
        solver: &'static str,
    },
    /// The vector field returned a tensor whose shape differs from the state's.
    #[error("the vector field returned shape {found} for a state of shape {expected}")]
    ShapeMismatch {
        /// The state's shape.
        expected: String,
        /// The field's output shape.
        found: String,
    },
    /// A fixed-step solve needs more steps than `max_steps` allows (known before solving).
    #[error("a fixed-step solve needs {} steps, more than max_steps = {max_steps}; raise it with `SolveOptions::with_max_steps` or take fewer steps", Count(*steps))]
    TooManySteps {
        /// Steps the solve needs (`usize::MAX`: at least that many).
        steps: usize,
        /// The limit.
        max_steps: usize,
    },
    /// The initial state has a NaN or infinite entry.
    #[error("the initial state is not finite: entry {index} (in memory order) is {}", Num(*value))]
    NonFiniteInitialState {
        /// Index of the first non-finite entry, in memory order.
        index: usize,
        /// Its value.
        value: f64,
    },
    /// A relative tolerance below the dtype's epsilon, which no step can meet.
    #[error("tolerance `{name}` = {} is below the dtype's epsilon {}: it cannot be met; use at least the epsilon (or f64)", Num(*value), Num(*epsilon))]
    ToleranceBelowEpsilon {
        /// `rtol`.
        name: &'static str,
        /// The value given.
        value: f64,
        /// The dtype's machine epsilon.
        epsilon: f64,
    },
    /// A [`CheckpointPolicy::Budget`](crate::CheckpointPolicy::Budget) too small to hold the
    /// initial state.
    #[error("a checkpoint budget of {budget} bytes holds no state: one state takes {slot_bytes} bytes with its bookkeeping, and the budget must hold at least the initial state")]
    CheckpointBudgetTooSmall {
        /// The budget given.
        budget: usize,
        /// Bytes one stored state takes in the budget
        slot_bytes: usize,
    },
    /// The device failed (for example, out of memory).
    #[error("device error: {message}")]
    Device {
        /// The device's message.
        message: String,
    },
    /// The reversible method rebuilt the initial state off by more than the limit (the dtype's
    /// `√ε`, half its digits, unless `SolveOptions::with_reconstruction_limit` says otherwise):
    /// its gradient cannot be trusted. Each step back amplifies rounding by
    /// about `1/λ`, and a dissipative flow by what it damps going forwards; take `λ` closer to
    /// 1, fewer steps, or the symplectic adjoint (with a `CheckpointPolicy::Budget` for memory).
    #[error("the reversible method's reconstruction drifted: the initial state came back off by {} (relative), more than the limit {}; its gradient is not used (take the coupling λ closer to 1, fewer steps, or `symplectic` with a checkpoint budget)", Num(*drift), Num(*limit))]
    ReconstructionDrift {
        /// [`BackwardStats::reconstruction_error`](crate::BackwardStats::reconstruction_error).
        drift: f64,
        /// The limit.
        limit: f64,
    },
    /// The solve failed in other processes of its batch group (`group::BatchGroup`; their own
    /// errors are reported there); this part stopped with them rather than wait for them.
    #[error("the solve failed in {parts} other process(es) sharing this batch; see their errors")]
    GroupFailed {
        /// How many processes failed.
        parts: usize,
    },
    /// A solve with per-sample output times or per-sample steps failed in one sample (row `row`
    /// of the batch); `error` says how (its times are that sample's).
    #[error("sample {row}: {error}")]
    InSample {
        /// The row of the batch.
        row: usize,
        /// What went wrong there.
        error: Box<Error>,
    },
    /// Per-sample steps put the rows of a batch at different times, and the vector field takes
    /// one time for the whole batch (it does not implement
    /// [`VectorField::eval_rows`](crate::VectorField::eval_rows)) yet reads it: `f(t, x₀)`
    /// differs between two of the rows' start times.
    #[error("the vector field reads the time (f(t, x0) differs between t = {} and t = {}) but takes one time for the whole batch, while per-sample steps put each row at its own time; implement `VectorField::eval_rows` (for a time column, `nn::with_row_times`)", Num(*first), Num(*second))]
    ScalarTimeField {
        /// Two of the rows' start times at which the field's values differ.
        first: f64,
        /// See `first`.
        second: f64,
    },
    /// [`BackwardReport::stats`](crate::BackwardReport::stats) was asked before the gradient
    /// pass ran.
    #[error("the gradient pass has not run: it runs inside `backward()` of a loss computed from the solution of a solve whose initial state was on a tape")]
    NoGradientPass,
    /// The runtime found itself in a state it should never be in: a bug in neural-ode, not in
    /// the caller's code or data.
    #[error("internal error in neural-ode (a bug; please report it): {message}")]
    Internal {
        /// What was inconsistent.
        message: String,
    },
}

/// A failed solve: the error and the initial state as it was passed in, tape and all, so
/// nothing the caller had recorded is lost (see
/// [`solve_returning_input`](crate::solve_returning_input)).
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

/// Drops the returned input and keeps the error.
impl<X> From<SolveError<X>> for Error {
    fn from(e: SolveError<X>) -> Error {
        e.error
    }
}

/// A number in an error message: plain when of moderate size, in exponent form (`8.192e-16`)
/// when small or large, so no message prints `0.0000000000000008192`.
pub(crate) struct Num(pub f64);

/// A step count in an error message (`usize::MAX` stands for "more than can be counted").
pub(crate) struct Count(pub usize);

impl core::fmt::Display for Count {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.0 == usize::MAX {
            write!(f, "over {:e}", usize::MAX as f64)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

impl core::fmt::Display for Num {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let a = self.0.abs();
        if a == 0.0 || !a.is_finite() || (1e-3..1e6).contains(&a) {
            write!(f, "{}", self.0)
        } else {
            write!(f, "{:e}", self.0)
        }
    }
}

impl Error {
    pub(crate) fn device(e: impl core::fmt::Debug) -> Self {
        Error::Device {
            message: format!("{e:?}"),
        }
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Error::Internal {
            message: message.into(),
        }
    }
}
