//! Ownership wrappers: a [`Mapping`] owns the MDL it maps, which owns the
//! memory it describes. Dropping one releases it before what it owns, so the
//! teardown is the reverse of the setup by construction, on the error paths
//! of `DriverEntry` as in `DriverUnload`:
//!
//! - default: [`PagesMdl`] (pages) < [`PartialMdl`] (a second MDL of them) <
//!   `Mapping` of the partial MDL < `Mapping` of the pages' own MDL;
//! - the seed's sequence: [`PoolBuffer`] < [`Mdl`] < `Mapping` of it.

use core::marker::PhantomData;
use core::ptr::{NonNull, null_mut};

use super::api::KernelApi;
use super::error::DriverError;
use super::log::LogFormat;
use crate::ffi::{
    _MEMORY_CACHING_TYPE, _MM_PAGE_PRIORITY, _MODE, DPFLTR_ERROR_LEVEL, DPFLTR_INFO_LEVEL,
    KPROCESSOR_MODE, MDL, MDL_SOURCE_IS_NONPAGED_POOL, MM_ALLOCATE_FULLY_REQUIRED,
    MdlMappingNoExecute, PHYSICAL_ADDRESS, POOL_FLAG_NON_PAGED, PVOID, SIZE_T, ULONG,
};

/// x64 page size; the buffer is one page so `ExAllocatePool2` page-aligns it.
pub const PAGE_SIZE: usize = 0x1000;
#[allow(clippy::cast_possible_truncation, reason = "a page is 4 KiB")]
const PAGE_BYTES: ULONG = PAGE_SIZE as ULONG;

const FALSE: u8 = 0;
#[allow(clippy::cast_possible_truncation, reason = "KernelMode is 0")]
const KERNEL_MODE: KPROCESSOR_MODE = _MODE::KernelMode as KPROCESSOR_MODE;
#[allow(clippy::cast_sign_loss, reason = "NormalPagePriority is 16")]
const NX_NORMAL_PRIORITY: ULONG =
    _MM_PAGE_PRIORITY::NormalPagePriority as ULONG | MdlMappingNoExecute;

const POOL_ALLOCATED: LogFormat =
    LogFormat::new(c"vmwalk: ExAllocatePool2(NonPagedNx, 4 KiB) -> pool buffer %p\n");
const POOL_FAILED: LogFormat = LogFormat::new(c"vmwalk: ExAllocatePool2 failed (NULL)\n");
const POOL_FREED: LogFormat = LogFormat::new(c"vmwalk: ExFreePoolWithTag freed pool buffer %p\n");
const MDL_ALLOCATED: LogFormat = LogFormat::new(c"vmwalk: IoAllocateMdl -> MDL %p\n");
const MDL_FAILED: LogFormat = LogFormat::new(c"vmwalk: IoAllocateMdl failed (NULL)\n");
const MDL_BUILT: LogFormat =
    LogFormat::new(c"vmwalk: MmBuildMdlForNonPagedPool: MDL %p MdlFlags 0x%08X\n");
const MDL_NOT_BUILT: LogFormat = LogFormat::new(
    c"vmwalk: MmBuildMdlForNonPagedPool failed: MDL %p MdlFlags 0x%08X lacks SOURCE_IS_NONPAGED_POOL\n",
);
const MDL_FREED: LogFormat = LogFormat::new(c"vmwalk: IoFreeMdl freed MDL %p\n");
const MAPPED: LogFormat = LogFormat::new(
    c"vmwalk: MmMapLockedPagesSpecifyCache(KernelMode, MmCached, NX) -> mapping %p of MDL %p\n",
);
const PAGES_ALLOCATED: LogFormat =
    LogFormat::new(c"vmwalk: MmAllocatePagesForMdlEx(4 KiB, MmCached) -> MDL %p MdlFlags 0x%08X\n");
const PAGES_FAILED: LogFormat = LogFormat::new(c"vmwalk: MmAllocatePagesForMdlEx failed (NULL)\n");
const PAGES_SHORT: LogFormat = LogFormat::new(
    c"vmwalk: MmAllocatePagesForMdlEx: MDL %p describes 0x%08X bytes, not one page\n",
);
const PAGES_FREED: LogFormat = LogFormat::new(
    c"vmwalk: MmFreePagesFromMdl and ExFreePoolWithTag(0) freed the pages and MDL %p\n",
);
const PARTIAL_BUILT: LogFormat =
    LogFormat::new(c"vmwalk: IoBuildPartialMdl: MDL %p MdlFlags 0x%08X\n");
const MAP_FAILED: LogFormat =
    LogFormat::new(c"vmwalk: MmMapLockedPagesSpecifyCache failed (NULL) for MDL %p\n");
const UNMAPPED: LogFormat = LogFormat::new(c"vmwalk: MmUnmapLockedPages unmapped %p\n");

/// An address as a `DbgPrintEx` argument.
pub(super) fn address<T>(pointer: NonNull<T>) -> u64 {
    pointer.as_ptr().addr() as u64
}

/// Nonpaged, non-executable pool from `ExAllocatePool2`, freed on drop.
pub struct PoolBuffer<'k, K: KernelApi> {
    kernel: &'k K,
    base: NonNull<u8>,
    len: usize,
    tag: ULONG,
}

impl<'k, K: KernelApi> PoolBuffer<'k, K> {
    /// Allocates `len` bytes of `POOL_FLAG_NON_PAGED` (NX) pool, zeroed.
    ///
    /// # Errors
    /// [`DriverError::PoolAllocation`] when the kernel returns NULL.
    pub fn allocate(kernel: &'k K, len: usize, tag: ULONG) -> Result<Self, DriverError> {
        let bytes = SIZE_T::try_from(len).map_err(|_| DriverError::PoolAllocation)?;
        let raw = kernel.ex_allocate_pool2(POOL_FLAG_NON_PAGED, bytes, tag);
        let Some(base) = NonNull::new(raw.cast::<u8>()) else {
            kernel.dbg_print(DPFLTR_ERROR_LEVEL, &POOL_FAILED, [0, 0]);
            return Err(DriverError::PoolAllocation);
        };
        kernel.dbg_print(DPFLTR_INFO_LEVEL, &POOL_ALLOCATED, [address(base), 0]);
        Ok(Self {
            kernel,
            base,
            len,
            tag,
        })
    }

    /// The buffer's kernel virtual address.
    #[must_use]
    pub const fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// The buffer's size in bytes.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Always false: the kernel never returns an empty allocation.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<K: KernelApi> Drop for PoolBuffer<'_, K> {
    fn drop(&mut self) {
        // SAFETY: `base` came from ExAllocatePool2 with `tag` and is freed only
        // here; any Mdl describing it owns this buffer, so it is gone already.
        unsafe {
            self.kernel
                .ex_free_pool_with_tag(self.base.as_ptr().cast(), self.tag);
        }
        self.kernel
            .dbg_print(DPFLTR_INFO_LEVEL, &POOL_FREED, [address(self.base), 0]);
    }
}

/// An MDL built for the pool buffer it owns, freed on drop.
pub struct Mdl<'k, K: KernelApi> {
    buffer: PoolBuffer<'k, K>,
    mdl: NonNull<MDL>,
}

impl<'k, K: KernelApi> Mdl<'k, K> {
    /// `IoAllocateMdl` for the whole buffer, then `MmBuildMdlForNonPagedPool`.
    ///
    /// # Errors
    /// [`DriverError::MdlAllocation`] or [`DriverError::MdlNotBuilt`]; the
    /// buffer (and the MDL, if allocated) is freed before returning.
    pub fn describe(buffer: PoolBuffer<'k, K>) -> Result<Self, DriverError> {
        let kernel = buffer.kernel;
        let length = ULONG::try_from(buffer.len()).map_err(|_| DriverError::MdlAllocation)?;
        // SAFETY: the buffer is live nonpaged pool of `length` bytes and
        // outlives the MDL, which will own it.
        let raw = unsafe {
            kernel.io_allocate_mdl(
                buffer.base().as_ptr().cast(),
                length,
                FALSE,
                FALSE,
                null_mut(),
            )
        };
        let Some(mdl) = NonNull::new(raw) else {
            kernel.dbg_print(DPFLTR_ERROR_LEVEL, &MDL_FAILED, [0, 0]);
            return Err(DriverError::MdlAllocation);
        };
        kernel.dbg_print(DPFLTR_INFO_LEVEL, &MDL_ALLOCATED, [address(mdl), 0]);
        let described = Self { buffer, mdl };
        // SAFETY: the MDL is live and describes the live nonpaged buffer.
        unsafe { kernel.mm_build_mdl_for_non_paged_pool(mdl.as_ptr()) };
        let flags = described.flags();
        if flags & MDL_SOURCE_IS_NONPAGED_POOL == 0 {
            kernel.dbg_print(
                DPFLTR_ERROR_LEVEL,
                &MDL_NOT_BUILT,
                [address(mdl), flags.into()],
            );
            return Err(DriverError::MdlNotBuilt);
        }
        kernel.dbg_print(DPFLTR_INFO_LEVEL, &MDL_BUILT, [address(mdl), flags.into()]);
        Ok(described)
    }

    /// The MDL's `MdlFlags`.
    #[must_use]
    pub fn flags(&self) -> u32 {
        // SAFETY: the MDL is live while `self` is; the kernel writes it only
        // inside the calls this wrapper makes.
        mdl_flags(unsafe { self.mdl.as_ref() })
    }

    /// The MDL (for the kernel calls that take a `PMDL`).
    #[must_use]
    pub const fn as_ptr(&self) -> NonNull<MDL> {
        self.mdl
    }

    /// The frame of the MDL's first page: the PFN array follows the header.
    #[must_use]
    pub const fn first_pfn(&self) -> u64 {
        // SAFETY: the MDL is live and built (`describe` checked
        // SOURCE_IS_NONPAGED_POOL), so its PFN array is written.
        unsafe { first_pfn_of(self.mdl) }
    }

    /// The pool buffer the MDL describes.
    #[must_use]
    pub const fn buffer(&self) -> &PoolBuffer<'k, K> {
        &self.buffer
    }
}

impl<K: KernelApi> Drop for Mdl<'_, K> {
    fn drop(&mut self) {
        // SAFETY: the MDL is live and freed only here; any Mapping of it owns
        // this Mdl, so it is unmapped already.
        unsafe { self.buffer.kernel.io_free_mdl(self.mdl.as_ptr()) };
        self.buffer
            .kernel
            .dbg_print(DPFLTR_INFO_LEVEL, &MDL_FREED, [address(self.mdl), 0]);
    }
}

/// What a [`Mapping`] maps: an owner of an MDL whose pages are locked.
pub trait Mappable<'k, K: KernelApi> {
    /// The kernel the MDL came from.
    fn kernel(&self) -> &'k K;
    /// The MDL to map; the same for the whole life of `self`.
    fn mdl_to_map(&self) -> NonNull<MDL>;
    /// The frame of the first page the MDL describes (its PFN array).
    fn first_pfn(&self) -> u64;
}

/// A kernel mapping of the pages a [`Mappable`] describes, unmapped on drop,
/// before what it owns is released.
pub struct Mapping<'k, K: KernelApi, M: Mappable<'k, K>> {
    mdl: M,
    base: NonNull<u8>,
    _kernel: PhantomData<&'k K>,
}

impl<'k, K: KernelApi, M: Mappable<'k, K>> Mapping<'k, K, M> {
    /// `MmMapLockedPagesSpecifyCache(KernelMode, MmCached, NULL, FALSE,
    /// NormalPagePriority | MdlMappingNoExecute)` of `mdl.mdl_to_map()`.
    ///
    /// # Errors
    /// [`DriverError::Mapping`]; `mdl` (and what it owns) is released before returning.
    pub fn map(mdl: M) -> Result<Self, DriverError> {
        let kernel = mdl.kernel();
        let to_map = mdl.mdl_to_map();
        // SAFETY: the MDL is live and describes locked pages (its owner's
        // contract); BugCheckOnFailure is FALSE, so failure returns NULL.
        let raw = unsafe {
            kernel.mm_map_locked_pages_specify_cache(
                to_map.as_ptr(),
                KERNEL_MODE,
                _MEMORY_CACHING_TYPE::MmCached,
                null_mut(),
                0,
                NX_NORMAL_PRIORITY,
            )
        };
        let Some(base) = NonNull::new(raw.cast::<u8>()) else {
            kernel.dbg_print(DPFLTR_ERROR_LEVEL, &MAP_FAILED, [address(to_map), 0]);
            return Err(DriverError::Mapping);
        };
        kernel.dbg_print(DPFLTR_INFO_LEVEL, &MAPPED, [address(base), address(to_map)]);
        Ok(Self {
            mdl,
            base,
            _kernel: PhantomData,
        })
    }

    /// The mapping's kernel virtual address.
    #[must_use]
    pub const fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// What the mapping owns.
    #[must_use]
    pub const fn mdl(&self) -> &M {
        &self.mdl
    }

    /// The kernel the mapping was made with.
    #[must_use]
    pub fn kernel(&self) -> &'k K {
        self.mdl.kernel()
    }
}

impl<'k, K: KernelApi, M: Mappable<'k, K>> Drop for Mapping<'k, K, M> {
    fn drop(&mut self) {
        let kernel = self.mdl.kernel();
        // SAFETY: `base` came from mapping this MDL, which `self.mdl` keeps
        // live, and is unmapped only here.
        unsafe {
            kernel.mm_unmap_locked_pages(self.base.as_ptr().cast(), self.mdl.mdl_to_map().as_ptr());
        };
        kernel.dbg_print(DPFLTR_INFO_LEVEL, &UNMAPPED, [address(self.base), 0]);
    }
}

impl<'k, K: KernelApi> Mappable<'k, K> for Mdl<'k, K> {
    fn kernel(&self) -> &'k K {
        self.buffer.kernel
    }

    fn mdl_to_map(&self) -> NonNull<MDL> {
        self.mdl
    }

    fn first_pfn(&self) -> u64 {
        Self::first_pfn(self)
    }
}

/// The frame of an MDL's first page: the PFN array follows the header.
///
/// # Safety
/// `mdl` is live and its PFN array is written (built, partial, or from
/// `MmAllocatePagesForMdlEx`).
const unsafe fn first_pfn_of(mdl: NonNull<MDL>) -> u64 {
    // SAFETY: the PFN array starts right after the MDL header, inside the
    // MDL's allocation (an MDL of a non-empty buffer has at least one PFN).
    let pfn_array = unsafe { mdl.as_ptr().add(1) }.cast::<u64>();
    // SAFETY: the caller guarantees the array is written; it is 8-byte aligned.
    unsafe { pfn_array.read() }
}

/// One page from `MmAllocatePagesForMdlEx`: locked, not mapped, described by
/// the MDL the call returns. Dropping frees the pages, then the MDL.
pub struct PagesMdl<'k, K: KernelApi> {
    kernel: &'k K,
    mdl: NonNull<MDL>,
}

impl<'k, K: KernelApi> PagesMdl<'k, K> {
    /// `MmAllocatePagesForMdlEx(0, ~0, 0, 4 KiB, MmCached, MM_ALLOCATE_FULLY_REQUIRED)`.
    ///
    /// # Errors
    /// [`DriverError::PageAllocation`] when the kernel returns NULL or fewer bytes.
    pub fn allocate(kernel: &'k K) -> Result<Self, DriverError> {
        let any = |quad| PHYSICAL_ADDRESS { QuadPart: quad };
        let raw = kernel.mm_allocate_pages_for_mdl_ex(
            any(0),
            any(-1),
            any(0),
            PAGE_SIZE as SIZE_T,
            _MEMORY_CACHING_TYPE::MmCached,
            MM_ALLOCATE_FULLY_REQUIRED,
        );
        let Some(mdl) = NonNull::new(raw) else {
            kernel.dbg_print(DPFLTR_ERROR_LEVEL, &PAGES_FAILED, [0, 0]);
            return Err(DriverError::PageAllocation);
        };
        let pages = Self { kernel, mdl };
        // SAFETY: the MDL is live while `pages` is.
        let header = unsafe { mdl.as_ref() };
        let (bytes, flags) = (header.ByteCount, mdl_flags(header));
        if bytes as usize != PAGE_SIZE {
            kernel.dbg_print(
                DPFLTR_ERROR_LEVEL,
                &PAGES_SHORT,
                [address(mdl), bytes.into()],
            );
            return Err(DriverError::PageAllocation);
        }
        kernel.dbg_print(
            DPFLTR_INFO_LEVEL,
            &PAGES_ALLOCATED,
            [address(mdl), flags.into()],
        );
        Ok(pages)
    }

    /// `MmGetMdlVirtualAddress`: what the MDL says its buffer's address is
    /// (no mapping; `IoBuildPartialMdl` takes offsets from it).
    const fn virtual_address(&self) -> PVOID {
        // SAFETY: the MDL is live while `self` is.
        let header = unsafe { self.mdl.as_ref() };
        header.StartVa.wrapping_byte_add(header.ByteOffset as usize)
    }
}

impl<K: KernelApi> Drop for PagesMdl<'_, K> {
    fn drop(&mut self) {
        // SAFETY: the MDL came from MmAllocatePagesForMdlEx; whatever mapped
        // or described its pages owned this value, so it is gone already.
        unsafe { self.kernel.mm_free_pages_from_mdl(self.mdl.as_ptr()) };
        // SAFETY: MmFreePagesFromMdl leaves the MDL itself to the caller,
        // to free with ExFreePool, which is ExFreePoolWithTag(P, 0) (wdm.h).
        unsafe {
            self.kernel
                .ex_free_pool_with_tag(self.mdl.as_ptr().cast(), 0);
        }
        self.kernel
            .dbg_print(DPFLTR_INFO_LEVEL, &PAGES_FREED, [address(self.mdl), 0]);
    }
}

/// A second MDL for the pages of a [`PagesMdl`], from `IoAllocateMdl` and
/// `IoBuildPartialMdl`, built while the pages are still unmapped. It owns
/// the pages: dropping frees this MDL, then the pages.
pub struct PartialMdl<'k, K: KernelApi> {
    mdl: NonNull<MDL>,
    source: PagesMdl<'k, K>,
}

impl<'k, K: KernelApi> PartialMdl<'k, K> {
    /// `IoAllocateMdl(MmGetMdlVirtualAddress(source), 4 KiB)`, then
    /// `IoBuildPartialMdl(source, it, same address, 4 KiB)`.
    ///
    /// `IoBuildPartialMdl` copies `MDL_MAPPED_TO_SYSTEM_VA` from its source,
    /// so the source must not be mapped yet: mapping a partial MDL that
    /// carries that flag is Driver Verifier's bug check 0xC4, 0xB2.
    ///
    /// # Errors
    /// [`DriverError::MdlAllocation`]; the pages are freed before returning.
    pub fn build(source: PagesMdl<'k, K>) -> Result<Self, DriverError> {
        let kernel = source.kernel;
        let va = source.virtual_address();
        // SAFETY: `va` is where `source` says its page is, one page long; the
        // MDL is only described by it, never touched through it.
        let raw = unsafe { kernel.io_allocate_mdl(va, PAGE_BYTES, FALSE, FALSE, null_mut()) };
        let Some(mdl) = NonNull::new(raw) else {
            kernel.dbg_print(DPFLTR_ERROR_LEVEL, &MDL_FAILED, [0, 0]);
            return Err(DriverError::MdlAllocation);
        };
        kernel.dbg_print(DPFLTR_INFO_LEVEL, &MDL_ALLOCATED, [address(mdl), 0]);
        let partial = Self { mdl, source };
        // SAFETY: both MDLs are live; the target was allocated for this
        // range, which is exactly what the source describes.
        unsafe {
            kernel.io_build_partial_mdl(partial.source.mdl.as_ptr(), mdl.as_ptr(), va, PAGE_BYTES);
        };
        // SAFETY: the MDL is live while `partial` is.
        let flags = mdl_flags(unsafe { mdl.as_ref() });
        kernel.dbg_print(
            DPFLTR_INFO_LEVEL,
            &PARTIAL_BUILT,
            [address(mdl), flags.into()],
        );
        Ok(partial)
    }
}

impl<K: KernelApi> Drop for PartialMdl<'_, K> {
    fn drop(&mut self) {
        // SAFETY: the MDL is live and freed only here; a mapping of it owned
        // this value, so it is unmapped already. The source drops after.
        unsafe { self.source.kernel.io_free_mdl(self.mdl.as_ptr()) };
        self.source
            .kernel
            .dbg_print(DPFLTR_INFO_LEVEL, &MDL_FREED, [address(self.mdl), 0]);
    }
}

impl<'k, K: KernelApi> Mappable<'k, K> for PartialMdl<'k, K> {
    fn kernel(&self) -> &'k K {
        self.source.kernel
    }

    fn mdl_to_map(&self) -> NonNull<MDL> {
        self.mdl
    }

    fn first_pfn(&self) -> u64 {
        // SAFETY: IoBuildPartialMdl wrote the PFN array.
        unsafe { first_pfn_of(self.mdl) }
    }
}

/// Once the partial MDL is mapped, the next mapping maps its source: the
/// pages' own MDL. Unmapping that comes first on drop, as it should.
impl<'k, K: KernelApi> Mappable<'k, K> for Mapping<'k, K, PartialMdl<'k, K>> {
    fn kernel(&self) -> &'k K {
        self.mdl.source.kernel
    }

    fn mdl_to_map(&self) -> NonNull<MDL> {
        self.mdl.source.mdl
    }

    fn first_pfn(&self) -> u64 {
        // SAFETY: MmAllocatePagesForMdlEx wrote the PFN array.
        unsafe { first_pfn_of(self.mdl.source.mdl) }
    }
}

fn mdl_flags(header: &MDL) -> u32 {
    u32::from(header.MdlFlags.cast_unsigned())
}
