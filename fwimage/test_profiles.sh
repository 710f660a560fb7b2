#!/usr/bin/env bash
# Tests of fwimage/build.sh's profiles and flash size check on a stand-in
# build: a kernel cache made here (a vmlinuz of chosen size, empty module
# files with a modules.dep) used with --offline, /bin/true as the agent,
# $SKYVMM (the build's skyvmm) or /bin/true as skyvmm, gzip.  Seconds per
# build instead of the real kernel's minutes.
#   - flash (the default): skyvmm at /usr/libexec/skyroot/skyvmm, no QEMU,
#     its ROMs nor its libraries; SKYROOT_PROFILE=flash in build-info;
#   - full: QEMU, its ROMs and libraries as well;
#   - --report: each part with its % of the flash and its profiles, the
#     other profile's estimate, the 12 MiB stretch;
#   - a UKI over 16 MiB: the flash build fails with the message and leaves
#     no skyroot.efi (only skyroot.efi.too-big); full takes it; --efi-out
#     keeps the check of the build's profile;
#   - an unknown profile is refused.
# usage: fwimage/test_profiles.sh   (exit 0 when every check passes; 77 with
# "SKIP: reason" without qemu-system-x86_64, the EFI stub or busybox-static)
# shellcheck disable=SC2016 # the bash -c scripts get their values as "$1"...
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
B=$here/build.sh
pass=0
fail=0
rc=0

ok() { pass=$((pass + 1)); echo "ok   - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1"; [ -n "${2:-}" ] && printf '       %s\n' "$2"; return 0; }
check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}

for need in qemu-system-x86_64 objcopy cpio depmod; do
	command -v "$need" >/dev/null || { echo "SKIP: $need not installed (deploy/deps.sh)"; exit 77; }
done
[ -r /usr/lib/systemd/boot/efi/linuxx64.efi.stub ] || { echo "SKIP: no EFI stub (systemd-boot-efi)"; exit 77; }
[ -x /bin/busybox ] || { echo "SKIP: no /bin/busybox (busybox-static)"; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/skyroot-profiles.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
agent=$tmp/standin-agent
cp /bin/true "$agent"
skyvmm=${SKYVMM:-}
[ -x "$skyvmm" ] || skyvmm=/bin/true

# fake_cache DIR KERNEL_BYTES: a kernel cache build.sh --offline takes
krel=6.1.0-99-amd64
fake_cache() {
	local c=$1 bytes=$2 k m
	k=$c/kernel/linux-image-${krel}_6.1.999-1
	m=$k/root/lib/modules/$krel
	mkdir -p "$k/root/boot" "$m/kernel"
	head -c "$bytes" /dev/urandom >"$k/root/boot/vmlinuz-$krel"
	: >"$m/modules.dep"
	for mod in kvm kvm_amd kvm_intel vfio vfio_iommu_type1 vfio_pci virtio_pci virtio_net bridge tun; do
		head -c 4096 /dev/urandom >"$m/kernel/$mod.ko"
		echo "kernel/$mod.ko:" >>"$m/modules.dep"
	done
	: >"$m/modules.builtin"
	: >"$m/modules.order"
	echo "linux-image-$krel 6.1.999-1" >"$k/package"
	touch "$k/.complete"
}

# build OUT CACHE ARGS...: run build.sh; $rc, $out (stdout+stderr)
build() {
	local o=$1 c=$2
	shift 2
	set +e
	out=$("$B" --offline --cache "$c" --out "$o" --agent "$agent" --skyvmm "$skyvmm" --compress gzip "$@" 2>&1)
	rc=$?
	set -e
}

# listing DIR: the initramfs's paths
listing() { gzip -dc "$1/initrd.img" | cpio -it --quiet 2>/dev/null; }

small=$tmp/cache-small
fake_cache "$small" 1048576

# --- the real skyagent (SKYAGENT, from meson): what it loads at run time --
if [ -n "${SKYAGENT:-}" ]; then
	agent_standin=$agent
	agent=$SKYAGENT
	build "$tmp/real" "$small"
	check "real skyagent: build succeeds (rc $rc)" [ "$rc" = 0 ]
	list=$(listing "$tmp/real" || true)
	check "real skyagent: tpm2-tss's device TCTI, which it dlopens" \
		grep -q 'lib/x86_64-linux-gnu/libtss2-tcti-device.so.0$' <<<"$list"
	agent=$agent_standin
	rm -rf "$tmp/real"
else
	echo "# SKYAGENT unset (skyagent not built): only stand-in images checked"
fi

# --- flash, the default --------------------------------------------------
build "$tmp/flash" "$small"
check "flash build succeeds (rc $rc)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || echo "$out" | tail -n 20
list=$(listing "$tmp/flash" || true)
check "flash: skyvmm at /usr/libexec/skyroot/skyvmm" grep -qx 'usr/libexec/skyroot/skyvmm' <<<"$list"
check "flash: skyagent" grep -qx 'usr/bin/skyagent' <<<"$list"
check "flash: no qemu-system-x86_64" bash -c '! grep -q qemu-system <<<"$1"' _ "$list"
check "flash: no QEMU ROMs (usr/share/qemu, seabios, ipxe)" bash -c '! grep -Eq "usr/share/(qemu|seabios)|ipxe" <<<"$1"' _ "$list"
check "flash: build-info says SKYROOT_PROFILE=flash" grep -qx 'SKYROOT_PROFILE=flash' "$tmp/flash/build-info"
check "flash: report lists skyvmm's part" grep -q 'of which skyvmm' "$tmp/flash/report.txt"
check "flash: report has no QEMU part without --report" bash -c '! grep -q QEMU "$1"' _ "$tmp/flash/report.txt"
# QEMU's libraries: one that only QEMU needs must be absent
qlib=$(LC_ALL=C ldd "$(command -v qemu-system-x86_64)" | awk '$1 ~ /^libpixman|^libslirp|^libspice|^libgnutls/ { print $1; exit }')
if [ -n "$qlib" ]; then
	check "flash: no $qlib (QEMU's library)" bash -c '! grep -q "$1" <<<"$2"' _ "$qlib" "$list"
fi

# --- full ------------------------------------------------------------------
build "$tmp/full" "$small" --profile full
check "full build succeeds (rc $rc)" [ "$rc" = 0 ]
list=$(listing "$tmp/full" || true)
check "full: qemu-system-x86_64" grep -qx 'usr/bin/qemu-system-x86_64' <<<"$list"
check "full: SeaBIOS and qboot" bash -c 'grep -q "usr/share/seabios/bios-256k.bin" <<<"$1" && grep -q "usr/share/qemu/qboot.rom" <<<"$1"' _ "$list"
check "full: skyvmm too" grep -qx 'usr/libexec/skyroot/skyvmm' <<<"$list"
[ -n "$qlib" ] && check "full: $qlib" grep -q "$qlib" <<<"$list"
check "full: build-info says SKYROOT_PROFILE=full" grep -qx 'SKYROOT_PROFILE=full' "$tmp/full/build-info"
check "full: bigger than flash" [ "$(stat -c %s "$tmp/full/initrd.img")" -gt "$(stat -c %s "$tmp/flash/initrd.img")" ]
build "$tmp/withqemu" "$small" --with-qemu
check "--with-qemu is --profile full" grep -qx 'SKYROOT_PROFILE=full' "$tmp/withqemu/build-info"

# --- --report ----------------------------------------------------------------
build "$tmp/report" "$small" --report
check "flash --report succeeds (rc $rc)" [ "$rc" = 0 ]
check "report: skyvmm with its % of the flash" grep -Eq 'of which skyvmm +[0-9]+ +[0-9.]+% +flash full' <<<"$out"
check "report: QEMU's part, full only, with its %" grep -Eq 'not in it: QEMU \+ libs \+ ROMs +[0-9]+ +[0-9.]+% +full only' <<<"$out"
check "report: the full profile's estimate" grep -Eq 'profile full, estimated: about [0-9]+ bytes' <<<"$out"
check "report: UKI and flash lines" bash -c 'grep -Eq "UKI total \(skyroot.efi\) +[0-9]+ +[0-9.]+% +profile flash" <<<"$1" && grep -Eq "SPI flash \(M25P128, 128 Mbit\) +16777216" <<<"$1"' _ "$out"
check "report: the 12 MiB stretch" grep -Eq 'stretch: 12 MiB.* 12582912 .*(fits|over by)' <<<"$out"

# --- the size check ----------------------------------------------------------
big=$tmp/cache-big
fake_cache "$big" $((17 * 1048576))
build "$tmp/bigflash" "$big"
check "flash over 16 MiB fails (rc $rc)" [ "$rc" = 1 ]
check "flash over 16 MiB: says so" grep -q "the flash profile's UKI is [0-9]* bytes, [0-9]* bytes over the 16 MiB (16777216-byte) SPI flash" <<<"$out"
check "flash over 16 MiB: no skyroot.efi left" [ ! -e "$tmp/bigflash/skyroot.efi" ]
check "flash over 16 MiB: skyroot.efi.too-big" [ -e "$tmp/bigflash/skyroot.efi.too-big" ]
build "$tmp/bigfull" "$big" --profile full
check "full over 16 MiB builds (rc $rc)" [ "$rc" = 0 ]
check "full over 16 MiB: skyroot.efi" [ -e "$tmp/bigfull/skyroot.efi" ]
# under: a 12 MiB kernel (with busybox and libc, about 14 MiB) in the
# flash profile passes
fits=$tmp/cache-fits
fake_cache "$fits" $((12 * 1048576))
build "$tmp/fits" "$fits"
check "flash at $(stat -c %s "$tmp/fits/skyroot.efi" 2>/dev/null || echo '?') bytes builds (rc $rc)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || echo "$out" | tail -n 5
# --efi-out keeps the check of the build's profile
cp "$big/kernel/linux-image-${krel}_6.1.999-1/root/boot/vmlinuz-$krel" "$tmp/fits/vmlinuz"
set +e
out=$("$B" --out "$tmp/fits" --efi-out "$tmp/efi/a.efi" 2>&1)
rc=$?
set -e
check "--efi-out of a flash build over 16 MiB fails (rc $rc)" [ "$rc" = 1 ]
check "--efi-out: says so" grep -q "over the 16 MiB" <<<"$out"
sed -i 's/^SKYROOT_PROFILE=.*/SKYROOT_PROFILE=full/' "$tmp/fits/build-info"
set +e
"$B" --out "$tmp/fits" --efi-out "$tmp/efi/b.efi" >/dev/null 2>&1
rc=$?
set -e
check "--efi-out of a full build over 16 MiB succeeds (rc $rc)" [ "$rc" = 0 ]

# --- refusals ------------------------------------------------------------------
build "$tmp/bad" "$small" --profile tiny
check "unknown profile refused (rc $rc)" bash -c '[ "$1" = 1 ] && grep -q "unknown --profile .tiny." <<<"$2"' _ "$rc" "$out"
build "$tmp/bad" "$small" --skyvmm /nonexistent/skyvmm
check "missing skyvmm refused (rc $rc)" bash -c '[ "$1" = 1 ] && grep -q "skyvmm binary not found at /nonexistent/skyvmm" <<<"$2"' _ "$rc" "$out"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
