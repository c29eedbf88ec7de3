//! The arithmetic of a fused [`Mlp`](super::Mlp) on host buffers, block of rows by block of rows.
//!
//! A block of rows goes through every layer before the next block starts, so its intermediate
//! activations stay in cache; the blocks are shared with rayon's threads
//! ([`threads::share`](crate::nn::threads)). Each layer's product, bias and activation, and each
//! cotangent, is computed by the same kernels, on the same rows and in the same order as a
//! [`Dense`](crate::nn::Dense) layer computes it, so a fused stack gives the bits of its layers
//! called one by one (tested), for every thread count.

use std::ops::Range;

use crate::nn::activation::Kept;
use crate::nn::apply::DenseFloat;
use crate::nn::matmul::{self, Isa};
use crate::nn::pool::Buf;
use crate::nn::threads::{helpers, row_blocks, share, split_rows, splits, PAR_ROWS};

/// One layer as the engine sees it: its shape, its parameters on the host (and the weight
/// transposed where the kernels want it), and its activation's passes.
pub(crate) struct Spec<E: DenseFloat> {
    pub i: usize,
    pub o: usize,
    pub w: Buf<E>,
    pub wt: Vec<E>,
    pub b: Buf<E>,
    pub kept: Kept,
    pub apply: fn(&mut [E]),
    pub apply_biased: fn(&mut [E], &[E]),
    pub derivative: fn(&[E], &[E], &mut [E]),
}

/// What a forward pass on a tape keeps for the backward pass: every layer's output but the
/// last's (the next layer's input, and the activation's derivative for `Tanh` and `Sigmoid`),
/// and the pre-activation of the layers whose derivative needs it (`Softplus`, `Silu`).
pub(crate) struct Trace<E: DenseFloat> {
    pub ys: Vec<Buf<E>>,
    pub zs: Vec<Option<Buf<E>>>,
}

/// The engine for `f32` and `f64`: each method a non-generic function compiled (and optimised)
/// in this crate, as the products' [`Kernels`](crate::nn::matmul::Kernels) are, so that a
/// user's debug build still runs optimised loops.
pub(crate) trait Engine: DenseFloat {
    fn forward(rows: usize, specs: &[Spec<Self>], x: &[Self], trace: bool) -> Forward<Self>;
    fn backward(
        rows: usize,
        specs: &[Spec<Self>],
        trace: &Trace<Self>,
        last: Option<&[Self]>,
        g: &[Self],
        x_bar: &mut [Self],
    ) -> Vec<Buf<Self>>;
}

/// The output of a forward pass, and the trace when asked for.
pub(crate) type Forward<E> = (Buf<E>, Option<Trace<E>>);

macro_rules! engine {
    ($($t:ty),*) => {$(
        impl Engine for $t {
            fn forward(rows: usize, specs: &[Spec<Self>], x: &[Self], trace: bool) -> Forward<Self> {
                forward(rows, specs, x, trace)
            }
            fn backward(
                rows: usize,
                specs: &[Spec<Self>],
                trace: &Trace<Self>,
                last: Option<&[Self]>,
                g: &[Self],
                x_bar: &mut [Self],
            ) -> Vec<Buf<Self>> {
                backward(rows, specs, trace, last, g, x_bar)
            }
        }
    )*};
}
engine!(f32, f64);

/// The rows of a batch as blocks: of [`block_rows`] where the batch splits and other threads can
/// help, else one block. (One block on one thread: a wide layer's product on the whole batch is
/// one `gemm` call, which packs the weight once. The bits are the same either way: every kernel
/// computes a row alike whichever rows, at least [`PAR_ROWS`] of them, come with it.)
fn cut<E: DenseFloat>(rows: usize, specs: &[Spec<E>]) -> Vec<Range<usize>> {
    if splits(rows) && helpers() > 0 {
        row_blocks(rows, block_rows(specs))
    } else {
        std::iter::once(0..rows).collect()
    }
}

/// Rows per block: [`PAR_ROWS`], doubled when a layer is at least 128 wide (measured at
/// W = 256: each block's `gemm` call packs the weight again, and 128 rows make the block's
/// product worth it; 2–4 % faster). A function of the shape, never of the threads.
fn block_rows<E: DenseFloat>(specs: &[Spec<E>]) -> usize {
    let widest = specs.iter().map(|s| s.i.max(s.o)).max().unwrap_or(0);
    if widest >= 128 {
        2 * PAR_ROWS
    } else {
        PAR_ROWS
    }
}

/// One layer on a block of `n` rows: `y = act(input wᵀ + b)`, keeping the pre-activation in `z`
/// when given (as [`Dense`](crate::nn::Dense) does on a tape).
fn layer<E: DenseFloat>(
    isa: Isa,
    n: usize,
    s: &Spec<E>,
    input: &[E],
    y: &mut [E],
    z: Option<&mut [E]>,
) {
    let shape = (s.i, s.o);
    match z {
        Some(z) => {
            let bias = |yb: &mut [E]| matmul::add_bias(yb, &s.b);
            matmul::forward_then_rows(isa, 0..n, shape, input, &s.w, &s.wt, y, &bias);
            z.copy_from_slice(y);
            (s.apply)(y);
        }
        None => {
            let act = |yb: &mut [E]| (s.apply_biased)(yb, &s.b);
            matmul::forward_then_rows(isa, 0..n, shape, input, &s.w, &s.wt, y, &act);
        }
    }
}

/// The stack's output (rows × the last layer's width) for the input `x` (rows × the first
/// layer's), and, with `trace`, what the backward pass needs.
fn forward<E: DenseFloat>(rows: usize, specs: &[Spec<E>], x: &[E], trace: bool) -> Forward<E> {
    let last = specs.len() - 1;
    let mut out = Buf::<E>::take_to_hand_over(rows * specs[last].o);
    let cut = cut(rows, specs);
    let isa = Isa::best();
    if !trace {
        let outs = split_rows(&mut out, specs[last].o, &cut);
        let items: Vec<_> = cut.iter().cloned().zip(outs).collect();
        share(items, &|(r, out): (Range<usize>, &mut [E])| {
            let n = r.len();
            let mut prev: Option<Buf<E>> = None;
            for (l, s) in specs.iter().enumerate() {
                let input: &[E] = match &prev {
                    Some(p) => p,
                    None => &x[r.start * s.i..r.end * s.i],
                };
                if l == last {
                    layer(isa, n, s, input, out, None);
                } else {
                    let mut y = Buf::<E>::take(n * s.o);
                    layer(isa, n, s, input, &mut y, None);
                    prev = Some(y);
                }
            }
        });
        return (out, None);
    }
    let mut ys: Vec<Buf<E>> = specs[..last]
        .iter()
        .map(|s| Buf::take(rows * s.o))
        .collect();
    let mut zs: Vec<Option<Buf<E>>> = specs
        .iter()
        .map(|s| (s.kept == Kept::PreActivation).then(|| Buf::take(rows * s.o)))
        .collect();
    {
        // Per block: its rows of every layer's output and pre-activation.
        let mut y_parts: Vec<_> = ys
            .iter_mut()
            .zip(specs)
            .map(|(y, s)| split_rows(y, s.o, &cut).into_iter())
            .collect();
        let mut z_parts: Vec<_> = zs
            .iter_mut()
            .zip(specs)
            .map(|(z, s)| z.as_mut().map(|z| split_rows(z, s.o, &cut).into_iter()))
            .collect();
        let outs = split_rows(&mut out, specs[last].o, &cut);
        let items: Vec<_> = cut
            .iter()
            .cloned()
            .zip(outs)
            .map(|(r, out)| {
                let ys: Vec<&mut [E]> = y_parts.iter_mut().filter_map(Iterator::next).collect();
                let zs: Vec<Option<&mut [E]>> = z_parts
                    .iter_mut()
                    .map(|z| z.as_mut().and_then(Iterator::next))
                    .collect();
                (r, ys, zs, out)
            })
            .collect();
        share(items, &|(r, mut ys, mut zs, out)| {
            let n = r.len();
            for (l, s) in specs.iter().enumerate() {
                let (before, from) = ys.split_at_mut(l);
                let input: &[E] = match l {
                    0 => &x[r.start * s.i..r.end * s.i],
                    _ => before[l - 1],
                };
                let y: &mut [E] = if l == last { &mut *out } else { &mut *from[0] };
                layer(isa, n, s, input, y, zs[l].as_deref_mut());
            }
        });
    }
    (out, Some(Trace { ys, zs }))
}

/// What the activation of layer `l` kept, for its derivative: its output (`ys[l]`, or `last`
/// for the last layer) or its pre-activation.
fn kept<'a, E: DenseFloat>(
    specs: &[Spec<E>],
    trace: &'a Trace<E>,
    last: Option<&'a [E]>,
    l: usize,
) -> Option<&'a [E]> {
    match specs[l].kept {
        Kept::Nothing => None,
        Kept::Output if l + 1 == specs.len() => last,
        Kept::Output => Some(&trace.ys[l]),
        Kept::PreActivation => trace.zs[l].as_deref(),
    }
}

/// `d = g ⊙ act'(·)` for the rows given (`kept` those rows of what the activation kept).
fn cotangent<E: DenseFloat>(s: &Spec<E>, kept: Option<&[E]>, g: &[E], d: &mut [E]) {
    match kept {
        Some(k) => (s.derivative)(k, g, d),
        None => d.copy_from_slice(g),
    }
}

/// From the output's cotangent `g`: every layer's cotangent at its pre-activation (returned,
/// layer by layer, for the weight and bias cotangents), and the input's cotangent added into
/// `x_bar`, block of rows by block of rows (`last` is what the last layer's activation kept, its
/// output for `Tanh` and `Sigmoid`).
fn backward<E: DenseFloat>(
    rows: usize,
    specs: &[Spec<E>],
    trace: &Trace<E>,
    last: Option<&[E]>,
    g: &[E],
    x_bar: &mut [E],
) -> Vec<Buf<E>> {
    let top = specs.len() - 1;
    let mut ds: Vec<Buf<E>> = specs.iter().map(|s| Buf::take(rows * s.o)).collect();
    let cut = cut(rows, specs);
    let isa = Isa::best();
    {
        let mut d_parts: Vec<_> = ds
            .iter_mut()
            .zip(specs)
            .map(|(d, s)| split_rows(d, s.o, &cut).into_iter())
            .collect();
        let x_parts = split_rows(&mut x_bar[..rows * specs[0].i], specs[0].i, &cut);
        let items: Vec<_> = cut
            .iter()
            .cloned()
            .zip(x_parts)
            .map(|(r, xb)| {
                let ds: Vec<&mut [E]> = d_parts.iter_mut().filter_map(Iterator::next).collect();
                (r, ds, xb)
            })
            .collect();
        share(items, &|(r, mut ds, x_bar)| {
            let n = r.len();
            let o = specs[top].o;
            let span = r.start * o..r.end * o;
            let k = kept(specs, trace, last, top).map(|k| &k[span.clone()]);
            cotangent(&specs[top], k, &g[span], ds[top]);
            // Layer l's cotangent gives layer l − 1's output cotangent, then its own.
            for l in (1..=top).rev() {
                let (below, from) = ds.split_at_mut(l);
                let s = &specs[l];
                let mut g = Buf::<E>::take(n * s.i);
                g.fill(E::ZERO);
                matmul::input_grad_rows(isa, (s.i, s.o), from[0], &s.w, &s.wt, &mut g);
                let prev = &specs[l - 1];
                let k = kept(specs, trace, last, l - 1);
                let span = r.start * prev.o..r.end * prev.o;
                cotangent(prev, k.map(|k| &k[span]), &g, below[l - 1]);
            }
            let s = &specs[0];
            matmul::input_grad_rows(isa, (s.i, s.o), ds[0], &s.w, &s.wt, x_bar);
        });
    }
    ds
}
