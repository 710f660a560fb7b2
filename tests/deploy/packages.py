#!/usr/bin/env python3
"""The Debian packages: deploy/package.sh builds them (the firmware package
from a small stand-in folder), lintian finds no error or warning that is
not overridden, dpkg -i installs them on this machine, the programs run
from /usr/bin, the units verify, and dpkg --purge leaves nothing of them
(the system user skyroot stays, as Debian keeps system users).

Needs root (dpkg -i).  Skips (77) when a skyroot package is installed
already: it never touches an installation it did not make.  Cleans up
(purge, the user it made, its folder) whether it passes or not.
"""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PACKAGES = ["skyroot-controller", "skyroot-agent", "skyroot-firmware"]
STATE = "/var/lib/skyroot"


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


def installed(pkg):
    out = run(["dpkg-query", "-W", "-f=${Status}", pkg])
    return out.returncode == 0 and "not-installed" not in out.stdout and out.stdout.strip() != ""


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def skip_reason():
    if os.geteuid() != 0:
        return "needs root (dpkg -i)"
    for tool in ("dpkg-buildpackage", "dh", "fakeroot", "lintian", "systemd-analyze", "adduser"):
        if not shutil.which(tool):
            return f"{tool} is missing: run deploy/deps.sh"
    for p in PACKAGES:
        if installed(p):
            return f"{p} is installed on this machine already; this test installs and purges its own"
    if os.path.exists(STATE):
        return f"{STATE} exists: a controller's state this test must not purge"
    return None


def build(tmp):
    fw = os.path.join(tmp, "firmware")
    os.mkdir(fw)
    # Stand-ins: the package ships whatever fwimage/build.sh --out made.
    for name in ("vmlinuz", "initrd.img", "skyroot.efi"):
        with open(os.path.join(fw, name), "w") as f:
            f.write(f"stand-in {name}\n")
    out = run([os.path.join(ROOT, "deploy", "package.sh"), "--firmware", fw, os.path.join(tmp, "debs")])
    check(out.returncode == 0, f"package.sh failed:\n{out.stderr[-4000:]}")
    debs = out.stdout.split()
    names = sorted(os.path.basename(d).split("_")[0] for d in debs)
    check(names == sorted(PACKAGES), f"package.sh printed {debs}")
    for d in debs:
        check(os.path.isabs(d) and os.path.exists(d), f"not a .deb path: {d}")
    return debs


def lint(debs):
    out = run(["lintian", "--fail-on", "error,warning", "--display-level", ">=warning", *debs])
    tags = [l for l in out.stdout.splitlines() if l[:2] in ("E:", "W:")]
    check(out.returncode == 0 and not tags, f"lintian (rc {out.returncode}):\n{out.stdout}{out.stderr}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_once(tmp):
    """The installed skyrootd as the unit runs it: user skyroot, the sample
    config, ready (READY=1 on a notify socket) and stopped by SIGTERM."""
    path = os.path.join(tmp, "notify.sock")
    n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    n.bind(path)
    os.chmod(tmp, 0o755)
    os.chmod(path, 0o777)
    n.settimeout(20)
    # setpriv execs (runuser would stay the parent and die of the signal).
    args = ["setpriv", "--reuid=skyroot", "--regid=skyroot", "--init-groups", "/usr/bin/skyrootd", "run", "--config", "/etc/skyroot/skyrootd.conf",
            "--state", STATE, "--agent-listen", f"127.0.0.1:{free_port()}",
            "--api-listen", f"127.0.0.1:{free_port()}"]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         env=dict(os.environ, NOTIFY_SOCKET=path))
    try:
        try:
            msg = n.recv(4096).decode()
        except socket.timeout:
            msg = ""
        check("READY=1" in msg, f"the packaged skyrootd as skyroot with the sample config is ready: {msg!r}")
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = p.wait()
        n.close()
    check(rc == 0, f"skyrootd stops with 0 on SIGTERM (rc {rc}): {p.stdout.read().decode(errors='replace')[-2000:]}")


def exercise(debs, tmp):
    out = run(["dpkg", "-i", *debs])
    check(out.returncode == 0, f"dpkg -i: {out.stdout}{out.stderr}")
    out = run(["/usr/bin/skyrootd", "--version"])
    check(out.returncode == 0 and out.stdout.startswith("skyrootd "), f"skyrootd --version: {out}")
    for prog in ("/usr/bin/skyctl", "/usr/bin/skyagent-full"):
        out = run([prog, "--help"])
        check(out.returncode == 0 and "usage" in (out.stdout + out.stderr).lower(), f"{prog} --help: {out}")
    # skyagent-full's skyvmm backend runs the microVM from where it looks first
    out = run(["/usr/libexec/skyroot/skyvmm", "--help"])
    check(out.returncode == 0 and "usage" in (out.stdout + out.stderr).lower(), f"skyvmm --help: {out}")
    u = pwd.getpwnam("skyroot")
    check(u.pw_uid < 1000 and u.pw_dir == STATE and ("nologin" in u.pw_shell or u.pw_shell == "/bin/false"),
          f"skyroot is a system user without a login: {u}")
    units = ["/lib/systemd/system/skyrootd.service", "/lib/systemd/system/skyagent.service"]
    out = run(["systemd-analyze", "verify", *units])
    check(out.returncode == 0 and not out.stderr.strip(), f"systemd-analyze verify: {out.stderr}")
    check(os.path.exists("/etc/systemd/system/multi-user.target.wants/skyrootd.service"),
          "skyrootd.service is enabled on installation")
    check(not os.path.exists("/etc/systemd/system/multi-user.target.wants/skyagent.service"),
          "skyagent.service waits for its configuration: not enabled")
    with open("/usr/lib/skyroot/firmware/vmlinuz") as f:
        check(f.read() == "stand-in vmlinuz\n", "the firmware images as given")
    # A state as the unit's first start makes it (StateDirectory=, then
    # init as the user skyroot): purge must take it too.
    os.mkdir(STATE, 0o700)
    os.chown(STATE, u.pw_uid, u.pw_gid)
    out = run(["runuser", "-u", "skyroot", "--", "/usr/bin/skyrootd", "init", "--state", STATE])
    check(out.returncode == 0, f"skyrootd init as skyroot: {out.stderr}")
    serve_once(tmp)

    files = []
    for p in PACKAGES:
        files += [l for l in run(["dpkg", "-L", p]).stdout.splitlines() if os.path.isfile(l)]
    check("/etc/default/skyrootd" in files and "/usr/bin/skyrootd" in files, f"files: {files}")
    conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", "skyroot-controller"]).stdout
    check("/etc/skyroot/skyrootd.conf" in conffiles, f"the sample config is a conffile: {conffiles}")
    out = run(["dpkg", "--purge", *PACKAGES])
    check(out.returncode == 0, f"dpkg --purge: {out.stdout}{out.stderr}")
    left = [f for f in files if os.path.lexists(f)]
    left += [p for p in (STATE, "/etc/systemd/system/multi-user.target.wants/skyrootd.service",
                         "/usr/lib/skyroot", "/etc/skyroot") if os.path.lexists(p)]
    check(not left, f"left after purge: {left}")
    for p in PACKAGES:
        check(not installed(p), f"{p} still known to dpkg after purge")
    check(user_exists("skyroot"), "the system user stays after purge (Debian's policy; README.md says so)")


def main():
    why = skip_reason()
    if why:
        print(f"SKIP: {why}")
        return 77
    had_user = user_exists("skyroot")
    tmp = tempfile.mkdtemp(prefix="sky-packages-")
    try:
        debs = build(tmp)
        lint(debs)
        exercise(debs, tmp)
    except Fail as e:
        print(f"FAIL packages: {e}", file=sys.stderr)
        return 1
    finally:
        left = [p for p in PACKAGES if installed(p)]
        if left:
            run(["dpkg", "--purge", *left])
        shutil.rmtree(STATE, ignore_errors=True)
        if not had_user and user_exists("skyroot"):
            run(["deluser", "--system", "skyroot"])
            run(["delgroup", "--system", "skyroot"])
        shutil.rmtree(tmp, ignore_errors=True)
    print("ok packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
