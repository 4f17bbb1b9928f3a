//! The fake kernel's physical memory: page tables that map the pool buffer
//! and its second mapping to the same frame, a self-map entry, and the
//! answers `MmCopyMemory` and `MmGetPhysicalAddress` give from them.
// Test code on a 64-bit host: offsets within a page fit in usize.
#![allow(clippy::cast_possible_truncation)]

use std::collections::HashMap;

use vmwalk::walker::{Level, PagingMode};

const PRESENT_WRITABLE: u64 = 0x3;
const ACCESSED_DIRTY: u64 = 0x60;
const NO_EXECUTE: u64 = 1 << 63;
/// MAXPHYADDR the fake CPU reports.
pub const MAX_PHYS_BITS: u32 = 46;

/// ARM64 descriptors: valid, table or page (bits 1:0 = 0b11); AF, inner
/// shareable; PXN and UXN. AP\[2:1\] = 0b00: EL1 read-write, no EL0 access.
const ARM64_TABLE: u64 = 0b11;
const ARM64_PAGE_NX: u64 = 0b11 | 1 << 10 | 0b11 << 8 | 1 << 53 | 1 << 54;

/// `TCR_EL1` as Windows 11 sets it: T0SZ = T1SZ = 17, 4 KiB granules, IPS
/// 48 bits, A1, AS, HPD0, HPD1.
// Read on a Snapdragon X Elite machine: connormcgarr.github.io,
// "arm64-windows-internals-basics" (2025).
pub const WINDOWS_TCR_EL1: u64 = 0x0000_0615_b551_3511;

/// Which processor's entries the world holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X64,
    /// Windows's layout: one 512-entry page per address space, indexed by VA
    /// bits 47:39 as a PML4 is; `TTBR0_EL1` points at its lower half and
    /// `TTBR1_EL1` at its upper half.
    Arm64,
}

/// Page tables in a sparse physical memory.
pub struct World {
    pub arch: Arch,
    pub mode: PagingMode,
    pub root: u64,
    pub self_map_index: Option<usize>,
    pages: HashMap<u64, Box<[u64; 512]>>,
    next_frame: u64,
}

impl World {
    /// An empty address space with a self-map at `self_map_index`.
    pub fn new(mode: PagingMode, self_map_index: Option<usize>) -> Self {
        let mut world = Self {
            arch: Arch::X64,
            mode,
            root: 0,
            self_map_index,
            pages: HashMap::new(),
            next_frame: 0x1_2340,
        };
        world.root = world.new_page();
        if let Some(index) = self_map_index {
            let root = world.root;
            world.pages.get_mut(&root).unwrap()[index] = world.self_map_entry(root);
        }
        world
    }

    /// An ARM64 address space as Windows lays it out, with a self-map at
    /// `self_map_index` of the 512-entry page.
    pub fn arm64(self_map_index: Option<usize>) -> Self {
        let mut world = Self::new(PagingMode::FourLevel, None);
        world.arch = Arch::Arm64;
        world.self_map_index = self_map_index;
        if let Some(index) = self_map_index {
            let root = world.root;
            world.pages.get_mut(&root).unwrap()[index] = world.self_map_entry(root);
        }
        world
    }

    const fn self_map_entry(&self, root: u64) -> u64 {
        match self.arch {
            Arch::X64 => root | PRESENT_WRITABLE | ACCESSED_DIRTY | NO_EXECUTE,
            Arch::Arm64 => root | ARM64_TABLE,
        }
    }

    const fn table_entry(&self, table: u64) -> u64 {
        match self.arch {
            Arch::X64 => table | PRESENT_WRITABLE,
            Arch::Arm64 => table | ARM64_TABLE,
        }
    }

    const fn leaf_entry(&self, frame_address: u64) -> u64 {
        match self.arch {
            Arch::X64 => frame_address | PRESENT_WRITABLE | ACCESSED_DIRTY | NO_EXECUTE,
            Arch::Arm64 => frame_address | ARM64_PAGE_NX,
        }
    }

    /// A fresh zeroed physical page.
    pub fn new_page(&mut self) -> u64 {
        let address = self.next_frame << 12;
        self.next_frame += 0x11; // not contiguous, so a wrong index shows
        self.pages.insert(address, Box::new([0; 512]));
        address
    }

    /// Maps the 4 KiB page at `va` to `frame_address`, NX and writable.
    pub fn map(&mut self, va: u64, frame_address: u64) {
        let mut table = self.root;
        for &level in self.mode.levels() {
            let index = level.index(va);
            if level == Level::Pt {
                let leaf = self.leaf_entry(frame_address);
                self.pages.get_mut(&table).unwrap()[index] = leaf;
                return;
            }
            let entry = self.pages[&table][index];
            table = if entry & 1 == 0 {
                let next = self.new_page();
                let entry = self.table_entry(next);
                self.pages.get_mut(&table).unwrap()[index] = entry;
                next
            } else {
                entry & 0x000f_ffff_ffff_f000
            };
        }
    }

    /// A new top-level table for a process: its user half empty (private),
    /// its kernel half the current table's (shared), as Windows builds one.
    pub fn new_process_root(&mut self) -> u64 {
        let root = self.new_page();
        let kernel_half: Vec<u64> = self.pages[&self.root][256..].to_vec();
        let self_map_entry = self.self_map_entry(root);
        let table = self.pages.get_mut(&root).unwrap();
        table[256..].copy_from_slice(&kernel_half);
        // Each process's self-map entry points at its own table.
        if let Some(index) = self.self_map_index {
            table[index] = self_map_entry;
        }
        root
    }

    /// The physical address of the entry at `level` on `va`'s walk.
    pub fn entry_address(&self, va: u64, level: Level) -> u64 {
        let mut table = self.root;
        for &l in self.mode.levels() {
            let at = table + 8 * l.index(va) as u64;
            if l == level {
                return at;
            }
            table = self.read(at).expect("mapped") & 0x000f_ffff_ffff_f000;
        }
        unreachable!("{level:?} is one of the mode's levels")
    }

    /// Changes the entry at `level` on `va`'s walk.
    pub fn set_entry(&mut self, va: u64, level: Level, change: impl Fn(u64) -> u64) {
        let at = self.entry_address(va, level);
        let slot = &mut self.pages.get_mut(&(at & !0xfff)).unwrap()[(at as usize & 0xfff) / 8];
        *slot = change(*slot);
    }

    /// An 8-byte aligned word, if the page exists.
    pub fn read(&self, address: u64) -> Option<u64> {
        let page = self.pages.get(&(address & !0xfff))?;
        Some(page[(address as usize & 0xfff) / 8])
    }

    /// What the MMU would translate `va` to (4 KiB pages only), or 0.
    pub fn translate(&self, va: u64) -> u64 {
        let mut table = self.root;
        for &level in self.mode.levels() {
            let Some(entry) = self.read(table + 8 * level.index(va) as u64) else {
                return 0;
            };
            if entry & 1 == 0 {
                return 0;
            }
            table = entry & 0x000f_ffff_ffff_f000;
        }
        table | (va & 0xfff)
    }
}
