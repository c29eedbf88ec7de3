//! The fused dense layer: `act(x Wᵀ + b)` as one dfdx module with one backward op.

use dfdx::nn::tensor_collection::{ModuleVisitor, TensorCollection, TensorOptions};
use dfdx::nn::{BuildModule, BuildOnDevice, Module, NonMutableModule};
use dfdx::prelude::*;
use rand_distr::uniform::SampleUniform;
use rand_distr::Uniform;

use super::activation::{self, Activation, FastActivations, Identity, Kept};
use super::apply::DenseFloat;
use super::handoff;
use super::matmul;
use super::mlp::{Layers, MlpResult};
use super::pool::Buf;
use super::threads;

/// A dense layer `y = act(x Wᵀ + b)`, where `act` is one of this module's activations or
/// [`Identity`].
///
/// The fields are laid out as in dfdx's `Linear` (`weight` is O × I, `bias` is O) under the same
/// `TensorCollection` names, so optimisers, `alloc_grads`, safetensors files and
/// `num_trainable_params` treat the two alike, and weights move between them with `copy_from`.
/// Initialised like `Linear`: uniform in ±1/√I.
///
/// Inputs: `(B, Const<I>)` for any batch dimension `B` (`usize` or `Const<N>`), or a single
/// vector `(Const<I>,)`. On the CPU (`f32`, `f64`) the forward pass is one matrix product into a
/// bias-initialised buffer with the activation applied in place; on a tape, one backward op
/// computes the input, weight and bias cotangents from what the forward pass kept (the output for
/// `Tanh`/`Sigmoid`, the pre-activation for `Softplus`/`Silu`, nothing for `Identity`). On CUDA
/// it is dfdx's matmul, broadcast add and activation.
///
/// ```
/// use neural_ode_runtime::nn::{builders, Dense, Identity, Tanh};
/// use dfdx::prelude::*;
///
/// let dev = Cpu::default();
/// let mlp = dev.build_module::<(builders::Dense<2, 16, Tanh>, builders::Dense<16, 2, Identity>), f64>();
/// let x: Tensor<(usize, Const<2>), f64, Cpu> = dev.sample_normal_like(&(8, Const));
/// let y = mlp.forward(x.leaky_trace());
/// let grads = y.square().sum::<Rank0, _>().backward();
/// assert_eq!(grads.get(&mlp.0.weight).shape(), &(Const::<16>, Const::<2>));
/// ```
#[derive(Clone, Debug)]
pub struct Dense<const I: usize, const O: usize, A, E: Dtype, D: Storage<E>> {
    /// The weight matrix, shape (O, I).
    pub weight: Tensor<Rank2<O, I>, E, D>,
    /// The bias vector, shape (O,).
    pub bias: Tensor<Rank1<O>, E, D>,
    /// The activation (a zero-sized marker).
    pub activation: A,
}

/// Builders for [`Dense`]: `dev.build_module::<builders::Dense<I, O, Tanh>, E>()`.
pub mod builders {
    use core::marker::PhantomData;

    /// Builds a [`Dense`](super::Dense)`<I, O, A, E, D>`.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct Dense<const I: usize, const O: usize, A = super::Identity>(PhantomData<A>);
}

impl<const I: usize, const O: usize, A: Activation, E: Dtype, D: Device<E>> BuildOnDevice<D, E>
    for builders::Dense<I, O, A>
where
    Dense<I, O, A, E, D>: BuildModule<D, E>,
{
    type Built = Dense<I, O, A, E, D>;
    fn try_build_on_device(device: &D) -> Result<Self::Built, D::Err> {
        Self::Built::try_build(device)
    }
}

impl<const I: usize, const O: usize, A, E: Dtype, D: Storage<E>> NonMutableModule
    for Dense<I, O, A, E, D>
{
}

impl<const I: usize, const O: usize, A, E, D> TensorCollection<E, D> for Dense<I, O, A, E, D>
where
    A: Activation,
    E: Dtype + num_traits::Float + SampleUniform,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = Dense<I, O, A, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        // Names and initialisation as dfdx's `Linear`.
        visitor.visit_fields(
            (
                Self::tensor(
                    "weight",
                    |s| &s.weight,
                    |s| &mut s.weight,
                    uniform::<_, _, _, I>(),
                ),
                Self::tensor(
                    "bias",
                    |s| &s.bias,
                    |s| &mut s.bias,
                    uniform::<_, _, _, I>(),
                ),
            ),
            |(weight, bias)| Dense {
                weight,
                bias,
                activation: A::default(),
            },
        )
    }
}

/// Resets a parameter to uniform values in ±1/√I (dfdx's `Linear` initialisation).
fn uniform<S: ConstShape, E, D: Device<E>, const I: usize>() -> TensorOptions<S, E, D>
where
    E: Dtype + num_traits::Float + SampleUniform,
{
    TensorOptions::reset_with(|t| {
        let b: E = E::one() / E::from_usize(I).unwrap_or_else(E::one).sqrt();
        t.try_fill_with_distr(Uniform::new(-b, b))
    })
}

impl<B, const I: usize, const O: usize, A, E, D, T> Module<Tensor<(B, Const<I>), E, D, T>>
    for Dense<I, O, A, E, D>
where
    B: Dim,
    A: Activation,
    E: Dtype,
    D: FastDense<E>,
    T: Tape<E, D>,
{
    type Output = Tensor<(B, Const<O>), E, D, T>;
    type Error = D::Err;

    fn try_forward(&self, x: Tensor<(B, Const<I>), E, D, T>) -> Result<Self::Output, D::Err> {
        D::dense::<B, I, O, A, T>(x, &self.weight, &self.bias)
    }
}

impl<const I: usize, const O: usize, A, E, D, T> Module<Tensor<(Const<I>,), E, D, T>>
    for Dense<I, O, A, E, D>
where
    A: Activation,
    E: Dtype,
    D: FastDense<E>,
    T: Tape<E, D>,
{
    type Output = Tensor<(Const<O>,), E, D, T>;
    type Error = D::Err;

    fn try_forward(&self, x: Tensor<(Const<I>,), E, D, T>) -> Result<Self::Output, D::Err> {
        let x = x.try_reshape_like(&(Const::<1>, Const::<I>))?;
        D::dense::<Const<1>, I, O, A, T>(x, &self.weight, &self.bias)?
            .try_reshape_like(&(Const::<O>,))
    }
}

/// A dense layer's output for a batch `B`, or the device's error.
pub type DenseResult<B, const O: usize, E, D, T> =
    Result<Tensor<(B, Const<O>), E, D, T>, <D as HasErr>::Err>;

/// Devices that evaluate [`Dense`] layers on any tape: `Cpu` (fused kernels, `f32` and `f64`)
/// and, with the `cuda` feature, `Cuda` (dfdx's operations).
pub trait FastDense<E: Dtype>: FastActivations<E> {
    /// `act(x Wᵀ + b)` on `x`'s tape.
    fn dense<B: Dim, const I: usize, const O: usize, A: Activation, T: Tape<E, Self>>(
        x: Tensor<(B, Const<I>), E, Self, T>,
        weight: &Tensor<Rank2<O, I>, E, Self>,
        bias: &Tensor<Rank1<O>, E, Self>,
    ) -> DenseResult<B, O, E, Self, T>;

    /// A stack of layers ([`Mlp`](super::Mlp)) on `x`'s tape: the layers called one by one,
    /// unless the device fuses them (the CPU does).
    fn mlp<B: Dim, const I: usize, L: Layers<E, Self, I>, T: Tape<E, Self>>(
        x: Tensor<(B, Const<I>), E, Self, T>,
        layers: &L,
    ) -> MlpResult<B, L::Out, E, Self, T> {
        layers.sequential(x)
    }
}

/// A tensor's values in a pooled host buffer (one memcpy; dfdx 0.13 offers no borrowed view).
pub(crate) fn host<S: Shape, E: DenseFloat, T>(t: &Tensor<S, E, Cpu, T>) -> Buf<E> {
    let mut buf = Buf::take(t.shape().num_elements());
    t.copy_into(&mut buf);
    buf
}

macro_rules! cpu_dense {
    ($($t:ty),*) => {$(
        impl FastDense<$t> for Cpu {
            fn dense<B: Dim, const I: usize, const O: usize, A: Activation, T: Tape<$t, Self>>(
                x: Tensor<(B, Const<I>), $t, Self, T>,
                weight: &Tensor<Rank2<O, I>, $t, Self>,
                bias: &Tensor<Rank1<O>, $t, Self>,
            ) -> DenseResult<B, O, $t, Self, T> {
                cpu_dense::<B, I, O, A, $t, T>(x, weight, bias)
            }
            fn mlp<B: Dim, const I: usize, L: Layers<$t, Self, I>, T: Tape<$t, Self>>(
                x: Tensor<(B, Const<I>), $t, Self, T>,
                layers: &L,
            ) -> MlpResult<B, L::Out, $t, Self, T> {
                super::mlp::cpu_mlp::<B, I, L, $t, T>(x, layers)
            }
        }
    )*};
}
cpu_dense!(f32, f64);

/// The CPU layer, generic over the element type (kept free of `where` clauses on `Cpu`, which
/// would hide that `Cpu`'s gradient buffers are plain vectors).
fn cpu_dense<
    B: Dim,
    const I: usize,
    const O: usize,
    A: Activation,
    E: DenseFloat,
    T: Tape<E, Cpu>,
>(
    x: Tensor<(B, Const<I>), E, Cpu, T>,
    weight: &Tensor<Rank2<O, I>, E, Cpu>,
    bias: &Tensor<Rank1<O>, E, Cpu>,
) -> DenseResult<B, O, E, Cpu, T> {
    // `contiguous` is free for the usual input and lays out views (broadcasts, slices).
    let (x, mut tape) = x.try_contiguous()?.split_tape();
    let weight = weight.clone().try_contiguous()?;
    let bias = bias.clone().try_contiguous()?;
    let rows = x.shape().0.size();
    let xs = host(&x);
    let ws = host(&weight);
    let bs = host(&bias);
    // y = x Wᵀ, then bias and activation in one pass while y is in cache (for the activations
    // whose derivative needs the pre-activation on a tape: bias, keep a copy, activation).
    let mut y = Buf::<E>::take_to_hand_over(rows * O);
    let z = if T::OWNS_TAPE && A::KEPT == Kept::PreActivation {
        matmul::forward_then(rows, I, O, &xs, &ws, &mut y, &|yb| {
            matmul::add_bias(yb, &bs)
        });
        let mut z = Buf::<E>::take(rows * O);
        z.copy_from_slice(&y);
        threads::by_rows(rows, &mut y, O, |_, yb| A::apply(yb));
        Some(z)
    } else {
        // For a narrow input (the first layer) block by block, each block still in L1.
        matmul::forward_then(rows, I, O, &xs, &ws, &mut y, &|yb| A::apply_biased(yb, &bs));
        None
    };
    let keep_output = T::OWNS_TAPE && A::KEPT == Kept::Output;
    let (out, y) = handoff::to_tensor(x.device(), (x.shape().0, Const::<O>), y, keep_output)?;
    if T::OWNS_TAPE {
        let kept = A::KEPT.pick(y, z);
        let (x_g, w_g, b_g, out_g) = (x.ghost(), weight.ghost(), bias.ghost(), out.ghost());
        tape.add_backward_op(move |grads| {
            // d = ȳ ⊙ act'(·) (row blocks over rayon's threads), then the bias cotangent Σ_rows d
            // in row order (into a buffer of ours: dfdx lends one gradient buffer at a time).
            let mut d = Buf::<E>::take(rows * O);
            {
                let g: &[E] = grads.get_or_alloc_mut(&out_g)?;
                let kept = kept.as_deref();
                threads::by_rows(rows, &mut d, O, |r, db| {
                    let span = r.start * O..r.end * O;
                    let k = kept.map(|k| &k[span.clone()]);
                    activation::cotangent::<A, E>(k, &g[span], db);
                });
            }
            let mut sums = Buf::<E>::take(O);
            sums.fill(E::ZERO);
            matmul::bias_grad(rows, O, &d, &mut sums);
            matmul::add_into(grads.get_or_alloc_mut(&b_g)?, &sums);
            matmul::weight_grad(rows, I, O, &d, &xs, grads.get_or_alloc_mut(&w_g)?);
            matmul::input_grad(rows, I, O, &d, &ws, grads.get_or_alloc_mut(&x_g)?);
            Ok(())
        });
    }
    Ok(out.put_tape(tape))
}

#[cfg(feature = "cuda")]
macro_rules! cuda_dense {
    ($($t:ty),*) => {$(
        impl FastDense<$t> for Cuda {
            fn dense<B: Dim, const I: usize, const O: usize, A: Activation, T: Tape<$t, Self>>(
                x: Tensor<(B, Const<I>), $t, Self, T>,
                weight: &Tensor<Rank2<O, I>, $t, Self>,
                bias: &Tensor<Rank1<O>, $t, Self>,
            ) -> DenseResult<B, O, $t, Self, T> {
                let y = x.try_matmul(weight.retaped::<T>().try_permute()?)?;
                let shape = *y.shape();
                let y = y.try_add(bias.retaped::<T>().try_broadcast_like(&shape)?)?;
                A::on_tape(y)
            }
        }
    )*};
}

#[cfg(feature = "cuda")]
cuda_dense!(f32, f64);

#[cfg(test)]
mod tests;
