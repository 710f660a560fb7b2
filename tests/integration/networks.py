#!/usr/bin/env python3
"""Networks and guests' NICs (docs/api.md "Networks") against a real
skyrootd on loopback, with simulated boards (pending.py's SimBoard: a key
and CSR made with openssl, enrolled by an expectation).

Usage: networks.py CASE
  api      create, list (paged), show by id and name, delete; the errors:
           a duplicate name (409), a VLAN out of range or not a number, a
           bad name, an unknown field (400), a missing network (404)
  roles    a reader lists and shows but cannot create or delete (403), an
           operator can; every change is in the audit log
  skyctl   network create/list/show/delete, guest create --nic, guest show
           with each NIC's MAC, network and VLAN
  nics     MACs: from the controller's --mac-prefix, unique, an operator's
           own kept, a multicast or taken one refused, a network in use
           cannot be deleted (409 naming the guest), the MACs kept across
           a restart and a kill -9, free again once the guest is gone
  order    a simulated board in session receives the guest's order with
           its NICs, in order, each with its MAC and VLAN
  board    the real skyagent on a fixture board whose uplink is a port of
           br0: 'board show' has the bridge, its uplink and link state; a
           board without one takes no guest with NICs (409), 'auto' picks
           the one with; a guest with NICs on an agent whose --bridge does
           not exist fails with a clear error, and the agent keeps running
  tap      in a private network namespace with a bridge (root only, else a
           named skip): the real agent and QEMU run a guest with a NIC;
           its tap is on the bridge (with the network's VLAN where the
           kernel filters VLANs), QEMU has the NIC's MAC, and the tap is
           gone once the guest is deleted"""
import ctypes
import json
import os
import re
import signal
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import (ROOT, SKY_SLOW, Fleet, board_fixture, check, link_frames, pb_fields,  # noqa: E402
                      pids_naming, read_for, role_tokens, run_cases, skyctl, tls_connect, wait_for)
from pending import SimBoard  # noqa: E402

MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def net(f, name, vlan=None):
    body = {"name": name}
    if vlan is not None:
        body["vlan"] = vlan
    st, ans = f.api("POST", "/v1/networks", body)
    check(st == 201, f"network {name} created: {st} {ans}")
    return ans


def error_of(ans):
    return ans["error"]["message"] if isinstance(ans, dict) and "error" in ans else str(ans)


def board_and_kernel(f, serial="SN-NET-1", tail=1):
    """An enrolled simulated board (by an expectation) and a kernel image."""
    st, _ = f.api("POST", "/v1/expectations", {"serial": serial})
    check(st == 201, "expectation")
    b = SimBoard(f, f"b{tail}", serial, f"5b0f4c0e-0000-4000-8000-0000000a{tail:04x}")
    bid = b.ask_issued()
    st, _ = f.api("GET", "/v1/images/vmlinuz")
    if st == 404:
        r = skyctl(f, "image", "push", "-", "--name", "vmlinuz", "--kind", "kernel", input_bytes=b"k" * 1000)
        check(r.returncode == 0, f"image push: {r.stderr}")
    return b, bid


def guest(f, name, board, nics):
    return f.api("POST", "/v1/guests", {"name": name, "board": board, "kernel": "vmlinuz", "memory_bytes": 64 << 20,
                                        "nics": nics})


def case_api(f):
    f.start()
    a = net(f, "prod", 100)
    check(a["id"].startswith("net-") and a["name"] == "prod" and a["vlan"] == 100 and a["created_at"],
          f"the answer: {a}")
    u = net(f, "flat")
    check(u["vlan"] is None, f"no VLAN: untagged (null): {u}")
    net(f, "edge", 4094)
    net(f, "low", 1)
    # Errors.
    st, ans = f.api("POST", "/v1/networks", {"name": "prod", "vlan": 7})
    check(st == 409 and "exists" in error_of(ans), f"duplicate name: {st} {ans}")
    for vlan in (0, 4095, -1, 65536, "100", 1.5):
        st, ans = f.api("POST", "/v1/networks", {"name": "v", "vlan": vlan})
        check(st == 400 and "vlan" in error_of(ans) and "4094" in error_of(ans), f"vlan {vlan!r}: {st} {ans}")
    for name in ("", "-x", ".x", "net-abc", "a b", "x" * 64):
        st, ans = f.api("POST", "/v1/networks", {"name": name})
        check(st == 400 and "name" in error_of(ans), f"name {name!r}: {st} {ans}")
    st, ans = f.api("POST", "/v1/networks", {"name": "z", "mtu": 9000})
    check(st == 400 and "unknown field 'mtu'" in error_of(ans), f"unknown field: {st} {ans}")
    st, ans = f.api("POST", "/v1/networks", {"vlan": 5})
    check(st == 400 and "needs a name" in error_of(ans), f"no name: {st} {ans}")
    st, ans = f.api("POST", "/v1/networks", [1])
    check(st == 400, f"not an object: {st} {ans}")
    # Read by id and by name.
    st, ans = f.api("GET", f"/v1/networks/{a['id']}")
    check(st == 200 and ans["name"] == "prod" and ans["vlan"] == 100, f"by id: {st} {ans}")
    st, ans = f.api("GET", "/v1/networks/prod")
    check(st == 200 and ans["id"] == a["id"], f"by name: {st} {ans}")
    st, ans = f.api("GET", "/v1/networks/nope")
    check(st == 404 and "no network named 'nope'" in error_of(ans), f"missing: {st} {ans}")
    # The list, and its pages.
    st, ans = f.api("GET", "/v1/networks")
    check(st == 200 and sorted(n["name"] for n in ans["networks"]) == ["edge", "flat", "low", "prod"],
          f"list: {st} {ans}")
    seen, token = [], None
    for _ in range(5):
        st, ans = f.api("GET", "/v1/networks?limit=3" + (f"&page_token={token}" if token else ""))
        check(st == 200 and len(ans["networks"]) <= 3, f"a page: {st} {ans}")
        seen += [n["name"] for n in ans["networks"]]
        token = ans.get("next_page_token")
        if not token:
            break
    check(sorted(seen) == ["edge", "flat", "low", "prod"], f"pages cover the list once: {seen}")
    # Delete by name, then by id; a second time 404.
    st, ans = f.api("DELETE", "/v1/networks/flat")
    check(st == 200 and ans == {"id": u["id"], "deleted": True}, f"delete by name: {st} {ans}")
    st, ans = f.api("DELETE", f"/v1/networks/{a['id']}")
    check(st == 200, f"delete by id: {st} {ans}")
    st, ans = f.api("DELETE", "/v1/networks/flat")
    check(st == 404, f"deleted once: {st} {ans}")
    st, ans = f.api("PUT", "/v1/networks/edge")
    check(st == 405, f"PUT: {st} {ans}")


def case_roles(f):
    f.start()
    toks = role_tokens(f)
    net(f, "shared", 10)
    st, ans = f.api("GET", "/v1/networks", token=toks["reader"])
    check(st == 200 and [n["name"] for n in ans["networks"]] == ["shared"], f"reader lists: {st} {ans}")
    st, _ = f.api("GET", "/v1/networks/shared", token=toks["reader"])
    check(st == 200, "reader shows")
    st, ans = f.api("POST", "/v1/networks", {"name": "r"}, token=toks["reader"])
    check(st == 403 and "operator" in error_of(ans), f"reader cannot create: {st} {ans}")
    st, ans = f.api("DELETE", "/v1/networks/shared", token=toks["reader"])
    check(st == 403, f"reader cannot delete: {st} {ans}")
    st, _ = f.api("GET", "/v1/networks", auth=False)
    check(st == 401, "no token: 401")
    st, ans = f.api("POST", "/v1/networks", {"name": "op", "vlan": 20}, token=toks["operator"])
    check(st == 201, f"operator creates: {st} {ans}")
    st, ans = f.api("DELETE", "/v1/networks/op", token=toks["operator"])
    check(st == 200, f"operator deletes: {st} {ans}")
    st, ans = f.api("GET", "/v1/audit?limit=100")
    check(st == 200, f"audit: {st} {ans}")
    rows = [(e["method"], e["path"], e["status"], e["credential"]) for e in ans["entries"]]
    for row in (("POST", "/v1/networks", 201, "admin"), ("POST", "/v1/networks", 201, "c-operator"),
                ("DELETE", "/v1/networks/op", 200, "c-operator"), ("POST", "/v1/networks", 403, "c-reader"),
                ("DELETE", "/v1/networks/shared", 403, "c-reader")):
        check(row in rows, f"audit row {row}: {rows}")


def case_skyctl(f):
    f.start()
    r = skyctl(f, "network", "create", "prod", "--vlan", "100")
    check(r.returncode == 0 and "prod" in r.stdout and "100" in r.stdout and "--nic prod'" in r.stderr,
          f"create: {r.stdout} {r.stderr}")
    r = skyctl(f, "network", "create", "flat")
    check(r.returncode == 0 and "untagged" in r.stdout, f"create untagged: {r.stdout} {r.stderr}")
    r = skyctl(f, "network", "create", "bad", "--vlan", "4095")
    check(r.returncode == 2 and "vlan" in r.stderr, f"--vlan 4095 refused by skyctl: {r.returncode} {r.stderr}")
    r = skyctl(f, "network", "create", "prod")
    check(r.returncode == 1 and "exists" in r.stderr, f"duplicate: {r.returncode} {r.stderr}")
    r = skyctl(f, "network", "list")
    check(r.returncode == 0 and re.search(r"prod\s+100", r.stdout) and re.search(r"flat\s+untagged", r.stdout),
          f"list: {r.stdout}")
    r = skyctl(f, "network", "show", "prod")
    check(r.returncode == 0 and "VLAN" in r.stdout and "100" in r.stdout, f"show: {r.stdout}")
    _, bid = board_and_kernel(f)
    r = skyctl(f, "guest", "create", "--name", "web", "--board", bid, "--kernel", "vmlinuz", "--memory", "64M",
               "--nic", "prod", "--nic", "flat,mac=02:AA:00:00:00:01")
    check(r.returncode == 0, f"guest create --nic: {r.stdout} {r.stderr}")
    r = skyctl(f, "guest", "show", "web")
    lines = [l for l in r.stdout.splitlines() if " on prod " in l or " on flat " in l]
    check(r.returncode == 0 and len(lines) == 2 and "(VLAN 100)" in lines[0] and
          "02:aa:00:00:00:01 on flat (untagged)" in lines[1] and re.search(r"02:53:4b(:[0-9a-f]{2}){3} on prod",
                                                                           lines[0]),
          f"guest show: {r.stdout}")
    r = skyctl(f, "guest", "create", "--name", "x", "--board", bid, "--kernel", "vmlinuz", "--nic", "prod,mtu=9")
    check(r.returncode == 2 and "--nic" in r.stderr, f"a bad --nic: {r.returncode} {r.stderr}")
    r = skyctl(f, "network", "delete", "prod")
    check(r.returncode == 1 and "in use by guest 'web'" in r.stderr, f"delete in use: {r.stderr}")
    r = skyctl(f, "guest", "delete", "web")
    check(r.returncode == 0, f"guest delete: {r.stderr}")
    r = skyctl(f, "network", "delete", "prod")
    check(r.returncode == 0 and "deleted network" in r.stdout, f"delete: {r.stdout} {r.stderr}")


def case_nics(f):
    f.start(extra=["--mac-prefix", "0a:bc:de"])
    net(f, "prod", 100)
    net(f, "flat")
    _, bid = board_and_kernel(f)
    st, g1 = guest(f, "g1", bid, [{"network": "prod"}, {"network": "flat"}, {"network": "prod"}])
    check(st == 201, f"guest with NICs: {st} {g1}")
    macs = [n["mac"] for n in g1["nics"]]
    check([n["network"] for n in g1["nics"]] == ["prod", "flat", "prod"] and
          [n["vlan"] for n in g1["nics"]] == [100, None, 100], f"in order, with their VLANs: {g1['nics']}")
    check(all(MAC_RE.match(m) and m.startswith("0a:bc:de:") for m in macs) and len(set(macs)) == 3,
          f"MACs from the prefix, unique: {macs}")
    st, g2 = guest(f, "g2", bid, [{"network": "prod", "mac": "02:00:00:00:00:AB"}])
    check(st == 201 and g2["nics"][0]["mac"] == "02:00:00:00:00:ab", f"an operator's MAC, canonical: {st} {g2}")
    # Refusals: multicast, zero, taken, twice in one guest, not a MAC,
    # unknown network, too many.
    for nics, code, words in (
            ([{"network": "prod", "mac": "01:00:5e:00:00:01"}], 400, "unicast"),
            ([{"network": "prod", "mac": "00:00:00:00:00:00"}], 400, "unicast"),
            ([{"network": "prod", "mac": "02:00:00:00:00:ab"}], 409, "in use"),
            ([{"network": "prod", "mac": macs[1]}], 409, "in use"),
            ([{"network": "prod", "mac": "02:00:00:00:00:01"}, {"network": "flat", "mac": "02:00:00:00:00:01"}],
             400, "same MAC"),
            ([{"network": "prod", "mac": "02:00:00:00:00"}], 400, "MAC address"),
            ([{"network": "nope"}], 404, "no network named 'nope'"),
            ([{"network": "prod", "vlan": 5}], 400, "unknown field 'vlan'"),
            ([{"network": "prod"}] * 9, 400, "at most 8"),
            ("prod", 400, "nics")):
        st, ans = guest(f, "bad", bid, nics)
        check(st == code and words in error_of(ans), f"{nics}: {st} {ans}")
    st, ans = f.api("POST", "/v1/guests", {"name": "lv", "board": bid, "kernel": "vmlinuz", "backend": "libvirt",
                                           "nics": [{"network": "prod"}]})
    check(st == 400 and "libvirt" in error_of(ans) and "qemu" in error_of(ans), f"libvirt with NICs: {st} {ans}")
    # skyvmm takes NICs (its virtio-net on the agent's taps)
    st, ans = f.api("POST", "/v1/guests", {"name": "sv", "board": bid, "kernel": "vmlinuz", "backend": "skyvmm",
                                           "nics": [{"network": "prod"}]})
    check(st == 201 and ans["backend"] == "skyvmm" and len(ans["nics"]) == 1, f"skyvmm with NICs: {st} {ans}")
    st, _ = f.api("DELETE", "/v1/guests/sv")
    check(st == 200, "guest delete sv")
    st, ans = f.api("GET", "/v1/guests/bad")
    check(st == 404, "no guest left behind by a refusal")
    # A network in use cannot go.
    st, ans = f.api("DELETE", "/v1/networks/flat")
    check(st == 409 and "guest 'g1'" in error_of(ans), f"in use: {st} {ans}")
    st, _ = f.api("GET", "/v1/networks/flat")
    check(st == 200, "still there")
    # A guest without NICs between two with: each listed with its own
    # (the list reads guests and NICs in one query, a row per NIC).
    st, g0 = guest(f, "g0", bid, [])
    check(st == 201 and g0["nics"] == [], f"a guest without NICs: {st} {g0}")
    # Kept across a restart and a kill -9.
    f.ctl.stop()
    f.start(extra=["--mac-prefix", "0a:bc:de"])
    st, ans = f.api("GET", "/v1/guests/g1")
    check(st == 200 and [n["mac"] for n in ans["nics"]] == macs, f"after a restart: {ans}")
    f.ctl.stop(sig=signal.SIGKILL)
    f.start(extra=["--mac-prefix", "0a:bc:de"])
    st, ans = f.api("GET", "/v1/guests")
    by = {g["name"]: [n["mac"] for n in g["nics"]] for g in ans["guests"]}
    check(by == {"g0": [], "g1": macs, "g2": ["02:00:00:00:00:ab"]}, f"after kill -9: {by}")
    st, ans = f.api("GET", "/v1/guests?limit=1")
    check(st == 200 and len(ans["guests"]) == 1 and
          [n["mac"] for n in ans["guests"][0]["nics"]] == by[ans["guests"][0]["name"]], f"a page of one: {ans}")
    # Gone with the guest: the MAC and the network are free again.
    st, _ = f.api("DELETE", "/v1/guests/g1")
    check(st == 200, "guest delete")
    st, ans = guest(f, "g3", bid, [{"network": "prod", "mac": macs[1]}])
    check(st == 201, f"a freed MAC can be given: {st} {ans}")
    st, ans = f.api("DELETE", "/v1/networks/flat")
    check(st == 200, f"flat unused now: {st} {ans}")
    # A prefix that is not locally administered, or multicast: refused at start.
    for bad in ("00:16:3e", "03:00:00", "02:00", "zz:00:00"):
        r = f.start(extra=["--mac-prefix", bad], wait=False)
        rc = r.p.wait(timeout=20)
        check(rc != 0 and "mac-prefix" in r.text(), f"--mac-prefix {bad}: {rc} {r.text()}")


def guest_commands(data):
    """The GuestSpecs of every GuestCommand frame in data, as field dicts
    (their NICs under 12 as a list of field dicts)."""
    out = []
    for env in link_frames(data):
        if 30 not in env:
            continue
        cmd = dict(pb_fields(env[30]))
        fields = pb_fields(cmd[1])
        spec = dict(fields)
        spec[12] = [dict(pb_fields(v)) for k, v in fields if k == 12]
        out.append(spec)
    return out


def case_order(f):
    f.start()
    net(f, "prod", 100)
    net(f, "flat")
    b, bid = board_and_kernel(f)
    s = tls_connect(f, b.crt, b.key)
    s.sendall(struct.pack(">I", 6) + b"\x08\x01\x6a\x02\x08\x01")  # a heartbeat: in session
    data = read_for(s, lambda d: any(13 in e for e in link_frames(d)), timeout=10 * SKY_SLOW)
    check(any(13 in e for e in link_frames(data)), "in session")
    st, g = guest(f, "web", bid, [{"network": "flat", "mac": "02:00:00:00:00:07"}, {"network": "prod"}])
    check(st == 201, f"guest: {st} {g}")
    data = read_for(s, lambda d: guest_commands(d), timeout=10 * SKY_SLOW)
    specs = guest_commands(data)
    check(specs, f"the board got the order: {link_frames(data)}")
    nics = specs[0][12]
    got = [(n.get(1, b"").decode(), n.get(2, 0), n.get(3, b"").decode()) for n in nics]
    want = [("02:00:00:00:00:07", 0, "flat"), (g["nics"][1]["mac"], 100, "prod")]
    check(got == want, f"the NICs in the order: {got}, want {want}")
    s.close()


def case_board(f):
    f.start()
    net(f, "prod", 100)
    root = board_fixture(os.path.join(f.tmp, "board-n1"), "a", "7d1c2b3a-0000-4000-8000-0000000000e1", "n1")
    sysnet = os.path.join(root, "sys", "class", "net")
    os.symlink("../br0", os.path.join(sysnet, "eth0", "master"))
    os.makedirs(os.path.join(sysnet, "br0", "bridge"))
    with open(os.path.join(sysnet, "br0", "operstate"), "w") as fh:
        fh.write("up\n")
    with open(os.path.join(sysnet, "br0", "bridge", "vlan_filtering"), "w") as fh:
        fh.write("1\n")
    tok = f.token()
    p = f.agent("a", root=root, token=tok["token"], hb=1000, name="n1", extra=["--bridge", "skynobr9"])
    board = wait_for(lambda: next((b for b in f.boards() if b["state"] == "online"), None), 20 * SKY_SLOW,
                     "the agent online")
    check(board["bridge"] == {"name": "br0", "uplink": "eth0", "up": True, "uplink_link": True,
                              "vlan_filtering": True}, f"the board's bridge: {board.get('bridge')}")
    check([n.get("bridge") for n in board["nics"]] == ["br0"], f"eth0 on br0: {board['nics']}")
    r = skyctl(f, "board", "show", board["id"])
    check(r.returncode == 0 and "br0 over eth0: up, uplink link up, VLAN filtering on" in r.stdout,
          f"board show: {r.stdout}")
    r = skyctl(f, "image", "push", "-", "--name", "vmlinuz", "--kind", "kernel", input_bytes=b"k" * 1000)
    check(r.returncode == 0, f"image push: {r.stderr}")
    # A board whose inventory has no bridge takes no guest with NICs; auto
    # placement picks one that has.
    root2 = board_fixture(os.path.join(f.tmp, "board-n2"), "a", "7d1c2b3a-0000-4000-8000-0000000000e2", "n2")
    f.agent("a", root=root2, token=f.token()["token"], hb=1000, name="n2")
    other = wait_for(lambda: next((b for b in f.boards() if b["state"] == "online" and b["name"] == "n2"), None),
                     20 * SKY_SLOW, "the second agent online")
    check(other["bridge"] is None, f"no bridge on n2: {other.get('bridge')}")
    st, ans = guest(f, "nope", other["id"], [{"network": "prod"}])
    check(st == 409 and "reports no bridge" in error_of(ans), f"a board with no bridge: {st} {ans}")
    st, ans = f.api("POST", "/v1/guests", {"name": "auto1", "board": "auto", "kernel": "vmlinuz",
                                           "memory_bytes": 64 << 20, "nics": [{"network": "prod"}]})
    check(st == 201 and ans["board"] == board["id"], f"auto: the board with a bridge: {st} {ans}")
    st, _ = f.api("DELETE", "/v1/guests/auto1")
    check(st == 200, "delete auto1")
    st, g = guest(f, "web", board["id"], [{"network": "prod"}])
    check(st == 201, f"guest: {st} {g}")

    def failed():
        st, g = f.api("GET", "/v1/guests/web")
        return g if g["state"] == "failed" else None
    g = wait_for(failed, 30 * SKY_SLOW, "the guest to fail on the board")
    check("no bridge 'skynobr9'" in g["error"] and "--bridge" in g["error"], f"the reason: {g['error']}")
    check(p.p.poll() is None, "the agent keeps running")


CLONE_NEWNET = 0x40000000


def skip(why):
    print(f"SKIP: {why}")
    raise SystemExit(77)


def ip_json(*args):
    r = subprocess.run(["ip", "-j"] + list(args), capture_output=True, text=True)
    return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else []


def case_tap(f):
    if os.geteuid() != 0:
        skip("not root: a private network namespace needs CAP_SYS_ADMIN")
    if ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNET) != 0:
        skip(f"unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())}")
    # From here on this process and what it starts are in the namespace.
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    if subprocess.run(["ip", "link", "add", "brt0", "type", "bridge"], capture_output=True).returncode != 0:
        skip("this kernel cannot make a bridge")
    subprocess.run(["ip", "link", "set", "brt0", "up"], check=True)
    vlan = subprocess.run(["ip", "link", "set", "brt0", "type", "bridge", "vlan_filtering", "1"],
                          capture_output=True).returncode == 0
    if not vlan:
        print("note: this kernel's bridge filters no VLANs: the network is untagged")
    art = subprocess.run([os.path.join(ROOT, "tests", "vmm", "fetch-guest.sh")], capture_output=True, text=True)
    if art.returncode != 0:
        skip(f"no guest kernel (tests/vmm/fetch-guest.sh): {art.stderr[-300:]}")
    art = art.stdout.strip().splitlines()[-1]
    f.start()
    net(f, "prod", 100 if vlan else None)
    for name, kind in (("vk", "kernel"), ("vi", "initrd")):
        r = skyctl(f, "image", "push", os.path.join(art, "vmlinuz" if kind == "kernel" else "initrd.img"),
                   "--name", name, "--kind", kind)
        check(r.returncode == 0, f"image push {name}: {r.stderr}")
    root = board_fixture(os.path.join(f.tmp, "board-t1"), "a", "7d1c2b3a-0000-4000-8000-0000000000f1", "t1")
    os.makedirs(os.path.join(root, "dev", "net"), exist_ok=True)
    os.symlink("/dev/net/tun", os.path.join(root, "dev", "net", "tun"))
    # The fixture's sysfs tells the inventory what the namespace has: its
    # uplink on brt0.
    sysnet = os.path.join(root, "sys", "class", "net")
    os.symlink("../brt0", os.path.join(sysnet, "eth0", "master"))
    os.makedirs(os.path.join(sysnet, "brt0", "bridge"))
    with open(os.path.join(sysnet, "brt0", "operstate"), "w") as fh:
        fh.write("up\n")
    tok = f.token()
    p = f.agent("a", root=root, token=tok["token"], hb=1000, name="t1", extra=["--bridge", "brt0"])
    board = wait_for(lambda: next((b for b in f.boards() if b["state"] == "online"), None), 20 * SKY_SLOW,
                     "the agent online")
    st, g = f.api("POST", "/v1/guests", {"name": "web", "board": board["id"], "kernel": "vk", "initrd": "vi",
                                         "cmdline": "console=ttyS0 panic=-1 quiet", "memory_bytes": 256 << 20,
                                         "nics": [{"network": "prod"}]})
    check(st == 201, f"guest: {st} {g}")
    mac = g["nics"][0]["mac"]
    tap = "sk" + g["id"][-10:] + "n0"

    def running():
        st, x = f.api("GET", "/v1/guests/web")
        if x["state"] == "failed":
            raise SystemExit(f"FAIL tap: the guest failed: {x['error']}")
        return x if x["state"] == "running" else None
    wait_for(running, 90 * SKY_SLOW, "the guest running", interval=0.3)
    links = ip_json("link", "show", "dev", tap)
    check(links and links[0].get("master") == "brt0" and "UP" in links[0].get("flags", []),
          f"tap {tap} up on brt0: {links}")
    check(pids_naming(f"virtio-net-pci,netdev=nic0,mac={mac}".encode()), f"a QEMU with the NIC's MAC {mac}")
    if vlan:
        v = ip_json("-d", "link", "show", "dev", tap)
        vl = json.loads(subprocess.run(["bridge", "-j", "vlan", "show", "dev", tap], capture_output=True,
                                       text=True).stdout or "[]")
        check([x["vlan"] for x in vl[0]["vlans"]] == [100], f"only VLAN 100 on the tap: {vl} {v}")
    st, _ = f.api("DELETE", "/v1/guests/web")
    check(st == 200, "guest delete")
    wait_for(lambda: not ip_json("link", "show", "dev", tap), 30 * SKY_SLOW, f"tap {tap} gone")
    check(p.p.poll() is None, "the agent keeps running")


def make(tmp):
    return Fleet(tmp)


if __name__ == "__main__":
    # tap runs the controller in a network namespace of its own, where the
    # run's PostgreSQL on 127.0.0.1 ($SKY_TEST_PG) cannot be reached.
    sys.exit(run_cases(globals(), "networks", make,
                       sqlite_only={"tap": "skyrootd runs in a network namespace without the run's PostgreSQL"}))
