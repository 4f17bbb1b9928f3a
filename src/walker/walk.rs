//! The level loop: one address walked step by step from the top-level table,
//! saying why it stops. Each architecture's fast path (a walk that only
//! succeeds) comes first and falls back to this one to learn why.

use super::address::{PhysAddr, VirtAddr};
use super::architecture::{Architecture, Step};
use super::fault::{Fault, Translation};
use super::memory::PhysicalMemory;
use super::path::{Path, Visited};

/// Translates `va` under `arch`'s rules, entry by entry.
///
/// # Errors
/// A [`Fault`] saying why `va` does not translate, with the entries read.
// No heap in the kernel: a fault carries its walk by value.
#[allow(clippy::result_large_err)]
#[cold]
#[inline(never)]
pub fn walk<A: Architecture, M: PhysicalMemory + ?Sized>(
    arch: &A,
    memory: &M,
    va: VirtAddr,
) -> Result<Translation<A>, Fault<A, M::Error>> {
    let mut path = Path::new();
    let fault = |path, kind| Fault { va, path, kind };
    let (space, ia) = match arch.select(va) {
        Ok(selected) => selected,
        Err(kind) => return Err(fault(path, kind)),
    };
    let mut table = match arch.root(space) {
        Ok(root) => root,
        Err(kind) => return Err(fault(path, kind)),
    };
    let mut above = arch.unrestricted();
    for &level in arch.levels(space) {
        let addr = PhysAddr(table.0 + 8 * ((ia >> A::shift(level)) & 0x1ff));
        let entry = match memory.read_u64(addr) {
            Ok(raw) => A::entry(raw),
            Err(error) => return Err(fault(path, A::read_failed(level, addr, error))),
        };
        path.push(Visited { level, addr, entry });
        match arch.step(level, entry) {
            Err(kind) => return Err(fault(path, kind)),
            Ok(Step::Table(next)) => {
                above = arch.narrowed(space, above, entry);
                table = next;
            }
            Ok(Step::Leaf(size, pa)) => {
                let mapping = arch.mapping(space, ia, size, pa, entry, above);
                return Ok(Translation {
                    va,
                    pa: PhysAddr(pa.0 | (ia & (size.bytes() - 1))),
                    mapping,
                    path,
                });
            }
        }
    }
    // Unreachable: `step` ends every walk at the last level. Report it
    // rather than panic.
    let (level, entry) = path.last().map_or_else(
        || (A::Level::default(), A::Entry::default()),
        |v| (v.level, v.entry),
    );
    Err(fault(path, A::no_leaf(level, entry)))
}
