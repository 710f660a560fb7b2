#!/usr/bin/env python3
"""The emulated rack's 802.1Q trunk port (fwimage/rack.sh vlan): frames
tagged with VLAN N that cross the rack's bridge reach a tap device of VLAN
N untagged, where the rack's dnsmasq serves that VLAN's DHCP; what dnsmasq
sends on that tap goes back onto the bridge tagged N.

Why in user space: the rack's bridge lives on the host, and a host kernel
may have neither bridge VLAN filtering nor the 8021q module (the one the
tests run on has neither).  A bridge without VLAN filtering forwards
802.1Q frames as they are, so the boards' tagged traffic crosses it
untouched; this is the rack's one port that unwraps it.

Frames carry a virtio-net header on both sides (PACKET_VNET_HDR on the
socket, IFF_VNET_HDR on the taps): a guest's UDP or TCP packet arrives
with its checksum left to the hardware (virtio-net offload through the
boards' taps and NICs), and the header tells the kernel where to finish it;
copied as raw bytes, dnsmasq would drop it as corrupt.

usage: rack_trunk.py --trunk IFACE --vlan VID=TAP[=ADDRESS/PREFIX] ... --ready FILE [--csum-offload]
  IFACE: a veth whose peer is a port of the rack's bridge.
  Each --vlan makes tap TAP (gone when this process ends), up, with
  ADDRESS if given (test_rack.sh's VLAN clients take theirs by DHCP).
  FILE is written once every tap is up (rack.sh waits for it)."""
import argparse
import fcntl
import os
import select
import socket
import struct
import subprocess
import sys

ETH_P_ALL = 0x0003
ETH_P_8021Q = 0x8100
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_OUTGOING = 4
PACKET_VNET_HDR = 15
VNET_HDR = struct.Struct("<BBHHHH")  # struct virtio_net_hdr: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
VNET_NEEDS_CSUM = 1
TP_STATUS_VLAN_VALID = 0x10
AUXDATA = struct.Struct("IIIHHHH")  # struct tpacket_auxdata
TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
TUNSETOFFLOAD = 0x400454D0
TUN_F_CSUM = 0x01
FRAME_MAX = 65536 + 64  # a GSO frame and its header


def die(msg):
    print(f"rack_trunk: error: {msg}", file=sys.stderr)
    sys.exit(1)


def parse_vlan(spec):
    parts = spec.split("=")
    if len(parts) not in (2, 3):
        die(f"--vlan '{spec}': give VID=TAP[=ADDRESS/PREFIX]")
    vid, tap, addr = (parts + [""])[:3]
    if not vid.isdigit() or not 1 <= int(vid) <= 4094:
        die(f"--vlan '{spec}': the VLAN id must be 1..4094")
    if not tap or len(tap) > 15 or not all(c.isalnum() or c in "._-" for c in tap):
        die(f"--vlan '{spec}': bad tap name")
    return int(vid), tap, addr


def open_tap(name, csum_offload):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR))
    if csum_offload:
        fcntl.ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM)
    return fd


def ip(*args):
    r = subprocess.run(["ip"] + list(args), capture_output=True, text=True)
    if r.returncode != 0:
        die(f"ip {' '.join(args)}: {r.stderr.strip()}")


def shift(hdr, by):
    """The virtio-net header of a frame that grew (or shrank) by bytes in
    front of its network header: the checksum start and header length move."""
    flags, gso, hdr_len, gso_size, csum_start, csum_off = VNET_HDR.unpack(hdr)
    if flags & VNET_NEEDS_CSUM:
        csum_start += by
    if hdr_len:
        hdr_len += by
    return VNET_HDR.pack(flags, gso, hdr_len, gso_size, csum_start, csum_off)


def untag(data, anc):
    """(vid, header + untagged frame) or (None, None) for a frame of no
    VLAN; data is a virtio-net header and a frame.  The kernel usually
    takes the tag off into the packet's metadata (auxdata); a frame that
    still carries it is unwrapped here."""
    hdr, frame = data[:VNET_HDR.size], data[VNET_HDR.size:]
    for level, kind, aux in anc:
        if level == SOL_PACKET and kind == PACKET_AUXDATA and len(aux) >= AUXDATA.size:
            status, _, _, _, _, tci, _ = AUXDATA.unpack_from(aux)
            if status & TP_STATUS_VLAN_VALID:
                return tci & 0x0FFF, data
    if len(frame) >= 18 and struct.unpack_from("!H", frame, 12)[0] == ETH_P_8021Q:
        tci = struct.unpack_from("!H", frame, 14)[0]
        return tci & 0x0FFF, shift(hdr, -4) + frame[:12] + frame[16:]
    return None, None


def tag(data, vid):
    """header + frame from a tap -> header + the frame tagged vid"""
    hdr, frame = data[:VNET_HDR.size], data[VNET_HDR.size:]
    return shift(hdr, 4) + frame[:12] + struct.pack("!HH", ETH_P_8021Q, vid) + frame[12:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trunk", required=True)
    ap.add_argument("--vlan", action="append", default=[], required=True)
    ap.add_argument("--ready", required=True)
    ap.add_argument("--csum-offload", action="store_true",
                    help="the taps leave UDP/TCP checksums to the other side, as a guest's virtio-net does "
                    "(test_rack.sh's client)")
    a = ap.parse_args()
    vlans = [parse_vlan(s) for s in a.vlan]
    if len({v for v, _, _ in vlans}) != len(vlans):
        die("a VLAN given twice")
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((a.trunk, ETH_P_ALL))
    sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    by_vid, by_fd = {}, {}
    for vid, name, addr in vlans:
        fd = open_tap(name, a.csum_offload)
        if addr:
            ip("addr", "add", addr, "dev", name)
        ip("link", "set", name, "up")
        by_vid[vid] = fd
        by_fd[fd] = vid
    with open(a.ready, "w") as f:
        f.write(f"{os.getpid()}\n")
    poll = select.poll()
    poll.register(sock.fileno(), select.POLLIN)
    for fd in by_fd:
        poll.register(fd, select.POLLIN)
    cmsg_space = socket.CMSG_SPACE(AUXDATA.size)
    while True:
        for fd, _ in poll.poll():
            if fd == sock.fileno():
                frame, anc, _, addr = sock.recvmsg(FRAME_MAX, cmsg_space)
                if addr[2] == PACKET_OUTGOING:
                    continue  # our own, sent below
                vid, inner = untag(frame, anc)
                if vid in by_vid:
                    try:
                        os.write(by_vid[vid], inner)
                    except OSError:
                        pass  # tap not up yet or queue full: the frame is lost, as on a wire
            else:
                frame = os.read(fd, FRAME_MAX)
                if len(frame) >= VNET_HDR.size + 14:
                    try:
                        sock.send(tag(frame, by_fd[fd]))
                    except OSError:
                        pass


if __name__ == "__main__":
    main()
