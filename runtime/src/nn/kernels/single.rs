//! The `f32` kernels (see the [module docs](super)).

#![allow(clippy::excessive_precision, clippy::unreadable_literal)]

const MAGIC_32: f32 = 12582912.0; // 1.5 * 2^23
const MAGIC_BITS_32: u32 = 0x4B40_0000;
const BIAS_32: u32 = 127;
const INV_LN2_32: f32 = std::f32::consts::LOG2_E; // 0x3FB8AA3B
const LN2_HI_32: f32 = 0.69314575; // 0x3F317200 (k * LN2_HI exact for |k| < 2^8)
const LN2_LO_32: f32 = 1.4286068e-6; // 0x35BFBE8E
const EXP_LO_32: f32 = -110.0;
const EXP_HI_32: f32 = 89.0;
const EM1_LO_32: f32 = -20.0;
const TANH_CLAMP_32: f32 = 10.0;
const SILU_ID_32: f32 = 120.0;

// e^r - 1 - r - r^2/2 = r^3 (Q1 + Q2 r + ... + Q5 r^4) on |r| <= 0.3466.
const Q1_32: f32 = 0.16666667;
const Q2_32: f32 = 0.041666683;
const Q3_32: f32 = 0.00833401;
const Q4_32: f32 = 0.0013917026;
const Q5_32: f32 = 0.00019276896;

const P0_32: f32 = 0.6666667;
const P1_32: f32 = 0.39999378;
const P2_32: f32 = 0.28591338;
const P3_32: f32 = 0.22805744;

const INV_A_32: f32 = 0.9898918;
const INV_B_32: f32 = -0.8080627;
const INV_C_32: f32 = 0.32322487;

#[inline(always)]
fn reduce_f32(x: f32) -> (f32, f32, f32) {
    let t = x * INV_LN2_32 + MAGIC_32;
    let kf = t - MAGIC_32;
    let ph = kf * LN2_HI_32;
    let pl = kf * LN2_LO_32;
    let rh = x - ph;
    let r = rh - pl;
    let rc = (rh - r) - pl;
    let r2 = r * r;
    let a0 = Q1_32 + Q2_32 * r;
    let a1 = Q3_32 + Q4_32 * r;
    let qp = (a0 + a1 * r2) + Q5_32 * (r2 * r2);
    let h = 0.5 * r2 + (r2 * r) * qp;
    let tail0 = h + (rc + rc * r);
    (t, r, tail0)
}

#[inline(always)]
fn add_c_f32(c: f32, r: f32, tail0: f32) -> (f32, f32) {
    let s = c + r;
    let err = (c - s) + r;
    let tail = err + tail0;
    let yh = s + tail;
    let yl = (s - yh) + tail;
    (yh, yl)
}

#[inline(always)]
fn scales_f32(t: f32) -> (f32, f32) {
    let u = t.to_bits().wrapping_sub(MAGIC_BITS_32 - 2 * BIAS_32); // k + 254
    let h = u >> 1;
    (
        f32::from_bits(h << 23),
        f32::from_bits(u.wrapping_sub(h) << 23),
    )
}

#[inline(always)]
fn exp_neg_f32(x: f32) -> (f32, f32, f32, f32, f32) {
    let n = -x.abs();
    let n = if n < EXP_LO_32 { EXP_LO_32 } else { n };
    let (t, r, tail0) = reduce_f32(n);
    let (yh, yl) = add_c_f32(1.0, r, tail0);
    let (s1, s2) = scales_f32(t);
    let ps1 = yh * s1;
    let pl1 = yl * s1;
    (ps1 * s2, pl1 * s2, ps1, pl1, s2)
}

#[inline(always)]
fn log1p01_f32(u: f32) -> f32 {
    let big = u >= 0.5;
    let fb = (u - 1.0) * 0.5;
    let f = if big { fb } else { u };
    let jh = if big { LN2_HI_32 } else { 0.0 };
    let jl = if big { LN2_LO_32 } else { 0.0 };
    let hfsq = 0.5 * f * f;
    let s = f / (2.0 + f);
    let z = s * s;
    let z2 = z * z;
    let p = (P0_32 + P1_32 * z) + (P2_32 + P3_32 * z) * z2;
    let rr = z * p;
    jh - ((hfsq - (s * (hfsq + rr) + jl)) - f)
}

/// `e^x` in `f32` (max error 0.75 ulp; 0 below -103.98, +inf above 88.73).
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    let xc = if x < EXP_LO_32 { EXP_LO_32 } else { x };
    let xc = if xc > EXP_HI_32 { EXP_HI_32 } else { xc };
    let (t, r, tail0) = reduce_f32(xc);
    let (yh, _) = add_c_f32(1.0, r, tail0);
    let (s1, s2) = scales_f32(t);
    (yh * s1) * s2
}

/// `e^x - 1` in `f32`, accurate near 0 (max error 1.1 ulp; `expm1(-0) = -0`).
#[inline(always)]
pub fn expm1_f32(x: f32) -> f32 {
    let xc = if x < EM1_LO_32 { EM1_LO_32 } else { x };
    let xc = if xc > EXP_HI_32 { EXP_HI_32 } else { xc };
    let (t, r, tail0) = reduce_f32(xc);
    let k = t.to_bits().wrapping_sub(MAGIC_BITS_32) as i32; // in [-29, 128]
    let kc = if k > 32 { 32 } else { k };
    let inv = f32::from_bits(((BIAS_32 as i32).wrapping_sub(kc) as u32) << 23); // 2^-kc
    let c = 1.0 - inv;
    let (yh, _) = add_c_f32(c, r, tail0);
    let (s1, s2) = scales_f32(t);
    ((yh * s1) * s2).copysign(x)
}

/// Hyperbolic tangent in `f32` (max error 1.2 ulp; exactly ±1 for |x| >= 9.02).
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    let a = if a > TANH_CLAMP_32 { TANH_CLAMP_32 } else { a };
    let (t, r, tail0) = reduce_f32(a + a);
    let k = t.to_bits().wrapping_sub(MAGIC_BITS_32); // 0 <= k <= 29
    let c = 1.0 - f32::from_bits(BIAS_32.wrapping_sub(k) << 23);
    let (yh, yl) = add_c_f32(c, r, tail0);
    let sc = f32::from_bits(k.wrapping_add(BIAS_32) << 23);
    let eh = yh * sc;
    let el = yl * sc;
    let d = eh + 2.0;
    let dl_big = (eh - d) + 2.0;
    let dl_small = (2.0 - d) + eh;
    let dl = if eh > 2.0 { dl_big } else { dl_small };
    let q = eh / d;
    let omq = 1.0 - q;
    let res = q + ((el * omq - q * dl) * omq) * 0.5;
    res.copysign(x)
}

/// [`tanh_f32`] around fused multiply–adds, for the instruction-set paths that have them: the
/// same reduction and polynomial, evaluated by Horner's rule with `mul_add`, `expm1(2a)`
/// assembled as `(2^k − 1) + 2^k r` (Fast2Sum) plus the fused polynomial tail, and the quotient
/// corrected with the low parts as in [`tanh_f32`] (the `f64` kernels' [`tanh_f64_fma`] in
/// `f32`). Within 1 ulp of [`tanh_f32`] on the tested grids, not bit-identical to it.
///
/// [`tanh_f64_fma`]: super::tanh_f64_fma
#[inline(always)]
pub fn tanh_f32_fma(x: f32) -> f32 {
    let mut lane = [x];
    tanh_f32_fma_lanes(&mut lane);
    lane[0]
}

tanh_fma_lanes!(
    /// [`tanh_f32_fma`] on `B` values at once, bit for bit.
    tanh_f32_fma_lanes, f32, mantissa: 23, clamp: TANH_CLAMP_32, inv_ln2: INV_LN2_32,
    magic: MAGIC_32, magic_bits: MAGIC_BITS_32, bias: BIAS_32, ln2: (LN2_HI_32, LN2_LO_32),
    poly: [Q5_32, Q4_32, Q3_32, Q2_32, Q1_32]
);

/// Logistic sigmoid in `f32` (max error 1.1 ulp).
#[inline(always)]
pub fn sigmoid_f32(x: f32) -> f32 {
    let (eh, el, _, _, _) = exp_neg_f32(x);
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

/// Softplus `ln(1 + e^x)` in `f32` (max error 1.5 ulp).
#[inline(always)]
pub fn softplus_f32(x: f32) -> f32 {
    let (eh, _, _, _, _) = exp_neg_f32(x);
    let l = log1p01_f32(eh);
    let m = if x > 0.0 { x } else { 0.0 };
    m + l
}

/// SiLU / swish `x · sigmoid(x)` in `f32` (max error 2 ulp).
#[inline(always)]
pub fn silu_f32(x: f32) -> f32 {
    let xc = if x < EXP_LO_32 { EXP_LO_32 } else { x };
    let (eh, el, ps1, pl1, s2) = exp_neg_f32(x);
    let d = 1.0 + eh;
    let dl = ((1.0 - d) + eh) + el;
    let pos = x >= 0.0;
    let num = xc * if pos { 1.0 } else { ps1 };
    let nlo_neg = xc * pl1;
    let nlo = if pos { 0.0 } else { nlo_neg };
    let fs = if pos { 1.0 } else { s2 };
    let q = num / d;
    let inv = INV_A_32 + eh * (INV_B_32 + eh * INV_C_32);
    let res = (q + (nlo - q * dl) * inv) * fs;
    let res = if x > SILU_ID_32 { x } else { res };
    res.copysign(x)
}
