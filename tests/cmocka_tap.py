#!/usr/bin/env python3
"""Run a cmocka test program (or a wrapper that ends in one) so that meson
reads its results as TAP: every case a subtest, a case that calls skip()
a skipped subtest instead of an OK test.

usage: tests/cmocka_tap.py COMMAND [ARGS...]

- COMMAND runs with CMOCKA_MESSAGE_OUTPUT=TAP; its standard error passes
  through untouched, its standard output line by line.
- cmocka 1.1.5 reports skip() as "not ok N # SKIP name", which TAP (and
  meson) counts as a failure: it becomes "ok N - name # SKIP reason", the
  reason being the TAP comment ("# ...") the case printed last, if any.
- COMMAND exits 77 (the skip of a whole test, e.g. tests/vmm/libvirtd.py
  without root) before any plan: that becomes "1..0 # SKIP reason", the
  reason being the last line containing "SKIP" that COMMAND printed on
  either stream (meson's TAP protocol would call exit 77 an error).
- Any other exit status is COMMAND's; killed by a signal -> 128 + signal.
- SIGTERM and SIGINT (meson's timeout and ^C reach the whole process
  group): this wrapper outlives COMMAND, so that COMMAND's own cleanup
  (libvirtd.py stopping its daemons) still has somewhere to write.
"""
import os
import re
import signal
import subprocess
import sys
import threading

SKIP = 77
CMOCKA_SKIP = re.compile(r"^not ok (\d+) # SKIP\s*(.*)$")
PLAN = re.compile(r"^1\.\.\d+")


def main():
    cmd = sys.argv[1:]
    if not cmd:
        print(__doc__, file=sys.stderr)
        return 2
    # A handler, not SIG_IGN: COMMAND must not inherit the signal ignored.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: None)
    env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT="TAP")
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, errors="replace")
    skip_line = [None]

    def copy_stderr():
        for line in p.stderr:
            if "SKIP" in line:
                skip_line[0] = line.strip()
            sys.stderr.write(line)
            sys.stderr.flush()

    t = threading.Thread(target=copy_stderr)
    t.start()
    planned = False
    comment = None
    for line in p.stdout:
        text = line.rstrip("\n")
        m = CMOCKA_SKIP.match(text)
        if m:
            why = comment or "skip() without a reason printed"
            text = f"ok {m.group(1)} - {m.group(2)} # SKIP {why}"
        elif text.startswith("#"):
            comment = text.lstrip("# ").strip() or comment
        elif text.startswith(("ok ", "not ok ")):
            comment = None
        if PLAN.match(text):
            planned = True
        if "SKIP" in text:
            skip_line[0] = text.strip()
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    rc = p.wait()
    t.join()
    if rc == SKIP and not planned:
        why = skip_line[0] or "exit status 77 without a reason printed"
        print(f"1..0 # SKIP {why}")
        return 0
    if rc < 0:
        return 128 - rc
    return rc


if __name__ == "__main__":
    sys.exit(main())
