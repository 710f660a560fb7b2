#!/usr/bin/env python3
"""Integration tests of `skyrootd migrate` (issue 14): a controller's SQLite
state moved into a private PostgreSQL (tests/pg/pgserver.py), then served
from there.  Skips (77) when PostgreSQL or skyrootd's PostgreSQL engine is
not there.
Usage: migrate.py CASE (same environment as fleet.py)."""
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "pg"))
from fleetlib import SKYROOTD, Fleet, check, run_cases, skyctl, wait_for  # noqa: E402
from images import corrupt_chunk, push, rand_file  # noqa: E402

MiB = 1 << 20


def skip():
    try:
        import pgserver
    except ImportError:
        return "tests/pg/pgserver.py is not there"
    why = pgserver.available()
    if why:
        return why
    r = subprocess.run([SKYROOTD, "migrate", "--from", "/nonexistent", "--to", "postgresql://127.0.0.1:1/x"],
                       capture_output=True, text=True, timeout=30)
    if "without PostgreSQL" in r.stderr:
        return "skyrootd was built without PostgreSQL (libpq)"
    return None


class PgFleet(Fleet):
    """A fleet and a private PostgreSQL, stopped with it.  The cluster's
    folder is one of its own under /tmp: as root the server runs as another
    user, who could not enter the case's folder."""

    def __init__(self, tmp):
        super().__init__(tmp)
        import pgserver
        self.pg = pgserver.PgServer(tempfile.mkdtemp(prefix="skymig-pg-"))
        self.pg_uri = None

    def postgres(self):
        if not self.pg_uri:
            self.pg_uri = self.pg.start()
        return self.pg_uri

    def close(self):
        problems = super().close()
        if self.pg:
            self.pg.stop()
            shutil.rmtree(self.pg.root, ignore_errors=True)
            self.pg = None
        return problems


def migrate(state, to):
    return subprocess.run([SKYROOTD, "migrate", "--from", state, "--to", to],
                          capture_output=True, text=True, timeout=600)


def stop_all(f):
    """Agents, then the controller: the state folder is left alone."""
    for p in reversed(f.procs):
        p.stop()
    f.procs = []
    f.ctl = None


def stop_agents(f):
    """The agents, and the boards seen offline: nothing changes after."""
    for p in [p for p in f.procs if p is not f.ctl]:
        p.stop()
    f.procs = [f.ctl]
    wait_for(lambda: not f.online(), 60, "every board offline", interval=0.5)


def snapshot(f):
    """What the API shows, by id: boards, tokens, images, guests, the events."""
    out = {}
    for path, key in (("/v1/boards", "boards"), ("/v1/tokens", "tokens"), ("/v1/images", "images"),
                      ("/v1/guests", "guests"), ("/v1/networks", "networks")):
        st, body = f.api("GET", path + "?limit=1000")
        check(st == 200, f"GET {path}: {st} {body}")
        out[key] = {x["id"]: x for x in body[key]}
    st, body = f.api("GET", "/v1/events?limit=1000")
    check(st == 200, f"GET /v1/events: {st} {body}")
    out["events"] = [(e["resource_version"], e["type"], e["object_id"]) for e in body["events"]]
    out["rv"] = body["resource_version"]
    return out


def pick(x, keys):
    return {k: x.get(k) for k in keys}


def case_move(f):
    """A state with boards, tokens, images, a guest and a network moves into
    PostgreSQL: migrate says OK for every image and switches the folder;
    skyrootd then serves everything as before from PostgreSQL, images
    verify, new rows get new numbers (the sequences moved past the copied
    ones), boards reconnect; a second state is refused by the database that
    now holds one."""
    f.start()
    tok = f.token(uses=5)
    ident = {b: ["--identity-dir", os.path.join(f.tmp, f"identity-{b}")] for b in ("a", "b")}
    for b in ("a", "b"):
        f.agent(b, token=tok["token"], hb=1000, extra=ident[b])
    wait_for(lambda: len(f.online()) == 2, 30, "boards a and b online")
    f.token(uses=1, ttl=600)
    sizes = {"disk1": 3 * MiB + 123, "kern": MiB // 2, "empty-tail": 2 * MiB}
    for name, size in sizes.items():
        path = os.path.join(f.tmp, name)
        rand_file(path, size)
        r = skyctl(f, "image", "push", path, "--name", name, "--kind", "kernel" if name == "kern" else "disk")
        check(r.returncode == 0, f"skyctl image push {name}: {r.stderr}")
    st, net = f.api("POST", "/v1/networks", {"name": "lan", "vlan": 12})
    check(st == 201, f"network create: {st} {net}")
    r = skyctl(f, "guest", "create", "--name", "g1", "--board", "board-a", "--kernel", "kern", "--memory", "256M")
    check(r.returncode == 0, f"guest create: {r.stderr}")
    # junk for a kernel: the guest fails on the board, and stays so
    wait_for(lambda: f.api("GET", "/v1/guests/g1")[1].get("state") == "failed", 60, "guest g1 settled")
    stop_agents(f)
    before = snapshot(f)
    check(len(before["images"]) == 3 and len(before["guests"]) == 1 and len(before["boards"]) == 2,
          f"the state to move: {before}")

    uri = f.postgres()
    r = migrate(f.state, uri)
    check(r.returncode == 1 and "in use" in r.stderr, f"migrate while skyrootd runs: {r.returncode} {r.stderr}")
    check(not os.path.exists(os.path.join(f.state, "store.url")), "nothing switched while skyrootd runs")
    stop_all(f)
    r = migrate(f.state, uri)
    print(r.stdout)
    check(r.returncode == 0, f"migrate: {r.returncode} {r.stdout}{r.stderr}")
    for img in before["images"].values():
        check(f"OK   {img['name']} ({img['id']})" in r.stdout, f"image {img['name']} OK: {r.stdout}")
    check("3 images: 3 OK, 0 BAD" in r.stdout and "now uses PostgreSQL" in r.stdout, f"summary: {r.stdout}")
    check(uri not in r.stdout + r.stderr, "the URI is not printed")
    url = os.path.join(f.state, "store.url")
    check(stat.S_IMODE(os.stat(url).st_mode) == 0o600 and open(url).read().strip() == uri, "store.url, 0600")
    check(not os.path.exists(os.path.join(f.state, "skyroot.db")) and
          os.path.exists(os.path.join(f.state, "skyroot.db.migrated")), "the SQLite store renamed aside")

    f.start()
    after = snapshot(f)
    for key in ("tokens", "images", "guests", "networks"):
        check(after[key] == before[key], f"{key} after the move: {after[key]} != {before[key]}")
    for bid, b in before["boards"].items():
        check(bid in after["boards"], f"board {bid} after the move")
        keep = ("id", "name", "uuid", "cpus", "memory_bytes", "firmware", "enrolled_at", "last_seen")
        check(pick(after["boards"][bid], keep) == pick(b, keep), f"board {bid}: {after['boards'][bid]} != {b}")
    check(after["events"] == before["events"] and after["rv"] == before["rv"], "the event log moved as it was")
    for iid, img in after["images"].items():
        r = skyctl(f, "image", "verify", iid)
        check(r.returncode == 0, f"image verify {img['name']} on PostgreSQL: {r.stdout}{r.stderr}")
    # New rows after the copied ones: a chunk, an event, an audit entry.
    path = os.path.join(f.tmp, "new")
    rand_file(path, MiB + 5)
    r = skyctl(f, "-o", "json", "image", "push", path, "--name", "new")
    check(r.returncode == 0, f"a push on PostgreSQL: {r.stderr}")
    r = skyctl(f, "image", "verify", "new")
    check(r.returncode == 0, f"verify the new image: {r.stdout}{r.stderr}")
    f.token()
    st, body = f.api("GET", "/v1/events?limit=1000")
    check(st == 200 and body["resource_version"] > before["rv"] and
          all(e["resource_version"] > before["rv"] for e in body["events"][len(before["events"]):]),
          f"new events come after the moved ones: {body['resource_version']} vs {before['rv']}")
    # The boards come back with the certificates they have.
    for b in ("a", "b"):
        f.agent(b, hb=1000, name=f"{b}-again", extra=ident[b])
    wait_for(lambda: set(before["boards"]) <= set(f.online()), 60, "boards a and b online on PostgreSQL",
             interval=0.5)

    # A second state into the database that holds the first: refused.
    other = os.path.join(f.tmp, "other")
    r = subprocess.run([SKYROOTD, "init", "--state", other], capture_output=True, text=True)
    check(r.returncode == 0, f"init other: {r.stderr}")
    r = migrate(other, uri)
    check(r.returncode == 1 and "holds a store already" in r.stderr, f"non-empty database: {r.stderr}")
    check(os.path.exists(os.path.join(other, "skyroot.db")) and
          not os.path.exists(os.path.join(other, "store.url")), "the other state is untouched")


def case_corrupt(f):
    """A chunk corrupted in the SQLite store: migrate copies, verifies,
    names the image BAD, exits 1 and leaves the folder on SQLite; usage
    errors are refused."""
    f.start()
    ids = {}
    for name in ("good", "bad"):
        path = os.path.join(f.tmp, name)
        rand_file(path, 3 * MiB)
        st, body = push(f, path, name)
        check(st == 201, f"push {name}: {st}")
        ids[name] = body["id"]
    stop_all(f)
    corrupt_chunk(f, ids["bad"], 1)
    r = subprocess.run([SKYROOTD, "migrate", "--from", f.state, "--to", os.path.join(f.tmp, "x.db")],
                       capture_output=True, text=True)
    check(r.returncode == 2 and "postgresql://" in r.stderr, f"--to not PostgreSQL: {r.returncode} {r.stderr}")
    listing = sorted(os.listdir(f.state))
    r = migrate(f.state, f.postgres())
    print(r.stdout, r.stderr)
    check(r.returncode == 1, f"migrate of a corrupt store: {r.returncode}")
    check(f"OK   good ({ids['good']})" in r.stdout and f"BAD  bad ({ids['bad']})" in r.stdout and
          "chunk 1 does not hash" in r.stdout, f"per image: {r.stdout}")
    check("2 images: 1 OK, 1 BAD" in r.stdout and "still uses its SQLite store" in r.stderr, f"summary: {r.stderr}")
    check(sorted(os.listdir(f.state)) == listing, f"the folder is unchanged: {sorted(os.listdir(f.state))} != {listing}")
    # It still runs on SQLite, and knows the damage.
    f.start()
    r = skyctl(f, "image", "verify", ids["bad"])
    check(r.returncode != 0, f"verify on SQLite still finds the bad chunk: {r.stdout}")


def main():
    # The source of a migration is a SQLite store whatever the run's
    # engine (the ASan run keeps its fleets in PostgreSQL); the destination
    # is the case's own private PostgreSQL.
    why = "migrate moves a SQLite store into PostgreSQL"
    return run_cases(globals(), "skymig", PgFleet, skip=skip, sqlite_only={"move": why, "corrupt": why})


if __name__ == "__main__":
    sys.exit(main())
