#!/usr/bin/env python3
"""Writes the seed corpora of skyvmm's device fuzz targets (skyvmm_virtq,
skyvmm_pci) into tests/fuzz/corpus/NAME/ (committed; run again only when
the input formats of fuzz_skyvmm_*.c change).  Python stdlib only."""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seedlib import write  # noqa: E402

NEXT, WRITE, INDIRECT = 1, 2, 4
HIGH = 0x100000000


class Ram:
    """The guest RAM image of fuzz_skyvmm_virtq: 64 KiB at 0, rings at
    0x0 (descriptors), 0x1000 (available), 0x2000 (used)."""

    def __init__(self, size=0x10000):
        self.b = bytearray(size)

    def desc(self, i, addr, length, flags=0, nxt=0, table=0):
        struct.pack_into("<QIHH", self.b, table + 16 * i, addr, length, flags, nxt)

    def avail(self, heads, base=0x1000):
        struct.pack_into("<HH", self.b, base, 0, len(heads))
        for k, h in enumerate(heads):
            struct.pack_into("<H", self.b, base + 4 + 2 * k, h)

    def data(self, high=b""):
        return bytes(self.b) + high


def vq(name, log2, ram, high=b""):
    write("skyvmm_virtq", name, bytes([log2]) + ram.data(high))


r = Ram(0x3000)
r.desc(0, 0x8000, 16, NEXT, 1)
r.desc(1, 0x9000, 512, NEXT | WRITE, 2)
r.desc(2, 0x9200, 1, WRITE)
r.avail([0])
vq("blk_request", 4, r)

r = Ram(0x4000)
r.desc(0, 0x3000, 48, INDIRECT)
r.desc(0, 0x3100, 12, NEXT, 1, table=0x3000)
r.desc(1, 0x3200, 60, NEXT, 2, table=0x3000)
r.desc(2, 0x3400, 1526, WRITE, 0, table=0x3000)
r.avail([0])
vq("indirect", 4, r)

r = Ram(0x3000)
r.desc(0, 0x8000, 4, NEXT, 1)
r.desc(1, 0x8000, 4, NEXT, 0)
r.avail([0, 1])
vq("loop", 3, r)

r = Ram(0x3010)
r.desc(0, 0x3000, 16, INDIRECT)
r.desc(0, 0x3000, 16, INDIRECT, table=0x3000)
r.avail([0])
vq("indirect_self", 2, r)

r = Ram(0x10000)
r.desc(0, 0xfff0, 16, NEXT, 1)
r.desc(1, HIGH, 4096, WRITE)
r.desc(2, HIGH + 4000, 200, WRITE)  # past the high region's end
r.avail([0, 2])
vq("two_regions", 4, r, b"\x00" * 4096)

r = Ram(0x3000)
for i in range(256):
    r.desc(i, 0x8000 + i, 1, NEXT, (i + 1) % 256)
r.avail([0, 255, 7])
vq("long_ring", 8, r)

# ---- skyvmm_pci: ops of 8 bytes (kind, slot, off, len index, value) ----
CFGW, CFGR, PORT, BARW, BARR, BAR2, HOLE = range(7)
L1, L2, L4, L8 = range(4)


def op(kind, slot, off, ln, val):
    return struct.pack("<BBBBI", kind, slot, off, ln, val & 0xFFFFFFFF)


def pci(name, ops, ram=b""):
    write("skyvmm_pci", name, bytes([len(ops)]) + b"".join(ops) + ram)


sizing = []
for i in range(6):
    sizing += [op(CFGW, 2, 0x04, L2, 0), op(CFGW, 2, 0x10 + 4 * i, L4, 0xFFFFFFFF),
               op(CFGR, 2, 0x10 + 4 * i, L4, 0)]
sizing += [op(CFGW, 2, 0x10, L4, 0xD0000000), op(CFGW, 2, 0x18, L4, 0xE0000000),
           op(CFGW, 2, 0x1C, L4, 0x10), op(CFGW, 2, 0x04, L2, 7)]
pci("sizing_and_moves", sizing)

# virtio-blk brought up by a driver through BAR 0 (slot 1: op[1] bit 0 = 0,
# the upper offset bits in op[1] >> 1), a read request in RAM, a notify
def bar(off, ln, val, is_write=True):
    return op(BARW if is_write else BARR, (off >> 8) << 1, off & 0xFF, ln, val)


drv = [bar(0x14, L1, 0), bar(0x14, L1, 1), bar(0x14, L1, 3),
       bar(0x08, L4, 1), bar(0x0C, L4, 1), bar(0x14, L1, 11),
       bar(0x16, L2, 0), bar(0x18, L2, 16), bar(0x20, L4, 0x1000), bar(0x28, L4, 0x2000),
       bar(0x30, L4, 0x3000), bar(0x1C, L2, 1), bar(0x14, L1, 15), bar(0x1000, L2, 0)]


def blk_ram(rtype, sector, length):
    """RAM with one request (header, data, status) on the queue at 0x1000."""
    ram = bytearray(0x6100)
    data_flags = NEXT | (WRITE if rtype == 0 else 0)
    struct.pack_into("<QIHH", ram, 0x1000, 0x4000, 16, NEXT, 1)
    struct.pack_into("<QIHH", ram, 0x1010, 0x5000, length, data_flags, 2)
    struct.pack_into("<QIHH", ram, 0x1020, 0x6000, 1, WRITE, 0)
    struct.pack_into("<HHH", ram, 0x2000, 0, 1, 0)
    struct.pack_into("<IIQ", ram, 0x4000, rtype, 0, sector)
    return bytes(ram)


pci("virtio_blk_read", drv, blk_ram(0, 2, 1024))
pci("virtio_blk_write", drv, blk_ram(1, 3, 512))  # into the overlay, mid-block

# MSI-X on the device: enable, an entry, a vector
msix = [op(CFGR, 2, 0x34, L1, 0), op(CFGW, 2, 0x42, L2, 0x8000),
        op(BAR2, 1, 0x00, L4, 0xFEE00000), op(BAR2, 1, 0x01, L4, 0x41),
        op(CFGW, 2, 0x42, L2, 0xC000), op(CFGW, 2, 0x42, L2, 0x8000)]
pci("msix", msix)

# the address port poked in odd ways, then config through it
pci("ports", [op(PORT, 3, 1, L1, 1), op(PORT, 0, 1, L4, 0x80000800), op(PORT, 4, 0, L4, 0),
              op(PORT, 6, 0, L2, 0), op(HOLE, 0, 0, L8, 0x1000)])

# ---- skyvmm_vfio: BAR size codes, flags, the device's config space, then
# ops of 8 bytes (kind, offset, length index, a byte, value) ----
VCFGW, VCFGR, VSTATUS, VBARW, VBARR, VREFUSE = range(6)


def edu_cfg(msi64=True, cap_ptr=0x40, caps=((0x40, 0x05, 0x50), (0x50, 0x10, 0x00)), header=0):
    """An edu-like device's config space (as test_skyvmm_vfio.c's): 1234:11e8,
    BAR0 32-bit memory, BAR2 64-bit prefetchable, INTA; capabilities as
    (offset, id, next)."""
    c = bytearray(256)
    struct.pack_into("<HHHH", c, 0, 0x1234, 0x11E8, 0x0007, 0x0010)
    c[8], c[0x0A], c[0x0E] = 0x10, 0xFF, header
    struct.pack_into("<I", c, 0x10, 0xFEA00000)
    struct.pack_into("<I", c, 0x18, 0xFE00000C)
    struct.pack_into("<HH", c, 0x2C, 0x1AF4, 0x1100)
    c[0x34], c[0x3C], c[0x3D] = cap_ptr, 0xFF, 1
    for off, cid, nxt in caps:
        c[off], c[off + 1] = cid, nxt
        if cid == 0x05:
            struct.pack_into("<H", c, off + 2, 0x0080 if msi64 else 0)
    return bytes(c)


def vop(kind, off, ln, val, byte=0):
    return struct.pack("<BBBBI", kind, off, ln, byte, val & 0xFFFFFFFF)


def vfio(name, ops, cfg=None, sizes=(20, 0, 14, 0, 0, 0), flags=0):
    write("skyvmm_vfio", name, bytes([len(ops)]) + bytes(sizes) + bytes([flags]) + (cfg or edu_cfg()) +
          b"".join(ops))


vsizing = [vop(VCFGW, 0x04, L2, 0)]
for i in range(6):
    vsizing += [vop(VCFGW, 0x10 + 4 * i, L4, 0xFFFFFFFF), vop(VCFGR, 0x10 + 4 * i, L4, 0)]
vsizing += [vop(VCFGW, 0x10, L4, 0xD0000000), vop(VCFGW, 0x18, L4, 0xE000000C), vop(VCFGW, 0x1C, L4, 0),
            vop(VCFGW, 0x04, L2, 0x0406), vop(VBARW, 0x00, L4, 0x60, 0), vop(VBARR, 0, L4, 0x24, 2)]
vfio("edu_sizing", vsizing)

# MSI as Linux turns it on (message, then Enable), a new message while on,
# the high address, off; a byte-wise write across the control word
vmsi = [vop(VCFGR, 0x34, L1, 0), vop(VCFGW, 0x44, L4, 0xFEE00000), vop(VCFGW, 0x48, L4, 0),
        vop(VCFGW, 0x4C, L2, 0x40FA), vop(VCFGW, 0x42, L2, 0x0071), vop(VCFGW, 0x44, L4, 0xFEE01003),
        vop(VCFGW, 0x48, L4, 1), vop(VCFGW, 0x40, L4, 0x00010000), vop(VCFGW, 0x42, L1, 0),
        vop(VCFGW, 0x43, L1, 0xFF), vop(VCFGW, 0x42, L2, 0)]
vfio("edu_msi", vmsi)
vfio("msi32", [vop(VCFGW, 0x44, L4, 0xFEE00000), vop(VCFGW, 0x48, L2, 0x31), vop(VCFGW, 0x42, L2, 1),
               vop(VCFGW, 0x4A, L2, 0xFFFF), vop(VCFGW, 0x4C, L4, 0xFFFFFFFF)], edu_cfg(msi64=False))
# the host refuses the enable; then takes it
vfio("msi_refused", [vop(VCFGW, 0x44, L4, 0xFEE00000), vop(VCFGW, 0x42, L2, 1), vop(VREFUSE, 0, 0, 0),
                     vop(VCFGW, 0x42, L2, 1)], flags=1)
# the device's INTx status bit, read through the guest's status register
vfio("intx_status", [vop(VSTATUS, 0, 0, 0, 0x08), vop(VCFGR, 0x06, L2, 0), vop(VCFGR, 0x04, L4, 0),
                     vop(VSTATUS, 0, 0, 0, 0x00), vop(VCFGR, 0x06, L1, 0)])
# hostile devices: a capability list that loops, one that leaves config
# space, a pointer into the header, a bridge, BARs that are not powers of two
vfio("caps_loop", [vop(VCFGR, 0x34, L1, 0)], edu_cfg(caps=((0x40, 0x01, 0x60), (0x60, 0x11, 0x40))))
vfio("caps_edge", [vop(VCFGR, 0x34, L1, 0)], edu_cfg(cap_ptr=0xFF, caps=((0xFC, 0x05, 0xFF),)))
vfio("caps_header", [vop(VCFGR, 0x34, L1, 0)], edu_cfg(cap_ptr=0x10, caps=()))
vfio("bridge", [], edu_cfg(header=1))
vfio("bar_odd", [], sizes=(0x94, 0, 14, 0, 0, 0))
vfio("bar_huge", [vop(VCFGW, 0x10, L4, 0xFFFFFFFF)], sizes=(40, 0, 62, 0, 0, 3))
