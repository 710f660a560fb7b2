#!/usr/bin/env bash
# An emulated rack: a network namespace with a Linux bridge, Debian's
# dnsmasq as the rack's DHCP server, emulated boards (fwimage/board.sh) on
# taps on that bridge, and one veth pair that puts the host, where the
# controller runs, on the rack network.  Run with --help for usage.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
racks_dir=${SKYROOT_RACKS_DIR:-$top/var/racks}
DNSMASQ=${SKYROOT_DNSMASQ:-dnsmasq}
# The site-specific DHCP option (RFC 3942: 224-254) that names the
# controller, "HOST:PORT"; skyagent's agent/dhcp.h has the same number.
CONTROLLER_OPTION=224
# The rack's DNS domain (DHCP option 15): dnsmasq answers for it alone,
# with the controller as SRV _skyroot._tcp.$DOMAIN, and forwards nothing.
DOMAIN=rack.internal

usage() {
	cat <<EOF
usage: fwimage/rack.sh up NAME [--subnet A.B.C] [--controller HOST:PORT] [--vlan VID]...
       fwimage/rack.sh vlan NAME VID...
       fwimage/rack.sh controller NAME HOST:PORT [--only option|srv]
       fwimage/rack.sh board NAME BOARD [board.sh options]
       fwimage/rack.sh exec NAME COMMAND [ARGS...]
       fwimage/rack.sh env NAME
       fwimage/rack.sh down NAME
       fwimage/rack.sh list

An emulated rack NAME (letters, digits, '.', '_', '-'; state in
var/racks/NAME/ or \$SKYROOT_RACKS_DIR/NAME):

  up          a network namespace skyrack-NAME-PID holding a bridge br0
              with A.B.C.1/24 (default: the first 10.77.C.0/24 the host
              has no address or route in), dnsmasq serving DHCP on it
              (A.B.C.100-199; no router: nothing leaves the rack) and DNS
              for $DOMAIN alone, and a veth pair whose host end has
              A.B.C.2/24 (forwarding off), where the controller listens.
              --controller HOST:PORT (default A.B.C.2:7443) is sent as
              DHCP option $CONTROLLER_OPTION and served as DNS SRV
              _skyroot._tcp.$DOMAIN (target controller.$DOMAIN for an
              address).
              --vlan VID (repeatable): as 'vlan' below.
  vlan        the VLANs (1..4094) the rack's DHCP serves besides its
              untagged network: frames tagged VID cross the bridge as they
              are (no VLAN filtering on it), and a trunk port (veth on br0,
              fwimage/rack_trunk.py) unwraps them onto a tap vlVID with
              10.(80+VID/256).(VID%256).1/24 (inside the rack only),
              where dnsmasq hands out .100-.199 and answers DNS (guests'
              names from their leases).  Replaces the list; restarts dnsmasq.
  controller  change the controller dnsmasq names (restarts it); --only
              option or --only srv names it one way only
  board       fwimage/board.sh --name BOARD --net tap:TAP run inside the
              namespace, TAP a tap on br0.  With --boot net, --boot-url URL
              becomes the boot file (DHCP option 67) dnsmasq gives that
              board's MAC alone, which iPXE then fetches; board.sh's other
              options pass through (SKYROOT_BOARDS_DIR as board.sh reads it).
  exec        run COMMAND inside the rack's namespace (tests)
  env         print RACK_NS RACK_HOST RACK_BRIDGE RACK_SUBNET RACK_DIR, and
              RACK_VLAN_VID=A.B.C.0/24 for each VLAN served
  down        stop the rack's boards (board.sh --stop) and dnsmasq by pid,
              any other process left in the namespace, and delete the
              namespace (and with it the veth pair, bridge and taps)
  list        racks and whether they are up

Files in the rack's folder: dnsmasq.conf, dnsmasq.log, dnsmasq.leases,
dnsmasq.pid, controller.conf (option $CONTROLLER_OPTION and SRV), hosts.d/ and opts.d/ (per-board DHCP, read by dnsmasq as they
change), boards (BOARD TAP BOARDS_DIR per line), ns, subnet, vlans and
vlans.conf (the VLANs served), trunk.pid and trunk.log (the trunk port).
Needs root (network namespaces), Debian's dnsmasq-base, and python3 for
VLANs.
EOF
}

die() {
	echo "rack.sh: error: $*" >&2
	exit 1
}
note() { echo "rack.sh: $*" >&2; }

check_name() { # check_name WHAT NAME
	case "$2" in
	'' | *[!A-Za-z0-9._-]* | .*) die "$1 '$2': use letters, digits, '.', '_' and '-' (not starting with '.')" ;;
	esac
	[ "${#2}" -le 64 ] || die "$1 '$2' is longer than 64 characters"
}

check_hostport() { # the shape of what goes into dnsmasq's config
	case "$1" in
	'' | *[!A-Za-z0-9.:_\[\]-]*) die "controller '$1': give HOST:PORT (letters, digits, '.', ':', '-', '[', ']')" ;;
	esac
	[ "${#1}" -le 255 ] || die "controller '$1' is longer than a DHCP option holds (255 bytes)"
}

need_root() {
	[ "$(id -u)" = 0 ] || die "network namespaces need root"
	command -v ip >/dev/null || die "'ip' not found: install Debian package iproute2"
}

short_hash() { printf '%s' "$1" | sha256sum | cut -c1-"$2"; }

# pid from FILE if it is alive and its command line contains WORD
live_pid() {
	local file=$1 word=$2 pid
	[ -r "$file" ] || return 0
	pid=$(tr -dc 0-9 <"$file")
	[ -n "$pid" ] || return 0
	if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$word"; then
		echo "$pid"
	fi
}

stop_pid() { # stop_pid PID: TERM, then KILL after 5 s
	local pid=$1
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

rack_load() { # rack_load NAME: dir, ns, subnet of an existing rack
	dir=$racks_dir/$1
	[ -r "$dir/ns" ] || die "no rack '$1' is up (no $dir/ns): fwimage/rack.sh up $1"
	ns=$(cat "$dir/ns")
	subnet=$(cat "$dir/subnet")
	ip netns list | awk '{ print $1 }' | grep -qxF -- "$ns" ||
		die "rack '$1': its namespace $ns is gone; fwimage/rack.sh down $1 cleans up"
}

subnet_free() { # subnet_free A.B.C: nothing on the host uses A.B.C.0/24
	local s=$1 d
	ip -4 -o addr show | awk '{ print $4 }' | grep -q "^${s//./\\.}\." && return 1
	[ -z "$(ip -4 route show to match "$s.1" | grep -v '^default' || true)" ] || return 1
	for d in "$racks_dir"/*/; do
		[ -r "$d/subnet" ] && [ -r "$d/ns" ] && [ "$(cat "$d/subnet")" = "$s" ] && return 1
	done
	return 0
}

write_controller_conf() { # write_controller_conf DIR HOST:PORT [option|srv|both]
	local d=$1 hp=$2 only=${3:-both} host port target
	case "$hp" in
	\[*\]:*) host=${hp#[}; host=${host%%]*}; port=${hp##*]:} ;;
	\[*\]) host=${hp#[}; host=${host%]}; port=7443 ;;
	*:*:*) host=$hp; port=7443 ;;
	*:*) host=${hp%:*}; port=${hp##*:} ;;
	*) host=$hp; port=7443 ;;
	esac
	case "$port" in '' | *[!0-9]*) die "controller '$hp': the port must be a number" ;; esac
	[ "$port" -ge 1 ] && [ "$port" -le 65535 ] || die "controller '$hp': port out of 1..65535"
	{
		echo "# the controller (fwimage/rack.sh controller): $hp, named by $only"
		[ "$only" = srv ] || printf 'dhcp-option=%s,"%s"\n' "$CONTROLLER_OPTION" "$hp"
		if [ "$only" != option ]; then
			case "$host" in
			*[!0-9.]* | '') case "$host" in *:*) target=controller.$DOMAIN; echo "host-record=$target,$host" ;; *) target=$host ;; esac ;;
			*) target=controller.$DOMAIN; echo "host-record=$target,$host" ;;
			esac
			echo "srv-host=_skyroot._tcp.$DOMAIN,$target,$port"
		fi
	} >"$d/controller.conf.new"
	mv -f "$d/controller.conf.new" "$d/controller.conf"
}

start_dnsmasq() { # in the rack's namespace; waits for its pid file
	local pid=""
	rm -f "$dir/dnsmasq.pid"
	ip netns exec "$ns" "$DNSMASQ" --conf-file="$dir/dnsmasq.conf" 9>&- ||
		die "dnsmasq did not start; see $dir/dnsmasq.log"
	for _ in $(seq 50); do
		pid=$(live_pid "$dir/dnsmasq.pid" "$dir/dnsmasq.conf")
		[ -n "$pid" ] && break
		sleep 0.1
	done
	[ -n "$pid" ] || die "dnsmasq did not write its pid; see $dir/dnsmasq.log"
	echo "$pid"
}

reload_dnsmasq() { # dhcp-hostsdir/optsdir are re-read on change; SIGHUP to be sure
	local pid
	pid=$(live_pid "$dir/dnsmasq.pid" "$dir/dnsmasq.conf")
	[ -z "$pid" ] || kill -HUP "$pid"
}

vlan_subnet() { # vlan_subnet VID: the VLAN's A.B.C, inside the rack only
	echo "10.$((80 + $1 / 256)).$(($1 % 256))"
}

check_vid() {
	case "$1" in '' | *[!0-9]* | 0*) die "VLAN '$1': give a number 1..4094" ;; esac
	[ "$1" -ge 1 ] && [ "$1" -le 4094 ] || die "VLAN '$1' is out of 1..4094"
}

stop_trunk() {
	local pid
	pid=$(live_pid "$dir/trunk.pid" rack_trunk.py)
	[ -z "$pid" ] || stop_pid "$pid"
	rm -f "$dir/trunk.pid"
}

# set_vlans VID...: the trunk port (re)started with these VLANs, their
# DHCP ranges in vlans.conf.  dnsmasq is (re)started by the caller.
set_vlans() {
	local v args=() h trunk_br trunk_end pid=""
	for v in "$@"; do check_vid "$v"; done
	stop_trunk
	: >"$dir/vlans.conf.new"
	printf '%s\n' "$@" | sort -nu | grep . >"$dir/vlans" || true
	if [ -s "$dir/vlans" ]; then
		command -v python3 >/dev/null || die "VLANs need python3 (fwimage/rack_trunk.py)"
		h=$(short_hash "$ns" 8)
		trunk_br=skrt$h
		trunk_end=skrv$h
		if ! ip -n "$ns" link show "$trunk_br" >/dev/null 2>&1; then
			ip -n "$ns" link add "$trunk_br" type veth peer name "$trunk_end"
			ip -n "$ns" link set "$trunk_br" master br0 up
			ip -n "$ns" link set "$trunk_end" up
		fi
		while read -r v; do
			args+=(--vlan "$v=vl$v=$(vlan_subnet "$v").1/24")
			{
				echo "# VLAN $v: tagged on the rack, untagged on vl$v (the trunk port)"
				echo "interface=vl$v"
				echo "dhcp-range=set:vlan$v,$(vlan_subnet "$v").100,$(vlan_subnet "$v").199,255.255.255.0,1h"
			} >>"$dir/vlans.conf.new"
		done <"$dir/vlans"
		rm -f "$dir/trunk.ready"
		ip netns exec "$ns" setsid python3 "$here/rack_trunk.py" --trunk "$trunk_end" "${args[@]}" \
			--ready "$dir/trunk.ready" >>"$dir/trunk.log" 2>&1 </dev/null 9>&- &
		echo $! >"$dir/trunk.pid"
		for _ in $(seq 100); do
			[ -s "$dir/trunk.ready" ] && break
			kill -0 "$(cat "$dir/trunk.pid")" 2>/dev/null || break
			sleep 0.1
		done
		[ -s "$dir/trunk.ready" ] || die "the trunk port did not start; see $dir/trunk.log"
		cp "$dir/trunk.ready" "$dir/trunk.pid" # its own pid, as it wrote it
	fi
	mv -f "$dir/vlans.conf.new" "$dir/vlans.conf"
}

cmd_vlan() {
	local name=$1 pid
	shift
	[ $# -ge 1 ] || die "vlan NAME VID..."
	need_root
	rack_load "$name"
	set_vlans "$@"
	pid=$(live_pid "$dir/dnsmasq.pid" "$dir/dnsmasq.conf")
	[ -z "$pid" ] || stop_pid "$pid"
	pid=$(start_dnsmasq)
	note "rack $name: VLANs $(tr '\n' ' ' <"$dir/vlans")served (trunk pid $(cat "$dir/trunk.pid" 2>/dev/null)); dnsmasq pid $pid"
}

cmd_up() {
	local name=$1
	shift
	local want_subnet="" controller="" vlans=()
	while [ $# -gt 0 ]; do
		case "$1" in
		--subnet) [ $# -ge 2 ] || die "--subnet needs A.B.C"; want_subnet=$2; shift 2 ;;
		--controller) [ $# -ge 2 ] || die "--controller needs HOST:PORT"; controller=$2; shift 2 ;;
		--vlan) [ $# -ge 2 ] || die "--vlan needs VID"; check_vid "$2"; vlans+=("$2"); shift 2 ;;
		*) die "up: unknown option '$1' (see --help)" ;;
		esac
	done
	need_root
	command -v "$DNSMASQ" >/dev/null || die "$DNSMASQ not found: install Debian package dnsmasq-base (deploy/packages/firmware.txt)"
	dir=$racks_dir/$name
	mkdir -p "$racks_dir"
	exec 9>"$racks_dir/.lock"
	flock 9
	if [ -r "$dir/ns" ]; then
		die "rack '$name' is up already (namespace $(cat "$dir/ns")): fwimage/rack.sh down $name first"
	fi
	if [ -n "$want_subnet" ]; then
		case "$want_subnet" in
		*[!0-9.]* | *..* | .* | *.) die "--subnet '$want_subnet': give the first three octets, e.g. 10.77.3" ;;
		esac
		IFS=. read -r a b c extra <<<"$want_subnet"
		[ -z "$extra" ] && [ -n "$c" ] && [ "$a" -le 255 ] && [ "$b" -le 255 ] && [ "$c" -le 255 ] ||
			die "--subnet '$want_subnet': give the first three octets, e.g. 10.77.3"
		subnet_free "$want_subnet" || die "--subnet $want_subnet: the host or another rack already uses $want_subnet.0/24"
		subnet=$want_subnet
	else
		subnet=""
		for c in $(seq 0 255); do
			if subnet_free "10.77.$c"; then
				subnet=10.77.$c
				break
			fi
		done
		[ -n "$subnet" ] || die "no free 10.77.C.0/24 on this host: pass --subnet A.B.C"
	fi
	controller=${controller:-$subnet.2:7443}
	check_hostport "$controller"

	ns=skyrack-$name-$$
	local h veth_host veth_rack
	h=$(short_hash "$ns" 8)
	veth_host=skrh$h # 12 characters: under IFNAMSIZ
	veth_rack=skrr$h
	rm -rf "$dir"
	mkdir -p "$dir/hosts.d" "$dir/opts.d"
	echo "$subnet" >"$dir/subnet"
	: >"$dir/boards"
	echo "$veth_host" >"$dir/veth"
	ip netns add "$ns" || die "ip netns add $ns failed"
	echo "$ns" >"$dir/ns"
	note "namespace $ns"
	# From here on a failure (die or set -e) tears down what was made.
	up_done=0
	trap '[ "$up_done" = 1 ] || { note "up failed: tearing down"; cmd_down "$name" >/dev/null 2>&1 || true; }' EXIT
	ip -n "$ns" link set lo up
	# The rack's own addresses answer on their own network (VLAN) alone:
	# no ARP reply for vl100's address on vl200, no packet taken in from
	# an interface its source would not be routed back through.
	ip netns exec "$ns" sysctl -q -w net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
		net.ipv4.conf.all.rp_filter=1 net.ipv4.ip_forward=0 >/dev/null
	ip -n "$ns" link add br0 type bridge stp_state 0 forward_delay 0
	ip -n "$ns" addr add "$subnet.1/24" dev br0
	ip -n "$ns" link set br0 up
	ip link add "$veth_host" type veth peer name "$veth_rack" netns "$ns"
	ip -n "$ns" link set "$veth_rack" master br0 up
	# The host end: an address on the rack, and nothing forwarded from it.
	sysctl -q -w "net.ipv6.conf.$veth_host.disable_ipv6=1" >/dev/null 2>&1 || true
	sysctl -q -w "net.ipv4.conf.$veth_host.forwarding=0" >/dev/null
	ip addr add "$subnet.2/24" dev "$veth_host"
	ip link set "$veth_host" up

	write_controller_conf "$dir" "$controller"
	set_vlans "${vlans[@]}"
	cat >"$dir/dnsmasq.conf" <<EOF
# the DHCP server of emulated rack $name (fwimage/rack.sh), in namespace $ns
interface=br0
bind-interfaces
# DNS for $DOMAIN only (the controller's SRV record); nothing forwarded
domain=$DOMAIN
local=/$DOMAIN/
no-resolv
no-hosts
dhcp-authoritative
dhcp-range=$subnet.100,$subnet.199,255.255.255.0,1h
# no router: nothing leaves the rack (DNS server and domain: dnsmasq's own)
dhcp-option=3
# the controller: DHCP option $CONTROLLER_OPTION, "HOST:PORT", and DNS SRV, e.g.
#   dhcp-option=$CONTROLLER_OPTION,"$controller"
#   srv-host=_skyroot._tcp.$DOMAIN,controller.$DOMAIN,PORT
conf-file=$dir/controller.conf
# VLANs (fwimage/rack.sh vlan): their taps and ranges
conf-file=$dir/vlans.conf
dhcp-optsdir=$dir/opts.d
dhcp-hostsdir=$dir/hosts.d
dhcp-leasefile=$dir/dnsmasq.leases
pid-file=$dir/dnsmasq.pid
log-facility=$dir/dnsmasq.log
log-dhcp
user=root
group=root
EOF
	: >"$dir/dnsmasq.leases"
	local pid
	pid=$(start_dnsmasq)
	up_done=1
	note "rack $name up: bridge $subnet.1/24 in $ns, host end $veth_host $subnet.2, dnsmasq pid $pid, controller $controller (DHCP option $CONTROLLER_OPTION)"
	cmd_env "$name"
}

cmd_env() {
	rack_load "$1"
	echo "RACK_NS=$ns"
	echo "RACK_HOST=$subnet.2"
	echo "RACK_BRIDGE=$subnet.1"
	echo "RACK_SUBNET=$subnet.0/24"
	echo "RACK_DIR=$dir"
	local v
	[ -r "$dir/vlans" ] && while read -r v; do
		echo "RACK_VLAN_$v=$(vlan_subnet "$v").0/24"
	done <"$dir/vlans"
	return 0
}

cmd_controller() {
	local name=$1 hp=$2 only=both pid
	shift 2
	if [ $# -gt 0 ]; then
		[ "$1" = --only ] && [ $# -eq 2 ] || die "controller NAME HOST:PORT [--only option|srv]"
		case "$2" in option | srv) only=$2 ;; *) die "--only option or --only srv" ;; esac
	fi
	rack_load "$name"
	check_hostport "$hp"
	write_controller_conf "$dir" "$hp" "$only"
	# srv-host and host-record are read at start only: restart dnsmasq
	pid=$(live_pid "$dir/dnsmasq.pid" "$dir/dnsmasq.conf")
	[ -z "$pid" ] || stop_pid "$pid"
	pid=$(start_dnsmasq)
	note "rack $name: the controller is $hp ($( [ "$only" = both ] && echo "DHCP option $CONTROLLER_OPTION and DNS SRV" || echo "$only only")); dnsmasq pid $pid"
}

cmd_board() {
	local name=$1 board=$2
	shift 2
	check_name board "$board"
	need_root
	rack_load "$name"
	local args=() boot="" boot_url=""
	while [ $# -gt 0 ]; do
		case "$1" in
		--name | --net) die "board: rack.sh sets $1 itself" ;;
		--boot) [ $# -ge 2 ] || die "--boot needs a value"; boot=$2; args+=("$1" "$2"); shift 2 ;;
		--boot-url) [ $# -ge 2 ] || die "--boot-url needs a value"; boot_url=$2; shift 2 ;;
		*) args+=("$1"); shift ;;
		esac
	done
	if [ "$boot" = net ]; then
		[ -n "$boot_url" ] || die "board $board: --boot net on a rack needs --boot-url URL (the iPXE script dnsmasq hands it)"
		case "$boot_url" in
		http://*) ;;
		*) die "--boot-url '$boot_url': Debian's iPXE fetches http:// only" ;;
		esac
		case "$boot_url" in *[!A-Za-z0-9.:/?=\&_%~+-]*) die "--boot-url '$boot_url' has characters a DHCP boot file must not" ;; esac
		[ "${#boot_url}" -le 255 ] || die "--boot-url is longer than a DHCP option holds (255 bytes)"
	elif [ -n "$boot_url" ]; then
		die "--boot-url is only for --boot net"
	fi
	local tap mac bdir
	tap=tap$(short_hash "$board" 10)
	mac=$("$here/board.sh" --name "$board" --print-mac)
	bdir=${SKYROOT_BOARDS_DIR:-$top/var/boards}
	ip -n "$ns" link show "$tap" >/dev/null 2>&1 && die "board $board is on rack $name already (tap $tap)"
	ip -n "$ns" tuntap add dev "$tap" mode tap
	ip -n "$ns" link set "$tap" master br0 up
	printf '%s %s %s\n' "$board" "$tap" "$bdir" >>"$dir/boards"
	# The board's MAC gets a tag; a network-booting board its boot file.
	rm -f "$dir/opts.d/boot-$board"
	if [ -n "$boot_url" ]; then
		printf '%s,set:netboot-%s\n' "$mac" "$board" >"$dir/hosts.d/$board"
		printf 'tag:netboot-%s,67,"%s"\n' "$board" "$boot_url" >"$dir/opts.d/boot-$board"
		reload_dnsmasq
		sleep 0.5 # dnsmasq re-reads the files
	fi
	ip netns exec "$ns" env SKYROOT_BOARDS_DIR="$bdir" "$here/board.sh" --name "$board" --net "tap:$tap" "${args[@]}"
}

cmd_exec() {
	local name=$1
	shift
	[ $# -gt 0 ] || die "exec: give a command"
	need_root
	rack_load "$name"
	exec ip netns exec "$ns" "$@"
}

cmd_down() {
	local name=$1 pid b tap bdir left=0
	need_root
	dir=$racks_dir/$name
	[ -d "$dir" ] || die "no rack '$name' (no $dir)"
	ns=$(cat "$dir/ns" 2>/dev/null || true)
	if [ -r "$dir/boards" ]; then
		while read -r b tap bdir; do
			[ -n "$b" ] || continue
			SKYROOT_BOARDS_DIR=$bdir "$here/board.sh" --stop "$b" || left=1
		done <"$dir/boards"
	fi
	pid=$(live_pid "$dir/dnsmasq.pid" "$dir/dnsmasq.conf")
	if [ -n "$pid" ]; then
		stop_pid "$pid"
		note "stopped dnsmasq (pid $pid)"
	fi
	stop_trunk
	if [ -n "$ns" ] && ip netns list | awk '{ print $1 }' | grep -qxF -- "$ns"; then
		# Anything else still running in the rack's namespace (started by
		# this script inside it): by pid.
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			note "stopping pid $pid left in $ns: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-120)"
			stop_pid "$pid"
		done
		ip netns del "$ns"
		note "deleted namespace $ns"
	fi
	# the host end goes with its peer; make sure
	if [ -r "$dir/veth" ] && ip link show "$(cat "$dir/veth")" >/dev/null 2>&1; then
		ip link del "$(cat "$dir/veth")" 2>/dev/null || true
	fi
	rm -f "$dir/ns" "$dir/dnsmasq.pid"
	note "rack $name down"
	return "$left"
}

cmd_list() {
	[ -d "$racks_dir" ] || return 0
	local d n s
	for d in "$racks_dir"/*/; do
		[ -d "$d" ] || continue
		n=$(basename "$d")
		if [ -r "$d/ns" ]; then
			s="up $(cat "$d/ns") $(cat "$d/subnet").0/24"
		else
			s=down
		fi
		printf '%-20s %s\n' "$n" "$s"
	done
}

[ $# -ge 1 ] || { usage >&2; exit 2; }
case "$1" in
-h | --help) usage; exit 0 ;;
list) cmd_list; exit 0 ;;
esac
cmd=$1
[ $# -ge 2 ] || die "$cmd needs a rack NAME (see --help)"
rack=$2
check_name rack "$rack"
shift 2
case "$cmd" in
up) cmd_up "$rack" "$@" ;;
down) [ $# -eq 0 ] || die "down takes only NAME"; cmd_down "$rack" ;;
env) cmd_env "$rack" ;;
controller) [ $# -ge 1 ] || die "controller takes NAME HOST:PORT [--only option|srv]"; cmd_controller "$rack" "$@" ;;
board) [ $# -ge 1 ] || die "board needs NAME BOARD"; cmd_board "$rack" "$@" ;;
vlan) cmd_vlan "$rack" "$@" ;;
exec) cmd_exec "$rack" "$@" ;;
*) die "unknown command '$cmd' (see --help)" ;;
esac
