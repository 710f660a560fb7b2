#!/usr/bin/env python3
"""Integration tests of the Redfish service at /redfish/v1 (docs/api.md,
"Redfish"), driven by Debian's python3-sushy (the library OpenStack Ironic
drives servers with) and redfishtool, unmodified, against simulated boards
on loopback.

Usage: redfish.py CASE (binaries as in fleet.py).  A board that may be
reset runs its agent with --allow-reboot --reboot-command SCRIPT: the
script (in the case's temporary folder) records that it ran; nothing
reboots the test host.
"""
import base64
import json
import os
import shutil
import ssl
import stat
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import Fail, Fleet, check, reader_token, run_cases, wait_for  # noqa: E402

# Debian's python3-sushy lives in /usr/lib/python3/dist-packages, where a
# python3 from elsewhere on PATH (pyenv) does not look.
if os.path.isdir("/usr/lib/python3/dist-packages") and "/usr/lib/python3/dist-packages" not in sys.path:
    sys.path.append("/usr/lib/python3/dist-packages")
try:
    import sushy
    from sushy import auth as sushy_auth
    from sushy import exceptions as sushy_exc
except ImportError:  # reported as a skip by skip()
    sushy = None
REDFISHTOOL = shutil.which("redfishtool")


def base(f):
    return f"https://127.0.0.1:{f.api_port}"


def raw(f, method, path, body=None, user=None, password=None, headers=None):
    """A request by hand: (status, headers, JSON or bytes)."""
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    req = urllib.request.Request(base(f) + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if user is not None:
        cred = base64.b64encode(f"{user}:{password}".encode()).decode()
        req.add_header("Authorization", f"Basic {cred}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, context=f.sslctx, timeout=15) as r:
            b = r.read()
            return r.status, r.headers, (json.loads(b) if b else None)
    except urllib.error.HTTPError as e:
        b = e.read()
        try:
            return e.code, e.headers, json.loads(b)
        except ValueError:
            return e.code, e.headers, b


def check_redfish_error(body, status, what):
    check(isinstance(body, dict) and "error" in body, f"{what}: {status} without a Redfish error body: {body}")
    err = body["error"]
    check(err.get("code", "").startswith("Base."), f"{what}: error code {err.get('code')}")
    check(err.get("message"), f"{what}: no message")
    info = err.get("@Message.ExtendedInfo")
    check(isinstance(info, list) and info and info[0].get("MessageId") == err["code"],
          f"{what}: @Message.ExtendedInfo {info}")
    return err


def reboot_script(f, name):
    """A --reboot-command that records its environment in a file."""
    out = os.path.join(f.tmp, f"rebooted-{name}")
    path = os.path.join(f.tmp, f"reboot-{name}.sh")
    with open(path, "w") as fp:
        fp.write(f"#!/bin/sh\necho \"$SKY_REBOOT_TYPE $SKY_REBOOT_NETWORK\" >> {out}\n")
    os.chmod(path, stat.S_IRWXU)
    return path, out


def fleet_with(f, boards):
    """Start the controller and agents: boards maps a fixture board to
    extra agent flags.  Returns {fixture board: its /v1/boards entry}."""
    f.start()
    tok = f.token(uses=len(boards))
    for b, extra in boards.items():
        f.agent(b, token=tok["token"], extra=extra, name=b)
    wait_for(lambda: len(f.online()) == len(boards), 30, f"{len(boards)} boards online")
    by_host = {}
    for b in f.boards():
        by_host[b["hostname"]] = b
    return by_host


def connect(f, user="admin", password=None, session=False):
    a = (sushy_auth.SessionAuth if session else sushy_auth.BasicAuth)(user, password or f.admin)
    return sushy.Sushy(base(f) + "/redfish/v1", auth=a, verify=f.ca_file)


def system_of(root, board_id):
    return root.get_system(f"/redfish/v1/Systems/{board_id}")


# --------------------------------------------------------------------------

def case_sushy_basic(f):
    """Basic auth: list systems, read memory, CPUs, power state and
    identity; set the boot override and read it back; a reset a board
    without --allow-reboot refuses."""
    fleet_with(f, {"a": [], "b": []})
    boards = {b["id"]: b for b in f.boards()}
    root = connect(f)
    coll = root.get_system_collection()
    check(sorted(coll.members_identities) == sorted(f"/redfish/v1/Systems/{i}" for i in boards),
          f"members {coll.members_identities} vs boards {list(boards)}")
    for bid, b in boards.items():
        s = system_of(root, bid)
        check(s.identity == bid, f"Id {s.identity}")
        check(s.uuid == b["uuid"], f"UUID {s.uuid} vs {b['uuid']}")
        check(s.serial_number == b["dmi"]["serial"], f"serial {s.serial_number} vs {b['dmi']}")
        check(s.manufacturer == b["dmi"]["vendor"] and s.json["Model"] == b["dmi"]["product"], f"{s.manufacturer} {s.json}")
        check(s.memory_summary.size_gib == b["memory_bytes"] // (1 << 30),
              f"memory {s.memory_summary.size_gib} GiB vs {b['memory_bytes']} bytes")
        check(s.processors.summary.count == b["cpus"], f"CPUs {s.processors.summary.count} vs {b['cpus']}")
        check(s.json["ProcessorSummary"] == {"Count": b["cpus"], "LogicalProcessorCount": b["cpus"],
                                             "Model": b["cpu_model"]}, f"ProcessorSummary {s.json['ProcessorSummary']}")
        check(s.power_state == sushy.PowerState.ON, f"power state {s.power_state}")
        check(s.status.state == sushy.State.ENABLED, f"status {s.status.state}")
    bid = sorted(boards)[0]
    s = system_of(root, bid)
    check(s.boot.target == sushy.BootSource.NONE, f"boot target {s.boot.target}")
    s.set_system_boot_options(sushy.BootSource.PXE, enabled=sushy.BootSourceOverrideEnabled.CONTINUOUS)
    s = system_of(root, bid)
    check(s.boot.target == sushy.BootSource.PXE, f"boot target after PATCH {s.boot.target}")
    check(s.boot.enabled == sushy.BootSourceOverrideEnabled.CONTINUOUS, f"enabled {s.boot.enabled}")
    other = system_of(root, sorted(boards)[1])
    check(other.boot.target == sushy.BootSource.NONE, "the other board's override is untouched")
    s.set_system_boot_options(sushy.BootSource.NONE)
    check(system_of(root, bid).boot.target == sushy.BootSource.NONE, "None clears the override")
    # The reset types on offer are the honest ones.
    check(s.get_allowed_reset_system_values() == {sushy.ResetType.FORCE_RESTART, sushy.ResetType.GRACEFUL_RESTART},
          f"allowed resets {s.get_allowed_reset_system_values()}")
    try:
        s.reset_system(sushy.ResetType.FORCE_RESTART)
        raise Fail("a board without --allow-reboot was reset")
    except sushy_exc.HTTPError as e:
        check(e.status_code == 409, f"reset refused with {e.status_code}")
        check("--allow-reboot" in str(e), f"the refusal says why: {e}")
    # ForceOff is not on offer: sushy refuses it before asking, and the
    # service answers a client that asks anyway with the allowed values.
    st, _, body = raw(f, "POST", f"/redfish/v1/Systems/{bid}/Actions/ComputerSystem.Reset", {"ResetType": "ForceOff"},
                      "admin", f.admin)
    check(st == 400, f"ForceOff: {st}")
    check("ForceRestart" in check_redfish_error(body, st, "ForceOff")["message"], f"ForceOff: {body}")


def case_sushy_session(f):
    """Session auth: a session's X-Auth-Token works until it is deleted;
    the reader's session may read but not reset."""
    fleet_with(f, {"a": []})
    root = connect(f, session=True)
    bid = list(f.online())[0]
    check(system_of(root, bid).power_state == sushy.PowerState.ON, "power state over a session")
    st, _, sessions = raw(f, "GET", "/redfish/v1/SessionService/Sessions", user="admin", password=f.admin)
    check(st == 200 and sessions["Members@odata.count"] == 1, f"sessions: {st} {sessions}")
    # A session by hand: the token in X-Auth-Token, the session at Location.
    st, h, body = raw(f, "POST", "/redfish/v1/SessionService/Sessions", {"UserName": "admin", "Password": f.admin})
    check(st == 201 and h["X-Auth-Token"] and h["Location"].startswith("/redfish/v1/SessionService/Sessions/"),
          f"session create: {st} {dict(h)} {body}")
    tok, loc = h["X-Auth-Token"], h["Location"]
    st, _, _ = raw(f, "GET", "/redfish/v1/Systems", headers={"X-Auth-Token": tok})
    check(st == 200, f"systems with the session token: {st}")
    st, _, _ = raw(f, "DELETE", loc, headers={"X-Auth-Token": tok})
    check(st == 200, f"session delete: {st}")
    st, h, body = raw(f, "GET", "/redfish/v1/Systems", headers={"X-Auth-Token": tok})
    check(st == 401 and h["WWW-Authenticate"], f"a deleted session: {st}")
    check_redfish_error(body, st, "deleted session")
    # The reader: reads over a session, cannot reset or patch.  (Over a
    # session sushy answers a 403 by logging in again and retrying, and
    # then does not look at the retry's status: the refusals are checked
    # with Basic auth, where it raises.)
    rroot = connect(f, "reader", reader_token(f), session=True)
    check(system_of(rroot, bid).power_state == sushy.PowerState.ON, "the reader reads")
    rs = system_of(connect(f, "reader", reader_token(f)), bid)
    try:
        rs.reset_system(sushy.ResetType.FORCE_RESTART)
        raise Fail("the reader reset a board")
    except sushy_exc.HTTPError as e:
        check(e.status_code == 403, f"the reader's reset: {e.status_code}")
    try:
        rs.set_system_boot_options(sushy.BootSource.PXE)
        raise Fail("the reader patched a board")
    except sushy_exc.HTTPError as e:
        check(e.status_code == 403, f"the reader's PATCH: {e.status_code}")
    # The reader may end its own session only.
    st, h, _ = raw(f, "POST", "/redfish/v1/SessionService/Sessions", {"UserName": "admin", "Password": f.admin})
    check(st == 201, f"admin session: {st}")
    st, _, body = raw(f, "DELETE", h["Location"], user="reader", password=reader_token(f))
    check(st == 403, f"the reader ends the admin's session: {st} {body}")
    st, rh, _ = raw(f, "POST", "/redfish/v1/SessionService/Sessions", {"UserName": "reader", "Password": reader_token(f)})
    st, _, _ = raw(f, "DELETE", rh["Location"], headers={"X-Auth-Token": rh["X-Auth-Token"]})
    check(st == 200, f"the reader ends its own session: {st}")
    # A session login with the wrong token: 401.
    st, _, body = raw(f, "POST", "/redfish/v1/SessionService/Sessions", {"UserName": "admin", "Password": "nope"})
    check(st == 401, f"wrong login: {st}")
    check_redfish_error(body, st, "wrong login")
    # The reader's token under the admin's name is wrong too.
    st, _, _ = raw(f, "POST", "/redfish/v1/SessionService/Sessions",
                   {"UserName": "admin", "Password": reader_token(f)})
    check(st == 401, f"the reader token as admin: {st}")


def case_reset_accepted(f):
    """A board started with --allow-reboot carries out a reset: its
    --reboot-command runs (instead of reboot(2)) with the reset type and
    the network boot override."""
    script, out = reboot_script(f, "a")
    fleet_with(f, {"a": ["--allow-reboot", "--reboot-command", script]})
    bid = list(f.online())[0]
    root = connect(f)
    s = system_of(root, bid)
    s.set_system_boot_options(sushy.BootSource.PXE, enabled=sushy.BootSourceOverrideEnabled.ONCE)
    s.reset_system(sushy.ResetType.FORCE_RESTART)
    wait_for(lambda: os.path.exists(out), 15, "the board's reboot command to run")
    check(open(out).read() == "force 1\n", f"reboot command saw {open(out).read()!r}")
    # "Once" is used up by that boot.
    check(system_of(root, bid).boot.target == sushy.BootSource.NONE, "the Once override is used up")
    s.reset_system(sushy.ResetType.GRACEFUL_RESTART)
    wait_for(lambda: open(out).read().count("\n") == 2, 15, "the second reboot")
    check(open(out).read() == "force 1\ngraceful 0\n", f"reboot command saw {open(out).read()!r}")
    wait_for(lambda: "rebooting on the controller's order" in f.ctl.text(), 10, "the board's answer in the log")


def redfishtool(f, *args):
    cmd = [REDFISHTOOL, "-r", f"127.0.0.1:{f.api_port}", "-u", "admin", "-p", f.admin, "-S", "Always"] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def case_redfishtool(f):
    """redfishtool: Systems lists the boards; Systems -1 reset reboots the
    only one; a wrong password fails."""
    script, out = reboot_script(f, "a")
    fleet_with(f, {"a": ["--allow-reboot", "--reboot-command", script]})
    bid = list(f.online())[0]
    r = redfishtool(f, "Systems")
    check(r.returncode == 0, f"redfishtool Systems: {r.returncode} {r.stdout} {r.stderr}")
    listed = json.loads(r.stdout)
    check([m["@odata.id"] for m in listed["Members"]] == [f"/redfish/v1/Systems/{bid}"], f"Systems: {listed}")
    r = redfishtool(f, "Systems", "-1", "get")
    check(r.returncode == 0 and json.loads(r.stdout)["Id"] == bid, f"Systems -1 get: {r.stdout} {r.stderr}")
    r = redfishtool(f, "Systems", "-1", "reset", "ForceRestart")
    check(r.returncode == 0, f"redfishtool Systems -1 reset: {r.returncode} {r.stdout} {r.stderr}")
    wait_for(lambda: os.path.exists(out), 15, "the board's reboot command to run")
    check(open(out).read() == "force 0\n", f"reboot command saw {open(out).read()!r}")
    # A reset type the board cannot do is refused (redfishtool reads the
    # allowed values first) and sends no order.
    r = redfishtool(f, "Systems", "-1", "reset", "ForceOff")
    check(r.returncode != 0 and "not supported" in r.stderr, f"reset ForceOff: {r.returncode} {r.stderr}")
    # Session login: redfishtool logs in, uses the X-Auth-Token, logs out.
    r = redfishtool(f, "-A", "Session", "Systems", "-1", "get")
    check(r.returncode == 0 and json.loads(r.stdout)["Id"] == bid, f"-A Session: {r.stdout} {r.stderr}")
    st, _, sessions = raw(f, "GET", "/redfish/v1/SessionService/Sessions", user="admin", password=f.admin)
    check(sessions["Members@odata.count"] == 0, f"redfishtool left its session: {sessions}")
    check(open(out).read() == "force 0\n", f"reboot command saw {open(out).read()!r}")
    r = subprocess.run([REDFISHTOOL, "-r", f"127.0.0.1:{f.api_port}", "-u", "admin", "-p", "wrong", "-S", "Always",
                        "Systems"], capture_output=True, text=True, timeout=60)
    check(r.returncode != 0, f"redfishtool with a wrong password: {r.returncode} {r.stdout}")


def case_errors(f):
    """Redfish's errors: 401 with WWW-Authenticate, 403 for the reader,
    404, 405 with Allow, 400 for a bad PATCH; the service root is public."""
    fleet_with(f, {"a": []})
    bid = list(f.online())[0]
    st, h, root = raw(f, "GET", "/redfish/v1/")
    check(st == 200 and root["Systems"]["@odata.id"] == "/redfish/v1/Systems" and
          root["Links"]["Sessions"]["@odata.id"] == "/redfish/v1/SessionService/Sessions", f"root: {st} {root}")
    check(h["OData-Version"] == "4.0", f"OData-Version {h['OData-Version']}")
    st, _, v = raw(f, "GET", "/redfish")
    check(st == 200 and v == {"v1": "/redfish/v1/"}, f"/redfish: {st} {v}")
    for user, pw, what in (("admin", "wrong", "wrong password"), ("reader", f.admin, "admin token as reader"),
                           ("root", f.admin, "unknown user"), (None, None, "no credentials")):
        st, h, body = raw(f, "GET", "/redfish/v1/Systems", user=user, password=pw)
        check(st == 401, f"{what}: {st}")
        check(h["WWW-Authenticate"].startswith("Basic"), f"{what}: WWW-Authenticate {h['WWW-Authenticate']}")
        check_redfish_error(body, st, what)
    # Guesses are throttled as wrong bearer tokens are: after the three
    # above, a wrong login waits (50 ms doubling per recent failure).
    t0 = time.monotonic()
    st, _, _ = raw(f, "POST", "/redfish/v1/SessionService/Sessions", {"UserName": "admin", "Password": "guess"})
    waited = time.monotonic() - t0
    check(st == 401 and waited >= 0.3, f"a fourth wrong guess: {st} after {waited:.3f} s")
    st, _, body = raw(f, "GET", "/redfish/v1/Systems", user="reader", password=reader_token(f))
    check(st == 200 and body["Members@odata.count"] == 1, f"reader list: {st} {body}")
    st, _, body = raw(f, "POST", f"/redfish/v1/Systems/{bid}/Actions/ComputerSystem.Reset",
                      {"ResetType": "ForceRestart"}, "reader", reader_token(f))
    check(st == 403, f"reader reset: {st}")
    check_redfish_error(body, st, "reader reset")
    st, _, body = raw(f, "GET", "/redfish/v1/Systems/no-such-board", user="admin", password=f.admin)
    check(st == 404, f"unknown system: {st}")
    check_redfish_error(body, st, "unknown system")
    st, _, body = raw(f, "GET", "/redfish/v1/Chassis", user="admin", password=f.admin)
    check(st == 404, f"unknown resource: {st}")
    st, h, body = raw(f, "DELETE", f"/redfish/v1/Systems/{bid}", user="admin", password=f.admin)
    check(st == 405 and h["Allow"] == "GET, PATCH", f"DELETE a system: {st} {h['Allow']}")
    check_redfish_error(body, st, "405")
    st, h, body = raw(f, "GET", f"/redfish/v1/Systems/{bid}/Actions/ComputerSystem.Reset", user="admin",
                      password=f.admin)
    check(st == 405 and h["Allow"] == "POST", f"GET the reset action: {st} {h['Allow']}")
    for bad in ({"Boot": {"BootSourceOverrideTarget": "Cd"}}, {"Boot": {"Foo": 1}}, {"AssetTag": "x"}, b"{",
                {"Boot": {"BootSourceOverrideEnabled": "Always"}}):
        st, _, body = raw(f, "PATCH", f"/redfish/v1/Systems/{bid}", bad, "admin", f.admin)
        check(st == 400, f"PATCH {bad}: {st} {body}")
        check_redfish_error(body, st, f"PATCH {bad}")
    st, _, body = raw(f, "POST", f"/redfish/v1/Systems/{bid}/Actions/ComputerSystem.Reset", {}, "admin", f.admin)
    check(st == 400, f"reset without ResetType: {st}")
    # A board that is offline cannot be reset, and says so.
    for p in f.procs[1:]:
        p.stop()
    wait_for(lambda: not f.online(), 40, "the board offline")
    st, _, s = raw(f, "GET", f"/redfish/v1/Systems/{bid}", user="admin", password=f.admin)
    check(st == 200 and s["PowerState"] is None and s["Status"]["State"] == "UnavailableOffline",
          f"offline board: {s.get('PowerState')} {s.get('Status')}")
    st, _, body = raw(f, "POST", f"/redfish/v1/Systems/{bid}/Actions/ComputerSystem.Reset",
                      {"ResetType": "ForceRestart"}, "admin", f.admin)
    check(st == 409 and "offline" in check_redfish_error(body, st, "offline reset")["message"], f"offline reset: {st}")


def skip():
    if sushy is None:
        return "python3-sushy is not installed (deploy/deps.sh installs it from deploy/packages/cli.txt)"
    if not REDFISHTOOL and sys.argv[1:] == ["redfishtool"]:
        return "redfishtool is not installed (deploy/deps.sh installs it from deploy/packages/cli.txt)"
    return None


def main():
    # requests lets these override the CA a client is given (verify=):
    # sushy must check the controller's certificate against its CA.
    for k in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        os.environ.pop(k, None)
    return run_cases(globals(), "skyredfish", Fleet, skip=skip)


if __name__ == "__main__":
    sys.exit(main())
