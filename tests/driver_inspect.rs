//! What the driver shows after mapping (issue 6), against the fake kernel's
//! page tables: the walks, the self-map, and the cross-checks with
//! `MmGetPhysicalAddress` and the MDL, including when they disagree, when an
//! entry is corrupt and when physical memory cannot be read.
#![cfg(target_os = "linux")]

mod driver_fake;

use driver_fake::FakeKernel;
use driver_fake::world::World;
use vmwalk::ffi::DPFLTR_ERROR_LEVEL;
use vmwalk::kernel::{MappingMethod, inspect, load, unload};
use vmwalk::walker::{Level, PagingMode, SelfMap, VirtAddr};

/// A kernel-space address the fake world maps, standing in for `DriverEntry`.
const CODE: u64 = 0xffff_f806_1234_5000;

struct Run {
    lines: Vec<String>,
    errors: Vec<String>,
    pool: u64,
    mapping: u64,
    /// The world's truth: the pool page's physical address.
    pool_pa: u64,
}

/// Loads the seed's sequence (pool and mapping), lets `before` change the
/// world, inspects again and unloads; the lines are those of that inspection
/// and the unload. Nothing may leak.
fn run(kernel: &FakeKernel, before: impl FnOnce(&FakeKernel, u64)) -> Run {
    kernel.map_page(CODE);
    let alias =
        load(kernel, MappingMethod::NonPagedPoolMdl, VirtAddr(CODE)).expect("DriverEntry succeeds");
    let pool = alias.first().as_ptr() as u64;
    let mapped = alias.second().as_ptr() as u64;
    let pool_pa = kernel.world().translate(pool);
    before(kernel, pool);
    kernel.clear_log();
    inspect(&alias, VirtAddr(CODE)).expect("a corrupt walk proves nothing, and fails nothing");
    unload(alias);
    kernel.assert_nothing_leaked();
    Run {
        lines: kernel.lines(),
        errors: kernel.lines_at(DPFLTR_ERROR_LEVEL),
        pool,
        mapping: mapped,
        pool_pa,
    }
}

/// The proof line, from the world's own entries: one frame, two PTEs.
fn share_line(kernel: &FakeKernel, run: &Run) -> String {
    let world = kernel.world();
    let (pool_pte, mapping_pte) = (
        world.entry_address(run.pool, Level::Pt),
        world.entry_address(run.mapping, Level::Pt),
    );
    format!(
        "vmwalk: pool and mapping share PFN {:#x} through two PTEs, at phys {pool_pte:#x} and {mapping_pte:#x}\n",
        run.pool_pa >> 12
    )
}

fn has(lines: &[String], wanted: &str) -> bool {
    lines.iter().any(|line| line == wanted)
}

#[test]
fn walks_agree_with_windows_and_the_mdl() {
    let kernel = FakeKernel::new();
    let run = run(&kernel, |_, _| {});
    let (pool, mapping, pa) = (run.pool, run.mapping, run.pool_pa);
    assert_ne!(pa, 0);
    let root = kernel.world().root;
    let lines = &run.lines;
    assert!(
        has(
            lines,
            &format!(
                "vmwalk: paging: CR3 {:#x} CR4 0xa0 EFER 0xd01, MAXPHYADDR 46, 4-level\n",
                root | 5
            )
        ),
        "{lines:#?}"
    );
    assert!(
        has(
            lines,
            "vmwalk: self-map: PML4 entry 0x15a (346) maps its own table; PTE base 0xffffad0000000000\n"
        ),
        "{lines:#?}"
    );
    assert!(
        has(
            lines,
            &format!("vmwalk: walk of pool {pool:#x} (user space):\n")
        ),
        "{lines:#?}"
    );
    for (name, va) in [("pool", pool), ("mapping", mapping)] {
        let result = format!(
            "vmwalk: {name} {va:#x} -> physical {pa:#x} (4K page at {pa:#x}, writable, kernel, no-execute, PAT index 0)\n"
        );
        assert!(has(lines, &result), "{name}: {lines:#?}");
        let check = format!(
            "vmwalk: {name} {va:#x}: MmGetPhysicalAddress {pa:#x} and MDL PFN {:#x} agree with the walk\n",
            pa >> 12
        );
        assert!(has(lines, &check), "{name}: {lines:#?}");
    }
    assert!(has(lines, &share_line(&kernel, &run)), "{lines:#?}");
    // Each level's entry, at its physical address and where the self-map shows it.
    let map = SelfMap::at(0x15a, PagingMode::FourLevel);
    for level in PagingMode::FourLevel.levels() {
        let phys = kernel.world().entry_address(pool, *level);
        let virt = map.entry_address(VirtAddr(pool), *level).0;
        let prefix = format!(
            "vmwalk:   {} at {virt:#x} (phys {phys:#x}) contains ",
            level.windbg_name()
        );
        assert!(
            lines.iter().any(|l| l.starts_with(&prefix)),
            "{prefix}: {lines:#?}"
        );
    }
    assert!(has(
        lines,
        &format!("vmwalk: walk of DriverEntry {CODE:#x} (kernel space):\n")
    ));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("vmwalk: DriverEntry {CODE:#x} -> physical ")))
    );
    // The fake world does not map the host's stack: an honest, explained failure.
    assert_eq!(run.errors.len(), 1, "{:#?}", run.errors);
    assert!(
        run.errors[0].starts_with("vmwalk: walk of stack ")
            && run.errors[0].contains("is not present"),
        "{:#?}",
        run.errors
    );
}

#[test]
fn five_level_paging_and_another_self_map_index() {
    let kernel = FakeKernel::with_world(World::new(PagingMode::FiveLevel, Some(0x1f3)));
    let run = run(&kernel, |_, _| {});
    let lines = &run.lines;
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with(", MAXPHYADDR 46, 5-level\n")),
        "{lines:#?}"
    );
    let base = SelfMap::at(0x1f3, PagingMode::FiveLevel).pte_base().0;
    assert!(
        has(
            lines,
            &format!(
                "vmwalk: self-map: PML5 entry 0x1f3 (499) maps its own table; PTE base {base:#018x}\n"
            )
        ),
        "{lines:#?}"
    );
    assert!(has(lines, &share_line(&kernel, &run)), "{lines:#?}");
}

#[test]
fn without_a_self_map_entries_show_only_their_physical_address() {
    let kernel = FakeKernel::with_world(World::new(PagingMode::FourLevel, None));
    let run = run(&kernel, |_, _| {});
    let phys = kernel.world().entry_address(run.pool, Level::Pt);
    assert!(has(
        &run.lines,
        "vmwalk: self-map: no PML4 entry maps its own table\n"
    ));
    assert!(
        run.lines
            .iter()
            .any(|l| l.starts_with(&format!("vmwalk:   PTE at phys {phys:#x} contains "))),
        "{:#?}",
        run.lines
    );
    assert!(has(&run.lines, &share_line(&kernel, &run)));
}

#[test]
fn a_disagreement_with_windows_is_logged_not_fatal() {
    let kernel = FakeKernel::new();
    let run = run(&kernel, |kernel, _| {
        kernel.lie_about_physical_addresses(0x1000);
    });
    let (pool, pa) = (run.pool, run.pool_pa);
    let wanted = format!(
        "vmwalk: disagreement for pool {pool:#x}: walk {pa:#x}, MmGetPhysicalAddress {:#x}, MDL PFN {:#x}\n",
        pa + 0x1000,
        pa >> 12
    );
    assert!(has(&run.errors, &wanted), "{:#?}", run.errors);
    assert!(
        has(&run.lines, &share_line(&kernel, &run)),
        "the walk, not Windows' answer, proves the alias"
    );
}

#[test]
fn a_not_present_pte_is_explained() {
    let kernel = FakeKernel::new();
    let run = run(&kernel, |kernel, pool| {
        kernel.world().set_entry(pool, Level::Pt, |e| e & !1);
    });
    let world = kernel.world();
    let entry = world
        .read(world.entry_address(run.pool, Level::Pt))
        .unwrap();
    let wanted = format!(
        "vmwalk: walk of pool {:#x} failed: PTE {entry:#018x} is not present\n",
        run.pool
    );
    assert!(has(&run.errors, &wanted), "{:#?}", run.errors);
    assert!(
        !run.lines.iter().any(|l| l.contains("share PFN")),
        "a walk that fails proves nothing"
    );
}

#[test]
fn a_reserved_bit_is_explained() {
    let kernel = FakeKernel::new();
    let run = run(&kernel, |kernel, pool| {
        kernel.world().set_entry(pool, Level::Pdpt, |e| e | 1 << 50);
    });
    let wanted = format!("vmwalk: walk of pool {:#x} failed: PDPTE ", run.pool);
    let error = run
        .errors
        .iter()
        .find(|l| l.starts_with(&wanted))
        .unwrap_or_else(|| panic!("{:#?}", run.errors));
    assert!(
        error.ends_with("has a reserved bit set: bits 51:46 must be 0 (MAXPHYADDR is 46)\n"),
        "{error}"
    );
}

#[test]
fn unreadable_physical_memory_is_explained() {
    let kernel = FakeKernel::new();
    let run = run(&kernel, |kernel, _| kernel.fail_copies());
    assert!(
        has(
            &run.errors,
            "vmwalk: self-map: reading the PML4 failed: MmCopyMemory returned NTSTATUS 0xc0000141 after 0 of 8 bytes\n"
        ),
        "{:#?}",
        run.errors
    );
    let wanted = format!(
        "vmwalk: walk of pool {:#x} failed: reading the PML4E at physical ",
        run.pool
    );
    assert!(
        run.errors.iter().any(|l| l.starts_with(&wanted)
            && l.ends_with(
                "failed: MmCopyMemory returned NTSTATUS 0xc0000141 after 0 of 8 bytes\n"
            )),
        "{:#?}",
        run.errors
    );
}

/// The ARM64 fake world as Windows lays it out, with the self-map index a
/// real Windows 11 ARM64 crash dump shows (`MmPteBase` `0xFFFFA88000000000`).
fn arm64_kernel() -> FakeKernel {
    FakeKernel::with_world(World::arm64(Some(0x151)))
}

#[test]
fn arm64_walks_both_halves_of_one_page_and_finds_the_windows_self_map() {
    let kernel = arm64_kernel();
    let run = run(&kernel, |_, _| {});
    let (pool, mapping, pa) = (run.pool, run.mapping, run.pool_pa);
    assert_ne!(pa, 0);
    let root = kernel.world().root;
    let asid = 0x2a_u64 << 48;
    let lines = &run.lines;
    let wanted = [
        format!(
            "vmwalk: paging: TTBR0_EL1 {:#x} TTBR1_EL1 {:#x} TCR_EL1 0x615b5513511, 47-bit lower and 47-bit upper range, 48-bit output, 4 KiB granule\n",
            root | asid,
            (root + 0x800) | asid
        ),
        format!(
            "vmwalk: TTBR0_EL1's table (phys {root:#x}) and TTBR1_EL1's ({:#x}) are one page: user and kernel entries in one top-level table\n",
            root + 0x800
        ),
        "vmwalk: self-map: TTBR1_EL1's level 0 entry 0x151 (337) maps the page it is in; PTE base 0xffffa88000000000\n".to_owned(),
        format!("vmwalk:   through TTBR0_EL1, table at phys {root:#x}\n"),
        format!("vmwalk:   through TTBR1_EL1, table at phys {:#x}\n", root + 0x800),
        share_line(&kernel, &run),
    ];
    for line in &wanted {
        assert!(has(lines, line), "{line}{lines:#?}");
    }
    for (name, va) in [("pool", pool), ("mapping", mapping)] {
        // AP[2:1] = 00, PXN, UXN and SH = 11, as the world wrote them.
        let result = format!(
            "vmwalk: {name} {va:#x} -> physical {pa:#x} (4K page at {pa:#x}, EL1 rw, EL0 -, EL1 nx, EL0 nx, ISH, AttrIndx 0)\n"
        );
        assert!(has(lines, &result), "{name}: {lines:#?}");
        let check = format!(
            "vmwalk: {name} {va:#x}: MmGetPhysicalAddress {pa:#x} and MDL PFN {:#x} agree with the walk\n",
            pa >> 12
        );
        assert!(has(lines, &check), "{name}: {lines:#?}");
    }
    // Each descriptor where the self-map shows it: the same arithmetic as
    // x64's PML4 self-map at that index (one 512-entry page, VA bits 47:39).
    let map = SelfMap::at(0x151, PagingMode::FourLevel);
    for (number, level) in PagingMode::FourLevel.levels().iter().enumerate() {
        for va in [pool, CODE] {
            let phys = kernel.world().entry_address(va, *level);
            let virt = map.entry_address(VirtAddr(va), *level).0;
            let prefix =
                format!("vmwalk:   level {number} descriptor at {virt:#018x} (phys {phys:#x}): ");
            assert!(
                lines.iter().any(|l| l.starts_with(&prefix)),
                "{prefix}: {lines:#?}"
            );
        }
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("vmwalk: DriverEntry {CODE:#x} -> physical "))),
        "{lines:#?}"
    );
    // WinDbg's `!pte` block for each address: its second line names where the
    // self-map shows the four descriptors.
    for va in [pool, mapping, CODE] {
        let at: Vec<String> = PagingMode::FourLevel
            .levels()
            .iter()
            .zip(["PXE", "PPE", "PDE", "PTE"])
            .map(|(level, name)| {
                format!(
                    "{name} at {:016X}",
                    map.entry_address(VirtAddr(va), *level).0
                )
            })
            .collect();
        let row = format!("vmwalk: {}\n", at.join("    "));
        let header = format!("vmwalk: as !pte {va:#x} shows it:\n");
        let start = lines
            .iter()
            .position(|l| *l == header)
            .unwrap_or_else(|| panic!("{header}{lines:#?}"));
        assert_eq!(lines[start + 2], row, "{lines:#?}");
    }
}

#[test]
fn arm64_invalid_and_reserved_descriptors_are_explained_as_the_cpu_faults() {
    let kernel = arm64_kernel();
    let invalid = run(&kernel, |kernel, pool| {
        kernel.world().set_entry(pool, Level::Pt, |e| e & !1);
    });
    let entry = {
        let world = kernel.world();
        world
            .read(world.entry_address(invalid.pool, Level::Pt))
            .unwrap()
    };
    let wanted = format!(
        "vmwalk: walk of pool {:#x} failed: Translation fault, level 3: descriptor {entry:#018x} is invalid (bit 0 clear)\n",
        invalid.pool
    );
    assert!(has(&invalid.errors, &wanted), "{:#?}", invalid.errors);
    assert!(!invalid.lines.iter().any(|l| l.contains("share PFN")));

    // Bits 1:0 = 0b01 at level 3 is reserved (a block only exists at levels 1 and 2).
    let kernel = arm64_kernel();
    let reserved = run(&kernel, |kernel, pool| {
        kernel.world().set_entry(pool, Level::Pt, |e| e & !0b10);
    });
    let wanted = format!(
        "vmwalk: walk of pool {:#x} failed: Translation fault, level 3: descriptor ",
        reserved.pool
    );
    assert!(
        reserved
            .errors
            .iter()
            .any(|l| l.starts_with(&wanted)
                && l.ends_with("is a reserved encoding (bits 1:0 = 0b01)\n")),
        "{:#?}",
        reserved.errors
    );
}
