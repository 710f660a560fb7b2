#!/usr/bin/env python3
"""skyvmm against QEMU on one emulated board (issue 10's benchmark): the same
guest kernel and initramfs (the demo guest of tests/e2e/guest.sh: the
firmware's own bzImage, a busybox initramfs whose init prints
SKYROOT-GUEST-UP) run several times each, inside ONE board (QEMU q35/TCG
with nested SVM, as tests/e2e/skyvmm.py boots it), under
  skyvmm       --kernel-fd/--initrd-fd, console on stdout;
  qemu-microvm qemu-system-x86_64 -M microvm -enable-kvm -cpu host,
               -nodefaults -no-user-config -display none -no-reboot, its
               serial console (ttyS0) on stdout;
  qemu-q35     the options of libskyvmm's qemu backend (vmm/qemu.c,
               qemu_build_argv: -machine q35 -accel kvm -cpu host -smp -m
               -nodefaults -no-user-config -display none -no-reboot
               -sandbox on,... -device pvpanic -action panic=shutdown), with
               two differences the shell cannot avoid: no QMP socket and so
               no -S (the backend sends "cont" right after the QMP greeting),
               and the serial console on stdio rather than on a socket fd;
  kvmtool      only when SKY_BENCH_KVMTOOL names an lkvm binary (a static
               build made outside the repository): lkvm run -k -i -m -c -p
               --console serial.
Every VMM gets the same kernel, initramfs, command line ("console=ttyS0
panic=-1 skyroot.marker=bench"), vCPUs (1: a board running nested guests
has one) and memory (256 MiB), and no devices.  (kvmtool puts its own x86
defaults before the command line: "noapic noacpi pci=conf1 reboot=k
panic=1 i8042... earlyprintk=serial console=ttyS0 root=/dev/vda rw"; the
initramfs's /init runs all the same.  With --nodefaults, the command line
alone, the guest kernel went quiet once its console was up and kvmtool
ended "normally", in every run.)

The board runs a script in place of its agent (skyroot.agent=, as
tests/e2e/skyvmm.py does); the firmware is fwimage/build.sh --profile full
(QEMU, its libraries and ROMs) with the stand-in agent and skyvmm added with
--extra, built once into $SKY_BENCH_SKYVMM_FW (default
build/fwimage-svbench).  Measured inside the board:

  times      with CLOCK_BOOTTIME (/proc/uptime, 10 ms steps, monotonic): t0
             is read by the shell that then execs the VMM (read from
             /proc/uptime with the shell's builtin, nothing forked between
             it and the exec); busybox awk reads the VMM's console pipe
             (buffered reads, so it keeps up; the guest's lines go to a file
             in the board's tmpfs, never to the board's slow serial
             console) and reads /proc/uptime again on the first console
             line and on the line starting SKYROOT-GUEST-UP: time to first
             line and time to init's marker, each from t0.
  RSS        sampled once the marker is seen (the guest is then idle in its
             init): VmRSS of /proc/PID/status minus the Rss of the guest-RAM
             mapping in /proc/PID/smaps, the mapping whose size is the
             guest's memory (up to 8 MiB more, should the kernel have merged
             a neighbouring anonymous mapping into it); for QEMU that is its
             RAM block ("pc.ram", "microvm.ram"), for skyvmm its one
             anonymous mapping of guest RAM.  What remains is what the VMM
             itself costs: its code, heap, thread stacks, ROMs, device
             state.  The guest-RAM Rss is printed too.
  stop       skyvmm: SIGTERM, its ACPI power button (the guest's acpid powers
             off); QEMU and kvmtool: SIGTERM (quit).  Each VMM must have
             exited before the next run starts (SIGKILL after
             SKY_BENCH_RUN_TIMEOUT seconds, the run then counted failed).
  ROMs       which firmware files QEMU loads for each machine: "info roms"
             of its monitor, one more run of the same command line with -S
             and -monitor stdio (not timed).

Sizes are counted on the host, as fwimage/build.sh puts the files in the
image: skyvmm and qemu-system-x86_64 stripped (strip --strip-unneeded on a
copy), each plus the shared libraries ldd lists for it (libc and the loader
counted for both), QEMU plus the ROM files its "info roms" named for that
machine.

Then one table: per VMM min/median/max of both times, the ratios
skyvmm/QEMU(microvm) and skyvmm/QEMU(q35) of the median time to init, the
RSS overhead (MiB), sizes, and whether issue 10's aims are met: skyvmm's
time to init at most 0.5x QEMU's (against each machine) and its overhead at
most 5 MiB.

usage: skyvmm_vs_qemu.py [RUNS]   (default $SKY_BENCH_RUNS or 3, at least 1)
A meson benchmark, not in CI: meson test -C build --benchmark skyvmm_vs_qemu
Skips (77, with the reason) without OVMF or QEMU on the host, or when the
board has no /dev/kvm (no nested KVM).  Environment: SKYVMM (the binary),
SKY_BENCH_KVMTOOL (an lkvm to compare as well), SKY_BENCH_MEMORY (MiB,
default 256), SKY_BENCH_TIMEOUT (the whole board, seconds, default 5400)."""
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from e2e import Board, no_ovmf  # noqa: E402
import skyvmm as skyvmm_e2e  # noqa: E402  (tests/e2e/skyvmm.py)
from fleetlib import ROOT, Fail, check, wait_for  # noqa: E402

SKYVMM = os.path.realpath(os.environ.get("SKYVMM", os.path.join(ROOT, "build", "vmm", "skyvmm", "skyvmm")))
FW_BENCH = os.environ.get("SKY_BENCH_SKYVMM_FW", os.path.join(ROOT, "build", "fwimage-svbench"))
GUEST_SH = os.path.join(ROOT, "tests", "e2e", "guest.sh")
KVMTOOL = os.environ.get("SKY_BENCH_KVMTOOL", "")
MEMORY = int(os.environ.get("SKY_BENCH_MEMORY", "256"))
TIMEOUT = int(os.environ.get("SKY_BENCH_TIMEOUT", "5400"))
RUN_TIMEOUT = int(os.environ.get("SKY_BENCH_RUN_TIMEOUT", "600"))
CMDLINE = "console=ttyS0 panic=-1 skyroot.marker=bench"
QEMU_DIRS = ("/usr/share/qemu", "/usr/share/seabios", "/usr/lib/ipxe/qemu")
ORDER = ("skyvmm", "qemu-microvm", "qemu-q35", "kvmtool")
AIM_TIME = 0.5
AIM_OVERHEAD_MIB = 5.0

# Run by the board's init in place of its agent.  @RUNS@, @MEM@, @CMDLINE@,
# @RUN_TIMEOUT@ and @KVMTOOL@ (1 or 0) are filled in by this script.
# The VMM's RSS (rss PID MEM_MIB): VmRSS, and the Rss of its guest-RAM
# mapping (the one whose size is the guest's memory, up to 8 MiB more), in kB.
RSS = r"""#!/bin/sh
v=$(awk '/^VmRSS:/ { print $2 }' /proc/$1/status 2>/dev/null)
g=$(awk -v m=$(($2 * 1024)) 'BEGIN { best = -1 } /^Size:/ { sz = $2 }
	/^Rss:/ { if (sz >= m && sz <= m + 8192 && $2 > best) best = $2 } END { print best }' /proc/$1/smaps 2>/dev/null)
echo "${v:--1} ${g:--1}"
"""

RUN = r"""#!/bin/sh
# skyvmm against QEMU, inside the board (tests/bench/skyvmm_vs_qemu.py)
T=/skyvmm-test
RUNS=@RUNS@
MEM=@MEM@
CMDLINE='@CMDLINE@'
RUN_TIMEOUT=@RUN_TIMEOUT@
QEMU=/usr/bin/qemu-system-x86_64
say() { echo "SVB: $*"; }
if [ ! -c /dev/kvm ]; then say "skip no /dev/kvm in the board (no nested KVM)"; say "done"; exec sleep 100000; fi
[ -x $QEMU ] || { say "fail no $QEMU in the board (not a --profile full firmware)"; say "done"; exec sleep 100000; }
# The same machine arguments for the timed runs and for "info roms".
Q35="-name guest=bench,debug-threads=on -machine q35 -accel kvm -cpu host -smp 1 -m ${MEM}M -nodefaults -no-user-config -display none -no-reboot -sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny -device pvpanic -action panic=shutdown"
MICROVM="-M microvm -enable-kvm -cpu host -smp 1 -m ${MEM}M -nodefaults -no-user-config -display none -no-reboot"
vmm_cmd() {
	case "$1" in
	skyvmm) echo "$T/skyvmm --kernel-fd 3 --initrd-fd 4 --memory ${MEM}M --cpus 1 --console-fd 1 --cmdline \"\$CMDLINE\" 3<$T/vmlinuz 4<$T/initrd.img" ;;
	qemu-microvm) echo "$QEMU $MICROVM -serial stdio -kernel $T/vmlinuz -initrd $T/initrd.img -append \"\$CMDLINE\"" ;;
	qemu-q35) echo "$QEMU $Q35 -serial stdio -kernel $T/vmlinuz -initrd $T/initrd.img -append \"\$CMDLINE\"" ;;
	kvmtool) echo "env HOME=/tmp $T/lkvm run --name bench -k $T/vmlinuz -i $T/initrd.img -m $MEM -c 1 --console serial -p \"\$CMDLINE\"" ;;
	esac
}
# run NAME I: one timed run; prints
# "SVB: run NAME I t0 first-line kernel's-first-line marker vmrss guestrss status
#  run-/init-line run-/init-line's-kernel-timestamp exit last: ..." (-1: not
#  seen; exit: the console pipe's end, the VMM gone)
run() {
	rm -f /tmp/svbench.pid /tmp/svbench.t0 /tmp/svbench.rss /tmp/svbench.st /tmp/svbench.times /tmp/svbench.init
	cmd=$(vmm_cmd $1)
	( CMDLINE="$CMDLINE" sh -c "read t _ </proc/uptime; echo \$\$ >/tmp/svbench.pid; echo \$t >/tmp/svbench.t0; exec $cmd" </dev/null 2>/tmp/svbench.$1.$2.err
	  echo $? >/tmp/svbench.st ) | awk -v out=/tmp/svbench.$1.$2.log '
		function up(  l, a) { getline l <"/proc/uptime"; close("/proc/uptime"); split(l, a, " "); return a[1] }
		{ print >out }
		first == "" { first = up() }
		/Linux version/ && kern == "" { kern = up() }
		/Run \/init as init process/ && runw == "" {
			runw = up(); runts = $0; sub(/^[^[]*\[ */, "", runts); sub(/\].*$/, "", runts)
		}
		/^SKYROOT-GUEST-UP/ && mark == "" {
			mark = up()
			getline pid <"/tmp/svbench.pid"; close("/tmp/svbench.pid")
			system("'$T'/rss " pid " " '$MEM' " >/tmp/svbench.rss; kill -TERM " pid)
		}
		END { printf "%s %s %s\n", (first == "" ? -1 : first), (kern == "" ? -1 : kern), (mark == "" ? -1 : mark) >"/tmp/svbench.times"
			printf "%s %s %s\n", (runw == "" ? -1 : runw), (runts == "" ? -1 : runts), up() >"/tmp/svbench.init" }' &
	reader=$!
	# the watchdog: a run that hangs is killed and counted failed
	( i=0; while [ $i -lt $RUN_TIMEOUT ]; do sleep 1; i=$((i + 1)); kill -0 $reader 2>/dev/null || exit 0; done
	  [ -s /tmp/svbench.pid ] && kill -KILL $(cat /tmp/svbench.pid) 2>/dev/null; echo "SVB: watchdog killed $1 run $2" ) &
	dog=$!
	wait $reader
	kill $dog 2>/dev/null; wait $dog 2>/dev/null
	say "run $1 $2 $(cat /tmp/svbench.t0 2>/dev/null || echo -1) $(cat /tmp/svbench.times) $(cat /tmp/svbench.rss 2>/dev/null || echo -1 -1) $(cat /tmp/svbench.st 2>/dev/null || echo -1) $(cat /tmp/svbench.init) last: $(tail -n1 /tmp/svbench.$1.$2.err 2>/dev/null | cut -c1-160)"
	grep -m1 -i "power button" /tmp/svbench.$1.$2.log 2>/dev/null | sed "s/^/SVB: pwrbtn $1 $2 /"
}
VMMS="skyvmm qemu-microvm qemu-q35"
[ -x $T/lkvm ] && VMMS="$VMMS kvmtool"
say "start vmms $VMMS runs $RUNS memory $MEM"
i=1
while [ $i -le $RUNS ]; do
	# interleaved, so that a slow spell of the host falls on all of them
	for v in $VMMS; do run $v $i; done
	i=$((i + 1))
done
# the first run's milestones, as each guest kernel saw them
for v in $VMMS; do
	grep -E 'Linux version|printk: console \[ttyS0\]|tsc: (Detected|Refined|Unable|Marking)|clocksource: Switched|Unpacking initramfs|Run /init|Power Button|Kernel panic|not syncing|reboot' \
		/tmp/svbench.$v.1.log 2>/dev/null | tr -d '\r' | cut -c1-150 | sed "s/^/SVB: log $v /"
done
# which ROMs QEMU loads for each machine (not timed)
for m in microvm q35; do
	if [ $m = q35 ]; then a=$Q35; else a=$MICROVM; fi
	printf 'info roms\nquit\n' | $QEMU $a -S -monitor stdio -serial none -kernel $T/vmlinuz -initrd $T/initrd.img \
		-append "$CMDLINE" 2>&1 | tr -d '\r' | grep -o 'name="[^"]*"' | sed "s/^/SVB: rom $m /"
done
say "done"
exec sleep 100000
"""


class Boards:
    """What e2e.Board needs of a fleet (its tmp, its list of boards), without
    a controller: the board runs no agent."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.boards = []

    def close(self):
        for b in self.boards:
            b.stop()

    def dump_failure(self):
        for b in self.boards:
            b.stop()
            print(f"---- console of board {b.name}", file=sys.stderr)
            print(b.console()[-8000:], file=sys.stderr)


def ensure_firmware(tmp):
    """The --profile full firmware with skyvmm (tests/e2e/skyvmm.py builds it)."""
    return skyvmm_e2e.ensure_firmware(tmp, out=FW_BENCH, build_args=("--profile", "full"),
                                      parts=(os.path.realpath(shutil.which("qemu-system-x86_64")),))


def board_image(tmp, fw, runs):
    """FW's kernel, and its initramfs with /skyvmm-test/ appended: the demo
    guest, skyvmm, lkvm when given, and the script."""
    guest = os.path.join(tmp, "guest")
    r = subprocess.run([GUEST_SH, fw, guest], capture_output=True, text=True)
    if r.returncode != 0:
        raise Fail(f"guest.sh: {r.stderr}")
    ov = os.path.join(tmp, "overlay")
    d = os.path.join(ov, "skyvmm-test")
    os.makedirs(d)
    for n in ("vmlinuz", "initrd.img"):
        shutil.copy(os.path.join(guest, n), os.path.join(d, n))
    # the path --extra gave skyvmm may be under a directory init mounts over
    shutil.copy(SKYVMM, os.path.join(d, "skyvmm"))
    if KVMTOOL:
        shutil.copy(KVMTOOL, os.path.join(d, "lkvm"))
    script = (RUN.replace("@RUNS@", str(runs)).replace("@MEM@", str(MEMORY)).replace("@CMDLINE@", CMDLINE)
              .replace("@RUN_TIMEOUT@", str(RUN_TIMEOUT)))
    for name, text in (("run", script), ("rss", RSS)):
        with open(os.path.join(d, name), "w") as out:
            out.write(text)
        os.chmod(os.path.join(d, name), 0o755)
    img = os.path.join(tmp, "image")
    os.mkdir(img)
    shutil.copy(os.path.join(fw, "vmlinuz"), os.path.join(img, "vmlinuz"))
    with open(os.path.join(img, "initrd.img"), "wb") as out:
        out.write(open(os.path.join(fw, "initrd.img"), "rb").read())
        out.write(skyvmm_e2e.gz_cpio(ov))
    return img


def ldd_libs(exe):
    """The shared libraries ldd resolves for EXE (real paths), as build.sh's copy_exe."""
    out = subprocess.run(["ldd", exe], capture_output=True, text=True, env=dict(os.environ, LC_ALL="C")).stdout
    libs = []
    for ln in out.splitlines():
        w = ln.split()
        if len(w) >= 3 and w[1] == "=>" and w[2].startswith("/"):
            libs.append(os.path.realpath(w[2]))
        elif w and w[0].startswith("/"):
            libs.append(os.path.realpath(w[0]))
    return sorted(set(libs))


def stripped_size(exe, tmp):
    c = os.path.join(tmp, "strip-" + os.path.basename(exe))
    shutil.copy(exe, c)
    subprocess.run(["strip", "--strip-unneeded", c], check=True)
    return os.path.getsize(c)


def rom_path(name):
    if os.path.isabs(name):
        return name if os.path.exists(name) else None
    for d in QEMU_DIRS:
        p = os.path.join(d, name)
        if os.path.exists(p):
            return os.path.realpath(p)
    return None


def sizes(tmp, roms):
    """{vmm: (binary, libraries, roms, total, [rom names])} in bytes."""
    out = {}
    libs = ldd_libs(SKYVMM)
    b, lb = stripped_size(SKYVMM, tmp), sum(os.path.getsize(p) for p in libs)
    out["skyvmm"] = (b, lb, 0, b + lb, [])
    qemu = os.path.realpath(shutil.which("qemu-system-x86_64"))
    qb = stripped_size(qemu, tmp)
    ql = sum(os.path.getsize(p) for p in ldd_libs(qemu))
    for m in ("microvm", "q35"):
        names = [n for n in roms.get(m, []) if rom_path(n)]
        rb = sum(os.path.getsize(rom_path(n)) for n in sorted(set(names)))
        out["qemu-" + m] = (qb, ql, rb, qb + ql + rb, sorted(set(names)))
    if KVMTOOL:
        kb = stripped_size(KVMTOOL, tmp)
        kl = sum(os.path.getsize(p) for p in ldd_libs(KVMTOOL))
        out["kvmtool"] = (kb, kl, 0, kb + kl, [])
    return out


def parse(con):
    """The board's SVB lines: runs {vmm: [dict]}, roms {machine: [names]}, power buttons, the first runs'
    milestones, skip, failed runs."""
    runs, roms, pwr, logs, skip, fails = {}, {}, {}, {}, None, []
    for ln in con.splitlines():
        ln = ln.strip()
        if not ln.startswith("SVB: "):
            continue
        w = ln[5:].split()
        if w[0] == "run" and len(w) >= 14:
            name = w[1]
            try:
                t0, first, kern, up = (float(x) for x in w[3:7])
                vmrss, grss, st = (int(x) for x in w[7:10])
                runw, runts, end = float(w[10]), float(w[11]), float(w[12])
            except ValueError:
                fails.append(ln)
                continue
            # and it stopped as asked: skyvmm powered off by its button
            # (exit 0), QEMU quit on SIGTERM (0), kvmtool 0 or 143 (SIGTERM)
            ok = min(t0, first, kern, up) >= 0 and (st == 0 or (name == "kvmtool" and st == 143))
            # before the kernel's clock: from the exec to the moment the
            # guest kernel's printk clock read 0 (VMM, firmware, loading,
            # decompression), from the "Run /init" line's arrival and stamp
            pre = runw - t0 - runts if runw >= 0 and runts >= 0 else None
            runs.setdefault(name, []).append(dict(ok=ok, first=first - t0, kern=kern - t0, up=up - t0, vmrss=vmrss,
                                                  grss=grss, status=st, pre=pre,
                                                  init=runw - t0 if runw >= 0 else None,
                                                  stop=end - up if up >= 0 and end >= 0 else None, line=ln))
            if not ok:
                fails.append(ln)
        elif w[0] == "rom" and len(w) >= 3:
            roms.setdefault(w[1], []).append(w[2].split('"')[1])
        elif w[0] == "log":
            logs.setdefault(w[1], []).append(" ".join(w[2:]))
        elif w[0] == "pwrbtn":
            pwr.setdefault(w[1], " ".join(w[3:]))
        elif w[0] == "skip":
            skip = " ".join(w[1:])
        elif w[0] in ("fail", "watchdog"):
            fails.append(ln)
    return runs, roms, pwr, logs, skip, fails


def mib(b):
    return b / (1 << 20)


def report(runs, pwr, logs, sz):
    def stats(vals):
        return (min(vals), statistics.median(vals), max(vals)) if vals else None

    rows = {}
    for v in ORDER:
        ok = [r for r in runs.get(v, []) if r["ok"]]
        if not ok:
            continue
        over = [(r["vmrss"] - r["grss"]) / 1024 for r in ok if r["vmrss"] >= 0 and r["grss"] >= 0]
        rows[v] = dict(n=len(ok), of=len(runs[v]), first=stats([r["first"] for r in ok]),
                       kern=stats([r["kern"] for r in ok]), up=stats([r["up"] for r in ok]), over=stats(over),
                       pre=stats([r["pre"] for r in ok if r["pre"] is not None]),
                       stop=stats([r["stop"] for r in ok if r["stop"] is not None]),
                       init=stats([r["init"] for r in ok if r["init"] is not None]),
                       grss=statistics.median([r["grss"] / 1024 for r in ok if r["grss"] >= 0] or [-1]))
    print(f"skyvmm against QEMU on one emulated board (TCG with nested SVM, one vCPU; guest: 1 vCPU, {MEMORY} MiB,"
          f" the demo guest of tests/e2e/guest.sh; times from the VMM's exec, CLOCK_BOOTTIME inside the board)")
    print("seconds, min / median / max; RSS in MiB, median (min-max)")
    hdr = (f"{'VMM':<13} {'runs':>5}  {'first console line':>20}  {'kernel first line':>20}  {'Run /init':>20}  "
           f"{'init marker':>20}  "
           f"{'RSS over guest RAM':>20}  {'guest RAM Rss':>13}  {'before kernel clock':>20}  {'marker to exit':>20}")
    print(hdr)
    print("-" * len(hdr))

    def trio(t):
        return f"{t[0]:6.2f} {t[1]:6.2f} {t[2]:6.2f}"
    for v, r in rows.items():
        o = r["over"]
        print(f"{v:<13} {r['n']:>2}/{r['of']:<2}  {trio(r['first']):>20}  {trio(r['kern']):>20}  "
              f"{(trio(r['init']) if r['init'] else 'n/a'):>20}  {trio(r['up']):>20}  "
              f"{(f'{o[1]:.2f} ({o[0]:.2f}-{o[2]:.2f})' if o else 'n/a'):>20}  {r['grss']:>13.1f}  "
              f"{(trio(r['pre']) if r['pre'] else 'n/a'):>20}  {(trio(r['stop']) if r['stop'] else 'n/a'):>20}")
    print("(first console line: under microvm, the kernel's real-mode setup prints \"Probing EDD\" through qboot;"
          " kernel first line: \"Linux version\"; Run /init: the kernel's line as it hands over to the initramfs,"
          " before the demo guest's init does anything; before kernel clock: the \"Run /init\" line's arrival less its"
          " printk stamp, i.e. the VMM, firmware, loading and decompression before the guest's clock starts;"
          " marker to exit: the RSS sample, the stop (skyvmm: power button, the guest powers off; others: SIGTERM)"
          " and the VMM's exit)")
    print()
    print(f"{'VMM':<13} {'binary':>12} {'libraries':>12} {'ROMs':>12} {'total':>12}   (bytes; stripped as in the image)")
    for v in ORDER:
        if v in sz:
            b, lb, rb, t, names = sz[v]
            print(f"{v:<13} {b:>12} {lb:>12} {rb:>12} {t:>12}   {mib(t):.2f} MiB"
                  + (f"; ROMs loaded: {' '.join(names)}" if names else ""))
    print()
    for v in ORDER:
        if v in rows and "LNXPWRBN" not in pwr.get(v, ""):
            print(f"under {v} the guest has no LNXPWRBN power button ({pwr.get(v, 'none')}): the demo guest's init"
                  " waits 3 s for one before its marker, its time to init includes that")
    for v in ORDER:
        for ln in logs.get(v, []):
            print(f"first run under {v}: {ln}")
    verdict = True
    sv = rows.get("skyvmm")
    for q in ("qemu-microvm", "qemu-q35", "kvmtool"):
        if sv and q in rows:
            ratio = sv["up"][1] / rows[q]["up"][1]
            fr = sv["kern"][1] / rows[q]["kern"][1]
            ir = (f", to Run /init {sv['init'][1] / rows[q]['init'][1]:.2f}x" if sv["init"] and rows[q]["init"]
                  else "")
            line = (f"skyvmm/{q}: time to init {ratio:.2f}x (medians {sv['up'][1]:.2f} / {rows[q]['up'][1]:.2f} s), "
                    f"to the kernel's first line {fr:.2f}x{ir}; size {sz['skyvmm'][3] / sz[q][3]:.3f}x" if q in sz else "")
            if q != "kvmtool":
                met = ratio <= AIM_TIME
                verdict = verdict and met
                line += f"  -> aim <= {AIM_TIME}x: {'MET' if met else 'NOT MET'}"
            print(line)
    if sv and not sv["over"]:
        verdict = False
        print("skyvmm RSS beyond guest RAM: not measured (no guest-RAM mapping found)  -> aim: NOT MET")
    if sv and sv["over"]:
        met = sv["over"][1] <= AIM_OVERHEAD_MIB
        verdict = verdict and met
        print(f"skyvmm RSS beyond guest RAM: {sv['over'][1]:.2f} MiB (median; max {sv['over'][2]:.2f})"
              f"  -> aim <= {AIM_OVERHEAD_MIB:.0f} MiB: {'MET' if met else 'NOT MET'}")
        for q in ("qemu-microvm", "qemu-q35", "kvmtool"):
            if q in rows and rows[q]["over"]:
                print(f"  {q}: {rows[q]['over'][1]:.2f} MiB")
    print(f"issue 10's aims: {'all met' if verdict else 'not all met'}")


def main():
    runs_n = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("SKY_BENCH_RUNS", "3"))
    if runs_n < 1:
        print("usage: skyvmm_vs_qemu.py [RUNS]   (RUNS >= 1)", file=sys.stderr)
        return 2
    skip = no_ovmf()
    if not skip and not shutil.which("qemu-system-x86_64"):
        skip = "qemu-system-x86_64 missing (the --profile full firmware carries the host's)"
    if not skip and not os.access(SKYVMM, os.X_OK):
        skip = f"no skyvmm at {SKYVMM} (build with vmm/skyvmm)"
    if skip:
        print(f"SKIP: {skip}")
        return 77
    if KVMTOOL and not os.access(KVMTOOL, os.X_OK):
        print(f"SKY_BENCH_KVMTOOL={KVMTOOL} is not an executable", file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="sky-bench-svq-")
    f = Boards(tmp)
    ok = False
    rc = 1
    try:
        fw = ensure_firmware(tmp)
        img = board_image(tmp, fw, runs_n)
        t0 = time.time()
        b = Board(f, "svbench", boot="kernel", cmdline="skyroot.agent=/skyvmm-test/run", memory=1280,
                  extra=["--cpus", "1", "--image", img])
        wait_for(lambda: "SVB: done" in b.console(), TIMEOUT, "the benchmark inside the board", interval=5.0)
        con = b.console()
        print(f"board run: {time.time() - t0:.0f} s")
        runs, roms, pwr, logs, skip, fails = parse(con)
        if skip:
            print(f"SKIP: {skip}")
            rc = 77
            ok = True
            return rc
        for ln in con.splitlines():
            if ln.startswith("SVB: run ") or ln.startswith("SVB: rom ") or ln.startswith("SVB: watchdog"):
                print(ln.strip())
        print()
        for v in ORDER[:3]:
            check(any(r["ok"] for r in runs.get(v, [])), f"no complete run under {v}")
        for v in ("microvm", "q35"):
            check(roms.get(v), f"QEMU's info roms for {v}: nothing")
        report(runs, pwr, logs, sizes(tmp, roms))
        # kvmtool is an optional comparison: its failures are shown, and
        # fail nothing; a failed run of the three others fails the benchmark
        for ln in fails:
            print(f"failed: {ln}")
        if KVMTOOL and not any(r["ok"] for r in runs.get("kvmtool", [])):
            print("kvmtool: no complete run (its first run's milestones above)")
        check(not [ln for ln in fails if not ln.startswith("SVB: run kvmtool ")
                   and not ln.startswith("SVB: watchdog killed kvmtool ")],
              f"{len(fails)} run(s) failed")
        ok = True
        rc = 0
    except Fail as e:
        print(f"FAIL: {e}", file=sys.stderr)
        f.dump_failure()
    finally:
        f.close()
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
