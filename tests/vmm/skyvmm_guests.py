#!/usr/bin/env python3
"""Stand-in guests for the skyvmm backend's tests on this machine's /dev/kvm.

usage: tests/vmm/skyvmm_guests.py COMMAND [ARGS...]

Writes the stand-in kernels of tests/skyvmm/fakekernel.py (a bzImage header
before a few bytes of 64-bit code: a console line, then power-off, reset,
a halt that ignores the power button, an echo, a console flood, or a
header skyvmm refuses) into a fresh directory, checks that skyvmm runs the
simplest of them here, and runs COMMAND with SKY_VMM_GUEST_DIR pointing
at them (the directory goes afterwards).  Exit 77 with "SKIP: reason" when
$SKYVMM is not set or this host's /dev/kvm cannot run skyvmm: only KVM's
refusal (skyvmm's status 1) or a payload that never finishes means that;
anything else is for the cases to judge.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "skyvmm"))
from fakekernel import image  # noqa: E402
from host import usable  # noqa: E402

SKIP = 77
FLOOD = 200000  # console bytes before the flood guest's marker

GUESTS = {
    "up.bin": lambda: image("SKYVMM-BACKEND-UP", "poweroff"),
    "reset.bin": lambda: image("SKYVMM-BACKEND-RESET", "reset"),
    "spin.bin": lambda: image("SKYVMM-BACKEND-SPIN", "spin"),
    "echo.bin": lambda: image("SKYVMM-BACKEND-ECHO", "echo"),
    "flood.bin": lambda: image("SKYVMM-BACKEND-FLOOD", "poweroff", flood=FLOOD),
    "proto.bin": lambda: image("never", "poweroff", bad="PROTO"),
    "magic.bin": lambda: image("never", "poweroff", bad="MAGIC"),
}


def skip(why):
    print(f"SKIP: {why}", file=sys.stderr)
    sys.exit(SKIP)


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    why = usable()
    if why:
        skip(why)
    d = tempfile.mkdtemp(prefix="skyvmm-guests-")
    try:
        for name, make in GUESTS.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(make())
        env = dict(os.environ, SKY_VMM_GUEST_DIR=d, SKY_SV_FLOOD=str(FLOOD))
        p = subprocess.Popen(sys.argv[1:], env=env)
        # meson's timeout signals the whole group: let the child end first
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, frame: None)
        while True:
            try:
                return p.wait()
            except InterruptedError:
                continue
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
