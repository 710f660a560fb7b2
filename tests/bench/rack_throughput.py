#!/usr/bin/env python3
"""Throughput on an emulated rack (fwimage/rack.sh), side by side: board to
board (the two boards' own busybox nc, over their uplinks and the rack's
bridge) against guest to guest across the two boards (a guest on each on
network lan, VLAN 100: virtio-net, the boards' br0 and taps, tagged over
the rack).  Each is one timed TCP transfer of MIB MiB of zeros (busybox nc
-e on both ends, so nothing is cut short), timed by the receiver from the
connection to its end.

usage: rack_throughput.py [MIB]   (default 32)
A meson benchmark, not in CI: meson test -C build --benchmark rack_throughput
Needs what the e2e rack cases need (root, OVMF, dnsmasq, python3)."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import e2e  # noqa: E402
from e2e import BOARD_SH, BoardFleet, Rack, build_guest, check, ensure_firmware, rack_controller  # noqa: E402
from e2e import rack_guest, rack_two_boards, wait_console  # noqa: E402
from fleetlib import Fail, wait_for  # noqa: E402

PORT_BOARD = 5002
PORT_GUEST = 5001


def lease_of(rack, board):
    mac = subprocess.run([BOARD_SH, "--name", board.name, "--print-mac"], capture_output=True,
                         text=True, env=board.env).stdout.strip()
    for ln in rack.file("dnsmasq.leases").splitlines():
        w = ln.split()
        if len(w) >= 3 and w[1].lower() == mac.lower():
            return w[2]
    raise Fail(f"no lease for board {board.name} ({mac})")


def board_to_board(rack, sink, source, mib):
    """sink listens (its debug shell), source sends; the sink's console line."""
    addr = lease_of(rack, sink)
    sink.type("echo '#!/bin/sh' >/tmp/sky-sink")
    sink.type("echo 't0=$(cut -d\" \" -f1 /proc/uptime); b=$(wc -c); "
              "echo \"SKYROOT-BOARD-SINK $b $t0 $(cut -d\" \" -f1 /proc/uptime)\" >/dev/console' >>/tmp/sky-sink")
    sink.type(f"chmod 755 /tmp/sky-sink; nc -l -p {PORT_BOARD} -e /tmp/sky-sink &")
    time.sleep(2)
    source.type("echo '#!/bin/sh' >/tmp/sky-src")
    source.type(f"echo 'exec dd if=/dev/zero bs=1M count={mib} 2>/dev/null' >>/tmp/sky-src")
    source.type(f"chmod 755 /tmp/sky-src; nc {addr} {PORT_BOARD} -e /tmp/sky-src")

    def line():
        # after the shell's prompt, on a line of its own
        m = re.search(r"SKYROOT-BOARD-SINK ([0-9]+) ([0-9.]+) ([0-9.]+)\r?\n", sink.console())
        return m.groups() if m else None
    w = wait_for(line, 600, "the board-to-board transfer", interval=1.0)
    return int(w[0]), float(w[2]) - float(w[1])


def main():
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    skip = e2e.no_ovmf() or (None if os.geteuid() == 0 else "the emulated rack needs root")
    if skip:
        print(f"SKIP: {skip}")
        return 77
    tmp = tempfile.mkdtemp(prefix="sky-bench-rack-")
    f = BoardFleet(tmp)
    ok = False
    try:
        ensure_firmware()
        rack = Rack(f, "tput", vlans=(100,))
        rack_controller(f, rack)
        build_guest(f)
        boards, (id1, id2) = rack_two_boards(f, rack)
        nb, tb = board_to_board(rack, boards[0], boards[1], mib)
        check(nb == mib << 20, f"board to board: {nb} bytes of {mib << 20}")
        r = e2e.skyctl(f, "network", "create", "lan", "--vlan", "100")
        check(r.returncode == 0, f"network create: {r.stderr}")
        rack_guest(f, "g1", id1, "lan", f"skyroot.sink={PORT_GUEST}")
        rack_guest(f, "g2", id2, "lan", f"skyroot.send=g1:{PORT_GUEST}:{mib}")
        w = wait_console(f, "g1", "SKYROOT-GUEST-SINK ", 900, "the guest-to-guest transfer")
        ng, tg = int(w[1]), float(w[2])
        check(ng == mib << 20, f"guest to guest: {ng} bytes of {mib << 20}")
        rb, rg = mib / tb, mib / tg
        print(f"rack throughput, {mib} MiB over TCP (busybox nc), two TCG boards with one vCPU each:")
        print(f"  board to board (uplinks, rack bridge):                {rb:8.2f} MiB/s ({tb:.2f} s)")
        print(f"  guest to guest (VLAN 100, virtio-net, boards' br0):   {rg:8.2f} MiB/s ({tg:.2f} s)")
        print(f"  guest/board ratio: {rg / rb:.2f}")
        ok = True
    except Fail as e:
        print(f"FAIL: {e}", file=sys.stderr)
        f.dump_failure(tmp)
    finally:
        f.close()
    if ok:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
