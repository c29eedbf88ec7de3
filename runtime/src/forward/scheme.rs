//! How one step advances the solve: the tableau's own step, or the reversible scheme built on
//! it (McCallum & Foster 2024), whose state is a pair `(y, z)` with `y` the output:
//! `y' = λ(y − z) + Ψ_h(z)`, `z' = (z + y') − Ψ_{−h}(y')`, `Ψ` one step of the tableau. The
//! forward loop drives either the same way; [`reversible_step`] and [`reverse_reversible_step`]
//! are the one definition of the pair step and of its algebraic inverse.

use dfdx::prelude::*;

use crate::backend::Backend;
use crate::field::VectorField;
use crate::real::Real;
use crate::rk::{RungeKutta, Step, Workspace};
use crate::shape::StateShape;

/// A way to take one step of the solve from the state the loop holds (the output `x`).
pub(crate) trait Scheme<S: Shape, E: Real, D: Backend<E>> {
    /// One step from `(t, x)` of size `h`, ending at `end`; `k1`, if given, is the step's first
    /// evaluation. Returns the output at `end`, the error estimate and what the loop reuses.
    fn step<R, F>(
        &mut self,
        f: &F,
        span: (E, E, E),
        x: &Tensor<S, E, D>,
        k1: Option<Tensor<S, E, D>>,
        ws: &mut Workspace<S, E, D>,
    ) -> Step<S, E, D>
    where
        R: RungeKutta,
        S: StateShape,
        F: VectorField<S, E, D> + ?Sized;

    /// The step just taken is accepted.
    fn accept(&mut self);
}

/// The tableau's own steps.
pub(crate) struct Plain;

impl<S: Shape, E: Real, D: Backend<E>> Scheme<S, E, D> for Plain {
    fn step<R, F>(
        &mut self,
        f: &F,
        (t, h, _): (E, E, E),
        x: &Tensor<S, E, D>,
        k1: Option<Tensor<S, E, D>>,
        ws: &mut Workspace<S, E, D>,
    ) -> Step<S, E, D>
    where
        R: RungeKutta,
        S: StateShape,
        F: VectorField<S, E, D> + ?Sized,
    {
        R::step(f, t, h, x, k1, ws)
    }

    fn accept(&mut self) {}
}

/// The reversible scheme: the pair's second state `z` (the first is the loop's state), and the
/// `z` of the step being tried.
pub(crate) struct ReversiblePair<S: Shape, E: Real, D: Backend<E>> {
    coupling: f64,
    z: Tensor<S, E, D>,
    tried: Option<Tensor<S, E, D>>,
    /// Buffers of the second base step (the first uses the loop's).
    ws: Workspace<S, E, D>,
}

impl<S: Shape, E: Real, D: Backend<E>> ReversiblePair<S, E, D> {
    /// The pair `(x0, x0)`.
    pub fn new(coupling: f64, x0: &Tensor<S, E, D>) -> Self {
        ReversiblePair {
            coupling,
            z: x0.clone(),
            tried: None,
            ws: Workspace::new(),
        }
    }

    /// The coupling and the final `z`.
    pub fn finish(self) -> (f64, Tensor<S, E, D>) {
        (self.coupling, self.z)
    }
}

impl<S: Shape, E: Real, D: Backend<E>> Scheme<S, E, D> for ReversiblePair<S, E, D> {
    /// `Ψ_h(z)` first (its error estimate judges the step, and `f(t, z)` is reused if the step
    /// is tried again), then `y'`, then `Ψ_{−h}(y')` from the step's end, then `z'`.
    fn step<R, F>(
        &mut self,
        f: &F,
        (t, h, end): (E, E, E),
        x: &Tensor<S, E, D>,
        k1: Option<Tensor<S, E, D>>,
        ws: &mut Workspace<S, E, D>,
    ) -> Step<S, E, D>
    where
        R: RungeKutta,
        S: StateShape,
        F: VectorField<S, E, D> + ?Sized,
    {
        let forward = R::step(f, t, h, &self.z, k1, ws);
        let coupling = E::from_f64_lossy(self.coupling);
        let y = couple(coupling, x.clone(), self.z.clone(), forward.y);
        let backward = R::step(f, end, -h, &y, None, &mut self.ws);
        self.tried = Some(close(self.z.clone(), y.clone(), backward.y));
        Step {
            y,
            err: forward.err,
            k1: forward.k1,
            k_last: None,
            evals: forward.evals + backward.evals,
        }
    }

    fn accept(&mut self) {
        if let Some(z) = self.tried.take() {
            self.z = z;
        }
    }
}

/// `y' = λ(y − z) + a` with `a = Ψ_h(z)`, as every pass computes it (on any tape).
pub(crate) fn couple<S: Shape, E: Real, D: Backend<E>, T: Tape<E, D>>(
    coupling: E,
    y: Tensor<S, E, D, T>,
    z: Tensor<S, E, D, T>,
    a: Tensor<S, E, D, T>,
) -> Tensor<S, E, D, T> {
    (y - z) * coupling + a
}

/// `z' = (z + y') − b` with `b = Ψ_{−h}(y')`.
pub(crate) fn close<S: Shape, E: Real, D: Backend<E>, T: Tape<E, D>>(
    z: Tensor<S, E, D, T>,
    y: Tensor<S, E, D, T>,
    b: Tensor<S, E, D, T>,
) -> Tensor<S, E, D, T> {
    (z + y) - b
}

/// The reversible scheme's pair `(y, z)`.
pub(crate) type Pair<S, E, D, T> = (Tensor<S, E, D, T>, Tensor<S, E, D, T>);

/// One step of the reversible scheme on a tape: the reference that `backprop` differentiates.
/// `step(t, h, x)` is one step of the tableau recorded on `x`'s tape. Every operation is
/// recorded once, on the tape of the tensor it produces: `y` carries its own chain and the
/// `Ψ_h` steps, `z` its chain and the `Ψ_{−h}` steps (merge `z`'s tape into the last output).
pub(crate) fn reversible_step<S, E, D, T>(
    coupling: E,
    (t, h, end): (E, E, E),
    (y, z): Pair<S, E, D, T>,
    step: &mut impl FnMut(E, E, Tensor<S, E, D, T>) -> Tensor<S, E, D, T>,
) -> Pair<S, E, D, T>
where
    S: Shape,
    E: Real,
    D: Backend<E>,
    T: Tape<E, D>,
{
    let a = step(t, h, z.with_empty_tape());
    let y1 = couple(coupling, y, z.with_empty_tape(), a);
    let b = step(end, -h, y1.with_empty_tape());
    let z1 = close(z, y1.with_empty_tape(), b);
    (y1, z1)
}

/// The inverse of one reversible step: `(y, z)` from `(y', z')`, given `b = Ψ_{−h}(y')` and then
/// `a = Ψ_h(z)` as `step` computes them: `z = (z' − y') + b`, `y = (y' − a) / λ + z`.
pub(crate) fn reverse_reversible_step<S: Shape, E: Real, D: Backend<E>>(
    coupling: E,
    (y1, z1): (&Tensor<S, E, D>, &Tensor<S, E, D>),
    b: &Tensor<S, E, D>,
    a: impl FnOnce(&Tensor<S, E, D>) -> Tensor<S, E, D>,
) -> Pair<S, E, D, NoneTape> {
    let z = (z1.clone() - y1.clone()) + b.clone();
    let a = a(&z);
    let y = (y1.clone() - a) / coupling + z.clone();
    (y, z)
}
