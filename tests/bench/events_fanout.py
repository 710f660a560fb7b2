#!/usr/bin/env python3
"""Event fan-out latency: W watchers of GET /v1/events?watch=true, then R
rounds of one change each (a token created through the API); for each
round, the time from sending the POST to the moment every watcher has read
the event, and the POST's own time.  Prints median and max over the rounds.
The client reads the watchers one after the other, so the figure includes
Python reading W sockets in turn: an upper bound of the server's fan-out.
Printed, not a test: run by hand.

usage: tests/bench/events_fanout.py [--watchers W] [--rounds R]
       (binaries from build/, or $SKYROOTD as the tests use)
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
from fleetlib import Fleet  # noqa: E402
from events import Watch, make_token  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--watchers", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=20)
    a = ap.parse_args()
    f = Fleet(tempfile.mkdtemp(prefix="evfanout-"))
    try:
        # every watcher is a connection from 127.0.0.1
        f.start(extra=["--api-conns-per-addr", str(a.watchers + 16), "--events-watchers", str(a.watchers + 8)])
        ws = [Watch(f, "heartbeat=300s") for _ in range(a.watchers)]
        every, post = [], []
        for _ in range(a.rounds):
            t0 = time.perf_counter()
            tok = make_token(f)
            t1 = time.perf_counter()
            for w in ws:
                while True:
                    e = w.event(10)
                    if e is None:
                        sys.exit("a watcher saw nothing for 10 s")
                    if e.get("object_id") == tok["id"] and e.get("type") == "token.created":
                        break
            every.append(time.perf_counter() - t0)
            post.append(t1 - t0)
        ms = lambda x: f"{x * 1000:.1f} ms"  # noqa: E731
        print(f"{a.watchers} watchers, {a.rounds} changes: POST -> every watcher has the event: median "
              f"{ms(statistics.median(every))}, max {ms(max(every))}; the POST alone: median "
              f"{ms(statistics.median(post))}; load {os.getloadavg()[0]:.1f}")
    finally:
        f.close()


if __name__ == "__main__":
    main()
