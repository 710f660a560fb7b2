#!/usr/bin/env python3
"""Firmware and guest benchmark on emulated boards (prints figures).

  - the firmware image's parts and the UKI against 16 MiB of SPI flash
    (fwimage/build.sh --report, xz as shipped);
  - power-on to online per boot path (UEFI skyroot.efi, iPXE network boot),
    one board at a time, against QEMU booting the same kernel + initramfs
    directly (-kernel, no firmware, to its init) on the same machine;
  - guest create to its first console line, split into phases: command
    (controller to board), fetch (images into RAM), VMM start (QEMU up) and
    guest boot (to the first console line), with the images not yet and
    then already in the board's RAM.

Every board (both boot paths) and the direct QEMU boot have the same shape
(--cpus, --memory, one TCG thread), checked against what the agents report.
A phase the board's log or the API's states do not show is printed as
"missing" and fails the run (exit 1), as does a UKI over the flash.

usage: tests/bench/firmware.py [--cpus 1] [--memory 3072]
"""
import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import e2e  # noqa: E402
from fleetlib import ROOT, SKYAGENT, free_port, skyctl, wait_for  # noqa: E402


def board_log_times(console, guest_id):
    """Agent log lines on the board's console: state -> wall time."""
    out = {}
    for line in console.splitlines():
        m = re.search(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z) skyagent info: guest " + guest_id + r": (\w+)", line)
        if m and m.group(2) not in out:
            out[m.group(2)] = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
    return out


PHASES = ("command", "fetch", "VMM start", "guest boot")


def guest_phases(f, b, name, board_id, kernel, initrd, warm):
    """Guest create to its first console line: (total s, {phase: s or None})."""
    t0 = time.time()
    r = skyctl(f, "-o", "json", "guest", "create", "--name", name, "--board", board_id, "--kernel", kernel,
               "--initrd", initrd, "--cmdline", "console=ttyS0 quiet", "--memory", "256M")
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    gid = json.loads(r.stdout)["id"]
    seen = {}

    def poll():
        g = f.api("GET", f"/v1/guests/{name}")[1]
        seen.setdefault(g["state"], time.time())
        if g["state"] == "failed":
            raise SystemExit(g["error"])
        if "SKYROOT-GUEST-UP" in skyctl(f, "guest", "console", name).stdout:
            seen.setdefault("console", time.time())
            return True
        return False
    wait_for(poll, 300, f"guest {name} up", interval=0.2)
    logt = board_log_times(b.console(), gid)
    # Board-side phases on the board's clock (its agent log), host-side ones
    # on ours; only differences within one clock are taken.
    fetch = logt["starting"] - logt["fetching"] if "fetching" in logt and "starting" in logt else None
    vmm = logt["running"] - logt["starting"] if "starting" in logt and "running" in logt else None
    # Command: create to the board's first report of the guest (the API has
    # no 'starting': with the images in RAM the first report is 'running',
    # so the board's starting -> running is taken off).
    if "fetching" in seen:
        command = seen["fetching"] - t0
    elif "running" in seen and vmm is not None:
        command = seen["running"] - t0 - vmm
    else:
        command = None
    ph = {
        "command": command,
        "fetch": fetch if "fetching" in logt or warm is False else "none (images in RAM)",
        "VMM start": vmm,
        "guest boot": seen["console"] - seen["running"] if "running" in seen else None,
    }
    if warm and "fetching" in logt:
        raise SystemExit(f"guest {name}: the board fetched its images again, though they were in its RAM")
    return seen["console"] - t0, ph


def wait_online_since(f, t0, exclude=()):
    """Power-on to online: the API polled every 0.1 s (both boot paths alike)."""
    def one():
        on = [b for b in f.boards_api() if b["state"] == "online" and b["id"] not in exclude]
        return on[0] if on else None
    board = wait_for(one, e2e.BOOT_TIMEOUT, "the board to come online", interval=0.1)
    return board, time.time() - t0


def board_shape(f, board_id):
    """What the board's agent reported (untimed wait for its inventory): (vCPUs, memory MiB)."""
    def inv():
        st, b = f.api("GET", f"/v1/boards/{board_id}")
        return b if st == 200 and b.get("cpus") and b.get("memory_bytes") else None
    b = wait_for(inv, 60, f"board {board_id}'s inventory", interval=0.2)
    return b["cpus"], b["memory_bytes"] >> 20


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cpus", type=int, default=1, help="vCPUs of every board and of the direct QEMU boot")
    ap.add_argument("--memory", type=int, default=3072, help="MiB of every board and of the direct QEMU boot")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sky-bench-fw-")
    failures = []
    # 1. sizes, as shipped (xz -9e)
    out = os.path.join(tmp, "fw-xz")
    r = subprocess.run([os.path.join(ROOT, "fwimage", "build.sh"), "--agent", SKYAGENT, "--out", out, "--report"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"fwimage/build.sh --report failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    report = [l for l in r.stdout.splitlines() if l.startswith("  ") and ("MiB" in l or "raw" in l)]
    uki = re.search(r"UKI total \(skyroot.efi\)\s+(\d+)", r.stdout)
    flash = re.search(r"SPI flash \(.*?\)\s+(\d+)", r.stdout)
    if not uki or not flash:
        raise SystemExit("fwimage/build.sh --report printed no UKI or flash size")
    uki, flash = int(uki.group(1)), int(flash.group(1))
    # 2. boots and guests (the e2e firmware build); every board and the
    # direct QEMU boot have the same shape: --cpus vCPUs, --memory MiB, one TCG thread.
    shape = ["--cpus", str(a.cpus)]
    e2e.ensure_firmware()
    f = e2e.e2e_fleet(tmp)
    times, shapes = {}, {}
    try:
        fwdir = os.path.join(tmp, "fw")
        os.mkdir(fwdir)
        for n in ("vmlinuz", "initrd.img"):
            os.symlink(os.path.join(e2e.FW, n), os.path.join(fwdir, n))
        with open(os.path.join(fwdir, "cmdline"), "w") as c:
            c.write("console=ttyS0 intel_iommu=on iommu=pt panic=-1 no_timer_check\n")
        port = free_port()
        e2e.start_controller(f, ["--firmware", fwdir, "--boot-listen", f"127.0.0.1:{port}"])
        e2e.build_guest(f)
        # direct QEMU boot of the same kernel + initramfs (no UEFI, no agent) to init
        t = time.time()
        q = subprocess.Popen(["qemu-system-x86_64", "-M", "q35", "-accel", "tcg,thread=single", "-cpu", "max",
                              "-smp", str(a.cpus), "-m", str(a.memory), "-display", "none", "-no-reboot",
                              "-serial", "stdio", "-kernel", os.path.join(e2e.FW, "vmlinuz"),
                              "-initrd", os.path.join(e2e.FW, "initrd.img"),
                              "-append", "console=ttyS0 panic=-1 no_timer_check"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        qemu_direct = None
        while True:
            line = q.stdout.readline()
            if not line:
                break
            if b"skyroot-init: Skyroot firmware" in line:
                qemu_direct = time.time() - t
                break
        q.kill()
        q.wait()
        if qemu_direct is None:
            failures.append("QEMU -kernel: no 'skyroot-init: Skyroot firmware' line before QEMU exited")
        tok = f.token()
        b = e2e.Board(f, "bench-efi", cmdline=e2e.board_cmdline(f, tok["token"]), memory=a.memory, extra=shape)
        board, times["efi"] = wait_online_since(f, b.t0)
        shapes["efi"] = board_shape(f, board["id"])
        ph_cold = guest_phases(f, b, "bench-1", board["id"], "demo-kernel", "demo-initrd", False)
        ph_warm = guest_phases(f, b, "bench-2", board["id"], "demo-kernel", "demo-initrd", True)
        b.stop()
        tok = f.token()
        nb = e2e.Board(f, "bench-net", boot="net", boot_url=f"http://10.0.2.2:{port}/boot/ipxe?token={tok['token']}",
                       memory=a.memory, extra=shape)
        nboard, times["net"] = wait_online_since(f, nb.t0, exclude=(board["id"],))
        shapes["net"] = board_shape(f, nboard["id"])
        nb.stop()
    finally:
        for bd in f.boards:
            bd.stop()
        f.close()
    (ce, me), (cn, mn) = shapes["efi"], shapes["net"]
    # MemTotal differs by what each boot path's firmware reserves: a few MiB.
    if ce != cn or ce != a.cpus or me is None or mn is None or abs(me - mn) > 64:
        failures.append(f"the two boot paths' boards differ: UEFI {shapes['efi']}, iPXE {shapes['net']} (vCPUs, MiB)")
    print("\nSkyroot firmware benchmark (tests/bench/firmware.py)")
    print("  firmware image (fwimage/build.sh --report):")
    for l in report:
        print("  " + l)
    print(f"  UKI {uki} bytes against {flash} bytes of flash: {'fits' if uki <= flash else 'DOES NOT FIT'}"
          f" ({(flash - uki) / 1048576:+.2f} MiB)")
    if uki > flash:
        failures.append("the UKI does not fit the flash")
    print(f"  boards: {a.cpus} vCPU(s), {a.memory} MiB, one TCG thread, on both boot paths and the direct boot;"
          f" reported by the agents (vCPUs, MiB): UEFI {shapes['efi']}, iPXE {shapes['net']}")
    print(f"  power-on to online, UEFI skyroot.efi:      {times['efi']:8.3f} s")
    print(f"  power-on to online, iPXE network boot:     {times['net']:8.3f} s")
    direct = f"{qemu_direct:8.3f} s" if qemu_direct is not None else "  missing"
    print(f"  QEMU -kernel of the same image to its init: {direct}  (no UEFI, no network, no agent)")
    for label, (tot, ph) in (("images not in RAM", ph_cold), ("images already in RAM", ph_warm)):
        parts = " + ".join(f"{k} {ph[k]:.3f}" if isinstance(ph[k], float) else f"{k} {ph[k] or 'missing'}"
                           for k in PHASES)
        print(f"  guest create -> first console line ({label}): {tot:.3f} s = {parts} (nested KVM on a TCG board)")
        failures += [f"guest phase '{k}' ({label}) missing from the board's log and the API's states"
                     for k in PHASES if ph[k] is None]
    if failures:
        for fl in failures:
            print(f"firmware.py: FAILED: {fl}", file=sys.stderr)
        print(f"firmware.py: logs kept in {tmp}", file=sys.stderr)
        sys.exit(1)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
