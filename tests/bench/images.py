#!/usr/bin/env python3
"""Image benchmark (prints figures; not a timed test).

Side by side, in one run, on this machine:
  push:    skyctl image push of a file into skyrootd, against the two limits
           for it: dd bs=1M conv=fsync of the same file into the state
           folder's file system, and openssl dgst -sha256 of it (one run each);
  1 board: the image from skyrootd into one agent's memfd, against Debian's
           nginx serving the same bytes over mTLS 1.3 to curl;
  N boards: N agents fetching a second image at once, against N curls from
           nginx; the controller's peak RSS while serving, against its chunk
           budget.

Both sides are timed the same way, --runs times each, interleaved (who goes
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
The TLS 1.3 cipher suite (--cipher) is set on both sides: nginx
ssl_conf_command Ciphersuites and curl --tls13-ciphers; skyrootd and
skyagent through an OpenSSL configuration file (OPENSSL_CONF, system_default
Ciphersuites: neither has a setting of its own).  It is checked on both:
openssl s_client must get exactly that suite from the controller's agent
port and from nginx and be refused when it offers only another one; every
curl run's -v output and nginx's access log ($ssl_cipher) must name it.
Times are time.perf_counter() (CLOCK_MONOTONIC), printed in ms to the us.

usage: tests/bench/images.py [--size-mib 1024] [--boards 32] [--many-size-mib 256] [--runs 3]
                             [--cipher TLS_AES_256_GCM_SHA384]
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
from fleetlib import FIXTURES, ROOT, SKYAGENT, SKYCTL, Fleet, free_port  # noqa: E402

SUITES = ("TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256")


class BenchFail(Exception):
    pass


def now():
    return time.perf_counter()


def mbps(nbytes, secs):
    return nbytes / secs / 1e6


def ms(secs):
    return f"{secs * 1e3:.3f} ms"


def chunk_budget():
    """AL_CHUNK_BUDGET from the controller's source: the aim of the RSS check."""
    text = open(os.path.join(ROOT, "controller", "skyrootd", "agentlink_priv.h")).read()
    m = re.search(r"#define AL_CHUNK_BUDGET \((\d+)u << (\d+)\)", text)
    if not m:
        raise BenchFail("cannot read AL_CHUNK_BUDGET from controller/skyrootd/agentlink_priv.h")
    return int(m.group(1)) << int(m.group(2))


def status_kib(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise BenchFail(f"no {field} in /proc/{pid}/status")


class PeakRss:
    """The controller's peak RSS over a phase: VmHWM reset at the start
    (clear_refs 5) where the kernel lets us, and VmRSS polled every 5 ms."""

    def __init__(self, pid):
        self.pid = pid
        self.base = status_kib(pid, "VmRSS")
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
            self.hwm_reset = True
        except OSError:
            self.hwm_reset = False
        self.peak = self.base
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self._poll, daemon=True)
        self.t.start()

    def _poll(self):
        while not self.stop_ev.wait(0.005):
            self.peak = max(self.peak, status_kib(self.pid, "VmRSS"))

    def done(self):
        self.stop_ev.set()
        self.t.join()
        self.peak = max(self.peak, status_kib(self.pid, "VmRSS"))
        how = "VmRSS polled every 5 ms"
        if self.hwm_reset:
            self.peak = max(self.peak, status_kib(self.pid, "VmHWM"))
            how = "VmHWM reset before the phase, and " + how
        return self.base * 1024, self.peak * 1024, how


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
        dst = os.path.join(self.f.tmp, f"board{i}")
        shutil.copytree(os.path.join(FIXTURES, "boards", "a"), dst, symlinks=True)
        real = os.path.realpath(os.path.join(dst, "sys", "class", "dmi", "id"))
        with open(os.path.join(real, "product_uuid"), "w") as u:
            u.write(f"5b0f4c0e-9a31-4d0b-8e2a-{i:012d}\n")
        with open(os.path.join(dst, "proc", "sys", "kernel", "hostname"), "w") as h:
            h.write(f"bench-{i}\n")
        os.mkdir(os.path.join(dst, "identity"))
        return dst

    def start(self, token=None):
        self.procs = []
        for i, root in enumerate(self.roots):
            args = [SKYAGENT, "--controller", f"127.0.0.1:{self.f.agent_port}", "--ca", self.f.pin,
                    "--sysfs-root", os.path.join(root, "sys"), "--procfs-root", os.path.join(root, "proc"),
                    "--devfs-root", os.path.join(root, "dev"), "--cmdline", os.path.join(root, "proc", "cmdline"),
                    "--identity-dir", os.path.join(root, "identity"), "--cache-max", self.cache,
                    "--log-level", "info"]
            if token:
                args += ["--token", token]
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
    """One cold fetch on every board: (total s, [(connect s, api s, fetch s)])."""
    f = boards.f
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
        return end - t0, parts
    finally:
        boards.stop()
        for t in threads:
            t.join()


class Nginx:
    def __init__(self, tmp, files, suite):
        self.dir = os.path.join(tmp, "nginx")
        self.suite = suite
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
        # no session resumption, one worker (skyrootd's TLS is one loop).
        with open(f"{d}/nginx.conf", "w") as c:
            c.write(f"""worker_processes 1;
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
        deadline = time.time() + 10
        while probe(self.port, suite, f"{d}/c.pem", f"{d}/client.pem", f"{d}/client.key") is None:
            if self.p.poll() is not None or time.time() > deadline:
                raise BenchFail(f"nginx did not start; see {d}/error.log")
            time.sleep(0.1)

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
                "-w", "%{stderr}appconnect %{time_appconnect}\n", f"https://127.0.0.1:{self.port}/{name}"]

    def stop(self):
        self.p.terminate()
        self.p.wait()


def curl_run(nginx, name, n, digest):
    """n curls | openssl dgst at once: (total s, [handshake s]); each digest checked."""
    t0 = now()
    pipes = []
    for _ in range(n):
        c = subprocess.Popen(nginx.curl(name), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        d = subprocess.Popen(["openssl", "dgst", "-sha256", "-r"], stdin=c.stdout, stdout=subprocess.PIPE)
        c.stdout.close()
        pipes.append((c, d))
    end = 0
    hs = []
    for c, d in pipes:
        out = d.communicate()[0].decode()
        err = c.stderr.read().decode(errors="replace")
        c.wait()
        end = max(end, now())
        if c.returncode != 0:
            raise BenchFail(f"curl failed ({c.returncode}): {err[-1000:]}")
        if out.split()[0] != digest:
            raise BenchFail(f"curl | openssl dgst: {out.split()[0]}, the file's SHA-256 is {digest}")
        m = re.search(r"SSL connection using (TLSv1\.3) / (\S+)", err)
        if not m or m.group(2) != nginx.suite:
            raise BenchFail(f"curl's connection did not use {nginx.suite}: {m.group(0) if m else err[-500:]}")
        hs.append(float(re.search(r"appconnect ([0-9.]+)", err).group(1)))
    return end - t0, hs


def summary(label, runs, nbytes):
    med, best = statistics.median(runs), min(runs)
    print(f"  {label}: median {ms(med)} ({mbps(nbytes, med):.0f} MB/s), min {ms(best)} ({mbps(nbytes, best):.0f} MB/s)"
          f" over {len(runs)} runs")
    return med


def versus(f, nginx, boards, image_id, ngx_name, size, digest, runs, title):
    """Interleaved runs of both sides; returns (Skyroot median, nginx median, RSS figures)."""
    n = len(boards.roots)
    total = size * n
    sky, ngx = [], []
    print(f"\n{title}: {n} x {size >> 20} MiB, {runs} runs each, interleaved", flush=True)
    rss = PeakRss(f.ctl.p.pid)
    for r in range(runs):
        # Who goes first alternates (ABBA), so neither side always follows the other.
        for side in (("sky", "ngx") if r % 2 == 0 else ("ngx", "sky")):
            if side == "sky":
                s, parts = skyroot_run(boards, image_id, size)
                sky.append(s)
                worst = max(parts, key=lambda x: sum(x))
                print(f"  run {r + 1} Skyroot: {ms(s)} {mbps(total, s):7.0f} MB/s   (slowest board: connect+mTLS"
                      f" {ms(worst[0])}, API call {ms(worst[1])}, fetch to ready {ms(worst[2])})", flush=True)
            else:
                c, hs = curl_run(nginx, ngx_name, n, digest)
                ngx.append(c)
                print(f"  run {r + 1} nginx:   {ms(c)} {mbps(total, c):7.0f} MB/s   (curl mTLS handshake, slowest:"
                      f" {ms(max(hs))}; every digest matched)", flush=True)
    base, peak, how = rss.done()
    return summary("Skyroot", sky, total), summary("nginx  ", ngx, total), (base, peak, how)


def verdict(ok):
    return "met" if ok else "MISSED"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--boards", type=int, default=32)
    ap.add_argument("--many-size-mib", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cipher", default="TLS_AES_256_GCM_SHA384", choices=SUITES)
    a = ap.parse_args()
    if a.runs < 1 or a.boards < 1:
        raise SystemExit("--runs and --boards must be at least 1")
    if not shutil.which("nginx"):
        raise SystemExit("nginx missing: apt-get install nginx-light (tests/bench/packages.txt)")
    budget = chunk_budget()
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
        f.start(env=env)
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

        nginx = Nginx(tmp, {"big.img": big, "many.img": many}, a.cipher)
        checks.append(nginx.check_cipher())
        tok = f.token(uses=a.boards + 1)["token"]
        one = Boards(f, env, 1, 0, f"{a.size_mib + 64}M")
        one.enroll(tok)
        manyb = Boards(f, env, a.boards, 1, f"{a.many_size_mib + 64}M")
        manyb.enroll(tok)

        # ---- one board against one curl
        sky, ngx, (b0, p0, how) = versus(f, nginx, one, big_id, "big.img", size, big_sha, a.runs, "1 board")
        r1 = ngx / sky
        rows.append((f"1 board, {a.size_mib} MiB", f"{mbps(size, sky):.0f} MB/s",
                     f"nginx mTLS 1.3 -> curl | sha256 {mbps(size, ngx):.0f} MB/s",
                     f"{r1:.3f}x nginx (medians); aim >= 1.2x: {verdict(r1 >= 1.2)}"))
        g0 = p0 - b0
        rows.append(("  controller RSS, 1 board", f"+{g0 / 1048576:.1f} MiB",
                     f"peak {p0 / 1048576:.1f} MiB over {b0 / 1048576:.1f} MiB before",
                     f"growth <= chunk budget {budget >> 20} MiB: {verdict(g0 <= budget)}"))

        # ---- many boards against many curls
        sky, ngx, (b1, p1, how) = versus(f, nginx, manyb, many_id, "many.img", msize, many_sha, a.runs,
                                         f"{a.boards} boards")
        rn = ngx / sky
        rows.append((f"{a.boards} boards x {a.many_size_mib} MiB", f"{mbps(msize * a.boards, sky):.0f} MB/s",
                     f"{a.boards} curls | sha256 from nginx {mbps(msize * a.boards, ngx):.0f} MB/s",
                     f"{rn:.3f}x nginx (medians); aim >= 1.0x: {verdict(rn >= 1.0)}"))
        g1 = p1 - b1
        rows.append((f"  controller RSS, {a.boards} boards", f"+{g1 / 1048576:.1f} MiB",
                     f"peak {p1 / 1048576:.1f} MiB over {b1 / 1048576:.1f} MiB before",
                     f"growth <= chunk budget {budget >> 20} MiB: {verdict(g1 <= budget)}"))
        reqs = nginx.requests()
        want = a.runs * (1 + a.boards)
        bad = [w for w in reqs if w[0] != "TLSv1.3" or w[1] != a.cipher or w[2] != "200"]
        line = (f"nginx access log: {len(reqs)} requests (expected {want}), "
                f"all TLSv1.3 {a.cipher} 200: {'yes' if not bad and len(reqs) == want else 'NO'}")
        checks.append(line)
        if bad or len(reqs) != want:
            raise BenchFail(line + (f"; first odd line: {' '.join(bad[0])}" if bad else ""))
        checks.append(check_cipher("skyrootd agent port, after the runs", f.agent_port, a.cipher, f.ca_file))
        checks.append(f"controller peak RSS: {how}")
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
          f"{open('/proc/loadavg').read().split()[0]}; TLS 1.3 {a.cipher} on both sides)")
    for r in rows:
        print(f"  {r[0]:<30} {r[1]:>12}   vs {r[2]:<52} {r[3]}")
    for c in checks:
        print(f"  checked: {c}")


if __name__ == "__main__":
    main()
