#!/usr/bin/env python3
"""What every integration script shares: a controller with its state, its
agents and skyctl on loopback (Fleet), processes stopped by pid (Proc),
checks and waits, raw TLS and agent-link helpers, and run_cases, the
command line of every script.  The binaries come from $SKYROOTD,
$SKYAGENT, $SKYCTL; fixture boards from $SKY_FIXTURES/boards/{a,b,c}.

The store's engine: SQLite (skyroot.db in the state folder), or, when
$SKY_TEST_PG names a PostgreSQL server (postgresql://USER@HOST:PORT, no
database; deploy/test.sh starts one with tests/pg/pgserver.py for the ASan
run), a fresh database on it for each Fleet, dropped when the fleet closes.
A case about the SQLite file itself is pinned to SQLite (run_cases'
sqlite_only, Fleet(engine="sqlite")) and says so on its output.
"""
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SKYROOTD = os.environ.get("SKYROOTD", os.path.join(ROOT, "build/controller/skyrootd/skyrootd"))
SKYAGENT = os.environ.get("SKYAGENT", os.path.join(ROOT, "build/agent/skyagent"))
SKYCTL = os.environ.get("SKYCTL", os.path.join(ROOT, "build/controller/skyctl/skyctl"))
FIXTURES = os.environ.get("SKY_FIXTURES", os.path.join(ROOT, "tests", "fixtures"))
# Wall-clock limits scale by this under ASan/UBSan (tests/meson.build sets
# SKY_SANITIZE to the build's b_sanitize): sanitized processes run some
# times slower, more so on cores shared with other test runs.  Only limits
# that stand for "promptly" scale, never counts or orderings.
# skyrootd's event loops (--threads): unset, the daemon's default (one per
# online CPU); deploy/test.sh runs the suite with the default in build/ and
# with SKY_THREADS=1 in build-asan/, so both arrangements are covered.
SKY_THREADS = os.environ.get("SKY_THREADS", "")
SKY_SLOW = 1 if os.environ.get("SKY_SANITIZE", "none") in ("", "none") else 5
# The PostgreSQL server of the run (see the top), "" for SQLite.
SKY_TEST_PG = os.environ.get("SKY_TEST_PG", "").rstrip("/")
# The engine of a Fleet made without engine=: run_cases pins it to "sqlite"
# for the cases it is told are about the SQLite file.
ENGINE = "postgresql" if SKY_TEST_PG else "sqlite"


def psql(sql, db="postgres"):
    """Run SQL on database DB of the run's PostgreSQL server ($SKY_TEST_PG):
    its output (unaligned, tuples only)."""
    check(SKY_TEST_PG, "psql needs SKY_TEST_PG")
    # on stdin: a statement with a chunk's bytes is longer than an argument may be
    out = subprocess.run(["psql", f"{SKY_TEST_PG}/{db}", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"],
                         input=sql, capture_output=True, text=True, timeout=60)
    check(out.returncode == 0, f"psql {sql!r}: {out.stderr.strip()}")
    return out.stdout


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


_GIVEN_PORTS = set()  # ports this script handed out: bound later, by the programs it starts


def free_port():
    """A port of 127.0.0.1 nobody listens on and this script has not handed
    out before (the kernel may give a port again while the program it was
    for has not bound it yet)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if p not in _GIVEN_PORTS:
            _GIVEN_PORTS.add(p)
            return p
    raise Fail("no free port of 127.0.0.1 in 100 tries")


def given_ports():
    """The ports free_port handed out, for helpers that pick their own."""
    return sorted(_GIVEN_PORTS)


def wait_for(pred, timeout, what, interval=0.1):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            last = pred()
            if last:
                return last
        except (OSError, urllib.error.URLError, Fail) as e:
            last = e
        time.sleep(interval)
    raise Fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def pids_naming(mark):
    """Processes (other than this one) whose command line holds the bytes
    MARK, wherever they were reparented."""
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as c:
                    if mark in c.read():
                        pids.append(int(d))
            except OSError:
                pass
    return pids


def board_fixture(dst, src, uuid, hostname):
    """A copy at DST of fixture board SRC that a test may edit, with its own
    DMI product UUID and hostname."""
    shutil.copytree(os.path.join(FIXTURES, "boards", src), dst, symlinks=True)
    real = os.path.realpath(os.path.join(dst, "sys", "class", "dmi", "id"))
    check(real.startswith(os.path.realpath(dst) + os.sep), f"the DMI folder of the copy stays in it: {real}")
    with open(os.path.join(real, "product_uuid"), "w") as out:
        out.write(f"{uuid}\n")
    with open(os.path.join(dst, "proc", "sys", "kernel", "hostname"), "w") as out:
        out.write(f"{hostname}\n")
    return dst


class Proc:
    def __init__(self, args, log_path, env=None):
        self.args = args
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.p = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.p.poll() is None:
            try:
                os.kill(self.p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.p.pid, signal.SIGKILL)
                self.p.wait()
        self.log.close()
        return self.p.returncode

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


def agent_args(f, root, token=None, pin=None, binary=SKYAGENT):
    """The command line of an agent (BINARY) dialling fleet F's controller
    from the board folder ROOT, pinning its CA (or PIN), enrolling with
    TOKEN when given."""
    args = [binary, "--controller", f"127.0.0.1:{f.agent_port}", "--ca", pin or f.pin,
            "--sysfs-root", os.path.join(root, "sys"), "--procfs-root", os.path.join(root, "proc"),
            "--devfs-root", os.path.join(root, "dev"), "--cmdline", os.path.join(root, "proc", "cmdline")]
    if token:
        args += ["--token", token]
    return args


class Store:
    """The store of a state folder behind the controller's back, for tests
    that look at it or tamper with it, whichever the engine: Fleet is one;
    Store("sqlite", state) one of a state folder alone (a restored backup)."""

    def __init__(self, engine, state, pg_db=None):
        self.engine, self.state, self.pg_db = engine, state, pg_db

    def store_sql(self, sql):
        """The rows of SQL on the fleet's store as tuples of strings (NULL
        as ""; on PostgreSQL a boolean is "t"/"f"); a change is committed."""
        if self.engine == "postgresql":
            check(self.pg_db, "the fleet's database is gone")
            out = psql(sql, db=self.pg_db)
            return [tuple(line.split("|")) for line in out.splitlines() if line]
        import sqlite3
        con = sqlite3.connect(os.path.join(self.state, "skyroot.db"), timeout=10)
        try:
            rows = con.execute(sql).fetchall()
            con.commit()
        finally:
            con.close()
        return [tuple("" if v is None else str(v) for v in r) for r in rows]

    def store_blob(self, table, col, where):
        """The bytes of blob COL of the row of TABLE matching WHERE (SQL)."""
        hexf = f"encode({col}, 'hex')" if self.engine == "postgresql" else f"hex({col})"
        rows = self.store_sql(f"SELECT {hexf} FROM {table} WHERE {where}")
        check(len(rows) == 1, f"one row of {table} where {where}: {rows}")
        return bytes.fromhex(rows[0][0])

    def store_set_blob(self, table, col, where, data):
        """Blob COL of the rows of TABLE matching WHERE set to DATA."""
        lit = f"decode('{data.hex()}', 'hex')" if self.engine == "postgresql" else f"X'{data.hex()}'"
        self.store_sql(f"UPDATE {table} SET {col} = {lit} WHERE {where}")

    def store_dump(self):
        """Every byte the store holds, as one bytes: SQLite's file (and its
        WAL); on PostgreSQL pg_dump of the database."""
        if self.engine == "postgresql":
            dump = os.path.join(os.environ.get("SKY_PG_BIN", "/usr/lib/postgresql/15/bin"), "pg_dump")
            out = subprocess.run([dump, f"{SKY_TEST_PG}/{self.pg_db}"], capture_output=True, timeout=120)
            check(out.returncode == 0, f"pg_dump: {out.stderr.decode(errors='replace')}")
            return out.stdout
        data = b""
        for fn in ("skyroot.db", "skyroot.db-wal"):
            if os.path.exists(os.path.join(self.state, fn)):
                data += open(os.path.join(self.state, fn), "rb").read()
        return data

    def store_intact(self):
        """None when the store's own checks find it sound, else what they
        say: SQLite's integrity_check; on PostgreSQL pg_amcheck (the heap
        and B-tree indexes; the pages' data checksums are checked as read)."""
        if self.engine == "postgresql":
            amcheck = os.path.join(os.environ.get("SKY_PG_BIN", "/usr/lib/postgresql/15/bin"), "pg_amcheck")
            out = subprocess.run([amcheck, "--install-missing", "--heapallindexed", f"{SKY_TEST_PG}/{self.pg_db}"],
                                 capture_output=True, text=True, timeout=120)
            return None if out.returncode == 0 else (out.stdout + out.stderr).strip() or f"rc {out.returncode}"
        rows = self.store_sql("PRAGMA integrity_check")
        return None if rows == [("ok",)] else repr(rows)


class Fleet(Store):
    """A controller in a temporary state folder plus the agents of a case."""

    def __init__(self, tmp, cert_ttl=None, init_extra=(), engine=None):
        self.tmp = tmp
        self.state = os.path.join(tmp, "state")
        self.agent_port = free_port()
        self.api_port = free_port()
        self.cert_ttl = cert_ttl
        self.procs = []
        self.ctl = None
        self.engine = engine or ENGINE
        self.pg_db = None  # the fleet's database on PostgreSQL, dropped by close()
        db = []
        if self.engine == "postgresql":
            # unique over concurrent scripts (pid) and fleets of one script
            self.pg_db = f"sky_{os.getpid()}_{os.urandom(4).hex()}"
            psql(f"CREATE DATABASE {self.pg_db}")
            db = ["--db", f"{SKY_TEST_PG}/{self.pg_db}"]
        else:
            check(self.engine == "sqlite", f"engine {self.engine!r}")
        out = subprocess.run([SKYROOTD, "init", "--state", self.state,
                              "--api-listen", f"127.0.0.1:{self.api_port}"] + db + list(init_extra),
                             capture_output=True, text=True)
        check(out.returncode == 0, f"skyrootd init failed: {out.stderr}")
        self.init_output = out.stdout
        conf = open(os.path.join(self.state, "skyctl.conf")).read()
        self.admin = [l.split("=", 1)[1].strip() for l in conf.splitlines() if l.startswith("token")][0]
        self.ca_file = os.path.join(self.state, "ca.crt")
        der = subprocess.run(["openssl", "x509", "-in", self.ca_file, "-outform", "der"],
                             capture_output=True, check=True).stdout
        self.pin = "sha256:" + hashlib.sha256(der).hexdigest()
        self.sslctx = ssl.create_default_context(cafile=self.ca_file)

    # ---- controller ----
    def start(self, extra=(), env=None, wait=True):
        args = [SKYROOTD, "run", "--state", self.state,
                "--agent-listen", f"127.0.0.1:{self.agent_port}",
                "--api-listen", f"127.0.0.1:{self.api_port}", "--log-level", "debug"]
        if self.cert_ttl:
            args += ["--cert-ttl", str(self.cert_ttl)]
        if SKY_THREADS and not any(str(a).startswith("--threads") for a in extra):
            args += ["--threads", SKY_THREADS]
        args += list(extra)
        self.ctl = Proc(args, os.path.join(self.tmp, "skyrootd.log"), env=env)
        self.procs.append(self.ctl)
        if wait:
            wait_for(lambda: self.api("GET", "/healthz", auth=False)[0] == 200, 10, "controller health")
        return self.ctl

    def request(self, method, path, data=None, headers=None, token=None, timeout=10):
        """(status, headers, raw body) of one request to the API: data as
        given, the admin token unless token is another or False (none)."""
        req = urllib.request.Request(f"https://127.0.0.1:{self.api_port}{path}", data=data, method=method)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        if token is not False:
            req.add_header("Authorization", f"Bearer {token or self.admin}")
        try:
            with urllib.request.urlopen(req, context=self.sslctx, timeout=timeout) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def api(self, method, path, body=None, auth=True, token=None):
        """(status, answer as JSON: None when empty, the bytes when not JSON)."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else None
        st, _, raw = self.request(method, path, data, headers, token=(token or None) if auth else False)
        if st < 400 and not raw:
            return st, None
        try:
            return st, json.loads(raw)
        except ValueError:
            return st, raw

    def token(self, uses=1, ttl=3600):
        st, body = self.api("POST", "/v1/tokens", {"uses": uses, "ttl_seconds": ttl})
        check(st == 201, f"token create: {st} {body}")
        return body

    def boards(self):
        st, body = self.api("GET", "/v1/boards")
        check(st == 200, f"board list: {st} {body}")
        return body["boards"]

    def online(self):
        return {b["id"]: b for b in self.boards() if b["state"] == "online"}

    # ---- agents ----
    def agent(self, board, token=None, pin=None, extra=(), name=None, once=False, hb=None, env=None, root=None):
        """An agent on fixture board BOARD, or on the board folder ROOT
        (a copy a test may edit) when given."""
        args = agent_args(self, root or os.path.join(FIXTURES, "boards", board), token=token, pin=pin)
        if once:
            args += ["--once"]
        if hb:
            args += ["--heartbeat-interval", str(hb)]
        args += list(extra)
        p = Proc(args, os.path.join(self.tmp, f"agent-{name or board}-{len(self.procs)}.log"), env=env)
        self.procs.append(p)
        return p

    def online_with(self, *boards, timeout=20):
        """An agent on each fixture board named, all enrolled with one token
        of as many uses, and every one of them online: that token."""
        tok = self.token(uses=len(boards))
        for b in boards:
            self.agent(b, token=tok["token"])
        wait_for(lambda: len(self.online()) == len(boards), timeout, f"{len(boards)} boards online")
        return tok

    def dump_failure(self, tmp):
        self.close()
        for fn in sorted(os.listdir(tmp)):
            if fn.endswith(".log"):
                print(f"---- {fn}", file=sys.stderr)
                print(open(os.path.join(tmp, fn), errors="replace").read()[-4000:], file=sys.stderr)

    def close(self):
        """Stop everything; report sanitizer findings and unclean exits."""
        problems = []
        for p in reversed(self.procs):
            running = p.p.poll() is None
            rc = p.stop()
            text = p.text()
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                           "WARNING: ThreadSanitizer"):
                if marker in text:
                    problems.append(f"{os.path.basename(p.log_path)}: {marker}")
            if running and rc != 0:
                problems.append(f"{os.path.basename(p.log_path)}: exit status {rc} after SIGTERM")
        self.procs = []
        if self.pg_db:
            # after the controller stopped; FORCE: a straggler's session too
            db, self.pg_db = self.pg_db, None
            try:
                psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
            except Fail as e:
                problems.append(f"drop of the fleet's database: {e}")
        return problems

def sqlq(text):
    """TEXT as an SQL string literal (both engines read it the same)."""
    return "'" + str(text).replace("'", "''") + "'"


# --------------------------------------------------------------------------
# cases

def expect_refused(p, needle, timeout=20):
    rc = wait_for(lambda: p.p.poll() is not None and [p.p.returncode], timeout, "agent to give up")[0]
    check(rc == 1, f"agent exit code {rc}, expected 1; log:\n{p.text()}")
    check(needle in p.text(), f"agent log lacks {needle!r}:\n{p.text()}")


def cert_fields(pem):
    """The subject CN, the serial (hex) and the issuer of a PEM certificate."""
    out = subprocess.run(["openssl", "x509", "-in", pem, "-noout", "-serial", "-issuer", "-subject",
                          "-nameopt", "RFC2253"], capture_output=True, text=True, check=True).stdout
    v = dict(l.split("=", 1) for l in out.splitlines())
    cn = [p[3:] for p in v["subject"].split(",") if p.startswith("CN=")][0]
    return cn, v["serial"], v["issuer"]


def forge_cert(tmp, like_pem):
    """A certificate copying every public field of a real board's one (the
    subject, the serial, the issuer's name, client use) but signed by a CA
    of our own: only the chain's signature can tell it apart."""
    cn, serial, issuer = cert_fields(like_pem)
    ca_key, ca_crt = os.path.join(tmp, "forger-ca.key"), os.path.join(tmp, "forger-ca.crt")
    key, csr, crt = (os.path.join(tmp, f"forged.{x}") for x in ("key", "csr", "crt"))
    ext = os.path.join(tmp, "forged.ext")
    with open(ext, "w") as fh:
        fh.write("extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    subj = "/" + "/".join(reversed(issuer.split(",")))
    subprocess.run(["openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", ca_crt, "-days", "1",
                    "-subj", subj, "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign"], check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-new", *ec, "-keyout", key, "-out", csr, "-subj", f"/CN={cn}"],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
                    "-set_serial", "0x" + serial, "-days", "1", "-extfile", ext, "-out", crt],
                   check=True, capture_output=True)
    check(cert_fields(crt) == (cn, serial, issuer), f"the forgery copies CN, serial and issuer: {cert_fields(crt)}")
    return crt, key


def tls_connect(f, cert=None, key=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(f.ca_file)
    if cert:
        ctx.load_cert_chain(cert, key)
    s = socket.create_connection(("127.0.0.1", f.agent_port), timeout=5)
    return ctx.wrap_socket(s, server_hostname="127.0.0.1")


def read_until_closed(s, timeout=5):
    s.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data, "eof"
            data += chunk
    except ssl.SSLError as e:
        return data, f"tls error {e}"
    except ConnectionResetError:
        return data, "reset"
    except socket.timeout:
        return data, "timeout"


def read_for(s, done, timeout=10):
    """What socket S sends until done(data) holds, it ends, it fails or
    TIMEOUT seconds pass."""
    s.settimeout(timeout)
    data = b""
    end = time.time() + timeout
    while time.time() < end and not done(data):
        try:
            got = s.recv(65536)
        except (socket.timeout, ssl.SSLError, OSError):
            break
        if not got:
            break
        data += got
    return data


def heartbeat_with_cert(f, crt, key, close_after_answer=False):
    """Send a heartbeat on a connection with that client certificate: what
    came back before the controller closed it (or, close_after_answer, up
    to the heartbeat's answer), and how it closed."""
    s = tls_connect(f, crt, key)
    # TLS 1.3: the server checks the client certificate after our side is done.
    try:
        s.sendall(struct.pack(">I", 6) + b"\x08\x01\x6a\x02\x08\x01")
    except (ssl.SSLError, OSError):
        pass
    if close_after_answer:
        data, how = b"", "timeout"
        s.settimeout(10)
        try:
            while not any(13 in e for e in link_frames(data)):
                chunk = s.recv(65536)
                if not chunk:
                    how = "eof"
                    break
                data += chunk
            else:
                how = "answered"
        except (ssl.SSLError, OSError) as e:
            how = f"error {e}"
    else:
        data, how = read_until_closed(s)
    s.close()
    return data, how


def pb_varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def pb_field(num, value):
    """One length-delimited protobuf field (wire type 2), for hand-made
    frames that skyagent would never send."""
    return pb_varint(num << 3 | 2) + pb_varint(len(value)) + value


def pb_fields(buf):
    """The fields of a protobuf message as (number, value): an int for a
    varint, bytes otherwise."""
    def varint(i):
        v = shift = 0
        while True:
            check(i < len(buf), f"truncated varint in {buf!r}")
            b = buf[i]
            v |= (b & 0x7F) << shift
            shift += 7
            i += 1
            if not b & 0x80:
                return v, i
    out, i = [], 0
    while i < len(buf):
        key, i = varint(i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(i)
        elif wt == 2:
            n, i = varint(i)
            v, i = buf[i:i + n], i + n
        elif wt in (1, 5):
            n = 8 if wt == 1 else 4
            v, i = buf[i:i + n], i + n
        else:
            raise Fail(f"wire type {wt} in {buf!r}")
        out.append((num, v))
    return out


def link_frames(data):
    """The agent-link envelopes in what a connection received, each as
    {field number: value} (body 13 a heartbeat, 16 an error, 22 chunk data)."""
    out = []
    while len(data) >= 4:
        n = struct.unpack(">I", data[:4])[0]
        if len(data) < 4 + n:
            break
        out.append(dict(pb_fields(data[4:4 + n])))
        data = data[4 + n:]
    return out


def link_errors(data):
    """(request id, code, message) of every Error frame in data."""
    errs = []
    for env in link_frames(data):
        if 16 in env:
            e = dict(pb_fields(env[16]))
            errs.append((env.get(1, 0), e.get(1, 0), e.get(2, b"").decode(errors="replace")))
    return errs


def fetch_text(url, ctx=None):
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def reader_token(f):
    """The reader token that `skyrootd init` printed once."""
    lines = f.init_output.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Reader token"):
            return lines[i + 1].strip()
    raise Fail(f"skyrootd init printed no reader token:\n{f.init_output}")


def role_tokens(f, roles=("reader", "operator")):
    """A new credential of each role (named c-ROLE): {role: its token}."""
    toks = {}
    for role in roles:
        st, ans = f.api("POST", "/v1/credentials", {"name": f"c-{role}", "role": role})
        check(st == 201, f"credential {role}: {st} {ans}")
        toks[role] = ans["token"]
    return toks


def status_kib(pid, field):
    """A line of /proc/PID/status: VmRSS and VmHWM in KiB, Threads a count."""
    with open(f"/proc/{pid}/status") as st:
        for line in st:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise Fail(f"no {field} in /proc/{pid}/status")


class PeakRss:
    """The peak RSS of pid in bytes from now on: VmHWM reset (clear_refs 5)
    where the kernel lets us, and VmRSS polled every 5 ms besides.  base:
    the RSS at the start; stop() (again is harmless) returns the peak; how
    says which of the two measured it."""

    def __init__(self, pid):
        self.pid = pid
        self.base = status_kib(pid, "VmRSS") << 10
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as cr:
                cr.write("5")
            self.hwm = True
        except OSError:
            self.hwm = False
        self.peak = self.base
        self.done = threading.Event()
        self.t = threading.Thread(target=self._poll, daemon=True)
        self.t.start()

    def _poll(self):
        while not self.done.wait(0.005):
            try:
                self.peak = max(self.peak, status_kib(self.pid, "VmRSS") << 10)
            except (OSError, Fail):  # the process is gone: its run has failed, and says so
                return

    def stop(self):
        self.done.set()
        self.t.join()
        self.peak = max(self.peak, status_kib(self.pid, "VmRSS") << 10)
        if self.hwm:
            self.peak = max(self.peak, status_kib(self.pid, "VmHWM") << 10)
        return self.peak

    @property
    def how(self):
        return ("VmHWM reset before, and " if self.hwm else "") + "VmRSS polled every 5 ms"


def metrics(f):
    """Every sample of GET /metrics (as the admin) as {'name{labels}': value}."""
    req = urllib.request.Request(f"https://127.0.0.1:{f.api_port}/metrics",
                                 headers={"Authorization": f"Bearer {f.admin}"})
    with urllib.request.urlopen(req, context=f.sslctx, timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = int(float(value))
    return out


def board_token(f, bid):
    r = skyctl(f, "-o", "json", "token", "create", "--board", bid)
    check(r.returncode == 0, f"token create --board: {r.stderr}")
    tok = json.loads(r.stdout)
    check(tok.get("board") == bid, f"the token names its board: {tok}")
    return tok


def refused_old_cert(f, pem):
    """Connect with a certificate the controller issued; the session is
    refused at the handshake check with a 'revoked' error frame."""
    data, how = heartbeat_with_cert(f, pem, pem)
    check(how != "timeout", f"the connection with the old certificate is closed ({how}, {data!r})")
    check(b"replaced" in data and b"\x6a" not in data, f"an error frame says it was replaced: {data!r}")


def skyctl(f, *args, conf=True, input_bytes=None):
    cmd = [SKYCTL]
    if conf:
        cmd += ["--config", os.path.join(f.state, "skyctl.conf")]
    if input_bytes is not None:
        r = subprocess.run(cmd + list(args), capture_output=True, input=input_bytes, timeout=30)
        return subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode(), r.stderr.decode())
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=30)


def run_cases(cases, prefix, make, skip=None, sqlite_only=None):
    """The command line of every test script: one CASE, its processes
    stopped and checked for sanitizer findings, logs shown on failure.
    sqlite_only: {case name: why} of cases about the SQLite file itself,
    which run on SQLite whatever the run's engine (and say so)."""
    global ENGINE
    if len(sys.argv) != 2 or f"case_{sys.argv[1]}" not in cases:
        names = sorted(k[5:] for k in cases if k.startswith("case_"))
        print(f"usage: {sys.argv[0]} CASE\ncases: {' '.join(names)}", file=sys.stderr)
        return 2
    if skip:
        why = skip()
        if why:
            print(f"SKIP: {why}")
            return 77
    name = sys.argv[1]
    if name in (sqlite_only or {}) and ENGINE != "sqlite":
        print(f"engine: sqlite, not {ENGINE} (pinned: {sqlite_only[name]})")
        ENGINE = "sqlite"
    else:
        print(f"engine: {ENGINE}")
    tmp = tempfile.mkdtemp(prefix=f"{prefix}-{name}-")
    f = None
    try:
        f = make(tmp)
        cases[f"case_{name}"](f)
        problems = f.close()
        if problems:
            raise Fail("; ".join(problems))
    except Fail as e:
        print(f"FAIL {name}: {e}", file=sys.stderr)
        if f:
            f.dump_failure(tmp)
        return 1
    finally:
        if f:
            f.close()
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"ok {name}")
    return 0


