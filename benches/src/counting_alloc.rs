//! A global allocator that counts: bytes currently held, allocation calls,
//! and held blocks by size class (to see what a program holds). A binary
//! opts in with `#[global_allocator] static A: CountingAlloc = CountingAlloc;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

static HELD: AtomicU64 = AtomicU64::new(0);
static CALLS: AtomicU64 = AtomicU64::new(0);

/// Size classes: class `i` holds blocks of `2^(i-1) + 1 ..= 2^i` bytes.
const CLASSES: usize = 48;
#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);
static CLASS_BYTES: [AtomicU64; CLASSES] = [ZERO; CLASSES];
static CLASS_BLOCKS: [AtomicU64; CLASSES] = [ZERO; CLASSES];

fn class_of(size: usize) -> usize {
    (usize::BITS - size.saturating_sub(1).leading_zeros()).min(CLASSES as u32 - 1) as usize
}

fn held(size: usize) {
    HELD.fetch_add(size as u64, Relaxed);
    CLASS_BYTES[class_of(size)].fetch_add(size as u64, Relaxed);
    CLASS_BLOCKS[class_of(size)].fetch_add(1, Relaxed);
}

fn released(size: usize) {
    HELD.fetch_sub(size as u64, Relaxed);
    CLASS_BYTES[class_of(size)].fetch_sub(size as u64, Relaxed);
    CLASS_BLOCKS[class_of(size)].fetch_sub(1, Relaxed);
}

/// The system allocator, counting.
#[derive(Debug)]
pub struct CountingAlloc;

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the counters are plain atomics.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        CALLS.fetch_add(1, Relaxed);
        held(layout.size());
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        released(layout.size());
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        CALLS.fetch_add(1, Relaxed);
        held(layout.size());
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        CALLS.fetch_add(1, Relaxed);
        held(new_size);
        released(layout.size());
        // SAFETY: `ptr` came from `System` with `layout`; the caller upholds
        // `realloc`'s contract for `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Bytes currently allocated through [`CountingAlloc`].
pub fn held_bytes() -> u64 {
    HELD.load(Relaxed)
}

/// Blocks held through [`CountingAlloc`] by size class: for each class with
/// blocks, (largest size in the class, bytes held, blocks held).
pub fn held_by_size_class() -> Vec<(u64, u64, u64)> {
    (0..CLASSES)
        .map(|i| {
            (
                1u64 << i,
                CLASS_BYTES[i].load(Relaxed),
                CLASS_BLOCKS[i].load(Relaxed),
            )
        })
        .filter(|&(_, _, blocks)| blocks > 0)
        .collect()
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

    #[test]
    fn size_classes_are_powers_of_two() {
        assert_eq!(class_of(0), 0);
        assert_eq!(class_of(1), 0);
        assert_eq!(class_of(2), 1);
        assert_eq!(class_of(3), 2);
        assert_eq!(class_of(4096), 12);
        assert_eq!(class_of(4097), 13);
        // 3 MiB: a class no other test of this crate allocates in.
        let layout = Layout::from_size_align(3 << 20, 8).unwrap();
        let class = |c: &[(u64, u64, u64)]| {
            c.iter()
                .find(|e| e.0 == 4 << 20)
                .map_or((0, 0), |e| (e.1, e.2))
        };
        let before = class(&held_by_size_class());
        // SAFETY: non-zero size; freed with the same layout below.
        let p = unsafe { CountingAlloc.alloc(layout) };
        assert!(!p.is_null());
        let during = class(&held_by_size_class());
        assert_eq!(during, (before.0 + (3 << 20), before.1 + 1));
        // SAFETY: `p` came from `CountingAlloc.alloc(layout)`.
        unsafe { CountingAlloc.dealloc(p, layout) };
        assert_eq!(class(&held_by_size_class()), before);
    }
}
