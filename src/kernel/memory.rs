//! Ownership wrappers: a [`Mapping`] owns the [`Mdl`] it maps, which owns the
//! [`PoolBuffer`] it describes. Dropping one releases it before what it owns,
//! so unmap, free MDL, free pool is the only possible teardown order, on the
//! error paths of `DriverEntry` as in `DriverUnload`.

use core::ptr::{NonNull, null_mut};

use super::{DriverError, KernelApi, LogFormat};
use crate::ffi::{
    _MEMORY_CACHING_TYPE, _MM_PAGE_PRIORITY, _MODE, DPFLTR_ERROR_LEVEL, DPFLTR_INFO_LEVEL,
    KPROCESSOR_MODE, MDL, MDL_SOURCE_IS_NONPAGED_POOL, MdlMappingNoExecute, POOL_FLAG_NON_PAGED,
    SIZE_T, ULONG,
};

/// x64 page size; the buffer is one page so `ExAllocatePool2` page-aligns it.
pub const PAGE_SIZE: usize = 0x1000;

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
const MAP_FAILED: LogFormat =
    LogFormat::new(c"vmwalk: MmMapLockedPagesSpecifyCache failed (NULL) for MDL %p\n");
const UNMAPPED: LogFormat = LogFormat::new(c"vmwalk: MmUnmapLockedPages unmapped %p\n");
const ALIASED: LogFormat = LogFormat::new(
    c"vmwalk: alias check passed: pattern written at pool %p reads back at mapping %p\n",
);
const NOT_ALIASED: LogFormat = LogFormat::new(
    c"vmwalk: alias check failed: word 0x%08X of mapping %p differs from the pool buffer\n",
);

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
        let flags = unsafe { self.mdl.as_ref() }.MdlFlags;
        u32::from(flags.cast_unsigned())
    }

    /// The MDL (for the kernel calls that take a `PMDL`).
    #[must_use]
    pub const fn as_ptr(&self) -> NonNull<MDL> {
        self.mdl
    }

    /// The frame of the MDL's first page: the PFN array follows the header.
    #[must_use]
    pub const fn first_pfn(&self) -> u64 {
        // SAFETY: the PFN array starts right after the MDL header, inside the
        // MDL's allocation (it has one PFN per page of the non-empty buffer).
        let pfn_array = unsafe { self.mdl.as_ptr().add(1) }.cast::<u64>();
        // SAFETY: the MDL is live and built (`describe` checked
        // SOURCE_IS_NONPAGED_POOL), so the first PFN is written and 8-byte aligned.
        unsafe { pfn_array.read() }
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

/// A second kernel mapping of the MDL's pages, unmapped on drop.
pub struct Mapping<'k, K: KernelApi> {
    mdl: Mdl<'k, K>,
    base: NonNull<u8>,
}

impl<'k, K: KernelApi> Mapping<'k, K> {
    /// `MmMapLockedPagesSpecifyCache(KernelMode, MmCached, NULL, FALSE,
    /// NormalPagePriority | MdlMappingNoExecute)`.
    ///
    /// # Errors
    /// [`DriverError::Mapping`]; the MDL and the buffer are freed before returning.
    pub fn map(mdl: Mdl<'k, K>) -> Result<Self, DriverError> {
        let kernel = mdl.buffer.kernel;
        // SAFETY: the MDL is live and was built for nonpaged pool, whose pages
        // are resident; BugCheckOnFailure is FALSE, so failure returns NULL.
        let raw = unsafe {
            kernel.mm_map_locked_pages_specify_cache(
                mdl.mdl.as_ptr(),
                KERNEL_MODE,
                _MEMORY_CACHING_TYPE::MmCached,
                null_mut(),
                0,
                NX_NORMAL_PRIORITY,
            )
        };
        let Some(base) = NonNull::new(raw.cast::<u8>()) else {
            kernel.dbg_print(DPFLTR_ERROR_LEVEL, &MAP_FAILED, [address(mdl.mdl), 0]);
            return Err(DriverError::Mapping);
        };
        kernel.dbg_print(
            DPFLTR_INFO_LEVEL,
            &MAPPED,
            [address(base), address(mdl.mdl)],
        );
        Ok(Self { mdl, base })
    }

    /// Writes a pattern through the pool address and reads it back through
    /// the mapping: equal words prove both addresses reach the same pages.
    ///
    /// # Errors
    /// [`DriverError::NotAliased`] at the first word that differs.
    #[allow(
        clippy::cast_ptr_alignment,
        reason = "a one-page pool buffer and its mapping are page aligned"
    )]
    pub fn check_alias(&self) -> Result<(), DriverError> {
        let kernel = self.mdl.buffer.kernel;
        let pool = self.mdl.buffer.base.as_ptr().cast::<u64>();
        let mapped = self.base.as_ptr().cast::<u64>();
        let words = self.mdl.buffer.len / size_of::<u64>();
        for index in 0..words {
            // SAFETY: `index` < `words`, so the word lies inside the live,
            // 8-byte aligned buffer. Volatile: the compiler cannot know that
            // the two addresses alias, so it must not reorder or elide.
            unsafe { pool.wrapping_add(index).write_volatile(pattern(index)) };
        }
        for index in 0..words {
            // SAFETY: the mapping covers the whole buffer and stays mapped
            // while `self` lives.
            let read = unsafe { mapped.wrapping_add(index).read_volatile() };
            if read != pattern(index) {
                let index = index as u64;
                kernel.dbg_print(
                    DPFLTR_ERROR_LEVEL,
                    &NOT_ALIASED,
                    [index, address(self.base)],
                );
                return Err(DriverError::NotAliased);
            }
        }
        let pool = self.mdl.buffer.base;
        kernel.dbg_print(
            DPFLTR_INFO_LEVEL,
            &ALIASED,
            [address(pool), address(self.base)],
        );
        Ok(())
    }

    /// The mapping's kernel virtual address.
    #[must_use]
    pub const fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// The mapped MDL.
    #[must_use]
    pub const fn mdl(&self) -> &Mdl<'k, K> {
        &self.mdl
    }

    /// The kernel the mapping was made with.
    #[must_use]
    pub const fn kernel(&self) -> &'k K {
        self.mdl.buffer.kernel
    }
}

impl<K: KernelApi> Drop for Mapping<'_, K> {
    fn drop(&mut self) {
        let kernel = self.mdl.buffer.kernel;
        // SAFETY: `base` came from mapping this (live) MDL and is unmapped only here.
        unsafe { kernel.mm_unmap_locked_pages(self.base.as_ptr().cast(), self.mdl.mdl.as_ptr()) };
        kernel.dbg_print(DPFLTR_INFO_LEVEL, &UNMAPPED, [address(self.base), 0]);
    }
}

/// Word `index` of the alias-check pattern: "vmwalk" plus the index, so a
/// stale or shifted page cannot match by accident.
const fn pattern(index: usize) -> u64 {
    0x766d_7761_6c6b_0000 ^ index as u64
}
