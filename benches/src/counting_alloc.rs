//! A global allocator that counts: bytes currently held, and allocation
//! calls. A binary opts in with
//! `#[global_allocator] static A: CountingAlloc = CountingAlloc;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

static HELD: AtomicU64 = AtomicU64::new(0);
static CALLS: AtomicU64 = AtomicU64::new(0);

/// The system allocator, counting.
#[derive(Debug)]
pub struct CountingAlloc;

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the counters are plain atomics.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        CALLS.fetch_add(1, Relaxed);
        HELD.fetch_add(layout.size() as u64, Relaxed);
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size() as u64, Relaxed);
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        CALLS.fetch_add(1, Relaxed);
        HELD.fetch_add(layout.size() as u64, Relaxed);
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        CALLS.fetch_add(1, Relaxed);
        HELD.fetch_add(new_size as u64, Relaxed);
        HELD.fetch_sub(layout.size() as u64, Relaxed);
        // SAFETY: `ptr` came from `System` with `layout`; the caller upholds
        // `realloc`'s contract for `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Bytes currently allocated through [`CountingAlloc`].
pub fn held_bytes() -> u64 {
    HELD.load(Relaxed)
}

/// Allocation calls (alloc, alloc_zeroed, realloc) so far.
pub fn allocation_calls() -> u64 {
    CALLS.load(Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_it_forwards() {
        let layout = Layout::from_size_align(4096, 8).unwrap();
        let before = allocation_calls();
        // SAFETY: non-zero size; freed with the same layout below.
        let p = unsafe { CountingAlloc.alloc(layout) };
        assert!(!p.is_null());
        assert!(allocation_calls() > before);
        let held = held_bytes();
        assert!(held >= 4096);
        // SAFETY: `p` came from `CountingAlloc.alloc(layout)`.
        unsafe { CountingAlloc.dealloc(p, layout) };
        assert!(held_bytes() < held || held_bytes() == held - 4096);
    }
}
