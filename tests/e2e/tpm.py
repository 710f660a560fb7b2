#!/usr/bin/env python3
"""TPM-anchored board identity end to end (issue 16): emulated boards with a
TPM 2.0 (fwimage/board.sh --tpm: swtpm behind QEMU's tpm-tis, its EK
certificate signed by a manufacturer CA of the test's own) boot the real
firmware (tests/e2e/e2e.py's image: the agent finds /dev/tpmrm0 and uses it
by default) against a real skyrootd on loopback.

  reboot   the board enrolls with a token, its EK is bound; it is powered
           off and booted again with NO token on its command line and comes
           back online with the same id, its earlier certificate revoked;
           meanwhile a board whose TPM's EK certificate comes from another
           maker's CA is refused, with the reason on its console, in the
           controller's log and nowhere a board for it; with the UKI of the
           second boot allowed (skyctl firmware allow --pcr11, the value
           fwimage/build.sh computed), a third boot from a UKI with another
           command line (so another PCR 11) is quarantined, gets no guest,
           and is released when its firmware is allowed.

usage: tpm.py CASE   (skips, exit 77, without OVMF or swtpm)"""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import BOOT_TIMEOUT, Board, e2e_fleet, ensure_firmware, no_ovmf, start_controller  # noqa: E402
from fleetlib import ROOT, SKYROOTD, check, run_cases, skyctl, wait_for  # noqa: E402

TPM_SH = os.path.join(ROOT, "fwimage", "tpm.sh")


def maker_ca(f, name, board):
    """Make board's TPM (its state where board.sh --tpm keeps it) with an EK
    certificate from maker CA `name`; the CA's PEM (root + issuer)."""
    ca = os.path.join(f.tmp, f"maker-{name}")
    state = os.path.join(f.tmp, "boards", board, "tpm", "state")
    r = subprocess.run([TPM_SH, "setup", state, ca], capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, f"tpm.sh setup {board}: {r.stderr}")
    pem = os.path.join(ca, "manufacturer.pem")
    with open(pem, "w") as out:
        for n in ("rootca.pem", "issuer.pem"):
            out.write(open(os.path.join(ca, n)).read())
    return ca, pem


def board_of(f, bid):
    return [b for b in f.boards_api() if b["id"] == bid][0]


def allow(f, board, name):
    """skyctl firmware allow the PCR 11 build.sh computed for board's UKI."""
    pcr = open(os.path.join(board.dir, "BOOTX64.EFI.pcr11")).read().strip()
    r = skyctl(f, "firmware", "allow", "--pcr11", pcr, "--name", name)
    check(r.returncode == 0, f"firmware allow {name}: {r.stderr}")
    return pcr


def online(f):
    """The ids of the boards the API shows online."""
    return [b["id"] for b in f.boards_api() if b["state"] == "online"]


def case_reboot(f):
    ensure_firmware()
    ca_good, pem_good = maker_ca(f, "good", "tpm1")
    ca_other, _ = maker_ca(f, "other", "tpm2")   # not given to the controller
    r = subprocess.run([SKYROOTD, "tpm-ca", "add", "--state", f.state, pem_good], capture_output=True, text=True)
    check(r.returncode == 0, f"skyrootd tpm-ca add: {r.stderr}")
    start_controller(f)
    tok = f.token(uses=2)
    base = f"skyroot.controller=10.0.2.2:{f.agent_port} skyroot.ca={f.pin}"
    b1 = Board(f, "tpm1", cmdline=f"{base} skyroot.token={tok['token']}", memory=1024,
               extra=["--tpm", "--tpm-ca", ca_good])
    # The other maker's board, at the same time, with a valid token even.
    b2 = Board(f, "tpm2", cmdline=f"{base} skyroot.token={tok['token']}", memory=1024,
               extra=["--tpm", "--tpm-ca", ca_other])
    bid = wait_for(lambda: online(f), BOOT_TIMEOUT, "the TPM board online with its token")[0]
    first = time.time() - b1.t0
    board = [b for b in f.boards_api() if b["id"] == bid][0]
    t = board.get("tpm") or {}
    check(len(t.get("ek_sha256") or "") == 64 and t.get("last_quote_at"), f"its EK is bound, quoted: {t}")
    check("TPM" in b1.console() and "tpm" in b1.console().lower(), "the agent used the board's TPM")
    wait_for(lambda: "EK certificate from an unknown CA" in b2.console(), BOOT_TIMEOUT,
             "the other maker's board to say why it is refused")
    check("TPM evidence refused: EK certificate from an unknown CA" in f.ctl.text(),
          "the controller's log has the reason")
    b2.stop()
    # Power off; boot again with no token: the same board, by its TPM alone.
    # Its UKI (this command line) is the fleet's allowed firmware: the PCR 11
    # build.sh computed for it (board.sh builds it before power-on) must be
    # what the board's stub measures, or the gate would hold the board.
    r = b1.stop()
    check(r.returncode == 0, f"board stop: {r.stderr}")
    wait_for(lambda: not online(f), 120, "the board offline after power-off")
    b1 = Board(f, "tpm1", cmdline=base, memory=1024, extra=["--tpm", "--tpm-ca", ca_good])
    allow(f, b1, "fleet")
    wait_for(lambda: online(f) == [bid], BOOT_TIMEOUT, "the same board online again with no token")
    print(f"TPM board: power-on to online {first:.1f} s with a token, {time.time() - b1.t0:.1f} s by its TPM")
    check(len(f.boards_api()) == 1, f"one board, none for the refused TPM: {[b['id'] for b in f.boards_api()]}")
    check("enrolled again by its TPM" in f.ctl.text(), "the controller says how it came back")
    t2 = board_of(f, bid).get("tpm") or {}
    check(t2.get("ek_sha256") == t.get("ek_sha256"), f"the same EK: {t2}")
    # A UKI with another command line measures another PCR 11: the board
    # comes back by its TPM but quarantined, gets no guest, and is released
    # when its firmware is allowed.
    b1.stop()
    wait_for(lambda: not online(f), 120, "the board offline after power-off")
    b1 = Board(f, "tpm1", cmdline=base + " skyroot.changed=1", memory=1024, extra=["--tpm", "--tpm-ca", ca_good])
    q = wait_for(lambda: board_of(f, bid)["state"] == "quarantined" and board_of(f, bid), BOOT_TIMEOUT,
                 "the board with a changed UKI quarantined")
    why = (q.get("tpm") or {}).get("quarantined") or ""
    check("matches no allowed firmware" in why, f"the reason is shown: {q.get('tpm')}")
    r = skyctl(f, "image", "push", "-", "--name", "qk", "--kind", "kernel", input_bytes=b"k" * 4096)
    check(r.returncode == 0, f"image push: {r.stderr}")
    st, body = f.api("POST", "/v1/guests", {"name": "q1", "board": bid, "kernel": "qk", "memory_bytes": 1 << 27})
    check(st == 409 and "quarantine" in json.dumps(body).lower(), f"no guest on a quarantined board: {st} {body}")
    allow(f, b1, "changed")
    wait_for(lambda: board_of(f, bid)["state"] == "online", 60, "the board released once its firmware is allowed")
    b1.stop()
    check(b1.scratch_unchanged(), "the scratch disk is untouched")


def skip():
    why = no_ovmf()
    if why:
        return why
    for p in ("swtpm", "swtpm_setup", "swtpm_localca"):
        if not shutil.which(p):
            return f"{p} is not installed (deploy/packages/base.txt: swtpm, swtpm-tools)"
    return None


if __name__ == "__main__":
    sys.exit(run_cases(globals(), "sky-e2e-tpm", e2e_fleet, skip=skip))
