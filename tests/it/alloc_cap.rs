//! The test binary's global allocator: mimalloc, with every request larger than [`CAP`] counted,
//! so that a test can assert that a loader fed a hostile file never asked for a huge block (a
//! header's count trusted before it was checked). Requests are still served: an untouched large
//! block costs address space, not memory, and refusing it would abort the whole test binary
//! instead of failing the one test.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The largest single allocation a loader may request.
pub const CAP: usize = 1 << 30;

static OVER_CAP: AtomicUsize = AtomicUsize::new(0);
static LARGEST_OVER_CAP: AtomicUsize = AtomicUsize::new(0);

/// How many requests above [`CAP`] were made so far, and the largest of them.
pub fn over_cap() -> (usize, usize) {
    (OVER_CAP.load(Ordering::SeqCst), LARGEST_OVER_CAP.load(Ordering::SeqCst))
}

pub struct CappedCounting;

fn note(size: usize) {
    if size > CAP {
        OVER_CAP.fetch_add(1, Ordering::SeqCst);
        LARGEST_OVER_CAP.fetch_max(size, Ordering::SeqCst);
    }
}

// A global allocator can only be written with `unsafe`: each method forwards its arguments
// unchanged to mimalloc, whose contract is the same as the trait's, and only adds an atomic count
// that neither allocates nor touches the memory.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CappedCounting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's guarantees for `layout` are passed on unchanged.
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by mimalloc through this allocator with `layout`.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: `ptr` and `layout` come from this allocator; `new_size` obeys the caller's contract.
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}
