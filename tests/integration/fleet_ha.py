#!/usr/bin/env python3
"""Several controllers on one store (issue 14, the controllers' side,
controller/skyrootd/fleet.c): three skyrootd on one private PostgreSQL
(tests/pg/pgserver.py), the 2nd and 3rd on plain copies of the first's
state folder (it carries store.url), real skyagents with --controller
A,B,C lists spread over the three (each list starts at another one).

Usage: fleet_ha.py CASE
  online    every board online through every controller's API, each held
            by exactly one controller (presence), with a last_seen.
  failover  kill -9 of the controller holding the most boards: they are
            online on the others within 20 s with the same board ids, and
            every controller left shows all of them online.
  relay     a guest made through A's API for a board held by B reaches the
            board's agent (it reports the guest back: its state leaves
            'pending'), and a stop through C reaches it too.
  token     a one-use token raced by two boards enrolling at once on two
            controllers: exactly one board enrolls.
  scrub     the scrub runs on one controller at a time; killed, another
            takes it over.
  bus       every controller's bus connection terminated on the server:
            the loss and the recovery logged once each, and A hears B again.
  events    a watch on A sees, in resource version order, every event
            made on B and C at once (tokens made through their APIs).
  retry     API clients that go to A and, on an error they may retry (no
            connection, a cut answer, 503), try B then C: A killed with
            kill -9 while they write (tokens made with an Idempotency-Key)
            and read: they see no other error, every token they were told
            of is there through B and C, and no key made two tokens.
  console   a real QEMU guest (TCG) on a board held by B: its console's
            marker through C (a plain GET) and through A (skyctl guest
            console --follow); then B killed with kill -9, the board held
            by another controller, the guest stopped and started through
            C: the follower on A, still open, gets the second boot's
            marker (the rows' seq goes on growing under the new holder).

Skips (77) when PostgreSQL is not installed.  FLEET_HA_BOARDS sets the
number of boards (default 30)."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "pg"))
import pgserver  # noqa: E402
from fleetlib import (SKY_SLOW, SKY_THREADS, SKYCTL, SKYROOTD, Fail, Fleet, Proc, agent_args,  # noqa: E402
                      board_fixture,
                      check, free_port, run_cases, skyctl, wait_for)

BOARDS = int(os.environ.get("FLEET_HA_BOARDS", "30"))
FAILOVER_S = 20 * SKY_SLOW


class Ctl(Fleet):
    """One controller of the fleet on STATE (a copy of the first's folder),
    its own ports and log."""

    def __init__(self, first, state, name):  # not Fleet.__init__: no new fleet
        self.tmp = first.tmp
        self.state = state
        self.name = name
        self.agent_port = free_port()
        self.api_port = free_port()
        self.cert_ttl = None
        self.procs = first.procs
        self.ctl = None
        self.admin = first.admin
        self.ca_file = first.ca_file
        self.pin = first.pin
        self.sslctx = first.sslctx

    def start(self, extra=(), env=None, wait=True):
        args = [SKYROOTD, "run", "--state", self.state, "--agent-listen", f"127.0.0.1:{self.agent_port}",
                "--api-listen", f"127.0.0.1:{self.api_port}", "--log-level", "debug"]
        if SKY_THREADS:
            args += ["--threads", SKY_THREADS]
        self.ctl = Proc(args + list(extra), os.path.join(self.tmp, f"skyrootd-{self.name}.log"), env=env)
        self.procs.append(self.ctl)
        if wait:
            wait_for(lambda: self.api("GET", "/healthz", auth=False)[0] == 200, 10 * SKY_SLOW,
                     f"controller {self.name} health")
        return self.ctl

    def kill(self):
        os.kill(self.ctl.p.pid, signal.SIGKILL)
        self.ctl.p.wait()


class HA:
    """The PostgreSQL server, the first controller's folder and the three
    controllers; stopped with every process in close()."""

    def __init__(self, tmp):
        self.tmp = tmp
        # a folder of its own: the cluster's owner (not root) must reach it
        self.pg_root = tempfile.mkdtemp(prefix="fleet-ha-pg-")
        self.pg = pgserver.PgServer(self.pg_root)
        self.pg.start()
        try:
            first = Fleet(tmp, init_extra=("--db", self.pg.uri))
        except Exception:
            self.pg.stop()
            shutil.rmtree(self.pg_root, ignore_errors=True)
            raise
        self.first = first
        self.procs = first.procs
        a = Ctl(first, first.state, "a")
        # A on the ports init wrote in skyctl.conf: skyctl talks to A
        a.agent_port, a.api_port = first.agent_port, first.api_port
        self.ctls = [a]
        for n in ("b", "c"):
            st = os.path.join(tmp, f"state-{n}")
            shutil.copytree(first.state, st, symlinks=True)
            self.ctls.append(Ctl(first, st, n))
        self.agents = {}

    def start(self, extra=()):
        for c in self.ctls:
            c.start(extra=extra)

    def agent(self, i, token, first_ctl=None, extra=()):
        """Board i (a copy of fixture board a with its own UUID and name),
        its --controller list starting at controller first_ctl (i % 3)."""
        name = f"ha{i:02d}"
        root = board_fixture(os.path.join(self.tmp, f"board-{name}"), "a",
                             f"7d1c2b3a-0000-4000-8000-{900000 + i:012d}", name)
        k = i % 3 if first_ctl is None else first_ctl
        order = self.ctls[k:] + self.ctls[:k]
        args = agent_args(self.ctls[0], root, token=token)
        args[args.index("--controller") + 1] = ",".join(f"127.0.0.1:{c.agent_port}" for c in order)
        args += ["--heartbeat-interval", "1000"] + list(extra)
        p = Proc(args, os.path.join(self.tmp, f"agent-{name}.log"))
        self.procs.append(p)
        self.agents[name] = p
        return p

    def boards(self, n):
        tok = self.ctls[0].token(uses=n)
        for i in range(n):
            self.agent(i, tok["token"])
        self.all_online(self.ctls, n, 60 * SKY_SLOW)

    def all_online(self, ctls, n, timeout):
        def ok():
            views = [c.online() for c in ctls]
            return views if all(len(v) == n for v in views) else None
        return wait_for(ok, timeout, f"{n} boards online through every controller", interval=0.5)

    def holders(self):
        """board id -> controller id, from the presence rows (psql)."""
        out = self.psql("SELECT board_id, controller FROM board_presence")
        return dict(l.split("|", 1) for l in out.splitlines() if "|" in l)

    def psql(self, q):
        import subprocess
        r = subprocess.run([os.path.join(pgserver.BIN, "psql"), "-At", "-h", self.pg.sock, "-p", str(self.pg.port),
                            "-U", "postgres", "-d", pgserver.DB, "-c", q],
                           capture_output=True, text=True, timeout=30,
                           preexec_fn=_as_pg_owner())
        check(r.returncode == 0, f"psql {q}: {r.stderr}")
        return r.stdout

    def self_ids(self):
        """controller name -> its fleet id, from its log."""
        ids = {}
        for c in self.ctls:
            m = re.search(r"fleet: this controller is (ctl-[A-Za-z0-9.-]+)", c.ctl.text())
            check(m, f"controller {c.name} logs its fleet id")
            ids[c.name] = m.group(1)
        return ids

    def close(self):
        problems = self.first.close()
        self.pg.stop()
        shutil.rmtree(self.pg_root, ignore_errors=True)
        return problems

    def dump_failure(self, tmp):
        self.first.dump_failure(tmp)
        self.close()


def _as_pg_owner():
    """psql over the cluster's socket as its owner (pgserver.py runs it as
    skyroot-test when we are root)."""
    owner = pgserver._owner()
    if not owner:
        return None
    uid, gid = owner
    return lambda: (os.setgroups([]), os.setgid(gid), os.setuid(uid))


def case_online(h):
    h.start()
    h.boards(BOARDS)
    ids = h.self_ids()
    hold = h.holders()
    online = h.ctls[0].online()
    check(set(hold) == set(online), f"a presence row per online board: {len(hold)} rows, {len(online)} online")
    check(set(hold.values()) <= set(ids.values()), f"held by the three controllers only: {set(hold.values())}")
    per = {n: sum(1 for v in hold.values() if v == i) for n, i in ids.items()}
    check(all(v > 0 for v in per.values()), f"boards spread over the three controllers: {per}")
    for c in h.ctls:
        for bid, b in c.online().items():
            check(b.get("last_seen_at"), f"board {bid} on {c.name} has a last_seen_at: {b.get('last_seen_at')}")
            check(b.get("controller") == hold[bid],
                  f"board {bid} on {c.name} names its holder {hold[bid]}: {b.get('controller')}")
    print(f"boards per controller: {per}")


def case_failover(h):
    h.start()
    h.boards(BOARDS)
    ids = h.self_ids()
    before = set(h.ctls[0].online())
    hold = h.holders()
    per = {n: sum(1 for v in hold.values() if v == i) for n, i in ids.items()}
    victim = max(h.ctls, key=lambda c: per[c.name])
    moved = {b for b, v in hold.items() if v == ids[victim.name]}
    check(moved, f"controller {victim.name} holds boards: {per}")
    t0 = time.monotonic()
    victim.kill()
    left = [c for c in h.ctls if c is not victim]

    def all_moved():
        now = h.holders()
        return all(now.get(b) in (ids[c.name] for c in left) for b in moved)
    wait_for(all_moved, FAILOVER_S, f"the {len(moved)} boards of {victim.name} held by the others")
    views = h.all_online(left, BOARDS, FAILOVER_S)
    took = time.monotonic() - t0
    for v in views:
        check(set(v) == before, "the same board ids online after the failover")
    print(f"{len(moved)} boards of {victim.name} online on the others {took:.1f} s after its kill -9")


def holder_of(h, ids, bid):
    who = h.holders().get(bid)
    return next((c for c in h.ctls if ids[c.name] == who), None)


def held_elsewhere(h, n):
    """n boards started; one held by a controller other than A: (ids,
    A, its holder B, the third C, the board's id, its name)."""
    h.boards(n)
    ids = h.self_ids()
    a = h.ctls[0]
    bid = next((x for x in a.online() if holder_of(h, ids, x) not in (None, a)), None)
    check(bid, f"a board held elsewhere than A: {h.holders()}")
    b = holder_of(h, ids, bid)
    c = next(x for x in h.ctls if x not in (a, b))
    return ids, a, b, c, bid, a.online()[bid]["name"]


def case_relay(h):
    h.start()
    ids, a, b, c, bid, name = held_elsewhere(h, 3)
    # a tiny "kernel": the agent gets the order, fetches the image from its
    # controller and tries it; whatever it reports, the order reached it
    kern = os.path.join(h.tmp, "kernel.bin")
    with open(kern, "wb") as out:
        out.write(os.urandom(4096))
    r = skyctl(a, "-o", "json", "image", "push", kern, "--name", "hak", "--kind", "kernel")
    check(r.returncode == 0, f"image push: {r.stderr}")
    g = f"hag{os.getpid()}"
    r = skyctl(a, "-o", "json", "guest", "create", "--name", g, "--board", name, "--kernel", "hak",
               "--memory", "64M")
    check(r.returncode == 0, f"guest create through A: {r.stderr}")
    gid = json.loads(r.stdout)["id"]
    agent_log = h.agents[name]

    def reported():
        st, body = a.api("GET", f"/v1/guests/{g}")
        return body if st == 200 and body.get("state") not in ("pending", None) else None
    got = wait_for(reported, 30 * SKY_SLOW, f"guest {g} (board on {b.name}) reported by its agent")
    check(f"guest {gid}" in agent_log.text(), f"the agent of the board on {b.name} names guest {gid} in its log")
    check(f"envelope relayed to {ids[b.name]}" in a.ctl.text(), f"A relayed the order to {b.name} (its log says so)")
    print(f"guest {g}: made through A, board on {b.name}: {got.get('state')} {got.get('error', '')!r}")
    # desired state changed through C reaches it too
    st, body = c.api("POST", f"/v1/guests/{g}/stop")
    check(st in (200, 202), f"guest stop through C: {st} {body}")
    wait_for(lambda: a.api("GET", f"/v1/guests/{g}")[1].get("state") in ("stopped", "failed"),
             30 * SKY_SLOW, f"guest {g} stopped through C")
    check(f"envelope relayed to {ids[b.name]}" in c.ctl.text(), f"C relayed the stop to {b.name} (its log says so)")


def case_token(h):
    h.start()
    tok = h.ctls[0].token(uses=1)
    agents = [h.agent(0, tok["token"], first_ctl=1), h.agent(1, tok["token"], first_ctl=2)]

    def decided():
        texts = [p.text() for p in agents]
        won = sum("enrolled as board" in t for t in texts)
        lost = sum("controller refused" in t for t in texts)
        return won + lost >= 2 and won >= 1
    wait_for(decided, 30 * SKY_SLOW, "both agents told: one enrolled, the other refused", interval=0.2)
    time.sleep(1)  # a second enrollment, were there one, would show by now
    views = [c.boards() for c in h.ctls]
    for v in views:
        check(len(v) == 1, f"exactly one board enrolled with a one-use token: {[b['name'] for b in v]}")
    print(f"the winner: {views[0][0]['name']}")


def scrubbers(h):
    return [c for c in h.ctls if c.ctl.p.poll() is None and
            c.ctl.text().count("this controller scrubs the fleet's store") >
            c.ctl.text().count("scrub: left to another controller")]


def case_scrub(h):
    h.start(extra=("--scrub-rate", "1M"))
    wait_for(lambda: len(scrubbers(h)) >= 1, 20 * SKY_SLOW, "a controller scrubbing")
    time.sleep(12)  # every controller has tried the lock at least once by now
    s = scrubbers(h)
    check(len(s) == 1, f"one controller scrubs: {[c.name for c in s]}")
    first = s[0]
    first.kill()
    wait_for(lambda: any(c is not first for c in scrubbers(h)), 30 * SKY_SLOW, "another controller scrubbing")
    s = scrubbers(h)
    check(len(s) == 1 and s[0] is not first, f"one other controller scrubs: {[c.name for c in s]}")
    print(f"scrub: {first.name}, then {s[0].name}")


def case_events(h):
    from events import Watch  # noqa: E402 (its raw watch client)
    import threading
    h.start()
    a, b, c = h.ctls
    st, body = a.api("GET", "/v1/events?limit=1")
    check(st == 200, f"events list: {st} {body}")
    base = body["resource_version"]
    w = Watch(a, f"since={base}&heartbeat=200ms")
    made, lock = [], threading.Lock()

    def burst(ctl, n):
        for _ in range(n):
            tok = ctl.token()
            with lock:
                made.append(tok["id"])
    # made on B and C at once, watched on A
    ts = [threading.Thread(target=burst, args=(x, 10)) for x in (b, c)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    got = []
    end = time.monotonic() + 10 * SKY_SLOW
    while len(got) < len(made) and time.monotonic() < end:
        e = w.line(timeout=10 * SKY_SLOW)  # heartbeats too: the deadline is ours
        check(e is not None, f"the watch on A goes on: {len(got)} of {len(made)}")
        if e["type"] == "token.created":
            got.append(e)
    w.close()
    rvs = [e["resource_version"] for e in got]
    check(sorted(e["object_id"] for e in got) == sorted(made),
          f"A's watch sees every token made on B and C: {len(got)} of {len(made)}")
    check(rvs == sorted(rvs) and len(set(rvs)) == len(rvs), f"in resource version order: {rvs}")
    print(f"{len(got)} events made on B and C seen by a watch on A, rv {rvs[0]}..{rvs[-1]}")


def case_bus(h):
    """The bus of A lost (its backend terminated on the server): logged once,
    reconnected, and A hears the others again."""
    h.start()
    a, b, c = h.ctls
    out = h.psql("SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE application_name = 'skyrootd-bus') t")
    check(out.strip() == "3", f"the three buses terminated: {out!r}")
    for x in h.ctls:
        wait_for(lambda: "fleet bus: listening again" in x.ctl.text(), 10 * SKY_SLOW, f"{x.name}'s bus back")
        t = x.ctl.text()
        check(t.count("fleet bus: connection lost") == 1, f"{x.name} logs the loss once")
    st, body = a.api("GET", "/v1/events?limit=1")
    check(st == 200, f"events list: {st} {body}")
    from events import Watch  # noqa: E402
    w = Watch(a, f"since={body['resource_version']}&heartbeat=200ms")
    tok = b.token()
    end = time.monotonic() + 10 * SKY_SLOW
    seen = False
    while not seen and time.monotonic() < end:
        e = w.line(timeout=10 * SKY_SLOW)
        seen = e is not None and e.get("object_id") == tok["id"]
    w.close()
    check(seen, "A's watch sees a token made on B after the bus came back")


class RetryClient:
    """An API client with a list of controllers: on an error it may retry
    (no connection, a cut answer, 503 with Retry-After) it tries the next
    one with the same request (and the same Idempotency-Key); any other
    error is one it cannot retry, kept in .fatal."""

    def __init__(self, ctls):
        self.ctls = ctls
        self.at = 0
        self.retried = 0
        self.fatal = []

    def call(self, method, path, body=None, key=None, ok=(200, 201)):
        import http.client
        import socket
        import urllib.error
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if key:
            headers["Idempotency-Key"] = key
        for _ in range(len(self.ctls) * 4):
            c = self.ctls[self.at % len(self.ctls)]
            try:
                st, hdrs, raw = c.request(method, path, data, headers, timeout=5)
            except (urllib.error.URLError, ConnectionError, socket.timeout, http.client.HTTPException) as e:
                self.retried += 1
                self.at += 1
                last = repr(e)
                continue
            if st == 503:
                if not hdrs.get("Retry-After"):
                    self.fatal.append(f"{method} {path} on {c.name}: 503 without Retry-After")
                    return None
                self.retried += 1
                self.at += 1
                last = "503"
                time.sleep(0.1)
                continue
            if st not in ok:
                self.fatal.append(f"{method} {path} on {c.name}: {st} {raw[:200]!r}")
                return None
            return json.loads(raw) if raw else {}
        self.fatal.append(f"{method} {path}: no controller answered ({last})")
        return None


def case_retry(h):
    import threading
    import uuid
    h.start()
    a, b, c = h.ctls
    stop = threading.Event()
    made = {}            # Idempotency-Key -> the token id the client was told of
    clients = []

    def writer():
        cl = RetryClient([a, b, c])
        clients.append(cl)
        while not stop.is_set() and not cl.fatal:
            k = str(uuid.uuid4())
            t = cl.call("POST", "/v1/tokens", {"uses": 1, "ttl_seconds": 600}, key=k)
            if t is not None:
                made[k] = t["id"]

    def reader():
        cl = RetryClient([a, b, c])
        clients.append(cl)
        while not stop.is_set() and not cl.fatal:
            cl.call("GET", "/v1/boards")
            cl.call("GET", "/v1/tokens?limit=5")
            cl.call("GET", "/v1/events?limit=5")

    ts = [threading.Thread(target=f) for f in (writer, writer, reader)]
    for t in ts:
        t.start()
    time.sleep(2 * SKY_SLOW)
    before = len(made)
    a.kill()
    t_kill = time.monotonic()
    time.sleep(3 * SKY_SLOW)
    stop.set()
    for t in ts:
        t.join(30)
    fatal = [e for cl in clients for e in cl.fatal]
    retried = sum(cl.retried for cl in clients)
    check(not fatal, f"the clients saw only errors they may retry: {fatal[:5]}")
    check(before > 0 and len(made) > before, f"tokens made before ({before}) and after ({len(made) - before}) the kill")
    check(retried > 0, "the kill made the clients retry")
    def token_ids():
        """Every token of the fleet (the API lists at most 1,000 a page)."""
        return h.psql("SELECT id FROM tokens").split()
    ids = token_ids()
    missing = set(made.values()) - set(ids)
    check(not missing, f"every token the clients were told of is in the store: {len(missing)} missing")
    check(len(ids) == len(made), f"one token per Idempotency-Key: {len(ids)} tokens for {len(made)} keys")
    for x in (b, c):
        st, body = x.api("GET", "/v1/tokens?limit=1")
        check(st == 200 and body["tokens"], f"token list through {x.name}: {st}")
    print(f"{len(made)} tokens ({before} before A's kill -9), {retried} retries, no other error; "
          f"{time.monotonic() - t_kill:.1f} s after the kill")
    # One key sent to B and C at once: one token, both told of it (the
    # request that commits second is undone and gets the first's answer).
    n_before = len(token_ids())
    rounds, replayed = 20, 0
    for _ in range(rounds):
        k = str(uuid.uuid4())
        got = [None, None]

        def send(i, x):
            got[i] = x.request("POST", "/v1/tokens", json.dumps({"uses": 1}).encode(),
                               {"Content-Type": "application/json", "Idempotency-Key": k})
        ts = [threading.Thread(target=send, args=(i, x)) for i, x in enumerate((b, c))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        check(all(g and g[0] == 201 for g in got), f"both answers 201: {[g and (g[0], g[2][:120]) for g in got]}")
        ids = {json.loads(g[2])["id"] for g in got}
        check(len(ids) == 1, f"one key sent to B and C at once: one token, {ids}")
        replayed += sum(1 for g in got if g[1].get("Idempotency-Replayed") == "true")
    n_after = len(token_ids())
    check(n_after - n_before == rounds, f"{rounds} keys sent to two controllers at once: {n_after - n_before} tokens")
    print(f"{rounds} keys each sent to B and C at once: {rounds} tokens, {replayed} answers given again")


class Follower:
    """skyctl guest console NAME --follow through controller A (its
    skyctl.conf), read by a thread of its own."""

    def __init__(self, a, name):
        self.p = subprocess.Popen([SKYCTL, "--config", os.path.join(a.state, "skyctl.conf"), "guest", "console",
                                   name, "--follow"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.data = b""
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        while True:
            chunk = os.read(self.p.stdout.fileno(), 65536)
            if not chunk:
                return
            with self.lock:
                self.data += chunk

    def text(self):
        with self.lock:
            return self.data.decode(errors="replace")

    def close(self):
        self.p.terminate()
        self.p.wait(10)
        self.t.join(5)


def case_console(h):
    from guests import MARK_UP, guest_artifacts  # noqa: E402 (QEMU guests on the host)
    art = guest_artifacts()
    h.start()
    ids, a, b, c, bid, name = held_elsewhere(h, 3)
    for path, img, kind in ((os.path.join(art, "vmlinuz"), "vk", "kernel"),
                            (os.path.join(art, "initrd.img"), "vi", "initrd")):
        r = skyctl(a, "-o", "json", "image", "push", path, "--name", img, "--kind", kind)
        check(r.returncode == 0, f"image push {img}: {r.stderr}")
    g = f"hacon{os.getpid()}"
    r = skyctl(a, "-o", "json", "guest", "create", "--name", g, "--board", name, "--kernel", "vk", "--initrd", "vi",
               "--cmdline", "console=ttyS0 panic=-1 quiet", "--memory", "256M")
    check(r.returncode == 0, f"guest create through A: {r.stderr}")
    gid = json.loads(r.stdout)["id"]

    def console(ctl):
        st, _, raw = ctl.request("GET", f"/v1/guests/{g}/console")
        check(st == 200, f"GET the console through {ctl.name}: {st} {raw[:200]!r}")
        return raw.decode(errors="replace")
    t0 = time.monotonic()
    wait_for(lambda: MARK_UP in console(c), 120 * SKY_SLOW, f"the marker of {g} (board on {b.name}) through C",
             interval=0.5)
    print(f"guest {g} on a board of {b.name}: its marker through C {time.monotonic() - t0:.1f} s after create")
    check(holder_of(h, ids, bid) is b, f"the board still held by {b.name}")
    fol = Follower(a, g)
    try:
        wait_for(lambda: MARK_UP in fol.text(), 10 * SKY_SLOW, "the marker on skyctl guest console --follow through A")
        # The board moves: its controller killed, the agent goes to another.
        b.kill()
        left = [x for x in h.ctls if x is not b]
        wait_for(lambda: holder_of(h, ids, bid) in left, FAILOVER_S, f"the board of {b.name} held by another",
                 interval=0.5)
        now = holder_of(h, ids, bid)
        print(f"the board moved from {b.name} to {now.name}")

        def state():
            st, body = c.api("GET", f"/v1/guests/{g}")
            return body.get("state") if st == 200 else None
        st, body = c.api("POST", f"/v1/guests/{g}/stop")
        check(st in (200, 202), f"guest stop through C: {st} {body}")
        wait_for(lambda: state() == "stopped", 90 * SKY_SLOW, f"guest {g} stopped", interval=0.5)
        st, body = c.api("POST", f"/v1/guests/{g}/start")
        check(st in (200, 202), f"guest start through C: {st} {body}")
        t1 = time.monotonic()
        # Written by the new holder: the follower on A, open since the
        # first boot, gets the second boot's marker.
        wait_for(lambda: fol.text().count(MARK_UP) >= 2, 120 * SKY_SLOW,
                 f"the second boot's marker on A's follower (board now on {now.name})", interval=0.2)
        print(f"the second boot's marker on A's --follow {time.monotonic() - t1:.1f} s after the start")
        check(fol.p.poll() is None, "the follower still runs")
        check(console(c).count(MARK_UP) >= 2, "both boots through C")
    finally:
        fol.close()
    check(skyctl(a, "guest", "delete", g).returncode == 0, f"guest delete {g}")
    rows = h.psql(f"SELECT count(*) FROM guest_console WHERE guest_id = '{gid}'")
    check(rows.strip() == "0", f"the guest's console rows deleted with it: {rows!r}")


def make(tmp):
    return HA(tmp)


def skip():
    why = pgserver.available()
    return f"PostgreSQL is needed: {why}" if why else None


if __name__ == "__main__":
    try:
        sys.exit(run_cases(globals(), "fleet-ha", make, skip=skip))
    except Fail as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
