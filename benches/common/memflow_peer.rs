//! memflow 0.2.4 over an image, as `benches/memflow.rs` and
//! `tests/memflow_agrees.rs` use it: its memory over the bytes (physical
//! address = offset) and its batch translation.

use memflow::prelude::v1::*;

/// Where memflow's upper half begins: it sign-extends bit 47, on both
/// architectures.
pub const UPPER_HALF: u64 = 0xffff_8000_0000_0000;

/// memflow's physical memory over a byte slice.
pub type Memory<'a> = MappedPhysicalMemory<&'a [u8], MemoryMap<&'a [u8]>>;

/// memflow's view of `bytes`: physical address = offset.
pub fn memory(bytes: &[u8]) -> Memory<'_> {
    let mut map: MemoryMap<&[u8]> = MemoryMap::new();
    map.push(Address::null(), bytes);
    MappedPhysicalMemory::with_info(map)
}

/// memflow's batch translation of `vas` (`virt_to_phys_iter`), one call per
/// half (a call spanning both loops over every 512 GiB slot between them):
/// each address's physical address, or `None`, in `out` (cleared first).
pub fn batch<T: VirtualTranslate3>(
    memory: &mut Memory<'_>,
    vat: &mut DirectTranslate,
    translator: &T,
    vas: &[u64],
    out: &mut Vec<Option<u64>>,
) {
    let mut found: Vec<CTup3<PhysicalAddress, Address, umem>> = Vec::with_capacity(vas.len());
    let mut failed: Vec<(Error, CTup3<Address, Address, umem>)> = Vec::new();
    for upper in [false, true] {
        let half = vas
            .iter()
            .enumerate()
            .filter(|&(_, &va)| (va >= UPPER_HALF) == upper)
            .map(|(i, &va)| CTup3(Address::from(va), Address::from(i as u64), 1 as umem));
        vat.virt_to_phys_iter(
            memory,
            translator,
            half,
            &mut found.from_extend(),
            &mut failed.from_extend(),
        );
    }
    out.clear();
    out.resize(vas.len(), None);
    for CTup3(pa, index, _) in found {
        if let Some(slot) = usize::try_from(index.to_umem())
            .ok()
            .and_then(|i| out.get_mut(i))
        {
            *slot = Some(pa.address().to_umem());
        }
    }
}

/// memflow's one-address translation: the physical address, or `None`.
pub fn one<T: VirtualTranslate3>(memory: &mut Memory<'_>, translator: &T, va: u64) -> Option<u64> {
    translator
        .virt_to_phys(memory, Address::from(va))
        .ok()
        .map(|pa| pa.address().to_umem())
}
