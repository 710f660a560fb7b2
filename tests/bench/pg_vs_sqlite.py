#!/usr/bin/env python3
"""skyrootd's store on SQLite against PostgreSQL (issue 14), side by side in
one run, printed as a table with ratios (figures, not a test; a skip, exit
77, without the PostgreSQL 15 binaries):

  enrollments/s   bench_agents --mode enroll --stop-at enrolled against
                  A. 1 controller on SQLite, B. 1 controller on PostgreSQL,
                  C. 3 controllers on one PostgreSQL database (the 2nd and
                  3rd run on a copy of the 1st's state folder, which carries
                  STATE/store.url), the boards spread over them (one
                  bench_agents per controller, started together; the
                  concurrency split);
  API reads/s     GET /v1/boards and GET /v1/boards/ID from --clients client
                  processes (one keep-alive HTTPS connection each), against
                  the same three set-ups (in C the clients spread over the 3);
  image streaming the same image pushed to A and to B; MB/s to 1 board and to
                  --boards boards at once (tests/bench/images.py's boards and
                  timing); the issue's aim: PostgreSQL >= 0.8x SQLite.  Each
                  run streams twice on the same controller process: cold
                  (the first stream after its start: the chunk cache is
                  empty) and warm (the same boards again, cold themselves:
                  what the controller's chunk cache, --chunk-cache, gives),
                  with the cache's hits and misses of each from /metrics.
                  --sqlite-chunk-cache / --pg-chunk-cache SIZE pass
                  --chunk-cache to A / B (default: each engine's default;
                  --pg-chunk-cache 0 is the controller without a cache).

The PostgreSQL is private (tests/pg/pgserver.py: fsync on, shared_buffers
16MB, on this machine's disk), one database per set-up.  Every figure is
run --runs times (at least 2), interleaved (the order of the set-ups
reverses from run to run), every run printed, the table from the medians.
Beside each rate: the controllers' CPU per operation and PostgreSQL's (its
postmaster and backends, /proc), so one sees what dominates.

usage: tests/bench/pg_vs_sqlite.py [--enroll-n 1000] [--concurrency 64] [--clients 8]
           [--seconds 8] [--size-mib 256] [--boards 4] [--many-size-mib 64] [--runs 2]
           [--pg-stats] [--bench-agents PATH] [--phases enroll,reads,stream]
           [--sqlite-chunk-cache SIZE] [--pg-chunk-cache SIZE]
           (binaries from build/, or $SKYROOTD, $SKYAGENT, $BUILD as the tests use)
meson: meson test -C build --benchmark --verbose pg_vs_sqlite
"""
import argparse
import http.client
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "pg"))
sys.path.insert(0, HERE)
import pgserver  # noqa: E402
from fleetlib import ROOT, SKYCTL, SKYROOTD, Fleet, Proc, free_port, wait_for  # noqa: E402
from images import Boards, children, cpu_s, make_file, skyroot_run  # noqa: E402

BENCH_AGENTS = os.path.join(ROOT, os.environ.get("BUILD", "build"), "tests", "bench", "bench_agents")
SETUPS = ("sqlite", "pg1", "pg3")
LABEL = {"sqlite": "1 ctl, SQLite", "pg1": "1 ctl, PostgreSQL", "pg3": "3 ctl, 1 PostgreSQL"}


class Setup:
    """A store and its controllers (1, or 3 sharing one PostgreSQL database)."""

    def __init__(self, tmp, name, uri=None, n_ctl=1, extra=()):
        self.name = name
        self.extra = list(extra)
        self.tmp = os.path.join(tmp, name)
        os.makedirs(self.tmp)
        self.f = Fleet(self.tmp, init_extra=["--db", uri] if uri else [])
        self.states = [self.f.state]
        self.ports = [(self.f.agent_port, self.f.api_port)]
        for i in range(1, n_ctl):
            st = os.path.join(self.tmp, f"state{i + 1}")
            shutil.copytree(self.f.state, st)
            self.states.append(st)
            self.ports.append((free_port(), free_port()))
        self.ctls = []

    def start(self):
        """Fresh controller processes (default threads, default log level),
        one after the other: started together on a new PostgreSQL store, all
        but one may exit (the admin credential's import at start is a read
        then an INSERT, and the others' INSERTs collide: EEXIST)."""
        self.ctls = []
        for i, (st, (ap, hp)) in enumerate(zip(self.states, self.ports)):
            p = Proc([SKYROOTD, "run", "--state", st, "--agent-listen", f"127.0.0.1:{ap}",
                      "--api-listen", f"127.0.0.1:{hp}"] + self.extra, os.path.join(self.tmp, f"skyrootd{i + 1}.log"))
            self.ctls.append(p)
            self.f.ctl = self.ctls[0]
            self.f.procs = list(self.ctls)
            wait_for(lambda: health(self.f, hp) or p.p.poll() is not None, 20,
                     f"{self.name} controller {i + 1} health")
            if p.p.poll() is not None:
                raise SystemExit(f"{self.name}: skyrootd {i + 1} exited {p.p.returncode} at start; see {p.log_path}")

    def stop(self):
        for p in self.ctls:
            rc = p.stop()
            if rc not in (0, None):
                raise SystemExit(f"{self.name}: skyrootd exited {rc} on SIGTERM; see {p.log_path}")
        self.ctls = []
        self.f.procs = []
        self.f.ctl = None

    def cpu(self):
        return sum(cpu_s(p.p.pid) for p in self.ctls)


def health(f, port):
    try:
        c = http.client.HTTPSConnection("127.0.0.1", port, context=f.sslctx, timeout=2)
        c.request("GET", "/healthz")
        ok = c.getresponse().status == 200
        c.close()
        return ok
    except OSError:
        return False


class PgCpu:
    """CPU of the PostgreSQL server: the postmaster and its children now
    alive (the controllers keep their connections through a phase)."""

    def __init__(self, pg):
        self.pg = pg

    def total(self):
        pid = self.pg.pid()
        t = 0.0
        for p in [pid] + children(pid):
            try:
                t += cpu_s(p)
            except OSError:
                pass
        return t


def figures(text):
    out = {}
    for line in text.splitlines():
        w = line.split()
        if len(w) >= 3 and w[0] == "figure":
            out[w[1]] = float(w[2])
    return out


def enroll_run(s, n, concurrency, pgcpu, tag):
    """One enrollment run of n boards on set-up s (its controllers fresh):
    (boards/s by the wall clock of the slowest bench_agents, controller CPU
    us per enrollment, PostgreSQL CPU us per enrollment)."""
    s.start()
    try:
        tok = s.f.token(uses=n)["token"]
        k = len(s.ctls)
        parts = [n // k + (1 if i < n % k else 0) for i in range(k)]
        conc = [max(1, concurrency // k)] * k
        c0, p0 = s.cpu(), pgcpu.total() if pgcpu else 0.0
        t0 = time.perf_counter()
        procs = []
        for i in range(k):
            log = open(os.path.join(s.tmp, f"bench_agents.{tag}.{i}.log"), "w+")
            procs.append((subprocess.Popen(
                [BENCH_AGENTS, "--name", "e", "--mode", "enroll", "--stop-at", "enrolled",
                 "--controller", f"127.0.0.1:{s.ports[i][0]}", "--ca", s.f.pin, "--token", tok,
                 "--boards", str(parts[i]), "--concurrency", str(conc[i]), "--ctl-pid", str(s.ctls[i].p.pid)],
                stdout=log, stderr=subprocess.STDOUT), log))
        for p, log in procs:
            if p.wait(600) != 0:
                log.seek(0)
                raise SystemExit(f"bench_agents on {s.name} failed:\n{log.read()[-3000:]}")
        wall = time.perf_counter() - t0
        ctl = s.cpu() - c0
        pgc = (pgcpu.total() - p0) if pgcpu else 0.0
        own = []
        for p, log in procs:
            log.seek(0)
            own.append(figures(log.read()).get("e.rate", 0.0))
            log.close()
        return n / wall, ctl * 1e6 / n, pgc * 1e6 / n, own
    finally:
        s.stop()


def reader(port, cafile, token, paths, deadline, q):
    import ssl
    ctx = ssl.create_default_context(cafile=cafile)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
    hdrs = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    done, i = 0, 0
    while time.perf_counter() < deadline:
        path = paths[i % len(paths)]
        i += 1
        conn.request("GET", path, headers=hdrs)
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            q.put(f"GET {path}: {r.status} {body[:200]!r}")
            return
        done += 1
    conn.close()
    q.put(done)


def reads_run(s, what, clients, seconds, pgcpu, ids):
    """GET requests/s from `clients` processes spread over s's controllers,
    with controller and PostgreSQL CPU us per request."""
    s.start()
    try:
        if what == "list":
            paths = ["/v1/boards"]
        else:
            paths = [f"/v1/boards/{b}" for b in ids]
        q = multiprocessing.Queue()
        c0, p0 = s.cpu(), pgcpu.total() if pgcpu else 0.0
        t0 = time.perf_counter()
        deadline = t0 + seconds
        ps = [multiprocessing.Process(target=reader, args=(s.ports[i % len(s.ctls)][1], s.f.ca_file, s.f.admin,
                                                           paths[i::clients] or paths, deadline, q))
              for i in range(clients)]
        for p in ps:
            p.start()
        got = [q.get(timeout=seconds + 60) for _ in ps]
        for p in ps:
            p.join()
        wall = time.perf_counter() - t0
        bad = [g for g in got if isinstance(g, str)]
        if bad:
            raise SystemExit(f"{s.name}: {bad[0]}")
        n = sum(got)
        ctl = s.cpu() - c0
        pgc = (pgcpu.total() - p0) if pgcpu else 0.0
        return n / wall, ctl * 1e6 / max(n, 1), pgc * 1e6 / max(n, 1)
    finally:
        s.stop()


def board_ids(s, count):
    s.start()
    try:
        st, body = s.f.api("GET", f"/v1/boards?limit={count}")
        if st != 200:
            raise SystemExit(f"{s.name}: GET /v1/boards: {st} {body}")
        return [b["id"] for b in body["boards"]]
    finally:
        s.stop()


def psql(pg, db, sql):
    """Run sql on database db of the private server as postgres: its rows (psql -At)."""
    try:
        r = pgserver._run([pgserver.BIN + "/psql", "-X", "-A", "-t", "-F", " | ", "-h", pg.sock, "-p",
                           str(pg.port), "-U", "postgres", "-d", db, "-c", sql], pgserver._owner(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except subprocess.CalledProcessError as e:
        raise SystemExit(f"psql on {db}: {sql[:80]}...: {e.stderr.strip()}")
    return r.stdout.strip()


def pg_stats_on(pg, dbs):
    """pg_stat_statements in the server (a restart) and in each database."""
    psql(pg, "postgres", "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
    pgserver._run([pgserver.BIN + "/pg_ctl", "-D", pg.data, "-l", os.path.join(pg.root, "log"), "-w", "-t", "60",
                   "-m", "fast", "restart"], pgserver._owner(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for db in dbs:
        psql(pg, db, "CREATE EXTENSION pg_stat_statements")


def pg_stats_print(pg, phase, per, n):
    """The statements that took the most server time since the last reset
    (calls per operation: n operations of the phase), then a reset."""
    rows = psql(pg, "bench_pg1",
                "SELECT d.datname, s.calls, round(s.total_exec_time::numeric, 1), "
                "round(s.mean_exec_time::numeric, 4), left(regexp_replace(s.query, '\\s+', ' ', 'g'), 100) "
                "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname LIKE 'bench_%' "
                "ORDER BY s.total_exec_time DESC LIMIT 8")
    print(f"pg_stat_statements, {phase} ({n} {per} over all PostgreSQL set-ups): database | calls | total ms | "
          f"mean ms | statement")
    for line in rows.splitlines():
        print("  " + line)
    calls = psql(pg, "bench_pg1", "SELECT sum(s.calls) FROM pg_stat_statements s JOIN pg_database d "
                 "ON d.oid = s.dbid WHERE d.datname LIKE 'bench_%'")
    if calls and n:
        print(f"  statements per {per[:-1]}: {float(calls) / n:.1f}")
    psql(pg, "bench_pg1", "SELECT pg_stat_statements_reset()")


def cache_counts(s):
    """The first controller's chunk cache counters: (hits, misses)."""
    st, _, raw = s.f.request("GET", "/metrics")
    if st != 200:
        raise SystemExit(f"{s.name}: GET /metrics: {st}")
    got = {}
    for line in raw.decode().splitlines():
        w = line.split()
        if len(w) == 2 and w[0] in ("skyroot_chunk_cache_hits_total", "skyroot_chunk_cache_misses_total"):
            got[w[0]] = int(float(w[1]))
    return got.get("skyroot_chunk_cache_hits_total", 0), got.get("skyroot_chunk_cache_misses_total", 0)


def stream_phase(a, tmp, setups, pgcpu):
    """The same images pushed to A and B; then --runs times, for 1 board and
    for --boards boards, on a fresh controller process: a cold stream (its
    chunk cache empty) and a warm one (the same boards, cold themselves,
    again).  ({(setup, "one"|"many", "cold"|"warm"): [(MB/s, ctl CPU ms per
    MB, PostgreSQL CPU ms per MB, cache hits, cache misses)]}, pushes)."""
    big = os.path.join(tmp, "big.img")
    many = os.path.join(tmp, "many.img")
    size, msize = a.size_mib << 20, a.many_size_mib << 20
    make_file(big, size)
    make_file(many, msize)
    img = {}
    for k in ("sqlite", "pg1"):
        s = setups[k]
        s.start()
        try:
            conf = os.path.join(s.f.state, "skyctl.conf")
            c0, p0 = s.cpu(), pgcpu.total()
            t0 = time.perf_counter()
            subprocess.run([SKYCTL, "--config", conf, "image", "push", big, "--name", "big"], check=True,
                           stdout=subprocess.DEVNULL)
            push = time.perf_counter() - t0
            pushcpu = (s.cpu() - c0, (pgcpu.total() - p0) if k != "sqlite" else 0.0)
            subprocess.run([SKYCTL, "--config", conf, "image", "push", many, "--name", "many"], check=True,
                           stdout=subprocess.DEVNULL)
            tok = s.f.token(uses=a.boards + 1)["token"]
            one = Boards(s.f, os.environ.copy(), 1, 0, f"{a.size_mib + 64}M")
            one.enroll(tok)
            mb = Boards(s.f, os.environ.copy(), a.boards, 1, f"{a.many_size_mib + 64}M")
            mb.enroll(tok)
            img[k] = {"push": push, "pushcpu": pushcpu, "one": one, "many": mb,
                      "big": s.f.api("GET", "/v1/images/big")[1]["id"],
                      "many_id": s.f.api("GET", "/v1/images/many")[1]["id"]}
        finally:
            s.stop()
        print(f"push {a.size_mib} MiB into {LABEL[k]}: {size / push / 1e6:.0f} MB/s; ctl CPU "
              f"{pushcpu[0]:.2f} s, PostgreSQL CPU {pushcpu[1]:.2f} s", flush=True)
    stream = {(k, w, t): [] for k in ("sqlite", "pg1") for w in ("one", "many") for t in ("cold", "warm")}
    for r in range(a.runs):
        for w in ("one", "many"):
            for k in (("sqlite", "pg1") if r % 2 == 0 else ("pg1", "sqlite")):
                s = setups[k]
                s.start()
                try:
                    boards = img[k][w]
                    iid = img[k]["big"] if w == "one" else img[k]["many_id"]
                    nbytes = size if w == "one" else msize * a.boards
                    for t in ("cold", "warm"):
                        c0, p0, h0 = s.cpu(), pgcpu.total(), cache_counts(s)
                        total, _, _, _ = skyroot_run(boards, iid, size if w == "one" else msize)
                        ctl, pgc = s.cpu() - c0, (pgcpu.total() - p0) if k != "sqlite" else 0.0
                        h1 = cache_counts(s)
                        res = (nbytes / total / 1e6, ctl * 1e3 / (nbytes / 1e6), pgc * 1e3 / (nbytes / 1e6),
                               h1[0] - h0[0], h1[1] - h0[1])
                        stream[(k, w, t)].append(res)
                        what = "1 board " if w == "one" else f"{a.boards} boards"
                        print(f"stream run {r + 1}/{a.runs} {what} {t} {LABEL[k]:20s} {res[0]:8.1f} MB/s; ctl CPU "
                              f"{res[1]:.2f} ms, PostgreSQL CPU {res[2]:.2f} ms per MB; chunk cache {res[3]} hits, "
                              f"{res[4]} misses", flush=True)
                finally:
                    s.stop()
    return stream, img


def stream_table(a, row, stream, img):
    """The streaming lines of the summary: cold and warm side by side, each
    as a ratio to SQLite's (cold to cold, warm to warm)."""
    size = a.size_mib << 20
    push = {k: size / img[k]["push"] / 1e6 for k in ("sqlite", "pg1")}
    print(row.format(f"push {a.size_mib} MiB (MB/s, 1 run)", fmt(push["sqlite"]), fmt(push["pg1"]), "",
                     f"B/A {fmt(push['pg1'] / push['sqlite'])}"))
    for w, label in (("one", f"stream 1 board, {a.size_mib} MiB"),
                     ("many", f"stream {a.boards} boards x {a.many_size_mib} MiB")):
        for t in ("cold", "warm"):
            v = {k: [med([x[i] for x in stream[(k, w, t)]]) for i in range(5)] for k in ("sqlite", "pg1")}
            rt = v["pg1"][0] / v["sqlite"][0]
            print(row.format(f"{label}, {t} (MB/s)", fmt(v["sqlite"][0]), fmt(v["pg1"][0]), "",
                             f"B/A {rt:.3f}; aim >= 0.8x: {'ok' if rt >= 0.8 else 'MISS'}; runs: " +
                             " | ".join(", ".join(f"{x[0]:.0f}" for x in stream[(k, w, t)])
                                        for k in ("sqlite", "pg1"))))
            print(row.format("  controller CPU per MB (ms)", fmt(v["sqlite"][1]), fmt(v["pg1"][1]), "", ""))
            print(row.format("  PostgreSQL CPU per MB (ms)", "", fmt(v["pg1"][2]), "", ""))
            print(row.format("  chunk cache hits / misses", f"{v['sqlite'][3]:.0f}/{v['sqlite'][4]:.0f}",
                             f"{v['pg1'][3]:.0f}/{v['pg1'][4]:.0f}", "", ""))


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt(x):
    return "-" if x != x else (f"{x:.0f}" if abs(x) >= 100 else f"{x:.2f}" if abs(x) >= 1 else f"{x:.3g}")


def main():
    global BENCH_AGENTS
    ap = argparse.ArgumentParser()
    ap.add_argument("--enroll-n", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--boards", type=int, default=4)
    ap.add_argument("--many-size-mib", type=int, default=64)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--pg-stats", action="store_true", help="pg_stat_statements on (it costs a little): the "
                    "statements that take PostgreSQL's time, per phase")
    ap.add_argument("--bench-agents", default=BENCH_AGENTS, help="the bench_agents binary (default: $BUILD's)")
    ap.add_argument("--phases", default="enroll,reads,stream", help="which of enroll, reads, stream to run")
    ap.add_argument("--sqlite-chunk-cache", help="--chunk-cache SIZE for the SQLite controller (default: its default)")
    ap.add_argument("--pg-chunk-cache", help="--chunk-cache SIZE for the PostgreSQL controllers (default: theirs)")
    a = ap.parse_args()
    phases = set(a.phases.split(","))
    if not phases or phases - {"enroll", "reads", "stream"}:
        raise SystemExit("--phases: a comma-separated list of enroll, reads, stream")
    if "reads" in phases and "enroll" not in phases:
        raise SystemExit("--phases: reads needs enroll (the boards it reads)")
    if a.runs < 2:
        raise SystemExit("--runs must be at least 2 (every figure is run at least twice)")
    if not 3 <= a.enroll_n <= 10000:
        raise SystemExit("--enroll-n: 3 .. 10000 (one token has at most 10000 uses)")
    why = pgserver.available()
    if why:
        print(f"pg_vs_sqlite: SKIP: {why}", file=sys.stderr)
        return 77
    BENCH_AGENTS = a.bench_agents
    for b in (SKYROOTD, SKYCTL, BENCH_AGENTS):
        if not os.access(b, os.X_OK):
            raise SystemExit(f"{b} missing: build it first (ninja -C build)")
    base = os.path.join(ROOT, "build", "bench")
    os.makedirs(base, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="pg-vs-sqlite-", dir=base)  # on the disk a state folder would be on
    os.chmod(tmp, 0o711)  # as root, PostgreSQL runs as another user (pgserver.py): it must reach pg/
    pg = pgserver.PgServer(os.path.join(tmp, "pg"))
    setups = {}
    ok = False
    try:
        pg.start()
        owner = pgserver._owner()
        for db in ("bench_pg1", "bench_pg3"):
            pgserver._run([pgserver.BIN + "/createdb", "-h", pg.sock, "-p", str(pg.port), "-U", "postgres", db],
                          owner, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if a.pg_stats:
            pg_stats_on(pg, ("bench_pg1", "bench_pg3"))
        base_uri = pg.uri.rsplit("/", 1)[0]
        sq_extra = ["--chunk-cache", a.sqlite_chunk_cache] if a.sqlite_chunk_cache else []
        pg_extra = ["--chunk-cache", a.pg_chunk_cache] if a.pg_chunk_cache else []
        setups["sqlite"] = Setup(tmp, "sqlite", extra=sq_extra)
        setups["pg1"] = Setup(tmp, "pg1", base_uri + "/bench_pg1", extra=pg_extra)
        setups["pg3"] = Setup(tmp, "pg3", base_uri + "/bench_pg3", n_ctl=3, extra=pg_extra)
        pgcpu = PgCpu(pg)
        load = open("/proc/loadavg").read().split()[:3]
        print(f"pg_vs_sqlite: {os.cpu_count()} cores, load average {' '.join(load)}; PostgreSQL "
              f"{pg.uri} (fsync on); state under {tmp}; phases {','.join(sorted(phases))}; --chunk-cache "
              f"SQLite {a.sqlite_chunk_cache or 'default'}, PostgreSQL {a.pg_chunk_cache or 'default'}", flush=True)

        def order(r):
            return SETUPS if r % 2 == 0 else tuple(reversed(SETUPS))

        # ---- enrollment
        enr = {k: [] for k in SETUPS}
        for r in range(a.runs if "enroll" in phases else 0):
            for k in order(r):
                res = enroll_run(setups[k], a.enroll_n, a.concurrency, pgcpu if k != "sqlite" else None,
                                 f"r{r}")
                enr[k].append(res)
                print(f"enroll run {r + 1}/{a.runs} {LABEL[k]:20s} {res[0]:8.1f} boards/s (wall), "
                      f"bench_agents' own {'+'.join(f'{x:.1f}' for x in res[3])}; ctl CPU {res[1]:.0f} us, "
                      f"PostgreSQL CPU {res[2]:.0f} us per enrollment", flush=True)

        if a.pg_stats and "enroll" in phases:
            pg_stats_print(pg, "enrollment", "enrollments", 2 * a.runs * a.enroll_n)

        # ---- API reads
        ids = {k: board_ids(setups[k], 200) for k in SETUPS} if "reads" in phases else {}
        reads = {(k, w): [] for k in SETUPS for w in ("list", "one")}
        for r in range(a.runs if "reads" in phases else 0):
            for w in ("list", "one"):
                for k in order(r):
                    res = reads_run(setups[k], w, a.clients, a.seconds, pgcpu if k != "sqlite" else None, ids[k])
                    reads[(k, w)].append(res)
                    what = "GET /v1/boards   " if w == "list" else "GET /v1/boards/ID"
                    print(f"reads run {r + 1}/{a.runs} {what} {LABEL[k]:20s} {res[0]:8.1f} requests/s; ctl CPU "
                          f"{res[1]:.0f} us, PostgreSQL CPU {res[2]:.0f} us per request", flush=True)

        if a.pg_stats and "reads" in phases:
            pg_stats_print(pg, "API reads", "requests", round(sum(
                x[0] * a.seconds for k in ("pg1", "pg3") for w in ("list", "one") for x in reads[(k, w)])))

        # ---- image streaming: SQLite against PostgreSQL, 1 controller each
        if "stream" in phases:
            stream, img = stream_phase(a, tmp, setups, pgcpu)
            if a.pg_stats:
                pg_stats_print(pg, "image push and streaming", "MBs", round(
                    ((a.size_mib + a.many_size_mib) * 2 + 2 * a.runs * (a.size_mib + a.many_size_mib * a.boards))
                    * 1.048576))

        # ---- the table
        load = open("/proc/loadavg").read().split()[:3]
        rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip() or "unknown"
        print(f"\n== summary (commit {rev}; {os.cpu_count()} cores shared by the controllers, PostgreSQL and the "
              f"clients; load average now {' '.join(load)}; medians of {a.runs} runs)")
        row = "{:<44s} {:>10s} {:>10s} {:>10s}  {}"
        print(row.format("what", "A SQLite", "B PG", "C 3xPG", "ratios / notes"))
        print(row.format("-" * 44, "-" * 10, "-" * 10, "-" * 10, "-" * 30))

        def line3(label, vals, note=""):
            a_, b_, c_ = vals
            print(row.format(label, fmt(a_), fmt(b_), fmt(c_),
                             f"B/A {fmt(b_ / a_)}, C/A {fmt(c_ / a_)}, C/B {fmt(c_ / b_)}{note}"))

        def cpu3(label, vals):
            print(row.format(label, *(fmt(v) for v in vals), ""))

        if "enroll" in phases:
            e = {k: [med([x[i] for x in enr[k]]) for i in range(3)] for k in SETUPS}
            line3(f"enrollments/s ({a.enroll_n} boards, conc {a.concurrency})", [e[k][0] for k in SETUPS],
                  "; runs: " + " | ".join(", ".join(f"{x[0]:.0f}" for x in enr[k]) for k in SETUPS))
            cpu3("  controllers' CPU per enrollment (us)", [e[k][1] for k in SETUPS])
            cpu3("  PostgreSQL CPU per enrollment (us)", [e[k][2] for k in SETUPS])
        for w, label in (("list", "GET /v1/boards"), ("one", "GET /v1/boards/ID")) if "reads" in phases else ():
            v = {k: [med([x[i] for x in reads[(k, w)]]) for i in range(3)] for k in SETUPS}
            line3(f"{label} req/s ({a.clients} clients, {a.runs * a.enroll_n} boards)", [v[k][0] for k in SETUPS],
                  "; runs: " + " | ".join(", ".join(f"{x[0]:.0f}" for x in reads[(k, w)]) for k in SETUPS))
            cpu3("  controllers' CPU per request (us)", [v[k][1] for k in SETUPS])
            cpu3("  PostgreSQL CPU per request (us)", [v[k][2] for k in SETUPS])
        if "stream" in phases:
            stream_table(a, row, stream, img)
        ok = True
    finally:
        for s in setups.values():
            try:
                s.stop()
            except SystemExit as e:
                print(e, file=sys.stderr)
        try:
            pg.stop()
        except Exception as e:  # noqa: BLE001
            print(f"pg_vs_sqlite: stopping PostgreSQL: {e}", file=sys.stderr)
        if ok and os.environ.get("KEEP") != "1":
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"pg_vs_sqlite: logs kept in {tmp}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
