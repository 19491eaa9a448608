//! Process-wide allocator tuning for the command-line tool (a library leaves this to its
//! embedder).
//!
//! glibc gives each thread that allocates its own arena, and each arena keeps the large
//! image buffers it has freed. With two workers decoding 12-20 MP photos that held about
//! 310 MiB at peak under a 256 MiB budget; one shared arena held 244 MiB and spent less
//! time in the kernel (measured with scripts/bench-memory.sh).

/// Makes all threads share one malloc arena.
pub fn share_one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called once, at start-up,
    // before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
