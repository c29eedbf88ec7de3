//! A counting global allocator, for measuring the memory of a gradient pass.
//!
//! Install it in a binary, test or bench with
//! `#[global_allocator] static A: neural_ode::alloc::CountingAllocator = neural_ode::alloc::CountingAllocator;`.
//! The runtime then reports [`BackwardStats::peak_bytes`](crate::BackwardStats::peak_bytes).
//! The counters are process-wide: allocations of other threads count too.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// [`System`] plus counters of live bytes, their peak and the number of allocations.
#[derive(Clone, Copy, Debug, Default)]
pub struct CountingAllocator;

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
            grow(new_size);
        }
        p
    }
}

fn grow(size: usize) {
    ACTIVE.store(true, Ordering::Relaxed);
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    let now = CURRENT.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

/// Whether the counting allocator is installed (it has counted at least one allocation).
pub fn is_active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Live heap bytes.
pub fn current() -> usize {
    CURRENT.load(Ordering::Relaxed)
}

/// Highest live heap bytes since the last [`reset_peak`].
pub fn peak() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// Number of allocations so far.
pub fn allocations() -> usize {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Sets the peak to the current live bytes.
pub fn reset_peak() {
    PEAK.store(current(), Ordering::Relaxed);
}

/// Runs `f` and returns its result with the peak live bytes during it above the level at its
/// start (`None` without the counting allocator). Nests: an enclosing measurement's peak is
/// kept (the global peak afterwards is the larger of both).
pub(crate) fn measure<R>(f: impl FnOnce() -> R) -> (R, Option<usize>) {
    let outer = peak();
    let base = current();
    reset_peak();
    let r = f();
    let inner = peak();
    PEAK.fetch_max(outer, Ordering::Relaxed);
    (r, is_active().then(|| inner.saturating_sub(base)))
}
