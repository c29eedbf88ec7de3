//! Activations applied to host buffers, forward and derivative, for `f32` and `f64`
//! ([`DenseFloat`]): what the CPU paths of the activation modules and of
//! [`Dense`](super::Dense) share. The forward passes are the slice maps of [`map`]; the
//! derivative passes are vectorised loops compiled for every instruction set.

use dfdx::prelude::*;

use super::isa::{isa_kernel, Float, Isa};
use super::map;
use super::matmul::Kernels;
use super::pool::Pooled;

mod sealed {
    pub trait Sealed {}
}

isa_kernel!(
    /// `d = g (1 − y²)`.
    tanh_grad_kernel<E> => tanh_grad_body(y: &[E], g: &[E], d: &mut [E])
);
#[inline(always)]
fn tanh_grad_body<E: Float, const FMA: bool>(y: &[E], g: &[E], d: &mut [E]) {
    for ((d, y), g) in d.iter_mut().zip(y).zip(g) {
        *d = *g * (E::ONE - *y * *y);
    }
}

isa_kernel!(
    /// `d = g y (1 − y)`.
    sigmoid_grad_kernel<E> => sigmoid_grad_body(y: &[E], g: &[E], d: &mut [E])
);
#[inline(always)]
fn sigmoid_grad_body<E: Float, const FMA: bool>(y: &[E], g: &[E], d: &mut [E]) {
    for ((d, y), g) in d.iter_mut().zip(y).zip(g) {
        *d = *g * (*y * (E::ONE - *y));
    }
}

isa_kernel!(
    /// `d = g s` with `s = sigmoid(z)` already in `d`.
    softplus_grad_kernel<E> => softplus_grad_body(g: &[E], d: &mut [E])
);
#[inline(always)]
fn softplus_grad_body<E: Float, const FMA: bool>(g: &[E], d: &mut [E]) {
    for (d, g) in d.iter_mut().zip(g) {
        *d = *g * *d;
    }
}

isa_kernel!(
    /// `d = g (s + z s (1 − s))` with `s = sigmoid(z)` already in `d`.
    silu_grad_kernel<E> => silu_grad_body(z: &[E], g: &[E], d: &mut [E])
);
#[inline(always)]
fn silu_grad_body<E: Float, const FMA: bool>(z: &[E], g: &[E], d: &mut [E]) {
    for ((d, z), g) in d.iter_mut().zip(z).zip(g) {
        let s = *d;
        *d = *g * (s + *z * s * (E::ONE - s));
    }
}

// Called through `DenseFloat`'s non-generic methods, so they are compiled in this crate.
fn tanh_grad<E: DenseFloat>(y: &[E], g: &[E], d: &mut [E]) {
    tanh_grad_kernel(Isa::best(), y, g, d)
}
fn sigmoid_grad<E: DenseFloat>(y: &[E], g: &[E], d: &mut [E]) {
    sigmoid_grad_kernel(Isa::best(), y, g, d)
}
fn softplus_grad<E: DenseFloat>(z: &[E], g: &[E], d: &mut [E]) {
    d.copy_from_slice(z);
    E::sigmoid(d);
    softplus_grad_kernel(Isa::best(), g, d)
}
fn silu_grad<E: DenseFloat>(z: &[E], g: &[E], d: &mut [E]) {
    d.copy_from_slice(z);
    E::sigmoid(d);
    silu_grad_kernel(Isa::best(), z, g, d)
}

/// `f32` and `f64`: the element types of the CPU kernels.
#[doc(hidden)]
pub trait DenseFloat: Dtype + Kernels + Pooled + sealed::Sealed {
    fn tanh_grad(y: &[Self], g: &[Self], d: &mut [Self]);
    fn sigmoid_grad(y: &[Self], g: &[Self], d: &mut [Self]);
    fn softplus_grad(z: &[Self], g: &[Self], d: &mut [Self]);
    fn silu_grad(z: &[Self], g: &[Self], d: &mut [Self]);
    fn tanh(xs: &mut [Self]);
    fn sigmoid(xs: &mut [Self]);
    fn softplus(xs: &mut [Self]);
    fn silu(xs: &mut [Self]);
    fn tanh_biased(xs: &mut [Self], bias: &[Self]);
    fn sigmoid_biased(xs: &mut [Self], bias: &[Self]);
    fn softplus_biased(xs: &mut [Self], bias: &[Self]);
    fn silu_biased(xs: &mut [Self], bias: &[Self]);
}

macro_rules! dense_float {
    ($t:ty, $tanh:ident, $sigmoid:ident, $softplus:ident, $silu:ident) => {
        impl sealed::Sealed for $t {}
        impl DenseFloat for $t {
            fn tanh_grad(y: &[Self], g: &[Self], d: &mut [Self]) {
                tanh_grad(y, g, d)
            }
            fn sigmoid_grad(y: &[Self], g: &[Self], d: &mut [Self]) {
                sigmoid_grad(y, g, d)
            }
            fn softplus_grad(z: &[Self], g: &[Self], d: &mut [Self]) {
                softplus_grad(z, g, d)
            }
            fn silu_grad(z: &[Self], g: &[Self], d: &mut [Self]) {
                silu_grad(z, g, d)
            }
            fn tanh(xs: &mut [Self]) {
                map::$tanh(xs)
            }
            fn sigmoid(xs: &mut [Self]) {
                map::$sigmoid(xs)
            }
            fn softplus(xs: &mut [Self]) {
                map::$softplus(xs)
            }
            fn silu(xs: &mut [Self]) {
                map::$silu(xs)
            }
            fn tanh_biased(xs: &mut [Self], bias: &[Self]) {
                map::$tanh::biased(xs, bias)
            }
            fn sigmoid_biased(xs: &mut [Self], bias: &[Self]) {
                map::$sigmoid::biased(xs, bias)
            }
            fn softplus_biased(xs: &mut [Self], bias: &[Self]) {
                map::$softplus::biased(xs, bias)
            }
            fn silu_biased(xs: &mut [Self], bias: &[Self]) {
                map::$silu::biased(xs, bias)
            }
        }
    };
}
dense_float!(f64, tanh_f64, sigmoid_f64, softplus_f64, silu_f64);
dense_float!(f32, tanh_f32, sigmoid_f32, softplus_f32, silu_f32);

#[cfg(test)]
mod tests {
    use super::*;

    /// Each derivative pass on every instruction set this CPU has, bit for bit against the
    /// plain formula (the passes use no `mul_add`, so every path rounds alike).
    #[test]
    fn derivative_passes_on_every_instruction_set() {
        macro_rules! check {
            ($($t:ty),*) => {$(
                let n = 203;
                let y: Vec<$t> = (0..n).map(|i| (i as $t - 101.0) * 0.0097).collect();
                let g: Vec<$t> = (0..n).map(|i| (i as $t * 0.37).sin() * 2.0).collect();
                let s: Vec<$t> = y.iter().map(|v| 0.5 + 0.4 * v).collect();
                let one: $t = 1.0;
                for isa in Isa::available() {
                    let what = |f: &str| format!("{f} {} on {isa:?}", stringify!($t));
                    let bits = |v: &[$t]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    let mut d = vec![0.0; n];
                    tanh_grad_kernel(isa, &y, &g, &mut d);
                    let want: Vec<$t> = y.iter().zip(&g).map(|(y, g)| g * (one - y * y)).collect();
                    assert_eq!(bits(&d), bits(&want), "{}", what("tanh"));

                    sigmoid_grad_kernel(isa, &y, &g, &mut d);
                    let want: Vec<$t> = y.iter().zip(&g).map(|(y, g)| g * (y * (one - y))).collect();
                    assert_eq!(bits(&d), bits(&want), "{}", what("sigmoid"));

                    let mut d = s.clone();
                    softplus_grad_kernel(isa, &g, &mut d);
                    let want: Vec<$t> = s.iter().zip(&g).map(|(s, g)| g * s).collect();
                    assert_eq!(bits(&d), bits(&want), "{}", what("softplus"));

                    let mut d = s.clone();
                    silu_grad_kernel(isa, &y, &g, &mut d);
                    let want: Vec<$t> = s
                        .iter()
                        .zip(&y)
                        .zip(&g)
                        .map(|((s, z), g)| g * (s + z * s * (one - s)))
                        .collect();
                    assert_eq!(bits(&d), bits(&want), "{}", what("silu"));
                }
            )*};
        }
        check!(f64, f32);
    }
}
