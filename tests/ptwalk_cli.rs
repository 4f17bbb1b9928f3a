//! The `ptwalk` command: output formats, raw images, ELF cores and Windows
//! crash dumps, and bad input. Expected answers come from how the tables
//! below are built, and for the Linux-guest fixtures from QEMU.

mod crash_dump;
mod fixtures;
mod ptwalk_run;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crash_dump::PAGE;
use ptwalk_run::{pages_of, ptwalk, stdout, write_temp};

/// PML4 at 0x1000 -> PDPT 0x2000 -> PD 0x3000; PD[2] -> PT 0x4000.
/// PT[1] maps 0x401000 to 0x5000 (NX, dirty, accessed, kernel, writable);
/// PD[3] is a global 2 MiB page at 0x600000; PD[4] has reserved bit 13;
/// PT[2] is a Windows transition PTE (not present).
fn tiny_image() -> Vec<u8> {
    let mut image = vec![0u8; 0x8000];
    let mut put =
        |addr: usize, value: u64| image[addr..addr + 8].copy_from_slice(&value.to_le_bytes());
    put(0x1000, 0x2000 | 0x7);
    put(0x2000, 0x3000 | 0x7);
    put(0x3000 + 2 * 8, 0x4000 | 0x3);
    put(0x4000 + 8, 0x5000 | 0x63 | (1 << 63));
    put(0x3000 + 3 * 8, 0x60_0000 | 0x83 | 0x100);
    put(0x3000 + 4 * 8, 0x60_0000 | 0x83 | 0x2000);
    put(0x4000 + 2 * 8, 0x0000_0005_0000_0800);
    image
}

/// The same memory as an ELF core: two `PT_LOAD` segments, in reverse file order.
fn elf_core(memory: &[u8]) -> Vec<u8> {
    let half = memory.len() / 2;
    elf_core_of(&[
        (half as u64, &memory[half..], half as u64),
        (0, &memory[..half], half as u64),
    ])
}

/// An ELF core of `PT_LOAD` segments `(p_paddr, file bytes, p_memsz)`, their
/// bytes one after another in the file, in this order.
fn elf_core_of(segments: &[(u64, &[u8], u64)]) -> Vec<u8> {
    let (ehdr, phdr) = (64_usize, 56_usize); // ELF64 header and program header sizes
    let mut offset = ehdr + segments.len() * phdr;
    let mut elf = vec![0u8; offset];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 2; // ELFCLASS64
    elf[5] = 1; // little-endian
    elf[6] = 1; // EV_CURRENT
    elf[16..18].copy_from_slice(&4u16.to_le_bytes()); // ET_CORE
    elf[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    elf[20..24].copy_from_slice(&1u32.to_le_bytes());
    elf[32..40].copy_from_slice(&(ehdr as u64).to_le_bytes()); // e_phoff
    elf[52..54].copy_from_slice(&64_u16.to_le_bytes()); // e_ehsize
    elf[54..56].copy_from_slice(&56_u16.to_le_bytes()); // e_phentsize
    elf[56..58].copy_from_slice(&u16::try_from(segments.len()).unwrap().to_le_bytes()); // e_phnum
    for (i, (paddr, bytes, memsz)) in segments.iter().enumerate() {
        let p = ehdr + i * phdr;
        elf[p..p + 4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        elf[p + 8..p + 16].copy_from_slice(&(offset as u64).to_le_bytes());
        elf[p + 24..p + 32].copy_from_slice(&paddr.to_le_bytes()); // p_paddr
        elf[p + 32..p + 40].copy_from_slice(&(bytes.len() as u64).to_le_bytes()); // p_filesz
        elf[p + 40..p + 48].copy_from_slice(&memsz.to_le_bytes()); // p_memsz
        offset += bytes.len();
    }
    for (_, bytes, _) in segments {
        elf.extend_from_slice(bytes);
    }
    elf
}

const ADDRESSES: [&str; 5] = [
    "0x401008",
    "0x600123",
    "0x800000",
    "0x402000",
    "0x8000000000000000",
];
const ANSWERS: &str =
    "0x401008 0x5008\n0x600123 0x600123\n0x800000 -\n0x402000 -\n0x8000000000000000 -\n";

#[test]
fn translates_raw_images_and_elf_cores_alike() {
    let raw = write_temp("raw", &tiny_image());
    let core = write_temp("core", &elf_core(&tiny_image()));
    for image in [&raw, &core] {
        let mut args = vec![
            "translate",
            "--image",
            image.to_str().unwrap(),
            "--cr3",
            "0x1000",
        ];
        args.extend(ADDRESSES);
        let output = ptwalk(&args);
        assert!(output.status.success(), "{output:?}");
        assert_eq!(stdout(&output), ANSWERS, "{}", image.display());
    }
}

#[test]
fn options_and_addresses_come_in_any_order() {
    let raw = write_temp("order", &tiny_image());
    let output = ptwalk(&[
        "translate",
        "0x401008",
        "--cr3",
        "1000",
        "600123",
        "--image",
        raw.to_str().unwrap(),
        "0x800000",
    ]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        stdout(&output),
        "0x401008 0x5008\n0x600123 0x600123\n0x800000 -\n"
    );
}

#[test]
fn explain_speaks_intel_unless_asked_for_windows() {
    let raw = write_temp("explain-x86", &tiny_image());
    let image = raw.to_str().unwrap();
    let explained = stdout(&ptwalk(&[
        "translate",
        "--image",
        image,
        "--cr3",
        "0x1000",
        "--explain",
        "0x402000",
        "0x401008",
    ]));
    // The tiny image's PT entry 2 holds a Windows transition PTE; to the CPU
    // it is only not present, and x86 words name no Windows state.
    assert!(
        explained.contains("PTE at phys 0x4010: 0x0000000500000800 (not present)"),
        "{explained}"
    );
    assert!(
        explained.contains("=> PTE 0x0000000500000800 is not present"),
        "{explained}"
    );
    assert!(
        explained.contains("PTE at phys 0x4008: 0x8000000000005063 (P RW A D XD, address 0x5000)"),
        "{explained}"
    );
    assert!(
        !explained.contains("PXE") && !explained.contains("Transition"),
        "{explained}"
    );
    let windows = stdout(&ptwalk(&[
        "translate",
        "--image",
        image,
        "--cr3",
        "0x1000",
        "--explain",
        "--os",
        "windows",
        "0x800000",
    ]));
    // WinDbg's names in the reason too: PDE is the same in both, so check a PDPT-level
    // name where they differ through the entry lines.
    assert!(windows.contains("PXE at phys 0x1000"), "{windows}");
    // --os asks for --explain: the same lines without it.
    let implied = stdout(&ptwalk(&[
        "translate",
        "--image",
        image,
        "--cr3",
        "0x1000",
        "--os",
        "windows",
        "0x800000",
    ]));
    assert_eq!(implied, windows, "--os implies --explain");
}

#[test]
fn explain_says_why_in_windows_words() {
    let raw = write_temp("explain", &tiny_image());
    let image = raw.to_str().unwrap();
    let explained = stdout(&ptwalk(&[
        "translate",
        "--image",
        image,
        "--cr3",
        "0x1000",
        "--explain",
        "--os",
        "windows",
        "0x800000",
        "0x402000",
        "0x401008",
    ]));
    assert!(
        explained.contains("PDE at phys 0x3020 contains 0x0000000000602083"),
        "{explained}"
    );
    assert!(
        explained.contains("bits 20:13 of a large-page entry must be 0"),
        "{explained}"
    );
    assert!(
        explained.contains("not valid: Transition: 500000, Protect: 0"),
        "{explained}"
    );
    assert!(
        explained.contains("PTE at phys 0x4008 contains 0x8000000000005063 pfn 5 ---DA--KW-V"),
        "{explained}"
    );
    assert!(
        explained.contains("4K page at 0x5000, writable, kernel, no-execute"),
        "{explained}"
    );
}

#[test]
fn dump_prints_info_tlb_lines() {
    let raw = write_temp("dump", &tiny_image());
    let output = ptwalk(&["dump", "--image", raw.to_str().unwrap(), "--cr3", "0x1000"]);
    assert!(output.status.success(), "{output:?}");
    // QEMU: `va: pa XGPDACTUW`; the reserved PDE is skipped with a note on stderr.
    assert_eq!(
        stdout(&output),
        "0000000000401000: 0000000000005000 X--DA---W\n0000000000600000: 0000000000600000 -GP-----W\n"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("reserved bit"));
}

/// One line on stderr, nothing on stdout, and the expected exit code.
fn assert_one_line_error(output: &Output, code: i32, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("ptwalk: ") && stderr.contains(needle),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn bad_input_gets_one_line_and_a_nonzero_exit() {
    let raw = write_temp("bad", &tiny_image());
    let image = raw.to_str().unwrap();
    assert_one_line_error(
        &ptwalk(&[
            "translate",
            "--image",
            "/nonexistent/x.img",
            "--cr3",
            "0",
            "1",
        ]),
        1,
        "cannot open /nonexistent/x.img",
    );
    assert_one_line_error(
        &ptwalk(&["translate", "--image", image, "--cr3", "0x8000", "1"]),
        1,
        "not in the image",
    );
    assert_one_line_error(
        &ptwalk(&["translate", "--image", image, "--cr3", "0x1000", "0x40zz"]),
        2,
        "'0x40zz' is not a 64-bit hex number",
    );
    assert_one_line_error(
        &ptwalk(&[
            "translate",
            "--image",
            image,
            "--cr3",
            "0x1000",
            "--maxphyaddr",
            "60",
            "1",
        ]),
        1,
        "MAXPHYADDR must be between 32 and 52",
    );
    let empty = write_temp("empty", b"");
    assert_one_line_error(
        &ptwalk(&["dump", "--image", empty.to_str().unwrap(), "--cr3", "0"]),
        1,
        "not in the image",
    );
    let bad_elf = write_temp("badelf", b"\x7fELF\x02\x01\x01");
    assert_one_line_error(
        &ptwalk(&["dump", "--image", bad_elf.to_str().unwrap(), "--cr3", "0"]),
        1,
        "not a usable ELF core",
    );
}

#[test]
fn a_truncated_image_fails_after_printing_what_it_could() {
    // Cut the image inside the page table: the PT read fails.
    let raw = write_temp("truncated", &tiny_image()[..0x4000]);
    let output = ptwalk(&[
        "translate",
        "--image",
        raw.to_str().unwrap(),
        "--cr3",
        "0x1000",
        "0x401008",
        "0x600123",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "0x401008 -\n0x600123 0x600123\n");
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("1 address(es) need page tables that are not in the image")
    );
}

#[test]
fn hex_accepts_underscores_and_windbg_backticks() {
    let raw = write_temp("separators", &tiny_image());
    let output = ptwalk(&[
        "translate",
        "--image",
        raw.to_str().unwrap(),
        "--cr3",
        "0x1000",
        "0x40_1008",
        "0`00600123",
    ]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        stdout(&output),
        "0x401008 0x5008\n0x600123 0x600123\n",
        "addresses as typed: 0x40_1008 and 0`00600123"
    );
}

#[test]
fn translate_without_addresses_names_what_is_missing() {
    let raw = write_temp("noaddr", &tiny_image());
    let output = ptwalk(&[
        "translate",
        "--image",
        raw.to_str().unwrap(),
        "--cr3",
        "0x1000",
    ]);
    assert_one_line_error(
        &output,
        1,
        "ptwalk: no address given: list them in hex after the options, or give --addresses-from FILE (- for standard input)",
    );
}

#[test]
fn a_directory_as_image_says_so() {
    let dir = std::env::temp_dir();
    let output = ptwalk(&["dump", "--image", dir.to_str().unwrap(), "--cr3", "0x1000"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).lines().next(),
        Some(
            format!(
                "ptwalk: {} is a directory, not a memory image",
                dir.display()
            )
            .as_str()
        )
    );
}

#[test]
fn dump_into_a_closed_pipe_ends_quietly() {
    use std::io::Read;
    use std::process::Stdio;
    let raw = write_temp("pipe", &tiny_image());
    let mut child = Command::new(env!("CARGO_BIN_EXE_ptwalk"))
        .args(["dump", "--image", raw.to_str().unwrap(), "--cr3", "0x1000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader leaves before the first line, as `head -0` would
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
}

#[test]
fn json_with_explain_is_refused_not_dropped() {
    let raw = write_temp("jsonexplain", &tiny_image());
    let output = ptwalk(&[
        "translate",
        "--image",
        raw.to_str().unwrap(),
        "--cr3",
        "0x1000",
        "--json",
        "--explain",
        "0x401008",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).lines().next(),
        Some("ptwalk: the argument '--json' cannot be used with '--explain'")
    );
}

#[test]
fn a_wrong_cr3_gets_a_hint_on_stderr() {
    let raw = write_temp("wrongcr3", &tiny_image());
    let image = raw.to_str().unwrap();
    let output = ptwalk(&[
        "translate",
        "--image",
        image,
        "--cr3",
        "0x5000",
        "0x401008",
        "0x600123",
    ]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stdout(&output), "0x401008 -\n0x600123 -\n");
    // The data page at 0x5000 has no present entry: both hints, in order.
    assert_eq!(
        String::from_utf8_lossy(&output.stderr)
            .lines()
            .collect::<Vec<_>>(),
        [
            "ptwalk: hint: the table at CR3 (0x5000) has no present entry: is --cr3 the address of a top-level page table?",
            "ptwalk: hint: none of the 2 addresses translates: is --cr3 right, and --la57 set if the CPU used 5-level paging?"
        ]
    );
    let right = ptwalk(&[
        "translate",
        "--image",
        image,
        "--cr3",
        "0x1000",
        "0x401008",
        "0x800000",
    ]);
    assert!(right.stderr.is_empty(), "{right:?}");
}

#[test]
fn dump_counts_missing_tables_once() {
    let mut image = tiny_image();
    for i in 5..13_usize {
        // eight PD entries whose page tables lie beyond the 32 KiB image
        let entry = (0x10_0000 + i as u64 * 0x1000) | 0x3;
        image[0x3000 + i * 8..0x3000 + i * 8 + 8].copy_from_slice(&entry.to_le_bytes());
    }
    let raw = write_temp("missing", &image);
    let output = ptwalk(&["dump", "--image", raw.to_str().unwrap(), "--cr3", "0x1000"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.lines().count() <= 2, "{stderr}");
    assert_eq!(
        stderr.lines().last(),
        Some("ptwalk: 8 page table(s) are not in the image (4096 entries in them unread)")
    );
}

/// A Windows-like image: PML4 at 0x1000 whose entry 0x1ed maps itself (the
/// fixed self-map of Windows before 10 1607), 0x401000 mapped to 0x5000, and
/// 0x402000 a swizzled transition entry (bit 45, bit 4 clear).
fn windows_image() -> Vec<u8> {
    let mut image = vec![0u8; 0x6000];
    let mut put = |at: usize, value: u64| image[at..at + 8].copy_from_slice(&value.to_le_bytes());
    put(0x1000 + 0x1ed * 8, 0x1063);
    put(0x1000, 0x2067);
    put(0x2000, 0x3067);
    put(0x3000 + 2 * 8, 0x4067);
    put(0x4000 + 8, 0x8000_0000_0000_5867);
    put(0x4000 + 2 * 8, 0x0000_2000_0891_F860);
    image
}

#[test]
fn pte_prints_windbgs_block() {
    let raw = write_temp("pte", &windows_image());
    let image = raw.to_str().unwrap();
    let output = ptwalk(&[
        "pte",
        "--image",
        image,
        "--cr3",
        "0x1000",
        "--maxphyaddr",
        "46",
        "0x401000",
        "402000",
    ]);
    assert!(output.status.success(), "{output:?}");
    // Written by hand from WinDbg's layout (tests/windbg/; the detail lines
    // one column right of `not valid`, as in 25-transition-swizzled-volatility3) and the entry
    // addresses Windows 7-10 1511 used with self-map 0x1ed: PXE base
    // FFFFF6FB`7DBED000, PPE base FFFFF6FB`7DA00000, PDE base
    // FFFFF6FB`40000000, PTE base FFFFF680`00000000.
    let want = "                                           VA 0000000000401000
PXE at FFFFF6FB7DBED000    PPE at FFFFF6FB7DA00000    PDE at FFFFF6FB40000010    PTE at FFFFF68000002008
contains 0000000000002067  contains 0000000000003067  contains 0000000000004067  contains 8000000000005867
pfn 2         ---DA--UWEV  pfn 3         ---DA--UWEV  pfn 4         ---DA--UWEV  pfn 5         ---DA--UW-V

                                           VA 0000000000402000
PXE at FFFFF6FB7DBED000    PPE at FFFFF6FB7DA00000    PDE at FFFFF6FB40000010    PTE at FFFFF68000002010
contains 0000000000002067  contains 0000000000003067  contains 0000000000004067  contains 000020000891F860
pfn 2         ---DA--UWEV  pfn 3         ---DA--UWEV  pfn 4         ---DA--UWEV  not valid
                                                                                  Transition: 891f
                                                                                  Protect: 3 - ExecuteRead
";
    assert_eq!(stdout(&output), want);

    // Given as an index, the same; with no mask the swizzled frame shows.
    let unmasked = stdout(&ptwalk(&[
        "pte",
        "--image",
        image,
        "--cr3",
        "1000",
        "--self-map",
        "1ed",
        "--invalid-pte-mask",
        "0",
        "402000",
    ]));
    assert!(unmasked.contains("Transition: 20000891f"), "{unmasked}");
}

#[test]
fn pte_without_a_self_map_says_so() {
    let raw = write_temp("pte-no-self-map", &tiny_image());
    let output = ptwalk(&[
        "pte",
        "--image",
        raw.to_str().unwrap(),
        "--cr3",
        "0x1000",
        "0x401000",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).lines().next(),
        Some(
            "ptwalk: no top-level entry points to its own table (not a Windows CR3?): give --self-map INDEX"
        )
    );
    let bad = ptwalk(&[
        "pte",
        "--image",
        raw.to_str().unwrap(),
        "--cr3",
        "0x1000",
        "--self-map",
        "200",
        "0x401000",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .starts_with("ptwalk: invalid value '200' for '--self-map"),
        "{bad:?}"
    );
}

/// A Linux guest's page tables (a committed fixture) as a raw image, a full
/// dump (runs with holes between) and a bitmap dump (only the tables).
struct GuestImages {
    fixture: fixtures::Fixture,
    cr3: u64,
    raw: PathBuf,
    full: PathBuf,
    bitmap: PathBuf,
}

fn guest_images(name: &str) -> GuestImages {
    let fixture = fixtures::load(&format!("linux-{name}.fixture.gz"));
    let cr3 = fixture.paging.root().0;
    let pages = fixture.tables.page_bytes();
    let raw = std::env::temp_dir().join(format!("vmwalk-ptwalk-{}-{name}.raw", std::process::id()));
    fixture.tables.write_raw_image(&raw);
    let runs = crash_dump::runs_covering(&pages, 4);
    let in_runs: u64 = runs.iter().map(|r| r.1).sum();
    let (first, last) = (runs[0].0, runs[runs.len() - 1]);
    assert!(runs.len() > 3, "several runs");
    assert!(
        in_runs > pages.len() as u64,
        "runs hold pages other than tables"
    );
    assert!(in_runs < last.0 + last.1 - first, "holes between runs");
    let full = write_temp(
        &format!("{name}-full.dmp"),
        &crash_dump::full(cr3, &pages, &runs),
    );
    let bitmap = write_temp(
        &format!("{name}-bitmap.dmp"),
        &crash_dump::bitmap(cr3, &pages),
    );
    GuestImages {
        fixture,
        cr3,
        raw,
        full,
        bitmap,
    }
}

/// `ptwalk SUBCOMMAND --image IMAGE --maxphyaddr 40 [--la57] [--cr3 CR3] EXTRA...`
fn ptwalk_on(
    subcommand: &str,
    image: &Path,
    la57: bool,
    cr3: Option<u64>,
    extra: &[String],
) -> Output {
    let mut args = vec![
        subcommand.to_owned(),
        "--image".to_owned(),
        image.to_str().unwrap().to_owned(),
        "--maxphyaddr".to_owned(),
        "40".to_owned(), // the fixtures' guest CPU
    ];
    if la57 {
        args.push("--la57".to_owned());
    }
    if let Some(cr3) = cr3 {
        args.extend(["--cr3".to_owned(), format!("{cr3:#x}")]);
    }
    args.extend_from_slice(extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ptwalk(&args)
}

#[test]
fn crash_dumps_translate_as_qemu_did_with_cr3_from_the_header() {
    for name in ["la48", "la57"] {
        let guest = guest_images(name);
        let la57 = name == "la57";
        let addresses: Vec<String> = guest
            .fixture
            .gva2gpa
            .iter()
            .map(|(va, _)| format!("{va:#x}"))
            .collect();
        // QEMU's gva2gpa answers, in ptwalk's format.
        let qemu: String = guest
            .fixture
            .gva2gpa
            .iter()
            .map(|(va, pa)| {
                pa.map_or_else(|| format!("{va:#x} -\n"), |pa| format!("{va:#x} {pa:#x}\n"))
            })
            .collect();
        assert!(qemu.lines().filter(|l| !l.ends_with(" -")).count() > 100);
        let raw = ptwalk_on("translate", &guest.raw, la57, Some(guest.cr3), &addresses);
        assert!(raw.status.success(), "{raw:?}");
        assert_eq!(stdout(&raw), qemu, "{name}: raw image");
        for dump in [&guest.full, &guest.bitmap] {
            let output = ptwalk_on("translate", dump, la57, None, &addresses);
            assert!(
                output.status.success(),
                "{name} {}: {output:?}",
                dump.display()
            );
            // Where CR3 came from, in one line (and nothing else on stderr).
            assert_eq!(
                String::from_utf8_lossy(&output.stderr),
                format!(
                    "ptwalk: CR3 {:#x} from the crash dump header (DirectoryTableBase)\n",
                    guest.cr3
                ),
                "{output:?}"
            );
            assert_eq!(stdout(&output), qemu, "{name}: {}", dump.display());
        }
    }
}

#[test]
fn dump_and_explain_on_crash_dumps_match_the_raw_image() {
    let guest = guest_images("la57");
    let raw = ptwalk_on("dump", &guest.raw, true, Some(guest.cr3), &[]);
    assert!(raw.status.success(), "{raw:?}");
    // QEMU's `info tlb` of the guest, line for line.
    assert_eq!(stdout(&raw), guest.fixture.info_tlb);
    let explain: Vec<String> = ["--explain", "0xffffffff81000000", "0x1000"]
        .map(str::to_owned)
        .to_vec();
    let raw_explained = ptwalk_on("translate", &guest.raw, true, Some(guest.cr3), &explain);
    for dump in [&guest.full, &guest.bitmap] {
        let output = ptwalk_on("dump", dump, true, None, &[]);
        assert!(output.status.success(), "{output:?}");
        assert_eq!(output.stdout, raw.stdout, "{}", dump.display());
        // The raw image's stderr, after the line saying where CR3 came from.
        let stderr = String::from_utf8_lossy(&output.stderr);
        let (first, rest) = stderr.split_once('\n').unwrap();
        assert_eq!(
            first,
            format!(
                "ptwalk: CR3 {:#x} from the crash dump header (DirectoryTableBase)",
                guest.cr3
            )
        );
        assert_eq!(rest.as_bytes(), raw.stderr, "{}", dump.display());
        let explained = ptwalk_on("translate", dump, true, None, &explain);
        assert_eq!(explained.stdout, raw_explained.stdout, "{}", dump.display());
    }
}

#[test]
fn pte_on_a_crash_dump_matches_the_raw_image() {
    let memory = windows_image();
    let pages = pages_of(&memory);
    let raw = write_temp("pte-raw", &memory);
    // Holes: page 0 and page 5 are left out (nothing reads them).
    let full = write_temp("pte-full.dmp", &crash_dump::full(0x1000, &pages, &[(1, 4)]));
    let bitmap = write_temp("pte-bitmap.dmp", &crash_dump::bitmap(0x1000, &pages));
    let args = ["--maxphyaddr", "46", "0x401000", "402000"];
    let want = ptwalk(
        &[
            &["pte", "--image", raw.to_str().unwrap(), "--cr3", "0x1000"],
            &args[..],
        ]
        .concat(),
    );
    assert!(want.status.success(), "{want:?}");
    assert!(stdout(&want).contains("Transition: 891f"));
    for dump in [&full, &bitmap] {
        let output = ptwalk(&[&["pte", "--image", dump.to_str().unwrap()], &args[..]].concat());
        assert!(output.status.success(), "{output:?}");
        assert_eq!(stdout(&output), stdout(&want), "{}", dump.display());
    }
}

#[test]
fn cr3_given_overrides_the_dump_header_and_is_required_elsewhere() {
    let pages = pages_of(&tiny_image());
    // The header's CR3 is wrong (a data page): --cr3 puts it right.
    let dump = write_temp("override.dmp", &crash_dump::bitmap(0x5000, &pages));
    let image = dump.to_str().unwrap();
    let mut args = vec!["translate", "--image", image, "--cr3", "0x1000"];
    args.extend(ADDRESSES);
    let output = ptwalk(&args);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), ANSWERS);
    let header_cr3 = ptwalk(&["translate", "--image", image, "0x401008", "0x600123"]);
    assert_eq!(stdout(&header_cr3), "0x401008 -\n0x600123 -\n");

    let raw = write_temp("nocr3", &tiny_image());
    assert_one_line_error(
        &ptwalk(&["translate", "--image", raw.to_str().unwrap(), "0x401008"]),
        1,
        "--cr3 is required: ",
    );
}

/// A la48 full dump with one more page: a kernel module list whose entry
/// points to itself, never back to its head (`PsLoadedModuleList`).
fn dump_with_endless_module_list() -> (GuestImages, PathBuf) {
    let guest = guest_images("la48");
    let mut pages = guest.fixture.tables.page_bytes();
    // A kernel address QEMU maps to a page that is not a page table.
    let (va, pa) = guest
        .fixture
        .gva2gpa
        .iter()
        .find_map(|&(va, pa)| {
            let pa = pa?;
            (va >> 63 == 1 && !pages.contains_key(&(pa & !0xfff)) && pa & 0xfff < 0x800)
                .then_some((va, pa))
        })
        .expect("a mapped kernel data page");
    let mut page = vec![0u8; PAGE];
    let at = usize::try_from(pa & 0xfff).unwrap();
    // LIST_ENTRY head at va: Flink = va + 0x100; the entry there (an
    // LDR_DATA_TABLE_ENTRY, names of length 0) has Flink = itself.
    crash_dump::put_u64(&mut page, at, va + 0x100);
    crash_dump::put_u64(&mut page, at + 0x100, va + 0x100);
    pages.insert(pa & !0xfff, page);
    let mut dump = crash_dump::full(guest.cr3, &pages, &crash_dump::runs_covering(&pages, 4));
    crash_dump::put_u64(&mut dump, crash_dump::PS_LOADED_MODULE_LIST, va);
    let path = write_temp("endless-modules.dmp", &dump);
    (guest, path)
}

#[test]
fn an_endless_module_list_does_not_stop_ptwalk() {
    let (guest, path) = dump_with_endless_module_list();
    let (va, pa) = guest
        .fixture
        .gva2gpa
        .iter()
        .find(|(_, pa)| pa.is_some())
        .unwrap();
    let start = Instant::now();
    let output = ptwalk_on("translate", &path, false, None, &[format!("{va:#x}")]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), format!("{va:#x} {:#x}\n", pa.unwrap()));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );

    // kdmp-parser left to itself follows that list forever: so the dump
    // above does reach the loop ptwalk steps around.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let opened = kdmp_parser::parse::KernelDumpParser::new(&path).is_ok();
        let _ = done.send(opened);
    });
    assert_eq!(
        finished.recv_timeout(Duration::from_secs(2)),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout),
        "kdmp-parser finished opening the dump by itself"
    );
}

#[test]
fn bad_crash_dumps_get_one_line_and_a_nonzero_exit() {
    let pages = pages_of(&tiny_image());
    let full = crash_dump::full(0x1000, &pages, &[(0, 8)]);
    let bitmap = crash_dump::bitmap(0x1000, &pages);
    let check = |name: &str, bytes: &[u8], needle: &str| {
        let path = write_temp(name, bytes);
        let start = Instant::now();
        let output = ptwalk(&["translate", "--image", path.to_str().unwrap(), "0x401008"]);
        assert_one_line_error(&output, 1, needle);
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("is not a usable Windows crash dump"),
            "{output:?}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{name}: {:?}",
            start.elapsed()
        );
    };
    // Cut inside the last page, and inside the header.
    check("cut.dmp", &full[..full.len() - 100], "truncated");
    check(
        "cut-header.dmp",
        &full[..0x1000],
        "shorter than a crash dump header",
    );
    check(
        "cut-bitmap.dmp",
        &bitmap[..bitmap.len() - PAGE],
        "truncated",
    );
    // `PAGE` but not `DU64`; a type kdmp-parser does not read (2, a
    // summary dump: 32-bit and triage dumps are named in
    // tests/ptwalk_wrong_inputs.rs); a machine ptwalk does not walk
    // (0x14c: IMAGE_FILE_MACHINE_I386).
    let mut bad = full.clone();
    bad[4..8].copy_from_slice(b"XX64");
    check("signature.dmp", &bad, "valid dump looks wrong");
    let mut summary = full.clone();
    crash_dump::put_u32(&mut summary, crash_dump::DUMP_TYPE, 2);
    check("summary.dmp", &summary, "unsupported dump type 0x2");
    let mut i386 = full.clone();
    crash_dump::put_u32(&mut i386, crash_dump::MACHINE_IMAGE_TYPE, 0x14c);
    check(
        "i386.dmp",
        &i386,
        "its MachineImageType (at 0x30) is 0x14c, neither x64's 0x8664 nor ARM64's 0xAA64",
    );
    // A bitmap that claims every page of 64 TiB, and a run of 2^40 pages, in
    // small files: refused before anything builds a map of them.
    let mut claims = bitmap;
    crash_dump::put_u64(&mut claims, crash_dump::BITMAP_PAGES, 1 << 34);
    claims.truncate(crash_dump::BITMAP_START);
    claims.resize(crash_dump::BITMAP_START + (4 << 20), 0xff);
    check("claims.dmp", &claims, "claims 33554432 pages but the");
    let mut run = full;
    crash_dump::put_u64(&mut run, crash_dump::PHYSICAL_MEMORY_BLOCK + 24, 1 << 40);
    check("run.dmp", &run, "claims 1099511627776 pages");
}

#[test]
fn addresses_come_from_a_file_or_standard_input_too() {
    let raw = write_temp("addrfile", &tiny_image());
    let image = raw.to_str().unwrap();
    let list = write_temp(
        "addrlist",
        b"0x600123\n  0x800000 0x402000\n0x8000000000000000\n",
    );
    let output = ptwalk(&[
        "translate",
        "--image",
        image,
        "--cr3",
        "0x1000",
        "0x401008",
        "--addresses-from",
        list.to_str().unwrap(),
    ]);
    assert_eq!(
        stdout(&output),
        ANSWERS,
        "listed first, then the file's, in order"
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_ptwalk"))
        .args([
            "translate",
            "--image",
            image,
            "--cr3",
            "0x1000",
            "--addresses-from",
            "-",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        ADDRESSES.join("\n").as_bytes(),
    )
    .unwrap();
    drop(child.stdin.take());
    let output = child.wait_with_output().unwrap();
    assert_eq!(stdout(&output), ANSWERS);
    let bad = write_temp("addrbad", b"0x401008\nnot-hex\n");
    let output = ptwalk(&[
        "translate",
        "--image",
        image,
        "--cr3",
        "0x1000",
        "--addresses-from",
        bad.to_str().unwrap(),
    ]);
    assert_one_line_error(&output, 1, "line 2: 'not-hex' is not a 64-bit hex number");
}

#[test]
fn maxphyaddr_is_a_bit_count_in_decimal_or_0x_hex() {
    let raw = write_temp("maxphy", &tiny_image());
    let image = raw.to_str().unwrap();
    for bits in ["46", "0x2e"] {
        let output = ptwalk(&[
            "translate",
            "--image",
            image,
            "--cr3",
            "0x1000",
            "--maxphyaddr",
            bits,
            "0x401008",
        ]);
        assert_eq!(stdout(&output), "0x401008 0x5008\n", "--maxphyaddr {bits}");
    }
    let output = ptwalk(&[
        "translate",
        "--image",
        image,
        "--cr3",
        "0x1000",
        "--maxphyaddr",
        "2e",
        "0x401008",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .starts_with("ptwalk: invalid value '2e' for '--maxphyaddr")
    );
}

#[test]
fn a_cr3_without_a_page_table_gets_a_hint() {
    let raw = write_temp("notable", &tiny_image());
    // Physical page 0 of the tiny image holds nothing.
    let output = ptwalk(&[
        "translate",
        "--image",
        raw.to_str().unwrap(),
        "--cr3",
        "0",
        "0x401008",
    ]);
    assert_eq!(stdout(&output), "0x401008 -\n");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).lines().next(),
        Some(
            "ptwalk: hint: the table at CR3 (0x0) has no present entry: is --cr3 the address of a top-level page table?"
        )
    );
}

// An AArch64 image: TTBR1's tables at 0x1000 (L0), 0x2000 (L1), 0x3000
// (L2, a 2 MiB block at 0xffff_ff00_0020_0000 -> 0x4000_0000) and 0x4000
// (L3: 0xffff_ff00_0040_3000 -> 0x8000, EL0 read-write and UXN; the next
// page -> 0x9000 with AF clear). TCR_EL1: T0SZ = T1SZ = 16, TG1 4 KiB, IPS 48 bits.
fn aarch64_image() -> (Vec<u8>, &'static str) {
    let mut image = vec![0_u8; 0x5000];
    let mut put =
        |at: usize, descriptor: u64| image[at..at + 8].copy_from_slice(&descriptor.to_le_bytes());
    let (table, block, page, af) = (0b11, 0b01, 0b11, 1 << 10);
    put(0x1000 + 8 * 0x1fe, 0x2000 | table);
    put(0x2000, 0x3000 | table);
    put(0x3000 + 8, 0x4000_0000 | af | block);
    put(0x3000 + 16, 0x4000 | table);
    put(0x4000 + 8 * 3, 0x8000 | af | page | 1 << 6 | 1 << 54);
    put(0x4000 + 8 * 4, 0x9000 | page);
    (image, "0x580100010")
}

#[test]
fn aarch64_images_translate_explain_and_dump() {
    let (image, tcr) = aarch64_image();
    let raw = write_temp("a64", &image);
    let core = write_temp("a64elf", &elf_core(&image));
    for file in [&raw, &core] {
        let file = file.to_str().unwrap();
        let args = [
            "translate",
            "--arch",
            "aarch64",
            "--image",
            file,
            "--ttbr1",
            "1000",
            "--tcr",
            tcr,
        ];
        let output = ptwalk(
            &[
                &args[..],
                &[
                    "ffffff0000234567",
                    "ffffff0000403123",
                    "ffffff0000405000",
                    "feffff0000200000",
                    "0",
                ],
            ]
            .concat(),
        );
        assert_eq!(
            stdout(&output),
            "0xffffff0000234567 0x40034567\n0xffffff0000403123 0x8123\n0xffffff0000405000 -\n0xfeffff0000200000 -\n0x0 -\n",
            "{file}"
        );
    }
    let file = raw.to_str().unwrap();
    let base = [
        "--arch", "aarch64", "--image", file, "--ttbr1", "1000", "--tcr", tcr,
    ];
    let explained = stdout(&ptwalk(
        &[
            &["translate"][..],
            &base,
            &[
                "--explain",
                "ffffff0000403123",
                "ffffff0000405000",
                "feffff0000200000",
                "0",
            ],
        ]
        .concat(),
    ));
    for wanted in [
        "    level 3 at phys 0x4018: 0x0040000000008443 (page)",
        "    => 4K page at 0x8000, EL1 rw, EL0 rw, EL1 nx, EL0 nx, NSH, AttrIndx 0",
        "    level 3 at phys 0x4028: 0x0000000000000000 (invalid)",
        "    => Translation fault, level 3: descriptor 0x0000000000000000 is invalid (bit 0 clear)",
        "    => Translation fault, level 0: the address is outside both ranges",
        "    => Translation fault, level 0: walks through TTBR0_EL1 are disabled (TCR_EL1.EPD)",
    ] {
        assert!(
            explained.lines().any(|line| line.starts_with(wanted)),
            "{wanted}\n{explained}"
        );
    }
    let dump = stdout(&ptwalk(&[&["dump"][..], &base].concat()));
    assert_eq!(
        dump,
        "0xffffff0000200000-0xffffff00003fffff -> 0x40000000 TTBR1_EL1 2M x1: EL1 rw, EL0 -, EL1 x, EL0 x, NSH, AttrIndx 0\n\
         0xffffff0000403000-0xffffff0000403fff -> 0x8000 TTBR1_EL1 4K x1: EL1 rw, EL0 rw, EL1 nx, EL0 nx, NSH, AttrIndx 0\n\
         0xffffff0000404000-0xffffff0000404fff -> 0x9000 TTBR1_EL1 4K x1: EL1 rw, EL0 -, EL1 x, EL0 x, NSH, AttrIndx 0, AF clear (Access flag fault)\n"
    );
}

/// `--json`'s keys, in order, on both architectures (docs/walker.md).
const JSON_KEYS: [&str; 7] = ["va", "arch", "pa", "page_size", "mapping", "path", "error"];

/// Every line of `translate --json`'s stdout parsed, each with the keys of
/// [`JSON_KEYS`] in their order and no other, its `error.reason` (the
/// walker's sentence) taken out and returned beside it.
fn json_lines(output: &Output) -> Vec<(serde_json::Value, Option<String>)> {
    stdout(output)
        .lines()
        .map(|line| {
            let mut object: serde_json::Value = serde_json::from_str(line).expect(line);
            let mut keys: Vec<&str> = object
                .as_object()
                .expect(line)
                .keys()
                .map(String::as_str)
                .collect();
            let mut documented = JSON_KEYS;
            keys.sort_unstable();
            documented.sort_unstable();
            assert_eq!(keys, documented, "{line}");
            // No nested object has a key of these names: the first of each is its own.
            let at = JSON_KEYS.map(|key| line.find(&format!("\"{key}\":")));
            assert!(at.is_sorted(), "{line}");
            let reason = object["error"].as_object_mut().map(|error| {
                let reason = error.remove("reason").expect(line);
                reason.as_str().expect(line).to_owned()
            });
            (object, reason)
        })
        .collect()
}

/// `lines` are `expected`: each object (without its reason) as the JSON
/// text given, and the reason (errors only) containing the words given.
fn assert_json_lines(
    lines: &[(serde_json::Value, Option<String>)],
    expected: &[(&str, Option<&str>)],
) {
    assert_eq!(lines.len(), expected.len(), "{lines:?}");
    for ((object, reason), (want, words)) in lines.iter().zip(expected) {
        let want: serde_json::Value = serde_json::from_str(want).expect(want);
        assert_eq!(object, &want);
        match (reason, words) {
            (Some(reason), Some(words)) => assert!(reason.contains(words), "{reason}"),
            (None, None) => {}
            _ => panic!("an error has a reason, a page none: {object}"),
        }
    }
}

/// `--json` on x86-64 (the tiny image, and PD[5] -> a page table beyond
/// its end): one line per address with the keys ARM64's have too, and each
/// case (pages of two sizes, each kind of error) with the values the
/// tables were built with.
#[test]
fn json_on_x86_64_shows_each_case_in_the_one_schema() {
    let mut image = tiny_image();
    image[0x3028..0x3030].copy_from_slice(&(0x10_0000_u64 | 0x3).to_le_bytes());
    let raw = write_temp("json-x86", &image);
    let output = ptwalk(&[
        "translate",
        "--json",
        "--image",
        raw.to_str().unwrap(),
        "--cr3",
        "0x1000",
        "0x401008",
        "0x600123",
        "0x800000",
        "0x402000",
        "0x8000000000000000",
        "0xa00000",
    ]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a table is missing: {output:?}"
    );
    assert_json_lines(
        &json_lines(&output),
        &[
            (
                r#"{"va":"0x401008","arch":"x86_64","pa":"0x5008","page_size":"4K",
                "mapping":{"writable":true,"user":false,"executable":false,"global":false,"dirty":true,"accessed":true,"pat_index":0},
                "path":[{"level":"PML4E","entry_addr":"0x1000","value":"0x2007"},{"level":"PDPTE","entry_addr":"0x2000","value":"0x3007"},
                {"level":"PDE","entry_addr":"0x3010","value":"0x4003"},{"level":"PTE","entry_addr":"0x4008","value":"0x8000000000005063"}],
                "error":null}"#,
                None,
            ),
            (
                r#"{"va":"0x600123","arch":"x86_64","pa":"0x600123","page_size":"2M",
                "mapping":{"writable":true,"user":false,"executable":true,"global":true,"dirty":false,"accessed":false,"pat_index":0},
                "path":[{"level":"PML4E","entry_addr":"0x1000","value":"0x2007"},{"level":"PDPTE","entry_addr":"0x2000","value":"0x3007"},
                {"level":"PDE","entry_addr":"0x3018","value":"0x600183"}],
                "error":null}"#,
                None,
            ),
            (
                r#"{"va":"0x800000","arch":"x86_64","pa":null,"page_size":null,"mapping":null,
                "path":[{"level":"PML4E","entry_addr":"0x1000","value":"0x2007"},{"level":"PDPTE","entry_addr":"0x2000","value":"0x3007"},
                {"level":"PDE","entry_addr":"0x3020","value":"0x602083"}],
                "error":{"kind":"reserved_bit","level":"PDE"}}"#,
                Some("bits 20:13"),
            ),
            (
                r#"{"va":"0x402000","arch":"x86_64","pa":null,"page_size":null,"mapping":null,
                "path":[{"level":"PML4E","entry_addr":"0x1000","value":"0x2007"},{"level":"PDPTE","entry_addr":"0x2000","value":"0x3007"},
                {"level":"PDE","entry_addr":"0x3010","value":"0x4003"},{"level":"PTE","entry_addr":"0x4010","value":"0x500000800"}],
                "error":{"kind":"not_present","level":"PTE"}}"#,
                Some("PTE 0x0000000500000800 is not present"),
            ),
            (
                r#"{"va":"0x8000000000000000","arch":"x86_64","pa":null,"page_size":null,"mapping":null,"path":[],
                "error":{"kind":"non_canonical","level":null}}"#,
                Some("not canonical"),
            ),
            (
                r#"{"va":"0xa00000","arch":"x86_64","pa":null,"page_size":null,"mapping":null,
                "path":[{"level":"PML4E","entry_addr":"0x1000","value":"0x2007"},{"level":"PDPTE","entry_addr":"0x2000","value":"0x3007"},
                {"level":"PDE","entry_addr":"0x3028","value":"0x100003"}],
                "error":{"kind":"read_failed","level":"PTE"}}"#,
                Some("0x100000"),
            ),
        ],
    );
}

/// `aarch64_image`, with a reserved encoding at L3[6], a page at 4 GiB at
/// L3[7] and L2[3] -> a table beyond the image, in a temporary file.
fn aarch64_json_image() -> (PathBuf, &'static str) {
    let (mut image, tcr) = aarch64_image();
    let mut put =
        |at: usize, descriptor: u64| image[at..at + 8].copy_from_slice(&descriptor.to_le_bytes());
    put(0x4000 + 8 * 6, 0xa000 | 1 << 10 | 0b01);
    put(0x4000 + 8 * 7, 0x1_0000_0000 | 1 << 10 | 0b11);
    put(0x3000 + 8 * 3, 0x10_0000 | 0b11);
    (write_temp("json-a64", &image), tcr)
}

/// `translate --json --arch aarch64` of `addresses` on `file`, from TTBR1 0x1000.
fn translate_aarch64_json(file: &Path, tcr: &str, addresses: &[&str]) -> Output {
    let base = [
        "translate",
        "--json",
        "--arch",
        "aarch64",
        "--image",
        file.to_str().unwrap(),
        "--ttbr1",
        "1000",
        "--tcr",
        tcr,
    ];
    ptwalk(&[&base[..], addresses].concat())
}

/// `--json` on ARM64 ([`aarch64_json_image`]; the page at 4 GiB is beyond a
/// 32-bit IPS): the keys x86-64's have, and each case with the values the
/// tables were built with.
#[test]
fn json_on_aarch64_shows_each_case_in_the_one_schema() {
    let (file, tcr) = aarch64_json_image();
    let addresses = "ffffff0000234567 ffffff0000403123 ffffff0000404000 ffffff0000405000 \
                     ffffff0000406000 feffff0000200000 0 ffffff0000600000";
    let addresses: Vec<&str> = addresses.split_whitespace().collect();
    let output = translate_aarch64_json(&file, tcr, &addresses);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a table is missing: {output:?}"
    );
    // The same registers but IPS = 0b000: a 32-bit output address size.
    let small = translate_aarch64_json(&file, "0x80100010", &["ffffff0000407000"]);
    assert_eq!(small.status.code(), Some(0), "{small:?}");
    assert_json_lines(
        &[json_lines(&output), json_lines(&small)].concat(),
        &[
            (
                r#"{"va":"0xffffff0000234567","arch":"aarch64","pa":"0x40034567","page_size":"2M",
                "mapping":{"range":"TTBR1_EL1","el1_write":true,"el0_read":false,"el0_write":false,"el1_execute":true,"el0_execute":true,
                "attr_index":0,"global":true,"accessed":true},
                "path":[{"level":"level 0","entry_addr":"0x1ff0","value":"0x2003"},{"level":"level 1","entry_addr":"0x2000","value":"0x3003"},
                {"level":"level 2","entry_addr":"0x3008","value":"0x40000401"}],
                "error":null}"#,
                None,
            ),
            // EL0 may write it (AP[1]), so EL1 may not execute it; UXN.
            (
                r#"{"va":"0xffffff0000403123","arch":"aarch64","pa":"0x8123","page_size":"4K",
                "mapping":{"range":"TTBR1_EL1","el1_write":true,"el0_read":true,"el0_write":true,"el1_execute":false,"el0_execute":false,
                "attr_index":0,"global":true,"accessed":true},
                "path":[{"level":"level 0","entry_addr":"0x1ff0","value":"0x2003"},{"level":"level 1","entry_addr":"0x2000","value":"0x3003"},
                {"level":"level 2","entry_addr":"0x3010","value":"0x4003"},{"level":"level 3","entry_addr":"0x4018","value":"0x40000000008443"}],
                "error":null}"#,
                None,
            ),
            // AF clear: it translates, not accessed.
            (
                r#"{"va":"0xffffff0000404000","arch":"aarch64","pa":"0x9000","page_size":"4K",
                "mapping":{"range":"TTBR1_EL1","el1_write":true,"el0_read":false,"el0_write":false,"el1_execute":true,"el0_execute":true,
                "attr_index":0,"global":true,"accessed":false},
                "path":[{"level":"level 0","entry_addr":"0x1ff0","value":"0x2003"},{"level":"level 1","entry_addr":"0x2000","value":"0x3003"},
                {"level":"level 2","entry_addr":"0x3010","value":"0x4003"},{"level":"level 3","entry_addr":"0x4020","value":"0x9003"}],
                "error":null}"#,
                None,
            ),
            (
                r#"{"va":"0xffffff0000405000","arch":"aarch64","pa":null,"page_size":null,"mapping":null,
                "path":[{"level":"level 0","entry_addr":"0x1ff0","value":"0x2003"},{"level":"level 1","entry_addr":"0x2000","value":"0x3003"},
                {"level":"level 2","entry_addr":"0x3010","value":"0x4003"},{"level":"level 3","entry_addr":"0x4028","value":"0x0"}],
                "error":{"kind":"not_present","level":"level 3"}}"#,
                Some("level 3: descriptor 0x0000000000000000 is invalid"),
            ),
            (
                r#"{"va":"0xffffff0000406000","arch":"aarch64","pa":null,"page_size":null,"mapping":null,
                "path":[{"level":"level 0","entry_addr":"0x1ff0","value":"0x2003"},{"level":"level 1","entry_addr":"0x2000","value":"0x3003"},
                {"level":"level 2","entry_addr":"0x3010","value":"0x4003"},{"level":"level 3","entry_addr":"0x4030","value":"0xa401"}],
                "error":{"kind":"reserved_encoding","level":"level 3"}}"#,
                Some("reserved encoding"),
            ),
            (
                r#"{"va":"0xfeffff0000200000","arch":"aarch64","pa":null,"page_size":null,"mapping":null,"path":[],
                "error":{"kind":"non_canonical","level":null}}"#,
                Some("outside both ranges"),
            ),
            (
                r#"{"va":"0x0","arch":"aarch64","pa":null,"page_size":null,"mapping":null,"path":[],
                "error":{"kind":"walks_disabled","level":null}}"#,
                Some("TTBR0_EL1"),
            ),
            (
                r#"{"va":"0xffffff0000600000","arch":"aarch64","pa":null,"page_size":null,"mapping":null,
                "path":[{"level":"level 0","entry_addr":"0x1ff0","value":"0x2003"},{"level":"level 1","entry_addr":"0x2000","value":"0x3003"},
                {"level":"level 2","entry_addr":"0x3018","value":"0x100003"}],
                "error":{"kind":"read_failed","level":"level 3"}}"#,
                Some("0x100000"),
            ),
            (
                r#"{"va":"0xffffff0000407000","arch":"aarch64","pa":null,"page_size":null,"mapping":null,
                "path":[{"level":"level 0","entry_addr":"0x1ff0","value":"0x2003"},{"level":"level 1","entry_addr":"0x2000","value":"0x3003"},
                {"level":"level 2","entry_addr":"0x3010","value":"0x4003"},{"level":"level 3","entry_addr":"0x4038","value":"0x100000403"}],
                "error":{"kind":"address_size","level":"level 3"}}"#,
                Some("0x100000000, beyond the 32-bit PA size"),
            ),
        ],
    );
}

#[test]
fn aarch64_bad_input_gets_one_line() {
    let (image, tcr) = aarch64_image();
    let raw = write_temp("a64bad", &image);
    let file = raw.to_str().unwrap();
    let translate = |args: &[&str]| {
        let common = ["translate", "--arch", "aarch64", "--image", file];
        ptwalk(&[&common[..], args].concat())
    };
    let output = translate(&["--ttbr1", "1000", "0"]);
    assert_one_line_error(&output, 1, "--tcr is required with --arch aarch64");
    let output = translate(&["--tcr", tcr, "0"]);
    assert_one_line_error(&output, 1, "--arch aarch64 needs --ttbr0 or --ttbr1");
    let output = translate(&["--ttbr1", "1000", "--tcr", tcr, "--cr3", "1000", "0"]);
    assert_one_line_error(&output, 1, "describe an x86-64 CPU, not --arch aarch64");
    // A 64 KiB granule (TG1 = 0b11) is not walked.
    let output = translate(&["--ttbr1", "1000", "--tcr", "0x5c0100010", "0"]);
    assert_one_line_error(&output, 1, "describes no translation ptwalk walks");
    // Tables beyond the image: the address is printed, then one line.
    let output = translate(&["--ttbr1", "100000", "--tcr", tcr, "ffffff0000234567"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "0xffffff0000234567 -\n");
    // `pte`: this image has no self-map; the L1TF mask is x64's.
    let pte = |args: &[&str]| {
        let common = [
            "pte", "--arch", "aarch64", "--image", file, "--ttbr1", "1000", "--tcr", tcr,
        ];
        ptwalk(&[&common[..], args].concat())
    };
    let output = pte(&["ffffff0000234567"]);
    assert_one_line_error(
        &output,
        1,
        "no level 0 descriptor of TTBR1_EL1's table maps the page it is in",
    );
    let output = pte(&["--invalid-pte-mask", "0", "ffffff0000234567"]);
    assert_one_line_error(&output, 1, "--invalid-pte-mask is x64 Windows' L1TF mask");
}

/// The README's x86-64 sample.
const TINY_SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/tiny.raw");

/// The README's ARM64 sample with its registers.
fn arm64_sample() -> Vec<&'static str> {
    [
        &["--image", ptwalk_run::ARM64_SAMPLE][..],
        &ptwalk_run::ARM64_SAMPLE_REGISTERS,
    ]
    .concat()
}

/// `dump --arch aarch64` on the README's sample: the self-map's 2 MiB block,
/// read one level down, is a reserved encoding; `dump` names it on stderr,
/// lists every other run (the kernel's block after it, from
/// `scripts/make-samples.py`'s tables) and exits 0, as on x86-64.
#[test]
fn aarch64_dump_goes_past_entries_it_cannot_follow() {
    let output = ptwalk(&[&["dump"], &arm64_sample()[..]].concat());
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let out = stdout(&output);
    assert!(
        out.contains("0xfffff80000200000-0xfffff800003fffff -> 0x23ea00000 TTBR1_EL1 2M x1"),
        "{out}"
    );
    assert!(out.contains("0xfffff80000405000-0xfffff80000405fff -> 0x8000 TTBR1_EL1 4K x1"));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "ptwalk: skipped: 0xffffa8fc00001000 does not translate: Translation fault, level 3: descriptor 0x004000023ea00781 is a reserved encoding (bits 1:0 = 0b01)\n"
    );
}

/// A segment whose file bytes end inside a page (`p_filesz` 0x1800,
/// `p_memsz` 0x2000): the page's rest reads as zero (ELF's rule), not as the
/// next segment's bytes that follow in the file, also after a read of the
/// page's first half.
#[test]
fn memory_past_a_segments_file_bytes_reads_zero_after_a_read_before_it() {
    // PML4 at 0x1000: entry 0 -> PDPT 0x2000 (the second segment) -> PD
    // 0x3000 -> PT 0x4000 -> 0x5000. Entry 511 lies at 0x1ff8, past the
    // first segment's file bytes: zero, not present.
    let mut low = vec![0u8; 0x1800];
    low[0x1000..0x1008].copy_from_slice(&0x2067_u64.to_le_bytes());
    let mut high = vec![0u8; 0x4000];
    for (at, value) in [(0, 0x3067_u64), (0x1000, 0x4067), (0x2000, 0x5067)] {
        high[at..at + 8].copy_from_slice(&value.to_le_bytes());
    }
    // Whatever follows in the file must not be read as the first segment's.
    high[0x7f8..0x800].copy_from_slice(&0x2067_u64.to_le_bytes());
    let core = write_temp(
        "partial.elf",
        &elf_core_of(&[(0, &low, 0x2000), (0x2000, &high, 0x4000)]),
    );
    let output = ptwalk(&[
        "translate",
        "--image",
        core.to_str().unwrap(),
        "--cr3",
        "1000",
        "123",
        "ffffff8000000123",
    ]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), "0x123 0x5123\n0xffffff8000000123 -\n");
}

/// A bitmap dump's last bitmap byte may have bits set past `Pages` (9 pages:
/// bits 9 to 15): they are no pages, and a file that holds the 9 is not
/// "truncated" for them.
#[test]
fn bitmap_bits_past_the_page_count_are_not_pages() {
    let mut pages = pages_of(&tiny_image());
    pages.insert(8 * PAGE as u64, vec![0; PAGE]);
    let mut dump = crash_dump::bitmap(0x1000, &pages);
    assert_eq!(
        u64::from_le_bytes(dump[crash_dump::BITMAP_PAGES..][..8].try_into().unwrap()),
        9
    );
    dump[crash_dump::BITMAP_START + 1] |= 0xfe;
    let path = write_temp("spare-bits.dmp", &dump);
    let output = ptwalk(
        &[
            &["translate", "--image", path.to_str().unwrap()],
            &ADDRESSES[..],
        ]
        .concat(),
    );
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), ANSWERS);
}

/// Found by the image-reader fuzz target's second reading: a segment that
/// starts inside a page is read by address (no page cache across its start),
/// and one with more file bytes than memory is refused in one line.
#[test]
fn elf_segments_off_page_boundaries_or_with_too_many_file_bytes() {
    // PML4 at 0x1000 in a segment starting at 0x800; entry 0 -> 0x2067.
    let mut bytes = vec![0u8; 0x4800];
    for (at, value) in [
        (0x800, 0x2067_u64),
        (0x1800, 0x3067),
        (0x2800, 0x4067),
        (0x3808, 0x5067),
    ] {
        bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
    }
    let core = write_temp("unaligned.elf", &elf_core_of(&[(0x800, &bytes, 0x4800)]));
    let output = ptwalk(&[
        "translate",
        "--image",
        core.to_str().unwrap(),
        "--cr3",
        "1000",
        "1123",
    ]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), "0x1123 0x5123\n");

    let core = write_temp("file-over-memory.elf", &elf_core_of(&[(0, &bytes, 0x800)]));
    let output = ptwalk(&[
        "translate",
        "--image",
        core.to_str().unwrap(),
        "--cr3",
        "1000",
        "0",
    ]);
    assert_one_line_error(
        &output,
        1,
        "has more file bytes (0x4800) than memory (0x800)",
    );
}

/// The README's sample cut to 20,000 bytes: the walk of `7ff6c0001234`
/// needs the PDPT at 0x5000, which is gone.
fn truncated_sample() -> PathBuf {
    let sample = std::fs::read(TINY_SAMPLE).unwrap();
    write_temp("truncated-sample.raw", &sample[..20_000])
}

/// `pte` where the image lacks a table: `WinDbg`'s words for a dump that lacks
/// the page (tests/windbg/18: the addresses, `Page <pfn> not present in the
/// dump file...`, `Unable to get PXE <the unread entry's address>`), then one
/// line on stderr and exit 1, as `translate`.
#[test]
fn pte_on_an_image_that_lacks_a_table_says_so_and_fails() {
    let image = truncated_sample();
    let output = ptwalk(&[
        "pte",
        "--image",
        image.to_str().unwrap(),
        "--cr3",
        "1000",
        "7ff6c0001234",
    ]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(
        stdout(&output),
        "                                           VA 00007ff6c0001234
PXE at FFFFD1E8F47A37F8    PPE at FFFFD1E8F46FFED8    PDE at FFFFD1E8DFFDB000    PTE at FFFFD1BFFB600008
Page 5 not present in the dump file. Type \".hh dbgerr004\" for details
Unable to get PXE FFFFD1E8F46FFED8
"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.lines().last(),
        Some("ptwalk: 1 address(es) need page tables that are not in the image")
    );
    let translate = ptwalk(&[
        "translate",
        "--image",
        image.to_str().unwrap(),
        "--cr3",
        "1000",
        "7ff6c0001234",
    ]);
    assert_eq!(translate.status.code(), Some(1));
}

/// `pte` on an address outside the address space: one line in place of the
/// block, the others still shown, exit 1 (x86-64 and ARM64 alike).
#[test]
fn pte_on_an_address_outside_the_address_space_is_one_line_and_fails() {
    let sample = TINY_SAMPLE;
    let output = ptwalk(&[
        "pte",
        "--image",
        sample,
        "--cr3",
        "1000",
        "8000000000000000",
        "fffff80000405008",
    ]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let out = stdout(&output);
    assert!(
        out.starts_with(
            "0x8000000000000000: the address is not canonical for 48-bit linear addresses\n\n"
        ),
        "{out}"
    );
    assert!(out.contains("VA fffff80000405008"), "{out}");
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .ends_with("ptwalk: 1 address(es) are outside the address space\n")
    );
    let output = ptwalk(&[&["pte"], &arm64_sample()[..], &["0080000000000000"]].concat());
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(stdout(&output).lines().count(), 1, "{output:?}");
}

/// A wrong CR3 gets its hint with one address, and `dump` gets one when it
/// finds nothing mapped.
#[test]
fn a_wrong_cr3_is_hinted_at_for_one_address_and_for_dump() {
    let sample = TINY_SAMPLE;
    let output = ptwalk(&[
        "translate",
        "--image",
        sample,
        "--cr3",
        "2000",
        "fffff80000203450",
    ]);
    assert_eq!(stdout(&output), "0xfffff80000203450 -\n");
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("ptwalk: hint: 0xfffff80000203450 does not translate: is --cr3 right"),
        "{output:?}"
    );
    let output = ptwalk(&["dump", "--image", sample, "--cr3", "7000"]);
    assert!(output.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("ptwalk: hint: no page is mapped from CR3 0x7000: is --cr3 right"),
        "{output:?}"
    );
}

/// The options' second hour: `--os` implies `--explain` and is refused with
/// `--json`; ARM64 registers without `--arch aarch64` say so; the help names
/// both architectures; `--addresses-from` takes comments, commas, several
/// files, and names standard input; no address names `--addresses-from`.
#[test]
fn options_say_what_they_need() {
    let sample = TINY_SAMPLE;
    let base = ["translate", "--image", sample, "--cr3", "1000"];
    let windows = ptwalk(&[&base[..], &["--os", "windows", "fffff80000406000"]].concat());
    assert!(
        stdout(&windows).contains("not valid: Transition: 1234, Protect: 4 - ReadWrite"),
        "{windows:?}"
    );
    let json = ptwalk(
        &[
            &base[..],
            &["--os", "windows", "--json", "fffff80000406000"],
        ]
        .concat(),
    );
    assert_eq!(json.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&json.stderr).lines().count(),
        1,
        "{json:?}"
    );
    let mask = ptwalk(&[&base[..], &["--invalid-pte-mask", "0", "fffff80000406000"]].concat());
    assert_one_line_error(
        &mask,
        1,
        "--invalid-pte-mask decodes Windows' software PTEs: it goes with --os windows",
    );
    let arm = ptwalk(&[
        "translate",
        "--image",
        sample,
        "--ttbr0",
        "1000",
        "--tcr",
        "615b5513511",
        "0",
    ]);
    assert_one_line_error(
        &arm,
        1,
        "--ttbr0, --ttbr1 and --tcr describe an ARM64 CPU: add --arch aarch64",
    );
    let help = ptwalk(&["--help"]);
    assert!(stdout(&help).contains("x86-64 and ARM64"));

    let list = write_temp(
        "addresses-commented",
        b"# kernel\nfffff80000203450, fffff80000405008 # two\n\n7ff6c0001234\n",
    );
    let more = write_temp("addresses-more", b"fffff80000406000\n");
    let output = ptwalk(
        &[
            &base[..],
            &[
                "--addresses-from",
                list.to_str().unwrap(),
                "--addresses-from",
                more.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    assert_eq!(
        stdout(&output),
        "0xfffff80000203450 0x23ea03450\n0xfffff80000405008 0x8008\n0x7ff6c0001234 0x9234\n0xfffff80000406000 -\n"
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_ptwalk"))
        .args([&base[..], &["--addresses-from", "-"]].concat())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"zz\n").unwrap();
    drop(child.stdin.take());
    let output = child.wait_with_output().unwrap();
    assert_one_line_error(
        &output,
        1,
        "standard input line 1: 'zz' is not a 64-bit hex number",
    );
    let none = ptwalk(&base);
    assert_one_line_error(
        &none,
        1,
        "no address given: list them in hex after the options, or give --addresses-from FILE",
    );
}
