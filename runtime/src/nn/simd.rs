//! Slice maps: each scalar kernel applied to a whole slice, compiled for every instruction set
//! by the dispatcher of [`isa`](super::isa), the widest the CPU has chosen on every call.

/// `for x in xs { *x = kernel(*x) }` on the widest instruction set the CPU has. Next to the
/// function, a module of the same name holds the map on a chosen instruction set (`on`) and the
/// biased map (`biased`, `biased_on`), so tests can check every path the machine supports, not
/// only the one the dispatcher picks. An optional second kernel, written with `mul_add`,
/// replaces the first on the paths compiled with FMA.
macro_rules! simd_map {
    ($name:ident, $t:ty, $kernel:path) => {
        simd_map!($name, $t, $kernel, $kernel);
    };
    ($name:ident, $t:ty, $kernel:path, $fma_kernel:path) => {
        simd_map!(@impl $name, $t, $kernel, $fma_kernel, |xs| {
            for x in xs.iter_mut() {
                *x = $fma_kernel(*x);
            }
        });
    };
    // With a kernel that computes `LANES` values at once, bit for bit like `$fma_kernel`, for the
    // FMA paths.
    ($name:ident, $t:ty, $kernel:path, $fma_kernel:path, $lanes_kernel:path) => {
        simd_map!(@impl $name, $t, $kernel, $fma_kernel, |xs| {
            let mut blocks = xs.chunks_exact_mut(LANES);
            for block in &mut blocks {
                let block: &mut [$t; LANES] = block.try_into().expect("LANES elements");
                $lanes_kernel(block);
            }
            for x in blocks.into_remainder() {
                *x = $fma_kernel(*x);
            }
        });
    };
    // `$fused` is pasted into `body`'s FMA branch, which the dispatcher inlines into the FMA
    // paths' functions (not passed as a closure: a closure is compiled without the enclosing
    // function's target features, which turns every `mul_add` into a library call).
    (@impl $name:ident, $t:ty, $kernel:path, $fma_kernel:path, |$xs:ident| $fused:block) => {
        #[doc = concat!("Applies `", stringify!($kernel), "` (`", stringify!($fma_kernel), "` on the FMA paths) to every element, in place.")]
        pub fn $name(xs: &mut [$t]) {
            $name::on(Isa::best(), xs)
        }

        #[doc = concat!("[`", stringify!($name), "()`] on a chosen instruction set, and with a bias.")]
        pub mod $name {
            use super::*;

            isa_kernel!(
                #[doc = concat!("[`", stringify!($name), "()`](super::", stringify!($name), "()) on `isa` (or the widest set below it that the CPU has).")]
                on => body(xs: &mut [$t])
            );

            /// The plain kernel on the baseline, the pasted FMA loop on the FMA paths.
            #[inline(always)]
            fn body<const FMA: bool>($xs: &mut [$t]) {
                if FMA {
                    $fused
                } else {
                    for x in $xs.iter_mut() {
                        *x = $kernel(*x);
                    }
                }
            }

            /// `xs[r n + j] = kernel(xs[r n + j] + bias[j])` for each row of `n = bias.len()`
            /// elements (a dense layer's bias and activation in one pass), on the widest path.
            pub fn biased(xs: &mut [$t], bias: &[$t]) {
                biased_on(Isa::best(), xs, bias)
            }

            isa_kernel!(
                /// [`biased`] on `isa` (or the widest set below it that the CPU has).
                biased_on => biased_body(xs: &mut [$t], bias: &[$t])
            );

            #[inline(always)]
            fn biased_body<const FMA: bool>(xs: &mut [$t], bias: &[$t]) {
                if bias.is_empty() {
                    return;
                }
                if FMA {
                    // Row by row: the bias is added while the row is in registers or L1, just
                    // before the kernel reads it.
                    for row in xs.chunks_exact_mut(bias.len()) {
                        for (x, b) in row.iter_mut().zip(bias) {
                            *x += *b;
                        }
                        body::<true>(row);
                    }
                } else {
                    for row in xs.chunks_exact_mut(bias.len()) {
                        for (x, b) in row.iter_mut().zip(bias) {
                            *x = $kernel(*x + *b);
                        }
                    }
                }
            }
        }
    };
}

/// Values per call of a many-lane kernel (four 512-bit vectors of `f64`).
const LANES: usize = 32;

/// Slice maps with run-time instruction-set dispatch (public for benchmarks and tests).
pub mod map {
    use super::super::isa::{isa_kernel, Isa};
    use super::super::kernels;
    use super::LANES;
    simd_map!(
        tanh_f64,
        f64,
        kernels::tanh_f64,
        kernels::tanh_f64_fma,
        kernels::tanh_f64_fma_lanes
    );
    simd_map!(sigmoid_f64, f64, kernels::sigmoid_f64);
    simd_map!(softplus_f64, f64, kernels::softplus_f64);
    simd_map!(silu_f64, f64, kernels::silu_f64);
    simd_map!(
        tanh_f32,
        f32,
        kernels::tanh_f32,
        kernels::tanh_f32_fma,
        kernels::tanh_f32_fma_lanes
    );
    simd_map!(sigmoid_f32, f32, kernels::sigmoid_f32);
    simd_map!(softplus_f32, f32, kernels::softplus_f32);
    simd_map!(silu_f32, f32, kernels::silu_f32);
}

#[cfg(test)]
mod tests {
    use super::super::isa::Isa;
    use super::super::kernels;
    use super::map;

    #[test]
    fn every_compiled_path_gives_the_scalar_results() {
        let xs64: Vec<f64> = (0..1000)
            .map(|i| (i as f64 - 500.0) * 0.037)
            .chain([0.0, -0.0, f64::INFINITY, f64::NAN, 1e-310])
            .collect();
        let xs32: Vec<f32> = xs64.iter().map(|&x| x as f32).collect();
        let paths = Isa::available();
        assert_eq!(paths[0], Isa::Baseline);
        // Each path must apply the scalar kernel meant for it, bit for bit: the plain kernel on
        // the baseline, the `mul_add` kernel (where a function has one) on the FMA paths.
        macro_rules! check {
            ($($map:ident, $kernel:path, $fma_kernel:path, $xs:expr;)*) => {$(
                for &isa in &paths {
                    let expected: fn(_) -> _ = if isa == Isa::Baseline { $kernel } else { $fma_kernel };
                    let mut ys = $xs.clone();
                    map::$map::on(isa, &mut ys);
                    for (x, y) in $xs.iter().zip(&ys) {
                        assert_eq!(y.to_bits(), expected(*x).to_bits(), "{} on {isa:?} at {x}", stringify!($map));
                    }
                    // The biased map: `kernel(x + b)` row by row.
                    let bias: Vec<_> = $xs[..5].iter().map(|b| *b * 0.5).collect();
                    let n = $xs.len() / 5 * 5;
                    let mut ys = $xs[..n].to_vec();
                    map::$map::biased_on(isa, &mut ys, &bias);
                    for (idx, (x, y)) in $xs[..n].iter().zip(&ys).enumerate() {
                        let want = expected(*x + bias[idx % 5]);
                        assert!(y.to_bits() == want.to_bits() || (y.is_nan() && want.is_nan()), "{} biased on {isa:?} at {x}", stringify!($map));
                    }
                }
            )*};
        }
        check! {
            tanh_f64, kernels::tanh_f64, kernels::tanh_f64_fma, xs64;
            sigmoid_f64, kernels::sigmoid_f64, kernels::sigmoid_f64, xs64;
            softplus_f64, kernels::softplus_f64, kernels::softplus_f64, xs64;
            silu_f64, kernels::silu_f64, kernels::silu_f64, xs64;
            tanh_f32, kernels::tanh_f32, kernels::tanh_f32_fma, xs32;
            sigmoid_f32, kernels::sigmoid_f32, kernels::sigmoid_f32, xs32;
            softplus_f32, kernels::softplus_f32, kernels::softplus_f32, xs32;
            silu_f32, kernels::silu_f32, kernels::silu_f32, xs32;
        }
    }

    /// The dispatching entry points run the widest path.
    #[test]
    fn the_entry_points_run_the_widest_path() {
        let xs: Vec<f64> = (0..777).map(|i| (i as f64 - 388.0) * 0.011).collect();
        let (mut a, mut b) = (xs.clone(), xs.clone());
        map::tanh_f64(&mut a);
        map::tanh_f64::on(Isa::best(), &mut b);
        assert_eq!(a, b);
        let bias = [0.25, -0.5, 1.0];
        let (mut a, mut b) = (xs.clone(), xs);
        map::tanh_f64::biased(&mut a, &bias);
        map::tanh_f64::biased_on(Isa::best(), &mut b, &bias);
        assert_eq!(a, b);
    }
}
