//! The module's heap: a bump allocator for `wasm32`, installed as the global allocator.
//!
//! A rule instance lives for one login and is then thrown away, so nothing needs to be freed:
//! allocation is a pointer bump, freeing the most recent block rolls it back, and growing the
//! most recent block extends it in place. Memory grows in whole wasm pages, under the host's
//! memory limit. Against the standard allocator this cuts the instructions a login costs (see
//! docs/performance.md). A rule that needs its own allocator turns off the SDK's default
//! `login-heap` feature.

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::Cell;

const PAGE: usize = 64 * 1024;

unsafe extern "C" {
    /// First free byte after the module's data and stack, placed by the linker.
    static __heap_base: u8;
}

/// The bump allocator; its state is the next free byte and the end of memory.
pub struct LoginHeap {
    next: Cell<usize>,
    end: Cell<usize>,
}

// SAFETY: wasm32-unknown-unknown rule modules are single-threaded.
unsafe impl Sync for LoginHeap {}

impl LoginHeap {
    /// An allocator that starts at `__heap_base` on first use.
    pub const fn new() -> LoginHeap {
        LoginHeap {
            next: Cell::new(0),
            end: Cell::new(0),
        }
    }

    fn bump(&self, layout: Layout) -> *mut u8 {
        self.sync();
        let align = layout.align() - 1;
        let Some(start) = self.next.get().checked_add(align).map(|n| n & !align) else {
            return core::ptr::null_mut();
        };
        match start.checked_add(layout.size()) {
            Some(end) if self.reserve(end) => {
                self.next.set(end);
                start as *mut u8
            }
            _ => core::ptr::null_mut(),
        }
    }

    /// Start at `__heap_base` on first use; and if other code grew memory since, never hand out
    /// its pages: the heap goes on from the new end.
    fn sync(&self) {
        if self.next.get() == 0 {
            // Only the linker symbol's address is taken, never its value.
            self.next.set(core::ptr::addr_of!(__heap_base) as usize);
            self.end.set(memory_end());
        }
        let end = memory_end();
        if end != self.end.get() {
            // Pages between our old end and the new one belong to whoever grew them.
            self.next.set(end);
            self.end.set(end);
        }
    }

    /// Make sure memory reaches `end`, growing it by whole pages; false when it cannot grow.
    fn reserve(&self, end: usize) -> bool {
        if end <= self.end.get() {
            return true;
        }
        let pages = (end - self.end.get()).div_ceil(PAGE);
        if wasm32::memory_grow(0, pages) == usize::MAX {
            return false;
        }
        self.end.set(memory_end());
        end <= self.end.get()
    }
}

impl Default for LoginHeap {
    fn default() -> Self {
        LoginHeap::new()
    }
}

/// The end of linear memory in bytes (saturating at the 4 GiB that 32 bits cannot hold).
fn memory_end() -> usize {
    wasm32::memory_size(0).saturating_mul(PAGE)
}

unsafe impl GlobalAlloc for LoginHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.bump(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // The most recent block can be handed back; anything else waits for the instance's end.
        if ptr as usize + layout.size() == self.next.get() {
            self.next.set(ptr as usize);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.sync();
        let start = ptr as usize;
        if start + layout.size() == self.next.get() {
            // The most recent block grows or shrinks where it is.
            return match start.checked_add(new_size) {
                Some(end) if self.reserve(end) => {
                    self.next.set(end);
                    ptr
                }
                _ => core::ptr::null_mut(),
            };
        }
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return core::ptr::null_mut();
        };
        let moved = self.bump(new_layout);
        if !moved.is_null() {
            // SAFETY: both blocks are live and do not overlap (the new one starts past the old).
            unsafe { core::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size)) };
        }
        moved
    }
}

#[global_allocator]
static HEAP: LoginHeap = LoginHeap::new();
