#!/usr/bin/env python3
"""Integration tests of the controller's network hardening: connection caps
per port and per address, fixed deadlines that dribbling bytes do not
extend, boot files streamed with back-pressure, wrong admin tokens
throttled, the API port's TLS policy.

Usage: hardening.py CASE (binaries as in fleet.py).  Floods stay on
127.0.0.0/8 (other sources: 127.0.0.2, ...), last seconds and open a few
hundred connections at most.
"""
import collections
import hashlib
import http.client
import os
import resource
import selectors
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import Fleet, check, free_port, run_cases, wait_for  # noqa: E402

# The first bytes of a TLS ClientHello: a record header and a handshake
# header that promise far more than ever comes.
CLIENT_HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(32))
HTTP_HEAD = b"GET /boot/vmlinuz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 64

DEADLINE = 2          # seconds: --enroll-timeout, --request-timeout, --tls-handshake-timeout
SLACK = 1.5           # timers, scheduling on a shared machine


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Conn:
    def __init__(self, sock, payload, opened):
        self.sock = sock
        self.payload = payload
        self.sent = 0
        self.opened = opened
        self.closed = None


class Flood:
    """Connections from each source to port, each sending one byte of
    payload every `every` seconds; a connection the server closes is opened
    again, so the flood keeps pressing at the cap for `duration` seconds."""

    def __init__(self, port, sources, per_source, payload, duration, every=0.5, tls_ctx=None):
        self.port, self.sources, self.per_source = port, sources, per_source
        self.payload, self.duration, self.every, self.tls_ctx = payload, duration, every, tls_ctx
        self.done = []        # closed connections
        self.live = []
        self.max_open = 0     # connections the server had not closed, at most
        self.thread = threading.Thread(target=self.run, daemon=True)

    def open(self, src):
        s = socket.socket()
        s.bind((src, 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", self.port))
        if self.tls_ctx:
            s = self.tls_ctx.wrap_socket(s, server_hostname="localhost")
        s.setblocking(False)
        c = Conn(s, self.payload, time.time())
        c.src = src
        self.sel.register(s, selectors.EVENT_READ, c)
        self.live.append(c)

    def close(self, c, now):
        c.closed = now
        self.sel.unregister(c.sock)
        c.sock.close()
        self.live.remove(c)
        self.done.append(c)

    def run(self):
        self.sel = selectors.DefaultSelector()
        start = time.time()
        for src in self.sources:
            for _ in range(self.per_source):
                self.open(src)
        next_tick = time.time()
        while time.time() - start < self.duration:
            now = time.time()
            if now >= next_tick:
                next_tick = now + self.every
                for c in list(self.live):
                    if c.sent < len(c.payload):
                        try:
                            c.sock.send(c.payload[c.sent:c.sent + 1])
                            c.sent += 1
                        except (OSError, ssl.SSLError):
                            self.close(c, now)
                # The server closed some: open as many again.
                by_src = {}
                for c in self.live:
                    by_src[c.src] = by_src.get(c.src, 0) + 1
                for src in self.sources:
                    for _ in range(self.per_source - by_src.get(src, 0)):
                        try:
                            self.open(src)
                        except OSError:
                            break
            for key, _ in self.sel.select(timeout=0.05):
                c = key.data
                try:
                    data = c.sock.recv(4096)
                except (ssl.SSLWantReadError, BlockingIOError):
                    continue
                except (OSError, ssl.SSLError):
                    data = b""
                if not data:
                    self.close(c, time.time())
            # Open = opened more than 0.3 s ago and still not closed.
            now = time.time()
            self.max_open = max(self.max_open, sum(1 for c in self.live if now - c.opened > 0.3))
        self.end = time.time()
        for c in list(self.live):
            self.close(c, None)
        self.sel.close()

    def longest(self):
        """The longest life of any connection (those still open at the end:
        until the end)."""
        return max([(c.closed or self.end) - c.opened for c in self.done] or [0])


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise OSError("no VmRSS")


def api_from(f, src, path, token, timeout=10):
    """GET path on the API from source address src: (status, seconds)."""
    t0 = time.time()
    conn = http.client.HTTPSConnection("127.0.0.1", f.api_port, context=f.sslctx, timeout=timeout,
                                       source_address=(src, 0))
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    st = conn.getresponse().status
    conn.close()
    return st, time.time() - t0


def short_deadlines():
    return ["--enroll-timeout", f"{DEADLINE}s", "--tls-handshake-timeout", f"{DEADLINE}s",
            "--request-timeout", f"{DEADLINE}s"]


def check_cut(fl, what):
    longest = fl.longest()
    print(f"{what}: {len(fl.done)} connections, at most {fl.max_open} open at once, "
          f"the longest lived {longest:.2f} s (deadline {DEADLINE} s)")
    check(longest <= DEADLINE + SLACK,
          f"{what}: a connection dribbling a byte every 0.5 s lived {longest:.1f} s, past the fixed "
          f"{DEADLINE} s deadline")


# --------------------------------------------------------------------------
# cases

def case_agent_slowloris(f):
    """A slowloris on the agent port is cut at the enrollment deadline, and
    while it presses at the port's cap the API and a board's session work."""
    raise_nofile()
    f.start(short_deadlines() + ["--agent-conns-max", "300", "--agent-conns-per-addr", "64"])
    tok = f.token()
    f.agent("a", token=tok["token"], hb=500)
    board = wait_for(lambda: len(f.online()) == 1 and list(f.online().values())[0], 20, "board online")
    fl = Flood(f.agent_port, [f"127.0.0.{i}" for i in range(2, 8)], 64, CLIENT_HELLO, duration=3 * DEADLINE + 1)
    fl.thread.start()
    time.sleep(DEADLINE + 0.5)
    st, secs = api_from(f, "127.0.0.1", "/v1/boards", f.admin)
    print(f"agent flood: an admin call took {secs:.2f} s")
    check(st == 200 and secs < 2, f"the API during an agent-port flood: {st} in {secs:.1f} s")
    seen = board["last_seen_at"]
    time.sleep(1.5)
    b = f.api("GET", f"/v1/boards/{board['id']}")[1]
    check(b["state"] == "online" and b["last_seen_at"] > seen,
          f"the board's session during the flood: {b['state']}, last seen {b['last_seen_at']} (was {seen})")
    fl.thread.join()
    check_cut(fl, "agent flood")
    check(fl.max_open <= 300, f"the agent port held {fl.max_open} connections, over its cap of 300")
    check(fl.max_open >= 250, f"the flood never reached the cap: {fl.max_open} open at most")
    check(list(f.online()) == [board["id"]], "the board is still online after the flood")


def case_api_slowloris(f):
    """Dribbled TLS handshakes and dribbled request headers on the API port
    are cut at their deadlines; an administrator from elsewhere gets in."""
    raise_nofile()
    f.start(short_deadlines() + ["--api-conns-per-addr", "32"])
    ctx = ssl.create_default_context(cafile=f.ca_file)
    hs = Flood(f.api_port, [f"127.0.0.{i}" for i in range(2, 6)], 32, CLIENT_HELLO, duration=2 * DEADLINE + 2)
    hdr = Flood(f.api_port, ["127.0.0.6"], 16, HTTP_HEAD, duration=2 * DEADLINE + 2, tls_ctx=ctx)
    hs.thread.start()
    hdr.thread.start()
    time.sleep(DEADLINE)
    st, secs = api_from(f, "127.0.0.1", "/v1/boards", f.admin)
    print(f"API flood: an admin call took {secs:.2f} s")
    check(st == 200 and secs < 2, f"the API during an API-port flood: {st} in {secs:.1f} s")
    hs.thread.join()
    hdr.thread.join()
    check_cut(hs, "API handshake flood")
    check_cut(hdr, "API header flood")


def case_boot_slowloris(f):
    """Dribbled request headers on the plain boot port are cut at the
    request deadline; boot and the API still answer."""
    raise_nofile()
    boot_port = free_port()
    f.start(short_deadlines() + ["--boot-listen", f"127.0.0.1:{boot_port}", "--boot-conns-per-addr", "16"])
    fl = Flood(boot_port, [f"127.0.0.{i}" for i in range(2, 10)], 16, HTTP_HEAD, duration=2 * DEADLINE + 2)
    fl.thread.start()
    time.sleep(DEADLINE)
    t0 = time.time()
    conn = http.client.HTTPConnection("127.0.0.1", boot_port, timeout=5)
    conn.request("GET", "/boot/ipxe?token=skt-nope")
    st = conn.getresponse().status
    secs = time.time() - t0
    print(f"boot flood: a boot request took {secs:.2f} s")
    check(st == 403 and secs < 2, f"the boot port during a flood: {st} in {secs:.1f} s")
    check(f.api("GET", "/v1/boards")[0] == 200, "the API during a boot-port flood")
    fl.thread.join()
    check_cut(fl, "boot flood")


def case_per_addr_cap(f):
    """One address cannot take more than its share of a port; another
    address still gets in."""
    raise_nofile()
    f.start(["--agent-conns-per-addr", "8", "--api-conns-per-addr", "8"])
    for port, name in ((f.agent_port, "agent"), (f.api_port, "API")):
        socks = []
        for _ in range(20):
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.connect(("127.0.0.1", port))
            socks.append(s)
        time.sleep(0.5)
        still = 0
        for s in socks:
            s.setblocking(False)
            try:
                still += s.recv(1) != b""
            except BlockingIOError:
                still += 1
            except OSError:
                pass
        print(f"{name} port: {still} of 20 connections from 127.0.0.2 kept")
        check(still == 8, f"{name} port: 127.0.0.2 kept {still} connections, its share is 8")
        # Another address still gets a TLS handshake at once.
        ctx = ssl.create_default_context(cafile=f.ca_file)
        raw = socket.socket()
        raw.bind(("127.0.0.3", 0))
        raw.settimeout(5)
        raw.connect(("127.0.0.1", port))
        t = ctx.wrap_socket(raw, server_hostname="localhost")
        check(t.version() is not None, f"{name} port: a handshake from 127.0.0.3")
        t.close()
        for s in socks:
            s.close()


def case_boot_stream(f):
    """Firmware files are streamed: clients that read nothing cost little,
    one over the download cap gets 503, a client that reads gets the bytes."""
    fw = os.path.join(f.tmp, "fw")
    os.mkdir(fw)
    data = os.urandom(64 << 20)
    with open(os.path.join(fw, "vmlinuz"), "wb") as out:
        out.write(data)
    with open(os.path.join(fw, "initrd.img"), "wb") as out:
        out.write(b"initrd")
    want = hashlib.sha256(data).hexdigest()
    del data
    boot_port = free_port()
    # Under AddressSanitizer freed pieces wait in its quarantine (256 MiB):
    # keep it small so that RSS shows what the controller holds.
    if "ASAN_OPTIONS" in os.environ:
        os.environ["ASAN_OPTIONS"] += ":quarantine_size_mb=4"
    ctl = f.start(["--firmware", fw, "--boot-listen", f"127.0.0.1:{boot_port}", "--boot-downloads-max", "16"])
    before = rss_kib(ctl.p.pid)
    lazy = []
    for i in range(16):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", boot_port))
        s.sendall(b"GET /boot/vmlinuz HTTP/1.1\r\nHost: x\r\n\r\n")
        lazy.append(s)
    time.sleep(2)
    grown = (rss_kib(ctl.p.pid) - before) / 1024
    print(f"boot stream: 16 clients that read nothing grew the controller by {grown:.1f} MiB")
    check(grown < 32, f"16 idle downloads of a 64 MiB file grew the controller by {grown:.0f} MiB")
    # From another address: 127.0.0.1 has its 16 connections.
    conn = http.client.HTTPConnection("127.0.0.1", boot_port, timeout=10, source_address=("127.0.0.2", 0))
    conn.request("GET", "/boot/vmlinuz")
    r = conn.getresponse()
    r.read()
    check(r.status == 503 and r.getheader("Retry-After"), f"a 17th download: {r.status} {r.getheaders()}")
    for s in lazy:
        s.close()
    def fetched():
        conn = http.client.HTTPConnection("127.0.0.1", boot_port, timeout=30)
        conn.request("GET", "/boot/vmlinuz")
        r = conn.getresponse()
        return r.status == 200 and r
    r = wait_for(fetched, 10, "a download slot")
    t0 = time.time()
    got = hashlib.sha256(r.read()).hexdigest()
    print(f"boot stream: 64 MiB read in {time.time() - t0:.2f} s")
    check(got == want, "the streamed vmlinuz has the file's sha256")
    # Over the API port (TLS) too.
    conn = http.client.HTTPSConnection("127.0.0.1", f.api_port, context=f.sslctx, timeout=30)
    conn.request("GET", "/boot/vmlinuz")
    r = conn.getresponse()
    check(r.status == 200 and hashlib.sha256(r.read()).hexdigest() == want, "vmlinuz over https")


def case_boot_stall(f):
    """A download must be taken at 1 MiB/s or faster (plus the keep-alive
    time): clients that ask for a firmware file and never read it, sending
    a byte now and then so that they are never idle, lose their download
    slots at that fixed deadline, and a board gets its firmware again."""
    fw = os.path.join(f.tmp, "fw")
    os.mkdir(fw)
    with open(os.path.join(fw, "vmlinuz"), "wb") as out:
        out.write(os.urandom(16 << 20))
    with open(os.path.join(fw, "initrd.img"), "wb") as out:
        out.write(b"initrd")
    boot_port = free_port()
    f.start(["--firmware", fw, "--boot-listen", f"127.0.0.1:{boot_port}", "--boot-downloads-max", "2",
             "--keepalive-timeout", "2s"])
    stalled = []
    for i in range(2):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.bind((f"127.0.0.{3 + i}", 0))
        s.connect(("127.0.0.1", boot_port))
        s.sendall(b"GET /boot/vmlinuz HTTP/1.1\r\nHost: x\r\n\r\n")
        stalled.append(s)
    t0 = time.time()
    stop = threading.Event()

    def dribble():
        while not stop.wait(0.5):
            for s in stalled:
                try:
                    s.send(b"G")
                except OSError:
                    pass
    th = threading.Thread(target=dribble, daemon=True)
    th.start()

    def download():
        conn = http.client.HTTPConnection("127.0.0.1", boot_port, timeout=10, source_address=("127.0.0.2", 0))
        conn.request("GET", "/boot/vmlinuz")
        r = conn.getresponse()
        body = r.read()
        conn.close()
        return r.status, len(body)
    try:
        st, _ = download()
        check(st == 503, f"a third download while two are held: {st}")
        # 2 s of slack + 16 MiB at 1 MiB/s: the slots are back after about 18 s.
        got = wait_for(lambda: download()[0] == 200 or None, 40, "a download slot back from the stalled clients",
                       interval=1)
        secs = time.time() - t0
        print(f"boot stall: the stalled downloads were cut after {secs:.1f} s (deadline 18 s)")
        check(got and 15 <= secs <= 30, f"the slots came back after {secs:.1f} s, not at the 18 s deadline")
    finally:
        stop.set()
        th.join()
        for s in stalled:
            s.close()


def case_auth_throttle(f):
    """Wrong admin tokens: a connection is closed after a few, one address
    guesses slowly, a warn line names it, the right token from elsewhere
    works at once."""
    f.start()
    guesses, per_conn, t0 = 0, [], time.time()
    while guesses < 200 and time.time() - t0 < 6:
        conn = http.client.HTTPSConnection("127.0.0.1", f.api_port, context=f.sslctx, timeout=10,
                                           source_address=("127.0.0.2", 0))
        n = 0
        try:
            while guesses < 200 and time.time() - t0 < 6:
                conn.request("GET", "/v1/boards", headers={"Authorization": f"Bearer ska-guess{guesses}"})
                r = conn.getresponse()
                r.read()
                check(r.status == 401, f"a wrong token: {r.status}")
                guesses += 1
                n += 1
                if r.getheader("Connection", "").lower() == "close":
                    break
        except (http.client.HTTPException, OSError):
            pass
        conn.close()
        per_conn.append(n)
    secs = time.time() - t0
    rate = guesses / secs
    print(f"auth: {guesses} wrong tokens in {secs:.1f} s ({rate:.1f}/s), per connection {per_conn}")
    check(max(per_conn) <= 5, f"a connection took {max(per_conn)} wrong tokens before it was closed")
    check(rate < 50, f"{rate:.0f} guesses/s from one address")
    st, secs = api_from(f, "127.0.0.3", "/v1/boards", f.admin)
    print(f"auth: the right token from another address took {secs:.2f} s")
    check(st == 200 and secs < 1, f"the right token from 127.0.0.3: {st} in {secs:.1f} s")
    log = f.ctl.text()
    check(any("WARN" in l.upper() and "127.0.0.2" in l and "token" in l for l in log.splitlines()),
          "a warn line names the peer of the wrong tokens")
    lines = sum(1 for l in log.splitlines() if "wrong API token" in l)
    check(lines <= secs + 10, f"{lines} log lines for {guesses} failures: not rate-limited")


def case_auth_throttle_upload(f):
    """Uploads are refused at their headers, before the body, so their 401
    cannot be delayed: a wrong upload token is counted like any other, and
    while its address waits out the delay no upload token of it is looked
    at (429).  The guesses looked at stay few; the right token from another
    address uploads at once."""
    f.start()
    answers, t0 = collections.Counter(), time.time()
    while time.time() - t0 < 4:
        conn = http.client.HTTPSConnection("127.0.0.1", f.api_port, context=f.sslctx, timeout=10,
                                           source_address=("127.0.0.4", 0))
        try:
            conn.request("POST", "/v1/images?name=guess&kind=disk", body=b"x" * 4096,
                         headers={"Authorization": f"Bearer ska-guess{sum(answers.values())}",
                                  "Content-Type": "application/octet-stream"})
            r = conn.getresponse()
            r.read()
            answers[r.status] += 1
        except (http.client.HTTPException, OSError):
            answers["reset"] += 1
        conn.close()
    print(f"auth: wrong upload tokens in 4 s: {dict(answers)}")
    check(set(answers) <= {401, 429, "reset"}, f"answers to wrong upload tokens: {dict(answers)}")
    check(0 < answers[401] <= 12, f"{answers[401]} upload guesses were looked at in 4 s (want at most 12)")
    check(answers[429] > answers[401], f"the throttled address was not told to wait: {dict(answers)}")
    conn = http.client.HTTPSConnection("127.0.0.1", f.api_port, context=f.sslctx, timeout=10,
                                       source_address=("127.0.0.5", 0))
    t1 = time.time()
    conn.request("POST", "/v1/images?name=good&kind=disk", body=b"y" * 4096,
                 headers={"Authorization": f"Bearer {f.admin}", "Content-Type": "application/octet-stream"})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    check(r.status in (200, 201) and time.time() - t1 < 2,
          f"the right token from 127.0.0.5: {r.status} {body[:200]!r} in {time.time() - t1:.1f} s")


def s_client(port, *args):
    return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
                           *args], input=b"", capture_output=True, timeout=20)


def case_api_tls(f):
    """The API port: no CBC suites, the server's order, no tickets; TLS 1.3 works."""
    f.start()
    r = s_client(f.api_port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA")
    check(r.returncode != 0, f"TLS 1.2 with a CBC suite was accepted:\n{r.stdout.decode(errors='replace')}")
    r = s_client(f.api_port, "-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256")
    out = r.stdout.decode(errors="replace")
    check(r.returncode == 0 and "ECDHE-ECDSA-AES128-GCM-SHA256" in out,
          f"TLS 1.2: the server's order picks AES128-GCM:\n{out}")
    check("TLS session ticket:" not in out, f"TLS 1.2 issued a session ticket:\n{out}")
    r = s_client(f.api_port, "-tls1_3")
    out = r.stdout.decode(errors="replace")
    check(r.returncode == 0 and "TLSv1.3" in out, f"TLS 1.3:\n{out}")
    check("TLS session ticket:" not in out, f"TLS 1.3 issued a session ticket:\n{out}")


def main():
    return run_cases(globals(), "skyh", Fleet)


if __name__ == "__main__":
    sys.exit(main())
