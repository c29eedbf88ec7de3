//! Slice maps with run-time instruction-set dispatch: each scalar kernel compiled for AVX-512,
//! AVX2 + FMA and the x86-64 baseline, the widest the CPU has chosen on every call.

/// `for x in xs { *x = kernel(*x) }`, compiled for the widest instruction set the CPU has.
/// Next to the function, a module of the same name holds each compiled path, so tests can check
/// every path the machine supports, not only the one the dispatcher picks. An optional second
/// kernel, written with `mul_add`, replaces the first on the paths compiled with FMA.
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
    // `$fused` is pasted as the body of the FMA paths' function (not passed as a closure: a
    // closure is compiled without the enclosing function's target features, which turns every
    // `mul_add` into a library call).
    (@impl $name:ident, $t:ty, $kernel:path, $fma_kernel:path, |$xs:ident| $fused:block) => {
        #[doc = concat!("Applies `", stringify!($kernel), "` (`", stringify!($fma_kernel), "` on the FMA paths) to every element, in place.")]
        pub fn $name(xs: &mut [$t]) {
            #[cfg(target_arch = "x86_64")]
            {
                if $name::has_avx512() {
                    // SAFETY: the CPU has every feature the function is compiled for.
                    return unsafe { $name::avx512(xs) };
                }
                if $name::has_avx2() {
                    // SAFETY: as above.
                    return unsafe { $name::avx2(xs) };
                }
            }
            $name::baseline(xs)
        }

        #[doc = concat!("The compiled paths of [`", stringify!($name), "()`].")]
        pub mod $name {
            use super::*;

            /// The x86-64 baseline (or any other target) path.
            pub fn baseline(xs: &mut [$t]) {
                for x in xs.iter_mut() {
                    *x = $kernel(*x);
                }
            }

            #[cfg(target_arch = "x86_64")]
            #[inline(always)]
            fn fused($xs: &mut [$t]) $fused

            /// # Safety
            /// The CPU must support AVX-512 F/DQ/VL, AVX2 and FMA.
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
            pub unsafe fn avx512(xs: &mut [$t]) {
                fused(xs)
            }

            /// # Safety
            /// The CPU must support AVX2 and FMA.
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            pub unsafe fn avx2(xs: &mut [$t]) {
                fused(xs)
            }

            /// Whether [`avx512`] may run here.
            #[cfg(target_arch = "x86_64")]
            pub fn has_avx512() -> bool {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && has_avx2()
            }

            /// Whether [`avx2`] may run here.
            #[cfg(target_arch = "x86_64")]
            pub fn has_avx2() -> bool {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }

            /// `xs[r n + j] = kernel(xs[r n + j] + bias[j])` for each row of `n = bias.len()`
            /// elements (a dense layer's bias and activation in one pass), on the widest path.
            pub fn biased(xs: &mut [$t], bias: &[$t]) {
                #[cfg(target_arch = "x86_64")]
                {
                    if has_avx512() {
                        // SAFETY: the CPU has every feature the function is compiled for.
                        return unsafe { biased_avx512(xs, bias) };
                    }
                    if has_avx2() {
                        // SAFETY: as above.
                        return unsafe { biased_avx2(xs, bias) };
                    }
                }
                biased_baseline(xs, bias)
            }

            /// [`biased`] on the baseline path.
            pub fn biased_baseline(xs: &mut [$t], bias: &[$t]) {
                if bias.is_empty() {
                    return;
                }
                for row in xs.chunks_exact_mut(bias.len()) {
                    for (x, b) in row.iter_mut().zip(bias) {
                        *x = $kernel(*x + *b);
                    }
                }
            }

            #[cfg(target_arch = "x86_64")]
            #[inline(always)]
            fn biased_fused(xs: &mut [$t], bias: &[$t]) {
                if bias.is_empty() {
                    return;
                }
                // Row by row: the bias is added while the row is in registers or L1, just
                // before the kernel reads it.
                for row in xs.chunks_exact_mut(bias.len()) {
                    for (x, b) in row.iter_mut().zip(bias) {
                        *x += *b;
                    }
                    fused(row);
                }
            }

            /// # Safety
            /// The CPU must support AVX-512 F/DQ/VL, AVX2 and FMA.
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
            pub unsafe fn biased_avx512(xs: &mut [$t], bias: &[$t]) {
                biased_fused(xs, bias)
            }

            /// # Safety
            /// The CPU must support AVX2 and FMA.
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            pub unsafe fn biased_avx2(xs: &mut [$t], bias: &[$t]) {
                biased_fused(xs, bias)
            }

            /// `(path, result)` of [`biased`] for every path this machine can run.
            pub fn every_path_biased(xs: &[$t], bias: &[$t]) -> Vec<(&'static str, Vec<$t>)> {
                let run = |f: &dyn Fn(&mut [$t])| {
                    let mut v = xs.to_vec();
                    f(&mut v);
                    v
                };
                #[allow(unused_mut)]
                let mut out = vec![("baseline", run(&|v| biased_baseline(v, bias)))];
                #[cfg(target_arch = "x86_64")]
                {
                    if has_avx2() {
                        // SAFETY: checked just above.
                        out.push(("avx2", run(&|v| unsafe { biased_avx2(v, bias) })));
                    }
                    if has_avx512() {
                        // SAFETY: checked just above.
                        out.push(("avx512", run(&|v| unsafe { biased_avx512(v, bias) })));
                    }
                }
                out
            }

            /// `(path, result)` for every path this machine can run, on a copy of `xs`.
            pub fn every_path(xs: &[$t]) -> Vec<(&'static str, Vec<$t>)> {
                let run = |f: &dyn Fn(&mut [$t])| {
                    let mut v = xs.to_vec();
                    f(&mut v);
                    v
                };
                #[allow(unused_mut)]
                let mut out = vec![("baseline", run(&|v| baseline(v)))];
                #[cfg(target_arch = "x86_64")]
                {
                    if has_avx2() {
                        // SAFETY: checked just above.
                        out.push(("avx2", run(&|v| unsafe { avx2(v) })));
                    }
                    if has_avx512() {
                        // SAFETY: checked just above.
                        out.push(("avx512", run(&|v| unsafe { avx512(v) })));
                    }
                }
                out
            }
        }
    };
}

/// Values per call of a many-lane kernel (four 512-bit vectors of `f64`).
const LANES: usize = 32;

/// Slice maps with run-time instruction-set dispatch (public for benchmarks and tests).
pub mod map {
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
    simd_map!(tanh_f32, f32, kernels::tanh_f32);
    simd_map!(sigmoid_f32, f32, kernels::sigmoid_f32);
    simd_map!(softplus_f32, f32, kernels::softplus_f32);
    simd_map!(silu_f32, f32, kernels::silu_f32);
}
