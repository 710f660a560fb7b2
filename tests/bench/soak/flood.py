#!/usr/bin/env python3
"""Slow clients against every port of a Skyroot controller on 127.0.0.1.

    flood.py --agent-port P --api-port P [--boot-port P] [--connections 2000]
             [--interval 5] [--duration 900] [--api-token T] [--report 60]

Each port gets --connections connections, split among its kinds:

  agent (mTLS)   hello-trickle: the TLS ClientHello one byte every --interval s
                 (a handshake never finished); frame-trickle: a TLS session
                 without a client certificate, then a frame one byte at a time
  api (HTTPS)    hello-trickle; header-trickle: TLS done, then a request whose
                 header never ends, one byte at a time; unread-download:
                 GET /v1/boards (every board, authenticated), never read
  boot (HTTP)    header-trickle; unread-download: GET /boot/vmlinuz, never read

A connection the controller closes is opened again --interval s later, so
the pressure stays.  Every --report s one line per port and kind: open now,
closed by the controller, connections that failed (refused, reset, timed
out).  Only loopback: it dials 127.0.0.1 from --sources addresses of its
own (127.0.0.2 and up; all of 127.0.0.0/8 is loopback on Linux), so the
controller sees attackers that are not its boards' address (127.0.0.1) and
its per-address caps are exercised.  It stops by itself after --duration s
(or SIGTERM).
The standard library only.
"""
import argparse
import asyncio
import collections
import resource
import signal
import socket
import ssl
import sys
import time

HOST = "127.0.0.1"
CONNECT_TIMEOUT = 10.0
RAMP_PER_S = 400          # new connections a second per port at the start


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE    # a flood: whoever answers
    return ctx


def client_hello():
    """The bytes of a real TLS 1.3 ClientHello, made without a socket."""
    ctx = tls_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


class Stats:
    def __init__(self):
        self.open = collections.Counter()
        self.closed = collections.Counter()     # by the controller, after it was open
        self.failed = collections.Counter()     # refused, reset or timed out before it was open
        self.last_error = {}


class Flood:
    def __init__(self, args):
        self.a = args
        self.stats = Stats()
        self.nopen = 0
        self.stop = asyncio.Event()
        self.hello = client_hello()
        self.ctx = tls_context()

    async def sleep_or_stop(self, secs):
        try:
            await asyncio.wait_for(self.stop.wait(), secs)
        except asyncio.TimeoutError:
            pass
        return self.stop.is_set()

    async def open(self, port, tls):
        self.nopen += 1
        kw = {"local_addr": ("127.0.0.%d" % (2 + self.nopen % self.a.sources), 0)}
        if tls:
            kw |= {"ssl": self.ctx, "server_hostname": "localhost", "ssl_handshake_timeout": CONNECT_TIMEOUT}
        return await asyncio.wait_for(asyncio.open_connection(HOST, port, **kw), CONNECT_TIMEOUT)

    async def trickle(self, writer, data):
        """One byte every interval until the data ends (then stay silent)."""
        for i in range(len(data)):
            writer.write(data[i:i + 1])
            await writer.drain()
            if await self.sleep_or_stop(self.a.interval):
                return
        await self.stop.wait()

    async def watch_close(self, reader):
        """Returns when the controller closes the connection (reads and drops)."""
        while await reader.read(65536):
            pass

    async def behave(self, kind, reader, writer):
        if kind in ("agent/hello-trickle", "api/hello-trickle"):
            await self.trickle(writer, self.hello)
        elif kind == "agent/frame-trickle":
            # A 4-byte length (a 1 KiB frame) and its body, one byte at a time.
            await self.trickle(writer, (1024).to_bytes(4, "big") + b"\x0a" * 1024)
        elif kind in ("api/header-trickle", "boot/header-trickle"):
            writer.write(b"GET /v1/boards HTTP/1.1\r\nHost: localhost\r\n")
            await writer.drain()
            await self.trickle(writer, b"X-Slow: " + b"a" * 4096)
        elif kind == "api/unread-download":
            writer.write(b"GET /v1/boards HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "
                         + self.a.api_token.encode() + b"\r\n\r\n")
            await writer.drain()
            await self.stop.wait()
        elif kind == "boot/unread-download":
            writer.write(b"GET /boot/vmlinuz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            await writer.drain()
            await self.stop.wait()

    async def one(self, port, kind, start_delay):
        tls = not kind.startswith("boot/") and kind not in ("agent/hello-trickle", "api/hello-trickle")
        unread = kind.endswith("unread-download")
        if await self.sleep_or_stop(start_delay):
            return
        while not self.stop.is_set():
            try:
                reader, writer = await self.open(port, tls)
            except (OSError, asyncio.TimeoutError, ssl.SSLError) as e:
                self.stats.failed[kind] += 1
                self.stats.last_error[kind] = type(e).__name__ + (": " + str(e) if str(e) else "")
                if await self.sleep_or_stop(self.a.interval):
                    return
                continue
            if unread:
                # A small receive window: the controller's writes stall at once.
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            self.stats.open[kind] += 1
            closer = None if unread else asyncio.ensure_future(self.watch_close(reader))
            act = asyncio.ensure_future(self.behave(kind, reader, writer))
            waits = [act] + ([closer] if closer else [])
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in waits:
                    t.cancel()
                self.stats.open[kind] -= 1
            if not self.stop.is_set():
                self.stats.closed[kind] += 1
            writer.transport.abort()
            if await self.sleep_or_stop(self.a.interval):
                return

    def kinds(self):
        ports = [("agent", self.a.agent_port, ["agent/hello-trickle", "agent/frame-trickle"]),
                 ("api", self.a.api_port, ["api/hello-trickle", "api/header-trickle", "api/unread-download"])]
        if self.a.boot_port:
            ports.append(("boot", self.a.boot_port, ["boot/header-trickle", "boot/unread-download"]))
        return ports

    def report(self, t0):
        mins = (time.monotonic() - t0) / 60
        for name, port, kinds in self.kinds():
            parts = []
            for k in kinds:
                s = "%s open %d closed %d failed %d" % (k.split("/")[1], self.stats.open[k],
                                                        self.stats.closed[k], self.stats.failed[k])
                parts.append(s)
            print("flood: %4.1f min: %s :%d: %s" % (mins, name, port, "; ".join(parts)), flush=True)

    async def run(self):
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        tasks = []
        for name, port, kinds in self.kinds():
            for i in range(self.a.connections):
                kind = kinds[i % len(kinds)]
                tasks.append(asyncio.ensure_future(self.one(port, kind, i / RAMP_PER_S)))
        t0 = time.monotonic()
        end = t0 + self.a.duration
        while not self.stop.is_set():
            left = end - time.monotonic()
            if left <= 0:
                break
            if await self.sleep_or_stop(min(self.a.report, left)):
                break
            self.report(t0)
        self.report(t0)   # what is held now, before the connections close
        self.stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for k, e in sorted(self.stats.last_error.items()):
            print("flood: last failure of %s: %s" % (k, e), flush=True)
        for name, port, kinds in self.kinds():
            for k in kinds:
                key = k.replace("/", ".")
                print("figure flood.%s.closed %d connections  (closed by the controller)" % (key, self.stats.closed[k]))
                print("figure flood.%s.failed %d connections  (refused, reset or timed out)" % (key, self.stats.failed[k]))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--agent-port", type=int, required=True)
    p.add_argument("--api-port", type=int, required=True)
    p.add_argument("--boot-port", type=int, default=0)
    p.add_argument("--connections", type=int, default=2000, help="per port (default 2000)")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between two bytes (default 5)")
    p.add_argument("--duration", type=float, default=900.0, help="seconds before it stops by itself (default 900)")
    p.add_argument("--api-token", default="", help="the admin token: the unread downloads are authenticated")
    p.add_argument("--sources", type=int, default=8,
                   help="source addresses 127.0.0.2.. the connections come from (default 8)")
    p.add_argument("--report", type=float, default=60.0, help="seconds between two report lines (default 60)")
    a = p.parse_args()
    if not 1 <= a.connections <= 50000 or a.interval <= 0 or not 1 <= a.duration <= 86400 \
            or not 1 <= a.sources <= 250:
        p.error("--connections 1..50000, --interval > 0, --duration 1..86400, --sources 1..250")
    nports = 3 if a.boot_port else 2
    need = nports * a.connections + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need if hard == resource.RLIM_INFINITY else min(need, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < need:
        print("flood: the open-file limit is %d but %d connections need %d: fewer will be held"
              % (hard, nports * a.connections, need), file=sys.stderr)
    print("flood: %d connections on each of %d ports of %s (agent %d, api %d%s), one byte every %g s, %g s"
          % (a.connections, nports, HOST, a.agent_port, a.api_port,
             ", boot %d" % a.boot_port if a.boot_port else "", a.interval, a.duration), flush=True)
    asyncio.run(Flood(a).run())


if __name__ == "__main__":
    main()
