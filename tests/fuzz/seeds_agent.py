#!/usr/bin/env python3
"""Writes the seed corpora of the board- and skyctl-side fuzz targets
(agent_link, skyctl_answers, inventory) into tests/fuzz/corpus/NAME/
(committed; run again only when the formats change; seeds.py writes the
others).  Python stdlib only: the protobuf messages are encoded by hand
from proto/skyroot.proto."""
import hashlib
import json
import os
import struct
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, value):
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint(num << 3 | 2) + varint(len(value)) + value


def frame(req, num, body):
    env = (field(1, req) if req else b"") + field(num, body)
    return struct.pack(">I", len(env)) + env


def sign(msg):
    """Ed25519 signature of msg by the key of seed 01..20 (hex), whose public
    half tests/fuzz/fuzz_agent_link.c holds."""
    with tempfile.TemporaryDirectory() as d:
        key = os.path.join(d, "k.der")
        with open(key, "wb") as f:
            f.write(bytes.fromhex("302e020100300506032b657004220420") + bytes(range(1, 33)))
        with open(os.path.join(d, "m"), "wb") as f:
            f.write(msg)
        subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-keyform", "DER", "-inkey", key,
                        "-in", os.path.join(d, "m"), "-out", os.path.join(d, "s")], check=True,
                       capture_output=True)
        return open(os.path.join(d, "s"), "rb").read()


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- agent_link: first byte = link (bit 0: 1 enrollment, 0 session) and
# read size ((byte >> 1) + 1), then the controller's stream of Envelopes
# (tests/fuzz/fuzz_agent_link.c).
SESSION_WHOLE, SESSION_BY3, ENROLL_WHOLE, ENROLL_BY1 = 0xFE, 0x04, 0xFF, 0x01
img = b"\xab" * 1000
manifest = (field(1, "img-0123456789ab") + field(2, "vmlinuz") + field(3, "kernel") + field(4, "raw") +
            field(5, len(img)) + field(6, 512) + field(7, hashlib.sha256(img[:512]).digest()) +
            field(7, hashlib.sha256(img[512:]).digest()) + field(8, hashlib.sha256(img).digest()) +
            field(9, 1764633600))
signed = field(1, manifest) + field(2, sign(manifest))
badsig = field(1, manifest) + field(2, b"\x11" * 64)
initrd_manifest = manifest.replace(b"img-0123456789ab", b"img-fedcba987654")
signed_initrd = field(1, initrd_manifest) + field(2, sign(initrd_manifest))
hb = frame(7, 13, field(1, 7) + field(2, 1764633600000))
fetch = frame(0, 20, field(1, signed))
chunk = frame(3, 22, field(1, "img-0123456789ab") + field(2, 1) + field(3, img[512:]))
spec = (field(1, "g-0001") + field(2, "web") + field(3, "img-0123456789ab") + field(4, "img-fedcba987654") +
        field(6, "console=ttyS0") + field(7, 2) + field(8, 512 << 20) + field(9, "0000:00:03.0") +
        field(10, "qemu") + field(11, signed) + field(11, signed_initrd))
run = frame(0, 30, field(1, spec) + field(2, 0))
stop = frame(0, 30, field(1, spec) + field(2, 1))
destroy = frame(0, 30, field(1, field(1, "g-0001")) + field(2, 2))
boot = frame(9, 33, field(1, signed) + field(2, signed_initrd) + field(3, "console=ttyS0 quiet"))
boot_nokernel = frame(10, 33, field(3, "x"))
renew = frame(4, 15, field(1, b"\x30\x82\x01\x10" + b"\x00" * 16) + field(2, 1767225600))
enroll_ans = frame(1, 11, field(1, "board-0001") + field(2, b"\x30\x82\x01\x10" + b"\x01" * 16) +
                   field(3, b"\x30\x82\x01\x20" + b"\x02" * 16) + field(4, b"\x5a" * 32) + field(5, 1767225600))
write("agent_link", "heartbeat", bytes([SESSION_WHOLE]) + hb)
write("agent_link", "image_fetch", bytes([SESSION_WHOLE]) + fetch)
write("agent_link", "image_fetch_badsig", bytes([SESSION_WHOLE]) + frame(0, 20, field(1, badsig)))
empty = manifest.replace(field(5, len(img)), field(5, 0))
write("agent_link", "image_fetch_empty", bytes([SESSION_WHOLE]) + frame(0, 20, field(1, field(1, empty) +
                                                                                     field(2, sign(empty)))))
write("agent_link", "chunk_unasked", bytes([SESSION_BY3]) + chunk)
write("agent_link", "guest_run_stop_destroy", bytes([SESSION_BY3]) + run + stop + destroy + run)
write("agent_link", "baremetal", bytes([SESSION_WHOLE]) + boot + boot_nokernel)
write("agent_link", "renewal", bytes([SESSION_WHOLE]) + renew)
write("agent_link", "enroll_answer", bytes([ENROLL_WHOLE]) + enroll_ans)
write("agent_link", "enroll_answer_bytewise", bytes([ENROLL_BY1]) + enroll_ans + hb)
for code, name in [(1, "bad_request"), (3, "not_enrolled"), (4, "cert_expired"), (5, "revoked"),
                   (8, "not_found"), (12, "not_granted")]:
    err = frame(5, 16, field(1, code) + field(2, "refused: " + name))
    write("agent_link", "error_" + name, bytes([SESSION_WHOLE]) + err + hb)
write("agent_link", "error_enrolling", bytes([ENROLL_WHOLE]) + frame(1, 16, field(1, 2) + field(2, "token used")))
write("agent_link", "unexpected_hello", bytes([SESSION_WHOLE]) + frame(0, 12, field(1, "cpu")))
write("agent_link", "oversize", bytes([SESSION_WHOLE]) + struct.pack(">I", 1 << 30) + b"\x00" * 8)
write("agent_link", "everything", bytes([SESSION_BY3]) + hb + fetch + chunk + run + boot + renew + stop +
      destroy + frame(6, 16, field(1, 8)))

print("seeds written under", os.path.join(HERE, "corpus"))
