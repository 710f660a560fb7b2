#!/usr/bin/env python3
"""The measured-boot gate (issue 16) over real processes: skyrootd, skyagent
with --tpm on a private swtpm (tests/tpm/swtpm.sh), skyctl, and tpm2-tools'
tpm2_pcrextend to change the swtpm's PCR 11 as a different UKI would.

usage: test_tpm_gate.py CASE

  quarantine_release  with one firmware allowed (not the board's), a TPM board
                      enrolls quarantined: state and reason in the API and
                      skyctl board show, an event; guest create, image fetch
                      and boot orders on it are 409 with the reason; allowing
                      its PCR 11 releases it at once (an event) and it takes
                      orders; revoking that firmware quarantines it again
  gate_off            with no firmware allowed every TPM board passes;
                      firmware list says the gate is off; a board without a
                      TPM is never gated ("no TPM")
  pcr_change          a board whose firmware is allowed reboots with PCR 11
                      extended (another UKI): it comes back by its TPM, with
                      no token, quarantined, with an event
  fresh_quote         with a short tpm-quote-interval the controller asks the
                      online board for fresh quotes (board show's last good
                      quote moves on); PCR 11 extended while it runs: the next
                      quote quarantines it, with an event; allowing the new
                      value releases it
  quote_misses        a board whose agent restarted with its kept identity has
                      no AK to quote with: after 3 requests without a quote it
                      is quarantined with the reason
  bad_quote           a fresh quote that does not check out (the store's AK of
                      the board swapped for another: the signature fails)
                      quarantines the board at once with the reason and an
                      event; the right AK back, the next good quote releases
                      it (board.released)
  api                 firmware allow/list/show/revoke: bad PCR values and
                      names refused (400), a taken name or PCR (409), admin
                      only (the operator and reader credentials get 403), the
                      audit log keeps the changes
"""
import os
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import FIXTURES, Fail, board_fixture, check, run_cases, skyctl, sqlq, wait_for  # noqa: E402
from test_tpm_enroll import UUID_A, TpmFleet, board, tpm_of  # noqa: E402
from test_tpm_enroll import skip as skip_enroll  # noqa: E402

ZERO = "0" * 64
OTHER = "ab" * 32


def skip():
    why = skip_enroll()
    if why:
        return why
    for p in ("tpm2_pcrextend", "tpm2_pcrread"):
        if not shutil.which(p):
            return f"{p} is not installed (deploy/packages/base.txt: tpm2-tools)"
    return None


def pcr11(tcti):
    """The swtpm's PCR 11 (SHA-256 bank), hex, as tpm2_pcrread shows it."""
    r = subprocess.run(["tpm2_pcrread", "-T", tcti, "sha256:11"], capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, f"tpm2_pcrread: {r.stderr}")
    for line in r.stdout.splitlines():
        line = line.strip()
        if line.startswith("11") and ":" in line:
            return line.split(":", 1)[1].strip().lower().removeprefix("0x")
    raise Fail(f"no PCR 11 in: {r.stdout}")


def extend11(tcti):
    r = subprocess.run(["tpm2_pcrextend", "-T", tcti, "11:sha256=" + "11" * 32], capture_output=True, text=True,
                       timeout=30)
    check(r.returncode == 0, f"tpm2_pcrextend: {r.stderr}")


def field(text, name):
    """The value of skyctl show's field NAME, or None."""
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    return None


def board_state(f, bid):
    st, b = f.api("GET", f"/v1/boards/{bid}")
    check(st == 200, f"GET board: {st} {b}")
    return b["state"]


def allow(f, name, value):
    st, b = f.api("POST", "/v1/firmware", {"name": name, "pcr11": value})
    check(st == 201 and b["name"] == name and b["pcr11"] == value.lower().removeprefix("0x") and
          b["id"].startswith("fw-"),
          f"firmware allow {name}: {st} {b}")
    return b


def events(f, typ, bid):
    st, ev = f.api("GET", "/v1/events")
    check(st == 200, f"events: {st}")
    return [e for e in ev.get("events") or [] if e.get("type") == typ and e.get("object_id") == bid]


def enroll(f, tcti, name="a", uuid=UUID_A):
    """A board with the TPM at tcti enrolled with a token: its id, its
    agent and its board folder."""
    tok = f.token()
    root = board(f, name, uuid)
    p = f.agent(name, root=root, token=tok["token"], extra=["--tpm", tcti], name=name)
    bid = wait_for(lambda: [b["id"] for b in f.boards() if b["state"] in ("online", "quarantined")], 30,
                   "the board enrolled")[0]
    return bid, p, root


def case_quarantine_release(f):
    tcti, d = f.swtpm("a")
    f.tpm_ca_add(d)
    value = pcr11(tcti)
    check(value == ZERO, f"a fresh swtpm's PCR 11 is zero: {value}")
    f.start()
    st, _, raw = f.request("POST", "/v1/images?name=k&kind=kernel", data=b"k" * 4096,
                           headers={"Content-Type": "application/octet-stream"})
    check(st == 201, f"image upload: {st} {raw}")
    allow(f, "other-firmware", OTHER)
    bid, _, _ = enroll(f, tcti)
    reason = f"PCR 11 {value} matches no allowed firmware"
    wait_for(lambda: board_state(f, bid) == "quarantined", 10, "the board quarantined")
    t = tpm_of(f, bid)
    check(t["quarantined"] == reason and t["pcr11"] == value and t["firmware"] is None, f"the reason: {t}")
    check("enrolled quarantined" in f.ctl.text() and reason in f.ctl.text(), "the controller's log says so")
    ev = events(f, "board.quarantined", bid)
    check(len(ev) == 1 and ev[0]["detail"]["reason"] == reason, f"one board.quarantined event: {ev}")
    out = skyctl(f, "board", "show", bid)
    check(out.returncode == 0 and field(out.stdout, "Quarantined") == reason and field(out.stdout, "State") == "quarantined",
          f"board show: {out.stdout} {out.stderr}")
    out = skyctl(f, "board", "list", "--state", "quarantined")
    check(out.returncode == 0 and bid in out.stdout, f"board list --state quarantined: {out.stdout} {out.stderr}")
    # No guests, images or boot orders, each with the reason.
    st, b = f.api("POST", "/v1/guests", {"name": "g1", "board": bid, "kernel": "k", "vcpus": 1,
                                         "memory_bytes": 64 << 20})
    check(st == 409 and "quarantined" in b["error"]["message"] and reason in b["error"]["message"],
          f"guest create refused: {st} {b}")
    st, b = f.api("POST", f"/v1/boards/{bid}/fetch", {"image": "k"})
    check(st == 409 and reason in b["error"]["message"], f"image fetch refused: {st} {b}")
    st, b = f.api("POST", f"/v1/boards/{bid}/boot", {"kernel": "k"})
    check(st == 409 and reason in b["error"]["message"], f"boot order refused: {st} {b}")
    st, gl = f.api("GET", "/v1/guests")
    check(st == 200 and not gl["guests"], f"no guest was made: {gl}")
    # Allowing its firmware releases it at once.
    out = skyctl(f, "firmware", "allow", "--name", "skyroot-a", "--pcr11", value.upper())
    check(out.returncode == 0 and value in out.stdout, f"skyctl firmware allow: {out.stdout} {out.stderr}")
    check(board_state(f, bid) == "online", f"released at once: {board_state(f, bid)}")
    t = tpm_of(f, bid)
    check(t["quarantined"] is None and t["firmware"] == "skyroot-a", f"it matched skyroot-a: {t}")
    ev = events(f, "board.released", bid)
    check(len(ev) == 1 and ev[0]["detail"]["firmware"] == "skyroot-a", f"one board.released event: {ev}")
    st, b = f.api("POST", f"/v1/boards/{bid}/fetch", {"image": "k"})
    check(st == 202, f"released: an image fetch goes to it: {st} {b}")
    out = skyctl(f, "board", "show", bid)
    check(field(out.stdout, "Allowed firmware") == "skyroot-a", f"board show names the firmware: {out.stdout}")
    # Revoking it quarantines the board again, at once.
    out = skyctl(f, "firmware", "revoke", "skyroot-a")
    check(out.returncode == 0, f"skyctl firmware revoke: {out.stdout} {out.stderr}")
    check(board_state(f, bid) == "quarantined", "quarantined again by the revoke")
    check(len(events(f, "board.quarantined", bid)) == 2, "a second board.quarantined event")


def case_gate_off(f):
    tcti, d = f.swtpm("a")
    f.tpm_ca_add(d)
    f.start()
    out = skyctl(f, "firmware", "list")
    check(out.returncode == 0 and "the measured-boot gate is off" in out.stderr, f"list says off: {out.stderr}")
    bid, _, _ = enroll(f, tcti)
    wait_for(lambda: board_state(f, bid) == "online", 10, "the TPM board passes with the gate off")
    t = tpm_of(f, bid)
    check(t["quarantined"] is None and t["pcr11"] == ZERO, f"judged, not held: {t}")
    out = skyctl(f, "board", "show", bid)
    check("no firmware allowed: the gate is off" in out.stdout, f"board show: {out.stdout}")
    # A board without a TPM is not gated, even with the gate on.
    tok = f.token()
    f.agent("b", root=board_fixture(os.path.join(f.tmp, "board-b"), "a", "7b2f1c52-5d1e-4a8e-9d55-1e0f3a6c9e09",
                                    "plain-b"), token=tok["token"], name="b")
    other = wait_for(lambda: [x for x in f.online() if x != bid], 30, "the board without a TPM online")[0]
    allow(f, "other-firmware", OTHER)
    check(board_state(f, other) == "online", "a board without a TPM passes with the gate on")
    check(board_state(f, bid) == "quarantined", "the first allow turned the gate on for the TPM board")
    check(len(events(f, "board.quarantined", bid)) == 1, "an event for it")
    out = skyctl(f, "board", "show", other)
    check("no TPM" in out.stdout, f"board show says no TPM: {out.stdout}")
    # Revoking the last one turns the gate off again.
    st, _ = f.api("DELETE", "/v1/firmware/other-firmware")
    check(st == 200 and board_state(f, bid) == "online", "the gate off again: released")
    check(len(events(f, "board.released", bid)) == 1, "a board.released event")


def case_pcr_change(f):
    tcti, d = f.swtpm("a")
    f.tpm_ca_add(d)
    f.start()
    allow(f, "skyroot-a", ZERO)
    bid, p, root = enroll(f, tcti)
    wait_for(lambda: board_state(f, bid) == "online", 10, "the allowed board online")
    check(tpm_of(f, bid)["firmware"] == "skyroot-a", "it matched its firmware")
    # A reboot into another UKI: PCR 11 differs.
    p.stop(signal.SIGKILL)
    f.procs.remove(p)
    wait_for(lambda: not f.online(), 40, "board offline after the kill")
    extend11(tcti)
    new = pcr11(tcti)
    check(new != ZERO, "PCR 11 extended")
    f.agent("a", root=root, extra=["--tpm", tcti], name="reboot")
    wait_for(lambda: board_state(f, bid) == "quarantined", 30, "back with no token, quarantined")
    check(len(f.boards()) == 1, "the same board")
    t = tpm_of(f, bid)
    check(t["pcr11"] == new and t["quarantined"] == f"PCR 11 {new} matches no allowed firmware", f"{t}")
    ev = events(f, "board.quarantined", bid)
    check(len(ev) == 1 and ev[0]["detail"]["pcr11"] == new, f"a board.quarantined event: {ev}")


def enroll_hb(f, tcti, extra=()):
    tok = f.token()
    root = board(f, "a", UUID_A)
    p = f.agent("a", root=root, token=tok["token"], extra=["--tpm", tcti, *extra], name="a", hb=300)
    bid = wait_for(lambda: [b["id"] for b in f.boards() if b["state"] in ("online", "quarantined")], 30,
                   "the board enrolled")[0]
    return bid, p, root


def case_fresh_quote(f):
    tcti, d = f.swtpm("a")
    f.tpm_ca_add(d)
    f.start(extra=["--tpm-quote-interval", "1s"])
    allow(f, "skyroot-a", ZERO)
    bid, _, _ = enroll_hb(f, tcti)
    first = tpm_of(f, bid)["last_quote_at"]
    wait_for(lambda: tpm_of(f, bid)["last_quote_at"] > first, 15, "a fresh quote after the enrollment's")
    check(board_state(f, bid) == "online", "its firmware is allowed")
    check("fresh quote verified" in f.ctl.text(), "the controller checked it")
    extend11(tcti)
    new = pcr11(tcti)
    wait_for(lambda: board_state(f, bid) == "quarantined", 15, "quarantined at the next quote")
    t = tpm_of(f, bid)
    check(t["pcr11"] == new and t["quarantined"] == f"PCR 11 {new} matches no allowed firmware", f"{t}")
    ev = events(f, "board.quarantined", bid)
    check(len(ev) == 1 and ev[0]["detail"]["pcr11"] == new, f"one board.quarantined event: {ev}")
    check(f"board {bid} quarantined: PCR 11 {new}" in f.ctl.text(), "logged")
    st, b = f.api("POST", f"/v1/boards/{bid}/fetch", {"image": "k"})
    check(st == 409 and "quarantined" in b["error"]["message"], f"no orders: {st} {b}")
    allow(f, "skyroot-b", new)
    check(board_state(f, bid) == "online", "released by the allow")
    check(len(events(f, "board.released", bid)) == 1, "a board.released event")


def case_quote_misses(f):
    tcti, d = f.swtpm("a")
    f.tpm_ca_add(d)
    f.start(extra=["--tpm-quote-interval", "1s"])
    idir = os.path.join(f.tmp, "identity")
    bid, p, root = enroll_hb(f, tcti, ["--identity-dir", idir])
    first = tpm_of(f, bid)["last_quote_at"]
    wait_for(lambda: tpm_of(f, bid)["last_quote_at"] > first, 15, "a fresh quote")
    # The agent restarts with its kept identity: no enrollment, so no AK.
    p.stop()
    f.procs.remove(p)
    wait_for(lambda: not f.online(), 40, "board offline")
    f.agent("a", root=root, extra=["--tpm", tcti, "--identity-dir", idir], name="kept", hb=300)
    wait_for(lambda: board_state(f, bid) == "quarantined", 30, "quarantined after 3 requests without a quote")
    t = tpm_of(f, bid)
    check(t["quarantined"].startswith("no quote in 3 requests in a row: no AK kept"), f"the reason: {t}")
    check(len(events(f, "board.quarantined", bid)) == 1, "an event")


def store_ak(f, bid, ak=None):
    """The board's AK in the store: read it, or write ak."""
    if ak is not None:
        f.store_set_blob("boards", "tpm_ak", f"id = {sqlq(bid)}", ak)
    return f.store_blob("boards", "tpm_ak", f"id = {sqlq(bid)}")


def case_bad_quote(f):
    tcti, d = f.swtpm("a")
    f.tpm_ca_add(d)
    f.start(extra=["--tpm-quote-interval", "1s"])
    bid, _, _ = enroll_hb(f, tcti)
    first = tpm_of(f, bid)["last_quote_at"]
    wait_for(lambda: tpm_of(f, bid)["last_quote_at"] > first, 15, "a fresh quote")
    mine = store_ak(f, bid)
    other = open(os.path.join(FIXTURES, "tpm", "ak_ecc.pub"), "rb").read()
    check(mine and bytes(mine) != other, "the board's AK is its own")
    store_ak(f, bid, other)
    wait_for(lambda: board_state(f, bid) == "quarantined", 15, "quarantined by a quote the AK did not sign")
    t = tpm_of(f, bid)
    check(t["quarantined"].startswith("fresh quote refused: "), f"the reason: {t}")
    check("fresh quote refused" in f.ctl.text(), "logged")
    ev = events(f, "board.quarantined", bid)
    check(len(ev) == 1 and ev[0]["detail"]["reason"] == t["quarantined"], f"an event: {ev}")
    store_ak(f, bid, mine)
    wait_for(lambda: board_state(f, bid) == "online", 15, "released by the next good quote")
    check(len(events(f, "board.released", bid)) == 1, "a board.released event")


def case_api(f):
    f.start()
    for body, why in (({"name": "x", "pcr11": "12"}, "64 hex digits"),
                      ({"name": "x", "pcr11": "zz" * 32}, "64 hex digits"),
                      ({"name": "fw-x", "pcr11": OTHER}, "fw-"),
                      ({"name": "x"}, "needs a name and a pcr11"),
                      ({"name": "x", "pcr11": OTHER, "extra": 1}, "extra")):
        st, b = f.api("POST", "/v1/firmware", body)
        check(st == 400 and why in b["error"]["message"], f"{body}: {st} {b}")
    a = allow(f, "one", "0x" + OTHER.upper())
    st, b = f.api("POST", "/v1/firmware", {"name": "one", "pcr11": ZERO})
    check(st == 409 and "named 'one'" in b["error"]["message"], f"name taken: {st} {b}")
    st, b = f.api("POST", "/v1/firmware", {"name": "two", "pcr11": OTHER})
    check(st == 409 and "allowed already as 'one'" in b["error"]["message"], f"PCR taken: {st} {b}")
    st, b = f.api("GET", "/v1/firmware/one")
    check(st == 200 and b == a, f"show by name: {st} {b}")
    st, b = f.api("GET", f"/v1/firmware/{a['id']}")
    check(st == 200 and b == a, f"show by id: {st} {b}")
    out = skyctl(f, "firmware", "list")
    check(out.returncode == 0 and OTHER in out.stdout and "one" in out.stdout, f"list: {out.stdout}")
    for role in ("operator", "reader"):
        st, c = f.api("POST", "/v1/credentials", {"name": f"c-{role}", "role": role})
        check(st == 201, f"credential {role}: {st} {c}")
        st, b = f.api("GET", "/v1/firmware", token=c["token"])
        check(st == 403 and "admin" in b["error"]["message"], f"{role} may not list: {st} {b}")
        st, b = f.api("POST", "/v1/firmware", {"name": "two", "pcr11": ZERO}, token=c["token"])
        check(st == 403, f"{role} may not allow: {st} {b}")
    st, b = f.api("DELETE", "/v1/firmware/one")
    check(st == 200 and b == {"id": a["id"], "deleted": True}, f"revoke: {st} {b}")
    st, b = f.api("DELETE", "/v1/firmware/one")
    check(st == 404, f"revoked: {st} {b}")
    st, au = f.api("GET", "/v1/audit")
    paths = [(e.get("method"), e.get("path")) for e in au.get("entries") or au.get("audit") or []]
    check(("POST", "/v1/firmware") in paths and ("DELETE", "/v1/firmware/one") in paths, f"audit: {paths}")


if __name__ == "__main__":
    sys.exit(run_cases(globals(), "sky-tpmgate", TpmFleet, skip=skip))
