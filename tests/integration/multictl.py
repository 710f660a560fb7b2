#!/usr/bin/env python3
"""Boards that know several controllers (issue 14, the board's side):
skyagent --controller A,B on a copy of a fixture board, two skyrootd on
loopback that share the fleet's identity (B's state folder is a plain copy
of A's, taken after the board enrolled and its guest started), and a real
QEMU (TCG) guest booting the vmm tests' kernel (tests/vmm/fetch-guest.sh),
as guests.py runs them.

Usage: multictl.py CASE
  failover     kill -9 of A: the board is online on B within 20 s with the
               same board id and the same certificate (no enrollment on B,
               one in the agent's log), its guest's QEMU keeps running (the
               same process) and B sees the guest running; A started again
               and B killed: the board is back on A within 20 s, the guest
               still the same process.  The agent's log names the lost
               controller, why, and the next one.
  hang         SIGSTOP of A (its connections open, nothing answers): the
               board leaves it when heartbeats go unanswered and is online
               on B, same certificate, within the agent's idle limit.
  pin          a first controller of another fleet (its CA not the pinned
               one) is refused, the log says so, and the board enrolls on
               the second with the same pin.
  unreachable  --controller with a first entry nobody listens on: the board
               enrolls on the second within 20 s, and the log says the first
               failed (connection refused) and which one is next."""
import json
import os
import re
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import (SKY_SLOW, SKY_THREADS, SKYROOTD, Fleet, Proc, agent_args, check, free_port,  # noqa: E402
                      metrics, run_cases, skyctl, wait_for)
from guests import MARK_UP, board_copy, console, guest_artifacts, push, qemu_pids, wait_state  # noqa: E402

FAILOVER_S = 20 * SKY_SLOW


class Twin(Fleet):
    """A second controller on its own ports over STATE, a plain copy of
    fleet F's state folder: the same CA, server identity, admin token and
    boards.  Its log is skyrootd-b.log in F's folder."""

    def __init__(self, f, state):  # not Fleet.__init__: that would make a new fleet
        self.tmp = f.tmp
        self.state = state
        self.agent_port = free_port()
        self.api_port = free_port()
        self.cert_ttl = None
        self.procs = f.procs  # stopped and checked with F's
        self.ctl = None
        self.admin = f.admin
        self.ca_file = f.ca_file
        self.pin = f.pin
        self.sslctx = f.sslctx

    def start(self, extra=(), env=None, wait=True):
        args = [SKYROOTD, "run", "--state", self.state, "--agent-listen", f"127.0.0.1:{self.agent_port}",
                "--api-listen", f"127.0.0.1:{self.api_port}", "--log-level", "debug"]
        if SKY_THREADS:
            args += ["--threads", SKY_THREADS]
        self.ctl = Proc(args + list(extra), os.path.join(self.tmp, "skyrootd-b.log"), env=env)
        self.procs.append(self.ctl)
        if wait:
            wait_for(lambda: self.api("GET", "/healthz", auth=False)[0] == 200, 10, "controller B health")
        return self.ctl


def copy_state(f, dst):
    """A plain copy of fleet F's state folder (the SQLite file with its WAL)
    to DST while its controller runs; frozen (SIGSTOP) for the copy so the
    files are one moment's, as a crash would leave them."""
    os.kill(f.ctl.p.pid, signal.SIGSTOP)
    try:
        shutil.copytree(f.state, dst, symlinks=True)
    finally:
        os.kill(f.ctl.p.pid, signal.SIGCONT)


def ctl_id(c):
    """Controller C's id in the fleet, from its log ("fleet: this controller
    is ..."); None on SQLite, where it is the only one."""
    ids = re.findall(r"fleet: this controller is (\S+)", c.ctl.text())
    return ids[-1] if ids else None


def board_on(c, bid):
    """Board BID as controller C shows it when its session is with C, else
    None.  On PostgreSQL every controller shows a board online wherever its
    session is: the board's "controller" field says which holds it."""
    st, b = c.api("GET", f"/v1/boards/{bid}")
    if st != 200 or b.get("state") != "online":
        return None
    me = ctl_id(c)
    return b if me is None or b.get("controller") == me else None


def restart_a(f):
    """Controller A again on its state folder and ports after a kill -9."""
    f.procs.remove(f.ctl)
    f.start()


def case_failover(f):
    art = guest_artifacts()
    f.start()
    push(f, os.path.join(art, "vmlinuz"), "vk", "kernel")
    push(f, os.path.join(art, "initrd.img"), "vi", "initrd")
    b_port = free_port()  # B's agent port, known before B exists
    root = board_copy(f, "mc1", 41)
    tok = f.token()
    args = agent_args(f, root, token=tok["token"]) + ["--heartbeat-interval", "1000"]
    ci = args.index("--controller")
    args[ci + 1] = f"127.0.0.1:{f.agent_port},127.0.0.1:{b_port}"
    agent = Proc(args, os.path.join(f.tmp, "agent-mc1.log"))
    f.procs.append(agent)
    board = wait_for(lambda: next((b for b in f.boards() if b["name"] == "mc1" and b["state"] == "online"), None),
                     20, "board mc1 online on A")
    bid = board["id"]
    name = f"mcg{os.getpid()}"
    r = skyctl(f, "-o", "json", "guest", "create", "--name", name, "--board", "mc1", "--kernel", "vk",
               "--initrd", "vi", "--cmdline", "console=ttyS0 panic=-1 quiet", "--memory", "256M")
    check(r.returncode == 0, f"guest create: {r.stderr}")
    gid = json.loads(r.stdout)["id"]
    wait_state(f, name, "running")
    wait_for(lambda: MARK_UP in console(f, name), 90, "the guest's marker")
    qemu = qemu_pids(name)
    check(len(qemu) >= 1, f"the guest has a QEMU: {qemu}")

    # B: a plain copy of A's state folder, after the enrollment and the guest.
    b = Twin(f, os.path.join(f.tmp, "state-b"))
    copy_state(f, b.state)
    b.agent_port = b_port
    b.start()
    check(board_on(b, bid) is None, "B has no session with the board yet")
    enrollments_b = metrics(b).get("skyroot_enrollments_total", 0)

    # kill -9 A: online on B within 20 s, the same board and certificate.
    t0 = time.time()
    f.ctl.stop(signal.SIGKILL)
    on_b = wait_for(lambda: board_on(b, bid), FAILOVER_S, "the board online on B", interval=0.2)
    took = time.time() - t0
    print(f"kill -9 of A -> online on B: {took:.1f} s")
    check(on_b["id"] == bid and on_b["name"] == "mc1", f"the same board on B: {on_b}")
    check(on_b["cert_expires_at"] == board["cert_expires_at"],
          f"the same certificate on B: {on_b['cert_expires_at']} vs {board['cert_expires_at']}")
    check(metrics(b).get("skyroot_enrollments_total", 0) == enrollments_b, "no enrollment on B")
    text = agent.text()
    check(text.count("enrolled as board") == 1, f"one enrollment in the agent's log:\n{text[-3000:]}")
    lost = f"controller 127.0.0.1:{f.agent_port} lost"
    check(lost in text and f"next: controller 127.0.0.1:{b_port}" in text,
          f"the log names the lost controller and the next:\n{text[-3000:]}")
    # The guest kept running through the failover: the same QEMU.
    check(sorted(qemu_pids(name)) == sorted(qemu), f"the guest's QEMU is the same: {qemu} vs {qemu_pids(name)}")
    check(f"guest {gid}: stop" not in text and f"guest {gid}: failed" not in text,
          f"nothing stopped the guest on the board:\n{text[-3000:]}")
    g = b.api("GET", f"/v1/guests/{name}")[1]
    check(g.get("state") == "running", f"B shows the guest running: {g}")

    # A again, B killed: back on A.
    restart_a(f)
    t0 = time.time()
    b.ctl.stop(signal.SIGKILL)
    on_a = wait_for(lambda: board_on(f, bid), FAILOVER_S, "the board back online on A", interval=0.2)
    print(f"kill -9 of B -> online on A: {time.time() - t0:.1f} s")
    check(on_a["cert_expires_at"] == board["cert_expires_at"], f"the same certificate on A: {on_a}")
    text = agent.text()
    check(text.count("enrolled as board") == 1, "still one enrollment in the agent's log")
    check(f"controller 127.0.0.1:{b_port} lost" in text, "the log names B as lost")
    check(sorted(qemu_pids(name)) == sorted(qemu), "the guest's QEMU is still the same")
    check(f"guest {gid}: stop" not in text, "still nothing stopped the guest on the board")
    check(f.api("GET", f"/v1/guests/{name}")[1].get("state") == "running", "A shows the guest running")
    check(agent.p.poll() is None, "the agent keeps running")
    check(skyctl(f, "guest", "delete", name).returncode == 0, "guest delete through A")
    wait_for(lambda: not qemu_pids(name), 30, "the guest's QEMU gone after the delete")


def case_hang(f):
    """A controller that hangs (SIGSTOP: its sockets stay open, nothing
    answers) is left when the heartbeats go unanswered: the agent's idle
    limit, 15 s + 3 heartbeat intervals (agent/client.c)."""
    f.start()
    b_port = free_port()
    root = board_copy(f, "mc3", 43)
    tok = f.token()
    args = agent_args(f, root, token=tok["token"]) + ["--heartbeat-interval", "1000"]
    args[args.index("--controller") + 1] = f"127.0.0.1:{f.agent_port},127.0.0.1:{b_port}"
    agent = Proc(args, os.path.join(f.tmp, "agent-mc3.log"))
    f.procs.append(agent)
    board = wait_for(lambda: next((b for b in f.boards() if b["name"] == "mc3" and b["state"] == "online"), None),
                     20, "board mc3 online on A")
    b = Twin(f, os.path.join(f.tmp, "state-b"))
    copy_state(f, b.state)
    b.agent_port = b_port
    b.start()
    t0 = time.time()
    os.kill(f.ctl.p.pid, signal.SIGSTOP)
    try:
        on_b = wait_for(lambda: board_on(b, board["id"]), 15 + 3 + 2 + 10 * SKY_SLOW, "the board online on B",
                        interval=0.5)
    finally:
        os.kill(f.ctl.p.pid, signal.SIGCONT)
    print(f"SIGSTOP of A -> online on B: {time.time() - t0:.1f} s")
    check(on_b["cert_expires_at"] == board["cert_expires_at"], "the same certificate on B")
    text = agent.text()
    check(text.count("enrolled as board") == 1, "one enrollment in the agent's log")
    check(f"controller 127.0.0.1:{f.agent_port} lost" in text and f"next: controller 127.0.0.1:{b_port}" in text,
          f"the log names the hung controller and the next:\n{text[-3000:]}")


def case_pin(f):
    """A controller whose CA does not match the pin (another fleet's) is
    refused and the next one tried with the same pin."""
    f.start()
    other_tmp = os.path.join(f.tmp, "other")
    os.mkdir(other_tmp)
    other = Fleet(other_tmp)
    other.procs = f.procs  # stopped and checked with F's
    other.start()
    check(other.pin != f.pin, "the other fleet has its own CA")
    tok = f.token()
    root = board_copy(f, "mc4", 44)
    args = agent_args(f, root, token=tok["token"]) + ["--heartbeat-interval", "1000"]
    args[args.index("--controller") + 1] = f"127.0.0.1:{other.agent_port},127.0.0.1:{f.agent_port}"
    agent = Proc(args, os.path.join(f.tmp, "agent-mc4.log"))
    f.procs.append(agent)
    wait_for(lambda: any(b["name"] == "mc4" and b["state"] == "online" for b in f.boards()), FAILOVER_S,
             "board mc4 online on the controller the pin names", interval=0.2)
    check(other.boards() == [], "nothing enrolled with the other fleet")
    text = agent.text()
    check(f"controller 127.0.0.1:{other.agent_port} failed: refused: the controller's CA does not match the "
          f"pinned skyroot.ca hash" in text and f"next: controller 127.0.0.1:{f.agent_port}" in text,
          f"the log says the first was refused by the pin, and the next:\n{text[-3000:]}")


def case_unreachable(f):
    f.start()
    dead = free_port()  # nobody listens there
    tok = f.token()
    root = board_copy(f, "mc2", 42)
    args = agent_args(f, root, token=tok["token"]) + ["--heartbeat-interval", "1000"]
    ci = args.index("--controller")
    args[ci + 1] = f"127.0.0.1:{dead},127.0.0.1:{f.agent_port}"
    agent = Proc(args, os.path.join(f.tmp, "agent-mc2.log"))
    f.procs.append(agent)
    t0 = time.time()
    wait_for(lambda: any(b["name"] == "mc2" and b["state"] == "online" for b in f.boards()), FAILOVER_S,
             "board mc2 online on the second controller", interval=0.2)
    print(f"first entry unreachable -> online on the second: {time.time() - t0:.1f} s")
    text = agent.text()
    check(f"controller 127.0.0.1:{dead} failed: cannot connect: connection refused; "
          f"next: controller 127.0.0.1:{f.agent_port}" in text,
          f"the log says the first failed, why and which is next:\n{text[-3000:]}")


def main():
    return run_cases(globals(), "sky-multictl", Fleet)


if __name__ == "__main__":
    sys.exit(main())
