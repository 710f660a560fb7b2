#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/NAME/
(committed; run again only when the formats change).  Python stdlib only:
the few protobuf messages are encoded by hand from proto/skyroot.proto."""
import hashlib
import os
import struct

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


def frame(env):
    return struct.pack(">I", len(env)) + env


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- frame: whole frames, as the link carries them (first byte: read size)
hb = frame(field(1, 7) + field(13, field(1, 1) + field(2, 1764633600000)))
enroll = frame(field(1, 1) + field(10, field(1, "tok-abc") + field(2, b"\x30\x82\x01\x00" + b"\x00" * 16) +
                                   field(3, "4c4c4544-0037-3010-8052-b4c04f4e4d32") + field(4, "node-a")))
pci = field(1, "0000:00:03.0") + field(2, 0x1234) + field(3, 0x11e8) + field(4, 0x00ff00)
hello = frame(field(1, 2) + field(12, field(1, "AMD EPYC") + field(2, 4) + field(3, "svm") + field(3, "npt") +
                                  field(4, 2 << 30) + field(5, 1) +
                                  field(6, field(1, "QEMU") + field(4, "uuid")) + field(7, 2) + field(8, 1) +
                                  field(9, field(1, 3) + field(2, pci))))
err = frame(field(1, 3) + field(16, field(1, 2) + field(2, "token has already been used")))
chunk = frame(field(1, 9) + field(22, field(1, "img-0123456789ab") + field(2, 3) + field(3, b"\xab" * 64)))
write("frame", "heartbeat", b"\xff" + hb)
write("frame", "enroll", b"\x00" + enroll)
write("frame", "hello", b"\x10" + hello)
write("frame", "three", b"\x03" + hb + err + chunk)
write("frame", "oversize", b"\xff" + struct.pack(">I", 1 << 30) + b"\x00" * 8)
write("frame", "empty_oneof", b"\xff" + frame(field(1, 5)))

# ---- enroll: what a connection without a client certificate sends
# (tests/fuzz/fuzz_enroll.c: tokens skt-fuzz (general) and skt-board (made
# for the board of machine uuid-known)); a real CSR made with openssl.
def make_csr():
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        key = os.path.join(d, "k.pem")
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", key, "-subj", "/CN=board", "-outform", "DER",
                        "-out", os.path.join(d, "csr.der")], check=True, capture_output=True)
        return open(os.path.join(d, "csr.der"), "rb").read()


csr = make_csr()


def enroll_frame(token, uuid, req=1):
    return frame(field(1, req) + field(10, field(1, token) + field(2, csr) + field(3, uuid) +
                                      field(4, "node-a") + field(5, "0.1.0")))


write("enroll", "new_machine", enroll_frame("skt-fuzz", "uuid-new"))
write("enroll", "known_pending", enroll_frame("skt-fuzz", "uuid-known"))
write("enroll", "known_board_token", enroll_frame("skt-board", "uuid-known"))
write("enroll", "board_token_elsewhere", enroll_frame("skt-board", "uuid-other"))
write("enroll", "unknown_token", enroll_frame("skt-nope", "uuid-new"))
write("enroll", "bad_csr", enroll)
write("enroll", "heartbeat_first", hb + enroll_frame("skt-fuzz", "uuid-new", 2))
write("enroll", "two", enroll_frame("skt-fuzz", "uuid-new") + enroll_frame("skt-board", "uuid-known", 2))

# ---- qmp: lines qemu writes on the monitor
greeting = b'{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "Debian"}, "capabilities": ["oob"]}}\n'
write("qmp", "greeting", greeting + b'{"return": {}}\n')
write("qmp", "status", b'{"return": {"status": "running", "singlestep": false, "running": true}, "id": 2}\n')
write("qmp", "events", b'{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "POWERDOWN"}\n'
      b'{"timestamp": {"seconds": 1, "microseconds": 3}, "event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}\n'
      b'{"event": "GUEST_PANICKED", "data": {"action": "pause"}}\n')
write("qmp", "error", b'{"id": 3, "error": {"class": "GenericError", "desc": "No such device"}}\n')
write("qmp", "garbage", b'{"return": \n[1,2,3]\n{"event": 5}\n\x00\xff\n')

# ---- config: kernel command lines
write("config", "board", b"BOOT_IMAGE=/vmlinuz console=ttyS0 intel_iommu=on iommu=pt panic=-1 "
      b"skyroot.controller=10.0.2.2:7443 skyroot.token=tok-0123456789abcdef "
      b"skyroot.ca=sha256:" + b"ab" * 32 + b"\n")
write("config", "quoted", b'skyroot.controller="[fd00::1]:7443" "skyroot.token=a b" skyroot.ca=sha256:00')
write("config", "host", b"controller.example.com")

# ---- api: token request bodies (also fed to the path decoder)
write("api", "full", b'{"ttl_seconds": 7200, "uses": 3}')
write("api", "seconds", b'{"ttl_seconds": 600, "uses": 1}')
write("api", "empty", b"")
write("api", "segment", b"node%2Da%41")
write("api", "bad", b'{"uses": -1, "ttl": [1]}')

# ---- skyctl_conf
write("skyctl_conf", "conf", b"# skyctl\ncontroller = https://127.0.0.1:7444\nca = ca.crt\ntoken = sky_admin_0123456789\n")
write("skyctl_conf", "size", b"512M")
write("skyctl_conf", "duration", b"1h30m")
write("skyctl_conf", "pci", b"00:03.0")

# ---- imgcache (tests/fuzz/fuzz_imgcache.c): a header (flags: manifest
# spoiling in the low 4 bits, its parameter in bits 4-6, a small budget in
# bit 7; chunk selector: 1 + 64 * n bytes; u16 image length), the image, and
# a script of one-byte steps.  Steps: 0x00-0x3f answer a live request
# (pick: low 2 bits; how: bits 2-5: 0 right, 1 short, 2 long, 3 flipped,
# 4 another chunk's bytes, 5 empty, 6 wrong index, 7 another image, 8 an
# error); 0x40 answer all rightly; 0x60 link down+up, 0x61 down, 0x62 up,
# 0x63 sends fail; 0x80 the manifest again, 0x81 the twin's manifest (the
# same bytes, another id); 0xa0/0xa1 release/hold the image + tick, 0xa2/0xa3
# the twin; 0xc0 report + full check; 0xe1 a late answer, 0xe0/0xe2 an
# unknown one.
img = b"".join(hashlib.sha256(bytes([i])).digest() for i in range(64))  # 2048 bytes, no two chunks alike
hdr = lambda flags, sel, n: bytes([flags, sel]) + struct.pack(">H", n)
honest_end = b"\x40\xc0"
write("imgcache", "honest", hdr(0, 2, len(img)) + img + b"\x00\x01\x02\x03" + honest_end)
write("imgcache", "resume", hdr(0, 1, len(img)) + img + b"\x00\x00\x61\xe1\x62\x03\x60\xa1\x40\xa0\xc0")
write("imgcache", "sends_fail", hdr(0, 1, len(img)) + img + b"\x00\x63\x60\x63\x60" + honest_end)
write("imgcache", "late", hdr(0, 1, len(img)) + img + b"\x00\x61\xe1\xe0\xe2\x62\xe1" + honest_end)
write("imgcache", "empty", hdr(0, 0, 0) + b"\x80\xc0")
write("imgcache", "one_byte_chunks", hdr(0, 0, 100) + img[:100] + b"\x00\x05\x0a" + honest_end)
write("imgcache", "budget_small", hdr(0x80, 0, 300) + img[:300] + b"\x40\x80\xc0")
write("imgcache", "budget_exact", hdr(0x90, 1, 300) + img[:300] + honest_end)
# one of each wrong answer to an honest manifest (the image fails; at the
# end the manifest is sent again and the image served rightly)
for name, step in (("short", 0x04), ("long", 0x08), ("flipped", 0x0c), ("other_chunk", 0x10),
                   ("empty_chunk", 0x14), ("wrong_index", 0x18), ("other_image", 0x1c), ("error", 0x20)):
    write("imgcache", "answer_" + name, hdr(0, 1, len(img)) + img + bytes([0x00, step, step, 0xc0, 0x80]) + honest_end)
# one of each spoiled manifest (mode, parameter), served rightly
for name, mode, p in (("sig_flip", 1, 3), ("sig_other", 2, 0), ("sig_stale", 3, 1), ("digest_swap", 4, 0),
                      ("digest_short", 5, 1), ("digest_extra", 6, 0), ("digest_missing", 7, 0),
                      ("digest_dup", 8, 2), ("digest_wrong", 9, 5), ("size_over", 10, 0), ("size_under", 10, 3),
                      ("size_huge", 10, 6), ("chunk_zero", 11, 0), ("chunk_huge", 12, 1), ("chunk_max", 12, 2),
                      ("chunk_wrong", 13, 0), ("whole_sha", 14, 0), ("whole_sha_short", 14, 1), ("id_empty", 15, 0),
                      ("id_long", 15, 1), ("id_longest", 15, 2)):
    write("imgcache", "manifest_" + name, hdr(mode | p << 4, 1, len(img)) + img + b"\x00\x80" + honest_end)
# the twin: its chunks taken from the ready image; fetched beside it; the
# image evicted for it, or (held) not; beside a refused image
write("imgcache", "twin_dedup", hdr(0, 1, len(img)) + img + b"\x40\x81\xc0")
write("imgcache", "twin_beside", hdr(0, 1, len(img)) + img + b"\x00\x81\x00\x04\x01\x40\xc0")
write("imgcache", "twin_evicts", hdr(0x90, 1, len(img)) + img + b"\x40\x81\x40\xc0")
write("imgcache", "twin_held", hdr(0x90, 1, len(img)) + img + b"\x40\xa1\x81\xa3\xc0")
# nothing evicted for an image that would not fit even then (its manifest
# claims 2 bytes more than the budget holds)
write("imgcache", "twin_not_evicted_for_nothing", hdr(0x9a, 1, len(img)) + img + b"\x81\x40\x80\xc0")
write("imgcache", "twin_refused_image", hdr(9, 1, len(img)) + img + b"\x40\x81\x40\xc0")
write("imgcache", "digest_swap_alike", hdr(4, 0, 65) + bytes(65) + honest_end)  # chunks alike: no harm done
# ---- parse: one value of each syntax; args: arguments cut at '\n'
write("parse", "size", b"2GiB")
write("parse", "duration", b"1h30m500ms")
write("parse", "hostport", b"ctl.example.net:7443")
write("parse", "hostport6", b"[2001:db8::1]:7443")
write("parse", "listen", b"127.0.0.1:0")
write("parse", "pci", b"0000:01:1f.7")
write("parse", "pin", b"sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
write("parse", "args", b"--memory\n512M\n-fc8\nop\n--disk=a\n--controler=h:1\n--\n-x")
print("seeds written under", os.path.join(HERE, "corpus"))
