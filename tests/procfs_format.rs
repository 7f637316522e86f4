//! /proc renderers against real Linux 6.18 output (tests/fixtures/linux-6.18, taken on an
//! x86-64 Firecracker guest with 24 GiB): same labels in the same order for the lines mmlab
//! prints, same columns and trailing spaces, the exact bytes where the numbers can agree, and
//! values recomputed here from the kernel's formulas.
//!
//! The host is a 24 GiB machine; the model's machines are smaller, so a line's label and
//! layout are compared with the host and its number with the formula.

use mmlab::kernel::resource::Resource;
use mmlab::mm::gfp::Gfp;
use mmlab::{BootOptions, Kernel};

const HOST_BUDDYINFO: &str = include_str!("fixtures/linux-6.18/buddyinfo.txt");
const HOST_ZONEINFO: &str = include_str!("fixtures/linux-6.18/zoneinfo.txt");
const HOST_MEMINFO: &str = include_str!("fixtures/linux-6.18/meminfo.txt");
const HOST_VMSTAT: &str = include_str!("fixtures/linux-6.18/vmstat.txt");
const HOST_IOMEM: &str = include_str!("fixtures/linux-6.18/iomem.txt");

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn boot(ram: u64) -> Kernel {
    Kernel::boot(BootOptions {
        ram,
        ..Default::default()
    })
    .unwrap()
}

fn cat(k: &Kernel, path: &str) -> String {
    k.cat(path).unwrap()
}

/// Checks what every /proc text file shares: non-empty, one newline at the end, no blank line.
fn assert_text_file(text: &str, what: &str) {
    assert!(text.ends_with('\n'), "{what}: no newline at the end");
    assert!(!text.contains("\n\n"), "{what}: blank line");
    assert!(!text.starts_with('\n'), "{what}: starts with a newline");
}

// ---- /proc/buddyinfo ------------------------------------------------------------------------

/// Splits a buddyinfo line made by "Node %d, zone %8s " and 11 × "%6lu " into the zone name and
/// the counts, checking every column; None if the layout is off.
fn parse_buddy_line(line: &str) -> Option<(String, Vec<u64>)> {
    let rest = line.strip_prefix("Node 0, zone ")?;
    let (name, rest) = (rest.get(..8)?, rest.get(8..)?);
    // "%8s": right-aligned in 8 columns.
    if name.ends_with(' ') || name.trim_start().is_empty() {
        return None;
    }
    let rest = rest.strip_prefix(' ')?;
    if rest.len() != 11 * 7 {
        return None;
    }
    let mut counts = Vec::new();
    for field in rest.as_bytes().chunks(7) {
        let field = std::str::from_utf8(field).ok()?;
        let (num, space) = field.split_at(6);
        if space != " " || num.ends_with(' ') {
            return None;
        }
        counts.push(num.trim_start().parse().ok()?);
    }
    Some((name.trim_start().to_string(), counts))
}

#[test]
fn buddyinfo_layout_matches_the_host() {
    assert_text_file(HOST_BUDDYINFO, "host buddyinfo");
    let host: Vec<_> = HOST_BUDDYINFO
        .lines()
        .map(|l| parse_buddy_line(l).expect("the checker accepts the host's lines"))
        .collect();
    let host_zones: Vec<&str> = host.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(host_zones, ["DMA", "DMA32", "Normal"]);

    // A 6 GiB machine populates the same zones as the host.
    let text = cat(&boot(6 * GIB), "/proc/buddyinfo");
    assert_text_file(&text, "buddyinfo");
    let zones: Vec<String> = text
        .lines()
        .map(|l| {
            parse_buddy_line(l)
                .unwrap_or_else(|| panic!("bad line {l:?}"))
                .0
        })
        .collect();
    assert_eq!(zones, host_zones);
    // The DMA zone of any PC-layout machine is the host's, to the byte (trailing space too).
    let host_dma = HOST_BUDDYINFO.lines().next().unwrap();
    assert_eq!(
        host_dma,
        "Node 0, zone      DMA      0      0      0      0      0      0      0      0      1      1      3 "
    );
    assert_eq!(text.lines().next().unwrap(), host_dma);

    // 256 MiB: ZONE_NORMAL is empty, and buddyinfo shows populated zones only.
    let text = cat(&boot(256 * MIB), "/proc/buddyinfo");
    assert_eq!(text.lines().count(), 2);
    assert!(text.starts_with(&format!("{host_dma}\nNode 0, zone    DMA32 ")));
}

// ---- /proc/zoneinfo -------------------------------------------------------------------------

/// The label of a zoneinfo line: the whole line for a zone header, the text up to "(" for the
/// protection line, otherwise the line without its trailing number (padding kept).
fn zoneinfo_label(line: &str) -> &str {
    if line.starts_with("Node ") {
        line
    } else if let Some(i) = line.find('(') {
        &line[..=i]
    } else {
        line.trim_end_matches(|c: char| c.is_ascii_digit())
    }
}

/// The zoneinfo lines mmlab prints, by label.
const ZONEINFO_LABELS: &[&str] = &[
    "  per-node stats",
    "      nr_unevictable ",
    "      nr_anon_pages ",
    "      nr_mapped    ",
    "      nr_file_pages ",
    "      nr_shmem     ",
    "      nr_foll_pin_acquired ",
    "      nr_foll_pin_released ",
    "      nr_page_table_pages ",
    "  pages free     ",
    "        boost    ",
    "        min      ",
    "        low      ",
    "        high     ",
    "        promo    ",
    "        spanned  ",
    "        present  ",
    "        managed  ",
    "        cma      ",
    "        protection: (",
    "      nr_free_pages ",
    "      nr_free_pages_blocks ",
    "      nr_zone_unevictable ",
    "      nr_mlock     ",
    "      nr_free_cma  ",
    "  start_pfn:           ",
];

fn zoneinfo_labels(text: &str) -> Vec<&str> {
    text.lines()
        .map(zoneinfo_label)
        .filter(|l| l.starts_with("Node ") || ZONEINFO_LABELS.contains(l))
        .collect()
}

/// One zone of /proc/zoneinfo, parsed.
#[derive(Debug, Default, Clone)]
struct ZoneInfo {
    name: String,
    free: u64,
    wmark: [u64; 4],
    spanned: u64,
    present: u64,
    managed: u64,
    protection: Vec<u64>,
    nr_free_pages_blocks: Option<u64>,
    start_pfn: Option<u64>,
}

fn parse_zoneinfo(text: &str) -> Vec<ZoneInfo> {
    let mut zones: Vec<ZoneInfo> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Node 0, zone ") {
            zones.push(ZoneInfo {
                name: rest.trim().to_string(),
                ..Default::default()
            });
            continue;
        }
        let z = zones.last_mut().expect("a zone header comes first");
        let label = zoneinfo_label(line);
        let value = || line[label.len()..].parse::<u64>().unwrap();
        match label {
            "  pages free     " => z.free = value(),
            "        min      " => z.wmark[0] = value(),
            "        low      " => z.wmark[1] = value(),
            "        high     " => z.wmark[2] = value(),
            "        promo    " => z.wmark[3] = value(),
            "        spanned  " => z.spanned = value(),
            "        present  " => z.present = value(),
            "        managed  " => z.managed = value(),
            "      nr_free_pages_blocks " => z.nr_free_pages_blocks = Some(value()),
            "  start_pfn:           " => z.start_pfn = Some(value()),
            "        protection: (" => {
                let inner = line[label.len()..].strip_suffix(')').unwrap();
                z.protection = inner.split(", ").map(|v| v.parse().unwrap()).collect();
            }
            _ => {}
        }
    }
    zones
}

/// The lines of one zone's block, header included.
fn zone_block<'a>(text: &'a str, zone: &str) -> Vec<&'a str> {
    let header = format!("Node 0, zone {zone:>8}");
    text.lines()
        .skip_while(|l| *l != header)
        .enumerate()
        .take_while(|(i, l)| *i == 0 || !l.starts_with("Node "))
        .map(|(_, l)| l)
        .collect()
}

#[test]
fn zoneinfo_lines_follow_the_host_layout() {
    assert_text_file(HOST_ZONEINFO, "host zoneinfo");
    let host = zoneinfo_labels(HOST_ZONEINFO);
    let text = cat(&boot(6 * GIB), "/proc/zoneinfo");
    assert_text_file(&text, "zoneinfo");
    // Every line is one of ours, and the host's lines of that set come in the same order with
    // the same padding: all five zones, per-node stats under DMA only, the short form for the
    // unpopulated Movable and Device zones.
    assert_eq!(
        text.lines().map(zoneinfo_label).collect::<Vec<_>>(),
        host,
        "zoneinfo lines differ from the host's"
    );
    assert_eq!(text.matches("  per-node stats\n").count(), 1);

    // The host's unpopulated zones, byte for byte: every PC machine has the same ones.
    for zone in ["Movable", "Device"] {
        assert_eq!(
            zone_block(&text, zone),
            zone_block(HOST_ZONEINFO, zone),
            "{zone}"
        );
    }
    assert!(text.ends_with("        protection: (0, 0, 0, 0, 0)\n"));

    // 256 MiB: Normal is unpopulated and stops where the host's Movable zone stops.
    let small = cat(&boot(256 * MIB), "/proc/zoneinfo");
    assert_text_file(&small, "zoneinfo");
    let normal = zone_block(&small, "Normal");
    let movable = zone_block(HOST_ZONEINFO, "Movable");
    assert_eq!(normal[0], "Node 0, zone   Normal");
    assert_eq!(
        normal[1..]
            .iter()
            .map(|l| zoneinfo_label(l))
            .collect::<Vec<_>>(),
        movable[1..]
            .iter()
            .map(|l| zoneinfo_label(l))
            .collect::<Vec<_>>()
    );
    assert_eq!(normal.len(), 12);
}

#[test]
fn zoneinfo_dma_zone_is_the_hosts() {
    // Boot reservations and the BIOS hole make every PC machine's DMA zone the same: these
    // lines match the host byte for byte.
    for ram in [64 * MIB, 256 * MIB, 6 * GIB] {
        let text = cat(&boot(ram), "/proc/zoneinfo");
        let ours = zone_block(&text, "DMA");
        let host = zone_block(HOST_ZONEINFO, "DMA");
        for label in [
            "Node 0, zone      DMA",
            "  per-node stats",
            "  pages free     ",
            "        boost    ",
            "        spanned  ",
            "        present  ",
            "        managed  ",
            "        cma      ",
            "      nr_free_pages ",
            "      nr_free_pages_blocks ",
            "  start_pfn:           ",
        ] {
            let pick = |lines: &[&str]| -> String {
                lines
                    .iter()
                    .find(|l| zoneinfo_label(l) == label)
                    .unwrap_or_else(|| panic!("no {label:?}"))
                    .to_string()
            };
            assert_eq!(pick(&ours), pick(&host), "ram {ram}: {label:?}");
        }
        let dma = &parse_zoneinfo(&text)[0];
        assert_eq!(
            (dma.spanned, dma.present, dma.managed, dma.start_pfn),
            (4095, 3998, 3840, Some(1))
        );
    }
}

/// `__setup_per_zone_wmarks()`: [min, low, high, promo] per zone.
fn setup_per_zone_wmarks(zones: &[(&str, u64)], min_free_kbytes: u64, wsf: u64) -> Vec<[u64; 4]> {
    let pages_min = min_free_kbytes >> 2;
    let highmem_or_movable = |name: &str| name == "HighMem" || name == "Movable";
    let lowmem_pages: u64 = zones
        .iter()
        .filter(|(n, _)| !highmem_or_movable(n))
        .map(|(_, m)| m)
        .sum();
    zones
        .iter()
        .map(|&(name, managed)| {
            let tmp = (pages_min * managed).checked_div(lowmem_pages).unwrap_or(0);
            let min = if highmem_or_movable(name) {
                (managed / 1024).clamp(32, 128)
            } else {
                tmp
            };
            let mult_frac = (managed / 10000) * wsf + (managed % 10000) * wsf / 10000;
            let gap = (tmp >> 2).max(mult_frac);
            [min, min + gap, min + 2 * gap, min + 3 * gap]
        })
        .collect()
}

/// `setup_per_zone_lowmem_reserve()`: lowmem_reserve[] per zone.
fn setup_per_zone_lowmem_reserve(managed: &[u64], ratios: &[u64]) -> Vec<Vec<u64>> {
    let n = managed.len();
    let mut reserve = vec![vec![0; n]; n];
    for i in 0..n - 1 {
        let clear = ratios[i] == 0 || managed[i] == 0;
        let mut upper = 0;
        for j in i + 1..n {
            upper += managed[j];
            reserve[i][j] = if clear { 0 } else { upper / ratios[i] };
        }
    }
    reserve
}

/// Checks a zoneinfo text against the formulas, fed with its own managed counts.
fn assert_zoneinfo_follows_formulas(text: &str, min_free_kbytes: u64, wsf: u64, ratios: &[u64]) {
    let zones = parse_zoneinfo(text);
    let input: Vec<(&str, u64)> = zones.iter().map(|z| (z.name.as_str(), z.managed)).collect();
    let managed: Vec<u64> = zones.iter().map(|z| z.managed).collect();
    let wmarks = setup_per_zone_wmarks(&input, min_free_kbytes, wsf);
    let reserves = setup_per_zone_lowmem_reserve(&managed, ratios);
    for ((z, w), r) in zones.iter().zip(&wmarks).zip(&reserves) {
        assert_eq!(&z.wmark, w, "zone {} watermarks", z.name);
        assert_eq!(&z.protection, r, "zone {} protection", z.name);
    }
}

fn sysctl_u64(k: &Kernel, name: &str) -> u64 {
    cat(k, &format!("/proc/sys/vm/{name}"))
        .trim()
        .parse()
        .unwrap()
}

fn lowmem_reserve_ratio(k: &Kernel) -> Vec<u64> {
    let text = cat(k, "/proc/sys/vm/lowmem_reserve_ratio");
    text.trim_end()
        .split('\t')
        .map(|v| v.parse().unwrap())
        .collect()
}

#[test]
fn zoneinfo_watermarks_and_protection_follow_the_formulas() {
    // The formulas reproduce the host's numbers (vm.min_free_kbytes 67584, scale factor 10).
    assert_zoneinfo_follows_formulas(HOST_ZONEINFO, 67584, 10, &[256, 256, 32, 0, 0]);

    for ram in [256 * MIB, 6 * GIB] {
        let mut k = boot(ram);
        let ratios = lowmem_reserve_ratio(&k);
        assert_eq!(ratios, [256, 256, 32, 0, 0]);
        let wsf = sysctl_u64(&k, "watermark_scale_factor");
        let before = cat(&k, "/proc/zoneinfo");
        assert_zoneinfo_follows_formulas(&before, sysctl_u64(&k, "min_free_kbytes"), wsf, &ratios);

        // min_free_kbytes_sysctl_handler() → setup_per_zone_wmarks().
        k.sysctl("vm.min_free_kbytes", "67584").unwrap();
        assert_eq!(sysctl_u64(&k, "min_free_kbytes"), 67584);
        let after = cat(&k, "/proc/zoneinfo");
        assert_zoneinfo_follows_formulas(&after, 67584, wsf, &ratios);
        let dma32 = |t: &str| parse_zoneinfo(t)[1].wmark;
        assert_ne!(dma32(&before), dma32(&after), "ram {ram}");

        // And the scale factor moves the gaps, not min.
        k.sysctl("vm.watermark_scale_factor", "1000").unwrap();
        let scaled = cat(&k, "/proc/zoneinfo");
        assert_zoneinfo_follows_formulas(&scaled, 67584, 1000, &ratios);
        assert_eq!(dma32(&scaled)[0], dma32(&after)[0]);
    }
}

#[test]
fn zoneinfo_free_counts_agree_with_buddyinfo() {
    let mut k = boot(6 * GIB);
    // Split a few blocks so that lower orders are non-empty.
    for order in [0, 3, 9] {
        k.alloc_pages(Gfp::KERNEL, order).unwrap();
        k.alloc_pages(Gfp::GFP_DMA32, order).unwrap();
    }
    let zones = parse_zoneinfo(&cat(&k, "/proc/zoneinfo"));
    let buddy: Vec<(String, Vec<u64>)> = cat(&k, "/proc/buddyinfo")
        .lines()
        .map(|l| parse_buddy_line(l).unwrap())
        .collect();
    let populated: Vec<&ZoneInfo> = zones.iter().filter(|z| z.present > 0).collect();
    assert_eq!(populated.len(), buddy.len());
    for (z, (name, counts)) in populated.iter().zip(&buddy) {
        assert_eq!(&z.name, name);
        let pages = |from: usize| -> u64 {
            counts
                .iter()
                .enumerate()
                .skip(from)
                .map(|(o, n)| n << o)
                .sum()
        };
        assert_eq!(z.free, pages(0), "zone {name}: pages free");
        // NR_FREE_PAGES_BLOCKS: free pages in blocks of pageblock_order (9) and up.
        assert_eq!(z.nr_free_pages_blocks, Some(pages(9)), "zone {name}");
    }
    // The host's counters obey the same identities.
    for (z, (_, counts)) in parse_zoneinfo(HOST_ZONEINFO)
        .iter()
        .zip(HOST_BUDDYINFO.lines().map(|l| parse_buddy_line(l).unwrap()))
    {
        if z.name == "DMA" || z.name == "DMA32" {
            let blocks: u64 = counts.iter().enumerate().skip(9).map(|(o, n)| n << o).sum();
            assert_eq!(z.nr_free_pages_blocks, Some(blocks));
        }
    }
}

// ---- /proc/meminfo --------------------------------------------------------------------------

/// Splits a show_val_kb() line: a 16-column label, a value right-aligned in at least 8
/// columns, " kB". None if the layout is off.
fn parse_meminfo_line(line: &str) -> Option<(&str, u64)> {
    let body = line.strip_suffix(" kB")?;
    let label = body.get(..16)?;
    let field = body.get(16..)?;
    let name_end = label.find(':')?;
    if label[name_end + 1..].trim() != "" || field.len() < 8 || field.ends_with(' ') {
        return None;
    }
    let digits = field.trim_start();
    if field.len() > 8 && digits.len() != field.len() {
        return None;
    }
    Some((label, digits.parse().ok()?))
}

fn meminfo(k: &Kernel) -> Vec<(String, u64)> {
    let text = cat(k, "/proc/meminfo");
    assert_text_file(&text, "meminfo");
    text.lines()
        .map(|l| {
            let (label, v) = parse_meminfo_line(l).unwrap_or_else(|| panic!("bad line {l:?}"));
            (label.to_string(), v)
        })
        .collect()
}

fn meminfo_kb(k: &Kernel, name: &str) -> u64 {
    meminfo(k)
        .into_iter()
        .find(|(l, _)| l.trim_end() == format!("{name}:"))
        .unwrap_or_else(|| panic!("no {name}"))
        .1
}

#[test]
fn meminfo_layout_matches_the_host() {
    for ram in [256 * MIB, 6 * GIB] {
        let k = boot(ram);
        let text = cat(&k, "/proc/meminfo");
        let ours: Vec<String> = meminfo(&k).into_iter().map(|(l, _)| l).collect();
        // The host's lines with our labels, in the host's order and with its padding.
        let host: Vec<&str> = HOST_MEMINFO
            .lines()
            .filter(|l| ours.iter().any(|o| l.starts_with(o.as_str())))
            .collect();
        assert_eq!(
            host.iter().map(|l| &l[..16]).collect::<Vec<_>>(),
            ours,
            "meminfo labels or order differ from the host's"
        );
        assert_eq!(
            ours,
            [
                "MemTotal:       ",
                "MemFree:        ",
                "MemAvailable:   ",
                "Cached:         ",
                "Unevictable:    ",
                "Mlocked:        ",
                "AnonPages:      ",
                "Mapped:         ",
                "Shmem:          ",
                "KReclaimable:   ",
                "Slab:           ",
                "SReclaimable:   ",
                "SUnreclaim:     ",
                "PageTables:     ",
                "NFS_Unstable:   ",
                "Bounce:         ",
                "WritebackTmp:   ",
                "CommitLimit:    ",
                "Committed_AS:   ",
                "VmallocTotal:   ",
                "VmallocUsed:    ",
                "VmallocChunk:   ",
                "DirectMap4k:    ",
                "DirectMap2M:    ",
                "DirectMap1G:    "
            ]
        );
        for l in &host {
            assert!(
                parse_meminfo_line(l).is_some(),
                "checker refuses host line {l:?}"
            );
        }
        // Lines whose value does not depend on the machine are the host's, byte for byte.
        for l in host
            .iter()
            .filter(|l| !l.starts_with("Mem") && !l.starts_with("DirectMap"))
            .filter(|l| !l.starts_with("PageTables"))
            // Slab memory: the host's kernel has its own caches (dentries, inodes, …), which
            // mmlab does not (docs/divergences.md, "SLUB and kmalloc").
            .filter(|l| {
                !["KReclaimable", "Slab", "SReclaimable", "SUnreclaim"]
                    .iter()
                    .any(|p| l.starts_with(&format!("{p}:")))
            })
            // The process-side counters, which the processes decide (tests/procfs_pid_live.rs).
            .filter(|l| {
                ![
                    "Cached",
                    "Unevictable",
                    "Mlocked",
                    "AnonPages",
                    "Mapped",
                    "Shmem",
                    "CommitLimit",
                    "Committed_AS",
                    "VmallocUsed",
                ]
                .iter()
                .any(|p| l.starts_with(&format!("{p}:")))
            })
        {
            assert!(text.contains(&format!("{l}\n")), "missing host line {l:?}");
        }
        assert!(text.contains("VmallocTotal:   34359738367 kB\n"));
        // Values below 10^8 kB leave " kB" at column 24, as on the host.
        for l in text.lines().filter(|l| l.starts_with("Mem")) {
            assert_eq!(l.len(), 27, "{l:?}");
        }
    }
}

/// totalreserve_pages and MemAvailable recomputed from /proc/zoneinfo.
fn mem_available_from_zoneinfo(zoneinfo: &str) -> u64 {
    let zones = parse_zoneinfo(zoneinfo);
    // calculate_totalreserve_pages()
    let totalreserve: u64 = zones
        .iter()
        .map(|z| (z.protection.iter().max().unwrap() + z.wmark[2]).min(z.managed))
        .sum();
    let free: u64 = zones.iter().map(|z| z.free).sum();
    // si_mem_available() with no page cache and no reclaimable slab: free - reserve, at least 0.
    free.saturating_sub(totalreserve)
}

#[test]
fn meminfo_values_follow_the_zones() {
    // The reserve formula gives the host's 29850 pages (zoneinfo alone, before MemFree drift).
    let host_zones = parse_zoneinfo(HOST_ZONEINFO);
    let host_reserve: u64 = host_zones
        .iter()
        .map(|z| (z.protection.iter().max().unwrap() + z.wmark[2]).min(z.managed))
        .sum();
    assert_eq!(host_reserve, 29850);

    for (ram, zone, other) in [
        (256 * MIB, "pgalloc_dma32", "pgalloc_normal"),
        (6 * GIB, "pgalloc_normal", "pgalloc_dma32"),
    ] {
        let mut k = boot(ram);
        let zi = cat(&k, "/proc/zoneinfo");
        let zones = parse_zoneinfo(&zi);
        let managed: u64 = zones.iter().map(|z| z.managed).sum();
        let free: u64 = zones.iter().map(|z| z.free).sum();
        assert_eq!(meminfo_kb(&k, "MemTotal"), managed * 4);
        assert_eq!(meminfo_kb(&k, "MemFree"), free * 4);
        assert_eq!(
            meminfo_kb(&k, "MemAvailable"),
            mem_available_from_zoneinfo(&zi) * 4
        );

        let mem_free = meminfo_kb(&k, "MemFree");
        let available = meminfo_kb(&k, "MemAvailable");
        let stat = vmstat(&k);
        let pfn = k.alloc_pages(Gfp::KERNEL, 3).unwrap();
        assert_eq!(meminfo_kb(&k, "MemFree"), mem_free - 32, "ram {ram}");
        assert_eq!(meminfo_kb(&k, "MemAvailable"), available - 32, "ram {ram}");
        assert_eq!(meminfo_kb(&k, "MemTotal"), managed * 4);
        let after = vmstat(&k);
        assert_eq!(after[zone], stat[zone] + 8, "ram {ram}");
        assert_eq!(after[other], stat[other]);
        assert_eq!(after["nr_free_pages"], stat["nr_free_pages"] - 8);
        assert_eq!(
            mem_available_from_zoneinfo(&cat(&k, "/proc/zoneinfo")) * 4,
            meminfo_kb(&k, "MemAvailable")
        );

        k.free_pages(pfn, 3).unwrap();
        assert_eq!(meminfo_kb(&k, "MemFree"), mem_free);
        assert_eq!(vmstat(&k)["pgfree"], stat["pgfree"] + 8);

        // A reserve larger than the machine: MemAvailable stops at 0, as Linux clamps it.
        k.sysctl("vm.min_free_kbytes", &(ram / 1024).to_string())
            .unwrap();
        assert_eq!(meminfo_kb(&k, "MemAvailable"), 0);
        assert_eq!(mem_available_from_zoneinfo(&cat(&k, "/proc/zoneinfo")), 0);
    }
}

// ---- /proc/vmstat ---------------------------------------------------------------------------

fn vmstat(k: &Kernel) -> std::collections::HashMap<String, u64> {
    k.vmstat().into_iter().collect()
}

#[test]
fn vmstat_names_follow_the_hosts_order() {
    assert_text_file(HOST_VMSTAT, "host vmstat");
    let host: Vec<&str> = HOST_VMSTAT
        .lines()
        .map(|l| l.split_once(' ').unwrap().0)
        .collect();
    let mut k = boot(6 * GIB);
    k.alloc_pages(Gfp::GFP_DMA, 0).unwrap();
    let text = cat(&k, "/proc/vmstat");
    assert_text_file(&text, "vmstat");
    // "%s %lu\n" per line, and k.vmstat() is the same list.
    let parsed: Vec<(String, u64)> = text
        .lines()
        .map(|l| {
            let (n, v) = l.split_once(' ').unwrap();
            assert!(
                !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()),
                "{l:?}"
            );
            (n.to_string(), v.parse().unwrap())
        })
        .collect();
    // k.vmstat() is the same list followed by mmlab's own counters.
    let linux: Vec<(String, u64)> = k
        .vmstat()
        .into_iter()
        .filter(|(n, _)| !n.starts_with("mmlab_"))
        .collect();
    assert_eq!(parsed, linux);
    assert!(
        k.vmstat().len() > linux.len()
            && k.vmstat()[linux.len()..]
                .iter()
                .all(|(n, _)| n.starts_with("mmlab_"))
    );
    let ours: Vec<&str> = parsed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        ours,
        [
            "nr_free_pages",
            "nr_free_pages_blocks",
            "nr_zone_unevictable",
            "nr_mlock",
            "nr_free_cma",
            "nr_unevictable",
            "nr_anon_pages",
            "nr_mapped",
            "nr_file_pages",
            "nr_shmem",
            "nr_foll_pin_acquired",
            "nr_foll_pin_released",
            "nr_page_table_pages",
            "pgalloc_dma",
            "pgalloc_dma32",
            "pgalloc_normal",
            "pgalloc_movable",
            "pgalloc_device",
            "pgfree",
            "pgfault",
            "pgmajfault",
            "pgmigrate_success",
            "pgmigrate_fail",
            "nr_tlb_remote_flush",
            "nr_tlb_remote_flush_received",
            "nr_tlb_local_flush_all",
            "nr_tlb_local_flush_one",
            "nr_unstable"
        ]
    );
    // The host prints all of them, in this order, except the nr_tlb_* events, which need
    // CONFIG_DEBUG_TLBFLUSH (mmlab prints them as such a kernel would, in vmstat_text order).
    let host_ours: Vec<&str> = host.iter().copied().filter(|n| ours.contains(n)).collect();
    let ours_on_host: Vec<&str> = ours
        .iter()
        .copied()
        .filter(|n| !n.starts_with("nr_tlb_"))
        .collect();
    assert_eq!(host_ours, ours_on_host);
    assert_eq!(HOST_VMSTAT.lines().last(), text.lines().last());
    assert_eq!(text.lines().last(), Some("nr_unstable 0"));

    // Values: sums of the zones' counters.
    let zones = parse_zoneinfo(&cat(&k, "/proc/zoneinfo"));
    let stat = vmstat(&k);
    assert_eq!(stat["nr_free_pages"], zones.iter().map(|z| z.free).sum());
    assert_eq!(
        stat["nr_free_pages_blocks"],
        zones.iter().filter_map(|z| z.nr_free_pages_blocks).sum()
    );
    assert_eq!(stat["pgalloc_dma"], 1);
    // Nothing but the boot tables exists yet, and they are not in NR_PAGETABLE.
    assert_eq!(stat["nr_page_table_pages"], 0);
    assert_eq!(
        meminfo_kb(&k, "PageTables"),
        k.page_alloc().nr_page_table_pages() * 4
    );
    // A new address space's PGD is one page table, in the node stats of every view.
    let pgd = k.pgtable().pgd_alloc().unwrap();
    assert_eq!(vmstat(&k)["nr_page_table_pages"], 1);
    assert_eq!(meminfo_kb(&k, "PageTables"), 4);
    assert!(
        cat(&k, "/proc/zoneinfo").contains(
            "\n      nr_shmem     0\n      nr_foll_pin_acquired 0\n      nr_foll_pin_released 0\n      nr_page_table_pages 1\n"
        )
    );
    k.pgtable().pgd_free(pgd).unwrap();
    assert_eq!(vmstat(&k)["nr_page_table_pages"], 0);
    k.validate().unwrap();
}

/// DirectMap lines of /proc/meminfo, in kB: (4k, 2M, 1G).
fn direct_map_kb(k: &Kernel) -> (u64, u64, u64) {
    (
        meminfo_kb(k, "DirectMap4k"),
        meminfo_kb(k, "DirectMap2M"),
        meminfo_kb(k, "DirectMap1G"),
    )
}

#[test]
fn direct_map_lines_add_up_as_on_the_host() {
    // The host is a 24 GiB guest with this very memory map: RAM below 640K, [1M, 3G) and
    // [4G, 25G).
    let host = |label: &str| {
        HOST_MEMINFO
            .lines()
            .find_map(|l| parse_meminfo_line(l).filter(|(lb, _)| lb.starts_with(label)))
            .unwrap()
            .1
    };
    let host_kb = (
        host("DirectMap4k:"),
        host("DirectMap2M:"),
        host("DirectMap1G:"),
    );
    assert_eq!(host_kb, (28672, 2068480, 25165824));
    let k = boot(24 * GIB);
    let ours = direct_map_kb(&k);
    // What init_mem_mapping() counts at boot: [0, 2M) in 4K pages (the ISA range and the head
    // of [1M, 3G)), [2M, 1G) in 2M pages, the rest in 1G pages — with [24G, 25G), mapped by
    // one 1G leaf in the first top-down step, counted again by the second and third steps.
    assert_eq!(ours, (512 * 4, 511 * 2048, (2 + 20 + 3) << 20));
    // The sum is the host's to the kB: 26 GiB "mapped" for 24 GiB of RAM.
    assert_eq!(ours.0 + ours.1 + ours.2, host_kb.0 + host_kb.1 + host_kb.2);
    assert_eq!(ours.0 + ours.1 + ours.2, 26 << 20);
    // The rest is what the running host's set_memory_*() calls did after boot: one 1G page split
    // into 512 2M pages, and 13 2M pages split into 4K pages (split_large_page() moves the
    // counts from one size to the next, keeping the sum).
    assert_eq!(host_kb.2, ours.2 - (1 << 20));
    assert_eq!(host_kb.1, ours.1 + 512 * 2048 - 13 * 2048);
    assert_eq!(host_kb.0, ours.0 + 13 * 512 * 4);
    k.validate().unwrap();
}

// ---- /proc/iomem ----------------------------------------------------------------------------

/// Checks an r_show() line: indent of two spaces per level, start and end in lowercase hex of
/// at least 8 digits, zero-padded, " : ", a name. Returns (depth, start, end, name).
fn parse_iomem_line(line: &str) -> Option<(usize, u64, u64, &str)> {
    let body = line.trim_start_matches(' ');
    let indent = line.len() - body.len();
    if !indent.is_multiple_of(2) {
        return None;
    }
    let (range, name) = body.split_once(" : ")?;
    let (s, e) = range.split_once('-')?;
    let hex = |t: &str| {
        (t.len() >= 8
            && t.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| u64::from_str_radix(t, 16).ok())
        .flatten()
        .filter(|v| t.len() == 8 || !t.starts_with('0') || *v == 0)
    };
    let (start, end) = (hex(s)?, hex(e)?);
    (start <= end && !name.is_empty()).then_some((indent / 2, start, end, name))
}

#[test]
fn iomem_layout_matches_the_host() {
    assert_text_file(HOST_IOMEM, "host iomem");
    for l in HOST_IOMEM.lines() {
        assert!(
            parse_iomem_line(l).is_some(),
            "checker refuses host line {l:?}"
        );
    }
    let host: Vec<&str> = HOST_IOMEM.lines().collect();

    let text = cat(&boot(256 * MIB), "/proc/iomem");
    assert_text_file(&text, "iomem");
    assert_eq!(
        text,
        "00000000-00000fff : Reserved\n\
         00001000-0009fbff : System RAM\n\
         0009fc00-000fffff : Reserved\n\
         00100000-0fffffff : System RAM\n"
    );
    // The first three lines are the host's.
    assert_eq!(text.lines().take(3).collect::<Vec<_>>(), host[..3]);

    // Above 3 GiB the PC layout resumes RAM at 4 GiB; addresses above 32 bits print in full.
    for (ram, high) in [
        (5 * GIB, "100000000-17fffffff : System RAM"),
        (6 * GIB, "100000000-1bfffffff : System RAM"),
    ] {
        let text = cat(&boot(ram), "/proc/iomem");
        for l in text.lines() {
            assert!(parse_iomem_line(l).is_some(), "bad line {l:?}");
        }
        assert!(
            text.contains("\n00100000-bfffffff : System RAM\n"),
            "{text}"
        );
        assert!(text.ends_with(&format!("\n{high}\n")), "{text}");
        // The host's line for its own top RAM range has the same shape.
        assert!(host.contains(&"100000000-63fffffff : System RAM"));
    }
}

#[test]
fn iomem_indent_is_capped_and_width_follows_the_root() {
    // Seven nested resources: r_show() stops counting depth at MAX_IORES_LEVEL (5).
    let mut root = Resource::root("PCI mem", u64::MAX);
    for level in 0..7u64 {
        root.insert(
            0x1000 * level,
            0x100000 - 0x1000 * level,
            &format!("l{level}"),
        )
        .unwrap();
    }
    let text = mmlab::procfs::iomem::render_tree(&root);
    let depths: Vec<usize> = text
        .lines()
        .map(|l| parse_iomem_line(l).unwrap().0)
        .collect();
    assert_eq!(depths, [0, 1, 2, 3, 4, 5, 5]);
    assert!(text.ends_with("\n          00006000-000f9fff : l6\n"));

    // A root ending below 0x10000 (ioport_resource) gives 4 digits.
    let mut ports = Resource::root("PCI IO", 0x10000);
    ports.insert(0x60, 0x61, "keyboard").unwrap();
    ports.insert(0x1000, 0x10000, "PCI Bus 0000:00").unwrap();
    assert_eq!(
        mmlab::procfs::iomem::render_tree(&ports),
        "0060-0060 : keyboard\n1000-ffff : PCI Bus 0000:00\n"
    );
}

#[test]
fn every_file_renders_on_odd_machines() {
    // Small, odd-sized and large machines: no panic, and every file keeps its shape.
    for (ram, cmdline) in [
        (16 * MIB, ""),
        (17 * MIB + 4096, ""),
        (3 * GIB + 4096, ""),
        (512 * MIB, "mem=200M"),
        (1 << 40, ""),
    ] {
        let k = Kernel::boot(BootOptions {
            ram,
            cmdline: cmdline.into(),
            ..Default::default()
        })
        .unwrap();
        for f in ["buddyinfo", "zoneinfo", "meminfo", "vmstat", "iomem"] {
            assert_text_file(&cat(&k, &format!("/proc/{f}")), f);
        }
        for l in cat(&k, "/proc/buddyinfo").lines() {
            assert!(parse_buddy_line(l).is_some(), "{l:?}");
        }
        meminfo(&k);
        let zi = cat(&k, "/proc/zoneinfo");
        assert_eq!(zoneinfo_labels(&zi).len(), zi.lines().count());
        assert_eq!(
            meminfo_kb(&k, "MemAvailable"),
            mem_available_from_zoneinfo(&zi) * 4
        );
    }
}
