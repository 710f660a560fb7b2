#!/usr/bin/env python3
"""Image benchmark (prints figures; not a timed test).

Side by side, in one run, on this machine:
  push:   skyctl image push of a 1 GiB file into skyrootd, against the two
          limits for it: dd bs=1M conv=fsync of the same file into the state
          folder's file system, and openssl dgst -sha256 of it;
  1 board: 1 GiB from skyrootd into one agent's memfd (SHA-256 checked at
          both ends), against Debian's nginx serving the same bytes from a
          file over TLS 1.3 with the same cipher to curl (to /dev/null);
  32 boards: 32 agents fetching the same 256 MiB image at once, against 32
          curls from nginx; controller peak RSS.

usage: tests/bench/images.py [--size-mib 1024] [--boards 32] [--many-size-mib 256]
Needs a build in build/ and nginx (tests/bench/packages.txt).
"""
import argparse
import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from fleetlib import FIXTURES, ROOT, SKYAGENT, Fleet, Proc, free_port, skyctl, wait_for  # noqa: E402


def rss_hwm(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def mbps(nbytes, secs):
    return nbytes / secs / 1e6


def make_file(path, size):
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 16 << 20)
            f.write(os.urandom(n))
            left -= n


def run_timed(cmd, **kw):
    t = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed: {r.stderr[-2000:]}")
    return time.time() - t, r


def board_fixture(tmp, i):
    """A copy of fixture board a with its own DMI product UUID."""
    dst = os.path.join(tmp, f"board{i}")
    shutil.copytree(os.path.join(FIXTURES, "boards", "a"), dst, symlinks=True)
    uuid_path = os.path.join(dst, "sys", "class", "dmi", "id")
    real = os.path.realpath(uuid_path)
    with open(os.path.join(real, "product_uuid"), "w") as f:
        f.write(f"5b0f4c0e-9a31-4d0b-8e2a-{i:012d}\n")
    with open(os.path.join(dst, "proc", "sys", "kernel", "hostname"), "w") as f:
        f.write(f"bench-{i}\n")
    return dst


def start_agent(f, root, token, cache):
    args = [SKYAGENT, "--controller", f"127.0.0.1:{f.agent_port}", "--ca", f.pin, "--token", token,
            "--sysfs-root", os.path.join(root, "sys"), "--procfs-root", os.path.join(root, "proc"),
            "--devfs-root", os.path.join(root, "dev"), "--cmdline", os.path.join(root, "proc", "cmdline"),
            "--cache-max", cache, "--log-level", "info"]
    p = Proc(args, os.path.join(f.tmp, f"agent-{os.path.basename(root)}.log"))
    f.procs.append(p)
    return p


def fetch_seconds(p, image_id):
    """From the agent's own log: 'fetching image ID' to 'image ID ready'."""
    def parse():
        start = end = None
        for line in p.text().splitlines():
            ts = line.split()[0] if line else ""
            if f"fetching image {image_id}" in line:
                start = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")
            if f"image {image_id} ready" in line:
                end = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")
            if f"image {image_id} refused" in line:
                raise SystemExit(f"fetch failed: {line}")
        return (end - start).total_seconds() if start and end else None
    return wait_for(parse, 600, f"image {image_id} in the board's RAM", interval=0.2)


class Nginx:
    def __init__(self, tmp, files):
        self.dir = os.path.join(tmp, "nginx")
        os.makedirs(os.path.join(self.dir, "html"))
        os.chmod(tmp, 0o755)  # nginx's workers run as www-data
        for d in (self.dir, os.path.join(self.dir, "html")):
            os.chmod(d, 0o755)
        for name, path in files.items():
            os.link(path, os.path.join(self.dir, "html", name))
            os.chmod(path, 0o644)
        self.port = free_port()
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", f"{self.dir}/k.pem", "-out", f"{self.dir}/c.pem", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        with open(f"{self.dir}/nginx.conf", "w") as c:
            c.write(f"""worker_processes 1;
daemon off;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  server {{
    listen 127.0.0.1:{self.port} ssl;
    ssl_certificate {self.dir}/c.pem;
    ssl_certificate_key {self.dir}/k.pem;
    ssl_protocols TLSv1.3;
    root {self.dir}/html;
  }}
}}
""")
        self.p = subprocess.Popen(["nginx", "-c", f"{self.dir}/nginx.conf"], stderr=subprocess.DEVNULL)
        time.sleep(0.5)

    def curl(self, name):
        return ["curl", "-s", "-o", "/dev/null", "--cacert", f"{self.dir}/c.pem", "--tlsv1.3", "--fail",
                "-w", "%{http_code} %{size_download}", f"https://127.0.0.1:{self.port}/{name}"]

    def stop(self):
        self.p.terminate()
        self.p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--boards", type=int, default=32)
    ap.add_argument("--many-size-mib", type=int, default=256)
    a = ap.parse_args()
    if not shutil.which("nginx"):
        raise SystemExit("nginx missing: apt-get install nginx-light (tests/bench/packages.txt)")
    base = os.path.join(ROOT, "build", "bench")
    os.makedirs(base, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="images-", dir=base)  # on the same disk as a real state folder
    f = Fleet(tmp)
    nginx = None
    rows = []
    try:
        big = os.path.join(tmp, "big.img")
        size = a.size_mib << 20
        make_file(big, size)
        many = os.path.join(tmp, "many.img")
        msize = a.many_size_mib << 20
        make_file(many, msize)
        subprocess.run(["sync"])

        # ---- push against its limits
        dd_s, _ = run_timed(["dd", f"if={big}", f"of={f.state}/dd.test", "bs=1M", "conv=fsync"])
        os.unlink(f"{f.state}/dd.test")
        sha_s, _ = run_timed(["openssl", "dgst", "-sha256", big])
        f.start()
        push_s, _ = run_timed([os.environ.get("SKYCTL", os.path.join(ROOT, "build/controller/skyctl/skyctl")),
                               "--config", os.path.join(f.state, "skyctl.conf"), "image", "push", big,
                               "--name", "big"])
        limit = min(mbps(size, dd_s), mbps(size, sha_s))
        rows.append(("push 1 image", f"{mbps(size, push_s):.0f} MB/s",
                     f"dd conv=fsync {mbps(size, dd_s):.0f} MB/s, openssl sha256 {mbps(size, sha_s):.0f} MB/s",
                     f"{mbps(size, push_s) / limit:.2f}x the slower limit (aim >= 0.5x)"))
        r = skyctl(f, "image", "push", many, "--name", "many")
        if r.returncode != 0:
            raise SystemExit(r.stderr)
        big_id = f.api("GET", "/v1/images/big")[1]["id"]
        many_id = f.api("GET", "/v1/images/many")[1]["id"]

        # ---- one board against nginx + curl
        nginx = Nginx(tmp, {"big.img": big, "many.img": many})
        ngx_one = []
        for _ in range(2):
            s, r = run_timed(nginx.curl("big.img"))
            code, got = r.stdout.split()[:2]
            if code != "200" or int(got) != size:
                raise SystemExit(f"nginx served {code} with {got} bytes")
            ngx_one.append(s)
        tok = f.token(uses=a.boards + 1)
        p1 = start_agent(f, board_fixture(tmp, 0), tok["token"], f"{a.size_mib + 64}M")
        wait_for(lambda: len(f.online()) == 1, 20, "bench board online")
        bid = list(f.online())[0]
        f.api("POST", f"/v1/boards/{bid}/fetch", {"image": "big"})
        one_s = fetch_seconds(p1, big_id)
        ngx = min(ngx_one)
        rows.append((f"1 board, {a.size_mib} MiB", f"{mbps(size, one_s):.0f} MB/s",
                     f"nginx TLS 1.3 -> curl {mbps(size, ngx):.0f} MB/s",
                     f"{ngx / one_s:.2f}x nginx (aim >= 1.2x)"))
        p1.stop()
        f.procs.remove(p1)

        # ---- many boards against many curls
        t = time.time()
        curls = [subprocess.Popen(nginx.curl("many.img"), stdout=subprocess.DEVNULL) for _ in range(a.boards)]
        for c in curls:
            c.wait()
        ngx_many = time.time() - t
        nginx.stop()
        nginx = None
        agents = [start_agent(f, board_fixture(tmp, i + 1), tok["token"], f"{a.many_size_mib + 64}M")
                  for i in range(a.boards)]
        wait_for(lambda: len(f.online()) == a.boards, 60, "all bench boards online")
        ids = list(f.online())
        t = time.time()
        for bid in ids:
            f.api("POST", f"/v1/boards/{bid}/fetch", {"image": "many"})
        for p in agents:
            fetch_seconds(p, many_id)
        # Wall time from the first request to the last board's 'ready'.
        last = 0
        for p in agents:
            for line in p.text().splitlines():
                if f"image {many_id} ready" in line:
                    ts = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
                    last = max(last, ts.replace(tzinfo=datetime.timezone.utc).timestamp())
        many_s = last - t
        total = msize * a.boards
        peak = rss_hwm(f.ctl.p.pid)
        rows.append((f"{a.boards} boards x {a.many_size_mib} MiB", f"{mbps(total, many_s):.0f} MB/s",
                     f"{a.boards} curls from nginx {mbps(total, ngx_many):.0f} MB/s",
                     f"{ngx_many / many_s:.2f}x nginx (aim >= 1.0x)"))
        rows.append(("controller peak RSS", f"{peak / 1048576:.0f} MiB", "", "bounded: chunk budget 64 MiB"))
    finally:
        if nginx:
            nginx.stop()
        f.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print("\nSkyroot image benchmark (tests/bench/images.py)")
    for r in rows:
        print(f"  {r[0]:<26} {r[1]:>12}   vs {r[2]:<58} {r[3]}")


if __name__ == "__main__":
    main()
