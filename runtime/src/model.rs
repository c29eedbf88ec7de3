//! What the attribute generates for a model: its solver and default gradient method.

use crate::rk::RungeKutta;

/// The gradient methods; see the crate documentation for what each keeps and how it goes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GradMethod {
    /// Exact gradient of the discrete solve; memory: checkpoints + one evaluation's graph.
    Symplectic,
    /// The adaptive checkpoint adjoint (ACA, Zhuang et al. 2020): exact; memory: checkpoints +
    /// one step's graph. (Attribute `grad = "aca"`; `"checkpoint"` is accepted too.)
    Aca,
    /// The whole solve on dfdx's tape: exact; memory grows with steps × stages × graph.
    Backprop,
    /// Continuous adjoint (Chen et al. 2018): approximate, little memory.
    Adjoint,
    /// Reversible Runge–Kutta (McCallum & Foster 2024): the forward runs the reversible scheme
    /// built on the tableau (two base steps per step, on a pair of states), and the backward
    /// pass reconstructs every state from the final one: the exact gradient of that scheme in
    /// memory that does not grow with the number of steps. See
    /// [`SolveOptions::with_reversible`](crate::SolveOptions::with_reversible).
    Reversible,
}

impl GradMethod {
    /// All methods, in the order the documentation lists them.
    pub const ALL: [GradMethod; 5] = [
        GradMethod::Symplectic,
        GradMethod::Aca,
        GradMethod::Backprop,
        GradMethod::Adjoint,
        GradMethod::Reversible,
    ];

    /// The name used in the attribute (`grad = "symplectic"`).
    pub fn name(self) -> &'static str {
        match self {
            GradMethod::Symplectic => "symplectic",
            GradMethod::Aca => "aca",
            GradMethod::Backprop => "backprop",
            GradMethod::Adjoint => "adjoint",
            GradMethod::Reversible => "reversible",
        }
    }
}

impl GradMethod {
    /// The ACA method's name before it was called what it is.
    #[deprecated(note = "renamed to `GradMethod::Aca`")]
    #[allow(non_upper_case_globals)]
    pub const Checkpoint: GradMethod = GradMethod::Aca;
}

impl core::str::FromStr for GradMethod {
    type Err = String;
    /// A method's [`name`](GradMethod::name), or `checkpoint` (the old name of `aca`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "checkpoint" {
            return Ok(GradMethod::Aca);
        }
        GradMethod::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("unknown gradient method `{s}`, expected one of symplectic, aca, backprop, adjoint, reversible"))
    }
}

impl core::fmt::Display for GradMethod {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Implemented by `#[neural_ode]` for the annotated struct: which Runge–Kutta method it is
/// solved with and which gradient method it uses by default.
pub trait NeuralOde: Clone + 'static {
    /// The generated Runge–Kutta method.
    type Solver: RungeKutta;
    /// The gradient method named in the attribute (default `symplectic`).
    const GRAD: GradMethod;
}
