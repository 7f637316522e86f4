//! i386 machines of many sizes boot with the zones, direct map and counters Linux 6.18's
//! arithmetic gives (arch/x86/mm/init_32.c, init.c): ZONE_DMA below 16 MiB, ZONE_NORMAL up to
//! `max_low_pfn`, ZONE_HIGHMEM above; the direct map covers exactly low memory; meminfo's
//! HIGHMEM lines and DirectMap lines add up; `validate()` holds.

use mmlab::addr::Pfn;
use mmlab::arch::i386::layout;
use mmlab::mm::zone::ZoneType;
use mmlab::{BootOptions, Kernel};

const M: u64 = 1 << 20;
const G: u64 = 1 << 30;

fn boot(arch: &str, ram: u64, cmdline: &str) -> Kernel {
    Kernel::boot(BootOptions {
        arch: arch.into(),
        ram,
        cmdline: cmdline.into(),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("{arch} {ram:#x}: {e}"))
}

/// (start, end) pfns of a populated zone, None if it has no pages.
fn zone(k: &Kernel, t: ZoneType) -> Option<(u64, u64)> {
    k.page_alloc()
        .zones()
        .iter()
        .find(|z| z.ztype == t && z.present_pages > 0)
        .map(|z| {
            (
                z.zone_start_pfn.as_u64(),
                z.zone_start_pfn.as_u64() + z.spanned_pages,
            )
        })
}

fn meminfo(k: &Kernel, name: &str) -> Option<u64> {
    let text = k.cat("/proc/meminfo").unwrap();
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[test]
fn zones_and_direct_map_follow_the_layout_for_every_size() {
    for arch in ["i386", "i386-pae"] {
        let pae = arch == "i386-pae";
        for ram in [16 * M, 64 * M, 512 * M, 880 * M, G, 2 * G, 3 * G] {
            let k = boot(arch, ram, "");
            let ctx = format!("{arch} {}M", ram / M);
            // The PC map: RAM from 0 with the BIOS hole, all of it below the PCI hole here.
            let max_pfn = ram / 4096;
            let l = layout::compute(pae, max_pfn, Kernel::I386_NR_CPUS, None).unwrap();
            let low = l.max_low_pfn;
            assert_eq!(k.lowmem_bytes(), low * 4096, "{ctx}");
            assert_eq!(
                zone(&k, ZoneType::Dma).map(|z| z.1),
                Some(low.min(4096)),
                "{ctx}"
            );
            let normal = zone(&k, ZoneType::Normal);
            if low > 4096 {
                assert_eq!(normal, Some((4096, low)), "{ctx}");
            } else {
                assert_eq!(normal, None, "{ctx}");
            }
            let high = zone(&k, ZoneType::HighMem);
            if max_pfn > low {
                assert_eq!(high, Some((low, max_pfn)), "{ctx}");
            } else {
                assert_eq!(high, None, "{ctx}");
            }
            assert!(
                zone(&k, ZoneType::Dma32).is_none(),
                "{ctx}: no DMA32 on 32-bit"
            );
            // Lowmem pages have a direct-map address, highmem pages none.
            assert_eq!(
                k.page_address(Pfn::new(low - 1)).map(|v| v.as_u64()),
                Some(0xc000_0000 + (low - 1) * 4096),
                "{ctx}"
            );
            if max_pfn > low {
                assert_eq!(k.page_address(Pfn::new(low)), None, "{ctx}");
            }
            // meminfo: totals split into low and high, the direct map covers lowmem.
            let total = meminfo(&k, "MemTotal").unwrap();
            let high_kb = meminfo(&k, "HighTotal").unwrap();
            assert_eq!(meminfo(&k, "LowTotal").unwrap() + high_kb, total, "{ctx}");
            assert_eq!(high_kb == 0, max_pfn <= low, "{ctx}");
            let large = if pae { "DirectMap2M" } else { "DirectMap4M" };
            assert_eq!(
                meminfo(&k, "DirectMap4k").unwrap() + meminfo(&k, large).unwrap(),
                low * 4,
                "{ctx}"
            );
            assert_eq!(meminfo(&k, "DirectMap1G"), None, "{ctx}");
            assert_eq!(
                meminfo(&k, "VmallocTotal").unwrap(),
                u64::from(l.vmalloc_end - l.vmalloc_start) / 1024,
                "{ctx}"
            );
            k.validate().unwrap_or_else(|e| panic!("{ctx}: {e}"));
        }
    }
}

#[test]
fn memmap_holes_stay_out_of_the_direct_map() {
    // A reserved hole in low memory: the direct map skips it (init_range_memory_mapping()
    // maps memblock.memory only), and the pages around it are mapped.
    let k = boot("i386", G, "memmap=16M$0x20000000");
    let mut k = k;
    assert!(
        k.translate(mmlab::addr::VirtAddr::new(0xe000_0000))
            .is_none()
    );
    assert!(
        k.translate(mmlab::addr::VirtAddr::new(0xdfff_f000))
            .is_some()
    );
    assert!(
        k.translate(mmlab::addr::VirtAddr::new(0xe100_0000))
            .is_some()
    );
    k.validate().unwrap();
    // mem= below the lowmem limit: no high memory at all.
    let k = boot("i386-pae", 2 * G, "mem=512M");
    assert!(zone(&k, ZoneType::HighMem).is_none());
    assert_eq!(k.lowmem_bytes(), 512 * M);
}

#[test]
fn boot_refuses_what_an_i386_kernel_cannot_run() {
    let err = |opts: BootOptions| Kernel::boot(opts).unwrap_err().to_string();
    let e = err(BootOptions {
        arch: "i386".into(),
        cpus: 9,
        ..Default::default()
    });
    assert!(e.contains("CONFIG_NR_CPUS=8"), "{e}");
    let e = err(BootOptions {
        arch: "i386".into(),
        cmdline: "vmalloc=2G".into(),
        ..Default::default()
    });
    assert!(e.contains("memory layout"), "{e}");
    let e = err(BootOptions {
        arch: "armv7".into(),
        ..Default::default()
    });
    assert!(e.contains("unknown arch"), "{e}");
}
