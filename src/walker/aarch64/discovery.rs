//! Finding Windows' ARM64 address spaces in physical memory without the TTBRs.
//!
//! Windows keeps one 4 KiB level 0 page per process: `TTBR0_EL1`
//! points at its lower half and `TTBR1_EL1` at its upper half (page + 0x800),
//! both with T0SZ = T1SZ = 17, and one entry of the upper half points back
//! at the page (see [`SelfMap`](super::SelfMap)).

use crate::walker::page_scan;
pub use crate::walker::page_scan::PAGE;

/// `TCR_EL1` as Windows 11 on ARM64 sets it.
///
/// Assumed for tables found in a capture that does not record it: T0SZ = T1SZ = 17, 4 KiB granules,
/// IPS 48 bits, inner shareable, HPD0 and HPD1 set (C. McGarr, "ARM64
/// Windows internals: the basics", 2025). SMBaloo's Windows 10 18362 notes
/// show 0x95b5513511, which differs only in HA and HPD0/HPD1.
pub const WINDOWS_TCR: u64 = 0x615_b551_3511;

/// The output address bits of a descriptor (48-bit physical addresses).
const OUTPUT_ADDRESS: u64 = 0x0000_ffff_ffff_f000;

/// Where `TTBR1_EL1` points in the page: its upper half.
pub const UPPER_HALF: u64 = 0x800;

/// The index, in the page (256 to 511: the upper half, `TTBR1_EL1`'s table),
/// of the table descriptor that points at the page itself, at physical
/// `page_pa`: Windows' self-map.
///
/// ```
/// use vmwalk::walker::aarch64::discovery::{PAGE, self_map_index};
///
/// let mut page = [0_u8; PAGE];
/// let at = 8 * 0x151;
/// page[at..at + 8].copy_from_slice(&0x0060_0000_4126_9f03_u64.to_le_bytes());
/// assert_eq!(self_map_index(0x4126_9000, &page), Some(0x151));
/// page[at] = 0x01; // a block descriptor: not a table
/// assert_eq!(self_map_index(0x4126_9000, &page), None);
/// ```
#[must_use]
pub fn self_map_index(page_pa: u64, page: &[u8]) -> Option<usize> {
    page_scan::upper_half_self_pointer(page_pa, page, OUTPUT_ADDRESS, 0b11, 0b11)
}

/// A fingerprint of the upper half (`TTBR1_EL1`'s table) of the page.
///
/// It leaves out descriptor `self_index`, and takes each descriptor's valid
/// bit and output address. Equal fingerprints mean the tables share the kernel's range.
#[must_use]
pub fn upper_half_fingerprint(page: &[u8], self_index: usize) -> u64 {
    page_scan::upper_half_fingerprint(page, self_index, OUTPUT_ADDRESS)
}
