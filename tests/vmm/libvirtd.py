#!/usr/bin/env python3
"""Run a command against a libvirtd the test owns.

usage: tests/vmm/libvirtd.py COMMAND [ARGS...]

- $SKY_VMM_LIBVIRT_URI set: run COMMAND as is (use that daemon).
- a libvirtd already answers on this host's socket: use it
  (qemu:///system), leave it alone.
- else (root needed): start virtlogd (unless one runs) and libvirtd in the
  foreground with a private configuration whose sockets live in a temporary
  directory, wait until it answers, run COMMAND with
  SKY_VMM_LIBVIRT_URI=qemu:///system?socket=<tmp>/libvirt-sock, then remove
  any domain named skyvmm-* the command left behind and the QEMU logs of
  its domains, and stop both daemons by pid.  The QEMU driver still keeps its state under /run/libvirt,
  /var/lib/libvirt and /var/log/libvirt (paths fixed when libvirt was
  built), which is why a second daemon cannot run next to a system one.

Runs on one host take turns (a lock file, LOCK): two libvirtds cannot
share /run/libvirt, and test runs from several build trees may overlap.

Exit status: COMMAND's; 77 (skip) when no daemon can be had.
"""
import fcntl
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

SKIP = 77
LOCK = "/run/lock/skyroot-vmm-libvirtd.lock"


def running(comm):
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == comm:
                    return int(pid)
        except OSError:
            pass
    return None


def stop(proc, name):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        print(f"libvirtd.py: {name} ignored SIGTERM, killing it", file=sys.stderr)
        proc.kill()
        proc.wait()


def virsh(uri, *args, timeout=20):
    return subprocess.run(["virsh", "-q", "-c", uri, *args], capture_output=True, text=True,
                          timeout=timeout)


def cleanup_domains(uri):
    r = virsh(uri, "list", "--all", "--name")
    for name in r.stdout.split():
        if name.startswith("skyvmm-"):
            print(f"libvirtd.py: removing leftover domain {name}", file=sys.stderr)
            virsh(uri, "destroy", name)
            virsh(uri, "undefine", name)


QEMU_LOGS = "/var/log/libvirt/qemu"


def domain_logs():
    try:
        return {n for n in os.listdir(QEMU_LOGS) if n.startswith("skyvmm-")}
    except OSError:
        return set()


class Stopped(Exception):
    pass


def on_signal(signum, frame):
    raise Stopped(signal.Signals(signum).name)


def kvm_is_pvm():
    """The host's KVM is PVM, which cannot run a stock guest kernel."""
    m = "/sys/module"
    return os.path.isdir(f"{m}/kvm_pvm") and not any(os.path.isdir(f"{m}/{x}") for x in ("kvm_intel", "kvm_amd"))


def main():
    # meson's timeout (SIGTERM) or ^C: still stop the daemons and clean up.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    cmd = sys.argv[1:]
    if not cmd:
        print(__doc__, file=sys.stderr)
        return 2
    if os.environ.get("SKY_VMM_LIBVIRT_URI"):
        return subprocess.call(cmd)
    if os.path.exists("/run/libvirt/libvirt-sock") and shutil.which("virsh"):
        try:
            ok = virsh("qemu:///system", "uri", timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            ok = False
        if ok:
            print("libvirtd.py: using the libvirtd already running (qemu:///system)",
                  file=sys.stderr)
            env = dict(os.environ, SKY_VMM_LIBVIRT_URI="qemu:///system")
            return subprocess.call(cmd, env=env)
    for prog in ("libvirtd", "virtlogd"):
        if not shutil.which(prog, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
            print(f"libvirtd.py: {prog} not found: apt-get install libvirt-daemon-system "
                  "(deploy/packages/vmm.txt)", file=sys.stderr)
            return 1
    if os.geteuid() != 0:
        print("libvirtd.py: SKIP: starting a system libvirtd needs root", file=sys.stderr)
        return SKIP
    os.makedirs(os.path.dirname(LOCK), exist_ok=True)
    lock = open(LOCK, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"libvirtd.py: waiting for another test's libvirtd ({LOCK})", file=sys.stderr)
        fcntl.flock(lock, fcntl.LOCK_EX)

    tmp = tempfile.mkdtemp(prefix="skyvmm-libvirtd-")
    os.chmod(tmp, 0o700)
    conf = os.path.join(tmp, "libvirtd.conf")
    log = os.path.join(tmp, "libvirtd.log")
    with open(conf, "w") as f:
        f.write(f'unix_sock_dir = "{tmp}"\n'
                'unix_sock_rw_perms = "0700"\n'
                'auth_unix_rw = "none"\n'
                'auth_unix_ro = "none"\n'
                f'log_outputs = "3:file:{log}"\n')
    uri = f"qemu:///system?socket={tmp}/libvirt-sock"
    env = dict(os.environ, PATH=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    logd = lvd = None
    rc = 1
    logs_before = domain_logs()
    try:
        if not running("virtlogd"):
            logd = subprocess.Popen(["virtlogd", "-p", os.path.join(tmp, "virtlogd.pid")], env=env,
                                    stdin=subprocess.DEVNULL)
        argv = ["libvirtd", "-f", conf, "-p", os.path.join(tmp, "libvirtd.pid")]
        if kvm_is_pvm() and os.path.exists("/dev/kvm"):
            # libvirtd probes QEMU with -accel kvm on every define while
            # /dev/kvm answers, and a PVM /dev/kvm makes each probe take
            # about a minute: this test's libvirtd (and the guests it starts)
            # see a device node there that nobody may open, so libvirt finds
            # no usable KVM and the guests run with TCG.  Not /dev/null: its
            # QEMU user can open that, libvirt took KVM for usable, and every
            # domain start took about 26 s (0.4 s with the closed node).  A
            # device node, not a file: libvirt copies /dev/kvm into each
            # guest's private /dev, and a file there fails the start.
            print("libvirtd.py: /dev/kvm is PVM (kvm_pvm): hiding it from this libvirtd",
                  file=sys.stderr)
            hidden = os.path.join(tmp, "kvm-hidden")
            os.mknod(hidden, stat.S_IFCHR, os.makedev(1, 3))
            os.chmod(hidden, 0)
            argv = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                    f'mount --bind {hidden} /dev/kvm && exec "$@"', "sh"] + argv
        lvd = subprocess.Popen(argv,
                               env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        t0 = time.monotonic()
        while True:
            if lvd.poll() is not None:
                print(f"libvirtd.py: libvirtd exited with {lvd.returncode} (another libvirtd "
                      "not started by this script holding /run/libvirt?); its log:",
                      file=sys.stderr)
                if os.path.exists(log):
                    sys.stderr.write(open(log).read()[-4000:])
                return 1
            if os.path.exists(os.path.join(tmp, "libvirt-sock")):
                try:
                    if virsh(uri, "uri", timeout=10).returncode == 0:
                        break
                except subprocess.TimeoutExpired:
                    pass
            if time.monotonic() - t0 > 30:
                print("libvirtd.py: libvirtd did not answer within 30 s", file=sys.stderr)
                return 1
            time.sleep(0.2)
        print(f"libvirtd.py: libvirtd (pid {lvd.pid}) ready in {time.monotonic() - t0:.1f} s "
              f"at {uri}", file=sys.stderr)
        child = subprocess.Popen(cmd, env=dict(os.environ, SKY_VMM_LIBVIRT_URI=uri))
        try:
            rc = child.wait()
        except Stopped as e:
            print(f"libvirtd.py: {e}: stopping the test and the daemons", file=sys.stderr)
            child.kill()
            child.wait()
            rc = 1
        if rc != 0 and os.path.exists(log):
            print("libvirtd.py: libvirtd log (tail):", file=sys.stderr)
            sys.stderr.write(open(log).read()[-3000:])
        try:
            cleanup_domains(uri)
        except (OSError, subprocess.TimeoutExpired) as e:
            print(f"libvirtd.py: cleanup: {e}", file=sys.stderr)
    finally:
        # libvirt's per-domain QEMU logs of this run (printed on failure)
        for name in sorted(domain_logs() - logs_before):
            path = os.path.join(QEMU_LOGS, name)
            if rc != 0:
                print(f"libvirtd.py: {path} (tail):", file=sys.stderr)
                sys.stderr.write(open(path, errors="replace").read()[-1500:])
            os.unlink(path)
        stop(lvd, "libvirtd")
        stop(logd, "virtlogd")
        shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
