#!/usr/bin/env python3
"""skyvmm's PCI bus and virtio devices on this machine's /dev/kvm, driven
by a stand-in kernel (tests/skyvmm/fakekernel.py's bzImage header) whose
64-bit code, assembled below, is the guest driver:

  blk     --disk-fd: the host bridge's class and the virtio-blk ids through
          ports 0xCF8/0xCFC, BAR 0 where the bus placed it, num_queues over
          MMIO, feature negotiation (VERSION_1), a queue, DRIVER_OK; then a
          read of sector 1 (its marker), a write of sector 2 and a read of
          it back (the overlay), each request's status byte checked; the
          memfd itself unchanged afterwards
  blk_ro  the same with --disk-ro: the write fails with IOERR and sector 2
          reads back as it was
  net     --tap-fd on a tap in a network namespace of the test's own: a
          frame the guest sends comes out of the interface (a packet
          socket sees it), and one sent to the interface lands in the
          buffer the guest posted (root; a skip with the reason otherwise)
  net_vnet_hdr  the same on a tap made with IFF_VNET_HDR, as the agent
          makes them: skyvmm writes and reads past the tap's header

The guest prints SVDEV-OK, or SVDEV-BAD and the letter of the step that
failed, then powers off.

usage: host_devices.py CASE   (SKYVMM: the binary; exit 77 with the reason
                               where /dev/kvm cannot run a VM here)
"""
import ctypes
import os
import socket
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fakekernel import image  # noqa: E402
from host import SKYVMM, main  # noqa: E402

Q, HDR, DATA, ST = 0x300000, 0x304000, 0x305000, 0x306000  # guest RAM, 64 MiB
ETYPE = 0x88B5  # IEEE local experimental: told apart from IPv6 chatter


class Asm:
    """Just enough x86-64 for a driver: rbx holds BAR 0, rdi a RAM address,
    cl the current step's letter."""

    def __init__(self):
        self.c = bytearray()
        self.fails = []

    def emit(self, b):
        self.c += b

    def step(self, letter):
        self.emit(b"\xb1" + letter.encode())  # mov cl, letter

    def jne_bad(self):
        self.emit(b"\x0f\x85")
        self.fails.append(len(self.c))
        self.emit(b"\0\0\0\0")

    def cfg_read(self, slot, reg):
        self.emit(b"\xb8" + struct.pack("<I", 0x80000000 | slot << 11 | reg))  # mov eax, address
        self.emit(b"\xba" + struct.pack("<I", 0xCF8) + b"\xef")              # out 0xcf8, eax
        self.emit(b"\xba" + struct.pack("<I", 0xCFC) + b"\xed")              # in eax, 0xcfc

    def cmp_eax(self, v):
        self.emit(b"\x3d" + struct.pack("<I", v & 0xFFFFFFFF))

    def bar0_from_eax(self):
        self.emit(b"\x25" + struct.pack("<I", 0xFFFFFFF0) + b"\x89\xc3")  # and eax, ~0xf; mov ebx, eax

    def w8(self, off, v):
        self.emit(b"\xc6\x83" + struct.pack("<iB", off, v))

    def w16(self, off, v):
        self.emit(b"\x66\xc7\x83" + struct.pack("<iH", off, v))

    def w32(self, off, v):
        self.emit(b"\xc7\x83" + struct.pack("<iI", off, v))

    def r8(self, off):
        self.emit(b"\x0f\xb6\x83" + struct.pack("<i", off))  # movzx eax, byte [rbx+off]

    def r16(self, off):
        self.emit(b"\x0f\xb7\x83" + struct.pack("<i", off))

    def _rdi(self, addr):
        self.emit(b"\xbf" + struct.pack("<I", addr))  # mov edi, addr

    def m8(self, addr, v):
        self._rdi(addr)
        self.emit(b"\xc6\x07" + bytes([v]))

    def m16(self, addr, v):
        self._rdi(addr)
        self.emit(b"\x66\xc7\x07" + struct.pack("<H", v))

    def m32(self, addr, v):
        self._rdi(addr)
        self.emit(b"\xc7\x07" + struct.pack("<I", v))

    def mbytes(self, addr, data):
        for i in range(0, len(data), 4):
            self.m32(addr + i, struct.unpack("<I", data[i:i + 4].ljust(4, b"\0"))[0])

    def mcmp8(self, addr, v):
        self._rdi(addr)
        self.emit(b"\x80\x3f" + bytes([v]))

    def mcmp16(self, addr, v):
        self._rdi(addr)
        self.emit(b"\x66\x81\x3f" + struct.pack("<H", v))

    def mcmp32(self, addr, v):
        self._rdi(addr)
        self.emit(b"\x81\x3f" + struct.pack("<I", v))

    def wait16(self, addr, v):
        """Spins (at most about 2^32 rounds) until the word at addr is v;
        then the flags say whether it came."""
        self.emit(b"\xba\xff\xff\xff\xff")                       # mov edx, ~0 (the bound)
        self._rdi(addr)
        top = len(self.c)
        self.emit(b"\x66\x81\x3f" + struct.pack("<H", v))          # cmp word [rdi], v
        self.emit(b"\x74\x06")                                     # je out (over the next 6 bytes)
        self.emit(b"\xf3\x90")                                     # pause
        self.emit(b"\xff\xca")                                     # dec edx
        self.emit(b"\x75" + struct.pack("<b", top - (len(self.c) + 2)))  # jnz top
        self.emit(b"\x66\x81\x3f" + struct.pack("<H", v))          # out: cmp again for the flags

    def putc(self, ch):
        self.emit(b"\x66\xba\xfd\x03\xec\xa8\x20\x74\xfb")  # wait for LSR.THRE
        self.emit(b"\x66\xba\xf8\x03\xb0" + bytes([ch]) + b"\xee")

    def puts(self, s):
        for ch in s.encode():
            self.putc(ch)

    POWEROFF = b"\x66\xba\x04\x06\x66\xb8\x00\x34\x66\xef\xf4\xeb\xfd"

    def finish(self):
        self.puts("SVDEV-OK\n")
        self.emit(self.POWEROFF)
        bad = len(self.c)
        self.puts("SVDEV-BAD")
        self.emit(b"\x66\xba\xfd\x03\xec\xa8\x20\x74\xfb\x66\xba\xf8\x03\x88\xc8\xee")  # the step's letter
        self.puts("\n")
        self.emit(self.POWEROFF)
        for p in self.fails:
            struct.pack_into("<i", self.c, p, bad - (p + 4))
        return bytes(self.c)


def kernel(code):
    img = bytearray(image("x", "poweroff"))
    entry = 512 * 2 + 0x200  # setup sectors, then the 64-bit entry at +0x200
    img[entry:entry + len(code)] = code
    return bytes(img)


def virtio_up(a, slot, vendor_device, nq):
    """Finds the device, checks it, negotiates VERSION_1, sets up nq queues
    of 16 at Q + q * 0x10000, sets DRIVER_OK.  Steps A-F."""
    a.step("A")
    a.cfg_read(0, 0x08)
    a.emit(b"\xc1\xe8\x10")  # shr eax, 16: the class code's base and sub
    a.cmp_eax(0x0600)
    a.jne_bad()
    a.step("B")
    a.cfg_read(slot, 0)
    a.cmp_eax(vendor_device)
    a.jne_bad()
    a.step("C")
    a.cfg_read(slot, 0x10)
    a.bar0_from_eax()
    a.emit(b"\x3d\x00\x00\x00\xc0\x0f\x82")  # cmp eax, 0xc0000000; jb bad
    a.fails.append(len(a.c))
    a.emit(b"\0\0\0\0")
    a.step("D")
    a.r16(0x12)
    a.cmp_eax(nq)
    a.jne_bad()
    for s in (0, 1, 3):
        a.w8(0x14, s)
    a.w32(0x08, 1)
    a.w32(0x0C, 1)  # VIRTIO_F_VERSION_1
    a.w8(0x14, 11)
    a.step("E")
    a.r8(0x14)
    a.cmp_eax(11)
    a.jne_bad()
    for q in range(nq):
        base = Q + q * 0x10000
        a.w16(0x16, q)
        a.w16(0x18, 16)
        for off, v in ((0x20, base), (0x28, base + 0x1000), (0x30, base + 0x2000)):
            a.w32(off, v)
            a.w32(off + 4, 0)
        a.w16(0x1C, 1)
    a.w8(0x14, 15)
    a.step("F")
    a.r8(0x14)
    a.cmp_eax(15)
    a.jne_bad()


def desc(a, q, i, addr, length, flags, nxt):
    d = Q + q * 0x10000 + 16 * i
    a.m32(d, addr)
    a.m32(d + 4, 0)
    a.m32(d + 8, length)
    a.m16(d + 12, flags)
    a.m16(d + 14, nxt)


def avail(a, q, n, head):
    """Entry n of queue q's available ring is head; the index becomes n + 1."""
    base = Q + q * 0x10000 + 0x1000
    a.m16(base + 4 + 2 * n, head)
    a.m16(base + 2, n + 1)


def blk_request(a, n, rtype, sector, data_flags, status_step, status):
    a.m32(HDR, rtype)
    a.m32(HDR + 4, 0)
    a.m32(HDR + 8, sector)
    a.m32(HDR + 12, 0)
    a.m8(ST, 0xEE)
    desc(a, 0, 0, HDR, 16, 1, 1)
    desc(a, 0, 1, DATA, 512, data_flags, 2)
    desc(a, 0, 2, ST, 1, 2, 0)
    avail(a, 0, n, 0)
    a.w16(0x1000, 0)  # notify: processed before the write returns
    a.step(status_step)
    a.mcmp8(ST, status)
    a.jne_bad()


def run(code, *args, fds=()):
    kfd = os.memfd_create("kernel")
    os.write(kfd, kernel(code))
    argv = [SKYVMM, "--kernel-fd", str(kfd), "--memory", "64M", "--cpus", "1"] + [str(x) for x in args]
    try:
        r = subprocess.run(argv, pass_fds=(kfd,) + tuple(fds), capture_output=True, timeout=60)
    finally:
        os.close(kfd)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def case_blk(ro):
    disk = bytearray(64 * 1024)
    disk[512:516] = b"SEC1"
    disk[1024:1028] = b"SEC2"
    a = Asm()
    virtio_up(a, 1, 0x10421AF4, 1)
    blk_request(a, 0, 0, 1, 1 | 2, "G", 0)          # read sector 1
    a.step("H")
    a.mcmp32(DATA, struct.unpack("<I", b"SEC1")[0])
    a.jne_bad()
    a.m32(DATA, struct.unpack("<I", b"WRIT")[0])
    blk_request(a, 1, 1, 2, 1, "I", 1 if ro else 0)  # write sector 2: IOERR when read-only
    a.m32(DATA, 0)
    blk_request(a, 2, 0, 2, 1 | 2, "J", 0)          # read it back
    a.step("K")
    a.mcmp32(DATA, struct.unpack("<I", b"SEC2" if ro else b"WRIT")[0])
    a.jne_bad()
    a.step("L")
    a.mcmp16(Q + 0x2000 + 2, 3)                      # three chains used
    a.jne_bad()
    dfd = os.memfd_create("disk")
    os.write(dfd, bytes(disk))
    args = ["--disk-fd", dfd] + (["--disk-ro"] if ro else [])
    try:
        st, out, err = run(a.finish(), *args, fds=(dfd,))
        os.lseek(dfd, 0, os.SEEK_SET)
        after = os.read(dfd, len(disk) + 1)
    finally:
        os.close(dfd)
    if out != "SVDEV-OK\n" or st != 0:
        return f"the guest driver says {out.strip()!r}, exit {st}, stderr {err.strip()!r}"
    if after != bytes(disk):
        return "the disk's memfd changed"
    return None


def netns_tap(vnet_hdr=False):
    """A tap svtap0 (with IFF_VNET_HDR as the agent makes them, when vnet_hdr), up, in a network namespace of this process's own, and a
    packet socket on it for our ethertype; or the reason there is none."""
    if os.geteuid() != 0:
        return None, None, "needs root for a network namespace and a tap"
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x40000000) != 0:  # CLONE_NEWNET
        return None, None, f"unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())}"
    try:
        tap = os.open("/dev/net/tun", os.O_RDWR)
    except OSError as e:
        return None, None, f"/dev/net/tun: {e.strerror}"
    import fcntl
    flags = 0x0002 | 0x1000 | (0x4000 if vnet_hdr else 0)  # TAP | NO_PI (| VNET_HDR)
    fcntl.ioctl(tap, 0x400454CA, struct.pack("16sH22x", b"svtap0", flags))  # TUNSETIFF
    try:
        with open("/proc/sys/net/ipv6/conf/svtap0/disable_ipv6", "w") as f:
            f.write("1")
    except OSError:
        pass  # quieter only
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    flags = struct.unpack("16sH22x", fcntl.ioctl(s, 0x8913, struct.pack("16sH22x", b"svtap0", 0)))[1]  # SIOCGIFFLAGS
    fcntl.ioctl(s, 0x8914, struct.pack("16sH22x", b"svtap0", flags | 1))  # SIOCSIFFLAGS: IFF_UP
    s.close()
    ps = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETYPE))
    ps.bind(("svtap0", ETYPE))
    return tap, ps, None


def frame(src, tag):
    return b"\xff" * 6 + src + struct.pack(">H", ETYPE) + bytes((tag + i) & 0xFF for i in range(66))


def case_net(vnet_hdr):
    tap, ps, why = netns_tap(vnet_hdr)
    if why:
        return "SKIP " + why
    mac = bytes.fromhex("525400abcdef")
    tx = frame(mac, 1)
    rx = frame(bytes.fromhex("020000000009"), 7)
    a = Asm()
    virtio_up(a, 1, 0x10411AF4, 2)
    a.step("G")
    a.r8(0x200)                       # the MAC in the device config
    a.cmp_eax(mac[0])
    a.jne_bad()
    # rx: one buffer posted on queue 0
    desc(a, 0, 0, DATA, 2048, 2, 0)
    avail(a, 0, 0, 0)
    a.w16(0x1000, 0)
    # tx on queue 1: the zero header, then the frame
    a.mbytes(HDR, bytes(12) + tx)
    desc(a, 1, 0, HDR, 12 + len(tx), 0, 0)
    avail(a, 1, 0, 0)
    a.w16(0x1004, 1)
    a.step("H")
    a.mcmp16(Q + 0x10000 + 0x2000 + 2, 1)  # tx chain used
    a.jne_bad()
    a.step("I")
    a.wait16(Q + 0x2000 + 2, 1)             # the rx frame arrives
    a.jne_bad()
    a.step("J")
    a.mcmp32(Q + 0x2000 + 8, 12 + len(rx))  # used length: header and frame
    a.jne_bad()
    a.step("K")
    a.mcmp32(DATA + 12 + 12, struct.unpack("<I", rx[12:16])[0])  # ethertype and first bytes
    a.jne_bad()
    a.step("L")
    a.mcmp16(DATA + 10, 1)                  # num_buffers
    a.jne_bad()
    kfd = os.memfd_create("kernel")
    os.write(kfd, kernel(a.finish()))
    argv = [SKYVMM, "--kernel-fd", str(kfd), "--memory", "64M", "--cpus", "1",
            "--tap-fd", str(tap), "--mac", "52:54:00:ab:cd:ef"]
    p = subprocess.Popen(argv, pass_fds=(kfd, tap), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(kfd)
    os.close(tap)
    ps.settimeout(30)
    try:
        while True:
            got = ps.recv(2048)
            if got == tx:
                break
        ps.send(rx)
        out, err = p.communicate(timeout=60)
    except (socket.timeout, subprocess.TimeoutExpired):
        p.kill()
        out, err = p.communicate()
        return f"no frame from the guest, or no end: {out!r} {err!r}"
    out = out.decode(errors="replace")
    if out != "SVDEV-OK\n" or p.returncode != 0:
        return f"the guest driver says {out.strip()!r}, exit {p.returncode}, stderr {err.decode().strip()!r}"
    return None


CASES = {"blk": lambda: case_blk(False), "blk_ro": lambda: case_blk(True), "net": lambda: case_net(False),
         "net_vnet_hdr": lambda: case_net(True)}


if __name__ == "__main__":
    sys.exit(main(CASES, __doc__))
