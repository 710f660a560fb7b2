#!/usr/bin/env python3
"""Integration tests of GET /metrics, /readyz and the reader token.

Usage: metrics.py CASE (binaries as in fleet.py).  `prometheus` runs
Debian's real Prometheus (deploy/packages/metrics.txt) on a free
127.0.0.1 port with its storage in the case's temporary folder, scraping
skyrootd over TLS with the reader token, and asks it through its query
API; it is stopped by pid.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import SKYROOTD, Fail, Fleet, Proc, check, free_port, reader_token, run_cases, wait_for  # noqa: E402

PROMETHEUS = shutil.which("prometheus")


def scrape(f, token):
    """GET /metrics as text: (status, text)."""
    req = urllib.request.Request(f"https://127.0.0.1:{f.api_port}/metrics")
    req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, context=f.sslctx, timeout=10) as r:
            check(r.headers["Content-Type"].startswith("text/plain; version=0.0.4"),
                  f"content type {r.headers['Content-Type']}")
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def sample(text, line_start):
    """The value of the sample whose line starts with line_start."""
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    raise Fail(f"no sample {line_start!r} in:\n{text}")


def enroll(f, n):
    tok = f.token(uses=n)
    for b in "abc"[:n]:
        f.agent(b, token=tok["token"])
    wait_for(lambda: len(f.online()) == n, 20, f"{n} boards online")


# --------------------------------------------------------------------------
# cases

def case_reader_token(f):
    f.start()
    reader = reader_token(f)
    check(reader.startswith("skr-") and reader not in open(os.path.join(f.state, "reader.token.sha256")).read(),
          "only the reader token's hash is kept")
    mode = os.stat(os.path.join(f.state, "reader.token.sha256")).st_mode & 0o777
    check(mode == 0o600, f"reader.token.sha256 mode {mode:o}")
    # The reader reads /metrics; so does the admin.
    st, text = scrape(f, reader)
    check(st == 200 and "# TYPE skyroot_boards gauge" in text, f"reader GET /metrics: {st} {text[:200]}")
    check(sample(text, 'skyroot_build_info{version="0.1.0"}') == 1, "build info")
    st, _ = scrape(f, f.admin)
    check(st == 200, f"admin GET /metrics: {st}")
    # It is the credential 'reader' (role reader): it reads, it changes nothing
    # (tests/integration/roles.py tries every route).
    st, body = f.api("POST", "/v1/tokens", {"uses": 1}, token=reader)
    check(st == 403 and body["error"]["code"] == "forbidden" and "role 'operator'" in body["error"]["message"]
          and "'reader'" in body["error"]["message"], f"reader POST /v1/tokens: {st} {body}")
    st, body = f.api("GET", "/v1/boards", token=reader)
    check(st == 200, f"reader GET /v1/boards: {st} {body}")
    st, body = f.api("DELETE", "/v1/tokens/tok-0000", token=reader)
    check(st == 403, f"reader DELETE: {st} {body}")
    st, toks = f.api("GET", "/v1/tokens")
    check(st == 200 and toks["tokens"] == [], f"no token was made: {toks}")
    # Wrong and missing tokens.
    st, body = scrape(f, "skr-" + "0" * 64)
    check(st == 401 and "invalid or expired" in body, f"wrong token: {st} {body}")
    st, body = f.api("GET", "/metrics", auth=False)
    check(st == 401 and "Authorization: Bearer" in body["error"]["message"], f"no token: {st} {body}")
    # Health and readiness need no token.
    st, body = f.api("GET", "/readyz", auth=False)
    check(st == 200 and body["status"] == "ok" and body["store"] and body["agent_port"] and body["api_port"],
          f"readyz {st} {body}")
    # A new reader token replaces the old one once the controller is told.
    out = subprocess.run([SKYROOTD, "reader-token", "--state", f.state], capture_output=True, text=True)
    check(out.returncode == 0 and "skr-" in out.stdout, f"reader-token: {out.returncode} {out.stderr}")
    new = [l.strip() for l in out.stdout.splitlines() if l.strip().startswith("skr-")][0]
    check(new != reader, "a new token")
    os.kill(f.ctl.p.pid, signal.SIGHUP)
    wait_for(lambda: scrape(f, new)[0] == 200, 10, "the new reader token to work after SIGHUP")
    check(scrape(f, reader)[0] == 401, "the old reader token no longer works")
    out = subprocess.run([SKYROOTD, "reader-token", "--state", os.path.join(f.tmp, "none")],
                         capture_output=True, text=True)
    check(out.returncode == 1 and "skyrootd init" in out.stderr, f"reader-token without a state: {out.stderr}")


def case_counters(f):
    """The counters follow what happens: enrollments, refusals, sessions."""
    f.start()
    reader = reader_token(f)
    enroll(f, 2)
    bad = f.agent("c", token="skt-" + "0" * 64, once=True)
    wait_for(lambda: bad.p.poll() is not None, 20, "the agent with an unknown token to give up")
    st, text = scrape(f, reader)
    check(st == 200, f"scrape {st}")
    check(sample(text, 'skyroot_boards{state="online"}') == 2, "two boards online")
    check(sample(text, "skyroot_sessions") == 2, "two sessions")
    check(sample(text, "skyroot_enrollments_total") == 2, "two enrollments")
    check(sample(text, 'skyroot_enrollment_failures_total{reason="token_unknown"}') == 1, "one refusal")
    check(sample(text, 'skyroot_api_requests_total{route="/v1/tokens",code="201"}') == 1, "token create counted")
    check(sample(text, 'skyroot_api_request_duration_seconds_count{route="/v1/boards"}') >= 1, "latency counted")
    # A board goes away: offline, its session gone.
    f.api("DELETE", f"/v1/boards/{list(f.online())[0]}")
    wait_for(lambda: sample(scrape(f, reader)[1], "skyroot_sessions") == 1, 10, "one session left")


def prom_query(port, q):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.load(r)
    check(body["status"] == "success", f"query {q}: {body}")
    return body["data"]["result"]


def prom_value(port, q):
    res = prom_query(port, q)
    return float(res[0]["value"][1]) if res else None


def case_prometheus(f):
    f.start()
    reader = reader_token(f)
    enroll(f, 3)
    port = free_port()
    pdir = os.path.join(f.tmp, "prometheus")
    os.makedirs(pdir)
    conf = os.path.join(pdir, "prometheus.yml")
    with open(conf, "w") as c:
        c.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: skyrootd
    scheme: https
    scrape_interval: 1s
    scrape_timeout: 1s
    authorization:
      type: Bearer
      credentials: {reader}
    tls_config:
      ca_file: {f.ca_file}
      server_name: localhost
    static_configs:
      - targets: ['127.0.0.1:{f.api_port}']
""")
    if shutil.which("promtool"):
        out = subprocess.run(["promtool", "check", "config", conf], capture_output=True, text=True)
        check(out.returncode == 0, f"promtool check config: {out.stdout} {out.stderr}")
    p = Proc([PROMETHEUS, f"--config.file={conf}", f"--storage.tsdb.path={os.path.join(pdir, 'data')}",
              f"--web.listen-address=127.0.0.1:{port}"], os.path.join(f.tmp, "prometheus.log"))
    f.procs.append(p)
    wait_for(lambda: prom_value(port, 'up{job="skyrootd"}') == 1, 30, "Prometheus to scrape skyrootd")
    online = len(f.online())
    check(online == 3, f"{online} boards online")
    wait_for(lambda: prom_value(port, 'skyroot_boards{state="online"}') == online, 10,
             "skyroot_boards{state=\"online\"} in Prometheus to be the boards online")
    check(prom_value(port, 'skyroot_build_info{version="0.1.0"}') == 1, "build info")
    check(prom_value(port, "skyroot_enrollments_total") == 3, "three enrollments")
    check(prom_query(port, "skyroot_api_request_duration_seconds_bucket") != [], "histogram buckets scraped")
    # API requests we make show in Prometheus's next scrapes.
    q = 'sum(skyroot_api_requests_total{route="/v1/boards"})'
    before = prom_value(port, q) or 0
    for _ in range(5):
        f.boards()
    wait_for(lambda: (prom_value(port, q) or 0) >= before + 5, 10, "the request counter to grow by 5")
    # A board goes: Prometheus sees two online.
    f.api("DELETE", f"/v1/boards/{list(f.online())[0]}")
    wait_for(lambda: prom_value(port, 'skyroot_boards{state="online"}') == 2, 10, "two boards online")
    rc = p.stop()
    check(rc == 0, f"prometheus exit status {rc}")


def skip():
    return None if PROMETHEUS or sys.argv[1:] != ["prometheus"] else \
        "prometheus is not installed (deploy/deps.sh installs it from deploy/packages/metrics.txt)"


def main():
    return run_cases(globals(), "skymetrics", Fleet, skip=skip)


if __name__ == "__main__":
    sys.exit(main())
