#!/usr/bin/env python3
"""Integration tests of the API's one schema (proto/api.proto, docs/api.md
"Encodings" and "OpenAPI"): /v1/openapi.json against the route tables both
ways, the document through a real OpenAPI validator from the npm registry,
a protobuf client (modules protoc makes from proto/api.proto, Debian's
python3-protobuf) that gets the same data as JSON, and the media type
negotiation (406, 415).

Usage: api_schema.py CASE (binaries as in fleet.py).  The protobuf case
needs Debian's python3-protobuf: under another python3 it runs itself again
with /usr/bin/python3.
"""
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from fleetlib import SKYROOTD, Fleet, check, run_cases  # noqa: E402
from events import Watch  # noqa: E402
from roles import code_routes  # noqa: E402

PB = "application/x-protobuf"
# The validator, pinned; installed once into the build folder.
SWAGGER_PARSER = "@apidevtools/swagger-parser@13.1.0"


def call(f, method, path, data=None, headers=None, token=None):
    """(status, headers, raw body) of one request."""
    return f.request(method, path, data, headers, token=token, timeout=20)


def doc_path(route):
    """A route as docs/api.md writes it, as the OpenAPI document does."""
    return route.replace("|", "_or_")


def openapi(f, token=None):
    st, hdrs, raw = call(f, "GET", "/v1/openapi.json", token=token)
    check(st == 200 and hdrs["Content-Type"] == "application/json", f"openapi.json: {st} {raw[:300]}")
    return json.loads(raw)


# --------------------------------------------------------------------------
# OpenAPI

def case_openapi_drift(f):
    """Every route and method of the tables is in the document, and every
    operation of the document is served (no 404 'no such API route', no
    405); schemas resolve; reader may read it (the same document again),
    nobody without a token."""
    f.start()
    doc = openapi(f)
    ops = {f"{m.upper()} {p}" for p, item in doc["paths"].items() for m in item}
    want = {f"{k.split(' ', 1)[0]} {doc_path(k.split(' ', 1)[1])}" for k in code_routes()}
    check(ops == want, f"document and route tables differ: only in the document {sorted(ops - want)}, "
          f"only in the tables {sorted(want - ops)}")
    for op in sorted(ops):
        method, path = op.split(" ", 1)
        concrete = re.sub(r"\{[^}]*\}", "no-such-thing", path)
        data = b"{}" if method in ("POST", "PATCH") and "/v1/images" != path else None
        st, _, raw = call(f, method, concrete, data=data,
                          headers={"Content-Type": "application/json"} if data else None)
        check(st != 405 and not (st == 404 and b"no such API route" in raw),
              f"{op} in the document is not served: {st} {raw[:200]}")
    # Every reference resolves, every route's message is a schema.
    text = json.dumps(doc)
    for ref in set(re.findall(r'"#/components/schemas/([A-Za-z0-9_]+)"', text)):
        check(ref in doc["components"]["schemas"], f"dangling $ref {ref}")
    for name in ("Board", "BoardList", "Image", "Guest", "Token", "Credential", "AuditList", "Error", "Deleted",
                 "MetaPatch", "GuestRequest"):
        check(name in doc["components"]["schemas"], f"schema {name} missing")
    board = doc["components"]["schemas"]["Board"]
    check(board["additionalProperties"] is False and "created" not in board["properties"] and
          board["properties"]["enrolled_at"]["format"] == "date-time", f"Board schema: {board}")
    check(doc["paths"]["/healthz"]["get"]["security"] == [] and "security" not in doc["paths"]["/v1/boards"]["get"],
          "public routes need no token, /v1 the bearer one")
    # A reader may read it (the same document: it is made once and shared
    # by every answer, which must leave it as it was); no token is 401.
    st, body = f.api("POST", "/v1/credentials", {"name": "ro", "role": "reader"})
    check(st == 201, f"reader credential: {st} {body}")
    check(openapi(f, token=body["token"]) == doc, "a second GET /v1/openapi.json differs from the first")
    st, _, _ = call(f, "GET", "/v1/openapi.json", token=False)
    check(st == 401, f"openapi.json without a token: {st}")


def npm_cache():
    """The validator's folder under the build folder (or a temp one)."""
    build = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(SKYROOTD))))
    base = build if os.path.isdir(os.path.join(build, "meson-info")) else tempfile.gettempdir()
    return os.path.join(base, "npm-openapi")


def validator_ready():
    """'' once the pinned validator is installed, else why not."""
    npm = shutil.which("npm")
    if not npm or not shutil.which("node"):
        return "npm or node is missing (deploy/packages: nodejs)"
    prefix = npm_cache()
    mod = os.path.join(prefix, "node_modules", "@apidevtools", "swagger-parser", "package.json")
    if os.path.exists(mod) and json.load(open(mod))["version"] == SWAGGER_PARSER.rsplit("@", 1)[1]:
        return ""
    r = subprocess.run([npm, "install", "--prefix", prefix, "--no-audit", "--no-fund", "--no-save", SWAGGER_PARSER],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        return f"npm install {SWAGGER_PARSER} failed (is the npm registry reachable?): {r.stderr[-500:]}"
    return ""


def case_openapi_validate(f):
    """The document passes @apidevtools/swagger-parser's validation (the
    OpenAPI 3.0 schema and every $ref)."""
    f.start()
    why = validator_ready()
    check(not why, why)
    path = os.path.join(f.tmp, "openapi.json")
    with open(path, "w") as out:
        json.dump(openapi(f), out)
    r = subprocess.run(["node", os.path.join(HERE, "openapi_validate.js"), npm_cache(), path],
                       capture_output=True, text=True, timeout=120)
    print(r.stdout.strip())
    check(r.returncode == 0 and r.stdout.startswith("valid:"), f"validator: {r.stdout} {r.stderr}")
    # And the validator does refuse a broken document (it is not a no-op).
    doc = openapi(f)
    doc["paths"]["/v1/boards"]["get"]["responses"]["2XX"]["content"]["application/json"]["schema"] = \
        {"$ref": "#/components/schemas/NoSuchSchema"}
    with open(path, "w") as out:
        json.dump(doc, out)
    r = subprocess.run(["node", os.path.join(HERE, "openapi_validate.js"), npm_cache(), path],
                       capture_output=True, text=True, timeout=120)
    check(r.returncode != 0, f"a dangling $ref passed the validator: {r.stdout}")


# --------------------------------------------------------------------------
# protobuf

def pb_modules(tmp):
    """api_pb2 made by protoc from proto/api.proto."""
    protoc = shutil.which("protoc")
    check(protoc, "protoc is missing (deploy/packages: protobuf-compiler)")
    out = os.path.join(tmp, "pb")
    os.makedirs(out, exist_ok=True)
    subprocess.run([protoc, f"--proto_path={os.path.join(ROOT, 'proto')}", f"--python_out={out}", "api.proto"],
                   check=True)
    sys.path.insert(0, out)
    import api_pb2  # noqa: E402
    return api_pb2


def pb_call(f, method, path, msg=None, accept=PB, headers=None):
    """(status, headers, raw) of a call with a protobuf body (msg) that asks for protobuf."""
    h = {"Accept": accept}
    h.update(headers or {})
    data = None
    if msg is not None:
        data = msg.SerializeToString()
        h["Content-Type"] = PB
    return call(f, method, path, data=data, headers=h)


def pb_ok(f, method, path, cls, msg=None, status=200):
    st, hdrs, raw = pb_call(f, method, path, msg)
    check(st == status and hdrs["Content-Type"] == PB, f"{method} {path}: {st} {hdrs['Content-Type']} {raw[:300]}")
    out = cls()
    out.ParseFromString(raw)
    return out, hdrs


def same_as_json(f, path, pb_msg):
    """GET path in JSON, read into pb_msg's type: the same message."""
    from google.protobuf import json_format
    st, hdrs, raw = call(f, "GET", path)
    check(st == 200 and hdrs["Content-Type"] == "application/json", f"GET {path} as JSON: {st}")
    j = json_format.Parse(raw, type(pb_msg)())
    check(j == pb_msg, f"GET {path}: JSON and protobuf differ:\n{j}\n---\n{pb_msg}")


def pb_watch_frames(resp, cls):
    """The messages of a length-delimited protobuf stream (each after its
    length as a varint, as writeDelimitedTo), one at a time."""
    while True:
        n, shift = 0, 0
        while True:
            b = resp.read(1)
            check(b, "the watch ended before its heartbeat")
            n |= (b[0] & 0x7F) << shift
            shift += 7
            check(shift < 64, "a length of more than 9 varint bytes")
            if not b[0] & 0x80:
                break
        check(n < 1 << 20, f"a frame of {n} bytes")
        data = resp.read(n)
        check(len(data) == n, f"a frame cut short: {len(data)} of {n} bytes")
        yield cls.FromString(data)


def case_protobuf_client(f):
    """Boards, tokens (created, paged through, revoked), an image, a guest
    (created, patched, deleted), a pending board (listed, rejected),
    expectations, the event log (listed, and watched as length-delimited
    Event messages) and errors, all in protobuf; the same GETs in JSON give
    the same messages."""
    api = pb_modules(f.tmp)
    from google.protobuf import wrappers_pb2
    f.start()
    f.online_with("a")
    boards, _ = pb_ok(f, "GET", "/v1/boards", api.BoardList)
    check(len(boards.boards) == 1 and boards.boards[0].name == f.boards()[0]["name"] and boards.boards[0].state == "online" and
          boards.boards[0].cpus.value > 0 and boards.boards[0].enrolled_at.seconds > 0, f"boards: {boards}")
    same_as_json(f, "/v1/boards", boards)
    board, hdrs = pb_ok(f, "GET", f"/v1/boards/{boards.boards[0].id}", api.Board)
    check(board.etag and hdrs["ETag"] == board.etag, f"ETag: {hdrs['ETag']} {board.etag}")

    # Tokens: create in protobuf, page through, revoke.
    req = api.TokenRequest(uses=wrappers_pb2.UInt32Value(value=2), ttl_seconds=wrappers_pb2.Int64Value(value=600))
    tok, hdrs = pb_ok(f, "POST", "/v1/tokens", api.Token, req, status=201)
    check(tok.token.value.startswith("skt-") and tok.uses == 2 and tok.uses_left == 2 and
          tok.expires_at.seconds - tok.created_at.seconds == 600 and hdrs["Location"] == f"/v1/tokens/{tok.id}",
          f"token: {tok} {hdrs}")
    made = {tok.id}
    # The same Idempotency-Key in protobuf: one token, the kept answer again.
    once = [pb_call(f, "POST", "/v1/tokens", api.TokenRequest(), headers={"Idempotency-Key": "pb-1"})
            for _ in range(2)]
    ids = [api.Token.FromString(raw).id for _, _, raw in once]
    check([st for st, _, _ in once] == [201, 201] and ids[0] == ids[1] and
          once[1][1]["Idempotency-Replayed"] == "true" and once[1][1]["Content-Type"] == PB, f"replay: {once}")
    made.add(ids[0])
    for _ in range(2):
        made.add(pb_ok(f, "POST", "/v1/tokens", api.Token, api.TokenRequest(), status=201)[0].id)
    seen, page = [], ""
    while True:
        q = "?limit=2" + (f"&page_token={urllib.parse.quote(page)}" if page else "")
        lst, _ = pb_ok(f, "GET", "/v1/tokens" + q, api.TokenList)
        check(len(lst.tokens) <= 2 and all(not t.HasField("token") for t in lst.tokens), f"page: {lst}")
        seen += [t.id for t in lst.tokens]
        page = lst.next_page_token
        if not page:
            break
    check(made <= set(seen) and len(seen) == len(set(seen)) == 5, f"paged tokens {seen}, made {made}")
    all_tokens, _ = pb_ok(f, "GET", "/v1/tokens", api.TokenList)
    same_as_json(f, "/v1/tokens", all_tokens)
    gone, _ = pb_ok(f, "DELETE", f"/v1/tokens/{tok.id}", api.Deleted)
    check(gone.id == tok.id and gone.deleted, f"revoke: {gone}")

    # An image (its bytes are the body; the answer in protobuf).
    st, hdrs, raw = call(f, "POST", "/v1/images?name=k1&kind=kernel", data=b"\x7fELF" + bytes(70000),
                         headers={"Accept": PB, "Content-Type": "application/octet-stream"})
    check(st == 201 and hdrs["Content-Type"] == PB, f"image push: {st} {raw[:200]}")
    img = api.Image()
    img.ParseFromString(raw)
    check(img.name == "k1" and img.kind == "kernel" and img.size_bytes == 70004 and img.created_at.seconds > 0,
          f"image: {img}")
    same_as_json(f, f"/v1/images/{img.id}", pb_ok(f, "GET", f"/v1/images/{img.id}", api.Image)[0])

    # A guest: create, patch its labels, delete.
    g = api.GuestRequest(name="g1", board=board.name, kernel="k1", memory_bytes=wrappers_pb2.UInt64Value(value=64 << 20))
    guest, _ = pb_ok(f, "POST", "/v1/guests", api.Guest, g, status=201)
    check(guest.name == "g1" and guest.board == board.id and guest.memory_bytes == 64 << 20 and
          guest.vcpus == 1 and guest.kernel == img.id and not guest.HasField("disk"), f"guest: {guest}")
    patch = api.MetaPatch(description=wrappers_pb2.StringValue(value="web"))
    patch.labels["zone"].string_value = "eu-1"
    patched, _ = pb_ok(f, "PATCH", "/v1/guests/g1", api.Guest, patch)
    check(dict(patched.labels) == {"zone": "eu-1"} and patched.description == "web", f"patched: {patched}")
    patch = api.MetaPatch()
    patch.labels["zone"].null_value = 0
    patched, _ = pb_ok(f, "PATCH", "/v1/guests/g1", api.Guest, patch)
    check(dict(patched.labels) == {} and patched.description == "web", f"label removed: {patched}")
    same_as_json(f, "/v1/guests/g1", pb_ok(f, "GET", "/v1/guests/g1", api.Guest)[0])
    gone, _ = pb_ok(f, "DELETE", "/v1/guests/g1", api.Deleted)
    check(gone.id == guest.id and gone.deleted, f"guest delete: {gone}")

    # A board that enrolls with no token is pending: listed and rejected in protobuf.
    from pending import SimBoard
    sim = SimBoard(f, "pb", "SN-PB-1", "5b0f4c0e-0000-4000-8000-00000000bb01")
    pid = sim.ask_pending()
    pend, _ = pb_ok(f, "GET", "/v1/pending", api.PendingList)
    check([p.id for p in pend.pending] == [pid] and pend.pending[0].state == "pending" and
          pend.pending[0].serial == "SN-PB-1" and pend.pending[0].key_sha256 == sim.fingerprint and
          pend.pending[0].first_seen_at.seconds > 0 and pend.pending[0].expires_at.seconds > 0 and
          list(pend.pending[0].macs) == ["52:54:00:aa:bb:01"] and not pend.pending[0].HasField("board"),
          f"pending: {pend}")
    same_as_json(f, "/v1/pending", pend)
    same_as_json(f, f"/v1/pending/{pid}", pb_ok(f, "GET", f"/v1/pending/{pid}", api.PendingBoard)[0])
    rejected, _ = pb_ok(f, "POST", f"/v1/boards/{pid}/reject", api.PendingBoard)
    check(rejected.id == pid and rejected.state == "rejected" and rejected.decided_at.seconds > 0,
          f"rejected: {rejected}")
    # Expectations: made from an ExpectationRequest, listed, deleted.
    exp, hdrs = pb_ok(f, "POST", "/v1/expectations", api.Expectation, api.ExpectationRequest(serial="SN-PB-2"),
                      status=201)
    check(exp.id.startswith("exp-") and exp.serial == "SN-PB-2" and not exp.uuid and exp.created_at.seconds > 0 and
          hdrs["Location"] == f"/v1/expectations/{exp.id}", f"expectation: {exp} {hdrs}")
    exps, _ = pb_ok(f, "GET", "/v1/expectations", api.ExpectationList)
    check([e.id for e in exps.expectations] == [exp.id], f"expectations: {exps}")
    same_as_json(f, "/v1/expectations", exps)
    gone, _ = pb_ok(f, "DELETE", f"/v1/expectations/{exp.id}", api.Deleted)
    check(gone.id == exp.id and gone.deleted, f"expectation delete: {gone}")

    # The event log in protobuf: the changes above, oldest first.
    evs, _ = pb_ok(f, "GET", "/v1/events?limit=1000", api.EventList)
    seen = [(e.type, e.object_id) for e in evs.events]
    check(("token.created", tok.id) in seen and ("token.revoked", tok.id) in seen and ("image.created", img.id) in seen
          and seen.index(("guest.created", guest.id)) < seen.index(("guest.deleted", guest.id)),
          f"events: {seen}")
    rvs = [e.resource_version for e in evs.events]
    check(rvs == sorted(rvs) and len(set(rvs)) == len(rvs) and evs.resource_version >= rvs[-1] and
          all(e.created_at.seconds > 0 for e in evs.events), f"resource versions: {rvs} {evs.resource_version}")
    made = [e for e in evs.events if e.type == "guest.created"][0]
    check(made.kind == "guest" and made.detail["name"] == "g1" and made.detail["board"] == board.id, f"{made}")
    # JSON lists the same events (later ones may have come: the same count).
    from google.protobuf import json_format
    st, _, raw = call(f, "GET", f"/v1/events?limit={len(evs.events)}")
    check(st == 200, f"events as JSON: {st}")
    check(list(json_format.Parse(raw, api.EventList()).events) == list(evs.events), "events: JSON and protobuf differ")
    # A JSON watcher first, caught up and kept open: the newest event's
    # item was made for it as a JSON line (the controller makes an event's
    # item once for every watcher of that encoding).
    jw = Watch(f, "since=0&heartbeat=200ms")
    while jw.line()["type"] != "watch.heartbeat":
        pass
    # Watched from the start: length-delimited Event messages, the same
    # events in order, then a heartbeat that covers them.
    conn = http.client.HTTPSConnection("127.0.0.1", f.api_port, context=f.sslctx, timeout=20)
    conn.request("GET", "/v1/events?watch=true&since=0&heartbeat=200ms",
                 headers={"Authorization": f"Bearer {f.admin}", "Accept": PB})
    resp = conn.getresponse()
    check(resp.status == 200 and resp.getheader("Content-Type") == PB, f"watch: {resp.status} {resp.getheaders()}")
    watched = []
    frames = pb_watch_frames(resp, api.Event)
    for e in frames:
        if e.type == "watch.heartbeat":
            check(e.resource_version >= rvs[-1] and e.created_at.seconds > 0 and not e.kind, f"heartbeat: {e}")
            break
        watched.append(e)
    check(watched[:len(evs.events)] == list(evs.events), f"watched {[(e.resource_version, e.type) for e in watched]}, "
          f"listed {[(e.resource_version, e.type) for e in evs.events]}")
    # A new event, live to both watchers: each in its own encoding.
    st, body = f.api("POST", "/v1/tokens", {"uses": 1})
    check(st == 201, f"token create: {st} {body}")
    e = next(x for x in frames if x.type != "watch.heartbeat")
    check(e.type == "token.created" and e.object_id == body["id"], f"live, protobuf: {e}")
    j = jw.event()
    check(j["type"] == "token.created" and j["object_id"] == body["id"], f"live, JSON: {j}")
    conn.close()
    jw.close()

    # Errors are an Error message, with the request's id.
    st, hdrs, raw = pb_call(f, "GET", "/v1/guests/g1")
    err = api.Error()
    err.ParseFromString(raw)
    check(st == 404 and hdrs["Content-Type"] == PB and err.error.code == "not_found" and
          "g1" in err.error.message and err.error.request_id == hdrs["X-Request-Id"], f"404: {st} {err}")
    st, hdrs, raw = call(f, "POST", "/v1/tokens", data=b"\x0a\xff\xff", headers={"Content-Type": PB, "Accept": PB})
    err = api.Error()
    err.ParseFromString(raw)
    check(st == 400 and err.error.code == "bad_request" and
          "not a valid protobuf message skyroot.api.v1.TokenRequest" in err.error.message, f"junk body: {st} {err}")
    # A value the handler refuses is refused the same way as in JSON.
    st, _, raw = pb_call(f, "POST", "/v1/tokens", api.TokenRequest(uses=wrappers_pb2.UInt32Value(value=0)))
    err = api.Error()
    err.ParseFromString(raw)
    check(st == 400 and "uses" in err.error.message, f"uses 0: {st} {err}")


def case_negotiation(f):
    """406 for an Accept the route cannot answer, 415 for a protobuf body a
    route does not take; JSON stays the default."""
    f.start()
    st, hdrs, _ = call(f, "GET", "/v1/boards")
    check(st == 200 and hdrs["Content-Type"] == "application/json", "JSON by default")
    st, hdrs, _ = call(f, "GET", "/v1/boards", headers={"Accept": "application/json;q=0.5, application/x-protobuf"})
    check(st == 200 and hdrs["Content-Type"] == PB, f"protobuf preferred: {hdrs['Content-Type']}")
    st, hdrs, _ = call(f, "GET", "/v1/boards", headers={"Accept": "application/x-protobuf;q=0.2, application/json"})
    check(st == 200 and hdrs["Content-Type"] == "application/json", f"JSON preferred: {hdrs['Content-Type']}")
    st, _, raw = call(f, "GET", "/v1/boards", headers={"Accept": "text/html"})
    check(st == 406 and b"not_acceptable" in raw, f"text/html: {st} {raw[:200]}")
    st, _, raw = call(f, "GET", "/v1/boards", headers={"Accept": "text/html"}, token=False)
    check(st == 401, f"text/html without a token is 401 first (nothing said about the route): {st} {raw[:200]}")
    st, _, raw = call(f, "POST", "/v1/images?name=x", data=b"abc", token=False,
                      headers={"Accept": PB, "Content-Type": "application/octet-stream"})
    check(st == 401, f"an upload without a token: {st} {raw[:200]}")
    st, _, raw = call(f, "GET", "/v1/no-such-route", headers={"Accept": "text/html"})
    check(st == 404, f"no such route: {st} {raw[:200]}")
    st, _, raw = call(f, "GET", "/metrics", headers={"Accept": PB})
    check(st == 406 and b"does not answer in application/x-protobuf" in raw, f"metrics in protobuf: {st} {raw[:200]}")
    st, hdrs, _ = call(f, "GET", "/metrics", headers={"Accept": PB + ", */*;q=0.1"})
    check(st == 200 and hdrs["Content-Type"].startswith("text/plain"), f"metrics with */*: {st}")
    st, _, raw = call(f, "POST", "/v1/boards/x/reenroll-allow", data=b"\x08\x01", headers={"Content-Type": PB})
    check(st == 415 and b"unsupported_media_type" in raw, f"protobuf body to a route without one: {st} {raw[:200]}")
    # A body is looked at only after the credential: junk without one is 401.
    st, _, raw = call(f, "POST", "/v1/tokens", data=b"\x0a\xff\xff", headers={"Content-Type": PB}, token=False)
    check(st == 401, f"junk protobuf without a token: {st} {raw[:200]}")


def skip():
    if sys.argv[1:] == ["openapi_validate"] and os.environ.get("CI") != "true":
        return validator_ready() or None
    return None


def main():
    if sys.argv[1:] == ["protobuf_client"]:
        try:
            import google.protobuf  # noqa: F401
        except ImportError:
            if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != "/usr/bin/python3":
                os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
            print("SKIP: python3-protobuf is missing (deploy/packages: python3-protobuf)")
            return 1 if os.environ.get("CI") == "true" else 77
    return run_cases(globals(), "skyschema", Fleet, skip=skip)


if __name__ == "__main__":
    sys.exit(main())
