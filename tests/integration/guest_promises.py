#!/usr/bin/env python3
"""Promises README.md, docs/api.md and the man pages make about guests that
only these cases check: skyrootd, skyagent on a copy of a fixture board and
real QEMU (TCG) guests booting the vmm tests' kernel and initramfs
(tests/vmm/fetch-guest.sh), one at a time.

Usage: guest_promises.py CASE
  restart     "the controller drives every board to the desired state of its
              guests, again after the board or the controller restarts"
              (docs/api.md): kill -9 of skyrootd while a guest runs, while a
              guest waits for its offline board and while the board is back;
              the guest keeps running, a stop, a start and a delete issued
              after the restart reach the board, the waiting guest starts,
              a guest stopped before the kill stays stopped.
  disks       --disk with a raw image and with a qcow2 image (qemu-img): the
              guest reads the disk's own first bytes (a qcow2 passed as raw
              would show its header); --vcpus 2: the guest's kernel brings up
              two CPUs (one without the flag).
  libvirt     guest create --backend libvirt through the controller
              (skyagent-full, a libvirtd from tests/vmm/libvirtd.py): the
              guest runs as a libvirt domain, its console reaches skyctl,
              stop, start and delete reach libvirt.
  kexec       skyctl board boot with a real kernel: an agent without
              --allow-kexec refuses with its reason; one with it tries, and on
              a host without kexec_file_load (ENOSYS) the order fails with
              that reason, never "refused".  Skipped (77) where
              kexec_file_load is implemented: it would replace the host's OS.
  cache       the image cache never evicts an image a running guest uses
              (README: "LRU eviction of images no guest uses"): the budget
              filled with other images while the guest runs evicts those,
              never the guest's kernel and initrd; an image that would
              only fit by evicting them is refused, and evicts nothing; once
              the guest is deleted its images make room like any other.
"""
import ctypes
import errno
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import SKYAGENT, Fleet, Proc, agent_args, check, run_cases, skyctl, wait_for  # noqa: E402
from guests import (MARK_UP, board_copy, console, guest, guest_artifacts, push, qemu_pids,  # noqa: E402
                    start_agent, wait_state)
from images import fetch, rand_file  # noqa: E402

CMDLINE = "console=ttyS0 panic=-1 quiet"
TAG = os.getpid()  # guest names unique on this host (qemu_pids looks host-wide)


def images(f):
    art = guest_artifacts()
    push(f, os.path.join(art, "vmlinuz"), "vk", "kernel")
    push(f, os.path.join(art, "initrd.img"), "vi", "initrd")
    return art


def create(f, name, board, *more, cmdline=CMDLINE):
    r = skyctl(f, "-o", "json", "guest", "create", "--name", name, "--board", board, "--kernel", "vk",
               "--initrd", "vi", "--cmdline", cmdline, "--memory", "256M", *more)
    check(r.returncode == 0, f"guest create {name}: {r.stderr}")
    return json.loads(r.stdout)


def gone(name, timeout=30):
    wait_for(lambda: not qemu_pids(name), timeout, f"guest {name}'s QEMU gone")


def board_state(f, name):
    return next((b["state"] for b in f.boards() if b["name"] == name), None)


def kill9_controller(f):
    """kill -9 skyrootd and start it again on the same state and ports."""
    old = f.ctl
    old.stop(signal.SIGKILL)
    check(old.p.returncode == -signal.SIGKILL, f"skyrootd died of SIGKILL ({old.p.returncode})")
    f.procs.remove(old)
    for marker in ("ERROR: AddressSanitizer", "runtime error:"):
        check(marker not in old.text(), f"skyrootd before kill -9: {marker}")
    os.rename(old.log_path, f"{old.log_path}.{len(f.procs)}-{int(time.time() * 1000)}.log")
    f.start()


# --------------------------------------------------------------------------

def case_restart(f):
    f.start()
    images(f)
    board = "rs"
    ident = os.path.join(f.tmp, "identity")  # the agent comes back as the same board
    p, b = start_agent(f, board, 31, ["--identity-dir", ident])
    run, wait = f"rsrun{TAG}", f"rswait{TAG}"

    # 1. A guest runs; kill -9 of the controller does not touch it.
    create(f, run, board)
    wait_state(f, run, "running")
    wait_for(lambda: MARK_UP in console(f, run), 90, f"{run}'s marker")
    pids = qemu_pids(run)
    check(len(pids) == 1, f"{run} has one QEMU: {pids}")
    kill9_controller(f)
    wait_for(lambda: board_state(f, board) == "online", 30, "the board back after the controller's restart")
    g = wait_state(f, run, "running")
    check(g["desired"] == "running", f"desired state kept across kill -9: {g}")
    check(qemu_pids(run) == pids, f"the same QEMU runs on (not restarted): {pids} -> {qemu_pids(run)}")
    # A stop issued after the restart reaches the board...
    check(skyctl(f, "guest", "stop", run).returncode == 0, f"guest stop {run}")
    wait_state(f, run, "stopped", 60)
    gone(run)
    # ...and so does a start.
    check(skyctl(f, "guest", "start", run).returncode == 0, f"guest start {run}")
    wait_state(f, run, "running")
    wait_for(lambda: len(qemu_pids(run)) == 1, 30, f"{run} started again")
    check(skyctl(f, "guest", "stop", run).returncode == 0, f"guest stop {run} again")
    wait_state(f, run, "stopped", 60)
    gone(run)

    # 2. The board goes away (its guests die with its agent); a guest created
    # for it waits; kill -9 of the controller; the board comes back: the
    # waiting guest starts, the stopped one stays stopped.
    check(p.stop() == 0, "the agent exits cleanly on SIGTERM")
    wait_for(lambda: board_state(f, board) == "offline", 30, "the board offline")
    g = create(f, wait, board)
    check(g["state"] == "pending" and g["desired"] == "running", f"a guest for an offline board waits: {g}")
    kill9_controller(f)
    g = guest(f, wait)
    check(g["state"] == "pending" and g["desired"] == "running", f"still waiting after kill -9: {g}")
    check(guest(f, run)["desired"] == "stopped", "the stopped guest's desired state kept")
    p2 = Proc(p.args, os.path.join(f.tmp, f"agent-{board}-again.log"))
    f.procs.append(p2)
    wait_for(lambda: board_state(f, board) == "online", 30, "the board back")
    check(next(x for x in f.boards() if x["name"] == board)["id"] == b["id"], "the same board came back")
    wait_state(f, wait, "running")
    wait_for(lambda: MARK_UP in console(f, wait), 90, f"{wait}'s marker after the restarts")
    time.sleep(2)  # both guests were sent at once when the board came back
    check(not qemu_pids(run), f"{run} (desired stopped) was not started by the returning board")
    check(guest(f, run)["state"] == "stopped", f"{run} shows stopped: {guest(f, run)}")

    # 3. kill -9 once more; a delete issued after the restart reaches the board.
    kill9_controller(f)
    wait_for(lambda: board_state(f, board) == "online", 30, "the board back after the third start")
    check(skyctl(f, "guest", "delete", wait).returncode == 0, f"guest delete {wait}")
    gone(wait)
    check(f.api("GET", f"/v1/guests/{wait}")[0] == 404, f"{wait} gone from the controller")
    check(skyctl(f, "guest", "delete", run).returncode == 0, f"guest delete {run}")
    check(p2.p.poll() is None and f.ctl.p.poll() is None, "agent and controller running")


def disk_image(f, name, text, qcow2=False):
    """A 4 MiB disk whose first bytes are TEXT (letters, digits, dashes: what
    the guest's /init prints of /dev/vda), raw or converted to qcow2."""
    raw = os.path.join(f.tmp, f"{name}.raw")
    with open(raw, "wb") as out:
        out.write(text.encode().ljust(4 << 20, b"\0"))
    if not qcow2:
        return raw
    q = os.path.join(f.tmp, f"{name}.qcow2")
    r = subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, q], capture_output=True, text=True)
    check(r.returncode == 0, f"qemu-img convert: {r.stderr}")
    with open(q, "rb") as src:
        check(src.read(4) == b"QFI\xfb", "qemu-img wrote a qcow2")
    return q


def boot_with_disk(f, board, name, disk, text, vcpus):
    more = ["--disk", disk] + (["--vcpus", str(vcpus)] if vcpus else [])
    # Without "quiet": the kernel's "smp: Brought up 1 node, N CPUs" shows.
    g = create(f, name, board, *more, cmdline="console=ttyS0 panic=-1")
    check(g["vcpus"] == (vcpus or 1), f"vcpus in the guest: {g}")
    wait_state(f, name, "running")
    out = wait_for(lambda: (lambda c: c if "SKYROOT-VMM-DISK:" in c else None)(console(f, name)), 120,
                   f"{name}'s disk line")
    line = next(l for l in out.splitlines() if "SKYROOT-VMM-DISK:" in l).strip()
    print(f"{name}: {line}")
    check(f"SKYROOT-VMM-DISK: {text}" in line, f"{name} reads its disk's own bytes: {line!r}")
    n = vcpus or 1
    smp = [l.strip() for l in out.splitlines() if "smp: Brought up" in l]
    print(f"{name}: {smp}")
    check(smp and f" {n} CPU{'s' if n > 1 else ''}" in smp[0], f"{name}'s kernel brought up {n} CPUs: {smp}")
    check(skyctl(f, "guest", "delete", name).returncode == 0, f"guest delete {name}")
    gone(name)


def case_disks(f):
    f.start()
    images(f)
    board = "dk"
    start_agent(f, board, 32)
    raw_text, q_text = f"SKYROOT-RAW-{TAG}", f"SKYROOT-QCOW2-{TAG}"
    img = push(f, disk_image(f, "r", raw_text), "draw", "disk")
    check(img["format"] == "raw", f"raw image: {img}")
    img = push(f, disk_image(f, "q", q_text, qcow2=True), "dq", "disk")
    check(img["format"] == "qcow2", f"qcow2 image: {img}")
    boot_with_disk(f, board, f"dkraw{TAG}", "draw", raw_text, 2)
    boot_with_disk(f, board, f"dkq{TAG}", "dq", q_text, None)


def case_cache(f):
    art = guest_artifacts()
    f.start()
    kid = push(f, os.path.join(art, "vmlinuz"), "vk", "kernel")["id"]
    iid = push(f, os.path.join(art, "initrd.img"), "vi", "initrd")["id"]
    mib = 1 << 20
    used = os.path.getsize(os.path.join(art, "vmlinuz")) + os.path.getsize(os.path.join(art, "initrd.img"))
    # Room for the guest's images and two 4 MiB others, not three.
    budget = (used + mib - 1) // mib * mib + 9 * mib
    board = "ca"
    p, b = start_agent(f, board, 33, ["--cache-max", f"{budget // mib}M"])
    name = f"cache{TAG}"
    create(f, name, board)
    wait_state(f, name, "running")
    wait_for(lambda: MARK_UP in console(f, name), 90, f"{name}'s marker")
    others = []
    for i in range(4):
        path = os.path.join(f.tmp, f"other{i}")
        rand_file(path, 4 * mib)
        others.append(push(f, path, f"other{i}", "disk")["id"])
    # The guest's images are the least recently used: a plain LRU would
    # evict them first.
    for i in range(4):
        how, got = fetch(f, b["id"], f"other{i}")
        check(how == "ok", f"other{i} fetched: {how} {got}")
    held = {i["id"] for i in f.api("GET", f"/v1/boards/{b['id']}")[1]["images"]}
    print(f"budget {budget // mib} MiB; the board holds {len(held)} images")
    check(kid in held and iid in held, f"the running guest's kernel and initrd stay in the cache: {held}")
    check(others[0] not in held and others[1] not in held and others[2] in held and others[3] in held,
          f"the others were evicted, least recent first: {[o in held for o in others]}")
    text = p.text()
    check(f"evicting {others[0]}" in text and f"evicting {others[1]}" in text, "the agent logs the evictions")
    check(f"evicting {kid}" not in text and f"evicting {iid}" not in text, "nothing a guest uses evicted")
    # An image that fits the budget only if the guest's images went: refused.
    path = os.path.join(f.tmp, "big")
    rand_file(path, budget - 2 * mib)
    push(f, path, "big", "disk")
    how, err = fetch(f, b["id"], "big")
    print(f"big: {how}: {err}")
    check(how == "error" and "guests hold" in err, f"an image that needs the guest's images' room: {how} {err}")
    held = {i["id"] for i in f.api("GET", f"/v1/boards/{b['id']}")[1]["images"]}
    check(kid in held and iid in held, f"the guest's images still there: {held}")
    check(others[2] in held and others[3] in held, "a refused image evicted nothing (it could not have fit)")
    check(guest(f, name)["state"] == "running" and MARK_UP in console(f, name), "the guest runs on")
    # Once the guest is gone its images are evictable like any other.
    check(skyctl(f, "guest", "delete", name).returncode == 0, f"guest delete {name}")
    gone(name)
    # The API forgets the guest before the board has stopped its VMM and
    # let go of its images: until then the board refuses as before, so
    # the fetch is asked again until the board has let go (and no longer).
    deadline = time.monotonic() + 60
    while True:
        how, got = fetch(f, b["id"], "big")
        if how == "ok" or time.monotonic() > deadline or "guests hold" not in got:
            break
        time.sleep(1)
    check(how == "ok", f"with the guest gone, big fits: {how} {got}")
    held = {i["id"] for i in f.api("GET", f"/v1/boards/{b['id']}")[1]["images"]}
    check(kid not in held, f"the kernel no guest uses made room: {held}")


def libvirt_agent(f, name, uuid_tail, uri):
    """skyagent-full on a copy of a fixture board, its libvirt the one at
    URI.  The agent always dials qemu:///system (/run/libvirt/libvirt-sock):
    for a libvirtd with its sockets elsewhere (tests/vmm/libvirtd.py's own,
    "qemu:///system?socket=DIR/libvirt-sock") it runs in a mount namespace
    of its own where DIR is mounted on /run/libvirt."""
    full = os.path.join(os.path.dirname(os.path.abspath(SKYAGENT)), "skyagent-full")
    root = board_copy(f, name, uuid_tail)
    tok = f.token()
    args = agent_args(f, root, token=tok["token"], binary=full) + ["--heartbeat-interval", "1000"]
    sock = urllib.parse.parse_qs(urllib.parse.urlparse(uri).query).get("socket", [None])[0]
    if sock:
        os.makedirs("/run/libvirt", exist_ok=True)
        args = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                'mount --bind "$0" /run/libvirt && exec "$@"', os.path.dirname(sock)] + args
    p = Proc(args, os.path.join(f.tmp, f"agent-{name}.log"))
    f.procs.append(p)
    wait_for(lambda: board_state(f, name) == "online", 20, f"board {name} online")
    return p


def virsh(uri, *args):
    return subprocess.run(["virsh", "-q", "-c", uri, *args], capture_output=True, text=True, timeout=30)


def case_libvirt(f):
    uri = os.environ.get("SKY_VMM_LIBVIRT_URI")
    check(uri, "run under tests/vmm/libvirtd.py (SKY_VMM_LIBVIRT_URI)")
    f.start()
    images(f)
    board = "lv"
    p = libvirt_agent(f, board, 34, uri)
    # tests/vmm/libvirtd.py removes a skyvmm-* domain a failed run leaves.
    name = f"skyvmm-gp{TAG}"
    t0 = time.time()
    g = create(f, name, board, "--backend", "libvirt")
    check(g["backend"] == "libvirt", f"the guest's backend: {g}")
    wait_state(f, name, "running")
    wait_for(lambda: MARK_UP in console(f, name), 120, f"{name}'s marker on skyctl guest console")
    print(f"libvirt: guest create -> marker on skyctl's console: {time.time() - t0:.1f} s")
    st = virsh(uri, "domstate", name)
    check(st.returncode == 0 and st.stdout.strip() == "running", f"libvirt runs domain {name}: {st.stdout} {st.stderr}")
    r = skyctl(f, "guest", "stop", name)
    check(r.returncode == 0, f"guest stop: {r.stderr}")
    wait_state(f, name, "stopped", 90)
    gone(name)
    check(name not in virsh(uri, "list", "--all", "--name").stdout.split(), "a stopped guest's domain is undefined")
    check(skyctl(f, "guest", "start", name).returncode == 0, "guest start")
    wait_state(f, name, "running")
    wait_for(lambda: console(f, name).count(MARK_UP) >= 2, 120, f"{name}'s second boot on the console")
    check(virsh(uri, "domstate", name).stdout.strip() == "running", "running again in libvirt")
    check(skyctl(f, "guest", "delete", name).returncode == 0, "guest delete")
    gone(name)
    wait_for(lambda: name not in virsh(uri, "list", "--all", "--name").stdout.split(), 30,
             "the domain gone from libvirt")
    check(f.api("GET", f"/v1/guests/{name}")[0] == 404, "the guest gone from the controller")
    check(p.p.poll() is None and f.ctl.p.poll() is None, "agent and controller running")


def kexec_file_load_missing():
    """Why the kexec case may not run here: it hands a real kernel to an
    agent with --allow-kexec, which on a host where kexec_file_load works
    would replace the running OS.  None when the call is not implemented."""
    libc = ctypes.CDLL(None, use_errno=True)
    if os.uname().machine != "x86_64":
        return f"kexec_file_load's number is x86_64's; this is {os.uname().machine}"
    r = libc.syscall(320, -1, -1, ctypes.c_ulong(0), None, ctypes.c_ulong(0))  # SYS_kexec_file_load
    e = ctypes.get_errno()
    if r == -1 and e == errno.ENOSYS:
        return None
    return (f"kexec_file_load is implemented on this host ({os.strerror(e)}): a real kernel "
            "given to an agent with --allow-kexec would replace this OS")


def case_kexec(f):
    why = kexec_file_load_missing()
    check(why is None, f"never here: {why}")  # main() skips first
    f.start()
    images(f)
    _, no = start_agent(f, "kxno", 35)
    pyes, yes = start_agent(f, "kxyes", 36, ["--allow-kexec"])
    # Without --allow-kexec: refused, with the reason; the board stays.
    r = skyctl(f, "board", "boot", "kxno", "--kernel", "vk", "--initrd", "vi", "--cmdline", "console=ttyS0")
    print(f"without --allow-kexec: exit {r.returncode}: {r.stderr.strip()}")
    check(r.returncode == 1 and "refused" in r.stderr and "--allow-kexec" in r.stderr,
          f"refused without --allow-kexec: {r.returncode} {r.stdout} {r.stderr}")
    boot = f.api("GET", f"/v1/boards/{no['id']}")[1]["boot"]
    check(boot["state"] == "refused" and "--allow-kexec" in boot["error"], f"the board's answer: {boot}")
    check(board_state(f, "kxno") == "online", "a refusing board stays online")
    # With it: the agent tries; this host has no kexec_file_load (ENOSYS),
    # so the order fails with that reason, and is never refused.
    r = skyctl(f, "board", "boot", "kxyes", "--kernel", "vk", "--initrd", "vi", "--cmdline", "console=ttyS0")
    print(f"with --allow-kexec: exit {r.returncode}: {(r.stdout + r.stderr).strip()}")
    check("refused" not in r.stderr, f"an agent with --allow-kexec refused: {r.stderr}")
    check(r.returncode == 0 or "could not boot" in r.stderr, f"board boot with --allow-kexec: {r.returncode} {r.stderr}")
    boot = wait_for(lambda: (lambda x: x if x and x["state"] == "failed" else None)(
        f.api("GET", f"/v1/boards/{yes['id']}")[1]["boot"]), 60, "the failed kexec reported")
    check("kexec_file_load" in boot["error"] and os.strerror(errno.ENOSYS) in boot["error"],
          f"the reason is kexec_file_load's ENOSYS: {boot}")
    check("kexec_file_load failed" in pyes.text() and pyes.p.poll() is None, "the agent says so and runs on")


def main():
    return run_cases(globals(), "sky-gprom", Fleet,
                     skip=lambda: kexec_file_load_missing() if sys.argv[1:] == ["kexec"] else None)


if __name__ == "__main__":
    sys.exit(main())
