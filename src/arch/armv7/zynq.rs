//! The board around the Zynq-7000: what its device tree (arch/arm/boot/dts/xilinx/
//! zynq-7000.dtsi with zynq-zc702.dts) puts on the bus, as far as /proc/iomem shows it.
//!
//! A device-tree platform device appears in /proc/iomem only when its driver claims its
//! registers: `devm_ioremap_resource()` names the claim "<dev_name> <res->name>"
//! (lib/devres.c since 5.8), e.g. "e000a000.gpio gpio@e000a000". Exceptions: xuartps
//! requests its window under the driver's name; AMBA (PrimeCell) nodes are requested by
//! `amba_device_add()` under the node name whether a driver binds or not (the PL330 DMA
//! controller, the CoreSight blocks); chipidea's child device inserts a copy of the USB
//! node's resource, which its own claim nests in. The GIC, SCU, L2 cache, SLCR, global timer
//! and the second TTC are mapped with `of_iomap()` and never requested, so they have no line;
//! nor has the DDR controller (synopsys_edac gives up with ECC off and releases it).
//!
//! The list is a ZC702 with xilinx_zynq_defconfig's drivers built in, on Linux 6.18; the
//! research behind each line (real dumps, the claiming function) is in
//! docs/dev/zynq-iomem.md. The PL's AXI GP0 window (0x40000000) has no line until a driver
//! claims it, as on a real board.

/// One resource a booted ZC702 has in /proc/iomem: `[start, end)`, its name, and whether it
/// is a busy claim (`request_mem_region()`/`devm_ioremap_resource()`) or a plain inserted
/// resource (a parent the claims nest in).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoardResource {
    /// First byte.
    pub start: u64,
    /// First byte after.
    pub end: u64,
    /// The name /proc/iomem prints.
    pub name: &'static str,
    /// IORESOURCE_BUSY.
    pub busy: bool,
}

const fn claim(start: u64, len: u64, name: &'static str) -> BoardResource {
    BoardResource {
        start,
        end: start + len,
        name,
        busy: true,
    }
}

const fn node(start: u64, len: u64, name: &'static str) -> BoardResource {
    BoardResource {
        start,
        end: start + len,
        name,
        busy: false,
    }
}

/// The PS peripherals' resources, parents before the claims nested in them.
pub const ZC702_IOMEM: &[BoardResource] = &[
    // cdns_uart_request_port(): CDNS_UART_REGISTER_SPACE under CDNS_UART_NAME.
    claim(0xe000_1000, 0x1000, "xuartps"),
    // ci_hdrc_add_device() → platform_device_add(), then ci_hdrc_probe()'s claim.
    node(0xe000_2000, 0x1000, "usb@e0002000"),
    claim(0xe000_2000, 0x1000, "ci_hdrc.0 usb@e0002000"),
    claim(0xe000_4000, 0x1000, "e0004000.i2c i2c@e0004000"),
    claim(0xe000_8000, 0x1000, "e0008000.can can@e0008000"),
    claim(0xe000_a000, 0x1000, "e000a000.gpio gpio@e000a000"),
    claim(0xe000_b000, 0x1000, "e000b000.ethernet ethernet@e000b000"),
    claim(0xe010_0000, 0x1000, "e0100000.mmc mmc@e0100000"),
    // ttc_timer_probe(): devm_of_iomap() since 6.5, the first TTC only.
    claim(0xf800_1000, 0x1000, "f8001000.timer timer@f8001000"),
    // amba_device_add() requests the PrimeCell's window; pl330_probe() claims it.
    node(0xf800_3000, 0x1000, "dma-controller@f8003000"),
    claim(
        0xf800_3000,
        0x1000,
        "f8003000.dma-controller dma-controller@f8003000",
    ),
    claim(0xf800_5000, 0x1000, "f8005000.watchdog watchdog@f8005000"),
    claim(0xf800_7000, 0x100, "f8007000.devcfg devcfg@f8007000"),
    claim(0xf800_7100, 0x20, "f8007100.adc adc@f8007100"),
    // CoreSight PrimeCells: requested by amba_device_add() with no driver bound.
    node(0xf880_1000, 0x1000, "etb@f8801000"),
    node(0xf880_3000, 0x1000, "tpiu@f8803000"),
    node(0xf880_4000, 0x1000, "funnel@f8804000"),
    node(0xf889_c000, 0x1000, "ptm@f889c000"),
    node(0xf889_d000, 0x1000, "ptm@f889d000"),
    // sram_probe(): the on-chip memory.
    claim(0xfffc_0000, 0x10000, "fffc0000.sram sram@fffc0000"),
];
