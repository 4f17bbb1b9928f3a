//! `ptwalk map`'s SVG, read back with an XML parser and checked against
//! what is known from outside it: the samples' layout (scripts/make-samples.py),
//! `ptwalk dump`'s lines, `translate --json` and `--explain` (each tested on
//! its own), the architectures' index arithmetic; then rendered by headless
//! Chromium, and the README's picture reproduced.

mod crash_dump;
#[path = "fixtures/mod.rs"]
mod fixtures;
mod map_capture;
mod ptwalk_run;

use std::path::{Path, PathBuf};
use std::process::Command;

use ptwalk_run::{ARM64_SAMPLE_REGISTERS, ptwalk};
use roxmltree::{Document, Node};
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn stdout_of(args: &[&str]) -> String {
    let output = ptwalk(args);
    assert!(output.status.success(), "ptwalk {args:?}: {output:?}");
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// A fresh directory under the system's temporary one.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vmwalk-map-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// `ptwalk map` with `args` and `--address` for each of `addresses`: the SVG.
fn map(args: &[&str], addresses: &[&str], dir: &Path) -> String {
    let svg = dir.join("map.svg");
    let mut all: Vec<String> = vec!["map".into()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    all.extend(["--svg".into(), svg.display().to_string()]);
    for address in addresses {
        all.extend(["--address".into(), (*address).to_owned()]);
    }
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let output = ptwalk(&all);
    assert!(output.status.success(), "ptwalk {all:?}: {output:?}");
    std::fs::read_to_string(&svg).expect("the SVG")
}

fn class_is(node: &Node, class: &str) -> bool {
    node.attribute("class") == Some(class)
}

fn elements<'a, 'i>(doc: &'a Document<'i>, class: &str) -> Vec<Node<'a, 'i>> {
    doc.descendants().filter(|n| class_is(n, class)).collect()
}

fn title<'a>(node: &Node<'a, '_>) -> &'a str {
    node.children()
        .find(|c| c.has_tag_name("title"))
        .and_then(|t| t.text())
        .unwrap_or_else(|| panic!("no <title> in {node:?}"))
}

fn hex(text: &str) -> u64 {
    u64::from_str_radix(text.trim_start_matches("0x"), 16)
        .unwrap_or_else(|_| panic!("{text:?} is not hex"))
}

fn attr_hex(node: &Node, name: &str) -> u64 {
    hex(node
        .attribute(name)
        .unwrap_or_else(|| panic!("no {name} on {node:?}")))
}

/// Every text of the element's subtree, joined by newlines.
fn texts(node: &Node) -> String {
    node.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A run's tooltip: `0x<first>-0x<last> -> 0x<pa> ...`, with its leaf count.
struct RunTitle {
    first: u64,
    last: u64,
    pa: u64,
    count: u64,
}

fn run_title(text: &str) -> RunTitle {
    let (range, rest) = text.split_once(" -> ").expect("a VA range");
    let (first, last) = range.split_once('-').expect("first-last");
    let pa = rest.split(' ').next().expect("a PA");
    let count = rest
        .split(' ')
        .find_map(|word| word.strip_prefix('x').map(|n| n.trim_end_matches(':')))
        .and_then(|n| n.parse().ok())
        .expect("x<count>");
    RunTitle {
        first: hex(first),
        last: hex(last),
        pa: hex(pa),
        count,
    }
}

/// x86-64 `dump`'s lines: each leaf's VA, PA and flags, the leaf's size
/// from its `P` flag (4 KiB or a large page, told apart by alignment).
fn x86_leaves(dump: &str) -> Vec<(u64, u64, String)> {
    dump.lines()
        .map(|line| {
            let (va, rest) = line.split_once(": ").expect("va: pa flags");
            let (pa, flags) = rest.split_once(' ').expect("pa flags");
            (hex(va), hex(pa), flags.to_owned())
        })
        .collect()
}

/// x86-64: every leaf `dump` lists is in the bar drawn for it, in order:
/// a run at the right physical offset, holding exactly its leaves, or runs
/// merged into one pixel, holding at least one leaf each. Returns the runs
/// drawn alone and those merged.
fn check_x86_runs_against_dump(doc: &Document, dump: &str) -> (usize, usize) {
    let bars: Vec<Node> = doc
        .descendants()
        .filter(|n| class_is(n, "run") || class_is(n, "merged-runs"))
        .collect();
    let leaves = x86_leaves(dump);
    let (mut at, mut alone, mut merged) = (0, 0, 0);
    for bar in &bars {
        if class_is(bar, "merged-runs") {
            let (first, last) = (attr_hex(bar, "data-va"), attr_hex(bar, "data-last"));
            let runs: usize = bar.attribute("data-runs").unwrap().parse().unwrap();
            assert_eq!(leaves[at].0, first, "a merged bar starts at a leaf");
            let start = at;
            while at < leaves.len() && leaves[at].0 <= last && leaves[at].0 >= first {
                at += 1;
            }
            assert!(at - start >= runs, "{runs} runs hold {} leaves", at - start);
            assert!(title(bar).starts_with(&format!("{runs} runs merged")));
            merged += runs;
            continue;
        }
        alone += 1;
        let t = run_title(title(bar));
        assert_eq!(attr_hex(bar, "data-va"), t.first);
        assert_eq!(attr_hex(bar, "data-pa"), t.pa);
        for n in 0..t.count {
            let (va, pa, _) = &leaves[at];
            if n == 0 {
                assert_eq!(*va, t.first, "the run starts at a leaf");
            }
            assert!(
                *va <= t.last,
                "leaf {va:#x} in the run ending {:#x}",
                t.last
            );
            assert_eq!(
                *pa,
                t.pa + (va - t.first),
                "leaf {va:#x}'s PA within the run"
            );
            at += 1;
        }
        assert!(
            leaves.get(at).is_none_or(|next| next.0 > t.last),
            "the run holds all its leaves"
        );
    }
    assert_eq!(at, leaves.len(), "every leaf of dump is in a bar");
    (alone, merged)
}

#[test]
fn tiny_runs_are_dumps_leaves_with_the_samples_layout() {
    let dir = temp_dir("tiny");
    let svg = map(&["--image", "samples/tiny.raw"], &[], &dir);
    let doc = Document::parse(&svg).expect("well-formed XML");
    assert!(
        !svg.contains("<script") && !svg.contains("href"),
        "self-contained"
    );
    let dump = stdout_of(&["dump", "--image", "samples/tiny.raw"]);
    let runs = elements(&doc, "run");
    // tiny.raw's leaves are not contiguous: one run each.
    assert_eq!(runs.len(), dump.lines().count());
    assert_eq!(check_x86_runs_against_dump(&doc, &dump), (11, 0));
    for (run, line) in runs.iter().zip(dump.lines()) {
        let t = run_title(title(run));
        let (va, pa, _) = &x86_leaves(line)[0];
        assert_eq!((t.first, t.pa), (*va, *pa), "{line}");
    }
    // make-samples.py: the 2 MiB kernel code page (RW, no NX: W+X), the
    // user page (writable, user, NX), the pool page (writable, NX).
    let find = |va: u64| {
        runs.iter()
            .find(|r| attr_hex(r, "data-va") == va)
            .unwrap_or_else(|| panic!("no run at {va:#x}"))
    };
    let fill = |run: &Node| {
        run.children()
            .find(|c| c.has_tag_name("rect"))
            .and_then(|r| r.attribute("class"))
            .expect("a bar")
            .to_owned()
    };
    let user_strip = |run: &Node| run.children().any(|c| class_is(&c, "user"));
    let code = find(0xffff_f800_0020_0000);
    assert!(fill(code).ends_with("wx"), "{}", fill(code));
    assert!(title(code).contains("-> 0x23ea00000 2M x1: writable, kernel, executable"));
    assert!(!user_strip(code));
    let user = find(0x7ff6_c000_1000);
    assert!(fill(user).ends_with("rw"));
    assert!(user_strip(user));
    assert!(title(user).contains("-> 0x9000 4K x1: writable, user, no-execute"));
    let pool = find(0xffff_f800_0040_5000);
    assert!(fill(pool).ends_with("rw") && !user_strip(pool));
    // The self-map at PML4 entry 0x1a3, the kernel image by the low stub's LmTarget.
    let regions: Vec<&str> = elements(&doc, "region").iter().map(title).collect();
    assert!(
        regions
            .iter()
            .any(|r| r
                .starts_with("0xffffd18000000000-0xffffd1ffffffffff: self-map: PML4 entry 0x1a3")),
        "{regions:?}"
    );
    assert!(
        regions.iter().any(|r| r.starts_with(
            "0xfffff80000200000-0xfffff800003fffff: kernel image, large pages: entry point 0xfffff80000203000"
        )),
        "{regions:?}"
    );
    let legend = texts(&elements(&doc, "legend")[0]);
    assert!(legend.contains("none is thinner than a pixel"), "{legend}");
    assert!(legend.contains(
        "1 writable+executable run(s), which HVCI forbids; the first: 0xfffff80000200000"
    ));
    let rows = texts(&elements(&doc, "address-space")[0]);
    assert!(rows.contains("lower canonical half (user): 0x0000000000000000 - 0x00007fffffffffff"));
    assert!(
        rows.contains("upper canonical half (kernel): 0xffff800000000000 - 0xffffffffffffffff")
    );
    assert!(
        rows.contains("0x0000800000000000 - 0xffff7fffffffffff"),
        "the hole"
    );
}

#[test]
fn arm64_runs_are_dumps_lines() {
    let dir = temp_dir("arm64");
    let mut args = vec!["--image", "samples/tiny-arm64.raw"];
    args.extend(ARM64_SAMPLE_REGISTERS);
    let svg = map(&args, &[], &dir);
    let doc = Document::parse(&svg).expect("well-formed XML");
    let mut dump_args = vec!["dump"];
    dump_args.extend(&args);
    let dump = stdout_of(&dump_args);
    let runs = elements(&doc, "run");
    let titles: Vec<&str> = runs.iter().map(title).collect();
    assert_eq!(titles, dump.lines().collect::<Vec<_>>());
    assert_eq!(titles.len(), 10, "README: ten runs");
    let rows = texts(&elements(&doc, "address-space")[0]);
    // TCR_EL1 0x615b5513511: T0SZ = T1SZ = 17, 47-bit ranges.
    assert!(
        rows.contains("TTBR0_EL1 range, 47 bits (user): 0x0000000000000000 - 0x00007fffffffffff"),
        "{rows}"
    );
    assert!(
        rows.contains("TTBR1_EL1 range, 47 bits (kernel): 0xffff800000000000 - 0xffffffffffffffff"),
        "{rows}"
    );
    let regions: Vec<&str> = elements(&doc, "region").iter().map(title).collect();
    assert!(
        regions
            .iter()
            .any(|r| r.contains("self-map: level 0 descriptor 0x151")),
        "{regions:?}"
    );
}

#[test]
fn linux_guest_runs_cover_dumps_leaves() {
    for (name, extra) in [
        ("linux-la48.fixture.gz", None),
        ("linux-la57.fixture.gz", Some("--la57")),
    ] {
        let fixture = fixtures::load(name);
        let dir = temp_dir(name);
        let image = dir.join("guest.raw");
        fixture.tables.write_raw_image(&image);
        let image = image.display().to_string();
        let cr3 = format!("{:#x}", fixture.paging.root().0);
        let bits = fixture.paging.max_phys_bits().to_string();
        let mut args = vec!["--image", &image, "--cr3", &cr3, "--maxphyaddr", &bits];
        args.extend(extra);
        let svg = map(&args, &[], &dir);
        let doc = Document::parse(&svg).expect("well-formed XML");
        let mut dump_args = vec!["dump"];
        dump_args.extend(&args);
        let dump = stdout_of(&dump_args);
        assert_eq!(dump, fixture.info_tlb, "dump is QEMU's info tlb");
        let (alone, merged) = check_x86_runs_against_dump(&doc, &dump);
        // As many runs as the walker's enumeration merges (the leaves are
        // QEMU's, checked above): tens of thousands, most thinner than a pixel.
        let runs = fixture.paging.leaves(&fixture.tables).runs().count();
        assert_eq!(alone + merged, runs, "{name}");
        assert!(
            merged > 0 && runs < dump.lines().count(),
            "{name}: {alone} + {merged} runs"
        );
    }
}

/// The walk drawn for each address against `translate --json` and
/// `--explain`, and each index against the address's bits.
fn check_walks(args: &[&str], addresses: &[&str], arm64: bool) {
    let dir = temp_dir(if arm64 { "walks-arm64" } else { "walks-x86" });
    let svg = map(args, addresses, &dir);
    let doc = Document::parse(&svg).expect("well-formed XML");
    let walks = elements(&doc, "walk");
    assert_eq!(walks.len(), addresses.len());
    for (walk, address) in walks.iter().zip(addresses) {
        let va = hex(address);
        assert_eq!(attr_hex(walk, "data-va"), va);
        let mut json_args = vec!["translate", "--json"];
        json_args.extend(args);
        json_args.push(address);
        let json: Value = serde_json::from_str(&stdout_of(&json_args)).expect("JSON");
        let mut explain_args = vec!["translate", "--explain"];
        explain_args.extend(args);
        explain_args.push(address);
        let explain = stdout_of(&explain_args);
        let explained: Vec<&str> = explain.lines().skip(1).map(str::trim).collect();

        // The index fields: each value is its bits of the address.
        let fields: Vec<Node> = walk
            .descendants()
            .filter(|n| class_is(n, "index-field"))
            .collect();
        let mut covered = 0;
        for field in &fields {
            let high: u32 = field.attribute("data-high").unwrap().parse().unwrap();
            let low: u32 = field.attribute("data-low").unwrap().parse().unwrap();
            let want = (va >> low) & (u64::MAX >> (63 - (high - low)));
            assert_eq!(attr_hex(field, "data-value"), want, "bits {high}:{low}");
            assert!(texts(field).contains(&format!("bits {high}:{low}")));
            covered += high - low + 1;
        }
        assert_eq!(covered, 64, "the fields split all 64 bits");

        // The register, then one box per entry of the path, in order.
        let register = walk
            .descendants()
            .find(|n| class_is(n, "register"))
            .unwrap();
        let entries: Vec<Node> = walk
            .descendants()
            .filter(|n| class_is(n, "entry"))
            .collect();
        let path = json["path"].as_array().expect("path");
        assert_eq!(entries.len(), path.len(), "{address}");
        // ARM64's TTBR1 0x1800: the upper half of the page, a 256-entry table at 47 bits.
        let mut table = attr_hex(&register, "data-value")
            & if arm64 {
                0x0000_ffff_ffff_fff8
            } else {
                0x0000_ffff_ffff_f000
            };
        for (i, (entry, want)) in entries.iter().zip(path).enumerate() {
            assert_eq!(entry.attribute("data-level"), want["level"].as_str());
            let entry_addr = attr_hex(entry, "data-entry-addr");
            let value = attr_hex(entry, "data-value");
            assert_eq!(entry_addr, hex(want["entry_addr"].as_str().unwrap()));
            assert_eq!(value, hex(want["value"].as_str().unwrap()));
            assert_eq!(title(entry), explained[i], "{address}: entry {i}");
            let shown = texts(entry);
            assert!(
                shown.contains(&format!("at phys {entry_addr:#x}")),
                "{shown}"
            );
            assert!(shown.contains(&format!("{value:#018x}")), "{shown}");
            // The architecture's arithmetic: the table's base plus 8 × the index.
            assert_eq!(
                entry_addr,
                table + 8 * attr_hex(entry, "data-index"),
                "{address}: entry {i}"
            );
            table = value & 0x0000_ffff_ffff_f000;
        }
        let outcome = walk.descendants().find(|n| class_is(n, "outcome")).unwrap();
        assert_eq!(
            outcome.attribute("data-pa").map(hex),
            json["pa"].as_str().map(hex),
            "{address}"
        );
        assert_eq!(
            outcome.attribute("data-error"),
            json["error"]["kind"].as_str(),
            "{address}"
        );
        assert_eq!(
            Some(title(&outcome)),
            explained.last().and_then(|l| l.strip_prefix("=> ")),
            "{address}"
        );
        if let Some(level) = json["error"]["level"].as_str() {
            assert!(texts(&outcome).contains(&format!("fault at {level}")));
            let stopped = entries.last().expect("the entry that stopped it");
            let rect = stopped.children().find(|c| c.has_tag_name("rect")).unwrap();
            assert_eq!(rect.attribute("class"), Some("box-fault"));
        }
    }
}

/// make-samples.py's addresses: the 2 MiB page, the user page, the
/// transition PTE (not present), and a non-canonical address.
const SAMPLE_ADDRESSES: [&str; 4] = [
    "fffff80000203450",
    "7ff6c0001234",
    "fffff80000406000",
    "0000800000000000",
];

#[test]
fn x86_walks_are_translates() {
    check_walks(
        &["--image", "samples/tiny.raw", "--cr3", "1000"],
        &SAMPLE_ADDRESSES,
        false,
    );
}

#[test]
fn arm64_walks_are_translates() {
    let mut args = vec!["--image", "samples/tiny-arm64.raw"];
    args.extend(ARM64_SAMPLE_REGISTERS);
    check_walks(&args, &SAMPLE_ADDRESSES, true);
}

#[test]
fn many_runs_are_merged_into_pixels() {
    let dir = temp_dir("many");
    let image = dir.join("many.raw");
    map_capture::write(&image);
    let image = image.display().to_string();
    let args = ["--image", image.as_str(), "--cr3", "1000"];
    let svg = map(&args, &[], &dir);
    let _ = std::fs::remove_file(&image);
    assert!(svg.len() < 10 << 20, "{} bytes", svg.len());
    let doc = Document::parse(&svg).expect("well-formed XML");
    let runs = elements(&doc, "run").len();
    let merged = elements(&doc, "merged-runs");
    let in_merged: usize = merged
        .iter()
        .map(|m| m.attribute("data-runs").unwrap().parse::<usize>().unwrap())
        .sum();
    assert!(!merged.is_empty());
    assert_eq!(
        runs + in_merged,
        map_capture::RUNS,
        "every run drawn, alone or merged"
    );
    assert!(runs + merged.len() < 4000, "{} bars", runs + merged.len());
    let legend = texts(&elements(&doc, "legend")[0]);
    let said = format!(
        "{} runs thinner than a pixel are merged",
        in_merged - merged.len()
    );
    assert!(legend.contains(&said), "{legend}");
}

/// The PNG's width, height and pixels (RGBA).
fn decode_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(path).expect("the PNG"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("its size")];
    let info = reader.next_frame(&mut pixels).expect("its pixels");
    pixels.truncate(info.buffer_size());
    let rgba: Vec<u8> = match info.color_type {
        png::ColorType::Rgba => pixels,
        png::ColorType::Rgb => pixels
            .chunks(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        other => panic!("colour type {other:?}"),
    };
    (info.width, info.height, rgba)
}

/// The SVG's `width` and `height`.
fn svg_size(svg: &str) -> (u32, u32) {
    let doc = Document::parse(svg).expect("well-formed XML");
    let root = doc.root_element();
    let size = |name| {
        root.attribute(name)
            .unwrap()
            .parse::<u32>()
            .expect("whole pixels")
    };
    (size("width"), size("height"))
}

/// Renders `svg` with headless Chromium at its own size into `png`.
fn render(svg: &Path, png: &Path, (width, height): (u32, u32)) {
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|name| Command::new(name).arg("--version").output().is_ok())
        .expect(
            "Chromium is not installed: scripts/test.sh installs Debian's `chromium` package \
             (apt-get install --no-install-recommends chromium); the map's render test needs it",
        );
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--hide-scrollbars",
        ])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!(
            "file://{}",
            svg.canonicalize().expect("the SVG").display()
        ))
        .output()
        .expect("chromium runs");
    assert!(output.status.success(), "chromium: {output:?}");
    assert!(png.exists(), "chromium wrote no screenshot: {output:?}");
}

#[test]
fn renders_in_chromium() {
    let dir = temp_dir("render");
    let svg = map(
        &["--image", "samples/tiny.raw"],
        &["fffff80000203450", "fffff80000406000"],
        &dir,
    );
    let size = svg_size(&svg);
    let png = dir.join("map.png");
    render(&dir.join("map.svg"), &png, size);
    let (width, height, rgba) = decode_png(&png);
    assert_eq!((width, height), size);
    let pixels: Vec<&[u8]> = rgba.chunks(4).collect();
    let white = pixels.iter().filter(|p| p[..3] == [255, 255, 255]).count();
    assert!(white < pixels.len() * 97 / 100, "mostly blank");
    // Colours the SVG fills with: the W+X run (#d7263d), writable runs
    // (#3fa66a), the fault box (#fee2e2): each drawn.
    for (name, rgb) in [
        ("W+X", [0xd7, 0x26, 0x3d]),
        ("writable", [0x3f, 0xa6, 0x6a]),
        ("fault", [0xfe, 0xe2, 0xe2]),
    ] {
        let n = pixels.iter().filter(|p| p[..3] == rgb).count();
        assert!(n > 200, "{name}: {n} pixels of {rgb:x?}");
    }
    // Dark text pixels: the text is drawn.
    let dark = pixels
        .iter()
        .filter(|p| p[..3].iter().all(|&c| c < 80))
        .count();
    assert!(dark > 5000, "{dark} dark pixels");
}

#[test]
fn readme_picture_is_reproduced() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).expect("README");
    let command = readme
        .lines()
        .find_map(|line| line.strip_prefix("target/release/ptwalk map "))
        .expect("the README shows `ptwalk map`");
    assert!(
        readme.contains("](docs/map-tiny.png)"),
        "the README shows the PNG"
    );
    let dir = temp_dir("readme");
    let ours = dir.join("map.svg");
    let args: Vec<String> = command
        .split_whitespace()
        .map(|arg| {
            if arg == "docs/map-tiny.svg" {
                ours.display().to_string()
            } else {
                arg.to_owned()
            }
        })
        .collect();
    assert!(
        args.iter().any(|a| *a == ours.display().to_string()),
        "--svg docs/map-tiny.svg"
    );
    let mut all = vec!["map"];
    all.extend(args.iter().map(String::as_str));
    let output = ptwalk(&all);
    assert!(output.status.success(), "{output:?}");
    let committed =
        std::fs::read(Path::new(ROOT).join("docs/map-tiny.svg")).expect("docs/map-tiny.svg");
    assert!(
        std::fs::read(&ours).expect("ours") == committed,
        "docs/map-tiny.svg is not what the README's command writes: rerun it, and render docs/map-tiny.png"
    );
    let (width, height, _) = decode_png(&Path::new(ROOT).join("docs/map-tiny.png"));
    assert_eq!(
        (width, height),
        svg_size(std::str::from_utf8(&committed).expect("UTF-8")),
        "docs/map-tiny.png is the SVG's render"
    );
}
