//! The frame of `WinDbg`'s `!pte` block that every architecture shares: its
//! 27-character columns and the `LARGE PAGE` cell. Each architecture writes
//! its own entry names and flag letters into it.

use core::fmt;

/// Width of one `!pte` column.
pub const COLUMN: usize = 27;

/// `LARGE PAGE pfn <frame>`, padded to a whole column as `WinDbg` pads it
/// (M. Suiche's ARM64 transcripts, 2020, keep the trailing blanks).
pub fn large_page(f: &mut fmt::Formatter<'_>, frame: u64) -> fmt::Result {
    let digits = (u64::BITS - frame.leading_zeros()).div_ceil(4).max(1) as usize;
    write!(f, "LARGE PAGE pfn {frame:x}")?;
    separate(f, "LARGE PAGE pfn ".len() + digits, true)
}

/// Pads to the next column, unless nothing follows.
pub fn separate(f: &mut fmt::Formatter<'_>, written: usize, more: bool) -> fmt::Result {
    if more {
        (written..COLUMN).try_for_each(|_| f.write_str(" "))?;
    }
    Ok(())
}
