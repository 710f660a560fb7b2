#!/usr/bin/env python3
"""skyrootd through an outage of its PostgreSQL (issue 14).  The test
starts a private PostgreSQL of its own (tests/pg/pgserver.py: it stops and
starts that server, never the run's $SKY_TEST_PG one), so it runs in both
runs of deploy/test.sh; without the PostgreSQL 15 binaries it is a skip
with the reason (a failure under CI=true, as every skip).

Usage: pg_outage.py CASE
  outage   a controller on PostgreSQL with two real agents online, a token
           and a board's new name acknowledged; the server stopped for 30 s
           (OUTAGE_S): skyrootd keeps running, the boards keep their
           sessions, API calls that need the store answer 503 with
           Retry-After and the error code "unavailable", the log says the
           connection was lost once (not per request); the server started
           again on the same data and port: calls succeed again without a
           restart of skyrootd, the log says it is back once, and what was
           acknowledged before is there (the token with its uses, the name)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pg"))
import fleetlib  # noqa: E402
from fleetlib import SKY_SLOW, Fail, Fleet, check, run_cases, wait_for  # noqa: E402
import pgserver  # noqa: E402

OUTAGE_S = 30
LOST = "store: lost the connection to PostgreSQL"
BACK = "store: the connection to PostgreSQL is back"


class OutageFleet(Fleet):
    """A fleet whose store is on a PostgreSQL server of its own (self.pg)."""

    def __init__(self, tmp):
        # beside TMP, not in it: as root the server runs as another user,
        # which must reach its folder (pgserver.py)
        self.pg = pgserver.PgServer(tempfile.mkdtemp(prefix="skyroot-pg-"))
        try:
            uri = self.pg.start()
        except (OSError, subprocess.CalledProcessError) as e:
            self.pg.stop()
            shutil.rmtree(self.pg.root, ignore_errors=True)
            raise Fail(f"the test's PostgreSQL did not start: {e} {getattr(e, 'stderr', '')}")
        # this fleet's database on its own server: fleetlib's psql goes there
        fleetlib.SKY_TEST_PG = uri.rsplit("/", 1)[0]
        super().__init__(tmp, engine="postgresql")

    def close(self):
        problems = super().close()  # the controller first, then its database
        if self.pg:
            self.pg.stop()
            shutil.rmtree(self.pg.root, ignore_errors=True)
            self.pg = None
        return problems


def store_call(f):
    """A call that needs the store: the token list. (status, headers, JSON)."""
    st, hdrs, raw = f.request("GET", "/v1/tokens", timeout=10 * SKY_SLOW)
    try:
        body = json.loads(raw)
    except ValueError:
        body = raw
    return st, hdrs, body


def case_outage(f):
    f.start()
    f.online_with("a", "b", timeout=20 * SKY_SLOW)
    boards = f.online()
    spare = f.token(uses=5)
    bid = sorted(boards)[0]
    st, body = f.api("PATCH", f"/v1/boards/{bid}", {"name": "kept-name"})
    check(st == 200 and body["name"] == "kept-name", f"rename: {st} {body}")
    sessions = f.ctl.text().count("session up")
    agent_logs = {p.log_path: len(p.text()) for p in f.procs if p is not f.ctl}

    f.pg.stop()
    t0 = time.time()
    seen = 0
    while time.time() - t0 < OUTAGE_S:
        check(f.ctl.p.poll() is None, f"skyrootd exited in the outage: {f.ctl.p.returncode}")
        st, hdrs, body = store_call(f)
        check(st == 503 and hdrs.get("Retry-After", "").isdigit() and isinstance(body, dict)
              and body.get("error", {}).get("code") == "unavailable",
              f"a call that needs the store in the outage: {st} {dict(hdrs)} {body}")
        seen += 1
        time.sleep(0.5)
    check(seen >= 10, f"calls made during the outage: {seen}")
    check(all(p.p.poll() is None for p in f.procs), "skyrootd and the agents still run")
    log = f.ctl.text()
    check(log.count(LOST) == 1, f"the loss logged once, not per request ({log.count(LOST)} times):\n{log[-3000:]}")
    check(BACK not in log, "not back while the server is down")

    f.pg.resume()
    back = time.time()
    wait_for(lambda: store_call(f)[0] == 200, 10 * SKY_SLOW, "the store back without a restart", interval=0.2)
    print(f"outage {back - t0:.1f} s; calls answered again {time.time() - back:.1f} s after the server returned")
    check(f.ctl.p.poll() is None, "skyrootd never restarted")
    log = f.ctl.text()
    check(log.count(LOST) == 1 and log.count(BACK) == 1, f"lost once, back once:\n{log[-3000:]}")

    # Nothing acknowledged before the outage is lost; the sessions were kept.
    st, hdrs, body = store_call(f)
    toks = {t["id"]: t for t in body["tokens"]}
    check(spare["id"] in toks and toks[spare["id"]]["uses_left"] == 5, f"the token kept: {body}")
    st, b = f.api("GET", f"/v1/boards/{bid}")
    check(st == 200 and b["name"] == "kept-name", f"the board's name kept: {st} {b}")
    check(set(f.online()) == set(boards), f"the same boards online: {f.online()} vs {boards}")
    check(f.ctl.text().count("session up") == sessions, "no session was set up again: the boards kept theirs")
    for p in f.procs:
        if p is not f.ctl:
            new = p.text()[agent_logs[p.log_path]:]
            check("session down" not in new and "lost" not in new and "enrolled" not in new,
                  f"{os.path.basename(p.log_path)} kept its session:\n{new[-2000:]}")
    # a write works again, and a new credential of the store with it
    f.token(uses=1)


def skip():
    return pgserver.available()


def main():
    fleetlib.ENGINE = "postgresql"  # always, on a server of its own
    return run_cases(globals(), "sky-pgout", OutageFleet, skip=skip)


if __name__ == "__main__":
    sys.exit(main())
