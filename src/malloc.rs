//! glibc malloc settings for libtorch's allocation pattern: keep freed memory for reuse instead of
//! handing it back to the kernel and faulting it in again on the next step.
//!
//! libtorch allocates and frees the same few-MB activation buffers every step. With glibc's defaults
//! the heap top is trimmed after each free and the next allocation faults every page in again:
//! `make run` spent 116 s of system time in 53 million minor page faults (227 s wall on 2 cores);
//! with these settings 3 s and 0.5 million faults (156–165 s wall).
//!
//! Threads other than the main one get their own arenas, heaps of at most 64 MB each: a larger block
//! (an evaluation batch's activations, 100 MB for 1,024 Fashion-MNIST images through a 32-channel
//! conv) is then mapped fresh and unmapped at its free whatever the thresholds say. `iscp bench
//! --model` spent 104 s of 197 in system time in 45 million faults so; with a single arena 1.9 s
//! and 0.27 million (135 s wall).

/// Overrides how many glibc arenas threads share: unset or `1`, one; `0`, glibc's default (one per
/// thread up to 8 per core: faster batched searches on the CPU, page faults in large evaluations).
pub const ARENAS_ENV: &str = "ISCP_MALLOC_ARENAS";

/// The arena limit `ISCP_MALLOC_ARENAS` asks for (1 when unset or unreadable; 0 leaves glibc's).
fn arenas() -> i32 {
    std::env::var(ARENAS_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<i32>().ok())
        .filter(|&n| n >= 0)
        .unwrap_or(1)
}

/// Applies the settings; call first thing in `main`, before any thread starts.
pub fn tune() {
    let arenas = arenas();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before other threads exist.
    unsafe {
        // Never trim the heap top, and grow it 256 MB at a time.
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
        // Blocks below 1 GB come from the heap, not from fresh mappings (a fixed threshold also
        // stops glibc from lowering the trim threshold again as it adapts).
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        // Every thread allocates from the main arena, whose heap obeys the settings above (unless
        // ISCP_MALLOC_ARENAS says otherwise).
        if arenas > 0 {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}
