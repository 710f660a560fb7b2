#!/usr/bin/env python3
"""API reads per second: GET /v1/boards?limit=N with N boards, JSON against
protobuf (Accept: application/x-protobuf), over keep-alive HTTPS
connections from C concurrent clients (threads; each holds one
connection).  Prints requests/s, ms per request and bytes per answer for
each encoding.  Printed, not a test: run by hand.

One board enrolls for real (an agent on a fixture board); the controller
is then stopped and that board's row copied N-1 times into its database
(new ids, names and UUIDs, the same inventory), so the list renders N full
boards.  Boards are offline then: the answer is the same size.

usage: tests/bench/api_reads.py [--boards N] [--clients C] [--seconds S]
       (binaries from build/, or $SKYROOTD, $SKYAGENT as the tests use)
"""
import argparse
import http.client
import os
import sqlite3
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
from fleetlib import Fleet, wait_for  # noqa: E402

PB = "application/x-protobuf"


def fill(f, n):
    """n boards in the database, copies of the one enrolled."""
    db = sqlite3.connect(os.path.join(f.state, "skyroot.db"), timeout=10)
    row = db.execute("SELECT id, name, uuid, enrolled_at, last_seen, cert_serial, cert_not_after, inventory "
                     "FROM boards").fetchone()
    with db:
        for i in range(1, n):
            db.execute("INSERT INTO boards(id, name, uuid, enrolled_at, last_seen, cert_serial, cert_not_after, "
                       "inventory) VALUES(?,?,?,?,?,?,?,?)",
                       (f"brd-{i:012x}", f"bench-{i:05d}", f"00000000-0000-4000-8000-{i:012x}", row[3], row[4],
                        0, row[6], row[7]))
    db.close()


def client(f, accept, n, deadline, out):
    conn = http.client.HTTPSConnection("127.0.0.1", f.api_port, context=f.sslctx, timeout=30)
    hdrs = {"Authorization": f"Bearer {f.admin}", "Accept": accept}
    done, size, lat = 0, 0, 0.0
    while time.perf_counter() < deadline:
        t = time.perf_counter()
        conn.request("GET", f"/v1/boards?limit={n}", headers=hdrs)
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            raise SystemExit(f"GET /v1/boards: {r.status} {body[:200]}")
        lat += time.perf_counter() - t
        done += 1
        size = len(body)
    conn.close()
    out.append((done, lat, size))


def run(f, accept, n, clients, seconds):
    out, threads = [], []
    deadline = time.perf_counter() + seconds
    t0 = time.perf_counter()
    for _ in range(clients):
        th = threading.Thread(target=client, args=(f, accept, n, deadline, out))
        th.start()
        threads.append(th)
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    done = sum(o[0] for o in out)
    lat = sum(o[1] for o in out)
    return done / wall, 1000 * lat / max(done, 1), out[0][2] if out else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--boards", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=10)
    a = ap.parse_args()
    if not 1 <= a.boards <= 1000:
        raise SystemExit("--boards: 1 to 1000 (one page)")
    tmp = tempfile.mkdtemp(prefix="skybench-api-")
    f = Fleet(tmp)
    try:
        f.start()
        f.online_with("a")
        for p in list(f.procs):
            if p is not f.ctl:
                p.stop()
        f.ctl.stop()
        fill(f, a.boards)
        f.start()
        wait_for(lambda: len(f.boards()) == min(a.boards, 100), 10, "boards listed")
        print(f"GET /v1/boards?limit={a.boards}: {a.boards} boards, {a.clients} clients, {a.seconds:g} s each "
              f"(python clients: their own CPU counts)")
        for name, accept in (("json", "application/json"), ("protobuf", PB)):
            rps, ms, size = run(f, accept, a.boards, a.clients, a.seconds)
            print(f"  {name:9s} {rps:8.1f} requests/s  {ms:8.2f} ms/request  {size:9d} bytes/answer")
    finally:
        f.close()


if __name__ == "__main__":
    main()
