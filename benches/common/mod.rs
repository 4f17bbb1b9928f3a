//! Physical images shared by the benchmarks: a synthetic one with a realistic
//! mix of 4 KiB / 2 MiB / 1 GiB mappings, and the committed Linux-guest
//! fixtures; plus the addresses to translate and the pointer-chase limit.
// Each bench target uses part of it; `const` buys nothing in a benchmark's setup.
#![allow(dead_code, clippy::missing_const_for_fn)]

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ptr::NonNull;

use vmwalk::walker::{ImageMemory, Paging, PagingMode, VirtAddr};
use x86_64::structures::paging::{OffsetPageTable, PageTable, PageTableFlags};

/// Bits 51:12 of an entry.
pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
/// Addresses translated per benchmark iteration.
pub const BATCH: usize = 1024;
/// First of `BATCH` 4 KiB pages of the mixed image's heap: they span two
/// PTs (the range starts 464 pages into one).
pub const HEAP_RANGE: u64 = 0x5555_5600_0000 + 464 * 4096;

/// A zeroed physical image whose byte `i` is physical address `i`, 4 KiB
/// aligned so that the `x86_64` crate can view its tables as `PageTable`s.
/// Pages never written are never touched: a 3 GiB guest costs its tables.
pub struct AlignedImage {
    allocation: NonNull<u8>,
    layout: Layout,
    base: NonNull<u8>,
    len: usize,
}

impl AlignedImage {
    pub fn zeroed(len: usize) -> Self {
        // Align 8 (not 4096): glibc's calloc then maps fresh zero pages
        // instead of clearing them; the base is aligned by hand.
        let layout = Layout::from_size_align(len + 4096, 8).expect("image layout");
        // SAFETY: the layout has a non-zero size.
        let allocation = NonNull::new(unsafe { alloc_zeroed(layout) }).expect("image allocation");
        let offset = allocation.as_ptr().align_offset(4096);
        // SAFETY: offset < 4096, inside the len + 4096 bytes allocated.
        let base = unsafe { allocation.add(offset) };
        Self {
            allocation,
            layout,
            base,
            len,
        }
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `len` zero-initialised bytes from `base` belong to this
        // allocation, and `&self` keeps them from being written meanwhile.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr(), self.len) }
    }

    /// The image as 8-byte words (the base is 4 KiB aligned).
    #[allow(clippy::cast_ptr_alignment)] // the base is 4096-aligned
    pub fn words(&self) -> &[u64] {
        // SAFETY: as `bytes`; the base is 4096-aligned, so u64-aligned.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr().cast::<u64>(), self.len / 8) }
    }

    #[allow(clippy::cast_ptr_alignment)] // the base is 4096-aligned
    fn words_mut(&mut self) -> &mut [u64] {
        // SAFETY: as `words`; `&mut self` makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr().cast::<u64>(), self.len / 8) }
    }

    pub fn write_u64(&mut self, addr: u64, value: u64) {
        self.words_mut()[usize::try_from(addr / 8).expect("address")] = value;
    }

    pub fn read_u64(&self, addr: u64) -> u64 {
        self.words()[usize::try_from(addr / 8).expect("address")]
    }

    /// A copy of the top-level table at `root`, for [`Self::x86_64_table`]:
    /// the crate wants it `&mut`, while everything else views the image.
    pub fn x86_64_level_4(&self, root: u64) -> Box<PageTable> {
        let mut table = Box::new(PageTable::new());
        for (i, entry) in table.iter_mut().enumerate() {
            let raw = self.read_u64(root + 8 * i as u64);
            entry.set_addr(
                x86_64::PhysAddr::new(raw & ADDR_MASK),
                PageTableFlags::from_bits_retain(raw & !ADDR_MASK),
            );
        }
        table
    }

    /// The `x86_64` crate's walker over this image: an `OffsetPageTable`
    /// whose physical offset is the image's first byte. Below the top level
    /// (`level_4`, from [`Self::x86_64_level_4`]) it reads the image itself,
    /// through shared references, as the walker and the chase do.
    pub fn x86_64_table<'a>(&'a self, level_4: &'a mut PageTable) -> OffsetPageTable<'a> {
        let offset = x86_64::VirtAddr::from_ptr(self.base.as_ptr());
        // SAFETY: all physical memory the tables reach is mapped at `offset`
        // for as long as `self` is borrowed: the tables were built or saved
        // inside the image, and translating only reads them (never the data
        // pages they map), through shared references, 4096-aligned.
        unsafe { OffsetPageTable::new(level_4, offset) }
    }

    pub fn memory(&self) -> ImageMemory<'_> {
        ImageMemory::new(self.bytes())
    }
}

impl Drop for AlignedImage {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with this layout.
        unsafe { dealloc(self.allocation.as_ptr(), self.layout) };
    }
}

pub mod interleaved;
pub mod memflow_peer;

#[path = "../../tests/model/rng.rs"]
mod rng;
pub use rng::Rng;

#[path = "../../tests/fixtures/mod.rs"]
mod fixtures;

/// A paged image and what it maps.
pub struct Machine {
    pub name: &'static str,
    pub image: AlignedImage,
    pub paging: Paging,
    /// Every leaf as `(canonical va, page size)`, ascending.
    pub leaves: Vec<(u64, u64)>,
}

impl Machine {
    /// `BATCH` random mapped addresses: a random leaf of a size drawn with
    /// the given percent for 4 KiB / 2 MiB / 1 GiB (a missing size is
    /// redrawn), then a random byte in it. Leaves that `skip` rejects are
    /// never drawn.
    pub fn random_addresses(&self, percent: [u64; 3], skip: impl Fn(u64) -> bool) -> Vec<u64> {
        self.random_addresses_of(BATCH, percent, skip)
    }

    /// [`Self::random_addresses`], `count` of them.
    pub fn random_addresses_of(
        &self,
        count: usize,
        percent: [u64; 3],
        skip: impl Fn(u64) -> bool,
    ) -> Vec<u64> {
        let by_size: Vec<Vec<u64>> = [1 << 12, 1 << 21, 1 << 30]
            .iter()
            .map(|&size| {
                self.leaves
                    .iter()
                    .filter(|&&(va, s)| s == size && !skip(va))
                    .map(|&(va, _)| va)
                    .collect()
            })
            .collect();
        let mut rng = Rng(0x5eed_0000_0000_0001);
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let roll = rng.below(100);
            let class = if roll < percent[0] {
                0
            } else if roll < percent[0] + percent[1] {
                1
            } else {
                2
            };
            let leaves = &by_size[class];
            if leaves.is_empty() {
                continue;
            }
            let va = leaves[usize::try_from(rng.below(leaves.len() as u64)).expect("index")];
            out.push(va + rng.below(1 << (12 + 9 * class)));
        }
        out
    }

    /// What the pointer chase needs for `va`: the number of dependent loads
    /// a walk makes (levels down to the leaf).
    pub fn chase_plan(&self, addresses: &[u64]) -> Vec<(u64, u32)> {
        let memory = self.image.memory();
        addresses
            .iter()
            .map(|&va| {
                let t = self
                    .paging
                    .translate(&memory, VirtAddr(va))
                    .expect("a mapped address");
                let loads = u32::try_from(t.path.as_slice().len()).expect("levels");
                (va, loads)
            })
            .collect()
    }
}

/// The physical limit of one walk: `loads` dependent 8-byte loads, each
/// address computed from the entry before, and nothing else (no checks: the
/// plan was made by walks that read the same entries). One copy per number
/// of levels, unrolled, as the walker's.
#[inline]
pub fn pointer_chase<const LEVELS: u32>(words: &[u64], root: u64, va: u64, loads: u32) -> u64 {
    let mut entry = root;
    for depth in 0..LEVELS {
        if depth == loads {
            break;
        }
        let shift = 12 + 9 * (LEVELS - 1 - depth);
        let at = ((entry & ADDR_MASK) >> 3) | ((va >> shift) & 0x1ff);
        // SAFETY: `chase_plan` translated `va`, reading these very entries
        // inside the image, so every index is in bounds.
        entry = unsafe { *words.get_unchecked(at as usize) };
    }
    let offset_mask = (1u64 << (12 + 9 * (LEVELS - loads))) - 1;
    (entry & ADDR_MASK & !offset_mask) | (va & offset_mask)
}

/// Builds page tables in an image, taking table frames at random (as a
/// kernel's allocator scatters them).
struct Builder {
    image: AlignedImage,
    rng: Rng,
    frames: Vec<u64>,
    leaves: Vec<(u64, u64)>,
    next_data: u64,
}

const PRESENT: u64 = 1;
const WRITABLE: u64 = 1 << 1;
const USER: u64 = 1 << 2;
const ACCESSED: u64 = 1 << 5;
const DIRTY: u64 = 1 << 6;
const PAGE_SIZE: u64 = 1 << 7;
const GLOBAL: u64 = 1 << 8;
const NO_EXECUTE: u64 = 1 << 63;

/// Linux's table flags: `_PAGE_TABLE` for user, `_KERNPG_TABLE` for kernel.
const USER_TABLE: u64 = PRESENT | WRITABLE | USER | ACCESSED | DIRTY;
const KERNEL_TABLE: u64 = PRESENT | WRITABLE | ACCESSED | DIRTY;

impl Builder {
    fn new(frames: u64) -> Self {
        let mut rng = Rng(0x7ab1_e5ee_d000_0001);
        let mut pool: Vec<u64> = (1..frames).collect();
        for i in (1..pool.len()).rev() {
            pool.swap(i, usize::try_from(rng.below(i as u64 + 1)).expect("index"));
        }
        Self {
            image: AlignedImage::zeroed(usize::try_from(frames * 4096).expect("size")),
            rng,
            frames: pool,
            leaves: Vec::new(),
            next_data: 1 << 40, // data frames: beyond the image, never read
        }
    }

    fn table(&mut self) -> u64 {
        self.frames.pop().expect("a free frame") << 12
    }

    /// The table that `table[index]` points to, made if absent.
    fn child(&mut self, table: u64, index: u64, flags: u64) -> u64 {
        let slot = table + index * 8;
        let entry = self.image.read_u64(slot);
        if entry & PRESENT != 0 {
            return entry & ADDR_MASK;
        }
        let next = self.table();
        self.image.write_u64(slot, next | flags);
        next
    }

    /// Maps `count` pages of `size` from `va` (canonical), each on its own data frame.
    fn map(&mut self, root: u64, va: u64, size: u64, count: u64, leaf_flags: u64) {
        let table_flags = if va >> 63 == 0 {
            USER_TABLE
        } else {
            KERNEL_TABLE
        };
        for i in 0..count {
            let page = va + i * size;
            let mut table = root;
            let mut shift = 39;
            while 1 << shift > size {
                table = self.child(table, (page >> shift) & 0x1ff, table_flags);
                shift -= 9;
            }
            self.next_data = self.next_data.next_multiple_of(size);
            let large = if size > 4096 { PAGE_SIZE } else { 0 };
            let accessed = if self.rng.below(4) == 0 { 0 } else { ACCESSED };
            let entry = self.next_data | leaf_flags | large | accessed;
            self.image
                .write_u64(table + ((page >> shift) & 0x1ff) * 8, entry);
            self.next_data += size;
            self.leaves.push((page, size));
        }
    }
}

/// A 4-level address space shaped like a Linux process's, scattered over
/// 64 MiB: 40 960 4 KiB pages (heap, libraries, stack, vmalloc, modules),
/// 1 088 2 MiB pages (transparent huge pages, kernel image, a direct-map
/// tail) and 64 1 GiB pages (the direct map); 97 tables. No PS in a PML4E,
/// so the `x86_64` crate can walk it too.
pub fn mixed() -> Machine {
    let mut b = Builder::new(16 * 1024);
    let root = b.table();
    let user_data = PRESENT | WRITABLE | USER | DIRTY | NO_EXECUTE;
    let user_code = PRESENT | USER;
    let kernel_data = PRESENT | WRITABLE | DIRTY | GLOBAL | NO_EXECUTE;
    let kernel_code = PRESENT | GLOBAL;
    b.map(root, 0x40_0000, 4096, 2048, user_code); // program text
    b.map(root, 0x5555_5600_0000, 4096, 16 * 1024, user_data); // heap
    b.map(root, 0x7f00_0000_0000, 2 << 20, 64, user_data); // transparent huge pages
    b.map(root, 0x7f12_3400_0000, 4096, 8 * 1024, user_code); // libraries
    b.map(root, 0x7ffc_0000_0000, 4096, 2048, user_data); // stack
    b.map(root, 0xffff_8880_0000_0000, 1 << 30, 64, kernel_data); // direct map
    b.map(root, 0xffff_8890_0000_0000, 2 << 20, 512, kernel_data); // direct-map tail
    b.map(root, 0xffff_c900_0000_0000, 4096, 8 * 1024, kernel_data); // vmalloc
    b.map(root, 0xffff_ffff_8000_0000, 2 << 20, 512, kernel_code); // kernel image
    b.map(root, 0xffff_ffff_c000_0000, 4096, 4 * 1024, kernel_data); // modules
    b.leaves.sort_unstable();
    Machine {
        name: "mixed",
        image: b.image,
        paging: Paging::new(root, PagingMode::FourLevel),
        leaves: b.leaves,
    }
}

/// A 4-level address space shaped like a Windows process's, scattered
/// over 64 MiB: the self-map at PML4 index 0x1ed (so enumeration also
/// lists the paging structures, as on Windows), the kernel image in 2 MiB
/// pages, the PFN database and the paged pool as 4 KiB pages a few to a
/// page table (as pool allocations are spread), and a user image, heap and
/// stack. Its sparse tables make enumeration read many entries a leaf.
pub fn windows_like() -> Machine {
    let mut b = Builder::new(16 * 1024);
    let root = b.table();
    let self_map = root | PRESENT | WRITABLE | ACCESSED | DIRTY | NO_EXECUTE;
    b.image.write_u64(root + 8 * 0x1ed, self_map);
    let user_data = PRESENT | WRITABLE | USER | DIRTY | NO_EXECUTE;
    let user_code = PRESENT | USER;
    let kernel_data = PRESENT | WRITABLE | DIRTY | GLOBAL | NO_EXECUTE;
    let kernel_code = PRESENT | GLOBAL;
    b.map(root, 0x7ff6_c000_0000, 4096, 512, user_code); // the program
    b.map(root, 0x7ffe_1230_0000, 4096, 1024, user_code); // ntdll, kernel32
    b.map(root, 0x00a0_0000_0000 - 64 * 4096, 4096, 64, user_data); // a stack
    for i in 0..2048 {
        b.map(root, 0x01d0_0000_0000 + i * 3 * 4096, 4096, 1, user_data); // heap
    }
    b.map(root, 0xffff_f800_0000_0000, 2 << 20, 16, kernel_code); // ntoskrnl, hal
    for i in 0..4096 {
        b.map(
            root,
            0xffff_a000_0000_0000 + i * 37 * 4096,
            4096,
            1,
            kernel_data,
        ); // PFN database
    }
    for i in 0..8192 {
        b.map(
            root,
            0xffff_c000_0000_0000 + i * 0x2_3000,
            4096,
            1,
            kernel_data,
        ); // paged pool
    }
    let memory = b.image.memory();
    let paging = Paging::new(root, PagingMode::FourLevel);
    let leaves = paging
        .leaves(&memory)
        .map(|leaf| leaf.expect("a usable leaf"))
        .map(|m| (m.va.0, m.size.bytes()))
        .collect();
    Machine {
        name: "windows_like",
        image: b.image,
        paging,
        leaves,
    }
}

/// The top-level table page of every table visit a walk over all of
/// `machine`'s present entries makes, in visit order (a table reached
/// twice counts twice): the pages enumeration reads, found without the
/// walker (the scan limit's reference).
pub fn visited_tables(machine: &Machine) -> Vec<u64> {
    fn visit(image: &AlignedImage, table: u64, level: u32, out: &mut Vec<u64>) {
        let start = usize::try_from(table / 8).expect("address");
        let Some(entries) = image.words().get(start..start + 512) else {
            return; // outside the image: enumeration reports a failed read
        };
        out.push(table);
        for &entry in entries {
            let leaf = level == 1 || (level <= 3 && entry & PAGE_SIZE != 0);
            if entry & PRESENT != 0 && !leaf {
                visit(image, entry & ADDR_MASK, level - 1, out);
            }
        }
    }
    let mut out = Vec::new();
    visit(&machine.image, machine.paging.root().0, 4, &mut out);
    out
}

/// A committed Linux-guest fixture (format: `tests/fixtures/mod.rs`) as a
/// raw image of the guest's RAM holding only its page-table pages.
pub fn linux(name: &'static str) -> Machine {
    let fixture = fixtures::load(&format!("linux-{name}.fixture.gz"));
    let records = &fixture.tables.0;
    let paging = fixture.paging;
    let end = records.iter().map(|r| r.0 + 4096).max().expect("pages");
    let mut image = AlignedImage::zeroed(usize::try_from(end).expect("size"));
    for (addr, entries) in records {
        for (i, &entry) in entries.iter().enumerate() {
            image.write_u64(addr + 8 * i as u64, entry);
        }
    }
    let leaves = paging
        .leaves(&image.memory())
        .map(|leaf| leaf.expect("a usable leaf"))
        .map(|m| (m.va.0, m.size.bytes()))
        .collect();
    Machine {
        name: if name == "la48" {
            "linux_la48"
        } else {
            "linux_la57"
        },
        image,
        paging,
        leaves,
    }
}

/// The mixed image's tables rewritten as `AArch64` descriptors, in place:
/// the same tables, leaves and addresses, walked from `TTBR0_EL1` and
/// `TTBR1_EL1` (both the old PML4; T0SZ = T1SZ = 16, 4 KiB granules).
pub struct Arm64Machine {
    pub image: AlignedImage,
    pub paging: vmwalk::walker::aarch64::Paging,
    pub root: u64,
}

/// [`mixed`] as an `AArch64` image: tables become table descriptors (0b11),
/// 4 KiB leaves pages (0b11), 2 MiB and 1 GiB leaves blocks (0b01); A, U/S,
/// R/W, NX and G become AF, AP\[1\], AP\[2\], UXN|PXN and nG.
pub fn mixed_aarch64() -> Arm64Machine {
    fn convert(image: &mut AlignedImage, table: u64, level: u32) {
        for index in 0..512 {
            let at = table + 8 * index;
            let entry = image.read_u64(at);
            if entry & PRESENT == 0 {
                continue;
            }
            let address = entry & ADDR_MASK;
            let leaf = level == 3 || entry & PAGE_SIZE != 0;
            if !leaf {
                convert(image, address, level + 1);
                image.write_u64(at, address | 0b11);
                continue;
            }
            let mut descriptor = address | if level == 3 { 0b11 } else { 0b01 } | 0b11 << 8;
            for (x86, arm, when_set) in [
                (ACCESSED, 1 << 10, true),
                (USER, 1 << 6, true),
                (WRITABLE, 1 << 7, false),
                (NO_EXECUTE, 1 << 53 | 1 << 54, true),
                (GLOBAL, 1 << 11, false),
            ] {
                if (entry & x86 != 0) == when_set {
                    descriptor |= arm;
                }
            }
            image.write_u64(at, descriptor);
        }
    }
    let Machine {
        mut image, paging, ..
    } = mixed();
    let root = paging.root().0;
    convert(&mut image, root, 0);
    let tcr = 16 | 16 << 16 | 0b10 << 30 | 0b101 << 32;
    let paging = vmwalk::walker::aarch64::Paging::from_registers(root, root, tcr)
        .expect("48-bit ranges, 4 KiB granules");
    Arm64Machine {
        image,
        paging,
        root,
    }
}

/// `aarch64-paging`'s view of an image: its `Translation` hands out the
/// image's own pages (the root once, when the `RootTable` is made) and
/// never allocates or frees.
pub struct ImageTranslation {
    base: NonNull<u8>,
    len: usize,
    root: u64,
}

type Arm64PageTable = aarch64_paging::paging::PageTable<aarch64_paging::descriptor::El1Attributes>;

impl aarch64_paging::paging::Translation<aarch64_paging::descriptor::El1Attributes>
    for ImageTranslation
{
    fn allocate_table(
        &mut self,
    ) -> (
        NonNull<Arm64PageTable>,
        aarch64_paging::descriptor::PhysicalAddress,
    ) {
        let pa =
            aarch64_paging::descriptor::PhysicalAddress(usize::try_from(self.root).expect("root"));
        (self.physical_to_virtual(pa), pa)
    }

    unsafe fn deallocate_table(&mut self, _table: NonNull<Arm64PageTable>) {}

    fn physical_to_virtual(
        &self,
        pa: aarch64_paging::descriptor::PhysicalAddress,
    ) -> NonNull<Arm64PageTable> {
        assert!(
            pa.0.is_multiple_of(4096) && pa.0 < self.len,
            "a table inside the image: {pa}"
        );
        // SAFETY: in bounds (checked above); 4096-aligned as the image's base.
        unsafe { self.base.add(pa.0) }.cast()
    }
}

/// The two `aarch64-paging` root tables of `machine` (`TTBR0_EL1`'s and
/// `TTBR1_EL1`'s range), reading its image in place.
pub fn aarch64_paging_roots(
    machine: &Arm64Machine,
) -> [aarch64_paging::paging::RootTable<aarch64_paging::paging::El1And0, ImageTranslation>; 2] {
    [
        aarch64_paging::paging::VaRange::Lower,
        aarch64_paging::paging::VaRange::Upper,
    ]
    .map(|range| {
        let translation = ImageTranslation {
            base: machine.image.base,
            len: machine.image.len,
            root: machine.root,
        };
        aarch64_paging::paging::RootTable::with_va_range(
            translation,
            0,
            aarch64_paging::paging::El1And0,
            range,
        )
    })
}

/// `aarch64-paging`'s translation of `va`: its `walk_range` over one byte,
/// the leaf's output address plus the offset below the leaf's size.
pub fn aarch64_paging_translate(
    roots: &[aarch64_paging::paging::RootTable<aarch64_paging::paging::El1And0, ImageTranslation>;
         2],
    va: u64,
) -> u64 {
    let root = &roots[usize::from(va >> 63 == 1)];
    let start = usize::try_from(va).expect("64-bit host");
    let mut pa = 0;
    let region = aarch64_paging::paging::MemoryRegion::new(start, start + 1);
    root.walk_range(&region, &mut |_, descriptor, level| {
        if descriptor.is_valid() {
            let size = 1usize << (12 + 9 * (3 - level));
            pa = (descriptor.output_address().0 + (start & (size - 1))) as u64;
        }
        Ok(())
    })
    .expect("a one-byte region inside the range");
    pa
}
