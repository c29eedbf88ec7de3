//! The one device-specific operation the runtime needs beyond dfdx's public API.

use dfdx::prelude::*;

use crate::real::Real;

/// A dfdx device the runtime can run on.
///
/// dfdx 0.13 gives a custom backward operation mutable access to a gradient only as the
/// device's raw buffer type, so adding a computed tensor into the caller's [`Gradients`]
/// needs one device-specific routine. Everything else goes through dfdx's own kernels.
pub trait Backend<E: Real>: Device<E> {
    /// `grads[key] += value`, allocating a zero gradient for `key` first if it has none.
    fn accumulate<S: Shape>(
        grads: &mut Gradients<E, Self>,
        key: &Tensor<S, E, Self>,
        value: &Tensor<S, E, Self>,
    ) -> Result<(), Self::Err>;
}

macro_rules! cpu_backend {
    ($($e:ty),*) => {$(
        impl Backend<$e> for Cpu {
            fn accumulate<S: Shape>(
                grads: &mut Gradients<$e, Self>,
                key: &Tensor<S, $e, Self>,
                value: &Tensor<S, $e, Self>,
            ) -> Result<(), Self::Err> {
                let src = value.as_vec();
                let dst = grads.get_or_alloc_mut(key)?;
                for (d, s) in dst.iter_mut().zip(src) {
                    *d += s;
                }
                Ok(())
            }
        }
    )*};
}

cpu_backend!(f32, f64);

#[cfg(feature = "cuda")]
macro_rules! cuda_backend {
    ($($e:ty),*) => {$(
        impl Backend<$e> for Cuda {
            fn accumulate<S: Shape>(
                grads: &mut Gradients<$e, Self>,
                key: &Tensor<S, $e, Self>,
                value: &Tensor<S, $e, Self>,
            ) -> Result<(), Self::Err> {
                // Once per solve and parameter tensor, so a round trip through the host is cheap
                // next to the solve itself; dfdx 0.13 exposes no device-side add on raw
                // gradient buffers.
                let src = value.as_vec();
                let dst = grads.get_or_alloc_mut(key)?;
                let slice: &mut cudarc::driver::CudaSlice<$e> = &mut *dst;
                let dev = slice.device();
                let mut host = dev.dtoh_sync_copy(slice).map_err(CudaError::from)?;
                for (d, s) in host.iter_mut().zip(src) {
                    *d += s;
                }
                dev.htod_sync_copy_into(&host, slice).map_err(CudaError::from)?;
                Ok(())
            }
        }
    )*};
}

#[cfg(feature = "cuda")]
cuda_backend!(f32, f64);
