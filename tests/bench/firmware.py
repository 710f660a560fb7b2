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

usage: tests/bench/firmware.py
"""
import datetime
import os
import re
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


def guest_phases(f, b, name, board_id, kernel, initrd):
    t0 = time.time()
    r = skyctl(f, "-o", "json", "guest", "create", "--name", name, "--board", board_id, "--kernel", kernel,
               "--initrd", initrd, "--cmdline", "console=ttyS0 quiet", "--memory", "256M")
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    gid = __import__("json").loads(r.stdout)["id"]
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
    first = seen.get("fetching", seen.get("running"))
    fetch = logt["starting"] - logt["fetching"] if "fetching" in logt and "starting" in logt else 0.0
    vmm = logt["running"] - logt["starting"] if "starting" in logt and "running" in logt else 0.0
    command = (first - t0) if first else 0.0
    boot = seen["console"] - seen["running"]
    return command, fetch, vmm, boot, seen["console"] - t0


def main():
    tmp = tempfile.mkdtemp(prefix="sky-bench-fw-")
    rows = []
    # 1. sizes, as shipped (xz -9e)
    out = os.path.join(tmp, "fw-xz")
    r = subprocess.run([os.path.join(ROOT, "fwimage", "build.sh"), "--agent", SKYAGENT, "--out", out, "--report"],
                       capture_output=True, text=True)
    report = [l for l in r.stdout.splitlines() if l.startswith("  ") and ("MiB" in l or "raw" in l)]
    # 2. boots and guests (the e2e firmware build)
    e2e.ensure_firmware()
    f = e2e.e2e_fleet(tmp)
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
        q = subprocess.Popen(["qemu-system-x86_64", "-M", "q35", "-accel", "tcg", "-cpu", "max", "-m", "2048",
                              "-display", "none", "-no-reboot", "-serial", "stdio", "-kernel",
                              os.path.join(e2e.FW, "vmlinuz"), "-initrd", os.path.join(e2e.FW, "initrd.img"),
                              "-append", "console=ttyS0 panic=-1 no_timer_check"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        while True:
            line = q.stdout.readline()
            if not line or b"skyroot-init: Skyroot firmware" in line:
                break
        qemu_direct = time.time() - t
        q.kill()
        q.wait()
        times = {}
        tok = f.token()
        # one vCPU, as in the e2e guests case (fwimage/README.md)
        b = e2e.Board(f, "bench-efi", cmdline=e2e.board_cmdline(f, tok["token"]), memory=3072,
                      extra=["--cpus", "1"])
        board = e2e.wait_online(f)
        times["efi"] = time.time() - b.t0
        t_init = wait_for(lambda: re.search(r"skyroot-init: Skyroot firmware", b.console()), 10, "init line")
        ph_cold = guest_phases(f, b, "bench-1", board["id"], "demo-kernel", "demo-initrd")
        ph_warm = guest_phases(f, b, "bench-2", board["id"], "demo-kernel", "demo-initrd")
        b.stop()
        tok = f.token()
        nb = e2e.Board(f, "bench-net", boot="net", boot_url=f"http://10.0.2.2:{port}/boot/ipxe?token={tok['token']}")
        e2e.wait_online(f, exclude=(board["id"],))
        times["net"] = time.time() - nb.t0
        nb.stop()
    finally:
        for bd in f.boards:
            bd.stop()
        f.close()
    print("\nSkyroot firmware benchmark (tests/bench/firmware.py)")
    print("  firmware image (fwimage/build.sh --report):")
    for l in report:
        print("  " + l)
    print(f"  power-on to online, UEFI skyroot.efi:      {times['efi']:6.1f} s")
    print(f"  power-on to online, iPXE network boot:     {times['net']:6.1f} s")
    print(f"  QEMU -kernel of the same image to its init: {qemu_direct:6.1f} s  (no UEFI, no network, no agent)")
    for label, ph in (("images not in RAM", ph_cold), ("images already in RAM", ph_warm)):
        c, fe, v, bo, tot = ph
        print(f"  guest create -> first console line ({label}): {tot:5.1f} s = command {c:.1f} + fetch {fe:.1f}"
              f" + VMM start {v:.1f} + guest boot {bo:.1f} (nested KVM on a TCG board)")


if __name__ == "__main__":
    main()
