//! glibc's allocator, set for a small long-running process.
//!
//! By default glibc gives each thread that allocates its own arena (up to eight per core) and
//! keeps freed memory for reuse. An Assessment run allocates a snapshot of the cluster, then
//! frees it; measured on 2,000 Deployments, that left the operator resident at 76 MiB between
//! runs. One arena and a trim after each run bring the peak to about 46 MiB and give the
//! memory back until the next run (`cargo xtask bench`, faults).

/// Allocations this large or larger get their own mapping, returned to the system when freed.
const MMAP_THRESHOLD: i32 = 128 * 1024;

/// Limits glibc to one malloc arena (the operator is mostly idle: contention is not a cost
/// here) and fixes the mmap threshold; call before any thread starts.
///
/// glibc raises its mmap threshold each time a large mapped block is freed (up to 32 MiB), so
/// after one run the big buffers of the next (list pages, JSON bodies) would come from the
/// heap, where a long-lived allocation above them keeps them resident. A fixed threshold keeps
/// them mapped, and unmapped when freed. Measured with it (release, docs/operations.md
/// "Memory", where jemalloc and mimalloc were measured against it): a minute after one run or
/// twenty over 2,000 Deployments, resident within 5 MiB of the level before.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Returns freed heap memory to the operating system.
pub fn release() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases memory no allocation uses.
    unsafe {
        libc::malloc_trim(0);
    }
}
