#!/usr/bin/env bash
# End-to-end test of the firmware image on emulated boards, with a stand-in
# agent (fwimage/testdata/standin-agent.c) in place of skyagent:
#   - the image's contents and UKI layout;
#   - --boot efi (UKI from an ESP), --boot kernel, --boot net (iPXE over
#     HTTP from a throwaway python3 http.server on 127.0.0.1 = 10.0.2.2):
#     UEFI, kvm_amd + /dev/kvm (a VM is created), the edu device in an
#     IOMMU group and bound to vfio-pci, DHCP 10.0.2.15, the board's
#     command line reaching the agent, init's supervisor restarting a
#     dying agent with backoff, the scratch disk unchanged;
#   - boot times, power-on to the agent starting.
# Boards run one at a time (TCG, 2 cores).  Takes about 2-3 minutes.
#
# usage: fwimage/test_boards.sh [--image DIR] [--only efi|kernel|net]
#                                [--compress C] [--no-report] [--keep]
#                                [--run-inside PROGRAM]
#   --image DIR   boot an existing build (made with the stand-in agent)
#                 instead of building one into a temporary directory
#   --only MODE   run one boot path
#   --compress C  build the image with this initramfs compression (xz,
#                 the default, zstd, gzip; zstd builds in a fraction of
#                 xz -9e's time)
#   --no-report   build without build.sh --report (its per-part sizes
#                 compress every part once more)
#   --keep        keep the temporary directory (boards' console logs)
#   --run-inside PROGRAM  put PROGRAM (a test, with its libraries) and
#                 iproute2's ip and bridge into the image; the efi board
#                 runs it once and its exit status must be 0 (a check the
#                 host's kernel cannot make, such as bridge VLAN filtering)
#
# Exit status 0 when every check passed, 1 when one failed, 77 (skip, with a
# "SKIP: reason" line) when QEMU or OVMF is missing; meson runs it as the
# e2e suite's e2e_boards (tests/meson.build).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
image=""
only=""
compress=""
report=--report
keep=0
run_inside=""
while [ $# -gt 0 ]; do
	case "$1" in
	--image) image=$2; shift 2 ;;
	--only) only=$2; shift 2 ;;
	--compress) compress=$2; shift 2 ;;
	--no-report) report=""; shift ;;
	--keep) keep=1; shift ;;
	--run-inside) run_inside=$2; shift 2 ;;
	-h | --help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "test_boards.sh: unknown option '$1'" >&2; exit 2 ;;
	esac
done

# What every boot needs (board.sh's defaults): missing -> a named skip.
if ! command -v "${SKYROOT_QEMU:-qemu-system-x86_64}" >/dev/null; then
	echo "SKIP: ${SKYROOT_QEMU:-qemu-system-x86_64} missing (deploy/deps.sh installs qemu-system-x86)"
	exit 77
fi
for f in "${SKYROOT_OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}" "${SKYROOT_OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}"; do
	if [ ! -r "$f" ]; then
		echo "SKIP: OVMF missing: $f (deploy/deps.sh installs ovmf)"
		exit 77
	fi
done

tmp=$(mktemp -d /tmp/skyroot-test-boards.XXXXXX)
export SKYROOT_BOARDS_DIR=$tmp/boards
http_pid=""
boards=()
cleanup() {
	for b in "${boards[@]}"; do "$here/board.sh" --stop "$b" >/dev/null 2>&1 || true; done
	[ -z "$http_pid" ] || kill "$http_pid" 2>/dev/null || true
	if [ "$keep" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1"; }
not() { ! "$@"; }
check() { # check DESCRIPTION COMMAND...
	local what=$1; shift
	if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi
}
timings=()

# --- stand-in agent and firmware build --------------------------------------
gcc -O2 -Wall -Wextra -o "$tmp/standin-agent" "$here/testdata/standin-agent.c"
inside=()
if [ -n "$run_inside" ]; then
	[ -z "$image" ] || { echo "test_boards.sh: --run-inside builds its own image; not with --image" >&2; exit 2; }
	[ -x "$run_inside" ] || { echo "test_boards.sh: --run-inside $run_inside is not an executable" >&2; exit 2; }
	# a directory of its own, first in the program's PATH only: init
	# keeps busybox's ip, as in the real image
	mkdir "$tmp/inside"
	cp "$run_inside" "$tmp/inside/run"
	cp "$(command -v ip)" "$tmp/inside/ip"
	cp "$(command -v bridge)" "$tmp/inside/bridge"
	# at /opt/skyroot-test in the image (init mounts a tmpfs on /tmp)
	for x in run ip bridge; do inside+=(--extra "$tmp/inside/$x:/opt/skyroot-test/$x"); done
fi
if [ -z "$image" ]; then
	image=$tmp/fw
	"$here/build.sh" --agent "$tmp/standin-agent" --out "$image" $report ${compress:+--compress "$compress"} "${inside[@]}"
fi

# --- image contents ------------------------------------------------------
list=$tmp/initrd.list
# every archive in the stream (build.sh appends one with the device nodes;
# cpio -t would stop at the first trailer)
case "$(head -c 6 "$image/initrd.img" | od -An -tx1 | tr -d ' \n')" in
fd377a585a00) xz -dc "$image/initrd.img" ;;
28b52ffd*) zstd -dc "$image/initrd.img" ;;
*) gzip -dc "$image/initrd.img" ;;
esac | python3 -c '
import sys
d = sys.stdin.buffer.read()
i = 0
while i + 110 <= len(d):
    if d[i:i + 6] != b"070701":
        i += 4  # padding between archives
        continue
    size = int(d[i + 54:i + 62], 16)
    nlen = int(d[i + 94:i + 102], 16)
    name = d[i + 110:i + 110 + nlen - 1].decode()
    i = (i + 110 + nlen + 3) & ~3
    i = (i + size + 3) & ~3
    if name not in ("TRAILER!!!", "."):
        print(name)
' >"$list"
for f in init bin/busybox bin/sh sbin/udhcpc usr/bin/skyagent usr/share/udhcpc/default.script \
	etc/skyroot/modules.load dev/console lib64/ld-linux-x86-64.so.2 lib/x86_64-linux-gnu/libc.so.6; do
	check "initramfs has $f" grep -qx "$f" "$list"
done
for m in kvm kvm-amd kvm-intel irqbypass vfio vfio_iommu_type1 vfio-pci vfio-pci-core virtio_pci virtio_net; do
	check "initramfs has module $m" grep -q "/$m\\.ko\$" "$list"
done
check "modules.load lists kvm before kvm-amd" awk '/\/kvm\.ko$/ { k = NR } /kvm-amd\.ko$/ { a = NR } END { exit !(k && a && k < a) }' "$image/modules.load"
check "modules.load lists vfio before vfio-pci" awk '/\/vfio\.ko$/ { k = NR } /vfio-pci\.ko$/ { a = NR } END { exit !(k && a && k < a) }' "$image/modules.load"

uki_ok() {
	local f=$1 lv ls iv
	read -r lv ls < <(objdump -h "$f" | awk '$2 == ".linux" { print $4, $3 }')
	iv=$(objdump -h "$f" | awk '$2 == ".initrd" { print $4 }')
	for s in .osrel .cmdline .linux .initrd; do objdump -h "$f" | awk -v s=$s '$2 == s { f = 1 } END { exit !f }' || return 1; done
	[ $((0x$iv)) -ge $((0x$lv + 0x$ls)) ]
}
check "skyroot.efi has .osrel .cmdline .linux .initrd, .initrd past .linux" uki_ok "$image/skyroot.efi"
objcopy -O binary --only-section=.cmdline "$image/skyroot.efi" "$tmp/cmdline.bin"
check "skyroot.efi default command line" grep -qx "console=ttyS0 intel_iommu=on iommu=pt panic=-1" "$tmp/cmdline.bin"
"$here/build.sh" --out "$image" --cmdline "skyroot.controller=10.0.2.2:7443 x=1" --efi-out "$tmp/extra.efi" 2>/dev/null
objcopy -O binary --only-section=.cmdline "$tmp/extra.efi" "$tmp/cmdline2.bin"
check "--efi-out UKI carries the extra command line" grep -qx "console=ttyS0 intel_iommu=on iommu=pt panic=-1 skyroot.controller=10.0.2.2:7443 x=1" "$tmp/cmdline2.bin"
efi_without_build() {
	! "$here/build.sh" --out "$tmp/empty" --efi-out "$tmp/x.efi" 2>"$tmp/err" &&
		grep -q 'run fwimage/build.sh' "$tmp/err"
}
check "--efi-out without a build fails with a hint" efi_without_build

# --- boots -------------------------------------------------------------------
# boot_and_check MODE NAME BOARD-ARGS...: boot, wait for the stand-in, check
boot_and_check() {
	local mode=$1 name=$2 out log t
	shift 2
	boards+=("$name")
	out=$tmp/$name.out
	if "$here/board.sh" --name "$name" --image "$image" --boot "$mode" "$@" \
		--wait-console 'standin-agent: ready' --timeout 180 >"$out" 2>&1; then
		ok "$mode: board boots to the agent"
	else
		bad "$mode: board boots to the agent"
		sed 's/^/    /' "$out"
		return 0
	fi
	t=$(sed -n 's/.*matched after \([0-9.]*\) s since power-on.*/\1/p' "$out")
	log=$SKYROOT_BOARDS_DIR/$name/console.log
	tr -d '\r' <"$log" >"$tmp/$name.log"
	log=$tmp/$name.log
	up=$(sed -n 's/.*starting skyagent (attempt 1, uptime \([0-9.]*\) s).*/\1/p' "$log")
	timings+=("$(printf '%-6s %5.1f s power-on to agent: %4.1f s firmware+loader, %4.1f s kernel+init' \
		"$mode" "$t" "$(awk -v a="$t" -v b="${up:-0}" 'BEGIN { print a - b }')" "${up:-0}")")
	check "$mode: kernel booted by UEFI" grep -q 'standin-agent: check efi=yes' "$log"
	check "$mode: init reports UEFI" grep -q 'skyroot-init: booted by UEFI' "$log"
	check "$mode: kvm_amd loaded, /dev/kvm ready" grep -q 'skyroot-init: /dev/kvm ready (kvm_amd)' "$log"
	check "$mode: a KVM VM can be created" grep -q 'check kvm=yes api=12 create_vm=ok' "$log"
	check "$mode: edu (1234:11e8) in an IOMMU group" grep -q 'check iommu_groups=[1-9][0-9]* edu_found=yes' "$log"
	check "$mode: edu bound to vfio-pci, /dev/vfio/N" grep -q 'check vfio_bind=yes' "$log"
	check "$mode: uplink eth0 bridged as br0 for guests" grep -q 'skyroot-init: bridge br0 over uplink eth0 (VLAN filtering on)' "$log"
	check "$mode: DHCP gave 10.0.2.15 on br0" grep -q 'skyroot-init: network up on br0 10.0.2.15/24' "$log"
	check "$mode: agent sees the address" grep -q 'check br0=10.0.2.15/24' "$log"
	check "$mode: agent started by init" grep -q 'skyroot-init: starting skyagent (attempt 1' "$log"
}

want() { [ -z "$only" ] || [ "$only" = "$1" ]; }

if want efi; then
	b=efi-$$
	boot_and_check efi "$b" --cmdline "skyroot.controller=10.0.2.2:7443 skyroot.token=tok skyroot.ca=sha256:00 standin.sleep=1 standin.exit=7${run_inside:+ standin.run=/opt/skyroot-test}"
	if [ -n "$run_inside" ]; then
		if grep -q 'standin-agent: check run=0' "$tmp/$b.log"; then
			ok "efi: $(basename "$run_inside") passes inside the board"
			check "efi: the board's bridge filters VLANs (no refusal path taken)" \
				not grep -q 'VLAN filtering.*checking the refusal' "$tmp/$b.log"
		else
			bad "efi: $(basename "$run_inside") passes inside the board"
			sed -n '/standin-agent: running/,/standin-agent: check run=/p' "$tmp/$b.log" | sed 's/^/    /'
		fi
	fi
	check "efi: board command line reaches the agent" grep -q 'standin-agent: cmdline: console=ttyS0 intel_iommu=on iommu=pt panic=-1 no_timer_check skyroot.controller=10.0.2.2:7443 skyroot.token=tok' "$tmp/$b.log"
	if "$here/board.sh" --name "$b" --wait-console 'restarting in 4 s' --timeout 60 >/dev/null 2>&1; then
		tr -d '\r' <"$SKYROOT_BOARDS_DIR/$b/console.log" >"$tmp/$b.log"
		check "efi: supervisor reports the exit" grep -q 'skyroot-init: skyagent exited with status 7 (error exit); restarting in 1 s' "$tmp/$b.log"
		check "efi: backoff 1, 2, 4 s" grep -q 'restarting in 2 s' "$tmp/$b.log"
		check "efi: agent restarted (attempt 3)" grep -q 'starting skyagent (attempt 3' "$tmp/$b.log"
	else
		bad "efi: supervisor restarts the agent with backoff"
	fi
	check "efi: stop, scratch disk unchanged" "$here/board.sh" --stop "$b"
fi

if want kernel; then
	b=kernel-$$
	boot_and_check kernel "$b" --cmdline "standin.sleep=1 standin.exit=-9" --disk-bus nvme
	if "$here/board.sh" --name "$b" --wait-console 'killed by signal 9' --timeout 60 >/dev/null 2>&1; then
		ok "kernel: supervisor names the signal"
	else
		bad "kernel: supervisor names the signal"
	fi
	tr -d '\r' <"$SKYROOT_BOARDS_DIR/$b/console.log" >"$tmp/$b.log"
	check "kernel: firmware saw the NVMe scratch disk (and left it alone)" grep -q 'standin-agent: block devices: .*nvme0n1' "$tmp/$b.log"
	check "kernel: stop, scratch disk unchanged" "$here/board.sh" --stop "$b"
fi

if want net; then
	b=net-$$
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	mkdir -p "$tmp/http/boot"
	cp "$image/vmlinuz" "$image/initrd.img" "$tmp/http/boot/"
	cat >"$tmp/http/boot/ipxe" <<EOF
#!ipxe
kernel http://10.0.2.2:$port/boot/vmlinuz initrd=initrd.img console=ttyS0 intel_iommu=on iommu=pt panic=-1 no_timer_check skyroot.controller=10.0.2.2:7443 standin.sleep=30
initrd --name initrd.img http://10.0.2.2:$port/boot/initrd.img
boot
EOF
	python3 -m http.server --bind 127.0.0.1 --directory "$tmp/http" "$port" >"$tmp/http.log" 2>&1 &
	http_pid=$!
	boot_and_check net "$b" --boot-url "http://10.0.2.2:$port/boot/ipxe"
	check "net: iPXE fetched script, kernel and initrd" grep -q 'GET /boot/initrd.img HTTP/1.1" 200' "$tmp/http.log"
	check "net: command line from the iPXE script reaches the agent" grep -q 'standin-agent: cmdline: .*skyroot.controller=10.0.2.2:7443' "$tmp/$b.log"
	check "net: stop, scratch disk unchanged" "$here/board.sh" --stop "$b"
	kill "$http_pid" 2>/dev/null || true
	http_pid=""
fi

echo
for t in "${timings[@]}"; do echo "timing: $t"; done
echo "boards: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
