#!/usr/bin/env python3
"""Integration tests of skyrootd's config file and SIGHUP: the log level
changes on a running controller, a bad file changes nothing and is
reported with its line, keys that cannot change live say so, and a new
server certificate is served to new connections.

Usage: config.py CASE (binaries as in fleet.py).
"""
import os
import signal
import socket
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import SKYROOTD, Fleet, Proc, check, run_cases, wait_for  # noqa: E402

DEBUG_LINE = "http: GET /healthz -> 200"


def write_conf(f, text):
    path = os.path.join(f.tmp, "skyrootd.conf")
    with open(path + ".new", "w") as fh:
        fh.write(text)
    os.replace(path + ".new", path)
    return path


def start(f, conf):
    """The controller with a config file and no --log-level flag (the
    file's log level is what counts)."""
    path = write_conf(f, conf)
    args = [SKYROOTD, "run", "--config", path, "--state", f.state,
            "--agent-listen", f"127.0.0.1:{f.agent_port}", "--api-listen", f"127.0.0.1:{f.api_port}"]
    f.ctl = Proc(args, os.path.join(f.tmp, "skyrootd.log"))
    f.procs.append(f.ctl)
    wait_for(lambda: f.api("GET", "/healthz", auth=False)[0] == 200, 10, "controller health")
    return f.ctl, path


def hup(f, needle):
    """SIGHUP, then wait for one more line holding needle."""
    n = f.ctl.text().count(needle)
    os.kill(f.ctl.p.pid, signal.SIGHUP)
    wait_for(lambda: f.ctl.text().count(needle) > n, 10, f"'{needle}' after SIGHUP")
    check(f.ctl.p.poll() is None, "skyrootd ended on SIGHUP")


def debug_lines_after_request(f):
    n = f.ctl.text().count(DEBUG_LINE)
    check(f.api("GET", "/healthz", auth=False)[0] == 200, "the API answers")
    check(f.api("GET", "/v1/boards")[0] == 200, "the API answers with the admin token")
    # The log line is written before the answer goes out.
    return f.ctl.text().count(DEBUG_LINE) - n


def case_sighup_log_level(f):
    """SIGHUP takes the new log level and cert TTL; it keeps serving."""
    ctl, path = start(f, "log-level = debug\n")
    check(debug_lines_after_request(f) == 1, "debug lines at log-level debug")
    write_conf(f, "# quieter\nlog-level = info\ncert-ttl = 12h\n")
    hup(f, f"SIGHUP: {path}: cert-ttl 1d -> 12h, log-level debug -> info")
    check(debug_lines_after_request(f) == 0, "no debug lines at log-level info")
    write_conf(f, "log-level = debug\ncert-ttl = 12h\n")
    hup(f, "log-level info -> debug")
    check(debug_lines_after_request(f) == 1, "debug lines again at log-level debug")
    hup(f, f"SIGHUP: {path}: nothing changed")


def case_sighup_bad_file(f):
    """A bad file at SIGHUP is reported with its line and changes nothing;
    what cannot change live is reported as needing a restart."""
    ctl, path = start(f, "log-level = debug\n")
    write_conf(f, "log-level = info\ncert-tll = 1h\n")
    hup(f, f"SIGHUP: {path}:2: unknown key 'cert-tll'; did you mean 'cert-ttl'?; nothing changed")
    check(debug_lines_after_request(f) == 1, "the log level is unchanged after a bad file")
    write_conf(f, "log-level = info\napi-conns-max = many\n")
    hup(f, f"SIGHUP: {path}:2: --api-conns-max 'many' is not a whole number")
    check(debug_lines_after_request(f) == 1, "still unchanged")
    # Addresses and the store's limits need a restart; flags win anyway.
    write_conf(f, "log-level = debug\nadvertise = ctl.example.net:1\nimage-max = 1G\napi-listen = 127.0.0.1:1\n")
    hup(f, "SIGHUP: advertise, image-max changed: needs a restart (kept as it was)")
    check("api-listen" not in ctl.text(), "api-listen is a flag: the file's does not count")
    check(f.api("GET", "/v1/boards")[0] == 200, "the API still answers on its address")
    check(ctl.p.poll() is None, "skyrootd still runs")


def served_cert(port):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return s.getpeercert(binary_form=True)


def new_server_cert(f, serial, ca_crt=None, ca_key=None):
    """A new server key and certificate, signed by the state's CA unless
    told otherwise, moved into the state folder."""
    d = os.path.join(f.tmp, f"cert-{serial}")
    os.makedirs(d)
    key, csr, crt, ext = (os.path.join(d, n) for n in ("server.key", "server.csr", "server.crt", "ext"))
    with open(ext, "w") as fh:
        fh.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=skyrootd"],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt or os.path.join(f.state, "ca.crt"),
                    "-CAkey", ca_key or os.path.join(f.state, "ca.key"), "-set_serial", str(serial),
                    "-days", "30", "-extfile", ext, "-out", crt], check=True, capture_output=True)
    os.chmod(key, 0o600)
    os.chmod(crt, 0o600)
    der = ssl.PEM_cert_to_DER_cert(open(crt).read())
    os.replace(key, os.path.join(f.state, "server.key"))
    os.replace(crt, os.path.join(f.state, "server.crt"))
    return der


def case_sighup_server_cert(f):
    """A server certificate replaced in the state folder is served to new
    connections after SIGHUP, on the API port and on the agent port; one
    not signed by the controller's CA is refused and the old one stays."""
    ctl, path = start(f, "")
    old = served_cert(f.api_port)
    check(old == served_cert(f.agent_port), "one server certificate on both ports")
    der = new_server_cert(f, 0x5EED1)
    check(served_cert(f.api_port) == old, "nothing changes before SIGHUP")
    hup(f, "-> 05EED1 (new connections)")
    check(served_cert(f.api_port) == der, "the API port serves the new certificate")
    check(served_cert(f.agent_port) == der, "the agent port serves the new certificate")
    check(f.api("GET", "/v1/boards")[0] == 200, "the API answers (the CA checks the new certificate)")
    # A certificate from another CA: refused, the last one stays.
    other = os.path.join(f.tmp, "other")
    os.makedirs(other)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", os.path.join(other, "ca.key"), "-out", os.path.join(other, "ca.crt"),
                    "-subj", "/CN=Other CA", "-days", "30"], check=True, capture_output=True)
    new_server_cert(f, 0xBAD, os.path.join(other, "ca.crt"), os.path.join(other, "ca.key"))
    hup(f, "server.crt is not signed by the controller's CA")
    check(served_cert(f.api_port) == der, "the refused certificate is not served")
    check(f.api("GET", "/v1/boards")[0] == 200, "the API still answers")


def main():
    return run_cases(globals(), "skyconf", Fleet)


if __name__ == "__main__":
    sys.exit(main())
