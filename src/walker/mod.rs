//! The page-table walker: two architectures, x86-64 and ARM64, as peers
//! over one engine. It translates virtual to physical addresses as the MMU
//! does and says exactly why an address does not translate.
//!
//! It is `no_std`, never allocates and never panics: the same code runs in the
//! driver (reading physical memory with `MmCopyMemory`) and on memory images.
//!
//! - The engine, here: [`PhysicalMemory`] and [`ImageMemory`], the
//!   [`Architecture`] trait, the walk's record ([`Path`], [`Translation`],
//!   [`Fault`]), the step-by-step walk, enumeration ([`Leaves`]) and run
//!   merging ([`Runs`]), ranged translation's [`Page`], and the `!pte`
//!   block's frame.
//! - [`x86_64`] and [`aarch64`]: each architecture's rules (entry decoding,
//!   access rules, registers, software PTEs, self-map, `!pte` flags) and
//!   its fast paths. Neither imports the other.
//!
//! x86-64's names are also re-exported here (`walker::Paging` is
//! `walker::x86_64::Paging`), as before the two became peers.
//!
//! ```
//! use vmwalk::walker::{ImageMemory, PhysAddr, VirtAddr, aarch64, x86_64};
//!
//! // One page table chain per architecture in one image, both mapping
//! // virtual 0x20_0000 (index 1 at the PD / level 2) to physical 0x5000.
//! let mut image = vec![0_u8; 0x5000];
//! let mut put = |at: usize, entry: u64| image[at..at + 8].copy_from_slice(&entry.to_le_bytes());
//! put(0x1000, 0x2000 | 0b11); // PML4E / level 0 table descriptor
//! put(0x2000, 0x3000 | 0b11); // PDPTE / level 1
//! put(0x3000 + 8, 0x4000 | 0b11); // PDE / level 2
//! put(0x4000, 0x5000 | 0b11 | 1 << 10); // PTE / level 3 page (AF set)
//! let memory = ImageMemory::new(&image);
//!
//! let x86 = x86_64::Paging::new(0x1000, x86_64::PagingMode::FourLevel);
//! let tcr = 16 | 16 << 16 | 0b10 << 30 | 0b101 << 32; // 48-bit ranges, 4 KiB granules
//! let arm = aarch64::Paging::from_registers(0x1000, 0, tcr).unwrap();
//! let va = VirtAddr(0x20_0123);
//! assert_eq!(x86.translate(&memory, va).unwrap().pa, PhysAddr(0x5123));
//! assert_eq!(arm.translate(&memory, va).unwrap().pa, PhysAddr(0x5123));
//! assert_eq!(x86.leaves(&memory).count(), arm.leaves(&memory).count());
//! ```

pub mod aarch64;
mod address;
mod architecture;
mod enumerate;
mod fault;
mod memory;
pub mod merge;
mod page;
mod page_scan;
mod path;
mod pte_block;
mod walk;
pub mod x86_64;

pub use address::{PageSize, PhysAddr, VirtAddr};
pub use architecture::{Architecture, Leaf, Step};
pub use enumerate::{Leaves, Runs};
pub use fault::{Fault, Translation};
pub use memory::{ImageMemory, OutsideImage, PhysicalMemory};
pub use page::Page;
pub use path::{Path, Visited};
pub use walk::walk;

// x86-64's names where they were before the architectures became peers.
pub use x86_64::FaultKind;
pub use x86_64::{
    Access, CR4_LA57, CachedWalker, ConfigError, EFER_NXE, Level, Mapping, MemoryTypeBits,
    PageTableEntry, PageTranslations, Paging, PagingMode, RangeError, ReservedBit, Run, SelfMap,
    info_tlb, mask_evidence, software_pte, windbg,
};
