//! Process-wide allocator tuning, for binaries built on the engine (`prism`, `prism-bot`):
//! a library never calls this itself; its embedder decides.
//!
//! glibc gives each thread that allocates its own arena, and each arena keeps the large
//! image buffers it has freed. With two workers decoding 12-20 MP photos that held about
//! 310 MiB at peak under a 256 MiB budget; one shared arena held 244 MiB and spent less
//! time in the kernel (measured with scripts/bench-memory.sh). In the bot, where async
//! threads free what workers allocated, per-thread arenas also cost page faults: 74 % of the
//! engine's own throughput with them, 89 % with one arena (tests/bot_load.rs).
//!
//! glibc also raises its mmap threshold to the size of the largest mapped block freed so far
//! (up to 32 MiB): after the first large photo, decode planes, pixel rows and encoded results
//! of up to 32 MB come from the heap. That spares a page fault for every page of every new
//! buffer (the CLI spends about 10 % more CPU without it: 4.77 against 4.34 s over the photo
//! corpus), but in a long-running process those blocks interleave in the heap with long-lived
//! ones (cached results) and the heap only grows: a 30-minute soak of the bot showed a step
//! of 70 MiB at minute 7 and then a slow climb, flat with the threshold fixed (docs/soak/).
//! So the bot fixes it ([`map_large_blocks_separately`]) and the CLI, which runs a batch and
//! exits, keeps glibc's default.

/// Blocks this large or larger are mapped on their own, never carved from the heap.
const MMAP_THRESHOLD: usize = 128 << 10;

/// Makes all threads share one malloc arena (glibc only; elsewhere it does nothing). Call
/// it first thing in `main`; arenas that already exist stay.
pub fn share_one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters and takes the allocator's own lock.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Fixes glibc's mmap threshold at 128 KiB, so every block of that size or more is its own
/// mapping, returned to the system when freed: resident memory follows the work in flight
/// instead of the heap's high-water mark, at the cost of page faults on each new buffer.
/// For long-running processes; glibc only, elsewhere it does nothing.
pub fn map_large_blocks_separately() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: as above.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
    }
}

/// Hands memory that is free inside the allocator back to the operating system (glibc's
/// `malloc_trim`), so resident memory falls after a burst of large images. True when some
/// was returned; elsewhere it does nothing and says false.
pub fn release_free_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists under its lock.
    unsafe {
        libc::malloc_trim(0) == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}

/// Transparent huge pages are 2 MiB on x86-64 and most arm64 kernels.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const HUGE_PAGE: usize = 2 << 20;

/// The system allocator, with every block of 2 MiB or more advised onto transparent huge
/// pages (Linux; elsewhere it is the plain system allocator). For binaries:
/// `#[global_allocator] static ALLOCATOR: LargeBlocksOnHugePages = LargeBlocksOnHugePages;`.
///
/// Decode planes, coefficient buffers and pixel rows are written once, right after they are
/// allocated, and a fresh 4 KiB page costs a fault each: on a 12 MP photo those faults cost
/// about as much as the writes. One fault per 2 MiB took `prism process --threads 2` over the
/// 41-photo corpus from 5.17 to 4.35 CPU s at 1280 px and from 3.56 to 2.99 s at 320 px
/// (medians of five alternating pairs), peak memory unchanged within 2 %. glibc's
/// `glibc.malloc.hugetlb=1` tunable has the same effect, but a binary cannot set it for itself.
pub struct LargeBlocksOnHugePages;

// SAFETY: every call is forwarded to the system allocator unchanged; the advice only
// changes how the pages of a block the caller now owns are backed, never their contents.
unsafe impl std::alloc::GlobalAlloc for LargeBlocksOnHugePages {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller's contract is the system allocator's.
        let block = unsafe { std::alloc::System.alloc(layout) };
        advise_huge_pages(block, layout.size());
        block
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: as above.
        let block = unsafe { std::alloc::System.alloc_zeroed(layout) };
        advise_huge_pages(block, layout.size());
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: as above.
        unsafe { std::alloc::System.dealloc(block, layout) }
    }

    unsafe fn realloc(
        &self,
        block: *mut u8,
        layout: std::alloc::Layout,
        new_size: usize,
    ) -> *mut u8 {
        // SAFETY: as above.
        let moved = unsafe { std::alloc::System.realloc(block, layout, new_size) };
        if new_size > layout.size() {
            advise_huge_pages(moved, new_size);
        }
        moved
    }
}

/// Advises the whole huge pages inside `len` bytes at `block` onto transparent huge pages;
/// nothing for blocks under a huge page, null blocks, or off Linux.
fn advise_huge_pages(block: *mut u8, len: usize) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if len >= HUGE_PAGE && !block.is_null() {
        let start = (block as usize).next_multiple_of(HUGE_PAGE);
        let end = (block as usize + len) / HUGE_PAGE * HUGE_PAGE;
        if end > start {
            // SAFETY: the range lies inside the block, which the caller owns; the advice
            // changes only how its pages are backed, never their contents.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = (block, len);
}

/// An empty vector with room for `len` bytes that are about to be written in one go (a GPU
/// readback). A fresh buffer that large is its own mapping, and filling it costs a page fault
/// per 4 KiB; the whole huge pages inside it are advised onto transparent huge pages
/// (Linux), one fault per 2 MiB. Copying 36 MB into a fresh buffer took 20 ms on the 2-core
/// development machine and 6.5 ms with the advice. Where the kernel ignores the advice, or
/// off Linux, it is a plain `Vec::with_capacity`.
#[cfg(feature = "gpu")]
pub(crate) fn buffer_for_large_copy(len: usize) -> Vec<u8> {
    let mut buffer: Vec<u8> = Vec::with_capacity(len);
    advise_huge_pages(buffer.as_mut_ptr(), len);
    buffer
}

#[cfg(test)]
mod tests {
    use super::LargeBlocksOnHugePages;
    use std::alloc::{GlobalAlloc, Layout};

    #[test]
    fn large_blocks_keep_their_contents_through_growth() {
        let small = Layout::from_size_align(3 << 20, 64).expect("valid layout");
        // SAFETY: the layouts are non-zero, and each block is used within its size and
        // freed once with the layout it has at that moment.
        unsafe {
            let block = LargeBlocksOnHugePages.alloc(small);
            assert!(!block.is_null());
            for at in (0..small.size()).step_by(4096) {
                block.add(at).write((at / 4096) as u8);
            }
            let grown = LargeBlocksOnHugePages.realloc(block, small, 9 << 20);
            assert!(!grown.is_null());
            for at in (0..small.size()).step_by(4096) {
                assert_eq!(grown.add(at).read(), (at / 4096) as u8);
            }
            let grown_layout = Layout::from_size_align(9 << 20, 64).expect("valid layout");
            LargeBlocksOnHugePages.dealloc(grown, grown_layout);
            let zeroed = LargeBlocksOnHugePages.alloc_zeroed(grown_layout);
            assert!(
                (0..grown_layout.size())
                    .step_by(4096)
                    .all(|at| zeroed.add(at).read() == 0)
            );
            LargeBlocksOnHugePages.dealloc(zeroed, grown_layout);
        }
    }
}

#[cfg(all(test, feature = "gpu"))]
mod gpu_tests {
    use super::buffer_for_large_copy;

    #[test]
    fn a_buffer_for_a_large_copy_is_empty_with_the_room_asked_for() {
        for len in [0, 1, 3 << 20, 36_000_000] {
            let buffer = buffer_for_large_copy(len);
            assert!(buffer.is_empty() && buffer.capacity() >= len);
        }
    }
}
