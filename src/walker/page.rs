//! One 4 KiB page of a ranged translation, for every architecture.

use super::address::{PhysAddr, VirtAddr};
use super::architecture::{Architecture, Leaf};

/// One 4 KiB page of a ranged translation (the architectures'
/// `Paging::translate_range`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page<A: Architecture> {
    /// Virtual address of the page's first byte.
    pub va: VirtAddr,
    /// What maps it, as `Paging::translate` finds it, or `None` where that
    /// faults (translate the page to learn why).
    pub mapping: Option<A::Mapping>,
}

impl<A: Architecture> Page<A> {
    /// The physical address of the page's first byte, if it is mapped.
    #[must_use]
    // Measured (callgrind, arm64_range): `Option::map` here cost three more
    // instructions a page than this match.
    #[allow(clippy::manual_map, clippy::option_if_let_else)]
    #[inline]
    pub fn pa(&self) -> Option<PhysAddr> {
        match &self.mapping {
            Some(m) => Some(PhysAddr(
                m.pa().0.wrapping_add(self.va.0.wrapping_sub(m.va().0)),
            )),
            None => None,
        }
    }
}
