#!/bin/sh
# Build the demo guest the end-to-end tests and the quickstart run on a
# board: the firmware's own kernel (a bzImage) and a busybox initramfs whose
# /init prints on the serial console
#   SKYROOT-GUEST-UP <kernel release>
#   SKYROOT-GUEST-PCI <address> <vendor>:<device>      for each PCI device
#   SKYROOT-GUEST-EDU present at <addr> id=<register 0>  when the edu device
#                    (1234:11e8) was passed through: its identification
#                    register, read through the IOMMU (0x010000ED)
#   SKYROOT-GUEST-EDU-IRQ events=<n>                     with skyroot.edu-irq=1 on the
#                    command line: edu's "raise interrupt" register written
#                    (INTx, 0x60), uio_pci_generic bound to edu, and the
#                    number of interrupts its handler took (uio's event count)
#   SKYROOT-GUEST-PCI-DONE                              after the last of those
#   SKYROOT-MARKER <word>                               for skyroot.marker=<word>
# and powers off on the ACPI power button (busybox acpid).
# With skyroot.net=NAME it brings its NIC (virtio-net) up by DHCP, giving
# NAME as its host name (the rack's dnsmasq puts it in its DNS), and prints
#   SKYROOT-GUEST-NET <iface> <mac> <address>  (or SKYROOT-GUEST-NET-FAIL <iface> <mac>)
# then, for skyroot.ping=A,B: each peer's address by DNS, then ping:
#   SKYROOT-GUEST-PING <peer> <address> ok|none    (none: no answer in time)
# and for skyroot.probe=A,B: an address of its own in each peer's /24
# (x.y.z.250, outside dnsmasq's range) and ping once it resolves:
#   SKYROOT-GUEST-PROBE <peer> <address> answered|no-answer
# skyroot.sink=PORT: takes one TCP connection on PORT (busybox nc) and
# reads it to its end; from the connection to its end:
#   SKYROOT-GUEST-SINK <bytes> <seconds>
# skyroot.send=PEER:PORT:MIB: sends MIB MiB of zeros to PEER (by DNS):
#   SKYROOT-GUEST-SEND <bytes> <seconds>   (or SKYROOT-GUEST-SEND-FAIL)
# skyroot.wait=SECONDS bounds the waits for peers (default 300).
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
for a in sh mount insmod echo cat head cut tr grep acpid poweroff sleep devmem uname ip udhcpc nslookup ping \
	nc dd wc awk sed; do
	ln -s busybox "$root/bin/$a"
done
# virtio-net and what it needs (Debian builds them as modules), in load
# order from the kernel's modules.dep
netmods=$(python3 "$here/../../fwimage/moddeps.py" --dep "$moddir/modules.dep" --builtin "$moddir/modules.builtin" \
	--names virtio_pci virtio_net | tr '\n' ' ')
# uio and uio_pci_generic: the edu interrupt check (skyroot.edu-irq=1)
for m in button evdev $netmods uio uio_pci_generic; do
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
echo "$netmods" >"$root/etc/netmods"
cat >"$root/etc/udhcpc.script" <<'EOS'
#!/bin/sh
# busybox udhcpc: the address on the NIC, the DNS server kept for nslookup
case "$1" in
bound | renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/$mask" dev "$interface"
	echo "${dns%% *}" >/tmp/dns
	echo "$ip" >/tmp/ip.$interface
	;;
esac
EOS
chmod 755 "$root/etc/udhcpc.script"
# busybox nc stops at the first end of file on either side, unread data
# lost: the two ends of a transfer run under nc -e, on the socket itself.
cat >"$root/bin/sky-sink" <<'EOS'
#!/bin/sh
t0=$(cut -d' ' -f1 /proc/uptime)
b=$(wc -c)
echo "SKYROOT-GUEST-SINK $b $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.2f", b - a }')" >/dev/console
EOS
cat >"$root/bin/sky-source" <<'EOS'
#!/bin/sh
exec dd if=/dev/zero bs=1M count="$(cat /tmp/send.mib)" 2>/dev/null
EOS
chmod 755 "$root/bin/sky-sink" "$root/bin/sky-source"
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
		if grep -qw skyroot.edu-irq=1 /proc/cmdline; then
			# raise edu's interrupt (level INTx, until acknowledged), then
			# bind uio_pci_generic: its handler claims the pending line
			devmem $((bar + 0x60)) 32 1
			for m in uio uio_pci_generic; do [ -e /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko 2>/dev/null; done
			echo "1234 11e8" >/sys/bus/pci/drivers/uio_pci_generic/new_id 2>/dev/null
			n=0 i=0
			while [ $i -lt 50 ]; do
				n=$(cat $d/uio/uio*/event 2>/dev/null || echo 0)
				[ "$n" -gt 0 ] && break
				sleep 0.1
				i=$((i + 1))
			done
			echo "SKYROOT-GUEST-EDU-IRQ events=$n status=$(devmem $((bar + 0x24)) 32 2>/dev/null)"
			grep -i uio /proc/interrupts
		fi
	fi
done
echo "SKYROOT-GUEST-PCI-DONE"
net="" pings="" probes="" sink="" send="" wait=300
for w in $(cat /proc/cmdline); do
	case "$w" in
	skyroot.marker=*) echo "SKYROOT-MARKER ${w#*=}" ;;
	skyroot.net=*) net=${w#*=} ;;
	skyroot.ping=*) pings=$(echo "${w#*=}" | tr , ' ') ;;
	skyroot.probe=*) probes=$(echo "${w#*=}" | tr , ' ') ;;
	skyroot.sink=*) sink=${w#*=} ;;
	skyroot.send=*) send=${w#*=} ;;
	skyroot.wait=*) wait=${w#*=} ;;
	esac
done
now() { cut -d' ' -f1 /proc/uptime; }
# resolve NAME: its address from the DHCP server's DNS, waiting for it
resolve() {
	t=0
	while [ "$t" -lt "$wait" ]; do
		a=$(nslookup "$1" "$(cat /tmp/dns 2>/dev/null)" 2>/dev/null | awk '/^Name:/ { n = 1 } n && /^Address/ { print $NF; exit }')
		[ -n "$a" ] && { echo "$a"; return 0; }
		sleep 2
		t=$((t + 2))
	done
	return 1
}
if [ -n "$net" ]; then
	for m in $(cat /etc/netmods); do
		[ -e /lib/modules/$m.ko ] && ! grep -q "^$m " /proc/modules && ! e=$(insmod /lib/modules/$m.ko 2>&1) &&
			echo "SKYROOT-GUEST-NET-FAIL insmod $m: $e"
	done
	ip link set lo up
	for d in /sys/class/net/*; do
		i=${d##*/}
		[ "$i" = lo ] && continue
		mac=$(cat $d/address)
		ip link set "$i" up
		if udhcpc -i "$i" -x hostname:"$net" -s /etc/udhcpc.script -n -q -t 10 -T 3 >/dev/null 2>&1; then
			echo "SKYROOT-GUEST-NET $i $mac $(cat /tmp/ip.$i)"
		else
			echo "SKYROOT-GUEST-NET-FAIL $i $mac"
		fi
	done
	[ -n "$sink" ] && nc -l -p "$sink" -e /bin/sky-sink &
	for p in $probes; do
		a=$(resolve "$p") || { echo "SKYROOT-GUEST-PROBE $p - unresolved"; continue; }
		ip addr add "${a%.*}.250/24" dev eth0 2>/dev/null
		if ping -c 5 -W 2 "$a" >/dev/null 2>&1; then r=answered; else r=no-answer; fi
		echo "SKYROOT-GUEST-PROBE $p $a $r"
	done
	for p in $pings; do
		a=$(resolve "$p") || { echo "SKYROOT-GUEST-PING $p - none"; continue; }
		r=none t=0
		while [ "$t" -lt "$wait" ]; do
			ping -c 1 -W 2 "$a" >/dev/null 2>&1 && { r=ok; break; }
			sleep 1
			t=$((t + 2))
		done
		echo "SKYROOT-GUEST-PING $p $a $r"
	done
	if [ -n "$send" ]; then
		peer=${send%%:*} rest=${send#*:}
		echo "${rest#*:}" >/tmp/send.mib
		# the peer listens once its NIC is up: a refused connection is tried again
		ok=1 t=0
		if a=$(resolve "$peer"); then
			while [ "$t" -lt "$wait" ]; do
				t0=$(now)
				nc "$a" "${rest%%:*}" -e /bin/sky-source 2>/dev/null && { ok=0; break; }
				sleep 2
				t=$((t + 2))
			done
		fi
		if [ "$ok" = 0 ]; then
			echo "SKYROOT-GUEST-SEND $((${rest#*:} * 1048576)) $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')"
		else
			echo "SKYROOT-GUEST-SEND-FAIL $peer"
		fi
	fi
fi
while :; do sleep 3600; done
EOS
chmod 755 "$root/init"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -9) >"$out/initrd.img"
cp "$fw/vmlinuz" "$out/vmlinuz"
echo "$out"
