#!/usr/bin/env python3
"""deploy/test.sh's summary over meson's JSON test logs.

usage: deploy/test_summary.py LOG.json...
       deploy/test_summary.py left-out SUITE REASON OUT.json < NAMES

The first form reads every LOG.json (one JSON object per line, as meson
test --logbase writes them) and prints:
  - "skipped: NAME: REASON" for every skipped test and every skipped TAP
    subtest ("NAME / CASE"), REASON being the line the test printed that
    says SKIP ("SKIP: ...", "1..0 # SKIP ...", or a subtest's "# SKIP ...");
  - "FAILED: NAME (RESULT) in LOG" for every failure;
  - last, one line "N passed, N failed, N skipped (WHY)", WHY naming the
    suites left out and how many tests skipped themselves.
Exit status 1 when anything failed, else 0.

What counts:
  - a test meson calls OK or EXPECTEDFAIL passes; each "ok N - CASE # SKIP"
    line in a passing TAP test's output (cmocka's skip(), through
    tests/cmocka_tap.py) adds one skipped subtest;
  - a test meson calls SKIP (exit 77, or TAP "1..0 # SKIP") skips once, or
    once per skipped subtest when it printed them;
  - a skip that printed no reason line fails ("a skip says why");
  - everything else (FAIL, ERROR, TIMEOUT, UNEXPECTEDPASS...) fails, and so
    does a missing log (its suite did not run);
  - CI=true (or 1) in the environment: every skip by a test fails.  Tests skip
    only when something they need is missing (root, OVMF, a tool, a build
    option), and CI installs and enables all of it (deploy/deps.sh), so a
    skip there is a test that silently stopped running.
  - records with "left_out" (the second form) are tests of a suite
    deploy/test.sh did not run (e.g. SKY_SKIP_E2E=1): skipped, named, and
    counted under that reason, in CI too: leaving a suite out is the
    runner's own stated choice, not a test that vanished.

The second form writes such records: one per test on standard input
(meson test --list's "project:suite / name" lines; other lines, such as
ninja's, are ignored), or one for the suite when none is listed.
"""
import json
import os
import re
import sys

PASS = ("OK", "EXPECTEDFAIL")
TAP_SKIP = re.compile(r"^ok\s+\d+\s*(?:-\s*)?(.*?)\s*#\s*skip\b:?\s*(.*)$", re.IGNORECASE)
SKIP_WORD = re.compile(r"\bSKIP\b")


def reason_line(t):
    """The first line of a skipped test's output that says SKIP."""
    for stream in ("stdout", "stderr"):
        for line in (t.get(stream) or "").splitlines():
            if SKIP_WORD.search(line):
                return line.strip()
    return None


def tap_skips(t):
    """(case, reason) for every skipped TAP subtest in a test's output."""
    out = []
    for line in (t.get("stdout") or "").splitlines():
        m = TAP_SKIP.match(line.strip())
        if m:
            out.append((m.group(1) or "?", m.group(2).strip() or None))
    return out


def summarize(paths, ci):
    """-> (lines to print, exit status)."""
    passed = failed = 0
    lines = []
    skips = []      # (name, reason) skipped by the tests themselves
    left_out = {}   # reason -> [names]
    for path in paths:
        try:
            records = [json.loads(x) for x in open(path).read().splitlines() if x.strip()]
        except OSError as e:
            failed += 1
            lines.append(f"FAILED: missing test log {path} ({e.strerror}): its suite did not run")
            continue
        except ValueError as e:
            failed += 1
            lines.append(f"FAILED: unreadable test log {path}: {e}")
            continue
        for t in records:
            name = t.get("name", "?")
            r = t.get("result")
            if t.get("left_out"):
                left_out.setdefault(t["left_out"], []).append(name)
            elif r in PASS:
                passed += 1
                skips += [(f"{name} / {case}", why) for case, why in tap_skips(t)]
            elif r == "SKIP":
                subs = tap_skips(t)
                if subs:
                    skips += [(f"{name} / {case}", why) for case, why in subs]
                else:
                    skips.append((name, reason_line(t)))
            else:
                failed += 1
                lines.append(f"FAILED: {name} ({r}) in {path}")
    skipped = 0
    for name, why in skips:
        if why is None:
            failed += 1
            lines.append(f"FAILED: {name} skipped without a reason line (print 'SKIP: why')")
        elif ci:
            failed += 1
            lines.append(f"FAILED: {name} skipped under CI=true (CI must run it): {why}")
        else:
            skipped += 1
            lines.append(f"skipped: {name}: {why}")
    for why, names in left_out.items():
        for name in names:
            lines.append(f"skipped: {name}: {why}")
        skipped += len(names)
    line = f"{passed} passed, {failed} failed, {skipped} skipped"
    whys = list(left_out)
    own = skipped - sum(len(n) for n in left_out.values())
    if own:
        whys.append(f"{own} by the tests themselves, named above")
    if whys:
        line += f" ({'; '.join(whys)})"
    lines.append(line)
    return lines, 1 if failed else 0


def write_left_out(suite, reason, out, names):
    names = [n.split(" / ", 1)[1].strip() for n in names if " / " in n]
    if not names:  # none listed: the suite still counts, once
        names = [f"{suite} (suite)"]
    with open(out, "w") as f:
        for n in names:
            f.write(json.dumps({"name": n, "result": "SKIP", "left_out": f"{suite}: {reason}",
                                "stdout": f"SKIP: suite {suite} left out ({reason})"}) + "\n")


def in_ci():
    return os.environ.get("CI", "").lower() in ("true", "1")


def main(argv):
    if argv[:1] == ["left-out"]:
        if len(argv) != 4:
            print(__doc__, file=sys.stderr)
            return 2
        write_left_out(argv[1], argv[2], argv[3], sys.stdin.read().splitlines())
        return 0
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    lines, rc = summarize(argv, in_ci())
    print("\n".join(lines))
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
