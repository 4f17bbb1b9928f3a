//! The engine's walk records, named for x86-64.

use super::registers::Paging;

// Deliberately as in aarch64/outcome.rs: each architecture names the engine's
// types for itself.

/// A failed x86-64 translation.
pub type Fault<E> = crate::walker::Fault<Paging, E>;
/// A successful x86-64 translation.
pub type Translation = crate::walker::Translation<Paging>;
/// The entries an x86-64 walk read.
pub type Path = crate::walker::Path<Paging>;
/// One entry an x86-64 walk read.
pub type Visited = crate::walker::Visited<Paging>;
/// Every present x86-64 leaf; see [`Paging::leaves`].
pub type Leaves<'m, M> = crate::walker::Leaves<'m, Paging, M>;
/// Merged x86-64 leaves; see [`Leaves::runs`](crate::walker::Leaves::runs).
pub type Runs<'m, M> = crate::walker::Runs<'m, Paging, M>;
/// One page of an x86-64 ranged translation.
pub type Page = crate::walker::Page<Paging>;
