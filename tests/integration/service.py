#!/usr/bin/env python3
"""skyrootd and skyagent as system services: what they tell systemd through
NOTIFY_SOCKET (a unix datagram socket this test binds, as systemd does),
and the units of deploy/systemd.

Usage: service.py CASE (binaries as in fleet.py).  The notify cases need a
build with libsystemd ($SKY_HAVE_SYSTEMD=1, set by tests/meson.build); the
unit cases need systemd-analyze.
"""
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import ROOT, SKYAGENT, SKYROOTD, Fail, Fleet, check, run_cases, wait_for  # noqa: E402

UNITS = os.path.join(ROOT, "deploy", "systemd")
# The status timer of controller/skyrootd/notify.h (CTL_NOTIFY_STATUS_MS).
STATUS_MS = 1000


class NotifySocket:
    """The service manager's end: every datagram with the time it came."""

    def __init__(self, tmp, name):
        self.path = os.path.join(tmp, name)
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.bind(self.path)
        self.got = []

    def env(self):
        return dict(os.environ, NOTIFY_SOCKET=self.path)

    def wait(self, pred, timeout, what):
        """The first datagram from now on whose fields match pred."""
        end = time.time() + timeout
        while True:
            left = end - time.time()
            check(left > 0, f"timed out after {timeout}s waiting for {what}; got {self.got}")
            self.s.settimeout(left)
            try:
                raw = self.s.recv(4096)
            except socket.timeout:
                continue
            fields = dict(l.split("=", 1) for l in raw.decode().splitlines() if "=" in l)
            self.got.append((time.time(), fields))
            if pred(fields):
                return fields

    def close(self):
        self.s.close()


def notify_skip():
    if os.environ.get("SKY_HAVE_SYSTEMD", "1") != "1":
        return "built without libsystemd (-Dsystemd=disabled): nothing is sent"
    return None


def port_answers(port):
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        return True


def case_notify_controller(f):
    n = NotifySocket(f.tmp, "ctl.sock")
    try:
        ctl = f.start(env=n.env(), wait=False)
        first = n.wait(lambda m: True, 15, "the controller's first notification")
        # Connect at once: READY=1 means both ports already listen.
        check(first.get("READY") == "1", f"the first notification is READY=1: {first}")
        for port, what in ((f.agent_port, "agent"), (f.api_port, "API")):
            try:
                port_answers(port)
            except OSError as e:
                raise Fail(f"READY=1 came before the {what} port {port} listened: {e}")
        check(first.get("STATUS", "").startswith("0 boards online"), f"status at start: {first}")

        tok = f.token(uses=3)
        f.agent("a", token=tok["token"])
        n.wait(lambda m: m.get("STATUS", "").startswith("1 board online"), 15, "STATUS: 1 board online")
        f.agent("b", token=tok["token"])
        f.agent("c", token=tok["token"])
        n.wait(lambda m: m.get("STATUS", "").startswith("3 boards online"), 15, "STATUS: 3 boards online")
        # Only changes are told, and at most once a timer period.
        status = [(t, m["STATUS"]) for t, m in n.got if "STATUS" in m and "READY" not in m]
        for (t0, s0), (t1, s1) in zip(status, status[1:]):
            check(s0 != s1, f"the same status twice: {status}")
            check(t1 - t0 >= STATUS_MS / 1000 * 0.8, f"two statuses {t1 - t0:.2f}s apart: {status}")

        ctl.p.send_signal(signal.SIGTERM)
        n.wait(lambda m: m.get("STOPPING") == "1", 10, "STOPPING=1 after SIGTERM")
        check(ctl.p.wait(15) == 0, "skyrootd exits 0 after SIGTERM")
    finally:
        n.close()


def case_notify_agent(f):
    n = NotifySocket(f.tmp, "agent.sock")
    try:
        f.start()
        tok = f.token()
        a = f.agent("a", token=tok["token"], env=n.env())
        first = n.wait(lambda m: True, 15, "the agent's first notification")
        check(first.get("READY") == "1" and "connecting" in first.get("STATUS", ""), f"first: {first}")
        up = n.wait(lambda m: m.get("STATUS", "").startswith("online as board "), 15, "STATUS: online")
        # the agent says so when its session is up; the API shows it
        # online once the controller has taken its first report
        bid = wait_for(lambda: list(f.online()), 15, "the board online in the API")[0]
        check(bid in up["STATUS"], f"the status names board {bid}: {up}")
        f.ctl.stop()
        n.wait(lambda m: m.get("STATUS", "").startswith("offline"), 15, "STATUS: offline")
        a.p.send_signal(signal.SIGTERM)
        n.wait(lambda m: m.get("STOPPING") == "1", 10, "STOPPING=1 after SIGTERM")
        check(a.p.wait(15) == 0, "skyagent exits 0 after SIGTERM")
    finally:
        n.close()


# ---- the units ----

def units_skip():
    if not shutil.which("systemd-analyze"):
        return "no systemd-analyze (apt-get install systemd)"
    return None


class Tmp:
    """What run_cases needs of a case's object when there is no fleet."""

    def __init__(self, tmp):
        self.tmp = tmp

    def close(self):
        return []

    def dump_failure(self, tmp):
        pass


def unit_copy(tmp, name):
    """The unit with the binaries of this build in place of /usr/bin's
    (verify checks that every command exists and is executable)."""
    text = open(os.path.join(UNITS, name)).read()
    text = text.replace("/usr/bin/skyrootd", SKYROOTD)
    full = os.path.join(os.path.dirname(SKYAGENT), "skyagent-full")
    # Without libvirt there is no skyagent-full: the firmware agent is the
    # same program (agent/main.c) with fewer backends.
    text = text.replace("/usr/bin/skyagent-full", full if os.path.exists(full) else SKYAGENT)
    path = os.path.join(tmp, name)
    with open(path, "w") as out:
        out.write(text)
    return path


def case_units_verify(t):
    for name, threshold in (("skyrootd.service", 20), ("skyagent.service", 40)):
        path = unit_copy(t.tmp, name)
        out = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True)
        check(out.returncode == 0 and not out.stderr.strip(), f"systemd-analyze verify {name}: {out.stderr}")
        # The hardening stays: exposure at most threshold/10 on systemd's 0-10 scale.
        out = subprocess.run(["systemd-analyze", "security", "--offline=true", f"--threshold={threshold}",
                              path], capture_output=True, text=True)
        level = [l for l in out.stdout.splitlines() if "Overall exposure level" in l]
        check(out.returncode == 0, f"{name}: exposure above {threshold / 10}: {level or out.stderr}")


def case_units_first_run(t):
    """skyrootd.service's ExecStartPre: init on the first start only, the
    admin token kept out of the journal, SKYROOTD_INIT_ARGS used."""
    unit = open(os.path.join(UNITS, "skyrootd.service")).read()
    pre = [l.split("=", 1)[1] for l in unit.splitlines() if l.startswith("ExecStartPre=")]
    check(len(pre) == 1, f"one ExecStartPre: {pre}")
    state = os.path.join(t.tmp, "lib")
    os.mkdir(state, 0o700)  # StateDirectory= makes it
    cmd = pre[0].replace("%S/skyroot", state).replace("$$", "$").replace("/usr/bin/skyrootd", SKYROOTD)
    env = dict(os.environ, SKYROOTD_INIT_ARGS="--san ctl.example.org")
    out = subprocess.run(shlex.split(cmd), capture_output=True, text=True, env=env)
    check(out.returncode == 0, f"first start: {out.returncode} {out.stderr}")
    conf = open(os.path.join(state, "skyctl.conf")).read()
    token = [l.split("=", 1)[1].strip() for l in conf.splitlines() if l.startswith("token")][0]
    check(token not in out.stdout + out.stderr, "the admin token stays out of the journal")
    check(f"{state}/skyctl.conf" in out.stdout, f"it says where the token is: {out.stdout!r}")
    san = subprocess.run(["openssl", "x509", "-in", os.path.join(state, "server.crt"), "-noout", "-ext",
                          "subjectAltName"], capture_output=True, text=True).stdout
    check("ctl.example.org" in san, f"SKYROOTD_INIT_ARGS reached init: {san}")
    key = open(os.path.join(state, "ca.key"), "rb").read()
    out = subprocess.run(shlex.split(cmd), capture_output=True, text=True, env=env)
    check(out.returncode == 0 and not out.stdout, f"second start does nothing: {out.stdout} {out.stderr}")
    check(open(os.path.join(state, "ca.key"), "rb").read() == key, "the CA is kept")


def main():
    case = sys.argv[1] if len(sys.argv) > 1 else ""
    if case.startswith("units_"):
        return run_cases(globals(), "sky-svc", Tmp, skip=units_skip)
    return run_cases(globals(), "sky-svc", Fleet, skip=notify_skip)


if __name__ == "__main__":
    sys.exit(main())
