#!/usr/bin/env python3
"""TPM-anchored enrollment (issue 16) over real processes: skyrootd, skyagent
with --tpm on a private swtpm (tests/tpm/swtpm.sh, each with a manufacturer
CA of its own), skyctl.

usage: test_tpm_enroll.py CASE

  token_then_reboot   a board with a TPM whose EK is unknown waits as a pending
                      board without a token; with a token it enrolls and its
                      EK is bound; killed and started again with no token (and
                      no kept identity: a reboot) it is online at once with the
                      same board id, its earlier certificate is revoked, and
                      board show has its EK and the time of the last quote
  pending_accept      no token and an unknown EK: pending; an operator accepts
                      it, its EK is bound, and after a reboot it needs nobody
  other_ca            a TPM whose EK certificate comes from a CA the controller
                      was not given is refused, with the reason in the agent's
                      and the controller's logs and on the board that machine
                      is (API and skyctl board show); no board is made
  no_ca               with no manufacturer CA configured, the TPM is not used:
                      the board enrolls with its token as one without a TPM;
                      a CA added and taken on SIGHUP counts for the next one
  tpm_ca_cli          skyrootd tpm-ca add refuses a file with no certificate or
                      a non-CA certificate; list shows what was added (0600)
"""
import os
import shutil
import signal
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import (SKYROOTD, Fleet, Fail, board_fixture, check, cert_fields, expect_refused,  # noqa: E402
                      given_ports, refused_old_cert, run_cases, skyctl, wait_for)

SWTPM_SH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tpm", "swtpm.sh")


class TpmFleet(Fleet):
    """A fleet whose TPMs (swtpm) are stopped with it."""

    def __init__(self, tmp):
        super().__init__(tmp)
        self.tpms = []

    def swtpm(self, name):
        d = os.path.join(self.tmp, f"tpm-{name}")
        os.makedirs(d, exist_ok=True)
        env = dict(os.environ, SWTPM_AVOID=" ".join(map(str, given_ports())))
        out = subprocess.run(["sh", SWTPM_SH, "start", d], capture_output=True, text=True, timeout=120, env=env)
        if out.returncode == 77:
            raise Fail(f"swtpm.sh skipped: {out.stderr}")
        check(out.returncode == 0, f"swtpm.sh start: {out.returncode} {out.stderr}")
        self.tpms.append(d)
        return out.stdout.strip(), d

    def tpm_ca_add(self, d):
        """The manufacturer CA of the swtpm in D: root and issuer in one file."""
        pem = os.path.join(d, "manufacturer.pem")
        with open(pem, "w") as out:
            for n in ("rootca.pem", "issuer.pem"):
                out.write(open(os.path.join(d, "ca", n)).read())
        r = subprocess.run([SKYROOTD, "tpm-ca", "add", "--state", self.state, pem], capture_output=True, text=True)
        check(r.returncode == 0, f"tpm-ca add: {r.returncode} {r.stderr}")
        return r.stdout

    def close(self):
        problems = super().close()
        for d in self.tpms:
            subprocess.run(["sh", SWTPM_SH, "stop", d], capture_output=True, timeout=30)
        self.tpms = []
        return problems


def skip():
    for p in ("swtpm", "swtpm_setup", "swtpm_localca"):
        if not shutil.which(p):
            return f"{p} is not installed (deploy/packages/base.txt: swtpm, swtpm-tools)"
    return None


def board(f, name, uuid):
    return board_fixture(os.path.join(f.tmp, f"board-{name}"), "a", uuid, f"tpm-{name}")


def tpm_of(f, bid):
    st, b = f.api("GET", f"/v1/boards/{bid}")
    check(st == 200, f"GET board: {st} {b}")
    return b.get("tpm")


UUID_A = "7b2f1c52-5d1e-4a8e-9d55-1e0f3a6c9e01"


def case_token_then_reboot(f):
    tcti, d = f.swtpm("a")
    f.tpm_ca_add(d)
    f.start()
    check("TPM manufacturer CAs: 1 file" in f.ctl.text(), "the controller loaded the CA")
    root = board(f, "a", UUID_A)
    # An unknown EK without a token: pending, as a board without a TPM.
    p = f.agent("a", root=root, extra=["--tpm", tcti], once=True, name="pending")
    expect_refused(p, "pending as pnd-")
    check("TPM verified" in f.ctl.text(), "the TPM step came before the pending decision")
    check(f.boards() == [], "no board for an unknown EK without a token")
    # With a token: enrolled, EK bound.
    tok = f.token()
    idir1 = os.path.join(f.tmp, "identity-1")
    p1 = f.agent("a", root=root, token=tok["token"], extra=["--tpm", tcti, "--identity-dir", idir1], name="first")
    bid = wait_for(lambda: list(f.online()), 30, "board online with a token and its TPM")[0]
    t = tpm_of(f, bid)
    check(t and len(t.get("ek_sha256") or "") == 64 and t.get("last_quote_at") and t.get("refused") is None,
          f"the EK is bound with a quote time: {t}")
    first_quote = t["last_quote_at"]
    pem1 = os.path.join(idir1, "identity.pem")
    check(cert_fields(pem1)[0] == bid, "the first certificate is the board's")
    # A reboot: the agent dies, its key is gone (a fresh identity folder), no token.
    p1.stop(signal.SIGKILL)
    f.procs.remove(p1)
    wait_for(lambda: not f.online(), 40, "board offline after the kill")
    idir2 = os.path.join(f.tmp, "identity-2")
    p2 = f.agent("a", root=root, extra=["--tpm", tcti, "--identity-dir", idir2], name="reboot")
    wait_for(lambda: list(f.online()) == [bid], 30, "the same board online again with no token")
    check(len(f.boards()) == 1, "no second board")
    pem2 = os.path.join(idir2, "identity.pem")
    check(cert_fields(pem2)[0] == bid, "the new certificate names the same board")
    check(cert_fields(pem2)[1] != cert_fields(pem1)[1], "a new certificate (serial)")
    check("enrolled again by its TPM" in f.ctl.text() and "with no token" in f.ctl.text(),
          "the controller says how the board came back")
    check("pending as" not in p2.text(), f"no pending step: {p2.text()}")
    refused_old_cert(f, pem1)
    t2 = tpm_of(f, bid)
    check(t2["ek_sha256"] == t["ek_sha256"] and t2["last_quote_at"] >= first_quote, f"same EK, a fresh quote: {t2}")
    out = skyctl(f, "board", "show", bid)
    check(out.returncode == 0 and f"EK sha256:{t['ek_sha256']}" in out.stdout and "Last good quote:" in out.stdout,
          f"board show has the TPM: {out.stdout} {out.stderr}")
    st, ev = f.api("GET", "/v1/events")
    hows = [e.get("detail", {}).get("how", "") for e in (ev.get("events") or []) if e.get("type") == "board.enrolled"]
    check(any("TPM" in h for h in hows), f"the board.enrolled event says it came by its TPM: {hows}")


def case_pending_accept(f):
    """No token, an unknown EK: pending; accepted, the same key gets its
    certificate at its next ask and the EK is bound then; a reboot after
    that needs no operator."""
    tcti, d = f.swtpm("a")
    f.tpm_ca_add(d)
    f.start()
    root = board(f, "a", UUID_A)
    p = f.agent("a", root=root, extra=["--tpm", tcti], name="pending")
    pid = wait_for(lambda: [x["id"] for x in f.api("GET", "/v1/pending")[1]["pending"]], 30, "a pending board")[0]
    st, ans = f.api("POST", f"/v1/boards/{pid}/accept")
    check(st == 200 and ans["state"] == "accepted", f"accept: {st} {ans}")
    bid = wait_for(lambda: list(f.online()), 30, "the accepted board online")[0]
    check((tpm_of(f, bid) or {}).get("ek_sha256"), f"its EK bound at the accepted enrollment: {tpm_of(f, bid)}")
    p.stop(signal.SIGKILL)
    f.procs.remove(p)
    wait_for(lambda: not f.online(), 40, "board offline after the kill")
    f.agent("a", root=root, extra=["--tpm", tcti], name="reboot")
    wait_for(lambda: list(f.online()) == [bid], 30, "the same board online again, no operator")
    check(len(f.boards()) == 1, "one board")


def case_other_ca(f):
    tcti_a, da = f.swtpm("a")
    tcti_b, _ = f.swtpm("b")   # its CA is not given to the controller
    f.tpm_ca_add(da)
    f.start()
    root = board(f, "a", UUID_A)
    tok = f.token(uses=2)
    f.agent("a", root=root, token=tok["token"], extra=["--tpm", tcti_a], name="good")
    bid = wait_for(lambda: list(f.online()), 30, "board online with TPM a")[0]
    # The same machine with another TPM (from a CA not configured), with a
    # token even: refused for its TPM.
    p = f.agent("a", root=root, token=tok["token"], extra=["--tpm", tcti_b], once=True, name="other")
    expect_refused(p, "EK certificate from an unknown CA")
    check("TPM evidence refused: EK certificate from an unknown CA" in f.ctl.text(),
          "the controller's log has the reason")
    t = tpm_of(f, bid)
    check(t and "EK certificate from an unknown CA" in (t.get("refused") or "") and t.get("refused_at"),
          f"the board shows the refusal: {t}")
    out = skyctl(f, "board", "show", bid)
    check("TPM refused:" in out.stdout and "unknown CA" in out.stdout, f"board show says so: {out.stdout}")
    check(len(f.boards()) == 1, "no board made by the refused TPM")
    st, toks = f.api("GET", "/v1/tokens")
    mine = [t for t in toks.get("tokens", []) if t.get("id") == tok["id"]]
    check(st == 200 and mine and mine[0].get("uses_left") == 1, f"the refused enrollment used no token: {toks}")
    # A TPM with no EK certificate at all: refused with its reason too.
    dn = os.path.join(f.tmp, "tpm-n")
    os.makedirs(dn, exist_ok=True)
    out = subprocess.run(["sh", SWTPM_SH, "start", dn, "--no-ek-cert"], capture_output=True, text=True, timeout=120)
    check(out.returncode == 0, f"swtpm without EK cert: {out.stderr}")
    f.tpms.append(dn)
    p = f.agent("a", root=board(f, "n", "7b2f1c52-5d1e-4a8e-9d55-1e0f3a6c9e02"), token=tok["token"],
                extra=["--tpm", out.stdout.strip()], once=True, name="nocert")
    expect_refused(p, "has no EK certificate")


def case_no_ca(f):
    tcti, d = f.swtpm("a")
    f.start()
    tok = f.token()
    f.agent("a", root=board(f, "a", UUID_A), token=tok["token"], extra=["--tpm", tcti])
    bid = wait_for(lambda: list(f.online()), 30, "board online")[0]
    check(tpm_of(f, bid) is None, "no TPM bound without a manufacturer CA")
    check("no TPM manufacturer CA is configured" in f.ctl.text(), "the controller says why the TPM is not used")
    # A CA added to the running controller counts after SIGHUP (board b's TPM).
    tcti, d = f.swtpm("b")
    f.tpm_ca_add(d)
    os.kill(f.ctl.p.pid, signal.SIGHUP)
    wait_for(lambda: "TPM manufacturer CAs: 1 file" in f.ctl.text(), 10, "the CA loaded on SIGHUP")
    tok2 = f.token()
    f.agent("a", root=board(f, "b", "7b2f1c52-5d1e-4a8e-9d55-1e0f3a6c9e03"), token=tok2["token"],
            extra=["--tpm", tcti], name="b")
    wait_for(lambda: len(f.online()) == 2, 30, "the second board online")
    other = [b for b in f.online() if b != bid][0]
    check((tpm_of(f, other) or {}).get("ek_sha256"), f"its EK bound: {tpm_of(f, other)}")


def case_tpm_ca_cli(f):
    _, d = f.swtpm("a")
    empty = os.path.join(f.tmp, "empty.pem")
    open(empty, "w").write("nothing here\n")
    r = subprocess.run([SKYROOTD, "tpm-ca", "add", "--state", f.state, empty], capture_output=True, text=True)
    check(r.returncode == 1 and "no PEM certificate" in r.stderr, f"an empty file is refused: {r.stderr}")
    leaf = os.path.join(f.state, "server.crt")
    if os.path.exists(leaf):
        r = subprocess.run([SKYROOTD, "tpm-ca", "add", "--state", f.state, leaf], capture_output=True, text=True)
        check(r.returncode == 1 and "not a CA certificate" in r.stderr, f"a leaf certificate is refused: {r.stderr}")
    r = subprocess.run([SKYROOTD, "tpm-ca", "list", "--state", f.state], capture_output=True, text=True)
    check(r.returncode == 0 and "no TPM manufacturer CAs" in r.stdout, f"none listed: {r.stdout}")
    f.tpm_ca_add(d)
    r = subprocess.run([SKYROOTD, "tpm-ca", "list", "--state", f.state], capture_output=True, text=True)
    check(r.returncode == 0 and r.stdout.count(".pem") == 2,
          f"the root and the issuer listed: {r.stdout}")
    files = os.listdir(os.path.join(f.state, "tpm-ca"))
    check(len(files) == 1, f"one file: {files}")
    mode = stat.S_IMODE(os.stat(os.path.join(f.state, "tpm-ca", files[0])).st_mode)
    check(mode == 0o600, f"0600: {oct(mode)}")
    r = subprocess.run([SKYROOTD, "tpm-ca", "--help"], capture_output=True, text=True)
    check(r.returncode == 0 and "tpm-ca add" in r.stdout, "--help")
    # The controller starts with it (the state's permission check passes).
    f.start()
    check("TPM manufacturer CAs: 1 file" in f.ctl.text(), "loaded at start")


if __name__ == "__main__":
    sys.exit(run_cases(globals(), "sky-tpm", TpmFleet, skip=skip))
