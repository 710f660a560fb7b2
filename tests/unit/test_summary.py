#!/usr/bin/env python3
"""Self-test of deploy/test.sh's summary (deploy/test_summary.py) over
synthetic meson JSON logs, and of tests/cmocka_tap.py over stand-in cmocka
output: skips are counted, named with their reason, failures under CI=true;
nothing is called passed that did not pass.

usage: test_summary.py CASE   (meson runs each case as unit test summary_CASE)
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SUMMARY = os.path.join(HERE, "..", "..", "deploy", "test_summary.py")
TAP = os.path.join(HERE, "..", "cmocka_tap.py")


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


def rec(name, result, stdout="", stderr=None):
    t = {"name": f"skyroot:unit / {name}", "result": result, "stdout": stdout, "returncode": 0}
    if stderr:
        t["stderr"] = stderr
    return t


def write_log(tmp, name, records):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return path


def summary(paths, ci=False, stdin=None):
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    r = subprocess.run([sys.executable, SUMMARY] + paths, capture_output=True, text=True,
                       env=env, input=stdin, timeout=30)
    lines = r.stdout.splitlines()
    check(lines, f"no output: {r.stderr}")
    return r.returncode, lines[-1], lines[:-1]


# A log like meson's: passes, a failure-free run with every kind of skip.
MIXED = [
    rec("frame", "OK", "1..2\nok 1 - test_a\nok 2 - test_b\n"),
    rec("vmm_qemu_errors", "OK",
        "1..3\nok 1 - test_err_x\n# no KVM here\nok 2 - test_err_kvm # SKIP no KVM here\n"
        "ok 3 - test_err_y\n"),
    rec("packages", "SKIP", "SKIP: needs root (dpkg -i)\n"),
    rec("vmm_libvirt_crash", "SKIP", "1..0 # SKIP libvirtd.py: SKIP: starting a system libvirtd needs root\n"),
    rec("e2e_efi_boot", "SKIP", "", "SKIP: OVMF missing (deploy/deps.sh installs it)\n"),
    rec("parse", "EXPECTEDFAIL"),
]


def case_counts(tmp):
    log = write_log(tmp, "main.json", MIXED)
    rc, last, body = summary([log])
    check(rc == 0, f"only skips and passes: exit {rc}")
    check(last.startswith("3 passed, 0 failed, 4 skipped"), f"counts: {last}")
    check("4 by the tests themselves" in last, f"why in the last line: {last}")
    want = [
        "skipped: skyroot:unit / vmm_qemu_errors / test_err_kvm: no KVM here",
        "skipped: skyroot:unit / packages: SKIP: needs root (dpkg -i)",
        "skipped: skyroot:unit / vmm_libvirt_crash: 1..0 # SKIP libvirtd.py: SKIP: starting a system "
        "libvirtd needs root",
        "skipped: skyroot:unit / e2e_efi_boot: SKIP: OVMF missing (deploy/deps.sh installs it)",
    ]
    for w in want:
        check(w in body, f"missing {w!r} in {body}")


def case_failures(tmp):
    log = write_log(tmp, "main.json", [
        rec("frame", "OK"),
        rec("parse", "FAIL"),
        rec("args", "TIMEOUT"),
        rec("log", "ERROR"),
        rec("csr", "UNEXPECTEDPASS"),
    ])
    rc, last, body = summary([log, os.path.join(tmp, "nonexistent.json")])
    check(rc == 1, f"failures: exit {rc}")
    check(last.startswith("1 passed, 5 failed, 0 skipped"), f"counts: {last}")
    for n in ("parse (FAIL)", "args (TIMEOUT)", "log (ERROR)", "csr (UNEXPECTEDPASS)"):
        check(any(n in b and b.startswith("FAILED:") for b in body), f"{n} not named: {body}")
    check(any("nonexistent.json" in b for b in body), f"missing log not named: {body}")


def case_ci(tmp):
    log = write_log(tmp, "main.json", MIXED)
    rc, last, body = summary([log], ci=True)
    check(rc == 1, f"skips under CI=true: exit {rc}")
    check(last.startswith("3 passed, 4 failed, 0 skipped"), f"counts under CI: {last}")
    check(sum(b.startswith("FAILED:") and "CI=true" in b for b in body) == 4, f"named: {body}")
    check(any("OVMF missing" in b for b in body), f"reason kept under CI: {body}")
    # No skip at all: CI passes.
    clean = write_log(tmp, "clean.json", [rec("frame", "OK", "1..1\nok 1 - test_a\n")])
    rc, last, _ = summary([clean], ci=True)
    check(rc == 0 and last == "1 passed, 0 failed, 0 skipped", f"clean CI run: {rc} {last}")


def case_no_reason(tmp):
    log = write_log(tmp, "main.json", [
        rec("frame", "OK"),
        rec("quiet", "SKIP", "nothing to see\n"),
        rec("cm", "OK", "1..1\nok 1 - test_q # SKIP\n"),
    ])
    rc, last, body = summary([log])
    check(rc == 1, f"a skip without a reason fails: exit {rc}")
    check(last.startswith("2 passed, 2 failed, 0 skipped"), f"counts: {last}")
    check(any("quiet skipped without a reason" in b for b in body), f"named: {body}")


def case_left_out(tmp):
    out = os.path.join(tmp, "left.json")
    listing = ("ninja: no work to do.\nskyroot:e2e / e2e_boards\nskyroot:e2e / e2e_efi_boot\n"
               "skyroot:e2e / e2e_kexec\n")
    r = subprocess.run([sys.executable, SUMMARY, "left-out", "e2e", "SKY_SKIP_E2E=1", out],
                       input=listing, capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, f"left-out: {r.stderr}")
    log = write_log(tmp, "main.json", [rec("frame", "OK"), rec("packages", "SKIP", "SKIP: needs root\n")])
    for ci in (False, True):
        rc, last, body = summary([log, out], ci=ci)
        if ci:
            check(rc == 1 and last == "1 passed, 1 failed, 3 skipped (e2e: SKY_SKIP_E2E=1)",
                  f"left out under CI: {rc} {last}")
        else:
            check(rc == 0 and last == "1 passed, 0 failed, 4 skipped (e2e: SKY_SKIP_E2E=1; "
                  "1 by the tests themselves, named above)", f"left out: {rc} {last}")
        for n in ("e2e_boards", "e2e_efi_boot", "e2e_kexec"):
            check(f"skipped: {n}: e2e: SKY_SKIP_E2E=1" in body, f"{n} not named: {body}")
    # Nothing listed (the suite not defined): it still counts once.
    r = subprocess.run([sys.executable, SUMMARY, "left-out", "e2e", "SKY_SKIP_E2E=1", out],
                       input="", capture_output=True, text=True, timeout=30)
    rc, last, body = summary([out])
    check(rc == 0 and last == "0 passed, 0 failed, 1 skipped (e2e: SKY_SKIP_E2E=1)", f"empty: {last}")


def tap(script, tmp):
    """cmocka_tap.py over a stand-in program (python -c SCRIPT)."""
    return subprocess.run([sys.executable, TAP, sys.executable, "-c", script], capture_output=True,
                          text=True, timeout=30, cwd=tmp)


def case_cmocka_tap(tmp):
    # cmocka 1.1.5's skip() line, a failure, a pass.
    r = tap('import os\n'
            'assert os.environ["CMOCKA_MESSAGE_OUTPUT"] == "TAP"\n'
            'print("1..3\\nok 1 - test_a\\n# backend has no KVM\\nnot ok 2 # SKIP test_b\\n'
            'not ok 3 - test_c\\n# ERROR: boom")\n'
            'raise SystemExit(1)', tmp)
    lines = r.stdout.splitlines()
    check(r.returncode == 1, f"status kept: {r.returncode}")
    check("ok 2 - test_b # SKIP backend has no KVM" in lines, f"skip rewritten: {lines}")
    check("not ok 3 - test_c" in lines and "ok 1 - test_a" in lines, f"others kept: {lines}")
    # A whole-test skip (exit 77, reason on stderr) before any plan.
    r = tap('import sys\nprint("libvirtd.py: SKIP: needs root", file=sys.stderr)\nraise SystemExit(77)', tmp)
    check(r.returncode == 0 and r.stdout.strip() == "1..0 # SKIP libvirtd.py: SKIP: needs root",
          f"exit 77: {r.returncode} {r.stdout!r}")
    check("libvirtd.py: SKIP: needs root" in r.stderr, f"stderr passed through: {r.stderr!r}")
    # Exit 77 after a plan is a failure of the program, not a skip.
    r = tap('print("1..1\\nok 1 - a")\nraise SystemExit(77)', tmp)
    check(r.returncode == 77, f"77 after a plan: {r.returncode}")
    # Killed by a signal: non-zero.
    r = tap('import os, signal\nos.kill(os.getpid(), signal.SIGABRT)', tmp)
    check(r.returncode == 128 + 6, f"signal: {r.returncode}")


def case_cmocka_tap_sigterm(tmp):
    """meson's timeout: SIGTERM to the whole group.  The wrapper outlives
    the command's cleanup (which still reaches the log); a command with
    SIGTERM's default action dies of it (it was not inherited ignored)."""
    import signal
    import time
    cleanup = ('import signal, sys, time\n'
               'def stop(s, f):\n'
               '    time.sleep(0.5)\n'
               '    print("cleaned up after SIGTERM", file=sys.stderr, flush=True)\n'
               '    sys.exit(3)\n'
               'signal.signal(signal.SIGTERM, stop)\n'
               'print("1..1", flush=True)\n'
               'time.sleep(30)\n')
    plain = 'import time\nprint("1..1", flush=True)\ntime.sleep(30)\n'
    for script, want_rc, want_err in ((cleanup, 3, "cleaned up after SIGTERM"), (plain, 128 + 15, "")):
        p = subprocess.Popen([sys.executable, TAP, sys.executable, "-c", script], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True, cwd=tmp)
        check(p.stdout.readline().strip() == "1..1", "the command started")
        os.killpg(p.pid, signal.SIGTERM)
        t0 = time.monotonic()
        try:
            out, err = p.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            raise Fail("the wrapper did not end after SIGTERM")
        check(p.returncode == want_rc, f"exit status after SIGTERM: {p.returncode}, want {want_rc}")
        check(want_err in err, f"the command's cleanup reached the log: {err!r}")
        check(time.monotonic() - t0 < 10, "ended promptly")


def main():
    cases = {k[5:]: v for k, v in globals().items() if k.startswith("case_")}
    if len(sys.argv) != 2 or sys.argv[1] not in cases:
        print(f"usage: {sys.argv[0]} CASE\ncases: {' '.join(sorted(cases))}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="sky-summary-") as tmp:
        try:
            cases[sys.argv[1]](tmp)
        except Fail as e:
            print(f"FAIL {sys.argv[1]}: {e}", file=sys.stderr)
            return 1
    print(f"ok {sys.argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
