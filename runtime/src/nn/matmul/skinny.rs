//! Hand-written kernels for the products no crate does well: those with a dimension of at most
//! [`SMALL`] (a 2-feature input layer, a 2-feature output layer and their cotangents). The
//! general-purpose libraries compared in `benches/README.md` spend most of such a 512 × 64 × 2
//! product's time in packing and dispatch; these loops keep the small dimension in registers
//! and stream the long one.
//!
//! Each kernel is plain Rust over slices, written so that the compiler vectorises it, and is
//! compiled for every instruction set in [`Isa`](crate::nn::isa::Isa) (fused multiply–adds on
//! the AVX paths). Sums run in a fixed order on every path, so a path's results depend only on
//! whether it fuses.

use crate::nn::isa::{isa_kernel, Float};

/// The largest dimension the kernels here handle.
pub const SMALL: usize = 4;

/// Dispatches `$f::<E, FMA, K, ACC>` for the runtime `k` in `1..=SMALL` and `acc`.
macro_rules! by_small {
    ($k:expr, $acc:expr, $f:ident::<$e:ty, $fma:ident>($($arg:expr),*)) => {
        match ($k, $acc) {
            (1, true) => $f::<$e, $fma, 1, true>($($arg),*),
            (2, true) => $f::<$e, $fma, 2, true>($($arg),*),
            (3, true) => $f::<$e, $fma, 3, true>($($arg),*),
            (4, true) => $f::<$e, $fma, 4, true>($($arg),*),
            (1, false) => $f::<$e, $fma, 1, false>($($arg),*),
            (2, false) => $f::<$e, $fma, 2, false>($($arg),*),
            (3, false) => $f::<$e, $fma, 3, false>($($arg),*),
            (4, false) => $f::<$e, $fma, 4, false>($($arg),*),
            (k, _) => unreachable!("small dimension {k} > {SMALL}"),
        }
    };
}

isa_kernel!(
    /// `c (m × n) (+)= a (m × k, row stride lda) · b (k × n, row-major)` for `k ≤ SMALL`,
    /// adding to `c` if `acc`, overwriting it (without reading it) otherwise.
    small_k<E> => small_k_body(m: usize, n: usize, k: usize, a: &[E], lda: usize, b: &[E], c: &mut [E], acc: bool)
);

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn small_k_body<E: Float, const FMA: bool>(
    m: usize,
    n: usize,
    k: usize,
    a: &[E],
    lda: usize,
    b: &[E],
    c: &mut [E],
    acc: bool,
) {
    by_small!(k, acc, small_k_fixed::<E, FMA>(m, n, a, lda, b, c))
}

#[inline(always)]
fn small_k_fixed<E: Float, const FMA: bool, const K: usize, const ACC: bool>(
    m: usize,
    n: usize,
    a: &[E],
    lda: usize,
    b: &[E],
    c: &mut [E],
) {
    assert!(b.len() >= K * n && c.len() >= m * n);
    assert!(m == 0 || a.len() >= (m - 1) * lda + K);
    if n == 0 {
        return;
    }
    for (r, cr) in c[..m * n].chunks_exact_mut(n).enumerate() {
        let ar = &a[r * lda..r * lda + K];
        // One pass over the row of c per term, all in L1: c = a_0 b_0 (+ c), then c += a_p b_p.
        // Each pass is a plain zip of two slices, which the compiler vectorises without
        // aliasing checks (an array of row slices held in memory defeated that).
        for (p, brow) in b.chunks_exact(n).take(K).enumerate() {
            let ap = ar[p];
            if p == 0 && !ACC {
                for (cj, bj) in cr.iter_mut().zip(brow) {
                    *cj = ap * *bj;
                }
            } else {
                for (cj, bj) in cr.iter_mut().zip(brow) {
                    *cj = ap.madd::<FMA>(*bj, *cj);
                }
            }
        }
    }
}

isa_kernel!(
    /// `c (m × n) (+)= a (m × k, row-major) · btᵀ` with `bt` (n × k, row-major) for
    /// `n ≤ SMALL`: `n` dot products of length `k` per row of `a`; adds to `c` if `acc`.
    small_n<E> => small_n_body(m: usize, n: usize, k: usize, a: &[E], bt: &[E], c: &mut [E], acc: bool)
);

#[inline(always)]
fn small_n_body<E: Float, const FMA: bool>(
    m: usize,
    n: usize,
    k: usize,
    a: &[E],
    bt: &[E],
    c: &mut [E],
    acc: bool,
) {
    by_small!(n, acc, small_n_fixed::<E, FMA>(m, k, a, bt, c))
}

/// Lanes of the partial sums of one dot product (two 512-bit vectors of `f64`, one of `f32`).
const LANES: usize = 16;

#[inline(always)]
fn small_n_fixed<E: Float, const FMA: bool, const N: usize, const ACC: bool>(
    m: usize,
    k: usize,
    a: &[E],
    bt: &[E],
    c: &mut [E],
) {
    assert!(a.len() >= m * k && bt.len() >= N * k && c.len() >= m * N);
    if k == 0 {
        if !ACC {
            c[..m * N].fill(E::ZERO);
        }
        return;
    }
    let cols: [&[E]; N] = core::array::from_fn(|j| &bt[j * k..(j + 1) * k]);
    let full = k / LANES * LANES;
    for (ar, cr) in a[..m * k].chunks_exact(k).zip(c.chunks_exact_mut(N)) {
        let mut acc = [[E::ZERO; LANES]; N];
        for (ci, chunk) in ar[..full].chunks_exact(LANES).enumerate() {
            for j in 0..N {
                let bj = &cols[j][ci * LANES..(ci + 1) * LANES];
                for l in 0..LANES {
                    acc[j][l] = chunk[l].madd::<FMA>(bj[l], acc[j][l]);
                }
            }
        }
        for j in 0..N {
            // Pairwise reduction of the lanes, then the tail in order.
            let mut width = LANES;
            while width > 1 {
                width /= 2;
                for l in 0..width {
                    acc[j][l] += acc[j][l + width];
                }
            }
            let mut s = acc[j][0];
            for p in full..k {
                s = ar[p].madd::<FMA>(cols[j][p], s);
            }
            cr[j] = if ACC { cr[j] + s } else { s };
        }
    }
}

isa_kernel!(
    /// `c (s × n, row-major) += Σ_r sm[r, ·]ᵀ ⊗ l[r, ·]` (always accumulating) over `m` rows, with `sm` (m × s, row
    /// stride lds) and `l` (m × n, row-major), for `s ≤ SMALL`: a weight cotangent `dᵀ x` whose
    /// output (or input) side is small.
    outer<E> => outer_body(m: usize, s: usize, n: usize, sm: &[E], lds: usize, l: &[E], c: &mut [E])
);

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn outer_body<E: Float, const FMA: bool>(
    m: usize,
    s: usize,
    n: usize,
    sm: &[E],
    lds: usize,
    l: &[E],
    c: &mut [E],
) {
    by_small!(s, true, outer_fixed::<E, FMA>(m, n, sm, lds, l, c))
}

/// Columns of `l` accumulated per pass over the rows (four 512-bit vectors of `f64`).
const BLOCK: usize = 32;

#[inline(always)]
fn outer_fixed<E: Float, const FMA: bool, const S: usize, const ACC: bool>(
    m: usize,
    n: usize,
    sm: &[E],
    lds: usize,
    l: &[E],
    c: &mut [E],
) {
    assert!(l.len() >= m * n && c.len() >= S * n);
    assert!(m == 0 || sm.len() >= (m - 1) * lds + S);
    let mut jb = 0;
    while jb + BLOCK <= n {
        let mut acc = [[E::ZERO; BLOCK]; S];
        for r in 0..m {
            let lr = &l[r * n + jb..r * n + jb + BLOCK];
            for q in 0..S {
                let a = sm[r * lds + q];
                for jj in 0..BLOCK {
                    acc[q][jj] = a.madd::<FMA>(lr[jj], acc[q][jj]);
                }
            }
        }
        for q in 0..S {
            for jj in 0..BLOCK {
                c[q * n + jb + jj] += acc[q][jj];
            }
        }
        jb += BLOCK;
    }
    if jb < n {
        let w = n - jb;
        let mut acc = [[E::ZERO; BLOCK]; S];
        for r in 0..m {
            let lr = &l[r * n + jb..r * n + n];
            for q in 0..S {
                let a = sm[r * lds + q];
                for (acc, lv) in acc[q][..w].iter_mut().zip(lr) {
                    *acc = a.madd::<FMA>(*lv, *acc);
                }
            }
        }
        for q in 0..S {
            for jj in 0..w {
                c[q * n + jb + jj] += acc[q][jj];
            }
        }
    }
}

isa_kernel!(
    /// `sums (n) += Σ_r d[r, ·]` over the `m` rows of `d` (m × n, row-major): a bias cotangent.
    column_sums<E> => column_sums_body(m: usize, n: usize, d: &[E], sums: &mut [E])
);

#[inline(always)]
fn column_sums_body<E: Float, const FMA: bool>(m: usize, n: usize, d: &[E], sums: &mut [E]) {
    assert!(d.len() >= m * n && sums.len() >= n);
    if n == 0 {
        return;
    }
    let sums = &mut sums[..n];
    for row in d[..m * n].chunks_exact(n) {
        for (s, v) in sums.iter_mut().zip(row) {
            *s += *v;
        }
    }
}

isa_kernel!(
    /// `y[r, ·] += b` for every row of `y` (rows × b.len()).
    add_rows<E> => add_rows_body(y: &mut [E], b: &[E])
);

#[inline(always)]
fn add_rows_body<E: Float, const FMA: bool>(y: &mut [E], b: &[E]) {
    if b.is_empty() {
        return;
    }
    for row in y.chunks_exact_mut(b.len()) {
        for (v, b) in row.iter_mut().zip(b) {
            *v += *b;
        }
    }
}
