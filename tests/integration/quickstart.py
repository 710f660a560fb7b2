#!/usr/bin/env python3
"""deploy/quickstart.sh as README.md tells a user to run it, in a tree of its
own: a temporary ROOT holding the real script (copied at run time, so that
its var/ is not the developer's), symlinks to deploy/deps.sh, the package
lists, tests/ and the build folder under test (from $SKYROOTD).

Usage: quickstart.py CASE
  agents  --agents-only: three agents with the fixture identities online
          under skyrootd; a second run reuses the state (same boards) even
          on other ports; --stop stops every process it started (by pid:
          none left, no pidfile left); --help and a bad option.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import ROOT, SKYAGENT, SKYCTL, SKYROOTD, check, free_port, pids_naming, run_cases  # noqa: E402


class Quickstart:
    """A tree the quickstart runs in, and what it started."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.root = os.path.join(tmp, "root")
        build = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(SKYROOTD))))
        check(os.path.exists(os.path.join(build, "build.ninja")), f"a meson build folder above {SKYROOTD}")
        for b in (SKYAGENT, SKYCTL):
            check(os.path.abspath(b).startswith(build + os.sep), f"{b} is in the build folder {build}")
        os.makedirs(os.path.join(self.root, "deploy"))
        shutil.copy2(os.path.join(ROOT, "deploy", "quickstart.sh"), os.path.join(self.root, "deploy"))
        for rel in ("deploy/deps.sh", "deploy/packages", "tests"):
            os.symlink(os.path.join(ROOT, rel), os.path.join(self.root, rel))
        os.symlink(build, os.path.join(self.root, "build"))
        self.run_dir = os.path.join(self.root, "var", "quickstart-run")
        self.conf = os.path.join(self.root, "var", "quickstart", "skyctl.conf")
        self.seen = {}  # pid -> what, of every process the quickstart said it started

    def script(self, *args, ports=None, timeout=180):
        env = dict(os.environ)
        if ports:
            env["SKY_AGENT_PORT"], env["SKY_API_PORT"] = str(ports[0]), str(ports[1])
        t0 = time.time()
        r = subprocess.run(["sh", os.path.join(self.root, "deploy", "quickstart.sh"), *args], env=env,
                           capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        print(f"quickstart.sh {' '.join(args)}: exit {r.returncode} in {time.time() - t0:.1f} s")
        with open(os.path.join(self.tmp, "quickstart.log"), "a") as out:
            out.write(f"==== quickstart.sh {' '.join(args)}: exit {r.returncode}\n{r.stdout}\n{r.stderr}\n")
        return r

    def pids(self):
        """What the pidfiles name: {pid: file}."""
        out = {}
        if os.path.isdir(self.run_dir):
            for fn in os.listdir(self.run_dir):
                if fn.endswith(".pid"):
                    with open(os.path.join(self.run_dir, fn)) as f:
                        out[int(f.read().strip())] = fn
        self.seen.update(out)
        return out

    def ctl(self, *args):
        return subprocess.run([SKYCTL, "--config", self.conf, *args], capture_output=True, text=True, timeout=30)

    def leftovers(self):
        """Processes still alive that the quickstart started, or that name
        its tree on their command line."""
        left = [pid for pid in self.seen if alive(pid)]
        return left + [pid for pid in pids_naming(self.root.encode()) if pid not in left]

    def close(self):
        problems = []
        if self.leftovers():
            self.script("--stop")
        for pid in self.leftovers():
            problems.append(f"process {pid} still running")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for fn in os.listdir(self.run_dir) if os.path.isdir(self.run_dir) else []:
            if fn.endswith(".log"):
                text = open(os.path.join(self.run_dir, fn), errors="replace").read()
                for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                    if marker in text:
                        problems.append(f"{fn}: {marker}")
        return problems

    def dump_failure(self, tmp):
        self.close()
        logs = [os.path.join(tmp, "quickstart.log")]
        if os.path.isdir(self.run_dir):
            logs += [os.path.join(self.run_dir, fn) for fn in sorted(os.listdir(self.run_dir)) if fn.endswith(".log")]
        for path in logs:
            if os.path.exists(path):
                print(f"---- {os.path.basename(path)}", file=sys.stderr)
                print(open(path, errors="replace").read()[-4000:], file=sys.stderr)


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def exe(pid):
    try:
        return os.path.realpath(f"/proc/{pid}/exe")
    except OSError:
        return None


def online_boards(q):
    r = q.ctl("-o", "json", "board", "list")
    check(r.returncode == 0, f"skyctl board list: {r.stderr}")
    return {b["name"]: b["id"] for b in json.loads(r.stdout)["boards"] if b["state"] == "online"}


def check_running(q):
    pids = q.pids()
    check(sorted(pids.values()) == ["agent-a.pid", "agent-b.pid", "agent-c.pid", "skyrootd.pid"],
          f"pidfiles: {pids}")
    for pid, fn in pids.items():
        want = SKYROOTD if fn == "skyrootd.pid" else SKYAGENT
        check(alive(pid) and exe(pid) == os.path.realpath(want), f"{fn}: pid {pid} runs {exe(pid)}, not {want}")
    boards = online_boards(q)
    check(sorted(boards) == ["board-a", "board-b", "board-c"], f"three fixture boards online: {boards}")
    return boards


def case_agents(q):
    ports = (free_port(), free_port())
    r = q.script("--agents-only", ports=ports)
    check(r.returncode == 0, f"quickstart.sh --agents-only exit {r.returncode}: {r.stderr[-2000:]}")
    check("all three online" in r.stdout, f"it says the boards are online: {r.stdout[-1500:]}")
    first = check_running(q)
    check(f"127.0.0.1:{ports[1]}" in open(q.conf).read(), "skyctl.conf names the API port")

    # Again, while it runs, on other ports: it stops what it started, reuses
    # the state (the agents keep their identities: the same three boards).
    old = set(q.pids())
    ports = (free_port(), free_port())
    r = q.script("--agents-only", ports=ports)
    check(r.returncode == 0, f"a second quickstart.sh --agents-only on other ports: exit {r.returncode}: "
                             f"{r.stdout[-800:]} {r.stderr[-1500:]}")
    check("reusing the controller state" in r.stdout, "the second run reuses the state")
    check(not [p for p in old if alive(p)], f"the first run's processes stopped: {[p for p in old if alive(p)]}")
    again = check_running(q)
    check(again == first, f"the same boards, no new ones: {first} -> {again}")
    r = subprocess.run([SKYCTL, "--config", q.conf, "-o", "json", "board", "list"], capture_output=True, text=True)
    check(len(json.loads(r.stdout)["boards"]) == 3, f"three boards in the state: {r.stdout}")

    # --stop: every process it started is gone, by pid.
    running = set(q.pids())
    r = q.script("--stop")
    check(r.returncode == 0 and "stopped" in r.stdout, f"quickstart.sh --stop: {r.returncode} {r.stderr}")
    left = [p for p in running if alive(p)]
    check(not left, f"--stop left {left} running")
    check(not q.leftovers(), f"processes of the quickstart's tree left: {q.leftovers()}")
    check(not [fn for fn in os.listdir(q.run_dir) if fn.endswith(".pid")], "no pidfile left")
    check(os.path.exists(q.conf), "--stop keeps the state")
    r = q.script("--stop")
    check(r.returncode == 0, f"a second --stop is harmless: {r.returncode} {r.stderr}")

    r = q.script("--help")
    check(r.returncode == 0 and "--agents-only" in r.stdout and "--stop" in r.stdout, f"--help: {r.stdout}")
    r = q.script("--no-such-option")
    check(r.returncode == 2 and "usage" in r.stderr, f"a bad option: {r.returncode} {r.stderr}")
    check(not q.leftovers(), "--help and a bad option start nothing")


def main():
    return run_cases(globals(), "sky-quickstart", Quickstart)


if __name__ == "__main__":
    sys.exit(main())
