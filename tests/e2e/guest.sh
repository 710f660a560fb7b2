#!/bin/sh
# Build the demo guest the end-to-end tests and the quickstart run on a
# board: the firmware's own kernel (a bzImage) and a busybox initramfs whose
# /init prints on the serial console
#   SKYROOT-GUEST-UP <kernel release>
#   SKYROOT-GUEST-PCI <address> <vendor>:<device>      for each PCI device
#   SKYROOT-GUEST-EDU present at <addr> id=<register 0>  when the edu device
#                    (1234:11e8) was passed through: its identification
#                    register, read through the IOMMU (0x010000ED)
#   SKYROOT-GUEST-PCI-DONE                              after the last of those
#   SKYROOT-MARKER <word>                               for skyroot.marker=<word>
# and powers off on the ACPI power button (busybox acpid).
#
# usage: tests/e2e/guest.sh FIRMWARE_DIR OUT_DIR
#   FIRMWARE_DIR: a fwimage/build.sh output (its vmlinuz is the guest kernel;
#   the matching modules come from fwimage/cache).  Writes OUT_DIR/vmlinuz and
#   OUT_DIR/initrd.img.
set -eu
fw=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "guest.sh: $busybox missing: install busybox-static" >&2; exit 1; }
[ -s "$fw/vmlinuz" ] || { echo "guest.sh: no $fw/vmlinuz: run fwimage/build.sh" >&2; exit 1; }
krel=$(sed -n "s/^KERNEL_RELEASE=//p" "$fw/build-info" 2>/dev/null)
moddir=$(ls -d "$here"/../../fwimage/cache/kernel/*/root/lib/modules/* 2>/dev/null | grep -v cloud | head -n1)
[ -n "$krel" ] && [ -d "$here/../../fwimage/cache" ] && moddir=$(ls -d "$here"/../../fwimage/cache/kernel/*/root/lib/modules/"$krel" 2>/dev/null | head -n1)
[ -d "$moddir" ] || { echo "guest.sh: kernel modules not found under fwimage/cache" >&2; exit 1; }

mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/etc/acpi/PWRF" "$root/lib/modules"
cp "$busybox" "$root/bin/busybox"
for a in sh mount insmod echo cat head cut tr grep acpid poweroff sleep devmem uname; do
	ln -s busybox "$root/bin/$a"
done
for m in button evdev; do
	f=$(find "$moddir" -name "$m.ko" -o -name "$m.ko.xz" | head -n1)
	[ -n "$f" ] || continue
	case "$f" in
	*.xz) xz -dc "$f" >"$root/lib/modules/$m.ko" ;;
	*) cp "$f" "$root/lib/modules/$m.ko" ;;
	esac
done
cat >"$root/etc/acpi/PWRF/00000080" <<'EOS'
#!/bin/sh
echo "SKYROOT-GUEST-POWERDOWN" >/dev/console
poweroff -f
EOS
chmod 755 "$root/etc/acpi/PWRF/00000080"
cat >"$root/init" <<'EOS'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in button evdev; do [ -e /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko 2>/dev/null; done
i=0
while [ $i -lt 30 ]; do
	ev=$(grep -A5 LNXPWRBN /proc/bus/input/devices 2>/dev/null | grep -o 'event[0-9]*')
	[ -n "$ev" ] && [ -e "/dev/input/$ev" ] && break
	sleep 0.1
	i=$((i + 1))
done
acpid -c /etc/acpi -l /dev/null -p /tmp/acpid.pid 2>/dev/null
echo "SKYROOT-GUEST-UP $(uname -r)"
for d in /sys/bus/pci/devices/*; do
	v=$(cat $d/vendor); dv=$(cat $d/device)
	echo "SKYROOT-GUEST-PCI ${d##*/} ${v#0x}:${dv#0x}"
	if [ "$v:$dv" = "0x1234:0x11e8" ]; then
		echo 1 >$d/enable 2>/dev/null
		bar=$(head -n1 $d/resource | cut -d' ' -f1)
		echo "SKYROOT-GUEST-EDU present at ${d##*/} id=$(devmem $bar 32 2>/dev/null)"
	fi
done
echo "SKYROOT-GUEST-PCI-DONE"
for w in $(cat /proc/cmdline); do
	case "$w" in skyroot.marker=*) echo "SKYROOT-MARKER ${w#*=}" ;; esac
done
while :; do sleep 3600; done
EOS
chmod 755 "$root/init"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -9) >"$out/initrd.img"
cp "$fw/vmlinuz" "$out/vmlinuz"
echo "$out"
