#!/usr/bin/env python3
"""Integration tests of the event log (docs/api.md "Events"): GET /v1/events
listed and watched, skyctl events and guest create --wait, over a real
skyrootd, skyagent and (for guests) real QEMU (TCG) guests.

Usage: events.py CASE
  board      enroll, online, offline (agent killed), deleted; token created
             and used; credential changes: each an event in order, with
             filters (type, kind, id), paging (limit, page_token) and 400s
  refusal    a boot order an agent without --allow-kexec refuses: a
             board.refused event with the board's reason, and skyctl board
             boot's exit status
  watch      a watch from a resource version sees exactly the later events
             in order, nothing twice across a reconnect from its last one;
             no since: from now; heartbeats through a quiet period
  slow       a watcher that does not read is cut with a last line saying
             where to resume (--events-watch-buffer); resuming from there
             misses nothing; --events-watchers caps them (503)
  retention  --events-keep N keeps the newest N; a since older than them is
             410 Gone with the oldest resource version, list and watch
  roles      a reader lists and watches; no credential or a revoked one: 401
  follow     skyctl events (table, -o json, -o yaml, filters) and --follow,
             which shows a new event within a second and resumes after the
             controller restarts
  guest      a guest's life as events with reasons (pending, fetching,
             running, stopped by the guest, deleted); guest create --wait:
             0 once running, 1 with the board's reason when it fails
  kill9      kill -9 of skyrootd right after acknowledged changes: their
             events are there after the restart, and the resource versions
             go on from there
"""
import http.client
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import (ROOT, SKYCTL, SKYROOTD, SKY_SLOW, Fail, Fleet, Proc, agent_args,  # noqa: E402
                      board_fixture, check, run_cases, skyctl, sqlq, wait_for)


# ---- helpers ----

def events(f, query="", token=None):
    st, body = f.api("GET", "/v1/events" + (f"?{query}" if query else ""), token=token)
    check(st == 200, f"GET /v1/events?{query}: {st} {body}")
    return body


def all_events(f, query=""):
    """Every page, in order."""
    out, tok = [], None
    while True:
        q = "&".join(x for x in (query, "limit=3", f"page_token={tok}" if tok else "") if x)
        body = events(f, q)
        out += body["events"]
        tok = body.get("next_page_token")
        if not tok:
            return out, body["resource_version"]


def types(evs):
    return [e["type"] for e in evs]


class Watch:
    """A raw watch: GET /v1/events?watch=true&QUERY over its own TLS
    connection (a small receive buffer when rcvbuf), read line by line."""

    def __init__(self, f, query, token=None, rcvbuf=None):
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        raw.settimeout(10)
        raw.connect(("127.0.0.1", f.api_port))
        self.sock = f.sslctx.wrap_socket(raw, server_hostname="127.0.0.1")
        self.buf = b""
        req = (f"GET /v1/events?watch=true{'&' + query if query else ''} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Authorization: Bearer {token or f.admin}\r\n\r\n")
        self.sock.sendall(req.encode())
        head = self._until(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])
        self.head = head.decode()
        self.chunk_left = 0
        self.data = b""
        self.ended = False
        if self.status != 200:
            n = next(int(l.split(":", 1)[1]) for l in self.head.split("\r\n") if l.lower().startswith("content-length:"))
            while len(self.buf) < n:
                self._fill(10)
            self.error = self.buf[:n]
        else:
            check("application/x-ndjson" in self.head and "chunked" in self.head.lower(),
                  f"a watch is chunked JSON lines: {self.head}")

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        b = self.sock.recv(65536)
        if not b:
            raise EOFError("the controller closed the watch")
        self.buf += b

    def _until(self, sep, timeout=10):
        while sep not in self.buf:
            self._fill(timeout)
        i = self.buf.index(sep) + len(sep)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _chunk(self, timeout):
        """Decode chunked transfer into self.data."""
        while True:
            if self.chunk_left == 0:
                line = self._until(b"\r\n", timeout)
                n = int(line.strip(), 16)
                if n == 0:
                    self.ended = True
                    return
                self.chunk_left = n + 2
            while len(self.buf) == 0:
                self._fill(timeout)
            take = min(self.chunk_left, len(self.buf))
            piece, self.buf = self.buf[:take], self.buf[take:]
            self.chunk_left -= take
            if self.chunk_left == 0:
                piece = piece[:-2]
            elif self.chunk_left == 1:
                piece = piece[:-1]
            self.data += piece
            if b"\n" in self.data:
                return

    def line(self, timeout=10):
        """The next JSON line (heartbeats too), or None at the end."""
        end = time.time() + timeout
        while b"\n" not in self.data:
            if self.ended:
                return None
            left = end - time.time()
            if left <= 0:
                raise socket.timeout("no line in time")
            self._chunk(left)
        i = self.data.index(b"\n")
        line, self.data = self.data[:i], self.data[i + 1:]
        return json.loads(line)

    def event(self, timeout=10):
        """The next line that is not a heartbeat."""
        while True:
            o = self.line(timeout)
            if o is None or o["type"] != "watch.heartbeat":
                return o

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def make_token(f, conn=None):
    st, body = f.api("POST", "/v1/tokens", {"uses": 1, "ttl_seconds": 3600})
    check(st == 201, f"token create: {st} {body}")
    return body


def db_rows(f, sql):
    """The rows of SQL on the store, integers as ints."""
    return [tuple(int(v) if v.lstrip("-").isdigit() else v for v in r) for r in f.store_sql(sql)]


def readline(p, timeout, stream=None):
    """A line of P's stdout (or STREAM) (bytes), failing after TIMEOUT seconds."""
    s = stream or p.stdout
    buf = b""
    end = time.time() + timeout
    while not buf.endswith(b"\n"):
        left = end - time.time()
        ready, _, _ = select.select([s], [], [], max(left, 0))
        check(ready, f"no line from skyctl in {timeout} s (so far {buf!r})")
        b = os.read(s.fileno(), 1)
        check(b != b"", f"skyctl ended: {p.poll()} {buf!r}")
        buf += b
    return buf


def corrupt(f, image_id):
    """A flipped byte in the first chunk of the image, in the store."""
    where = f"id = (SELECT chunk_id FROM image_chunks WHERE image_id = {sqlq(image_id)} AND idx = 0)"
    data = bytearray(f.store_blob("chunk_data", "data", where))
    data[len(data) // 2] ^= 0x01
    f.store_set_blob("chunk_data", "data", where, bytes(data))


def check_event_shape(e):
    for k in ("resource_version", "type", "kind", "object_id", "created_at", "detail"):
        check(k in e, f"an event has {k}: {e}")
    check(isinstance(e["resource_version"], int) and isinstance(e["detail"], dict), f"event types: {e}")
    check(e["created_at"].endswith("Z") and "T" in e["created_at"], f"created_at is RFC 3339 UTC: {e}")


# ---- cases ----

def case_board(f):
    f.start()
    tok = f.token(uses=1)
    ag = f.agent("a", token=tok["token"], hb=500)
    b = wait_for(lambda: next(iter(f.online().values()), None), 20, "board online")
    bid = b["id"]
    evs, rv = all_events(f)
    for e in evs:
        check_event_shape(e)
    check(types(evs) == ["token.created", "board.enrolled", "token.used", "board.online"],
          f"the enrollment's events in order: {types(evs)}")
    rvs = [e["resource_version"] for e in evs]
    check(rvs == sorted(rvs) and len(set(rvs)) == len(rvs) and rv == rvs[-1], f"resource versions grow: {rvs} {rv}")
    enr = evs[1]
    check(enr["kind"] == "board" and enr["object_id"] == bid and enr["detail"]["token_id"] == tok["id"] and
          enr["detail"]["machine"] and enr["detail"]["how"] == "new board", f"board.enrolled: {enr}")
    check(evs[2]["kind"] == "token" and evs[2]["object_id"] == tok["id"] and evs[2]["detail"]["board"] == bid,
          f"token.used: {evs[2]}")
    # Offline: the agent killed (its connection drops).
    os.kill(ag.p.pid, signal.SIGKILL)
    wait_for(lambda: "board.offline" in types(events(f, "kind=board")["events"]), 15 * SKY_SLOW, "board.offline")
    off = events(f, "type=board.offline")["events"]
    check(len(off) == 1 and off[0]["object_id"] == bid and off[0]["detail"]["reason"], f"board.offline: {off}")
    # Credential changes and a board delete.
    st, _ = f.api("POST", "/v1/credentials", {"name": "ops", "role": "operator"})
    check(st == 201, f"credential create: {st}")
    check(f.api("POST", "/v1/credentials/ops/rotate", {})[0] == 200, "rotate")
    check(f.api("DELETE", "/v1/credentials/ops")[0] == 200, "revoke")
    check(f.api("DELETE", f"/v1/boards/{bid}")[0] == 200, "board delete")
    creds = events(f, "kind=credential")["events"]
    check([(e["object_id"], e["detail"]["change"]) for e in creds] ==
          [("ops", "created"), ("ops", "rotated"), ("ops", "revoked")], f"credential.changed: {creds}")
    check(creds[0]["detail"]["role"] == "operator", f"the role of a new credential: {creds[0]}")
    mine = events(f, f"id={bid}")["events"]
    check(types(mine) == ["board.enrolled", "board.online", "board.offline", "board.deleted"],
          f"id= filters one object: {types(mine)}")
    # Paging: limit 3 through all, the same as one page of all.
    everything = events(f, "limit=1000")["events"]
    paged, _ = all_events(f)
    check(paged == everything and len(everything) == 9, f"paging: {len(paged)} vs {len(everything)}")
    # since= lists what came after.
    mid = everything[4]["resource_version"]
    check(events(f, f"since={mid}")["events"] == everything[5:], "since= lists the later events")
    check(events(f, f"since={mid}&kind=credential")["events"] == [e for e in everything[5:] if e["kind"] == "credential"],
          "since= with a filter")
    # Wrong queries: 400 saying what is wrong.
    for q, needle in (("limit=0", "limit"), ("type=Guest", "type"), ("kind=a%20b", "kind"), ("since=-1", "since"),
                      ("page_token=xyz", "page_token"), ("bogus=1", "unknown"), ("since=1&since=2", "twice"),
                      ("watch=true&limit=5", "watch"), ("heartbeat=1s", "heartbeat"), ("watch=maybe", "watch"),
                      (f"since={rv + 1000}", "newer")):
        st, body = f.api("GET", f"/v1/events?{q}")
        check(st == 400 and needle in body["error"]["message"] and body["error"]["code"] == "bad_request",
              f"?{q}: {st} {body}")
    # Another list's page token is not one of this list.
    make_token(f)
    st, body = f.api("GET", "/v1/tokens?limit=1")
    check(st == 200 and body.get("next_page_token"), f"a token page: {body}")
    st, body = f.api("GET", f"/v1/events?page_token={body['next_page_token']}")
    check(st == 400, f"a page token of /v1/tokens: {st} {body}")


def case_refusal(f):
    f.start(extra=["--scrub-rate", "0"])  # the corrupt chunks below are found by verify and the board
    kernel = os.path.join(f.tmp, "vmlinuz")
    with open(kernel, "wb") as out:
        out.write(os.urandom(64 << 10))
    r = skyctl(f, "image", "push", kernel, "--name", "k1", "--kind", "kernel")
    check(r.returncode == 0, f"image push: {r.stderr}")
    img = events(f, "type=image.created")["events"]
    check(len(img) == 1 and img[0]["detail"]["name"] == "k1" and img[0]["object_id"].startswith("img-"),
          f"image.created: {img}")
    tok = f.token(uses=1)
    f.agent("a", token=tok["token"])
    b = wait_for(lambda: next(iter(f.online().values()), None), 20, "board online")
    rv = events(f, "limit=1")["resource_version"]
    r = skyctl(f, "board", "boot", b["name"], "--kernel", "k1", "--wait", "--no-wait")
    check(r.returncode == 1 and "contradict" in r.stderr, f"--wait with --no-wait: {r.returncode} {r.stderr}")
    r = skyctl(f, "board", "boot", b["name"], "--kernel", "k1", "--wait", "--timeout", "20s")
    print(f"board boot without --allow-kexec: exit {r.returncode}: {r.stderr.strip()}")
    check(r.returncode == 1 and "refused" in r.stderr, f"skyctl board boot's exit status: {r.returncode} {r.stderr}")
    evs = events(f, f"since={rv}&id={b['id']}")["events"]
    check(types(evs) == ["board.boot_sent", "board.refused"], f"the order and its refusal: {types(evs)}")
    sent, ref = evs
    check(ref["detail"]["order"] == "boot" and "--allow-kexec" in ref["detail"]["reason"] and
          ref["detail"]["request_id"] == sent["detail"]["request_id"], f"board.refused: {ref} after {sent}")
    # The board loads an image: board.image_loaded.
    r = skyctl(f, "image", "fetch", "k1", "--board", b["name"])
    check(r.returncode == 0, f"image fetch: {r.returncode} {r.stderr}")
    loaded = events(f, f"type=board.image_loaded&id={b['id']}")["events"]
    check([e["detail"]["image"] for e in loaded] == [img[0]["object_id"]], f"board.image_loaded: {loaded}")
    # A chunk corrupted in the store: the board's fetch of it fails
    # (board.image_failed), and verify finds it (image.damaged).
    with open(kernel + "2", "wb") as out:
        out.write(os.urandom(64 << 10))
    r = skyctl(f, "-o", "json", "image", "push", kernel + "2", "--name", "k2", "--kind", "kernel")
    check(r.returncode == 0, f"image push k2: {r.stderr}")
    k2 = json.loads(r.stdout)["id"]
    corrupt(f, k2)
    r = skyctl(f, "image", "fetch", "k2", "--board", b["name"])
    check(r.returncode == 1, f"the fetch of a corrupt image fails: {r.returncode} {r.stdout} {r.stderr}")
    failed = wait_for(lambda: events(f, f"type=board.image_failed&id={b['id']}")["events"], 10 * SKY_SLOW,
                      "board.image_failed")
    check(failed[0]["detail"]["image"] == k2 and failed[0]["detail"]["reason"], f"board.image_failed: {failed}")
    corrupt(f, img[0]["object_id"])
    st, v = f.api("POST", f"/v1/images/{img[0]['object_id']}/verify")
    check(st == 200 and v["damaged"], f"verify: {st} {v}")
    dmg = events(f, f"type=image.damaged&id={img[0]['object_id']}")["events"]
    check(len(dmg) == 1 and dmg[0]["detail"]["found_by"] == "image verify" and len(dmg[0]["detail"]["chunk"]) == 64,
          f"image.damaged: {dmg}")
    check(events(f, f"type=image.damaged&id={k2}")["events"], "k2 damaged too (the board's report)")
    check(skyctl(f, "image", "delete", "k1").returncode == 0, "image delete")
    check(types(events(f, f"id={img[0]['object_id']}")["events"]) == ["image.created", "image.damaged", "image.deleted"],
          "image.deleted")


def case_watch(f):
    f.start()
    make_token(f)
    base = events(f)["resource_version"]
    w = Watch(f, f"since={base}&heartbeat=200ms")
    made = [make_token(f)["id"] for _ in range(5)]
    got = [w.event() for _ in range(5)]
    check([e["object_id"] for e in got] == made and all(e["type"] == "token.created" for e in got),
          f"a watch sees the later events in order: {got}")
    rvs = [e["resource_version"] for e in got]
    check(rvs == list(range(base + 1, base + 6)), f"resource versions one after another: {rvs}")
    # A quiet period: heartbeats, and the watch still delivers after it.
    t0 = time.time()
    beats = []
    while time.time() - t0 < 1.5:
        o = w.line(5)
        check(o["type"] == "watch.heartbeat", f"only heartbeats while quiet: {o}")
        beats.append(o)
    check(len(beats) >= 3 and beats[-1]["resource_version"] == rvs[-1], f"heartbeats say where to resume: {beats}")
    late = make_token(f)["id"]
    e = w.event()
    check(e["object_id"] == late, f"an event after the quiet period: {e}")
    last = e["resource_version"]
    w.close()
    # Events while nobody watches, then a reconnect from the last one seen:
    # exactly those, once each.
    missed = [make_token(f)["id"] for _ in range(3)]
    w2 = Watch(f, f"since={last}")
    again = [w2.event() for _ in range(3)]
    check([x["object_id"] for x in again] == missed, f"the reconnect sees what it missed, in order: {again}")
    newer = make_token(f)["id"]
    e = w2.event()
    check(e["object_id"] == newer and e["resource_version"] == again[-1]["resource_version"] + 1,
          f"then live, nothing twice: {e}")
    w2.close()
    # Filters on a watch; no since: only what comes after.
    w3 = Watch(f, "kind=credential")
    make_token(f)
    check(f.api("POST", "/v1/credentials", {"name": "rd", "role": "reader"})[0] == 201, "credential create")
    e = w3.event()
    check(e["type"] == "credential.changed" and e["object_id"] == "rd", f"a filtered watch from now: {e}")
    w3.close()
    # A watch from since=0 replays everything kept, then goes live.
    w4 = Watch(f, "since=0")
    everything = events(f, "limit=1000")["events"]
    replay = [w4.event() for _ in everything]
    check(replay == everything, "since=0 replays the whole log in order")
    w4.close()


def case_slow(f):
    # A buffer past the HTTP layer's bound of a stream (4MiB) would let a
    # slow watcher be dropped without its watch.cut line: refused.
    r = subprocess.run([SKYROOTD, "run", "--state", f.state, "--events-watch-buffer", "5MiB"], capture_output=True,
                       text=True, timeout=20 * SKY_SLOW)
    check(r.returncode != 0 and "--events-watch-buffer '5MiB' is out of range: give 1K to 4M" in r.stderr,
          f"--events-watch-buffer 5MiB: {r.returncode} {r.stderr}")
    f.start(extra=["--events-watch-buffer", "1024", "--events-watchers", "3"])
    base = events(f)["resource_version"]
    # heartbeat=300s: the cut comes from the events themselves, not a heartbeat.
    slow = Watch(f, f"since={base}&heartbeat=300s", rcvbuf=4096)
    conn = http.client.HTTPSConnection("127.0.0.1", f.api_port, context=f.sslctx, timeout=10)
    hdr = {"Authorization": f"Bearer {f.admin}", "Content-Type": "application/json"}
    made = 0
    t0 = time.time()
    while "is cut" not in f.ctl.text():
        check(time.time() - t0 < 60 * SKY_SLOW and made < 20000, f"the slow watcher is never cut ({made} events)")
        for _ in range(50):
            conn.request("POST", "/v1/tokens", json.dumps({"uses": 1}), hdr)
            resp = conn.getresponse()
            check(resp.status == 201, f"token create: {resp.status}")
            resp.read()
            made += 1
    print(f"the slow watcher was cut after {made} events")
    seen = []
    while True:
        o = slow.line(30)
        if o is None:
            break
        if o["type"] != "watch.heartbeat":
            seen.append(o)
    cut = seen.pop()
    check(cut["type"] == "watch.cut" and "resume" in cut["reason"], f"the last line says it was cut: {cut}")
    rvs = [e["resource_version"] for e in seen]
    check(rvs == list(range(base + 1, base + 1 + len(rvs))) and cut["resource_version"] == (rvs[-1] if rvs else base),
          f"everything before the cut, in order, and where to resume: {len(rvs)} then {cut}")
    slow.close()
    # Resume from there: the rest, nothing twice, nothing missing.
    conn.request("POST", "/v1/tokens", json.dumps({"uses": 1}), hdr)
    conn.getresponse().read()
    newest = events(f, "limit=1")["resource_version"]
    w = Watch(f, f"since={cut['resource_version']}")
    rest = []
    while not rest or rest[-1]["resource_version"] < newest:
        rest.append(w.event())
    check([e["resource_version"] for e in rest] == list(range(cut["resource_version"] + 1, newest + 1)),
          "the resumed watch has the rest")
    # The cap on watchers: 503 past it.
    w2, w3 = Watch(f, ""), Watch(f, "")
    w4 = Watch(f, "")
    check(w4.status == 503 and b"--events-watchers" in w4.error, f"a watcher past the cap: {w4.status}")
    for x in (w, w2, w3, w4):
        x.close()
    conn.close()


def case_retention(f):
    f.start(extra=["--events-keep", "5"])
    ids = [make_token(f)["id"] for _ in range(9)]
    body = events(f)
    evs = body["events"]
    check([e["object_id"] for e in evs] == ids[-5:], f"only the newest 5 are kept: {evs}")
    oldest = evs[0]["resource_version"]
    check(oldest == 5 and body["resource_version"] == 9, f"resource versions go on: {body['resource_version']}")
    for q in ("since=1", f"since={oldest - 2}", "since=0"):
        st, ans = f.api("GET", f"/v1/events?{q}")
        check(st == 410 and ans["error"]["code"] == "gone" and ans["error"]["oldest_resource_version"] == oldest,
              f"?{q}: {st} {ans}")
        w = Watch(f, q)
        check(w.status == 410, f"a watch ?{q}: {w.status}")
        w.close()
    check(len(events(f, f"since={oldest - 1}")["events"]) == 5, "since=oldest-1 loses nothing: 200")
    # The bound holds as events come.
    make_token(f)
    rows = db_rows(f, "SELECT COUNT(*), MIN(rv), MAX(rv) FROM events")[0]
    check(rows == (5, 6, 10), f"the table keeps 5 rows: {rows}")


def case_roles(f):
    f.start()
    st, cred = f.api("POST", "/v1/credentials", {"name": "viewer", "role": "reader"})
    check(st == 201, f"reader credential: {st} {cred}")
    rtok = cred["token"]
    make_token(f)
    check(events(f, token=rtok)["events"], "a reader lists the events")
    w = Watch(f, "since=0", token=rtok)
    check(w.status == 200 and w.event()["type"] == "credential.changed", "a reader watches")
    w.close()
    st, body = f.api("GET", "/v1/events", auth=False)
    check(st == 401, f"no credential: {st} {body}")
    w = Watch(f, "since=0", token="not-a-token")
    check(w.status == 401, f"a watch with a wrong token: {w.status}")
    w.close()
    check(f.api("DELETE", "/v1/credentials/viewer")[0] == 200, "revoke")
    st, _ = f.api("GET", "/v1/events", token=rtok)
    check(st == 401, f"a revoked reader: {st}")
    # The reader's token cannot make events.
    st, _ = f.api("POST", "/v1/tokens", {"uses": 1}, token=rtok)
    check(st == 401, f"a revoked reader cannot change anything: {st}")


def case_follow(f):
    f.start()
    make_token(f)
    # The list: table, JSON (the API's object), YAML, filters.
    r = skyctl(f, "events")
    check(r.returncode == 0 and "token.created" in r.stdout and r.stdout.startswith("RV"), f"events: {r.stdout}")
    r = skyctl(f, "-o", "json", "events", "--kind", "token", "--since", "0")
    body = json.loads(r.stdout)
    check(r.returncode == 0 and [e["type"] for e in body["events"]] == ["token.created"] and "resource_version" in body,
          f"events -o json: {r.stdout}")
    r = skyctl(f, "-o", "yaml", "events", "--type", "token.created")
    check(r.returncode == 0 and re.search(r"\"?type\"?: \"?token\.created", r.stdout), f"events -o yaml: {r.stdout}")
    r = skyctl(f, "events", "--type", "BAD")
    check(r.returncode == 1 and "type" in r.stderr, f"a bad --type: {r.stderr}")
    # --follow -o json: a new event within a second.
    rv = events(f)["resource_version"]
    p = subprocess.Popen([SKYCTL, "--config", os.path.join(f.state, "skyctl.conf"), "-o", "json", "events",
                          "--follow", "--since", str(rv)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.5 * SKY_SLOW)  # watching by now, most likely (--since: nothing is missed if not)
        t0 = time.time()
        tid = make_token(f)["id"]
        line = readline(p, 10 * SKY_SLOW)
        took = time.time() - t0
        e = json.loads(line)
        print(f"skyctl events --follow: a new event shown in {took * 1000:.0f} ms")
        check(e["object_id"] == tid, f"--follow shows the new event: {e}")
        check(took < 1.0 * SKY_SLOW, f"within a second: {took:.2f} s")
        # The controller restarts: --follow resumes where it left off.
        f.ctl.stop()
        f.start()
        tid2 = make_token(f)["id"]
        e = json.loads(readline(p, 30 * SKY_SLOW))
        check(e["object_id"] == tid2 and e["resource_version"] == json.loads(line)["resource_version"] + 1,
              f"after the restart, the next event and nothing twice: {e}")
    finally:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    err = p.stderr.read().decode()
    check(p.returncode == 0, f"Ctrl-C ends --follow with 0: {p.returncode} {err}")
    check("watching the events again" in err, f"it said it reconnects: {err}")
    # The table form of --follow.
    rv = events(f)["resource_version"]
    p = subprocess.Popen([SKYCTL, "--config", os.path.join(f.state, "skyctl.conf"), "events", "--follow",
                          "--kind", "credential", "--since", str(rv)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        check(readline(p, 10 * SKY_SLOW).startswith(b"RV"), "a header line")
        make_token(f)
        check(f.api("POST", "/v1/credentials", {"name": "c1", "role": "reader"})[0] == 201, "credential")
        row = readline(p, 10 * SKY_SLOW).decode()
        check("credential.changed" in row and "c1" in row and "change=created" in row, f"a table row: {row!r}")
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(10)
    # Followers of a controller that went away come back at random times
    # (jitter of their backoff), not in step: no two draw the same delays.
    conf = os.path.join(f.state, "skyctl.conf")
    rv = events(f)["resource_version"]
    ps = [subprocess.Popen([SKYCTL, "--config", conf, "-o", "json", "events", "--follow", "--since", str(rv)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    try:
        tid = make_token(f)["id"]
        for p in ps:  # each is watching: it shows the new event
            check(json.loads(readline(p, 10 * SKY_SLOW))["object_id"] == tid, "a follower shows the new event")
        f.ctl.stop()
        delays = []
        for p in ps:
            said = []
            while len(said) < 2:
                line = readline(p, 20 * SKY_SLOW, p.stderr).decode()
                if "watching the events again in" in line:
                    said.append(line.split(" in ", 1)[1].split(" s", 1)[0])
            delays.append(said)
        check(len({tuple(d) for d in delays}) > 1, f"three followers drew the same delays: {delays}")
    finally:
        for p in ps:
            p.send_signal(signal.SIGINT)
            p.wait(10)
    f.start()
    # An output that cannot be written (a full disk): exit 1, said once,
    # as what failed (not as the controller's stream, nor "Success").
    if os.path.exists("/dev/full"):
        with open("/dev/full", "w") as full:
            r = subprocess.run([SKYCTL, "--config", os.path.join(f.state, "skyctl.conf"), "events", "--follow",
                                "--since", "0"], stdout=full, stderr=subprocess.PIPE, text=True, timeout=20 * SKY_SLOW)
        check(r.returncode == 1 and r.stderr == "skyctl: cannot write the events to the output\n",
              f"--follow to a full disk: {r.returncode} {r.stderr!r}")


def guest_artifacts():
    r = subprocess.run([os.path.join(ROOT, "tests", "vmm", "fetch-guest.sh")], capture_output=True, text=True)
    if r.returncode != 0:
        return None
    return r.stdout.strip().splitlines()[-1]


def case_guest(f):
    art = guest_artifacts()
    check(art is not None, "never here: main() skips without the guest artifacts")
    f.start()
    for path, name, kind in ((os.path.join(art, "vmlinuz"), "vk", "kernel"),
                             (os.path.join(art, "initrd.img"), "vi", "initrd")):
        r = skyctl(f, "image", "push", path, "--name", name, "--kind", kind)
        check(r.returncode == 0, f"image push {name}: {r.stderr}")
    junk = os.path.join(f.tmp, "junk.bin")
    with open(junk, "wb") as out:
        out.write(os.urandom(1 << 20))
    check(skyctl(f, "image", "push", junk, "--name", "junk", "--kind", "kernel").returncode == 0, "push junk")
    root = board_fixture(os.path.join(f.tmp, "board-ev"), "a", "7d1c2b3a-0000-4000-8000-000000000e71", "ev1")
    tok = f.token()
    p = Proc(agent_args(f, root, token=tok["token"]) + ["--heartbeat-interval", "1000"],
             os.path.join(f.tmp, "agent-ev1.log"))
    f.procs.append(p)
    wait_for(lambda: any(b["name"] == "ev1" and b["state"] == "online" for b in f.boards()), 20, "board ev1 online")
    base = events(f)["resource_version"]
    # --wait: 0 once running.
    t0 = time.time()
    r = skyctl(f, "-o", "json", "guest", "create", "--name", "g1", "--board", "ev1", "--kernel", "vk",
               "--initrd", "vi", "--cmdline", "console=ttyS0 panic=-1 quiet", "--memory", "256M", "--wait",
               "--timeout", "3m")
    print(f"guest create --wait: exit {r.returncode} after {time.time() - t0:.1f} s")
    check(r.returncode == 0, f"guest create --wait: {r.returncode} {r.stderr}")
    g = json.loads(r.stdout)
    check(g["state"] == "running", f"--wait prints the running guest: {g}")
    # Stopped by the guest itself? A stop from the API, then its reason.
    check(skyctl(f, "guest", "stop", "g1").returncode == 0, "guest stop")
    wait_for(lambda: any(e["detail"].get("new") == "stopped" for e in events(f, f"id={g['id']}")["events"]),
             90 * SKY_SLOW, "g1 stopped")
    check(skyctl(f, "guest", "start", "g1").returncode == 0, "guest start")
    wait_for(lambda: sum(e["detail"].get("new") == "running" for e in events(f, f"id={g['id']}")["events"]) == 2,
             90 * SKY_SLOW, "g1 running again")
    check(skyctl(f, "guest", "delete", "g1").returncode == 0, "guest delete")
    evs = events(f, f"since={base}&kind=guest&id={g['id']}")["events"]
    steps = [(e["type"], e["detail"].get("old"), e["detail"].get("new")) for e in evs]
    print("g1:", steps)
    check(steps[0] == ("guest.created", None, None) and evs[0]["detail"]["state"] == "pending", f"created: {steps}")
    check(steps[-1][0] == "guest.deleted", f"deleted last: {steps}")
    states = [s[2] for s in steps if s[0] == "guest.state"]
    first_run = states.index("running")
    check("fetching" in states[:first_run], f"pending -> fetching -> running: {states}")
    i = states.index("stopped")
    check(first_run < i and states[i + 1:].count("running") == 1 and "pending" in states[i + 1:],
          f"running -> stopped -> pending -> ... -> running: {states}")
    olds = [s[1] for s in steps if s[0] == "guest.state"]
    check(olds[1:] == states[:-1], f"each change's old state is the one before: {steps}")
    # The guest powers itself off; the guest panics: each change with the
    # reason the board gives (QEMU's shutdown reason, pvpanic).
    for name, test, want, why in (("off", "poweroff", "stopped", "guest-shutdown"),
                                  ("boom", "panic", "failed", "guest-panicked")):
        r = skyctl(f, "-o", "json", "guest", "create", "--name", name, "--board", "ev1", "--kernel", "vk", "--initrd",
                   "vi", "--cmdline", f"console=ttyS0 panic=-1 quiet skyroot.test={test}", "--memory", "256M")
        check(r.returncode == 0, f"guest create {name}: {r.stderr}")
        gid = json.loads(r.stdout)["id"]
        e = wait_for(lambda: next((x for x in events(f, f"type=guest.state&id={gid}")["events"]
                                   if x["detail"]["new"] == want), None), 90 * SKY_SLOW, f"{name} {want}")
        print(f"{name}: {e['detail']['old']} -> {want}: {e['detail']['reason']}")
        check(why in e["detail"]["reason"], f"{name}'s reason says {why}: {e}")
        check(skyctl(f, "guest", "delete", name).returncode == 0, f"delete {name}")
    # --wait: 1 with the board's reason when the guest fails.
    r = skyctl(f, "guest", "create", "--name", "bad", "--board", "ev1", "--kernel", "junk", "--memory", "256M",
               "--wait")
    print(f"guest create --wait of a junk kernel: exit {r.returncode}: {r.stderr.strip()}")
    check(r.returncode == 1 and "failed" in r.stderr and "bzImage" in r.stderr, f"--wait fails: {r.returncode} {r.stderr}")
    failed = events(f, "type=guest.state&kind=guest")["events"][-1]
    check(failed["detail"]["new"] == "failed" and "bzImage" in failed["detail"]["reason"], f"the failure: {failed}")
    # An agent gone: the guest that waits for it times out.
    os.kill(p.p.pid, signal.SIGKILL)
    wait_for(lambda: not any(b["state"] == "online" for b in f.boards()), 15 * SKY_SLOW, "ev1 offline")
    r = skyctl(f, "guest", "create", "--name", "late", "--board", "ev1", "--kernel", "vk", "--memory", "256M",
               "--wait", "--timeout", "6s")
    check(r.returncode == 1 and "not running after 6s" in r.stderr, f"--wait --timeout: {r.returncode} {r.stderr}")


def case_kill9(f):
    f.start()
    ids = [make_token(f)["id"] for _ in range(3)]
    st, _ = f.api("POST", "/v1/credentials", {"name": "k9", "role": "reader"})
    check(st == 201, "credential")
    f.ctl.stop(signal.SIGKILL)
    f.start()
    evs = events(f)["events"]
    check([e["object_id"] for e in evs] == ids + ["k9"], f"every acknowledged change has its event: {evs}")
    tid = make_token(f)["id"]
    e = events(f, f"since={evs[-1]['resource_version']}")["events"]
    check(len(e) == 1 and e[0]["object_id"] == tid and e[0]["resource_version"] == evs[-1]["resource_version"] + 1,
          f"resource versions go on after the restart: {e}")


def main():
    def skip():
        if sys.argv[1:] == ["guest"] and guest_artifacts() is None:
            return "tests/vmm/fetch-guest.sh cannot make the guest kernel and initramfs here"
        return None
    return run_cases(globals(), "sky-events", Fleet, skip=skip)


if __name__ == "__main__":
    sys.exit(main())
