#!/usr/bin/env python3
"""End-to-end tests on emulated boards: real firmware (fwimage/build.sh with
this build's skyagent) booted by OVMF on QEMU q35/TCG with VT-d, nested KVM
and an edu device, against a real skyrootd on the host's loopback (10.0.2.2
inside the boards).

Usage: e2e.py CASE.  Cases run one at a time (each board is a TCG QEMU).
The firmware is built once into $SKY_E2E_FW (default build/fwimage-e2e) and
rebuilt when skyagent changes."""
import fcntl
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from fleet import ROOT, SKYAGENT, Fail, Fleet, check, wait_for  # noqa: E402

FW = os.environ.get("SKY_E2E_FW", os.path.join(ROOT, "build", "fwimage-e2e"))
BOARD_SH = os.path.join(ROOT, "fwimage", "board.sh")
BUILD_SH = os.path.join(ROOT, "fwimage", "build.sh")
BOOT_TIMEOUT = int(os.environ.get("SKY_E2E_BOOT_TIMEOUT", "240"))


def ensure_firmware(extra=()):
    """Build the firmware with this build's skyagent (once; under a lock)."""
    os.makedirs(os.path.dirname(FW), exist_ok=True)
    with open(FW + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = os.path.join(FW, "agent.sha256")
        h = hashlib.sha256()
        for part in (SKYAGENT, BUILD_SH, os.path.join(ROOT, "fwimage", "init")):
            h.update(open(part, "rb").read())
        want = h.hexdigest()
        if os.path.exists(stamp) and open(stamp).read().strip() == want:
            return FW
        t0 = time.time()
        r = subprocess.run([BUILD_SH, "--agent", SKYAGENT, "--out", FW, "--report"] + list(extra),
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise Fail(f"fwimage/build.sh failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        print(r.stdout[-1500:])
        print(f"firmware built in {time.time() - t0:.0f} s")
        open(stamp, "w").write(want)
        return FW


class Board:
    def __init__(self, fleet, name, boot="efi", cmdline="", boot_url=None, memory=2048, extra=()):
        self.f = fleet
        self.name = name
        self.dir = os.path.join(fleet.tmp, "boards", name)
        args = [BOARD_SH, "--name", name, "--image", FW, "--boot", boot, "--memory", str(memory),
                "--disk-bus", "nvme", "--background"] + list(extra)
        if boot == "net":
            args += ["--boot-url", boot_url]
        else:
            args += ["--cmdline", cmdline]
        env = dict(os.environ, SKYROOT_BOARDS_DIR=os.path.join(fleet.tmp, "boards"))
        self.env = env
        self.t0 = time.time()
        r = subprocess.run(args, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise Fail(f"board.sh failed: {r.stderr}")
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


def e2e_fleet(tmp):
    f = Fleet(tmp)
    f.boards_api = f.boards  # the API's board list; f.boards: our emulated boards
    f.boards = []
    return f


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
    port = __import__("fleet").free_port()
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


def main():
    if len(sys.argv) != 2 or f"case_{sys.argv[1]}" not in globals():
        cases = sorted(k[5:] for k in globals() if k.startswith("case_"))
        print(f"usage: {sys.argv[0]} CASE\ncases: {' '.join(cases)}", file=sys.stderr)
        return 2
    if not os.path.exists("/usr/share/OVMF/OVMF_CODE_4M.fd"):
        print("SKIP: OVMF missing (deploy/deps.sh installs it)")
        return 77
    name = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix=f"sky-e2e-{name}-")
    f = None
    try:
        f = e2e_fleet(tmp)
        globals()[f"case_{name}"](f)
        for b in f.boards:
            b.stop()
        problems = f.close()
        if problems:
            raise Fail("; ".join(problems))
    except Fail as e:
        print(f"FAIL {name}: {e}", file=sys.stderr)
        if f:
            for b in getattr(f, "boards", []):
                b.stop()
                print(f"---- console of board {b.name}", file=sys.stderr)
                print(b.console()[-6000:], file=sys.stderr)
            f.close()
            for fn in sorted(os.listdir(tmp)):
                if fn.endswith(".log"):
                    print(f"---- {fn}", file=sys.stderr)
                    print(open(os.path.join(tmp, fn), errors="replace").read()[-3000:], file=sys.stderr)
        return 1
    finally:
        if f:
            for b in getattr(f, "boards", []):
                b.stop()
            f.close()
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"ok {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
