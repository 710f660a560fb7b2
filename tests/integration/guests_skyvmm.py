#!/usr/bin/env python3
"""Guests under the skyvmm backend through the controller, on the host:
skyrootd, skyagent on a copy of a fixture board whose /dev/kvm is this
machine's (a symlink in the copy's dev/), skyvmm ($SKYVMM) running the
stand-in kernels of tests/skyvmm/fakekernel.py on the real KVM.

Usage: guests_skyvmm.py CASE      (exit 77 with the reason where this
                                   host's /dev/kvm cannot run skyvmm)
  backend  guest create --backend skyvmm: running, its line on skyctl's
           console; a guest that powers itself off ends stopped with
           "guest-shutdown"; one that ignores the power button is stopped
           (killed after the agent's stop timeout); a kernel skyvmm refuses
           fails with skyvmm's words in the guest's error; delete
  default  an agent that has no QEMU (none in PATH, no --qemu) runs a
           guest that names no backend under skyvmm; one with QEMU would
           pick qemu (the guest's backend stays "" in the API: the board's
           default)
  seccomp  a skyvmm killed by its seccomp filter (a wrapper that runs
           skyvmm --seccomp-selftest in its place: the filter, then a
           forbidden call) shows as the guest failed with "skyvmm killed by
           seccomp (signal 31, SIGSYS)"; the agent runs on
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "skyvmm"))
from fakekernel import image  # noqa: E402
from host import usable  # noqa: E402
from fleetlib import Fail, Fleet, Proc, agent_args, check, run_cases, skyctl, wait_for  # noqa: E402
from guests import board_copy, console, guest, push  # noqa: E402

SKYVMM = os.environ.get("SKYVMM", "")


def start_agent(f, name, uuid_tail, extra=(), env=None):
    """An agent on a board copy whose dev/kvm is this machine's /dev/kvm."""
    root = board_copy(f, name, uuid_tail)
    kvm = os.path.join(root, "dev", "kvm")
    os.unlink(kvm)
    os.symlink("/dev/kvm", kvm)
    tok = f.token()
    args = agent_args(f, root, token=tok["token"]) + ["--heartbeat-interval", "1000", "--skyvmm", SKYVMM]
    p = Proc(args + list(extra), os.path.join(f.tmp, f"agent-{name}.log"), env=env)
    f.procs.append(p)
    wait_for(lambda: next((b for b in f.boards() if b["name"] == name and b["state"] == "online"), None),
             20, f"board {name} online")
    return p


def push_kernel(f, name, data):
    path = os.path.join(f.tmp, name)
    with open(path, "wb") as out:
        out.write(data)
    push(f, path, name, "kernel")


def create(f, name, board, kernel, *extra):
    r = skyctl(f, "-o", "json", "guest", "create", "--name", name, "--board", board, "--kernel", kernel,
               "--memory", "64M", *extra)
    check(r.returncode == 0, f"guest create {name}: {r.stderr}")
    return json.loads(r.stdout)


def wait_guest(f, name, pred, what, timeout=60):
    return wait_for(lambda: (lambda g: g if pred(g) else None)(guest(f, name)), timeout, what, interval=0.3)


def skyvmm_children(p):
    out = subprocess.run(["ps", "-o", "comm=", "--ppid", str(p.p.pid)], capture_output=True, text=True).stdout
    return [c for c in out.split() if c.startswith("skyvmm")]


def case_backend(f):
    f.start()
    push_kernel(f, "sv-off", image("SKYVMM-INTEGRATION-OFF", "poweroff"))
    push_kernel(f, "sv-spin", image("SKYVMM-INTEGRATION-SPIN", "spin"))
    push_kernel(f, "sv-proto", image("never", "poweroff", bad="PROTO"))
    p = start_agent(f, "sv1", 41)

    # powers itself off: stopped, with skyvmm's reason
    g = create(f, "off1", "sv1", "sv-off", "--backend", "skyvmm")
    check(g["backend"] == "skyvmm", f"the guest's backend: {g}")
    wait_for(lambda: "SKYVMM-INTEGRATION-OFF" in console(f, "off1"), 60, "off1's line in skyctl guest console")
    g = wait_guest(f, "off1", lambda g: g["state"] == "stopped", "off1 stopped after its power-off")
    check("guest-shutdown" in g["error"], f"off1's reason: {g}")
    show = skyctl(f, "guest", "show", "off1")
    check("skyvmm" in show.stdout, f"guest show says skyvmm: {show.stdout}")

    # ignores the power button: running until the agent's stop timeout kills it
    create(f, "spin1", "sv1", "sv-spin", "--backend", "skyvmm")
    wait_guest(f, "spin1", lambda g: g["state"] == "running", "spin1 running")
    wait_for(lambda: "SKYVMM-INTEGRATION-SPIN" in console(f, "spin1"), 60, "spin1's line in skyctl guest console")
    check(len(skyvmm_children(p)) == 1, f"one skyvmm under the agent: {skyvmm_children(p)}")
    check(skyctl(f, "guest", "stop", "spin1").returncode == 0, "guest stop spin1")
    g = wait_guest(f, "spin1", lambda g: g["state"] == "stopped", "spin1 stopped (killed after the timeout)", 90)
    check("stop timeout" in g["error"], f"spin1's reason: {g}")
    wait_for(lambda: not skyvmm_children(p), 10, "spin1's skyvmm gone")

    # a kernel skyvmm refuses: failed, in skyvmm's words
    create(f, "proto1", "sv1", "sv-proto", "--backend", "skyvmm")
    g = wait_guest(f, "proto1", lambda g: g["state"] == "failed", "proto1 failed")
    check("skyvmm exited with status 2" in g["error"] and "boot protocol 2.06" in g["error"],
          f"proto1's error: {g['error']}")

    for name in ("off1", "spin1", "proto1"):
        check(skyctl(f, "guest", "delete", name).returncode == 0, f"guest delete {name}")
    check(p.p.poll() is None, "the agent keeps running")
    check(f.ctl.p.poll() is None, "the controller keeps running")


def case_default(f):
    f.start()
    push_kernel(f, "sv-off", image("SKYVMM-INTEGRATION-DEFAULT", "poweroff"))
    # no QEMU anywhere in this agent's PATH, no --qemu: the flash profile
    empty = os.path.join(f.tmp, "no-qemu-bin")
    os.makedirs(empty)
    p = start_agent(f, "svdef", 42, env=dict(os.environ, PATH=empty))
    wait_for(lambda: "guests that name no VMM backend run under skyvmm" in p.text(), 10,
             "the agent's default backend is skyvmm")
    g = create(f, "def1", "svdef", "sv-off")
    check(g["backend"] == "", f"no backend asked: the board's default (\"\"): {g}")
    wait_for(lambda: "SKYVMM-INTEGRATION-DEFAULT" in console(f, "def1"), 60, "def1's line under skyvmm")
    g = wait_guest(f, "def1", lambda g: g["state"] == "stopped", "def1 stopped after its power-off")
    check("guest-shutdown" in g["error"], f"def1's reason: {g}")
    show = skyctl(f, "guest", "show", "def1")
    check("default" in show.stdout, f"guest show's backend: {show.stdout}")
    check(skyctl(f, "guest", "delete", "def1").returncode == 0, "guest delete def1")


def case_seccomp(f):
    f.start()
    push_kernel(f, "sv-off", image("never printed", "poweroff"))
    wrapper = os.path.join(f.tmp, "skyvmm-selftest")
    with open(wrapper, "w") as out:
        out.write(f"#!/bin/sh\nexec {SKYVMM} --seccomp-selftest\n")
    os.chmod(wrapper, 0o755)
    root = board_copy(f, "svsc", 43)
    kvm = os.path.join(root, "dev", "kvm")
    os.unlink(kvm)
    os.symlink("/dev/kvm", kvm)
    tok = f.token()
    p = Proc(agent_args(f, root, token=tok["token"]) + ["--heartbeat-interval", "1000", "--skyvmm", wrapper],
             os.path.join(f.tmp, "agent-svsc.log"))
    f.procs.append(p)
    wait_for(lambda: next((b for b in f.boards() if b["name"] == "svsc" and b["state"] == "online"), None),
             20, "board svsc online")
    create(f, "sc1", "svsc", "sv-off", "--backend", "skyvmm")
    g = wait_guest(f, "sc1", lambda g: g["state"] in ("failed", "stopped"), "sc1 ended")
    check(g["state"] == "failed", f"a skyvmm killed by seccomp: the guest failed, not stopped ({g})")
    check("skyvmm killed by seccomp (signal 31, SIGSYS)" in g["error"], f"sc1's reason: {g['error']}")
    check(skyctl(f, "guest", "delete", "sc1").returncode == 0, "guest delete sc1")
    check(p.p.poll() is None, "the agent keeps running")


def main():
    return run_cases(globals(), "sky-guests-sv", Fleet, skip=usable)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Fail as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
