#!/usr/bin/env python3
"""Integration tests: real skyrootd, skyagent and skyctl processes on loopback
(the shared harness is fleetlib.py).

Usage: fleet.py CASE   (the binaries come from $SKYROOTD, $SKYAGENT, $SKYCTL;
fixture boards from $SKY_FIXTURES/boards/{a,b,c}).  Every process a case
starts is stopped by pid when it ends.
"""
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import (SKY_SLOW, SKYCTL, SKYROOTD, Fleet, board_token, cert_fields, check, expect_refused,  # noqa: E402
                      fetch_text, forge_cert, free_port, heartbeat_with_cert, link_errors, link_frames,
                      pb_field, pb_fields, read_for, read_until_closed, refused_old_cert, run_cases, skyctl,
                      sqlq, tls_connect, wait_for)


def case_enroll_three(f):
    f.start()
    tok = f.token(uses=3)
    check(tok["cmdline"].startswith(f"skyroot.controller=127.0.0.1:{f.agent_port} skyroot.token=skt-"),
          f"cmdline: {tok['cmdline']}")
    check(tok["ca_pin"] == f.pin, "the token's CA pin is the CA certificate's hash")
    for b in "abc":
        f.agent(b, token=tok["token"])
    on = wait_for(lambda: len(f.online()) == 3 and f.online(), 20, "three boards online")
    by_name = {b["name"]: b for b in on.values()}
    check(set(by_name) == {"board-a", "board-b", "board-c"}, f"names: {sorted(by_name)}")
    a = by_name["board-a"]
    for field in ("id", "name", "state", "uuid", "cpus", "memory_bytes", "kvm", "firmware",
                  "iommu_groups", "nics", "last_seen_at"):
        check(field in a, f"board JSON lacks {field}")
    check(a["kvm"] is True and a["firmware"] == "uefi", f"board a: kvm {a['kvm']} firmware {a['firmware']}")
    check(a["cpus"] > 0 and a["memory_bytes"] > 0, "cpus and memory reported")
    devs = [d for g in a["iommu_groups"] for d in g["devices"]]
    check(any(d["vendor_device"] == "1234:11e8" for d in devs), f"edu device in IOMMU groups: {devs}")
    check(any(n["name"] == "eth0" and n["link"] for n in a["nics"]), f"nics: {a['nics']}")
    b = by_name["board-b"]
    check(b["kvm"] is False and b["firmware"] == "bios", "board b: no kvm, bios")
    one = f.api("GET", f"/v1/boards/{a['id']}")
    check(one[0] == 200 and one[1]["uuid"] == a["uuid"], "board by id")
    one = f.api("GET", "/v1/boards/board-a")
    check(one[0] == 200 and one[1]["id"] == a["id"], "board by name")
    st, toks = f.api("GET", "/v1/tokens")
    check(st == 200 and toks["tokens"][0]["uses_left"] == 0 and toks["tokens"][0]["state"] == "used",
          f"token used up: {toks}")
    check("token" not in toks["tokens"][0], "token list never shows the secret")


def case_token_rules(f):
    f.start()
    # No token at all.
    p = f.agent("a", once=True)
    expect_refused(p, "no enrollment token")
    # A token that does not exist.
    p = f.agent("a", token="skt-" + "0" * 64, once=True)
    expect_refused(p, "not known to this controller")
    # An expired token: its expiry moved into the past in the store.
    tok = f.token()
    f.store_sql(f"UPDATE tokens SET expires_at = 1 WHERE id = {sqlq(tok['id'])}")
    p = f.agent("a", token=tok["token"], once=True)
    expect_refused(p, "has expired")
    # A revoked token.
    tok = f.token()
    check(f.api("DELETE", f"/v1/tokens/{tok['id']}")[0] == 200, "revoke token")
    p = f.agent("a", token=tok["token"], once=True)
    expect_refused(p, "was revoked")
    st, toks = f.api("GET", "/v1/tokens")
    states = {t["id"]: t["state"] for t in toks["tokens"]}
    check(states[tok["id"]] == "revoked", f"token states {states}")
    check(re.search(r"enrollment refused for machine \S+: enrollment token was revoked", f.ctl.text()),
          "the controller logs the revocation as the reason")
    # Revoked with a use left after a first enrollment: refused as revoked,
    # not as used up (it is not).
    tok = f.token(uses=2)
    p = f.agent("c", token=tok["token"], once=True)
    rc = wait_for(lambda: p.p.poll() is not None and [p.p.returncode], 20, "enrollment of board c")[0]
    check(rc == 0, f"board c enrolls: {p.text()}")
    check(f.api("DELETE", f"/v1/tokens/{tok['id']}")[0] == 200, "revoke the half-used token")
    p = f.agent("b", token=tok["token"], once=True)
    expect_refused(p, "was revoked")
    check("already been used" not in p.text(), f"a token with a use left is not called used: {p.text()}")
    for b in f.boards():
        check(f.api("DELETE", f"/v1/boards/{b['id']}")[0] == 200, "delete board c again")
    # A token used once is spent for another machine.
    tok = f.token()
    p = f.agent("a", token=tok["token"], once=True)
    rc = wait_for(lambda: p.p.poll() is not None and [p.p.returncode], 20, "first enrollment")[0]
    check(rc == 0, f"first use enrolls: {p.text()}")
    p = f.agent("b", token=tok["token"], once=True)
    expect_refused(p, "already been used")
    check(len(f.boards()) == 1, "only one board enrolled")
    check(re.search(r"enrollment refused for machine \S+: enrollment token has already been used", f.ctl.text()),
          "the controller logs the use as the reason")


def case_token_race(f):
    f.start()
    for round_ in range(4):
        tok = f.token()
        ps = [f.agent(b, token=tok["token"], once=True, name=f"{b}{round_}") for b in "abc"]
        rcs = [wait_for(lambda p=p: p.p.poll() is not None and [p.p.returncode], 30, "racer")[0] for p in ps]
        check(sorted(rcs) == [0, 1, 1], f"round {round_}: exactly one winner, got {rcs}")
        left = int(f.store_sql(f"SELECT uses_left FROM tokens WHERE id = {sqlq(tok['id'])}")[0][0])
        check(left == 0, f"uses_left {left}")
        # reset: delete boards so the next round's winner is a new board
        for b in f.boards():
            f.api("DELETE", f"/v1/boards/{b['id']}")


def case_wrong_ca_pin(f):
    f.start()
    tok = f.token()
    p = f.agent("a", token=tok["token"], pin="sha256:" + "ab" * 32, once=True)
    expect_refused(p, "does not match the pinned")
    check(f.boards() == [], "no board enrolled through a wrong pin")
    st, toks = f.api("GET", "/v1/tokens")
    check(toks["tokens"][0]["uses_left"] == 1, "the token was not spent")


def case_foreign_client_cert(f):
    """A certificate from a CA of our own that copies a real, online
    board's certificate field for field (its board id, serial, issuer name):
    only the chain check can refuse it.  The handshake ends with a TLS
    alert, the controller logs whose certificate and why, and the real
    board keeps its one session."""
    f.start()
    tok = f.token()
    idir = os.path.join(f.tmp, "identity-a")
    p = f.agent("a", token=tok["token"], extra=["--identity-dir", idir])
    bid = wait_for(lambda: list(f.online()), 20, "board a online")[0]
    wait_for(lambda: f"board {bid}: session up" in f.ctl.text(), 10, "the session in the controller's log")
    crt, key = forge_cert(f.tmp, os.path.join(idir, "identity.pem"))
    check(cert_fields(crt)[0] == bid, f"the forgery names board {bid}")
    data, how = heartbeat_with_cert(f, crt, key)
    print(f"refused with: {how}")
    # The alert of a chain that is not ours: unknown_ca (no issuer of ours)
    # or decrypt_error (a signature our CA's key did not make).
    check(how.startswith("tls error") and ("ALERT_UNKNOWN_CA" in how or "ALERT_DECRYPT_ERROR" in how),
          f"the handshake ends with an unknown-CA alert: {how} {data!r}")
    check(data == b"", f"nothing reached us before the alert: {data!r}")
    line = wait_for(lambda: [l for l in f.ctl.text().splitlines()
                             if "agent link: client certificate" in l and "refused" in l], 10,
                    "the controller's refusal line")
    # The chain check's reason: no issuer of ours (OpenSSL looks the issuer up
    # by key identifier too), or a signature not by our CA's key.
    check(any(f"client certificate {bid} refused at depth 0: {why}" in line[0]
              for why in ("unable to get local issuer certificate", "certificate signature failure")),
          f"the controller names the board id and the chain's reason: {line}")
    check(f.ctl.text().count(f"board {bid}: session up") == 1, "no second session for the board")
    check("session down" not in p.text() and p.text().count("session up as board") == 1,
          f"the real board kept its session:\n{p.text()}")
    check(list(f.online()) == [bid] and len(f.boards()) == 1, "the real board stays online, no board appeared")


def case_deleted_board_cert(f):
    """The certificate of a deleted board, by our CA and still within its
    lifetime, opens no session: an error frame says the board was deleted
    (ERROR_REVOKED), the controller logs the refusal with its reason, and no
    heartbeat is answered."""
    f.start()
    tok = f.token()
    idir = os.path.join(f.tmp, "identity-a")
    p = f.agent("a", token=tok["token"], extra=["--identity-dir", idir])
    bid = wait_for(lambda: list(f.online()), 20, "board a online")[0]
    pem = os.path.join(idir, "identity.pem")
    check(cert_fields(pem)[0] == bid, "the kept certificate is the board's")
    # A working certificate until the delete: the same connection, answered.
    p.stop()
    f.procs.remove(p)
    wait_for(lambda: not f.online(), 10, "board a offline")
    data, how = heartbeat_with_cert(f, pem, pem, close_after_answer=True)
    check(13 in [k for e in link_frames(data) for k in e], f"before the delete the certificate works: {data!r} {how}")
    st, body = f.api("DELETE", f"/v1/boards/{bid}")
    check(st == 200 and body == {"id": bid, "deleted": True}, f"delete: {st} {body}")
    refusal = f"board {bid}: certificate revoked (board deleted); session refused"
    check(refusal not in f.ctl.text(), "no refusal before the attempt")
    data, how = heartbeat_with_cert(f, pem, pem)
    check(how != "timeout", f"the connection is closed ({how})")
    frames = link_frames(data)
    check(not any(13 in e for e in frames), f"no heartbeat answered for a deleted board: {frames}")
    errs = link_errors(data)
    check(len(errs) == 1 and errs[0][1] == 5 and f"board {bid} was deleted from the fleet" in errs[0][2],
          f"one ERROR_REVOKED frame saying the board was deleted: {errs}")
    wait_for(lambda: refusal in f.ctl.text(), 10, "the controller's refusal line")
    check(f.boards() == [], "the board did not come back")


def case_other_board_cert(f):
    """Board b's own certificate speaks for board b only: a session on it
    that claims board a (its hello names a's hostname and DMI UUID, its
    renewal request asks for a's board id) changes nothing of a's, gets a
    certificate for b, and does not displace a's session."""
    f.start()
    tok = f.token(uses=2)
    pa = f.agent("a", token=tok["token"])
    idir = os.path.join(f.tmp, "identity-b")
    pb = f.agent("b", token=tok["token"], extra=["--identity-dir", idir])
    on = wait_for(lambda: len(f.online()) == 2 and all(b["cpus"] for b in f.online().values()) and f.online(),
                  20, "boards a and b online with their inventory")
    by_name = {b["name"]: b for b in on.values()}
    a, b = by_name["board-a"], by_name["board-b"]
    a_certs = f.store_sql(f"SELECT serial, revoked FROM certs WHERE board_id = {sqlq(a['id'])} ORDER BY serial")
    pb.stop()
    f.procs.remove(pb)
    wait_for(lambda: b["id"] not in f.online(), 10, "board b offline")
    pem = os.path.join(idir, "identity.pem")
    check(cert_fields(pem)[0] == b["id"], "b's kept certificate names b")
    key = os.path.join(f.tmp, "claim.key")
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key],
                   check=True, capture_output=True)
    csr = subprocess.run(["openssl", "req", "-new", "-key", key, "-subj", f"/CN={a['id']}", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    # Hello{cpus: 99, dmi: {product_uuid: a's}, hostname: a's, heartbeat_ms: 60000}
    hello = (b"\x10\x63" + pb_field(6, pb_field(4, a["uuid"].encode())) + pb_field(12, b"board-a")
             + b"\x70" + bytes([0xe0, 0xd4, 0x03]))
    frames = [b"\x08\x01" + pb_field(12, hello),
              b"\x08\x02" + pb_field(14, pb_field(1, csr)),  # RenewRequest{csr_der}
              b"\x08\x03" + pb_field(13, b"\x08\x01")]       # Heartbeat{seq: 1}
    s = tls_connect(f, pem, pem)
    s.sendall(b"".join(struct.pack(">I", len(e)) + e for e in frames))
    data = read_for(s, lambda d: all(any(k in e for e in link_frames(d)) for k in (13, 15)))
    got = link_frames(data)
    check(link_errors(data) == [], f"no error frames: {link_errors(data)}")
    renewed = [e[15] for e in got if 15 in e]
    check(len(renewed) == 1 and any(13 in e for e in got), f"a renewal answer and a heartbeat answer: {got}")
    der = dict(pb_fields(renewed[0]))[1]
    crt = os.path.join(f.tmp, "renewed.crt")
    with open(crt, "wb") as fh:
        fh.write(subprocess.run(["openssl", "x509", "-inform", "DER"], input=der, capture_output=True,
                                check=True).stdout)
    check(cert_fields(crt)[0] == b["id"], f"the renewal asking for {a['id']} issued a certificate for "
          f"{b['id']}, whose session it was: {cert_fields(crt)}")
    wait_for(lambda: f"board {b['id']}: inventory updated (99 cpus" in f.ctl.text(), 10,
             "the hello stored as board b's inventory")
    s.close()
    now_a = f.api("GET", f"/v1/boards/{a['id']}")[1]
    now_b = f.api("GET", f"/v1/boards/{b['id']}")[1]
    for field in ("uuid", "name", "cpus", "hostname", "state"):
        check(now_a[field] == a[field], f"board a's {field} unchanged: {a[field]!r} -> {now_a[field]!r}")
    check(now_b["uuid"] == b["uuid"] and now_b["name"] == "board-b" and now_b["cpus"] == 99,
          f"the claim landed on board b alone, which keeps its uuid and name: {now_b}")
    check(f.ctl.text().count(f"board {a['id']}: session up") == 1 and "session down" not in pa.text(),
          "board a kept its one session")
    check(f"board {a['id']}: certificate renewed" not in f.ctl.text(), "no certificate renewed for board a")
    a_now = f.store_sql(f"SELECT serial, revoked FROM certs WHERE board_id = {sqlq(a['id'])} ORDER BY serial")
    b_certs = int(f.store_sql(f"SELECT COUNT(*) FROM certs WHERE board_id = {sqlq(b['id'])}")[0][0])
    check(a_now == a_certs, f"board a's certificates untouched: {a_certs} -> {a_now}")
    check(b_certs == 2, f"the new certificate is recorded for board b: {b_certs}")


def case_unauthenticated_only_enroll(f):
    f.start()
    s = tls_connect(f)
    # Envelope{request_id: 1, heartbeat: {seq: 1}}
    s.sendall(struct.pack(">I", 6) + b"\x08\x01\x6a\x02\x08\x01")
    data, how = read_until_closed(s)
    check(how in ("eof", "reset") or how.startswith("tls"), f"closed: {how}")
    check(b"may only enroll" in data, f"an error frame says why: {data!r}")
    s.close()


def case_delete_board(f):
    """Deleting a board closes its session at once and tells the agent why;
    the board cannot come back on its token (used)."""
    f.start()
    tok = f.token()
    # A long heartbeat (offline only after 3.5 x 30 s of silence): only the
    # delete itself can close the session within the limit below.
    p = f.agent("a", token=tok["token"], hb=30000)
    bid = wait_for(lambda: list(f.online()), 20, "board online")[0]
    limit = 1.0 * SKY_SLOW
    t0 = time.time()
    st, body = f.api("DELETE", "/v1/boards/board-a")
    check(st == 200 and body == {"id": bid, "deleted": True}, f"delete: {st} {body}")
    wait_for(lambda: "session down" in p.text(), limit, f"the agent's session to close within {limit:g} s",
             interval=0.02)
    took = time.time() - t0
    check("was deleted from the fleet" in p.text(), f"agent told why: {p.text()}")
    check(f.api("GET", f"/v1/boards/{bid}")[0] == 404, "deleted board is gone")
    check(f"board {bid}: closing its session: board {bid} was deleted from the fleet" in f.ctl.text(),
          "the controller logs why it closed the session")
    # It cannot come back.  Told it was deleted, the agent drops its
    # certificate (deleted_board_cert shows the controller refusing that one)
    # and tries its token, which is refused as used (not as revoked: nobody
    # revoked it).  Waiting for that attempt, not for time to pass.
    wait_for(lambda: "enrollment token has already been used" in p.text(), 30,
             "the agent to be told its token is used")
    check(re.search(r"enrollment refused for machine \S+: enrollment token has already been used", f.ctl.text()),
          "the controller logs the token refusal with its reason")
    check("was revoked" not in p.text(), f"the token is not called revoked: {p.text()}")
    check(f.boards() == [], "deleted board did not reconnect")
    print(f"session closed {took * 1000:.0f} ms after delete (limit {limit:g} s)")


def case_garbage_and_oversize(f):
    f.start()
    f.online_with("a", "b")
    # Plain garbage where a TLS handshake should be.
    s = socket.create_connection(("127.0.0.1", f.agent_port), timeout=5)
    s.sendall(os.urandom(4096))
    s.settimeout(5)
    try:
        while s.recv(65536):
            pass
        closed = True
    except (ConnectionResetError, socket.timeout) as e:
        closed = not isinstance(e, socket.timeout)
    check(closed, "garbage connection closed")
    s.close()
    # A frame announcing 2 GiB inside TLS: closed before anything is allocated.
    s = tls_connect(f)
    s.sendall(struct.pack(">I", 0x7FFFFFFF) + b"\x00" * 1024)
    data, how = read_until_closed(s)
    check(how != "timeout", "oversized frame closes the connection")
    s.close()
    # Garbage protobuf inside TLS.
    s = tls_connect(f)
    s.sendall(struct.pack(">I", 8) + b"\xff" * 8)
    data, how = read_until_closed(s)
    check(how != "timeout", "malformed frame closes the connection")
    s.close()
    # The controller has dealt with both frames (it logs each) before we look.
    wait_for(lambda: "frame over the size limit" in f.ctl.text() and "malformed frame" in f.ctl.text(), 10,
             "the controller's lines on the oversized and the malformed frame")
    check(len(f.online()) == 2, "the other boards stay online")
    check(f.ctl.p.poll() is None, "controller still running")


def case_restart_kill9(f):
    f.start()
    tok = f.token(uses=3)
    for b in "abc":
        f.agent(b, token=tok["token"], hb=1000)
    before = wait_for(lambda: len(f.online()) == 3 and f.online(), 20, "three online")
    spare = f.token(uses=5)  # acknowledged just before the crash
    f.ctl.stop(signal.SIGKILL)
    f.procs.remove(f.ctl)
    f.start()
    after = wait_for(lambda: len(f.online()) == 3 and f.online(), 40, "three back online")
    check(set(before) == set(after), f"same board ids: {sorted(before)} vs {sorted(after)}")
    for bid in before:
        check(before[bid]["uuid"] == after[bid]["uuid"] and before[bid]["name"] == after[bid]["name"],
              "same identity")
    st, toks = f.api("GET", "/v1/tokens")
    ids = {t["id"]: t for t in toks["tokens"]}
    check(spare["id"] in ids and ids[spare["id"]]["uses_left"] == 5, "acknowledged token survived kill -9")
    check(ids[tok["id"]]["uses_left"] == 0, "consumed uses survived kill -9")
    bad = f.store_intact()
    check(bad is None, f"store integrity: {bad}")


def case_identity_dir(f):
    """--identity-dir keeps the key, the certificate and the image-signing
    key across a crash of the agent: restarted without the (used) token, it
    comes back as the same board."""
    f.start()
    idir = os.path.join(f.tmp, "identity")
    tok = f.token()
    p = f.agent("a", token=tok["token"], extra=["--identity-dir", idir])
    bid = wait_for(lambda: list(f.online()), 20, "board online")[0]
    pub = open(os.path.join(idir, "signing.pub"), "rb").read()
    check(len(pub) == 65 and all(c in b"0123456789abcdef" for c in pub[:64]) and pub[64:] == b"\n",
          f"signing.pub holds the image-signing key: 64 hex digits and a newline, got {pub!r}")
    check(os.stat(idir).st_mode & 0o777 == 0o700, "the identity folder is 0700")
    for fn in ("identity.pem", "signing.pub"):
        check(os.stat(os.path.join(idir, fn)).st_mode & 0o777 == 0o600, f"{fn} is 0600")
    check(p.stop(signal.SIGKILL) == -signal.SIGKILL, "agent killed")
    p = f.agent("a", extra=["--identity-dir", idir], name="a-restarted")
    wait_for(lambda: f"session up as board {bid}" in p.text(), 20, "the restarted agent's session")
    check(f"kept identity: board {bid}" in p.text(), f"the kept identity was used:\n{p.text()}")
    on = wait_for(lambda: f.online(), 10, "board online again")
    check(list(on) == [bid], f"the same board, no second one: {sorted(on)}")


def case_log_injection(f):
    """A refused enrollment's machine UUID comes from anyone who can reach
    the agent port: the controller's log escapes it, so it can neither
    forge a log line nor send escape sequences to a terminal."""
    f.start()
    key = os.path.join(f.tmp, "k.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-out", key], check=True, capture_output=True)
    csr = subprocess.run(["openssl", "req", "-new", "-key", key, "-subj", "/CN=x", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    uuid = b"7d1c2b3a-0000-4000-8000-000000000099\nFAKE LINE\x1b[2J"
    # EnrollRequest{token: 1, csr_der: 2, machine_uuid: 3, hostname: 4}
    req = pb_field(1, b"skt-" + b"0" * 64) + pb_field(2, csr) + pb_field(3, uuid) + pb_field(4, b"x")
    env = b"\x08\x01" + pb_field(10, req)  # Envelope{request_id: 1, enroll_request: 10}
    s = tls_connect(f)
    s.sendall(struct.pack(">I", len(env)) + env)
    data, how = read_until_closed(s)
    s.close()
    check(b"not known to this controller" in data, f"the enrollment was refused: {data!r} ({how})")
    log = wait_for(lambda: "enrollment refused for machine" in f.ctl.text() and f.ctl.text(), 5,
                   "the refusal in the controller's log")
    check("\x1b" not in log, "no ESC byte in the controller's log")
    forged = [l for l in log.splitlines() if l.startswith("FAKE")]
    check(not forged, f"no forged log line: {forged}")
    want = "enrollment refused for machine 7d1c2b3a-0000-4000-8000-000000000099\\x0aFAKE LINE\\x1b[2J: "
    check(want in log, f"the UUID escaped in the refusal line: {[l for l in log.splitlines() if 'refused' in l]}")


def case_api_auth(f):
    f.start()
    st, body = f.api("GET", "/healthz", auth=False)
    check(st == 200 and body["status"] == "ok", f"healthz {st} {body}")
    for path in ("/v1/boards", "/v1/tokens"):
        st, body = f.api("GET", path, auth=False)
        check(st == 401 and body["error"]["code"] == "unauthorized", f"no token: {st} {body}")
        st, body = f.api("GET", path, token="ska-" + "0" * 64)
        check(st == 401, f"wrong token: {st}")
        st, body = f.api("GET", path)
        check(st == 200, f"right token: {st}")
    st, body = f.api("POST", "/v1/tokens", {}, auth=False)
    check(st == 401, "creating a token needs the admin token")
    st, body = f.api("DELETE", "/v1/boards/x", token="nope")
    check(st == 401, "deleting needs the admin token")


def case_api_errors(f):
    f.start()
    st, body = f.api("GET", "/v1/boards/no-such-board")
    check(st == 404 and "no-such-board" in body["error"]["message"], f"unknown board: {st} {body}")
    st, body = f.api("GET", "/v1/nothing")
    check(st == 404, f"unknown route {st}")
    st, body = f.api("PUT", "/v1/boards")
    check(st == 405, f"wrong method {st}")
    st, body = f.api("POST", "/v1/tokens", {"ttl_seconds": 5})
    check(st == 400 and "ttl" in body["error"]["message"], f"ttl too short: {st} {body}")
    st, body = f.api("POST", "/v1/tokens", {"uses": 0})
    check(st == 400, f"zero uses: {st}")
    st, body = f.api("POST", "/v1/tokens", {"uses": "many"})
    check(st == 400, f"uses of the wrong type: {st}")
    # Bad JSON, raw.
    req = urllib.request.Request(f"https://127.0.0.1:{f.api_port}/v1/tokens", data=b"{not json",
                                 method="POST", headers={"Authorization": f"Bearer {f.admin}"})
    try:
        urllib.request.urlopen(req, context=f.sslctx, timeout=5)
        check(False, "bad JSON accepted")
    except urllib.error.HTTPError as e:
        check(e.code == 400, f"bad JSON: {e.code}")
    st, body = f.api("DELETE", "/v1/tokens/tok-nope")
    check(st == 404, f"unknown token {st}")
    # Malformed HTTP gets a 400 and the controller lives on.
    s = socket.create_connection(("127.0.0.1", f.api_port), timeout=5)
    t = f.sslctx.wrap_socket(s, server_hostname="127.0.0.1")
    t.sendall(b"GARBAGE / NOT-HTTP\r\n\r\n")
    data = t.recv(4096)
    check(b" 400 " in data.split(b"\r\n")[0], f"malformed HTTP: {data[:80]!r}")
    t.close()
    check(f.api("GET", "/healthz", auth=False)[0] == 200, "still healthy")


def case_sighup_reload(f):
    """SIGHUP keeps the controller up, says so, and takes a new admin token."""
    ctl = f.start()
    os.kill(ctl.p.pid, signal.SIGHUP)
    wait_for(lambda: "reloaded" in ctl.text(), 10, "'reloaded' in the controller's log")
    check(ctl.p.poll() is None, "skyrootd ended on SIGHUP")
    check(f.api("GET", "/v1/boards")[0] == 200, "the API answers after SIGHUP")
    # A new admin token: its hash written in place, then SIGHUP.
    new = "ska-" + "5" * 64
    path = os.path.join(f.state, "admin.token.sha256")
    with open(path, "w") as fh:
        fh.write(hashlib.sha256(new.encode()).hexdigest() + "\n")
    os.chmod(path, 0o600)
    n = ctl.text().count("reloaded")
    os.kill(ctl.p.pid, signal.SIGHUP)
    wait_for(lambda: ctl.text().count("reloaded") > n, 10, "a second 'reloaded'")
    check(f.api("GET", "/v1/boards", token=new)[0] == 200, "the new admin token is taken")
    check(f.api("GET", "/v1/boards")[0] == 401, "the old admin token is refused")


def case_boot_ipxe_schemes(f):
    """The iPXE script points at the port and scheme it was fetched from."""
    boot_port = free_port()
    f.start(["--boot-listen", f"127.0.0.1:{boot_port}"])
    tok = f.token(uses=5)["token"]
    st, text = fetch_text(f"https://127.0.0.1:{f.api_port}/boot/ipxe?token={tok}", f.sslctx)
    check(st == 200, f"ipxe over the API port: {st} {text}")
    check(f"kernel https://127.0.0.1:{f.api_port}/boot/vmlinuz" in text and "http://" not in text,
          f"over TLS the script must point at https on the same port: {text}")
    st, text = fetch_text(f"http://127.0.0.1:{boot_port}/boot/ipxe?token={tok}")
    check(st == 200, f"ipxe over the boot port: {st} {text}")
    check(f"kernel http://127.0.0.1:{boot_port}/boot/vmlinuz" in text and
          f"initrd http://127.0.0.1:{boot_port}/boot/initrd.img" in text, f"plain boot listener: {text}")
    st, text = fetch_text(f"http://127.0.0.1:{boot_port}/boot/ipxe?token=skt-nope")
    check(st == 403, f"unknown token on the boot port: {st}")


def case_guest_body_fields(f):
    """Request bodies are checked field by field before anything happens."""
    f.start()
    st, body = f.api("POST", "/v1/guests", {"name": "g1", "kernel": "k", "vcpu": 2})
    check(st == 400 and "unknown field 'vcpu' in guest; known: name, board" in body["error"]["message"],
          f"unknown guest field: {st} {body}")
    st, body = f.api("POST", "/v1/guests", {"name": "g1", "kernel": "k", "vcpus": 65})
    check(st == 400 and "1 to 64" in body["error"]["message"], f"65 vCPUs: {st} {body}")
    st, body = f.api("POST", "/v1/guests", {"name": "g1", "kernel": "no-such-image"})
    check(st == 404 and "no-such-image" in body["error"]["message"], f"unknown kernel: {st} {body}")
    st, body = f.api("POST", "/v1/boards/x/fetch", {"image": "i", "board": "b"})
    check(st == 400 and "unknown field 'board' in fetch" in body["error"]["message"], f"fetch: {st} {body}")
    st, body = f.api("POST", "/v1/boards/x/boot", {"kernel": "k", "append": "quiet"})
    check(st == 400 and "unknown field 'append' in boot" in body["error"]["message"], f"boot: {st} {body}")


def case_reenroll_same_uuid(f):
    """A known machine UUID with a new general token does not take the board
    over: it waits as a pending re-enrollment until an operator allows it
    (once), or comes with a token made for that board.  Every new
    certificate revokes the board's earlier ones."""
    f.start()
    idir = os.path.join(f.tmp, "identity")
    tok = f.token()
    p = f.agent("a", token=tok["token"], extra=["--identity-dir", idir])
    first = wait_for(lambda: list(f.online()), 20, "board online")[0]
    old_pem = os.path.join(f.tmp, "old.pem")
    shutil.copy(os.path.join(idir, "identity.pem"), old_pem)
    tok2 = f.token()
    q = f.agent("a", token=tok2["token"], once=True, name="a-again")
    expect_refused(q, f"an operator must allow the re-enrollment of board {first}")
    check("skyctl board reenroll-allow" in q.text(), f"the refusal says what to do: {q.text()}")
    st, b = f.api("GET", f"/v1/boards/{first}")
    check(st == 200 and b.get("reenroll") == "pending", f"board shows the pending re-enrollment: {b}")
    check(re.search(rf"warn: .*re-enrollment of board {first}", f.ctl.text()), "the controller warns")
    check([t for t in f.api("GET", "/v1/tokens")[1]["tokens"] if t["id"] == tok2["id"]][0]["uses_left"] == 1,
          "a pending re-enrollment does not spend the token")
    check(list(f.online()) == [first] and len(f.boards()) == 1, "the board keeps its session, no new board")
    r = skyctl(f, "board", "show", first)
    check(r.returncode == 0 and "pending" in r.stdout, f"skyctl board show: {r.stdout}")
    r = skyctl(f, "board", "reenroll-allow", "nope")
    check(r.returncode == 1 and "nope" in r.stderr, f"unknown board: {r.returncode} {r.stderr}")
    r = skyctl(f, "board", "reenroll-allow", first)
    check(r.returncode == 0, f"reenroll-allow: {r.stderr}")
    st, b = f.api("GET", f"/v1/boards/{first}")
    check(b.get("reenroll") == "allowed" and b.get("reenroll_expires_at"),
          f"allowed for a while: {b}")
    q = f.agent("a", token=tok2["token"], once=True, name="a-allowed")
    rc = wait_for(lambda: q.p.poll() is not None and [q.p.returncode], 20, "re-enrolled")[0]
    check(rc == 0, f"allowed re-enrollment: {q.text()}")
    boards = f.boards()
    check(len(boards) == 1 and boards[0]["id"] == first and "reenroll" not in boards[0],
          f"same board id, nothing pending: {boards}")
    check("known machine, re-enrollment allowed by an operator" in f.ctl.text(), "controller says how")
    # The first certificate is revoked: its session is closed, a new one refused.
    p.stop()
    f.procs.remove(p)
    refused_old_cert(f, old_pem)
    # The allowance was used once.
    tok3 = f.token()
    q = f.agent("a", token=tok3["token"], once=True, name="a-third")
    expect_refused(q, f"an operator must allow the re-enrollment of board {first}")
    # A token made for that board allows it directly, and only for it.
    bt = board_token(f, first)
    q = f.agent("b", token=bt["token"], once=True, name="b-with-a-token")
    expect_refused(q, f"was created for board {first}")
    q = f.agent("a", token=bt["token"], once=True, name="a-board-token")
    rc = wait_for(lambda: q.p.poll() is not None and [q.p.returncode], 20, "re-enrolled with a board token")[0]
    check(rc == 0, f"board token re-enrollment: {q.text()}")
    check(len(f.boards()) == 1 and "reenroll" not in f.boards()[0], f"one board, nothing pending: {f.boards()}")
    st, body = f.api("POST", "/v1/tokens", {"board": "nope"})
    check(st == 404 and "nope" in body["error"]["message"], f"token for an unknown board: {st} {body}")
    st, body = f.api("POST", "/v1/boards/nope/reenroll-allow")
    check(st == 404, f"reenroll-allow of an unknown board: {st} {body}")


def case_renewal_revokes_old(f):
    """After an in-band renewal, once the board's session runs on the new
    certificate, the old one is refused at the handshake (it has not
    expired yet)."""
    f.cert_ttl = 24
    f.start()
    idir = os.path.join(f.tmp, "identity")
    tok = f.token()
    p = f.agent("a", token=tok["token"], hb=1000, extra=["--identity-dir", idir])
    bid = wait_for(lambda: list(f.online()), 20, "online")[0]
    old_pem = os.path.join(f.tmp, "old.pem")
    shutil.copy(os.path.join(idir, "identity.pem"), old_pem)
    wait_for(lambda: "certificate renewed" in p.text(), 30, "in-band renewal at 2/3 of the lifetime")
    p.stop()
    f.procs.remove(p)
    p = f.agent("a", hb=1000, extra=["--identity-dir", idir], name="a-renewed")
    wait_for(lambda: f"session up as board {bid}" in p.text(), 20, "a session on the renewed certificate")
    refused_old_cert(f, old_pem)
    check(list(f.online()) == [bid], "the board stays online on its new certificate")


def case_state_modes(f):
    """The state folder is 0700 and every file in it 0600, made so by init
    (even for a folder that existed) and checked by run."""
    def modes():
        out = {"": os.stat(f.state).st_mode & 0o777}
        for fn in os.listdir(f.state):
            out[fn] = os.stat(os.path.join(f.state, fn)).st_mode & 0o777
        return out
    m = modes()
    check(m.pop("") == 0o700 and all(v == 0o600 for v in m.values()), f"after init: {m}")
    f.start()
    f.token()
    m = modes()
    # SQLite's -wal/-shm files; on PostgreSQL the file of the store's URI
    store_file = "skyroot.db-wal" if f.engine == "sqlite" else "store.url"
    check(m.pop("") == 0o700 and all(v == 0o600 for v in m.values()) and store_file in m,
          f"while running, the store's -wal/-shm files included: {m}")
    f.ctl.stop()
    f.procs.remove(f.ctl)
    pre = os.path.join(f.tmp, "pre")
    os.mkdir(pre, 0o755)
    os.chmod(pre, 0o755)
    out = subprocess.run([SKYROOTD, "init", "--state", pre], capture_output=True, text=True)
    check(out.returncode == 0 and os.stat(pre).st_mode & 0o777 == 0o700, f"init tightens a folder: {out.stderr}")

    def run():
        return subprocess.run([SKYROOTD, "run", "--state", f.state, "--agent-listen",
                               f"127.0.0.1:{f.agent_port}", "--api-listen", f"127.0.0.1:{f.api_port}"],
                              capture_output=True, text=True, timeout=10)
    os.chmod(f.state, 0o755)
    out = run()
    check(out.returncode == 1 and f"chmod 700 {f.state}" in out.stderr, f"open folder refused: {out.stderr}")
    os.chmod(f.state, 0o700)
    conf = os.path.join(f.state, "skyctl.conf")
    os.chmod(conf, 0o644)
    out = run()
    check(out.returncode == 1 and f"chmod 600 {conf}" in out.stderr, f"open skyctl.conf refused: {out.stderr}")


def case_cert_expired(f):
    f.cert_ttl = 12
    f.start()
    tok = f.token()
    p = f.agent("a", token=tok["token"], hb=1000)
    bid = wait_for(lambda: list(f.online()), 20, "online")[0]
    f.ctl.stop()
    f.procs.remove(f.ctl)
    # The board's certificate expires while it cannot reach us: wait for the
    # end of its lifetime as the store has it, not for a guessed time.
    expiry = cert_expiry(f, bid, "MAX")
    wait_for(lambda: time.time() > expiry + 1, 30, f"the certificate's expiry at {expiry}", interval=0.2)
    f.start()
    wait_for(lambda: "expired at" in p.text(), 60, "the agent to be told its certificate expired")
    check("new enrollment token" in p.text(), f"agent told to re-enroll: {p.text()}")
    check("client certificate expired" in f.ctl.text(), "controller logged it")
    check(f.online() == {}, "an expired board is not online")


def cert_expiry(f, bid, which):
    """The end of the lifetime (Unix time) of board bid's first (MIN) or
    last (MAX) certificate, from the store."""
    t = int(f.store_sql(f"SELECT {which}(not_after) FROM certs WHERE board_id = {sqlq(bid)}")[0][0] or 0)
    check(t and t > time.time(), f"board {bid}'s certificate lives on: {t}")
    return t


def case_offline_after_missed_heartbeats(f):
    f.start()
    tok = f.token()
    p = f.agent("a", token=tok["token"], hb=500)
    # The session is up before the hello that carries the 0.5 s heartbeat
    # period: until the controller has it, it waits 3.5 x its 10 s default.
    # The inventory is stored after the period is taken, so once the board
    # shows its CPUs the controller counts 0.5 s heartbeats.
    wait_for(lambda: [b for b in f.online().values() if b["cpus"] is not None], 20,
             "online with its inventory (its hello)")
    os.kill(p.p.pid, signal.SIGSTOP)
    try:
        t0 = time.time()
        wait_for(lambda: f.boards()[0]["state"] == "offline", 5, "offline after 3 missed heartbeats")
        took = time.time() - t0
        check(took >= 1.0, f"not offline too early ({took:.2f}s for a 0.5 s heartbeat)")
    finally:
        os.kill(p.p.pid, signal.SIGCONT)
    wait_for(lambda: len(f.online()) == 1, 20, "online again after it wakes")
    check("missed 3 heartbeats" in f.ctl.text(), "controller logs why")


def case_renewal(f):
    f.cert_ttl = 12
    f.start()
    tok = f.token()
    p = f.agent("a", token=tok["token"], hb=1000)
    bid = wait_for(lambda: list(f.online()), 20, "online")[0]
    wait_for(lambda: "certificate renewed" in p.text(), 20, "in-band renewal at 2/3 of the lifetime")
    n = int(f.store_sql(f"SELECT COUNT(*) FROM certs WHERE board_id = {sqlq(bid)}")[0][0])
    check(n >= 2, f"a second certificate was issued ({n})")
    # Past the first certificate's expiry the board reconnects with the new one.
    expiry = cert_expiry(f, bid, "MIN")
    wait_for(lambda: time.time() > expiry + 1, 30, f"the first certificate's expiry at {expiry}", interval=0.2)
    f.ctl.stop()
    f.procs.remove(f.ctl)
    f.start()
    wait_for(lambda: len(f.online()) == 1, 40, "back online with the renewed certificate")
    check("expired" not in p.text(), f"no expiry: {p.text()}")


def case_skyctl_cli(f):
    f.start()
    r = skyctl(f, "token", "create", "--uses", "2", "--ttl", "1h")
    check(r.returncode == 0, f"token create: {r.stderr}")
    check("skyroot.controller=" in r.stdout and f.pin in r.stdout, f"token create output: {r.stdout}")
    token = [w.split("=", 1)[1] for w in r.stdout.split() if w.startswith("skyroot.token=")][0]
    r = skyctl(f, "-o", "json", "token", "list")
    toks = json.loads(r.stdout)["tokens"]  # the API's object, not a bare array
    check(r.returncode == 0 and len(toks) == 1 and toks[0]["uses_left"] == 2, f"token list: {r.stdout}")
    f.agent("a", token=token)
    f.agent("c", token=token)
    wait_for(lambda: len(f.online()) == 2, 20, "two online")
    r = skyctl(f, "board", "list")
    check(r.returncode == 0 and "board-a" in r.stdout and "online" in r.stdout, f"table: {r.stdout}")
    r = skyctl(f, "board", "list", "-o", "json")
    answer = json.loads(r.stdout)
    check(isinstance(answer, dict) and isinstance(answer.get("boards"), list), f"json list is the API's object: {r.stdout}")
    boards = answer["boards"]
    check(len(boards) == 2, "json list")
    for field in ("id", "name", "state", "uuid", "cpus", "memory_bytes", "kvm", "firmware",
                  "iommu_groups", "nics", "last_seen_at"):
        check(field in boards[0], f"json board lacks {field}")
    r = skyctl(f, "board", "show", "board-a")
    check(r.returncode == 0 and "1234:11e8" in r.stdout, f"show by name: {r.stdout}")
    r = skyctl(f, "-o", "json", "board", "show", boards[0]["id"])
    check(r.returncode == 0 and json.loads(r.stdout)["id"] == boards[0]["id"], "show by id")
    r = skyctl(f, "board", "show", "nope")
    check(r.returncode == 1 and "nope" in r.stderr, f"unknown board: {r.returncode} {r.stderr}")
    r = skyctl(f, "board", "frobnicate")
    check(r.returncode == 2, f"usage error exit 2: {r.returncode}")
    r = skyctl(f, "--help")
    check(r.returncode == 0 and "board" in r.stdout and "token" in r.stdout, "help")
    # The token lifetime: skyctl refuses what the controller would (under
    # 60 s) and says the minimum; the example its help offers is accepted.
    r = skyctl(f, "token", "create", "--ttl", "30s")
    check(r.returncode == 2 and "at least 60s" in r.stderr, f"--ttl 30s refused by skyctl: {r.returncode} {r.stderr}")
    r = skyctl(f, "help", "token", "create")
    example = re.search(r"can be used: (\w+),", r.stdout)
    check(r.returncode == 0 and example, f"token create help has an example ttl: {r.stdout}")
    r = skyctl(f, "-o", "json", "token", "create", "--ttl", example.group(1))
    check(r.returncode == 0, f"--ttl {example.group(1)} from the help accepted: {r.stderr}")
    r = skyctl(f, "token", "create", "--ttl", "60s")
    check(r.returncode == 0, f"--ttl 60s (the minimum) accepted: {r.stderr}")
    # Flags go through the shared option layer: limits of common/limits.h,
    # did-you-mean for flags and commands, usage errors exit 2.
    for args, says in ((["--vcpus", "65"], "64"), (["--memory", "1M"], "16M"), (["--memroy", "1G"], "--memory")):
        r = skyctl(f, "guest", "create", "--name", "g", "--board", "auto", "--kernel", "k", *args)
        check(r.returncode == 2 and says in r.stderr, f"{args} refused naming {says}: {r.returncode} {r.stderr}")
    r = skyctl(f, "board", "lsit")
    check(r.returncode == 2 and "did you mean 'list'" in r.stderr, f"did you mean for a command: {r.stderr}")
    r = skyctl(f, "board", "delete", "board-c")
    check(r.returncode == 0, f"delete by name: {r.stderr}")
    check(len(f.boards()) == 1, "one board left")
    r = skyctl(f, "token", "revoke", toks[0]["id"])
    check(r.returncode == 0, f"revoke: {r.stderr}")
    # Flags instead of a config file.
    r = subprocess.run([SKYCTL, "--controller", f"https://127.0.0.1:{f.api_port}", "--ca", f.ca_file,
                        "--token", f.admin, "board", "list"], capture_output=True, text=True)
    check(r.returncode == 0 and "board-a" in r.stdout, f"flags: {r.stderr}")
    r = subprocess.run([SKYCTL, "--controller", f"https://127.0.0.1:{f.api_port}", "--ca", f.ca_file,
                        "--token", "wrong", "board", "list"], capture_output=True, text=True)
    check(r.returncode == 1 and "token" in r.stderr.lower(), f"wrong token: {r.stderr}")
    port = free_port()
    r = subprocess.run([SKYCTL, "--controller", f"https://127.0.0.1:{port}", "--ca", f.ca_file,
                        "--token", f.admin, "board", "list"], capture_output=True, text=True)
    check(r.returncode == 1 and "skyrootd" in r.stderr, f"unreachable controller: {r.stderr}")


def skyctl_garbage_answer(f, body):
    """skyctl board list against a server answering body (not JSON): no
    control byte of it reaches stderr."""
    import http.server
    import ssl
    import threading

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), Answer)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(f.state, "server.crt"), os.path.join(f.state, "server.key"))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        r = subprocess.run([SKYCTL, "--controller", f"https://127.0.0.1:{srv.server_address[1]}", "--ca", f.ca_file,
                            "--token", f.admin, "board", "list"], capture_output=True, timeout=30)
    finally:
        srv.shutdown()
        srv.server_close()
    err = r.stderr.decode(errors="replace")
    check(r.returncode != 0 and "not JSON" in err and "near '?'" in err, f"the answer is reported: {err!r}")
    check(not any(c in r.stderr for c in (0x1b, 0x07)), f"no control byte of it on stderr: {r.stderr!r}")
    return 0


def case_skyctl_output(f):
    """-o wide adds each list's extra columns, --no-headers drops the header
    line, -o yaml is the same answer as -o json (parsed back), and 'skyctl
    version' shows the client's version and the controller's (/healthz)."""
    import yaml  # python3-yaml (deploy/packages/cli.txt)
    f.start()
    tok = f.token(uses=2)
    f.agent("a", token=tok["token"])
    wait_for(lambda: len(f.online()) == 1, 20, "one online")
    for noun, extra in (("board", ["UUID", "CPU-MODEL", "AGENT"]), ("token", ["USES", "BOARD", "CREATED"]),
                        ("image", ["CHUNK-SIZE", "DIGEST"]), ("guest", ["KERNEL", "CREATED"])):
        plain = skyctl(f, noun, "list")
        wide = skyctl(f, noun, "list", "-o", "wide")
        check(plain.returncode == 0 and wide.returncode == 0, f"{noun} list: {plain.stderr} {wide.stderr}")
        head_plain, head_wide = plain.stdout.splitlines()[0].split(), wide.stdout.splitlines()[0].split()
        check(head_wide[:len(head_plain)] == head_plain and all(c in head_wide for c in extra)
              and not any(c in head_plain for c in extra), f"{noun}: -o wide adds {extra}: {head_plain} {head_wide}")
        data = json.loads(skyctl(f, "-o", "json", noun, "list").stdout)
        as_yaml = skyctl(f, "-o", "yaml", noun, "list")
        check(as_yaml.returncode == 0 and yaml.safe_load(as_yaml.stdout) == data,
              f"{noun} list -o yaml is the JSON answer: {as_yaml.stdout} {as_yaml.stderr}")
    r = skyctl(f, "board", "list", "--no-headers")
    check(r.returncode == 0 and len(r.stdout.splitlines()) == 1 and "board-a" in r.stdout and "NAME" not in r.stdout,
          f"--no-headers: one line per board: {r.stdout}")
    r = skyctl(f, "board", "list", "-o", "wide")
    board = f.boards()[0]
    check(board["uuid"] in r.stdout, f"-o wide shows the UUID {board['uuid']}: {r.stdout}")
    # Strings that look like YAML numbers, booleans or nulls stay strings.
    r = skyctl(f, "image", "push", "-", "--name", "0x10", "--kind", "kernel", input_bytes=b"k" * 1000)
    check(r.returncode == 0, f"image push 0x10: {r.stderr}")
    for args in (["image", "show", "0x10"], ["board", "show", "board-a"], ["token", "list"]):
        j = json.loads(skyctl(f, "-o", "json", *args).stdout)
        y = yaml.safe_load(skyctl(f, "-o", "yaml", *args).stdout)
        check(y == j, f"{args}: YAML and JSON agree: {y} {j}")
    r = skyctl(f, "version")
    check(r.returncode == 0 and re.search(r"Client version:\s+\S", r.stdout)
          and re.search(r"Controller version:\s+\d", r.stdout), f"version: {r.stdout} {r.stderr}")
    st, health = f.api("GET", "/healthz")
    r = skyctl(f, "-o", "yaml", "version")
    v = yaml.safe_load(r.stdout)
    check(r.returncode == 0 and v["controller"]["version"] == health["version"] and v["client"]["version"],
          f"version -o yaml: {r.stdout}")
    # Bytes from outside quoted in an error (jansson's message about a
    # body that is not JSON names the bad token) cannot drive the
    # terminal: an HTTPS server with the controller's certificate answers
    # with escape sequences.
    check(skyctl_garbage_answer(f, b"\x1b[2J\x1b]0;owned\x07") == 0, "skyctl cleans bytes from outside")
    # Without a controller, the client's version and why the other is unknown.
    r = subprocess.run([SKYCTL, "--controller", f"https://127.0.0.1:{free_port()}", "--ca", f.ca_file,
                        "--token", f.admin, "version"], capture_output=True, text=True, timeout=30)
    check(r.returncode == 1 and "Client version" in r.stdout and "unknown" in r.stdout and "skyrootd" in r.stderr,
          f"version without a controller: {r.returncode} {r.stdout} {r.stderr}")


def case_board_boot_answer(f):
    """skyctl board boot waits for the board's answer: a board whose agent
    runs without --allow-kexec refuses, skyctl exits 1 with its reason and
    board show keeps it; one with --allow-kexec accepts (on this host its
    kexec_file_load of a kernel that is not one then fails, which shows
    too); fetch and boot on an offline board are 409."""
    f.start()
    tok = f.token(uses=2)

    def enroll(board, extra=()):
        known = {b["id"] for b in f.boards()}
        p = f.agent(board, token=tok["token"], extra=extra)
        bid = wait_for(lambda: [b["id"] for b in f.online().values()
                                if b["id"] not in known and b["cpus"] is not None], 20, f"board {board} online")[0]
        return p, bid

    pa, a = enroll("a")
    pb, b = enroll("b", extra=["--allow-kexec"])
    kernel = os.path.join(f.tmp, "not-a-kernel")
    with open(kernel, "wb") as fh:
        fh.write(os.urandom(200 * 1024))
    r = skyctl(f, "image", "push", kernel, "--name", "not-a-kernel", "--kind", "kernel")
    check(r.returncode == 0, f"image push: {r.stderr}")

    # Refused: exit status 1 with the board's reason; nothing else changes.
    r = skyctl(f, "board", "boot", a, "--kernel", "not-a-kernel")
    check(r.returncode == 1 and "refused" in r.stderr and "--allow-kexec" in r.stderr,
          f"board boot on a board without --allow-kexec fails with its reason: {r.returncode} {r.stdout} {r.stderr}")
    check("is booting" not in r.stdout, f"no success printed: {r.stdout}")
    st, board = f.api("GET", f"/v1/boards/{a}")
    boot = board.get("boot") or {}
    check(st == 200 and boot.get("state") == "refused" and "--allow-kexec" in (boot.get("error") or "")
          and boot.get("updated_at") and boot.get("request_id"), f"the API's board shows the refusal: {board}")
    r = skyctl(f, "board", "show", a)
    check(r.returncode == 0 and re.search(r"Bare-metal boot:\s+refused .*--allow-kexec", r.stdout),
          f"board show shows the refusal: {r.stdout}")
    check(board["state"] == "online", "a refusing board stays online")

    # --no-wait answers at once with the order; the refusal follows.
    r = skyctl(f, "-o", "json", "board", "boot", a, "--kernel", "not-a-kernel", "--no-wait")
    check(r.returncode == 0, f"board boot --no-wait: {r.stderr}")
    order = json.loads(r.stdout)["boot"]["request_id"]
    check(order != boot["request_id"], "a new order, a new id")
    wait_for(lambda: f.api("GET", f"/v1/boards/{a}")[1]["boot"] == dict(
        f.api("GET", f"/v1/boards/{a}")[1]["boot"], state="refused", request_id=order), 10,
        "the refusal of the second order")

    # Accepted: exit status 0; the kexec itself fails on this host, and says
    # so.  The failure may come before skyctl's next look at the order
    # (kexec_file_load is refused at once where it is not implemented):
    # then skyctl exits 1 saying the board could not boot, never "refused".
    r = skyctl(f, "board", "boot", b, "--kernel", "not-a-kernel", "--cmdline", "console=ttyS0")
    check((r.returncode == 0 and "is booting" in r.stdout) or
          (r.returncode == 1 and "could not boot" in r.stderr and "kexec_file_load" in r.stderr),
          f"board boot with --allow-kexec: {r.returncode} {r.stdout} {r.stderr}")
    check("refused" not in r.stderr, f"a board with --allow-kexec refused: {r.stderr}")
    boot = wait_for(lambda: (lambda x: x if x["state"] == "failed" else None)(
        f.api("GET", f"/v1/boards/{b}")[1]["boot"]), 30, "the failed kexec reported")
    check("kexec_file_load" in boot["error"], f"the board says why: {boot}")
    check("bare-metal boot refused" in pa.text() and "kexec_file_load failed" in pb.text(), "agents log it")

    # Offline boards: 409 for fetch and boot, and no 'baremetal' after a refusal.
    pa.stop()
    wait_for(lambda: f.api("GET", f"/v1/boards/{a}")[1]["state"] != "online", 20, "board a offline")
    check(f.api("GET", f"/v1/boards/{a}")[1]["state"] == "offline", "a board that refused is offline, not baremetal")
    st, body = f.api("POST", f"/v1/boards/{a}/boot", {"kernel": "not-a-kernel"})
    check(st == 409 and "offline" in body["error"]["message"], f"boot on an offline board: {st} {body}")
    st, body = f.api("POST", f"/v1/boards/{a}/fetch", {"image": "not-a-kernel"})
    check(st == 409 and "offline" in body["error"]["message"], f"fetch on an offline board: {st} {body}")
    r = skyctl(f, "board", "boot", a, "--kernel", "not-a-kernel")
    check(r.returncode == 1 and "offline" in r.stderr, f"skyctl board boot on an offline board: {r.stderr}")
    r = skyctl(f, "board", "boot", a, "--kernel", "not-a-kernel", "--no-wait", "--timeout", "5s")
    check(r.returncode == 2, f"--timeout does not go with --no-wait: {r.returncode} {r.stderr}")


def case_init_refuses_overwrite(f):
    out = subprocess.run([SKYROOTD, "init", "--state", f.state], capture_output=True, text=True)
    check(out.returncode == 1 and "refusing to overwrite" in out.stderr, f"second init: {out.stderr}")
    for name in ("ca.key", "server.key", "signing.key", "skyctl.conf", "admin.token.sha256"):
        mode = os.stat(os.path.join(f.state, name)).st_mode & 0o777
        check(mode == 0o600, f"{name} mode {oct(mode)}")
    check("ska-" in f.init_output, "admin token printed once at init")
    hashed = open(os.path.join(f.state, "admin.token.sha256")).read().strip()
    check(hashed == hashlib.sha256(f.admin.encode()).hexdigest(), "admin token stored as a hash")
    check(f.admin.encode() not in f.store_dump(), "admin token not in the store")
    os.chmod(os.path.join(f.state, "ca.key"), 0o644)
    out = subprocess.run([SKYROOTD, "run", "--state", f.state, "--agent-listen", f"127.0.0.1:{f.agent_port}",
                          "--api-listen", f"127.0.0.1:{f.api_port}"], capture_output=True, text=True, timeout=10)
    check(out.returncode == 1 and "chmod 600" in out.stderr, f"loose key refused: {out.stderr}")
    out = subprocess.run([SKYROOTD, "run"], capture_output=True, text=True)
    check(out.returncode == 2 and "--state" in out.stderr, "usage error")


def main():
    return run_cases(globals(), "sky", Fleet)


if __name__ == "__main__":
    sys.exit(main())
