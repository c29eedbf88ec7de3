//! A stack of [`Dense`] layers evaluated as one operation: [`Mlp`].

use dfdx::nn::tensor_collection::{ModuleVisitor, TensorCollection};
use dfdx::nn::{BuildOnDevice, Module, NonMutableModule};
use dfdx::prelude::*;

use super::activation::{Activation, Kept};
use super::apply::DenseFloat;
use super::dense::{host, Dense, FastDense};
use super::handoff;
use super::matmul;
use super::pool::Buf;
use super::threads::off_pool;

mod engine;
#[cfg(test)]
mod tests;

use engine::{Engine, Spec};

/// A multilayer perceptron: a tuple of [`Dense`] layers, each feeding the next, evaluated as
/// **one** operation with one backward operation.
///
/// `Mlp<(Dense<2, 64, Tanh, E, D>, Dense<64, 64, Tanh, E, D>, Dense<64, 2, Identity, E, D>)>`
/// computes what the tuple computes (on the CPU the same bits: the same kernels, rows and
/// order), with 1 to 6 layers. What changes is the work around the arithmetic:
///
/// - only the network's input and output are dfdx tensors; the hidden activations live in pooled
///   host buffers, so a hidden layer's output is neither handed to dfdx nor copied back out of it,
///   and one entry goes on the tape instead of one per layer;
/// - on a tape it keeps each hidden output once (the layers one by one keep it twice: as one
///   layer's output and as the next one's input);
/// - the batch is cut into blocks of rows once, and each block goes through every layer before
///   the next starts (its activations stay in cache), shared with rayon's threads
///   ([`threads`](super::threads)): one hand-off per evaluation instead of one per layer.
///
/// The parameters are the tuple's, under the same names prefixed with `0.` (as dfdx's
/// `AddInto` does), so optimisers and `alloc_grads` see them as usual. Build it like the tuple:
///
/// ```
/// use neural_ode_runtime::nn::{builders, Identity, Mlp, Tanh};
/// use dfdx::prelude::*;
///
/// let dev = Cpu::default();
/// type Net = Mlp<(builders::Dense<2, 32, Tanh>, builders::Dense<32, 2, Identity>)>;
/// let net = dev.build_module::<Net, f64>();
/// let x: Tensor<(usize, Const<2>), f64, Cpu> = dev.sample_normal_like(&(8, Const));
/// let y = net.forward(x.leaky_trace());
/// let grads = y.square().sum::<Rank0, _>().backward();
/// assert_eq!(grads.get(&(net.0).0.weight).shape(), &(Const::<32>, Const::<2>));
/// ```
///
/// On CUDA it calls the layers one by one.
#[derive(Clone, Debug, Default)]
pub struct Mlp<L>(pub L);

impl<L: BuildOnDevice<D, E>, D: Device<E>, E: Dtype> BuildOnDevice<D, E> for Mlp<L> {
    type Built = Mlp<L::Built>;
}

impl<E: Dtype, D: Device<E>, L: TensorCollection<E, D>> TensorCollection<E, D> for Mlp<L> {
    type To<E2: Dtype, D2: Device<E2>> = Mlp<L::To<E2, D2>>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(Self::module("0", |s| &s.0, |s| &mut s.0), Mlp)
    }
}

impl<L> NonMutableModule for Mlp<L> {}

/// Tuples of 1 to 6 [`Dense`] layers whose widths chain, taking `I` features; see [`Mlp`].
pub trait Layers<E: Dtype, D: Storage<E>, const I: usize> {
    /// The last layer's width, `Const<O>`.
    type Out: ConstDim + Default;
    /// Calls `v` on each layer in order (for the fused evaluation).
    #[doc(hidden)]
    fn visit<V: LayerVisitor<E, D>>(&self, v: &mut V);
    /// The layers called one by one.
    fn sequential<B: Dim, T: Tape<E, D>>(
        &self,
        x: Tensor<(B, Const<I>), E, D, T>,
    ) -> MlpResult<B, Self::Out, E, D, T>
    where
        D: FastDense<E>;
}

/// A stack's output for a batch `B`, or the device's error.
pub type MlpResult<B, O, E, D, T> = Result<Tensor<(B, O), E, D, T>, <D as HasErr>::Err>;

/// What visits the layers of a [`Layers`] (not meant to be implemented outside this crate).
#[doc(hidden)]
pub trait LayerVisitor<E: Dtype, D: Storage<E>> {
    fn layer<const I: usize, const O: usize, A: Activation>(&mut self, l: &Dense<I, O, A, E, D>);
}

macro_rules! layers {
    ($in:ident => $out:ident: $([$i:ident $o:ident $a:ident $idx:tt])+) => {
        impl<E: Dtype, D: FastDense<E>, const $in: usize, $(const $o: usize, $a: Activation),+>
            Layers<E, D, $in> for ($(Dense<$i, $o, $a, E, D>,)+)
        {
            type Out = Const<$out>;
            fn visit<V: LayerVisitor<E, D>>(&self, v: &mut V) {
                $(v.layer(&self.$idx);)+
            }
            fn sequential<B: Dim, T: Tape<E, D>>(
                &self,
                x: Tensor<(B, Const<$in>), E, D, T>,
            ) -> Result<Tensor<(B, Const<$out>), E, D, T>, D::Err>
            where
                D: FastDense<E>,
            {
                $(let x = self.$idx.try_forward(x)?;)+
                Ok(x)
            }
        }
    };
}
layers!(N0 => N1: [N0 N1 A1 0]);
layers!(N0 => N2: [N0 N1 A1 0] [N1 N2 A2 1]);
layers!(N0 => N3: [N0 N1 A1 0] [N1 N2 A2 1] [N2 N3 A3 2]);
layers!(N0 => N4: [N0 N1 A1 0] [N1 N2 A2 1] [N2 N3 A3 2] [N3 N4 A4 3]);
layers!(N0 => N5: [N0 N1 A1 0] [N1 N2 A2 1] [N2 N3 A3 2] [N3 N4 A4 3] [N4 N5 A5 4]);
layers!(N0 => N6: [N0 N1 A1 0] [N1 N2 A2 1] [N2 N3 A3 2] [N3 N4 A4 3] [N4 N5 A5 4] [N5 N6 A6 5]);

impl<B, const I: usize, L, E, D, T> Module<Tensor<(B, Const<I>), E, D, T>> for Mlp<L>
where
    B: Dim,
    L: Layers<E, D, I>,
    E: Dtype,
    D: FastDense<E>,
    T: Tape<E, D>,
{
    type Output = Tensor<(B, L::Out), E, D, T>;
    type Error = D::Err;

    fn try_forward(&self, x: Tensor<(B, Const<I>), E, D, T>) -> Result<Self::Output, D::Err> {
        D::mlp::<B, I, L, T>(x, &self.0)
    }
}

impl<const I: usize, L, E, D, T> Module<Tensor<(Const<I>,), E, D, T>> for Mlp<L>
where
    L: Layers<E, D, I>,
    E: Dtype,
    D: FastDense<E>,
    T: Tape<E, D>,
{
    type Output = Tensor<(L::Out,), E, D, T>;
    type Error = D::Err;

    fn try_forward(&self, x: Tensor<(Const<I>,), E, D, T>) -> Result<Self::Output, D::Err> {
        let x = x.try_reshape_like(&(Const::<1>, Const::<I>))?;
        D::mlp::<Const<1>, I, L, T>(x, &self.0)?.try_reshape_like(&(L::Out::default(),))
    }
}

/// A layer collected for the CPU engine: its [`Spec`], and how to add its weight and bias
/// cotangents into a `Gradients` (which needs the parameters' typed ghosts).
struct Collected<E: DenseFloat> {
    spec: Spec<E>,
    add_grads: AddGrads<E>,
}

/// `(gradients, rows, the layer's cotangent d, the layer's input x)`: `w̄ += dᵀ x`, `b̄ += Σ d`.
type AddGrads<E> = Box<dyn Fn(&mut Gradients<E, Cpu>, usize, &[E], &[E]) -> Result<(), CpuError>>;

/// The visitor that collects the layers for the CPU engine.
struct Collect<E: DenseFloat> {
    layers: Vec<Collected<E>>,
    err: Option<CpuError>,
}

impl<E: DenseFloat> LayerVisitor<E, Cpu> for Collect<E> {
    fn layer<const I: usize, const O: usize, A: Activation>(&mut self, l: &Dense<I, O, A, E, Cpu>) {
        let params = (|| Ok((host(&l.weight.clone().try_contiguous()?), host(&l.bias))))();
        let (w, b): (Buf<E>, Buf<E>) = match params {
            Ok(p) => p,
            Err(e) => {
                self.err.get_or_insert(e);
                return;
            }
        };
        let (w_g, b_g) = (l.weight.ghost(), l.bias.ghost());
        let add_grads: AddGrads<E> = Box::new(move |grads, rows, d, x| {
            // As `Dense`'s backward pass does it, for the same bits.
            let mut sums = Buf::<E>::take(O);
            sums.fill(E::ZERO);
            matmul::bias_grad(rows, O, d, &mut sums);
            matmul::add_into(grads.get_or_alloc_mut(&b_g)?, &sums);
            matmul::weight_grad(rows, I, O, d, x, grads.get_or_alloc_mut(&w_g)?);
            Ok(())
        });
        let wt = matmul::transposed_if_narrow(I, O, &w);
        self.layers.push(Collected {
            spec: Spec {
                i: I,
                o: O,
                w,
                wt,
                b,
                kept: A::KEPT,
                apply: A::apply::<E>,
                apply_biased: A::apply_biased::<E>,
                derivative: A::derivative::<E>,
            },
            add_grads,
        });
    }
}

/// `values` in a pooled buffer.
fn host_copy<E: DenseFloat>(values: &[E]) -> Buf<E> {
    let mut buf = Buf::take(values.len());
    buf.copy_from_slice(values);
    buf
}

/// The CPU evaluation: the engine's forward pass, and on a tape one backward operation.
pub(crate) fn cpu_mlp<B, const I: usize, L, E, T>(
    x: Tensor<(B, Const<I>), E, Cpu, T>,
    layers: &L,
) -> MlpResult<B, L::Out, E, Cpu, T>
where
    B: Dim,
    L: Layers<E, Cpu, I>,
    E: DenseFloat + Engine,
    T: Tape<E, Cpu>,
{
    let (x, mut tape) = x.try_contiguous()?.split_tape();
    let rows = x.shape().0.size();
    let mut collect = Collect::<E> {
        layers: Vec::new(),
        err: None,
    };
    layers.visit(&mut collect);
    if let Some(e) = collect.err {
        return Err(e);
    }
    let (specs, adds): (Vec<Spec<E>>, Vec<AddGrads<E>>) = collect
        .layers
        .into_iter()
        .map(|c| (c.spec, c.add_grads))
        .unzip();
    let xs = host(&x);
    let (y, trace) = off_pool(|| <E as Engine>::forward(rows, &specs, &xs, T::OWNS_TAPE));
    let keep_last = T::OWNS_TAPE && specs[specs.len() - 1].kept == Kept::Output;
    let shape = (x.shape().0, L::Out::default());
    let (out, last) = handoff::to_tensor(x.device(), shape, y, keep_last)?;
    if let Some(trace) = trace {
        let (x_g, out_g) = (x.ghost(), out.ghost());
        tape.add_backward_op(move |grads| {
            off_pool(|| {
                let last = last.as_deref();
                // The output's cotangent, copied: dfdx lends one gradient buffer at a time, and the
                // input's is written while this is read.
                let g = host_copy(grads.get_or_alloc_mut(&out_g)?);
                let ds = E::backward(
                    rows,
                    &specs,
                    &trace,
                    last,
                    &g,
                    grads.get_or_alloc_mut(&x_g)?,
                );
                for (l, (add, d)) in adds.iter().zip(&ds).enumerate() {
                    let input: &[E] = if l == 0 { &xs } else { &trace.ys[l - 1] };
                    add(grads, rows, d, input)?;
                }
                Ok(())
            })
        });
    }
    Ok(out.put_tape(tape))
}
