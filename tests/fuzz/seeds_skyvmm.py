#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_bzimage (skyvmm's bzImage header checks
and boot planning) into tests/fuzz/corpus/bzimage/ (committed; run again
only when the input layout of tests/fuzz/fuzz_bzimage.c changes).  The
headers come from tests/skyvmm/fakekernel.py, the host test's stand-in
kernel: a good one, and each refusal."""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "skyvmm"))
from fakekernel import image  # noqa: E402

MiB = 1 << 20


def seed(name, img, file_size=None, mem=256 * MiB, initrd=0, clen=20):
    d = os.path.join(HERE, "corpus", "bzimage")
    os.makedirs(d, exist_ok=True)
    size = len(img) if file_size is None else file_size
    data = struct.pack("<QQIH", size, mem, initrd, clen) + img[:0x400]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


good = image("x", "poweroff")
seed("good", good)
seed("good_initrd", good, initrd=4 * MiB)
seed("good_5g", good, mem=5 << 30, initrd=64 * MiB, clen=2047)
seed("cmdline_too_long", good, clen=2048)
seed("initrd_too_big", good, mem=64 * MiB, initrd=60 * MiB)
seed("mem_too_small", good, mem=16 * MiB)
seed("truncated", good, file_size=600)
for bad in ("MAGIC", "PROTO", "NO64", "RELOC"):
    seed("bad_" + bad.lower(), image("x", "poweroff", bad))
print("seeds written under", os.path.join(HERE, "corpus", "bzimage"))
