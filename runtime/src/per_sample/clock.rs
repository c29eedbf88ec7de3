//! Per-sample steps as steps of one batched problem. Round `n` of a per-sample solve moves row
//! `i` from `tᵢ` by `hᵢ` (zero for a row that is not stepping: rejected, or finished). That is
//! one step of size 1, at the pseudo-time `2n`, of the tableau on the field
//! `g(2n + c, X)ᵢ = hᵢ · f(tᵢ + c hᵢ, Xᵢ)`: its stages are `Xᵢ = x + Σⱼ aᵢⱼ gⱼ`, row for row
//! those of a step of size `hᵢ` on `f`. [`Clocked`] is that field. Every gradient method that
//! walks steps (the generated backward step, ACA's and backprop's replays, the recomputation of
//! states) runs on it unchanged and is exact for each row's own steps: the sizes are constants
//! of the solve, as they are for shared steps, and a row at `hᵢ = 0` passes its cotangent
//! through unchanged.

use std::cell::RefCell;
use std::rc::Rc;

use dfdx::nn::tensor_collection::{ModuleVisitor, TensorCollection};
use dfdx::prelude::*;

use crate::backend::Backend;
use crate::error::Error;
use crate::field::VectorField;
use crate::real::{lit, Real};
use crate::rk::RungeKutta;
use crate::shape::StateShape;

/// The rounds of a per-sample solve: each row's time and step size in each round.
pub(crate) struct Clock<S: Shape, E: Real, D: Backend<E>> {
    rows: usize,
    /// `tᵢ` of every row, round after round.
    t: Vec<E>,
    /// `hᵢ` of every row, round after round (zero: the row does not move).
    h: Vec<E>,
    /// The tableau's distinct nodes `c` (and 1, the interpolant's extra stage), in `f64`.
    nodes: Vec<f64>,
    /// Whether the field takes one time for the whole batch (`eval_rows` declined).
    scalar_time: bool,
    /// `hᵢ` spread over row `i`'s entries, for the round it was built for.
    scale: Option<(usize, Tensor<S, E, D>)>,
    /// While the forward solve steps: the unscaled `f` at the end of the round's step
    /// (`c = 1`), the next round's first evaluation.
    stash: Option<Option<Tensor<S, E, D>>>,
}

impl<S: Shape, E: Real, D: Backend<E>> Clock<S, E, D> {
    /// Rounds happen at the pseudo-times `2n`; the field finds its round and node from the
    /// time it is called at. In `f32` that resolves the nodes only up to some number of rounds.
    pub fn max_rounds(&self) -> usize {
        let gap = self
            .nodes
            .windows(2)
            .map(|w| w[1] - w[0])
            .fold(1.0, f64::min);
        let epsilon: f64 = E::epsilon().into();
        // Nodes stay apart while half an ulp of the pseudo-time is below a quarter of their gap.
        let limit = gap / (4.0 * epsilon);
        if limit >= (usize::MAX / 4) as f64 {
            usize::MAX
        } else {
            (limit / 2.0) as usize
        }
    }

    /// Whether the field takes one time for the whole batch.
    pub fn set_scalar_time(&mut self, scalar: bool) {
        self.scalar_time = scalar;
    }

    /// The pseudo-time of round `n`.
    pub fn start(n: usize) -> E {
        lit(2.0 * n as f64)
    }

    /// Sets round `n`'s times and sizes (dropping any later round).
    pub fn set_round(&mut self, n: usize, t: &[E], h: &[E]) {
        self.t.truncate(n * self.rows);
        self.h.truncate(n * self.rows);
        self.t.extend_from_slice(t);
        self.h.extend_from_slice(h);
        self.scale = None;
    }

    /// Row `i` does not move in round `n` (its step was rejected).
    pub fn hold(&mut self, n: usize, i: usize) {
        self.h[n * self.rows + i] = E::zero();
        self.scale = None;
    }

    /// `(tᵢ, hᵢ)` of every row in round `n`.
    pub fn round(&self, n: usize) -> (&[E], &[E]) {
        let r = n * self.rows..(n + 1) * self.rows;
        (&self.t[r.clone()], &self.h[r])
    }

    /// `hᵢ` of round `n` spread over row `i`'s entries (shaped like `like`), built once per
    /// round.
    pub fn scale(&mut self, n: usize, like: &Tensor<S, E, D>) -> Tensor<S, E, D> {
        match &self.scale {
            Some((m, scale)) if *m == n => scale.clone(),
            _ => {
                let scale = per_row(like, self.round(n).1);
                self.scale = Some((n, scale.clone()));
                scale
            }
        }
    }

    /// Rounds recorded.
    pub fn len(&self) -> usize {
        self.t.len().checked_div(self.rows).unwrap_or(0)
    }

    /// Bytes the clock holds.
    pub fn bytes(&self) -> usize {
        (self.t.capacity() + self.h.capacity()) * core::mem::size_of::<E>()
    }

    /// Keeps the unscaled evaluation at the end of each step (`Some`) or not (`None`).
    pub fn stash_ends(&mut self, on: bool) {
        self.stash = on.then_some(None);
    }

    /// The unscaled evaluation at the end of the last step, if kept.
    pub fn take_stash(&mut self) -> Option<Tensor<S, E, D>> {
        self.stash.as_mut().and_then(Option::take)
    }

    /// The round and node of pseudo-time `s`.
    fn locate(&self, s: E) -> (usize, f64) {
        let s: f64 = s.into();
        let n = (s / 2.0).floor().max(0.0);
        let c = s - 2.0 * n;
        let node = self
            .nodes
            .iter()
            .copied()
            .min_by(|a, b| (a - c).abs().total_cmp(&(b - c).abs()))
            .unwrap_or(c);
        (n as usize, node)
    }
}

/// The field of the batched problem: `f` with each row at its own time, scaled by its own step.
/// Owns the model (a cheap clone: dfdx tensors share their buffers) and shares the clock with
/// the forward loop.
pub(crate) struct Clocked<M, S: Shape, E: Real, D: Backend<E>> {
    pub model: M,
    pub clock: Rc<RefCell<Clock<S, E, D>>>,
}

impl<M: Clone, S: Shape, E: Real, D: Backend<E>> Clone for Clocked<M, S, E, D> {
    fn clone(&self) -> Self {
        Clocked {
            model: self.model.clone(),
            clock: Rc::clone(&self.clock),
        }
    }
}

impl<M, S: Shape, E: Real, D: Backend<E>> Clocked<M, S, E, D> {
    /// The field for a batch of `rows` rows stepped with `R`'s tableau.
    pub fn new<R: RungeKutta>(model: M, rows: usize) -> Self {
        let mut nodes: Vec<f64> = R::C.iter().copied().chain([0.0, 1.0]).collect();
        nodes.sort_by(f64::total_cmp);
        nodes.dedup();
        Clocked {
            model,
            clock: Rc::new(RefCell::new(Clock {
                rows,
                t: Vec::new(),
                h: Vec::new(),
                nodes,
                scalar_time: false,
                scale: None,
                stash: None,
            })),
        }
    }
}

/// `f` with row `i` at time `t[i]`: the field's own [`VectorField::eval_rows`], or its `eval`
/// when it takes one time (checked to be autonomous before solving).
pub(crate) fn eval_rows<M, S, E, D, T>(
    model: &M,
    t: &[E],
    x: Tensor<S, E, D, T>,
) -> Tensor<S, E, D, T>
where
    M: VectorField<S, E, D> + ?Sized,
    S: Shape,
    E: Real,
    D: Device<E>,
    T: Tape<E, D>,
{
    match model.eval_rows(t, x) {
        Ok(k) => k,
        Err(x) => model.eval(t[0], x),
    }
}

/// A field that takes one time must not read it: `f(t, x₀)` is compared bit for bit at the
/// earliest and the latest time of any row.
pub(crate) fn check_autonomous<M, S, E, D>(
    model: &M,
    x0: &Tensor<S, E, D>,
    (first, second): (E, E),
) -> Result<(), Error>
where
    M: VectorField<S, E, D> + ?Sized,
    S: Shape,
    E: Real,
    D: Device<E>,
{
    if first == second {
        return Ok(());
    }
    let a = model.eval(first, x0.clone()).as_vec();
    let b = model.eval(second, x0.clone()).as_vec();
    if a.iter().zip(&b).all(|(p, q)| p.bits() == q.bits()) {
        Ok(())
    } else {
        Err(Error::ScalarTimeField {
            first: first.into(),
            second: second.into(),
        })
    }
}

/// Bit patterns, to compare evaluations exactly (NaN included).
trait Bits {
    fn bits(&self) -> u64;
}

impl<E: Real> Bits for E {
    fn bits(&self) -> u64 {
        let v: f64 = (*self).into();
        v.to_bits()
    }
}

/// `v` spread over each row's entries: a state-shaped tensor whose row `i` is `v[i]`.
pub(crate) fn per_row<S: Shape, E: Real, D: Device<E>>(
    like: &Tensor<S, E, D>,
    v: &[E],
) -> Tensor<S, E, D> {
    let len = like.shape().num_elements();
    let row = if v.is_empty() { 0 } else { len / v.len() };
    let data: Vec<E> = v
        .iter()
        .flat_map(|&x| core::iter::repeat_n(x, row))
        .collect();
    like.device().tensor_from_vec(data, *like.shape())
}

impl<M, S, E, D> VectorField<S, E, D> for Clocked<M, S, E, D>
where
    M: VectorField<S, E, D>,
    S: StateShape,
    E: Real,
    D: Backend<E>,
{
    fn eval<T: Tape<E, D>>(&self, s: E, x: Tensor<S, E, D, T>) -> Tensor<S, E, D, T> {
        let (times, scale, at_end) = {
            let mut clock = self.clock.borrow_mut();
            let (n, c) = clock.locate(s);
            let (t, h) = clock.round(n);
            // As the generated step computes a stage's time: `t`, `t + h` or `t + h·c` (the
            // first row's alone for a field that takes one time).
            let rows = if clock.scalar_time {
                1.min(t.len())
            } else {
                t.len()
            };
            let times: Vec<E> = t[..rows]
                .iter()
                .zip(h)
                .map(|(&t, &h)| {
                    if c == 0.0 {
                        t
                    } else if c == 1.0 {
                        t + h
                    } else {
                        t + h * lit::<E>(c)
                    }
                })
                .collect();
            let scale = clock.scale(n, &x.retaped::<NoneTape>());
            (times, scale, c == 1.0 && clock.stash.is_some())
        };
        let k = if times.len() == 1 {
            self.model.eval(times[0], x)
        } else {
            eval_rows(&self.model, &times, x)
        };
        let k = k.contiguous();
        if at_end && !T::OWNS_TAPE {
            self.clock.borrow_mut().stash = Some(Some(k.retaped::<NoneTape>()));
        }
        k * scale
    }
}

impl<M, S, E, D> TensorCollection<E, D> for Clocked<M, S, E, D>
where
    M: TensorCollection<E, D>,
    S: Shape,
    E: Real,
    D: Backend<E>,
{
    /// Converting the field converts the model alone.
    type To<E2: Dtype, D2: Device<E2>> = M::To<E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(Self::module("model", |s| &s.model, |s| &mut s.model), |m| m)
    }
}
