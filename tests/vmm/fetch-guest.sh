#!/bin/sh
# Fetch and build the guest artefacts the vmm integration tests boot:
#   DIR/vmlinuz      the kernel of Debian's linux-image-<ver>-cloud-amd64,
#                    taken from its .deb (apt-get download + dpkg -x; nothing
#                    is installed on the host)
#   DIR/initrd.img   a gzip'd cpio newc initramfs: busybox-static, a few
#                    modules (virtio-blk, ACPI button, evdev, pvpanic) and an /init that
#                    prints "SKYROOT-VMM-GUEST-UP" on the serial console, shows
#                    the first bytes of /dev/vda when a disk is attached, and
#                    powers off on the ACPI power button (busybox acpid), or
#                    at once with skyroot.test=poweroff on the command line
#                    (skyroot.test=deaf-once: the first press is ignored);
#                    skyroot.test=panic panics the kernel (pvpanic reports
#                    it); each console input line comes back as
#                    "SKYROOT-VMM-ECHO: <line>".
#
# usage: tests/vmm/fetch-guest.sh [DIR]
#   DIR defaults to $SKY_VMM_GUEST_DIR, else /var/cache/skyroot-vmm (outside
#   git).  Idempotent: a second run with the artefacts present does nothing
#   and prints DIR.  Needs: apt-get, dpkg, cpio, gzip, busybox-static.
#   SKY_VMM_KERNEL_PKG picks an exact kernel package.
set -eu

dir=${1:-${SKY_VMM_GUEST_DIR:-/var/cache/skyroot-vmm}}
busybox=${SKY_VMM_BUSYBOX:-/bin/busybox}
stamp_version=7

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
# Tests run in parallel: one builder at a time.
exec 9>"$dir/.lock"
flock 9
if [ -s "$dir/vmlinuz" ] && [ -s "$dir/initrd.img" ] &&
	[ "$(cat "$dir/stamp" 2>/dev/null)" = "$stamp_version" ]; then
	echo "$dir"
	exit 0
fi

die() {
	echo "fetch-guest: $*" >&2
	exit 1
}

command -v apt-get >/dev/null || die "apt-get not found (Debian 12 is required)"
command -v dpkg >/dev/null || die "dpkg not found"
command -v cpio >/dev/null || die "cpio not found: apt-get install cpio"
[ -x "$busybox" ] || die "$busybox not found: apt-get install busybox-static"
file_out=$(LC_ALL=C ldd "$busybox" 2>&1 || true)
case "$file_out" in
*"not a dynamic"*) ;;
*) die "$busybox is not static: apt-get install busybox-static" ;;
esac

# linux-image-cloud-amd64 is a metapackage; its Depends names the real one.
pkg=${SKY_VMM_KERNEL_PKG:-}
if [ -z "$pkg" ]; then
	pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -n1)
	[ -n "$pkg" ] || die "cannot resolve linux-image-cloud-amd64 (run apt-get update)"
fi

debs=$dir/debs
mkdir -p "$debs"
deb=$(ls "$debs/${pkg}_"*.deb 2>/dev/null | head -n1 || true)
if [ -z "$deb" ]; then
	# (apt warns that root downloads unsandboxed into a root-owned dir)
	(cd "$debs" && apt-get download -q "$pkg" 2>&1 >/dev/null | grep -v unsandboxed >&2 || true)
	ls "$debs/${pkg}_"*.deb >/dev/null 2>&1 ||
		die "apt-get download $pkg failed"
	deb=$(ls "$debs/${pkg}_"*.deb | head -n1)
fi

work=$(mktemp -d "$dir/work.XXXXXX")
trap 'rm -rf "$work"' EXIT
dpkg -x "$deb" "$work/kernel"
vmlinuz=$(ls "$work"/kernel/boot/vmlinuz-* | head -n1)
[ -s "$vmlinuz" ] || die "no vmlinuz in $deb"
kver=${vmlinuz##*/vmlinuz-}
moddir=$work/kernel/lib/modules/$kver

root=$work/root
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" \
	"$root/etc/acpi/PWRF" "$root/lib/modules"
cp "$busybox" "$root/bin/busybox"
for applet in sh mount insmod echo cat head tr grep acpid poweroff sleep; do
	ln -s busybox "$root/bin/$applet"
done
# Dependency order (modinfo -F depends): virtio_ring before virtio, ...
mods="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk button evdev pvpanic pvpanic-mmio"
for m in $mods; do
	f=$(find "$moddir" -name "$m.ko" -o -name "$m.ko.*" | head -n1)
	[ -n "$f" ] || die "module $m not in $pkg"
	case "$f" in
	*.ko) cp "$f" "$root/lib/modules/$m.ko" ;;
	*.ko.xz) xz -dc "$f" >"$root/lib/modules/$m.ko" ;;
	*.ko.zst) zstd -qdc "$f" >"$root/lib/modules/$m.ko" ;;
	*) die "unknown module compression: $f" ;;
	esac
done

cat >"$root/etc/acpi/PWRF/00000080" <<'EOS'
#!/bin/sh
case " $(cat /proc/cmdline) " in
*" skyroot.test=deaf-once "*)
	if [ ! -e /tmp/pressed ]; then
		: >/tmp/pressed
		echo "SKYROOT-VMM-PRESS-IGNORED" >/dev/console
		exit 0
	fi ;;
esac
echo "SKYROOT-VMM-POWERDOWN" >/dev/console
poweroff -f
EOS
chmod 755 "$root/etc/acpi/PWRF/00000080"

cat >"$root/init" <<EOS
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $mods; do insmod /lib/modules/\$m.ko 2>/dev/null; done
# acpid opens the /dev/input/event* present when it starts: wait for the
# ACPI power button's (LNXPWRBN) node first.
i=0
while [ \$i -lt 50 ]; do
	ev=\$(grep -A5 LNXPWRBN /proc/bus/input/devices | grep -o 'event[0-9]*')
	[ -n "\$ev" ] && [ -e "/dev/input/\$ev" ] && break
	sleep 0.1
	i=\$((i + 1))
done
acpid -c /etc/acpi -l /dev/null -p /tmp/acpid.pid
echo "SKYROOT-VMM-GUEST-UP"
if [ -b /dev/vda ]; then
	echo "SKYROOT-VMM-DISK: \$(head -c 32 /dev/vda | tr -cd 'A-Za-z0-9-')"
fi
case " \$(cat /proc/cmdline) " in
*" skyroot.test=poweroff "*) poweroff -f ;;
*" skyroot.test=panic "*) echo c >/proc/sysrq-trigger ;;
esac
# Console input comes back as "SKYROOT-VMM-ECHO: <line>".
while read -r line; do echo "SKYROOT-VMM-ECHO: \$line"; done
while :; do sleep 3600; done
EOS
chmod 755 "$root/init"

(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -9) >"$work/initrd.img"
cp "$vmlinuz" "$dir/vmlinuz.tmp" && mv "$dir/vmlinuz.tmp" "$dir/vmlinuz"
mv "$work/initrd.img" "$dir/initrd.img"
echo "$stamp_version" >"$dir/stamp"
echo "$dir"
