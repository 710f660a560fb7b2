#!/usr/bin/env bash
# Boot an emulated Skyroot board: QEMU q35 under TCG with -cpu max (AMD SVM
# with nested paging, so the firmware loads kvm_amd and gets /dev/kvm),
# OVMF UEFI firmware, a VT-d IOMMU, the edu PCI device for passthrough, a
# virtio-net NIC on QEMU's user network (DHCP 10.0.2.15; the host's
# 127.0.0.1 is 10.0.2.2) or on a tap (an emulated rack: fwimage/rack.sh),
# and a scratch disk the firmware must never write.
# Run with --help for usage.
# shellcheck disable=SC2054 # commas inside QEMU option values are intended
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)

DEFAULT_CMDLINE="console=ttyS0 intel_iommu=on iommu=pt panic=-1"
OVMF_CODE=${SKYROOT_OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}
OVMF_VARS=${SKYROOT_OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}
QEMU=${SKYROOT_QEMU:-qemu-system-x86_64}
boards_dir=${SKYROOT_BOARDS_DIR:-$top/var/boards}

name=board0
memory=2048
cpus=2
tcg_thread=single
cmdline=""
boot=efi
boot_url=""
image=$here/out
disk_bus=virtio
disk_mb=64
background=0
wait_re=""
timeout=120
action=boot
target=""
qemu_extra=()
net=user
ca_pin=""
tpm=no
tpm_ca=""

usage() {
	cat <<EOF
usage: fwimage/board.sh [options]          boot a board
       fwimage/board.sh --stop NAME        power a running board off
       fwimage/board.sh --list             list boards and their state

Boots the firmware built by fwimage/build.sh on an emulated board:
QEMU q35, -accel tcg,thread=single -cpu max, OVMF (read-only code + a VARS copy per
board), intel-iommu (caching-mode=on), edu (1234:11e8), virtio-net on the
user network, a scratch disk with a recognisable pattern, -no-reboot.
State (VARS, ESP, scratch disk, console log, pid) lives in
var/boards/NAME/ (or \$SKYROOT_BOARDS_DIR/NAME).

options:
  --name N           board name and state dir (default: board0)
  --memory MB        RAM (default 2048)
  --cpus N           vCPUs (default 2), run by one TCG thread
  --mttcg            one host thread per vCPU (multi-threaded TCG): faster,
                     but QEMU 7.2 now and then soft-locks such a board
  --cmdline "ARGS"   extra kernel command line (after the firmware's default
                     and no_timer_check, which emulated boards need), e.g.
                     "skyroot.controller=10.0.2.2:7443 skyroot.token=T skyroot.ca=sha256:HEX"
  --boot efi         (default) OVMF boots EFI/BOOT/BOOTX64.EFI from an ESP
                     (FAT, mkfs.vfat + mtools): a UKI with the default
                     command line + --cmdline; no boot entry configured
  --boot kernel      QEMU -kernel/-initrd/-append (still through OVMF)
  --boot net         OVMF + QEMU's iPXE ROM: DHCP hands out --boot-url as
                     the boot file; iPXE fetches it (an iPXE script that
                     chains kernel and initrd) over HTTP.  The command line
                     comes from that script; --cmdline is not used.
  --boot-url URL     boot file URL for --boot net on the user network, e.g.
                     http://10.0.2.2:PORT/boot/ipxe (on a tap the rack's
                     DHCP server names the boot file: rack.sh board)
  --net user         (default) QEMU's user network: DHCP 10.0.2.15, the
                     host's 127.0.0.1 is 10.0.2.2; no host ports used
  --net tap:IF       the NIC on tap IF, which must exist (fwimage/rack.sh
                     board creates it on the rack's bridge and runs board.sh
                     in the rack's namespace)
  --print-mac        print the board's MAC (from --name) and exit
  --ca-pin sha256:HEX  --boot efi: bake the CA pin into the board's UKI
                     (build.sh --ca-pin), as a fleet image carries it
  --tpm              a TPM 2.0 (swtpm, tpm-tis): its state, and so its EK,
                     is kept in STATE/tpm/ from boot to boot; the EK
                     certificate is signed by the manufacturer CA in
                     --tpm-ca DIR (made on first use; default: a CA shared
                     by the boards of this boards dir, BOARDS/tpm-ca/).
                     Give the controller DIR/rootca.pem and DIR/issuer.pem
                     (skyrootd tpm-ca add).  OVMF and the UKI's stub
                     measure the boot into it (PCR 11: the UKI)
  --tpm-ca DIR       the manufacturer CA for --tpm (see above)
  --tpm-no-ek-cert   --tpm without an EK certificate (made on first use)
  --image DIR        firmware build to boot (default: fwimage/out)
  --disk-bus B       scratch disk on virtio (default), ahci or nvme
                     (the firmware loads nvme, so it sees that disk in its
                     inventory; virtio_blk/ahci are not loaded)
  --disk-size MB     scratch disk size when it is created (default 64)
  --background       daemonize; print the pid (also in STATE/qemu.pid)
  --wait-console RE  boot in the background and wait until the console log
                     matches the extended regex RE; exit 0 when it does,
                     1 on timeout or if the board dies (it is left as it is).
                     If board NAME is already running, only wait.
  --timeout S        for --wait-console (default 120)
  --qemu-arg ARG     pass ARG to QEMU (repeatable)
  -h, --help         this text

Console: STATE/console.log (and stdout in the foreground; in the
background STATE/console.sock: socat - UNIX-CONNECT:STATE/console.sock).
Boot times (power-on to a console line) are printed by --wait-console.
EOF
}

die() {
	echo "board.sh: error: $*" >&2
	exit 1
}
note() { echo "board.sh: $*" >&2; }
need_arg() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (see --help)"; }
posint() { case "$2" in '' | *[!0-9]*) die "$1 needs a positive integer, not '$2'" ;; esac; [ "$2" -gt 0 ] || die "$1 must be > 0"; }

while [ $# -gt 0 ]; do
	case "$1" in
	--name) need_arg "$@"; name=$2; shift 2 ;;
	--memory) need_arg "$@"; posint "$1" "$2"; memory=$2; shift 2 ;;
	--cpus) need_arg "$@"; posint "$1" "$2"; cpus=$2; shift 2 ;;
	--mttcg) tcg_thread=multi; shift ;;
	--cmdline) [ $# -ge 2 ] || die "--cmdline needs a value"; cmdline=$2; shift 2 ;;
	--boot) need_arg "$@"; boot=$2; shift 2 ;;
	--boot-url) need_arg "$@"; boot_url=$2; shift 2 ;;
	--image) need_arg "$@"; image=$2; shift 2 ;;
	--disk-bus) need_arg "$@"; disk_bus=$2; shift 2 ;;
	--disk-size) need_arg "$@"; posint "$1" "$2"; disk_mb=$2; shift 2 ;;
	--background) background=1; shift ;;
	--wait-console) need_arg "$@"; wait_re=$2; shift 2 ;;
	--timeout) need_arg "$@"; posint "$1" "$2"; timeout=$2; shift 2 ;;
	--qemu-arg) need_arg "$@"; qemu_extra+=("$2"); shift 2 ;;
	--net) need_arg "$@"; net=$2; shift 2 ;;
	--print-mac) action=mac; shift ;;
	--ca-pin) need_arg "$@"; ca_pin=$2; shift 2 ;;
	--tpm) [ "$tpm" = no-ek-cert ] || tpm=yes; shift ;;
	--tpm-ca) need_arg "$@"; tpm_ca=$2; shift 2 ;;
	--tpm-no-ek-cert) tpm=no-ek-cert; shift ;;
	--stop) need_arg "$@"; action=stop; target=$2; shift 2 ;;
	--list) action=list; shift ;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown option '$1' (see --help)" ;;
	esac
done

case "$name" in
'' | *[!A-Za-z0-9._-]* | .*) die "--name '$name': use letters, digits, '.', '_' and '-' (not starting with '.')" ;;
esac

case "$net" in
user) ;;
tap:*)
	tapif=${net#tap:}
	case "$tapif" in '' | *[!A-Za-z0-9_-]*) die "--net tap:IF: bad interface name '$tapif'" ;; esac
	[ "${#tapif}" -le 15 ] || die "--net tap:IF: '$tapif' is longer than 15 characters"
	;;
*) die "unknown --net '$net': use user or tap:IF" ;;
esac

# Stable identity per board name: MAC and SMBIOS UUID.
h=$(printf '%s' "skyroot-board-$name" | sha256sum | cut -c1-32)
mac=52:54:00:${h:0:2}:${h:2:2}:${h:4:2}
uuid=${h:0:8}-${h:8:4}-5${h:13:3}-a${h:17:3}-${h:20:12}
if [ "$action" = mac ]; then
	echo "$mac"
	exit 0
fi

# pid of a running board, or nothing
board_pid() {
	local dir=$boards_dir/$1 pid
	[ -r "$dir/qemu.pid" ] || return 0
	pid=$(tr -dc 0-9 <"$dir/qemu.pid")
	[ -n "$pid" ] || return 0
	if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-name skyroot-$1 "; then
		echo "$pid"
	fi
}

check_scratch() { # say whether the scratch disk still has its creation hash
	local dir=$1 want have
	[ -r "$dir/scratch.sha256" ] && [ -r "$dir/scratch.img" ] || return 0
	want=$(cat "$dir/scratch.sha256")
	have=$(sha256sum "$dir/scratch.img" | cut -d' ' -f1)
	if [ "$want" = "$have" ]; then
		note "scratch disk unchanged (sha256 $have)"
	else
		note "WARNING: scratch disk CHANGED: sha256 $have, created as $want"
		return 1
	fi
}

# the board's swtpm, by its pid (it ends with QEMU's connection; this is
# for a QEMU that was killed before it connected)
stop_tpm() {
	local pid
	[ -r "$1/tpm/swtpm.pid" ] || return 0
	pid=$(tr -dc 0-9 <"$1/tpm/swtpm.pid")
	if [ -n "$pid" ] && grep -q -- "swtpm socket" <<<"$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"; then
		kill -TERM "$pid" 2>/dev/null || true
	fi
	rm -f "$1/tpm/swtpm.pid"
}

if [ "$action" = list ]; then
	[ -d "$boards_dir" ] || exit 0
	for d in "$boards_dir"/*/; do
		[ -d "$d" ] || continue
		b=$(basename "$d")
		p=$(board_pid "$b")
		printf '%-20s %-8s %s\n' "$b" "${p:+running}${p:-stopped}" "${p:+pid $p}"
	done
	exit 0
fi

if [ "$action" = stop ]; then
	case "$target" in '' | *[!A-Za-z0-9._-]* | .*) die "--stop: bad board name '$target'" ;; esac
	dir=$boards_dir/$target
	[ -d "$dir" ] || die "no board '$target' (no $dir)"
	pid=$(board_pid "$target")
	if [ -z "$pid" ]; then
		note "board $target is not running"
		rm -f "$dir/qemu.pid"
		exit 0
	fi
	kill -TERM "$pid"
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
		sleep 0.2
	fi
	rm -f "$dir/qemu.pid"
	stop_tpm "$dir"
	note "stopped board $target (pid $pid)"
	check_scratch "$dir" || exit 1
	exit 0
fi

dir=$boards_dir/$name
log=$dir/console.log

# wait_console RE TIMEOUT: poll the console log; 0 when RE matched
wait_console() {
	local re=$1 limit=$2 start now line pid
	start=$(cat "$dir/boot.start" 2>/dev/null || date +%s.%N)
	while :; do
		line=$(grep -a -E -m1 -- "$re" "$log" 2>/dev/null | tr -d '\r' || true)
		if [ -n "$line" ]; then
			now=$(date +%s.%N)
			printf 'board.sh: %s: matched after %.1f s since power-on: %s\n' "$name" \
				"$(awk -v a="$start" -v b="$now" 'BEGIN { print b - a }')" "$line" >&2
			return 0
		fi
		pid=$(board_pid "$name")
		if [ -z "$pid" ]; then
			note "board $name is not running any more; console log tail:"
			tail -n 15 "$log" | tr -d '\r' | sed 's/^/  | /' >&2
			return 1
		fi
		# the timeout counts from when we started waiting, not from power-on
		now=$(date +%s.%N)
		if [ "$(awk -v a="$wait_from" -v b="$now" 'BEGIN { print (b - a > 0) ? int(b - a) : 0 }')" -ge "$limit" ]; then
			note "timeout: '$re' not seen on $name's console within $limit s; console log tail:"
			tail -n 15 "$log" | tr -d '\r' | sed 's/^/  | /' >&2
			return 1
		fi
		sleep 0.2
	done
}

# --wait-console on a board already running: only wait
running=$(board_pid "$name")
if [ -n "$running" ]; then
	if [ -n "$wait_re" ]; then
		wait_from=$(date +%s.%N)
		wait_console "$wait_re" "$timeout"
		exit $?
	fi
	die "board $name is already running (pid $running): fwimage/board.sh --stop $name first, or pick another --name"
fi

# --- checks -------------------------------------------------------------------
command -v "$QEMU" >/dev/null || die "$QEMU not found: install Debian package qemu-system-x86 (or run deploy/deps.sh)"
[ -r "$OVMF_CODE" ] && [ -r "$OVMF_VARS" ] || die "$OVMF_CODE or $OVMF_VARS missing: install Debian package ovmf"
[ -d "$image" ] || die "no firmware build in $image: run fwimage/build.sh first (or pass --image DIR)"
image=$(cd "$image" && pwd)
case "$boot" in
efi | kernel)
	for f in vmlinuz initrd.img; do
		[ -r "$image/$f" ] || die "$image/$f missing: run fwimage/build.sh${image:+ --out $image} first"
	done
	[ -z "$boot_url" ] || die "--boot-url is only for --boot net"
	[ -z "$ca_pin" ] || [ "$boot" = efi ] || die "--ca-pin is for --boot efi (the UKI)"
	;;
net)
	if [ "$net" != user ]; then
		[ -z "$boot_url" ] || die "--boot-url is for the user network; on a tap the rack's DHCP server names the boot file (rack.sh board ... --boot-url)"
	else
		[ -n "$boot_url" ] || die "--boot net needs --boot-url URL (e.g. http://10.0.2.2:PORT/boot/ipxe)"
	fi
	case "$boot_url" in
	*,*) die "--boot-url must not contain ',' (QEMU option syntax)" ;;
	esac
	[ -z "$cmdline" ] || note "warning: --boot net: the command line comes from the iPXE script; --cmdline is not used"
	[ -z "$ca_pin" ] || die "--ca-pin is for --boot efi (the UKI); a network-booting board gets its pin from the iPXE script"
	;;
*) die "unknown --boot '$boot': use efi, kernel or net" ;;
esac
case "$disk_bus" in virtio | ahci | nvme) ;; *) die "unknown --disk-bus '$disk_bus': use virtio, ahci or nvme" ;; esac

mkdir -p "$dir"
[ -e "$dir/OVMF_VARS.fd" ] || cp "$OVMF_VARS" "$dir/OVMF_VARS.fd"

# Scratch disk: every 512-byte sector says what it is, so any write shows.
if [ ! -e "$dir/scratch.img" ]; then
	python3 - "$dir/scratch.img" "$disk_mb" "$name" <<'PY'
import sys
path, mb, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path + ".tmp", "wb") as f:
    for s in range(mb * 2048):
        line = ("SKYROOT-SCRATCH board=%s sector=%08d " % (name, s)).encode()
        f.write((line * (512 // len(line) + 1))[:511] + b"\n")
import os
os.replace(path + ".tmp", path)
PY
	sha256sum "$dir/scratch.img" | cut -d' ' -f1 >"$dir/scratch.sha256"
	note "created scratch disk $dir/scratch.img (${disk_mb} MiB)"
fi

# One TCG thread for all vCPUs unless --mttcg: QEMU 7.2's multi-threaded
# TCG now and then leaves a vCPU spinning on code another vCPU patched, or
# deaf to its IPIs (seen as "watchdog: BUG: soft lockup - CPU#1 stuck"
# during boot, and with nested guests), and the board never comes up.
args=(-name "skyroot-$name" -machine q35 -accel "tcg,thread=$tcg_thread" -cpu max -smp "$cpus" -m "$memory"
	-uuid "$uuid" -smbios "type=1,manufacturer=Skyroot,product=Emulated board,serial=skyroot-$name"
	-drive "if=pflash,format=raw,readonly=on,file=$OVMF_CODE"
	-drive "if=pflash,format=raw,file=$dir/OVMF_VARS.fd"
	-device intel-iommu,caching-mode=on
	-device edu
	-display none -no-reboot -no-user-config -nodefaults -vga none
	-monitor "unix:$dir/monitor.sock,server=on,wait=off"
	-pidfile "$dir/qemu.pid")

case "$disk_bus" in
virtio) args+=(-drive "if=none,id=scratch,format=raw,file=$dir/scratch.img" -device virtio-blk-pci,drive=scratch) ;;
ahci) args+=(-drive "if=none,id=scratch,format=raw,file=$dir/scratch.img" -device ide-hd,drive=scratch,bus=ide.0) ;;
nvme) args+=(-drive "if=none,id=scratch,format=raw,file=$dir/scratch.img" -device "nvme,drive=scratch,serial=scratch-$name") ;;
esac

# Emulation only: under TCG on a loaded host the kernel's check that the
# timer interrupt arrives through the (interrupt-remapped) IO-APIC can time
# out and panic ("timer doesn't work through Interrupt-remapped IO-APIC");
# no_timer_check skips it.  Real boards do not need it.
board_cmdline="no_timer_check${cmdline:+ $cmdline}"
if [ "$net" = user ]; then
	netdev=user,id=net0
else
	[ -e "/sys/class/net/$tapif" ] || die "--net tap:$tapif: no such interface here (fwimage/rack.sh board makes it inside the rack's namespace)"
	netdev=tap,id=net0,ifname=$tapif,script=no,downscript=no
fi
full_cmdline="$DEFAULT_CMDLINE $board_cmdline"
case "$boot" in
efi)
	# A UKI with this board's command line on a FAT ESP, found by OVMF's
	# removable-media path EFI/BOOT/BOOTX64.EFI (no boot entry needed).
	command -v mkfs.vfat >/dev/null || die "mkfs.vfat not found: install Debian package dosfstools"
	command -v mcopy >/dev/null || die "mcopy not found: install Debian package mtools"
	"$here/build.sh" --out "$image" --cmdline "$board_cmdline" ${ca_pin:+--ca-pin "$ca_pin"} --efi-out "$dir/BOOTX64.EFI" >/dev/null
	uki_kib=$(($(stat -c %s "$dir/BOOTX64.EFI") / 1024))
	esp_kib=$(((uki_kib + 4096 + 1023) / 1024 * 1024))
	rm -f "$dir/esp.img"
	mkfs.vfat -C -n SKYROOT-ESP "$dir/esp.img" "$esp_kib" >/dev/null || die "mkfs.vfat failed"
	mmd -i "$dir/esp.img" ::/EFI ::/EFI/BOOT || die "mmd failed"
	mcopy -i "$dir/esp.img" "$dir/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI || die "mcopy failed"
	args+=(-drive "if=none,id=esp,format=raw,readonly=on,file=$dir/esp.img"
		-device virtio-blk-pci,drive=esp,bootindex=0
		-netdev "$netdev" -device "virtio-net-pci,netdev=net0,mac=$mac,romfile=")
	;;
kernel)
	args+=(-kernel "$image/vmlinuz" -initrd "$image/initrd.img" -append "$full_cmdline"
		-netdev "$netdev" -device "virtio-net-pci,netdev=net0,mac=$mac,romfile=")
	;;
net)
	# QEMU's default ROM for virtio-net is Debian's iPXE (efi-virtio.rom)
	[ "$net" = user ] && netdev="$netdev,bootfile=$boot_url"
	args+=(-netdev "$netdev"
		-device "virtio-net-pci,netdev=net0,mac=$mac,bootindex=0")
	;;
esac

if [ "$tpm" != no ]; then
	"$here/tpm.sh" setup "$dir/tpm/state" "${tpm_ca:-$boards_dir/tpm-ca}" \
		$([ "$tpm" = no-ek-cert ] && echo --no-ek-cert) || die "cannot make the board's TPM (fwimage/tpm.sh setup)"
	stop_tpm "$dir"
	"$here/tpm.sh" qemu "$dir/tpm/state" "$dir/tpm/swtpm.sock" "$dir/tpm/swtpm.pid" ||
		die "cannot start the board's TPM (fwimage/tpm.sh qemu)"
	args+=(-chardev "socket,id=tpmchr,path=$dir/tpm/swtpm.sock" -tpmdev emulator,id=tpm0,chardev=tpmchr
		-device tpm-tis,tpmdev=tpm0)
fi

[ -e "$log" ] && mv -f "$log" "$log.1"
: >"$log"
[ $background = 1 ] || [ -n "$wait_re" ] && daemon=1 || daemon=0
if [ "$daemon" = 1 ]; then
	args+=(-chardev "socket,id=con0,path=$dir/console.sock,server=on,wait=off,logfile=$log"
		-serial chardev:con0 -daemonize)
else
	args+=(-chardev "stdio,id=con0,logfile=$log,signal=on" -serial chardev:con0)
fi
args+=("${qemu_extra[@]}")
printf '%s\n' "$QEMU" "${args[@]}" >"$dir/qemu.args"
date +%s.%N >"$dir/boot.start"

if [ "$daemon" = 1 ]; then
	"$QEMU" "${args[@]}" 2>"$dir/qemu.err" || {
		stop_tpm "$dir"
		cat "$dir/qemu.err" >&2
		die "QEMU failed to start board $name (command in $dir/qemu.args)"
	}
	pid=$(board_pid "$name")
	[ -n "$pid" ] || die "QEMU exited at once; see $dir/qemu.err"
	note "board $name running (pid $pid, boot $boot); console: $log; stop: fwimage/board.sh --stop $name"
	echo "$pid"
	if [ -n "$wait_re" ]; then
		wait_from=$(date +%s.%N)
		wait_console "$wait_re" "$timeout"
		exit $?
	fi
	exit 0
fi

note "board $name (boot $boot): console below and in $log; quit with Ctrl-C"
set +e
"$QEMU" "${args[@]}"
rc=$?
set -e
rm -f "$dir/qemu.pid"
stop_tpm "$dir"
check_scratch "$dir" || exit 1
exit "$rc"
