//! The gradient methods, behind one seam: a [`GradientMethod`] says what the forward solve must
//! keep ([`Keep`]) and how the solve goes back ([`GradientMethod::attach`]: onto the caller's
//! tape). One file per method; [`with_method`] is the one place that maps a [`GradMethod`] to
//! its implementation. The methods that run their own reverse pass ([`symplectic`], [`aca`],
//! [`adjoint`]) do so inside one backward op on the caller's tape ([`on_tape`]), touching the
//! caller's `Gradients` only once every cotangent is computed; the steps-and-outputs walk that
//! `symplectic` and `aca` share is [`walk`].

pub(crate) mod aca;
pub(crate) mod adjoint;
pub(crate) mod backprop;
pub mod reference;
pub(crate) mod reversible;
pub(crate) mod symplectic;
pub(crate) mod walk;

use std::cell::RefCell;
use std::rc::Rc;

use dfdx::nn::tensor_collection::{
    RecursiveWalker, TensorCollection, TensorOptions, TensorVisitor, ViewTensorRef,
};
use dfdx::nn::ZeroGrads;
use dfdx::prelude::*;

use crate::backend::Backend;
use crate::controller::StepSizeController;
use crate::error::Error;
use crate::field::VectorField;
use crate::forward::Record;
use crate::model::GradMethod;
use crate::options::{GradientFailure, SolveOptions};
use crate::real::Real;
use crate::rk::RungeKutta;
use crate::shape::StateShape;
use crate::stats::{BackwardReport, BackwardStats};
use crate::store::{CheckpointPolicy, Keep};

/// A way to differentiate a solve: what the forward must keep, and how to go back. A method
/// with a reverse pass of its own implements [`reverse`](Self::reverse), which the default
/// [`attach`](Self::attach) runs inside one backward op on the caller's tape; a method that
/// records the solve on the tape itself (`backprop`) implements `attach` instead.
pub(crate) trait GradientMethod: 'static {
    /// What the forward solve must keep for this method's way back under `policy`.
    fn keep(policy: CheckpointPolicy) -> Keep;

    /// Whether it differentiates the reversible scheme (`SolveOptions::with_reversible`);
    /// the others refuse it before solving.
    const DIFFERENTIATES_REVERSIBLE: bool = false;

    /// The reverse pass: from the forward's record and the outputs' cotangents to the
    /// cotangents of the initial state and the parameters.
    fn reverse<R, M, S, E, D>(back: &mut Back<'_, M, S, E, D>) -> Result<Cotangents<S, E, D>, Error>
    where
        R: RungeKutta,
        M: Model<S, E, D>,
        S: StateShape,
        E: Real,
        D: Backend<E>,
    {
        let _ = back;
        Err(Error::internal(
            "a gradient method without a reverse pass was asked for one",
        ))
    }

    /// Puts the solve on the caller's tape (`tape`, split from the initial state): returns the
    /// stacked outputs on it, or the error with the initial state and its tape, untouched.
    fn attach<R, M, S, E, D, T>(solved: Solved<'_, M, S, E, D>, tape: T) -> Attached<S, E, D, T>
    where
        R: RungeKutta,
        M: Model<S, E, D>,
        S: StateShape,
        E: Real,
        D: Backend<E>,
        T: Tape<E, D> + 'static,
    {
        on_tape(solved, tape, Self::reverse::<R, M, S, E, D>)
    }
}

/// What the gradient methods need of a model: its field, its parameters, and to be owned by
/// the backward op.
pub(crate) trait Model<S: Shape, E: Dtype, D: Device<E>>:
    VectorField<S, E, D> + TensorCollection<E, D> + Clone + 'static
{
}

impl<M, S, E, D> Model<S, E, D> for M
where
    M: VectorField<S, E, D> + TensorCollection<E, D> + Clone + 'static,
    S: Shape,
    E: Dtype,
    D: Device<E>,
{
}

/// What [`GradientMethod::attach`] returns: the stacked outputs on the caller's tape (and the
/// solve's peak memory), or the error and the initial state on its tape.
pub(crate) type Attached<S, E, D, T> = Result<
    (Tensor<<S as StateShape>::Stacked, E, D, T>, Option<usize>),
    (Error, Tensor<S, E, D, T>),
>;

/// Calls `visit` with the implementation of `method`: the one `match` on the method.
pub(crate) fn with_method<V: Visit>(method: GradMethod, visit: V) -> V::Out {
    match method {
        GradMethod::Symplectic => visit.visit::<symplectic::Symplectic>(),
        GradMethod::Aca => visit.visit::<aca::Aca>(),
        GradMethod::Backprop => visit.visit::<backprop::Backprop>(),
        GradMethod::Adjoint => visit.visit::<adjoint::Adjoint>(),
        GradMethod::Reversible => visit.visit::<reversible::Reversible>(),
    }
}

/// Something done with a gradient method's implementation (see [`with_method`]).
pub(crate) trait Visit {
    type Out;
    fn visit<G: GradientMethod>(self) -> Self::Out;
}

/// A finished forward solve and what its gradient pass needs.
pub(crate) struct Solved<'a, M, S: Shape, E: Real, D: Backend<E>> {
    pub model: &'a M,
    /// The initial state, without its tape (the key of its cotangent).
    pub x0: Tensor<S, E, D>,
    pub record: Record<S, E, D>,
    pub times: &'a [E],
    pub opts: &'a SolveOptions,
    /// A copy of the caller's step-size controller (the continuous adjoint steps back with it).
    pub controller: Box<dyn StepSizeController>,
    pub report: BackwardReport,
    /// The allocation level when the solve started, and the forward's peak above it (with the
    /// counting allocator).
    pub solve_base: usize,
    pub forward_peak: Option<usize>,
}

/// What a reverse pass reads: the forward's record, the stacked outputs and their cotangents.
pub(crate) struct Back<'a, M, S: StateShape, E: Real, D: Backend<E>> {
    pub model: &'a M,
    pub record: &'a mut Record<S, E, D>,
    /// The outputs, stacked.
    pub ys: &'a Tensor<S::Stacked, E, D>,
    /// One cotangent per output.
    pub out: &'a [Tensor<S, E, D>],
    pub times: &'a [E],
    pub opts: &'a SolveOptions,
    pub controller: &'a mut dyn StepSizeController,
}

/// What a reverse pass produced.
pub(crate) struct Cotangents<S: Shape, E: Real, D: Backend<E>> {
    /// Cotangent of the initial state.
    pub x0: Tensor<S, E, D>,
    /// Parameter cotangents, keyed like the caller's `Gradients`.
    pub params: Gradients<E, D>,
    /// Counts for the report (its memory figures are filled in by [`on_tape`]).
    pub stats: BackwardStats,
}

/// [`GradientMethod::attach`] for a method with its own reverse pass: the outputs are stacked
/// and one backward op is recorded on the caller's tape that, during `backward()`, runs `pass`
/// on the outputs' cotangents, merges the result into the caller's `Gradients` only if every
/// cotangent was computed, measures its memory, fills in the report, and panics on failure if
/// the options say so.
pub(crate) fn on_tape<M, S, E, D, T, P>(
    solved: Solved<'_, M, S, E, D>,
    tape: T,
    pass: P,
) -> Attached<S, E, D, T>
where
    M: TensorCollection<E, D> + Clone + 'static,
    S: StateShape,
    E: Real,
    D: Backend<E>,
    T: Tape<E, D> + 'static,
    P: FnOnce(&mut Back<'_, M, S, E, D>) -> Result<Cotangents<S, E, D>, Error> + 'static,
{
    let Solved {
        model,
        x0,
        mut record,
        times,
        opts,
        mut controller,
        report,
        solve_base,
        forward_peak,
    } = solved;
    // The outputs live on in `ys` alone (the pass reads them from there), not twice.
    let n_outputs = record.outputs.len();
    let ys = S::stack(core::mem::take(&mut record.outputs));
    let ys_key = ys.clone();
    let model = model.clone();
    let times = times.to_vec();
    let opts = opts.clone();
    let mut tape = tape;
    tape.add_backward_op(move |grads| {
        grads.try_alloc_for(&ys_key)?;
        let g = grads.get(&ys_key);
        let out: Vec<Tensor<S, E, D>> = (0..n_outputs).map(|k| S::unstack(g.clone(), k)).collect();
        drop(g);
        let level = crate::alloc::current();
        let (result, peak_bytes) = crate::alloc::measure(|| {
            let mut back = Back {
                model: &model,
                record: &mut record,
                ys: &ys_key,
                out: &out,
                times: &times,
                opts: &opts,
                controller: controller.as_mut(),
            };
            pass(&mut back)
        });
        let solve_peak_bytes = peak_bytes.map(|p| {
            (level + p)
                .saturating_sub(solve_base)
                .max(forward_peak.unwrap_or(0))
        });
        drop(record);
        let outcome = result.and_then(|mut cot| {
            // Only now, with every cotangent computed, touch the caller's gradients.
            D::accumulate(grads, &x0, &cot.x0).map_err(Error::device)?;
            merge_params(&model, &mut cot.params, grads, None)?;
            Ok(BackwardStats {
                peak_bytes,
                solve_peak_bytes,
                ..cot.stats
            })
        });
        if let (Err(e), GradientFailure::Panic) = (&outcome, opts.on_gradient_failure) {
            report.set(Err(e.clone()));
            panic!(
                "neural-ode: the gradient pass failed, this solve contributed no gradient: {e} \
                 (the error is also in `sol.report`; `SolveOptions::with_gradient_failure(\
                 GradientFailure::Report)` returns normally instead)"
            );
        }
        report.set(outcome);
        Ok(())
    });
    Ok((ys.put_tape(tape), forward_peak))
}

/// `dst[p] += scale · src[p]` for every trainable tensor `p` of `model`.
pub(crate) fn merge_params<M, E, D>(
    model: &M,
    src: &mut Gradients<E, D>,
    dst: &mut Gradients<E, D>,
    scale: Option<E>,
) -> Result<(), Error>
where
    M: TensorCollection<E, D>,
    E: Real,
    D: Backend<E>,
{
    let mut op = MergeOp { src, dst, scale };
    M::iter_tensors(&mut RecursiveWalker {
        m: model,
        f: &mut op,
    })
    .map_err(Error::device)?;
    Ok(())
}

struct MergeOp<'a, E: Real, D: Backend<E>> {
    src: &'a mut Gradients<E, D>,
    dst: &'a mut Gradients<E, D>,
    scale: Option<E>,
}

impl<'a, E: Real, D: Backend<E>> TensorVisitor<E, D> for MergeOp<'a, E, D> {
    type Viewer = ViewTensorRef;
    type Err = D::Err;
    type E2 = E;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, E, D>,
        t: &Tensor<S, E, D>,
    ) -> Result<Option<Tensor<S, E, D>>, D::Err> {
        if opts.do_gradient_update {
            // A parameter the field did not use gets a zero gradient, not an error.
            self.src.get_or_alloc_mut(t)?;
            let mut g = self.src.get(t);
            if let Some(c) = self.scale {
                g = g * c;
            }
            D::accumulate(self.dst, t, &g)?;
        }
        Ok(None)
    }
}

/// `(x̄, the gradient store)`.
pub(crate) type Pulled<S, E, D> = (Tensor<S, E, D>, Gradients<E, D>);

/// The reverse passes' pullbacks of the model, each on a short-lived tape, with the parameter
/// cotangents accumulated across all of them (on the device), and their count.
pub(crate) struct Products<'m, M, E: Real, D: Backend<E>> {
    model: &'m M,
    params: Option<Gradients<E, D>>,
    /// Vector–Jacobian products of the field taken so far ([`Products::vjp`]).
    pub count: usize,
}

impl<'m, M, E, D> Products<'m, M, E, D>
where
    M: TensorCollection<E, D>,
    E: Real,
    D: Backend<E>,
{
    pub fn new(model: &'m M) -> Result<Self, Error> {
        Ok(Products {
            model,
            params: Some(model.try_alloc_grads().map_err(Error::device)?),
            count: 0,
        })
    }

    /// [`pullback`] through `body` into the accumulated parameter cotangents: returns `x̄`.
    pub fn pull<S: StateShape>(
        &mut self,
        x: Tensor<S, E, D>,
        body: impl FnOnce(Tensor<S, E, D, OwnedTape<E, D>>) -> Tensor<Rank0, E, D, OwnedTape<E, D>>,
    ) -> Result<Tensor<S, E, D>, Error> {
        let acc = self
            .params
            .take()
            .ok_or_else(|| Error::internal("gradient store lost by a failed product"))?;
        let (x_bar, acc) = pullback(acc, x, body)?;
        self.params = Some(acc);
        Ok(x_bar)
    }

    /// `J_f(t, x)ᵀ v`, adding `J_θ(t, x)ᵀ v` into the parameter cotangents: the `vjp` of the
    /// generated backward step.
    pub fn vjp<S: StateShape>(
        &mut self,
        t: E,
        x: Tensor<S, E, D>,
        v: Tensor<S, E, D>,
    ) -> Result<Tensor<S, E, D>, Error>
    where
        M: VectorField<S, E, D>,
    {
        self.count += 1;
        let model = self.model;
        self.pull(x, |x| (model.eval(t, x) * v).sum::<Rank0, _>())
    }

    /// The accumulated parameter cotangents.
    pub fn params(self) -> Result<Gradients<E, D>, Error> {
        self.params
            .ok_or_else(|| Error::internal("gradient store lost by a failed product"))
    }
}

/// Reverse mode through `body` on a short-lived tape whose gradients are `acc`, a gradient
/// store whose leaves are the model's parameters (from `alloc_grads`): parameter cotangents
/// accumulate into `acc` with dfdx's own kernels, on the device, and everything else is dropped
/// when the pass ends. The cotangent of `x` is read by a backward op recorded before any use of
/// `x`, so it runs last, when that cotangent is complete. Returns `x̄` and `acc`.
pub(crate) fn pullback<S, E, D>(
    acc: Gradients<E, D>,
    x: Tensor<S, E, D>,
    body: impl FnOnce(Tensor<S, E, D, OwnedTape<E, D>>) -> Tensor<Rank0, E, D, OwnedTape<E, D>>,
) -> Result<Pulled<S, E, D>, Error>
where
    S: StateShape,
    E: Real,
    D: Backend<E>,
{
    let key = x.clone();
    let stash: Rc<RefCell<Option<Tensor<S, E, D>>>> = Rc::default();
    let stash_in = Rc::clone(&stash);
    let (x, mut tape) = x.traced(acc).split_tape();
    tape.add_backward_op(move |grads| {
        grads.try_alloc_for(&key)?;
        *stash_in.borrow_mut() = Some(grads.get(&key));
        Ok(())
    });
    let acc = body(x.put_tape(tape))
        .try_backward()
        .map_err(Error::device)?;
    let x_bar = stash
        .borrow_mut()
        .take()
        .ok_or_else(|| Error::internal("the pullback's last backward op did not run"))?;
    Ok((x_bar, acc))
}

/// `acc + g`, in `acc`'s buffer.
pub(crate) fn add<S: Shape, E: Real, D: Backend<E>>(
    mut acc: Tensor<S, E, D>,
    g: &Tensor<S, E, D>,
) -> Tensor<S, E, D> {
    acc.axpy(1.0, g, 1.0);
    acc
}
