#!/usr/bin/env python3
"""End-to-end tests on emulated boards: real firmware (fwimage/build.sh with
this build's skyagent) booted by OVMF on QEMU q35/TCG with VT-d, nested KVM
and an edu device, against a real skyrootd on the host's loopback (10.0.2.2
inside the boards).

Usage: e2e.py CASE.  Cases run one at a time (each board is a TCG QEMU).
The firmware is built once into $SKY_E2E_FW (default build/fwimage-e2e,
the full profile: QEMU) and rebuilt when skyagent changes; case guests
boots the flash profile instead ($SKY_E2E_FLASH_FW, default
build/fwimage-e2e-flash: skyvmm, no QEMU), rebuilt when skyagent or skyvmm
changes."""
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from fleetlib import ROOT, SKYAGENT, Fail, Fleet, check, free_port, run_cases, skyctl, wait_for  # noqa: E402

FW = os.environ.get("SKY_E2E_FW", os.path.join(ROOT, "build", "fwimage-e2e"))
# The flash profile (skyvmm, no QEMU): what a board's SPI flash holds.
FW_FLASH = os.environ.get("SKY_E2E_FLASH_FW", os.path.join(ROOT, "build", "fwimage-e2e-flash"))
SKYVMM = os.path.realpath(os.environ.get("SKYVMM", os.path.join(ROOT, "build", "vmm", "skyvmm", "skyvmm")))
BOARD_SH = os.path.join(ROOT, "fwimage", "board.sh")
BUILD_SH = os.path.join(ROOT, "fwimage", "build.sh")
RACK_SH = os.path.join(ROOT, "fwimage", "rack.sh")
BOOT_TIMEOUT = int(os.environ.get("SKY_E2E_BOOT_TIMEOUT", "240"))


def ensure_firmware(extra=(), profile="full"):
    """Build the firmware with this build's skyagent (once; under a lock).
    profile full (FW): the boards' guests run under QEMU; flash (FW_FLASH):
    skyvmm and no QEMU, the image a board's SPI flash holds."""
    out = FW_FLASH if profile == "flash" else FW
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = os.path.join(out, "agent.sha256")
        h = hashlib.sha256()
        parts = [SKYAGENT, BUILD_SH, os.path.join(ROOT, "fwimage", "init"),
                 os.path.join(ROOT, "fwimage", "udhcpc.script")]
        if profile == "flash":
            parts.append(SKYVMM)
        for part in parts:
            h.update(open(part, "rb").read())
        want = h.hexdigest()
        if os.path.exists(stamp) and open(stamp).read().strip() == want:
            return out
        t0 = time.time()
        # zstd: the same image, built in a fraction of xz -9e's time (the
        # size report is fwimage/build.sh --report's and the benchmark's job).
        args = [BUILD_SH, "--agent", SKYAGENT, "--out", out, "--compress", "zstd", "--profile", profile]
        if profile == "flash":
            args += ["--skyvmm", SKYVMM]
        r = subprocess.run(args + list(extra), capture_output=True, text=True)
        if r.returncode != 0:
            raise Fail(f"fwimage/build.sh failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        print(r.stdout[-1500:])
        print(f"firmware ({profile} profile) built in {time.time() - t0:.0f} s")
        open(stamp, "w").write(want)
        return out


class Rack:
    """An emulated rack (fwimage/rack.sh): namespace, bridge, dnsmasq; the
    host (and so the controller) at self.host on it."""

    def __init__(self, fleet, name, vlans=()):
        self.f = fleet
        self.name = name
        self.env = dict(os.environ, SKYROOT_RACKS_DIR=os.path.join(fleet.tmp, "racks"),
                        SKYROOT_BOARDS_DIR=os.path.join(fleet.tmp, "boards"))
        r = subprocess.run([RACK_SH, "up", name] + [a for v in vlans for a in ("--vlan", str(v))],
                           capture_output=True, text=True, env=self.env)
        if r.returncode != 0:
            raise Fail(f"rack.sh up: {r.stderr}")
        fleet.racks.append(self)
        v = dict(line.split("=", 1) for line in r.stdout.split())
        self.ns, self.host, self.dir = v["RACK_NS"], v["RACK_HOST"], v["RACK_DIR"]
        # VLAN -> its subnet's first three octets ("10.80.100")
        self.vlans = {int(k[len("RACK_VLAN_"):]): val.rsplit(".", 1)[0] for k, val in v.items()
                      if k.startswith("RACK_VLAN_")}
        self.dnsmasq_pid = int(open(os.path.join(self.dir, "dnsmasq.pid")).read())
        self.is_up = True

    def controller(self, hostport, only=None):
        r = subprocess.run([RACK_SH, "controller", self.name, hostport] + (["--only", only] if only else []),
                           capture_output=True, text=True, env=self.env)
        check(r.returncode == 0, f"rack.sh controller: {r.stderr}")

    def file(self, name):
        try:
            return open(os.path.join(self.dir, name), errors="replace").read()
        except OSError:
            return ""

    def down(self):
        if not self.is_up:
            return None
        self.is_up = False
        return subprocess.run([RACK_SH, "down", self.name], capture_output=True, text=True, env=self.env)

    def check_gone(self, boards):
        """Nothing of the rack is left: namespace, dnsmasq, the boards' QEMUs."""
        ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        check(self.ns not in ns, f"namespace {self.ns} left: {ns}")
        check(not os.path.exists(f"/proc/{self.dnsmasq_pid}"), f"dnsmasq (pid {self.dnsmasq_pid}) left")
        for b in boards:
            pidfile = os.path.join(b.dir, "qemu.pid")
            if b.pid and os.path.exists(f"/proc/{b.pid}"):
                raise Fail(f"board {b.name}'s QEMU (pid {b.pid}) left after rack down")
            check(not os.path.exists(pidfile), f"{pidfile} left")


class Board:
    runs = 0  # commands run in boards' shells (Board.run)

    def __init__(self, fleet, name, boot="efi", cmdline="", boot_url=None, memory=2048, extra=(), rack=None,
                 image=None):
        self.f = fleet
        self.name = name
        self.dir = os.path.join(fleet.tmp, "boards", name)
        common = ["--image", image or FW, "--boot", boot, "--memory", str(memory), "--disk-bus", "nvme",
                  "--background"] + list(extra)
        if rack:  # rack.sh names the board and puts it on a tap of the rack
            args = [RACK_SH, "board", rack.name, name] + common
        else:
            args = [BOARD_SH, "--name", name] + common
        if boot == "net":
            args += ["--boot-url", boot_url]
        else:
            args += ["--cmdline", cmdline]
        env = dict(os.environ, SKYROOT_BOARDS_DIR=os.path.join(fleet.tmp, "boards"),
                   SKYROOT_RACKS_DIR=os.path.join(fleet.tmp, "racks"))
        self.env = env
        self.t0 = time.time()
        r = subprocess.run(args, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise Fail(f"board.sh failed: {r.stderr}")
        self.pid = int(r.stdout.split()[-1]) if r.stdout.split() else None
        fleet.boards.append(self)

    def console(self):
        try:
            return open(os.path.join(self.dir, "console.log"), errors="replace").read()
        except OSError:
            return ""

    def type(self, line):
        """Type a line on the board's serial console (the debug shell)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(os.path.join(self.dir, "console.sock"))
        s.sendall(line.encode() + b"\n")
        time.sleep(0.2)
        s.close()

    def run(self, cmd, timeout=60):
        """cmd in the board's debug shell (skyroot.shell=1): its output on
        one line, stripped.  The line is tagged with a number the shell
        computes, so the echo of what was typed never matches."""
        Board.runs += 1
        n = 1000 + Board.runs
        self.type(f"echo E2E-RUN-$((1000+{Board.runs})) $( ( {cmd} ) 2>&1 | tr '\\n' ' ')")
        line = re.compile(rf"E2E-RUN-{n}(?:[ \t]([^\r\n]*))?\r?\n")

        def out():
            m = line.search(self.console())
            return [(m.group(1) or "").strip()] if m else None  # [""]: ran, printed nothing
        return wait_for(out, timeout, f"the board's shell to run '{cmd}'", interval=0.5)[0]

    def stop(self):
        r = subprocess.run([BOARD_SH, "--stop", self.name], capture_output=True, text=True, env=self.env)
        return r

    def scratch_unchanged(self):
        want = open(os.path.join(self.dir, "scratch.sha256")).read().split()[0]
        h = hashlib.sha256()
        with open(os.path.join(self.dir, "scratch.img"), "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest() == want


class BoardFleet(Fleet):
    """A Fleet with emulated boards: stopped (console shown on failure) with it."""

    def __init__(self, tmp):
        super().__init__(tmp)
        self.boards_api = self.boards  # the API's board list; self.boards: our emulated boards
        self.boards = []
        self.racks = []

    def close(self):
        for b in self.boards:
            b.stop()
        for r in self.racks:
            r.down()
        return super().close()

    def dump_failure(self, tmp):
        for b in self.boards:
            b.stop()
            print(f"---- console of board {b.name}", file=sys.stderr)
            print(b.console()[-6000:], file=sys.stderr)
        for r in self.racks:
            print(f"---- dnsmasq of rack {r.name}: leases\n{r.file('dnsmasq.leases')}", file=sys.stderr)
            print(f"---- trunk port of rack {r.name}\n{r.file('trunk.log')[-2000:]}", file=sys.stderr)
            print(r.file("dnsmasq.log")[-4000:], file=sys.stderr)
            r.down()
        super().dump_failure(tmp)


def e2e_fleet(tmp):
    return BoardFleet(tmp)


def start_controller(f, extra=()):
    f.start(["--advertise", f"10.0.2.2:{f.agent_port}"] + list(extra))


def board_cmdline(f, token, pin=None, shell=False):
    c = f"skyroot.controller=10.0.2.2:{f.agent_port} skyroot.token={token} skyroot.ca={pin or f.pin}"
    return c + (" skyroot.shell=1" if shell else "")


def wait_online(f, name_hint=None, timeout=BOOT_TIMEOUT, exclude=()):
    def one():
        on = [b for b in f.boards_api() if b["state"] == "online" and b["id"] not in exclude]
        return on[0] if on else None
    return wait_for(one, timeout, "the board to come online", interval=1.0)


def case_efi_boot(f):
    ensure_firmware()
    start_controller(f)
    tok = f.token()
    b = Board(f, "efi", cmdline=board_cmdline(f, tok["token"], shell=True))
    board = wait_online(f)
    took = time.time() - b.t0
    print(f"efi boot: power-on to online {took:.1f} s")
    check(board["firmware"] == "uefi", f"firmware {board['firmware']}")
    check(board["kvm"] is True, "KVM on the board (nested SVM)")
    devs = [d for g in board["iommu_groups"] for d in g["devices"]]
    check(any(d["vendor_device"] == "1234:11e8" for d in devs), f"edu in an IOMMU group: {devs}")
    check(any(n["link"] and n["mac"].startswith("52:54:00") for n in board["nics"]), f"NIC: {board['nics']}")
    check(board["cpus"] >= 1 and board["memory_bytes"] > 1 << 30, "cpus and memory")
    # The agent dies: init's supervisor restarts it and it rejoins with the
    # identity it kept in RAM (/run), without the used token.
    b.type("kill -9 $(pidof skyagent)")
    wait_for(lambda: "skyagent exited with status" in b.console(), 30, "the supervisor to notice")
    t1 = time.time()
    wait_for(lambda: b.console().count("session up as board") >= 2, 90, "the agent to come back")
    again = wait_online(f)
    check(again["id"] == board["id"], "same board id after the restart")
    print(f"agent restart to online {time.time() - t1:.1f} s")
    r = b.stop()
    check(b.scratch_unchanged(), f"the scratch disk is untouched ({r.stderr})")


def case_net_boot(f):
    ensure_firmware()
    fwdir = os.path.join(f.tmp, "fw")
    os.mkdir(fwdir)
    for n in ("vmlinuz", "initrd.img"):
        os.symlink(os.path.join(FW, n), os.path.join(fwdir, n))
    default = open(os.path.join(FW, "cmdline")).read().strip() if os.path.exists(os.path.join(FW, "cmdline")) \
        else "console=ttyS0 intel_iommu=on iommu=pt panic=-1"
    with open(os.path.join(fwdir, "cmdline"), "w") as out:
        out.write(default + " no_timer_check\n")  # emulated boards only
    port = free_port()
    start_controller(f, ["--firmware", fwdir, "--boot-listen", f"127.0.0.1:{port}"])
    tok = f.token()
    b = Board(f, "net", boot="net", boot_url=f"http://10.0.2.2:{port}/boot/ipxe?token={tok['token']}")
    board = wait_online(f)
    print(f"network boot: power-on to online {time.time() - b.t0:.1f} s")
    check(board["kvm"] is True and board["firmware"] == "uefi", "a hypervisor board")
    check("boot: iPXE script" in f.ctl.text(), "the controller served the script")
    b.stop()
    check(b.scratch_unchanged(), "the scratch disk is untouched")


def case_refused(f):
    ensure_firmware()
    start_controller(f)
    tok = f.token()
    # Used token: a host agent takes it first.
    p = f.agent("a", token=tok["token"], once=True)
    wait_for(lambda: p.p.poll() is not None, 20, "host agent enrolled")
    bad_pin = "sha256:" + "00" * 32
    b1 = Board(f, "badpin", cmdline=board_cmdline(f, f.token()["token"], pin=bad_pin), memory=1024)
    b2 = Board(f, "usedtok", cmdline=board_cmdline(f, tok["token"]), memory=1024)
    wait_for(lambda: "does not match the pinned" in b1.console(), BOOT_TIMEOUT, "the wrong-pin board to say why")
    wait_for(lambda: "already been used" in b2.console(), BOOT_TIMEOUT, "the used-token board to say why")
    names = [b["name"] for b in f.boards_api()]
    check(len(names) == 1, f"neither board joined: {names}")
    b1.stop()
    b2.stop()


def build_guest(f, fw=FW):
    """The demo guest on the kernel of firmware build fw (built already: a
    case builds the image it boots; cases run two at a time, so none may
    count on another's build)."""
    out = os.path.join(f.tmp, "guest")
    r = subprocess.run([os.path.join(ROOT, "tests", "e2e", "guest.sh"), fw, out], capture_output=True, text=True)
    if r.returncode != 0:
        raise Fail(f"guest.sh: {r.stderr}")
    for name, kind in (("vmlinuz", "kernel"), ("initrd.img", "initrd")):
        r = skyctl(f, "-o", "json", "image", "push", os.path.join(out, name), "--name", f"demo-{kind}",
                   "--kind", kind)
        check(r.returncode == 0, f"image push {name}: {r.stderr}")
    return out


def guest(f, name):
    st, g = f.api("GET", f"/v1/guests/{name}")
    check(st == 200, f"guest {name}: {st} {g}")
    return g


def console(f, name):
    r = skyctl(f, "guest", "console", name)
    return r.stdout


def board_edu(f, bid):
    b = f.api("GET", f"/v1/boards/{bid}")[1]
    for g in b["iommu_groups"]:
        for d in g["devices"]:
            if d["vendor_device"] == "1234:11e8":
                return d
    raise Fail("no edu device on the board")


def ctl_guest(f, name):
    """skyctl -o json guest show NAME (None when there is no such guest)."""
    r = skyctl(f, "-o", "json", "guest", "show", name)
    if r.returncode != 0:
        check("(HTTP 404" in r.stderr, f"guest show {name}: rc {r.returncode}: {r.stderr}")
        return None
    return json.loads(r.stdout)


def wait_ctl_guest(f, name, pred, timeout, what):
    """Guest NAME (through skyctl) once pred(guest) holds."""
    seen = []

    def one():
        g = ctl_guest(f, name)
        if g and (not seen or seen[-1] != (g["state"], g["error"])):
            seen.append((g["state"], g["error"]))
        return g if g and pred(g) else None
    try:
        return wait_for(one, timeout, what, interval=0.5)
    except Fail:
        print(f"---- guest {name}: states seen {seen}\n{console(f, name)[-2000:]}", file=sys.stderr)
        raise


def ctl_ok(f, *args):
    r = skyctl(f, *args)
    check(r.returncode == 0, f"skyctl {' '.join(args)}: rc {r.returncode}: {r.stderr}")
    return r


def create_guest(f, name, *extra, kernel="demo-kernel", cmdline="console=ttyS0 quiet"):
    return ctl_ok(f, "guest", "create", "--name", name, "--board", "auto", "--kernel", kernel,
                  "--initrd", "demo-initrd", "--cmdline", cmdline, "--memory", "256M", *extra)


def ups(f, name):
    return console(f, name).count("SKYROOT-GUEST-UP")


def dones(f, name):
    """Boots of guest NAME that got as far as listing its PCI devices."""
    return console(f, name).count("SKYROOT-GUEST-PCI-DONE")


def case_guests(f):
    """The whole stack on the flash image: a board booted by UEFI from the
    flash profile's skyroot.efi (skyvmm, no QEMU) with the real skyagent,
    driven through skyctl: guests under skyvmm (the board's default
    backend) with the edu device passed through (VT-d), two guests,
    stop/start/delete, the agent killed and the guests re-driven, a guest
    that powers itself off (stopped, guest-shutdown), skyvmm killed by
    SIGKILL (failed, its signal named), skyvmm killed by its seccomp filter
    (failed, SIGSYS), a kernel that is not a bzImage (failed, why), the
    scratch disk unchanged.  (QEMU guests on the full image: rack_guests.)"""
    fw = ensure_firmware(profile="flash")
    check("SKYROOT_PROFILE=flash" in open(os.path.join(fw, "build-info")).read(), f"a flash-profile image in {fw}")
    start_controller(f)
    out = build_guest(f, fw)
    # a kernel image that is not a bzImage (the initramfs, pushed as a kernel)
    ctl_ok(f, "image", "push", os.path.join(out, "initrd.img"), "--name", "not-a-kernel", "--kind", "kernel")
    tok = f.token()
    # One vCPU (see fwimage/README.md): nested guests on a TCG board.
    b = Board(f, "gst", cmdline=board_cmdline(f, tok["token"], shell=True), memory=3072, extra=["--cpus", "1"],
              image=fw)
    board = wait_online(f)
    print(f"flash image: power-on to online {time.time() - b.t0:.1f} s")
    bid = board["id"]
    check(board["kvm"] is True, "KVM on the board (nested SVM)")
    check("guests that name no VMM backend run under skyvmm" in b.console(),
          "the flash image's agent runs guests under skyvmm by default")
    check(b.run("command -v qemu-system-x86_64 || echo none") == "none", "no QEMU on the flash image")
    edu = board_edu(f, bid)
    check(edu["driver"] in (None, ""), f"edu starts unbound: {edu}")

    # a) the demo guest, no backend named (the board's default: skyvmm),
    # the edu device passed through
    t0 = time.time()
    create_guest(f, "g1", "--device", edu["address"])
    phases = {}

    def progress():
        g = ctl_guest(f, "g1")
        if g["state"] not in phases:
            phases[g["state"]] = time.time() - t0
        check(g["state"] != "failed", f"guest failed: {g['error']}")
        return "SKYROOT-GUEST-UP" in console(f, "g1")
    wait_for(progress, 300, "guest g1's console to say it is up", interval=0.5)
    phases["console"] = time.time() - t0
    print("guest create -> first console line (skyvmm): " +
          ", ".join(f"{k} at {v:.1f} s" for k, v in phases.items()))
    g = ctl_guest(f, "g1")
    check(g["state"] == "running" and g["backend"] == "", f"g1 running on the board's default backend: {g}")
    # skyvmm runs it, under its seccomp filter
    sv = b.run("for p in $(pidof skyvmm); do grep -E '^Seccomp:' /proc/$p/status; done")
    check(sv.split() == ["Seccomp:", "2"], f"one skyvmm on the board, under its filter: '{sv}'")
    wait_for(lambda: "SKYROOT-GUEST-EDU present" in console(f, "g1"), 60, "the edu device in guest g1",
             interval=0.5)
    text = console(f, "g1")
    check("id=0x010000ED" in text, f"edu answers through the IOMMU: {text[-800:]}")
    wait_for(lambda: board_edu(f, bid)["driver"] == "vfio-pci", 40, "edu bound to vfio-pci on the board")
    # a second guest next to it, the backend named
    create_guest(f, "g2", "--backend", "skyvmm")
    wait_for(lambda: "SKYROOT-GUEST-PCI-DONE" in console(f, "g2"), 300, "guest g2 up, its PCI devices listed")
    check("SKYROOT-GUEST-EDU" not in console(f, "g2"), "g2 has no edu")
    lst = json.loads(ctl_ok(f, "-o", "json", "guest", "list").stdout)["guests"]
    check(sorted((g["name"], g["state"], g["backend"]) for g in lst) ==
          [("g1", "running", ""), ("g2", "running", "skyvmm")], f"two guests running: {lst}")

    # b) stop g1 (the edu device goes back to the host), start it again
    n_up = dones(f, "g1")
    ctl_ok(f, "guest", "stop", "g1")
    wait_ctl_guest(f, "g1", lambda g: g["state"] == "stopped", 90, "g1 stopped")
    wait_for(lambda: board_edu(f, bid)["driver"] in (None, ""), 40, "edu given back after the guest stopped")
    ctl_ok(f, "guest", "start", "g1")
    wait_for(lambda: dones(f, "g1") > n_up, 300, "g1's marker and devices again after its start", interval=0.5)
    check(ctl_guest(f, "g1")["state"] == "running", "g1 running again")

    # d) g1's skyvmm (the one given --vfio) killed by SIGKILL on the board:
    # failed, the signal named; started again, it runs
    pid = b.run("for p in $(pidof skyvmm); do tr '\\0' ' ' </proc/$p/cmdline | grep -q -- --vfio && echo $p; done")
    check(pid.isdigit(), f"g1's skyvmm on the board: '{pid}'")
    b.type(f"kill -9 {pid}")
    g = wait_ctl_guest(f, "g1", lambda g: g["state"] == "failed", 60, "g1 failed after skyvmm's SIGKILL")
    check("skyvmm killed by signal SIGKILL" in g["error"], f"g1's reason names the signal: {g['error']}")
    check(ctl_guest(f, "g2")["state"] == "running", "g2 runs on")
    n_up = dones(f, "g1")
    ctl_ok(f, "guest", "start", "g1")
    wait_for(lambda: dones(f, "g1") > n_up, 300, "g1's marker and devices again after the crash", interval=0.5)

    # the agent is killed: its skyvmm processes die with it, the supervisor
    # restarts it and the controller drives both guests back: each boots
    # again (its marker once more; the state alone may still be the old
    # report's)
    n_up = {n: ups(f, n) for n in ("g1", "g2")}
    b.type("kill -9 $(pidof skyagent)")
    wait_for(lambda: b.console().count("session up as board") >= 2, 120, "the agent back")
    wait_for(lambda: all(ups(f, n) > n_up[n] for n in ("g1", "g2")), 300,
             "guests booted again after the agent restart", interval=1.0)
    check(all(ctl_guest(f, n)["state"] == "running" for n in ("g1", "g2")), "both running again")
    # g1 booted four times (created, started, started after the crash, the
    # agent restarted): edu passed through each time
    try:
        wait_for(lambda: console(f, "g1").count("SKYROOT-GUEST-PCI-DONE") >= 4, 120, "g1's PCI devices listed "
                 "after each of its four boots", interval=1.0)
    except Fail:
        print(f"---- console of guest g1\n{console(f, 'g1')[-6000:]}", file=sys.stderr)
        raise
    edus = [ln for ln in console(f, "g1").splitlines() if ln.startswith("SKYROOT-GUEST-EDU present")]
    check(len(edus) == 4 and all("id=0x010000ED" in ln for ln in edus), f"g1's edu after each boot: {edus}")
    ctl_ok(f, "guest", "delete", "g2")
    check(ctl_guest(f, "g2") is None, "g2 gone")
    r = skyctl(f, "image", "delete", "demo-kernel")
    check(r.returncode == 1 and "used by a guest" in r.stderr, f"image in use: {r.stderr}")
    ctl_ok(f, "guest", "delete", "g1")
    wait_for(lambda: not b.run("pidof skyvmm"), 60, "no skyvmm left on the board", interval=2.0)

    # c) a guest that powers itself off (its init: busybox poweroff -f)
    create_guest(f, "off", cmdline="console=ttyS0 quiet rdinit=/bin/poweroff -- -f")
    g = wait_ctl_guest(f, "off", lambda g: g["state"] in ("stopped", "failed"), 300, "the powered-off guest ended")
    check(g["state"] == "stopped" and g["error"] == "guest-shutdown", f"off ended by its own power-off: {g}")
    check(g["desired"] == "running", f"not stopped by the operator: {g}")
    ctl_ok(f, "guest", "delete", "off")

    # f) a kernel that is not a bzImage: the guest fails and says why
    create_guest(f, "notbz", kernel="not-a-kernel")
    g = wait_ctl_guest(f, "notbz", lambda g: g["state"] == "failed", 120, "the guest with no bzImage failed")
    show = ctl_ok(f, "guest", "show", "notbz").stdout
    check("not a Linux bzImage" in g["error"] and "not a Linux bzImage" in show,
          f"the refusal says why: {g['error']}\n{show}")
    ctl_ok(f, "guest", "delete", "notbz")

    # e) skyvmm killed by its own seccomp filter.  On this board only, in
    # its RAM root through the debug shell: the backend's skyvmm replaced by
    # a wrapper that runs the real binary's --seccomp-selftest (the filter
    # installed, then a call outside it), as guests_skyvmm.py does on the
    # host; the image and the product are unchanged, the kill is the real
    # filter's.
    sv_path = "/usr/libexec/skyroot/skyvmm"
    r = b.run(f"mv {sv_path} {sv_path}.real && printf '#!/bin/sh\\nexec {sv_path}.real --seccomp-selftest\\n' "
              f">{sv_path} && chmod 755 {sv_path} && echo wrapped")
    check(r == "wrapped", f"the seccomp wrapper in place on the board: '{r}'")
    create_guest(f, "sc")
    g = wait_ctl_guest(f, "sc", lambda g: g["state"] in ("failed", "stopped"), 120, "the guest under the wrapper ended")
    check(g["state"] == "failed" and "skyvmm killed by seccomp (signal 31, SIGSYS)" in g["error"],
          f"a skyvmm killed by its filter: the guest failed, and says so: {g}")
    ctl_ok(f, "guest", "delete", "sc")
    check(b.run(f"mv {sv_path}.real {sv_path} && echo restored") == "restored", "the real skyvmm back")

    # g) the firmware never wrote the board's disk
    b.stop()
    check(b.scratch_unchanged(), "the scratch disk is untouched")


def case_kexec(f):
    """Bare metal: the board kexecs a streamed kernel; its init prints a marker."""
    ensure_firmware()
    start_controller(f)
    build_guest(f)
    tok = f.token()
    b = Board(f, "bm", cmdline=board_cmdline(f, tok["token"]))
    board = wait_online(f)
    t0 = time.time()
    r = skyctl(f, "board", "boot", board["id"], "--kernel", "demo-kernel", "--initrd", "demo-initrd",
               "--cmdline", "console=ttyS0 skyroot.marker=KEXEC-OK")
    check(r.returncode == 0, f"board boot: {r.stderr}")
    wait_for(lambda: "SKYROOT-MARKER KEXEC-OK" in b.console(), 180, "the kexec'd OS's marker on the console")
    print(f"bare metal: command to the new OS's marker {time.time() - t0:.1f} s")
    wait_for(lambda: f.api("GET", f"/v1/boards/{board['id']}")[1]["state"] == "baremetal", 60,
             "the board shown as baremetal")
    b.stop()
    check(b.scratch_unchanged(), "the scratch disk is untouched")


def rack_controller(f, rack, extra=()):
    """The controller on the rack's host address: boards reach it there."""
    addr = f"{rack.host}:{f.agent_port}"
    f.start(["--agent-listen", addr, "--advertise", addr] + list(extra))
    rack.controller(addr)  # what dnsmasq sends as option 224
    return addr


def online_boards(f):
    return [b for b in f.boards_api() if b["state"] == "online"]


def check_rack_boards(f, rack, boards):
    """Each board found the controller by DHCP option 224, used the image's
    pin, and has its lease in the rack's dnsmasq."""
    for b in boards:
        con = b.console()
        check("the controller comes from DHCP option 224" in con, f"{b.name}: no controller on its command line")
        check("the DHCP server names a controller (option 224)" in con, f"{b.name}: option 224 not received")
        check(f"CA pin from the image: {f.pin}" in con, f"{b.name}: the baked pin not used")
        mac = subprocess.run([BOARD_SH, "--name", b.name, "--print-mac"], capture_output=True,
                             text=True).stdout.strip()
        check(mac and mac in rack.file("dnsmasq.leases"), f"{b.name}'s MAC {mac} in the rack's leases")


def case_rack_dhcp(f):
    """Two boards on an emulated rack, one fleet image (the CA pin baked in,
    no skyroot.controller= or skyroot.ca= on their command lines): both
    find the controller by DHCP option 224 and come online (with tokens
    until pending enrollment lands); rack down leaves nothing."""
    ensure_firmware()
    rack = Rack(f, "dhcp")
    rack_controller(f, rack)
    boards = []
    for name in ("r1", "r2"):
        tok = f.token()["token"]
        boards.append(Board(f, name, rack=rack, cmdline=f"skyroot.token={tok}", memory=1024,
                            extra=["--ca-pin", f.pin]))
    t0 = min(b.t0 for b in boards)
    wait_for(lambda: len(online_boards(f)) == 2, 2 * BOOT_TIMEOUT, "both rack boards online", interval=1.0)
    print(f"rack: two boards, power-on to both online {time.time() - t0:.1f} s")
    check_rack_boards(f, rack, boards)
    names = sorted(b["name"] for b in online_boards(f))
    check(len(set(names)) == 2, f"two distinct boards: {names}")
    for b in boards:
        r = b.stop()
        check(b.scratch_unchanged(), f"{b.name}'s scratch disk is untouched ({r.stderr})")
    r = rack.down()
    check(r.returncode == 0, f"rack.sh down: {r.stderr}")
    rack.check_gone(boards)


def case_rack_times(f):
    """Power-on to online on the rack, one board after the other: one that
    finds the controller by DHCP option 224 (and its pin in the image);
    one given everything on its command line while DHCP names a port where
    nothing listens (the command line wins); one that finds it by DNS SRV
    _skyroot._tcp alone (the rack's dnsmasq, no option 224)."""
    ensure_firmware()
    rack = Rack(f, "times")
    addr = rack_controller(f, rack)
    port = addr.rsplit(":", 1)[1]
    seen = []
    times = {}

    def boot(name, cmdline, extra=()):
        b = Board(f, name, rack=rack, cmdline=cmdline, memory=1024, extra=list(extra))
        board = wait_online(f, exclude=seen)
        seen.append(board["id"])
        times[name] = time.time() - b.t0
        r = b.stop()
        check(b.scratch_unchanged(), f"{name}'s scratch disk is untouched ({r.stderr})")
        return b

    a = boot("bydhcp", f"skyroot.token={f.token()['token']}", ["--ca-pin", f.pin])
    check("the DHCP server names a controller (option 224)" in a.console(), "bydhcp got option 224")
    rack.controller(f"{rack.host}:1")
    b = boot("bycmdline", f"skyroot.controller={addr} skyroot.token={f.token()['token']} skyroot.ca={f.pin}")
    con = b.console()
    check("the DHCP server names a controller (option 224)" in con, "bycmdline got option 224 too")
    check(f"skyroot-init: controller {addr}" in con, "bycmdline dialled its command line's controller")
    rack.controller(addr, only="srv")
    c = boot("bysrv", f"skyroot.token={f.token()['token']}", ["--ca-pin", f.pin])
    con = c.console()
    check("names a controller (option 224)" not in con, "bysrv got no option 224")
    check(f"controller controller.rack.internal:{port}" in con, "bysrv dialled the SRV record's target")
    print("rack: power-on to online: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items()) +
          " (controller by DHCP option 224, on the command line, by DNS SRV)")
    r = rack.down()
    check(r.returncode == 0, f"rack.sh down: {r.stderr}")
    rack.check_gone([a, b, c])


def case_rack_net_boot(f):
    """A board with no firmware of its own on the rack: dnsmasq gives its
    MAC the controller's iPXE script as boot file; it boots the firmware
    from the controller over the rack network and enrolls."""
    ensure_firmware()
    fwdir = os.path.join(f.tmp, "fw")
    os.mkdir(fwdir)
    for n in ("vmlinuz", "initrd.img"):
        os.symlink(os.path.join(FW, n), os.path.join(fwdir, n))
    default = open(os.path.join(FW, "cmdline")).read().strip()
    with open(os.path.join(fwdir, "cmdline"), "w") as out:
        out.write(default + " no_timer_check\n")  # emulated boards only
    rack = Rack(f, "pxe")
    port = free_port()
    rack_controller(f, rack, ["--firmware", fwdir, "--boot-listen", f"{rack.host}:{port}"])
    tok = f.token()
    b = Board(f, "netb", rack=rack, boot="net", boot_url=f"http://{rack.host}:{port}/boot/ipxe?token={tok['token']}")
    board = wait_online(f)
    print(f"rack network boot: power-on to online {time.time() - b.t0:.1f} s")
    check(board["kvm"] is True and board["firmware"] == "uefi", "a hypervisor board")
    check("boot: iPXE script" in f.ctl.text(), "the controller served the script")
    log = rack.file("dnsmasq.log")
    check(f"http://{rack.host}:{port}/boot/ipxe" in log, "dnsmasq sent the boot file (its log)")
    r = b.stop()
    check(b.scratch_unchanged(), f"the scratch disk is untouched ({r.stderr})")
    r = rack.down()
    check(r.returncode == 0, f"rack.sh down: {r.stderr}")
    rack.check_gone([b])


def guest_macs(f, name):
    return [n["mac"].lower() for n in guest(f, name)["nics"]]


def wait_console(f, name, marker, timeout, what):
    """The line of guest NAME's console that starts with marker, waited for."""
    def line():
        text = console(f, name)
        # whole lines only: the console may end in the middle of one
        for ln in text[:text.rfind("\n") + 1].splitlines():
            if ln.startswith("SKYROOT-GUEST-NET-FAIL"):
                raise Fail(f"guest {name}: {ln}")
            if ln.startswith(marker):
                return ln.split()
        return None
    try:
        return wait_for(line, timeout, what, interval=2.0)
    except Fail:
        print(f"---- console of guest {name}\n{console(f, name)[-3000:]}", file=sys.stderr)
        raise


def rack_two_boards(f, rack, memory=(2048, 1536)):
    """Boards rg1 and rg2 on the rack with the fleet image (the CA pin baked
    in) and nothing on their command lines: rg1 pre-approved by serial,
    rg2 pending until accepted.  Returns (boards, ids) once both are online."""
    r = skyctl(f, "board", "expect", "--serial", "skyroot-rg1")
    check(r.returncode == 0, f"board expect: {r.stderr}")
    boards = [Board(f, n, rack=rack, cmdline="skyroot.shell=1", memory=m, extra=["--ca-pin", f.pin, "--cpus", "1"])
              for n, m in zip(("rg1", "rg2"), memory)]
    rg1 = wait_online(f, timeout=2 * BOOT_TIMEOUT)
    print(f"rack: rg1 (expected by serial) power-on to online {time.time() - boards[0].t0:.1f} s")

    def pending_rg2():
        st, body = f.api("GET", "/v1/pending")
        return next((p for p in body.get("pending", []) if p.get("serial") == "skyroot-rg2"), None)
    p = wait_for(pending_rg2, 2 * BOOT_TIMEOUT, "rg2 pending with its serial", interval=1.0)
    check(p["state"] == "pending", f"rg2 waits for an operator: {p}")
    check(len(online_boards(f)) == 1, "rg2 is not online before it is accepted")
    r = skyctl(f, "board", "accept", p["id"])
    check(r.returncode == 0, f"board accept: {r.stderr}")
    rg2 = wait_online(f, exclude=[rg1["id"]])
    print(f"rack: rg2 accepted to online {time.time() - boards[1].t0:.1f} s after its power-on")
    check_rack_boards(f, rack, boards)
    check(rg1["name"] != rg2["name"], f"two distinct boards: {rg1['name']} {rg2['name']}")
    return boards, (rg1["id"], rg2["id"])


def rack_guest(f, name, board, network, cmdline):
    r = skyctl(f, "guest", "create", "--name", name, "--board", board, "--kernel", "demo-kernel",
               "--initrd", "demo-initrd", "--memory", "128M", "--nic", network,
               "--cmdline", f"console=ttyS0 quiet skyroot.net={name} skyroot.wait=600 {cmdline}")
    check(r.returncode == 0, f"guest create {name}: {r.stderr}")


def case_rack_guests(f):
    """Two boards on an emulated rack (fleet image, controller by DHCP, one
    expected by serial, one accepted): a guest on each on network lan (VLAN
    100) get addresses from the rack's dnsmasq and ping each other; a third
    guest on VLAN 200 gets no answer from them; scratch disks unchanged."""
    t_case = time.time()
    ensure_firmware()
    rack = Rack(f, "guests", vlans=(100, 200))
    rack_controller(f, rack)
    build_guest(f)
    boards, (id1, id2) = rack_two_boards(f, rack)
    for net, vlan in (("lan", 100), ("other", 200)):
        r = skyctl(f, "network", "create", net, "--vlan", str(vlan))
        check(r.returncode == 0, f"network create {net}: {r.stderr}")
    t0 = time.time()
    rack_guest(f, "g1", id1, "lan", "skyroot.ping=g2")
    rack_guest(f, "g2", id2, "lan", "skyroot.ping=g1")
    rack_guest(f, "g3", id1, "other", "skyroot.probe=g1,g2")
    addrs = {}
    for g, vlan in (("g1", 100), ("g2", 100), ("g3", 200)):
        w = wait_console(f, g, "SKYROOT-GUEST-NET ", 600, f"guest {g}'s NIC up by DHCP")
        if len(w) != 4:
            print(f"---- console of guest {g}\n{console(f, g)[-3000:]}", file=sys.stderr)
            raise Fail(f"guest {g}: '{' '.join(w)}' is not 'SKYROOT-GUEST-NET IFACE MAC ADDRESS'")
        _, iface, mac, addr = w
        macs = guest_macs(f, g)
        check(macs == [mac.lower()], f"{g}: the NIC the controller gave it ({macs}) is the guest's {iface} {mac}")
        check(addr.rsplit(".", 1)[0] == rack.vlans[vlan], f"{g}: {addr} is on VLAN {vlan}'s {rack.vlans[vlan]}.0/24")
        lease = [ln.split() for ln in rack.file("dnsmasq.leases").splitlines()]
        check([mac.lower(), addr, g] in [ln[1:4] for ln in lease], f"{g}: {mac} {addr} in dnsmasq's leases: {lease}")
        addrs[g] = addr
    print(f"rack guests: three NICs up by DHCP {time.time() - t0:.1f} s after the first create")
    for g, peer in (("g1", "g2"), ("g2", "g1")):
        w = wait_console(f, g, f"SKYROOT-GUEST-PING {peer} ", 600, f"{g} to ping {peer}")
        check(w[2:] == [addrs[peer], "ok"], f"{g} pinged {peer} across the rack: {' '.join(w)}")
    print(f"rack guests: g1 and g2 ping each other across two boards {time.time() - t0:.1f} s after the first create")
    for peer in ("g1", "g2"):
        w = wait_console(f, "g3", f"SKYROOT-GUEST-PROBE {peer} ", 300, f"g3's probe of {peer}")
        check(w[2:] == [addrs[peer], "no-answer"], f"g3 on VLAN 200 reaches {peer} on VLAN 100: {' '.join(w)}")
    for b in boards:
        r = b.stop()
        check(b.scratch_unchanged(), f"{b.name}'s scratch disk is untouched ({r.stderr})")
    r = rack.down()
    check(r.returncode == 0, f"rack.sh down: {r.stderr}")
    rack.check_gone(boards)
    print(f"rack guests: the whole case took {time.time() - t_case:.0f} s")


def no_ovmf():
    if not os.path.exists("/usr/share/OVMF/OVMF_CODE_4M.fd"):
        return "OVMF missing (deploy/deps.sh installs it)"
    if len(sys.argv) == 2 and sys.argv[1].startswith("rack_"):
        if os.geteuid() != 0:
            return "the emulated rack (fwimage/rack.sh) needs root for its network namespace"
        if not shutil.which("dnsmasq"):
            return "dnsmasq missing: install dnsmasq-base (deploy/packages/firmware.txt)"
    return None


def main():
    return run_cases(globals(), "sky-e2e", e2e_fleet, skip=no_ovmf)


if __name__ == "__main__":
    sys.exit(main())
