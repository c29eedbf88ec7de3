//! Where a solve's work runs: on a thread of rayon's pool.
//!
//! The layers split a batch into tasks only on a pool thread (see `nn::matmul`): a pool thread
//! hands tasks to the others through its own queue, where a thread outside the pool would hand
//! over and wait at every layer. So `solve` runs the forward integration, and the gradient pass
//! its reverse pass, on a thread of rayon's global pool, the calling thread waiting: the layers
//! then use the pool's threads (`RAYON_NUM_THREADS`, else one per core) without the caller setting
//! anything up. It also keeps the solve's batch-sized buffers off the main thread's heap, which
//! glibc shrinks and grows again around them (see benches/README.md, "Threads").

/// Runs `f` on a thread of rayon's global pool while the calling thread waits, or on the calling
/// thread when it already is a thread of a pool (its own pool then serves the layers), or when
/// `stay` (an MPI batch group, whose collective calls belong to the thread that created it).
/// A panic in `f` is resumed on the calling thread.
pub(crate) fn on_pool<R: Send>(stay: bool, f: impl FnOnce() -> R + Send) -> R {
    if stay || rayon::current_thread_index().is_some() {
        return f();
    }
    rayon::scope(|_| f())
}
