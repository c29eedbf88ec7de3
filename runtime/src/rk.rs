//! The interface between generated Runge–Kutta code and the runtime.

use dfdx::prelude::*;

use crate::backend::Backend;
use crate::field::VectorField;
use crate::real::Real;
use crate::shape::StateShape;

/// One forward step, as returned by [`RungeKutta::step`].
#[derive(Debug)]
pub struct Step<S: Shape, E: Real, D: Device<E>> {
    /// The state after the step.
    pub y: Tensor<S, E, D>,
    /// The embedded error estimate `h Σ (b_i − b̂_i) k_i` (adaptive methods only).
    pub err: Option<Tensor<S, E, D>>,
    /// `f(t, x)`: the same for every retry of a rejected step, so it is handed back for reuse.
    pub k1: Tensor<S, E, D>,
    /// `f(t + h, y)` for FSAL methods: the next step's `k1` if this step is accepted.
    pub k_last: Option<Tensor<S, E, D>>,
    /// Vector-field evaluations this step made.
    pub evals: usize,
}

/// The result of one backward step of the symplectic partner.
#[derive(Debug)]
pub struct AdjointStep<S: Shape, E: Real, D: Device<E>> {
    /// The cotangent of the step's input state.
    pub x_bar: Tensor<S, E, D>,
    /// Vector-field evaluations made to rebuild the stage states (vector–Jacobian products are
    /// counted by the caller's closure).
    pub evals: usize,
}

/// An explicit Runge–Kutta method, implemented by code that `#[neural_ode]` generates from a
/// tableau file. The constants mirror the tableau; `step` and `adjoint_step` are straight-line
/// code with the coefficients inlined.
pub trait RungeKutta: 'static {
    /// Short name (`dopri5`).
    const NAME: &'static str;
    /// Human title.
    const TITLE: &'static str;
    /// Where the coefficients come from.
    const REFERENCE: &'static str;
    /// Number of stages `s`.
    const STAGES: usize;
    /// Order of the propagated solution.
    const ORDER: u32;
    /// Order of the embedded solution, for adaptive methods.
    const EMBEDDED_ORDER: Option<u32>;
    /// First same as last: the last stage is evaluated at the step's result.
    const FSAL: bool;
    /// Nodes `c` (rounded to `f64`).
    const C: &'static [f64];
    /// Rows of the strictly lower triangular `A` (row `i` has `i` entries).
    const A: &'static [&'static [f64]];
    /// Weights `b`.
    const B: &'static [f64];
    /// Error weights `b − b̂` (computed exactly, then rounded), for adaptive methods.
    const B_ERR: Option<&'static [f64]>;
    /// The 0-based stages whose states `step` records when the workspace keeps stages (the live
    /// stages but the first, whose state is the step's input), in order.
    const KEPT_STAGES: &'static [usize] = &[];
    /// Stages the interpolant runs over: [`STAGES`](Self::STAGES), or one more where a method
    /// that is not FSAL interpolates with `f(t + h, y)` too (the cubic Hermite fallback, or a
    /// `[dense]` section with an extra row; the extra stage has row `b` and node 1, and is the
    /// next step's first evaluation).
    const INTERPOLANT_STAGES: usize;
    /// The interpolant between step boundaries, `y(t + θh) = x + h Σᵢ bᵢ(θ) kᵢ` over
    /// [`INTERPOLANT_STAGES`](Self::INTERPOLANT_STAGES) stages: row `i` holds the coefficients of `θ, θ², …`.
    /// It is the continuous extension of the tableau's `[dense]` section when it has one
    /// (validated exactly at compile time: `bᵢ(1) = bᵢ` and the order conditions of
    /// [`INTERPOLANT_ORDER`](Self::INTERPOLANT_ORDER)), else the cubic Hermite interpolant
    /// through the step's endpoints and their derivatives.
    const INTERPOLANT: &'static [&'static [f64]];
    /// Order of [`INTERPOLANT`](Self::INTERPOLANT): the `[dense]` section's, else `min(3, ORDER)`.
    const INTERPOLANT_ORDER: u32;
    /// Whether [`INTERPOLANT`](Self::INTERPOLANT) is the cubic Hermite fallback.
    const HERMITE: bool;

    /// Writes `bᵢ(θ)` for each of the [`INTERPOLANT_STAGES`](Self::INTERPOLANT_STAGES) stages into `w`
    /// (straight-line code with the coefficients inlined).
    fn interpolant_weights<E: Real>(theta: E, w: &mut [E]);

    /// The interpolant at `θ ∈ [0, 1]` inside the step `(x, h)` whose stage derivatives are `ks`
    /// ([`INTERPOLANT_STAGES`](Self::INTERPOLANT_STAGES) of them, in order): `x + h Σᵢ bᵢ(θ) kᵢ`.
    fn interpolate<S, E, D>(
        h: E,
        x: &Tensor<S, E, D>,
        ks: &[Tensor<S, E, D>],
        theta: E,
    ) -> Tensor<S, E, D>
    where
        S: StateShape,
        E: Real,
        D: Backend<E>;

    /// One step from `(t, x)` of size `h`. `k1`, if given, must be `f(t, x)`. Stage states and
    /// the error estimate are written into `ws`; only the result is a fresh buffer.
    fn step<S, E, D, F>(
        f: &F,
        t: E,
        h: E,
        x: &Tensor<S, E, D>,
        k1: Option<Tensor<S, E, D>>,
        ws: &mut Workspace<S, E, D>,
    ) -> Step<S, E, D>
    where
        S: StateShape,
        E: Real,
        D: Backend<E>,
        F: VectorField<S, E, D> + ?Sized;

    /// Reverse-mode derivative of one step (the symplectic partner): given the cotangent
    /// `y_bar` of the step's result, sweeps the stages that can influence it in reverse with one
    /// vector–Jacobian product each, `vjp(t_i, X_i, κ_i) = J_f(t_i, X_i)ᵀ κ_i` (the closure also
    /// accumulates the parameter cotangent), and returns the cotangent of `x`. Stage states are
    /// rebuilt from `x` (vector-field evaluations counted in the result), or taken from
    /// `input.stored` when the solve kept them. Rebuilt stage states and stage cotangents live
    /// in `ws`.
    ///
    /// With `input.outputs` (a step with outputs interpolated inside it), `outputs[i]` is added to
    /// stage `i`'s cotangent, times `h`, before the sweep; stages that only the interpolant reads
    /// (the FSAL stage, the interpolant's extra stage `f(t + h, y)`) are then live too, one
    /// product per live stage still. The interpolant's direct dependence on `x` (`Σⱼ ōⱼ`) is
    /// left to the caller. Where the stored states do not cover every stage live with outputs
    /// (a `[dense]` section reading a stage the step itself does not need, on a method that is
    /// not FSAL: no shipped tableau), such a step rebuilds them.
    fn adjoint_step<S, E, D, F, V, Er>(
        f: &F,
        input: AdjointInput<'_, S, E, D>,
        vjp: &mut V,
        ws: &mut Workspace<S, E, D>,
    ) -> Result<AdjointStep<S, E, D>, Er>
    where
        S: StateShape,
        E: Real,
        D: Backend<E>,
        F: VectorField<S, E, D> + ?Sized,
        V: FnMut(E, Tensor<S, E, D>, Tensor<S, E, D>) -> Result<Tensor<S, E, D>, Er>;
}

/// The stage states of one step as the forward solve recorded them (the stage store).
pub struct StoredStages<'a, S: Shape, E: Real, D: Device<E>> {
    /// The states of [`RungeKutta::KEPT_STAGES`], in that order, as `step` recorded them.
    pub stages: &'a [Tensor<S, E, D>],
    /// The step's result `y`: the state of the stage only the interpolant reads (the FSAL
    /// stage, or the interpolant's extra stage `f(t + h, y)`).
    pub y: &'a Tensor<S, E, D>,
}

/// What one backward step ([`RungeKutta::adjoint_step`]) reads.
pub struct AdjointInput<'a, S: Shape, E: Real, D: Device<E>> {
    /// The step's start time.
    pub t: E,
    /// The step's size.
    pub h: E,
    /// The step's input state.
    pub x: &'a Tensor<S, E, D>,
    /// The cotangent of the step's result.
    pub y_bar: &'a Tensor<S, E, D>,
    /// The recorded stage states, when the solve kept them: no stage is rebuilt.
    pub stored: Option<StoredStages<'a, S, E, D>>,
    /// For a step with outputs interpolated inside it: `Σⱼ bᵢ(θⱼ) ōⱼ` per interpolant stage
    /// ([`RungeKutta::INTERPOLANT_STAGES`] entries; entries of stages whose `bᵢ(θ)` is
    /// identically zero are not read).
    pub outputs: Option<&'a [Tensor<S, E, D>]>,
}

// By hand: a derive would ask `S`, `E` and `D` to be `Clone`/`Copy`, and these only hold
// references and scalars.
impl<S: Shape, E: Real, D: Device<E>> Clone for StoredStages<'_, S, E, D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S: Shape, E: Real, D: Device<E>> Copy for StoredStages<'_, S, E, D> {}

impl<S: Shape, E: Real, D: Device<E>> Clone for AdjointInput<'_, S, E, D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S: Shape, E: Real, D: Device<E>> Copy for AdjointInput<'_, S, E, D> {}

/// Evaluates the field and makes sure the result is laid out contiguously (a field may return a
/// broadcast view; the in-place stage arithmetic needs plain buffers). Free when it already is.
pub fn eval<S, E, D, F>(f: &F, t: E, x: Tensor<S, E, D>) -> Tensor<S, E, D>
where
    S: Shape,
    E: Real,
    D: Device<E>,
    F: VectorField<S, E, D> + ?Sized,
{
    f.eval(t, x).contiguous()
}

/// State-sized buffers that generated steps write stage states, error estimates and cotangents
/// into, allocated on first use and reused for the rest of the solve. Each call returns a handle
/// to the slot's buffer (a cheap reference-counted clone); once the caller has dropped it, the
/// next write to the slot happens in place. A buffer something else still holds on to is copied
/// first (copy-on-write), so reuse can never change a value the caller can see.
///
/// When asked to keep stages ([`Workspace::keep_stages`]), the stage states a step builds with
/// [`Workspace::stage_kept`] / [`Workspace::kept`] go into fresh buffers that the workspace
/// records for [`Workspace::take_kept`] (the stage store of `CheckpointPolicy::AllStages`).
#[derive(Debug)]
pub struct Workspace<S: Shape, E: Real, D: Device<E>> {
    slots: Vec<Option<Tensor<S, E, D>>>,
    keep: bool,
    kept: Vec<Tensor<S, E, D>>,
    record: bool,
    derivatives: Vec<Tensor<S, E, D>>,
}

impl<S: Shape, E: Real, D: Device<E>> Default for Workspace<S, E, D> {
    fn default() -> Self {
        Workspace {
            slots: Vec::new(),
            keep: false,
            kept: Vec::new(),
            record: false,
            derivatives: Vec::new(),
        }
    }
}

impl<S: Shape, E: Real, D: Device<E>> Workspace<S, E, D> {
    /// An empty workspace.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether steps record the states of [`RungeKutta::KEPT_STAGES`].
    pub fn keep_stages(&mut self, keep: bool) {
        self.keep = keep;
        self.kept.clear();
    }

    /// The stage states recorded since the last call (empty unless keeping stages).
    pub fn take_kept(&mut self) -> Vec<Tensor<S, E, D>> {
        core::mem::take(&mut self.kept)
    }

    /// Whether steps record their stage derivatives `k₁ … k_s` (for [`Workspace::take_derivatives`]:
    /// the interpolant of a step with outputs inside it).
    pub fn record_derivatives(&mut self, record: bool) {
        self.record = record;
        self.derivatives.clear();
    }

    /// Records `k` as the next stage derivative (when recording) and returns it: a handle, not a
    /// copy.
    pub fn derivative(&mut self, k: Tensor<S, E, D>) -> Tensor<S, E, D> {
        if self.record {
            self.derivatives.push(k.clone());
        }
        k
    }

    /// The stage derivatives recorded since the last call, in stage order.
    pub fn take_derivatives(&mut self) -> Vec<Tensor<S, E, D>> {
        core::mem::take(&mut self.derivatives)
    }

    /// Forgets the recorded stage states (of a rejected step).
    pub fn discard_kept(&mut self) {
        self.kept.clear();
    }

    /// `base + Σ c_j t_j` for a stage the backward step needs: in slot `i` normally, in a fresh
    /// buffer that is also recorded when keeping stages.
    pub fn stage_kept(
        &mut self,
        i: usize,
        base: &Tensor<S, E, D>,
        terms: &[(E, &Tensor<S, E, D>)],
    ) -> Tensor<S, E, D> {
        if self.keep {
            self.kept(stage(base, terms))
        } else {
            self.stage(i, base, terms)
        }
    }

    /// Records `x` as the next kept stage state (when keeping stages) and returns it.
    pub fn kept(&mut self, x: Tensor<S, E, D>) -> Tensor<S, E, D> {
        if self.keep {
            self.kept.push(x.clone());
        }
        x
    }

    fn slot(&mut self, i: usize, like: &Tensor<S, E, D>) -> &mut Tensor<S, E, D> {
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || None);
        }
        let slot = &mut self.slots[i];
        if slot
            .as_ref()
            .is_some_and(|t| t.shape().concrete() != like.shape().concrete())
        {
            *slot = None;
        }
        slot.get_or_insert_with(|| like.device().zeros_like(like.shape()))
    }

    /// `base + Σ c_j t_j` written into slot `i`.
    pub fn stage<'a, T: Term<'a, S, E, D>>(
        &mut self,
        i: usize,
        base: &'a Tensor<S, E, D>,
        terms: &[T],
    ) -> Tensor<S, E, D> {
        self.fill(
            i,
            base,
            core::iter::once((E::one(), base)).chain(present(terms)),
        )
    }

    /// `Σ c_j t_j` over the terms present, written into slot `i` (a buffer shaped like `like`).
    pub fn combine<'a, T: Term<'a, S, E, D>>(
        &mut self,
        i: usize,
        like: &Tensor<S, E, D>,
        terms: &[T],
    ) -> Tensor<S, E, D> {
        self.fill(i, like, present(terms))
    }

    fn fill<'a>(
        &mut self,
        i: usize,
        like: &Tensor<S, E, D>,
        terms: impl Iterator<Item = (E, &'a Tensor<S, E, D>)>,
    ) -> Tensor<S, E, D>
    where
        S: 'a,
        D: 'a,
    {
        let out = self.slot(i, like);
        // Zeroed first rather than scaled by 0: a stale non-finite value from a rejected step
        // would turn `0 · ∞` into NaN.
        out.fill_with_zeros();
        for (c, t) in terms {
            out.axpy(1.0, t, c);
        }
        out.clone()
    }
}

/// A term `c · t` of the stage arithmetic: `(c, &t)`, or `(c, Option<&t>)` for one that exists
/// only sometimes (the backward step's terms from outputs inside a step), absent when `None`.
pub trait Term<'a, S: Shape, E: Real, D: Device<E>>: Copy {
    /// The term, if present.
    fn term(self) -> Option<(E, &'a Tensor<S, E, D>)>;
}

impl<'a, S: Shape, E: Real, D: Device<E>> Term<'a, S, E, D> for (E, &'a Tensor<S, E, D>) {
    fn term(self) -> Option<(E, &'a Tensor<S, E, D>)> {
        Some(self)
    }
}

impl<'a, S: Shape, E: Real, D: Device<E>> Term<'a, S, E, D> for (E, Option<&'a Tensor<S, E, D>>) {
    fn term(self) -> Option<(E, &'a Tensor<S, E, D>)> {
        self.1.map(|t| (self.0, t))
    }
}

/// The terms present, in order.
fn present<'a, 'b, S: Shape, E: Real, D: Device<E>, T: Term<'a, S, E, D>>(
    terms: &'b [T],
) -> impl Iterator<Item = (E, &'a Tensor<S, E, D>)> + 'b
where
    'a: 'b,
{
    terms.iter().filter_map(|t| t.term())
}

/// `base + Σ c_j t_j` over the terms present, in one fresh buffer (used by generated code for
/// step results and a step's input cotangent).
pub fn stage<'a, S: Shape + 'a, E: Real, D: Device<E> + 'a, T: Term<'a, S, E, D>>(
    base: &Tensor<S, E, D>,
    terms: &[T],
) -> Tensor<S, E, D> {
    let mut out = base.clone();
    for (c, t) in present(terms) {
        out.axpy(1.0, t, c);
    }
    out
}

/// `c0 t0 + Σ c_j t_j`, in one fresh buffer (used by generated code for error estimates and
/// stage cotangents).
pub fn combine<S: Shape, E: Real, D: Device<E>>(
    first: (E, &Tensor<S, E, D>),
    rest: &[(E, &Tensor<S, E, D>)],
) -> Tensor<S, E, D> {
    let (c0, t0) = first;
    let mut out = t0.clone();
    match rest.split_first() {
        None => out.axpy(c0, t0, 0.0),
        Some(((c1, t1), more)) => {
            out.axpy(c0, t1, *c1);
            for (c, t) in more {
                out.axpy(1.0, t, *c);
            }
        }
    }
    out
}
