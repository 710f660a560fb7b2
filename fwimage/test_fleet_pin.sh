#!/usr/bin/env bash
# build.sh's fleet pin without a kernel build: --efi-out --ca-pin on a
# stand-in build folder (any bytes serve as vmlinuz and os-release; the
# initrd is a gzip'd cpio) must give a UKI whose .initrd is the build's
# initrd, zeros to a 4-byte boundary, then a cpio with etc/skyroot/ca-pin
# holding the pin (lower case); --ca FILE computes the same pin as
# openssl; malformed pins and non-certificates are refused.  Seconds.
# Skips (77) without the EFI stub, objcopy, cpio or openssl.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STUB=${SKYROOT_EFI_STUB:-/usr/lib/systemd/boot/efi/linuxx64.efi.stub}
skip() {
	echo "SKIP: $*"
	exit 77
}
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
[ -r "$STUB" ] || skip "EFI stub $STUB missing (systemd-boot-efi)"
for t in objcopy cpio openssl gzip python3; do
	command -v "$t" >/dev/null || skip "$t missing"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/skyroot-test-pin.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
out=$tmp/out
mkdir -p "$out" "$tmp/root/etc/skyroot"
head -c 300001 /dev/urandom >"$out/vmlinuz"
echo 'NAME="stand-in"' >"$out/os-release"
echo "not the pin" >"$tmp/root/etc/skyroot/hello"
(cd "$tmp/root" && find . | cpio --quiet -o -H newc | gzip -n) >"$out/initrd.img"

upper=sha256:$(printf 'AB%.0s' $(seq 32))
lower=sha256:$(printf 'ab%.0s' $(seq 32))
"$here/build.sh" --out "$out" --ca-pin "$upper" --efi-out "$tmp/fleet.efi" 2>"$tmp/log" ||
	fail "build.sh --efi-out --ca-pin: $(cat "$tmp/log")"
objcopy -O binary --only-section=.initrd "$tmp/fleet.efi" "$tmp/initrd.bin"
n=$(stat -c %s "$out/initrd.img")
cmp -s -n "$n" "$tmp/initrd.bin" "$out/initrd.img" || fail "the UKI's initrd does not start with the build's"
pad=$(((4 - n % 4) % 4))
tail -c +$((n + 1)) "$tmp/initrd.bin" | head -c "$pad" | od -An -tx1 | grep -q '[1-9a-f]' && fail "padding is not zeros"
mkdir "$tmp/x"
tail -c +$((n + pad + 1)) "$tmp/initrd.bin" | (cd "$tmp/x" && cpio --quiet -i -d 2>/dev/null) ||
	fail "no cpio archive after the build's initrd (at byte $((n + pad)))"
[ "$(cat "$tmp/x/etc/skyroot/ca-pin")" = "$lower" ] || fail "ca-pin holds '$(cat "$tmp/x/etc/skyroot/ca-pin" 2>/dev/null)', not $lower"
# the offset where the archive starts is 4-byte aligned, as the kernel needs
[ $(((n + pad) % 4)) = 0 ] || fail "the pin archive starts unaligned"
grep -q "CA pin $lower baked in" "$tmp/log" || fail "build.sh does not say the pin: $(cat "$tmp/log")"
echo "ok: --efi-out --ca-pin: the UKI's initrd is the build's + $pad zero bytes + a cpio with etc/skyroot/ca-pin"

# without a pin: the initrd is the build's, unchanged
"$here/build.sh" --out "$out" --efi-out "$tmp/plain.efi" 2>/dev/null
objcopy -O binary --only-section=.initrd "$tmp/plain.efi" "$tmp/plain.bin"
[ "$(stat -c %s "$tmp/plain.bin")" -ge "$n" ] && cmp -s -n "$n" "$tmp/plain.bin" "$out/initrd.img" ||
	fail "the plain UKI's initrd differs"
head -c "$(stat -c %s "$tmp/plain.bin")" "$tmp/plain.bin" | tail -c +$((n + 1)) | grep -qa "ca-pin" && fail "a pin in a UKI built without one"

# --ca FILE: the pin of the certificate's DER
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/k.pem" -out "$tmp/ca.crt" \
	-subj /CN=test-ca -days 1 2>/dev/null
want=sha256:$(openssl x509 -in "$tmp/ca.crt" -outform der | sha256sum | cut -d' ' -f1)
"$here/build.sh" --out "$out" --ca "$tmp/ca.crt" --efi-out "$tmp/ca.efi" 2>"$tmp/log" || fail "--ca: $(cat "$tmp/log")"
grep -q "CA pin $want baked in" "$tmp/log" || fail "--ca computed another pin than $want: $(cat "$tmp/log")"
echo "ok: --ca FILE gives $want"

# refused
for bad in sha256:12 "sha256:$(printf 'g%.0s' $(seq 64))" "md5:$(printf 'a%.0s' $(seq 64))" "$(printf 'a%.0s' $(seq 64))"; do
	"$here/build.sh" --out "$out" --ca-pin "$bad" --efi-out "$tmp/bad.efi" 2>/dev/null && fail "pin '$bad' accepted"
done
"$here/build.sh" --out "$out" --ca "$tmp/k.pem" --efi-out "$tmp/bad.efi" 2>/dev/null && fail "a key accepted as --ca"
"$here/build.sh" --out "$out" --ca "$tmp/ca.crt" --ca-pin "$lower" --efi-out "$tmp/bad.efi" 2>/dev/null &&
	fail "--ca with --ca-pin accepted"
[ ! -e "$tmp/bad.efi" ] || fail "a UKI written for a refused pin"
echo "ok: malformed pins, a key for a certificate, and both flags at once are refused"
