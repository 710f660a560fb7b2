#!/usr/bin/env python3
"""API reads per second: GET /v1/boards?limit=N with N boards, JSON against
protobuf (Accept: application/x-protobuf), over keep-alive HTTPS
connections from C concurrent clients (threads; each holds one
connection).  Prints requests/s, ms per request and bytes per answer for
each encoding, and as the reference nginx serving the same two answers as
static files over TLS (one worker; a self-signed certificate; keep-alive)
to the same clients.  Printed, not a test: run by hand (nginx from
tests/bench/packages.txt).

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
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
from fleetlib import Fleet, free_port, wait_for  # noqa: E402

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


def client(target, accept, deadline, out):
    port, ctx, path, hdrs = target
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
    hdrs = dict(hdrs, Accept=accept)
    done, size, lat = 0, 0, 0.0
    while time.perf_counter() < deadline:
        t = time.perf_counter()
        conn.request("GET", path(accept), headers=hdrs)
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            raise SystemExit(f"GET {path(accept)}: {r.status} {body[:200]}")
        lat += time.perf_counter() - t
        done += 1
        size = len(body)
    conn.close()
    out.append((done, lat, size))


def run(target, accept, clients, seconds):
    out, threads = [], []
    deadline = time.perf_counter() + seconds
    t0 = time.perf_counter()
    for _ in range(clients):
        th = threading.Thread(target=client, args=(target, accept, deadline, out))
        th.start()
        threads.append(th)
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    done = sum(o[0] for o in out)
    lat = sum(o[1] for o in out)
    return done / wall, 1000 * lat / max(done, 1), out[0][2] if out else 0


class Nginx:
    """nginx serving files from a folder over TLS 1.3, one worker."""

    def __init__(self, tmp, files):
        d = self.dir = os.path.join(tmp, "nginx")
        os.makedirs(os.path.join(d, "html"))
        for x in (tmp, d, os.path.join(d, "html")):
            os.chmod(x, 0o755)  # nginx's workers run as www-data
        for name, data in files.items():
            with open(os.path.join(d, "html", name), "wb") as out:
                out.write(data)
            os.chmod(os.path.join(d, "html", name), 0o644)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", f"{d}/k.pem", "-out", f"{d}/c.pem", "-days", "1", "-subj", "/CN=127.0.0.1"],
                       check=True, capture_output=True)
        os.chmod(f"{d}/k.pem", 0o644)
        self.port = free_port()
        with open(f"{d}/nginx.conf", "w") as c:
            c.write(f"""worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {d}/tmp-body;
  proxy_temp_path {d}/tmp-proxy;
  fastcgi_temp_path {d}/tmp-fastcgi;
  uwsgi_temp_path {d}/tmp-uwsgi;
  scgi_temp_path {d}/tmp-scgi;
  sendfile on;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{self.port} ssl;
    ssl_certificate {d}/c.pem;
    ssl_certificate_key {d}/k.pem;
    ssl_protocols TLSv1.3;
    root {d}/html;
  }}
}}
""")
        self.p = subprocess.Popen(["nginx", "-p", d, "-c", f"{d}/nginx.conf"], stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.p.poll() is not None or time.time() > deadline:
                    raise SystemExit(f"nginx did not start; see {d}/error.log")
                time.sleep(0.05)
        self.ctx = ssl.create_default_context(cafile=f"{d}/c.pem")
        self.ctx.check_hostname = False

    def stop(self):
        self.p.send_signal(signal.SIGQUIT)
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()


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
        auth = {"Authorization": f"Bearer {f.admin}"}
        api = (f.api_port, f.sslctx, lambda accept: f"/v1/boards?limit={a.boards}", auth)
        answers = {}
        for name, accept in (("json", "application/json"), ("protobuf", PB)):
            rps, ms, size = run(api, accept, a.clients, a.seconds)
            print(f"  skyrootd {name:9s} {rps:8.1f} requests/s  {ms:8.2f} ms/request  {size:9d} bytes/answer")
            conn = http.client.HTTPSConnection("127.0.0.1", f.api_port, context=f.sslctx, timeout=30)
            conn.request("GET", f"/v1/boards?limit={a.boards}", headers=dict(auth, Accept=accept))
            answers[name] = conn.getresponse().read()
            conn.close()
        if not shutil.which("nginx"):
            print("  nginx: not installed (tests/bench/packages.txt); no reference")
            return
        ng = Nginx(tmp, {"boards.json": answers["json"], "boards.pb": answers["protobuf"]})
        try:
            static = (ng.port, ng.ctx, lambda accept: "/boards.pb" if accept == PB else "/boards.json", {})
            for name, accept in (("json", "application/json"), ("protobuf", PB)):
                rps, ms, size = run(static, accept, a.clients, a.seconds)
                print(f"  nginx    {name:9s} {rps:8.1f} requests/s  {ms:8.2f} ms/request  {size:9d} bytes/answer "
                      f"(the same answer as a static file)")
        finally:
            ng.stop()
    finally:
        f.close()


if __name__ == "__main__":
    main()
