//! The instruction sets the hand-written kernels are compiled for, their detection, and the one
//! dispatcher that runs a kernel on one of them (the crate-internal macro `isa_kernel!`): what
//! the slice maps, the activations' derivative passes and the small matrix products are built
//! on. Nothing else in the crate names a target feature.
//!
//! A kernel is written once, as an `#[inline(always)]` body generic over `const FMA: bool`; the
//! dispatcher compiles it into one function per instruction set, each with that set's
//! `#[target_feature]`s (`FMA = true` on the AVX paths, `false` on the baseline), and runs the
//! one asked for if the CPU has it. The body is called, not passed as a closure: a closure is
//! compiled without the enclosing function's target features, which turns every `mul_add` into
//! a library call.

/// An instruction set a kernel is compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512 F/DQ/VL with AVX2 and FMA (512-bit vectors).
    Avx512,
    /// AVX2 with FMA (256-bit vectors).
    Avx2,
    /// The target's baseline (SSE2 on x86-64), without FMA.
    Baseline,
}

impl Isa {
    /// The widest instruction set this CPU supports (detected once).
    pub fn best() -> Isa {
        use std::sync::OnceLock;
        static BEST: OnceLock<Isa> = OnceLock::new();
        *BEST.get_or_init(|| {
            let all = Isa::available();
            all[all.len() - 1]
        })
    }

    /// Every instruction set this CPU supports, narrowest first (for tests).
    pub fn available() -> Vec<Isa> {
        let mut out = vec![Isa::Baseline];
        if has_avx2() {
            out.push(Isa::Avx2);
        }
        if has_avx512() {
            out.push(Isa::Avx512);
        }
        out
    }
}

// The features each check below tests are the ones `isa_kernel!` compiles the path with.

/// Whether the AVX2 + FMA paths may run here.
pub(crate) fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether the AVX-512 paths may run here.
pub(crate) fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        has_avx2()
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vl")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Elements the kernels work on: `f32` and `f64`.
pub trait Float:
    Copy
    + Default
    + PartialEq
    + PartialOrd
    + Send
    + Sync
    + core::fmt::Debug
    + core::ops::Add<Output = Self>
    + core::ops::Sub<Output = Self>
    + core::ops::Mul<Output = Self>
    + core::ops::AddAssign
    + 'static
{
    /// `0`.
    const ZERO: Self;
    /// `1`.
    const ONE: Self;
    /// `self · a + b`, fused when `FMA` (only the FMA paths instantiate `FMA = true`: elsewhere
    /// `mul_add` would be a slow library call).
    fn madd<const FMA: bool>(self, a: Self, b: Self) -> Self;
}

macro_rules! float {
    ($($t:ty),*) => {$(
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            #[inline(always)]
            fn madd<const FMA: bool>(self, a: Self, b: Self) -> Self {
                if FMA {
                    self.mul_add(a, b)
                } else {
                    self * a + b
                }
            }
        }
    )*};
}
float!(f32, f64);

/// Defines `pub fn $name(isa: Isa, args…)` that runs `$body::<FMA>(args…)` compiled for the
/// chosen instruction set (`FMA = true` on the AVX paths), or, written `$name<E>`, the generic
/// `pub fn $name<E: Float>(isa: Isa, args…)` running `$body::<E, FMA>(args…)`.
///
/// A path runs only if the CPU has it: an `isa` the CPU lacks falls back to the next narrower
/// one it has, so no caller can select an unsupported path (the check is a cached load).
macro_rules! isa_kernel {
    (
        $(#[$doc:meta])*
        $name:ident $(<$e:ident>)? => $body:ident($($arg:ident: $ty:ty),* $(,)?)
    ) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        pub fn $name$(<$e: $crate::nn::isa::Float>)?(isa: $crate::nn::isa::Isa, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx512$(<$e: $crate::nn::isa::Float>)?($($arg: $ty),*) {
                    $body::<$($e,)? true>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2$(<$e: $crate::nn::isa::Float>)?($($arg: $ty),*) {
                    $body::<$($e,)? true>($($arg),*)
                }
                match isa {
                    // SAFETY: the guard checked every feature the function is compiled for.
                    $crate::nn::isa::Isa::Avx512 if $crate::nn::isa::has_avx512() => {
                        return unsafe { avx512$(::<$e>)?($($arg),*) }
                    }
                    // SAFETY: as above.
                    $crate::nn::isa::Isa::Avx2 | $crate::nn::isa::Isa::Avx512
                        if $crate::nn::isa::has_avx2() =>
                    {
                        return unsafe { avx2$(::<$e>)?($($arg),*) }
                    }
                    _ => {}
                }
            }
            let _ = isa;
            $body::<$($e,)? false>($($arg),*)
        }
    };
}
pub(crate) use isa_kernel;
