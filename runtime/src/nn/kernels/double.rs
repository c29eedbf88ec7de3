//! The `f64` kernels (see the [module docs](super)).

#![allow(clippy::excessive_precision, clippy::unreadable_literal)]

const MAGIC_64: f64 = 6755399441055744.0; // 1.5 * 2^52: adding it rounds to an integer
const MAGIC_BITS_64: u64 = 0x4338_0000_0000_0000;
const BIAS_64: u64 = 1023;
const INV_LN2_64: f64 = std::f64::consts::LOG2_E; // 0x3FF71547652B82FE
const LN2_HI_64: f64 = 0.6931471803691238; // 0x3FE62E42FEE00000 (k * LN2_HI exact for |k| < 2^21)
const LN2_LO_64: f64 = 1.9082149292705877e-10; // 0x3DEA39EF35793C76
const EXP_LO_64: f64 = -760.0; // below: exp -> 0, silu -> -0
const EXP_HI_64: f64 = 710.0; // above: exp, expm1 -> inf
const EM1_LO_64: f64 = -40.0; // below: expm1 -> -1
const TANH_CLAMP_64: f64 = 22.0; // tanh(22) rounds to 1
const SILU_ID_64: f64 = 800.0; // above: silu(x) = x (and keeps +inf)

// e^r - 1 - r - r^2/2 = r^3 (Q1 + Q2 r + ... + Q10 r^9) on |r| <= 0.3466 (minimax, Q0 = 1/2).
const Q1_64: f64 = 0.16666666666666677;
const Q2_64: f64 = 0.04166666666666667;
const Q3_64: f64 = 0.008333333333321386;
const Q4_64: f64 = 0.0013888888888886047;
const Q5_64: f64 = 0.00019841269886816424;
const Q6_64: f64 = 2.480158731784688e-05;
const Q7_64: f64 = 2.755724345159796e-06;
const Q8_64: f64 = 2.7557283153559944e-07;
const Q9_64: f64 = 2.5109320903192346e-08;
const Q10_64: f64 = 2.091080407712286e-09;

// log(1+f) = f - f^2/2 + s (f^2/2 + z P(z)), s = f/(2+f), z = s^2 in [0, 0.0401] (minimax).
const P0_64: f64 = 0.6666666666666666;
const P1_64: f64 = 0.40000000000011227;
const P2_64: f64 = 0.28571428565843227;
const P3_64: f64 = 0.22222223279996714;
const P4_64: f64 = 0.18181719954121367;
const P5_64: f64 = 0.15389554664911734;
const P6_64: f64 = 0.13196554487614087;
const P7_64: f64 = 0.13707457911628443;

// ~1/(1+e) on e in [0, 1] to 1% (only scales a correction term of size <= 1 ulp).
const INV_A_64: f64 = 0.98989182;
const INV_B_64: f64 = -0.80806265;
const INV_C_64: f64 = 0.32322488;

/// `x = k ln2 + r`. Returns `(t, r, tail0)`: `t = x/ln2 + 1.5·2^52` holds `k` in its low
/// mantissa bits, and `e^r - 1 = r + tail0` (tail0 includes the rounding error of `r`).
#[inline(always)]
fn reduce_f64(x: f64) -> (f64, f64, f64) {
    let t = x * INV_LN2_64 + MAGIC_64;
    let kf = t - MAGIC_64;
    let ph = kf * LN2_HI_64;
    let pl = kf * LN2_LO_64;
    let rh = x - ph;
    let r = rh - pl;
    let rc = (rh - r) - pl;
    let r2 = r * r;
    let r4 = r2 * r2;
    let r8 = r4 * r4;
    let a0 = Q1_64 + Q2_64 * r;
    let a1 = Q3_64 + Q4_64 * r;
    let a2 = Q5_64 + Q6_64 * r;
    let a3 = Q7_64 + Q8_64 * r;
    let a4 = Q9_64 + Q10_64 * r;
    let b0 = a0 + a1 * r2;
    let b1 = a2 + a3 * r2;
    let qp = (b0 + b1 * r4) + a4 * r8;
    let h = 0.5 * r2 + (r2 * r) * qp;
    let tail0 = h + (rc + rc * r);
    (t, r, tail0)
}

/// `c + (e^r - 1)` as an unevaluated pair `(yh, yl)`; needs `|c| >= |r|` or `c == 0`.
#[inline(always)]
fn add_c_f64(c: f64, r: f64, tail0: f64) -> (f64, f64) {
    let s = c + r;
    let err = (c - s) + r;
    let tail = err + tail0;
    let yh = s + tail;
    let yl = (s - yh) + tail;
    (yh, yl)
}

/// `2^k = s1 * s2` with both factors normal, for `k` in `[-2044, 2047]`.
#[inline(always)]
fn scales_f64(t: f64) -> (f64, f64) {
    let u = t.to_bits().wrapping_sub(MAGIC_BITS_64 - 2 * BIAS_64); // k + 2046
    let h = u >> 1;
    (
        f64::from_bits(h << 52),
        f64::from_bits(u.wrapping_sub(h) << 52),
    )
}

/// `e^(-|x|)` as `(eh, el, ps1, pl1, s2)`: `eh + el ≈ e^(-|x|)`, and `ps1`, `pl1` are `eh`,
/// `el` before the last scaling by `s2` (so callers can round a subnormal result only once).
#[inline(always)]
fn exp_neg_f64(x: f64) -> (f64, f64, f64, f64, f64) {
    let n = -x.abs();
    let n = if n < EXP_LO_64 { EXP_LO_64 } else { n };
    let (t, r, tail0) = reduce_f64(n);
    let (yh, yl) = add_c_f64(1.0, r, tail0);
    let (s1, s2) = scales_f64(t);
    let ps1 = yh * s1;
    let pl1 = yl * s1;
    (ps1 * s2, pl1 * s2, ps1, pl1, s2)
}

/// `ln(1 + u)` for `u` in `[0, 1]` (or NaN).
#[inline(always)]
fn log1p01_f64(u: f64) -> f64 {
    let big = u >= 0.5;
    let fb = (u - 1.0) * 0.5; // exact for u in [0.5, 1]: 1 + u = 2 (1 + fb)
    let f = if big { fb } else { u };
    let jh = if big { LN2_HI_64 } else { 0.0 };
    let jl = if big { LN2_LO_64 } else { 0.0 };
    let hfsq = 0.5 * f * f;
    let s = f / (2.0 + f);
    let z = s * s;
    let z2 = z * z;
    let z4 = z2 * z2;
    let a0 = P0_64 + P1_64 * z;
    let a1 = P2_64 + P3_64 * z;
    let a2 = P4_64 + P5_64 * z;
    let a3 = P6_64 + P7_64 * z;
    let p = (a0 + a1 * z2) + (a2 + a3 * z2) * z4;
    let rr = z * p;
    jh - ((hfsq - (s * (hfsq + rr) + jl)) - f)
}

/// `e^x` (max error 0.75 ulp; 0 below -745.2, +inf above 709.79).
#[inline(always)]
pub fn exp_f64(x: f64) -> f64 {
    let xc = if x < EXP_LO_64 { EXP_LO_64 } else { x };
    let xc = if xc > EXP_HI_64 { EXP_HI_64 } else { xc };
    let (t, r, tail0) = reduce_f64(xc);
    let (yh, _) = add_c_f64(1.0, r, tail0);
    let (s1, s2) = scales_f64(t);
    (yh * s1) * s2
}

/// `e^x - 1`, accurate near 0 (max error 1.1 ulp; `expm1(-0) = -0`).
#[inline(always)]
pub fn expm1_f64(x: f64) -> f64 {
    let xc = if x < EM1_LO_64 { EM1_LO_64 } else { x };
    let xc = if xc > EXP_HI_64 { EXP_HI_64 } else { xc };
    let (t, r, tail0) = reduce_f64(xc);
    let k = t.to_bits().wrapping_sub(MAGIC_BITS_64) as i64; // in [-58, 1024]
    let kc = if k > 64 { 64 } else { k };
    let inv = f64::from_bits(((BIAS_64 as i64).wrapping_sub(kc) as u64) << 52); // 2^-kc
    let c = 1.0 - inv;
    let (yh, _) = add_c_f64(c, r, tail0);
    let (s1, s2) = scales_f64(t);
    ((yh * s1) * s2).copysign(x)
}

/// Hyperbolic tangent (max error 1.25 ulp; exactly ±1 for |x| >= 19.1; `tanh(-0) = -0`).
#[inline(always)]
pub fn tanh_f64(x: f64) -> f64 {
    let a = x.abs();
    let a = if a > TANH_CLAMP_64 { TANH_CLAMP_64 } else { a };
    // e = expm1(2a) = 2^k (c + (e^r - 1)), c = 1 - 2^-k, 0 <= k <= 64, kept as a hi/lo pair.
    let (t, r, tail0) = reduce_f64(a + a);
    let k = t.to_bits().wrapping_sub(MAGIC_BITS_64);
    let c = 1.0 - f64::from_bits(BIAS_64.wrapping_sub(k) << 52);
    let (yh, yl) = add_c_f64(c, r, tail0);
    let sc = f64::from_bits(k.wrapping_add(BIAS_64) << 52);
    let eh = yh * sc;
    let el = yl * sc;
    // tanh = e / (e + 2); d + dl = eh + 2 exactly (Fast2Sum), 1/d = (1 - q)/2.
    let d = eh + 2.0;
    let dl_big = (eh - d) + 2.0;
    let dl_small = (2.0 - d) + eh;
    let dl = if eh > 2.0 { dl_big } else { dl_small };
    let q = eh / d;
    let omq = 1.0 - q;
    let res = q + ((el * omq - q * dl) * omq) * 0.5;
    res.copysign(x)
}

/// [`tanh_f64`] rewritten around fused multiply–adds, for the instruction-set paths that have
/// them (AVX2 + FMA, AVX-512): the same reduction and polynomial coefficients, evaluated by
/// Horner's rule with `mul_add`, `expm1(2a)` assembled as `(2^k − 1) + 2^k r` (Fast2Sum) plus
/// the fused polynomial tail, and the quotient corrected with the low parts of numerator and
/// denominator as in [`tanh_f64`]. Not bit-identical to [`tanh_f64`] (the roundings differ):
/// within 4 ulp of std like every kernel here, and within 1 ulp of [`tanh_f64`], on the tested
/// grids.
///
/// On a CPU without FMA, `mul_add` is a slow library call: the dispatcher uses this kernel
/// only on paths compiled with FMA enabled.
#[inline(always)]
pub fn tanh_f64_fma(x: f64) -> f64 {
    let mut lane = [x];
    tanh_f64_fma_lanes(&mut lane);
    lane[0]
}

tanh_fma_lanes!(
    /// [`tanh_f64_fma`] on `B` values at once, bit for bit (faster with AVX-512 at `B = 32`;
    /// `benches/activations.rs` compares them).
    tanh_f64_fma_lanes, f64, mantissa: 52, clamp: TANH_CLAMP_64, inv_ln2: INV_LN2_64,
    magic: MAGIC_64, magic_bits: MAGIC_BITS_64, bias: BIAS_64, ln2: (LN2_HI_64, LN2_LO_64),
    poly: [Q10_64, Q9_64, Q8_64, Q7_64, Q6_64, Q5_64, Q4_64, Q3_64, Q2_64, Q1_64]
);

/// Logistic sigmoid `1 / (1 + e^-x)` (max error 1.1 ulp; exactly 1 for x >= 37.5, 0 below
/// -745.2, correctly rounded subnormals in between).
#[inline(always)]
pub fn sigmoid_f64(x: f64) -> f64 {
    let (eh, el, _, _, _) = exp_neg_f64(x);
    let d = 1.0 + eh;
    let dl = ((1.0 - d) + eh) + el;
    let pos = x >= 0.0;
    let num = if pos { 1.0 } else { eh };
    let nlo = if pos { 0.0 } else { el };
    let q = num / d;
    let omq = 1.0 - q;
    let inv = if pos { q } else { omq };
    q + (nlo - q * dl) * inv
}

/// Softplus `ln(1 + e^x)` (max error 1.5 ulp; `softplus(x) == x` for x >= 37, `e^x` rounded
/// for very negative x).
#[inline(always)]
pub fn softplus_f64(x: f64) -> f64 {
    let (eh, _, _, _, _) = exp_neg_f64(x);
    let l = log1p01_f64(eh);
    let m = if x > 0.0 { x } else { 0.0 };
    m + l
}

/// SiLU / swish `x · sigmoid(x)` (max error 1.9 ulp; `silu(x) == x` for x >= 37.5,
/// `silu(-0) = -0`, `-0` below about -751.6).
#[inline(always)]
pub fn silu_f64(x: f64) -> f64 {
    let xc = if x < EXP_LO_64 { EXP_LO_64 } else { x };
    let (eh, el, ps1, pl1, s2) = exp_neg_f64(x);
    let d = 1.0 + eh;
    let dl = ((1.0 - d) + eh) + el;
    let pos = x >= 0.0;
    // x / (1 + e^-x) for x >= 0, x e^x / (1 + e^x) for x < 0 with e^x scaled by 1/s2 so a
    // subnormal result is rounded once, at the end.
    let num = xc * if pos { 1.0 } else { ps1 };
    let nlo_neg = xc * pl1;
    let nlo = if pos { 0.0 } else { nlo_neg };
    let fs = if pos { 1.0 } else { s2 };
    let q = num / d;
    let inv = INV_A_64 + eh * (INV_B_64 + eh * INV_C_64);
    let res = (q + (nlo - q * dl) * inv) * fs;
    let res = if x > SILU_ID_64 { x } else { res };
    res.copysign(x)
}
