//! How the fused layers use threads: a batch is cut into blocks of a fixed number of rows, and
//! the calling thread runs the blocks together with up to [`helpers`] threads of rayon's pool.
//!
//! - **Blocks of a fixed size.** `by_rows` cuts a batch of at least two blocks ([`splits`])
//!   into blocks of [`PAR_ROWS`] rows (the last one also taking the remainder), and the weight
//!   cotangent is cut into blocks of [`PAR_OUTPUTS`] of its rows (each summing over the whole
//!   batch in row order). Every kernel computes a row, and an entry of the weight cotangent, with
//!   the same operations in the same order whoever runs its block, so results are bit-identical
//!   for every thread count (`tests/threads.rs`).
//! - **The caller works too, and never waits for a thread to wake up.** The blocks are claimed
//!   one at a time from a shared counter, by the calling thread and by helpers it posts to
//!   rayon's pool (the pool of the thread it runs on, else, under `off_pool`, the global pool).
//!   A helper that arrives late finds the blocks taken and leaves; the caller waits only for
//!   blocks a helper is already running. So a program's main thread gets the pool's cores
//!   without handing its work over.
//! - Each product itself is single-threaded: `gemm` splitting the small products of a dense
//!   layer cost more in synchronisation than it gained.

use std::cell::Cell;
use std::ops::Range;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Rows per block where a batch is split (see the module docs). Fixed, so that results do not
/// depend on the number of threads.
pub const PAR_ROWS: usize = 64;

/// Rows of the weight cotangent per block where a batch is split (the last block also takes the
/// remainder).
pub const PAR_OUTPUTS: usize = 16;

/// Whether a batch of `rows` is split into blocks: at least two of [`PAR_ROWS`].
pub fn splits(rows: usize) -> bool {
    rows >= 2 * PAR_ROWS
}

thread_local! {
    /// Whether this thread, outside any pool, shares split work with rayon's global pool now.
    static OFF_POOL: Cell<bool> = const { Cell::new(false) };
}

/// How many threads may help the calling thread with split work: one fewer than the threads of
/// the rayon pool it runs on; on a thread outside any pool (a program's main thread), one fewer
/// than the threads of rayon's global pool (`RAYON_NUM_THREADS`, by default one per core) while
/// an [`Mlp`](crate::nn::Mlp) evaluates, else none. Zero runs everything on the calling thread.
pub fn helpers() -> usize {
    if rayon::current_thread_index().is_none() && !OFF_POOL.with(Cell::get) {
        return 0;
    }
    rayon::current_num_threads().saturating_sub(1)
}

/// `f`, with the calling thread, if it is outside any pool, sharing split work with rayon's
/// global pool. [`Mlp`](crate::nn::Mlp) evaluates under it; a [`Dense`](crate::nn::Dense) layer
/// called on its own does not: each layer hands a batch-sized output to dfdx and allocates the
/// next, and on a program's main thread glibc's allocator answers that churn with page faults
/// (it shrinks and regrows the heap) that a second busy thread made several times worse than
/// what the split saved (measured: `benches/README.md`, "Threads").
pub(crate) fn off_pool<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            OFF_POOL.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(OFF_POOL.with(|c| c.replace(true)));
    f()
}

/// `f(rows, the rows of out)` for the first `rows` rows of `out` (`width` values per row): once
/// per block of [`PAR_ROWS`] rows, shared with [`helpers`], when the batch [`splits`], else
/// once on the whole. The closure reads its inputs by the row range. (Every kernel computes a
/// row the same way whichever rows, at least [`PAR_ROWS`] of them, it is given with it, so the
/// two give the same bits: `tests/threads.rs` and the product tests hold them to it.)
pub(crate) fn by_rows<T: Send>(
    rows: usize,
    out: &mut [T],
    width: usize,
    f: impl Fn(Range<usize>, &mut [T]) + Sync,
) {
    let out = &mut out[..rows * width];
    if !splits(rows) || width == 0 || helpers() == 0 {
        f(0..rows, out);
        return;
    }
    share(blocks(out, width, PAR_ROWS), &|(r, chunk)| f(r, chunk));
}

/// The row ranges of a batch of `rows` cut into blocks of `size` rows, the last one also taking
/// the remainder (so no block has fewer than `size` rows, unless the batch has).
pub(crate) fn row_blocks(rows: usize, size: usize) -> Vec<Range<usize>> {
    let count = (rows / size).max(1);
    (0..count)
        .map(|b| b * size..if b + 1 == count { rows } else { (b + 1) * size })
        .collect()
}

/// The blocks of `buf` (rows of `width` values) for the row ranges `cut` (consecutive, from 0).
pub(crate) fn split_rows<'a, T>(
    mut buf: &'a mut [T],
    width: usize,
    cut: &[Range<usize>],
) -> Vec<&'a mut [T]> {
    cut.iter()
        .map(|r| {
            let (head, tail) = std::mem::take(&mut buf).split_at_mut(r.len() * width);
            buf = tail;
            head
        })
        .collect()
}

/// `out` (rows of `width` values) cut into blocks of `size` rows ([`row_blocks`]), with their row
/// ranges.
pub(crate) fn blocks<T>(out: &mut [T], width: usize, size: usize) -> Vec<Block<'_, T>> {
    let cut = row_blocks(out.len() / width.max(1), size);
    let parts = split_rows(out, width, &cut);
    cut.into_iter().zip(parts).collect()
}

/// A block of split work: its row range and its rows of the output.
type Block<'a, T> = (Range<usize>, &'a mut [T]);

/// `f` on every item (a block of work), each exactly once, by the calling thread and up to
/// [`helpers`] threads of rayon's pool (see the module docs). A panic in `f` on any thread is
/// raised again here once no thread runs `f` any more.
pub(crate) fn share<X: Send>(items: Vec<X>, f: &(dyn Fn(X) + Sync)) {
    let count = items.len();
    let helpers = helpers().min(count.saturating_sub(1));
    if helpers == 0 {
        items.into_iter().for_each(f);
        return;
    }
    let slots: Vec<Mutex<Option<X>>> = items.into_iter().map(|x| Mutex::new(Some(x))).collect();
    let run = |i: usize| {
        let item = slots[i].lock().ok().and_then(|mut slot| slot.take());
        if let Some(item) = item {
            f(item);
        }
    };
    let run: &(dyn Fn(usize) + Sync + '_) = &run;
    // SAFETY (the lifetime only is erased): `run` is called only by a thread that claimed an
    // index below `count` (`Claims::work`), and this function returns (or unwinds) only after
    // every claimed index is done, so no call outlives the borrow; a helper that starts later
    // claims nothing and never reads `run`.
    let run: *const (dyn Fn(usize) + Sync + 'static) = unsafe { std::mem::transmute(run) };
    let claims = Arc::new(Claims {
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        count,
        panic: Mutex::new(None),
        panicked: AtomicBool::new(false),
        run,
    });
    for _ in 0..helpers {
        let claims = Arc::clone(&claims);
        rayon::spawn(move || claims.work());
    }
    claims.work();
    let mut spins = 0u32;
    while claims.done.load(Ordering::Acquire) < count {
        if spins < 1 << 12 {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    if claims.panicked.load(Ordering::Acquire) {
        let payload = claims.panic.lock().ok().and_then(|mut p| p.take());
        resume_unwind(payload.unwrap_or_else(|| Box::new("a block of split work panicked")));
    }
}

/// The shared state of one [`share`]: the next block to claim, how many are done, and the run
/// function (see the safety comment there).
struct Claims {
    next: AtomicUsize,
    done: AtomicUsize,
    count: usize,
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
    panicked: AtomicBool,
    run: *const (dyn Fn(usize) + Sync + 'static),
}

// SAFETY: `run` points to a `Sync` closure, called from several threads only as `share`
// allows; the other fields are thread-safe.
unsafe impl Send for Claims {}
unsafe impl Sync for Claims {}

impl Claims {
    /// Claims and runs blocks until none is left, catching a panic so that the caller's frame is
    /// not unwound while another thread may still run a block.
    fn work(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.count {
                return;
            }
            // SAFETY: `i < count` was claimed by this thread alone, and `share` waits for it.
            let ran = catch_unwind(AssertUnwindSafe(|| unsafe { (*self.run)(i) }));
            if let Err(payload) = ran {
                if let Ok(mut p) = self.panic.lock() {
                    p.get_or_insert(payload);
                }
                self.panicked.store(true, Ordering::Release);
            }
            self.done.fetch_add(1, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    }

    #[test]
    fn every_block_runs_once_on_any_thread_count() {
        for threads in [1, 2, 3, 8] {
            for rows in [0, 1, 63, 128, 129, 200, 1000] {
                let mut out = vec![0usize; rows * 3];
                pool(threads).install(|| {
                    by_rows(rows, &mut out, 3, |r, chunk| {
                        for (k, v) in chunk.iter_mut().enumerate() {
                            *v += r.start * 3 + k + 1;
                        }
                    })
                });
                let want: Vec<usize> = (1..=rows * 3).collect();
                assert_eq!(out, want, "threads {threads}, rows {rows}");
            }
        }
    }

    #[test]
    fn a_thread_outside_any_pool_shares_with_the_global_pool() {
        let mut out = vec![0u64; 4096];
        let seen = Mutex::new(std::collections::HashSet::new());
        std::thread::spawn(move || {
            assert!(rayon::current_thread_index().is_none());
            assert_eq!(helpers(), 0, "not outside `off_pool`");
            let global = rayon::current_num_threads();
            off_pool(|| assert_eq!(helpers(), global - 1));
            assert_eq!(helpers(), 0, "restored");
            off_pool(|| {
                by_rows(4096, &mut out, 1, |r, chunk| {
                    seen.lock().unwrap().insert(std::thread::current().id());
                    // Slow blocks, so that a helper surely arrives before the caller is done.
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    chunk.iter_mut().zip(r).for_each(|(v, k)| *v = k as u64);
                })
            });
            assert!(out.iter().enumerate().all(|(k, v)| *v == k as u64));
            let threads = seen.lock().unwrap().len();
            assert!(
                threads >= global.min(2),
                "{threads} threads ran blocks with a global pool of {global}"
            );
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_panic_in_a_block_reaches_the_caller_after_every_block_stopped() {
        let running = AtomicUsize::new(0);
        let caught = pool(4).install(|| {
            catch_unwind(AssertUnwindSafe(|| {
                let mut out = vec![0u8; 1024];
                by_rows(1024, &mut out, 1, |r, _| {
                    running.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    if r.start == 128 {
                        panic!("block at 128");
                    }
                    running.fetch_sub(1, Ordering::SeqCst);
                });
            }))
        });
        let payload = caught.expect_err("the panic reaches the caller");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"block at 128"));
        // Only the panicking block is still counted: every other one finished before the return.
        assert_eq!(running.load(Ordering::SeqCst), 1);
    }
}
