//! One physical page at two kernel virtual addresses, made by either
//! [`MappingMethod`], and the proof that the two addresses alias.

use core::ptr::NonNull;

use super::api::KernelApi;
use super::error::DriverError;
use super::log::LogFormat;
use super::memory::address;
use super::memory::{Mappable, Mapping, Mdl, PAGE_SIZE, PagesMdl, PartialMdl, PoolBuffer};
use crate::ffi::{DPFLTR_ERROR_LEVEL, DPFLTR_INFO_LEVEL, DPFLTR_WARNING_LEVEL, ULONG};

/// How the driver makes its second address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MappingMethod {
    /// The default, clean under Driver Verifier: a page from
    /// `MmAllocatePagesForMdlEx`, a partial MDL of it (`IoBuildPartialMdl`),
    /// and each MDL mapped once with `MmMapLockedPagesSpecifyCache`.
    PartialMdl,
    /// The design's first sequence, opt-in: nonpaged pool, `IoAllocateMdl`,
    /// `MmBuildMdlForNonPagedPool`, and `MmMapLockedPagesSpecifyCache` of
    /// that MDL, which the function's documentation forbids.
    NonPagedPoolMdl,
}

impl MappingMethod {
    /// The registry spelling (`MappingMethod` under the service's `Parameters` key).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::PartialMdl => "PartialMdl",
            Self::NonPagedPoolMdl => "NonPagedPoolMdl",
        }
    }
}

const SEED_RULE: LogFormat = LogFormat::new(
    c"vmwalk: MappingMethod NonPagedPoolMdl: the MmBuildMdlForNonPagedPool page forbids what comes next, a second system mapping of its MDL with MmMapLockedPagesSpecifyCache\n",
);
const SEED_VERIFIER: LogFormat = LogFormat::new(
    c"vmwalk: under Driver Verifier this call stops the machine: bug check 0xC4 (DRIVER_VERIFIER_DETECTED_VIOLATION), parameter 1 0xB2 (MDL already mapped to a system address)\n",
);
const SAME_ADDRESS: LogFormat = LogFormat::new(
    c"vmwalk: alias check failed: the second address %p is the first one, %p: nothing was proven\n",
);
const ALIASED: LogFormat =
    LogFormat::new(c"vmwalk: alias check passed: pattern written at %p reads back at %p\n");
const NOT_ALIASED: LogFormat = LogFormat::new(
    c"vmwalk: alias check failed: word 0x%08X at %p differs from what was written at the first address\n",
);

/// The page and its two addresses; dropping it tears everything down in
/// the reverse order of its making.
pub enum Alias<'k, K: KernelApi> {
    /// [`MappingMethod::PartialMdl`]: the partial MDL mapped first, then the
    /// pages' own MDL.
    Pages(Mapping<'k, K, Mapping<'k, K, PartialMdl<'k, K>>>),
    /// [`MappingMethod::NonPagedPoolMdl`]: the pool and its MDL's mapping.
    Pool(Mapping<'k, K, Mdl<'k, K>>),
}

impl<'k, K: KernelApi> Alias<'k, K> {
    /// Makes the page and its two addresses with `method`; `tag` tags pool.
    ///
    /// # Errors
    /// The step that failed, with everything made before it released.
    pub fn create(kernel: &'k K, method: MappingMethod, tag: ULONG) -> Result<Self, DriverError> {
        match method {
            MappingMethod::PartialMdl => {
                let partial = PartialMdl::build(PagesMdl::allocate(kernel)?)?;
                Ok(Self::Pages(Mapping::map(Mapping::map(partial)?)?))
            }
            MappingMethod::NonPagedPoolMdl => {
                let mdl = Mdl::describe(PoolBuffer::allocate(kernel, PAGE_SIZE, tag)?)?;
                kernel.dbg_print(DPFLTR_WARNING_LEVEL, &SEED_RULE, [0, 0]);
                kernel.dbg_print(DPFLTR_WARNING_LEVEL, &SEED_VERIFIER, [0, 0]);
                Ok(Self::Pool(Mapping::map(mdl)?))
            }
        }
    }

    /// The method that made it.
    #[must_use]
    pub const fn method(&self) -> MappingMethod {
        match self {
            Self::Pages(_) => MappingMethod::PartialMdl,
            Self::Pool(_) => MappingMethod::NonPagedPoolMdl,
        }
    }

    /// The kernel it was made with.
    #[must_use]
    pub fn kernel(&self) -> &'k K {
        match self {
            Self::Pages(mapping) => mapping.kernel(),
            Self::Pool(mapping) => mapping.kernel(),
        }
    }

    /// The first address: the pages' own mapping, or the pool.
    #[must_use]
    pub const fn first(&self) -> NonNull<u8> {
        match self {
            Self::Pages(mapping) => mapping.base(),
            Self::Pool(mapping) => mapping.mdl().buffer().base(),
        }
    }

    /// The second address: the partial MDL's mapping, or the pool MDL's.
    #[must_use]
    pub const fn second(&self) -> NonNull<u8> {
        match self {
            Self::Pages(mapping) => mapping.mdl().base(),
            Self::Pool(mapping) => mapping.base(),
        }
    }

    /// What the driver's lines call the two addresses (one word each).
    #[must_use]
    pub const fn names(&self) -> (&'static str, &'static str) {
        match self {
            Self::Pages(_) => ("mdl-mapping", "partial-mapping"),
            Self::Pool(_) => ("pool", "mapping"),
        }
    }

    /// The page's frame, from the MDL's PFN array.
    #[must_use]
    pub fn pfn(&self) -> u64 {
        match self {
            Self::Pages(mapping) => mapping.mdl().first_pfn(),
            Self::Pool(mapping) => mapping.mdl().first_pfn(),
        }
    }

    /// The two addresses differ, and a pattern written through the first
    /// reads back through the second.
    ///
    /// # Errors
    /// [`DriverError::SameAddress`] or [`DriverError::NotAliased`].
    #[allow(clippy::cast_ptr_alignment, reason = "both addresses are page aligned")]
    pub fn check(&self) -> Result<(), DriverError> {
        let kernel = self.kernel();
        let (first, second) = (self.first(), self.second());
        if first == second {
            kernel.dbg_print(
                DPFLTR_ERROR_LEVEL,
                &SAME_ADDRESS,
                [address(second), address(first)],
            );
            return Err(DriverError::SameAddress);
        }
        let (written, read) = (first.as_ptr().cast::<u64>(), second.as_ptr().cast::<u64>());
        let words = PAGE_SIZE / size_of::<u64>();
        for index in 0..words {
            // SAFETY: `index` < `words`: inside the live, mapped page.
            // Volatile: the compiler cannot know that the two addresses
            // alias, so it must not reorder or elide.
            unsafe { written.wrapping_add(index).write_volatile(pattern(index)) };
        }
        for index in 0..words {
            // SAFETY: the second address maps the whole page while `self` lives.
            let value = unsafe { read.wrapping_add(index).read_volatile() };
            if value != pattern(index) {
                let index = index as u64;
                kernel.dbg_print(DPFLTR_ERROR_LEVEL, &NOT_ALIASED, [index, address(second)]);
                return Err(DriverError::NotAliased);
            }
        }
        kernel.dbg_print(
            DPFLTR_INFO_LEVEL,
            &ALIASED,
            [address(first), address(second)],
        );
        Ok(())
    }
}

/// Word `index` of the alias-check pattern: "vmwalk" plus the index, so a
/// stale or shifted page cannot match by accident.
const fn pattern(index: usize) -> u64 {
    0x766d_7761_6c6b_0000 ^ index as u64
}
