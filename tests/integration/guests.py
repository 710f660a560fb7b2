#!/usr/bin/env python3
"""Guests through the controller, on the host (no emulated board): skyrootd,
skyagent on a copy of a fixture board (its /dev/kvm is a fixture file, so
guests run under TCG) and a real QEMU booting the vmm tests' guest kernel
(tests/vmm/fetch-guest.sh) to its console marker.

Usage: guests.py CASE
  host    create -> running with its console in skyctl, stop, start with the
          console followed live (--follow), delete
  errors  image missing, no room on the board, a kernel that is not a
          bzImage, a device whose IOMMU group the host still uses, QEMU
          missing: each a clear error in skyctl or in 'guest show', and
          the controller and the agents keep running.
  sigterm SIGTERM to the agent while its guest has failed, has stopped,
          runs, is stopping and is starting: the agent exits with status 0, no
          sanitizer report, and the guest's QEMU is gone (guests die with
          the agent; the controller drives them again when it returns)."""
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import (ROOT, SKYCTL, Fail, Fleet, Proc, agent_args, board_fixture, check,  # noqa: E402
                      pids_naming, run_cases, skyctl, wait_for)

MARK_UP = "SKYROOT-VMM-GUEST-UP"


def guest_artifacts():
    """The vmm tests' guest kernel + initramfs (built once, cached)."""
    r = subprocess.run([os.path.join(ROOT, "tests", "vmm", "fetch-guest.sh")], capture_output=True, text=True)
    if r.returncode != 0:
        raise Fail(f"fetch-guest.sh: {r.stderr[-2000:]}")
    return r.stdout.strip().splitlines()[-1]


def board_copy(f, name, uuid_tail):
    """A copy of fixture board a (the agent may write its sysfs when it binds
    devices) with its own DMI product UUID."""
    dst = board_fixture(os.path.join(f.tmp, f"board-{name}"), "a", f"7d1c2b3a-0000-4000-8000-{uuid_tail:012d}", name)
    # The attributes through which a device changes driver, as the kernel
    # has them (a device's driver_override reads "(null)"; bind, unbind and
    # drivers_probe are there to be written): plain files here, so every
    # write the agent makes to them stays to be seen (sysfs_control).
    pci = os.path.join(dst, "sys", "bus", "pci")
    for dev in os.listdir(os.path.join(pci, "devices")):
        with open(os.path.join(pci, "devices", dev, "driver_override"), "w") as out:
            out.write("(null)\n")
    for drv in os.listdir(os.path.join(pci, "drivers")):
        for attr in ("bind", "unbind"):
            open(os.path.join(pci, "drivers", drv, attr), "w").close()
    open(os.path.join(pci, "drivers_probe"), "w").close()
    return dst


def sysfs_control(root):
    """What the driver-changing attributes of board copy ROOT hold, by path
    under its sysfs: a write to any of them shows as a change."""
    pci = os.path.join(root, "sys", "bus", "pci")
    paths = [os.path.join(pci, "drivers_probe")]
    paths += [os.path.join(pci, "devices", d, "driver_override") for d in os.listdir(os.path.join(pci, "devices"))]
    paths += [os.path.join(pci, "drivers", d, a) for d in os.listdir(os.path.join(pci, "drivers"))
              for a in ("bind", "unbind")]
    out = {}
    for path in paths:
        with open(path) as fh:
            out[os.path.relpath(path, root)] = fh.read()
    return out


def start_agent(f, name, uuid_tail, extra=()):
    root = board_copy(f, name, uuid_tail)
    tok = f.token()
    args = agent_args(f, root, token=tok["token"]) + ["--heartbeat-interval", "1000"] + list(extra)
    p = Proc(args, os.path.join(f.tmp, f"agent-{name}.log"))
    f.procs.append(p)
    board = wait_for(lambda: next((b for b in f.boards() if b["name"] == name and b["state"] == "online"), None),
                     20, f"board {name} online")
    return p, board


def push(f, path, name, kind):
    r = skyctl(f, "-o", "json", "image", "push", path, "--name", name, "--kind", kind)
    check(r.returncode == 0, f"image push {name}: {r.stderr}")
    return json.loads(r.stdout)


def guest(f, name):
    r = skyctl(f, "-o", "json", "guest", "show", name)
    check(r.returncode == 0, f"guest show {name}: {r.stderr}")
    return json.loads(r.stdout)


def wait_state(f, name, want, timeout=90):
    def ok():
        g = guest(f, name)
        if g["state"] == "failed" and want != "failed":
            raise Fail(f"guest {name} failed: {g['error']}")
        return g if g["state"] == want else None
    return wait_for(ok, timeout, f"guest {name} {want}", interval=0.3)


def console(f, name):
    return skyctl(f, "guest", "console", name).stdout


def case_host(f):
    art = guest_artifacts()
    f.start()
    push(f, os.path.join(art, "vmlinuz"), "vk", "kernel")
    push(f, os.path.join(art, "initrd.img"), "vi", "initrd")
    p, board = start_agent(f, "host1", 1)
    t0 = time.time()
    r = skyctl(f, "-o", "json", "guest", "create", "--name", "g1", "--board", "auto", "--kernel", "vk",
               "--initrd", "vi", "--cmdline", "console=ttyS0 panic=-1 quiet", "--memory", "256M")
    check(r.returncode == 0, f"guest create: {r.stderr}")
    g = json.loads(r.stdout)
    for k in ("id", "name", "board", "state", "backend", "vcpus", "memory_bytes", "devices", "error"):
        check(k in g, f"guest JSON has {k}: {g}")
    check(g["board"] in (board["id"], board["name"]) and g["memory_bytes"] == 256 << 20 and g["vcpus"] == 1,
          f"placed on the only board with what was asked: {g}")
    wait_state(f, "g1", "running")
    wait_for(lambda: MARK_UP in console(f, "g1"), 90, "the guest's marker in skyctl guest console")
    print(f"guest create -> marker on skyctl's console: {time.time() - t0:.1f} s (TCG on the host)")
    lst = json.loads(skyctl(f, "-o", "json", "guest", "list").stdout)["guests"]
    check([x["name"] for x in lst] == ["g1"] and lst[0]["state"] == "running", f"guest list: {lst}")
    # Stop (ACPI power button), start again, delete.
    check(skyctl(f, "guest", "stop", "g1").returncode == 0, "guest stop")
    wait_state(f, "g1", "stopped", 60)
    check(skyctl(f, "guest", "stop", "g1").returncode == 0, "a second stop is a no-op, not an error")
    # --follow streams live: it is running before the guest starts again,
    # and the second boot's marker reaches it (the ring holds the first).
    fol = subprocess.Popen([SKYCTL, "--config", os.path.join(f.state, "skyctl.conf"),
                            "guest", "console", "g1", "--follow"], stdout=subprocess.PIPE)
    try:
        check(skyctl(f, "guest", "start", "g1").returncode == 0, "guest start")
        wait_state(f, "g1", "running")
        seen = b""
        end = time.time() + 90
        while seen.count(MARK_UP.encode()) < 2 and time.time() < end:
            ready, _, _ = select.select([fol.stdout], [], [], 1.0)
            if ready:
                chunk = os.read(fol.stdout.fileno(), 65536)
                check(chunk != b"", f"guest console --follow ended early: {seen[-500:]!r}")
                seen += chunk
        check(seen.count(MARK_UP.encode()) >= 2, f"the second boot live on --follow: {seen[-800:]!r}")
    finally:
        fol.terminate()
        fol.wait(10)
    r = skyctl(f, "image", "delete", "vk")
    check(r.returncode == 1 and "used by a guest" in r.stderr, f"image in use: {r.stderr}")
    check(skyctl(f, "guest", "delete", "g1").returncode == 0, "guest delete")
    check(f.api("GET", "/v1/guests/g1")[0] == 404, "g1 gone")
    wait_for(lambda: "qemu-system" not in subprocess.run(["ps", "-o", "comm=", "--ppid", str(p.p.pid)],
                                                            capture_output=True, text=True).stdout,
             30, "the guest's QEMU gone with it")
    check(p.p.poll() is None and f.ctl.p.poll() is None, "agent and controller running")


def case_errors(f):
    art = guest_artifacts()
    f.start()
    push(f, os.path.join(art, "vmlinuz"), "vk", "kernel")
    push(f, os.path.join(art, "initrd.img"), "vi", "initrd")
    junk = os.path.join(f.tmp, "junk.bin")
    with open(junk, "wb") as out:
        out.write(os.urandom(1 << 20))
    push(f, junk, "junk", "kernel")
    pa, a = start_agent(f, "gooda", 2)
    pb, b = start_agent(f, "noqemu", 3, ["--qemu", "/nonexistent/qemu-system-x86_64"])
    sysfs_before = sysfs_control(os.path.join(f.tmp, "board-gooda"))
    check(sysfs_before[os.path.join("sys", "bus", "pci", "devices", "0000:00:1f.2", "driver_override")] == "(null)\n",
          f"the fixture's driver_override of 0000:00:1f.2: {sysfs_before}")

    def create(name, board, *more):
        return skyctl(f, "guest", "create", "--name", name, "--board", board, "--memory", "256M", *more)

    # Refused by the controller, with what to do.
    r = create("e1", "gooda", "--kernel", "no-such-image")
    check(r.returncode == 1 and "no-such-image" in r.stderr and "image list" in r.stderr,
          f"missing image: {r.returncode} {r.stderr}")
    r = create("e2", "gooda", "--kernel", "vk", "--memory", "512G")
    print(f"no room: {r.stderr.strip()}")
    check(r.returncode == 1 and "do not fit" in r.stderr, f"no room: {r.returncode} {r.stderr}")
    r = create("e3", "no-such-board", "--kernel", "vk")
    check(r.returncode == 1 and "no board named" in r.stderr, f"missing board: {r.stderr}")
    check(f.api("GET", "/v1/guests")[1]["guests"] == [], "nothing was created by the refusals")
    # Failed on the board, the reason in 'guest show'.
    check(create("notbz", "gooda", "--kernel", "junk").returncode == 0, "create notbz")
    g = wait_state(f, "notbz", "failed")
    print(f"not a bzImage: {g['error']}")
    check("bzImage" in g["error"], f"not a bzImage: {g['error']}")
    check(create("busy", "gooda", "--kernel", "vk", "--initrd", "vi", "--device", "0000:00:1f.2").returncode == 0,
          "create busy")
    g = wait_state(f, "busy", "failed")
    print(f"device not passable: {g['error']}")
    check("0000:00:1f" in g["error"] and "group" in g["error"], f"device not passable: {g['error']}")
    check(create("noq", "noqemu", "--kernel", "vk", "--initrd", "vi").returncode == 0, "create noq")
    g = wait_state(f, "noq", "failed")
    print(f"QEMU missing: {g['error']}")
    check("/nonexistent/qemu-system-x86_64" in g["error"], f"QEMU missing: {g['error']}")
    show = skyctl(f, "guest", "show", "noq")
    check(show.returncode == 0 and "/nonexistent/qemu-system-x86_64" in show.stdout,
          f"the table view shows the error: {show.stdout}")
    # Nothing was written to change a driver: no driver_override set, no
    # unbind from ahci, no bind or probe (the refusal comes first).
    changed = {k: v for k, v in sysfs_control(os.path.join(f.tmp, "board-gooda")).items() if sysfs_before[k] != v}
    check(not changed, f"the refused device's driver attributes were written: {changed}")
    for p in (pa, pb, f.ctl):
        check(p.p.poll() is None, f"{os.path.basename(p.log_path)} still running")
    check(len(f.online()) == 2, "both boards online")
    # A good guest still runs on the board next to the failures.
    check(create("fine", "gooda", "--kernel", "vk", "--initrd", "vi",
                 "--cmdline", "console=ttyS0 panic=-1 quiet").returncode == 0, "create fine")
    wait_state(f, "fine", "running")
    wait_for(lambda: MARK_UP in console(f, "fine"), 90, "the good guest's marker")
    ids = {n: guest(f, n)["id"] for n in ("notbz", "busy", "noq", "fine")}
    for n in ids:
        check(skyctl(f, "guest", "delete", n).returncode == 0, f"delete {n}")
    # While 'fine' powers off, its reports draw the controller's destroy
    # again; that repeat must not draw another report (once a ping-pong of
    # thousands of frames a second).
    gone = f"guest {ids['fine']}: deleted by the controller"
    wait_for(lambda: gone in pa.text(), 20, "the agent told to destroy 'fine'")
    wait_for(lambda: f"guest {ids['fine']}: stopped" in pa.text(), 30, "'fine' stopped on the board")
    # A barrier instead of a pause: one more guest order to the same board and
    # its answer back.  The link keeps order both ways, so once the controller
    # shows that answer, every report 'fine' drew before was taken and every
    # destroy it drew again had reached the agent.
    check(create("barrier", "gooda", "--kernel", "junk").returncode == 0, "create barrier")
    wait_state(f, "barrier", "failed")
    check(skyctl(f, "guest", "delete", "barrier").returncode == 0, "delete barrier")
    for n, gid in ids.items():
        told = sum(p.text().count(f"guest {gid}: deleted by the controller") for p in (pa, pb))
        check(told == 1, f"guest {n}: the agent took the delete {told} times, not once")
    # An agent stopped while its guest is still powering off exits cleanly
    # (its console once fired into the freed agent).
    check(pa.stop() == 0, f"agent gooda exit status {pa.p.returncode} with a guest stopping")


def qemu_pids(name):
    """Processes whose command line names guest NAME (QEMU's -name guest=NAME,
    or a wrapper about to exec it), wherever they were reparented."""
    return pids_naming(f"guest={name},".encode())


def sigterm_agent(p, name, timeout=45):
    """SIGTERM the agent; it exits 0 with no sanitizer report and takes
    guest NAME's QEMU with it.  A stop in flight may take its own course
    (the power button, up to the stop timeout) before the agent ends."""
    t0 = time.time()
    os.kill(p.p.pid, signal.SIGTERM)
    try:
        rc = p.p.wait(timeout)
    except subprocess.TimeoutExpired:
        raise Fail(f"the agent did not exit within {timeout} s of SIGTERM with guest {name}")
    print(f"guest {name}: the agent exited {time.time() - t0:.1f} s after SIGTERM")
    text = p.text()
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "double free",
                   "free(): "):
        check(marker not in text, f"agent with guest {name}: '{marker}' in its log:\n{text[-3000:]}")
    check(rc == 0, f"agent exit status {rc} on SIGTERM with guest {name}:\n{text[-3000:]}")
    check("SIGTERM: stopping" in text, "the agent logged why it stopped")
    wait_for(lambda: not qemu_pids(name), 5, f"guest {name}'s QEMU gone with the agent")


def case_sigterm(f):
    art = guest_artifacts()
    f.start()
    push(f, os.path.join(art, "vmlinuz"), "vk", "kernel")
    push(f, os.path.join(art, "initrd.img"), "vi", "initrd")
    tag = os.getpid()

    def create(name, board, cmdline="console=ttyS0 panic=-1 quiet"):
        r = skyctl(f, "-o", "json", "guest", "create", "--name", name, "--board", board, "--kernel", "vk",
                   "--initrd", "vi", "--cmdline", cmdline, "--memory", "256M")
        check(r.returncode == 0, f"guest create {name}: {r.stderr}")
        return json.loads(r.stdout)["id"]

    # Held but not running (no worker, no console): failed, and stopped.
    junk = os.path.join(f.tmp, "junk.bin")
    with open(junk, "wb") as out:
        out.write(os.urandom(1 << 20))
    push(f, junk, "junk", "kernel")
    name = f"sigfail{tag}"
    p, _ = start_agent(f, "sigfail", 20)
    r = skyctl(f, "guest", "create", "--name", name, "--board", "sigfail", "--kernel", "junk", "--memory", "256M")
    check(r.returncode == 0, f"guest create {name}: {r.stderr}")
    wait_state(f, name, "failed")
    sigterm_agent(p, name)
    name = f"sigstopped{tag}"
    p, _ = start_agent(f, "sigstopped", 24)
    create(name, "sigstopped")
    wait_state(f, name, "running")
    check(skyctl(f, "guest", "stop", name).returncode == 0, f"guest stop {name}")
    wait_state(f, name, "stopped", 60)
    sigterm_agent(p, name)

    # Running: its console polled by the agent.
    name = f"sigrun{tag}"
    p, _ = start_agent(f, "sigrun", 21)
    create(name, "sigrun")
    wait_state(f, name, "running")
    wait_for(lambda: MARK_UP in console(f, name), 90, f"{name}'s marker")
    check(qemu_pids(name), f"{name} has a QEMU")
    sigterm_agent(p, name)

    # Stopping: the guest ignores the first power-button press (the next
    # comes 5 s later), so the stop worker is in flight at SIGTERM.
    name = f"sigstop{tag}"
    p, _ = start_agent(f, "sigstop", 22)
    gid = create(name, "sigstop", "console=ttyS0 panic=-1 quiet skyroot.test=deaf-once")
    wait_state(f, name, "running")
    wait_for(lambda: MARK_UP in console(f, name), 90, f"{name}'s marker")
    check(skyctl(f, "guest", "stop", name).returncode == 0, f"guest stop {name}")
    wait_for(lambda: f"guest {gid}: stopping" in p.text(), 20, f"the agent stopping {name}", interval=0.02)
    sigterm_agent(p, name)

    # Starting: QEMU comes up 3 s late, so the start worker is in flight.
    qemu = shutil.which("qemu-system-x86_64")
    check(qemu is not None, "qemu-system-x86_64 on PATH")
    slow = os.path.join(f.tmp, "qemu-slow")
    with open(slow, "w") as out:
        out.write(f'#!/bin/sh\nsleep 3\nexec {qemu} "$@"\n')
    os.chmod(slow, 0o755)
    name = f"sigstart{tag}"
    p, _ = start_agent(f, "sigstart", 23, ["--qemu", slow])
    gid = create(name, "sigstart")
    wait_for(lambda: f"guest {gid}: starting" in p.text(), 30, f"the agent starting {name}", interval=0.02)
    sigterm_agent(p, name)
    check(f.ctl.p.poll() is None, "the controller keeps running")


def main():
    return run_cases(globals(), "sky-guests", Fleet)


if __name__ == "__main__":
    sys.exit(main())
