//! Tests of one 4 KiB page of physical memory, for finding top-level tables
//! without the registers that point at them: each architecture's
//! `discovery` module says which bits to test.

pub use super::memory::PAGE;

/// The 8-byte little-endian entry at `index` of `page`; 0 past its end.
#[must_use]
pub fn entry(page: &[u8], index: usize) -> u64 {
    page.get(index * 8..index * 8 + 8)
        .and_then(|bytes| bytes.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// The index (256 to 511) of the first entry of the page's upper half whose
/// `address` bits are `page_pa` and whose `flags` bits equal `expected`:
/// a self-pointer. `None` also when `page` is not a whole page.
#[must_use]
pub fn upper_half_self_pointer(
    page_pa: u64,
    page: &[u8],
    address: u64,
    flags: u64,
    expected: u64,
) -> Option<usize> {
    let upper_half = page.get(PAGE / 2..PAGE)?;
    upper_half
        .chunks_exact(8)
        .position(|bytes| {
            let e = bytes.try_into().map_or(0, u64::from_le_bytes);
            e & address == page_pa && e & flags == expected
        })
        .map(|i| i + 256)
}

/// A fingerprint (FNV-1a) of the page's upper half (entries 256 to 511)
/// without entry `skip`: of each entry with bit 0 set (present, valid), its
/// `address` bits; an entry with bit 0 clear counts as 0. Top-level tables
/// that share the kernel's half have equal fingerprints.
#[must_use]
pub fn upper_half_fingerprint(page: &[u8], skip: usize, address: u64) -> u64 {
    (256..512)
        .filter(|&i| i != skip)
        .map(|i| entry(page, i))
        .map(|e| if e & 1 == 0 { 0 } else { e & (address | 1) })
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, e| {
            (hash ^ e).wrapping_mul(0x0000_0100_0000_01b3)
        })
}
