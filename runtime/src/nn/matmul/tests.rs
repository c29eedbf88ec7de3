//! Every product against a plain triple loop, on the shapes a dense layer produces (including the
//! boundaries between kernels), for every instruction set this CPU has.

use super::*;

/// A deterministic pseudo-random matrix with entries in [-1, 1).
fn mat(len: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect()
}

/// `c += a · b` with `a[r, p] = fa(r, p)`, `b[p, j] = fb(p, j)`, and the bound
/// `Σ_p |a[r, p] b[p, j]|` for each entry (the scale of its rounding error).
fn reference(
    (m, n, k): (usize, usize, usize),
    fa: impl Fn(usize, usize) -> f64,
    fb: impl Fn(usize, usize) -> f64,
    c: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let mut out = c.to_vec();
    let mut scale = vec![0.0; m * n];
    for r in 0..m {
        for j in 0..n {
            for p in 0..k {
                out[r * n + j] += fa(r, p) * fb(p, j);
                scale[r * n + j] += (fa(r, p) * fb(p, j)).abs();
            }
            scale[r * n + j] += c[r * n + j].abs();
        }
    }
    (out, scale)
}

fn close<E: Float + Into<f64>>(got: &[E], want: &[f64], scale: &[f64], eps: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (idx, ((g, w), s)) in got.iter().zip(want).zip(scale).enumerate() {
        let g: f64 = (*g).into();
        // Each of the k + 1 terms may round once, in any summation order.
        assert!(
            (g - w).abs() <= 4.0 * eps * s + 1e-300,
            "{what}: entry {idx}: {g} vs {w} (scale {s})"
        );
    }
}

trait TestFloat: Kernels + Into<f64> {
    const EPS: f64;
    fn from(v: f64) -> Self;
}
impl TestFloat for f64 {
    const EPS: f64 = f64::EPSILON;
    fn from(v: f64) -> Self {
        v
    }
}
impl TestFloat for f32 {
    const EPS: f64 = f32::EPSILON as f64;
    fn from(v: f64) -> Self {
        v as f32
    }
}

fn conv<E: TestFloat>(v: &[f64]) -> Vec<E> {
    v.iter().map(|&x| E::from(x)).collect()
}
fn back<E: TestFloat>(v: &[E]) -> Vec<f64> {
    v.iter().map(|&x| x.into()).collect()
}

/// The three products and the bias sum for one layer shape.
fn layer<E: TestFloat>(rows: usize, i: usize, o: usize) {
    let seed = (rows * 1000 + i * 10 + o) as u64;
    let x: Vec<E> = conv(&mat(rows * i, seed));
    let w: Vec<E> = conv(&mat(o * i, seed + 1));
    let d: Vec<E> = conv(&mat(rows * o, seed + 2));
    let (xf, wf, df) = (back(&x), back(&w), back(&d));
    let what = |p: &str| {
        format!(
            "{p} rows={rows} i={i} o={o} {}",
            core::any::type_name::<E>()
        )
    };

    // `forward` overwrites: start from garbage.
    let mut y: Vec<E> = conv(&mat(rows * o, seed + 3));
    forward(rows, i, o, &x, &w, &mut y);
    let (want, scale) = reference(
        (rows, o, i),
        |r, p| xf[r * i + p],
        |p, j| wf[j * i + p],
        &vec![0.0; rows * o],
    );
    close(&y, &want, &scale, E::EPS, &what("forward"));

    // `forward_then` gives the same product and hands every entry to `then` exactly once.
    let mut y2: Vec<E> = conv(&mat(rows * o, seed + 9));
    let seen = std::sync::atomic::AtomicUsize::new(0);
    forward_then(rows, i, o, &x, &w, &mut y2, &|block| {
        seen.fetch_add(block.len(), std::sync::atomic::Ordering::Relaxed);
        for v in block.iter_mut() {
            *v += E::ONE;
        }
    });
    assert_eq!(
        seen.into_inner(),
        rows * o,
        "{}",
        what("forward_then coverage")
    );
    let shifted: Vec<f64> = back(&y).iter().map(|v| v + 1.0).collect();
    close(
        &y2,
        &shifted,
        &scale.iter().map(|s| s + 1.0).collect::<Vec<_>>(),
        E::EPS,
        &what("forward_then"),
    );

    let xb0: Vec<E> = conv(&mat(rows * i, seed + 4));
    let mut xb = xb0.clone();
    input_grad(rows, i, o, &d, &w, &mut xb);
    let (want, scale) = reference(
        (rows, i, o),
        |r, p| df[r * o + p],
        |p, j| wf[p * i + j],
        &back(&xb0),
    );
    close(&xb, &want, &scale, E::EPS, &what("input_grad"));

    let wb0: Vec<E> = conv(&mat(o * i, seed + 5));
    let mut wb = wb0.clone();
    weight_grad(rows, i, o, &d, &x, &mut wb);
    let (want, scale) = reference(
        (o, i, rows),
        |r, p| df[p * o + r],
        |p, j| xf[p * i + j],
        &back(&wb0),
    );
    close(&wb, &want, &scale, E::EPS, &what("weight_grad"));

    let bias: Vec<E> = conv(&mat(o, seed + 7));
    let mut yb = y0_for_bias::<E>(rows, o, seed);
    let before = back(&yb);
    add_bias(&mut yb, &bias);
    let bf = back(&bias);
    for (idx, v) in back(&yb).iter().enumerate() {
        assert_eq!(
            *v,
            back::<E>(&[E::from(before[idx]) + E::from(bf[idx % o.max(1)])])[0],
            "{}",
            what("add_bias")
        );
    }

    let bb0: Vec<E> = conv(&mat(o, seed + 6));
    let mut bb = bb0.clone();
    bias_grad(rows, o, &d, &mut bb);
    let (want, scale) = reference((1, o, rows), |_, _| 1.0, |p, j| df[p * o + j], &back(&bb0));
    close(&bb, &want, &scale, E::EPS, &what("bias_grad"));
}

fn y0_for_bias<E: TestFloat>(rows: usize, o: usize, seed: u64) -> Vec<E> {
    conv(&mat(rows * o, seed + 8))
}

const SHAPES: &[(usize, usize, usize)] = &[
    (512, 2, 64),
    (512, 64, 64),
    (512, 64, 2),
    (512, 256, 256),
    // Batches split into tasks on a pool (rows >= 2 PAR_ROWS), with a longer last block.
    (200, 40, 40),
    (130, 3, 33),
    (130, 33, 3),
    (37, 1, 5),
    (37, 5, 1),
    (9, 3, 33),
    (9, 33, 3),
    (17, 4, 4),
    (17, 5, 5),
    (3, 70, 31),
    (1, 2, 2),
    (0, 3, 7),
];

#[test]
fn every_product_matches_a_plain_loop_f64() {
    for &(rows, i, o) in SHAPES {
        layer::<f64>(rows, i, o);
    }
}

#[test]
fn every_product_matches_a_plain_loop_f32() {
    for &(rows, i, o) in SHAPES {
        layer::<f32>(rows, i, o);
    }
}

/// The small kernels on every compiled path: the unfused path bit for bit against a plain loop
/// in the same summation order, the fused paths within rounding of it.
#[test]
fn small_kernels_on_every_instruction_set() {
    let (m, n) = (23, 37);
    for isa in Isa::available() {
        for k in 1..=SMALL {
            let a = mat(m * k, k as u64);
            let b = mat(k * n, 10 + k as u64);
            let c0 = mat(m * n, 20 + k as u64);
            let mut c = c0.clone();
            skinny::small_k(isa, m, n, k, &a, k, &b, &mut c, true);
            let (want, scale) = reference((m, n, k), |r, p| a[r * k + p], |p, j| b[p * n + j], &c0);
            close(
                &c,
                &want,
                &scale,
                f64::EPSILON,
                &format!("small_k {isa:?} k={k}"),
            );
            if isa == Isa::Baseline {
                // Same order as the kernel: c + a0 b0 + a1 b1 + …
                for r in 0..m {
                    for j in 0..n {
                        let mut s = c0[r * n + j];
                        for p in 0..k {
                            s += a[r * k + p] * b[p * n + j];
                        }
                        assert_eq!(s.to_bits(), c[r * n + j].to_bits(), "small_k baseline");
                    }
                }
            }

            // Overwriting: the result must not depend on what `c` held.
            let mut c = vec![f64::NAN; m * n];
            skinny::small_k(isa, m, n, k, &a, k, &b, &mut c, false);
            let (want, scale) = reference(
                (m, n, k),
                |r, p| a[r * k + p],
                |p, j| b[p * n + j],
                &vec![0.0; m * n],
            );
            close(
                &c,
                &want,
                &scale,
                f64::EPSILON,
                &format!("small_k overwrite {isa:?} k={k}"),
            );

            let bt = mat(k * n, 30 + k as u64); // k rows of length n: n-long dots, k outputs
            let a2 = mat(m * n, 40 + k as u64);
            let c0 = mat(m * k, 50 + k as u64);
            let mut c = c0.clone();
            skinny::small_n(isa, m, k, n, &a2, &bt, &mut c, true);
            let (want, scale) =
                reference((m, k, n), |r, p| a2[r * n + p], |p, j| bt[j * n + p], &c0);
            close(
                &c,
                &want,
                &scale,
                f64::EPSILON,
                &format!("small_n {isa:?} n={k}"),
            );
            let mut c = vec![f64::NAN; m * k];
            skinny::small_n(isa, m, k, n, &a2, &bt, &mut c, false);
            let (want, scale) = reference(
                (m, k, n),
                |r, p| a2[r * n + p],
                |p, j| bt[j * n + p],
                &vec![0.0; m * k],
            );
            close(
                &c,
                &want,
                &scale,
                f64::EPSILON,
                &format!("small_n overwrite {isa:?} n={k}"),
            );

            let sm = mat(m * k, 60 + k as u64);
            let l = mat(m * n, 70 + k as u64);
            let c0 = mat(k * n, 80 + k as u64);
            let mut c = c0.clone();
            skinny::outer(isa, m, k, n, &sm, k, &l, &mut c);
            let (want, scale) =
                reference((k, n, m), |q, r| sm[r * k + q], |r, j| l[r * n + j], &c0);
            close(
                &c,
                &want,
                &scale,
                f64::EPSILON,
                &format!("outer {isa:?} s={k}"),
            );
        }
    }
}

/// Split over a pool of two threads, and from the test's own thread (on no pool, under
/// `off_pool`: shared with rayon's global pool), every product gives the bits of the unsplit
/// call (in a pool of one).
fn split_matches_unsplit<E: TestFloat + PartialEq + std::fmt::Debug>(
    rows: usize,
    i: usize,
    o: usize,
) {
    let pool = |n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    };
    let seed = (rows * 7 + i * 3 + o) as u64;
    let x: Vec<E> = conv(&mat(rows * i, seed));
    let w: Vec<E> = conv(&mat(o * i, seed + 1));
    let d: Vec<E> = conv(&mat(rows * o, seed + 2));
    let run = || {
        let mut y = vec![E::ZERO; rows * o];
        forward(rows, i, o, &x, &w, &mut y);
        let mut y2: Vec<E> = conv(&mat(rows * o, seed + 3));
        forward_then(rows, i, o, &x, &w, &mut y2, &|b| {
            add_bias(b, &w[..o.min(w.len())])
        });
        let mut xb: Vec<E> = conv(&mat(rows * i, seed + 4));
        input_grad(rows, i, o, &d, &w, &mut xb);
        let mut wb: Vec<E> = conv(&mat(o * i, seed + 5));
        weight_grad(rows, i, o, &d, &x, &mut wb);
        [y, y2, xb, wb]
    };
    let unsplit = pool(1).install(|| {
        assert_eq!(crate::nn::threads::helpers(), 0);
        run()
    });
    let split = pool(2).install(|| {
        assert_eq!(crate::nn::threads::helpers(), 1);
        run()
    });
    let shared = crate::nn::threads::off_pool(run);
    for (k, ((a, b), c)) in unsplit.iter().zip(&split).zip(&shared).enumerate() {
        assert!(
            a == b && a == c,
            "rows={rows} i={i} o={o}: product {k} differs when split"
        );
    }
}

#[test]
fn split_products_give_the_unsplit_bits() {
    for &(rows, i, o) in &[
        (512, 2, 64),
        (512, 64, 64),
        (512, 64, 2),
        (300, 256, 256),
        (200, 40, 40),
        (130, 3, 33),
        (130, 33, 3),
        (128, 64, 64),
        (191, 64, 64),
        (513, 64, 33),
        (4096, 64, 64),
    ] {
        split_matches_unsplit::<f64>(rows, i, o);
        split_matches_unsplit::<f32>(rows, i, o);
    }
}
