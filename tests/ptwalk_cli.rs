//! The `ptwalk` command: output formats, raw images and ELF cores, and bad
//! input. Expected answers come from how the tables below are built.

use std::path::PathBuf;
use std::process::{Command, Output};

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
    let (ehdr, phdr) = (64_usize, 56_usize); // ELF64 header and program header sizes
    let half = memory.len() / 2;
    let data = ehdr + 2 * phdr;
    let mut elf = vec![0u8; data];
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
    elf[56..58].copy_from_slice(&2u16.to_le_bytes()); // e_phnum
    // Segment 0: the upper half first in the file; segment 1: the lower half.
    for (i, (paddr, offset)) in [(half, data), (0, data + half)].into_iter().enumerate() {
        let p = ehdr + i * phdr;
        elf[p..p + 4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        elf[p + 8..p + 16].copy_from_slice(&(offset as u64).to_le_bytes());
        elf[p + 24..p + 32].copy_from_slice(&(paddr as u64).to_le_bytes()); // p_paddr
        elf[p + 32..p + 40].copy_from_slice(&(half as u64).to_le_bytes()); // p_filesz
        elf[p + 40..p + 48].copy_from_slice(&(half as u64).to_le_bytes()); // p_memsz
    }
    elf.extend_from_slice(&memory[half..]);
    elf.extend_from_slice(&memory[..half]);
    elf
}

fn write_temp(name: &str, bytes: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("vmwalk-ptwalk-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path
}

fn ptwalk(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ptwalk"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
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
fn explain_and_json_say_why() {
    let raw = write_temp("explain", &tiny_image());
    let image = raw.to_str().unwrap();
    let explained = stdout(&ptwalk(&[
        "translate",
        "--image",
        image,
        "--cr3",
        "0x1000",
        "--explain",
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

    let json = stdout(&ptwalk(&[
        "translate",
        "--json",
        "--image",
        image,
        "--cr3",
        "0x1000",
        "0x401008",
        "0x800000",
        "0xffff800000000000",
    ]));
    let lines: Vec<&str> = json.lines().collect();
    assert!(lines[0].starts_with(r#"{"va":"0x401008","pa":"0x5008","page_size":"4K","writable":true,"user":false,"executable":false,"global":false,"dirty":true,"accessed":true"#), "{json}");
    assert!(
        lines[1].contains(r#""error":"reserved_bit","level":"PDE""#),
        "{json}"
    );
    assert!(
        lines[2].contains(r#""error":"not_present","level":"PML4E""#),
        "{json}"
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
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).lines().next(),
        Some("ptwalk: the following required arguments were not provided: <ADDR>...")
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
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).lines().next(),
        Some(
            "ptwalk: hint: none of the 2 addresses translates: is --cr3 right, and --la57 set if the CPU used 5-level paging?"
        )
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
    // Written by hand from WinDbg's layout (tests/windbg/) and the entry
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
