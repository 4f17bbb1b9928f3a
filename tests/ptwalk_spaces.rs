//! `ptwalk spaces`: the address spaces of Windows-like captures found with
//! nothing but the file, and `translate` without `--cr3`.
//!
//! The images are built here the way Windows lays them out: on x86-64 a
//! low stub (`PROCESSOR_START_BLOCK`: a jump at 0, a kernel address at
//! 0x70, CR3 at 0xA0, the layout `MemProcFS` and memflow-win32 test) below
//! 1 MiB, the kernel's PML4 with its self-map entry at a random index
//! (0x100 to 0x1ff since Windows 10 1607) and every process's PML4 with the
//! same kernel half; on ARM64 one level 0 page per process whose upper half
//! (`TTBR1_EL1` = page + 0x800) holds the self-map. Decoys: a table with a
//! self-pointer and a foreign kernel half, a stale copy whose kernel half
//! lacks an entry the kernel added later, a self-pointer at another index,
//! and a byte copy of a live table (it points at the original, not itself).
//! The expected lists come from where the builder put the tables.

mod crash_dump;
mod ptwalk_run;
mod qemu_core;

use ptwalk_run::{pages_of, ptwalk, stderr, stdout, write_temp};
use serde_json::{Value, json};

const MIB: usize = 1 << 20;

/// A Windows self-map PML4E: present, writable, accessed, dirty, NX.
const fn self_map_entry(table: u64) -> u64 {
    0x8000_0000_0000_0063 | table
}

/// A supervisor table entry: present, writable, accessed.
const fn kernel_entry(table: u64) -> u64 {
    0x23 | table
}

/// A physical address as an index into a test image.
fn at(pa: u64) -> usize {
    usize::try_from(pa).unwrap()
}

fn put(image: &mut [u8], pa: u64, value: u64) {
    let at = at(pa);
    image[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// An x86-64 Windows-like capture and where its tables are.
struct X64World {
    image: Vec<u8>,
    kernel: u64,
    processes: Vec<u64>,
}

/// The kernel's PDPT for its image (PML4 index 0x1f0, VA `0xfffff800_00000000`).
const KERNEL_PDPT: u64 = 0x21_0000;
/// A kernel page: VA `0xfffff800_00005000` maps PA `0x25_0000` in every space.
const KERNEL_VA: u64 = 0xffff_f800_0000_5000;
const KERNEL_PA: u64 = 0x25_0000;
/// Process `i`'s user page: VA 0x1000 maps PA `0x28_0000 + i * 0x1000`.
const USER_VA: u64 = 0x1000;

/// The capture: the low stub at `stub_at` (none if 0), the self-map at
/// `self_map`, `processes` process tables, and the decoys.
fn x64_world(stub_at: u64, self_map: usize, processes: usize) -> X64World {
    let mut image = vec![0_u8; 4 * MIB];
    let kernel = 0x20_0000;
    // The kernel's half: its image at 0x1f0, two more PDPTs at 0x100 and 0x1ff.
    put(&mut image, kernel + 8 * 0x1f0, kernel_entry(KERNEL_PDPT));
    put(&mut image, kernel + 8 * 0x100, kernel_entry(0x21_3000));
    put(&mut image, kernel + 8 * 0x1ff, kernel_entry(0x21_4000));
    put(
        &mut image,
        kernel + 8 * self_map as u64,
        self_map_entry(kernel),
    );
    put(&mut image, KERNEL_PDPT, kernel_entry(0x21_1000));
    put(&mut image, 0x21_1000, kernel_entry(0x21_2000));
    put(
        &mut image,
        0x21_2000 + 8 * 5,
        0x8000_0000_0000_0123 | KERNEL_PA,
    );
    if stub_at != 0 {
        put(&mut image, stub_at, 0x0000_0001_0006_10e9);
        put(&mut image, stub_at + 0x70, 0xffff_f800_0012_3450);
        put(&mut image, stub_at + 0xa0, kernel);
    }
    let kernel_half: Vec<u8> = image[at(kernel) + 0x800..at(kernel) + 0x1000].to_vec();
    // Process tables at uneven addresses, each with its own user half.
    let processes: Vec<u64> = (0..processes as u64)
        .map(|i| 0x30_0000 + i * 0x3000)
        .collect();
    for (i, &table) in processes.iter().enumerate() {
        let at = usize::try_from(table).unwrap();
        image[at + 0x800..at + 0x1000].copy_from_slice(&kernel_half);
        put(
            &mut image,
            table + 8 * self_map as u64,
            self_map_entry(table),
        );
        let user = 0x3c_0000 + 0x3000 * i as u64;
        put(&mut image, table, 0x67 | user);
        put(&mut image, user, 0x67 | (user + 0x1000));
        put(&mut image, user + 0x1000, 0x67 | (user + 0x2000));
        put(
            &mut image,
            user + 0x2000 + 8,
            0x8000_0000_0000_0067 | (0x28_0000 + 0x1000 * i as u64),
        );
    }
    // Decoy 1: a self-pointer at the same index, a foreign kernel half.
    let foreign = 0x38_0000;
    put(&mut image, foreign + 8 * 0x1f0, kernel_entry(0x37_0000));
    put(
        &mut image,
        foreign + 8 * self_map as u64,
        self_map_entry(foreign),
    );
    // Decoy 2: a stale copy: the kernel half before entry 0x1ff was added.
    let stale = 0x38_1000;
    image[at(stale) + 0x800..at(stale) + 0x1000].copy_from_slice(&kernel_half);
    put(&mut image, stale + 8 * 0x1ff, 0);
    put(
        &mut image,
        stale + 8 * self_map as u64,
        self_map_entry(stale),
    );
    // Decoy 3: the kernel's half, but the self-pointer at another index.
    let elsewhere = 0x38_2000;
    let other = if self_map == 0x1ee { 0x1ef } else { 0x1ee };
    image[at(elsewhere) + 0x800..at(elsewhere) + 0x1000].copy_from_slice(&kernel_half);
    put(&mut image, elsewhere + 8 * self_map as u64, 0);
    put(&mut image, elsewhere + 8 * other, self_map_entry(elsewhere));
    // Decoy 4: a byte copy of the first process table (not a self-pointer).
    if let Some(&first) = processes.first() {
        let (from, to) = (usize::try_from(first).unwrap(), 0x38_3000);
        let copy = image[from..from + 0x1000].to_vec();
        image[to..to + 0x1000].copy_from_slice(&copy);
    }
    X64World {
        image,
        kernel,
        processes,
    }
}

/// `ptwalk spaces --json ARGS` on `image`: its objects, and its stderr.
fn spaces_json(name: &str, image: &[u8], args: &[&str]) -> (Vec<Value>, String) {
    let path = write_temp(name, image);
    let output = ptwalk(
        &[
            &["spaces", "--image", path.to_str().unwrap(), "--json"],
            args,
        ]
        .concat(),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let objects = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    (objects, stderr(&output))
}

/// The JSON line for an x86-64 table, evidence aside.
fn x64_line(role: &str, cr3: u64, self_map: usize) -> Value {
    json!({"arch": "x86_64", "role": role, "cr3": format!("{cr3:#x}"), "self_map": format!("{self_map:#x}")})
}

/// The lines `spaces` must print for `world`: its kernel's table with
/// `kernel_role`, then every process's, all at `self_map`.
fn x64_lines(world: &X64World, kernel_role: &str, self_map: usize) -> Vec<Value> {
    let mut want = vec![x64_line(kernel_role, world.kernel, self_map)];
    want.extend(
        world
            .processes
            .iter()
            .map(|&p| x64_line("process", p, self_map)),
    );
    want
}

/// `objects` without their evidence (checked on its own).
fn without_evidence(objects: &[Value]) -> Vec<Value> {
    objects
        .iter()
        .map(|object| {
            let mut object = object.clone();
            let evidence = object.as_object_mut().unwrap().remove("evidence").unwrap();
            assert!(!evidence.as_array().unwrap().is_empty(), "{object}");
            object
        })
        .collect()
}

#[test]
fn x64_spaces_are_the_kernel_and_every_process_and_nothing_else() {
    for (stub_at, self_map, processes) in
        [(0x1000, 0x1ed, 3), (0x13000, 0x100, 5), (0x9f000, 0x1a7, 1)]
    {
        let world = x64_world(stub_at, self_map, processes);
        let (objects, _) = spaces_json("x64", &world.image, &[]);
        let want = x64_lines(&world, "kernel", self_map);
        assert_eq!(
            without_evidence(&objects),
            want,
            "stub {stub_at:#x}, self-map {self_map:#x}"
        );
        let kernel_evidence = objects[0]["evidence"].to_string();
        assert!(
            kernel_evidence.contains(&format!("low stub (PROCESSOR_START_BLOCK) at {stub_at:#x}")),
            "{kernel_evidence}"
        );
    }
}

#[test]
fn without_a_low_stub_no_space_is_called_the_kernel() {
    let world = x64_world(0, 0x1ed, 3);
    let (objects, _) = spaces_json("x64-nostub", &world.image, &[]);
    let want = x64_lines(&world, "process", 0x1ed);
    assert_eq!(without_evidence(&objects), want);
}

#[test]
fn rejected_tables_are_listed_with_the_reason_only_when_asked() {
    let world = x64_world(0x1000, 0x1ed, 2);
    let (objects, stderr) = spaces_json("x64-rejected", &world.image, &["--rejected"]);
    let rejected: Vec<(String, String)> = objects
        .iter()
        .filter(|o| o["role"] == "rejected")
        .map(|o| {
            (
                o["cr3"].as_str().unwrap().to_owned(),
                o["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(rejected.len(), 3, "{rejected:?}");
    assert_eq!(rejected[0].0, "0x380000");
    assert!(
        rejected[0]
            .1
            .contains("differs from the kernel's table's at 0x200000"),
        "{rejected:?}"
    );
    assert_eq!(rejected[1].0, "0x381000");
    assert!(rejected[1].1.contains("differs"), "{rejected:?}");
    assert_eq!(rejected[2].0, "0x382000");
    assert!(
        rejected[2].1.contains("self-map entry is 0x1ee"),
        "{rejected:?}"
    );
    assert!(stderr.contains("3 address space(s)"), "{stderr}");
    let (objects, stderr) = spaces_json("x64-quiet", &world.image, &[]);
    assert_eq!(objects.len(), 3);
    assert!(
        stderr.contains("3 table(s) rejected (--rejected lists them"),
        "{stderr}"
    );
}

#[test]
fn text_output_names_each_space_and_its_evidence() {
    let world = x64_world(0x13000, 0x1ed, 1);
    let path = write_temp("x64-text", &world.image);
    let output = ptwalk(&["spaces", "--image", path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("kernel  cr3 0x200000 self-map 0x1ed: the low stub (PROCESSOR_START_BLOCK) at 0x13000 names it as the kernel's CR3"), "{text}");
    assert!(
        lines[1].starts_with("process cr3 0x300000 self-map 0x1ed: "),
        "{text}"
    );
}

#[test]
fn translate_without_cr3_walks_the_kernel_space_the_low_stub_names() {
    let world = x64_world(0x13000, 0x1ed, 2);
    let path = write_temp("x64-translate", &world.image);
    let image = path.to_str().unwrap();
    let va = format!("{KERNEL_VA:x}");
    let with = ptwalk(&[
        "translate",
        "--image",
        image,
        "--cr3",
        "200000",
        &va,
        "1000",
    ]);
    let without = ptwalk(&["translate", "--image", image, &va, "1000"]);
    assert_eq!(stdout(&without), stdout(&with));
    assert_eq!(
        stdout(&without),
        format!("{KERNEL_VA:#x} {KERNEL_PA:#x}\n{USER_VA:#x} -\n")
    );
    assert_eq!(
        stderr(&without).lines().next().unwrap(),
        "ptwalk: CR3 0x200000: the low stub (PROCESSOR_START_BLOCK) at 0x13000 names it as the kernel's CR3 (give --cr3 to walk another space)"
    );
    // A process's own page, with its CR3 from `spaces`.
    let process = ptwalk(&["translate", "--image", image, "--cr3", "303000", "1000"]);
    assert_eq!(stdout(&process), "0x1000 0x281000\n");
}

#[test]
fn without_registers_or_a_low_stub_translate_names_spaces_and_cr3() {
    let world = x64_world(0, 0x1ed, 2);
    let path = write_temp("x64-nothing", &world.image);
    let image = path.to_str().unwrap();
    let output = ptwalk(&["translate", "--image", image, "1000"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr(&output);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--cr3") && stderr.contains("ptwalk spaces --image"),
        "{stderr}"
    );
}

#[test]
fn a_crash_dump_header_names_the_kernel_space() {
    let world = x64_world(0, 0x1ed, 2);
    let pages = pages_of(&world.image);
    for dump in [
        crash_dump::bitmap(world.kernel, &pages),
        crash_dump::full(world.kernel, &pages, &crash_dump::runs_covering(&pages, 0)),
    ] {
        let (objects, _) = spaces_json("x64-dump", &dump, &[]);
        let want = x64_lines(&world, "kernel", 0x1ed);
        assert_eq!(without_evidence(&objects), want);
        assert!(
            objects[0]["evidence"]
                .to_string()
                .contains("DirectoryTableBase")
        );
    }
}

/// An ARM64 Windows-like capture: one level 0 page per process at
/// `tables`, the self-map at `self_map` of each page, and decoys.
fn arm64_world(tables: &[u64], self_map: usize) -> Vec<u8> {
    let mut image = vec![0_u8; 4 * MIB];
    // The kernel's range: level 0 entries 0x1f0 and 0x1ff (upper half).
    let upper = [(0x1f0_u64, 0x21_0003_u64), (0x1ff, 0x21_1003)];
    for &table in tables {
        for &(index, descriptor) in &upper {
            put(&mut image, table + 8 * index, descriptor);
        }
        put(
            &mut image,
            table + 8 * self_map as u64,
            0x0060_0000_0000_0f03 | table,
        );
        put(
            &mut image,
            table,
            0x0060_0000_0000_0003 | (table + 0x10_0000),
        );
    }
    // Decoy: a self-pointer with a foreign upper half.
    let foreign = 0x38_0000;
    put(&mut image, foreign + 8 * 0x1f0, 0x37_0003);
    put(
        &mut image,
        foreign + 8 * self_map as u64,
        0x0060_0000_0000_0f03 | foreign,
    );
    image
}

#[test]
fn arm64_spaces_are_the_pages_with_a_self_map_in_their_upper_half() {
    for (tables, self_map) in [
        (&[0x20_0000_u64, 0x20_3000, 0x29_0000][..], 0x151_usize),
        (&[0x1000_u64, 0x30_0000][..], 0x1ab),
    ] {
        let image = arm64_world(tables, self_map);
        let (objects, _) = spaces_json("arm64", &image, &["--arch", "aarch64"]);
        let want: Vec<Value> = tables
            .iter()
            .map(|&t| {
                json!({"arch": "aarch64", "role": "process", "ttbr0": format!("{t:#x}"), "ttbr1": format!("{:#x}", t + 0x800),
                       "tcr": "0x615b5513511", "self_map": format!("{self_map:#x}")})
            })
            .collect();
        assert_eq!(without_evidence(&objects), want);
    }
}

#[test]
fn arm64_tcr_is_reported_as_given() {
    let image = arm64_world(&[0x20_0000, 0x20_3000], 0x151);
    let (objects, _) = spaces_json(
        "arm64-tcr",
        &image,
        &["--arch", "aarch64", "--tcr", "95b5513511"],
    );
    assert!(
        objects.iter().all(|o| o["tcr"] == "0x95b5513511"),
        "{objects:?}"
    );
}

#[test]
fn a_capture_with_no_table_fails_in_one_line() {
    let path = write_temp("zeros", &vec![0_u8; MIB]);
    let output = ptwalk(&["spaces", "--image", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr(&output);
    assert!(stderr.ends_with("ptwalk: no address space found: is this a capture of x86-64 Windows (add --arch aarch64 for ARM64)?\n"), "{stderr}");
}

#[test]
fn an_elf_segment_at_the_top_of_physical_memory_ends_the_scan_there() {
    // Found by the image fuzz target: a segment whose pages would run past
    // 2^64 made the scan's address overflow.
    let top: u64 = !0xfff - 0x1000; // two pages below 2^64
    let core = qemu_core::core_of(qemu_core::EM_X86_64, &[], &[(top, vec![0xa5; 4 * 4096])]);
    let path = write_temp("top.core", &core);
    let output = ptwalk(&["spaces", "--image", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr(&output);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("ptwalk: no address space found"),
        "{stderr}"
    );
}
