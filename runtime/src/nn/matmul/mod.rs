//! The three matrix products of a dense layer, on row-major slices, with the kernel chosen by
//! shape and instruction set at run time.
//!
//! With `x` (rows × I), the weight `w` (O × I, as stored: dfdx's `Linear` layout) and the output
//! cotangent `d` (rows × O):
//! - [`forward`]: `y = x wᵀ` (the caller adds the bias in the activation's pass);
//! - [`input_grad`]: `x̄ += d w`;
//! - [`weight_grad`]: `w̄ += dᵀ x`;
//! - [`bias_grad`]: `b̄ += Σ_rows d`.
//!
//! Products with a dimension of at most [`SMALL`] (2-feature input and output layers) go to the
//! hand-written kernels in [`skinny`]; the others to [`gemm`](https://docs.rs/gemm) 0.19, whose
//! AVX-512 micro-kernels run on stable Rust (selected at run time, AVX2/FMA or scalar
//! otherwise). Why these: measured on the shapes that matter, see `benches/README.md`.
//!
//! Threads: a batch of at least two blocks ([`splits`]) is split into blocks of
//! [`PAR_ROWS`](super::threads::PAR_ROWS) rows (the forward product and the input cotangent), and the weight cotangent into blocks of
//! [`PAR_OUTPUTS`] of its rows, each summing over the whole batch in row order; the calling
//! thread runs them with the threads of rayon's pool (see [`threads`](super::threads)). A row of
//! a product, and an entry of the weight cotangent, is computed with the same operations in the
//! same order however the work is split, so results are bit-identical for every thread count
//! (tested).

pub mod skinny;

use std::ops::Range;

use super::threads::{blocks, by_rows, helpers, share, splits, PAR_OUTPUTS};

#[cfg(test)]
mod tests;

/// The instruction sets (defined in [`nn::isa`](super::isa), shared with the slice maps).
pub use super::isa::{self, Float, Isa};
pub use skinny::SMALL;

/// `c (m × n, row stride c_rs) (+)= a · b` through `gemm` (adding to `c` if `acc`, overwriting
/// it otherwise), with `a` (m × k) and `b` (k × n) given by row and column strides.
#[allow(clippy::too_many_arguments)]
fn gemm<E: Float>(
    (m, n, k): (usize, usize, usize),
    c: &mut [E],
    c_rs: usize,
    a: &[E],
    (a_rs, a_cs): (usize, usize),
    b: &[E],
    (b_rs, b_cs): (usize, usize),
    acc: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !acc {
            for row in c.chunks_mut(c_rs).take(m) {
                row[..n].fill(E::ZERO);
            }
        }
        return;
    }
    // The strided views must stay inside the slices gemm is given pointers to.
    assert!(c.len() > (m - 1) * c_rs + (n - 1));
    assert!(a.len() > (m - 1) * a_rs + (k - 1) * a_cs);
    assert!(b.len() > (k - 1) * b_rs + (n - 1) * b_cs);
    // SAFETY: every index gemm forms, `i * rs + j * cs` for `i`, `j` inside the dimensions, was
    // bounds-checked just above; `c` is borrowed mutably and does not alias `a` or `b`; `E` is
    // `f32` or `f64`, which gemm dispatches on.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            c_rs as isize,
            acc,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            E::ONE,
            E::ONE,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `t (cols × rows) = sᵀ` for `s` (rows × cols, row-major), into `t`'s first `rows · cols`.
fn transpose_into<E: Float>(rows: usize, cols: usize, s: &[E], t: &mut Vec<E>) {
    t.clear();
    t.resize(rows * cols, E::ZERO);
    for (r, row) in s[..rows * cols].chunks_exact(cols).enumerate() {
        for (c, v) in row.iter().enumerate() {
            t[c * rows + r] = *v;
        }
    }
}

/// `y = x wᵀ` on the rows `r` of `x` (rows × i) into `y` (those rows only), single-threaded;
/// `wt` is `wᵀ` when the input is narrow.
#[allow(clippy::too_many_arguments)]
fn product<E: Float>(
    isa: Isa,
    r: Range<usize>,
    (i, o): (usize, usize),
    x: &[E],
    w: &[E],
    wt: &[E],
    y: &mut [E],
) {
    let (n, x) = (r.len(), &x[r.start * i..r.end * i]);
    if i <= SMALL && i > 0 {
        skinny::small_k(isa, n, o, i, x, i, wt, y, false);
    } else if o <= SMALL && o > 0 {
        skinny::small_n(isa, n, o, i, x, w, y, false);
    } else {
        gemm((n, o, i), y, o, x, (i, 1), w, (1, i), false);
    }
}

/// `wᵀ` when the input is narrow (the kernels for it read the weight transposed), else empty.
pub(crate) fn transposed_if_narrow<E: Float>(i: usize, o: usize, w: &[E]) -> Vec<E> {
    let mut wt = Vec::new();
    if i <= SMALL && i > 0 {
        transpose_into(o, i, w, &mut wt);
    }
    wt
}

/// `y (rows × o) = x (rows × i) · wᵀ` with `w` (o × i); `y` is overwritten, not read.
fn forward_impl<E: Float>(rows: usize, i: usize, o: usize, x: &[E], w: &[E], y: &mut [E]) {
    let isa = Isa::best();
    let wt = transposed_if_narrow(i, o, w);
    by_rows(rows, y, o, |r, yb| product(isa, r, (i, o), x, w, &wt, yb));
}

/// Rows per block where a batch is processed block by block, so that a block (up to 16 KiB of
/// `f64` at width 64) stays in the L1 cache between two passes over it.
pub const BLOCK_ROWS: usize = 32;

/// [`forward_impl`], handing the product to `then` block by block while each block is in cache
/// ([`forward_then_rows`] on each of [`by_rows`]' blocks).
fn forward_then_impl<E: Float>(
    rows: usize,
    i: usize,
    o: usize,
    x: &[E],
    w: &[E],
    y: &mut [E],
    then: &(dyn Fn(&mut [E]) + Sync),
) {
    let isa = Isa::best();
    let wt = transposed_if_narrow(i, o, w);
    by_rows(rows, y, o, |r, yb| {
        forward_then_rows(isa, r, (i, o), x, w, &wt, yb, then)
    });
}

/// `y = x wᵀ` on the rows `r` of `x` into `y` (those rows only), handing the product to `then`
/// while it is in cache: in blocks of [`BLOCK_ROWS`] rows for a narrow input (a cheap product
/// per block, with the weight transposed once: `wt`, see [`transposed_if_narrow`]), at once
/// otherwise (where `gemm`'s cost per call rules out small blocks).
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_then_rows<E: Float>(
    isa: Isa,
    r: Range<usize>,
    (i, o): (usize, usize),
    x: &[E],
    w: &[E],
    wt: &[E],
    y: &mut [E],
    then: &(dyn Fn(&mut [E]) + Sync),
) {
    if i > 0 && i <= SMALL && o > 0 {
        for (k, yc) in y.chunks_mut(BLOCK_ROWS * o).enumerate() {
            let first = r.start + k * BLOCK_ROWS;
            let n = yc.len() / o;
            product(isa, first..first + n, (i, o), x, w, wt, yc);
            then(yc);
        }
    } else {
        product(isa, r, (i, o), x, w, wt, y);
        then(y);
    }
}

/// `x̄ (rows × i) += d (rows × o) · w` with `w` (o × i).
fn input_grad_impl<E: Float>(rows: usize, i: usize, o: usize, d: &[E], w: &[E], x_bar: &mut [E]) {
    let isa = Isa::best();
    let wt = transposed_if_narrow(i, o, w);
    by_rows(rows, x_bar, i, |r, xb| {
        let d = &d[r.start * o..r.end * o];
        input_grad_rows(isa, (i, o), d, w, &wt, xb)
    });
}

/// `x̄ += d · w` for a block of rows: `d` (n × o) and `x̄` (n × i) hold those rows only; `wt` as
/// [`transposed_if_narrow`] gives it.
pub(crate) fn input_grad_rows<E: Float>(
    isa: Isa,
    (i, o): (usize, usize),
    d: &[E],
    w: &[E],
    wt: &[E],
    x_bar: &mut [E],
) {
    let n = d.len().checked_div(o).unwrap_or(0);
    if o <= SMALL && o > 0 {
        skinny::small_k(isa, n, i, o, d, o, w, x_bar, true);
    } else if i <= SMALL && i > 0 {
        skinny::small_n(isa, n, i, o, d, wt, x_bar, true);
    } else {
        gemm((n, i, o), x_bar, i, d, (o, 1), w, (i, 1), true);
    }
}

/// `w̄ (o × i) += dᵀ · x` with `d` (rows × o) and `x` (rows × i).
fn weight_grad_impl<E: Float>(rows: usize, i: usize, o: usize, d: &[E], x: &[E], w_bar: &mut [E]) {
    let isa = Isa::best();
    if o <= SMALL && o > 0 {
        skinny::outer(isa, rows, o, i, d, o, x, w_bar);
    } else if i <= SMALL && i > 0 {
        // w̄ᵀ (i × o) = Σ_r x[r]ᵀ ⊗ d[r], then added transposed.
        let mut acc = vec![E::ZERO; i * o];
        skinny::outer(isa, rows, i, o, x, i, d, &mut acc);
        for (c, col) in acc.chunks_exact(o).enumerate() {
            for (r, v) in col.iter().enumerate() {
                w_bar[r * i + c] += *v;
            }
        }
    } else if splits(rows) && helpers() > 0 {
        // Blocks of w̄'s rows, each summing over the whole batch in row order.
        share(blocks(&mut w_bar[..o * i], i, PAR_OUTPUTS), &|(r, wb)| {
            gemm(
                (r.len(), i, rows),
                wb,
                i,
                &d[r.start..],
                (1, o),
                x,
                (i, 1),
                true,
            );
        });
    } else {
        gemm((o, i, rows), w_bar, i, d, (1, o), x, (i, 1), true);
    }
}

/// `y[r, ·] += b` for every row of `y` (rows × b.len()).
fn add_bias_impl<E: Float>(y: &mut [E], b: &[E]) {
    skinny::add_rows(Isa::best(), y, b);
}

/// `y += x`, element by element (`x` no longer than `y`).
fn add_into_impl<E: Float>(y: &mut [E], x: &[E]) {
    let n = x.len();
    skinny::add_rows(Isa::best(), &mut y[..n], x);
}

/// `b̄ (o) += Σ_r d[r, ·]` with `d` (rows × o).
fn bias_grad_impl<E: Float>(rows: usize, o: usize, d: &[E], b_bar: &mut [E]) {
    skinny::column_sums(Isa::best(), rows, o, d, b_bar);
}

/// The element types with compiled products: `f32` and `f64`. Each method is a non-generic
/// function compiled (and optimised) in this crate, so that generic callers instantiated in a
/// user's crate — unoptimised in its debug builds — still run optimised kernels.
pub trait Kernels: Float {
    /// See [`forward`].
    fn forward(rows: usize, i: usize, o: usize, x: &[Self], w: &[Self], y: &mut [Self]);
    /// See [`forward_then`].
    #[allow(clippy::too_many_arguments)]
    fn forward_then(
        rows: usize,
        i: usize,
        o: usize,
        x: &[Self],
        w: &[Self],
        y: &mut [Self],
        then: &(dyn Fn(&mut [Self]) + Sync),
    );
    /// See [`input_grad`].
    fn input_grad(rows: usize, i: usize, o: usize, d: &[Self], w: &[Self], x_bar: &mut [Self]);
    /// See [`weight_grad`].
    fn weight_grad(rows: usize, i: usize, o: usize, d: &[Self], x: &[Self], w_bar: &mut [Self]);
    /// See [`add_bias`].
    fn add_bias(y: &mut [Self], b: &[Self]);
    /// See [`add_into`].
    fn add_into(y: &mut [Self], x: &[Self]);
    /// See [`bias_grad`].
    fn bias_grad(rows: usize, o: usize, d: &[Self], b_bar: &mut [Self]);
}

macro_rules! kernels {
    ($($t:ty),*) => {$(
        impl Kernels for $t {
            fn forward(rows: usize, i: usize, o: usize, x: &[Self], w: &[Self], y: &mut [Self]) {
                forward_impl(rows, i, o, x, w, y)
            }
            fn forward_then(
                rows: usize,
                i: usize,
                o: usize,
                x: &[Self],
                w: &[Self],
                y: &mut [Self],
                then: &(dyn Fn(&mut [Self]) + Sync),
            ) {
                forward_then_impl(rows, i, o, x, w, y, then)
            }
            fn input_grad(rows: usize, i: usize, o: usize, d: &[Self], w: &[Self], x_bar: &mut [Self]) {
                input_grad_impl(rows, i, o, d, w, x_bar)
            }
            fn weight_grad(rows: usize, i: usize, o: usize, d: &[Self], x: &[Self], w_bar: &mut [Self]) {
                weight_grad_impl(rows, i, o, d, x, w_bar)
            }
            fn add_bias(y: &mut [Self], b: &[Self]) {
                add_bias_impl(y, b)
            }
            fn add_into(y: &mut [Self], x: &[Self]) {
                add_into_impl(y, x)
            }
            fn bias_grad(rows: usize, o: usize, d: &[Self], b_bar: &mut [Self]) {
                bias_grad_impl(rows, o, d, b_bar)
            }
        }
    )*};
}
kernels!(f32, f64);

/// `y (rows × o) = x (rows × i) · wᵀ` with `w` (o × i); `y` is overwritten, not read.
pub fn forward<E: Kernels>(rows: usize, i: usize, o: usize, x: &[E], w: &[E], y: &mut [E]) {
    E::forward(rows, i, o, x, w, y)
}

/// `y = x wᵀ` as [`forward`], then `then` on the product, block by block while each block is in
/// cache where the shape allows (a narrow input), or once on the whole product: a dense layer's
/// bias and activation pass without another trip through memory.
pub fn forward_then<E: Kernels>(
    rows: usize,
    i: usize,
    o: usize,
    x: &[E],
    w: &[E],
    y: &mut [E],
    then: &(dyn Fn(&mut [E]) + Sync),
) {
    E::forward_then(rows, i, o, x, w, y, then)
}

/// `x̄ (rows × i) += d (rows × o) · w` with `w` (o × i).
pub fn input_grad<E: Kernels>(rows: usize, i: usize, o: usize, d: &[E], w: &[E], x_bar: &mut [E]) {
    E::input_grad(rows, i, o, d, w, x_bar)
}

/// `w̄ (o × i) += dᵀ · x` with `d` (rows × o) and `x` (rows × i).
pub fn weight_grad<E: Kernels>(rows: usize, i: usize, o: usize, d: &[E], x: &[E], w_bar: &mut [E]) {
    E::weight_grad(rows, i, o, d, x, w_bar)
}

/// `y[r, ·] += b` for every row of `y` (rows × b.len()).
pub fn add_bias<E: Kernels>(y: &mut [E], b: &[E]) {
    E::add_bias(y, b)
}

/// `y += x`, element by element (`x` no longer than `y`).
pub fn add_into<E: Kernels>(y: &mut [E], x: &[E]) {
    E::add_into(y, x)
}

/// `b̄ (o) += Σ_r d[r, ·]` with `d` (rows × o).
pub fn bias_grad<E: Kernels>(rows: usize, o: usize, d: &[E], b_bar: &mut [E]) {
    E::bias_grad(rows, o, d, b_bar)
}
