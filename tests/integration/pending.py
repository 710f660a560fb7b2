#!/usr/bin/env python3
"""Integration tests of enrollment with no token (docs/api.md "Pending
boards"): simulated boards (a P-256 key and CSR made with openssl, the
enrollment frame by hand) and the real skyagent against a real skyrootd on
loopback.

Usage: pending.py CASE (see run_cases in fleetlib.py)."""
import hashlib
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import (SKY_SLOW, Fleet, check, link_errors, link_frames, metrics, pb_field, pb_fields,  # noqa: E402
                      read_for, read_until_closed, role_tokens, run_cases, skyctl, tls_connect, wait_for)

ERROR_NOT_ENROLLED = 3
ERROR_BUSY = 10
ENROLL_ISSUED, ENROLL_PENDING, ENROLL_REJECTED = 0, 1, 2


class SimBoard:
    """A board with no token: its key (in a file here; skyagent keeps it in
    RAM), its CSR and its claims."""

    def __init__(self, f, name, serial, uuid, macs=("52:54:00:aa:bb:01",), hostname=None):
        self.f = f
        self.serial, self.uuid, self.macs = serial, uuid, list(macs)
        self.hostname = hostname or name
        self.key = os.path.join(f.tmp, f"sim-{name}.key")
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-out", self.key], check=True, capture_output=True)
        self.csr = subprocess.run(["openssl", "req", "-new", "-key", self.key, "-subj", "/CN=skyagent",
                                   "-outform", "DER"], check=True, capture_output=True).stdout
        self.spki = subprocess.run(["openssl", "pkey", "-in", self.key, "-pubout", "-outform", "DER"],
                                   check=True, capture_output=True).stdout
        self.fingerprint = hashlib.sha256(self.spki).hexdigest()
        self.crt = None

    def request(self):
        host = self.hostname if isinstance(self.hostname, bytes) else self.hostname.encode()
        req = (pb_field(2, self.csr) + pb_field(3, self.uuid.encode()) + pb_field(4, host) +
               pb_field(5, b"sim") + pb_field(6, self.serial.encode()))
        for m in self.macs:
            req += pb_field(7, m.encode())
        return req

    def ask(self, extra_frames=b""):
        """One enrollment with no token on a fresh connection: ("answer",
        {field: value} of the EnrollResponse) or ("error", code, message)."""
        s = tls_connect(self.f)
        env = b"\x08\x01" + pb_field(10, self.request())
        s.sendall(struct.pack(">I", len(env)) + env + extra_frames)
        data = read_for(s, lambda d: any(11 in e or 16 in e for e in link_frames(d)), timeout=10 * SKY_SLOW)
        answers = [dict(pb_fields(e[11])) for e in link_frames(data) if 11 in e]
        if not answers or answers[0].get(6, 0) != ENROLL_ISSUED:
            # Anything but a certificate: the controller hangs up (the
            # board asks again on a new connection).
            rest, how = read_until_closed(s, timeout=10 * SKY_SLOW)
            check(how != "timeout", f"the controller closes the connection after its answer ({how})")
            data += rest
        s.close()
        if answers:
            return ("answer", answers[0])
        errs = link_errors(data)
        check(errs, f"an answer or an error came back: {data!r}")
        return ("error", errs[0][1], errs[0][2])

    def ask_pending(self):
        got = self.ask()
        check(got[0] == "answer", f"{self.serial}: an enrollment answer: {got}")
        a = got[1]
        check(a.get(6, 0) == ENROLL_PENDING and a.get(7, b"").startswith(b"pnd-") and not a.get(2)
              and a.get(9) == bytes.fromhex(self.fingerprint) and a.get(8, 0) > 0,
              f"{self.serial}: pending, with its id, no certificate, its key's fingerprint: {a}")
        return a[7].decode()

    def ask_issued(self):
        got = self.ask()
        check(got[0] == "answer" and got[1].get(6, 0) == ENROLL_ISSUED and got[1].get(2),
              f"{self.serial}: a certificate: {got}")
        a = got[1]
        der = os.path.join(self.f.tmp, f"sim-{self.serial}.der")
        with open(der, "wb") as fh:
            fh.write(a[2])
        pub = subprocess.run(["openssl", "x509", "-inform", "DER", "-in", der, "-noout", "-pubkey"],
                             check=True, capture_output=True).stdout
        spki = subprocess.run(["openssl", "pkey", "-pubin", "-pubout", "-outform", "DER"], input=pub,
                              check=True, capture_output=True).stdout
        check(spki == self.spki, f"{self.serial}: the certificate is for the key that was pending")
        self.crt = os.path.join(self.f.tmp, f"sim-{self.serial}.crt")
        pem = subprocess.run(["openssl", "x509", "-inform", "DER", "-in", der], check=True,
                             capture_output=True).stdout
        with open(self.crt, "wb") as fh:
            fh.write(pem)
        return a[1].decode()

    def heartbeat(self):
        """A session on the issued certificate: the heartbeat echoed."""
        s = tls_connect(self.f, self.crt, self.key)
        env = b"\x08\x01" + b"\x6a\x02\x08\x01"  # Heartbeat{seq 1}
        s.sendall(struct.pack(">I", len(env)) + env)
        s.settimeout(10 * SKY_SLOW)
        data = b""
        while not any(13 in e for e in link_frames(data)):
            got = s.recv(65536)
            if not got:
                break
            data += got
        s.close()
        return any(13 in e for e in link_frames(data))


def pending_list(f, token=None):
    st, body = f.api("GET", "/v1/pending", token=token)
    check(st == 200, f"GET /v1/pending: {st} {body}")
    return {p["id"]: p for p in body["pending"]}


def board_with_uuid(f, uuid):
    return [b for b in f.boards() if b.get("uuid") == uuid]


def case_shown(f):
    """A pending board shows with its claims and key; asking again keeps one
    record; skyctl lists it."""
    f.start()
    b = SimBoard(f, "a", "SN-SHOW-1", "5b0f4c0e-0000-4000-8000-00000000aa01",
                 macs=("52:54:00:AA:BB:01", "52:54:00:aa:bb:02"))
    pid = b.ask_pending()
    p = pending_list(f)[pid]
    check(p["state"] == "pending" and p["serial"] == "SN-SHOW-1" and p["uuid"] == b.uuid and
          p["macs"] == ["52:54:00:aa:bb:01", "52:54:00:aa:bb:02"] and p["key_sha256"] == b.fingerprint and
          p["peer"] == "127.0.0.1" and p["first_seen_at"] and p["expires_at"],
          f"the record shows its claims and key: {p}")
    check(b.ask_pending() == pid, "asking again with the same key is the same record")
    check(len(pending_list(f)) == 1, "one record")
    st, one = f.api("GET", f"/v1/pending/{pid}")
    check(st == 200 and one["id"] == pid, f"GET /v1/pending/ID: {st} {one}")
    r = skyctl(f, "board", "list", "--pending")
    check(r.returncode == 0 and pid in r.stdout and "SN-SHOW-1" in r.stdout and b.fingerprint in r.stdout and
          "pending" in r.stdout, f"skyctl board list --pending: {r.stdout} {r.stderr}")
    check(board_with_uuid(f, b.uuid) == [], "a pending board is no board of the fleet")
    check(re.search(rf"pending board {pid}: machine '{b.uuid}' \(serial 'SN-SHOW-1'", f.ctl.text()),
          "the controller logs the new pending board")
    check(metrics(f).get('skyroot_enrollment_failures_total{reason="pending"}', 0) >= 2, "counted as pending")


def case_accept(f):
    """accept -> the same key gets a certificate at its next ask and comes
    online; another key with the same claims does not."""
    f.start()
    b = SimBoard(f, "a", "SN-ACC-1", "5b0f4c0e-0000-4000-8000-00000000ac01")
    pid = b.ask_pending()
    r = skyctl(f, "board", "accept", pid)
    check(r.returncode == 0 and f"accepted pending board {pid}" in r.stdout and b.fingerprint in r.stdout,
          f"skyctl board accept: {r.stdout} {r.stderr}")
    # An impostor with the same claims and another key: pending, never issued.
    imp = SimBoard(f, "imp", "SN-ACC-1", b.uuid)
    ipid = imp.ask_pending()
    check(ipid != pid, "another key is another record")
    bid = b.ask_issued()
    check(bid.startswith("brd-"), f"a board id: {bid}")
    check(b.heartbeat(), "a session on the certificate")
    check([x["id"] for x in board_with_uuid(f, b.uuid)] == [bid], "the board is in the fleet")
    check(pid not in pending_list(f), "the collected record is gone")
    check(pending_list(f)[ipid]["state"] == "pending", "the impostor still waits")
    st, ans = f.api("POST", f"/v1/boards/{ipid}/accept")
    check(st == 200 and ans["state"] == "accepted", f"accept: {st} {ans}")
    st, ans = f.api("POST", f"/v1/boards/{ipid}/accept")
    check(st == 409 and "accepted already" in json.dumps(ans), f"accepting twice: {st} {ans}")
    st, ans = f.api("POST", "/v1/boards/pnd-000000000000/accept")
    check(st == 404, f"accepting an unknown id: {st} {ans}")
    # The audit log keeps the decisions.
    st, log = f.api("GET", "/v1/audit?limit=50")
    paths = [e["path"] for e in log["entries"] if e["method"] == "POST"]
    check(f"/v1/boards/{pid}/accept" in paths, f"the accept is audited: {paths}")
    # The event log tells a watcher the same story, in order: pending,
    # accepted, enrolled (and no token was used).
    st, evs = f.api("GET", "/v1/events?limit=500")
    check(st == 200, f"events: {st} {evs}")
    mine = [(e["type"], e["object_id"]) for e in evs["events"] if e["object_id"] in (pid, bid)]
    check(mine[:3] == [("board.pending", pid), ("board.accepted", pid), ("board.enrolled", bid)],
          f"board.pending, board.accepted, board.enrolled in order: {mine}")
    check(not [e for e in evs["events"] if e["type"] == "token.used"], "no token was used")


def case_reject(f):
    """reject -> told, stays rejected (the key cannot queue itself again),
    and cannot be accepted after."""
    f.start()
    b = SimBoard(f, "a", "SN-REJ-1", "5b0f4c0e-0000-4000-8000-00000000ae01")
    pid = b.ask_pending()
    r = skyctl(f, "board", "reject", pid)
    check(r.returncode == 0 and f"rejected pending board {pid}" in r.stdout, f"reject: {r.stdout} {r.stderr}")
    for _ in range(2):
        got = b.ask()
        check(got[0] == "answer" and got[1].get(6) == ENROLL_REJECTED and not got[1].get(2) and
              got[1].get(8, 0) >= 3600 * 1000, f"rejected, with a long wait: {got}")
    recs = pending_list(f)
    check(len(recs) == 1 and recs[pid]["state"] == "rejected", f"one rejected record: {recs}")
    st, ans = f.api("POST", f"/v1/boards/{pid}/accept")
    check(st == 409 and "rejected already" in json.dumps(ans), f"a rejected board cannot be accepted: {st} {ans}")
    check(board_with_uuid(f, b.uuid) == [], "no board")
    check(metrics(f).get('skyroot_enrollment_failures_total{reason="pending_rejected"}', 0) == 2,
          "counted as rejected")


def case_expect(f):
    """expect --serial and --uuid: online with no hands, the expectation used
    once; list and delete."""
    f.start()
    r = skyctl(f, "board", "expect", "--serial", "SN-EXP-1")
    check(r.returncode == 0 and "SN-EXP-1" in r.stdout, f"expect --serial: {r.stdout} {r.stderr}")
    uuid = "5B0F4C0E-0000-4000-8000-00000000EE02"
    r = skyctl(f, "-o", "json", "board", "expect", "--uuid", uuid)
    check(r.returncode == 0, f"expect --uuid: {r.stdout} {r.stderr}")
    for flags in ([], ["--serial", "S", "--uuid", "U"]):
        r = skyctl(f, "board", "expect", *flags)
        check(r.returncode != 0 and "exactly one of --serial" in r.stderr, f"expect {flags}: {r.stderr}")
    r = skyctl(f, "board", "expect", "--serial", "SN-EXP-1")
    check(r.returncode != 0 and "expected already" in r.stderr, f"a second expectation of one serial: {r.stderr}")
    r = skyctl(f, "board", "expect", "--serial", "SN-GONE")
    gone = re.search(r"expectation (exp-[0-9a-f]+)", r.stdout).group(1)
    r = skyctl(f, "board", "expect-list")
    check(r.returncode == 0 and "SN-EXP-1" in r.stdout and uuid.lower() in r.stdout and gone in r.stdout,
          f"expect-list: {r.stdout}")
    r = skyctl(f, "board", "expect-delete", gone)
    check(r.returncode == 0 and gone in r.stdout, f"expect-delete: {r.stdout} {r.stderr}")
    st, _ = f.api("DELETE", f"/v1/expectations/{gone}")
    check(st == 404, "deleted once")
    # By serial and by uuid (a claim in another case): certificates at once.
    a = SimBoard(f, "a", "SN-EXP-1", "5b0f4c0e-0000-4000-8000-00000000ee01")
    b = SimBoard(f, "b", "SN-OTHER", uuid.lower())
    a.ask_issued()
    b.ask_issued()
    check(a.heartbeat() and b.heartbeat(), "both in session")
    check(pending_list(f) == {}, "no pending records")
    st, ans = f.api("GET", "/v1/expectations")
    check(st == 200 and ans["expectations"] == [], f"both expectations used up: {ans}")
    # Used once: a second machine claiming the serial waits.
    c = SimBoard(f, "c", "SN-EXP-1", "5b0f4c0e-0000-4000-8000-00000000ee03")
    c.ask_pending()
    # An expectation made while a board waits takes it at its next ask.
    d = SimBoard(f, "d", "SN-LATE", "5b0f4c0e-0000-4000-8000-00000000ee04")
    d.ask_pending()
    st, ans = f.api("POST", "/v1/expectations", {"serial": "SN-LATE"})
    check(st == 201, f"expectation: {st} {ans}")
    d.ask_issued()
    # A machine whose UUID is an enrolled board's waits even when its serial
    # is expected: only an operator gives it that board back.
    st, ans = f.api("POST", "/v1/expectations", {"serial": "SN-AGAIN"})
    check(st == 201, f"expectation: {st} {ans}")
    again = SimBoard(f, "again", "SN-AGAIN", a.uuid)
    apid = again.ask_pending()
    rec = pending_list(f)[apid]
    check(rec["board"] == board_with_uuid(f, a.uuid)[0]["id"], f"the record names the board: {rec}")
    st, ans = f.api("GET", "/v1/expectations")
    check([e["serial"] for e in ans["expectations"]] == ["SN-AGAIN"], f"not used: {ans}")
    r = skyctl(f, "board", "accept", apid)
    check(r.returncode == 0 and "gets that board back" in r.stderr, f"accept a known machine: {r.stderr}")
    old_id = rec["board"]
    check(again.ask_issued() == old_id, "the same board")
    check(not a.heartbeat() and again.heartbeat(), "the board's earlier certificate is revoked")
    for body, says in (({}, "exactly one"), ({"serial": "a", "uuid": "b"}, "exactly one"),
                       ({"serial": "x\u0001"}, "printable"), ({"uuid": "not a uuid!"}, "letters"),
                       ({"name": "x"}, "unknown field 'name'"), ({"serial": 5}, "must be a string")):
        st, ans = f.api("POST", "/v1/expectations", body)
        check(st == 400 and says in json.dumps(ans), f"a bad expectation {body}: {st} {ans}")


def case_claims(f):
    """A key keeps the claims of its first ask: other ones are refused and
    change nothing; malformed claims are refused."""
    f.start()
    b = SimBoard(f, "a", "SN-CL-1", "5b0f4c0e-0000-4000-8000-00000000c101")
    pid = b.ask_pending()
    b.uuid = "5b0f4c0e-0000-4000-8000-00000000c102"
    got = b.ask()
    check(got[0] == "error" and got[1] == 1 and "keeps its claims" in got[2], f"other claims refused: {got}")
    st, _ = f.api("POST", f"/v1/boards/{pid}/accept")
    check(st == 200, "accept")
    got = b.ask()
    check(got[0] == "error", f"an accepted key with other claims gets nothing: {got}")
    b.uuid = "5b0f4c0e-0000-4000-8000-00000000c101"
    b.ask_issued()
    check([x["uuid"] for x in f.boards()] == [b.uuid], "the board has the claims the operator saw")
    for attr, value in (("serial", "bad\nserial"), ("uuid", "x y"), ("macs", ["52-54-00-00-00-01"]),
                        ("macs", ["52:54:00:00:00:01"] * 17), ("serial", "s" * 65)):
        c = SimBoard(f, "c", "SN-OK", "5b0f4c0e-0000-4000-8000-00000000c103")
        setattr(c, attr, value)
        got = c.ask()
        check(got[0] == "error" and got[1] == 1, f"{attr}={value!r} refused: {got}")
        time.sleep(1)  # within the rate per address
    check(len(pending_list(f)) == 0, "nothing recorded")
    # The host name is only shown: bytes that are not printable ASCII (not
    # even UTF-8 here) become '?', and the list stays valid JSON.
    h = SimBoard(f, "h", "SN-HOST", "5b0f4c0e-0000-4000-8000-00000000c104", hostname=b"n\xff\x1b[31m")
    hid = h.ask_pending()
    check(pending_list(f)[hid]["hostname"] == "n??[31m", f"the host name cleaned: {pending_list(f)[hid]}")


def case_pending_refused(f):
    """A pending board can do nothing but wait: every other message on its
    connection is refused and the connection dropped."""
    f.start()
    b = SimBoard(f, "a", "SN-NO-1", "5b0f4c0e-0000-4000-8000-00000000ff01")
    b.ask_pending()
    messages = {
        "hello": pb_field(12, pb_field(3, b"vmx")),
        "renew": pb_field(14, pb_field(1, b.csr)),
        "chunk request": pb_field(21, pb_field(1, b"img-00") + b"\x10\x00"),
        "image status": pb_field(23, b""),
        "guest report": pb_field(31, b""),
        "console": pb_field(32, pb_field(1, b"gst-00")),
        "boot result": pb_field(34, b"\x08\x01"),
    }
    for what, body in messages.items():
        s = tls_connect(f)
        env = b"\x08\x05" + body
        s.sendall(struct.pack(">I", len(env)) + env)
        data, how = read_until_closed(s, timeout=10 * SKY_SLOW)
        s.close()
        errs = link_errors(data)
        check(how != "timeout" and errs and errs[0][1] == ERROR_NOT_ENROLLED and
              not any(k in e for e in link_frames(data) for k in (11, 15, 22)),
              f"{what}: refused (not enrolled) and dropped: {errs} {how}")
    # Nor through the API: a pending id is no board.
    pid = pending_list(f).popitem()[0]
    for method, path, body in (("POST", f"/v1/boards/{pid}/fetch", {"image": "vmlinuz"}),
                               ("POST", f"/v1/boards/{pid}/boot", {"kernel": "vmlinuz"}),
                               ("POST", f"/v1/boards/{pid}/reenroll-allow", None),
                               ("GET", f"/v1/boards/{pid}", None)):
        st, ans = f.api(method, path, body)
        check(st == 404, f"{method} {path} for a pending board: {st} {ans}")
    kernel = os.path.join(f.tmp, "vmlinuz")
    with open(kernel, "wb") as fh:
        fh.write(os.urandom(8192))
    r = skyctl(f, "image", "push", kernel, "--name", "vmlinuz", "--kind", "kernel")
    check(r.returncode == 0, f"image push: {r.stderr}")
    st, ans = f.api("POST", "/v1/guests", {"name": "g1", "board": pid, "kernel": "vmlinuz"})
    check(st == 404 and pid in json.dumps(ans), f"a guest on a pending board: {st} {ans}")
    st, ans = f.api("POST", f"/v1/boards/{pid}/fetch", {"image": "vmlinuz"})
    check(st == 404, f"an image fetch to a pending board: {st} {ans}")
    st, ans = f.api("POST", "/v1/tokens", {"board": pid})
    check(st == 404, f"a token for a pending board: {st} {ans}")
    # After its enrollment message, on the same connection: nothing either.
    got = b.ask(extra_frames=struct.pack(">I", 6) + b"\x08\x02" + pb_field(14, b""))
    check(got[0] == "answer" and got[1].get(6) == ENROLL_PENDING, f"still only pending: {got}")
    check(board_with_uuid(f, b.uuid) == [], "no board")


def case_bound(f):
    """--pending-max: beyond it new boards are refused with a reason and a
    metric; known ones still ask; SIGHUP takes a new bound from the file."""
    conf = os.path.join(f.tmp, "skyrootd.conf")
    with open(conf, "w") as fh:
        fh.write("pending-max = 2\n")
    f.start(extra=["--config", conf])
    boards = [SimBoard(f, f"b{i}", f"SN-B-{i}", f"5b0f4c0e-0000-4000-8000-0000000b000{i}") for i in range(3)]
    boards[0].ask_pending()
    boards[1].ask_pending()
    got = boards[2].ask()
    check(got[0] == "error" and got[1] == ERROR_BUSY and "pending-max" in got[2], f"refused when full: {got}")
    check(len(pending_list(f)) == 2, "two records")
    check(metrics(f).get('skyroot_enrollment_failures_total{reason="pending_full"}', 0) == 1, "counted")
    boards[0].ask_pending()  # a known key still asks
    check("--pending-max boards are pending already" in f.ctl.text(), "logged")
    with open(conf, "w") as fh:
        fh.write("pending-max = 3\n")
    os.kill(f.ctl.p.pid, signal.SIGHUP)
    wait_for(lambda: "pending-max 2 -> 3" in f.ctl.text(), 10, "the new bound logged")
    boards[2].ask_pending()


def case_expiry(f):
    """--pending-ttl: a board that stops asking is forgotten."""
    f.start(extra=["--pending-ttl", "2"])
    b = SimBoard(f, "a", "SN-TTL-1", "5b0f4c0e-0000-4000-8000-00000000ab01")
    pid = b.ask_pending()
    check(pid in pending_list(f), "recorded")
    wait_for(lambda: pid not in pending_list(f), 10, "the record to expire")
    st, _ = f.api("POST", f"/v1/boards/{pid}/accept")
    check(st == 404, f"an expired record cannot be accepted: {st}")
    check(b.ask_pending() != pid, "asking after expiry makes a new record")


def case_rate_limit(f):
    """Asks with no token are rate-limited per address."""
    f.start()
    b = SimBoard(f, "a", "SN-RATE-1", "5b0f4c0e-0000-4000-8000-00000000ad01")
    busy = 0
    for _ in range(14):
        got = b.ask()
        if got[0] == "error":
            check(got[1] == ERROR_BUSY and "too many" in got[2], f"a rate refusal: {got}")
            busy += 1
    check(busy >= 2, f"some asks were refused ({busy})")
    check(metrics(f).get('skyroot_enrollment_failures_total{reason="pending_rate_limited"}', 0) == busy, "counted")
    time.sleep(2.5)
    b.ask_pending()


def case_roles(f):
    """Readers list; accept, reject and expect need operator."""
    f.start()
    toks = role_tokens(f)
    b = SimBoard(f, "a", "SN-ROLE-1", "5b0f4c0e-0000-4000-8000-00000000a001")
    pid = b.ask_pending()
    check(pid in pending_list(f, token=toks["reader"]), "a reader lists")
    st, _ = f.api("GET", "/v1/expectations", token=toks["reader"])
    check(st == 200, "a reader lists expectations")
    for method, path, body in (("POST", f"/v1/boards/{pid}/accept", None), ("POST", f"/v1/boards/{pid}/reject", None),
                               ("POST", "/v1/expectations", {"serial": "X"})):
        st, ans = f.api(method, path, body, token=toks["reader"])
        check(st == 403 and "operator" in ans["error"]["message"], f"{path} as a reader: {st} {ans}")
    st, ans = f.api("POST", "/v1/expectations", {"serial": "X"}, token=toks["operator"])
    check(st == 201 and ans["id"].startswith("exp-"), f"expect as an operator: {st} {ans}")
    st, ans = f.api("POST", f"/v1/boards/{pid}/accept", token=toks["operator"])
    check(st == 200, f"accept as an operator: {st} {ans}")
    b.ask_issued()


def case_kill9(f):
    """kill -9 of the controller with a pending board: the record survives
    and accept still works after the restart."""
    f.start()
    b = SimBoard(f, "a", "SN-K9-1", "5b0f4c0e-0000-4000-8000-00000000c901")
    pid = b.ask_pending()
    f.ctl.stop(sig=signal.SIGKILL)
    f.start()
    recs = pending_list(f)
    check(pid in recs and recs[pid]["key_sha256"] == b.fingerprint, f"the record survives: {recs}")
    st, _ = f.api("POST", f"/v1/boards/{pid}/accept")
    check(st == 200, "accept after the restart")
    f.ctl.stop(sig=signal.SIGKILL)
    f.start()
    b.ask_issued()
    check(b.heartbeat(), "online")


def case_real_agent(f):
    """The real skyagent with no token: pending, accepted with skyctl, online."""
    f.start()
    p = f.agent("a")
    recs = wait_for(lambda: pending_list(f), 20 * SKY_SLOW, "the agent to show as pending")
    (pid, rec), = recs.items()
    check(rec["serial"] == "SKY-A-0001" and rec["uuid"] == "5b0f4c0e-9a31-4d0b-8e2a-0a0000000a01" and rec["macs"],
          f"the fixture's claims: {rec}")
    wait_for(lambda: f"pending as {pid} with key sha256:{rec['key_sha256']}" in p.text(), 10 * SKY_SLOW,
             "the agent to log its pending id and key")
    check(f.online() == {}, "not online before the accept")
    t0 = time.time()
    r = skyctl(f, "board", "accept", pid)
    check(r.returncode == 0, f"accept: {r.stderr}")
    online = wait_for(lambda: f.online(), 20 * SKY_SLOW, "the board to come online", interval=0.05)
    print(f"pending: accept to online in {time.time() - t0:.2f} s (the board asks every ~3 s)")
    (bid, board), = online.items()
    check(board["uuid"] == rec["uuid"], f"the accepted machine: {board}")
    check(f"enrolled as board {bid}" in p.text(), "the agent logs its enrollment")
    check(pending_list(f) == {}, "no pending records left")
    # --once does not wait for an operator: exit 1, saying why.
    q = f.agent("b", once=True)
    rc = wait_for(lambda: q.p.poll() is not None and [q.p.returncode], 20 * SKY_SLOW, "agent --once to give up")[0]
    check(rc == 1 and "no enrollment token: pending as pnd-" in q.text(), f"--once pending: {rc} {q.text()}")
    check([r["serial"] for r in pending_list(f).values()] == ["7XK2M53"], "board b waits")


def make(tmp):
    return Fleet(tmp)


if __name__ == "__main__":
    sys.exit(run_cases(globals(), "pending", make))
