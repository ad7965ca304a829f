//! Giving freed memory back to the system between stages. glibc's allocator keeps what a
//! stage freed (the row buffers once the tables are built, the shards' state once they
//! are merged) resident in its arenas, so the next stage's allocations add to the peak
//! instead of reusing it; `malloc_trim` returns the free pages of every arena.

/// Returns the allocator's free pages to the system (glibc only; elsewhere nothing).
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointer.
    unsafe {
        libc::malloc_trim(0);
    }
}
