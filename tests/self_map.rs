//! The self-map: found in the top-level table, and the virtual address it
//! gives for each level's entry really maps that entry.

use vmwalk::walker::{ImageMemory, Level, Paging, PagingMode, SelfMap, VirtAddr};

/// Before Windows 10 1607 the self-map was always PML4 entry 0x1ED; these
/// bases are the ones `!pte` and Windows Internals show for it.
#[test]
fn index_0x1ed_gives_the_classic_windows_bases() {
    let map = SelfMap::at(0x1ed, PagingMode::FourLevel);
    assert_eq!(map.pte_base(), VirtAddr(0xffff_f680_0000_0000));
    assert_eq!(
        map.entry_address(VirtAddr(0), Level::Pd),
        VirtAddr(0xffff_f6fb_4000_0000)
    );
    assert_eq!(
        map.entry_address(VirtAddr(0), Level::Pdpt),
        VirtAddr(0xffff_f6fb_7da0_0000)
    );
    assert_eq!(
        map.entry_address(VirtAddr(0), Level::Pml4),
        VirtAddr(0xffff_f6fb_7dbe_d000)
    );
    // The PXE of the self-map's own slot is the self-map entry itself.
    let own = map.entry_address(VirtAddr(0xffff_f680_0000_0000), Level::Pml4);
    assert_eq!(own, VirtAddr(0xffff_f6fb_7dbe_d000 + 0x1ed * 8));
}

/// A small image: the top table at 0x1000 with the self-map at `index`, and
/// one 4 KiB page mapped at `va` through tables at 0x2000.. .
fn image_with_self_map(mode: PagingMode, index: usize, va: u64) -> Vec<u8> {
    let levels = mode.levels();
    let mut image = vec![0u8; 0x1000 * (levels.len() + 2)];
    let mut put = |table: usize, slot: usize, value: u64| {
        let at = table * 0x1000 + slot * 8;
        image[at..at + 8].copy_from_slice(&value.to_le_bytes());
    };
    put(1, index, 0x1000 | 0x63); // present, writable, accessed, dirty: like Windows' self-map
    for (depth, level) in levels.iter().enumerate() {
        let next = if depth + 1 == levels.len() {
            0x1000 * (levels.len() + 1)
        } else {
            0x1000 * (depth + 2)
        };
        put(depth + 1, level.index(va), next as u64 | 0x3);
    }
    image
}

#[test]
fn every_entry_is_visible_where_the_self_map_says() {
    for mode in [PagingMode::FourLevel, PagingMode::FiveLevel] {
        let va = mode.canonicalize(0x0123_4567_89ab_c000 & ((1 << mode.address_bits()) - 1));
        for index in [1, 0x100, 0x1ed, 0x1ff] {
            if mode.levels()[0].index(va) == index {
                continue;
            }
            let image = image_with_self_map(mode, index, va);
            let memory = ImageMemory::new(&image);
            let paging = Paging::new(0x1000, mode);
            let map = SelfMap::find(&paging, &memory)
                .unwrap()
                .expect("the self-map entry");
            assert_eq!(map.index(), index);
            let walk = paging.translate(&memory, VirtAddr(va)).unwrap();
            for visited in walk.path.as_slice() {
                let seen_at = map.entry_address(VirtAddr(va), visited.level);
                let through_self_map = paging.translate(&memory, seen_at).unwrap();
                assert_eq!(
                    through_self_map.pa, visited.addr,
                    "{mode:?} index {index:#x} {:?}: {seen_at:?}",
                    visited.level
                );
            }
        }
    }
}

#[test]
fn no_self_map_is_reported_as_none() {
    let mut image = image_with_self_map(PagingMode::FourLevel, 3, 0x40_0000);
    image[0x1000 + 3 * 8] = 0; // clear P of the self-map entry
    let paging = Paging::new(0x1000, PagingMode::FourLevel);
    assert_eq!(
        SelfMap::find(&paging, &ImageMemory::new(&image)).unwrap(),
        None
    );
}
