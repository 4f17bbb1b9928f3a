//! A fake ntoskrnl for host tests: it does what the real calls do, to real
//! memory, and panics on the misuse Driver Verifier catches: leaks at unload,
//! double free, use after free, wrong teardown order, pool tag mismatch, and
//! arguments the driver must not pass (executable pool, executable mapping).

#![allow(dead_code, reason = "each test crate uses a different part")]

pub mod world;

use std::cell::{Cell, RefCell};
use std::ffi::CStr;
use std::fmt::Write as _;
use std::ptr::null_mut;

use vmwalk::ffi::{
    _MEMORY_CACHING_TYPE, _MM_PAGE_PRIORITY, _MODE, BOOLEAN, KPROCESSOR_MODE, MDL,
    MDL_SOURCE_IS_NONPAGED_POOL, MEMORY_CACHING_TYPE, MM_COPY_ADDRESS, MM_COPY_MEMORY_PHYSICAL,
    MdlMappingNoExecute, NTSTATUS, PHYSICAL_ADDRESS, PIRP, PMDL, POOL_FLAG_NON_PAGED, POOL_FLAGS,
    PVOID, SIZE_T, ULONG,
};
use vmwalk::kernel::{KernelApi, LogFormat, PagingRegisters};
use vmwalk::walker::PagingMode;
use world::World;

const PAGE: usize = 0x1000;
const MDL_MAPPED_TO_SYSTEM_VA: i16 = 0x1;
const MDL_ALLOCATED_FIXED_SIZE: i16 = 0x8;

/// Which kernel call misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `ExAllocatePool2` returns NULL.
    ExAllocatePool2,
    /// `IoAllocateMdl` returns NULL.
    IoAllocateMdl,
    /// `MmBuildMdlForNonPagedPool` leaves the MDL untouched.
    MmBuildMdlForNonPagedPool,
    /// `MmMapLockedPagesSpecifyCache` returns NULL.
    MmMapLockedPagesSpecifyCache,
    /// `MmMapLockedPagesSpecifyCache` returns a page that is not the buffer's.
    MappingNotAliased,
}

/// Every fault, in the order the driver makes the calls.
pub const FAULTS: [Fault; 5] = [
    Fault::ExAllocatePool2,
    Fault::IoAllocateMdl,
    Fault::MmBuildMdlForNonPagedPool,
    Fault::MmMapLockedPagesSpecifyCache,
    Fault::MappingNotAliased,
];

struct Pool {
    base: usize,
    len: usize,
    tag: ULONG,
    memfd: i32,
    live: bool,
    /// Physical address of each page, in the fake world.
    frames: Vec<u64>,
}

/// Windows' split on x64 (`MmHighestUserAddress`, `MmSystemRangeStart`).
pub const HIGHEST_USER_ADDRESS: u64 = 0x0000_7fff_fffe_ffff;
pub const SYSTEM_RANGE_START: u64 = 0xffff_8000_0000_0000;
/// `STATUS_INVALID_ADDRESS`: what `MmCopyMemory` returns for a bad address.
pub const STATUS_INVALID_ADDRESS: NTSTATUS = 0xC000_0141_u32.cast_signed();

struct FakeMdl {
    /// MDL header plus one PFN per page, kept allocated after free (poisoned).
    storage: Box<[u64]>,
    va: usize,
    len: usize,
    live: bool,
}

struct FakeMapping {
    base: usize,
    len: usize,
    mdl: usize,
    live: bool,
}

#[derive(Default)]
struct State {
    pools: Vec<Pool>,
    mdls: Vec<FakeMdl>,
    mappings: Vec<FakeMapping>,
    calls: Vec<&'static str>,
    lines: Vec<(ULONG, String)>,
}

/// The fake kernel; one per test.
#[derive(Default)]
pub struct FakeKernel {
    fault: Option<Fault>,
    state: RefCell<State>,
    world: RefCell<World>,
    /// `MmGetPhysicalAddress` answers this much off the truth.
    physical_address_error: Cell<u64>,
    /// `MmCopyMemory` fails.
    copies_fail: Cell<bool>,
}

impl Default for World {
    fn default() -> Self {
        Self::new(PagingMode::FourLevel, Some(0x15a))
    }
}

fn mdl_address(mdl: &FakeMdl) -> usize {
    mdl.storage.as_ptr() as usize
}

fn map_shared(memfd: i32, len: usize) -> usize {
    // SAFETY: a fresh shared mapping of a memfd we own; checked below.
    let base = unsafe {
        libc::mmap(
            null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            memfd,
            0,
        )
    };
    assert_ne!(base, libc::MAP_FAILED, "mmap failed");
    base as usize
}

fn new_memfd(len: usize) -> i32 {
    // SAFETY: the name is a valid C string.
    let memfd = unsafe { libc::memfd_create(c"vmwalk-fake-pool".as_ptr(), 0) };
    assert!(memfd >= 0, "memfd_create failed");
    let size = libc::off_t::try_from(len).expect("size fits off_t");
    // SAFETY: memfd is ours.
    let status = unsafe { libc::ftruncate(memfd, size) };
    assert_eq!(status, 0, "ftruncate failed");
    memfd
}

/// Revokes access, so any later use of the address faults (as special pool does).
fn revoke(base: usize, len: usize) {
    // SAFETY: `base..+len` is a mapping this fake made and still holds.
    let status = unsafe { libc::mprotect(base as *mut libc::c_void, len, libc::PROT_NONE) };
    assert_eq!(status, 0, "mprotect failed");
}

/// Formats like the debugger: `%p` as 16 upper-case hex digits, `%08X` as 8.
fn format_line(format: &LogFormat, args: [u64; 2]) -> String {
    let text = format.as_cstr().to_str().expect("formats are ASCII");
    let mut out = String::new();
    let mut args = args.into_iter();
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let arg = args.next().expect("LogFormat allows two conversions");
        if rest[at..].starts_with("%p") {
            write!(out, "{arg:016X}").expect("writing to a String");
            rest = &rest[at + 2..];
        } else {
            write!(out, "{:08X}", arg & 0xffff_ffff).expect("writing to a String");
            rest = &rest[at + 4..];
        }
    }
    out.push_str(rest);
    out
}

impl FakeKernel {
    /// A kernel where every call succeeds.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A kernel where `fault` happens.
    #[must_use]
    pub fn with_fault(fault: Fault) -> Self {
        let mut kernel = Self::default();
        kernel.fault = Some(fault);
        kernel
    }

    /// A kernel whose page tables are `world`.
    #[must_use]
    pub fn with_world(world: World) -> Self {
        let kernel = Self::default();
        kernel.world.replace(world);
        kernel
    }

    /// The page tables, to inspect or corrupt.
    pub fn world(&self) -> std::cell::RefMut<'_, World> {
        self.world.borrow_mut()
    }

    /// Makes `MmGetPhysicalAddress` answer `error` bytes off.
    pub fn lie_about_physical_addresses(&self, error: u64) {
        self.physical_address_error.set(error);
    }

    /// Makes every `MmCopyMemory` fail.
    pub fn fail_copies(&self) {
        self.copies_fail.set(true);
    }

    /// Maps a page at `va` (say, code) in the world.
    pub fn map_page(&self, va: u64) {
        let mut world = self.world.borrow_mut();
        let frame = world.new_page();
        world.map(va, frame);
    }

    /// The kernel functions called so far, in order (`DbgPrintEx` left out).
    pub fn calls(&self) -> Vec<&'static str> {
        self.state.borrow().calls.clone()
    }

    /// The `DbgPrintEx` lines so far, as the debugger shows them.
    pub fn lines(&self) -> Vec<String> {
        self.state
            .borrow()
            .lines
            .iter()
            .map(|(_, line)| line.clone())
            .collect()
    }

    /// The `DbgPrintEx` lines at `level`.
    pub fn lines_at(&self, level: ULONG) -> Vec<String> {
        let state = self.state.borrow();
        state
            .lines
            .iter()
            .filter(|(l, _)| *l == level)
            .map(|(_, line)| line.clone())
            .collect()
    }

    /// Panics if any pool, MDL or mapping is still live: a leak at unload.
    pub fn assert_nothing_leaked(&self) {
        let state = self.state.borrow();
        let pools = state.pools.iter().filter(|p| p.live).count();
        let mdls = state.mdls.iter().filter(|m| m.live).count();
        let mappings = state.mappings.iter().filter(|m| m.live).count();
        assert!(
            pools + mdls + mappings == 0,
            "fake kernel: leak: {pools} pool allocations, {mdls} MDLs, {mappings} mappings live"
        );
    }

    fn call(&self, name: &'static str) {
        self.state.borrow_mut().calls.push(name);
    }

    fn live_pool_containing(state: &State, va: usize, len: usize) -> Option<usize> {
        state
            .pools
            .iter()
            .position(|p| p.live && va >= p.base && va + len <= p.base + p.len)
    }

    fn live_mdl(state: &State, mdl: PMDL, call: &str) -> usize {
        state
            .mdls
            .iter()
            .position(|m| mdl_address(m) == mdl as usize && m.live)
            .unwrap_or_else(|| {
                panic!("fake kernel: {call} on an MDL that is not live (use after free?)")
            })
    }
}

impl Drop for FakeKernel {
    fn drop(&mut self) {
        let state = self.state.get_mut();
        for mapping in &state.mappings {
            // SAFETY: a mapping this fake made; nothing uses it any more.
            unsafe { libc::munmap(mapping.base as *mut libc::c_void, mapping.len) };
        }
        for pool in &state.pools {
            // SAFETY: as above, and the memfd is ours.
            unsafe { libc::munmap(pool.base as *mut libc::c_void, pool.len) };
            // SAFETY: the memfd is ours and closed once.
            unsafe { libc::close(pool.memfd) };
        }
    }
}

impl KernelApi for FakeKernel {
    fn ex_allocate_pool2(&self, flags: POOL_FLAGS, number_of_bytes: SIZE_T, tag: ULONG) -> PVOID {
        self.call("ExAllocatePool2");
        assert_eq!(
            flags, POOL_FLAG_NON_PAGED,
            "fake kernel: pool must be nonpaged NX"
        );
        assert!(
            tag.to_le_bytes().iter().all(|b| (0x20..=0x7e).contains(b)) && tag != 0,
            "fake kernel: pool tag must be 1-4 printable ASCII characters"
        );
        let len = usize::try_from(number_of_bytes).expect("size fits usize");
        assert!(len > 0, "fake kernel: ExAllocatePool2 of 0 bytes");
        if self.fault == Some(Fault::ExAllocatePool2) {
            return null_mut();
        }
        let len = len.next_multiple_of(PAGE);
        let memfd = new_memfd(len);
        let base = map_shared(memfd, len);
        let mut world = self.world.borrow_mut();
        let frames: Vec<u64> = (0..len / PAGE).map(|_| world.new_page()).collect();
        for (page, frame) in frames.iter().enumerate() {
            world.map((base + page * PAGE) as u64, *frame);
        }
        self.state.borrow_mut().pools.push(Pool {
            base,
            len,
            tag,
            memfd,
            live: true,
            frames,
        });
        base as PVOID
    }

    unsafe fn ex_free_pool_with_tag(&self, p: PVOID, tag: ULONG) {
        self.call("ExFreePoolWithTag");
        let mut state = self.state.borrow_mut();
        let base = p as usize;
        let index = state
            .pools
            .iter()
            .position(|pool| pool.base == base && pool.live)
            .unwrap_or_else(|| {
                let known = state.pools.iter().any(|pool| pool.base == base);
                assert!(!known, "fake kernel: double free of pool {base:#x}");
                panic!("fake kernel: ExFreePoolWithTag of {base:#x}, never allocated")
            });
        let pool = &state.pools[index];
        assert_eq!(tag, pool.tag, "fake kernel: pool tag mismatch on free");
        let described = state
            .mdls
            .iter()
            .any(|m| m.live && m.va >= pool.base && m.va < pool.base + pool.len);
        assert!(
            !described,
            "fake kernel: pool freed while an MDL still describes it"
        );
        let (base, len) = (pool.base, pool.len);
        state.pools[index].live = false;
        revoke(base, len);
    }

    unsafe fn io_allocate_mdl(
        &self,
        virtual_address: PVOID,
        length: ULONG,
        secondary_buffer: BOOLEAN,
        charge_quota: BOOLEAN,
        irp: PIRP,
    ) -> PMDL {
        self.call("IoAllocateMdl");
        assert!(
            secondary_buffer == 0 && charge_quota == 0 && irp.is_null(),
            "fake kernel: \
                 without an IRP, SecondaryBuffer and ChargeQuota must be FALSE"
        );
        let va = virtual_address as usize;
        let len = usize::try_from(length).expect("fits");
        let mut state = self.state.borrow_mut();
        assert!(
            Self::live_pool_containing(&state, va, len).is_some(),
            "fake kernel: MDL for memory that is not live pool (use after free?)"
        );
        if self.fault == Some(Fault::IoAllocateMdl) {
            return null_mut();
        }
        let pages = (va % PAGE + len).div_ceil(PAGE);
        let mut storage = vec![0_u64; size_of::<MDL>() / 8 + pages].into_boxed_slice();
        let mdl = storage.as_mut_ptr().cast::<MDL>();
        // SAFETY: storage is large enough and suitably aligned for an MDL.
        let header = unsafe { &mut *mdl };
        header.Size = i16::try_from(storage.len() * 8).expect("fits");
        header.MdlFlags = MDL_ALLOCATED_FIXED_SIZE;
        header.StartVa = (va & !(PAGE - 1)) as PVOID;
        header.ByteOffset = ULONG::try_from(va % PAGE).expect("fits");
        header.ByteCount = length;
        state.mdls.push(FakeMdl {
            storage,
            va,
            len,
            live: true,
        });
        mdl
    }

    unsafe fn mm_build_mdl_for_non_paged_pool(&self, mdl: PMDL) {
        self.call("MmBuildMdlForNonPagedPool");
        let state = self.state.borrow();
        let index = Self::live_mdl(&state, mdl, "MmBuildMdlForNonPagedPool");
        let (va, len) = (state.mdls[index].va, state.mdls[index].len);
        assert!(
            Self::live_pool_containing(&state, va, len).is_some(),
            "fake kernel: MmBuildMdlForNonPagedPool over freed pool"
        );
        if self.fault == Some(Fault::MmBuildMdlForNonPagedPool) {
            return;
        }
        // SAFETY: a live MDL of ours.
        let header = unsafe { &mut *mdl };
        header.MdlFlags |= i16::try_from(MDL_SOURCE_IS_NONPAGED_POOL).expect("fits");
        header.MappedSystemVa = va as PVOID;
        // The PFN array after the header: the frames of the described pages.
        let pool = Self::live_pool_containing(&state, va, len).expect("checked above");
        let first_page = (va - state.pools[pool].base) / PAGE;
        let frames: Vec<u64> = state.pools[pool].frames[first_page..].to_vec();
        drop(state);
        let mut state = self.state.borrow_mut();
        let storage = &mut state.mdls[index].storage;
        for (slot, frame) in storage[size_of::<MDL>() / 8..].iter_mut().zip(frames) {
            *slot = frame >> 12;
        }
    }

    unsafe fn mm_map_locked_pages_specify_cache(
        &self,
        mdl: PMDL,
        access_mode: KPROCESSOR_MODE,
        cache_type: MEMORY_CACHING_TYPE,
        requested_address: PVOID,
        bug_check_on_failure: ULONG,
        priority: ULONG,
    ) -> PVOID {
        self.call("MmMapLockedPagesSpecifyCache");
        assert_eq!(
            i32::from(access_mode),
            _MODE::KernelMode,
            "fake kernel: KernelMode mapping"
        );
        assert_eq!(
            cache_type,
            _MEMORY_CACHING_TYPE::MmCached,
            "fake kernel: MmCached mapping"
        );
        assert!(
            requested_address.is_null(),
            "fake kernel: RequestedAddress must be NULL"
        );
        assert_eq!(
            bug_check_on_failure, 0,
            "fake kernel: drivers must pass FALSE"
        );
        assert_ne!(
            priority & MdlMappingNoExecute,
            0,
            "fake kernel: mapping must be NX"
        );
        let normal = ULONG::try_from(_MM_PAGE_PRIORITY::NormalPagePriority).expect("fits");
        assert_eq!(
            priority & !MdlMappingNoExecute,
            normal,
            "fake kernel: NormalPagePriority"
        );
        let mut state = self.state.borrow_mut();
        let index = Self::live_mdl(&state, mdl, "MmMapLockedPagesSpecifyCache");
        // SAFETY: a live MDL of ours.
        let header = unsafe { &mut *mdl };
        assert_ne!(
            u32::from(header.MdlFlags.cast_unsigned()) & MDL_SOURCE_IS_NONPAGED_POOL,
            0,
            "fake kernel: mapping an MDL that describes no locked pages"
        );
        if self.fault == Some(Fault::MmMapLockedPagesSpecifyCache) {
            return null_mut();
        }
        let (va, len) = (state.mdls[index].va, state.mdls[index].len);
        let pool = Self::live_pool_containing(&state, va, len).expect("checked at build");
        let (memfd, pool_len) = (state.pools[pool].memfd, state.pools[pool].len);
        let aliased = self.fault != Some(Fault::MappingNotAliased);
        let base = if aliased {
            map_shared(memfd, pool_len)
        } else {
            map_shared(new_memfd(pool_len), pool_len)
        };
        let mut world = self.world.borrow_mut();
        for (page, frame) in state.pools[pool].frames.iter().enumerate() {
            let frame = if aliased { *frame } else { world.new_page() };
            world.map((base + page * PAGE) as u64, frame);
        }
        drop(world);
        header.MdlFlags |= MDL_MAPPED_TO_SYSTEM_VA;
        header.MappedSystemVa = base as PVOID;
        state.mappings.push(FakeMapping {
            base,
            len: pool_len,
            mdl: mdl as usize,
            live: true,
        });
        base as PVOID
    }

    unsafe fn mm_unmap_locked_pages(&self, base_address: PVOID, mdl: PMDL) {
        self.call("MmUnmapLockedPages");
        let mut state = self.state.borrow_mut();
        Self::live_mdl(&state, mdl, "MmUnmapLockedPages");
        let base = base_address as usize;
        let index = state
            .mappings
            .iter()
            .position(|m| m.base == base && m.live)
            .unwrap_or_else(|| panic!("fake kernel: unmap of {base:#x}, not mapped (twice?)"));
        assert_eq!(
            state.mappings[index].mdl, mdl as usize,
            "fake kernel: unmap with another MDL"
        );
        state.mappings[index].live = false;
        revoke(base, state.mappings[index].len);
        // SAFETY: a live MDL of ours.
        let header = unsafe { &mut *mdl };
        header.MdlFlags &= !MDL_MAPPED_TO_SYSTEM_VA;
    }

    unsafe fn io_free_mdl(&self, mdl: PMDL) {
        self.call("IoFreeMdl");
        let mut state = self.state.borrow_mut();
        let index = state
            .mdls
            .iter()
            .position(|m| mdl_address(m) == mdl as usize)
            .unwrap_or_else(|| panic!("fake kernel: IoFreeMdl of an unknown MDL"));
        assert!(state.mdls[index].live, "fake kernel: double free of MDL");
        let mapped = state
            .mappings
            .iter()
            .any(|m| m.live && m.mdl == mdl as usize);
        assert!(!mapped, "fake kernel: MDL freed while still mapped");
        state.mdls[index].live = false;
        state.mdls[index].storage.fill(0xfefe_fefe_fefe_fefe);
    }

    fn dbg_print(&self, level: ULONG, format: &LogFormat, args: [u64; 2]) {
        let line = format_line(format, args);
        self.state.borrow_mut().lines.push((level, line));
    }

    fn dbg_print_line(&self, level: ULONG, line: &CStr) {
        let line = line
            .to_str()
            .expect("the driver's lines are ASCII")
            .to_owned();
        assert!(
            line.starts_with("vmwalk: ") && line.ends_with('\n'),
            "{line:?}"
        );
        self.state.borrow_mut().lines.push((level, line));
    }

    unsafe fn mm_copy_memory(
        &self,
        target_address: PVOID,
        source_address: MM_COPY_ADDRESS,
        number_of_bytes: SIZE_T,
        flags: ULONG,
        number_of_bytes_transferred: *mut SIZE_T,
    ) -> NTSTATUS {
        self.call("MmCopyMemory");
        assert_eq!(
            flags, MM_COPY_MEMORY_PHYSICAL,
            "fake kernel: physical copies only"
        );
        assert_eq!(number_of_bytes, 8, "fake kernel: the walker reads 8 bytes");
        // SAFETY: a physical copy passes the physical member (all bits are a valid i64).
        let physical = unsafe { source_address.__bindgen_anon_1.PhysicalAddress };
        // SAFETY: as above.
        let physical = unsafe { physical.QuadPart }.cast_unsigned();
        let value = self.world.borrow().read(physical);
        let Some(value) = value.filter(|_| !self.copies_fail.get()) else {
            // SAFETY: the caller promises a writable SIZE_T.
            unsafe { number_of_bytes_transferred.write(0) };
            return STATUS_INVALID_ADDRESS;
        };
        // SAFETY: the caller promises 8 writable bytes.
        unsafe { target_address.cast::<u64>().write_unaligned(value) };
        // SAFETY: the caller promises a writable SIZE_T.
        unsafe { number_of_bytes_transferred.write(8) };
        0
    }

    unsafe fn mm_get_physical_address(&self, base_address: PVOID) -> PHYSICAL_ADDRESS {
        self.call("MmGetPhysicalAddress");
        let truth = self.world.borrow().translate(base_address as u64);
        PHYSICAL_ADDRESS {
            QuadPart: (truth + self.physical_address_error.get()).cast_signed(),
        }
    }

    fn mm_highest_user_address(&self) -> PVOID {
        HIGHEST_USER_ADDRESS as PVOID
    }

    fn mm_system_range_start(&self) -> PVOID {
        SYSTEM_RANGE_START as PVOID
    }

    fn paging_registers(&self) -> PagingRegisters {
        let world = self.world.borrow();
        let la57 = if world.mode == PagingMode::FiveLevel {
            1 << 12
        } else {
            0
        };
        PagingRegisters {
            cr3: world.root | 0x5,   // PCID bits the walker must ignore
            cr4: 0x20 | 0x80 | la57, // PAE, PGE
            efer: 0xd01,             // SCE, LME, LMA, NXE
            max_phys_bits: world::MAX_PHYS_BITS,
            gigabyte_pages: true,
        }
    }
}
