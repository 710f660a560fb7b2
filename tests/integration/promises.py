#!/usr/bin/env python3
"""Promises the documentation makes (README.md, docs/api.md, the man pages)
that nothing else checks, each against real skyrootd, skyagent and skyctl
processes on loopback (the harness is fleetlib.py).

Usage: promises.py CASE
  san              'skyrootd init --san': the names given are in the served
                   certificate, a client verifying one of them connects
                   (Python's ssl, curl), a name not given fails verification
  sigint           skyrootd and skyagent stop on SIGINT as on SIGTERM: exit
                   status 0, the acknowledged write kept, ports closed, the
                   agent's session closed (not timed out)
  offline_409      image fetch and bare-metal boot for an offline board:
                   409 conflict (and 202 while it is online)
  offline_command  "a command for an offline board waits until the board is
                   back": a guest created for an offline board reaches it
                   when it returns, and so does a delete
  board_auto       '--board auto' picks the online KVM board with the most
                   free memory; 409 when none has room
  body_limit       the 1 MiB request-body limit: 413 too_large above it (by
                   Content-Length and chunked), accepted at it
  ipxe_tokens      /boot/ipxe refuses unknown, used-up, expired and revoked
                   tokens (403 forbidden) and none (400), serves a good one
                   without spending it
  inventory_change an agent whose inventory changes sends it again on the
                   same session and 'board show' reflects it
"""
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import (FIXTURES, Fail, Fleet, board_fixture, check, fetch_text, free_port, read_until_closed,  # noqa: E402
                      run_cases, skyctl, sqlq, wait_for)

SAN_DNS = "ctl.promises.test"
SAN_IP = "127.0.0.7"


# ---------------------------------------------------------------- helpers

def board_root(f, src, name, uuid_tail, mem_kib=None):
    """A copy of fixture board SRC that a test may edit: its own DMI product
    UUID and hostname (the board's name), and MemTotal when given."""
    dst = board_fixture(os.path.join(f.tmp, f"root-{name}"), src, f"5e7a1c00-0000-4000-8000-{uuid_tail:012d}", name)
    if mem_kib is not None:
        set_mem(dst, mem_kib)
    return dst


def set_mem(root, kib):
    path = os.path.join(root, "proc", "meminfo")
    lines = open(path).read().splitlines()
    lines = [f"MemTotal:       {kib} kB" if l.startswith("MemTotal:") else l for l in lines]
    tmp = path + ".new"
    with open(tmp, "w") as out:
        out.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def board(f, name):
    st, b = f.api("GET", f"/v1/boards/{name}")
    check(st == 200, f"board {name}: {st} {b}")
    return b


def online_board(f, name, timeout=20):
    return wait_for(lambda: (lambda b: b if b["state"] == "online" and b["cpus"] else None)(board(f, name)),
                    timeout, f"board {name} online with its inventory")


def push(f, path, name, kind):
    r = skyctl(f, "-o", "json", "image", "push", path, "--name", name, "--kind", kind)
    check(r.returncode == 0, f"image push {name}: {r.stderr}")
    return json.loads(r.stdout)


def junk_kernel(f, name="junk"):
    """An image that is no bzImage: a guest on it fails on the board with a
    reason only the board can give, proof the order reached it."""
    path = os.path.join(f.tmp, f"{name}.bin")
    with open(path, "wb") as out:
        out.write(os.urandom(64 << 10))
    return push(f, path, name, "kernel")


def error_code(body):
    return body.get("error", {}).get("code") if isinstance(body, dict) else None


def refused(port, host="127.0.0.1"):
    try:
        socket.create_connection((host, port), timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True


# ---------------------------------------------------------------- --san

def verified(f, name):
    """served_cert for a name the certificate must hold."""
    try:
        return served_cert(f, name)
    except ssl.SSLCertVerificationError as e:
        raise Fail(f"a client verifying {name!r}, a name given to init, is refused: {e}")


def served_cert(f, server_hostname):
    """TLS to the API port verifying against the CA as SERVER_HOSTNAME:
    the peer certificate, after a GET /healthz that answered 200."""
    ctx = ssl.create_default_context(cafile=f.ca_file)
    raw = socket.create_connection(("127.0.0.1", f.api_port), timeout=5)
    with ctx.wrap_socket(raw, server_hostname=server_hostname) as s:
        s.sendall(f"GET /healthz HTTP/1.1\r\nHost: {server_hostname}\r\nConnection: close\r\n\r\n".encode())
        data, how = read_until_closed(s)
        check(how == "eof", f"GET /healthz as {server_hostname}: the answer ends the connection ({how})")
        check(data.startswith(b"HTTP/1.1 200"), f"GET /healthz as {server_hostname}: {data[:200]!r}")
        return s.getpeercert()


def case_san(f):
    f.start()
    sans = verified(f, SAN_DNS)["subjectAltName"]
    print(f"served SANs: {sans}")
    for want in (("DNS", SAN_DNS), ("IP Address", SAN_IP), ("DNS", "localhost"), ("IP Address", "127.0.0.1")):
        check(want in sans, f"{want} in the served certificate's SANs: {sans}")
    # Clients verifying each given name (and the defaults) connect.
    for name in (SAN_DNS, SAN_IP, "localhost", "127.0.0.1"):
        verified(f, name)
    # Names not given fail verification: a client checking them refuses.
    for name in ("other.promises.test", "promises.test", "127.0.0.8"):
        try:
            served_cert(f, name)
        except ssl.SSLCertVerificationError as e:
            check("mismatch" in str(e) or "match" in str(e), f"{name}: refused for the name: {e}")
            continue
        raise Fail(f"a client verifying {name!r}, a name not given, connected")
    # libcurl, what skyctl is built on, verifying the name it dialled.
    if not shutil.which("curl"):
        print("note: no curl here; the libcurl half of the check is left out")
        return
    for name, ok in ((SAN_DNS, True), ("other.promises.test", False)):
        r = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", f.ca_file,
                            "--resolve", f"{name}:{f.api_port}:127.0.0.1", f"https://{name}:{f.api_port}/healthz"],
                           capture_output=True, text=True)
        print(f"curl {name}: exit {r.returncode} {r.stderr.strip().splitlines()[0] if r.stderr.strip() else ''}")
        if ok:
            check(r.returncode == 0, f"curl verifying {name}: {r.returncode} {r.stderr}")
        else:
            # 60: the peer certificate cannot be authenticated (the name)
            check(r.returncode == 60 and name in r.stderr, f"curl verifying {name}: {r.returncode} {r.stderr}")


# ---------------------------------------------------------------- SIGINT

def controller_stops(f, sig, signame):
    """An acknowledged write just before SIG; the controller exits 0 and
    says why, both ports close, the agent sees its session end, and the
    write is there after a restart."""
    tok = f.token(uses=7)
    ctl = f.ctl
    rc = ctl.stop(sig, timeout=15)
    f.procs.remove(ctl)
    check(rc == 0, f"skyrootd exit status {rc} on {signame}:\n{ctl.text()[-3000:]}")
    check(f"{signame}: shutting down" in ctl.text(), f"skyrootd logs {signame}")
    check(refused(f.api_port) and refused(f.agent_port), f"both ports closed after {signame}")
    if f.engine == "sqlite":  # a PostgreSQL store has no file here
        wal = os.path.join(f.state, "skyroot.db-wal")
        left = os.path.getsize(wal) if os.path.exists(wal) else 0
        check(left == 0, f"the store was closed (its WAL checkpointed) on {signame}: {left} bytes left")
    os.rename(ctl.log_path, ctl.log_path + f".{signame}.log")
    f.start()
    st, toks = f.api("GET", "/v1/tokens")
    got = {t["id"]: t for t in toks["tokens"]}
    check(tok["id"] in got and got[tok["id"]]["uses_left"] == 7,
          f"the token acknowledged before {signame} is kept: {toks}")


def agent_stops(f, p, sig, signame, bid):
    """The agent exits 0 and says why; it closes its session (the
    controller sees it closed, not timed out, long before 3 missed
    10 s heartbeats)."""
    t0 = time.time()
    rc = p.stop(sig, timeout=15)
    check(rc == 0, f"skyagent exit status {rc} on {signame}:\n{p.text()[-3000:]}")
    check(f"{signame}: stopping" in p.text(), f"skyagent logs {signame}")
    wait_for(lambda: board(f, bid)["state"] == "offline", 5, f"board offline after the agent's {signame}")
    check(f"board {bid}: session down (closed)" in f.ctl.text()[-20000:],
          f"the controller saw the session closed on {signame}:\n{f.ctl.text()[-2000:]}")
    print(f"agent {signame}: offline after {time.time() - t0:.2f}s")


def case_sigint(f):
    f.start()
    idir = os.path.join(f.tmp, "identity")
    tok = f.token()
    p = f.agent("a", token=tok["token"], extra=["--identity-dir", idir])
    bid = wait_for(lambda: list(f.online()), 20, "board online")[0]
    for sig, name in ((signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")):
        controller_stops(f, sig, name)
        wait_for(lambda: bid in f.online(), 40, f"the board back after the controller's {name}")
    agent_stops(f, p, signal.SIGTERM, "SIGTERM", bid)
    p = f.agent("a", extra=["--identity-dir", idir], name="a-again")
    wait_for(lambda: bid in f.online(), 20, "the board back")
    agent_stops(f, p, signal.SIGINT, "SIGINT", bid)
    check(f.ctl.p.poll() is None, "the controller runs on")


# ---------------------------------------------------------------- offline

def case_offline_409(f):
    f.start()
    img = push(f, os.path.join(FIXTURES, "boards", "a", "proc", "cpuinfo"), "small", "kernel")
    tok = f.token()
    p = f.agent("a", token=tok["token"])
    bid = wait_for(lambda: list(f.online()), 20, "board online")[0]
    st, body = f.api("POST", f"/v1/boards/{bid}/fetch", {"image": img["name"]})
    check(st == 202 and body["board"] == bid and body["image"] == img["id"], f"fetch while online: {st} {body}")
    check(p.stop() == 0, "agent stopped")
    wait_for(lambda: board(f, bid)["state"] == "offline", 10, "board offline")
    for what, path, req in (("fetch", f"/v1/boards/{bid}/fetch", {"image": img["name"]}),
                            ("fetch by name", "/v1/boards/board-a/fetch", {"image": img["id"]}),
                            ("boot", f"/v1/boards/{bid}/boot", {"kernel": img["name"]}),
                            ("boot by name", "/v1/boards/board-a/boot", {"kernel": img["id"], "cmdline": "x"})):
        st, body = f.api("POST", path, req)
        print(f"{what} offline: {st} {body}")
        check(st == 409 and error_code(body) == "conflict" and "offline" in body["error"]["message"],
              f"{what} on an offline board: 409 conflict naming why, got {st} {body}")
    for cmd in (["image", "fetch", "small", "--board", "board-a", "--no-wait"],
                ["board", "boot", "board-a", "--kernel", "small", "--no-wait"]):
        r = skyctl(f, *cmd)
        check(r.returncode == 1 and "offline" in r.stderr, f"skyctl {' '.join(cmd[:2])} offline: {r.returncode} {r.stderr}")
    check(board(f, bid)["boot"] is None, "no boot order was recorded for the offline board")


def case_offline_command(f):
    f.start()
    junk = junk_kernel(f)
    idir = os.path.join(f.tmp, "identity")
    tok = f.token()
    p = f.agent("a", token=tok["token"], extra=["--identity-dir", idir], hb=1000)
    bid = wait_for(lambda: list(f.online()), 20, "board online")[0]
    check(p.stop() == 0, "agent stopped")
    wait_for(lambda: board(f, bid)["state"] == "offline", 10, "board offline")
    st, g = f.api("POST", "/v1/guests", {"name": "late", "board": "board-a", "kernel": junk["name"],
                                         "memory_bytes": 64 << 20})
    check(st == 201 and g["board"] == bid and g["desired"] == "running",
          f"a guest for an offline board is taken: {st} {g}")
    check(g["state"] == "pending", f"it waits for the board: {g}")
    st, g = f.api("GET", "/v1/guests/late")
    check(st == 200 and g["state"] == "pending" and not g["error"], f"still waiting while offline: {g}")
    p = f.agent("a", extra=["--identity-dir", idir], name="a-back", hb=1000)
    wait_for(lambda: bid in f.online(), 20, "the board back")

    def reached():
        st, g = f.api("GET", "/v1/guests/late")
        return g if g["state"] == "failed" else None
    g = wait_for(reached, 30, "the board to act on the guest", interval=0.3)
    # Only the board can say this: it fetched the kernel and looked inside.
    check("bzImage" in (g["error"] or ""), f"the board's own reason: {g}")
    check(g["id"] in p.text(), f"the returned agent took guest {g['id']}:\n{p.text()[-2000:]}")
    # A delete while the board is away (frozen: it keeps the guest in its
    # memory) reaches it when it is back: the board is told to destroy it.
    os.kill(p.p.pid, signal.SIGSTOP)
    try:
        wait_for(lambda: board(f, bid)["state"] == "offline", 10, "the frozen board offline")
        st, body = f.api("DELETE", "/v1/guests/late")
        check(st == 200 and body == {"id": g["id"], "deleted": True}, f"delete for an offline board: {st} {body}")
        check(f"guest {g['id']}: deleted by the controller" not in p.text(), "not delivered while offline")
    finally:
        os.kill(p.p.pid, signal.SIGCONT)
    wait_for(lambda: f"guest {g['id']}: deleted by the controller" in p.text(), 30,
             "the delete to reach the board when it is back")
    check(bid in f.online(), "the board is online again")


# ---------------------------------------------------------------- --board auto

def case_board_auto(f):
    f.start()
    junk = junk_kernel(f)
    # Two KVM boards (4 GiB, 3 GiB), a bigger board without KVM, and a
    # still bigger KVM board that goes offline: only the first two count.
    roots = {"big": board_root(f, "a", "big", 1, 4 << 20), "small": board_root(f, "a", "small", 2, 3 << 20),
             "nokvm": board_root(f, "b", "nokvm", 3, 64 << 20), "gone": board_root(f, "a", "gone", 4, 16 << 20)}
    tok = f.token(uses=4)
    procs = {n: f.agent(n, token=tok["token"], root=r, name=n) for n, r in roots.items()}
    ids = {n: online_board(f, n)["id"] for n in roots}
    check(board(f, "big")["kvm"] and not board(f, "nokvm")["kvm"], "fixture KVM flags")
    check(procs["gone"].stop() == 0, "board 'gone' stopped")
    wait_for(lambda: board(f, "gone")["state"] == "offline", 10, "board 'gone' offline")
    by_id = {v: k for k, v in ids.items()}

    def auto(name, mib):
        return f.api("POST", "/v1/guests", {"name": name, "board": "auto", "kernel": junk["name"],
                                            "memory_bytes": mib << 20})
    # Free (less 512 MiB for the firmware): big 3584, small 2560 MiB.
    for name, mib, want in (("g1", 512, "big"),     # -> big 3072, small 2560
                            ("g2", 768, "big"),     # -> big 2304, small 2560
                            ("g3", 256, "small"),   # -> big 2304, small 2304
                            ("g4", 2304, "big")):   # ties go to the first; either fits exactly
        st, g = auto(name, mib)
        check(st == 201, f"auto {name} {mib} MiB: {st} {g}")
        got = by_id.get(g["board"])
        print(f"auto {name} {mib} MiB -> {got}")
        if name == "g4":
            check(got in ("big", "small"), f"{name}: an online KVM board, got {got}")
        else:
            check(got == want, f"{name} ({mib} MiB): placed on {got}, the board with most free memory is {want}")
    # Now big or small has 0 MiB free and the other 2304: 2305 fits nowhere
    # online with KVM, though 'nokvm' and the offline 'gone' have room.
    st, body = auto("g5", 2305)
    print(f"auto, no room: {st} {body}")
    check(st == 409 and error_code(body) == "conflict" and "no online board with KVM" in body["error"]["message"],
          f"auto with no room: 409 conflict, got {st} {body}")
    st, g = auto("g6", 2304)
    check(st == 201 and by_id.get(g["board"]) in ("big", "small"), f"the last 2304 MiB still fit: {st} {g}")
    st, body = auto("g7", 16)
    check(st == 409 and error_code(body) == "conflict", f"both full: {st} {body}")
    r = skyctl(f, "guest", "create", "--name", "g8", "--board", "auto", "--kernel", "junk", "--memory", "16M")
    check(r.returncode == 1 and "no online board with KVM" in r.stderr, f"skyctl with no room: {r.stderr}")
    st, gl = f.api("GET", "/v1/guests")
    check(sorted(g["name"] for g in gl["guests"]) == ["g1", "g2", "g3", "g4", "g6"], f"guests: {gl}")


# ---------------------------------------------------------------- body limit

LIMIT = 1 << 20


def padded_token_body(size):
    body = b'{"uses": 1, "ttl_seconds": 600}'
    return body + b" " * (size - len(body))


def raw_post(f, path, body, chunked=False):
    """POST BODY over TLS by hand, sending while the controller may already
    have answered; the status and the JSON body of the answer."""
    raw = socket.create_connection(("127.0.0.1", f.api_port), timeout=10)
    s = f.sslctx.wrap_socket(raw, server_hostname="127.0.0.1")
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {f.admin}\r\n"
            "Content-Type: application/json\r\nConnection: close\r\n")
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {len(body)}\r\n\r\n"
    if chunked:
        parts = [body[i:i + 65536] for i in range(0, len(body), 65536)]
        payload = b"".join(b"%x\r\n" % len(p) + p + b"\r\n" for p in parts) + b"0\r\n\r\n"
    else:
        payload = body
    s.sendall(head.encode())
    try:
        for i in range(0, len(payload), 16384):
            s.sendall(payload[i:i + 16384])
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
        pass  # refused before the end of the body: the answer is already there
    data, how = read_until_closed(s, timeout=10)
    check(how != "timeout", f"POST {path}: the controller ends the connection after its answer: {data[:300]!r}")
    s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    check(head.startswith(b"HTTP/1.1 "), f"an HTTP answer: {data[:300]!r}")
    status = int(head.split()[1])
    if b"transfer-encoding: chunked" in head.lower():
        out = b""
        while rest:
            n, _, rest = rest.partition(b"\r\n")
            n = int(n, 16)
            if not n:
                break
            out, rest = out + rest[:n], rest[n + 2:]
        rest = out
    return status, json.loads(rest) if rest else None


def case_body_limit(f):
    f.start()
    for chunked in (False, True):
        how = "chunked" if chunked else "Content-Length"
        st, body = raw_post(f, "/v1/tokens", padded_token_body(LIMIT), chunked)
        check(st == 201 and body["token"].startswith("skt-"), f"{how}: a body of exactly 1 MiB is taken: {st} {body}")
        st, body = raw_post(f, "/v1/tokens", padded_token_body(LIMIT - 1), chunked)
        check(st == 201, f"{how}: a body just under 1 MiB is taken: {st} {body}")
        st, body = raw_post(f, "/v1/tokens", padded_token_body(LIMIT + 1), chunked)
        print(f"{how}, 1 MiB + 1: {st} {body}")
        check(st == 413 and error_code(body) == "too_large" and str(LIMIT) in body["error"]["message"],
              f"{how}: 1 MiB + 1 byte is refused 413 too_large naming the limit, got {st} {body}")
    st, toks = f.api("GET", "/v1/tokens")
    check(len(toks["tokens"]) == 4, f"only the four bodies within the limit made tokens: {toks}")
    check(f.api("GET", "/healthz", auth=False)[0] == 200, "the controller serves on")


# ---------------------------------------------------------------- /boot/ipxe

def case_ipxe_tokens(f):
    boot_port = free_port()
    f.start(["--boot-listen", f"127.0.0.1:{boot_port}"])
    base = f"http://127.0.0.1:{boot_port}/boot/ipxe?token="

    def ipxe(tok):
        st, text = fetch_text(base + tok)
        return st, text

    def forbidden(tok, what):
        st, text = ipxe(tok)
        print(f"{what}: {st} {text.strip()}")
        check(st == 403, f"{what}: 403, got {st} {text}")
        check(error_code(json.loads(text)) == "forbidden", f"{what}: error code forbidden: {text}")
        check(tok not in text, f"{what}: the answer does not echo the token: {text}")

    def served(tok, what):
        st, text = ipxe(tok)
        check(st == 200 and text.startswith("#!ipxe") and f"skyroot.token={tok}" in text,
              f"{what}: 200 with a script carrying the token, got {st} {text}")

    good = f.token(uses=2)
    for _ in range(3):
        served(good["token"], "a good token")
    st, toks = f.api("GET", f"/v1/tokens")
    left = {t["id"]: t["uses_left"] for t in toks["tokens"]}
    check(left[good["id"]] == 2, f"the script does not spend the token: {left}")
    st, text = fetch_text(f"http://127.0.0.1:{boot_port}/boot/ipxe")
    check(st == 400 and error_code(json.loads(text)) == "bad_request", f"no token: 400 bad_request, got {st} {text}")
    forbidden("skt-" + "0" * 64, "an unknown token")
    forbidden(good["token"][:-1] + ("0" if good["token"][-1] != "0" else "1"), "a token one digit off")
    # Used up: good until an agent enrolls with it.
    used = f.token(uses=1)
    served(used["token"], "the single-use token before its use")
    f.agent("a", token=used["token"])
    wait_for(lambda: len(f.online()) == 1, 20, "the board enrolled")
    forbidden(used["token"], "a used-up token")
    # Expired: good until its expiry passes (moved into the past in the store).
    old = f.token(uses=5)
    served(old["token"], "the token before it expires")
    f.store_sql(f"UPDATE tokens SET expires_at = {int(time.time()) - 1} WHERE id = {sqlq(old['id'])}")
    forbidden(old["token"], "an expired token")
    # Revoked.
    rev = f.token(uses=5)
    served(rev["token"], "the token before it is revoked")
    check(f.api("DELETE", f"/v1/tokens/{rev['id']}")[0] == 200, "revoke")
    forbidden(rev["token"], "a revoked token")
    # The API port answers the same.
    st, text = fetch_text(f"https://127.0.0.1:{f.api_port}/boot/ipxe?token={used['token']}", f.sslctx)
    check(st == 403, f"a used-up token on the API port: {st} {text}")
    st, text = fetch_text(f"https://127.0.0.1:{f.api_port}/boot/ipxe?token={good['token']}", f.sslctx)
    check(st == 200 and f"skyroot.token={good['token']}" in text, f"a good token on the API port: {st}")
    served(good["token"], "the good token, still")


# ---------------------------------------------------------------- inventory

def case_inventory_change(f):
    f.start()
    root = board_root(f, "a", "inv", 9, 4 << 20)
    tok = f.token()
    p = f.agent("inv", token=tok["token"], root=root, name="inv")
    b = online_board(f, "inv")
    check(b["memory_bytes"] == (4 << 30), f"the first inventory: {b['memory_bytes']}")
    set_mem(root, 6 << 20)
    t0 = time.time()
    b = wait_for(lambda: (lambda b: b if b["memory_bytes"] == (6 << 30) else None)(board(f, "inv")), 30,
                 "the new memory size in the board")
    print(f"inventory change seen after {time.time() - t0:.1f}s")
    check(b["state"] == "online", f"still online: {b}")
    r = skyctl(f, "-o", "json", "board", "show", "inv")
    check(r.returncode == 0 and json.loads(r.stdout)["memory_bytes"] == (6 << 30), f"skyctl board show: {r.stdout}")
    text = p.text()
    check(text.count("session up as board") == 1 and "session down" not in text,
          f"on the same session, without reconnecting:\n{text[-2000:]}")
    check(f.ctl.text().count(f"board {b['id']}: session up") == 1, "the controller saw one session")
    check("inventory changed; sent it again" in text, f"the agent says it sent it again:\n{text[-2000:]}")


def main():
    extra = {"san": ["--san", SAN_DNS, "--san", SAN_IP]}
    name = sys.argv[1] if len(sys.argv) == 2 else ""
    return run_cases(globals(), "promises", lambda tmp: Fleet(tmp, init_extra=extra.get(name, ())))


if __name__ == "__main__":
    sys.exit(main())
