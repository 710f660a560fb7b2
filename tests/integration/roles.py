#!/usr/bin/env python3
"""Integration tests of API credentials, roles and the audit log (docs/api.md
"Credentials and roles", "Audit log"): every route of the controller's route
tables tried with a reader, an operator, an admin, a revoked and an expired
credential; rotation (the init admin's too); the audit log's entries, their
request ids (X-Request-Id and the controller's log) and its bound.

Usage: roles.py CASE (see run_cases in fleetlib.py)."""
import base64
import http.client
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import ROOT, Fail, Fleet, check, run_cases, skyctl, wait_for  # noqa: E402,F401

API_SOURCES = sorted(os.path.join(ROOT, "controller", "skyrootd", n)
                     for n in os.listdir(os.path.join(ROOT, "controller", "skyrootd"))
                     if n.startswith("api") and n.endswith(".c"))

# What each route needs, by "METHOD path": public (no credential), read
# (reader and up), operate (operator and up), admin (admin only).  A route in
# the code without an entry here, or an entry without a route, fails the test.
ROUTES = {
    "GET /healthz": "public",
    "GET /readyz": "public",
    "GET /boot/ipxe": "public",
    "GET /boot/vmlinuz": "public",
    "GET /boot/initrd.img": "public",
    "GET /metrics": "read",
    "GET /v1/boards": "read",
    "GET /v1/boards/{id|name}": "read",
    "PATCH /v1/boards/{id|name}": "operate",
    "DELETE /v1/boards/{id|name}": "operate",
    "POST /v1/boards/{id|name}/fetch": "operate",
    "POST /v1/boards/{id|name}/boot": "operate",
    "POST /v1/boards/{id|name}/reenroll-allow": "operate",
    "GET /v1/tokens": "read",
    "POST /v1/tokens": "operate",
    "DELETE /v1/tokens/{id}": "operate",
    "GET /v1/images": "read",
    "POST /v1/images": "operate",
    "GET /v1/images/{id|name}": "read",
    "PATCH /v1/images/{id|name}": "operate",
    "DELETE /v1/images/{id|name}": "operate",
    "POST /v1/images/{id|name}/verify": "operate",
    "GET /v1/guests": "read",
    "POST /v1/guests": "operate",
    "GET /v1/guests/{id|name}": "read",
    "PATCH /v1/guests/{id|name}": "operate",
    "DELETE /v1/guests/{id|name}": "operate",
    "POST /v1/guests/{id|name}/start": "operate",
    "POST /v1/guests/{id|name}/stop": "operate",
    "GET /v1/guests/{id|name}/console": "read",
    "GET /v1/events": "read",
    "GET /v1/credentials": "admin",
    "POST /v1/credentials": "admin",
    "GET /v1/credentials/{name}": "admin",
    "DELETE /v1/credentials/{name}": "admin",
    "POST /v1/credentials/{name}/rotate": "admin",
    "GET /v1/audit": "admin",
    "GET /v1/pending": "read",
    "GET /v1/pending/{id}": "read",
    "POST /v1/boards/{id}/accept": "operate",
    "POST /v1/boards/{id}/reject": "operate",
    "GET /v1/expectations": "read",
    "POST /v1/expectations": "operate",
    "DELETE /v1/expectations/{id}": "operate",
    "GET /v1/openapi.json": "read",
    "GET /v1/networks": "read",
    "POST /v1/networks": "operate",
    "GET /v1/networks/{id|name}": "read",
    "DELETE /v1/networks/{id|name}": "operate",
    "GET /v1/firmware": "admin",
    "POST /v1/firmware": "admin",
    "GET /v1/firmware/{id|name}": "admin",
    "DELETE /v1/firmware/{id|name}": "admin",
}

ALLOWED = {"reader": {"public", "read"}, "operator": {"public", "read", "operate"},
           "admin": {"public", "read", "operate", "admin"}}


def code_routes():
    """{"METHOD path": flags} from the route tables of controller/skyrootd/api*.c."""
    routes = {}
    for src in API_SOURCES:
        text = open(src).read()
        for m in re.finditer(r"\{\s*\.path\s*=\s*\"([^\"]+)\"(.*?)\}\s*,", text, re.S):
            path, rest = m.group(1), m.group(2)
            ph = re.search(r"\.placeholder\s*=\s*\"([^\"]*)\"", rest)
            sfx = re.search(r"\.suffix\s*=\s*\"([^\"]*)\"", rest)
            allow = re.search(r"API_ALLOW\(\"([^\"]*)\"\)", rest)
            check(allow, f"{src}: the route {path} has no API_ALLOW")
            full = path + (ph.group(1) if ph and ".segment = true" in rest else "")
            if sfx and not full.endswith(sfx.group(1)):
                full += sfx.group(1)
            for method in allow.group(1).split(", "):
                routes[f"{method} {full}"] = {"admin": ".admin = true" in rest, "reader": ".reader = true" in rest}
    check(len(routes) > 20, f"only {len(routes)} routes read from {API_SOURCES}")
    return routes


class Client:
    """One request per connection, from a chosen loopback address (the
    throttle of wrong tokens is per address: refused calls each get their
    own, so the table runs without its growing delays)."""

    def __init__(self, f):
        self.f = f
        self.next_src = 0

    def fresh_source(self):
        self.next_src += 1
        return f"127.0.{2 + self.next_src // 250}.{1 + self.next_src % 250}"

    def call(self, method, path, token=None, body=None, src="127.0.0.1", raw=None, headers=None, full=False):
        conn = http.client.HTTPSConnection("127.0.0.1", self.f.api_port, context=self.f.sslctx, timeout=20,
                                           source_address=(src, 0))
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        text = r.read()
        conn.close()
        try:
            answer = json.loads(text) if text else None
        except ValueError:
            answer = text
        if full:
            return r.status, answer, r.getheader("X-Request-Id"), r
        return r.status, answer, r.getheader("X-Request-Id")


def basic(name, token):
    """Redfish's HTTP Basic: a credential's name and its token."""
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{token}".encode()).decode()}


def make_cred(f, c, name, role, ttl=None):
    body = {"name": name, "role": role}
    if ttl:
        body["ttl_seconds"] = ttl
    st, ans, _ = c.call("POST", "/v1/credentials", f.admin, body)
    check(st == 201 and ans["token"].startswith("skc-") and ans["role"] == role and ans["name"] == name,
          f"create {name}: {st} {ans}")
    return ans["token"]


def db_exec(f, sql):
    """A change the API cannot make (a credential's expiry in the past)."""
    f.store_sql(sql)


def audit(f, c, limit=100):
    st, ans, _ = c.call("GET", f"/v1/audit?limit={limit}", f.admin)
    check(st == 200, f"audit: {st} {ans}")
    return ans["entries"]


def setup(f):
    f.start()
    c = Client(f)
    toks = {"admin": f.admin}
    toks["reader"] = make_cred(f, c, "r1", "reader")
    toks["operator"] = make_cred(f, c, "op1", "operator")
    toks["revoked"] = make_cred(f, c, "gone", "admin")
    st, ans, _ = c.call("DELETE", "/v1/credentials/gone", f.admin)
    check(st == 200 and ans == {"id": "gone", "deleted": True}, f"revoke: {st} {ans}")
    toks["expired"] = make_cred(f, c, "old", "admin", ttl=3600)
    db_exec(f, "UPDATE credentials SET expires_at = 1 WHERE name = 'old'")
    return c, toks


def concrete(route, n):
    method, path = route.split(" ", 1)
    path = path.replace("{id|name}", f"nope-{n}").replace("{id}", f"nope-{n}").replace("{name}", f"nope-{n}")
    body = None
    if route == "POST /v1/credentials":
        body = {"name": f"made-{n}", "role": "reader"}
    elif route == "POST /v1/tokens":
        body = {"uses": 1}
    elif method == "POST":
        body = {}
    elif method == "PATCH":
        body = {"description": "x"}
    return method, path, body


def case_route_table(f):
    """Every route, every role: the table matches the code, and each call is
    allowed or refused (403 naming the role; 401 for revoked and expired)."""
    code = code_routes()
    missing = sorted(set(code) - set(ROUTES))
    stale = sorted(set(ROUTES) - set(code))
    check(not missing, f"routes without an entry in roles.py's table: {missing}")
    check(not stale, f"entries in roles.py's table without a route: {stale}")
    for r, flags in code.items():
        need = ROUTES[r]
        check(flags["admin"] == (need == "admin"), f"{r}: .admin in the code vs '{need}' in the table")
    # A PATCH (lists' names, labels, descriptions) is a change: operator.
    patches = sorted(r for r in code if r.startswith("PATCH "))
    check(len(patches) >= 3, f"the PATCH routes of boards, images and guests are in the code: {patches}")
    check(all(ROUTES[r] == "operate" for r in patches), f"every PATCH needs operator: {patches}")
    c, toks = setup(f)
    n = 0
    for route, need in sorted(ROUTES.items()):
        for who in ("reader", "operator", "admin", "revoked", "expired", None):
            n += 1
            method, path, body = concrete(route, n)
            refused = who in ("revoked", "expired", None)
            src = c.fresh_source() if refused else "127.0.0.1"
            st, ans, rid = c.call(method, path, toks.get(who), body, src=src)
            check(rid and rid.startswith("req-"), f"{route} as {who}: no X-Request-Id ({rid})")
            if need == "public":
                check(st not in (401, 403), f"{route} as {who}: {st} {ans}")
            elif refused:
                check(st == 401, f"{route} as {who}: {st}, expected 401 {ans}")
                if who is not None:
                    check("invalid or expired" in ans["error"]["message"] and
                          "revoked" not in ans["error"]["message"], f"{route} as {who}: says too much: {ans}")
            elif need in ALLOWED[who]:
                check(st not in (401, 403), f"{route} as {who}: {st} {ans}")
            else:
                check(st == 403 and ans["error"]["code"] == "forbidden" and
                      f"needs the role '{'operator' if need == 'operate' else need}'" in ans["error"]["message"],
                      f"{route} as {who}: {st}, expected 403 naming the role: {ans}")
    print(f"roles: {len(ROUTES)} routes x 6 credentials = {n} calls as the table says")
    log = f.ctl.text()
    check(re.search(r"credential 'gone' is revoked", log), "the log says the credential was revoked")
    check(re.search(r"credential 'old' is expired", log), "the log says the credential expired")


def case_rotate(f):
    """A rotation invalidates the old secret at once, or after a grace; the
    init admin is the credential 'admin' and rotates too, across a restart."""
    f.start()
    c = Client(f)
    tok = make_cred(f, c, "ci", "operator")
    st, ans, _ = c.call("POST", "/v1/credentials/ci/rotate", f.admin)
    check(st == 200 and ans["token"].startswith("skc-") and ans["token"] != tok and ans["rotated_at"],
          f"rotate: {st} {ans}")
    new = ans["token"]
    check(c.call("GET", "/v1/boards", tok, src=c.fresh_source())[0] == 401, "the old secret is refused")
    check(c.call("GET", "/v1/boards", new)[0] == 200, "the new secret works")
    # With a grace both work until it ends.
    st, ans, _ = c.call("POST", "/v1/credentials/ci/rotate", f.admin, {"grace_seconds": 600})
    check(st == 200 and ans["old_secret_expires_at"], f"rotate with grace: {st} {ans}")
    newer = ans["token"]
    check(c.call("GET", "/v1/boards", new)[0] == 200, "the old secret works in its grace")
    check(c.call("GET", "/v1/boards", newer)[0] == 200, "the new secret works")
    db_exec(f, "UPDATE credentials SET old_until = 1 WHERE name = 'ci'")
    check(c.call("GET", "/v1/boards", new, src=c.fresh_source())[0] == 401, "the old secret after its grace")
    st, ans, _ = c.call("POST", "/v1/credentials/ci/rotate", f.admin, {"grace_seconds": 10 ** 9})
    check(st == 400, f"a grace past the limit: {st} {ans}")
    # The secret is never stored: only its hash.
    db = f.store_dump()
    check(newer.encode() not in db and newer[4:].encode() not in db, "the token is not in the database")
    # The init admin.
    st, ans, _ = c.call("GET", "/v1/credentials/admin", f.admin)
    check(st == 200 and ans["role"] == "admin" and ans["state"] == "active", f"admin: {st} {ans}")
    st, ans, _ = c.call("POST", "/v1/credentials/admin/rotate", f.admin)
    check(st == 200, f"rotate admin: {st} {ans}")
    admin2 = ans["token"]
    check(c.call("GET", "/v1/boards", f.admin, src=c.fresh_source())[0] == 401, "the init token is refused")
    check(c.call("GET", "/v1/credentials", admin2)[0] == 200, "the rotated admin token works")
    # A restart does not bring the init token back.
    f.ctl.stop()
    f.start(wait=False)
    wait_for(lambda: f.api("GET", "/healthz", auth=False)[0] == 200, 10, "controller health")
    check(c.call("GET", "/v1/boards", f.admin, src=c.fresh_source())[0] == 401,
          "the init token is refused after a restart")
    check(c.call("GET", "/v1/credentials", admin2)[0] == 200, "the rotated admin token works after a restart")
    # Revoked: listed as such, cannot be rotated, its name stays taken.
    st, _, _ = c.call("DELETE", "/v1/credentials/ci", admin2)
    check(st == 200, "revoke ci")
    st, ans, _ = c.call("GET", "/v1/credentials", admin2)
    states = {x["name"]: x["state"] for x in ans["credentials"]}
    check(states.get("ci") == "revoked" and states.get("admin") == "active", f"list: {ans}")
    check(c.call("POST", "/v1/credentials/ci/rotate", admin2)[0] == 409, "a revoked one is not rotated")
    check(c.call("POST", "/v1/credentials", admin2, {"name": "ci", "role": "reader"})[0] == 409, "name taken")
    check(c.call("GET", "/v1/boards", newer, src=c.fresh_source())[0] == 401, "revoked is refused")
    for bad in ({"name": "x y", "role": "reader"}, {"name": "ok", "role": "root"}, {"name": "ok"},
                {"name": "ok", "role": "reader", "ttl_seconds": 1}, {"name": "ok", "role": "reader", "x": 1}):
        st, ans, _ = c.call("POST", "/v1/credentials", admin2, bad)
        check(st == 400 and ans["error"]["code"] == "bad_request", f"{bad}: {st} {ans}")


def case_audit(f):
    """Changes and refusals are in the audit log with who, from where, what,
    the result and the request id the client got and the log shows; reads are
    not; the log keeps only the newest --audit-keep rows."""
    f.start(extra=["--audit-keep", "8"])
    c = Client(f)
    op = make_cred(f, c, "op1", "operator")
    rd = make_cred(f, c, "rd1", "reader")
    st, ans, rid_ok = c.call("POST", "/v1/tokens?x=secret", op, {"uses": 1})
    check(st == 201, f"operator makes a token: {st} {ans}")
    st, ans, rid_403 = c.call("DELETE", "/v1/tokens/tok-00000000", rd)
    check(st == 403 and ans["error"]["request_id"] == rid_403, f"reader deletes: {st} {ans} {rid_403}")
    src = c.fresh_source()
    st, ans, rid_401 = c.call("POST", "/v1/tokens", "skc-" + "0" * 64, {"uses": 1}, src=src)
    check(st == 401 and ans["error"]["request_id"] == rid_401, f"unknown token: {st} {ans} {rid_401}")
    st, _, rid_get = c.call("GET", "/v1/boards", op)
    check(st == 200, "a read")
    entries = audit(f, c)
    by_rid = {e["request_id"]: e for e in entries}
    e = by_rid.get(rid_ok)
    check(e and e["credential"] == "op1" and e["method"] == "POST" and e["path"] == "/v1/tokens" and
          e["status"] == 201 and e["peer"].startswith("127.0.0.1") and e["created_at"], f"the change: {e} in {entries}")
    e = by_rid.get(rid_403)
    check(e and e["credential"] == "rd1" and e["method"] == "DELETE" and e["status"] == 403, f"the 403: {e}")
    e = by_rid.get(rid_401)
    check(e and e["credential"] == "unknown" and e["status"] == 401 and e["peer"].startswith(src),
          f"the 401: {e}")
    check(rid_get not in by_rid, "a read is not audited")
    check(all("secret" not in x["path"] for x in entries), "no query in the audit log")
    log = f.ctl.text()
    for rid in (rid_ok, rid_403, rid_401):
        check(any(rid in line for line in log.splitlines()), f"request {rid} is in the controller's log")
    # Only admins read it.
    check(c.call("GET", "/v1/audit", op)[0] == 403, "the operator cannot read the audit log")
    check(c.call("GET", "/v1/audit?limit=0", f.admin)[0] == 400, "limit 0")
    st, ans, _ = c.call("GET", "/v1/audit?limt=2", f.admin)
    check(st == 400 and "unknown query parameter 'limt'" in ans["error"]["message"], f"misspelt limit: {st} {ans}")
    check(len(audit(f, c, limit=2)) == 2, "limit 2")
    # Bounded: the newest 8.
    rids = []
    for _ in range(12):
        st, _, rid = c.call("POST", "/v1/tokens", op, {"uses": 1})
        check(st == 201, "token")
        rids.append(rid)
    entries = audit(f, c)
    check(len(entries) == 8, f"{len(entries)} rows kept, --audit-keep 8")
    check([x["request_id"] for x in entries] == list(reversed(rids[-8:])), "the newest 8, newest first")


def case_redfish(f):
    """Redfish with credentials: the user is a credential's name and the
    password its token; a reader reads, an operator may also PATCH and Reset
    (as PATCH under /v1), only an admin ends others' sessions; a session
    ends with its credential; PATCH and Redfish changes are in the audit log
    under the credential's name with the request's id."""
    f.start()
    c = Client(f)
    op = make_cred(f, c, "op1", "operator")
    rd = make_cred(f, c, "rd1", "reader")
    tok = f.token(uses=1)
    f.agent("a", token=tok["token"])
    wait_for(lambda: len(f.online()) == 1, 20, "a board online")
    bid = f.boards()[0]["id"]
    sysp = f"/redfish/v1/Systems/{bid}"
    patch = {"Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"}}
    # Reads: every role; the name must be the token's credential's.
    for name, t in (("rd1", rd), ("op1", op), ("admin", f.admin)):
        st, ans, _ = c.call("GET", "/redfish/v1/Systems", headers=basic(name, t))
        check(st == 200 and ans["Members@odata.count"] == 1, f"{name} reads Systems: {st} {ans}")
    for name, t in (("admin", op), ("rd1", op), ("op1", rd), ("reader", op)):
        st, _, _ = c.call("GET", "/redfish/v1/Systems", headers=basic(name, t), src=c.fresh_source())
        check(st == 401, f"{name} with another's token: {st}")
    # Changes: operator and admin, not reader.
    st, ans, _ = c.call("PATCH", sysp, body=patch, headers=basic("rd1", rd))
    check(st == 403 and "role 'operator'" in ans["error"]["message"], f"reader PATCH: {st} {ans}")
    st, ans, _ = c.call("POST", sysp + "/Actions/ComputerSystem.Reset", body={"ResetType": "ForceRestart"},
                        headers=basic("rd1", rd))
    check(st == 403, f"reader reset: {st} {ans}")
    st, ans, rid_rf = c.call("PATCH", sysp, body=patch, headers=basic("op1", op))
    check(st == 200, f"operator PATCH: {st} {ans}")
    st, ans, _ = c.call("POST", "/redfish/v1/Systems/nope/Actions/ComputerSystem.Reset",
                        body={"ResetType": "ForceRestart"}, headers=basic("op1", op))
    check(st == 404, f"operator reset passes the role check (then no such system): {st} {ans}")
    # /v1 PATCH: operator yes, reader no.
    st, ans, _ = c.call("PATCH", f"/v1/boards/{bid}", rd, {"description": "x"})
    check(st == 403 and "needs the role 'operator'" in ans["error"]["message"], f"reader /v1 PATCH: {st} {ans}")
    st, ans, rid_patch = c.call("PATCH", f"/v1/boards/{bid}", op, {"description": "top shelf"})
    check(st == 200 and ans["description"] == "top shelf", f"operator /v1 PATCH: {st} {ans}")
    # Sessions keep the credential: the operator's ends its own only.
    st, _, rid_sess, r = c.call("POST", "/redfish/v1/SessionService/Sessions",
                                body={"UserName": "op1", "Password": op}, full=True)
    check(st == 201, f"operator session: {st}")
    op_sess, op_loc = r.getheader("X-Auth-Token"), r.getheader("Location")
    st, _, _, r = c.call("POST", "/redfish/v1/SessionService/Sessions",
                         body={"UserName": "admin", "Password": f.admin}, full=True)
    check(st == 201, f"admin session: {st}")
    adm_loc = r.getheader("Location")
    st, ans, _ = c.call("GET", op_loc, headers={"X-Auth-Token": op_sess})
    check(st == 200 and ans["UserName"] == "op1", f"the session names its credential: {st} {ans}")
    st, _, _ = c.call("DELETE", adm_loc, headers={"X-Auth-Token": op_sess})
    check(st == 403, f"the operator ends the admin's session: {st}")
    st, _, _ = c.call("PATCH", sysp, body=patch, headers={"X-Auth-Token": op_sess})
    check(st == 200, f"the operator's session PATCHes: {st}")
    # Revoked: its session ends too.
    check(c.call("DELETE", "/v1/credentials/op1", f.admin)[0] == 200, "revoke op1")
    st, _, _ = c.call("GET", "/redfish/v1/Systems", headers={"X-Auth-Token": op_sess}, src=c.fresh_source())
    check(st == 401, f"the revoked credential's session: {st}")
    st, _, _ = c.call("GET", "/redfish/v1/Systems", headers=basic("op1", op), src=c.fresh_source())
    check(st == 401, f"the revoked credential over Basic: {st}")
    # The audit log: the changes, by name and request id.
    by_rid = {e["request_id"]: e for e in audit(f, c)}
    for rid, method, path, status in ((rid_rf, "PATCH", sysp, 200), (rid_patch, "PATCH", f"/v1/boards/{bid}", 200),
                                      (rid_sess, "POST", "/redfish/v1/SessionService/Sessions", 201)):
        e = by_rid.get(rid)
        check(e and e["credential"] == "op1" and e["method"] == method and e["path"] == path and
              e["status"] == status, f"audit of {method} {path}: {e}")
    refused = [e for e in by_rid.values() if e["credential"] == "rd1" and e["status"] == 403]
    check(len(refused) >= 3, f"the reader's refused changes are audited: {refused}")


def case_idempotency(f):
    """Idempotency-Key is kept by the credential that authenticated the
    request: another credential's same key is another key; a rotated
    token's repeat is told the kept answer is sealed under the old one."""
    f.start()
    c = Client(f)
    op = make_cred(f, c, "op1", "operator")
    op2 = make_cred(f, c, "op2", "operator")
    key = {"Idempotency-Key": "k-1"}
    st, a1, _, r = c.call("POST", "/v1/tokens", op, {"uses": 1}, headers=key, full=True)
    check(st == 201 and r.getheader("Idempotency-Replayed") is None, f"first: {st} {a1}")
    st, a2, _, r = c.call("POST", "/v1/tokens", op, {"uses": 1}, headers=key, full=True)
    check(st == 201 and r.getheader("Idempotency-Replayed") == "true" and a2["id"] == a1["id"], f"repeat: {st} {a2}")
    st, b1, _, r = c.call("POST", "/v1/tokens", op2, {"uses": 1}, headers=key, full=True)
    check(st == 201 and r.getheader("Idempotency-Replayed") is None and b1["id"] != a1["id"],
          f"another credential's same key: {st} {b1}")
    st, ans, _ = c.call("POST", "/v1/credentials/op1/rotate", f.admin, {"grace_seconds": 300})
    check(st == 200, f"rotate: {st} {ans}")
    new = ans["token"]
    st, ans, _ = c.call("POST", "/v1/tokens", new, {"uses": 1}, headers=key)
    check(st == 409 and "rotated" in ans["error"]["message"], f"repeat under the new token: {st} {ans}")
    st, ans, _, r = c.call("POST", "/v1/tokens", op, {"uses": 1}, headers=key, full=True)
    check(st == 201 and r.getheader("Idempotency-Replayed") == "true" and ans["id"] == a1["id"],
          f"the old token in its grace still replays: {st} {ans}")
    st, ans, _ = c.call("POST", "/v1/tokens", new, {"uses": 2}, headers=key)
    check(st == 422, f"the same key, another request, same credential (new token): {st} {ans}")


def case_skyctl(f):
    """skyctl credential create|list|show|rotate|revoke and skyctl audit."""
    f.start()
    r = skyctl(f, "credential", "create", "ci", "--role", "operator", "--ttl", "1d", "-o", "json")
    check(r.returncode == 0, f"create: {r.returncode} {r.stderr}")
    made = json.loads(r.stdout)
    check(made["name"] == "ci" and made["role"] == "operator" and made["expires_at"], f"create: {made}")
    tok = made["token"]
    r = skyctl(f, "credential", "create", "x", "--role", "root")
    check(r.returncode != 0 and "--role must be" in r.stderr, f"a bad role: {r.stderr}")
    r = skyctl(f, "credential", "create", "x")
    check(r.returncode != 0 and "--role" in r.stderr, f"no role: {r.stderr}")
    r = skyctl(f, "credential", "list")
    check(r.returncode == 0 and re.search(r"^ci\s+operator\s+active", r.stdout, re.M) and
          re.search(r"^admin\s+admin\s+active", r.stdout, re.M), f"list: {r.stdout}")
    r = skyctl(f, "credential", "show", "ci")
    check(r.returncode == 0 and "operator" in r.stdout and "token" not in r.stdout.lower(), f"show: {r.stdout}")
    # The operator's token: boards yes, credentials no (403 naming the role).
    r = skyctl(f, "--token", tok, "board", "list")
    check(r.returncode == 0, f"operator lists boards: {r.stderr}")
    r = skyctl(f, "--token", tok, "credential", "list")
    check(r.returncode != 0 and "role 'admin'" in r.stderr, f"operator lists credentials: {r.stderr}")
    r = skyctl(f, "credential", "rotate", "ci", "--grace", "5m", "-o", "json")
    check(r.returncode == 0, f"rotate: {r.stderr}")
    new = json.loads(r.stdout)["token"]
    check(new != tok and skyctl(f, "--token", new, "board", "list").returncode == 0, "the new token works")
    r = skyctl(f, "credential", "revoke", "ci")
    check(r.returncode == 0 and "ci" in r.stdout, f"revoke: {r.stdout} {r.stderr}")
    r = skyctl(f, "--token", new, "board", "list")
    check(r.returncode != 0 and "invalid or expired" in r.stderr, f"revoked: {r.stderr}")
    # A revoked credential is named in the audit log (the client is told no more than "invalid").
    r = skyctl(f, "audit", "--limit", "3", "-o", "wide")
    lines = r.stdout.strip().splitlines()
    check(r.returncode == 0 and len(lines) == 4 and "REQUEST" in lines[0] and
          re.search(r"ci\s+GET\s+/v1/boards\s+401", lines[1]) and
          re.search(r"admin\s+DELETE\s+/v1/credentials/ci\s+200", lines[2]), f"audit: {r.stdout}")
    r = skyctl(f, "audit", "-o", "json")
    check(r.returncode == 0 and len(json.loads(r.stdout)["entries"]) >= 5, f"audit json: {r.stdout[:300]}")
    # --limit is one flag, "at most N items": the audit log takes up to
    # 10000, a list one page of up to 1000.
    r = skyctl(f, "audit", "--limit", "5000", "-o", "json")
    check(r.returncode == 0 and len(json.loads(r.stdout)["entries"]) >= 5, f"audit --limit 5000: {r.stderr}")
    r = skyctl(f, "board", "list", "--limit", "5000")
    check(r.returncode != 0 and "--limit here is 1 to 1000" in r.stderr, f"list --limit 5000: {r.stderr}")
    r = skyctl(f, "audit", "--limit", "10001")
    check(r.returncode == 2 and "--limit" in r.stderr, f"audit --limit 10001: {r.returncode} {r.stderr}")
    # 34 flags: those past bit 31 (--if-match, the last) still work and are
    # still refused where they do not belong.
    r = skyctl(f, "board", "set", "nope", "--description", "d", "--if-match", "x")
    check(r.returncode == 1 and "nope" in r.stderr, f"set --if-match reaches the controller: {r.returncode} {r.stderr}")
    r = skyctl(f, "token", "list", "--if-match", "x")
    check(r.returncode == 2 and "--if-match" in r.stderr, f"list --if-match: {r.returncode} {r.stderr}")
    r = skyctl(f, "credential", "rotate", "admin", "--if-match", "x")
    check(r.returncode == 2 and "--if-match" in r.stderr, f"rotate --if-match: {r.returncode} {r.stderr}")


def main():
    return run_cases(globals(), "skyroles", Fleet)


if __name__ == "__main__":
    sys.exit(main())
