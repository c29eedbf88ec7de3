//! Handing a computed host buffer to dfdx as a tensor, with as few memory passes as dfdx 0.13's
//! public interface allows.
//!
//! dfdx 0.13 has no mutable view of a tensor's buffer: a result computed in a buffer of ours
//! either becomes the tensor's buffer (`tensor_from_vec`: no copy) or is copied into a tensor
//! that dfdx allocated (`zeros_like` + `copy_from`: a fill and a copy). The first is right
//! whenever dfdx's tensor cache is off (the default): the buffer is freed with the tensor. With
//! the cache on (`dev.enable_cache()`), a dropped tensor's buffer is kept for reuse by later
//! dfdx allocations, and buffers that dfdx did not allocate would accumulate in it without
//! bound; so then the result is copied into a dfdx allocation, which takes its buffer from the
//! cache and returns it there.
//!
//! dfdx offers no query for the cache's state either, so [`cache_enabled`] observes it: a
//! buffer of dfdx's, freed, comes back from dfdx's next allocation of that size only if the
//! cache kept it; when it went back to the allocator instead, a plain allocation of the same
//! size made in between takes that memory first. The probe's size (over 4 KiB, an odd number of
//! elements) keeps it out of glibc's per-thread caches, whose several same-size entries could
//! hand the plain allocation another block. A misreading either way is harmless but for speed,
//! except for a concurrent dfdx allocation of that exact size on another thread making an
//! enabled cache look disabled, which then costs one buffer kept in the cache.

use dfdx::prelude::*;

use super::pool::{Buf, Pooled};

/// The probe's length: an odd size that models are unlikely to use, over 4 KiB in `f32`.
const PROBE: usize = 1031;

/// Whether `dev`'s tensor cache is enabled (see the module docs).
pub(crate) fn cache_enabled<E: Dtype + Pooled>(dev: &Cpu) -> Result<bool, CpuError> {
    let key: Tensor<Rank1<PROBE>, E, Cpu> = dev.try_zeros()?;
    let first = {
        let mut g = Gradients::<E, Cpu>::leaky();
        g.get_or_alloc_mut(&key)?.as_ptr() as usize
    };
    // Opaque to the optimiser: an allocation nobody reads is otherwise elided in release
    // builds, and the probe would read every cache as enabled.
    let hold: Vec<E> = std::hint::black_box(Vec::with_capacity(PROBE));
    let second = {
        let mut g = Gradients::<E, Cpu>::leaky();
        g.get_or_alloc_mut(&key)?.as_ptr() as usize
    };
    drop(hold);
    Ok(first == second)
}

/// A tensor and, if asked for, the buffer it was made from.
pub(crate) type Handed<S, E> = Result<(Tensor<S, E, Cpu>, Option<Buf<E>>), CpuError>;

/// `values` as a tensor of `shape` (row-major, `shape.num_elements()` values). With `keep`,
/// the buffer is also returned for a backward pass to read; without, it is consumed.
pub(crate) fn to_tensor<S: Shape, E: Dtype + Pooled>(
    dev: &Cpu,
    shape: S,
    values: Buf<E>,
    keep: bool,
) -> Handed<S, E> {
    if cache_enabled::<E>(dev)? {
        let mut t = dev.try_zeros_like(&shape)?;
        t.copy_from(&values);
        return Ok((t, keep.then_some(values)));
    }
    if keep {
        let t = dev.try_tensor_from_vec(values.to_vec(), shape)?;
        Ok((t, Some(values)))
    } else {
        Ok((dev.try_tensor_from_vec(values.into_vec(), shape)?, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_sees_the_cache_state() {
        let dev = Cpu::default();
        assert!(!cache_enabled::<f64>(&dev).unwrap());
        dev.enable_cache();
        assert!(cache_enabled::<f64>(&dev).unwrap());
        assert!(cache_enabled::<f32>(&dev).unwrap());
        dev.disable_cache();
        assert!(!cache_enabled::<f32>(&dev).unwrap());
    }
}
