//! The gradient methods. All four share the forward loop; they differ in what they keep and how
//! they go back. `backprop` lives in `solve.rs` (it records the solve on dfdx's own tape); the
//! other three run inside one backward op on the caller's tape and return the initial-state
//! cotangent and the parameter cotangents, touching the caller's `Gradients` only on success.

pub(crate) use crate::integrate::all_finite;

pub(crate) mod adjoint;
pub(crate) mod checkpoint;
pub mod generic;
pub(crate) mod symplectic;

use std::cell::RefCell;
use std::rc::Rc;

use dfdx::nn::tensor_collection::{
    RecursiveWalker, TensorCollection, TensorOptions, TensorVisitor, ViewTensorRef,
};
use dfdx::nn::ZeroGrads;
use dfdx::prelude::*;

use crate::backend::Backend;
use crate::error::Error;
use crate::field::VectorField;
use crate::real::Real;
use crate::shape::StateShape;

/// Cotangents flowing into one solve: one per output time.
pub(crate) type OutputGrads<S, E, D> = Vec<Tensor<S, E, D>>;

/// What a gradient pass produced.
pub(crate) struct Cotangents<S: Shape, E: Real, D: Backend<E>> {
    /// Cotangent of the initial state.
    pub x0: Tensor<S, E, D>,
    /// Parameter cotangents, keyed like the caller's `Gradients`.
    pub params: Gradients<E, D>,
    pub nfe_vjp: usize,
    pub nfe_rebuild: usize,
    pub steps: usize,
    pub rejected: usize,
    pub recomputed_steps: usize,
    pub non_finite_at: Option<f64>,
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
    let x_bar = stash.borrow_mut().take().ok_or_else(|| Error::Device {
        message: "the pullback's last backward op did not run".into(),
    })?;
    Ok((x_bar, acc))
}

/// `(J_f(t, x)ᵀ v, f(t, x))`.
pub(crate) type VjpOut<S, E, D> = (Tensor<S, E, D>, Tensor<S, E, D>);

/// One vector–Jacobian product with a weighted parameter cotangent: returns `J_f(t, x)ᵀ v` and
/// `f(t, x)`, and adds `scale · J_θ(t, x)ᵀ v` into `params` (the continuous adjoint's quadrature
/// weights). The weight cannot be folded into `v` without dividing `x̄` by it (and it may be
/// zero), so the product runs through [`pullback`] into its own parameter store, which is then
/// merged with the weight.
pub(crate) fn weighted_vjp<M, S, E, D>(
    model: &M,
    params: &mut Gradients<E, D>,
    t: E,
    x: Tensor<S, E, D>,
    v: Tensor<S, E, D>,
    scale: E,
) -> Result<VjpOut<S, E, D>, Error>
where
    M: VectorField<S, E, D> + TensorCollection<E, D>,
    S: StateShape,
    E: Real,
    D: Backend<E>,
{
    let scratch = model.try_alloc_grads().map_err(Error::device)?;
    let mut value = None;
    let (x_bar, mut scratch) = pullback(scratch, x, |x| {
        let y = model.eval(t, x);
        value = Some(y.retaped::<NoneTape>());
        (y * v).sum::<Rank0, _>()
    })?;
    merge_params(model, &mut scratch, params, Some(scale))?;
    let value = value.ok_or_else(|| Error::Device {
        message: "the product did not evaluate the field".into(),
    })?;
    Ok((x_bar, value))
}

/// The error for a step or state the checkpoint store should have kept and did not (a bug,
/// not a user error: the solve keeps what its gradient method reads).
pub(crate) fn missing(what: &str, n: usize) -> Error {
    Error::Device {
        message: format!("internal error: the checkpoint store has no {what} for step {n}"),
    }
}

/// `acc + g`, in `acc`'s buffer.
pub(crate) fn add<S: Shape, E: Real, D: Backend<E>>(
    mut acc: Tensor<S, E, D>,
    g: &Tensor<S, E, D>,
) -> Tensor<S, E, D> {
    acc.axpy(1.0, g, 1.0);
    acc
}
