//! `ptwalk translate` on a Windows crash dump against the same addresses on
//! the raw image of the same memory (scripts/bench.sh's dump row). The
//! 4-level Linux-guest fixture is written as a raw image, a full dump and a
//! bitmap dump; each round runs the command once on each (rotating the
//! order, as benches/paired.rs does, since this shared machine's speed
//! drifts), and each gets the median of its rounds. The whole command is
//! timed: opening the dump is part of what a user waits for (and clap's
//! parsing of each address costs more than its walk). Then the walks alone:
//! ptwalk's own image reader (src/bin/ptwalk/image.rs) over each file, in
//! process, the same way. Prints `name nanoseconds-per-address` lines; then
//! `ptwalk spaces`' scan rate and `ptwalk map`'s time and SVG size on a
//! capture of ~100k runs.

#[allow(dead_code, reason = "the bench uses the image reader only")]
#[path = "../src/bin/ptwalk/crash_dump.rs"]
mod crash_dump;
#[path = "../tests/crash_dump/mod.rs"]
mod dump_writer;
#[path = "../tests/fixtures/mod.rs"]
mod fixtures;
#[path = "../src/bin/ptwalk/format.rs"]
mod format;
#[allow(dead_code, reason = "the bench uses the image reader only")]
#[path = "../src/bin/ptwalk/image.rs"]
mod image;
#[path = "../tests/map_capture/mod.rs"]
mod map_capture;
#[path = "../src/bin/ptwalk/segment.rs"]
mod segment;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use vmwalk::walker::{Paging, VirtAddr};

/// Whether `measure smoke` (scripts/bench.sh --smoke) asked for a few
/// rounds only, to see it run.
fn smoke() -> bool {
    std::env::args().nth(2).as_deref() == Some("smoke")
}

/// Rounds measured, after a fifth as many to warm up.
fn rounds() -> usize {
    if smoke() { 5 } else { 40 }
}
/// The fixture's 500 QEMU-answered addresses, this many times over.
const REPEAT: usize = 40;
/// In-process rounds of the 500 addresses, after a fifth as many to warm up.
fn walk_rounds() -> usize {
    if smoke() { 20 } else { 2_000 }
}

fn main() {
    // `cargo bench` runs every bench target with `--bench`: measure only when asked.
    if std::env::args().nth(1).as_deref() != Some("measure") {
        return;
    }
    let fixture = fixtures::load("linux-la48.fixture.gz");
    let cr3 = fixture.paging.root().0;
    let pages = fixture.tables.page_bytes();
    let dir = std::env::temp_dir().join(format!("vmwalk-bench-dumps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let raw = dir.join("guest.raw");
    fixture.tables.write_raw_image(&raw);
    let full = dir.join("guest-full.dmp");
    let runs = dump_writer::runs_covering(&pages, 4);
    std::fs::write(&full, dump_writer::full(cr3, &pages, &runs)).expect("full dump");
    let bitmap = dir.join("guest-bitmap.dmp");
    std::fs::write(&bitmap, dump_writer::bitmap(cr3, &pages)).expect("bitmap dump");

    let addresses: Vec<String> = fixture
        .gva2gpa
        .iter()
        .map(|(va, _)| format!("{va:#x}"))
        .cycle()
        .take(fixture.gva2gpa.len() * REPEAT)
        .collect();
    let cr3 = format!("{cr3:#x}");
    let mut contenders: Vec<(&str, PathBuf, Vec<&str>)> = vec![
        ("ptwalk_translate/raw", raw, vec!["--cr3", &cr3]),
        ("ptwalk_translate/full_dump", full, vec![]),
        ("ptwalk_translate/bitmap_dump", bitmap, vec![]),
    ];
    let run = |image: &Path, extra: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_ptwalk"))
            .args(["translate", "--maxphyaddr", "40", "--image"])
            .arg(image)
            .args(extra)
            .args(&addresses)
            .output()
            .expect("ptwalk runs");
        assert!(output.status.success(), "{output:?}");
        output.stdout
    };
    let first = run(&contenders[0].1, &contenders[0].2);
    for (name, image, extra) in &contenders {
        assert_eq!(
            run(image, extra),
            first,
            "{name} prints what the raw image gives"
        );
    }

    let rounds = rounds();
    let mut times = vec![Vec::with_capacity(rounds + rounds / 5); contenders.len()];
    for _ in 0..rounds + rounds / 5 {
        contenders.rotate_left(1);
        times.rotate_left(1);
        for ((_, image, extra), samples) in contenders.iter().zip(&mut times) {
            let start = Instant::now();
            run(image, extra);
            #[allow(clippy::cast_precision_loss, reason = "a few thousand addresses")]
            samples.push(start.elapsed().as_secs_f64() * 1e9 / addresses.len() as f64);
        }
    }
    for ((name, _, _), samples) in contenders.iter().zip(&mut times) {
        let samples = &mut samples[rounds / 5..];
        samples.sort_by(f64::total_cmp);
        println!("{name} {:.3}", samples[samples.len() / 2]);
    }
    walks_alone(&fixture, &contenders);
    println!("ptwalk_spaces/gbps {:.2}", spaces_gbps(&dir));
    let (map_ms, map_bytes) = map_ms(&dir);
    println!("ptwalk_map/ms {map_ms:.1}");
    println!("ptwalk_map/svg_bytes {map_bytes}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `ptwalk spaces` over a page-cached raw capture of 1 GiB (64 MiB with
/// `smoke`): pseudo-random pages, and one Windows-like kernel space (a low
/// stub at 0x13000 naming the PML4 at 0x200000, self-map 0x1ed) that it
/// must find. The whole command is timed; the median of the rounds, in
/// GB/s of capture scanned.
fn spaces_gbps(dir: &Path) -> f64 {
    let size: usize = if smoke() { 64 << 20 } else { 1 << 30 };
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut image: Vec<u8> = (0..size / 8)
        .flat_map(|_| {
            // xorshift64: no page of it is a table.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()
        })
        .collect();
    let mut put = |at: usize, value: u64| image[at..at + 8].copy_from_slice(&value.to_le_bytes());
    put(0x13000, 0x0000_0001_0006_10e9);
    put(0x13070, 0xffff_f800_0012_3450);
    put(0x130a0, 0x20_0000);
    for index in 0..512 {
        put(0x20_0000 + 8 * index, 0);
    }
    put(0x20_0000 + 8 * 0x1ed, 0x8000_0000_0020_0063);
    let path = dir.join("windows-like.raw");
    std::fs::write(&path, &image).expect("the capture");
    drop(image);
    let run = || {
        let output = Command::new(env!("CARGO_BIN_EXE_ptwalk"))
            .args(["spaces", "--json", "--image"])
            .arg(&path)
            .output()
            .expect("ptwalk runs");
        assert!(output.status.success(), "{output:?}");
        assert!(
            String::from_utf8_lossy(&output.stdout)
                .starts_with(r#"{"arch":"x86_64","role":"kernel","cr3":"0x200000""#),
            "{output:?}"
        );
    };
    run(); // the page cache, warm
    let rounds = if smoke() { 3 } else { 15 };
    let mut seconds: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64()
        })
        .collect();
    seconds.sort_by(f64::total_cmp);
    #[allow(clippy::cast_precision_loss, reason = "at most 1 GiB")]
    let gigabytes = size as f64 / 1e9;
    gigabytes / seconds[seconds.len() / 2]
}

/// `ptwalk map` over a sparse 4 GiB raw capture whose tables map about
/// 100k runs (`tests/map_capture`), page-cached: the whole command, the
/// median of its rounds in milliseconds, and the SVG's size in bytes.
fn map_ms(dir: &Path) -> (f64, usize) {
    let image = dir.join("many-runs.raw");
    map_capture::write(&image);
    let svg = dir.join("many-runs.svg");
    let run = || {
        let output = Command::new(env!("CARGO_BIN_EXE_ptwalk"))
            .args(["map", "--cr3", "0x1000", "--image"])
            .arg(&image)
            .arg("--svg")
            .arg(&svg)
            .output()
            .expect("ptwalk runs");
        assert!(output.status.success(), "{output:?}");
    };
    run(); // the page cache, warm
    let rounds = if smoke() { 3 } else { 15 };
    let mut ms: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let bytes = std::fs::metadata(&svg).map_or(0, |m| m.len());
    let _ = std::fs::remove_file(&image);
    (
        ms[ms.len() / 2],
        usize::try_from(bytes).unwrap_or(usize::MAX),
    )
}

/// The same files through ptwalk's image reader, in process: the walks
/// without process start, argument parsing and output.
fn walks_alone(fixture: &fixtures::Fixture, contenders: &[(&str, PathBuf, Vec<&str>)]) {
    let paging = Paging::new(fixture.paging.root().0, fixture.paging.mode())
        .with_max_phys_bits(40)
        .expect("MAXPHYADDR");
    let addresses: Vec<u64> = fixture.gva2gpa.iter().map(|&(va, _)| va).collect();
    let images: Vec<(String, image::Image)> = contenders
        .iter()
        .map(|(name, path, _)| {
            let name = name.replace("ptwalk_translate", "image_translate");
            (name, image::Image::open(path).expect("image opens"))
        })
        .collect();
    let walk = |image: &image::Image| {
        black_box(&addresses).iter().fold(0u64, |sum, &va| {
            let pa = paging.translate(image, VirtAddr(va)).map_or(0, |t| t.pa.0);
            sum.wrapping_add(pa)
        })
    };
    let sums: Vec<u64> = images.iter().map(|(_, image)| walk(image)).collect();
    assert!(
        sums.iter().all(|&sum| sum == sums[0]),
        "every file translates alike"
    );
    let mut order: Vec<usize> = (0..images.len()).collect();
    let walk_rounds = walk_rounds();
    let mut times = vec![Vec::with_capacity(walk_rounds + walk_rounds / 5); images.len()];
    for _ in 0..walk_rounds + walk_rounds / 5 {
        order.rotate_left(1);
        for &i in &order {
            let start = Instant::now();
            black_box(walk(&images[i].1));
            #[allow(clippy::cast_precision_loss, reason = "500 addresses")]
            times[i].push(start.elapsed().as_secs_f64() * 1e9 / addresses.len() as f64);
        }
    }
    for ((name, _), samples) in images.iter().zip(&mut times) {
        let samples = &mut samples[walk_rounds / 5..];
        samples.sort_by(f64::total_cmp);
        println!("{name} {:.3}", samples[samples.len() / 2]);
    }
}
