#!/usr/bin/env bash
# Build the Skyroot firmware image from Debian 12 packages: a kernel taken
# from its .deb (never installed on the host), an initramfs with busybox,
# skyagent, skyvmm and the kernel modules for KVM, VFIO, virtio and server
# NICs, and a unified kernel image (UKI) that UEFI firmware boots directly.
# Profiles: flash (the default: no QEMU, the UKI must fit the 16 MiB SPI
# flash) and full (QEMU too, for boards that boot from the network).
# Run with --help for usage.
# shellcheck disable=SC2054 # commas inside xz option values are intended
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)

DEFAULT_CMDLINE="console=ttyS0 intel_iommu=on iommu=pt panic=-1"
FLASH_BYTES=16777216 # 128-Mbit SPI flash (M25P128)
FLASH_STRETCH_BYTES=12582912 # 12 MiB: leaves 4 MiB of the part to the UEFI firmware
SKYVMM_DEST=/usr/libexec/skyroot/skyvmm # where libskyvmm's skyvmm backend looks
STUB=${SKYROOT_EFI_STUB:-/usr/lib/systemd/boot/efi/linuxx64.efi.stub}
BUSYBOX=${SKYROOT_BUSYBOX:-/bin/busybox}

# Module names (as the kernel spells them; '-' and '_' are equivalent).
# '?' marks those that may be absent from a kernel flavour.
MODULES_KVM=(kvm kvm_amd kvm_intel)
MODULES_VFIO=(vfio vfio_iommu_type1 vfio_pci)
MODULES_VIRTIO=(virtio_pci virtio_net)
# Guests' NICs: the bridge br0 over the uplink (init) and their taps.
MODULES_GUESTNET=(bridge tun)
MODULES_NIC=('?e1000' '?e1000e' '?igb' '?ixgbe' '?i40e' '?bnxt_en' '?mlx5_core')
# The board's NVMe disks, so that its inventory shows them (the firmware
# never mounts or writes them).
MODULES_STORAGE=('?nvme')

out=$here/out
cache=$here/cache
agent=$top/build/agent/skyagent
skyvmm=$top/build/vmm/skyvmm/skyvmm
flavour=amd64
profile=flash
kernel_pkg=""
compress=xz
report=0
extra_cmdline=""
efi_out=""
strip_bins=1
offline=0
ca_pin=""
ca_file=""
extras=()
extra_modules=()
no_modules=()

usage() {
	cat <<EOF
usage: fwimage/build.sh [options]

Builds, from Debian 12 packages only, the Skyroot firmware into DIR:
  vmlinuz       the kernel of linux-image-<ver>-<flavour>-amd64 (apt-get
                download + dpkg -x into the cache; nothing is installed)
  initrd.img    cpio newc initramfs: busybox, /init, skyagent + its shared
                libraries, skyvmm, kernel modules (KVM, VFIO, virtio, server
                NICs); QEMU with --profile full
  skyroot.efi   unified kernel image (systemd-boot's linuxx64.efi.stub with
                .osrel .cmdline .linux .initrd) with the command line
                "$DEFAULT_CMDLINE [--cmdline ...]"
  skyroot.efi.pcr11
                the PCR 11 (SHA-256) that UKI's stub leaves in a board's TPM
                (systemd-measure), also printed: what 'skyctl firmware allow
                --pcr11 HEX --name NAME' takes (the measured-boot gate)
  report.txt    sizes of the parts against 16 MiB of SPI flash

options:
  --out DIR          output directory (default: fwimage/out)
  --agent PATH       skyagent binary to embed (default: build/agent/skyagent)
  --skyvmm PATH      skyvmm binary to embed at $SKYVMM_DEST
                     (default: build/vmm/skyvmm/skyvmm)
  --profile P        flash (default): skyvmm, no QEMU; the build fails when
                     skyroot.efi exceeds the 16 MiB ($FLASH_BYTES-byte) flash.
                     full: QEMU as well (its libraries and ROMs), for boards
                     that boot from the network: no flash limit
  --report           print each part's size (bytes, % of the 16 MiB flash),
                     which profile carries it, and the UKI of each profile
  --cmdline "ARGS"   append ARGS to the UKI command line (e.g. the board's
                     skyroot.controller=... skyroot.token=... skyroot.ca=...)
  --ca-pin sha256:HEX  bake the controller's CA pin into the image
                     (/etc/skyroot/ca-pin): a fleet image, one for every
                     board, that needs no skyroot.ca= (which still wins
                     when given); the pin never comes from DHCP
  --ca FILE          the same, the pin computed from the CA certificate
                     FILE (PEM, e.g. the controller's STATE/ca.crt)
  --efi-out FILE     only make a UKI at FILE from DIR/vmlinuz and
                     DIR/initrd.img of an earlier build (cheap: no kernel
                     download, no initramfs); combine with --cmdline
  --flavour F        kernel flavour: amd64 (default: the generic kernel,
                     with e1000e igb ixgbe i40e bnxt_en...; 8 MB, fits the
                     flash) or cloud (LZ4, 14 MB, few NIC drivers: with
                     skyagent it does not fit 16 MiB)
  --kernel-package P exact kernel package (default: resolved from the
                     Depends of linux-image-<flavour>-amd64)
  --compress C       initramfs compression: xz (default), zstd, gzip
  --module NAME      also include module NAME and its dependencies
                     (repeatable; prefix with '?' if it may be absent)
  --no-module NAME   leave NAME out of the default list (repeatable)
  --extra PATH[:DEST]  also include executable PATH (and its libraries)
                     at the same path in the image, or at DEST (repeatable)
  --no-strip         keep symbols in skyagent and --extra binaries
  --with-qemu        the same as --profile full: carry qemu-system-x86_64,
                     its libraries and the firmware files it loads
                     (SeaBIOS, qboot, option ROMs)
  --no-qemu          the same as --profile flash
  --cache DIR        download/extract cache (default: fwimage/cache)
  --offline          do not call apt; use the newest kernel already cached
  -h, --help         this text

Environment: SOURCE_DATE_EPOCH fixes file times in the initramfs.

examples:
  fwimage/build.sh --report
  fwimage/build.sh --profile full --out /tmp/fw-net
  fwimage/build.sh --agent /tmp/standin --out /tmp/fw
  fwimage/build.sh --cmdline "skyroot.controller=10.0.2.2:7443 skyroot.token=T skyroot.ca=sha256:HEX" \\
                   --efi-out var/boards/b1/BOOTX64.EFI
EOF
}

die() {
	echo "build.sh: error: $*" >&2
	exit 1
}
note() { echo "build.sh: $*" >&2; }
warn() { echo "build.sh: warning: $*" >&2; }

need_arg() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (see --help)"; }

while [ $# -gt 0 ]; do
	case "$1" in
	--out) need_arg "$@"; out=$2; shift 2 ;;
	--out=*) out=${1#*=}; shift ;;
	--agent) need_arg "$@"; agent=$2; shift 2 ;;
	--agent=*) agent=${1#*=}; shift ;;
	--report) report=1; shift ;;
	--cmdline) [ $# -ge 2 ] || die "--cmdline needs a value"; extra_cmdline=$2; shift 2 ;;
	--cmdline=*) extra_cmdline=${1#*=}; shift ;;
	--ca-pin) need_arg "$@"; ca_pin=$2; shift 2 ;;
	--ca-pin=*) ca_pin=${1#*=}; shift ;;
	--ca) need_arg "$@"; ca_file=$2; shift 2 ;;
	--ca=*) ca_file=${1#*=}; shift ;;
	--efi-out) need_arg "$@"; efi_out=$2; shift 2 ;;
	--efi-out=*) efi_out=${1#*=}; shift ;;
	--flavour | --flavor) need_arg "$@"; flavour=$2; shift 2 ;;
	--kernel-package) need_arg "$@"; kernel_pkg=$2; shift 2 ;;
	--compress) need_arg "$@"; compress=$2; shift 2 ;;
	--module) need_arg "$@"; extra_modules+=("$2"); shift 2 ;;
	--no-module) need_arg "$@"; no_modules+=("$2"); shift 2 ;;
	--extra) need_arg "$@"; extras+=("$2"); shift 2 ;;
	--skyvmm) need_arg "$@"; skyvmm=$2; shift 2 ;;
	--skyvmm=*) skyvmm=${1#*=}; shift ;;
	--profile) need_arg "$@"; profile=$2; shift 2 ;;
	--profile=*) profile=${1#*=}; shift ;;
	--with-qemu) profile=full; shift ;;
	--no-qemu) profile=flash; shift ;;
	--no-strip) strip_bins=0; shift ;;
	--cache) need_arg "$@"; cache=$2; shift 2 ;;
	--offline) offline=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown option '$1' (see --help)" ;;
	esac
done

case "$profile" in
flash) with_qemu=0 ;;
full) with_qemu=1 ;;
*) die "unknown --profile '$profile': use flash (skyvmm, fits the 16 MiB flash) or full (QEMU too, network boot)" ;;
esac
case "$flavour" in
cloud) meta_pkg=linux-image-cloud-amd64 ;;
amd64) meta_pkg=linux-image-amd64 ;;
*) die "unknown --flavour '$flavour': use cloud or amd64" ;;
esac
case "$compress" in
xz) compressor=(xz -9e --check=crc32 --x86 --lzma2=preset=9e,dict=16MiB -T1 -c) ;;
zstd) compressor=(zstd -19 -q -c -T1) ;;
gzip) compressor=(gzip -9 -n -c) ;;
*) die "unknown --compress '$compress': use xz, zstd or gzip" ;;
esac

# --ca-pin / --ca: the pin as skyagent's --ca takes it, lower case.
[ -z "$ca_pin" ] || [ -z "$ca_file" ] || die "give --ca-pin or --ca, not both"
if [ -n "$ca_file" ]; then
	command -v openssl >/dev/null 2>&1 || die "'openssl' not found: install Debian package openssl (or give --ca-pin)"
	[ -r "$ca_file" ] || die "--ca $ca_file: cannot read it"
	openssl x509 -in "$ca_file" -noout 2>/dev/null || die "--ca $ca_file is not a PEM certificate"
	ca_pin=sha256:$(openssl x509 -in "$ca_file" -outform der | sha256sum | cut -d' ' -f1)
fi
if [ -n "$ca_pin" ]; then
	ca_pin=$(printf '%s' "$ca_pin" | tr 'A-F' 'a-f')
	case "$ca_pin" in
	sha256:*) hexpart=${ca_pin#sha256:} ;;
	*) hexpart="" ;;
	esac
	if [ "${#hexpart}" != 64 ] || [ -n "$(printf '%s' "$hexpart" | tr -d 0-9a-f)" ]; then
		die "--ca-pin '$ca_pin': expected sha256: followed by 64 hex digits (skyctl token create prints it)"
	fi
fi

need_tool() { # need_tool TOOL PACKAGE
	command -v "$1" >/dev/null 2>&1 ||
		die "'$1' not found: install Debian package $2 (or run deploy/deps.sh)"
}

mkdir -p "$out"
out=$(cd "$out" && pwd)

# ---------------------------------------------------------------------------
# UKI: objcopy the kernel, initrd, os-release and command line into the stub.
# make_uki VMLINUZ INITRD OSREL CMDLINE OUTFILE
make_uki() {
	local vmlinuz=$1 initrd=$2 osrel=$3 cmdline=$4 dest=$5
	need_tool objcopy binutils
	need_tool objdump binutils
	[ -r "$STUB" ] || die "EFI stub $STUB missing: install Debian package systemd-boot-efi"
	local stub_end linux_size linux_vma=$((0x2000000)) initrd_vma tmp cmdfile
	# End of the stub's last section: the sections we add must lie above it.
	stub_end=0
	local idx _sect size vma rest
	while read -r idx _sect size vma rest; do
		case "$idx" in '' | *[!0-9]*) continue ;; esac
		[ $((0x$vma + 0x$size)) -gt "$stub_end" ] && stub_end=$((0x$vma + 0x$size))
	done < <(objdump -h "$STUB")
	[ "$stub_end" -gt 0 ] || die "cannot read the section table of $STUB (objdump -h)"
	[ "$stub_end" -lt $((0x20000)) ] ||
		die "the EFI stub $STUB ends at $(printf 0x%x "$stub_end"), past .osrel at 0x20000: update make_uki's layout"
	linux_size=$(stat -c %s "$vmlinuz")
	# .initrd at 0x3000000, or past the end of .linux (1 MiB aligned) for a big kernel
	initrd_vma=$(((linux_vma + linux_size + 0xfffff) & ~0xfffff))
	[ "$initrd_vma" -ge $((0x3000000)) ] || initrd_vma=$((0x3000000))
	tmp=$(mktemp -d)
	cmdfile=$tmp/cmdline
	printf '%s' "$cmdline" >"$cmdfile"
	mkdir -p "$(dirname "$dest")"
	objcopy \
		--add-section .osrel="$osrel" --change-section-vma .osrel=0x20000 \
		--add-section .cmdline="$cmdfile" --change-section-vma .cmdline=0x30000 \
		--add-section .linux="$vmlinuz" --change-section-vma .linux="$(printf 0x%x $linux_vma)" \
		--add-section .initrd="$initrd" --change-section-vma .initrd="$(printf 0x%x "$initrd_vma")" \
		"$STUB" "$dest.tmp" || { rm -rf "$tmp"; die "objcopy failed making $dest"; }
	mv -f "$dest.tmp" "$dest"
	uki_pcr11 "$vmlinuz" "$osrel" "$cmdfile" "$initrd" "$dest"
	rm -rf "$tmp"
}

# uki_pcr11 VMLINUZ OSREL CMDFILE INITRD UKI: the PCR 11 the UKI's stub will
# produce (it extends PCR 11 with each section's name and content, in the
# order .linux .osrel .cmdline .initrd; the firmware's init, not systemd,
# adds no boot phase: --phase= with none), into UKI.pcr11 and printed.
# Without systemd-measure (Debian package systemd) it is left out, said.
uki_pcr11() {
	local measure=${SKYROOT_SYSTEMD_MEASURE:-/usr/lib/systemd/systemd-measure} line pcr
	rm -f "$5.pcr11"
	if [ ! -x "$measure" ]; then
		warn "$measure not found (Debian package systemd): the PCR 11 of $5 is not computed"
		return 0
	fi
	line=$("$measure" calculate --linux="$1" --osrel="$2" --cmdline="$3" --initrd="$4" --bank=sha256 --phase= 2>&1) ||
		die "systemd-measure could not compute the PCR 11 of $5: $line"
	line=$(printf '%s\n' "$line" | grep '^11:sha256=') || die "systemd-measure printed no PCR 11 for $5"
	pcr=${line#11:sha256=}
	case $pcr in
	*[!0-9a-f]* | '') die "systemd-measure gave an unexpected PCR 11 line: $line" ;;
	esac
	[ ${#pcr} -eq 64 ] || die "systemd-measure gave an unexpected PCR 11 line: $line"
	echo "$pcr" >"$5.pcr11"
	note "PCR 11 of $5: $pcr (allow it: skyctl firmware allow --pcr11 $pcr --name NAME)"
}

full_cmdline() {
	if [ -n "$extra_cmdline" ]; then
		printf '%s %s' "$DEFAULT_CMDLINE" "$extra_cmdline"
	else
		printf '%s' "$DEFAULT_CMDLINE"
	fi
}

# pin_cpio PIN: a cpio newc archive holding etc/skyroot/ca-pin, to follow
# an initramfs (the kernel unpacks concatenated archives in order; a later
# file replaces an earlier one).  Written without root, like devnodes_cpio.
pin_cpio() {
	python3 - "$1" "${SOURCE_DATE_EPOCH:-$(date +%s)}" <<'PY'
import sys
pin, mtime = sys.argv[1], int(sys.argv[2])
out = sys.stdout.buffer
def entry(name, mode, data=b"", ino=0):
    n = name.encode() + b"\0"
    hdr = "070701" + "".join("%08X" % v for v in (
        ino, mode, 0, 0, 1, mtime, len(data), 0, 0, 0, 0, len(n), 0))
    b = hdr.encode() + n
    b += b"\0" * (-len(b) % 4)
    b += data + b"\0" * (-len(data) % 4)
    out.write(b)
entry("etc", 0o040755, ino=910001)
entry("etc/skyroot", 0o040755, ino=910002)
entry("etc/skyroot/ca-pin", 0o100644, (pin + "\n").encode(), ino=910003)
entry("TRAILER!!!", 0)
PY
}

# flash_check PROFILE UKI: the flash profile's UKI must fit the SPI flash;
# one that does not is renamed UKI.too-big and the build fails.
flash_check() {
	local prof=$1 uki=$2 size
	[ "$prof" = flash ] || return 0
	size=$(stat -c %s "$uki")
	[ "$size" -gt "$FLASH_BYTES" ] || return 0
	mv -f "$uki" "$uki.too-big"
	die "the flash profile's UKI is $size bytes, $((size - FLASH_BYTES)) bytes over the 16 MiB ($FLASH_BYTES-byte) SPI flash; it is left as $uki.too-big, not flashable. Leave kernel modules out (--no-module NAME; --report lists the largest), or build --profile full for boards that boot from the network"
}

# --efi-out: a UKI from an earlier build, nothing else (with --ca-pin, its
# initrd is the build's followed by a small archive with the pin).
if [ -n "$efi_out" ]; then
	for f in vmlinuz initrd.img os-release; do
		[ -r "$out/$f" ] || die "$out/$f missing: run fwimage/build.sh${out:+ --out $out} first, then --efi-out"
	done
	uki_initrd=$out/initrd.img
	if [ -n "$ca_pin" ]; then
		uki_initrd=$(mktemp "${TMPDIR:-/tmp}/skyroot-initrd-pin.XXXXXX")
		trap 'rm -f "$uki_initrd"' EXIT
		# an uncompressed archive must start 4-byte aligned: zeros between
		pad=$(((4 - $(stat -c %s "$out/initrd.img") % 4) % 4))
		{ cat "$out/initrd.img"; head -c "$pad" /dev/zero; pin_cpio "$ca_pin"; } >"$uki_initrd" ||
			die "cannot append the CA pin to the initrd"
	fi
	make_uki "$out/vmlinuz" "$uki_initrd" "$out/os-release" "$(full_cmdline)" "$efi_out"
	# that build's profile (builds before profiles carried QEMU: full)
	efi_profile=$(sed -n 's/^SKYROOT_PROFILE=//p' "$out/build-info" 2>/dev/null || true)
	flash_check "${efi_profile:-full}" "$efi_out"
	note "wrote $efi_out ($(stat -c %s "$efi_out") bytes) with command line: $(full_cmdline)${ca_pin:+; CA pin $ca_pin baked in}"
	if [ "$report" = 1 ]; then
		size=$(stat -c %s "$efi_out")
		printf 'UKI %s: %d bytes; flash %d bytes; gap %+d bytes\n' "$efi_out" "$size" "$FLASH_BYTES" $((FLASH_BYTES - size))
	fi
	exit 0
fi

# ---------------------------------------------------------------------------
# Full build
need_tool python3 python3
need_tool cpio cpio
need_tool depmod kmod
need_tool dpkg-deb dpkg
need_tool ldd libc-bin
need_tool "${compressor[0]}" "$([ "$compress" = xz ] && echo xz-utils || echo "$compress")"
[ -x "$BUSYBOX" ] || die "$BUSYBOX missing: install Debian package busybox-static"
if ldd "$BUSYBOX" >/dev/null 2>&1; then
	die "$BUSYBOX is dynamically linked: install Debian package busybox-static (not busybox)"
fi
[ -e "$agent" ] || die "skyagent binary not found at $agent: build it (meson setup build && ninja -C build) or pass --agent PATH"
[ -f "$agent" ] && [ -x "$agent" ] || die "$agent is not an executable file"
[ -e "$skyvmm" ] || die "skyvmm binary not found at $skyvmm: build it (ninja -C build) or pass --skyvmm PATH"
[ -f "$skyvmm" ] && [ -x "$skyvmm" ] || die "$skyvmm is not an executable file"

mkdir -p "$cache/debs" "$cache/kernel"
cache=$(cd "$cache" && pwd)
# Builds at once (the e2e cases run two at a time) share the cache: one
# downloads and extracts while the others wait; once it is complete, they
# only read it.
exec 8>"$cache/.lock"
flock 8 || die "cannot lock $cache/.lock"

# --- kernel package --------------------------------------------------------
kdir=""
if [ "$offline" = 0 ]; then
	need_tool apt-get apt
	need_tool apt-cache apt
	if [ -z "$kernel_pkg" ]; then
		kernel_pkg=$(apt-cache depends "$meta_pkg" 2>/dev/null |
			awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
		[ -n "$kernel_pkg" ] ||
			die "cannot resolve the kernel package from $meta_pkg's Depends: run 'apt-get update' (or --offline to use the cache)"
	fi
	kver_pkg=$(apt-cache policy "$kernel_pkg" 2>/dev/null | awk '$1 == "Candidate:" { print $2; exit }')
	[ -n "$kver_pkg" ] && [ "$kver_pkg" != "(none)" ] ||
		die "package $kernel_pkg has no installable version: run 'apt-get update'"
	deb=$(ls "$cache/debs/${kernel_pkg}_"*"_amd64.deb" 2>/dev/null | while read -r f; do
		[ "$(dpkg-deb -f "$f" Version)" = "$kver_pkg" ] && echo "$f"
	done | head -n1 || true)
	if [ -z "$deb" ]; then
		note "downloading $kernel_pkg $kver_pkg"
		(cd "$cache/debs" && apt-get download -q -o APT::Sandbox::User=root "$kernel_pkg=$kver_pkg" >&2) ||
			die "apt-get download $kernel_pkg=$kver_pkg failed (network to the Debian archive? apt-get update?)"
		deb=$(ls -t "$cache/debs/${kernel_pkg}_"*"_amd64.deb" | head -n1)
	fi
	kdir=$cache/kernel/${kernel_pkg}_${kver_pkg}
	if [ ! -e "$kdir/.complete" ]; then
		note "extracting $(basename "$deb")"
		rm -rf "$kdir"
		mkdir -p "$kdir/root"
		dpkg-deb -x "$deb" "$kdir/root" || die "dpkg-deb -x $deb failed"
		krel=$(ls "$kdir/root/lib/modules" | head -n1)
		[ -n "$krel" ] || die "$deb has no /lib/modules"
		# The package ships no modules.dep (its postinst runs depmod): make one.
		depmod -b "$kdir/root" "$krel" || die "depmod on $kdir/root failed"
		echo "$kernel_pkg $kver_pkg" >"$kdir/package"
		touch "$kdir/.complete"
	fi
else
	pattern="linux-image-*-$flavour-amd64_*"
	[ "$flavour" = amd64 ] && pattern="linux-image-[0-9]*[0-9]-amd64_*"
	[ -n "$kernel_pkg" ] && pattern="${kernel_pkg}_*"
	kdir=$(ls -d "$cache/kernel/"$pattern 2>/dev/null | while read -r d; do [ -e "$d/.complete" ] && echo "$d"; done | sort -V | tail -n1 || true)
	[ -n "$kdir" ] || die "--offline: no extracted kernel in $cache/kernel matching $pattern; run once without --offline"
	warn "--offline: using cached $(cat "$kdir/package")"
fi
exec 8>&-
read -r kernel_pkg kver_pkg <"$kdir/package"
kroot=$kdir/root
krel=$(ls "$kroot/lib/modules" | head -n1)
vmlinuz_src=$kroot/boot/vmlinuz-$krel
[ -r "$vmlinuz_src" ] || die "$vmlinuz_src missing in the extracted package"
moddir=$kroot/lib/modules/$krel

# --- module list -------------------------------------------------------------
wanted=()
for m in "${MODULES_KVM[@]}" "${MODULES_VFIO[@]}" "${MODULES_VIRTIO[@]}" "${MODULES_GUESTNET[@]}" "${MODULES_NIC[@]}" "${MODULES_STORAGE[@]}" "${extra_modules[@]}"; do
	skip=0
	for n in "${no_modules[@]}"; do
		[ "$(echo "${m#\?}" | tr - _)" = "$(echo "${n#\?}" | tr - _)" ] && skip=1
	done
	[ "$skip" = 1 ] || wanted+=("$m")
done
modwarn=$(mktemp)
mapfile -t modpaths < <(python3 "$here/moddeps.py" --dep "$moddir/modules.dep" \
	--builtin "$moddir/modules.builtin" "${wanted[@]}" 2>"$modwarn") || {
	cat "$modwarn" >&2
	rm -f "$modwarn"
	die "module resolution failed"
}
missing_mods=$(sed -n 's/^moddeps: warning: \([^:]*\): no such module.*/\1/p' "$modwarn" | tr '\n' ' ')
sed 's/^moddeps: warning: /build.sh: note: /' "$modwarn" >&2
rm -f "$modwarn"
[ ${#modpaths[@]} -gt 0 ] || die "no modules resolved"

# --- stage the initramfs tree -----------------------------------------------
stage=$(mktemp -d "${TMPDIR:-/tmp}/skyroot-initramfs.XXXXXX")
partsdir=$(mktemp -d "${TMPDIR:-/tmp}/skyroot-parts.XXXXXX")
cleanup() { rm -rf "$stage" "$partsdir"; }
trap cleanup EXIT

for d in bin sbin usr/bin usr/sbin usr/share/udhcpc etc/skyroot proc sys dev run tmp root mnt var lib/modules; do
	mkdir -p "$stage/$d"
done
chmod 1777 "$stage/tmp"
ln -s /run "$stage/var/run"

# Files of each part, for the size report (paths relative to $stage).
: >"$partsdir/busybox"
: >"$partsdir/agent"
: >"$partsdir/modules"
: >"$partsdir/vmm"
: >"$partsdir/skyvmm"

install -m 0755 "$BUSYBOX" "$stage/bin/busybox"
echo bin/busybox >>"$partsdir/busybox"
"$BUSYBOX" --list-full | while read -r applet; do
	[ "$applet" = bin/busybox ] && continue
	mkdir -p "$stage/$(dirname "$applet")"
	ln -sf /bin/busybox "$stage/$applet"
done

# What QEMU loads at run time from its firmware path (profile full).
QEMU_ROMS=(/usr/share/seabios/bios-256k.bin /usr/share/qemu/kvmvapic.bin /usr/share/qemu/linuxboot_dma.bin
	/usr/share/qemu/linuxboot.bin /usr/share/qemu/pvh.bin /usr/share/qemu/qboot.rom
	/usr/share/qemu/multiboot_dma.bin /usr/lib/ipxe/qemu/efi-virtio.rom)

# copy_exe SRC DEST PARTFILE: an executable plus the shared libraries and
# dynamic loader that ldd resolves for it, at the paths ldd prints.
copy_exe() {
	local src=$1 dest=$2 part=$3 lddout lib
	install -D -m 0755 "$src" "$stage$dest"
	if [ "$strip_bins" = 1 ] && command -v strip >/dev/null; then
		strip --strip-unneeded "$stage$dest" 2>/dev/null || true
	fi
	echo "${dest#/}" >>"$part"
	lddout=$(LC_ALL=C ldd "$src" 2>&1 || true)
	case "$lddout" in
	*"not a dynamic executable"* | *"statically linked"*) return 0 ;;
	esac
	if grep -q "not found" <<<"$lddout"; then
		die "$src needs libraries this machine lacks:
$(grep "not found" <<<"$lddout")
install their packages (apt-get install ...) and rebuild"
	fi
	while read -r lib; do
		[ -n "$lib" ] || continue
		[ -e "$stage$lib" ] && continue
		install -D -m 0755 "$(readlink -f "$lib")" "$stage$lib"
		echo "${lib#/}" >>"$part"
	done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3; next } $1 ~ /^\// { print $1 }' <<<"$lddout")
}

copy_exe "$(readlink -f "$agent")" /usr/bin/skyagent "$partsdir/agent"
# tpm2-tss loads its TCTI at run time (dlopen, which ldd cannot see): the
# device TCTI the agent uses for the board's TPM (/dev/tpmrm0).
# (no pipe into grep -q or awk's exit: with pipefail, the writer's SIGPIPE
# would fail the build)
if grep -q 'libtss2-tctildr' <<<"$(LC_ALL=C ldd "$agent" 2>/dev/null || true)"; then
	tcti=$(awk '$1 == "libtss2-tcti-device.so.0" && /x86-64/ && !t { t = $NF } END { if (t) print t }' \
		<<<"$(LC_ALL=C ldconfig -p)")
	[ -n "$tcti" ] || die "skyagent uses tpm2-tss but libtss2-tcti-device.so.0 is missing: apt-get install libtss2-tcti-device0"
	copy_exe "$(readlink -f "$tcti")" "$tcti" "$partsdir/agent"
fi
copy_exe "$(readlink -f "$skyvmm")" "$SKYVMM_DEST" "$partsdir/skyvmm"
if [ "$with_qemu" = 1 ]; then
	qemu=$(command -v qemu-system-x86_64) || die "qemu-system-x86_64 not found: install qemu-system-x86 (deploy/deps.sh), or build --profile flash"
	copy_exe "$(readlink -f "$qemu")" /usr/bin/qemu-system-x86_64 "$partsdir/vmm"
	# What QEMU loads at run time from its firmware path
	# (/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu on Debian).
	for f in "${QEMU_ROMS[@]}"; do
		[ -e "$f" ] || die "$f missing: install qemu-system-x86, seabios and ipxe-qemu"
		install -D -m 0644 "$(readlink -f "$f")" "$stage$f"
		echo "${f#/}" >>"$partsdir/vmm"
	done
	ln -sf qboot.rom "$stage/usr/share/qemu/bios-microvm.bin"
fi
for x in "${extras[@]}"; do
	dest=""
	case "$x" in
	*:/*) dest=${x#*:}; x=${x%%:*} ;;
	esac
	[ -f "$x" ] && [ -x "$x" ] || die "--extra $x is not an executable file"
	copy_exe "$(readlink -f "$x")" "${dest:-$(readlink -f "$x")}" "$partsdir/agent"
done

# Kernel modules, in load order, plus a modules.dep for busybox modprobe.
mkdir -p "$stage/lib/modules/$krel"
: >"$stage/etc/skyroot/modules.load"
for p in "${modpaths[@]}"; do
	install -D -m 0644 "$moddir/$p" "$stage/lib/modules/$krel/$p"
	echo "lib/modules/$krel/$p" >>"$partsdir/modules"
	echo "$p" >>"$stage/etc/skyroot/modules.load"
done
cp "$moddir/modules.builtin" "$moddir/modules.order" "$stage/lib/modules/$krel/"
: >"$stage/lib/modules/$krel/modules.builtin.modinfo"
depmod -b "$stage" "$krel" || die "depmod on the staged modules failed"
rm -f "$stage/lib/modules/$krel/"*.bin "$stage/lib/modules/$krel/modules.order" \
	"$stage/lib/modules/$krel/modules.builtin.modinfo"
(cd "$stage" && find "lib/modules/$krel" -maxdepth 1 -type f -name 'modules.*') >>"$partsdir/modules"

# init, DHCP script, configuration
install -m 0755 "$here/init" "$stage/init"
install -m 0755 "$here/udhcpc.script" "$stage/usr/share/udhcpc/default.script"
if [ -n "$ca_pin" ]; then
	echo "$ca_pin" >"$stage/etc/skyroot/ca-pin"
fi
agent_sha=$(sha256sum "$agent" | cut -d' ' -f1)
build_date=$(date -u ${SOURCE_DATE_EPOCH:+-d @"$SOURCE_DATE_EPOCH"} +%Y-%m-%dT%H:%M:%SZ)
version_id=$(date -u ${SOURCE_DATE_EPOCH:+-d @"$SOURCE_DATE_EPOCH"} +%Y%m%d.%H%M)
cat >"$stage/etc/os-release" <<EOF
NAME="Skyroot firmware"
ID=skyroot
VERSION_ID=$version_id
PRETTY_NAME="Skyroot firmware $version_id (kernel $krel)"
HOME_URL="https://skyroot.invalid/"
EOF
cp "$stage/etc/os-release" "$out/os-release"
cat >"$stage/etc/skyroot/build-info" <<EOF
SKYROOT_BUILD_DATE=$build_date
SKYROOT_VERSION=$version_id
KERNEL_PACKAGE=$kernel_pkg
KERNEL_PACKAGE_VERSION=$kver_pkg
KERNEL_RELEASE=$krel
AGENT_SHA256=$agent_sha
SKYROOT_PROFILE=$profile
MISSING_MODULES=$missing_mods
CA_PIN=${ca_pin:-none}
EOF
echo "root:x:0:0:root:/root:/bin/sh" >"$stage/etc/passwd"
echo "root:x:0:" >"$stage/etc/group"
printf 'hosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n' >"$stage/etc/nsswitch.conf"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >"$stage/etc/hosts"
echo skyroot >"$stage/etc/hostname"
: >"$stage/etc/resolv.conf"

# Fixed times for a reproducible archive
epoch=${SOURCE_DATE_EPOCH:-$(date +%s)}
find "$stage" -exec touch -h -d "@$epoch" {} +

# --- cpio + compression -----------------------------------------------------
devnodes_cpio() { # /dev/console and /dev/null, written without mknod (no root needed)
	python3 - "$epoch" <<'PY'
import sys
mtime = int(sys.argv[1])
out = sys.stdout.buffer
def entry(name, mode, rmaj=0, rmin=0, ino=0):
    n = name.encode() + b"\0"
    hdr = "070701" + "".join("%08X" % v for v in (
        ino, mode, 0, 0, 1, mtime, 0, 0, 0, rmaj, rmin, len(n), 0))
    b = hdr.encode() + n
    b += b"\0" * (-len(b) % 4)
    out.write(b)
entry("dev/console", 0o020600, 5, 1, 900001)
entry("dev/null", 0o020666, 1, 3, 900002)
entry("TRAILER!!!", 0)
PY
}
raw=$partsdir/initrd.cpio
(
	cd "$stage"
	find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible
	devnodes_cpio
) >"$raw" || die "cpio failed"
note "compressing initramfs ($(stat -c %s "$raw") bytes raw) with $compress"
"${compressor[@]}" <"$raw" >"$out/initrd.img.tmp" || die "$compress failed"
mv -f "$out/initrd.img.tmp" "$out/initrd.img"
install -m 0644 "$vmlinuz_src" "$out/vmlinuz"
cp "$stage/etc/skyroot/build-info" "$out/build-info"
# The default command line, for the controller's network-boot script.
echo "$DEFAULT_CMDLINE" >"$out/cmdline"
printf '%s\n' "${modpaths[@]}" >"$out/modules.load"

make_uki "$out/vmlinuz" "$out/initrd.img" "$out/os-release" "$(full_cmdline)" "$out/skyroot.efi"

# --- report ---------------------------------------------------------------
# part_sizes LISTFILE [DIR] -> "RAW COMPRESSED" of the files listed (paths
# relative to DIR, default the stage); compressed: the part alone with the
# same compressor (it costs a few seconds: only with --report)
part_sizes() {
	local list=$1 dir=${2:-$stage} rawsz comp=-
	rawsz=$(cd "$dir" && xargs -r -a "$list" stat -L -c %s | awk '{ s += $1 } END { print s + 0 }')
	if [ "$report" = 1 ]; then
		comp=$(cd "$dir" && xargs -r -a "$list" cat | "${compressor[@]}" | wc -c)
	fi
	echo "$rawsz $comp"
}
human() { awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }
pct() { case "$1" in '' | *[!0-9]*) echo "-" ;; *) awk -v b="$1" -v f="$FLASH_BYTES" 'BEGIN { printf "%.1f%%", 100 * b / f }' ;; esac; }
# The flash profile carries no QEMU: for the report, its files as this host
# has them (the binary, the libraries the image lacks, the ROMs).
if [ "$with_qemu" = 0 ] && [ "$report" = 1 ] && qemu=$(command -v qemu-system-x86_64); then
	{
		readlink -f "$qemu"
		LC_ALL=C ldd "$qemu" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3; next } $1 ~ /^\// { print $1 }' |
			while read -r lib; do [ -e "$stage$lib" ] || readlink -f "$lib"; done
		for f in "${QEMU_ROMS[@]}"; do [ -e "$f" ] && readlink -f "$f"; done
	} | sed 's|^/||' >"$partsdir/vmm"
	vmm_dir=/
else
	vmm_dir=$stage
fi
{
	k=$(stat -c %s "$out/vmlinuz")
	i=$(stat -c %s "$out/initrd.img")
	u=$(stat -c %s "$out/skyroot.efi")
	iraw=$(stat -c %s "$raw")
	read -r m_raw m_c < <(part_sizes "$partsdir/modules")
	read -r b_raw b_c < <(part_sizes "$partsdir/busybox")
	read -r a_raw a_c < <(part_sizes "$partsdir/agent")
	read -r s_raw s_c < <(part_sizes "$partsdir/skyvmm")
	read -r v_raw v_c < <(part_sizes "$partsdir/vmm" "$vmm_dir")
	gap=$((FLASH_BYTES - u))
	row() { printf '  %-34s %12s  %7s  %s\n' "$@"; }
	sub() { printf '    %-32s %12s  %7s  %s\n' "$@"; }
	echo "Skyroot firmware $version_id: profile $profile; kernel $kernel_pkg $kver_pkg ($krel), initramfs $compress"
	row "part" "bytes" "flash" "profiles"
	row "kernel (vmlinuz)" "$k" "$(pct "$k")" "flash full; $(human "$k")"
	row "initramfs (initrd.img, $compress)" "$i" "$(pct "$i")" "this build ($profile); $(human "$i"), raw cpio $iraw"
	sub "of which modules (${#modpaths[@]})" "$m_c" "$(pct "$m_c")" "flash full; raw $m_raw; $(wc -l <"$partsdir/modules") files"
	sub "of which busybox" "$b_c" "$(pct "$b_c")" "flash full; raw $b_raw"
	sub "of which skyagent + libs" "$a_c" "$(pct "$a_c")" "flash full; raw $a_raw; $(wc -l <"$partsdir/agent") files"
	sub "of which skyvmm" "$s_c" "$(pct "$s_c")" "flash full; raw $s_raw"
	if [ "$with_qemu" = 1 ]; then
		sub "of which QEMU (VMM) + libs + ROMs" "$v_c" "$(pct "$v_c")" "full; raw $v_raw; $(wc -l <"$partsdir/vmm") files"
	elif [ "$report" = 1 ] && [ -s "$partsdir/vmm" ]; then
		sub "not in it: QEMU + libs + ROMs" "$v_c" "$(pct "$v_c")" "full only; raw $v_raw; $(wc -l <"$partsdir/vmm") files of this host"
	fi
	row "EFI stub + headers" $((u - k - i)) "$(pct $((u - k - i)))" ""
	row "UKI total (skyroot.efi)" "$u" "$(pct "$u")" "profile $profile; $(human "$u")"
	row "SPI flash (M25P128, 128 Mbit)" "$FLASH_BYTES" "100.0%" "$(human "$FLASH_BYTES")"
	if [ "$gap" -ge 0 ]; then
		row "gap" "$(printf '%+d' "$gap")" "" "$(human "$gap") free"
	else
		row "gap" "$(printf '%+d' "$gap")" "" "$(human $((-gap))) OVER the flash"
	fi
	if [ "$u" -le "$FLASH_STRETCH_BYTES" ]; then
		row "stretch: 12 MiB (4 MiB for UEFI)" "$FLASH_STRETCH_BYTES" "75.0%" "fits, $((FLASH_STRETCH_BYTES - u)) bytes spare"
	else
		row "stretch: 12 MiB (4 MiB for UEFI)" "$FLASH_STRETCH_BYTES" "75.0%" "over by $((u - FLASH_STRETCH_BYTES)) bytes"
	fi
	if [ "$report" = 1 ]; then
		echo "  profiles: flash = kernel + initramfs without QEMU (must fit the flash); full = flash + QEMU (network boot, no limit)"
		if [ "$with_qemu" = 0 ] && [ "$v_c" != - ] && [ -s "$partsdir/vmm" ]; then
			echo "  profile full, estimated: about $((u + v_c)) bytes ($(pct $((u + v_c))) of the flash): this UKI + QEMU's part (build --profile full for the exact size)"
		elif [ "$with_qemu" = 1 ] && [ "$v_c" != - ]; then
			echo "  profile flash, estimated: about $((u - v_c)) bytes ($(pct $((u - v_c))) of the flash): this UKI - QEMU's part (build --profile flash for the exact size)"
		fi
		echo "  (part sizes are each part compressed alone with $compress; they do not add up exactly)"
		echo "  largest modules ($compress alone; drop one with --no-module NAME):"
		while read -r p; do
			printf '%d %s\n' "$("${compressor[@]}" <"$stage/$p" | wc -c)" "$(basename "$p")"
		done < <(grep '\.ko' "$partsdir/modules") | sort -rn | head -n 6 |
			while read -r sz mod; do printf '    %-32s %12d\n' "$mod" "$sz"; done
	else
		echo "  (compressed part sizes: build with --report)"
	fi
	[ -z "$missing_mods" ] || echo "  modules absent from this kernel flavour: $missing_mods"
	if [ -n "$ca_pin" ]; then
		echo "  CA pin baked in (fleet image; skyroot.ca= on the command line wins): $ca_pin"
	else
		echo "  CA pin: none baked in (each board needs skyroot.ca=; build with --ca-pin for a fleet image)"
	fi
} >"$out/report.txt"
[ "$report" = 1 ] && cat "$out/report.txt"
flash_check "$profile" "$out/skyroot.efi"
note "wrote $out/vmlinuz, $out/initrd.img, $out/skyroot.efi ($(stat -c %s "$out/skyroot.efi") bytes; gap to 16 MiB flash: $((FLASH_BYTES - $(stat -c %s "$out/skyroot.efi"))) bytes)"
