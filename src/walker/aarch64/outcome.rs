//! The engine's walk records, named for ARM64.

use super::registers::Paging;

// Deliberately as in x86_64/outcome.rs: each architecture names the engine's
// types for itself.

/// A failed ARM64 translation.
pub type Fault<E> = crate::walker::Fault<Paging, E>;
/// A successful ARM64 translation.
pub type Translation = crate::walker::Translation<Paging>;
/// The descriptors an ARM64 walk read.
pub type Path = crate::walker::Path<Paging>;
/// One descriptor an ARM64 walk read.
pub type Visited = crate::walker::Visited<Paging>;
/// Every ARM64 block and page; see [`Paging::leaves`].
pub type Leaves<'m, M> = crate::walker::Leaves<'m, Paging, M>;
/// Merged ARM64 blocks and pages; see [`Leaves::runs`](crate::walker::Leaves::runs).
pub type Runs<'m, M> = crate::walker::Runs<'m, Paging, M>;
/// One page of an ARM64 ranged translation.
pub type Page = crate::walker::Page<Paging>;
