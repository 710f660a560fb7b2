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
