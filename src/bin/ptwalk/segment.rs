//! Where one run of physical memory lies in a capture file: what the ELF
//! and crash-dump readers (`image.rs`, `crash_dump.rs`) both produce.

/// Where one run of physical memory is in the file: an ELF `PT_LOAD`
/// segment, or pages of a crash dump contiguous in memory and in the file.
pub struct Segment {
    pub paddr: u64,
    pub offset: usize,
    pub file_size: u64,
    /// Beyond `file_size`, memory reads as zero (ELF only).
    pub memory_size: u64,
}
