//! `ptwalk pte` and `translate --explain --os windows` on Windows captures as
//! `WinDbg` would show them, with nothing but the file: the invalid-PTE mask
//! read from the capture's own swizzled entries (MAXPHYADDR 39, 46, 48; raw,
//! full and bitmap dumps), what it says when the entries disagree or say
//! nothing, the overrides; and the columns below large pages, which `WinDbg`
//! never reads.
//!
//! The entries are written the way Windows writes them (`MiSwizzleInvalidPte`:
//! the mask OR-ed in and bit 4 left clear, or bit 4 set where the entry
//! already has the mask's bit); the expected lines are `WinDbg`'s words for
//! the entries before swizzling, as in the published transcripts
//! (tests/windbg/01, 24, 25).

mod crash_dump;
mod ptwalk_run;

use ptwalk_run::{pages_of, ptwalk, stderr, stdout, write_temp};

const SWIZZLE_BIT: u64 = 1 << 4;

/// What Windows 10 1803+ writes for the non-present entry `raw`.
const fn swizzled(raw: u64, mask: u64) -> u64 {
    if raw & mask == 0 {
        raw | mask
    } else {
        raw | SWIZZLE_BIT
    }
}

/// A Windows-like image (PML4 at 0x1000, self-map 0x1ed; PDPT 0x2000, PD
/// 0x3000, PT 0x4000 for 0x400000..0x5fffff) of 0x20000 bytes, whose PT
/// holds `entries` from index 1 on.
fn capture(entries: &[u64]) -> Vec<u8> {
    let mut image = vec![0u8; 0x20000];
    let mut put = |at: usize, value: u64| image[at..at + 8].copy_from_slice(&value.to_le_bytes());
    put(0x1000 + 0x1ed * 8, 0x1063);
    put(0x1000, 0x2067);
    put(0x2000, 0x3067);
    put(0x3000 + 2 * 8, 0x4067);
    for (i, entry) in entries.iter().enumerate() {
        put(0x4000 + (i + 1) * 8, *entry);
    }
    image
}

/// The virtual address whose PTE is `entries[i]` of [`capture`].
fn va(i: usize) -> String {
    format!("{:x}", 0x40_0000 + (i as u64 + 1) * 0x1000)
}

/// Demand zero, `ReadWrite` (4).
const DEMAND_ZERO: u64 = 4 << 5;
/// Demand zero, Readonly with guard (0x11).
const DEMAND_ZERO_GUARD: u64 = 0x11 << 5;
/// Transition to frame 0x1d (inside the capture), `ReadWrite`.
const TRANSITION: u64 = 0x1d << 12 | 1 << 11 | 4 << 5;
/// Page file 2 at offset 0xdef3, `ExecuteRead` (3): transcript 01's entry
/// before Windows swizzled it.
const PAGE_FILE: u64 = 0xdef3 << 32 | 2 << 12 | 3 << 5;

fn windows_entries(mask: u64) -> Vec<u64> {
    let mut entries = vec![swizzled(DEMAND_ZERO, mask); 6];
    entries.push(swizzled(DEMAND_ZERO_GUARD, mask));
    entries.push(swizzled(TRANSITION, mask));
    entries.push(swizzled(PAGE_FILE, mask));
    entries
}

/// `pte`'s lines under `not valid` for the three kinds, as `WinDbg` words
/// the unswizzled entries (tests/windbg/01, 25, 26).
fn windbg_details(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.starts_with(&" ".repeat(82)))
        .map(|l| l.trim().to_owned())
        .collect()
}

const WANT_DETAILS: [&str; 9] = [
    "DemandZero",
    "Protect: 4 - ReadWrite",
    "DemandZero",
    "Protect: 11 - Readonly G",
    "Transition: 1d",
    "Protect: 4 - ReadWrite",
    "PageFile:  2",
    "Offset: def3",
    "Protect: 3 - ExecuteRead",
];

#[test]
fn pte_reads_the_mask_from_the_capture_for_maxphyaddr_39_46_48() {
    for maxphyaddr in [39_u32, 46, 48] {
        let mask = 1_u64 << (maxphyaddr - 1);
        let memory = capture(&windows_entries(mask));
        let pages = pages_of(&memory);
        let raw = write_temp(&format!("mask-{maxphyaddr}.raw"), &memory);
        let full = write_temp(
            &format!("mask-{maxphyaddr}-full.dmp"),
            &crash_dump::full(0x1000, &pages, &[(0, 0x20)]),
        );
        let bitmap = write_temp(
            &format!("mask-{maxphyaddr}-bitmap.dmp"),
            &crash_dump::bitmap(0x1000, &pages),
        );
        let addresses = [va(5), va(6), va(7), va(8)];
        for image in [&raw, &full, &bitmap] {
            let name = image.display();
            let mut args = vec!["pte", "--image", image.to_str().unwrap()];
            if image == &raw {
                args.extend(["--cr3", "1000"]);
            }
            args.extend(addresses.iter().map(String::as_str));
            let output = ptwalk(&args);
            assert!(output.status.success(), "{name}: {output:?}");
            assert_eq!(windbg_details(&stdout(&output)), WANT_DETAILS, "{name}");
            let stderr = stderr(&output);
            // A dump's header gives CR3, said in a line of its own first.
            let stderr = if image == &raw {
                stderr.as_str()
            } else {
                stderr
                    .strip_prefix(
                        "ptwalk: CR3 0x1000 from the crash dump header (DirectoryTableBase)\n",
                    )
                    .unwrap_or_else(|| panic!("{name}: {stderr}"))
            };
            assert_eq!(stderr.lines().count(), 1, "{name}: one line: {stderr}");
            assert!(
                stderr.starts_with(&format!(
                    "ptwalk: invalid-PTE mask {mask:#x} (bit {}, MAXPHYADDR {maxphyaddr}), from the capture: 8 of 8 ",
                    maxphyaddr - 1
                )),
                "{name}: {stderr}"
            );
        }
        // translate --explain --os windows: the same decode.
        let explained = ptwalk(&[
            "translate",
            "--image",
            raw.to_str().unwrap(),
            "--cr3",
            "1000",
            "--explain",
            "--os",
            "windows",
            &va(7),
            &va(8),
        ]);
        let out = stdout(&explained);
        assert!(
            out.contains("not valid: Transition: 1d, Protect: 4 - ReadWrite"),
            "{out}"
        );
        assert!(
            out.contains("not valid: PageFile:  2, Offset: def3, Protect: 3 - ExecuteRead"),
            "{out}"
        );
        assert!(stderr(&explained).contains(&format!("MAXPHYADDR {maxphyaddr}")));
    }
}

#[test]
fn the_overrides_win_over_the_capture() {
    let mask = 1_u64 << 38;
    let raw = write_temp("override.raw", &capture(&windows_entries(mask)));
    let image = raw.to_str().unwrap();
    let base = ["pte", "--image", image, "--cr3", "1000"];
    // No mask: the swizzled bit stays in the frame and in the offset.
    let none = ptwalk(&[&base[..], &["--invalid-pte-mask", "0", &va(7), &va(8)]].concat());
    let details = windbg_details(&stdout(&none));
    assert_eq!(details[0], format!("Transition: {:x}", (mask >> 12) | 0x1d));
    assert_eq!(details[3], format!("Offset: {:x}", (mask >> 32) | 0xdef3));
    assert_eq!(
        stderr(&none),
        "ptwalk: invalid-PTE mask 0x0 (--invalid-pte-mask)\n"
    );
    // --maxphyaddr 46 names another bit: the capture's stays in.
    let wrong = ptwalk(&[&base[..], &["--maxphyaddr", "46", &va(7)]].concat());
    assert_eq!(
        windbg_details(&stdout(&wrong))[0],
        format!("Transition: {:x}", (mask >> 12) | 0x1d)
    );
    assert_eq!(
        stderr(&wrong),
        "ptwalk: invalid-PTE mask 0x200000000000 (1 << (MAXPHYADDR - 1), --maxphyaddr 46)\n"
    );
}

/// `ptwalk pte` on the capture of `entries`, for the address of entry `i`.
fn pte_on_capture(name: &str, entries: &[u64], i: usize) -> std::process::Output {
    let raw = write_temp(name, &capture(entries));
    ptwalk(&[
        "pte",
        "--image",
        raw.to_str().unwrap(),
        "--cr3",
        "1000",
        &va(i),
    ])
}

#[test]
fn conflicting_or_missing_evidence_is_said_and_the_default_used() {
    // Half the entries carry bit 38, half bit 45.
    let mut entries = vec![swizzled(DEMAND_ZERO, 1 << 38); 4];
    entries.extend(vec![swizzled(DEMAND_ZERO, 1 << 45); 4]);
    let output = pte_on_capture("conflict.raw", &entries, 0);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        stderr(&output),
        "ptwalk: invalid-PTE mask: the capture's entries disagree (the most common high bit, 45, in 4 of 8; physical memory ends at 0x20000); using 0x8000000000000, MAXPHYADDR 52's; --invalid-pte-mask or --maxphyaddr to give it\n"
    );
    // Only valid entries and page-file entries: nothing to read the bit from.
    let output = pte_on_capture("none.raw", &[0x5063, swizzled(PAGE_FILE, 1 << 45)], 0);
    assert_eq!(
        stderr(&output),
        "ptwalk: invalid-PTE mask: no swizzled demand-zero or transition entry in the tables to read it from; using 0x8000000000000, MAXPHYADDR 52's; --invalid-pte-mask or --maxphyaddr to give it\n"
    );
    // Before Windows 10 1803: no entry carries a high bit.
    let output = pte_on_capture("unswizzled.raw", &[DEMAND_ZERO, DEMAND_ZERO, TRANSITION], 2);
    assert_eq!(windbg_details(&stdout(&output))[0], "Transition: 1d");
    assert_eq!(
        stderr(&output),
        "ptwalk: invalid-PTE mask 0, from the capture: 3 demand-zero and transition entries with bit 4 clear carry no high bit (Windows before 10 1803, or not mitigated)\n"
    );
}

/// PML4 0x1000 (self-map 0x1ed) -> PDPT 0x2000: entry 0 -> PD 0x3000 whose
/// entry 3 is a 2 MiB page at 0x200000 (an `MZ` header there); entry 1 a
/// 1 GiB page at 0x40000000.
fn large_pages() -> Vec<u8> {
    let mut image = vec![0u8; 0x40_0000];
    let mut put = |at: usize, value: u64| image[at..at + 8].copy_from_slice(&value.to_le_bytes());
    put(0x1000 + 0x1ed * 8, 0x1063);
    put(0x1000, 0x2067);
    put(0x2000, 0x3067);
    put(0x2000 + 8, 0x4000_0000 | 0xe3);
    put(0x3000 + 3 * 8, 0x20_0000 | 0x1e1);
    // What the would-be PTE slots hold: the image's first bytes, as `nt`'s.
    image[0x20_0000..0x20_0010]
        .copy_from_slice(b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00");
    image[0x20_0028..0x20_0030].fill(0xcc);
    image
}

#[test]
fn below_a_large_page_the_columns_contain_zero_and_are_not_read() {
    let raw = write_temp("large.raw", &large_pages());
    let output = ptwalk(&[
        "pte",
        "--image",
        raw.to_str().unwrap(),
        "--cr3",
        "1000",
        "--maxphyaddr",
        "46",
        "600000",
        "605123",
        "40001000",
    ]);
    assert!(output.status.success(), "{output:?}");
    // By hand from WinDbg's layout: `contains 0000000000000000` below a
    // 2 MiB leaf (9 of 9 published transcripts, e.g. tests/windbg/04), the
    // `LARGE PAGE` cell padded to a whole column (tests/windbg/arm64/06); the
    // 1 GiB leaf by the same rules (no published transcript has one).
    let (large_200, large_205, large_40001) = (
        format!("{:<27}", "LARGE PAGE pfn 200"),
        format!("{:<27}", "LARGE PAGE pfn 205"),
        format!("{:<27}", "LARGE PAGE pfn 40001"),
    );
    let want = format!("                                           VA 0000000000600000
PXE at FFFFF6FB7DBED000    PPE at FFFFF6FB7DA00000    PDE at FFFFF6FB40000018    PTE at FFFFF68000003000
contains 0000000000002067  contains 0000000000003067  contains 00000000002001E1  contains 0000000000000000
pfn 2         ---DA--UWEV  pfn 3         ---DA--UWEV  pfn 200       -GLDA--KREV  {large_200}

                                           VA 0000000000605123
PXE at FFFFF6FB7DBED000    PPE at FFFFF6FB7DA00000    PDE at FFFFF6FB40000018    PTE at FFFFF68000003028
contains 0000000000002067  contains 0000000000003067  contains 00000000002001E1  contains 0000000000000000
pfn 2         ---DA--UWEV  pfn 3         ---DA--UWEV  pfn 200       -GLDA--KREV  {large_205}

                                           VA 0000000040001000
PXE at FFFFF6FB7DBED000    PPE at FFFFF6FB7DA00008    PDE at FFFFF6FB40001000    PTE at FFFFF68000200008
contains 0000000000002067  contains 00000000400000E3  contains 0000000000000000  contains 0000000000000000
pfn 2         ---DA--UWEV  pfn 40000     --LDA--KWEV  {large_40001}
");
    assert_eq!(stdout(&output), want);
}
