//! ARM64's rules: VMSAv8-64 stage 1 of the EL1&0 regime, over the engine in
//! [`crate::walker`].
//!
//! It walks the 4 KiB granule's tables from `TTBR0_EL1`/`TTBR1_EL1` and
//! `TCR_EL1`, and says exactly why an address does not translate, in the Arm
//! ARM's fault names. Like the x86-64 walker it is `no_std`, never allocates and never panics,
//! and it reads memory through the same [`PhysicalMemory`](super::PhysicalMemory).
//!
//! Modelled: T0SZ/T1SZ 16..=39 (start level 0, 1 or 2), the TTBR0/TTBR1
//! split by bit 55 with the range check of the bits above the range's size,
//! TBI0/TBI1, EPD0/EPD1, IPS (capped at a 48-bit implemented PA size), table,
//! block (1 GiB at level 1, 2 MiB at level 2) and page descriptors, AP\[2:1\],
//! UXN/PXN, APTable/UXNTable/PXNTable (unless HPD0/HPD1), AF with TCR_EL1.HA.
//! Not modelled: 16 and 64 KiB granules, 52-bit addresses (FEAT_LPA/LPA2),
//! stage 2, PAN, WXN, permission indirection, the Secure state's NS bits.
//!
//! ```
//! use vmwalk::walker::aarch64::{FaultKind, Level, Paging};
//! use vmwalk::walker::{ImageMemory, PageSize, PhysAddr, VirtAddr};
//!
//! // 48-bit ranges (T0SZ = T1SZ = 16), 4 KiB granules (TG1 = 0b10), IPS = 0b101 (48 bits).
//! let tcr = 16 | 16 << 16 | 0b10 << 30 | 0b101 << 32;
//! // TTBR1's level 0 table at 0x1000, level 1 at 0x2000, level 2 at 0x3000:
//! // a 2 MiB block at 0xffff_ff00_0020_0000 -> 0x4000_0000.
//! let mut image = vec![0_u8; 0x4000];
//! let mut put = |at: usize, descriptor: u64| {
//!     image[at..at + 8].copy_from_slice(&descriptor.to_le_bytes());
//! };
//! let (table, block, af) = (0b11, 0b01, 1 << 10);
//! put(0x1000 + 8 * 0x1fe, 0x2000 | table); // VA bits 47:39 = 0x1fe
//! put(0x2000, 0x3000 | table);
//! put(0x3000 + 8, 0x4000_0000 | af | block);
//!
//! let paging = Paging::from_registers(0, 0x1000, tcr).unwrap();
//! let memory = ImageMemory::new(&image);
//! let t = paging.translate(&memory, VirtAddr(0xffff_ff00_0023_4567)).unwrap();
//! assert_eq!(t.pa, PhysAddr(0x4003_4567));
//! assert_eq!(t.mapping.size, PageSize::Size2M);
//! assert!(t.mapping.access.privileged_write && !t.mapping.access.unprivileged_read);
//!
//! // The next 2 MiB: the walk stops at an invalid level 2 descriptor.
//! let fault = paging.translate(&memory, VirtAddr(0xffff_ff00_0040_0000)).unwrap_err();
//! assert!(matches!(fault.kind, FaultKind::Invalid { level: Level::L2, .. }));
//! // Bits 63:48 must all equal bit 55.
//! let fault = paging.translate(&memory, VirtAddr(0xfeff_ff00_0020_0000)).unwrap_err();
//! assert!(matches!(fault.kind, FaultKind::OutsideRanges { .. }));
//!
//! let leaves = paging.leaves(&memory).collect::<Result<Vec<_>, _>>().unwrap();
//! assert_eq!(leaves.len(), 1);
//! assert_eq!(leaves[0].va, VirtAddr(0xffff_ff00_0020_0000));
//! ```

// Arm's register, field and feature names (TCR_EL1.HA, APTable, FEAT_LPA2)
// are written as the Arm ARM writes them, not as code.
#![allow(clippy::doc_markdown)]

mod descriptor;
pub mod discovery;
mod fault;
mod outcome;
mod range;
mod registers;
mod rules;
mod self_map;
mod translate;
pub mod windbg;

pub use descriptor::{Descriptor, DescriptorKind, Level, Shareability};
pub use fault::FaultKind;
pub use outcome::{Fault, Leaves, Page, Path, Runs, Translation, Visited};
pub use range::{PageTranslations, RangeError};
pub use registers::{ConfigError, IMPLEMENTED_PA_BITS, Paging, RangeConfig, VaRange, tcr};
pub use rules::Run;
pub use self_map::SelfMap;
pub use translate::{Access, Mapping, TableRestrictions};
