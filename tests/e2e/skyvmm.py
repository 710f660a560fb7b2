#!/usr/bin/env python3
"""skyvmm end to end: a real Linux guest under skyvmm on an emulated board's
nested /dev/kvm (QEMU q35/TCG with SVM, OVMF, as tests/e2e/e2e.py boots
them), no controller.

The board boots a firmware built for this test (fwimage/build.sh with the
stand-in agent, no QEMU, skyvmm added with --extra) by --boot kernel, with
one more cpio appended to its initramfs: /skyvmm-test/ with skyvmm, the
demo guest (tests/e2e/guest.sh) and a script init runs in place of the agent
(skyroot.agent=).  The script, inside the board:
  1. runs the demo guest under skyvmm (2 vCPUs, 256M, console on a pipe;
     a read-only virtio-blk disk when skyvmm has its devices built in, which
     the guest must list as 1af4:1042; and a NIC: a tap made as the agent
     makes them (tests/skyvmm/tapfd.c, IFF_VNET_HDR) given with --tap-fd and
     --mac, which the guest must list as 1af4:1041 and whose MAC its
     /nic-init prints as SKYROOT-GUEST-NIC after loading virtio-net),
     with its seccomp filter on (the default): /proc/PID/status of the
     running skyvmm must say "Seccomp: 2" and "NoNewPrivs: 1";
     and once it has listed its PCI devices sends skyvmm SIGTERM: the ACPI
     power button, which the guest's acpid turns into a poweroff;
  2. runs the same kernel with an init that does not exist: it panics and
     reboots (panic=-1);
  3. gives skyvmm the initramfs as its kernel;
  4. runs skyvmm --seccomp-selftest: a forbidden call under the filter
     must kill it by SIGSYS (status 159);
  5. binds the board's edu device (1234:11e8) to vfio-pci and runs the
     guest with --vfio, jailed (--jail-uid/--jail-gid 65534): it must take
     edu's interrupt as MSI first (its /msi-init, tests/skyvmm/edumsi.c:
     the message and Enable written to skyvmm's emulated capability, which
     routes it with KVM_SET_GSI_ROUTING; the guest CPU takes its vector),
     then read edu's id register (0x010000ED) through BAR0 and take edu's
     interrupt as INTx again (uio_pci_generic's event count), with skyvmm under the seccomp
     filter, as uid/gid 65534 in /proc/PID/status, its /proc/PID/root
     empty; power off cleanly; and the device goes back.
and prints what happened.  The test checks: the guest's marker
(SKYROOT-GUEST-UP) and both vCPUs up ("smp: Brought up 1 node, 2 CPUs"),
the power-off through the button with exit 0 and "skyvmm: guest-shutdown",
the reset with exit 3 and "skyvmm: guest-reset", the refusal with exit 2
and its reason, and that the board's scratch disk is unchanged.

usage: skyvmm.py CASE     (cases: guest; SKYVMM: the binary; skips, exit
                           77, without OVMF)"""
import hashlib
import fcntl
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import Board, e2e_fleet, no_ovmf  # noqa: E402
from fleetlib import ROOT, Fail, check, run_cases, wait_for  # noqa: E402

SKYVMM = os.path.realpath(os.environ.get("SKYVMM", os.path.join(ROOT, "build", "vmm", "skyvmm", "skyvmm")))
FW_SV = os.environ.get("SKY_E2E_SKYVMM_FW", os.path.join(ROOT, "build", "fwimage-skyvmm"))
BUILD_SH = os.path.join(ROOT, "fwimage", "build.sh")
STANDIN = os.path.join(ROOT, "fwimage", "testdata", "standin-agent.c")
TAPFD = os.path.join(ROOT, "tests", "skyvmm", "tapfd.c")
NIC_MAC = "52:54:00:5e:c0:01"
# The guest's /nic-init (rdinit= of the run with a NIC): virtio-pci and
# virtio-net (modules of the guest kernel) loaded, eth0's MAC printed, then
# the demo guest's own /init.
NIC_INIT = r"""#!/bin/sh
export PATH=/bin
mount -t sysfs sys /sys
for m in $(cat /nic/order); do insmod /nic/$m.ko 2>/dev/null; done
i=0
while [ ! -e /sys/class/net/eth0/address ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
echo "SKYROOT-GUEST-NIC eth0 $(cat /sys/class/net/eth0/address 2>/dev/null || echo none)"
/bin/busybox umount /sys
exec /init
"""
# The guest's /msi-init (rdinit= of the run with edu passed through): edu's
# MSI turned on through skyvmm's emulated capability and taken by the guest
# (tests/skyvmm/edumsi.c, static: the guest has no libc), then the demo
# guest's own /init, whose INTx check (skyroot.edu-irq=1) then also shows
# INTx back after MSI went off.
MSI_INIT = r"""#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
t0=$(cut -d' ' -f1 /proc/uptime)
/edumsi 5000
echo "SKYROOT-EDU-MSI-TIME $t0 $(cut -d' ' -f1 /proc/uptime)"
/bin/busybox umount /sys
/bin/busybox umount /proc
exec /init
"""
EDUMSI = os.path.join(ROOT, "tests", "skyvmm", "edumsi.c")
TIMEOUT = int(os.environ.get("SKY_E2E_SKYVMM_TIMEOUT", "900"))

RUN = r"""#!/bin/sh
# skyvmm e2e, run by the board's init in place of its agent
SV=/skyvmm-test/skyvmm
T=/skyvmm-test
up() { cut -d' ' -f1 /proc/uptime; }
# with the PCI/virtio devices built in, a read-only virtio-blk disk too
DISK=""
$SV --help | grep -q "(--disk-fd, --tap-fd): built in" && DISK="--disk-fd 5 --disk-ro"
echo "SKYVMM-E2E: devices ${DISK:-none}"
# and a NIC: a tap as the agent makes them (IFF_VNET_HDR) on fd 6, its MAC
# printed by the guest (its /nic-init loads virtio-net first)
NET="" TAP="" RDINIT=""
if [ -n "$DISK" ] && [ -e /dev/net/tun ]; then
	NET="--tap-fd 6 --mac 52:54:00:5e:c0:01" TAP="$T/tapfd svtap0 6" RDINIT="rdinit=/nic-init"
fi
echo "SKYVMM-E2E: nic ${NET:-none}"
echo "SKYVMM-E2E: start $(up)"
( sh -c "echo \$\$ >/tmp/svpid; exec $TAP $SV --kernel-fd 3 --initrd-fd 4 --memory 256M --cpus 2 --console-fd 1 $DISK $NET --cmdline 'console=ttyS0 panic=-1 skyroot.marker=e2e $RDINIT' 3<$T/vmlinuz 4<$T/initrd.img 5<$T/initrd.img" 2>/tmp/sv1.err
  echo $? >/tmp/sv1.st ) | {
	first=""
	while IFS= read -r l; do
		[ -n "$first" ] || { first=1; echo "SKYVMM-E2E: first console line at $(up)"; }
		echo "guest| $l"
		case "$l" in
		SKYROOT-GUEST-UP*) echo "SKYVMM-E2E: guest up at $(up)"
			# the running skyvmm is under its filter (2: SECCOMP_MODE_FILTER)
			echo "SKYVMM-E2E: sandbox $(grep -E '^(Seccomp|NoNewPrivs):' /proc/$(cat /tmp/svpid)/status | tr -s '\t\n' '  ')" ;;
		*SKYROOT-GUEST-PCI-DONE*) echo "SKYVMM-E2E: SIGTERM at $(up)"; kill -TERM "$(cat /tmp/svpid)" ;;
		esac
	done
}
echo "SKYVMM-E2E: run1 ended at $(up) status $(cat /tmp/sv1.st) last: $(tail -n1 /tmp/sv1.err)"
( $SV --kernel-fd 3 --initrd-fd 4 --memory 256M --cpus 1 --console-fd 1 --cmdline 'console=ttyS0 panic=-1 rdinit=/nonexistent' 3<$T/vmlinuz 4<$T/initrd.img 2>/tmp/sv2.err
  echo $? >/tmp/sv2.st ) | while IFS= read -r l; do echo "guest2| $l"; done
echo "SKYVMM-E2E: run2 status $(cat /tmp/sv2.st) last: $(tail -n1 /tmp/sv2.err)"
$SV --kernel-fd 3 --memory 256M --cpus 1 3<$T/initrd.img 2>/tmp/sv3.err
echo "SKYVMM-E2E: run3 status $? last: $(tail -n1 /tmp/sv3.err)"
# the filter kills a forbidden call: status 128 + 31 (SIGSYS)
$SV --seccomp-selftest 2>/tmp/sv4.err
echo "SKYVMM-E2E: run4 status $? said: $(grep -o 'now openat' /tmp/sv4.err)"
# 5. the board's edu device (1234:11e8) passed through: bound to vfio-pci
# as libskyvmm's claim does it (driver_override, drivers_probe), a guest
# with --vfio reads its id register and takes an interrupt from it (INTx
# through uio_pci_generic: skyroot.edu-irq=1), then the device is given back
EDU=""
for d in /sys/bus/pci/devices/*; do
	[ "$(cat $d/vendor):$(cat $d/device)" = "0x1234:0x11e8" ] && EDU=${d##*/}
done
if [ -n "$EDU" ]; then
	echo vfio-pci >/sys/bus/pci/devices/$EDU/driver_override
	echo $EDU >/sys/bus/pci/drivers_probe
	drv=$(readlink /sys/bus/pci/devices/$EDU/driver)
	echo "SKYVMM-E2E: edu $EDU group $(basename "$(readlink /sys/bus/pci/devices/$EDU/iommu_group)") driver ${drv##*/}"
	echo "SKYVMM-E2E: run5 start at $(up)"
	# the guest's initramfs with /msi-init and /edumsi (this run only)
	cat $T/initrd.img $T/msi.cpio.gz >/tmp/initrd5.img
	( sh -c "echo \$\$ >/tmp/svpid5; exec $SV --kernel-fd 3 --initrd-fd 4 --memory 256M --cpus 1 --console-fd 1 --vfio $EDU --jail-uid 65534 --jail-gid 65534 --cmdline 'console=ttyS0 panic=-1 skyroot.edu-irq=1 rdinit=/msi-init' 3<$T/vmlinuz 4</tmp/initrd5.img" 2>/tmp/sv5.err
	  echo $? >/tmp/sv5.st ) | while IFS= read -r l; do
		echo "guest5| $l"
		case "$l" in
		SKYROOT-GUEST-UP*) echo "SKYVMM-E2E: sandbox5 $(grep -E '^(Seccomp|NoNewPrivs|Uid|Gid):' /proc/$(cat /tmp/svpid5)/status | tr -s '\t\n' '  ')"
			echo "SKYVMM-E2E: root5 [$(ls -A /proc/$(cat /tmp/svpid5)/root | tr '\n' ' ')]" ;;
		*SKYROOT-GUEST-PCI-DONE*) kill -TERM "$(cat /tmp/svpid5)" ;;
		esac
	done
	echo "SKYVMM-E2E: run5 end at $(up)"
	echo "SKYVMM-E2E: run5 status $(cat /tmp/sv5.st) last: $(tail -n1 /tmp/sv5.err)"
	grep -v "^skyvmm: guest-shutdown" /tmp/sv5.err | sed 's/^/SKYVMM-E2E: run5 stderr: /' | tail -n 5
	echo $EDU >/sys/bus/pci/devices/$EDU/driver/unbind
	echo >/sys/bus/pci/devices/$EDU/driver_override
	drv=$(readlink /sys/bus/pci/devices/$EDU/driver)
	echo "SKYVMM-E2E: edu given back, driver ${drv##*/}"
else
	echo "SKYVMM-E2E: edu none"
fi
echo "SKYVMM-E2E: done"
exec sleep 100000
"""


def ensure_firmware(tmp, out=FW_SV, build_args=("--no-qemu",), parts=()):
    """A firmware with the stand-in agent and skyvmm (--extra) built with
    build_args into out, once per change of skyvmm, build.sh, the stand-in,
    init or parts (under a lock).  The e2e's: no QEMU; the benchmark
    (tests/bench/skyvmm_vs_qemu.py) builds --profile full beside it."""
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = os.path.join(out, "skyvmm.sha256")
        h = hashlib.sha256()
        for part in (SKYVMM, BUILD_SH, STANDIN, os.path.join(ROOT, "fwimage", "init")) + tuple(parts):
            h.update(open(part, "rb").read())
        h.update(" ".join(build_args).encode())
        want = h.hexdigest()
        if os.path.exists(stamp) and open(stamp).read().strip() == want:
            return out
        agent = os.path.join(tmp, "standin-agent")
        subprocess.run(["gcc", "-O2", "-o", agent, STANDIN], check=True)
        t0 = time.time()
        r = subprocess.run([BUILD_SH, "--agent", agent, "--extra", SKYVMM, "--out", out, "--compress", "gzip"]
                           + list(build_args), capture_output=True, text=True)
        if r.returncode != 0:
            raise Fail(f"fwimage/build.sh failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        print(f"firmware with skyvmm ({' '.join(build_args)}) built in {time.time() - t0:.0f} s")
        open(stamp, "w").write(want)
        return out


def nic_modules(fw):
    """virtio_pci and virtio_net of the guest kernel and what they need, in
    load order: [(name, path)], from the kernel's modules.dep."""
    krel = ""
    for l in open(os.path.join(fw, "build-info")):
        if l.startswith("KERNEL_RELEASE="):
            krel = l.split("=", 1)[1].strip()
    base = os.path.join(ROOT, "fwimage", "cache", "kernel")
    moddir = next((os.path.join(base, k, "root", "lib", "modules", krel) for k in sorted(os.listdir(base))
                   if os.path.isdir(os.path.join(base, k, "root", "lib", "modules", krel))), None)
    if not moddir:
        raise Fail(f"no modules of kernel {krel} under {base}")
    deps = {}
    for l in open(os.path.join(moddir, "modules.dep")):
        mod, _, rest = l.partition(":")
        deps[mod] = rest.split()
    by_name = {os.path.basename(m).split(".ko")[0]: m for m in deps}
    order = []

    def add(m):
        for d in reversed(deps[m]):
            add(d)
        if m not in order:
            order.append(m)
    for name in ("virtio_pci", "virtio_net"):
        if name in by_name:  # else built in
            add(by_name[name])
    return [(os.path.basename(m).split(".ko")[0], os.path.join(moddir, m)) for m in order]


def gz_cpio(root):
    """ROOT's files as a gzip'd newc cpio."""
    files = subprocess.run(["find", "."], cwd=root, capture_output=True, text=True, check=True).stdout
    cpio = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=root, input=("\n".join(sorted(files.split())) +
                          "\n").encode(), capture_output=True, check=True).stdout
    return subprocess.run(["gzip", "-1"], input=cpio, capture_output=True, check=True).stdout


def msi_cpio(tmp):
    """A gzip'd cpio with /msi-init and /edumsi: appended, inside the board,
    to the initramfs of the edu run only (the other runs boot without it)."""
    root = os.path.join(tmp, "msiroot")
    os.makedirs(root)
    subprocess.run(["gcc", "-static", "-s", "-O2", "-Wall", "-Werror", "-o", os.path.join(root, "edumsi"), EDUMSI],
                   check=True)
    with open(os.path.join(root, "msi-init"), "w") as out:
        out.write(MSI_INIT)
    os.chmod(os.path.join(root, "msi-init"), 0o755)
    return gz_cpio(root)


def nic_cpio(fw, tmp):
    """A gzip'd cpio with /nic-init and /nic/ (the modules, uncompressed)."""
    root = os.path.join(tmp, "nicroot")
    os.makedirs(os.path.join(root, "nic"))
    names = []
    for name, path in nic_modules(fw):
        data = open(path, "rb").read()
        if path.endswith(".xz"):
            data = subprocess.run(["xz", "-dc"], input=data, capture_output=True, check=True).stdout
        with open(os.path.join(root, "nic", name + ".ko"), "wb") as out:
            out.write(data)
        names.append(name)
    with open(os.path.join(root, "nic", "order"), "w") as out:
        out.write(" ".join(names) + "\n")
    with open(os.path.join(root, "nic-init"), "w") as out:
        out.write(NIC_INIT)
    os.chmod(os.path.join(root, "nic-init"), 0o755)
    return gz_cpio(root)


def image_with_test(f, fw):
    """FW's kernel, and its initramfs with /skyvmm-test/ appended."""
    guest = os.path.join(f.tmp, "guest")
    r = subprocess.run([os.path.join(ROOT, "tests", "e2e", "guest.sh"), fw, guest], capture_output=True, text=True)
    if r.returncode != 0:
        raise Fail(f"guest.sh: {r.stderr}")
    ov = os.path.join(f.tmp, "overlay")
    os.makedirs(os.path.join(ov, "skyvmm-test"))
    for n in ("vmlinuz", "initrd.img"):
        shutil.copy(os.path.join(guest, n), os.path.join(ov, "skyvmm-test", n))
    # the run with a NIC: /nic-init and the virtio-net modules appended to the
    # guest's initramfs, and the helper that makes the tap inside the board
    with open(os.path.join(ov, "skyvmm-test", "initrd.img"), "ab") as out:
        out.write(nic_cpio(fw, f.tmp))
    with open(os.path.join(ov, "skyvmm-test", "msi.cpio.gz"), "wb") as out:
        out.write(msi_cpio(f.tmp))
    subprocess.run(["gcc", "-O2", "-o", os.path.join(ov, "skyvmm-test", "tapfd"), TAPFD], check=True)
    # skyvmm itself goes here too: the path --extra gave it in the image may
    # be under a directory init mounts over (/tmp); --extra brought its
    # libraries
    shutil.copy(SKYVMM, os.path.join(ov, "skyvmm-test", "skyvmm"))
    run = os.path.join(ov, "skyvmm-test", "run")
    with open(run, "w") as out:
        out.write(RUN)
    os.chmod(run, 0o755)
    img = os.path.join(f.tmp, "image")
    os.mkdir(img)
    shutil.copy(os.path.join(fw, "vmlinuz"), os.path.join(img, "vmlinuz"))
    files = subprocess.run(["find", "."], cwd=ov, capture_output=True, text=True, check=True).stdout
    cpio = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=ov, input=("\n".join(sorted(files.split())) +
                          "\n").encode(), capture_output=True, check=True).stdout
    with open(os.path.join(img, "initrd.img"), "wb") as out:
        out.write(open(os.path.join(fw, "initrd.img"), "rb").read())
        out.write(subprocess.run(["gzip", "-1"], input=cpio, capture_output=True, check=True).stdout)
    return img


def line_with(text, prefix):
    for l in text.splitlines():
        if l.startswith(prefix):
            return l
    return ""


def case_guest(f):
    if not os.access(SKYVMM, os.X_OK):
        raise Fail(f"no skyvmm at {SKYVMM}")
    fw = ensure_firmware(f.tmp)
    img = image_with_test(f, fw)
    b = Board(f, "svm", boot="kernel", cmdline="skyroot.agent=/skyvmm-test/run", memory=1024,
              extra=["--cpus", "1", "--image", img])
    wait_for(lambda: "SKYVMM-E2E: done" in b.console(), TIMEOUT, "the skyvmm runs inside the board",
             interval=2.0)
    out = b.console()
    for l in out.splitlines():
        if l.startswith("SKYVMM-E2E:") or (l.startswith("guest| ") and
                                             ("SKYROOT-GUEST-PCI" in l or "smp: Brought up" in l or
                                              "SKYROOT-GUEST-NIC" in l or "virtio_net" in l or
                                              "PCI0" in l or "pci 0000:00" in l)):
            print(l)
    check("guest| SKYROOT-GUEST-UP" in out, "the guest under skyvmm printed its marker")
    check("guest| SKYROOT-MARKER e2e" in out, "the guest saw its command line")
    check("smp: Brought up 1 node, 2 CPUs" in out, "both vCPUs came up (MP/ACPI tables)")
    check("ACPI: button: Power Button" in out, "the guest found the ACPI power button")
    check("guest| SKYROOT-GUEST-POWERDOWN" in out, "SIGTERM pressed the power button and the guest acted on it")
    sandbox = line_with(out, "SKYVMM-E2E: sandbox")
    check("Seccomp: 2" in sandbox and "NoNewPrivs: 1" in sandbox,
          f"the running skyvmm is under its seccomp filter, no new privileges ({sandbox})")
    if "SKYVMM-E2E: devices --disk-fd" in out:
        check("guest| SKYROOT-GUEST-PCI " in out and " 1af4:1042" in out,
              "the guest found the virtio-blk disk on skyvmm's PCI bus")
    if "SKYVMM-E2E: nic --tap-fd" in out:
        check("guest| SKYROOT-GUEST-PCI " in out and " 1af4:1041" in out,
              "the guest found the virtio-net device on skyvmm's PCI bus")
        check(f"guest| SKYROOT-GUEST-NIC eth0 {NIC_MAC}" in out,
              f"the guest's eth0 (virtio-net on the board's tap) has the MAC given ({NIC_MAC})")
    else:
        raise Fail("no NIC in the board's run (no /dev/net/tun in the board, or skyvmm without devices)")
    r1 = line_with(out, "SKYVMM-E2E: run1 ended")
    check(r1.endswith("status 0 last: skyvmm: guest-shutdown"), f"power-off: exit 0, guest-shutdown ({r1})")
    r2 = line_with(out, "SKYVMM-E2E: run2")
    check(r2.endswith("status 3 last: skyvmm: guest-reset"), f"panic and reboot: exit 3, guest-reset ({r2})")
    r3 = line_with(out, "SKYVMM-E2E: run3")
    check("status 2 last: skyvmm: the kernel image is not a Linux bzImage" in r3, f"not a bzImage: exit 2 ({r3})")
    r4 = line_with(out, "SKYVMM-E2E: run4")
    check(r4.endswith("run4 status 159 said: now openat"),
          f"a forbidden call under the filter: killed by SIGSYS, 128 + 31 ({r4})")
    edu = line_with(out, "SKYVMM-E2E: edu ")
    check(edu.endswith("driver vfio-pci"), f"the board's edu device is on vfio-pci for the guest ({edu})")
    for l in out.splitlines():
        if (l.startswith("guest5| SKYROOT-GUEST-EDU") or l.startswith("guest5| SKYROOT-GUEST-PCI ") or
                l.startswith("guest5| SKYROOT-EDU-MSI")):
            print(l)
    msi = line_with(out, "guest5| SKYROOT-EDU-MSI ")
    check(msi.startswith("guest5| SKYROOT-EDU-MSI ok ") and " vector=0xfa " in msi,
          f"edu's MSI, enabled through skyvmm's emulated capability and routed by KVM_SET_GSI_ROUTING, "
          f"reached the guest CPU on the vector the guest wrote ({msi})")
    present = line_with(out, "guest5| SKYROOT-GUEST-EDU present")
    check("id=0x010000ED" in present,
          f"the guest under skyvmm reads edu's id register (0x010000ED) through its BAR0 ({present})")
    irq = line_with(out, "guest5| SKYROOT-GUEST-EDU-IRQ")
    events = irq.split("events=", 1)[1].split()[0] if "events=" in irq else ""
    check(events.isdigit() and int(events) >= 1,
          f"edu's interrupt reached the guest's handler (INTx, uio_pci_generic), after MSI went off ({irq})")
    s5 = line_with(out, "SKYVMM-E2E: sandbox5")
    check("Seccomp: 2" in s5, f"skyvmm with a passed-through device runs under its filter ({s5})")
    check("Uid: 65534 65534 65534 65534" in s5 and "Gid: 65534 65534 65534 65534" in s5,
          f"and jailed as the unprivileged user it was given ({s5})")
    root5 = line_with(out, "SKYVMM-E2E: root5")
    check(root5 == "SKYVMM-E2E: root5 []", f"its root is an empty directory ({root5})")
    r5 = line_with(out, "SKYVMM-E2E: run5 status")
    check(r5.endswith("status 0 last: skyvmm: guest-shutdown"), f"the edu guest powered off cleanly ({r5})")
    check(line_with(out, "SKYVMM-E2E: edu given back") == "SKYVMM-E2E: edu given back, driver ",
          "edu unbound from vfio-pci afterwards")
    try:
        t_start = float(line_with(out, "SKYVMM-E2E: start").split()[2])
        t_first = float(line_with(out, "SKYVMM-E2E: first console line").split()[-1])
        t_up = float(line_with(out, "SKYVMM-E2E: guest up").split()[-1])
        print(f"inside the board (TCG, nested KVM): skyvmm start to first console line {t_first - t_start:.1f} s, "
              f"to the guest's marker {t_up - t_start:.1f} s")
    except (ValueError, IndexError):
        pass
    try:
        t5 = float(line_with(out, "SKYVMM-E2E: run5 end at").split()[-1]) - \
            float(line_with(out, "SKYVMM-E2E: run5 start at").split()[-1])
        m0, m1 = (float(x) for x in line_with(out, "guest5| SKYROOT-EDU-MSI-TIME").split()[-2:])
        print(f"inside the board: the edu run (run5) took {t5:.1f} s, its MSI check in the guest {m1 - m0:.2f} s")
    except (ValueError, IndexError):
        pass
    r = b.stop()
    check(b.scratch_unchanged(), f"the scratch disk is untouched ({r.stderr.strip()})")


def main():
    return run_cases(globals(), "sky-e2e-skyvmm", e2e_fleet, skip=no_ovmf)


if __name__ == "__main__":
    sys.exit(main())
