#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/NAME/
(committed; run again only when the formats change).  Python stdlib only:
the few protobuf messages are encoded by hand from proto/skyroot.proto."""
import base64
import hashlib
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seedlib import HERE, envelope, field, frame, p256_der, write  # noqa: E402


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
# (second byte: the tail form refused / assembled / handed over, 0/1/2)


def tail_frame(req, image_id, index, raw):
    hdr = field(1, req) + field(22, field(1, image_id) + field(2, index))
    return struct.pack(">IH", 0x80000000 | (2 + len(hdr) + len(raw)), len(hdr)) + hdr + raw


tail = tail_frame(9, "img-0123456789ab", 3, bytes(range(256)) * 4)
write("frame", "heartbeat", b"\xff\x00" + hb)
write("frame", "enroll", b"\x00\x00" + enroll)
write("frame", "hello", b"\x10\x00" + hello)
write("frame", "three", b"\x03\x00" + hb + err + chunk)
write("frame", "oversize", b"\xff\x00" + struct.pack(">I", 1 << 30) + b"\x00" * 8)
write("frame", "empty_oneof", b"\xff\x00" + frame(field(1, 5)))
write("frame", "tail_refused", b"\xff\x00" + tail)
write("frame", "tail_assembled", b"\x07\x01" + hb + tail + chunk + tail_frame(10, "i", 0, b""))
write("frame", "tail_pieces", b"\x20\x02" + tail + hb + tail_frame(10, "i", 0, b"") + tail)
write("frame", "tail_oversize", b"\xff\x02" + struct.pack(">IH", 0xffffffff, 1) + b"\x00" * 8)
write("frame", "tail_header_past", b"\xff\x02" + struct.pack(">IH", 0x80000010, 0x0fff) + b"\x00" * 16)
write("frame", "tail_cut", b"\x30\x02" + tail[:-100])

# ---- enroll: what a connection without a client certificate sends
# (tests/fuzz/fuzz_enroll.c: tokens skt-fuzz (general) and skt-board (made
# for the board of machine uuid-known)); a real CSR made with openssl.
csr = p256_der("/CN=board", "-new")


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


# No token: a pending board (its DMI serial 6, MACs 7); SN-EXPECTED is
# expected in fuzz_enroll.c's store; the table holds 4.
def pending_frame(serial, uuid, macs=("52:54:00:12:34:56",), req=1, key_csr=None):
    body = field(2, key_csr or csr) + field(3, uuid) + field(4, "node-p") + field(5, "0.1.0") + field(6, serial)
    for m in macs:
        body += field(7, m)
    return frame(field(1, req) + field(10, body))


write("enroll", "pending_new", pending_frame("SN-1", "uuid-p1"))
write("enroll", "pending_expected", pending_frame("SN-EXPECTED", "uuid-p2", macs=()))
write("enroll", "pending_known_uuid", pending_frame("SN-2", "uuid-known"))
write("enroll", "pending_bad_mac", pending_frame("SN-3", "uuid-p3", macs=("52-54-00-12-34-56",)))
write("enroll", "pending_bad_serial", pending_frame("SN\x01", "uuid-p4"))
write("enroll", "pending_many", b"".join(pending_frame(f"SN-{i}", f"uuid-m{i}", req=i + 1,
                                                       key_csr=p256_der("/CN=board", "-new")) for i in range(6)))

# ---- agent: a board session (tests/fuzz/fuzz_agent.c: board brd-000001,
# image img-00000000f022 granted to it (one chunk), img-00000000beef not, its guest
# gst-00000000f022, boot order 5 waiting for its answer)
granted = "img-00000000f022"
nic = field(1, "eth0") + field(2, "52:54:00:12:34:56") + field(3, 1000)
hello_full = field(1, "AMD EPYC 7302") + field(2, 16) + field(3, "svm") + field(4, 64 << 30) + field(5, 2) + \
    field(6, field(1, "QEMU") + field(4, "uuid-known")) + field(7, 1) + field(8, 1) + \
    field(9, field(1, 3) + field(2, pci)) + field(10, nic) + field(11, "6.1.0") + field(12, "node-a") + \
    field(13, "0.1.0") + field(14, 5000)


a_hello = envelope(1, 12, hello_full)
a_hb = envelope(2, 13, field(1, 1) + field(2, 1764633600000))
a_chunk = envelope(3, 21, field(1, granted) + field(2, 0))
a_chunk_bad = envelope(4, 21, field(1, granted) + field(2, 7)) + \
    envelope(5, 21, field(1, "img-000000000bad") + field(2, 0)) + \
    envelope(6, 21, field(1, "img-00000000beef") + field(2, 0))
a_status = envelope(6, 23, field(1, field(1, granted) + field(2, b"\x11" * 32) + field(3, 3000)) +
                    field(2, field(1, "img-000000000abc") + field(2, 1) + field(3, 5)) +
                    field(3, field(1, "img-000000000def") + field(2, "signature does not verify")))
a_report = envelope(7, 31, field(1, field(1, "gst-00000000f022") + field(2, 2)) +
                    field(1, field(1, "gst-000000000002") + field(2, 4) + field(3, "qemu exited: 1")))
a_console = envelope(8, 32, field(1, "gst-00000000f022") + field(2, b"login: \x1b[0m\r\n"))
a_boot_ok = envelope(5, 34, field(1, 1))
a_boot_fail = envelope(5, 34, field(1, 3) + field(2, "kexec failed: \x00 bad image"))
a_renew = envelope(9, 14, field(1, csr))
a_unexpected = envelope(10, 20, field(1, field(1, b"m") + field(2, b"s"))) + \
    envelope(11, 16, field(1, 1) + field(2, "x"))
write("agent", "hello", a_hello)
write("agent", "session", a_hello + a_hb + a_chunk + a_status + a_hb)
write("agent", "chunks", a_chunk * 17 + a_chunk_bad)
write("agent", "not_granted", a_chunk_bad + a_chunk)
write("agent", "report", a_report + a_console)
write("agent", "boot_accepted", a_boot_ok)
write("agent", "boot_failed", a_boot_fail + a_boot_ok)
write("agent", "renew", a_renew)
write("agent", "unexpected", a_unexpected + a_hb)
write("agent", "enroll", enroll_frame("skt-none", "uuid-known") + a_hb)
write("agent", "truncated", a_hello + a_hb[:5])

# ---- rest: one client connection to the API (tests/fuzz/fuzz_rest.c); the
# first byte: bit 0 = the plain network-boot port, the rest = piece size
ADM = "Authorization: Bearer adm-fuzz-token\r\n"


def req(method, path, body=None, headers="", auth=ADM):
    head = f"{method} {path} HTTP/1.1\r\nHost: ctl.example:7444\r\n{auth}{headers}"
    if body is None:
        return (head + "\r\n").encode()
    body = body.encode() if isinstance(body, str) else body
    return (head + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def chunked(method, path, pieces, trailer=""):
    head = f"{method} {path} HTTP/1.1\r\nHost: h\r\n{ADM}Transfer-Encoding: chunked\r\n\r\n"
    body = "".join(f"{len(p):x};ext=1\r\n{p}\r\n" for p in pieces) + "0\r\n" + trailer + "\r\n"
    return (head + body).encode()


FULL, BOOT = b"\xfe", b"\xff"
write("rest", "ipxe", BOOT + req("GET", "/boot/ipxe?token=skt-boot-token", auth="") +
      req("GET", "/boot/ipxe?x=1&token=skt%2Dboot%2dtoken&token=again", auth=""))
write("rest", "ipxe_bad", BOOT + req("GET", "/boot/ipxe?token=nope", auth="") +
      req("GET", "/boot/ipxe", auth="") + req("GET", "/v1/boards", auth=""))
write("rest", "firmware", BOOT + req("GET", "/boot/vmlinuz", auth="") + req("GET", "/boot/initrd.img", auth="") +
      req("HEAD", "/boot/vmlinuz", auth=""))
write("rest", "public", FULL + req("GET", "/healthz", auth="") + req("GET", "/readyz", auth="") +
      req("GET", "/metrics", auth="Authorization: Bearer rdr-fuzz-token\r\n"))
RF_ADM = "Authorization: Basic " + base64.b64encode(b"admin:adm-fuzz-token").decode() + "\r\n"
write("rest", "redfish", FULL + req("GET", "/redfish/v1/", auth="") + req("GET", "/redfish/v1/Systems", auth=RF_ADM) +
      req("GET", "/redfish/v1/Systems/node-a", auth=RF_ADM) +
      req("GET", "/redfish/v1/Systems/brd-00000000f022/Processors/CPUs", auth=RF_ADM) +
      req("PATCH", "/redfish/v1/Systems/brd-00000000f022", '{"Boot": {"BootSourceOverrideTarget": "Pxe"}}',
          auth=RF_ADM) +
      req("POST", "/redfish/v1/Systems/brd-00000000f022/Actions/ComputerSystem.Reset",
          '{"ResetType": "ForceRestart"}', auth=RF_ADM) +
      req("POST", "/redfish/v1/SessionService/Sessions", '{"UserName": "reader", "Password": "rdr-fuzz-token"}',
          auth="") +
      req("GET", "/redfish/v1/SessionService/Sessions", auth="X-Auth-Token: nope\r\n") +
      req("DELETE", "/redfish/v1/Systems/node-a", auth=RF_ADM))
write("rest", "reads", FULL + req("GET", "/v1/boards") + req("GET", "/v1/boards/node-a") +
      req("GET", "/v1/boards/brd-00000000f022") + req("GET", "/v1/images") + req("GET", "/v1/images/vmlinuz") +
      req("GET", "/v1/guests") + req("GET", "/v1/guests/web1") + req("GET", "/v1/tokens") +
      req("GET", "/v1/guests/web1/console"))
write("rest", "wrong_token", FULL + req("GET", "/v1/boards", auth="Authorization: Bearer nope\r\n") +
      req("GET", "/v1/boards", auth=ADM + ADM) + req("GET", "/metrics", auth="Authorization: Basic eDp5\r\n"))
write("rest", "token_create", FULL + req("POST", "/v1/tokens", '{"ttl_seconds": 600, "uses": 2, "board": "node-a"}') +
      req("DELETE", "/v1/tokens/tok-00000000f022"))
write("rest", "pending", FULL + req("GET", "/v1/pending") + req("GET", "/v1/pending?state=rejected&limit=1") +
      req("GET", "/v1/pending/pnd-00000000f022") + req("POST", "/v1/boards/pnd-00000000f022/accept", "") +
      req("POST", "/v1/boards/pnd-00000000f022/reject", "") + req("POST", "/v1/expectations", '{"serial": "SN-1"}') +
      req("POST", "/v1/expectations", '{"uuid": "ABC-1", "serial": null}') + req("GET", "/v1/expectations") +
      req("DELETE", "/v1/expectations/exp-00000000f022"))
write("rest", "networks", FULL + req("POST", "/v1/networks", '{"name": "prod", "vlan": 100}') +
      req("POST", "/v1/networks", '{"name": "flat", "vlan": null}') + req("GET", "/v1/networks?limit=1") +
      req("GET", "/v1/networks/prod") + req("POST", "/v1/guests", '{"name": "web3", "board": "node-a", "kernel": '
      '"vmlinuz", "nics": [{"network": "prod"}, {"network": "flat", "mac": "02:00:00:00:00:01"}]}') +
      req("DELETE", "/v1/networks/prod") + req("DELETE", "/v1/guests/web3") + req("DELETE", "/v1/networks/prod"))
write("rest", "guest_create", FULL + req("POST", "/v1/guests", '{"name": "web2", "board": "node-a", "kernel": "vmlinuz", '
      '"vcpus": 2, "memory_bytes": 134217728, "cmdline": "console=ttyS0", "devices": ["0000:01:00.0"]}'))
write("rest", "guest_ops", FULL + req("POST", "/v1/guests/web1/stop", "") + req("POST", "/v1/guests/web1/start", "") +
      req("DELETE", "/v1/guests/gst-00000000f022"))
write("rest", "board_ops", FULL + req("POST", "/v1/boards/node-a/fetch", '{"image": "vmlinuz"}') +
      req("POST", "/v1/boards/node-a/boot", '{"kernel": "vmlinuz", "cmdline": "quiet"}') +
      req("POST", "/v1/boards/node-a/reenroll-allow", "") + req("DELETE", "/v1/boards/node-a"))
write("rest", "image_upload", FULL + req("POST", "/v1/images?name=disk1&kind=disk", b"\x00" * 100,
                                        headers="Content-Type: application/octet-stream\r\n") +
      req("POST", "/v1/images/disk1/verify", "") + req("DELETE", "/v1/images/disk1"))
write("rest", "image_chunked", FULL + chunked("POST", "/v1/images?name=disk%2dtwo&kind=disk", ["abc", "defgh"],
                                              "X-Trailer: 1\r\n"))
write("rest", "http_edges", FULL + b"GET /v1/boards/%6eode-a HTTP/1.1\r\nHost: a\r\nHost: b\r\n" + ADM.encode() +
      b"X-Fold: a\r\n  b\r\n\r\n" + b"GET /v1/boards/%00 HTTP/1.1\r\n" + ADM.encode() + b"\r\n" +
      b"PUT /v1/boards HTTP/1.1\r\n" + ADM.encode() + b"\r\n" + b"GET /v1/boards HTTP/1.0\r\n" + ADM.encode() + b"\r\n")

# ---- http: one connection's bytes (tests/fuzz/fuzz_http.c; the first byte
# picks the piece size; limits: URL 256, headers 1024 bytes / 16, body 4096);
# the path's length mod 5 picks the answer, "/upload" streams, "/refuse" refuses
P = b"\xff"
write("http", "obs_fold", P + b"GET /a HTTP/1.1\r\nHost: x\r\nX-Long: one\r\n two\r\n\tthree\r\n\r\n")
write("http", "duplicates", P + b"GET /ab HTTP/1.1\r\nHost: x\r\nHost: y\r\nAuthorization: Bearer a\r\n"
      b"Authorization: Bearer b\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n")
write("http", "length_twice", P + b"POST /abc HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde")
write("http", "length_and_chunked", P + b"POST /abcd HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
      b"Transfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n")
write("http", "huge_header", P + b"GET /abcde HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1100 + b"\r\n\r\n")
write("http", "many_headers", P + b"GET /a HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(20)) + b"\r\n")
write("http", "long_url", P + b"GET /" + b"p" * 300 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
write("http", "chunk_ext_trailer", P + b"POST /ab HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      b"3;name=value;q=\"a b\"\r\nabc\r\n00004\r\ndefg\r\n0;last\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n")
write("http", "chunk_sizes", P + b"POST /abc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      b"fffffffffffffffff\r\nx\r\n" + b"POST /abcd HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n\r\n")
write("http", "chunks_over_limit", P + b"POST /abcd HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
      b"800\r\n" + b"q" * 2048 + b"\r\n" + b"900\r\n" + b"r" * 2304 + b"\r\n0\r\n\r\n")
write("http", "query", P + b"GET /abcd?name=a%20b&name=c&x=%zz&=&&y HTTP/1.1\r\nHost: x\r\n\r\n"
      b"GET /abcde?token=%41%42%2f HTTP/1.1\r\nHost: x\r\n\r\n")
write("http", "pipelined_bodies", P + b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
      b"POST /ab HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nyo\r\n0\r\n\r\n"
      b"GET /abc HTTP/1.0\r\n\r\nGET /abcd HTTP/1.1\r\nConnection: close\r\n\r\nGET /late HTTP/1.1\r\n\r\n")
write("http", "bad_lines", P + b"GET  /a HTTP/1.1\r\n\r\nGET /a HTTP/9.9\r\n\r\nG\x00T /a HTTP/1.1\r\n\r\n"
      b"GET /a HTTP/1.1\r\nBad Header: x\r\n\r\nGET /a HTTP/1.1\nHost: bare-lf\n\n")
write("http", "one_byte_pieces", b"\x00" + b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
      b"Expect: 100-continue\r\n\r\nhello")

# ---- api_bodies: the first byte mod 5 picks the parser; 4 = a query string
write("api_bodies", "query_repeated", b"\x04x=1&name=first%2Done&name=second&&=")
write("api_bodies", "query_none", b"\x04")
write("api_bodies", "query_bad_escape", b"\x04kind=disk&name=a%zz")
write("api_bodies", "query_empty_value", b"\x04names=no&name=&name=late")

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
# error; in the tail form's pieces: 9 right, 10 short, 11 long, 12 flipped,
# 13 wrong index; cut off by the link dropping (back up unless the step's
# number is a multiple of 4): 14 right, 15 long); 0x40 answer all rightly; 0x60 link
# down+up, 0x61 down, 0x62 up, 0x63 sends fail; 0x80 the manifest again,
# 0x81 the twin's manifest (the same bytes, another id); 0xa0/0xa1
# release/hold the image + tick, 0xa2/0xa3 the twin; 0xc0 report + full
# check; 0xe1 a late answer (0xe5 in pieces), 0xe0/0xe2 an unknown one.
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
# the tail form: every chunk in pieces; each wrong answer in pieces; chunks
# cut off (the link back up, or left down until the end), then a late
# answer to the cut-off request, whole or in pieces
write("imgcache", "pieces_all", hdr(0, 1, len(img)) + img + b"\x24" * 40 + b"\xc0" + honest_end)
for name, step in (("short", 0x28), ("long", 0x2c), ("flipped", 0x30), ("wrong_index", 0x34)):
    write("imgcache", "pieces_" + name, hdr(0, 1, len(img)) + img + bytes([0x24, step, 0x24, 0xc0, 0x80]) + honest_end)
write("imgcache", "cut_reconnect", hdr(0, 1, len(img)) + img + b"\x24\x38\x39\x24\xe1\xe5\x38\xc0" + honest_end)
write("imgcache", "cut_down", hdr(0, 2, len(img)) + img + b"\x00\x00\x00\x38\xe5\x24\x62\x39\xe1\x60\xc0" + honest_end)
write("imgcache", "cut_long", hdr(0, 1, len(img)) + img + b"\x24\x3c\xc0\x80\x24\x3d\xe1" + honest_end)
write("imgcache", "cut_first_byte", hdr(0, 0, 64) + img[:64] + b"\x38\x38\x38\x38" + honest_end)
# one of each spoiled manifest (mode, parameter), served rightly (whole_sha:
# signed with a wrong whole-image SHA-256 and right chunk digests, the image
# is ready: the board does not hash the whole again)
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
write("parse", "mac", b"02:53:4B:0a:1b:2c")
write("parse", "nic", b"prod,mac=02:53:4b:0a:1b:2c")
write("parse", "pci", b"0000:01:1f.7")
write("parse", "pin", b"sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
write("parse", "args", b"--memory\n512M\n-fc8\nop\n--disk=a\n--controler=h:1\n--\n-x")
# ---- redfish: the first byte mod 4 picks the parser (0 Basic header,
# 1 session login, 2 reset, 3 boot PATCH)
write("redfish", "basic", b"\x00Basic " + base64.b64encode(b"admin:sky-secret"))
write("redfish", "basic_padding", b"\x00basic\t" + base64.b64encode(b"reader:x"))
write("redfish", "basic_no_colon", b"\x00Basic YWRtaW4=")
write("redfish", "bearer", b"\x00Bearer abc")
write("redfish", "session", b'\x01{"UserName": "admin", "Password": "tok"}')
write("redfish", "session_dup", b'\x01{"UserName": "a", "UserName": "b", "Password": 1}')
write("redfish", "reset", b'\x02{"ResetType": "ForceRestart"}')
write("redfish", "reset_ctl", b'\x02{"ResetType": "On\\u0000x"}')
write("redfish", "boot", b'\x03{"Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"}}')
write("redfish", "boot_mode", b'\x03{"Boot": {"BootSourceOverrideMode": "UEFI"}, "@odata.etag": "W/1"}')
write("redfish", "boot_cd", b'\x03{"Boot": {"BootSourceOverrideTarget": "Cd"}}')
write("redfish", "boot_other", b'\x03{"Boot": {"BootSourceOverrideTarget": "Cd"}, "AssetTag": 1}')
print("seeds written under", os.path.join(HERE, "corpus"))
