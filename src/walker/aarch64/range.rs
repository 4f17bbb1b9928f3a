//! Every 4 KiB page of a range, reusing the walk before as the TLB and the
//! walk caches do: inside a block no read, inside one level 3 table one
//! descriptor read per page.

use super::descriptor::{Descriptor, Level};
use super::fault::FaultKind;
use super::outcome::{Page, Path};
use super::registers::{Paging, VaRange, mask};
use super::translate::{Access, Mapping, TableRestrictions};
use crate::walker::{PageSize, PhysAddr, PhysicalMemory, VirtAddr};

/// Why a range cannot be translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// A bound is in neither range (its bits above the range's size do not
    /// all copy bit 55).
    #[error("range bound {0} is outside both translation ranges")]
    OutsideRanges(VirtAddr),
    /// The bounds are in different ranges (TTBR0's and TTBR1's).
    #[error("range bounds {0} and {1} are in different translation ranges")]
    DifferentRanges(VirtAddr, VirtAddr),
    /// The first address is above the last.
    #[error("range start {0} is above its end {1}")]
    Reversed(VirtAddr, VirtAddr),
}

/// Iterator over every 4 KiB page of a range; see [`Paging::translate_range`].
pub struct PageTranslations<'m, M: PhysicalMemory + ?Sized> {
    paging: Paging,
    memory: &'m M,
    range: VaRange,
    /// Input address of the next page, and of the range's last page.
    next: u64,
    last: u64,
    done: bool,
    /// The block the last walk ended in (the TLB).
    block: Option<Mapping>,
    /// The level 3 table of the last walk: the input address bits above
    /// 21 it serves, its address, and what the tables above take away.
    level_3: Option<(u64, u64, TableRestrictions)>,
}

impl Paging {
    // Deliberately the signature of x86_64/range.rs's: one API on both.
    /// Every 4 KiB page that meets `first..=last`, in ascending order, with
    /// the mapping [`Paging::translate`] finds for it. Inside a level 3
    /// table a page costs one descriptor read; inside a block, none. Both
    /// bounds must be in one range; tags are ignored where TBI is set.
    ///
    /// # Errors
    /// When a bound is in neither range, the bounds are in different ranges,
    /// or `first` is above `last`.
    pub fn translate_range<'m, M: PhysicalMemory + ?Sized>(
        &self,
        memory: &'m M,
        first: VirtAddr,
        last: VirtAddr,
    ) -> Result<PageTranslations<'m, M>, RangeError> {
        let (range, start) = self.input_address(first)?;
        let (last_range, end) = self.input_address(last)?;
        if range != last_range {
            return Err(RangeError::DifferentRanges(first, last));
        }
        if start > end {
            return Err(RangeError::Reversed(first, last));
        }
        Ok(PageTranslations {
            paging: *self,
            memory,
            range,
            next: start & !0xfff,
            last: end & !0xfff,
            done: false,
            block: None,
            level_3: None,
        })
    }

    /// The range of `va` and its input address; a range whose walks are
    /// disabled is still a range (its pages all fault).
    const fn input_address(&self, va: VirtAddr) -> Result<(VaRange, u64), RangeError> {
        match self.select::<()>(va.0) {
            Ok(selected) => Ok(selected),
            Err(FaultKind::WalksDisabled { range }) => {
                Ok((range, va.0 & mask(0, self.range(range).va_bits - 1)))
            }
            Err(_) => Err(RangeError::OutsideRanges(va)),
        }
    }
}

impl<M: PhysicalMemory + ?Sized> PageTranslations<'_, M> {
    const fn va(&self, ia: u64) -> VirtAddr {
        match self.range {
            VaRange::Lower => VirtAddr(ia),
            VaRange::Upper => VirtAddr(ia | (u64::MAX << self.paging.range(self.range).va_bits)),
        }
    }

    /// The mapping of the page at input address `ia`, from the caches when
    /// they cover it.
    #[inline]
    fn mapping_at(&mut self, ia: u64) -> Option<Mapping> {
        let va = self.va(ia);
        if let Some(block) = self.block
            && va.0.wrapping_sub(block.va.0) < block.size.bytes()
        {
            return Some(block);
        }
        if let Some((tag, table, restrictions)) = self.level_3
            && ia >> Level::L2.shift() == tag
        {
            return self.level_3_page(table, restrictions, ia);
        }
        let (mapping, path) = match self.paging.translate(self.memory, va) {
            Ok(t) => (Some(t.mapping), t.path),
            Err(fault) => (None, fault.path),
        };
        self.block = mapping.filter(|m| m.level() != Level::L3);
        self.level_3 = self.level_3_table(ia, &path);
        mapping
    }

    /// The page descriptor for `ia` in the level 3 `table`: one read. As
    /// [`Paging::translate`] decides: valid, bits 1:0 = 0b11, the address
    /// inside the PA size.
    #[inline]
    fn level_3_page(
        &self,
        table: u64,
        restrictions: TableRestrictions,
        ia: u64,
    ) -> Option<Mapping> {
        let raw = self
            .memory
            .read_u64(PhysAddr(table + 8 * Level::L3.index(ia)))
            .ok()?;
        let usable = 0b11 | (mask(0, 47) & !mask(0, self.paging.pa_bits() - 1));
        if raw & usable != 0b11 {
            return None;
        }
        Some(self.paging.mapping(
            self.range,
            ia,
            PageSize::Size4K,
            raw & mask(12, 47),
            Descriptor(raw),
            restrictions,
        ))
    }

    /// The level 3 table a walk reached, if it did.
    fn level_3_table(&self, ia: u64, path: &Path) -> Option<(u64, u64, TableRestrictions)> {
        let leaf = path.iter().last().filter(|v| v.level == Level::L3)?;
        let disabled = self
            .paging
            .range(self.range)
            .hierarchical_permissions_disabled;
        let restrictions = path
            .iter()
            .filter(|v| v.level != Level::L3)
            .fold(TableRestrictions::default(), |r, v| {
                r.narrowed_by(v.entry, disabled)
            });
        Some((ia >> Level::L2.shift(), leaf.addr.0 & !0xfff, restrictions))
    }
}

impl<M: PhysicalMemory + ?Sized> PageTranslations<'_, M> {
    /// Folds the pages from `self.next` to the end of the cached level 3
    /// `table` or of the range: one descriptor read a page, the state in
    /// locals, the mapping built as [`Paging::translate`] builds it.
    #[inline]
    fn fold_level_3<B, F: FnMut(B, Page) -> B>(
        &mut self,
        table: u64,
        restrictions: TableRestrictions,
        init: B,
        f: &mut F,
    ) -> B {
        let memory = self.memory;
        let range = self.range;
        let usable = 0b11 | (mask(0, 47) & !mask(0, self.paging.pa_bits() - 1));
        // What an upper-range address has above its input address.
        let high = self.va(0).0;
        let hardware_access_flag = self.paging.hardware_access_flag();
        let first = self.next;
        let end = (first | 0x1f_f000).min(self.last);
        let (mut acc, mut ia, mut at) = (init, first, table + 8 * Level::L3.index(first));
        while ia <= end {
            let va = VirtAddr(ia | high);
            let mapping = match memory.read_u64(PhysAddr(at)) {
                Ok(raw) if raw & usable == 0b11 => Some(Mapping {
                    va,
                    pa: PhysAddr(raw & mask(12, 47)),
                    size: PageSize::Size4K,
                    range,
                    access: Access::of(Descriptor(raw), restrictions),
                    descriptor: Descriptor(raw),
                    table: restrictions,
                    access_flag_fault: raw & Descriptor::ACCESSED == 0 && !hardware_access_flag,
                }),
                _ => None,
            };
            acc = f(acc, Page { va, mapping });
            ia += 0x1000;
            at += 8;
        }
        if end >= self.last {
            self.done = true;
        } else {
            self.next = end + 0x1000;
        }
        acc
    }
}

impl<M: PhysicalMemory + ?Sized> Iterator for PageTranslations<'_, M> {
    type Item = Page;

    #[inline]
    fn next(&mut self) -> Option<Page> {
        if self.done {
            return None;
        }
        let ia = self.next;
        if ia >= self.last {
            self.done = true;
        } else {
            self.next = ia + 0x1000;
        }
        Some(Page {
            va: self.va(ia),
            mapping: self.mapping_at(ia),
        })
    }

    /// As `next` page by page, with the pages of a cached level 3 table in
    /// a tight loop: one descriptor read each.
    #[inline]
    fn fold<B, F: FnMut(B, Page) -> B>(mut self, init: B, mut f: F) -> B {
        let mut acc = init;
        loop {
            if let (false, Some((tag, table, restrictions))) = (self.done, self.level_3)
                && self.next >> Level::L2.shift() == tag
            {
                acc = self.fold_level_3(table, restrictions, acc, &mut f);
                continue;
            }
            let Some(page) = self.next() else {
                return acc;
            };
            acc = f(acc, page);
        }
    }
}
