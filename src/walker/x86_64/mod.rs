//! x86-64's rules, from CR3 through PML5 (with LA57)/PML4/PDPT/PD/PT.
//!
//! The entries' bits and reserved-bit checks, the fast translation path,
//! Windows' software PTEs, the self-map, and `WinDbg`'s `!pte` flag
//! columns. The engine in [`crate::walker`] does the rest.
//!
//! ```
//! use vmwalk::walker::x86_64::{FaultKind, Level, Paging, PagingMode};
//! use vmwalk::walker::{ImageMemory, PhysAddr, VirtAddr};
//!
//! // Four tables in a 20 KiB image, PML4 at 0x1000 to PT at 0x4000, that map
//! // the 4 KiB page at virtual 0x7ff6_c000_1000 to physical 0x9000.
//! let va: u64 = 0x7ff6_c000_1234;
//! let mut image = vec![0_u8; 0x5000];
//! let mut put = |table: u64, shift: u32, entry: u64| {
//!     let at = usize::try_from(table + 8 * ((va >> shift) & 0x1ff)).unwrap();
//!     image[at..at + 8].copy_from_slice(&entry.to_le_bytes());
//! };
//! let present_writable = 0b11;
//! put(0x1000, 39, 0x2000 | present_writable);
//! put(0x2000, 30, 0x3000 | present_writable);
//! put(0x3000, 21, 0x4000 | present_writable);
//! put(0x4000, 12, 0x9000 | present_writable);
//!
//! let paging = Paging::new(0x1000, PagingMode::FourLevel);
//! let memory = ImageMemory::new(&image);
//! let translation = paging.translate(&memory, VirtAddr(va)).unwrap();
//! assert_eq!(translation.pa, PhysAddr(0x9234));
//! assert_eq!(translation.path.as_slice().len(), 4, "PML4E, PDPTE, PDE, PTE");
//! assert!(translation.mapping.access.writable);
//!
//! // The next page is not mapped: the walker says where, and why.
//! let fault = paging.translate(&memory, VirtAddr(va + 0x1000)).unwrap_err();
//! assert!(matches!(fault.kind, FaultKind::NotPresent { level: Level::Pt, .. }));
//! assert_eq!(fault.kind.to_string(), "PTE 0x0000000000000000 is not present");
//!
//! // Every present leaf, in address order.
//! let leaves = paging.leaves(&memory).collect::<Result<Vec<_>, _>>().unwrap();
//! assert_eq!(leaves.len(), 1);
//! assert_eq!((leaves[0].va, leaves[0].pa), (VirtAddr(0x7ff6_c000_1000), PhysAddr(0x9000)));
//! ```

pub mod discovery;
mod entry;
mod fault;
pub mod info_tlb;
mod level;
pub mod mask_evidence;
mod outcome;
mod range;
mod registers;
mod rules;
mod self_map;
pub mod software_pte;
mod translate;
pub mod windbg;

pub use entry::{MemoryTypeBits, PageTableEntry};
pub use fault::{FaultKind, ReservedBit};
pub use level::{Level, PagingMode};
pub use range::CachedWalker;
pub use registers::{CR4_LA57, ConfigError, EFER_NXE, Paging};
pub use rules::{RangeError, Run};
pub use self_map::SelfMap;
pub use translate::{Access, Mapping};

pub use outcome::{Fault, Leaves, Page, Path, Runs, Translation, Visited};
pub use range::PageTranslations;
