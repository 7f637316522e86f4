//! A programmable-logic accelerator, as a user would build one in a Zynq's PL: an AXI-lite
//! register block (on the GP0 port, 0x40000000 on the Zynq profile), an AXI master for DMA
//! (an HP port: bus address = physical address) and one interrupt line (IRQ_F2P[0], GIC
//! interrupt 61).
//!
//! A job reads LEN bytes at SRC, returns their CRC-32 (the IEEE 802.3 polynomial, as zlib's
//! `crc32()` and Ethernet compute it) in CRC, transforms each byte as OP says and writes the
//! result at DST. Writing CTRL with START set runs the job to completion before the store
//! returns; STATUS then says DONE (or ERROR with the cause in ERR) and, with IRQ_EN set, the
//! interrupt line is asserted until the driver writes the bits back to STATUS (write one to
//! clear).
//!
//! ```text
//! offset  name     access  bits
//! 0x00    ID       RO      0x504c4143 ("PLAC")
//! 0x04    CTRL     RW      bit 0 START (reads 0), bit 1 IRQ_EN
//! 0x08    STATUS   RW1C    bit 0 BUSY (always 0 when read), bit 1 DONE, bit 2 ERROR
//! 0x0c    OP       RW      0 copy, 1 xor KEY, 2 add KEY, 3 ASCII upper case
//! 0x10    SRC_LO   RW      source bus address, bits 31..0
//! 0x14    SRC_HI   RW      bits 63..32
//! 0x18    DST_LO   RW      destination bus address, bits 31..0
//! 0x1c    DST_HI   RW      bits 63..32
//! 0x20    LEN      RW      bytes, at most 16 MiB
//! 0x24    KEY      RW      bits 7..0: the operand of OP 1 and 2
//! 0x28    CRC      RO      CRC-32 of the last job's input
//! 0x2c    JOBS     RO      jobs finished without error
//! 0x30    ERR      RO      cause of the last ERROR: 1 bad OP, 2 LEN too large,
//!                          3 DMA read refused, 4 DMA write refused
//! ```

use super::device::{Device, DmaPort, Width};

/// The registers' offsets.
pub mod reg {
    /// ID.
    pub const ID: u64 = 0x00;
    /// CTRL.
    pub const CTRL: u64 = 0x04;
    /// STATUS.
    pub const STATUS: u64 = 0x08;
    /// OP.
    pub const OP: u64 = 0x0c;
    /// SRC_LO.
    pub const SRC_LO: u64 = 0x10;
    /// SRC_HI.
    pub const SRC_HI: u64 = 0x14;
    /// DST_LO.
    pub const DST_LO: u64 = 0x18;
    /// DST_HI.
    pub const DST_HI: u64 = 0x1c;
    /// LEN.
    pub const LEN: u64 = 0x20;
    /// KEY.
    pub const KEY: u64 = 0x24;
    /// CRC.
    pub const CRC: u64 = 0x28;
    /// JOBS.
    pub const JOBS: u64 = 0x2c;
    /// ERR.
    pub const ERR: u64 = 0x30;
}

/// The ID register's value.
pub const ID_VALUE: u32 = 0x504c_4143;
/// CTRL: start a job.
pub const CTRL_START: u32 = 1 << 0;
/// CTRL: raise the interrupt when a job ends.
pub const CTRL_IRQ_EN: u32 = 1 << 1;
/// STATUS: a job is running.
pub const STATUS_BUSY: u32 = 1 << 0;
/// STATUS: the last job finished.
pub const STATUS_DONE: u32 = 1 << 1;
/// STATUS: the last job failed.
pub const STATUS_ERROR: u32 = 1 << 2;
/// The longest job.
pub const MAX_LEN: u32 = 16 << 20;
/// The register window the accelerator decodes.
pub const WINDOW: u64 = 0x1000;

/// What a job does to each byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Copies.
    Copy,
    /// XORs with KEY.
    Xor,
    /// Adds KEY, modulo 256.
    Add,
    /// Upper-cases ASCII letters.
    Upper,
}

impl Op {
    fn from_reg(v: u32) -> Option<Op> {
        Some(match v {
            0 => Op::Copy,
            1 => Op::Xor,
            2 => Op::Add,
            3 => Op::Upper,
            _ => return None,
        })
    }

    /// The byte `b` becomes.
    pub fn apply(self, b: u8, key: u8) -> u8 {
        match self {
            Op::Copy => b,
            Op::Xor => b ^ key,
            Op::Add => b.wrapping_add(key),
            Op::Upper => b.to_ascii_uppercase(),
        }
    }
}

/// CRC-32 (IEEE 802.3, reflected, as zlib's `crc32(0, data, len)`).
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    !data.iter().fold(!0u32, |c, &b| {
        TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}

/// Causes in ERR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ErrCause {
    /// OP holds no known operation.
    BadOp = 1,
    /// LEN is above MAX_LEN.
    BadLen = 2,
    /// Reading the source was refused by the interconnect (or the IOMMU).
    DmaRead = 3,
    /// Writing the destination was refused.
    DmaWrite = 4,
}

/// The accelerator's state: its registers.
#[derive(Debug, Default)]
pub struct PlAccel {
    ctrl: u32,
    status: u32,
    op: u32,
    src: u64,
    dst: u64,
    len: u32,
    key: u32,
    crc: u32,
    jobs: u32,
    err: u32,
    log: Vec<String>,
}

impl PlAccel {
    /// A device after reset.
    pub fn new() -> PlAccel {
        PlAccel::default()
    }

    /// The 32-bit register at `offset` (rounded down to a register).
    fn reg(&self, offset: u64) -> u32 {
        match offset & !3 {
            reg::ID => ID_VALUE,
            reg::CTRL => self.ctrl & CTRL_IRQ_EN,
            reg::STATUS => self.status,
            reg::OP => self.op,
            reg::SRC_LO => self.src as u32,
            reg::SRC_HI => (self.src >> 32) as u32,
            reg::DST_LO => self.dst as u32,
            reg::DST_HI => (self.dst >> 32) as u32,
            reg::LEN => self.len,
            reg::KEY => self.key,
            reg::CRC => self.crc,
            reg::JOBS => self.jobs,
            reg::ERR => self.err,
            _ => 0,
        }
    }

    /// A 32-bit store to the register at `offset`.
    fn set_reg(&mut self, offset: u64, v: u32, dma: &mut dyn DmaPort) {
        let lo = |x: u64| (x & !0xffff_ffff) | u64::from(v);
        let hi = |x: u64| (x & 0xffff_ffff) | (u64::from(v) << 32);
        match offset {
            reg::CTRL => {
                self.ctrl = v & CTRL_IRQ_EN;
                if v & CTRL_START != 0 {
                    self.run(dma);
                }
            }
            reg::STATUS => self.status &= !(v & (STATUS_DONE | STATUS_ERROR)),
            reg::OP => self.op = v,
            reg::SRC_LO => self.src = lo(self.src),
            reg::SRC_HI => self.src = hi(self.src),
            reg::DST_LO => self.dst = lo(self.dst),
            reg::DST_HI => self.dst = hi(self.dst),
            reg::LEN => self.len = v,
            reg::KEY => self.key = v & 0xff,
            // ID, CRC, JOBS, ERR and the holes ignore stores.
            _ => {}
        }
    }

    /// One job, start to end.
    fn run(&mut self, dma: &mut dyn DmaPort) {
        let n = self.jobs + 1;
        let fail = |s: &mut PlAccel, cause: ErrCause, why: String| {
            s.err = cause as u32;
            s.status |= STATUS_ERROR;
            s.log.push(format!("job {n}: ERROR {cause:?}: {why}"));
        };
        let Some(op) = Op::from_reg(self.op) else {
            return fail(self, ErrCause::BadOp, format!("OP {}", self.op));
        };
        if self.len > MAX_LEN {
            return fail(self, ErrCause::BadLen, format!("LEN {:#x}", self.len));
        }
        let mut data = vec![0u8; self.len as usize];
        if let Err(e) = dma.dma_read(self.src, &mut data) {
            return fail(self, ErrCause::DmaRead, e.to_string());
        }
        self.crc = crc32(&data);
        let key = self.key as u8;
        data.iter_mut().for_each(|b| *b = op.apply(*b, key));
        if let Err(e) = dma.dma_write(self.dst, &data) {
            return fail(self, ErrCause::DmaWrite, e.to_string());
        }
        self.jobs = n;
        self.status |= STATUS_DONE;
        self.log.push(format!(
            "job {n}: {op:?} {:#x} bytes from {:#x} to {:#x}, crc {:#010x}",
            self.len, self.src, self.dst, self.crc
        ));
    }
}

impl Device for PlAccel {
    fn model(&self) -> &'static str {
        "pl-accel"
    }

    fn window(&self) -> u64 {
        WINDOW
    }

    fn read(&mut self, offset: u64, width: Width, _dma: &mut dyn DmaPort) -> u64 {
        match width {
            Width::B64 => u64::from(self.reg(offset)) | (u64::from(self.reg(offset + 4)) << 32),
            w => (u64::from(self.reg(offset)) >> ((offset & 3) * 8)) & w.mask(),
        }
    }

    fn write(&mut self, offset: u64, width: Width, value: u64, dma: &mut dyn DmaPort) {
        match width {
            Width::B64 => {
                self.set_reg(offset, value as u32, dma);
                self.set_reg(offset + 4, (value >> 32) as u32, dma);
            }
            Width::B32 => self.set_reg(offset, value as u32, dma),
            // Narrow stores carry byte strobes: the other bytes of the register keep their
            // value (read-only and self-clearing bits read back as the register reads).
            w => {
                let shift = (offset & 3) * 8;
                let mask = (w.mask() as u32) << shift;
                let old = self.reg(offset) & !mask;
                let strobe = match offset & !3 {
                    // A narrow store to STATUS clears only the bits it carries.
                    reg::STATUS => 0,
                    _ => old,
                };
                self.set_reg(offset & !3, strobe | ((value as u32) << shift) & mask, dma);
            }
        }
    }

    fn irq_asserted(&self) -> bool {
        self.ctrl & CTRL_IRQ_EN != 0 && self.status & (STATUS_DONE | STATUS_ERROR) != 0
    }

    fn events(&self) -> &[String] {
        &self.log
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::device::DmaFault;

    /// 64 KiB of "RAM" at bus address 0x1000_0000.
    struct Mem(Vec<u8>);
    const BASE: u64 = 0x1000_0000;
    impl DmaPort for Mem {
        fn dma_read(&mut self, bus_addr: u64, buf: &mut [u8]) -> Result<(), DmaFault> {
            let o = bus_addr.wrapping_sub(BASE) as usize;
            let src = self.0.get(o..o + buf.len()).ok_or(DmaFault::NoTarget {
                bus_addr,
                len: buf.len() as u64,
            })?;
            buf.copy_from_slice(src);
            Ok(())
        }
        fn dma_write(&mut self, bus_addr: u64, data: &[u8]) -> Result<(), DmaFault> {
            let o = bus_addr.wrapping_sub(BASE) as usize;
            let dst = self
                .0
                .get_mut(o..o + data.len())
                .ok_or(DmaFault::NoTarget {
                    bus_addr,
                    len: data.len() as u64,
                })?;
            dst.copy_from_slice(data);
            Ok(())
        }
    }

    fn w32(d: &mut PlAccel, m: &mut Mem, off: u64, v: u32) {
        d.write(off, Width::B32, u64::from(v), m);
    }
    fn r32(d: &mut PlAccel, m: &mut Mem, off: u64) -> u32 {
        d.read(off, Width::B32, m) as u32
    }

    #[test]
    fn crc32_matches_the_check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn a_job_transforms_checksums_and_interrupts() {
        let mut m = Mem(vec![0; 0x10000]);
        m.0[..9].copy_from_slice(b"hello, pl");
        let mut d = PlAccel::new();
        assert_eq!(r32(&mut d, &mut m, reg::ID), ID_VALUE);
        w32(&mut d, &mut m, reg::SRC_LO, BASE as u32);
        w32(&mut d, &mut m, reg::DST_LO, BASE as u32 + 0x100);
        w32(&mut d, &mut m, reg::LEN, 9);
        w32(&mut d, &mut m, reg::OP, 3);
        w32(&mut d, &mut m, reg::CTRL, CTRL_START | CTRL_IRQ_EN);
        assert_eq!(&m.0[0x100..0x109], b"HELLO, PL");
        assert_eq!(r32(&mut d, &mut m, reg::CRC), crc32(b"hello, pl"));
        assert_eq!(r32(&mut d, &mut m, reg::STATUS), STATUS_DONE);
        assert_eq!(r32(&mut d, &mut m, reg::CTRL), CTRL_IRQ_EN, "START reads 0");
        assert!(d.irq_asserted());
        // Acknowledge: write one to clear.
        w32(&mut d, &mut m, reg::STATUS, STATUS_DONE);
        assert!(!d.irq_asserted());
        assert_eq!(r32(&mut d, &mut m, reg::JOBS), 1);
        // XOR with a key, 64-bit address registers written with one 64-bit store.
        d.write(reg::SRC_LO, Width::B64, BASE + 0x100, &mut m);
        d.write(reg::DST_LO, Width::B64, BASE + 0x200, &mut m);
        w32(&mut d, &mut m, reg::OP, 1);
        w32(&mut d, &mut m, reg::KEY, 0x20);
        w32(&mut d, &mut m, reg::CTRL, CTRL_START);
        assert_eq!(&m.0[0x200..0x209], b"hello\x0c\x00pl");
        assert!(!d.irq_asserted(), "IRQ_EN was cleared");
        assert_eq!(d.events().len(), 2);
    }

    #[test]
    fn bad_jobs_set_error_and_leave_memory_alone() {
        let mut m = Mem(vec![7; 0x10000]);
        let mut d = PlAccel::new();
        w32(&mut d, &mut m, reg::CTRL, CTRL_IRQ_EN);
        w32(&mut d, &mut m, reg::OP, 9);
        w32(&mut d, &mut m, reg::CTRL, CTRL_START | CTRL_IRQ_EN);
        assert_eq!(r32(&mut d, &mut m, reg::ERR), ErrCause::BadOp as u32);
        assert!(d.irq_asserted());
        w32(&mut d, &mut m, reg::STATUS, STATUS_ERROR);
        w32(&mut d, &mut m, reg::OP, 0);
        w32(&mut d, &mut m, reg::LEN, 16);
        w32(&mut d, &mut m, reg::SRC_LO, 0x2000_0000);
        w32(&mut d, &mut m, reg::CTRL, CTRL_START);
        assert_eq!(r32(&mut d, &mut m, reg::ERR), ErrCause::DmaRead as u32);
        w32(&mut d, &mut m, reg::SRC_LO, BASE as u32);
        w32(&mut d, &mut m, reg::DST_LO, BASE as u32 + 0xfff8);
        w32(&mut d, &mut m, reg::CTRL, CTRL_START);
        assert_eq!(r32(&mut d, &mut m, reg::ERR), ErrCause::DmaWrite as u32);
        assert!(m.0.iter().all(|&b| b == 7), "no partial write");
        w32(&mut d, &mut m, reg::LEN, MAX_LEN + 1);
        w32(&mut d, &mut m, reg::CTRL, CTRL_START);
        assert_eq!(r32(&mut d, &mut m, reg::ERR), ErrCause::BadLen as u32);
        assert_eq!(r32(&mut d, &mut m, reg::JOBS), 0);
    }

    #[test]
    fn narrow_accesses_use_byte_lanes() {
        let mut m = Mem(vec![0; 16]);
        let mut d = PlAccel::new();
        w32(&mut d, &mut m, reg::LEN, 0x1122_3344);
        d.write(reg::LEN + 1, Width::B8, 0xaa, &mut m);
        assert_eq!(r32(&mut d, &mut m, reg::LEN), 0x1122_aa44);
        assert_eq!(d.read(reg::LEN + 2, Width::B16, &mut m), 0x1122);
        assert_eq!(d.read(reg::ID + 3, Width::B8, &mut m), 0x50);
    }
}
