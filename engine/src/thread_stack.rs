//! Whether the thread about to run a rule has the native stack its `stack_bytes` promises.
//! Wasm frames live on the calling thread's stack. wasmtime stops a rule at `max_wasm_stack`,
//! but a thread with less stack than that left overflows first, and that aborts the whole
//! process: so a rule on such a thread fails closed instead, and the threads claimsmith starts
//! itself are made with [`SandboxConfig::thread_stack_bytes`](crate::SandboxConfig).

/// Stack kept for the host's own frames below the wasm ones (wasmtime's entry and trap paths,
/// the host functions a rule calls, a guard page).
const HOST_FRAMES: usize = 256 << 10;

/// The stack a thread that runs rules under `max_wasm_stack` is made with: the wasm stack and
/// a mebibyte for everything else, and never less than Rust's default of 2 MiB.
pub(crate) fn for_threads(max_wasm_stack: usize) -> usize {
    max_wasm_stack.saturating_add(1 << 20).max(2 << 20)
}

/// `Err((left, needed))`: the current thread has `left` bytes of stack, fewer than the
/// `needed` that `max_wasm_stack` and the host's frames take. A thread whose stack cannot be
/// read (not Linux), or code running on a stack of its own (a coroutine's), is trusted.
pub(crate) fn check(max_wasm_stack: usize) -> Result<(), (usize, usize)> {
    let Some((low, high)) = bounds() else {
        return Ok(());
    };
    // A local's address: where the stack stands now (a `&0u8` would point at a static).
    let marker = 0u8;
    let here = std::hint::black_box(&marker) as *const u8 as usize;
    if !(low..high).contains(&here) {
        return Ok(());
    }
    let left = here - low;
    let needed = max_wasm_stack.saturating_add(HOST_FRAMES);
    if left >= needed {
        Ok(())
    } else {
        Err((left, needed))
    }
}

/// The lowest and one past the highest address of the current thread's stack, read once per
/// thread.
#[cfg(target_os = "linux")]
fn bounds() -> Option<(usize, usize)> {
    use std::cell::Cell;
    thread_local! {
        // (0, 0): not read yet; (0, 1): unreadable.
        static BOUNDS: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    }
    let bounds = BOUNDS.with(|bounds| {
        if bounds.get() == (0, 0) {
            bounds.set(read_bounds().unwrap_or((0, 1)));
        }
        bounds.get()
    });
    (bounds != (0, 1)).then_some(bounds)
}

#[cfg(target_os = "linux")]
fn read_bounds() -> Option<(usize, usize)> {
    // SAFETY: `attr` is initialised by `pthread_getattr_np` before it is read, and destroyed
    // once; `pthread_attr_getstack` only writes the two out-parameters.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut address: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let read = libc::pthread_attr_getstack(&attr, &mut address, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        let low = address as usize;
        (read == 0 && low != 0).then(|| (low, low.saturating_add(size)))
    }
}

#[cfg(not(target_os = "linux"))]
fn bounds() -> Option<(usize, usize)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_thread(stack: usize, max_wasm_stack: usize) -> Result<(), (usize, usize)> {
        std::thread::Builder::new()
            .stack_size(stack)
            .spawn(move || check(max_wasm_stack))
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_thread_without_the_stack_a_rule_may_take_is_told_apart() {
        // The small thread first: glibc may give a new thread a finished thread's larger stack.
        let (left, needed) = on_thread(2 << 20, 4 << 20).expect_err("2 MiB is not enough");
        assert!(left < 2 << 20 && left > 1 << 20, "{left}");
        assert_eq!(needed, (4 << 20) + HOST_FRAMES);
        assert_eq!(on_thread(4 << 20, 512 << 10), Ok(()));
        // The size claimsmith gives its own threads is always enough.
        for wasm in [16 << 10, 512 << 10, 4 << 20, 64 << 20] {
            assert_eq!(on_thread(for_threads(wasm), wasm), Ok(()), "{wasm}");
        }
    }
}
