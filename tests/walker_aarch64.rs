//! The AArch64 walker on hand-built tables, one Arm ARM rule a test; the
//! oracle is the rule and the descriptors the test wrote.

// Arm's register and field names are written as the Arm ARM writes them;
// `const` buys nothing in a test.
#![allow(clippy::doc_markdown, clippy::missing_const_for_fn)]

use vmwalk::walker::aarch64::{ConfigError, FaultKind, Level, Paging, VaRange};
use vmwalk::walker::{ImageMemory, PageSize, PhysAddr, VirtAddr};

const TABLE: u64 = 0b11;
const BLOCK: u64 = 0b01;
const PAGE: u64 = 0b11;
const AF: u64 = 1 << 10;
/// TG1 = 0b10 (4 KiB), IPS = 0b101 (48 bits).
const TCR_BASE: u64 = 0b10 << 30 | 0b101 << 32;

fn tcr(t0sz: u64, t1sz: u64) -> u64 {
    TCR_BASE | t0sz | t1sz << 16
}

struct Image(Vec<u8>);

impl Image {
    fn new() -> Self {
        Self(vec![0; 0x8000])
    }
    fn put(&mut self, table: u64, index: u64, descriptor: u64) {
        let at = usize::try_from(table + 8 * index).unwrap();
        self.0[at..at + 8].copy_from_slice(&descriptor.to_le_bytes());
    }
}

/// "Translation table walks", 4 KB granule, 48-bit VA: four levels from
/// level 0, VA bits 47:39, 38:30, 29:21, 20:12. TTBR1's ASID (63:48) and CnP
/// (bit 0) are not part of the table address.
#[test]
fn a_48_bit_upper_walk_reads_four_levels() {
    let va = 0xffff_8012_3456_7abc_u64;
    let mut image = Image::new();
    image.put(0x1000, (va >> 39) & 0x1ff, 0x2000 | TABLE);
    image.put(0x2000, (va >> 30) & 0x1ff, 0x3000 | TABLE);
    image.put(0x3000, (va >> 21) & 0x1ff, 0x4000 | TABLE);
    image.put(0x4000, (va >> 12) & 0x1ff, 0x7_6543_2000 | AF | PAGE);
    let ttbr1 = 0xabcd_0000_0000_1001;
    let paging = Paging::from_registers(0, ttbr1, tcr(16, 16)).unwrap();
    let t = paging
        .translate(&ImageMemory::new(&image.0), VirtAddr(va))
        .unwrap();
    assert_eq!(t.pa, PhysAddr(0x7_6543_2abc));
    assert_eq!(t.mapping.range, VaRange::Upper);
    assert_eq!(t.mapping.va, VirtAddr(va & !0xfff));
    let levels: Vec<_> = t.path.iter().map(|v| v.level).collect();
    assert_eq!(levels, [Level::L0, Level::L1, Level::L2, Level::L3]);
}

/// T0SZ = 25 (39-bit VA): the walk starts at level 1, where a block maps 1 GiB.
#[test]
fn a_39_bit_lower_walk_starts_at_level_1() {
    let mut image = Image::new();
    image.put(0x1000, 3, 0x8000_0000 | AF | BLOCK);
    let paging = Paging::from_registers(0x1000, 0, tcr(25, 25)).unwrap();
    let memory = ImageMemory::new(&image.0);
    let t = paging.translate(&memory, VirtAddr(0xC123_4567)).unwrap();
    assert_eq!(t.pa, PhysAddr(0x8123_4567));
    assert_eq!(t.mapping.size, PageSize::Size1G);
    assert_eq!(t.path.iter().next().unwrap().level, Level::L1);
    // Bit 39 is above the 39-bit range: outside both ranges.
    let fault = paging
        .translate(&memory, VirtAddr(1 << 39 | 0xC123_4567))
        .unwrap_err();
    assert!(matches!(fault.kind, FaultKind::OutsideRanges { .. }));
    assert!(fault.path.is_empty());
}

/// TBI0: the top byte of a lower-range address is ignored; without it the
/// address is outside both ranges (`AArch64.VAIsOutOfRange`).
#[test]
fn tbi_ignores_the_top_byte_of_its_range_only() {
    let mut image = Image::new();
    image.put(0x1000, 0, 0x2000 | TABLE);
    image.put(0x2000, 0, 0x40_0000 | AF | BLOCK);
    let tagged = VirtAddr(0x5a00_0000_0000_1234);
    let tbi0 = 1 << 37;
    let memory = ImageMemory::new(&image.0);
    let with = Paging::from_registers(0x1000, 0x1000, tcr(25, 25) | tbi0).unwrap();
    assert_eq!(
        with.translate(&memory, tagged).unwrap().pa,
        PhysAddr(0x40_1234)
    );
    let without = Paging::from_registers(0x1000, 0x1000, tcr(25, 25)).unwrap();
    let fault = without.translate(&memory, tagged).unwrap_err();
    assert!(matches!(
        fault.kind,
        FaultKind::OutsideRanges { top: 63, .. }
    ));
    // Bit 55 set selects the upper range, whose TBI1 is clear.
    let upper_tag = VirtAddr(0x5aff_ffff_c000_1234);
    let fault = with.translate(&memory, upper_tag).unwrap_err();
    assert!(matches!(
        fault.kind,
        FaultKind::OutsideRanges {
            range: VaRange::Upper,
            ..
        }
    ));
}

/// Bits 1:0 = 0b01 is a block at levels 1 and 2 only: at level 0 (4 KB
/// granule, no FEAT_LPA2) and at level 3 it is reserved, a Translation fault.
#[test]
fn block_encodings_at_level_0_and_3_are_reserved() {
    let mut image = Image::new();
    image.put(0x1000, 0, 0x4000_0000 | AF | BLOCK);
    image.put(0x1000, 1, 0x2000 | TABLE);
    image.put(0x2000, 0, 0x3000 | TABLE);
    image.put(0x3000, 0, 0x4000 | TABLE);
    image.put(0x4000, 0, 0x9000 | AF | BLOCK);
    let paging = Paging::from_registers(0x1000, 0, tcr(16, 16)).unwrap();
    let memory = ImageMemory::new(&image.0);
    let fault = paging.translate(&memory, VirtAddr(0x1000)).unwrap_err();
    assert!(matches!(
        fault.kind,
        FaultKind::Reserved {
            level: Level::L0,
            ..
        }
    ));
    let fault = paging.translate(&memory, VirtAddr(1 << 39)).unwrap_err();
    assert!(matches!(
        fault.kind,
        FaultKind::Reserved {
            level: Level::L3,
            ..
        }
    ));
    assert_eq!(fault.path.len(), 4);
}

/// IPS = 0b000 (32-bit PA): an output address with bit 32 set is an
/// Address size fault at the level of the descriptor that gives it; so is
/// a TTBR table address beyond it (reported as level 0).
#[test]
fn addresses_beyond_ips_are_address_size_faults() {
    let mut image = Image::new();
    image.put(0x1000, 0, 0x1_0000_0000 | AF | BLOCK);
    image.put(0x1000, 1, 0xffff_c000_0000 | AF | BLOCK);
    let tcr32 = tcr(25, 25) & !(0b111 << 32);
    let paging = Paging::from_registers(0x1000, 0x1_0000_1000, tcr32).unwrap();
    let memory = ImageMemory::new(&image.0);
    for va in [0, 1 << 30] {
        let fault = paging.translate(&memory, VirtAddr(va)).unwrap_err();
        assert!(
            matches!(
                fault.kind,
                FaultKind::AddressSize {
                    level: Level::L1,
                    pa_bits: 32,
                    ..
                }
            ),
            "{va:#x}: {fault}"
        );
    }
    let fault = paging.translate(&memory, VirtAddr(u64::MAX)).unwrap_err();
    assert!(matches!(
        fault.kind,
        FaultKind::TableBaseBeyondPaSize { .. }
    ));
    // With IPS = 0b101 (48 bits) the first block translates.
    let paging = Paging::from_registers(0x1000, 0, tcr(25, 25)).unwrap();
    assert_eq!(
        paging.translate(&memory, VirtAddr(5)).unwrap().pa,
        PhysAddr(0x1_0000_0005)
    );
}

/// "Memory access control": AP[2:1] = 0b01 gives EL0 read/write, and a
/// location writable at EL0 is never executable at EL1; APTable = 0b01 takes
/// EL0 access away below the table, and then EL1 may execute again.
/// UXNTable and PXNTable apply to everything below.
#[test]
fn table_restrictions_narrow_the_leaf_permissions() {
    let ap_el0_rw = 0b01 << 6;
    let mut image = Image::new();
    image.put(0x1000, 0, 0x2000 | TABLE); // no restrictions
    image.put(0x1000, 1, 0x2000 | TABLE | 0b01 << 61); // APTable: no EL0
    image.put(0x1000, 2, 0x2000 | TABLE | 1 << 62 | 1 << 60); // read-only, UXNTable
    image.put(0x2000, 0, 0x20_0000 | AF | BLOCK | ap_el0_rw);
    let paging = Paging::from_registers(0x1000, 0, tcr(25, 25)).unwrap();
    let memory = ImageMemory::new(&image.0);
    let access = |va: u64| {
        paging
            .translate(&memory, VirtAddr(va))
            .unwrap()
            .mapping
            .access
    };

    let plain = access(0);
    assert!(plain.unprivileged_read && plain.unprivileged_write && plain.privileged_write);
    assert!(!plain.privileged_execute && plain.unprivileged_execute);

    let no_el0 = access(1 << 30);
    assert!(!no_el0.unprivileged_read && !no_el0.unprivileged_write);
    assert!(no_el0.privileged_write && no_el0.privileged_execute);

    let read_only = access(2 << 30);
    assert!(read_only.unprivileged_read && !read_only.unprivileged_write);
    assert!(!read_only.privileged_write && read_only.privileged_execute);
    assert!(!read_only.unprivileged_execute);

    // TCR_EL1.HPD0: the table bits are ignored.
    let hpd0 = 1 << 41;
    let paging = Paging::from_registers(0x1000, 0, tcr(25, 25) | hpd0).unwrap();
    let t = paging.translate(&memory, VirtAddr(2 << 30)).unwrap();
    assert!(t.mapping.access.unprivileged_write);
}

/// A descriptor with AF clear translates; an access takes an Access flag
/// fault unless TCR_EL1.HA lets the hardware set AF.
#[test]
fn af_clear_translates_and_says_whether_it_faults() {
    let mut image = Image::new();
    image.put(0x1000, 0, 0x4000_0000 | BLOCK);
    let memory = ImageMemory::new(&image.0);
    let paging = Paging::from_registers(0x1000, 0, tcr(25, 25)).unwrap();
    let m = paging.translate(&memory, VirtAddr(0)).unwrap().mapping;
    assert!(!m.accessed() && m.access_flag_fault);
    assert!(m.to_string().contains("Access flag fault"), "{m}");
    let ha = 1 << 39;
    let paging = Paging::from_registers(0x1000, 0, tcr(25, 25) | ha).unwrap();
    let m = paging.translate(&memory, VirtAddr(0)).unwrap().mapping;
    assert!(!m.accessed() && !m.access_flag_fault);
}

/// EPD1: a walk through TTBR1 is a Translation fault at level 0.
#[test]
fn epd_disables_a_range() {
    let epd1 = 1 << 23;
    let paging = Paging::from_registers(0x1000, 0x1000, tcr(25, 25) | epd1).unwrap();
    let image = Image::new();
    let fault = paging
        .translate(&ImageMemory::new(&image.0), VirtAddr(u64::MAX))
        .unwrap_err();
    assert_eq!(
        fault.kind,
        FaultKind::WalksDisabled {
            range: VaRange::Upper
        }
    );
}

/// Settings outside what the walker models are refused, not guessed.
#[test]
fn unsupported_registers_are_refused() {
    let tg1_64k = 0b11 << 30;
    assert_eq!(
        Paging::from_registers(0, 0, tcr(16, 16) | tg1_64k),
        Err(ConfigError::Granule {
            range: VaRange::Upper,
            tg: 0b11
        })
    );
    assert_eq!(
        Paging::from_registers(0, 0, tcr(40, 16)),
        Err(ConfigError::RegionSize {
            range: VaRange::Lower,
            txsz: 40
        })
    );
    assert_eq!(
        Paging::from_registers(0, 0, tcr(16, 16) | 1 << 59),
        Err(ConfigError::Lpa2)
    );
}

/// T1SZ is checked on its own: 40 and above (fewer than 25 VA bits, which
/// a 4 KiB granule walk cannot start at level 1 for) and below 16 are
/// refused for the upper range, whatever T0SZ is.
#[test]
fn t1sz_outside_16_to_39_is_refused_for_the_upper_range() {
    for t1sz in [15, 40, 44, 63] {
        assert_eq!(
            Paging::from_registers(0, 0, tcr(16, t1sz)),
            Err(ConfigError::RegionSize {
                range: VaRange::Upper,
                txsz: u8::try_from(t1sz).unwrap()
            }),
            "T1SZ {t1sz}"
        );
    }
    assert!(Paging::from_registers(0, 0, tcr(39, 16)).is_ok());
    assert!(Paging::from_registers(0, 0, tcr(16, 39)).is_ok());
}

/// The walk from level 0 (T0SZ = 16, 48 bits: the fast path's case), rule
/// by rule. A 1 GiB block at level 1: the output address is the
/// descriptor's bits 47:30 and the VA's 29:0, whatever the descriptor holds
/// in 29:12.
#[test]
fn from_level_0_a_1_gib_block_takes_bits_29_0_from_the_address() {
    let mut image = Image::new();
    image.put(0x1000, 0, 0x2000 | TABLE);
    image.put(0x2000, 1, 0x1_8000_0000 | 0x2aa5_5000 | AF | BLOCK);
    let paging = Paging::from_registers(0x1000, 0, tcr(16, 16)).unwrap();
    let t = paging
        .translate(&ImageMemory::new(&image.0), VirtAddr(0x7123_4567))
        .unwrap();
    assert_eq!(t.pa, PhysAddr(0x1_b123_4567));
    assert_eq!(t.mapping.size, PageSize::Size1G);
    assert_eq!(t.mapping.va, VirtAddr(0x4000_0000));
}

/// From level 0, IPS = 0b000 (32 bits): a page whose output address has
/// bit 32 set is an Address size fault at level 3, and a table address
/// beyond 32 bits one at the level that names it.
#[test]
fn from_level_0_outputs_beyond_ips_are_address_size_faults() {
    let mut image = Image::new();
    image.put(0x1000, 0, 0x2000 | TABLE);
    image.put(0x2000, 0, 0x3000 | TABLE);
    image.put(0x3000, 0, 0x4000 | TABLE);
    image.put(0x4000, 1, 0x1_0000_5000 | AF | PAGE);
    image.put(0x4000, 2, 0x5000 | AF | PAGE);
    image.put(0x3000, 1, 0x1_0000_6000 | TABLE);
    let tcr32 = tcr(16, 16) & !(0b111 << 32);
    let paging = Paging::from_registers(0x1000, 0, tcr32).unwrap();
    let memory = ImageMemory::new(&image.0);
    let fault = paging.translate(&memory, VirtAddr(0x1000)).unwrap_err();
    assert!(
        matches!(
            fault.kind,
            FaultKind::AddressSize {
                level: Level::L3,
                pa_bits: 32,
                ..
            }
        ),
        "{fault}"
    );
    let fault = paging.translate(&memory, VirtAddr(0x20_0000)).unwrap_err();
    assert!(
        matches!(
            fault.kind,
            FaultKind::AddressSize {
                level: Level::L2,
                pa_bits: 32,
                ..
            }
        ),
        "{fault}"
    );
    assert_eq!(
        paging.translate(&memory, VirtAddr(0x2abc)).unwrap().pa,
        PhysAddr(0x5abc)
    );
}

/// From level 0, with valid tables: EPD0 makes a TTBR0 walk a Translation
/// fault at level 0, EPD1 a TTBR1 walk, and each leaves the other range be.
#[test]
fn from_level_0_epd_disables_a_range_with_tables_in_place() {
    let mut image = Image::new();
    for top in [0x1000, 0x1800] {
        image.put(top, 0, 0x2000 | TABLE);
    }
    image.put(0x1000, 511, 0x2000 | TABLE);
    image.put(0x2000, 0, 0x3000 | TABLE);
    image.put(0x2000, 511, 0x3000 | TABLE);
    image.put(0x3000, 0, 0x4000 | TABLE);
    image.put(0x3000, 511, 0x4000 | TABLE);
    image.put(0x4000, 0, 0x7000 | AF | PAGE);
    image.put(0x4000, 511, 0x7000 | AF | PAGE);
    let memory = ImageMemory::new(&image.0);
    let (low, high) = (VirtAddr(0x123), VirtAddr(0xffff_ffff_ffff_f123));
    let (epd0, epd1) = (1 << 7, 1 << 23);
    let both = Paging::from_registers(0x1000, 0x1000, tcr(16, 16)).unwrap();
    assert_eq!(both.translate(&memory, low).unwrap().pa, PhysAddr(0x7123));
    assert_eq!(both.translate(&memory, high).unwrap().pa, PhysAddr(0x7123));
    for (epd, off, on, range) in [
        (epd0, low, high, VaRange::Lower),
        (epd1, high, low, VaRange::Upper),
    ] {
        let paging = Paging::from_registers(0x1000, 0x1000, tcr(16, 16) | epd).unwrap();
        let fault = paging.translate(&memory, off).unwrap_err();
        assert_eq!(fault.kind, FaultKind::WalksDisabled { range });
        assert_eq!(paging.translate(&memory, on).unwrap().pa, PhysAddr(0x7123));
    }
}
