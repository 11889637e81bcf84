//! glibc malloc settings for libtorch's allocation pattern: keep freed memory for reuse instead of
//! handing it back to the kernel and faulting it in again on the next step.
//!
//! libtorch allocates and frees the same few-MB activation buffers every step. With glibc's defaults
//! the heap top is trimmed after each free and the next allocation faults every page in again:
//! `make run` spent 116 s of system time in 53 million minor page faults (227 s wall on 2 cores);
//! with these settings 3 s and 0.5 million faults (156–165 s wall).
//!
//! Threads other than the main one get their own arenas, heaps of at most 64 MB each: a larger block
//! is mapped fresh and unmapped at its free whatever the thresholds say. An evaluation batch of
//! 1,024 images through a TorchScript CNN (100 MB activations) did that 45 million times in `iscp
//! bench --model` (104 s of 197 in system time). Evaluation batches are therefore 256 images on the
//! CPU by default (`RunSpec::eval_batch_on`), whose blocks fit a thread's heap, and every thread
//! keeps its own arena (glibc's default): batched searches' lanes then allocate without contending
//! for one arena's lock. Measured on a 2-core AMD EPYC, one after the other: `make run` 205 s with
//! one arena and batches of 1,024 → 170 s (7.9 s system), the TorchScript bench spec 79 → 71 s
//! (2.1 s system; with per-thread arenas and batches of 1,024, 25 s system and 85 s).

/// Overrides how many glibc arenas threads share: unset or `0`, glibc's default (one per thread up
/// to 8 per core); `N`, at most N (`1`: one for all threads, for a run whose evaluation batches are
/// set large: no page faults, slower batched searches on the CPU).
pub const ARENAS_ENV: &str = "ISCP_MALLOC_ARENAS";

/// The arena limit `ISCP_MALLOC_ARENAS` asks for (0, glibc's own, when unset or unreadable).
fn arenas() -> i32 {
    std::env::var(ARENAS_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<i32>().ok())
        .filter(|&n| n >= 0)
        .unwrap_or(0)
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
        // At most ISCP_MALLOC_ARENAS arenas when it asks for a limit.
        if arenas > 0 {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}
