//! A fake ntoskrnl for host tests: it does what the real calls do, to real
//! memory, and panics on the misuse Driver Verifier catches: leaks at unload,
//! double free, use after free, wrong teardown order, pool tag mismatch, and
//! arguments the driver must not pass (executable pool, executable mapping).
//!
//! MDL flags follow the Windows Research Kernel and `ReactOS`
//! (`IoBuildPartialMdl`, `MmMapLockedPagesSpecifyCache`, `IoFreeMdl`). With
//! the Driver Verifier model on ([`FakeKernel::verify`]), a call Verifier
//! stops panics with bug check 0xC4 and the subcode Microsoft's bug check
//! page lists: 0xB2 (mapping an MDL that is already mapped or describes
//! nonpaged pool), 0xB3 (mapping an MDL whose pages are not locked), 0xB8
//! (freeing a mapped MDL), 0x76 and 0x7E (IRQL too high).

#![allow(dead_code, reason = "each test crate uses a different part")]

pub mod world;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::CStr;
use std::fmt::Write as _;
use std::ptr::null_mut;

use vmwalk::ffi::{
    _KEY_VALUE_INFORMATION_CLASS, _MEMORY_CACHING_TYPE, _MM_PAGE_PRIORITY, _MODE, ACCESS_MASK,
    BOOLEAN, DRIVER_OBJECT, HANDLE, KEY_VALUE_INFORMATION_CLASS, KPROCESSOR_MODE, LOGICAL, MDL,
    MDL_MAPPED_TO_SYSTEM_VA, MDL_PAGES_LOCKED, MDL_PARTIAL, MDL_PARTIAL_HAS_BEEN_MAPPED,
    MDL_SOURCE_IS_NONPAGED_POOL, MEMORY_CACHING_TYPE, MM_ALLOCATE_FULLY_REQUIRED, MM_COPY_ADDRESS,
    MM_COPY_MEMORY_PHYSICAL, MdlMappingNoExecute, NTSTATUS, OBJ_KERNEL_HANDLE, OBJECT_ATTRIBUTES,
    PEPROCESS, PHYSICAL_ADDRESS, PIRP, PMDL, POOL_FLAG_NON_PAGED, POOL_FLAGS, PRKAPC_STATE,
    PRKPROCESS, PUNICODE_STRING, PVOID, REG_SZ, SIZE_T, ULONG, UNICODE_STRING,
};
use vmwalk::kernel::{Arm64Registers, KernelApi, LogFormat, PagingRegisters, X64Registers};
use vmwalk::walker::{Level, PagingMode};
use world::World;

const PAGE: usize = 0x1000;
const MDL_ALLOCATED_FIXED_SIZE: u32 = 0x8;
const MDL_ALLOCATED_MUST_SUCCEED: u32 = 0x4000;
const MDL_IO_PAGE_READ: u32 = 0x40;
const DISPATCH_LEVEL: u8 = 2;
pub const STATUS_OBJECT_NAME_NOT_FOUND: NTSTATUS = 0xC000_0034_u32.cast_signed();
pub const STATUS_BUFFER_OVERFLOW: NTSTATUS = 0x8000_0005_u32.cast_signed();
/// The service key `DriverEntry` receives (`RegistryPath`).
pub const SERVICE_KEY: &str = r"\Registry\Machine\System\CurrentControlSet\Services\vmwalk";
const SERVICE_HANDLE: usize = 0x80;
const PARAMETERS_HANDLE: usize = 0x84;

/// Which kernel call misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `MmAllocatePagesForMdlEx` returns NULL.
    MmAllocatePagesForMdlEx,
    /// `MmAllocatePagesForMdlEx` returns an MDL of half a page.
    ShortPageAllocation,
    /// The second `MmMapLockedPagesSpecifyCache` returns NULL.
    SecondMapping,
    /// The second mapping returns the first mapping's address.
    SameAddress,
    /// The page tables map the second address to another frame than the
    /// one really behind it: the pattern reads back, the walk disagrees.
    WalkContradicts,
    /// `ExAllocatePool2` returns NULL.
    ExAllocatePool2,
    /// `PsLookupProcessByProcessId` fails.
    PsLookupProcessByProcessId,
    /// `SeLocateProcessImageName` fails.
    SeLocateProcessImageName,
    /// `IoAllocateMdl` returns NULL.
    IoAllocateMdl,
    /// `MmBuildMdlForNonPagedPool` leaves the MDL untouched.
    MmBuildMdlForNonPagedPool,
    /// `MmMapLockedPagesSpecifyCache` returns NULL.
    MmMapLockedPagesSpecifyCache,
    /// `MmMapLockedPagesSpecifyCache` returns a page that is not the buffer's.
    MappingNotAliased,
    /// The second address is a true alias, but the page tables send its walk
    /// through the first address's PTE: its PDE names the first's page
    /// table (tables that alias each other), and its PT index is the same.
    SharedPte,
}

/// Every fault of the default method, in the order the driver makes the calls.
pub const PARTIAL_MDL_FAULTS: [Fault; 9] = [
    Fault::MmAllocatePagesForMdlEx,
    Fault::ShortPageAllocation,
    Fault::IoAllocateMdl,
    Fault::MmMapLockedPagesSpecifyCache,
    Fault::SecondMapping,
    Fault::SameAddress,
    Fault::MappingNotAliased,
    Fault::WalkContradicts,
    Fault::SharedPte,
];

/// Every fault of the seed's sequence, in the order the driver makes the calls.
pub const POOL_MDL_FAULTS: [Fault; 8] = [
    Fault::ExAllocatePool2,
    Fault::IoAllocateMdl,
    Fault::MmBuildMdlForNonPagedPool,
    Fault::MmMapLockedPagesSpecifyCache,
    Fault::SameAddress,
    Fault::MappingNotAliased,
    Fault::WalkContradicts,
    Fault::SharedPte,
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

/// Where an MDL came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MdlKind {
    /// `IoAllocateMdl`: freed with `IoFreeMdl`.
    Allocated,
    /// `MmAllocatePagesForMdlEx`: pages freed with `MmFreePagesFromMdl`,
    /// the MDL with `ExFreePool`.
    Pages { pages_live: bool },
}

/// The memory an MDL's PFN array names, once the MDL is built.
#[derive(Clone)]
struct Backing {
    memfd: i32,
    len: usize,
    frames: Vec<u64>,
}

struct FakeMdl {
    /// MDL header plus one PFN per page, kept allocated after free (poisoned).
    storage: Box<[u64]>,
    va: usize,
    len: usize,
    kind: MdlKind,
    backing: Option<Backing>,
    /// For a partial MDL: the MDL it was built from.
    source: Option<usize>,
    live: bool,
}

impl FakeMdl {
    fn header(&mut self) -> &mut MDL {
        // SAFETY: storage is large enough and suitably aligned for an MDL.
        unsafe { &mut *self.storage.as_mut_ptr().cast::<MDL>() }
    }

    fn flags(&mut self) -> u32 {
        u32::from(self.header().MdlFlags.cast_unsigned())
    }

    fn set_flags(&mut self, flags: u32) {
        self.header().MdlFlags = u16::try_from(flags).expect("16-bit flags").cast_signed();
    }
}

struct FakeMapping {
    base: usize,
    len: usize,
    mdl: usize,
    /// False when the fake returned an address it had already handed out.
    owns_pages: bool,
    live: bool,
}

#[derive(Default)]
struct State {
    pools: Vec<Pool>,
    mdls: Vec<FakeMdl>,
    mappings: Vec<FakeMapping>,
    /// Registry handles not closed yet.
    open_keys: Vec<usize>,
    /// `SeLocateProcessImageName` strings: header and text, and whether freed.
    image_names: Vec<(Box<[u64]>, bool)>,
    calls: Vec<&'static str>,
    lines: Vec<(ULONG, String)>,
}

/// A process: its top-level table and the references the driver holds.
struct FakeProcess {
    root: u64,
    /// Its image file, as `SeLocateProcessImageName` gives it.
    image: String,
    /// Its `EPROCESS` address: this box's.
    object: Box<u64>,
    references: u32,
}

impl FakeProcess {
    fn address(&self) -> usize {
        std::ptr::from_ref::<u64>(&self.object).addr()
    }
}

/// The id of the process whose `EPROCESS` is at `address`; panics, naming
/// `call`, unless it is one the driver holds a reference on.
fn referenced(processes: &HashMap<u32, FakeProcess>, address: usize, call: &str) -> u32 {
    let (&id, process) = processes
        .iter()
        .find(|(_, p)| p.address() == address)
        .unwrap_or_else(|| panic!("fake kernel: {call} of {address:#x}, which is not a process"));
    assert!(
        process.references > 0,
        "fake kernel: {call} of a process the driver holds no reference on"
    );
    id
}

/// `STATUS_INVALID_PARAMETER`: what `PsLookupProcessByProcessId` returns for no such process.
pub const STATUS_INVALID_PARAMETER: NTSTATUS = 0xC000_000D_u32.cast_signed();

/// Registry values by lower-case name: type and data.
type Values = HashMap<String, (u32, Vec<u8>)>;

/// The fake kernel; one per test.
#[derive(Default)]
pub struct FakeKernel {
    fault: Option<Fault>,
    /// Driver Verifier's MDL rules raise their bug check.
    verifier: Cell<bool>,
    /// What `MmIsDriverVerifying` answers.
    verifying: Cell<bool>,
    irql: Cell<u8>,
    /// Values under the service's `Parameters` key; `None`: no such key.
    parameters: RefCell<Option<Values>>,
    /// `MmMapLockedPagesSpecifyCache` calls so far.
    maps: Cell<usize>,
    processes: RefCell<HashMap<u32, FakeProcess>>,
    /// While attached: the APC state pointer given and the root to restore.
    attachment: Cell<Option<(usize, u64)>>,
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

/// Panics as Driver Verifier stops the machine: bug check 0xC4 with its parameters.
fn bug_check(subcode: u64, p2: u64, p3: u64, p4: u64, cause: &str) -> ! {
    panic!(
        "fake kernel: bug check 0xC4 (DRIVER_VERIFIER_DETECTED_VIOLATION), parameters {subcode:#x}, {p2:#x}, {p3:#x}, {p4:#x}: {cause}"
    )
}

/// UTF-16 `name` as a Rust string.
///
/// # Safety
/// `name` points to a valid `UNICODE_STRING`.
unsafe fn read_unicode(name: *const UNICODE_STRING) -> String {
    // SAFETY: the caller's contract.
    let name = unsafe { &*name };
    assert_eq!(name.Length % 2, 0, "fake kernel: odd UNICODE_STRING length");
    assert!(
        name.Length <= name.MaximumLength,
        "fake kernel: Length > MaximumLength"
    );
    // SAFETY: Buffer holds Length bytes.
    let units = unsafe { std::slice::from_raw_parts(name.Buffer, usize::from(name.Length / 2)) };
    String::from_utf16(units).expect("fake kernel: names are valid UTF-16")
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

/// Maps `memfd` at an address with the same PT index as `first` (a
/// multiple of 2 MiB away), so that one page table can serve both.
fn map_shared_in_step(memfd: i32, len: usize, first: usize) -> usize {
    const STEP: usize = 2 << 20;
    (1..4096)
        .flat_map(|k| [first.wrapping_add(k * STEP), first.wrapping_sub(k * STEP)])
        .find(|&hint| {
            // SAFETY: MAP_FIXED_NOREPLACE never replaces a mapping: it maps
            // at `hint` or fails (a kernel before 4.17 takes it as a hint).
            let base = unsafe {
                libc::mmap(
                    hint as *mut libc::c_void,
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_FIXED_NOREPLACE,
                    memfd,
                    0,
                )
            };
            if base != libc::MAP_FAILED && base as usize != hint {
                // SAFETY: the mapping just made, elsewhere; nothing uses it.
                unsafe { libc::munmap(base, len) };
            }
            base as usize == hint
        })
        .expect("a free address 2 MiB steps from the first")
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

    /// Turns the Driver Verifier model on: its MDL rules raise bug check 0xC4.
    pub fn verify(&self) {
        self.verifier.set(true);
    }

    /// What `MmIsDriverVerifying` answers from now on.
    pub fn report_verifying(&self, verifying: bool) {
        self.verifying.set(verifying);
    }

    /// Runs the driver's calls at `irql` from now on.
    pub fn set_irql(&self, irql: u8) {
        self.irql.set(irql);
    }

    /// A process `process_id` with its own top-level table (kernel half
    /// shared); returns the table's physical address.
    pub fn add_process(&self, process_id: u32) -> u64 {
        let root = self.world.borrow_mut().new_process_root();
        self.processes.borrow_mut().insert(
            process_id,
            FakeProcess {
                root,
                image: format!(r"\Device\HarddiskVolume3\Windows\System32\process{process_id}.exe"),
                object: Box::new(u64::from(process_id)),
                references: 0,
            },
        );
        root
    }

    /// Gives `process_id` the image file `path` (an NT path).
    pub fn set_process_image(&self, process_id: u32, path: &str) {
        let mut processes = self.processes.borrow_mut();
        let image = &mut processes.get_mut(&process_id).unwrap().image;
        image.clear();
        image.push_str(path);
    }

    /// Maps `va` to a fresh frame in `process_id`'s address space; the frame.
    pub fn map_in_process(&self, process_id: u32, va: u64) -> u64 {
        let root = self.processes.borrow()[&process_id].root;
        let mut world = self.world.borrow_mut();
        let own = std::mem::replace(&mut world.root, root);
        let frame = world.new_page();
        world.map(va, frame);
        world.root = own;
        frame
    }

    /// Changes `process_id`'s entry at `level` on `va`'s walk.
    pub fn set_process_entry(
        &self,
        process_id: u32,
        va: u64,
        level: Level,
        change: impl Fn(u64) -> u64,
    ) {
        let root = self.processes.borrow()[&process_id].root;
        let mut world = self.world.borrow_mut();
        let own = std::mem::replace(&mut world.root, root);
        world.set_entry(va, level, change);
        world.root = own;
    }

    /// Sets `name` under `Parameters` (creating the key) to `value_type` and `data`.
    pub fn set_parameter(&self, name: &str, value_type: u32, data: &[u8]) {
        self.parameters
            .borrow_mut()
            .get_or_insert_with(HashMap::new)
            .insert(name.to_ascii_lowercase(), (value_type, data.to_vec()));
    }

    /// Sets `name` under `Parameters` to the `REG_SZ` `text` (NUL-terminated, as regedit writes).
    pub fn set_string_parameter(&self, name: &str, text: &str) {
        let data: Vec<u8> = text
            .encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect();
        self.set_parameter(name, REG_SZ, &data);
    }

    /// The service key as `DriverEntry` receives it; keep `buffer` alive.
    pub fn registry_path(buffer: &mut Vec<u16>) -> UNICODE_STRING {
        *buffer = SERVICE_KEY.encode_utf16().collect();
        let bytes = u16::try_from(buffer.len() * 2).expect("short");
        UNICODE_STRING {
            Length: bytes,
            MaximumLength: bytes,
            Buffer: buffer.as_mut_ptr(),
        }
    }

    /// The arguments the driver must pass to `MmMapLockedPagesSpecifyCache`.
    fn check_map_arguments(
        &self,
        mdl: PMDL,
        access_mode: KPROCESSOR_MODE,
        cache_type: MEMORY_CACHING_TYPE,
        requested_address: PVOID,
        bug_check_on_failure: ULONG,
        priority: ULONG,
    ) {
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
        if bug_check_on_failure != 0 && self.verifier.get() {
            bug_check(
                0x82,
                mdl as u64,
                0,
                0,
                "MmMapLockedPagesSpecifyCache with BugCheckOnFailure TRUE",
            );
        }
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
    }

    fn check_irql(&self, max: u8, subcode: u64, call: &str) {
        let irql = self.irql.get();
        if self.verifier.get() && irql > max {
            bug_check(
                subcode,
                u64::from(irql),
                0,
                0,
                &format!("{call} at IRQL {irql}"),
            );
        }
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

    /// Forgets the calls and lines so far (to look at what comes next).
    pub fn clear_log(&self) {
        let mut state = self.state.borrow_mut();
        state.calls.clear();
        state.lines.clear();
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
        let keys =
            state.open_keys.len() + state.image_names.iter().filter(|(_, freed)| !freed).count();
        let references: u32 = self.processes.borrow().values().map(|p| p.references).sum();
        let attached = u32::from(self.attachment.get().is_some());
        assert!(
            pools + mdls + mappings + keys == 0 && references + attached == 0,
            "fake kernel: leak: {pools} pool allocations, {mdls} MDLs, {mappings} mappings, {keys} registry handles, {references} process references, {attached} attachments live"
        );
    }

    fn call(&self, name: &'static str) {
        self.state.borrow_mut().calls.push(name);
    }

    /// A live page allocation (`MmAllocatePagesForMdlEx`) whose MDL's
    /// virtual range contains `va..+len`.
    fn live_pages_containing(state: &State, va: usize, len: usize) -> Option<usize> {
        state.mdls.iter().position(|m| {
            m.live
                && matches!(m.kind, MdlKind::Pages { pages_live: true })
                && va >= m.va
                && va + len <= m.va + m.len
        })
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

/// Driver Verifier's checks of a kernel-mode `MmMapLockedPagesSpecifyCache`,
/// the WRK's `ASSERT`s: not mapped yet, and locked or partial.
fn verify_map_flags(mdl: PMDL, flags: u32) {
    let already = flags
        & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL | MDL_PARTIAL_HAS_BEEN_MAPPED);
    if already != 0 {
        bug_check(
            0xB2,
            mdl as u64,
            flags.into(),
            already.into(),
            "MmMapLockedPages of an MDL already mapped to a system address",
        );
    }
    if flags & (MDL_PAGES_LOCKED | MDL_PARTIAL) == 0 {
        bug_check(
            0xB3,
            mdl as u64,
            flags.into(),
            (MDL_PAGES_LOCKED | MDL_PARTIAL).into(),
            "MmMapLockedPages of an MDL whose pages are not locked",
        );
    }
}

/// A fresh MDL for `va..+len` with `flags`, its PFN array zeroed.
fn new_mdl(va: usize, len: usize, flags: u32, kind: MdlKind) -> FakeMdl {
    let pages = (va % PAGE + len).div_ceil(PAGE);
    let storage = vec![0_u64; size_of::<MDL>() / 8 + pages].into_boxed_slice();
    let mut mdl = FakeMdl {
        storage,
        va,
        len,
        kind,
        backing: None,
        source: None,
        live: true,
    };
    let size = i16::try_from(mdl.storage.len() * 8).expect("fits");
    let header = mdl.header();
    header.Size = size;
    header.StartVa = (va & !(PAGE - 1)) as PVOID;
    header.ByteOffset = ULONG::try_from(va % PAGE).expect("fits");
    header.ByteCount = ULONG::try_from(len).expect("fits");
    mdl.set_flags(flags);
    mdl
}

/// Writes the frames' PFNs into the MDL's PFN array (as many as it holds).
fn write_pfns(mdl: &mut FakeMdl, frames: &[u64]) {
    for (slot, frame) in mdl.storage[size_of::<MDL>() / 8..].iter_mut().zip(frames) {
        *slot = frame >> 12;
    }
}

impl Drop for FakeKernel {
    fn drop(&mut self) {
        let state = self.state.get_mut();
        for mapping in state.mappings.iter().filter(|m| m.owns_pages) {
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
        // SeLocateProcessImageName's string is freed with ExFreePool (tag 0).
        if let Some(name) = state
            .image_names
            .iter_mut()
            .find(|(storage, _)| storage.as_ptr() as usize == base)
        {
            assert!(!name.1, "fake kernel: double free of an image name");
            assert_eq!(tag, 0, "fake kernel: ExFreePool passes tag 0");
            name.1 = true;
            return;
        }
        // The MDL of MmAllocatePagesForMdlEx is freed with ExFreePool (tag 0).
        if let Some(index) = state
            .mdls
            .iter()
            .position(|m| mdl_address(m) == base && m.live)
        {
            assert!(
                matches!(state.mdls[index].kind, MdlKind::Pages { pages_live: false }),
                "fake kernel: ExFreePool of an MDL that is not an MmAllocatePagesForMdlEx MDL with its pages freed"
            );
            assert_eq!(
                tag, 0,
                "fake kernel: the MDL is not the driver's tag; ExFreePool passes 0"
            );
            state.mdls[index].live = false;
            state.mdls[index].storage.fill(0xfefe_fefe_fefe_fefe);
            return;
        }
        let index = state
            .pools
            .iter()
            .position(|pool| pool.base == base && pool.live)
            .unwrap_or_else(|| {
                let known = state.pools.iter().any(|pool| pool.base == base)
                    || state.mdls.iter().any(|m| mdl_address(m) == base);
                assert!(!known, "fake kernel: double free of {base:#x}");
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
            Self::live_pool_containing(&state, va, len).is_some()
                || Self::live_pages_containing(&state, va, len).is_some(),
            "fake kernel: MDL for memory that is neither live pool nor live MDL pages (use after free?)"
        );
        if self.fault == Some(Fault::IoAllocateMdl) {
            return null_mut();
        }
        let mdl = new_mdl(va, len, MDL_ALLOCATED_FIXED_SIZE, MdlKind::Allocated);
        let address = mdl_address(&mdl) as PMDL;
        state.mdls.push(mdl);
        address
    }

    unsafe fn mm_build_mdl_for_non_paged_pool(&self, mdl: PMDL) {
        self.call("MmBuildMdlForNonPagedPool");
        let mut state = self.state.borrow_mut();
        let index = Self::live_mdl(&state, mdl, "MmBuildMdlForNonPagedPool");
        let (va, len) = (state.mdls[index].va, state.mdls[index].len);
        let pool = Self::live_pool_containing(&state, va, len)
            .expect("fake kernel: MmBuildMdlForNonPagedPool over memory that is not live pool");
        if self.fault == Some(Fault::MmBuildMdlForNonPagedPool) {
            return;
        }
        let first_page = (va - state.pools[pool].base) / PAGE;
        let backing = Backing {
            memfd: state.pools[pool].memfd,
            len: state.pools[pool].len,
            frames: state.pools[pool].frames[first_page..].to_vec(),
        };
        let record = &mut state.mdls[index];
        let flags = record.flags() | MDL_SOURCE_IS_NONPAGED_POOL;
        record.set_flags(flags);
        record.header().MappedSystemVa = va as PVOID;
        write_pfns(record, &backing.frames);
        record.backing = Some(backing);
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
        self.check_irql(
            DISPATCH_LEVEL,
            0x76,
            "MmMapLockedPagesSpecifyCache(KernelMode)",
        );
        self.check_map_arguments(
            mdl,
            access_mode,
            cache_type,
            requested_address,
            bug_check_on_failure,
            priority,
        );
        let mut state = self.state.borrow_mut();
        let index = Self::live_mdl(&state, mdl, "MmMapLockedPagesSpecifyCache");
        let flags = state.mdls[index].flags();
        if self.verifier.get() {
            verify_map_flags(mdl, flags);
        }
        let backing = state.mdls[index]
            .backing
            .clone()
            .expect("fake kernel: mapping an MDL that describes no locked pages");
        let call = self.maps.get() + 1;
        self.maps.set(call);
        let failing = match self.fault {
            Some(Fault::MmMapLockedPagesSpecifyCache) => call == 1,
            Some(Fault::SecondMapping) => call == 2,
            _ => false,
        };
        if failing {
            return null_mut();
        }
        // The call that makes the driver's second address: the only one of
        // the seed's sequence, the second of the default.
        let last_map = call == 2 || flags & MDL_SOURCE_IS_NONPAGED_POOL != 0;
        // The driver's first address, when this call makes its second.
        let first = || {
            state.mappings.iter().find(|m| m.live).map_or_else(
                || state.pools.iter().find(|p| p.live).expect("the pool").base,
                |m| m.base,
            )
        };
        let (base, owns_pages) = if last_map && self.fault == Some(Fault::SameAddress) {
            // A kernel that hands out an address it already gave: the other one.
            (first(), false)
        } else if last_map && self.fault == Some(Fault::SharedPte) {
            (
                map_shared_in_step(backing.memfd, backing.len, first()),
                true,
            )
        } else if last_map && self.fault == Some(Fault::MappingNotAliased) {
            (map_shared(new_memfd(backing.len), backing.len), true)
        } else {
            (map_shared(backing.memfd, backing.len), true)
        };
        if owns_pages {
            let mut world = self.world.borrow_mut();
            let lie = last_map
                && matches!(
                    self.fault,
                    Some(Fault::MappingNotAliased | Fault::WalkContradicts)
                );
            for (page, frame) in backing.frames.iter().enumerate() {
                let frame = if lie { world.new_page() } else { *frame };
                world.map((base + page * PAGE) as u64, frame);
            }
        }
        if last_map && self.fault == Some(Fault::SharedPte) {
            let mut world = self.world.borrow_mut();
            let first = first() as u64;
            let pde = world
                .read(world.entry_address(first, Level::Pd))
                .expect("the first address's PDE");
            world.set_entry(base as u64, Level::Pd, |_| pde);
        }
        let record = &mut state.mdls[index];
        let mapped = MDL_MAPPED_TO_SYSTEM_VA
            | if flags & MDL_PARTIAL != 0 {
                MDL_PARTIAL_HAS_BEEN_MAPPED
            } else {
                0
            };
        record.set_flags(flags | mapped);
        record.header().MappedSystemVa = base as PVOID;
        state.mappings.push(FakeMapping {
            base,
            len: backing.len,
            mdl: mdl as usize,
            owns_pages,
            live: true,
        });
        base as PVOID
    }

    unsafe fn mm_unmap_locked_pages(&self, base_address: PVOID, mdl: PMDL) {
        self.call("MmUnmapLockedPages");
        let mut state = self.state.borrow_mut();
        let index = Self::live_mdl(&state, mdl, "MmUnmapLockedPages");
        let base = base_address as usize;
        let mapping = state
            .mappings
            .iter()
            .position(|m| m.base == base && m.mdl == mdl as usize && m.live)
            .unwrap_or_else(|| {
                panic!(
                    "fake kernel: unmap of {base:#x}: not mapped with MDL {:#x} (twice?)",
                    mdl as usize
                )
            });
        state.mappings[mapping].live = false;
        if state.mappings[mapping].owns_pages {
            revoke(base, state.mappings[mapping].len);
        }
        let record = &mut state.mdls[index];
        let flags = record.flags() & !(MDL_MAPPED_TO_SYSTEM_VA | MDL_PARTIAL_HAS_BEEN_MAPPED);
        record.set_flags(flags);
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
        assert_eq!(
            state.mdls[index].kind,
            MdlKind::Allocated,
            "fake kernel: IoFreeMdl of an MmAllocatePagesForMdlEx MDL (MmFreePagesFromMdl, then ExFreePool)"
        );
        let flags = state.mdls[index].flags();
        // A partial MDL may carry MAPPED_TO_SYSTEM_VA from its source; only
        // its own mapping (PARTIAL_HAS_BEEN_MAPPED) counts (MmPrepareMdlForReuse).
        let own_mapping = flags & MDL_PARTIAL == 0 || flags & MDL_PARTIAL_HAS_BEEN_MAPPED != 0;
        if flags & MDL_MAPPED_TO_SYSTEM_VA != 0
            && flags & MDL_SOURCE_IS_NONPAGED_POOL == 0
            && own_mapping
            && self.verifier.get()
        {
            bug_check(
                0xB8,
                mdl as u64,
                flags.into(),
                0,
                "IoFreeMdl of an MDL whose pages are still mapped",
            );
        }
        let mapped = state
            .mappings
            .iter()
            .any(|m| m.live && m.mdl == mdl as usize);
        assert!(!mapped, "fake kernel: MDL freed while still mapped");
        state.mdls[index].live = false;
        state.mdls[index].storage.fill(0xfefe_fefe_fefe_fefe);
    }

    fn mm_allocate_pages_for_mdl_ex(
        &self,
        low_address: PHYSICAL_ADDRESS,
        high_address: PHYSICAL_ADDRESS,
        skip_bytes: PHYSICAL_ADDRESS,
        total_bytes: SIZE_T,
        cache_type: MEMORY_CACHING_TYPE,
        flags: ULONG,
    ) -> PMDL {
        self.call("MmAllocatePagesForMdlEx");
        self.check_irql(DISPATCH_LEVEL, 0x7E, "MmAllocatePagesForMdlEx");
        // SAFETY: every bit pattern is a valid QuadPart.
        let quad = |address: PHYSICAL_ADDRESS| unsafe { address.QuadPart };
        let (low, high, skip) = (quad(low_address), quad(high_address), quad(skip_bytes));
        assert_eq!(
            (low, high, skip),
            (0, -1, 0),
            "fake kernel: any physical page, no skip"
        );
        assert_eq!(
            cache_type,
            _MEMORY_CACHING_TYPE::MmCached,
            "fake kernel: MmCached pages"
        );
        assert_eq!(
            flags, MM_ALLOCATE_FULLY_REQUIRED,
            "fake kernel: all or nothing"
        );
        let len = usize::try_from(total_bytes).expect("fits");
        assert!(len > 0 && len % PAGE == 0, "fake kernel: whole pages");
        if self.fault == Some(Fault::MmAllocatePagesForMdlEx) {
            return null_mut();
        }
        let memfd = new_memfd(len);
        let frames: Vec<u64> = {
            let mut world = self.world.borrow_mut();
            (0..len / PAGE).map(|_| world.new_page()).collect()
        };
        // The MDL describes the pages at no virtual address (StartVa 0).
        let mut mdl = new_mdl(
            0,
            len,
            MDL_PAGES_LOCKED,
            MdlKind::Pages { pages_live: true },
        );
        write_pfns(&mut mdl, &frames);
        if self.fault == Some(Fault::ShortPageAllocation) {
            mdl.header().ByteCount = ULONG::try_from(len / 2).expect("fits");
        }
        mdl.backing = Some(Backing { memfd, len, frames });
        let address = mdl_address(&mdl) as PMDL;
        self.state.borrow_mut().mdls.push(mdl);
        address
    }

    unsafe fn mm_free_pages_from_mdl(&self, mdl: PMDL) {
        self.call("MmFreePagesFromMdl");
        self.check_irql(DISPATCH_LEVEL, 0x7E, "MmFreePagesFromMdl");
        let mut state = self.state.borrow_mut();
        let index = Self::live_mdl(&state, mdl, "MmFreePagesFromMdl");
        assert_eq!(
            state.mdls[index].kind,
            MdlKind::Pages { pages_live: true },
            "fake kernel: MmFreePagesFromMdl of an MDL without pages of its own (twice?)"
        );
        assert!(
            !state
                .mappings
                .iter()
                .any(|m| m.live && m.mdl == mdl as usize),
            "fake kernel: pages freed while still mapped"
        );
        assert!(
            !state
                .mdls
                .iter()
                .any(|m| m.live && m.source == Some(mdl as usize)),
            "fake kernel: pages freed while a partial MDL still describes them"
        );
        state.mdls[index].kind = MdlKind::Pages { pages_live: false };
        if let Some(backing) = state.mdls[index].backing.take() {
            // SAFETY: the memfd is ours and closed once.
            unsafe { libc::close(backing.memfd) };
        }
    }

    unsafe fn io_build_partial_mdl(
        &self,
        source: PMDL,
        target: PMDL,
        virtual_address: PVOID,
        length: ULONG,
    ) {
        self.call("IoBuildPartialMdl");
        let mut state = self.state.borrow_mut();
        let from = Self::live_mdl(&state, source, "IoBuildPartialMdl (source)");
        let to = Self::live_mdl(&state, target, "IoBuildPartialMdl (target)");
        let (va, len) = (
            virtual_address as usize,
            usize::try_from(length).expect("fits"),
        );
        let (source_va, source_len) = (state.mdls[from].va, state.mdls[from].len);
        assert!(
            va >= source_va && va + len <= source_va + source_len && len > 0,
            "fake kernel: IoBuildPartialMdl outside its source"
        );
        assert!(
            state.mdls[to].len >= len,
            "fake kernel: IoBuildPartialMdl target too small (TARGET_MDL_TOO_SMALL)"
        );
        let source_flags = state.mdls[from].flags();
        let source_mapped = state.mdls[from].header().MappedSystemVa as usize;
        let backing = state.mdls[from]
            .backing
            .clone()
            .expect("a source with pages");
        let first_page = (va & !(PAGE - 1)).wrapping_sub(source_va & !(PAGE - 1)) / PAGE;
        let frames = backing.frames[first_page..].to_vec();
        let record = &mut state.mdls[to];
        // As IoBuildPartialMdl does (WRK, ReactOS): keep the allocation bits,
        // inherit nonpaged-pool, mapped and page-read, and mark it partial.
        let flags = (record.flags() & (MDL_ALLOCATED_FIXED_SIZE | MDL_ALLOCATED_MUST_SUCCEED))
            | (source_flags
                & (MDL_SOURCE_IS_NONPAGED_POOL | MDL_MAPPED_TO_SYSTEM_VA | MDL_IO_PAGE_READ))
            | MDL_PARTIAL;
        record.set_flags(flags);
        record.header().MappedSystemVa = source_mapped.wrapping_add(va - source_va) as PVOID;
        write_pfns(record, &frames);
        record.backing = Some(Backing { frames, ..backing });
        record.source = Some(source as usize);
    }

    unsafe fn mm_is_driver_verifying(&self, driver: *mut DRIVER_OBJECT) -> LOGICAL {
        self.call("MmIsDriverVerifying");
        assert!(!driver.is_null(), "fake kernel: MmIsDriverVerifying(NULL)");
        LOGICAL::from(self.verifying.get())
    }

    unsafe fn zw_open_key(
        &self,
        key_handle: *mut HANDLE,
        desired_access: ACCESS_MASK,
        object_attributes: *mut OBJECT_ATTRIBUTES,
    ) -> NTSTATUS {
        self.call("ZwOpenKey");
        assert_eq!(
            self.irql.get(),
            0,
            "fake kernel: ZwOpenKey below PASSIVE_LEVEL only"
        );
        // SAFETY: the caller's contract.
        let attributes = unsafe { &*object_attributes };
        assert_eq!(
            usize::try_from(attributes.Length).expect("fits"),
            size_of::<OBJECT_ATTRIBUTES>(),
            "fake kernel: OBJECT_ATTRIBUTES.Length"
        );
        assert_ne!(
            attributes.Attributes & OBJ_KERNEL_HANDLE,
            0,
            "fake kernel: a driver opens kernel handles"
        );
        assert_ne!(
            desired_access & 0x1,
            0,
            "fake kernel: KEY_QUERY_VALUE needed to read values"
        );
        // SAFETY: ObjectName points to a valid UNICODE_STRING (the caller's contract).
        let name = unsafe { read_unicode(attributes.ObjectName) };
        let root = attributes.RootDirectory as usize;
        let handle = if root == 0 {
            assert_eq!(
                name, SERVICE_KEY,
                "fake kernel: the service key is RegistryPath"
            );
            SERVICE_HANDLE
        } else {
            assert_eq!(
                root, SERVICE_HANDLE,
                "fake kernel: relative to an unknown handle"
            );
            assert!(
                self.state.borrow().open_keys.contains(&root),
                "fake kernel: relative to a closed handle"
            );
            if !name.eq_ignore_ascii_case("Parameters") || self.parameters.borrow().is_none() {
                return STATUS_OBJECT_NAME_NOT_FOUND;
            }
            PARAMETERS_HANDLE
        };
        self.state.borrow_mut().open_keys.push(handle);
        // SAFETY: the caller's contract.
        unsafe { key_handle.write(handle as HANDLE) };
        0
    }

    unsafe fn zw_query_value_key(
        &self,
        key_handle: HANDLE,
        value_name: PUNICODE_STRING,
        information_class: KEY_VALUE_INFORMATION_CLASS,
        information: PVOID,
        length: ULONG,
        result_length: *mut ULONG,
    ) -> NTSTATUS {
        self.call("ZwQueryValueKey");
        assert_eq!(
            key_handle as usize, PARAMETERS_HANDLE,
            "fake kernel: values are read from Parameters"
        );
        assert!(
            self.state.borrow().open_keys.contains(&PARAMETERS_HANDLE),
            "fake kernel: closed handle"
        );
        assert_eq!(
            information_class,
            _KEY_VALUE_INFORMATION_CLASS::KeyValuePartialInformation,
            "fake kernel: KeyValuePartialInformation"
        );
        // SAFETY: the caller's contract.
        let name = unsafe { read_unicode(value_name) }.to_ascii_lowercase();
        let parameters = self.parameters.borrow();
        let Some((value_type, data)) = parameters.as_ref().and_then(|p| p.get(&name)) else {
            return STATUS_OBJECT_NAME_NOT_FOUND;
        };
        // KEY_VALUE_PARTIAL_INFORMATION: TitleIndex, Type, DataLength, Data.
        let mut answer = vec![0_u8; 12];
        answer[4..8].copy_from_slice(&value_type.to_le_bytes());
        answer[8..12].copy_from_slice(&u32::try_from(data.len()).expect("fits").to_le_bytes());
        answer.extend_from_slice(data);
        let room = usize::try_from(length).expect("fits");
        let status = if answer.len() > room {
            STATUS_BUFFER_OVERFLOW
        } else {
            0
        };
        let copied = answer.len().min(room);
        // SAFETY: the caller promises `length` writable bytes.
        unsafe { std::ptr::copy_nonoverlapping(answer.as_ptr(), information.cast::<u8>(), copied) };
        // SAFETY: the caller promises a writable ULONG.
        unsafe { result_length.write(ULONG::try_from(answer.len()).expect("fits")) };
        status
    }

    unsafe fn zw_close(&self, handle: HANDLE) -> NTSTATUS {
        self.call("ZwClose");
        let mut state = self.state.borrow_mut();
        let index = state
            .open_keys
            .iter()
            .position(|&open| open == handle as usize)
            .unwrap_or_else(|| {
                panic!("fake kernel: ZwClose of a handle that is not open (twice?)")
            });
        state.open_keys.remove(index);
        0
    }

    unsafe fn ps_lookup_process_by_process_id(
        &self,
        process_id: HANDLE,
        process: *mut PEPROCESS,
    ) -> NTSTATUS {
        self.call("PsLookupProcessByProcessId");
        if self.fault == Some(Fault::PsLookupProcessByProcessId) {
            return STATUS_INVALID_PARAMETER;
        }
        let id = u32::try_from(process_id as usize).unwrap_or(u32::MAX);
        let mut processes = self.processes.borrow_mut();
        let Some(found) = processes.get_mut(&id) else {
            return STATUS_INVALID_PARAMETER;
        };
        found.references += 1;
        let object = std::ptr::from_ref::<u64>(&found.object).cast_mut().cast();
        // SAFETY: the caller promises a writable PEPROCESS.
        unsafe { process.write(object) };
        0
    }

    unsafe fn se_locate_process_image_name(
        &self,
        process: PEPROCESS,
        image_file_name: *mut PUNICODE_STRING,
    ) -> NTSTATUS {
        self.call("SeLocateProcessImageName");
        if self.fault == Some(Fault::SeLocateProcessImageName) {
            return STATUS_INVALID_PARAMETER;
        }
        let processes = self.processes.borrow();
        let found = &processes[&referenced(&processes, process.addr(), "SeLocateProcessImageName")];
        let text: Vec<u16> = found.image.encode_utf16().collect();
        // One allocation, as Windows makes it: the header, then the text.
        let mut storage = vec![0_u64; 2 + text.len().div_ceil(4)].into_boxed_slice();
        let buffer = storage[2..].as_mut_ptr().cast::<u16>();
        // SAFETY: the storage has room for the text after the 16-byte header.
        unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), buffer, text.len()) };
        let bytes = u16::try_from(text.len() * 2).expect("short");
        let header = storage.as_mut_ptr().cast::<UNICODE_STRING>();
        // SAFETY: the storage starts with room for the header, 8-byte aligned.
        unsafe {
            header.write(UNICODE_STRING {
                Length: bytes,
                MaximumLength: bytes,
                Buffer: buffer,
            });
        };
        // SAFETY: the caller promises a writable PUNICODE_STRING.
        unsafe { image_file_name.write(header) };
        self.state.borrow_mut().image_names.push((storage, false));
        0
    }

    unsafe fn ob_dereference_object(&self, object: PVOID) {
        self.call("ObfDereferenceObject");
        let mut processes = self.processes.borrow_mut();
        let id = referenced(&processes, object.addr(), "ObDereferenceObject (twice?)");
        processes.get_mut(&id).expect("found").references -= 1;
    }

    unsafe fn ke_stack_attach_process(&self, process: PRKPROCESS, apc_state: PRKAPC_STATE) {
        self.call("KeStackAttachProcess");
        assert!(
            self.attachment.get().is_none(),
            "fake kernel: attached twice without a detach"
        );
        let processes = self.processes.borrow();
        let found = &processes[&referenced(&processes, process.addr(), "KeStackAttachProcess")];
        let mut world = self.world.borrow_mut();
        let own = std::mem::replace(&mut world.root, found.root);
        self.attachment.set(Some((apc_state as usize, own)));
    }

    unsafe fn ke_unstack_detach_process(&self, apc_state: PRKAPC_STATE) {
        self.call("KeUnstackDetachProcess");
        let (saved, own) = self
            .attachment
            .take()
            .expect("fake kernel: detach without an attach");
        assert_eq!(
            saved, apc_state as usize,
            "fake kernel: detach with another APC state than the attach"
        );
        self.world.borrow_mut().root = own;
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
        if world.arch == world::Arch::Arm64 {
            // Windows: the ASID in both TTBRs (TCR_EL1.A1 takes TTBR1's);
            // TTBR1_EL1 points at the upper half of the top-level page.
            let asid = 0x2a_u64 << 48;
            return PagingRegisters::Arm64(Arm64Registers {
                ttbr0: world.root | asid,
                ttbr1: (world.root + 0x800) | asid,
                tcr: world::WINDOWS_TCR_EL1,
            });
        }
        let la57 = if world.mode == PagingMode::FiveLevel {
            1 << 12
        } else {
            0
        };
        PagingRegisters::X64(X64Registers {
            cr3: world.root | 0x5,   // PCID bits the walker must ignore
            cr4: 0x20 | 0x80 | la57, // PAE, PGE
            efer: 0xd01,             // SCE, LME, LMA, NXE
            max_phys_bits: world::MAX_PHYS_BITS,
            gigabyte_pages: true,
        })
    }
}
