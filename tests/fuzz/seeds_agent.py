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
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seedlib import HERE, envelope, field, p256_der, write  # noqa: E402


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
hb = envelope(7, 13, field(1, 7) + field(2, 1764633600000))
fetch = envelope(0, 20, field(1, signed))
chunk = envelope(3, 22, field(1, "img-0123456789ab") + field(2, 1) + field(3, img[512:]))
spec = (field(1, "g-0001") + field(2, "web") + field(3, "img-0123456789ab") + field(4, "img-fedcba987654") +
        field(6, "console=ttyS0") + field(7, 2) + field(8, 512 << 20) + field(9, "0000:00:03.0") +
        field(10, "qemu") + field(11, signed) + field(11, signed_initrd))
run = envelope(0, 30, field(1, spec) + field(2, 0))
stop = envelope(0, 30, field(1, spec) + field(2, 1))
destroy = envelope(0, 30, field(1, field(1, "g-0001")) + field(2, 2))
boot = envelope(9, 33, field(1, signed) + field(2, signed_initrd) + field(3, "console=ttyS0 quiet"))
boot_nokernel = envelope(10, 33, field(3, "x"))
renew = envelope(4, 15, field(1, b"\x30\x82\x01\x10" + b"\x00" * 16) + field(2, 1767225600))
enroll_ans = envelope(1, 11, field(1, "board-0001") + field(2, b"\x30\x82\x01\x10" + b"\x01" * 16) +
                      field(3, b"\x30\x82\x01\x20" + b"\x02" * 16) + field(4, b"\x5a" * 32) + field(5, 1767225600))
write("agent_link", "heartbeat", bytes([SESSION_WHOLE]) + hb)
write("agent_link", "image_fetch", bytes([SESSION_WHOLE]) + fetch)
write("agent_link", "image_fetch_badsig", bytes([SESSION_WHOLE]) + envelope(0, 20, field(1, badsig)))
empty = manifest.replace(field(5, len(img)), field(5, 0))
write("agent_link", "image_fetch_empty",
      bytes([SESSION_WHOLE]) + envelope(0, 20, field(1, field(1, empty) + field(2, sign(empty)))))
write("agent_link", "chunk_unasked", bytes([SESSION_BY3]) + chunk)
write("agent_link", "guest_run_stop_destroy", bytes([SESSION_BY3]) + run + stop + destroy + run)
write("agent_link", "baremetal", bytes([SESSION_WHOLE]) + boot + boot_nokernel)
write("agent_link", "renewal", bytes([SESSION_WHOLE]) + renew)
# Reboot orders (Envelope field 46): the fuzzed agent has no --allow-reboot
# and refuses them.
write("agent_link", "reboot",
      bytes([SESSION_WHOLE]) + envelope(7, 46, field(1, 1) + field(2, 1)) + envelope(8, 46, b"") + hb)


# A real certificate (self-signed, P-256) that matches no key the agent
# holds: a renewal or enrollment answer carrying it must be refused.
real_cert = p256_der("/CN=board-fuzz-0001", "-x509", "-days", "3650")
write("agent_link", "renewal_foreign_cert", bytes([SESSION_WHOLE]) +
      envelope(4, 15, field(1, real_cert) + field(2, 1767225600)))
write("agent_link", "enroll_foreign_cert", bytes([ENROLL_WHOLE]) +
      envelope(1, 11, field(1, "board-0001") + field(2, real_cert) + field(3, real_cert) + field(4, b"\x5a" * 32) +
               field(5, 1767225600)))
write("agent_link", "enroll_answer", bytes([ENROLL_WHOLE]) + enroll_ans)
write("agent_link", "enroll_answer_bytewise", bytes([ENROLL_BY1]) + enroll_ans + hb)
for code, name in [(1, "bad_request"), (3, "not_enrolled"), (4, "cert_expired"), (5, "revoked"),
                   (8, "not_found"), (12, "not_granted")]:
    err = envelope(5, 16, field(1, code) + field(2, "refused: " + name))
    write("agent_link", "error_" + name, bytes([SESSION_WHOLE]) + err + hb)
# A board with no token: told to wait (state 1) or rejected (state 2), with
# its pending id, when to ask again (8) and its key's fingerprint (9).
for state, name, retry in [(1, "enroll_pending", 3000), (2, "enroll_rejected", 3600000), (1, "enroll_pending_odd", 0)]:
    write("agent_link", name, bytes([ENROLL_WHOLE]) +
          envelope(1, 11, field(6, state) + field(7, "pnd-0123456789ab") + field(8, retry) + field(9, b"\x11" * 32)))
write("agent_link", "error_enrolling", bytes([ENROLL_WHOLE]) + envelope(1, 16, field(1, 2) + field(2, "token used")))
write("agent_link", "unexpected_hello", bytes([SESSION_WHOLE]) + envelope(0, 12, field(1, "cpu")))
write("agent_link", "oversize", bytes([SESSION_WHOLE]) + struct.pack(">I", 1 << 30) + b"\x00" * 8)
write("agent_link", "everything", bytes([SESSION_BY3]) + hb + fetch + chunk + run + boot + renew + stop +
      destroy + envelope(6, 16, field(1, 8)))

# ---- skyctl_answers: byte 0 = command (the index into fuzz_cmds of
# tests/fuzz/fuzz_skyctl_answers.c), byte 1 = output (0 table, 1 wide, 2 json,
# 3 yaml; +4 --no-headers), then one answer per call: u16 status, u16 length,
# body.  The shapes of docs/api.md.
CMD = {name: i for i, name in enumerate([
    "token_create", "token_list", "token_revoke", "board_list", "board_show", "board_delete",
    "board_reenroll", "board_boot_nowait", "board_boot_wait", "image_list", "image_show", "image_delete",
    "image_verify", "image_fetch_nowait", "image_fetch_wait", "guest_create", "guest_list", "guest_show",
    "guest_start", "guest_stop", "guest_delete", "version", "events", "events_filtered", "guest_create_wait"])}


def answer(status, body):
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    return struct.pack(">HH", status, len(body)) + body


def skyctl(name, cmd, out, *answers):
    write("skyctl_answers", name, bytes([CMD[cmd], out]) + b"".join(answers))


BOARD = {
    "id": "brd-3f9a0c1d2e4b", "name": "rack1-07", "state": "online", "uuid": "4c4c4544-0037-3010-8052-b4c04f4e4d32",
    "cpus": 8, "cpu_model": "AMD EPYC 7302", "virt_flags": ["svm", "npt"], "memory_bytes": 17179869184,
    "numa_nodes": 1, "kvm": True, "firmware": "uefi",
    "dmi": {"vendor": "Dell Inc.", "product": "PowerEdge R650", "serial": "7XK2M53"},
    "iommu_groups": [{"id": 3, "devices": [{"address": "0000:00:03.0", "vendor_device": "1234:11e8",
                                            "class": "0x00ff00", "driver": "vfio-pci"}]},
                     {"id": 4, "devices": [{"address": "0000:00:1f.0", "vendor_device": "8086:2918",
                                            "class": "0x060100", "driver": None}]}],
    "nics": [{"name": "eth0", "mac": "52:54:00:12:34:56", "link": True, "speed_mbps": 1000},
             {"name": "eth1", "mac": "52:54:00:12:34:57", "link": False, "speed_mbps": -1}],
    "kernel": "6.1.0-28-cloud-amd64", "hostname": "rack1-07", "agent_version": "0.1.0",
    "enrolled_at": "2026-11-25T12:00:00Z", "cert_expires_at": "2026-11-26T12:00:00Z",
    "last_seen_at": "2026-11-25T12:34:56Z", "reenroll": "pending", "reenroll_requested_at": "2026-11-25T12:30:00Z",
    "images": [{"id": "img-5e0c9a1b2c3d", "sha256": "ab" * 32, "size_bytes": 8388608}],
    "fetching": [{"id": "img-09fb31926033", "done_chunks": 3, "chunks": 8}],
    "image_errors": [{"id": "img-111111111111", "error": "chunk 3 failed its hash\x1b[2J"}],
    "boot": {"state": "refused", "request_id": 1883458333835265, "kernel": "img-09fb31926033",
             "error": "this agent runs without --allow-kexec", "updated_at": "2026-11-25T12:35:00Z"},
}
IMAGE = {"id": "img-5e0c9a1b2c3d", "name": "vmlinuz", "kind": "kernel", "format": "raw", "size_bytes": 8388608,
         "sha256": "ab" * 32, "chunks": 8, "chunk_size": 1048576, "created_at": "2026-11-25T12:00:00Z"}
INITRD = dict(IMAGE, id="img-09fb31926033", name="initrd", kind="initrd")
GUEST = {"id": "gst-2a3b4c5d6e7f", "name": "web", "board": "brd-3f9a0c1d2e4b", "state": "failed",
         "desired": "running", "backend": "qemu", "vcpus": 2, "memory_bytes": 1073741824,
         "kernel": "img-5e0c9a1b2c3d", "initrd": "img-09fb31926033", "disk": None, "cmdline": "console=ttyS0",
         "devices": ["0000:00:03.0"], "error": "qemu exited\nwith status 1", "created_at": "2026-11-25T12:00:00Z"}
TOKEN = {"id": "tok-3f2a9c", "state": "active", "uses": 3, "uses_left": 2, "created_at": "2026-11-25T12:00:00Z",
         "expires_at": "2026-11-25T13:00:00Z", "board": "brd-3f9a0c1d2e4b"}
ERR = {"error": {"code": "not_found", "message": "no board named 'x'; see 'skyctl board list'"}}
TABLE, WIDE, JSON_, YAML, NOHDR = 0, 1, 2, 3, 4

skyctl("token_create", "token_create", TABLE, answer(201, dict(TOKEN, token="skt-" + "0" * 64,
       ca_pin="sha256:" + "1" * 64, controller="10.0.2.2:7443",
       cmdline="skyroot.controller=10.0.2.2:7443 skyroot.token=skt-0 skyroot.ca=sha256:1")))
skyctl("token_list_wide", "token_list", WIDE, answer(200, {"tokens": [TOKEN, dict(TOKEN, state="used", board=None)]}))
skyctl("token_revoke", "token_revoke", TABLE, answer(200, {"id": "tok-3f2a9c", "deleted": True}))
skyctl("board_list", "board_list", TABLE | NOHDR, answer(200, {"boards": [BOARD, dict(BOARD, last_seen_at=None)]}))
skyctl("board_list_empty_yaml", "board_list", YAML, answer(200, {"boards": []}))
skyctl("board_show", "board_show", TABLE, answer(200, BOARD))
skyctl("board_show_json", "board_show", JSON_, answer(200, BOARD))
skyctl("board_delete", "board_delete", TABLE, answer(200, {"id": "brd-3f9a0c1d2e4b", "deleted": True}))
skyctl("board_reenroll", "board_reenroll", TABLE, answer(200, {"board": "brd-3f9a0c1d2e4b", "reenroll": "allowed",
       "reenroll_expires_at": "2026-11-25T12:45:00Z"}))
sent = {"board": "brd-3f9a0c1d2e4b", "boot": {"state": "sent", "request_id": 77, "kernel": "img-5e0c9a1b2c3d"}}
skyctl("board_boot_nowait", "board_boot_nowait", TABLE, answer(202, sent))
EVENT = {"resource_version": 41, "type": "guest.state", "kind": "guest", "object_id": "gst-2a3b4c5d6e7f",
         "created_at": "2026-11-25T12:35:00.123Z",
         "detail": {"name": "web", "old": "running", "new": "failed", "reason": "qemu exited\x1b[2J"}}
now = answer(200, {"events": [EVENT], "next_page_token": "cDE6ZXZlbnRzOmV2dC00MQ", "resource_version": 41})
# board boot and guest create --wait: the newest event, the order, then the
# watch (a sink: it fails here, and the wait says so).
skyctl("board_boot_accepted", "board_boot_wait", TABLE, now, answer(202, sent))
skyctl("board_boot_refused", "board_boot_wait", TABLE, now, answer(202, sent))
skyctl("events", "events", TABLE, answer(200, {"events": [EVENT, dict(EVENT, detail={}, type="token.used")],
       "resource_version": 42}))
skyctl("events_yaml", "events_filtered", YAML, now)
skyctl("events_gone", "events_filtered", TABLE, answer(410, {"error": {"code": "gone", "message": "too old",
       "oldest_resource_version": 5}}))
skyctl("guest_create_wait", "guest_create_wait", TABLE, now, answer(201, dict(GUEST, state="pending", error=None)))
skyctl("image_list", "image_list", WIDE, answer(200, {"images": [IMAGE, INITRD]}))
skyctl("image_show", "image_show", TABLE, answer(200, IMAGE))
skyctl("image_delete_conflict", "image_delete", TABLE, answer(409, {"error": {"code": "conflict",
       "message": "guest web uses image vmlinuz"}}))
skyctl("image_verify_bad", "image_verify", TABLE, answer(200, {"id": "img-5e0c9a1b2c3d", "ok": False, "chunks": 8,
       "bad_chunks": [{"index": 3, "sha256": "cd" * 32}]}))
skyctl("image_verify_ok", "image_verify", YAML, answer(200, {"id": "img-5e0c9a1b2c3d", "ok": True, "chunks": 8,
       "bad_chunks": []}))
fetch_ok = answer(202, {"board": "brd-3f9a0c1d2e4b", "image": "img-5e0c9a1b2c3d"})
skyctl("image_fetch_nowait", "image_fetch_nowait", TABLE, fetch_ok)
skyctl("image_fetch_done", "image_fetch_wait", TABLE, fetch_ok, answer(200, dict(BOARD, images=[])),
       answer(200, BOARD))
skyctl("image_fetch_error", "image_fetch_wait", TABLE, fetch_ok,
       answer(200, dict(BOARD, images=[], fetching=[], image_errors=[{"id": "img-5e0c9a1b2c3d", "error": "bad"}])))
skyctl("guest_create", "guest_create", TABLE, answer(201, dict(GUEST, state="pending", error=None)))
skyctl("guest_list", "guest_list", WIDE, answer(200, {"guests": [GUEST, dict(GUEST, devices=[], disk="img-1")]}))
skyctl("guest_show", "guest_show", TABLE, answer(200, GUEST))
skyctl("guest_start", "guest_start", TABLE, answer(200, dict(GUEST, desired="running")))
skyctl("guest_stop", "guest_stop", JSON_, answer(200, dict(GUEST, desired="stopped")))
skyctl("guest_delete", "guest_delete", TABLE, answer(200, {"id": "gst-2a3b4c5d6e7f", "deleted": True}))
skyctl("version", "version", TABLE, answer(200, {"status": "ok", "version": "0.1.0"}))
skyctl("version_down_yaml", "version", YAML)
skyctl("error_404", "board_show", TABLE, answer(404, ERR))
skyctl("error_401_plain", "guest_list", TABLE, answer(401, "Unauthorized"))
skyctl("error_500_empty", "image_list", TABLE, answer(500, b""))
skyctl("not_json", "token_list", TABLE, answer(200, "<html>hello</html>"))
skyctl("wrong_shape", "board_list", TABLE, answer(200, {"boards": {"not": "a list"}}))
skyctl("list_of_junk", "guest_list", WIDE, answer(200, {"guests": [1, "x", None, [], {"name": 7}]}))

# ---- inventory: byte 0 = roots left out (bit 0 proc, 1 sys, 2 dev), then
# entries: u8 template (index into templates[] of tests/fuzz/fuzz_inventory.c),
# u8 kind (0 file, 1 folder, 2 symlink), u8 length + bytes per %s, u16
# length + content (a file's bytes, a link's target).  The three fixture
# boards are encoded from tests/fixtures/boards, plus edge cases.
import re

TEMPLATES = [
    "proc/cpuinfo", "proc/meminfo", "proc/sys/kernel/osrelease", "proc/sys/kernel/hostname",
    "sys/devices/system/node/%s", "sys/class/dmi/id/sys_vendor", "sys/class/dmi/id/product_name",
    "sys/class/dmi/id/product_serial", "sys/class/dmi/id/product_uuid", "sys/firmware/efi", "sys/firmware",
    "dev/kvm", "sys/kernel/iommu_groups/%s", "sys/kernel/iommu_groups/%s/devices/%s",
    "sys/bus/pci/devices/%s/vendor", "sys/bus/pci/devices/%s/device", "sys/bus/pci/devices/%s/class",
    "sys/bus/pci/devices/%s/driver", "sys/class/net/%s", "sys/class/net/%s/device", "sys/class/net/%s/address",
    "sys/class/net/%s/operstate", "sys/class/net/%s/carrier", "sys/class/net/%s/speed", "sys/%p", "proc/%p",
    "dev/%p",
]
T = {t: i for i, t in enumerate(TEMPLATES)}
FILE, DIR, LINK = 0, 1, 2


def entry(template, kind, names=(), content=b""):
    if isinstance(content, str):
        content = content.encode()
    out = bytes([T[template], kind])
    for n in names:
        n = n.encode() if isinstance(n, str) else n
        out += bytes([len(n)]) + n
    return out + struct.pack(">H", len(content)) + content


def encode_board(root):
    """Every path of a fixture board that a template names, parents first."""
    pats = [(t, re.compile("^" + re.escape(t).replace("%s", "([^/]+)").replace("%p", "(.+)") + "$"))
            for t in TEMPLATES]
    out = []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs) + sorted(files):
            full = os.path.join(d, name)
            rel = os.path.relpath(full, root)
            for t, rx in pats:
                m = rx.match(rel)
                if not m:
                    continue
                if os.path.islink(full):
                    out.append(entry(t, LINK, m.groups(), os.readlink(full)))
                elif os.path.isdir(full):
                    out.append(entry(t, DIR, m.groups()))
                else:
                    out.append(entry(t, FILE, m.groups(), open(full, "rb").read()))
                break
    return b"\x00" + b"".join(out)


fixtures = os.path.join(HERE, "..", "fixtures", "boards")
for board in ("a", "b", "c"):
    write("inventory", "board_" + board, encode_board(os.path.join(fixtures, board)))
write("inventory", "no_proc", b"\x01" + entry("sys/class/dmi/id/sys_vendor", FILE, (), "QEMU"))
write("inventory", "empty_roots", b"\x00")
write("inventory", "hostile_text", b"\x00" +
      entry("proc/cpuinfo", FILE, (), "processor\t: 0\nmodel name\t: \x1b[31mEvil\x7f\xff CPU\nflags\t: vmx ept vmx svm\n"
            "processor : 1\nflags:" + " x" * 3000 + " svm\n") +
      entry("proc/meminfo", FILE, (), "MemTotal:       18446744073709551615 kB\n") +
      entry("sys/class/dmi/id/product_uuid", FILE, (), "ABCDEF00-" + "A" * 300) +
      entry("proc/sys/kernel/hostname", FILE, (), "host\x00hidden\n"))
many = b"\x00"
for i in range(270):  # 270 groups, 40 devices in one, 70 NICs: each over its INV_MAX_*
    many += entry("sys/kernel/iommu_groups/%s", DIR, (str(270 - i),))
for i in range(40):
    many += entry("sys/kernel/iommu_groups/%s/devices/%s", FILE, ("7", "0000:00:%02x.0" % i))
for i in range(70):
    many += entry("sys/class/net/%s/device", LINK, ("eth%d" % (69 - i),), "../../devices/pci0000:00/x")
write("inventory", "over_limits", many)
write("inventory", "odd_names", b"\x06" +
      entry("sys/class/net/%s/device", LINK, ("lo",), "x") +
      entry("sys/class/net/%s/device", LINK, ("n" * 40,), "x") +
      entry("sys/class/net/%s/device", LINK, ("e\x01h",), "x") +
      entry("sys/class/net/%s/address", FILE, ("eth0",), "52:54:00:12:34:56:" * 10) +
      entry("sys/class/net/%s/device", LINK, ("eth0",), "eth0") +
      entry("sys/class/net/%s/speed", FILE, ("eth0",), "99999999999") +
      entry("sys/kernel/iommu_groups/%s/devices/%s", FILE, ("01", "a" * 40)) +
      entry("sys/kernel/iommu_groups/%s/devices/%s", FILE, ("4294967296", "b")) +
      entry("sys/kernel/iommu_groups/%s/devices/%s", LINK, ("3", "0000:00:03.0"), "../../../../../../etc") +
      entry("sys/bus/pci/devices/%s/driver", LINK, ("0000:00:03.0",), "/" + "d" * 200) +
      entry("sys/bus/pci/devices/%s/vendor", FILE, ("0000:00:03.0",), "0x123456789") +
      entry("sys/devices/system/node/%s", DIR, ("node007",)) +
      entry("sys/firmware/efi", LINK, (), "efi") +
      entry("proc/%p", DIR, ("cpuinfo",)))

print("seeds written under", os.path.join(HERE, "corpus"))
