#![allow(clippy::excessive_precision, clippy::unreadable_literal)]

use super::*;

// ---------------------------------------------------------------- ulp distances

/// Distance in representable steps between `a` and `b` (ordered bit patterns, `+0 == -0`).
/// Both NaN: 0. One NaN, or an infinity on either side that the other does not equal: MAX.
fn ulps64(a: f64, b: f64) -> u64 {
    if a.is_nan() && b.is_nan() {
        return 0;
    }
    if a.is_nan() || b.is_nan() || ((a.is_infinite() || b.is_infinite()) && a != b) {
        return u64::MAX;
    }
    let ord = |v: f64| {
        let i = v.to_bits() as i64;
        if i < 0 {
            i64::MIN.wrapping_sub(i)
        } else {
            i
        }
    };
    (ord(a) as i128 - ord(b) as i128).unsigned_abs() as u64
}

fn ulps32(a: f32, b: f32) -> u64 {
    if a.is_nan() && b.is_nan() {
        return 0;
    }
    if a.is_nan() || b.is_nan() || ((a.is_infinite() || b.is_infinite()) && a != b) {
        return u64::MAX;
    }
    let ord = |v: f32| {
        let i = v.to_bits() as i32;
        if i < 0 {
            i32::MIN.wrapping_sub(i)
        } else {
            i
        }
    };
    (ord(a) as i64 - ord(b) as i64).unsigned_abs()
}

// ---------------------------------------------------------------- references from std
//
// tanh, exp, expm1 are std's. sigmoid and silu are evaluated in double-double arithmetic
// around std's `exp`, so their only sizeable error is that of `exp` (the naive
// `1/(1+exp(-x))` adds up to ~1.5 ulp of its own). softplus is `ln_1p(exp(-|x|))` (+ x).

fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

fn split(a: f64) -> (f64, f64) {
    let c = 134217729.0 * a; // 2^27 + 1
    let h = c - (c - a);
    (h, a - h)
}

/// `a * b` exactly as `hi + lo` (Dekker; no FMA).
fn two_prod(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    let (ah, al) = split(a);
    let (bh, bl) = split(b);
    (p, ((ah * bh - p) + ah * bl + al * bh) + al * bl)
}

fn sigmoid_dd(x: f64) -> (f64, f64) {
    let e = (-x.abs()).exp();
    let (dh, dl) = two_sum(1.0, e);
    let num = if x >= 0.0 { 1.0 } else { e };
    let q = num / dh;
    let (ph, pl) = two_prod(q, dh);
    let rem = ((num - ph) - pl) - q * dl;
    (q, rem / dh)
}

fn sigmoid_ref(x: f64) -> f64 {
    let (h, l) = sigmoid_dd(x);
    h + l
}

// e^-100 * 2^200 as hi + lo, and 2^-200.
const EM100_HI: f64 = 5.977931613401777e16;
const EM100_LO: f64 = -2.5237002010269602;
const TWO_M200: f64 = 6.223015277861142e-61;

fn silu_ref(x: f64) -> f64 {
    if x > 700.0 {
        return x;
    }
    if x < -800.0 {
        return -0.0;
    }
    if x < -700.0 {
        // x e^x with e^x = e^(x+100) e^-100 (x + 100 is exact here; std's e^x would be
        // subnormal), products kept exact and scaled by 2^200 so they stay normal.
        let e1 = (x + 100.0).exp();
        let (ph, pl) = two_prod(x, e1);
        let (qh, ql) = two_prod(ph, EM100_HI);
        return (qh + (ql + (pl * EM100_HI + ph * EM100_LO))) * TWO_M200;
    }
    let (h, l) = sigmoid_dd(x);
    let (ph, pl) = two_prod(x, h);
    ph + (pl + x * l)
}

fn softplus_ref(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

type Pair64 = (&'static str, fn(f64) -> f64, fn(f64) -> f64);

const FUNCS_64: [Pair64; 7] = [
    ("exp", exp_f64, f64::exp),
    ("expm1", expm1_f64, f64::exp_m1),
    ("tanh", tanh_f64, f64::tanh),
    ("tanh (fma)", tanh_f64_fma, f64::tanh),
    ("sigmoid", sigmoid_f64, sigmoid_ref),
    ("softplus", softplus_f64, softplus_ref),
    ("silu", silu_f64, silu_ref),
];

type Pair32 = (&'static str, fn(f32) -> f32, fn(f64) -> f64);

const FUNCS_32: [Pair32; 7] = [
    ("exp", exp_f32, f64::exp),
    ("expm1", expm1_f32, f64::exp_m1),
    ("tanh", tanh_f32, f64::tanh),
    ("tanh (fma)", tanh_f32_fma, f64::tanh),
    ("sigmoid", sigmoid_f32, sigmoid_ref),
    ("softplus", softplus_f32, softplus_ref),
    ("silu", silu_f32, silu_ref),
];

const MAX_ULPS: u64 = 4;

fn check64(points: &[f64]) {
    for (name, ours, reference) in FUNCS_64 {
        let mut worst = (0u64, 0.0f64);
        for &x in points {
            let d = ulps64(ours(x), reference(x));
            if d > worst.0 {
                worst = (d, x);
            }
        }
        assert!(
            worst.0 <= MAX_ULPS,
            "{name}_f64: {} ulps at x = {:e} (ours {:e}, std {:e})",
            worst.0,
            worst.1,
            ours(worst.1),
            reference(worst.1)
        );
    }
}

fn check32(points: &[f32]) {
    for (name, ours, reference) in FUNCS_32 {
        let mut worst = (0u64, 0.0f32);
        for &x in points {
            let d = ulps32(ours(x), reference(x as f64) as f32);
            if d > worst.0 {
                worst = (d, x);
            }
        }
        assert!(
            worst.0 <= MAX_ULPS,
            "{name}_f32: {} ulps at x = {:e} (ours {:e}, std {:e})",
            worst.0,
            worst.1,
            ours(worst.1),
            reference(worst.1 as f64) as f32
        );
    }
}

// ---------------------------------------------------------------- grids

/// Both signs of `v`.
fn pm(v: f64) -> [f64; 2] {
    [v, -v]
}

/// Thresholds and switch points of the kernels, and of the functions themselves.
const THRESHOLDS_64: [f64; 17] = [
    709.782712893384,       // exp overflow
    708.3964185322641,      // exp(-x) leaves the normal range
    745.1332191019411,      // exp(-x) underflows to 0
    744.4400719213812,      // exp(-x) = 2^-1074
    751.5,                  // silu(-x) underflows
    760.0,                  // EXP_LO
    700.0,                  // reference switch in silu_ref
    37.42994775023705,      // expm1(-x) = -1, sigmoid(x) = 1
    40.0,                   // EM1_LO
    36.04365338911715,      // softplus(x) = x
    19.061547465398498,     // tanh = 1
    22.0,                   // TANH_CLAMP
    std::f64::consts::LN_2, // log1p reduction switch (e^-|x| = 1/2)
    0.5,
    1.0,
    2.0,
    1e-8,
];

fn grid64_uniform() -> Vec<f64> {
    let n = 200_000;
    let mut v: Vec<f64> = (0..=n)
        .map(|i| -40.0 + 80.0 * (i as f64) / (n as f64))
        .collect();
    let n = 50_000;
    v.extend((0..=n).map(|i| -760.0 + 1520.0 * (i as f64) / (n as f64)));
    v
}

fn grid64_log() -> Vec<f64> {
    // |x| log-uniform over [1e-300, 800], plus subnormals on a stride.
    let n = 100_000;
    let span = 300.0 + 800f64.log10();
    let mut v: Vec<f64> = (0..=n)
        .flat_map(|i| pm(10f64.powf(-300.0 + span * (i as f64) / (n as f64))))
        .collect();
    v.extend((1..=2000u64).flat_map(|i| pm(f64::from_bits(i * ((1u64 << 52) / 2000)))));
    v.extend((1..=64u64).flat_map(|i| pm(f64::from_bits(i))));
    v
}

fn grid64_edges() -> Vec<f64> {
    let half_ln2 = std::f64::consts::LN_2 / 2.0;
    let mut centres: Vec<f64> = THRESHOLDS_64.to_vec();
    for j in 0..8 {
        let s = half_ln2 * (2 * j + 1) as f64; // k switches of exp/expm1
        centres.push(s);
        centres.push(s / 2.0); // ... and of expm1(2|x|) in tanh
    }
    let mut v = Vec::new();
    for c in centres {
        for j in -300i64..=300 {
            v.extend(pm(f64::from_bits(c.to_bits().wrapping_add(j as u64))));
        }
        for j in -500..=500 {
            v.extend(pm(c * (1.0 + j as f64 * 2e-6)));
        }
    }
    v.extend([
        0.0,
        -0.0,
        f64::MIN_POSITIVE,
        -f64::MIN_POSITIVE,
        f64::MAX,
        f64::MIN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        1e300,
        -1e300,
    ]);
    v
}

fn grid32() -> Vec<f32> {
    // Every 4099th f32 with |x| <= 120 (both signs), every 65537th above, and neighbours
    // of the thresholds.
    let b120 = 120f32.to_bits();
    let mut v: Vec<f32> = (0..=b120)
        .step_by(4099)
        .chain((b120..0x7F80_0000).step_by(65537))
        .flat_map(|b| [f32::from_bits(b), -f32::from_bits(b)])
        .collect();
    let centres = [
        88.72284f32,
        87.33655,
        103.97208,
        103.27893,
        108.0,
        110.0,
        17.32868,
        20.0,
        9.010913,
        10.0,
        16.635532,
        std::f32::consts::LN_2,
        0.17328680,
        0.34657359,
        0.5198604,
        1.0397208,
        1.7328680,
    ];
    for c in centres {
        for j in -300i32..=300 {
            let b = f32::from_bits(c.to_bits().wrapping_add(j as u32));
            v.extend([b, -b]);
        }
    }
    v.extend([
        0.0,
        -0.0,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        f32::MAX,
        f32::MIN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
    ]);
    v
}

// ---------------------------------------------------------------- accuracy

#[test]
fn f64_uniform_grids_within_4_ulps() {
    check64(&grid64_uniform());
}

#[test]
fn f64_log_grid_and_subnormals_within_4_ulps() {
    check64(&grid64_log());
}

#[test]
fn f64_thresholds_and_edges_within_4_ulps() {
    check64(&grid64_edges());
}

#[test]
fn f32_grid_within_4_ulps() {
    check32(&grid32());
}

/// The `mul_add` tanh against the plain one (the kernel whose accuracy was validated
/// against high-precision references): at most 1 ulp apart on every grid.
#[test]
fn fma_tanh_within_1_ulp_of_the_plain_kernel() {
    for grid in [grid64_uniform(), grid64_log(), grid64_edges()] {
        for x in grid {
            let d = ulps64(tanh_f64_fma(x), tanh_f64(x));
            assert!(d <= 1, "{d} ulps at x = {x:e}");
        }
    }
}

/// The same for `f32`, on the `f32` grid and every 97th `f32` in [-12, 12].
#[test]
fn fma_tanh_f32_within_1_ulp_of_the_plain_kernel() {
    let sweep = (0..)
        .map(|i| f32::from_bits(0x0080_0000 + 97 * i))
        .take_while(|x| *x <= 12.0)
        .flat_map(|x| [x, -x]);
    for x in grid32().into_iter().chain(sweep) {
        let d = ulps32(tanh_f32_fma(x), tanh_f32(x));
        assert!(d <= 1, "{d} ulps at x = {x:e}");
    }
}

/// Many lanes at once give the single-lane kernel's bits.
#[test]
fn tanh_f32_lanes_match_one_lane() {
    let xs: Vec<f32> = (0..4096).map(|i| (i as f32 - 2048.0) * 0.0071).collect();
    for chunk in xs.chunks_exact(64) {
        let mut lanes: [f32; 64] = chunk.try_into().unwrap();
        tanh_f32_fma_lanes(&mut lanes);
        for (x, y) in chunk.iter().zip(lanes) {
            assert_eq!(y.to_bits(), tanh_f32_fma(*x).to_bits(), "at {x}");
        }
    }
}

// ---------------------------------------------------------------- limits and signs

fn same64(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn same32(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

#[test]
fn f64_special_values() {
    let inf = f64::INFINITY;
    let nan = f64::NAN;
    type Case64 = (&'static str, fn(f64) -> f64, f64, f64);
    let cases: [Case64; 45] = [
        ("exp", exp_f64, 0.0, 1.0),
        ("exp", exp_f64, -0.0, 1.0),
        ("exp", exp_f64, inf, inf),
        ("exp", exp_f64, -inf, 0.0),
        ("exp", exp_f64, 710.0, inf),
        ("exp", exp_f64, -746.0, 0.0),
        ("exp", exp_f64, nan, nan),
        ("expm1", expm1_f64, 0.0, 0.0),
        ("expm1", expm1_f64, -0.0, -0.0),
        ("expm1", expm1_f64, inf, inf),
        ("expm1", expm1_f64, -inf, -1.0),
        ("expm1", expm1_f64, -40.0, -1.0),
        ("expm1", expm1_f64, nan, nan),
        ("tanh", tanh_f64, 0.0, 0.0),
        ("tanh", tanh_f64, -0.0, -0.0),
        ("tanh", tanh_f64, 19.1, 1.0),
        ("tanh", tanh_f64, -30.0, -1.0),
        ("tanh", tanh_f64, inf, 1.0),
        ("tanh", tanh_f64, -inf, -1.0),
        ("tanh", tanh_f64, nan, nan),
        ("tanh (fma)", tanh_f64_fma, 0.0, 0.0),
        ("tanh (fma)", tanh_f64_fma, -0.0, -0.0),
        ("tanh (fma)", tanh_f64_fma, 19.1, 1.0),
        ("tanh (fma)", tanh_f64_fma, -30.0, -1.0),
        ("tanh (fma)", tanh_f64_fma, inf, 1.0),
        ("tanh (fma)", tanh_f64_fma, -inf, -1.0),
        ("tanh (fma)", tanh_f64_fma, nan, nan),
        ("sigmoid", sigmoid_f64, 0.0, 0.5),
        ("sigmoid", sigmoid_f64, -0.0, 0.5),
        ("sigmoid", sigmoid_f64, 40.0, 1.0),
        ("sigmoid", sigmoid_f64, inf, 1.0),
        ("sigmoid", sigmoid_f64, -inf, 0.0),
        ("sigmoid", sigmoid_f64, -800.0, 0.0),
        ("sigmoid", sigmoid_f64, nan, nan),
        ("softplus", softplus_f64, 40.0, 40.0),
        ("softplus", softplus_f64, 1e300, 1e300),
        ("softplus", softplus_f64, inf, inf),
        ("softplus", softplus_f64, -inf, 0.0),
        ("softplus", softplus_f64, nan, nan),
        ("silu", silu_f64, 0.0, 0.0),
        ("silu", silu_f64, -0.0, -0.0),
        ("silu", silu_f64, 1e300, 1e300),
        ("silu", silu_f64, inf, inf),
        ("silu", silu_f64, -inf, -0.0),
        ("silu", silu_f64, nan, nan),
    ];
    for (name, f, x, want) in cases {
        assert!(
            same64(f(x), want),
            "{name}_f64({x:e}) = {:e}, want {want:e}",
            f(x)
        );
    }
    assert!(same64(silu_f64(-800.0), -0.0));
    assert!(same64(tanh_f64(5e-324), 5e-324));
    assert!(same64(tanh_f64_fma(5e-324), 5e-324));
    assert!(same64(tanh_f64_fma(-1e-310), -1e-310));
    assert!(same64(sigmoid_f64(-745.0), 5e-324)); // e^-745 rounds to the least subnormal
    assert!(same64(softplus_f64(-745.0), 5e-324));
    assert!(silu_f64(-750.0) < 0.0); // -1.4e-323: still representable
    assert!(ulps64(softplus_f64(0.0), std::f64::consts::LN_2) <= 1);
    for x in [37.5, 100.0, 709.0, 1e10, f64::MAX] {
        assert_eq!(silu_f64(x), x);
        assert_eq!(softplus_f64(x), x);
        assert_eq!(sigmoid_f64(x), 1.0);
        assert_eq!(tanh_f64(x), 1.0);
        assert_eq!(tanh_f64(-x), -1.0);
        assert_eq!(tanh_f64_fma(x), 1.0);
        assert_eq!(tanh_f64_fma(-x), -1.0);
    }
}

#[test]
fn f32_special_values() {
    let inf = f32::INFINITY;
    let nan = f32::NAN;
    type Case32 = (&'static str, fn(f32) -> f32, f32, f32);
    let cases: [Case32; 45] = [
        ("exp", exp_f32, 0.0, 1.0),
        ("exp", exp_f32, -0.0, 1.0),
        ("exp", exp_f32, inf, inf),
        ("exp", exp_f32, -inf, 0.0),
        ("exp", exp_f32, 89.0, inf),
        ("exp", exp_f32, -104.0, 0.0),
        ("exp", exp_f32, nan, nan),
        ("expm1", expm1_f32, 0.0, 0.0),
        ("expm1", expm1_f32, -0.0, -0.0),
        ("expm1", expm1_f32, inf, inf),
        ("expm1", expm1_f32, -inf, -1.0),
        ("expm1", expm1_f32, -20.0, -1.0),
        ("expm1", expm1_f32, nan, nan),
        ("tanh", tanh_f32, 0.0, 0.0),
        ("tanh", tanh_f32, -0.0, -0.0),
        ("tanh", tanh_f32, 9.1, 1.0),
        ("tanh", tanh_f32, -30.0, -1.0),
        ("tanh", tanh_f32, inf, 1.0),
        ("tanh", tanh_f32, -inf, -1.0),
        ("tanh", tanh_f32, nan, nan),
        ("tanh (fma)", tanh_f32_fma, 0.0, 0.0),
        ("tanh (fma)", tanh_f32_fma, -0.0, -0.0),
        ("tanh (fma)", tanh_f32_fma, 9.1, 1.0),
        ("tanh (fma)", tanh_f32_fma, -30.0, -1.0),
        ("tanh (fma)", tanh_f32_fma, inf, 1.0),
        ("tanh (fma)", tanh_f32_fma, -inf, -1.0),
        ("tanh (fma)", tanh_f32_fma, nan, nan),
        ("sigmoid", sigmoid_f32, 0.0, 0.5),
        ("sigmoid", sigmoid_f32, -0.0, 0.5),
        ("sigmoid", sigmoid_f32, 20.0, 1.0),
        ("sigmoid", sigmoid_f32, inf, 1.0),
        ("sigmoid", sigmoid_f32, -inf, 0.0),
        ("sigmoid", sigmoid_f32, -120.0, 0.0),
        ("sigmoid", sigmoid_f32, nan, nan),
        ("softplus", softplus_f32, 20.0, 20.0),
        ("softplus", softplus_f32, 1e30, 1e30),
        ("softplus", softplus_f32, inf, inf),
        ("softplus", softplus_f32, -inf, 0.0),
        ("softplus", softplus_f32, nan, nan),
        ("silu", silu_f32, 0.0, 0.0),
        ("silu", silu_f32, -0.0, -0.0),
        ("silu", silu_f32, 1e30, 1e30),
        ("silu", silu_f32, inf, inf),
        ("silu", silu_f32, -inf, -0.0),
        ("silu", silu_f32, nan, nan),
    ];
    for (name, f, x, want) in cases {
        assert!(
            same32(f(x), want),
            "{name}_f32({x:e}) = {:e}, want {want:e}",
            f(x)
        );
    }
    assert!(same32(silu_f32(-120.0), -0.0));
    assert!(same32(tanh_f32(1e-45), 1e-45));
    assert!(silu_f32(-100.0) < 0.0); // -3.7e-42: still representable
    assert!(ulps32(softplus_f32(0.0), std::f32::consts::LN_2) <= 1);
    for x in [17.5f32, 100.0, 1e10, f32::MAX] {
        assert_eq!(silu_f32(x), x);
        assert_eq!(softplus_f32(x), x);
        assert_eq!(sigmoid_f32(x), 1.0);
        assert_eq!(tanh_f32(x), 1.0);
        assert_eq!(tanh_f32(-x), -1.0);
    }
}
