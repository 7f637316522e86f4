//! Boot-time layout: e820, zones, free lists and watermarks on machines of several sizes.

mod common;
use common::boot;
use mmlab::addr::Pfn;
use mmlab::mm::gfp::Gfp;
use mmlab::mm::zone::{Wmark, ZoneType};

#[test]
fn dma_zone_matches_a_real_x86_64_guest() {
    // The host's /proc/zoneinfo (tests/fixtures/linux-6.18) shows these DMA numbers for any
    // guest with the PC memory map: pfn 1..4095 spanned, 0x9f-0xff BIOS hole, first MiB reserved.
    let k = boot(256 << 20, "");
    let z = &k.page_alloc().zones()[0];
    assert_eq!(z.ztype, ZoneType::Dma);
    assert_eq!(
        (
            z.zone_start_pfn,
            z.spanned_pages,
            z.present_pages,
            z.managed_pages
        ),
        (Pfn::new(1), 4095, 3998, 3840)
    );
    assert!(k.cat("/proc/buddyinfo").unwrap().starts_with(
        "Node 0, zone      DMA      0      0      0      0      0      0      0      0      1      1      3 \n"
    ));
    k.validate().unwrap();
}

#[test]
fn six_gib_machine_has_three_populated_zones() {
    let k = boot(6 << 30, "");
    let zs = k.page_alloc().zones();
    assert_eq!(zs[1].present_pages, 0xc0000 - 0x1000);
    assert_eq!(zs[1].spanned_pages, 0x100000 - 0x1000);
    assert_eq!(zs[2].zone_start_pfn, Pfn::new(0x100000));
    assert_eq!(zs[2].present_pages, 3 << 18);
    assert!(!zs[3].is_populated() && !zs[4].is_populated());
    // lowmem_reserve as setup_per_zone_lowmem_reserve() computes it with ratios 256/256/32.
    assert_eq!(zs[0].lowmem_reserve[1], zs[1].managed_pages / 256);
    assert_eq!(
        zs[0].lowmem_reserve[2],
        (zs[1].managed_pages + zs[2].managed_pages) / 256
    );
    assert_eq!(zs[1].lowmem_reserve[2], zs[2].managed_pages / 256);
    assert!(zs[0].wmark(Wmark::Min) < zs[0].wmark(Wmark::Low));
    k.validate().unwrap();
}

#[test]
fn a_terabyte_boots_lazily() {
    let k = boot(1 << 40, "");
    assert!(k.page_alloc().mem_map().committed_sections() <= 4);
    assert_eq!(k.page_alloc().totalram_pages(), (1u64 << 28) - 256);
}

#[test]
fn allocate_and_free_everything_restores_buddyinfo() {
    let mut k = boot(64 << 20, "");
    let before = k.cat("/proc/buddyinfo").unwrap();
    let mut got = Vec::new();
    while let Ok(p) = k.alloc_pages(Gfp::ATOMIC | Gfp::NOWARN, 0) {
        got.push(p);
    }
    assert!(got.len() > 10_000);
    k.validate().unwrap();
    for p in got {
        k.free_pages(p, 0).unwrap();
    }
    k.validate().unwrap();
    assert_eq!(k.cat("/proc/buddyinfo").unwrap(), before);
}

#[test]
fn validate_is_cheap_on_a_huge_fresh_machine() {
    // validate() skips sections no page of which was ever written, so checking a 4 TiB machine
    // right after boot touches only the few committed sections.
    let k = boot(4 << 40, "");
    k.validate().unwrap();
    assert!(k.page_alloc().mem_map().committed_sections() <= 4);
}
