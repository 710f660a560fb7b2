#!/usr/bin/env python3
"""Integration tests of the API's lists (docs/api.md, "Lists"): limit,
page_token, next_page_token, the order by id, the filters, and refused
query parameters; and skyctl's list commands over pages.

Usage: lists.py CASE (binaries as in fleet.py).
"""
import base64
import json
import os
import socket
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import Fleet, check, run_cases, skyctl, sqlq, wait_for  # noqa: E402


def get(f, path, **query):
    q = ("?" + urllib.parse.urlencode(query)) if query else ""
    return f.api("GET", path + q)


def refused(f, path, needle, **query):
    st, body = get(f, path, **query)
    check(st == 400 and body["error"]["code"] == "bad_request" and needle in body["error"]["message"],
          f"GET {path}?{query}: want 400 naming {needle!r}, got {st} {body}")
    return body


def call(f, method, path, data=None, headers=None, token=None):
    """(status, headers, body as JSON or bytes) of one request."""
    st, hdrs, raw = f.request(method, path, data, headers, token=token)
    try:
        return st, hdrs, json.loads(raw)
    except ValueError:
        return st, hdrs, raw


def make_tokens(f, n):
    ids = []
    for _ in range(n):
        ids.append(f.token(uses=1)["id"])
    return ids


# --------------------------------------------------------------------------
# cases

def case_paging(f):
    """250 tokens, pages of 100: every one seen once, in the order of ids;
    the last page has no next_page_token; skyctl follows the pages."""
    f.start()
    made = make_tokens(f, 250)
    seen, token, pages = [], None, []
    while True:
        q = {"limit": 100}
        if token:
            q["page_token"] = token
        st, body = get(f, "/v1/tokens", **q)
        check(st == 200, f"page {len(pages)}: {st} {body}")
        pages.append(len(body["tokens"]))
        seen += [t["id"] for t in body["tokens"]]
        token = body.get("next_page_token")
        if token is None:
            break
        check(isinstance(token, str) and token, f"next_page_token {token!r}")
    check(pages == [100, 100, 50], f"page sizes {pages}")
    check(seen == sorted(made), "every token once, in the order of their ids")
    # The default page is 100; a list that fits has no next_page_token.
    st, body = get(f, "/v1/tokens")
    check(st == 200 and len(body["tokens"]) == 100 and "next_page_token" in body, f"default page: {len(body['tokens'])}")
    st, body = get(f, "/v1/tokens", limit=1000)
    check(st == 200 and len(body["tokens"]) == 250 and "next_page_token" not in body, "limit=1000: all, no token")
    # skyctl follows every page; -o json is the API's object with all of them.
    r = skyctl(f, "token", "list", "--no-headers")
    check(r.returncode == 0 and [l.split()[0] for l in r.stdout.splitlines()] == sorted(made),
          f"skyctl token list: {r.returncode} {r.stderr} {r.stdout[:300]}")
    r = skyctl(f, "-o", "json", "token", "list")
    out = json.loads(r.stdout)
    check(r.returncode == 0 and isinstance(out, dict) and [t["id"] for t in out["tokens"]] == sorted(made)
          and "next_page_token" not in out, f"skyctl -o json token list: {r.stdout[:200]}")
    # --limit prints one page and the token of the next, which --page-token takes.
    r = skyctl(f, "-o", "json", "token", "list", "--limit", "100")
    out = json.loads(r.stdout)
    check(r.returncode == 0 and len(out["tokens"]) == 100 and out.get("next_page_token"), "skyctl --limit 100 -o json")
    r2 = skyctl(f, "token", "list", "--no-headers", "--limit", "100", "--page-token", out["next_page_token"])
    check(r2.returncode == 0 and [l.split()[0] for l in r2.stdout.splitlines()] == sorted(made)[100:200]
          and "--page-token" in r2.stderr, f"skyctl --page-token: {r2.returncode} {r2.stderr}")


def case_forged_page_token(f):
    """A page token this list did not give is a 400, never a crash or
    another page."""
    f.start()
    make_tokens(f, 3)
    st, body = get(f, "/v1/tokens", limit=1)
    good = body["next_page_token"]
    raw = base64.urlsafe_b64decode(good + "=" * (-len(good) % 4))
    check(raw.startswith(b"p1:tokens:tok-"), f"the token's content {raw!r}")
    # The same content with a made-up MAC, or none.
    for mac in (b"", b"\0" * 16, raw[-16:][::-1]):
        forged = base64.urlsafe_b64encode(raw[:-16] + mac).decode().rstrip("=")
        st, body = get(f, "/v1/tokens", page_token=forged)
        check(st == 400 and "page_token" in body["error"]["message"], f"MAC {mac!r}: {st} {body}")

    def b64(s):
        return base64.urlsafe_b64encode(s.encode()).decode().rstrip("=")
    for forged in ["", "x", "!!!!", good + "A", good[:-1], good.upper(), b64("p1:boards:brd-00000000"),
                   b64("p1:tokens:"), b64("p1:tokens:brd-1234"), b64("p1:tokens:tok-12'; DROP TABLE tokens"),
                   b64("p2:tokens:tok-00000000"), b64("p1:tokens:tok-" + "a" * 200), "A" * 5000,
                   good + "==", b64("p1:tokens:tok-1\x00")]:
        st, body = get(f, "/v1/tokens", page_token=forged)
        if st == 414 or (st == 400 and body["error"]["code"] != "bad_request"):
            continue  # too long for the HTTP layer: refused before the list
        check(st == 400 and "page_token" in body["error"]["message"], f"forged {forged[:60]!r}: {st} {body}")
    # A token of another list is refused by this one.
    st, body = get(f, "/v1/images", page_token=good)
    check(st == 400 and "page_token" in body["error"]["message"], f"tokens' page token on images: {st} {body}")
    # The controller still answers, and the good token works after a restart.
    st, body = get(f, "/v1/tokens", page_token=good)
    check(st == 200 and len(body["tokens"]) == 2, f"the good token still works: {st} {body}")
    f.ctl.stop()
    f.start()
    st, body2 = get(f, "/v1/tokens", page_token=good)
    check(st == 200 and body2 == body, f"the token after a restart: {st} {body2}")


def case_unknown_parameter(f):
    """An unknown, repeated or out-of-range parameter is a 400 naming it
    (before, ?limit=1&state=offline on a list was silently ignored)."""
    f.start()
    refused(f, "/v1/images", "'state'", limit=1, state="offline")
    refused(f, "/v1/boards", "'board'", board="x")
    refused(f, "/v1/tokens", "'sort'", sort="id")
    refused(f, "/v1/tokens", "'label'", label="a=b")
    refused(f, "/v1/boards", "label must be", label="=b")
    for bad in ["0", "1001", "-1", "ten", "1e3", ""]:
        refused(f, "/v1/tokens", "limit", limit=bad)
    st, body = f.api("GET", "/v1/tokens?limit=1&limit=2")
    check(st == 400 and "twice" in body["error"]["message"], f"repeated limit: {st} {body}")
    st, body = f.api("GET", "/v1/tokens?limit")
    check(st == 400 and "'limit' needs a value" in body["error"]["message"], f"limit without value: {st} {body}")
    refused(f, "/v1/boards", "state 'asleep'", state="asleep")
    # Still fine: an empty query, a trailing '&'.
    for path in ["/v1/tokens?", "/v1/tokens?limit=5&", "/v1/boards?state=online"]:
        st, body = f.api("GET", path)
        check(st == 200, f"GET {path}: {st} {body}")
    r = skyctl(f, "board", "list", "--state", "asleep")
    check(r.returncode != 0 and "asleep" in r.stderr, f"skyctl --state asleep: {r.returncode} {r.stderr}")


def case_filters(f):
    """state on boards and tokens, board on tokens (by id or name)."""
    f.start()
    tok = f.online_with("a", "b")
    boards = sorted(f.boards(), key=lambda b: b["id"])
    st, body = get(f, "/v1/boards", state="online")
    check(st == 200 and [b["id"] for b in body["boards"]] == [b["id"] for b in boards], f"online: {body}")
    st, body = get(f, "/v1/boards", state="offline")
    check(st == 200 and body["boards"] == [], f"offline: {body}")
    st, body = get(f, "/v1/boards", state="online", limit=1)
    check(st == 200 and [b["id"] for b in body["boards"]] == [boards[0]["id"]] and body.get("next_page_token"),
          f"online, limit 1: {body}")
    # Tokens: one used up (the enrollment's), one revoked, one for a board.
    other = f.token(uses=1)
    st, _ = f.api("DELETE", f"/v1/tokens/{other['id']}")
    check(st == 200, "revoke")
    st, body = f.api("POST", "/v1/tokens", {"uses": 1, "board": boards[1]["name"]})
    check(st == 201, f"a board's token: {st} {body}")
    mine = body["id"]
    st, body = get(f, "/v1/tokens", state="used")
    check(st == 200 and [t["id"] for t in body["tokens"]] == [tok["id"]], f"used: {body}")
    st, body = get(f, "/v1/tokens", state="revoked")
    check(st == 200 and [t["id"] for t in body["tokens"]] == [other["id"]], f"revoked: {body}")
    for key in (boards[1]["id"], boards[1]["name"]):
        st, body = get(f, "/v1/tokens", board=key)
        check(st == 200 and [t["id"] for t in body["tokens"]] == [mine], f"board={key}: {body}")
    st, body = get(f, "/v1/tokens", board="no-such-board")
    check(st == 200 and body["tokens"] == [], f"board=no-such-board: {body}")
    st, body = get(f, "/v1/guests", board=boards[0]["id"], state="running")
    check(st == 200 and body["guests"] == [], f"guests: {body}")
    r = skyctl(f, "token", "list", "--no-headers", "--state", "revoked")
    check(r.returncode == 0 and [l.split()[0] for l in r.stdout.splitlines()] == [other["id"]],
          f"skyctl token list --state revoked: {r.stdout} {r.stderr}")
    r = skyctl(f, "board", "list", "--no-headers", "--state", "online", "--limit", "1")
    check(r.returncode == 0 and len(r.stdout.splitlines()) == 1 and "--page-token" in r.stderr,
          f"skyctl board list --limit 1: {r.stdout} {r.stderr}")


def case_request_id(f):
    """Every error body's request_id is the answer's X-Request-Id and the
    one the controller's log line for the request shows; every answer has
    one, each its own."""
    f.start()
    seen = set()
    rids = {}
    for method, path, data, token in [("GET", "/v1/tokens?limit=0", None, None),
                                      ("GET", "/v1/nothing", None, None),
                                      ("GET", "/v1/tokens", None, "wrong"),
                                      ("PUT", "/v1/tokens", None, None),
                                      ("POST", "/v1/tokens", b"{not json", None),
                                      ("DELETE", "/v1/tokens/tok-00000000", None, None)]:
        st, hdrs, body = call(f, method, path, data=data, token=token,
                              headers={"Content-Type": "application/json"} if data else None)
        rid = hdrs.get("X-Request-Id")
        check(st >= 400 and isinstance(body, dict), f"{method} {path}: {st} {body}")
        err = body["error"]
        check(err.get("code") and err.get("message") and err.get("request_id") == rid and rid.startswith("req-"),
              f"{method} {path}: body {body} header {rid}")
        check(rid not in seen, f"request id {rid} used twice")
        seen.add(rid)
        if token:
            rids[token] = rid
        wait_for(lambda: f"-> {st} (request {rid})" in f.ctl.text(), 5, f"the log line of {rid}")
    rid_401 = rids["wrong"]
    st, hdrs, _ = call(f, "GET", "/v1/tokens")
    check(st == 200 and hdrs.get("X-Request-Id", "").startswith("req-") and hdrs["X-Request-Id"] not in seen,
          "a success has its own X-Request-Id too")
    # The audit log (issue 12, credentials) names a refused request by the
    # same id: one id per request, the HTTP layer's.
    st, _, body = call(f, "GET", "/v1/audit?limit=100")
    mine = [e for e in body["entries"] if e["request_id"] == rid_401]
    check(st == 200 and len(mine) == 1 and mine[0]["status"] == 401 and mine[0]["path"] == "/v1/tokens",
          f"the 401's audit row has its X-Request-Id {rid_401}: {body}")
    # An error of the HTTP layer itself (a malformed request, before any
    # route) names its request too.
    with socket.create_connection(("127.0.0.1", f.api_port), timeout=10) as raw:
        with f.sslctx.wrap_socket(raw, server_hostname="127.0.0.1") as t:
            t.sendall(b"GET /v1/tokens HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
                chunk = t.recv(4096)
                if not chunk:
                    break
                data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    rid = [l.split(b":", 1)[1].strip().decode() for l in head.split(b"\r\n") if l.lower().startswith(b"x-request-id:")]
    body = json.loads(payload)
    check(head.startswith(b"HTTP/1.1 400") and rid and body["error"]["request_id"] == rid[0],
          f"http layer error: {head} {payload}")


def case_location(f):
    """A 201 says where the new thing is."""
    f.start()
    st, hdrs, body = call(f, "POST", "/v1/tokens", data=b'{"uses": 1}', headers={"Content-Type": "application/json"})
    check(st == 201 and hdrs.get("Location") == f"/v1/tokens/{body['id']}", f"token: {st} {hdrs.get('Location')}")
    st, hdrs, body = call(f, "POST", "/v1/images?name=tiny&kind=disk", data=b"x" * 4096,
                          headers={"Content-Type": "application/octet-stream"})
    check(st == 201 and hdrs.get("Location") == f"/v1/images/{body['id']}", f"image: {st} {hdrs.get('Location')} {body}")
    st, _, got = call(f, "GET", hdrs["Location"])
    check(st == 200 and got["id"] == body["id"], f"GET Location: {st} {got}")


def patch(f, path, body, if_match=None):
    headers = {"Content-Type": "application/merge-patch+json"}
    if if_match is not None:
        headers["If-Match"] = if_match
    return call(f, "PATCH", path, data=json.dumps(body).encode(), headers=headers)


def case_patch(f):
    """PATCH of a name, labels and a description, with the etag: a round
    trip, If-Match honoured (412 on a stale one), label filters."""
    f.start()
    f.online_with("a", "b")
    a, b = sorted(f.boards(), key=lambda x: x["id"])
    st, hdrs, got = call(f, "GET", f"/v1/boards/{a['id']}")
    check(st == 200 and got["labels"] == {} and got["description"] == "" and got["etag"] == hdrs.get("ETag"),
          f"GET board: {st} {hdrs.get('ETag')} {got.get('etag')}")
    etag0 = got["etag"]
    # A round trip: rename, label, describe, with the etag just read.
    st, hdrs, got = patch(f, f"/v1/boards/{a['id']}", {"name": "rack1-07", "labels": {"rack": "1", "role": "gpu"},
                                                       "description": "top shelf"}, if_match=etag0)
    check(st == 200 and got["name"] == "rack1-07" and got["labels"] == {"rack": "1", "role": "gpu"}
          and got["description"] == "top shelf" and got["etag"] != etag0 and hdrs.get("ETag") == got["etag"],
          f"PATCH: {st} {got}")
    etag1 = got["etag"]
    st, _, again = call(f, "GET", "/v1/boards/rack1-07")
    check(st == 200 and again["id"] == a["id"] and again["etag"] == etag1 and again["labels"]["role"] == "gpu",
          f"GET by the new name: {st} {again}")
    # A stale etag is 412 and changes nothing.
    st, _, body = patch(f, f"/v1/boards/{a['id']}", {"description": "lost update"}, if_match=etag0)
    check(st == 412 and body["error"]["code"] == "precondition_failed" and etag1 in body["error"]["message"],
          f"stale If-Match: {st} {body}")
    st, _, again = call(f, "GET", f"/v1/boards/{a['id']}")
    check(again["description"] == "top shelf" and again["etag"] == etag1, "the 412 changed nothing")
    # The list carries the same fields (read there for all boards at once).
    st, _, lst = call(f, "GET", "/v1/boards")
    mine = [b for b in lst.get("boards", []) if b.get("id") == a["id"]]
    check(st == 200 and len(mine) == 1 and mine[0]["description"] == "top shelf" and mine[0]["etag"] == etag1
          and mine[0]["labels"] == again["labels"], f"the board in the list: {st} {mine}")
    # Without If-Match the change applies (documented: honoured, not required); null removes a label.
    st, _, got = patch(f, "/v1/boards/rack1-07", {"labels": {"role": None, "zone": "eu-1"}})
    check(st == 200 and got["labels"] == {"rack": "1", "zone": "eu-1"}, f"label merge: {st} {got}")
    # Refusals: a taken name, bad labels, unknown field, nothing to change, no such board.
    st, _, body = patch(f, f"/v1/boards/{b['id']}", {"name": "rack1-07"})
    check(st == 409 and body["error"]["code"] == "conflict", f"taken name: {st} {body}")
    for bad in [{"labels": {"": "x"}}, {"labels": {"a b": "x"}}, {"labels": {"k": 5}}, {"labels": ["k"]},
                {"labels": {"k": "x" * 256}}, {"name": "brd-123"}, {"name": ""}, {"description": "a\x01"},
                {"colour": "red"}, {}, {"labels": {f"k{i}": "v" for i in range(33)}}]:
        st, _, body = patch(f, f"/v1/boards/{b['id']}", bad)
        check(st == 400 and body["error"]["code"] == "bad_request", f"PATCH {str(bad)[:60]}: {st} {body}")
    st, _, body = patch(f, "/v1/boards/nope", {"description": "x"})
    check(st == 404, f"no such board: {st} {body}")
    # Labels filter lists; every listed item has its etag.
    st, body = get(f, "/v1/boards", label="zone=eu-1")
    check(st == 200 and [x["id"] for x in body["boards"]] == [a["id"]], f"label=zone=eu-1: {body}")
    st, body = get(f, "/v1/boards", label="rack")
    check(st == 200 and [x["id"] for x in body["boards"]] == [a["id"]], f"label=rack: {body}")
    st, body = get(f, "/v1/boards", label="zone=us-1")
    check(st == 200 and body["boards"] == [], f"label=zone=us-1: {body}")
    st, body = get(f, "/v1/boards")
    check(all(x.get("etag") for x in body["boards"]), "listed boards have etags")
    # Images too, and skyctl set.
    st, _, img = call(f, "POST", "/v1/images?name=tiny&kind=disk", data=b"x" * 4096,
                      headers={"Content-Type": "application/octet-stream"})
    check(st == 201 and img["etag"], f"image: {st} {img}")
    r = skyctl(f, "image", "set", "tiny", "--name", "tiny2", "--label", "os=debian", "--label", "ver=13",
               "--description", "a test image")
    check(r.returncode == 0, f"skyctl image set: {r.returncode} {r.stderr}")
    st, _, got = call(f, "GET", f"/v1/images/{img['id']}")
    check(got["name"] == "tiny2" and got["labels"] == {"os": "debian", "ver": "13"} and got["description"] == "a test image",
          f"after skyctl image set: {got}")
    r = skyctl(f, "image", "set", "tiny2", "--label", "ver-")
    st, _, got = call(f, "GET", f"/v1/images/{img['id']}")
    check(r.returncode == 0 and got["labels"] == {"os": "debian"}, f"skyctl --label ver-: {r.stderr} {got}")
    # A deleted image's labels go with it.
    st, _, _ = call(f, "DELETE", f"/v1/images/{img['id']}")
    check(st == 200, "delete the image")
    rows = int(f.store_sql(f"SELECT count(*) FROM meta WHERE id = {sqlq(img['id'])}")[0][0])
    check(rows == 0, f"meta rows of a deleted image: {rows}")
    r = skyctl(f, "board", "set", "rack1-07", "--if-match", etag0, "--description", "x")
    check(r.returncode != 0 and "changed since" in r.stderr, f"skyctl set with a stale etag: {r.returncode} {r.stderr}")
    # A restart keeps it all.
    f.ctl.stop()
    f.start()
    st, _, again = call(f, "GET", f"/v1/boards/{a['id']}")
    check(again["name"] == "rack1-07" and again["labels"] == {"rack": "1", "zone": "eu-1"}, f"after restart: {again}")


def case_idempotency(f):
    """Idempotency-Key on POST: a repeat gets the same answer and makes
    nothing more; the key with another body is a 422; keys are per
    credential; the kept answer survives a restart and is not in the
    database in clear."""
    f.start()
    hdr = {"Content-Type": "application/json", "Idempotency-Key": "9b1f2c3d-key-1"}
    st1, h1, b1 = call(f, "POST", "/v1/tokens", data=b'{"uses": 3}', headers=hdr)
    check(st1 == 201 and b1["token"].startswith("skt-"), f"first POST: {st1} {b1}")
    st2, h2, b2 = call(f, "POST", "/v1/tokens", data=b'{"uses": 3}', headers=hdr)
    check(st2 == 201 and b2 == b1 and h2.get("Location") == h1.get("Location") and h2.get("Idempotency-Replayed") == "true"
          and h2.get("X-Request-Id") != h1.get("X-Request-Id"), f"repeat: {st2} {b2} {dict(h2)}")
    st, body = get(f, "/v1/tokens")
    check([t["id"] for t in body["tokens"]] == [b1["id"]], f"one token made: {body}")
    # The same key with another body: 422, and nothing made.
    st, _, body = call(f, "POST", "/v1/tokens", data=b'{"uses": 4}', headers=hdr)
    check(st == 422 and body["error"]["code"] == "idempotency_key_reused", f"another body: {st} {body}")
    # ... or another route.
    st, _, body = call(f, "POST", "/v1/guests", data=b'{"uses": 3}', headers=hdr)
    check(st == 422, f"another route: {st} {body}")
    # A new key makes a new token; a refused request (400) is kept too.
    hdr2 = dict(hdr, **{"Idempotency-Key": "key-2"})
    st, _, b3 = call(f, "POST", "/v1/tokens", data=b'{"uses": 3}', headers=hdr2)
    check(st == 201 and b3["id"] != b1["id"], f"a new key: {st} {b3}")
    hdr3 = dict(hdr, **{"Idempotency-Key": "key-3"})
    st, _, e1 = call(f, "POST", "/v1/tokens", data=b'{"uses": 0}', headers=hdr3)
    st2, h, e2 = call(f, "POST", "/v1/tokens", data=b'{"uses": 0}', headers=hdr3)
    check(st == st2 == 400 and e1["error"]["message"] == e2["error"]["message"] and h.get("Idempotency-Replayed") == "true",
          f"a kept 400: {st} {st2} {e2}")
    # Bad keys.
    for bad in ["", "a b", "x" * 300]:
        st, _, body = call(f, "POST", "/v1/tokens", data=b'{"uses": 1}', headers=dict(hdr, **{"Idempotency-Key": bad}))
        check(st == 400 and "Idempotency-Key" in body["error"]["message"], f"key {bad[:20]!r}: {st} {body}")
    st, _, body = call(f, "POST", "/v1/images?name=x&kind=disk", data=b"x" * 10,
                       headers={"Content-Type": "application/octet-stream", "Idempotency-Key": "k"})
    check(st == 400 and "Idempotency-Key" in body["error"]["message"], f"upload with a key: {st} {body}")
    # The kept answer (with the token's secret) is sealed in the database.
    check(b1["token"].encode() not in f.store_dump(), "the secret is not in the database in clear")
    # After a restart the repeat still gets the same answer.
    f.ctl.stop()
    f.start()
    st4, _, b4 = call(f, "POST", "/v1/tokens", data=b'{"uses": 3}', headers=hdr)
    check(st4 == 201 and b4 == b1, f"repeat after restart: {st4} {b4}")
    st, body = get(f, "/v1/tokens")
    check(len(body["tokens"]) == 2, f"still two tokens: {body}")


def main():
    return run_cases(globals(), "skylists", Fleet)


if __name__ == "__main__":
    sys.exit(main())
