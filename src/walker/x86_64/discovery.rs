//! Finding Windows' x86-64 address spaces in physical memory without CR3.
//!
//! The low stub that names the kernel's CR3, and top-level tables by their
//! self-map entry. Each test reads one 4 KiB page, so a scan of a capture
//! reads every page once.

pub use crate::walker::page_scan::PAGE;
use crate::walker::page_scan::{self, entry};

/// Bits 51:12 of an entry: a frame's address (MAXPHYADDR 52, the most).
const FRAME: u64 = 0x000f_ffff_ffff_f000;
/// P, R/W, U/S and PS.
const P_RW_US_PS: u64 = 0x87;
/// What Windows' self-map entry has of them: present, writable, supervisor, no PS.
const SELF_MAP_FLAGS: u64 = 0x03;

/// What the low stub (`PROCESSOR_START_BLOCK`, the page below 1 MiB that
/// starts the application processors) says: the kernel's CR3 and entry point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LowStub {
    /// `ProcessorState.SpecialRegisters.Cr3`, at 0xA0: the kernel's top-level table.
    pub cr3: u64,
    /// `LmTarget`, at 0x70: a kernel address.
    pub kernel_entry: u64,
}

impl LowStub {
    /// The low stub in `page`, if it is one.
    ///
    /// The three tests `MemProcFS`
    /// (`vmmwininit.c`) and memflow-win32 (`start_block/x64.rs`) make: the
    /// jump and completion flag at 0, a canonical kernel address aligned to
    /// 4 bytes at 0x70, and at 0xA0 a CR3 below 1 TiB with bits 11:0 clear.
    ///
    /// ```
    /// use vmwalk::walker::x86_64::discovery::{LowStub, PAGE};
    ///
    /// let mut page = [0_u8; PAGE];
    /// page[..8].copy_from_slice(&0x0000_0001_0006_10e9_u64.to_le_bytes());
    /// page[0x70..0x78].copy_from_slice(&0xffff_f805_1234_5670_u64.to_le_bytes());
    /// page[0xa0..0xa8].copy_from_slice(&0x1ad000_u64.to_le_bytes());
    /// let stub = LowStub::of(&page).unwrap();
    /// assert_eq!(stub.cr3, 0x1ad000);
    /// page[0xa0] = 0x02; // CR3 with a PCID: not the start block's
    /// assert_eq!(LowStub::of(&page), None);
    /// ```
    #[must_use]
    pub fn of(page: &[u8]) -> Option<Self> {
        let start = entry(page, 0);
        let kernel_entry = entry(page, 0x70 / 8);
        let cr3 = entry(page, 0xa0 / 8);
        let is_stub = start & 0xffff_ffff_ffff_00ff == 0x0000_0001_0006_00e9
            && kernel_entry & 0xffff_f800_0000_0003 == 0xffff_f800_0000_0000
            && cr3 & 0xffff_ff00_0000_0fff == 0
            && cr3 != 0;
        is_stub.then_some(Self { cr3, kernel_entry })
    }
}

/// The index of the kernel-half entry that maps the page itself.
///
/// The entry (256 to 511) of the top-level table in `page`, at physical
/// `page_pa`, as Windows' self-map is: present, writable, supervisor, not a large page.
///
/// ```
/// use vmwalk::walker::x86_64::discovery::{PAGE, self_map_index};
///
/// let mut page = [0_u8; PAGE];
/// let at = 8 * 0x1ed;
/// page[at..at + 8].copy_from_slice(&0x8000_0000_001a_d063_u64.to_le_bytes());
/// assert_eq!(self_map_index(0x1ad000, &page), Some(0x1ed));
/// assert_eq!(self_map_index(0x1ae000, &page), None, "it maps another page");
/// ```
#[must_use]
pub fn self_map_index(page_pa: u64, page: &[u8]) -> Option<usize> {
    page_scan::upper_half_self_pointer(page_pa, page, FRAME, P_RW_US_PS, SELF_MAP_FLAGS)
}

/// A fingerprint of the kernel half (entries 256 to 511) of the table in `page`.
///
/// It leaves out entry `self_index`, and takes the present bit and the frame of
/// each entry. Windows keeps the kernel half of every process's table equal
/// to the kernel's, so equal fingerprints mean the tables share it.
#[must_use]
pub fn kernel_half_fingerprint(page: &[u8], self_index: usize) -> u64 {
    page_scan::upper_half_fingerprint(page, self_index, FRAME)
}
