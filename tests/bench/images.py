#!/usr/bin/env python3
"""Image benchmark (prints figures; not a timed test).

Side by side, in one run, on this machine:
  push:    skyctl image push of a file into skyrootd, against the two limits
           for it: dd bs=1M conv=fsync of the same file into the state
           folder's file system, and openssl dgst -sha256 of it (one run each);
  1 board: the image from skyrootd into one agent's memfd, against Debian's
           nginx serving the same bytes over mTLS 1.3 to curl;
  N boards: N agents fetching a second image at once, against N curls from
           nginx; the controller's peak RSS while serving, against 64 MiB,
           and its chunk buffer pool's peak against the pool's bound
           (GET /metrics), with the rest of the RSS growth beside it.
In both streaming comparisons, also CPU per MB (1e6 bytes) over the same
transfer: skyrootd's utime + stime (/proc/PID/stat, all its threads) against
the nginx workers' (summed), and the agents' against curl's plus openssl
dgst's (getrusage of each through wait4).  For 1 board, nginx -> curl
-o /dev/null (no hash) runs too: the ceiling.

Both sides are timed the same way, --runs (at least 2) times each, interleaved (who goes
first alternates), every run printed, then median and min; the verdicts
come from the medians:
  Skyroot: wall clock from starting the agent (its TCP connect and mTLS
           handshake, as curl makes its own) and the API call that starts
           the fetch, to the agent's 'image ID ready' line (every chunk's
           SHA-256 checked against the signed manifest), stamped as it
           arrives on the agent's output pipe;
  nginx:   wall clock from starting curl (with a client certificate) piped
           into openssl dgst -sha256 to the digest, compared with the file's.
Every run starts cold: a new agent process (empty memfd cache), a new curl.
skyrootd runs with its default threads (or --threads N when given); when it
has a --threads option (read from 'skyrootd run --help'), nginx gets one
worker per core (its default is one loop per core), or N; else one worker,
as skyrootd's TLS is one loop.
The TLS 1.3 cipher suite (--cipher) is set on both sides: nginx
ssl_conf_command Ciphersuites and curl --tls13-ciphers; skyrootd and
skyagent through an OpenSSL configuration file (OPENSSL_CONF, system_default
Ciphersuites: neither has a setting of its own).  It is checked on both:
openssl s_client must get exactly that suite from the controller's agent
port and from nginx and be refused when it offers only another one; every
curl run's -v output and nginx's access log ($ssl_cipher) must name it.
Times are time.perf_counter() (CLOCK_MONOTONIC), printed in ms to the us.

usage: tests/bench/images.py [--size-mib 1024] [--boards 32] [--many-size-mib 256] [--runs 3]
                             [--cipher TLS_AES_256_GCM_SHA384] [--threads N]
Needs a build in build/ and nginx (tests/bench/packages.txt).
"""
import argparse
import hashlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from fleetlib import (ROOT, SKYCTL, SKYROOTD, Fleet, PeakRss, agent_args, board_fixture, free_port,  # noqa: E402
                      metrics, status_kib)

SUITES = ("TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256")


class BenchFail(Exception):
    pass


def now():
    return time.perf_counter()


def mbps(nbytes, secs):
    return nbytes / secs / 1e6


def ms(secs):
    return f"{secs * 1e3:.3f} ms"


RSS_AIM = 64 << 20  # issue 15: the controller's peak RSS, 32 boards streaming
CLK_TCK = os.sysconf("SC_CLK_TCK")


def pool_bound(f):
    """The bound, the peak and what is allocated now of the controller's chunk
    buffer pool from GET /metrics (skyroot_chunk_pool_*_bytes), or Nones
    before it had one."""
    m = metrics(f)
    return (m.get("skyroot_chunk_pool_limit_bytes"), m.get("skyroot_chunk_pool_peak_bytes"),
            m.get("skyroot_chunk_pool_allocated_bytes"))


def pool_note(f, growth, budget, alloc_before):
    """The verdict on the controller's chunk memory: its pool's peak against
    the pool's bound (GET /metrics) with the RSS growth beside it (what the
    pool allocated in the phase, and the rest), or, for a controller without
    the pool, the growth against AL_CHUNK_BUDGET."""
    lim, peak, alloc = pool_bound(f)
    if lim:
        grew = alloc - (alloc_before or 0)
        return (f"chunk pool peak {peak / 1048576:.1f} MiB <= its bound {lim / 1048576:.1f} MiB: "
                f"{verdict(peak <= lim)}; of the growth, the pool {grew / 1048576:.1f} MiB, the rest "
                f"{(growth - grew) / 1048576:.1f} MiB")
    if budget:
        return f"growth <= chunk budget {budget >> 20} MiB: {verdict(growth <= budget)}"
    return "chunk budget: not readable from agentlink_priv.h"


def chunk_budget():
    """AL_CHUNK_BUDGET from the controller's source (a second RSS check, when
    the controller has no pool gauges), or None when it is not written as
    "(N u << M)" in agentlink_priv.h any more."""
    try:
        text = open(os.path.join(ROOT, "controller", "skyrootd", "agentlink_priv.h")).read()
    except OSError:
        return None
    m = re.search(r"#define AL_CHUNK_BUDGET \(\(?(?:size_t\))?(\d+)u?\)? << (\d+)\)", text)
    return int(m.group(1)) << int(m.group(2)) if m else None


def cpu_s(pid):
    """utime + stime of a process (all its threads, live and ended) in s, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        w = f.read().rsplit(")", 1)[1].split()
    return (int(w[11]) + int(w[12])) / CLK_TCK  # fields 14 and 15


def children(pid):
    """The pids whose parent is pid (nginx's workers)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


def wait_rusage(p):
    """Wait for a Popen child with wait4: its user + system CPU in s."""
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return ru.ru_utime + ru.ru_stime


def ms_per_mb(cpu, nbytes):
    return cpu * 1e3 / (nbytes / 1e6)


def has_threads_option():
    r = subprocess.run([SKYROOTD, "run", "--help"], capture_output=True, text=True)
    return re.search(r"(^|\s)--threads\b", r.stdout + r.stderr) is not None


def make_file(path, size):
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            b = os.urandom(min(left, 16 << 20))
            h.update(b)
            f.write(b)
            left -= len(b)
    os.chmod(path, 0o644)
    return h.hexdigest()


def run_timed(cmd):
    t = now()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise BenchFail(f"{cmd[0]} failed: {r.stderr[-2000:]}")
    return now() - t, r


def openssl_conf(tmp, suite):
    path = os.path.join(tmp, "openssl-bench.cnf")
    with open(path, "w") as c:
        c.write("openssl_conf = bench_init\n[bench_init]\nssl_conf = bench_ssl\n[bench_ssl]\n"
                f"system_default = bench_tls\n[bench_tls]\nCiphersuites = {suite}\n")
    return path


def probe(port, suite, cafile, cert=None, key=None):
    """The suite openssl s_client gets from 127.0.0.1:port offering only `suite`, or None."""
    env = {k: v for k, v in os.environ.items() if k != "OPENSSL_CONF"}
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_3", "-ciphersuites", suite,
           "-CAfile", cafile, "-brief"]
    if cert:
        cmd += ["-cert", cert, "-key", key]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=20)
    m = re.search(r"^Ciphersuite: (\S+)", r.stdout + r.stderr, re.M)
    return m.group(1) if m else None


def check_cipher(what, port, suite, cafile, cert=None, key=None):
    other = next(s for s in SUITES if s != suite)
    got = probe(port, suite, cafile, cert, key)
    refused = probe(port, other, cafile, cert, key)
    line = f"  cipher check, {what}: s_client offering {suite} got {got}; offering only {other} got {refused or 'refused'}"
    print(line, flush=True)
    if got != suite or refused is not None:
        raise BenchFail(f"the TLS 1.3 suite is not set on {what}: {line.strip()}")
    return line.strip()


class TimedProc:
    """A process whose output lines are stamped with now() as they arrive
    on its pipe (the agent writes each log line at once), also kept in a file."""

    def __init__(self, args, log_path, env=None):
        self.log = open(log_path, "ab")
        self.lines = []
        self.lock = threading.Lock()
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for raw in self.p.stdout:
            t = now()
            self.log.write(raw)
            with self.lock:
                self.lines.append((t, raw.decode(errors="replace")))

    def find(self, needle):
        with self.lock:
            for t, line in self.lines:
                if needle in line:
                    return t, line
        return None

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.t.join(5)
        self.log.close()


class Boards:
    """Fixture board copies (own DMI UUID, own kept identity) and their agents."""

    def __init__(self, f, env, n, first, cache):
        self.f, self.env, self.cache = f, env, cache
        self.roots = [self._fixture(first + i) for i in range(n)]
        self.ids = [None] * n
        self.procs = []

    def _fixture(self, i):
        dst = board_fixture(os.path.join(self.f.tmp, f"board{i}"), "a", f"5b0f4c0e-9a31-4d0b-8e2a-{i:012d}",
                            f"bench-{i}")
        os.mkdir(os.path.join(dst, "identity"))
        return dst

    def start(self, token=None):
        self.procs = []
        for i, root in enumerate(self.roots):
            args = agent_args(self.f, root, token=token) + ["--identity-dir", os.path.join(root, "identity"),
                                                             "--cache-max", self.cache, "--log-level", "info"]
            self.procs.append(TimedProc(args, os.path.join(self.f.tmp, f"agent-{os.path.basename(root)}.log"),
                                        env=self.env))

    def stop(self):
        for p in self.procs:
            p.stop()
        self.procs = []
        ids = set(self.ids)
        deadline = time.time() + 30
        while ids & set(self.f.online()):
            if time.time() > deadline:
                raise BenchFail("the bench boards are still online 30 s after their agents stopped")
            time.sleep(0.05)

    def enroll(self, token):
        """Once, untimed: each board enrolls and keeps its identity."""
        self.start(token)
        deadline = time.time() + 120
        for i, p in enumerate(self.procs):
            while not (hit := p.find("session up as board ")):
                if p.p.poll() is not None or time.time() > deadline:
                    raise BenchFail(f"bench board {i} did not come up; see {p.log.name}")
                time.sleep(0.01)
            self.ids[i] = hit[1].split("session up as board ")[1].split()[0]
        self.stop()


def post_fetch(f, p, board_id, image_id, out, deadline):
    """As soon as the agent's session is up, the API call that starts its
    fetch (one thread per board, as curls start together): out = (up, t1, t2)."""
    try:
        while time.time() < deadline and p.p.poll() is None:
            up = p.find("session up as board ")
            if not up:
                time.sleep(0.001)
                continue
            t1 = now()
            st, body = f.api("POST", f"/v1/boards/{board_id}/fetch", {"image": image_id})
            if st == 202:
                out.append((up[0], t1, now()))
                return
            if st != 409:  # 409: the controller has not taken the board's hello yet
                out.append(f"fetch on board {board_id}: {st} {body}")
                return
            time.sleep(0.001)
        out.append(f"board {board_id}: no session, or no fetch accepted; see {p.log.name}")
    except OSError as e:
        out.append(f"fetch on board {board_id}: {e}")


def skyroot_run(boards, image_id, size):
    """One cold fetch on every board: (total s, [(connect s, api s, fetch s)],
    controller CPU s, agents' CPU s), the CPU from the start to the last
    board's ready."""
    f = boards.f
    ctl0 = cpu_s(f.ctl.p.pid)
    t0 = now()
    boards.start()
    deadline = time.time() + 600
    posted = [[] for _ in boards.procs]
    threads = [threading.Thread(target=post_fetch, args=(f, p, boards.ids[i], image_id, posted[i], deadline))
               for i, p in enumerate(boards.procs)]
    try:
        for t in threads:
            t.start()
        while True:
            busy = False
            for i, p in enumerate(boards.procs):
                if p.p.poll() is not None:
                    raise BenchFail(f"agent of bench board {i} exited; see {p.log.name}")
                if posted[i] and isinstance(posted[i][0], str):
                    raise BenchFail(posted[i][0])
                bad = p.find(f"image {image_id} refused") or p.find("image fetch refused")
                if bad:
                    raise BenchFail(f"board {boards.ids[i]}: {bad[1].strip()}")
                if not posted[i] or not p.find(f"image {image_id} ready"):
                    busy = True
            if not busy:
                break
            if time.time() > deadline:
                raise BenchFail("the fetch did not finish in 600 s")
            time.sleep(0.001)
        ctl_cpu = cpu_s(f.ctl.p.pid) - ctl0
        agents_cpu = sum(cpu_s(p.p.pid) for p in boards.procs)
        parts = []
        end = 0
        for i, p in enumerate(boards.procs):
            t_ready, line = p.find(f"image {image_id} ready")
            if f"ready: {size} bytes" not in line:
                raise BenchFail(f"board {boards.ids[i]}: {line.strip()}, expected {size} bytes")
            warm = p.find("already on this board")
            if warm:
                raise BenchFail(f"board {boards.ids[i]} did not start cold: {warm[1].strip()}")
            up, t1, t2 = posted[i][0]
            parts.append((up - t0, t2 - t1, t_ready - t2))
            end = max(end, t_ready)
        return end - t0, parts, ctl_cpu, agents_cpu
    finally:
        boards.stop()
        for t in threads:
            t.join()


class Nginx:
    def __init__(self, tmp, files, suite, nworkers):
        self.dir = os.path.join(tmp, "nginx")
        self.suite = suite
        self.nworkers = nworkers
        os.makedirs(os.path.join(self.dir, "html"))
        os.chmod(tmp, 0o755)  # nginx's workers run as www-data
        for d in (self.dir, os.path.join(self.dir, "html")):
            os.chmod(d, 0o755)
        for name, path in files.items():
            os.link(path, os.path.join(self.dir, "html", name))
        self.port = free_port()
        d = self.dir
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        for cmd in (["openssl", "req", "-x509", *ec, "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem", "-days", "1",
                     "-subj", "/CN=bench CA"],
                    ["openssl", "req", "-x509", *ec, "-keyout", f"{d}/k.pem", "-out", f"{d}/c.pem", "-days", "1",
                     "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                    ["openssl", "req", *ec, "-keyout", f"{d}/client.key", "-out", f"{d}/client.csr",
                     "-subj", "/CN=bench-client"],
                    ["openssl", "x509", "-req", "-in", f"{d}/client.csr", "-CA", f"{d}/ca.pem", "-CAkey",
                     f"{d}/ca.key", "-CAcreateserial", "-days", "1", "-out", f"{d}/client.pem"]):
            subprocess.run(cmd, check=True, capture_output=True)
        for k in ("k.pem", "client.key"):
            os.chmod(f"{d}/{k}", 0o644)
        # As the controller: TLS 1.3 only, a client certificate required,
        # no session resumption, as many workers as skyrootd has loops.
        with open(f"{d}/nginx.conf", "w") as c:
            c.write(f"""worker_processes {nworkers};
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 1024; }}
http {{
  log_format bench '$ssl_protocol $ssl_cipher $status $body_bytes_sent';
  access_log {d}/access.log bench;
  client_body_temp_path {d}/tmp-body;
  proxy_temp_path {d}/tmp-proxy;
  fastcgi_temp_path {d}/tmp-fastcgi;
  uwsgi_temp_path {d}/tmp-uwsgi;
  scgi_temp_path {d}/tmp-scgi;
  sendfile on;
  server {{
    listen 127.0.0.1:{self.port} ssl;
    ssl_certificate {d}/c.pem;
    ssl_certificate_key {d}/k.pem;
    ssl_protocols TLSv1.3;
    ssl_conf_command Ciphersuites {suite};
    ssl_session_cache off;
    ssl_session_tickets off;
    ssl_client_certificate {d}/ca.pem;
    ssl_verify_client on;
    root {d}/html;
  }}
}}
""")
        self.p = subprocess.Popen(["nginx", "-p", d, "-c", f"{d}/nginx.conf"], stderr=subprocess.DEVNULL)
        try:
            self._wait_up(d, suite, nworkers)
        except BaseException:
            self.stop()
            raise

    def _wait_up(self, d, suite, nworkers):
        deadline = time.time() + 10
        while probe(self.port, suite, f"{d}/c.pem", f"{d}/client.pem", f"{d}/client.key") is None:
            if self.p.poll() is not None or time.time() > deadline:
                raise BenchFail(f"nginx did not start; see {d}/error.log")
            time.sleep(0.1)
        while len(self.workers()) != nworkers:
            if self.p.poll() is not None or time.time() > deadline:
                raise BenchFail(f"nginx has {len(self.workers())} workers, not {nworkers}; see {d}/error.log")
            time.sleep(0.1)

    def workers(self):
        return children(self.p.pid)

    def check_cipher(self):
        d = self.dir
        return check_cipher("nginx", self.port, self.suite, f"{d}/c.pem", f"{d}/client.pem", f"{d}/client.key")

    def requests(self):
        """Requests nginx served to curl ($ssl_protocol $ssl_cipher $status $bytes), probes left out."""
        out = []
        for line in open(os.path.join(self.dir, "access.log")):
            w = line.split()
            if len(w) == 4 and w[2] != "400":
                out.append(w)
        return out

    def curl(self, name):
        d = self.dir
        return ["curl", "-sS", "-v", "--fail", "--tlsv1.3", "--tls13-ciphers", self.suite, "--cacert", f"{d}/c.pem",
                "--cert", f"{d}/client.pem", "--key", f"{d}/client.key",
                "-w", "%{stderr}appconnect %{time_appconnect} size %{size_download}\n",
                f"https://127.0.0.1:{self.port}/{name}"]

    def stop(self):
        self.p.terminate()
        self.p.wait()


def curl_run(nginx, name, n, digest, size, raw=False):
    """n curls | openssl dgst at once (raw: curl -o /dev/null, no hash):
    (total s, [handshake s], nginx workers' CPU s, curls' and dgsts' CPU s);
    each digest (raw: each size) checked."""
    workers = nginx.workers()
    ngx0 = sum(cpu_s(w) for w in workers)
    t0 = now()
    pipes = []
    for _ in range(n):
        if raw:
            c = subprocess.Popen(nginx.curl(name) + ["-o", "/dev/null"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
            pipes.append((c, None))
            continue
        c = subprocess.Popen(nginx.curl(name), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        d = subprocess.Popen(["openssl", "dgst", "-sha256", "-r"], stdin=c.stdout, stdout=subprocess.PIPE)
        c.stdout.close()
        pipes.append((c, d))
    end = 0
    hs = []
    client_cpu = 0.0
    for c, d in pipes:
        out = None
        if d:
            out = d.stdout.read().decode()
            client_cpu += wait_rusage(d)
        err = c.stderr.read().decode(errors="replace")
        client_cpu += wait_rusage(c)
        end = max(end, now())
        if c.returncode != 0:
            raise BenchFail(f"curl failed ({c.returncode}): {err[-1000:]}")
        if d and (d.returncode != 0 or not out.split() or out.split()[0] != digest):
            raise BenchFail(f"curl | openssl dgst: {out.strip()!r}, the file's SHA-256 is {digest}")
        m = re.search(r"SSL connection using (TLSv1\.3) / (\S+)", err)
        if not m or m.group(2) != nginx.suite:
            raise BenchFail(f"curl's connection did not use {nginx.suite}: {m.group(0) if m else err[-500:]}")
        got = re.search(r"appconnect ([0-9.]+) size (\d+)", err)
        if not got or int(got.group(2)) != size:
            raise BenchFail(f"curl got {got.group(2) if got else '?'} bytes of {name}, expected {size}")
        hs.append(float(got.group(1)))
    ngx_cpu = sum(cpu_s(w) for w in workers) - ngx0
    if sorted(nginx.workers()) != sorted(workers):
        raise BenchFail("nginx's workers changed during a run: its CPU figure would miss some")
    return end - t0, hs, ngx_cpu, client_cpu


def summary(label, runs, nbytes):
    med, best = statistics.median(runs), min(runs)
    print(f"  {label}: median {ms(med)} ({mbps(nbytes, med):.0f} MB/s), min {ms(best)} ({mbps(nbytes, best):.0f} MB/s)"
          f" over {len(runs)} runs")
    return med


def versus(f, nginx, boards, image_id, ngx_name, size, digest, runs, title, ceiling=False):
    """Interleaved runs of both sides (and of nginx -> curl -o /dev/null when
    ceiling); returns a dict of medians (time s, CPU ms/MB) and the RSS figures."""
    n = len(boards.roots)
    total = size * n
    res = {k: [] for k in ("sky", "ngx", "raw", "ctl_cpu", "agent_cpu", "ngx_cpu", "client_cpu", "raw_ngx_cpu")}
    sides = ("sky", "ngx", "raw") if ceiling else ("sky", "ngx")
    print(f"\n{title}: {n} x {size >> 20} MiB, {runs} runs each, interleaved; CPU per MB (1e6 bytes), "
          f"{1e3 / CLK_TCK:.0f} ms tick", flush=True)
    alloc_before = pool_bound(f)[2]
    rss = PeakRss(f.ctl.p.pid)
    least = []  # the smallest CPU total of each run, in s
    try:
        for r in range(runs):
            # Who goes first alternates (ABBA), so no side always follows another.
            for side in (sides if r % 2 == 0 else sides[::-1]):
                if side == "sky":
                    s, parts, ctl, agents = skyroot_run(boards, image_id, size)
                    res["sky"].append(s)
                    res["ctl_cpu"].append(ms_per_mb(ctl, total))
                    res["agent_cpu"].append(ms_per_mb(agents, total))
                    least.append(min(ctl, agents))
                    worst = max(parts, key=lambda x: sum(x))
                    print(f"  run {r + 1} Skyroot: {ms(s)} {mbps(total, s):7.0f} MB/s   CPU: skyrootd "
                          f"{res['ctl_cpu'][-1]:.3f} ms/MB ({ctl:.2f} s), agents {res['agent_cpu'][-1]:.3f} ms/MB"
                          f" ({agents:.2f} s)   (slowest board: connect+mTLS {ms(worst[0])}, API call {ms(worst[1])},"
                          f" fetch to ready {ms(worst[2])})", flush=True)
                elif side == "ngx":
                    c, hs, ngx, cli = curl_run(nginx, ngx_name, n, digest, size)
                    res["ngx"].append(c)
                    res["ngx_cpu"].append(ms_per_mb(ngx, total))
                    res["client_cpu"].append(ms_per_mb(cli, total))
                    least.append(min(ngx, cli))
                    print(f"  run {r + 1} nginx:   {ms(c)} {mbps(total, c):7.0f} MB/s   CPU: nginx "
                          f"{res['ngx_cpu'][-1]:.3f} ms/MB ({ngx:.2f} s), curl+dgst {res['client_cpu'][-1]:.3f} ms/MB"
                          f" ({cli:.2f} s)   (curl mTLS handshake, slowest: {ms(max(hs))}; every digest matched)",
                          flush=True)
                else:
                    c, hs, ngx, cli = curl_run(nginx, ngx_name, n, digest, size, raw=True)
                    res["raw"].append(c)
                    res["raw_ngx_cpu"].append(ms_per_mb(ngx, total))
                    print(f"  run {r + 1} ceiling: {ms(c)} {mbps(total, c):7.0f} MB/s   CPU: nginx "
                          f"{res['raw_ngx_cpu'][-1]:.3f} ms/MB ({ngx:.2f} s), curl -o /dev/null "
                          f"{ms_per_mb(cli, total):.3f} ms/MB   (nginx -> curl, no hash; every size matched)",
                          flush=True)
    except BaseException:
        rss.stop()
        raise
    peak = rss.stop()
    base, how = rss.base, rss.how
    med = {"sky": summary("Skyroot", res["sky"], total), "ngx": summary("nginx  ", res["ngx"], total)}
    if ceiling:
        med["raw"] = summary("ceiling", res["raw"], total)
    for k, label in (("ctl_cpu", "skyrootd CPU"), ("ngx_cpu", "nginx CPU"), ("agent_cpu", "agents' CPU"),
                     ("client_cpu", "curl+dgst CPU"), ("raw_ngx_cpu", "nginx CPU, ceiling")):
        if res[k]:
            med[k] = statistics.median(res[k])
            print(f"  {label}: median {med[k]:.3f} ms/MB, min {min(res[k]):.3f} ms/MB over {len(res[k])} runs")
    if min(least) < 50 / CLK_TCK:
        print(f"  note: a CPU total of a run was {min(least):.2f} s, under 50 ticks: these CPU figures are coarse"
              " (each read is to a tick; more MiB make them finer)", flush=True)
        med["coarse"] = True
    return med, (base, peak, how, alloc_before)


def verdict(ok):
    return "met" if ok else "MISSED"


def ratio_row(label, mine, theirs, what, aim_text, ok):
    r = mine / theirs if theirs > 0 else float("inf")
    return (label, f"{mine:.3f} ms/MB", f"{what} {theirs:.3f} ms/MB",
            f"{r:.3f}x (medians)" + (f"; aim {aim_text}: {verdict(ok(r))}" if aim_text else "; no aim, for reference"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--boards", type=int, default=32)
    ap.add_argument("--many-size-mib", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cipher", default="TLS_AES_256_GCM_SHA384", choices=SUITES)
    ap.add_argument("--threads", type=int, help="skyrootd run --threads N, and N nginx workers "
                    "(default: skyrootd's default, and one nginx worker per core)")
    a = ap.parse_args()
    if a.runs < 2 or a.boards < 1:
        raise SystemExit("--runs must be at least 2 (every figure is run at least twice) and --boards at least 1")
    if not shutil.which("nginx"):
        raise SystemExit("nginx missing: apt-get install nginx-light (tests/bench/packages.txt)")
    budget = chunk_budget()
    threads_opt = has_threads_option()
    if a.threads is not None and (a.threads < 1 or not threads_opt):
        raise SystemExit("--threads: skyrootd run has no --threads option" if not threads_opt
                         else "--threads must be at least 1")
    if threads_opt:
        nworkers = a.threads or os.cpu_count()
        threads_note = (f"skyrootd --threads {a.threads}" if a.threads else "skyrootd's default threads") + \
            f", nginx worker_processes {nworkers}"
    else:
        nworkers = 1
        threads_note = "skyrootd has no --threads option (one loop), nginx worker_processes 1"
    base = os.path.join(ROOT, "build", "bench")
    os.makedirs(base, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="images-", dir=base)  # on the same disk as a real state folder
    env = dict(os.environ, OPENSSL_CONF=openssl_conf(tmp, a.cipher))
    f = Fleet(tmp)
    nginx = None
    rows, checks = [], []
    failed = None
    try:
        big = os.path.join(tmp, "big.img")
        size = a.size_mib << 20
        big_sha = make_file(big, size)
        many = os.path.join(tmp, "many.img")
        msize = a.many_size_mib << 20
        many_sha = make_file(many, msize)
        subprocess.run(["sync"])

        # ---- push against its limits (one run of each)
        dd_s, _ = run_timed(["dd", f"if={big}", f"of={f.state}/dd.test", "bs=1M", "conv=fsync"])
        os.unlink(f"{f.state}/dd.test")
        sha_s, _ = run_timed(["openssl", "dgst", "-sha256", big])
        f.start(extra=["--threads", str(a.threads)] if a.threads else [], env=env)
        checks.append(f"threads: {threads_note}; skyrootd has {status_kib(f.ctl.p.pid, 'Threads')} threads"
                      " at start (all of them in its CPU figure)")
        checks.append(check_cipher("skyrootd agent port", f.agent_port, a.cipher, f.ca_file))
        conf = os.path.join(f.state, "skyctl.conf")
        push_s, _ = run_timed([SKYCTL, "--config", conf, "image", "push", big, "--name", "big"])
        run_timed([SKYCTL, "--config", conf, "image", "push", many, "--name", "many"])
        limit = min(mbps(size, dd_s), mbps(size, sha_s))
        ratio = mbps(size, push_s) / limit
        rows.append(("push 1 image (1 run each)", f"{mbps(size, push_s):.0f} MB/s",
                     f"dd conv=fsync {mbps(size, dd_s):.0f} MB/s, openssl sha256 {mbps(size, sha_s):.0f} MB/s",
                     f"{ratio:.3f}x the slower limit; aim >= 0.5x: {verdict(ratio >= 0.5)}"))
        big_id = f.api("GET", "/v1/images/big")[1]["id"]
        many_id = f.api("GET", "/v1/images/many")[1]["id"]

        nginx = Nginx(tmp, {"big.img": big, "many.img": many}, a.cipher, nworkers)
        checks.append(nginx.check_cipher())
        tok = f.token(uses=a.boards + 1)["token"]
        one = Boards(f, env, 1, 0, f"{a.size_mib + 64}M")
        one.enroll(tok)
        manyb = Boards(f, env, a.boards, 1, f"{a.many_size_mib + 64}M")
        manyb.enroll(tok)

        # ---- one board against one curl | sha256, and the ceiling nginx -> curl
        m, (b0, p0, how, a0) = versus(f, nginx, one, big_id, "big.img", size, big_sha, a.runs, "1 board",
                                  ceiling=True)
        if m.get("coarse"):
            checks.append("CPU figures, 1 board: COARSE (a run's CPU total under 50 ticks); use more --size-mib")
        r1 = m["ngx"] / m["sky"]
        rows.append((f"1 board, {a.size_mib} MiB", f"{mbps(size, m['sky']):.0f} MB/s",
                     f"nginx mTLS 1.3 -> curl | sha256 {mbps(size, m['ngx']):.0f} MB/s",
                     f"{r1:.3f}x nginx (medians); aim >= 1.2x: {verdict(r1 >= 1.2)}"))
        rc = m["raw"] / m["sky"]
        rows.append(("  ceiling: nginx -> curl, no hash", f"{mbps(size, m['raw']):.0f} MB/s",
                     "curl -o /dev/null (medians)", f"Skyroot reaches {rc:.3f}x of it"))
        rows.append(ratio_row("  skyrootd CPU per MB, 1 board", m["ctl_cpu"], m["ngx_cpu"],
                              "nginx workers' (to curl | sha256)", "<= 1.0x", lambda r: r <= 1.0))
        rows.append(ratio_row("  agent CPU per MB, 1 board", m["agent_cpu"], m["client_cpu"],
                              "curl + openssl dgst", None, None))
        g0 = p0 - b0
        rows.append(("  controller RSS, 1 board", f"+{g0 / 1048576:.1f} MiB",
                     f"peak {p0 / 1048576:.1f} MiB over {b0 / 1048576:.1f} MiB before", pool_note(f, g0, budget, a0)))

        # ---- many boards against many curls | sha256
        m, (b1, p1, how, a1) = versus(f, nginx, manyb, many_id, "many.img", msize, many_sha, a.runs,
                                  f"{a.boards} boards")
        if m.get("coarse"):
            checks.append(f"CPU figures, {a.boards} boards: COARSE (a run's CPU total under 50 ticks); "
                          "use more --many-size-mib")
        rn = m["ngx"] / m["sky"]
        rows.append((f"{a.boards} boards x {a.many_size_mib} MiB", f"{mbps(msize * a.boards, m['sky']):.0f} MB/s",
                     f"{a.boards} curls | sha256 from nginx {mbps(msize * a.boards, m['ngx']):.0f} MB/s",
                     f"{rn:.3f}x nginx (medians); aim >= 1.0x: {verdict(rn >= 1.0)}"))
        rows.append(ratio_row(f"  skyrootd CPU per MB, {a.boards} boards", m["ctl_cpu"], m["ngx_cpu"],
                              "nginx workers'", "<= 1.0x", lambda r: r <= 1.0))
        rows.append(ratio_row(f"  agents' CPU per MB, {a.boards} boards", m["agent_cpu"], m["client_cpu"],
                              "curls + openssl dgsts", None, None))
        rows.append((f"  controller peak RSS, {a.boards} boards", f"{p1 / 1048576:.1f} MiB",
                     f"aim {RSS_AIM >> 20} MiB", f"peak <= {RSS_AIM >> 20} MiB: {verdict(p1 <= RSS_AIM)}"))
        g1 = p1 - b1
        rows.append((f"  controller RSS growth, {a.boards} boards", f"+{g1 / 1048576:.1f} MiB",
                     f"peak {p1 / 1048576:.1f} MiB over {b1 / 1048576:.1f} MiB before", pool_note(f, g1, budget, a1)))
        reqs = nginx.requests()
        want = a.runs * (2 + a.boards)
        bad = [w for w in reqs if w[0] != "TLSv1.3" or w[1] != a.cipher or w[2] != "200"]
        line = (f"nginx access log: {len(reqs)} requests (expected {want}), "
                f"all TLSv1.3 {a.cipher} 200: {'yes' if not bad and len(reqs) == want else 'NO'}")
        checks.append(line)
        if bad or len(reqs) != want:
            raise BenchFail(line + (f"; first odd line: {' '.join(bad[0])}" if bad else ""))
        checks.append(check_cipher("skyrootd agent port, after the runs", f.agent_port, a.cipher, f.ca_file))
        checks.append(f"controller peak RSS: {how}")
        checks.append(f"CPU: utime + stime from /proc/PID/stat ({1e3 / CLK_TCK:.0f} ms tick) of skyrootd and of "
                      "each agent, start to last ready; nginx workers' the same, start to last curl's exit; "
                      "curl and openssl dgst by wait4 rusage")
    except BenchFail as e:
        failed = str(e)
    finally:
        if nginx:
            nginx.stop()
        f.close()
        if failed:
            print(f"images.py: {failed}; logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if failed:
        sys.exit(1)
    print(f"\nSkyroot image benchmark (tests/bench/images.py; {os.cpu_count()} cores, load average "
          f"{open('/proc/loadavg').read().split()[0]}; TLS 1.3 {a.cipher} on both sides; {threads_note})")
    for r in rows:
        print(f"  {r[0]:<38} {r[1]:>12}   vs {r[2]:<52} {r[3]}")
    for c in checks:
        print(f"  checked: {c}")


if __name__ == "__main__":
    main()
