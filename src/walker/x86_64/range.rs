//! Translation of many addresses that reuses the entries of the walk before,
//! as the CPU's paging-structure caches and TLB do (Intel SDM vol. 3A, 4.10):
//! translating a range page by page reads one PTE per page, not a whole walk.

use super::entry::{PageTableEntry, address_mask};
use super::level::{Level, PagingMode};
use super::outcome::{Fault, Page, Translation};
use super::registers::Paging;
use super::rules::RangeError;
use super::translate::{Access, Mapping, PresentKind};
use crate::walker::{PageSize, PhysAddr, PhysicalMemory, VirtAddr};

/// Translates addresses like [`Paging::translate`], with the same answers.
///
/// It keeps the entries of its last walk and starts the next one from the
/// deepest table it shares with it: nearby addresses cost one read, or none.
///
/// Like the CPU's caches, it assumes the tables do not change under it: after
/// the tables change, call [`CachedWalker::flush`] (the CPU's `MOV CR3`).
pub struct CachedWalker<'m, M: PhysicalMemory + ?Sized> {
    paging: Paging,
    memory: &'m M,
    /// P and the reserved bits: of these, a usable entry sets exactly P.
    p_and_reserved: u64,
    /// The address bits of a table entry.
    frame: u64,
    /// Linear address of the last walk.
    linear: u64,
    /// The entries the last walk read, top first, and their addresses.
    entries: [u64; 5],
    addrs: [u64; 5],
    /// `entries[..tables]` lead to tables (the paging-structure caches).
    tables: u32,
    /// The leaf the last walk ended on, at depth `tables` (the TLB).
    leaf: Option<PageSize>,
}

impl<'m, M: PhysicalMemory + ?Sized> CachedWalker<'m, M> {
    /// A walker over `memory` with empty caches.
    #[must_use]
    pub const fn new(paging: Paging, memory: &'m M) -> Self {
        Self {
            paging,
            memory,
            p_and_reserved: paging.reserved_in_every_entry() | PageTableEntry::PRESENT,
            frame: address_mask(12, paging.max_phys_bits),
            linear: 0,
            entries: [0; 5],
            addrs: [0; 5],
            tables: 0,
            leaf: None,
        }
    }

    /// Forgets every cached entry.
    pub const fn flush(&mut self) {
        self.tables = 0;
        self.leaf = None;
    }

    /// Translates `va`: the same answer as [`Paging::translate`] on the
    /// memory as it was when the cached entries were read.
    ///
    /// # Errors
    /// A [`Fault`] saying why `va` does not translate, with the entries read.
    // No heap in the kernel: a fault carries its walk by value.
    #[allow(clippy::result_large_err)]
    #[inline]
    pub fn translate(&mut self, va: VirtAddr) -> Result<Translation, Fault<M::Error>> {
        let mode = self.paging.mode();
        if !mode.is_canonical(va) {
            return self.paging.translate_or_fault(self.memory, va);
        }
        self.translate_linear(va, mode.linear(va))
    }

    /// [`Self::translate`] of a canonical `va` whose linear address is `linear`.
    #[allow(clippy::result_large_err)]
    #[inline]
    fn translate_linear(
        &mut self,
        va: VirtAddr,
        linear: u64,
    ) -> Result<Translation, Fault<M::Error>> {
        match self.walk(linear) {
            Some(size) => {
                let depth = self.tables as usize;
                let (addrs, entries) = (&self.addrs, &self.entries);
                let translation = self
                    .paging
                    .translation(va, linear, size, depth, addrs, entries);
                Ok(translation)
            }
            // A fault: the walk again, step by step, says why.
            None => self.paging.translate_or_fault(self.memory, va),
        }
    }

    /// The mapping of the page at `linear`, or `None` if it does not translate.
    #[inline]
    fn mapping_linear(&mut self, linear: u64) -> Option<Mapping> {
        let size = self.walk(linear)?;
        let depth = self.tables as usize;
        Some(
            self.paging
                .mapping_of_walk(linear, size, depth, &self.entries),
        )
    }

    /// Walks to `linear`'s leaf, from the deepest cached table, leaving its
    /// entries in the caches; the leaf's size, or `None` on a fault.
    #[inline]
    fn walk(&mut self, linear: u64) -> Option<PageSize> {
        // One copy per mode: the shifts become constants.
        match self.paging.mode() {
            PagingMode::FourLevel => self.walk_in::<4>(linear),
            PagingMode::FiveLevel => self.walk_in::<5>(linear),
        }
    }

    // One copy per mode, inlined into it: as `Paging::translate`'s walk.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn walk_in<const LEVELS: u32>(&mut self, linear: u64) -> Option<PageSize> {
        // An entry is still valid when none of the bits that select it (its
        // index and those above) changed.
        let changed = linear ^ self.linear;
        self.linear = linear;
        if let Some(size) = self.leaf.filter(|size| changed < size.bytes()) {
            return Some(size);
        }
        // Entries at depths below `same` select the same tables as before:
        // the top changed bit is below their index bits.
        let same = if changed < 0x1000 {
            LEVELS
        } else {
            let top_bit = changed.checked_ilog2().unwrap_or(12);
            (LEVELS - 1).saturating_sub((top_bit - 12) / 9)
        };
        let mut depth = same.min(self.tables);
        self.leaf = None;
        let mut table = match depth.checked_sub(1) {
            Some(above) => self.entries.get(above as usize).copied().unwrap_or(0) & self.frame,
            None => self.paging.root().0,
        };
        while depth < LEVELS {
            self.tables = depth;
            let shift = 12 + 9 * (LEVELS - 1 - depth);
            let addr = table + ((linear >> shift) & 0x1ff) * 8;
            let (Ok(entry), Some(slot), Some(at)) = (
                self.memory.read_u64(PhysAddr(addr)),
                self.entries.get_mut(depth as usize),
                self.addrs.get_mut(depth as usize),
            ) else {
                break;
            };
            (*slot, *at) = (entry, addr);
            if entry & self.p_and_reserved != PageTableEntry::PRESENT {
                break;
            }
            match self.paging.kind_of_present(Level::indexed_by(shift), entry) {
                PresentKind::Leaf(size) => {
                    self.leaf = Some(size);
                    return Some(size);
                }
                PresentKind::Table => {
                    table = entry & self.frame;
                    depth += 1;
                }
                PresentKind::Faulting => break,
            }
        }
        None
    }
}

/// Iterator over every 4 KiB page of a range; see [`Paging::translate_range`].
///
/// Internal iteration (`fold`, `for_each`, `sum`...) runs through each PT in
/// a tighter loop than `next` does.
pub struct PageTranslations<'m, M: PhysicalMemory + ?Sized> {
    walker: CachedWalker<'m, M>,
    /// Set while the pages run through a PT on 4 KiB leaves.
    run: Option<PtRun>,
    /// The large page the last page was in (the TLB).
    large: Option<Mapping>,
    /// Linear address of the next page.
    next: u64,
    /// Last linear address of the range.
    last: u64,
    done: bool,
}

/// Where a run of 4 KiB leaves in one PT goes on.
#[derive(Clone, Copy)]
struct PtRun {
    /// Physical address of the next page's PTE.
    next_pte: u64,
    /// AND and OR of the entries above the PT.
    above_all: u64,
    above_any: u64,
}

impl Paging {
    /// A [`CachedWalker`] over `memory`.
    #[must_use]
    pub const fn cached_walker<'m, M: PhysicalMemory + ?Sized>(
        &self,
        memory: &'m M,
    ) -> CachedWalker<'m, M> {
        CachedWalker::new(*self, memory)
    }

    // Deliberately the signature of aarch64/range.rs's: one API on both.
    /// Every 4 KiB page that meets `first..=last`, in ascending order, with
    /// the mapping [`Paging::translate`] finds for it. A page costs one
    /// read of its PTE (none inside a large page): the entries above are
    /// reused, as the CPU's paging-structure caches do.
    ///
    /// # Errors
    /// When a bound is not canonical or `first` is above `last`.
    pub fn translate_range<'m, M: PhysicalMemory + ?Sized>(
        &self,
        memory: &'m M,
        first: VirtAddr,
        last: VirtAddr,
    ) -> Result<PageTranslations<'m, M>, RangeError> {
        let (start, end) = self.linear_range(first, last)?;
        Ok(PageTranslations {
            walker: self.cached_walker(memory),
            run: None,
            large: None,
            next: start & !0xfff,
            last: end,
            done: false,
        })
    }
}

impl<M: PhysicalMemory + ?Sized> PageTranslations<'_, M> {
    /// The page after the last one, if its PTE in the same PT maps it.
    #[inline]
    fn next_in_run(&mut self, run: PtRun, va: VirtAddr) -> Option<Mapping> {
        let walker = &self.walker;
        let entry = walker.memory.read_u64(PhysAddr(run.next_pte)).ok()?;
        if entry & walker.p_and_reserved != PageTableEntry::PRESENT {
            return None;
        }
        self.run = Some(PtRun {
            next_pte: run.next_pte + 8,
            ..run
        });
        let (all, any) = (run.above_all & entry, run.above_any | entry);
        Some(Mapping {
            va,
            pa: PhysAddr(entry & walker.frame),
            size: PageSize::Size4K,
            access: Access {
                writable: all & PageTableEntry::WRITABLE != 0,
                user: all & PageTableEntry::USER != 0,
                executable: !(walker.paging.nx_enabled && any & PageTableEntry::NO_EXECUTE != 0),
            },
            entry: PageTableEntry(entry),
        })
    }

    /// The page at `linear` by a (cached) walk; starts a run on a 4 KiB leaf.
    #[inline]
    fn walk(&mut self, linear: u64) -> Option<Mapping> {
        let mapping = self.walker.mapping_linear(linear);
        let depth = self.walker.tables as usize;
        self.run = match (mapping, self.walker.addrs.get(depth)) {
            (Some(m), Some(&pte)) if m.size == PageSize::Size4K => {
                let above = self.walker.entries.iter().take(depth);
                Some(PtRun {
                    next_pte: pte + 8,
                    above_all: above.clone().fold(u64::MAX, |all, e| all & e),
                    above_any: above.fold(0, |any, e| any | e),
                })
            }
            _ => None,
        };
        self.large = mapping.filter(|m| m.size != PageSize::Size4K);
        mapping
    }
}

impl<M: PhysicalMemory + ?Sized> PageTranslations<'_, M> {
    /// Folds the pages of a PT run, from `self.next` to the end of the PT or
    /// the range, or to the first PTE that does not map its page. The loop
    /// keeps its state in locals: one PTE read and a few operations a page.
    #[inline]
    fn fold_run<B, F: FnMut(B, Page) -> B>(&mut self, run: PtRun, init: B, f: &mut F) -> B {
        let memory = self.walker.memory;
        let (p_and_reserved, frame) = (self.walker.p_and_reserved, self.walker.frame);
        let nx_enabled = self.walker.paging.nx_enabled;
        let mode = self.walker.paging.mode();
        let first = self.next;
        // The sign extension is the same for every page of a PT.
        let high = mode.canonicalize(first).wrapping_sub(first);
        let end = self.last.min(first | 0x1f_ffff);
        let (mut acc, mut linear, mut pte) = (init, first, run.next_pte);
        while linear <= end {
            let Ok(entry) = memory.read_u64(PhysAddr(pte)) else {
                break;
            };
            if entry & p_and_reserved != PageTableEntry::PRESENT {
                break;
            }
            let (all, any) = (run.above_all & entry, run.above_any | entry);
            let va = VirtAddr(linear.wrapping_add(high));
            let mapping = Mapping {
                va,
                pa: PhysAddr(entry & frame),
                size: PageSize::Size4K,
                access: Access {
                    writable: all & PageTableEntry::WRITABLE != 0,
                    user: all & PageTableEntry::USER != 0,
                    executable: !(nx_enabled && any & PageTableEntry::NO_EXECUTE != 0),
                },
                entry: PageTableEntry(entry),
            };
            acc = f(
                acc,
                Page {
                    va,
                    mapping: Some(mapping),
                },
            );
            linear += 0x1000;
            pte += 8;
        }
        self.next = linear;
        // Stopped early: the walk says what maps (or not) the next page.
        self.run = (linear > end).then_some(PtRun {
            next_pte: pte,
            ..run
        });
        acc
    }
}

impl<M: PhysicalMemory + ?Sized> PageTranslations<'_, M> {
    /// Folds the pages from `self.next` that `large` (the last page's leaf)
    /// still maps: no read at all.
    #[inline]
    fn fold_large<B, F: FnMut(B, Page) -> B>(&mut self, large: Mapping, init: B, f: &mut F) -> B {
        let first = self.next;
        let high = self
            .walker
            .paging
            .mode()
            .canonicalize(first)
            .wrapping_sub(first);
        let end_of_leaf = large.va.0.wrapping_sub(high) + (large.size.bytes() - 1);
        let end = self.last.min(end_of_leaf);
        let (mut acc, mut linear) = (init, first);
        // Also when `first` is past the leaf: then nothing is folded here.
        while linear <= end && linear >= large.va.0.wrapping_sub(high) {
            let va = VirtAddr(linear.wrapping_add(high));
            acc = f(
                acc,
                Page {
                    va,
                    mapping: Some(large),
                },
            );
            linear += 0x1000;
        }
        self.next = linear;
        acc
    }
}

impl<M: PhysicalMemory + ?Sized> Iterator for PageTranslations<'_, M> {
    type Item = Page;

    #[inline]
    fn next(&mut self) -> Option<Page> {
        if self.done || self.next > self.last {
            return None;
        }
        let linear = self.next;
        let va = VirtAddr(self.walker.paging.mode().canonicalize(linear));
        // The next PTE of the same PT: one read, no walk.
        let in_run = self.run.filter(|_| linear & 0x1f_f000 != 0);
        let in_large = self
            .large
            .filter(|m| va.0.wrapping_sub(m.va.0) < m.size.bytes());
        let mapping = match (in_large, in_run.and_then(|run| self.next_in_run(run, va))) {
            (Some(mapping), _) | (None, Some(mapping)) => Some(mapping),
            (None, None) => self.walk(linear),
        };
        match self.next.checked_add(0x1000) {
            Some(next) => self.next = next,
            None => self.done = true,
        }
        Some(Page { va, mapping })
    }

    #[inline]
    fn fold<B, F: FnMut(B, Page) -> B>(mut self, init: B, mut f: F) -> B {
        let mut acc = init;
        loop {
            let in_run = self
                .run
                .filter(|_| !self.done && self.next <= self.last && self.next & 0x1f_f000 != 0);
            if let Some(run) = in_run {
                acc = self.fold_run(run, acc, &mut f);
                continue;
            }
            if let Some(mapping) = self.large.filter(|_| !self.done && self.next <= self.last) {
                acc = self.fold_large(mapping, acc, &mut f);
            }
            match self.next() {
                Some(page) => acc = f(acc, page),
                None => return acc,
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let pages = if self.done || self.next > self.last {
            0
        } else {
            usize::try_from((self.last - self.next) / 0x1000 + 1).unwrap_or(usize::MAX)
        };
        (pages, (pages < usize::MAX).then_some(pages))
    }
}
