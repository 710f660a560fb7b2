#!/usr/bin/env python3
"""The controller's TPM step (issue 16) against hand-made proofs: a real TPM
(swtpm, tests/tpm/swtpm.sh) behind tests/tpm/oracle.c makes the EK, the AK,
activations and quotes; this script speaks the agent link itself, so it can
send what skyagent never would.  Each bad proof is refused with
ERROR_TPM_REFUSED (or ERROR_BAD_REQUEST) and its reason, in the answer and
in the controller's log; no board is made, no token is spent, nothing
crashes.

usage: test_tpm_proof.py CASE ORACLE

  wrong_nonce     a quote over another nonce than the one given
  replayed_quote  after a good enrollment, its quote sent again in a new
                  exchange (with the new credential activated): a replay
  wrong_secret    the activated secret altered (the AK not shown bound)
  pcr_mismatch    PCR values that do not hash to the quoted digest
  unsolicited     a TpmProof with no challenge outstanding, or for another
                  request id
  oversized       an EK public key over its bound, a proof field over its
                  bound, an EK certificate that is not one
  bad_keys        the EK sent as the AK, the AK sent as the EK
"""
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import (check, link_errors, link_frames, metrics, pb_field, pb_fields, pb_varint,  # noqa: E402
                      read_for, read_until_closed, run_cases, tls_connect, wait_for)
from test_tpm_enroll import TpmFleet, skip  # noqa: E402

ORACLE = None
TPM_REFUSED, BAD_REQUEST = 13, 1


class Oracle:
    def __init__(self, tcti, log):
        self.p = subprocess.Popen([ORACLE, tcti], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=open(log, "ab"), text=True)

    def ask(self, *words):
        self.p.stdin.write(" ".join(words) + "\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline().strip()
        check(line and not line.startswith("error"), f"oracle {words[0]}: {line!r}")
        return [b"" if w == "-" else bytes.fromhex(w) for w in line.split()]

    def close(self):
        self.p.stdin.close()
        self.p.wait(10)


def csr(f):
    d = os.path.join(f.tmp, "csr")
    os.makedirs(d, exist_ok=True)
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", os.path.join(d, "k.pem"), "-subj", "/CN=skyagent", "-outform", "DER",
                    "-out", os.path.join(d, "csr.der")], check=True, capture_output=True)
    return open(os.path.join(d, "csr.der"), "rb").read()


def frame(req, num, body):
    env = pb_varint(1 << 3) + pb_varint(req) + pb_field(num, body)
    return struct.pack(">I", len(env)) + env


def enroll_request(f, token, ev, uuid="5a1d0c3e-8a4b-4c55-9f0e-3d2b1a0c9e77"):
    ek, cert, ak = ev
    tpm = pb_field(1, ek) + pb_field(2, cert) + pb_field(3, ak)
    er = (pb_field(1, token.encode()) + pb_field(2, csr(f)) + pb_field(3, uuid.encode()) +
          pb_field(4, b"proof-host") + pb_field(5, b"test") + pb_field(8, tpm))
    return er


def has(num):
    return lambda data: any(num in e or 16 in e for e in link_frames(data))


def challenge(f, s, req, er):
    """Send the enroll request on S; the TpmChallenge's fields {1: id, 2: es, 3: nonce}."""
    s.sendall(frame(req, 10, er))
    data = read_for(s, has(40))
    envs = [e for e in link_frames(data) if 40 in e]
    check(envs and envs[0].get(1) == req, f"a TPM challenge for request {req}: {link_frames(data)} {link_errors(data)}")
    return dict(pb_fields(envs[0][40]))


def proof(secret, attest, sig, pcrs):
    return pb_field(1, secret) + pb_field(2, attest) + pb_field(3, sig) + pb_field(4, pcrs)


def answer(o, ch, nonce=None):
    """A true answer: the secret and a quote over the nonce given (or NONCE)."""
    secret, = o.ask("activate", ch[1].hex(), ch[2].hex())
    attest, sig, pcrs = o.ask("quote", (nonce or ch[3]).hex())
    return secret, attest, sig, pcrs


def refused(f, s, req, body, code, needle, tok):
    s.sendall(frame(req, 41, body))
    data, _ = read_until_closed(s)
    errs = link_errors(data)
    check(len(errs) == 1 and errs[0][1] == code and needle in errs[0][2],
          f"one error {code} with {needle!r}: {errs} {link_frames(data)}")
    check(not any(11 in e for e in link_frames(data)), "no enrollment answer")
    wait_for(lambda: needle in f.ctl.text(), 10, "the reason in the controller's log")
    check(f.boards() == [], f"no board: {f.boards()}")
    st, toks = f.api("GET", "/v1/tokens")
    mine = [t for t in toks["tokens"] if t["id"] == tok["id"]]
    check(mine and mine[0]["uses_left"] == tok["uses"], f"no token spent: {mine}")
    print(f"refused: {errs[0][2]}")


def setup(f):
    tcti, d = f.swtpm("a")
    f.tpm_ca_add(d)
    f.start()
    o = Oracle(tcti, os.path.join(f.tmp, "oracle.log"))
    f.oracles = getattr(f, "oracles", []) + [o]
    return o, o.ask("evidence")


def case_wrong_nonce(f):
    o, ev = setup(f)
    tok = f.token()
    s = tls_connect(f)
    ch = challenge(f, s, 7, enroll_request(f, tok["token"], ev))
    check(len(ch[3]) == 32, "a 32-byte nonce")
    secret, attest, sig, pcrs = answer(o, ch, nonce=bytes(b ^ 1 for b in ch[3]))
    refused(f, s, 7, proof(secret, attest, sig, pcrs), TPM_REFUSED, "TPM evidence refused: wrong nonce", tok)
    m = metrics(f)
    check(m.get('skyroot_enrollment_failures_total{reason="tpm_refused"}') == 1,
          f"counted as tpm_refused: {[k for k in m if 'enrollment_failures' in k and m[k]]}")


def case_bad_keys(f):
    """The EK in the AK's place (a decrypt key, not a signing one), the AK in
    the EK's (not the certificate's key): refused before any challenge."""
    o, ev = setup(f)
    tok = f.token()
    ek, cert, ak = ev
    for evidence, needle in (((ek, cert, ek), "AK is not a restricted signing key"),
                             ((ak, cert, ak), "TPM evidence refused: ")):
        s = tls_connect(f)
        s.sendall(frame(11, 10, enroll_request(f, tok["token"], evidence)))
        data, _ = read_until_closed(s)
        errs = link_errors(data)
        check(len(errs) == 1 and errs[0][1] == TPM_REFUSED and needle in errs[0][2],
              f"refused with {needle!r}: {errs}")
        check(not any(40 in e for e in link_frames(data)), "no challenge")
        print(f"refused: {errs[0][2]}")
    check(f.boards() == [], "no board")


def case_replayed_quote(f):
    o, ev = setup(f)
    tok = f.token(uses=2)
    s = tls_connect(f)
    ch = challenge(f, s, 1, enroll_request(f, tok["token"], ev))
    good = answer(o, ch)
    s.sendall(frame(1, 41, proof(*good)))
    data = read_for(s, has(11))
    check(any(11 in e for e in link_frames(data)), f"the true answer enrolls: {link_errors(data)}")
    s.close()
    check(len(f.boards()) == 1, "one board")
    bid = f.boards()[0]["id"]
    # A new exchange: the new credential activated, the old quote sent.
    s = tls_connect(f)
    ch2 = challenge(f, s, 2, enroll_request(f, tok["token"], ev))
    check(ch2[3] != ch[3], "a new nonce")
    secret2, = o.ask("activate", ch2[1].hex(), ch2[2].hex())
    s.sendall(frame(2, 41, proof(secret2, good[1], good[2], good[3])))
    data, _ = read_until_closed(s)
    errs = link_errors(data)
    check(len(errs) == 1 and errs[0][1] == TPM_REFUSED and "replayed quote" in errs[0][2],
          f"refused as a replay: {errs}")
    wait_for(lambda: "TPM evidence refused: replayed quote" in f.ctl.text(), 10, "the reason in the log")
    check([b["id"] for b in f.boards()] == [bid], "still the one board")
    st, b = f.api("GET", f"/v1/boards/{bid}")
    check("replayed quote" in (b.get("tpm") or {}).get("refused", ""), f"the board shows the refusal: {b.get('tpm')}")
    print(f"refused: {errs[0][2]}")


def case_wrong_secret(f):
    o, ev = setup(f)
    tok = f.token()
    s = tls_connect(f)
    ch = challenge(f, s, 3, enroll_request(f, tok["token"], ev))
    secret, attest, sig, pcrs = answer(o, ch)
    bad = bytes([secret[0] ^ 0x80]) + secret[1:]
    refused(f, s, 3, proof(bad, attest, sig, pcrs), TPM_REFUSED, "AK not bound to the EK", tok)


def case_pcr_mismatch(f):
    o, ev = setup(f)
    tok = f.token()
    s = tls_connect(f)
    ch = challenge(f, s, 4, enroll_request(f, tok["token"], ev))
    secret, attest, sig, pcrs = answer(o, ch)
    bad = pcrs[:-1] + bytes([pcrs[-1] ^ 1])
    refused(f, s, 4, proof(secret, attest, sig, bad), TPM_REFUSED, "PCR values do not match", tok)


def case_unsolicited(f):
    o, ev = setup(f)
    tok = f.token()
    s = tls_connect(f)
    s.sendall(frame(5, 41, proof(b"x" * 32, b"a", b"s", b"p" * 32)))
    data, _ = read_until_closed(s)
    errs = link_errors(data)
    check(len(errs) == 1 and errs[0][1] == BAD_REQUEST and "without a TPM challenge" in errs[0][2],
          f"a proof with no challenge: {errs}")
    s = tls_connect(f)
    ch = challenge(f, s, 6, enroll_request(f, tok["token"], ev))
    refused(f, s, 99, proof(*answer(o, ch)), BAD_REQUEST, "without a TPM challenge outstanding for request 99", tok)


def case_oversized(f):
    o, ev = setup(f)
    tok = f.token()
    ek, cert, ak = ev
    s = tls_connect(f)
    s.sendall(frame(8, 10, enroll_request(f, tok["token"], (ek + b"\0" * 1024, cert, ak))))
    data, _ = read_until_closed(s)
    errs = link_errors(data)
    check(len(errs) == 1 and errs[0][1] == BAD_REQUEST and "over 1024 bytes" in errs[0][2], f"a long EK: {errs}")
    s = tls_connect(f)
    s.sendall(frame(9, 10, enroll_request(f, tok["token"], (ek, b"\x30\x03\x02\x01\x00", ak))))
    data, _ = read_until_closed(s)
    errs = link_errors(data)
    check(len(errs) == 1 and errs[0][1] == TPM_REFUSED and "EK certificate" in errs[0][2],
          f"a certificate that is not one: {errs}")
    s = tls_connect(f)
    ch = challenge(f, s, 10, enroll_request(f, tok["token"], ev))
    secret, attest, sig, pcrs = answer(o, ch)
    refused(f, s, 10, proof(secret, attest + b"\0" * 5000, sig, pcrs), TPM_REFUSED, "over its limit", tok)


def make(tmp):
    f = TpmFleet(tmp)
    inner = f.close

    def close():
        for o in getattr(f, "oracles", []):
            o.close()
        f.oracles = []
        return inner()
    f.close = close
    return f


if __name__ == "__main__":
    if len(sys.argv) == 3:
        ORACLE = sys.argv.pop()
    elif len(sys.argv) == 2:
        ORACLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "tests", "tpm_oracle")
    sys.exit(run_cases(globals(), "sky-tpmp", make, skip=skip))
