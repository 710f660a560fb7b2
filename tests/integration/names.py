#!/usr/bin/env python3
"""Integration tests of names (docs/syntax.md, "Names"): every way a name
reaches the controller follows the one rule (sky_name_ok), and a board's
name taken from its host name does too.

Usage: names.py CASE (binaries as in fleet.py).
"""
import os
import re
import shutil
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import FIXTURES, Fleet, check, run_cases, wait_for  # noqa: E402
from lists import call, patch  # noqa: E402  (requests with raw bodies and headers)

# The rule, written again independently of the C code, to check the output.
RULE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,62}\Z")

# Refused for every kind; then what each kind adds (its id prefix).
BAD = [".web", "-web", "", "web 1", "web/1", "w\u00e9b", "x" * 64, "a:b"]
GOOD = ["web-1", "Rack1.07", "_x", "x" * 63, "web."]


def board_root(f, src, hostname):
    dst = os.path.join(f.tmp, f"board-{src}")
    shutil.copytree(os.path.join(FIXTURES, "boards", src), dst, symlinks=True)
    with open(os.path.join(dst, "proc", "sys", "kernel", "hostname"), "w") as out:
        out.write(hostname + "\n")
    return dst


def case_hostnames(f):
    """A board chooses its host name; the name the controller makes of it
    follows the rule: no leading '.' or '-', never the id prefix 'brd-'."""
    f.start()
    tok = f.token(uses=3)
    names = {}
    for src, host in (("a", "brd-0000ffff"), ("c", "(none)"), ("b", "-.Rack_7.Local")):
        f.agent(src, token=tok["token"], root=board_root(f, src, host))
        wait_for(lambda: len(f.online()) == len(names) + 1, 20, f"board {src} online")
        new = [b for b in f.boards() if b["id"] not in names]
        check(len(new) == 1, f"one new board: {new}")
        names[new[0]["id"]] = new[0]["name"]
        check(RULE.match(new[0]["name"]) and not new[0]["name"].startswith("brd-"),
              f"host name {host!r} gave the name {new[0]['name']!r}")
    ids = list(names)
    check(names[ids[0]] == "board", f"'brd-0000ffff' is no board name: {names[ids[0]]!r}")
    check(names[ids[1]] == "board-" + ids[1][4:10], f"'(none)' and 'board' taken: {names[ids[1]]!r}")
    check(names[ids[2]] == "rack_7.local", f"'-.Rack_7.Local': {names[ids[2]]!r}")
    for bid, name in names.items():
        st, body = f.api("GET", f"/v1/boards/{name}")
        check(st == 200 and body["id"] == bid, f"board by its name {name!r}: {st} {body}")


def case_everywhere(f):
    """The same names refused and accepted by each way in: an image upload,
    a guest, a credential, and PATCH of a board, an image and a guest."""
    f.start()
    tok = f.token(uses=1)
    # No QEMU on the board: the guests made here are never run.
    f.agent("a", token=tok["token"], extra=["--qemu", "/nonexistent/qemu-system-x86_64"])
    wait_for(lambda: len(f.online()) == 1, 20, "board online")
    bid = f.boards()[0]["id"]

    def upload(name):
        path = "/v1/images?" + urllib.parse.urlencode({"name": name, "kind": "disk"})
        st, _, body = call(f, "POST", path, data=b"x" * 4096,
                           headers={"Content-Type": "application/octet-stream"})
        return st, body

    for name in BAD + ["img-1"]:
        st, body = upload(name)
        check(st == 400 and body["error"]["code"] == "bad_request", f"image named {name!r}: {st} {body}")
    for name in GOOD + ["brd-1", "gst-1"]:
        st, body = upload(name)
        check(st == 201 and body["name"] == name, f"image named {name!r}: {st} {body}")
        iid = body["id"]
    st, body = upload("kernel")
    check(st == 201, f"the kernel image: {st} {body}")

    # A guest: a bad name is 400 before anything else is looked at.
    for name in BAD + ["gst-web"]:
        st, body = f.api("POST", "/v1/guests", {"name": name, "kernel": "kernel", "board": bid, "memory_bytes": 16 << 20})
        check(st == 400 and ("name" in body["error"]["message"] or "over its limit" in body["error"]["message"]),
              f"guest named {name!r}: {st} {body}")
    gid = None
    for name in ["web.", "brd-web", "img-web"]:
        st, body = f.api("POST", "/v1/guests", {"name": name, "kernel": "kernel", "board": bid, "memory_bytes": 16 << 20})
        check(st == 201 and body["name"] == name, f"guest named {name!r}: {st} {body}")
        gid = body["id"]

    # Credentials have no id: any prefix is a name.
    for name in BAD:
        st, body = f.api("POST", "/v1/credentials", {"name": name, "role": "reader"})
        check(st == 400 and "name" in body["error"]["message"], f"credential named {name!r}: {st} {body}")
    for name in GOOD + ["skc-1", "brd-1"]:
        st, body = f.api("POST", "/v1/credentials", {"name": name, "role": "reader"})
        check(st == 201 and body["name"] == name, f"credential named {name!r}: {st} {body}")

    # PATCH: the kind's own prefix is refused, the others' are names.
    for path, prefix, others in ((f"/v1/boards/{bid}", "brd-", ["img-2", "gst-2"]),
                                 (f"/v1/images/{iid}", "img-", ["brd-3", "gst-3"]),
                                 (f"/v1/guests/{gid}", "gst-", ["brd-4", "img-4"])):
        for name in BAD + [prefix + "x"]:
            st, _, body = patch(f, path, {"name": name})
            check(st == 400 and body["error"]["code"] == "bad_request", f"PATCH {path} {name!r}: {st} {body}")
        for name in ["ok.", "y" * 63] + others:  # (uploads took "x" * 63)
            st, _, body = patch(f, path, {"name": name})
            check(st == 200 and body["name"] == name, f"PATCH {path} {name!r}: {st} {body}")


def main():
    return run_cases(globals(), "skyn", Fleet)


if __name__ == "__main__":
    sys.exit(main())
