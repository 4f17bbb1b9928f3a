//! The outcome of one walk, for every architecture: a translation, or a
//! fault that says where the walk stopped and why, with the entries it read.

use core::fmt;

use super::address::{PhysAddr, VirtAddr};
use super::architecture::Architecture;
use super::path::Path;

/// A successful translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation<A: Architecture> {
    /// The translated address, as given.
    pub va: VirtAddr,
    /// Its physical address.
    pub pa: PhysAddr,
    /// The page (or block) that maps it.
    pub mapping: A::Mapping,
    /// Every entry read, top level first.
    pub path: Path<A>,
}

/// A failed translation: where the walk stopped, why, and the entries it read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault<A: Architecture, E> {
    /// The address that was translated.
    pub va: VirtAddr,
    /// The entries read before and at the one that stopped the walk.
    pub path: Path<A>,
    /// Why the walk stopped, in the architecture's words.
    pub kind: A::FaultKind<E>,
}

impl<A: Architecture, E> fmt::Display for Fault<A, E>
where
    A::FaultKind<E>: fmt::Display,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} does not translate: {}", self.va, self.kind)
    }
}

impl<A: Architecture, E: fmt::Debug> core::error::Error for Fault<A, E> where
    A::FaultKind<E>: fmt::Display + fmt::Debug
{
}
