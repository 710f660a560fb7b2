#!/usr/bin/env bash
# fwimage/rack.sh without boards: a rack comes up, its dnsmasq answers a
# DHCP client with the controller option (224), the firmware's own
# udhcpc.script keeps it where skyagent --controller-from-dhcp reads it,
# the rack's DNS serves the controller as SRV _skyroot._tcp (the second
# way), the client gets no route out of the rack, VLANs 100 and 200 are
# served through the rack's trunk port (leases from their own ranges, DNS,
# no answer across them), and `down` leaves no namespace, no dnsmasq, no
# trunk port and no interface behind.
#
# The client: busybox udhcpc (as in the firmware) in a second network
# namespace of its own, on a veth into the rack's bridge, in a private
# mount namespace whose /run, /etc and /dev/console are scratch, so the
# script's writes stay there.  Needs root, ip, unshare and dnsmasq: exits
# 77 (skip) with the reason otherwise.  Takes a few seconds.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RACK=$here/rack.sh
BUSYBOX=${SKYROOT_BUSYBOX:-/bin/busybox}

skip() {
	echo "SKIP: $*"
	exit 77
}
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces)"
command -v ip >/dev/null || skip "ip (iproute2) missing"
command -v unshare >/dev/null || skip "unshare (util-linux) missing"
command -v dnsmasq >/dev/null || skip "dnsmasq missing: install dnsmasq-base (deploy/packages/firmware.txt)"
[ -x "$BUSYBOX" ] || skip "$BUSYBOX missing: install busybox-static"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/skyroot-test-rack.XXXXXX")
export SKYROOT_RACKS_DIR=$tmp/racks
rack=t$$
client=skyrack-client-$$
cleanup() {
	local r
	ip netns del "$client" 2>/dev/null || true
	for r in "$rack" "$rack-b"; do # the second rack too, when a check between its up and down failed
		if [ -r "$SKYROOT_RACKS_DIR/$r/ns" ]; then
			"$RACK" down "$r" >/dev/null 2>&1 || true
		fi
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

# --- up -----------------------------------------------------------------
"$RACK" up "$rack" --controller "ctl.rack.test:7443" >"$tmp/env" 2>"$tmp/up.log" ||
	fail "rack.sh up failed: $(cat "$tmp/up.log")"
# shellcheck disable=SC1091
. "$tmp/env"
echo "rack $rack: $RACK_NS, bridge $RACK_BRIDGE, host end $RACK_HOST, $RACK_SUBNET"
ip netns list | grep -qw "$RACK_NS" || fail "namespace $RACK_NS missing"
dpid=$(cat "$RACK_DIR/dnsmasq.pid")
kill -0 "$dpid" || fail "dnsmasq (pid $dpid) not running"
[ "$(ip netns identify "$dpid")" = "$RACK_NS" ] || fail "dnsmasq runs outside the rack's namespace"
veth=$(cat "$RACK_DIR/veth")
ip -4 -o addr show dev "$veth" | grep -q " $RACK_HOST/24" || fail "host end $veth has no $RACK_HOST/24"
[ "$(cat "/proc/sys/net/ipv4/conf/$veth/forwarding")" = 0 ] || fail "forwarding on at the host end"
"$BUSYBOX" ping -c1 -W2 "$RACK_BRIDGE" >/dev/null || fail "the host cannot reach the rack's bridge $RACK_BRIDGE"
# a second rack gets its own subnet
"$RACK" up "$rack-b" >"$tmp/env2" 2>"$tmp/up2.log" || fail "second rack: $(cat "$tmp/up2.log")"
grep -q "^RACK_SUBNET=$RACK_SUBNET\$" "$tmp/env2" && fail "two racks on one subnet: $(cat "$tmp/env2")"
"$RACK" down "$rack-b" 2>/dev/null || fail "second rack down"
# the same name twice is refused
"$RACK" up "$rack" 2>/dev/null && fail "a second 'up' of the same rack was accepted"
# a controller that is not a HOST:PORT never reaches dnsmasq's config
"$RACK" controller "$rack" 'x" ; dhcp-script=/bin/sh' 2>/dev/null && fail "a malformed controller was accepted"
grep -q 'dhcp-script' "$RACK_DIR/controller.conf" && fail "the malformed controller got into dnsmasq's files"

# --- a DHCP client in a namespace of its own ----------------------------
mac=52:54:00:5e:77:01
ip netns add "$client"
ip -n "$RACK_NS" link add cl0 type veth peer name cl1 netns "$client"
ip -n "$RACK_NS" link set cl0 master br0 up
ip -n "$client" link set cl1 address "$mac"
ip -n "$client" link set lo up
ip -n "$client" link set cl1 up
mkdir -p "$tmp/client"
: >"$tmp/client/console"
# shellcheck disable=SC2016 # expanded by the inner shell
ip netns exec "$client" unshare -m --propagation private sh -ec '
	tmp=$1 busybox=$2 script=$3
	mount -t tmpfs tmpfs /run
	mount -t tmpfs tmpfs /etc
	mount --bind "$tmp/console" /dev/console
	# /etc is hidden, and with it /etc/alternatives/awk: busybox applets first
	mkdir -p "$tmp/bin" && ln -sf "$busybox" "$tmp/bin/awk" && PATH=$tmp/bin:$PATH
	"$busybox" udhcpc -i cl1 -n -q -t 5 -T 2 -O 224 -s "$script" >"$tmp/udhcpc.out" 2>&1
	cp -r /run/skyroot "$tmp/state"
	ip -4 -o addr show dev cl1 >"$tmp/addr"
	ip -4 route show default >"$tmp/route"
	cp /etc/resolv.conf "$tmp/resolv.conf"
	"$busybox" nslookup -type=SRV _skyroot._tcp.rack.internal "$4" >"$tmp/srv" 2>&1 || true
	"$busybox" nslookup controller.rack.internal "$4" >"$tmp/a" 2>&1 || true
' sh "$tmp/client" "$BUSYBOX" "$here/udhcpc.script" "$RACK_BRIDGE" || {
	cat "$tmp/client/udhcpc.out" >&2 || true
	tail -20 "$RACK_DIR/dnsmasq.log" >&2 || true
	fail "udhcpc got no lease from the rack's dnsmasq"
}
echo "client: $(cat "$tmp/client/addr")"
grep -q "inet ${RACK_SUBNET%.0/24}\." "$tmp/client/addr" || fail "client address not in $RACK_SUBNET: $(cat "$tmp/client/addr")"
[ ! -s "$tmp/client/route" ] || fail "the rack handed out a route: $(cat "$tmp/client/route")"
grep -qi "$mac" "$RACK_DIR/dnsmasq.leases" || fail "client MAC not in the lease file: $(cat "$RACK_DIR/dnsmasq.leases")"
f=$tmp/client/state/controller.cl1
[ -s "$f" ] || fail "udhcpc.script kept no controller option ($(ls "$tmp/client/state"))"
got=$(python3 -c 'import sys; print(bytes.fromhex(open(sys.argv[1]).read().strip()).decode())' "$f")
[ "$got" = "ctl.rack.test:7443" ] || fail "option 224 says '$got', not ctl.rack.test:7443"
grep -q "names a controller (option 224)" "$tmp/client/console" || fail "no console line: $(cat "$tmp/client/console")"
echo "client: option 224 = $got (hex in $f), console: $(grep -m1 'option 224' "$tmp/client/console")"
# DNS: the rack's domain and server through DHCP, the controller as SRV
grep -q "^search rack.internal" "$tmp/client/resolv.conf" || fail "no search domain: $(cat "$tmp/client/resolv.conf")"
grep -q "^nameserver $RACK_BRIDGE" "$tmp/client/resolv.conf" || fail "no rack DNS server: $(cat "$tmp/client/resolv.conf")"
grep -q "_skyroot._tcp.rack.internal.*0 0 7443 ctl.rack.test" "$tmp/client/srv" ||
	fail "no SRV _skyroot._tcp.rack.internal -> ctl.rack.test:7443: $(cat "$tmp/client/srv")"
echo "client: $(grep -m1 _skyroot "$tmp/client/srv" | tr -s ' \t' ' ')"
# an address as controller: SRV target controller.rack.internal, its A record
"$RACK" controller "$rack" "$RACK_HOST:7001" --only srv 2>/dev/null || fail "rack.sh controller --only srv"
grep -q "dhcp-option=224" "$RACK_DIR/controller.conf" && fail "--only srv still sends option 224"
grep -q "^srv-host=_skyroot._tcp.rack.internal,controller.rack.internal,7001\$" "$RACK_DIR/controller.conf" &&
	grep -q "^host-record=controller.rack.internal,$RACK_HOST\$" "$RACK_DIR/controller.conf" ||
	fail "controller.conf: $(cat "$RACK_DIR/controller.conf")"
ip netns exec "$client" "$BUSYBOX" nslookup controller.rack.internal "$RACK_BRIDGE" 2>&1 | grep -q "$RACK_HOST" ||
	fail "controller.rack.internal does not resolve to $RACK_HOST after the restart"
dpid=$(cat "$RACK_DIR/dnsmasq.pid")
"$RACK" controller "$rack" "$RACK_HOST:7001" --only option 2>/dev/null || fail "rack.sh controller --only option"
grep -q "srv-host" "$RACK_DIR/controller.conf" && fail "--only option still serves SRV"
kill -0 "$dpid" 2>/dev/null && fail "dnsmasq not restarted"
dpid=$(cat "$RACK_DIR/dnsmasq.pid")
[ "$(ip netns identify "$dpid")" = "$RACK_NS" ] || fail "restarted dnsmasq runs outside the rack"
# skyagent's own parser agrees (agent/dhcp.c), when it is built
if [ -n "${SKYAGENT:-}" ] && [ -x "${SKYAGENT:-}" ]; then
	out=$("$SKYAGENT" --controller-from-dhcp "$tmp/nonexistent" --cmdline /dev/null --ca "sha256:$(printf '0%.0s' $(seq 64))" --once 2>&1 || true)
	case "$out" in *"DHCP option 224"*) ;; *) fail "skyagent without the file: $out" ;; esac
fi

# --- VLANs ---------------------------------------------------------------
# The host's bridge forwards 802.1Q frames as they are; the rack's trunk
# port (rack_trunk.py) unwraps VLANs 100 and 200 for dnsmasq.  The client
# tags its frames the same way (a trunk port of its own on cl1: the host
# has no 8021q).  A lease from a VLAN's own range proves the tag crossed
# the bridge and came back: untagged, br0's dnsmasq would answer from
# $RACK_SUBNET.
if ! command -v python3 >/dev/null; then
	echo "VLANs: not checked (python3 missing)"
else
	"$RACK" vlan "$rack" 100 200 2>"$tmp/vlan.log" || fail "rack.sh vlan: $(cat "$tmp/vlan.log")"
	"$RACK" env "$rack" >"$tmp/env3"
	grep -qx "RACK_VLAN_100=10.80.100.0/24" "$tmp/env3" && grep -qx "RACK_VLAN_200=10.80.200.0/24" "$tmp/env3" ||
		fail "rack.sh env: $(cat "$tmp/env3")"
	tpid=$(cat "$RACK_DIR/trunk.pid")
	[ "$(ip netns identify "$tpid")" = "$RACK_NS" ] || fail "the trunk port runs outside the rack"
	ip -n "$RACK_NS" -4 -o addr show dev vl100 | grep -q " 10.80.100.1/24" || fail "no vl100 with 10.80.100.1"
	# --csum-offload: the client's UDP leaves with its checksum unfinished,
	# as a guest's virtio-net sends it across the boards
	ip netns exec "$client" python3 "$here/rack_trunk.py" --trunk cl1 --vlan 100=cv100 --vlan 200=cv200 --csum-offload \
		--ready "$tmp/client-trunk" >"$tmp/client-trunk.log" 2>&1 &
	cpid=$!
	for _ in $(seq 50); do [ -s "$tmp/client-trunk" ] && break; sleep 0.1; done
	[ -s "$tmp/client-trunk" ] || fail "the client's trunk port: $(cat "$tmp/client-trunk.log")"
	for v in 100 200; do
		ip netns exec "$client" "$BUSYBOX" udhcpc -i "cv$v" -n -q -t 5 -T 2 -x "hostname:vc$v" -s /bin/true \
			>"$tmp/udhcpc.$v" 2>&1 || fail "no lease on VLAN $v: $(cat "$tmp/udhcpc.$v")"
		grep -q "lease of 10\.80\.$v\.1[0-9][0-9] obtained" "$tmp/udhcpc.$v" ||
			fail "VLAN $v: not a lease from 10.80.$v.100-199: $(cat "$tmp/udhcpc.$v")"
		echo "VLAN $v: $(grep -o 'lease of [0-9.]*' "$tmp/udhcpc.$v") (tagged across the bridge)"
	done
	# VLAN 200 does not reach VLAN 100 (an address of VLAN 100's subnet on
	# it); the same address on VLAN 100 does.
	ip -n "$client" addr add 10.80.100.250/24 dev cv200
	ip netns exec "$client" "$BUSYBOX" ping -c 2 -W 2 10.80.100.1 >/dev/null 2>&1 &&
		fail "VLAN 200 reaches 10.80.100.1 on VLAN 100"
	ip -n "$client" addr del 10.80.100.250/24 dev cv200
	ip -n "$client" addr add 10.80.100.250/24 dev cv100
	ip netns exec "$client" "$BUSYBOX" ping -c 2 -W 2 10.80.100.1 >/dev/null 2>&1 ||
		fail "VLAN 100 does not reach its own dnsmasq at 10.80.100.1"
	echo "VLANs: 200 gets no answer from 100's 10.80.100.1, 100 does"
	# DNS on the VLAN (UDP from a socket, checksum offloaded): the name the
	# client gave in its DHCP request
	ip netns exec "$client" "$BUSYBOX" nslookup vc100 10.80.100.1 >"$tmp/ns100" 2>&1 || true
	grep -q "^Address: 10\.80\.100\.1[0-9][0-9]\$" "$tmp/ns100" ||
		fail "no DNS answer for vc100 on VLAN 100: $(cat "$tmp/ns100")"
	echo "VLAN 100: DNS vc100 -> $(sed -n 's/^Address: //p' "$tmp/ns100" | tail -n1)"
	kill "$cpid"
	wait "$cpid" 2>/dev/null || true
fi

# --- down ---------------------------------------------------------------
ip netns del "$client"
"$RACK" down "$rack" 2>"$tmp/down.log" || fail "rack.sh down: $(cat "$tmp/down.log")"
ip netns list | grep -qw "$RACK_NS" && fail "namespace $RACK_NS left after down"
kill -0 "$dpid" 2>/dev/null && fail "dnsmasq (pid $dpid) left after down"
[ -z "${tpid:-}" ] || ! kill -0 "$tpid" 2>/dev/null || fail "the trunk port (pid $tpid) left after down"
ip link show "$veth" >/dev/null 2>&1 && fail "host end $veth left after down"
"$RACK" list | grep -q "^$rack .*down" || fail "rack list does not say down: $("$RACK" list)"
echo "ok: rack up, DHCP with option 224, rack down"
