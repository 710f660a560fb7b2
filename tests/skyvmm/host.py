#!/usr/bin/env python3
"""skyvmm on this machine's /dev/kvm, with a stand-in kernel
(tests/skyvmm/fakekernel.py: a bzImage header in front of a few bytes of
64-bit code that checks its zero page, writes to the UART and powers off or
resets).  Stock Linux kernels do not boot on every host KVM (a PVM host
runs this payload but not them); tests/e2e/e2e.py boots a real guest under
skyvmm inside an emulated board.

usage: host.py CASE     (SKYVMM: the binary; exit 77 when /dev/kvm cannot
                         run a VM here, with the reason)
cases:
  poweroff     console line, exit 0, last stderr line "skyvmm: guest-shutdown"
  reset        exit 3, "skyvmm: guest-reset"
  console_input  a line typed on the console socket reaches the guest (RBR)
  sigterm      SIGTERM presses the power button; a guest that ignores it
               keeps running (the caller's timeout decides), SIGKILL ends it
  big_smp      5 GiB (RAM above 4 GiB) and 8 vCPUs boot the same
  backpressure 50,000 console bytes to a socket nobody reads for a second:
               all arrive, in order, none lost, exit 0
  refusals     kernels that are not bootable bzImages, bad options: exit 2
               with the reason, before any VM is made
  seccomp      the running skyvmm is under its filter (/proc/PID/status
               "Seccomp: 2", "NoNewPrivs: 1"), not with --no-seccomp (still
               running its guest); --seccomp-selftest dies by SIGSYS
"""
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fakekernel import image  # noqa: E402

SKYVMM = os.environ.get("SKYVMM", "")


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)
    print("ok:", what)


def memfd(data, name="kernel"):
    fd = os.memfd_create(name)
    os.write(fd, data)
    return fd


def run(img, *args, timeout=60, console=None):
    fd = memfd(img)
    argv = [SKYVMM, "--kernel-fd", str(fd), "--memory", "64M", "--cpus", "1"] + list(args)
    try:
        r = subprocess.run(argv, pass_fds=(fd,), capture_output=True, timeout=timeout)
    finally:
        os.close(fd)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def last_line(s):
    lines = s.strip().splitlines()
    return lines[-1] if lines else ""


def usable(skyvmm=None):
    """None when this host's /dev/kvm runs the stand-in under skyvmm
    (default $SKYVMM), else why not.  Only KVM's refusal (status 1,
    "skyvmm: error: ...") or a payload that never finishes (a host KVM that
    hangs) means "cannot run here"; any other outcome is skyvmm's, for the
    cases to judge.  The one probe of tests/skyvmm, tests/vmm and
    tests/integration."""
    skyvmm = skyvmm or SKYVMM
    if not skyvmm or not os.access(skyvmm, os.X_OK):
        return "SKYVMM is not set to the skyvmm binary"
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError as e:
        return f"/dev/kvm: {e.strerror}"
    fd = memfd(image("probe", "poweroff"))
    try:
        r = subprocess.run([skyvmm, "--kernel-fd", str(fd), "--memory", "64M", "--cpus", "1"],
                           pass_fds=(fd,), capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "a minimal payload under skyvmm did not finish in 30 s on this host's KVM"
    finally:
        os.close(fd)
    last = last_line(r.stderr.decode(errors="replace"))
    if r.returncode == 1 and last.startswith("skyvmm: error:"):
        return f"this host's KVM cannot run skyvmm: {last}"
    return None


def case_poweroff():
    st, out, err = run(image("SKYVMM-HOST-UP hello", "poweroff"))
    check(out == "SKYVMM-HOST-UP hello\n", f"the console line (got {out!r})")
    check(st == 0, f"exit status 0 (got {st})")
    check(last_line(err) == "skyvmm: guest-shutdown", f"last line guest-shutdown (got {err!r})")
    # the zero page check in the payload: with --cmdline too
    st, out, err = run(image("cmd", "poweroff"), "--cmdline", "console=ttyS0 quiet")
    check(st == 0 and out == "cmd\n", "a command line given")


def case_console_input():
    fd = memfd(image("type something", "echo"))
    a, b = socket.socketpair()
    p = subprocess.Popen([SKYVMM, "--kernel-fd", str(fd), "--memory", "64M", "--cpus", "1",
                          "--console-fd", str(b.fileno())], pass_fds=(fd, b.fileno()), stderr=subprocess.PIPE)
    os.close(fd)
    b.close()
    a.settimeout(30)
    got = b""
    while not got.endswith(b"type something\n"):
        got += a.recv(4096)
    # more than the 16-byte receive FIFO at once: the I/O loop feeds it as
    # the guest reads
    line = b"hello from the console, more than a FIFO's worth\n"
    a.sendall(line)
    echo = b""
    try:
        while not echo.endswith(b"\n"):
            d = a.recv(4096)
            if not d:
                break
            echo += d
    except socket.timeout:
        pass
    check(echo == line, f"the guest read the input and echoed it (got {echo!r})")
    p.wait(timeout=30)
    check(p.returncode == 0, f"then powered off (status {p.returncode})")


def case_reset():
    st, out, err = run(image("going down", "reset"), "--cpus", "2")
    check(out == "going down\n", "the console line")
    check(st == 3, f"exit status 3 (got {st})")
    check(last_line(err) == "skyvmm: guest-reset", f"last line guest-reset (got {err!r})")


def case_sigterm():
    fd = memfd(image("spinning", "spin"))
    p = subprocess.Popen([SKYVMM, "--kernel-fd", str(fd), "--memory", "64M", "--cpus", "2"], pass_fds=(fd,),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(fd)
    try:
        line = p.stdout.readline()
        check(line == b"spinning\n", "the guest runs")
        p.send_signal(signal.SIGTERM)
        time.sleep(1)
        check(p.poll() is None, "a guest that ignores the power button keeps running")
        p.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        check(p.poll() is None, "a second SIGTERM is another press, not a kill")
    finally:
        p.kill()
        _, err = p.communicate(timeout=30)
    check(b"pressing the guest's power button" in err, "stderr says the button was pressed")


def proc_status(pid):
    out = {}
    for l in open(f"/proc/{pid}/status"):
        k, _, v = l.partition(":")
        out[k] = v.strip()
    return out


def case_seccomp():
    for extra, want in (((), "2"), (("--no-seccomp",), "0")):
        fd = memfd(image("spinning", "spin"))
        p = subprocess.Popen([SKYVMM, "--kernel-fd", str(fd), "--memory", "64M", "--cpus", "2", *extra],
                             pass_fds=(fd,), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.close(fd)
        try:
            line = p.stdout.readline()
            check(line == b"spinning\n", f"the guest runs {extra}")
            st = proc_status(p.pid)
            check(st.get("Seccomp") == want, f"Seccomp: {st.get('Seccomp')} with {extra or 'the default'}, want {want}")
            if want == "2":
                check(st.get("NoNewPrivs") == "1", "no new privileges")
            time.sleep(0.5)
            check(p.poll() is None, f"the guest keeps running under {extra or 'the filter'}")
        finally:
            p.kill()
            p.communicate(timeout=30)
    r = subprocess.run([SKYVMM, "--seccomp-selftest"], capture_output=True, timeout=30)
    check(r.returncode == -signal.SIGSYS, f"--seccomp-selftest: killed by SIGSYS (got {r.returncode}: {r.stderr!r})")
    check(b"now openat" in r.stderr, "after the allowed calls passed")
    r = subprocess.run([SKYVMM, "--help"], capture_output=True, timeout=30)
    check(b"--no-seccomp" in r.stdout and b"SIGSYS" in r.stdout, "--help tells of the filter and --no-seccomp")


def case_big_smp():
    st, out, err = run(image("big", "poweroff"), "--memory", "5G", "--cpus", "8")
    check(st == 0 and out == "big\n", f"5 GiB, 8 vCPUs (status {st}, {err!r})")


def case_backpressure():
    n = 50000
    fd = memfd(image("DONE", "poweroff", flood=n))
    a, b = socket.socketpair()
    b.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    p = subprocess.Popen([SKYVMM, "--kernel-fd", str(fd), "--memory", "64M", "--cpus", "1",
                          "--console-fd", str(b.fileno())], pass_fds=(fd, b.fileno()), stderr=subprocess.PIPE)
    os.close(fd)
    b.close()
    time.sleep(1)  # nobody reads: the guest must wait, not lose bytes
    check(p.poll() is None, "the guest is held while the console is not read")
    data = bytearray()
    a.settimeout(60)
    while True:
        try:
            d = a.recv(65536)
        except socket.timeout:
            raise Fail(f"the console went quiet after {len(data)} bytes (output left waiting?)")
        if not d:
            break
        data += d
    p.wait(timeout=60)
    err = p.stderr.read().decode()
    want = bytes(((c & 0x3F) + 0x30) for c in range(n, 0, -1)) + b"DONE\n"
    check(len(data) == len(want), f"all {len(want)} bytes arrived (got {len(data)})")
    check(bytes(data) == want, "in order")
    check("lost" not in err, "none lost")
    check(p.returncode == 0, "exit 0")


def case_refusals():
    for bad, says in (("MAGIC", "not a Linux bzImage"), ("PROTO", "boot protocol 2.06"),
                      ("NO64", "no 64-bit entry"), ("RELOC", "not relocatable")):
        st, out, err = run(image("x", "poweroff", bad))
        check(st == 2 and says in err, f"{bad}: status 2 and \"{says}\" (got {st}: {err!r})")
        check(out == "", f"{bad}: no guest ran")
    st, _, err = run(b"\x7fELF" + bytes(4096))
    check(st == 2 and "not a Linux bzImage" in err, "a vmlinux (ELF) is refused")
    st, _, err = run(image("x", "poweroff"), "--memory", "16M")
    check(st == 2 and "32M" in err, "too little memory")
    st, _, err = run(image("x", "poweroff"), "--cpus", "65")
    check(st == 2 and "--cpus 65" in err, "too many vCPUs")
    # --mac names the NIC of the --tap-fd before it (fd 2 is open: the
    # refusal comes while parsing, before any device is made)
    for mac in ("1:2:3:4:5:6", "52:54:00:12:34", "52-54-00-12-34-56", "01:00:5e:00:00:01"):
        st, _, err = run(image("x", "poweroff"), "--tap-fd", "2", "--mac", mac)
        check(st == 2 and f"--mac {mac}: give six hex bytes" in err, f"--mac {mac} refused (got {st}: {err!r})")
    st, _, err = run(image("x", "poweroff"), "--mac", "52:54:00:12:34:56")
    check(st == 2 and "after the --tap-fd" in err, f"--mac without --tap-fd refused (got {st}: {err!r})")
    st, _, err = run(image("x", "poweroff"), "--tap-fd", "2", "--mac", "52:54:00:12:34:56", "--mac", "52:54:00:12:34:57")
    check(st == 2 and "one --mac for each --tap-fd" in err, f"two --mac for one --tap-fd refused (got {st}: {err!r})")
    st, _, err = run(image("x", "poweroff"), *(["--tap-fd", "2"] * 9))
    check(st == 2 and "at most 8 NICs" in err, f"a ninth --tap-fd refused (got {st}: {err!r})")
    st, _, err = run(image("x", "poweroff"), "--cmdline", "x" * 4000)
    check(st == 2 and "at most 2047" in err, "a command line longer than the kernel takes")
    devices = b"devices (--disk-fd, --tap-fd): built in" in subprocess.run(
        [SKYVMM, "--help"], capture_output=True, timeout=30).stdout
    if not devices:
        st, _, err = run(image("x", "poweroff"), "--disk-fd", "0")
        check(st == 2 and "not built into this skyvmm" in err, "--disk-fd refused: no devices built in")
    r = subprocess.run([SKYVMM, "--memory", "64M", "--cpus", "1"], capture_output=True, timeout=30)
    check(r.returncode == 2 and b"--kernel-fd is required" in r.stderr, "no kernel")
    r = subprocess.run([SKYVMM, "--kernel-fd", "77", "--memory", "64M", "--cpus", "1"], capture_output=True,
                       timeout=30)
    check(r.returncode == 2 and b"not open" in r.stderr, "a descriptor that is not open")
    r = subprocess.run([SKYVMM, "--help"], capture_output=True, timeout=30)
    check(r.returncode == 0 and b"--kernel-fd" in r.stdout and b"guest-shutdown" in r.stdout, "--help")


CASES = {
    "poweroff": case_poweroff,
    "reset": case_reset,
    "console_input": case_console_input,
    "sigterm": case_sigterm,
    "big_smp": case_big_smp,
    "backpressure": case_backpressure,
    "refusals": case_refusals,
    "seccomp": case_seccomp,
}


def main(cases, doc):
    """Run the case named by argv[1] of cases: its exit code (77 with the
    reason when this host cannot run skyvmm).  A case fails by raising Fail
    or returning a text; a text "SKIP why" skips."""
    if len(sys.argv) != 2 or sys.argv[1] not in cases:
        print(doc)
        return 2
    why = usable()
    if why:
        print(f"SKIP: {why}")
        return 77
    try:
        fail = cases[sys.argv[1]]()
    except Fail as e:
        fail = str(e)
    if fail and fail.startswith("SKIP "):
        print(f"SKIP: {fail[5:]}")
        return 77
    if fail:
        print(f"FAIL: {fail}")
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main(CASES, __doc__))
