#!/bin/sh
# Skyroot quickstart, the main job:
#
#   ./deploy/quickstart.sh                 firmware, controller, an emulated rack
#                                          (dnsmasq) with two boards that find the
#                                          controller by DHCP (one UEFI board accepted
#                                          by its serial, one network boot), a demo
#                                          guest with the board's edu device passed
#                                          through and a NIC on the rack (root)
#   ./deploy/quickstart.sh --agents-only   three agents on this machine instead of
#                                          emulated boards (fixture identities)
#   ./deploy/quickstart.sh --stop          stop what the quickstart started
#
# The controller's state lives in ./var/quickstart (kept between runs).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
STATE=$ROOT/var/quickstart
RUN=$ROOT/var/quickstart-run
AGENT_PORT=${SKY_AGENT_PORT:-7443}
API_PORT=${SKY_API_PORT:-7444}
SKYCTL="$ROOT/build/controller/skyctl/skyctl --config $STATE/skyctl.conf"

stop_pidfile() {
	f=$1
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid"
		i=0
		while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	fi
	rm -f "$f"
}

BOOT_PORT=${SKY_BOOT_PORT:-7480}
export SKYROOT_BOARDS_DIR=$ROOT/var/boards
export SKYROOT_RACKS_DIR=$ROOT/var/racks
RACK=qs
VLAN=100

stop_all() {
	for f in "$RUN"/agent-*.pid; do [ -e "$f" ] && stop_pidfile "$f"; done
	# rack down stops its boards (board.sh --stop) and dnsmasq
	[ -d "$SKYROOT_RACKS_DIR/$RACK" ] && ./fwimage/rack.sh down "$RACK" >/dev/null 2>&1 || true
	stop_pidfile "$RUN/skyrootd.pid"
}

mode=boards
case "${1:-}" in
--stop)
	stop_all
	echo "quickstart: stopped (state kept in $STATE; remove it to start a new fleet)"
	exit 0
	;;
--agents-only) mode=agents ;;
"") ;;
-h | --help)
	sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
*)
	echo "usage: $0 [--agents-only | --stop]" >&2
	exit 2
	;;
esac
[ $# -le 1 ] || { echo "usage: $0 [--agents-only | --stop]" >&2; exit 2; }
if [ "$mode" = boards ] && [ "$(id -u)" != 0 ]; then
	echo "quickstart: the emulated rack (fwimage/rack.sh: a network namespace, dnsmasq) needs root;" >&2
	echo "            run it as root, or ./deploy/quickstart.sh --agents-only" >&2
	exit 2
fi

t0=$(date +%s.%N)
step() { printf '\n== %s\n' "$*"; }
now() { date +%s.%N; }
since() { echo "$(now) $1" | awk '{printf "%.1f", $1 - $2}'; }
summary=""
timed() { summary="$summary$(printf '  %-52s %6s s' "$1" "$2")\n"; }

step "installing dependencies (Debian packages)"
./deploy/deps.sh

step "building"
t=$(now)
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
echo "built skyrootd, skyagent, skyctl in build/"
timed "build skyrootd, skyagent, skyctl" "$(since "$t")"

FW=$ROOT/var/firmware
FW_FLASH=$ROOT/var/firmware-flash
if [ "$mode" = boards ]; then
	step "building the firmware images (kernel + initramfs + UKI skyroot.efi)"
	t=$(now)
	# The flash image (the default profile: skyvmm, no QEMU, fits the 16
	# MiB SPI part) for the UEFI board; the full one (QEMU too) is what the
	# controller's boot server gives the network-booting board.
	./fwimage/build.sh --agent build/agent/skyagent --out "$FW_FLASH" --profile flash --report
	./fwimage/build.sh --agent build/agent/skyagent --out "$FW" --profile full
	timed "build the firmware, flash and full (fwimage/build.sh)" "$(since "$t")"
	step "building the demo guest (kernel + busybox initramfs)"
	./tests/e2e/guest.sh "$FW" "$ROOT/var/demo-guest" >/dev/null
fi

mkdir -p "$RUN"
stop_all

if [ ! -f "$STATE/ca.key" ]; then
	step "initialising the controller in $STATE"
	./build/controller/skyrootd/skyrootd init --state "$STATE" --api-listen "127.0.0.1:$API_PORT"
else
	step "reusing the controller state in $STATE"
	# skyctl.conf names the API port of 'init': follow SKY_API_PORT.
	sed -i "s|^controller = .*|controller = https://127.0.0.1:$API_PORT|" "$STATE/skyctl.conf"
fi

AGENT_ADDR=127.0.0.1:$AGENT_PORT
extra=""
if [ "$mode" = boards ]; then
	step "bringing up the emulated rack '$RACK': bridge, dnsmasq (DHCP, option 224, VLAN $VLAN)"
	./fwimage/rack.sh up "$RACK" --vlan "$VLAN" >"$RUN/rack.env"
	RACK_HOST=$(sed -n 's/^RACK_HOST=//p' "$RUN/rack.env")
	# The controller listens on the rack (the host's end of its veth); the
	# boards learn this address from dnsmasq, not from their command line.
	AGENT_ADDR=$RACK_HOST:$AGENT_PORT
	./fwimage/rack.sh controller "$RACK" "$AGENT_ADDR" >/dev/null
	extra="--advertise $AGENT_ADDR --firmware $FW --boot-listen $RACK_HOST:$BOOT_PORT"
fi
step "starting skyrootd (agents on $AGENT_ADDR, API on https://127.0.0.1:$API_PORT)"
# shellcheck disable=SC2086
./build/controller/skyrootd/skyrootd run --state "$STATE" \
	--agent-listen "$AGENT_ADDR" --api-listen "127.0.0.1:$API_PORT" $extra \
	>"$RUN/skyrootd.log" 2>&1 &
echo $! >"$RUN/skyrootd.pid"
i=0
until $SKYCTL token list >/dev/null 2>&1; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 "$(cat "$RUN/skyrootd.pid")" 2>/dev/null; then
		echo "quickstart: skyrootd did not come up; its log:" >&2
		cat "$RUN/skyrootd.log" >&2
		stop_pidfile "$RUN/skyrootd.pid"
		exit 1
	fi
	sleep 0.1
done

token_of() { tr ' ' '\n' <"$1" | sed -n 's/^skyroot.token=//p' | head -n1; }
pin_of() { tr ' ' '\n' <"$1" | sed -n 's/^skyroot.ca=//p' | head -n1; }

# wait_online N: until N boards are online; prints seconds per board as they come
wait_online() {
	want=$1
	i=0
	while :; do
		n=$($SKYCTL -o json board list | grep -c '"state": "online"' || true)
		[ "$n" -ge "$want" ] && return 0
		i=$((i + 1))
		if [ $i -gt 3000 ]; then
			echo "quickstart: only $n of $want boards came online; logs in $RUN and var/boards/*/console.log" >&2
			exit 1
		fi
		sleep 0.1
	done
}

if [ "$mode" = agents ]; then
	step "creating an enrollment token for three boards"
	$SKYCTL token create --uses 3 --ttl 1h | tee "$RUN/token.txt"
	TOKEN=$(token_of "$RUN/token.txt")
	PIN=$(pin_of "$RUN/token.txt")
	step "starting three boards (skyagent with fixture identities a, b, c)"
	for b in a c b; do
		F=$ROOT/tests/fixtures/boards/$b
		./build/agent/skyagent --controller "127.0.0.1:$AGENT_PORT" --token "$TOKEN" --ca "$PIN" \
			--sysfs-root "$F/sys" --procfs-root "$F/proc" --devfs-root "$F/dev" --cmdline "$F/proc/cmdline" \
			--identity-dir "$RUN/identity-$b" >"$RUN/agent-$b.log" 2>&1 &
		echo $! >"$RUN/agent-$b.pid"
		echo "board $b: pid $!, log $RUN/agent-$b.log"
	done
	step "waiting for all three boards to be online"
	wait_online 3
	echo "all three online ($(since "$t0") s since the quickstart started)"
	step "skyctl board list"
	$SKYCTL board list
else
	# A board this state knows already (a quickstart run before) needs a
	# token made for it: a general token cannot enroll a known machine again.
	NET_ID=$($SKYCTL -o json board list | python3 -c 'import json,sys; print(next((b["id"] for b in json.load(sys.stdin)["boards"] if "qs-net" in (b.get("dmi") or {}).get("serial","")), ""))')
	PIN=$($SKYCTL token create --uses 1 --ttl 1h ${NET_ID:+--board "$NET_ID"} | tee "$RUN/token-net.txt" | tr ' ' '\n' | sed -n 's/^skyroot.ca=//p' | head -n1)
	step "booting two boards on the rack: qs-efi from the flash image's skyroot.efi (UEFI), qs-net from the network (full image)"
	echo "qs-efi carries the fleet's CA pin in its image and nothing on its command line: it finds"
	echo "the controller by DHCP and waits, pending, for an operator to accept it by its serial"
	t_efi=$(now)
	# The guest board has one vCPU: two sharing board.sh's one TCG thread
	# boot a nested guest many times slower (fwimage/README.md).
	./fwimage/rack.sh board "$RACK" qs-efi --image "$FW_FLASH" --boot efi --memory 3072 --cpus 1 --disk-bus nvme \
		--background --ca-pin "$PIN" >/dev/null
	t_net=$(now)
	./fwimage/rack.sh board "$RACK" qs-net --image "$FW" --boot net --memory 1536 --disk-bus nvme --background \
		--boot-url "http://$RACK_HOST:$BOOT_PORT/boot/ipxe?token=$(token_of "$RUN/token-net.txt")" >/dev/null
	echo "consoles: var/boards/qs-efi/console.log, var/boards/qs-net/console.log"
	step "accepting qs-efi by its serial (skyctl board list --pending; skyctl board accept ID)"
	i=0
	until PENDING=$($SKYCTL -o json board list --pending 2>/dev/null | python3 -c 'import json,sys; print([p["id"] for p in json.load(sys.stdin)["pending"] if p.get("serial")=="skyroot-qs-efi"][0])' 2>/dev/null); do
		i=$((i + 1))
		[ $i -lt 600 ] || { echo "quickstart: qs-efi did not show up pending in 5 minutes; see var/boards/qs-efi/console.log" >&2; exit 1; }
		sleep 0.5
	done
	$SKYCTL board list --pending
	$SKYCTL board accept "$PENDING"
	efi_done="" net_done=""
	i=0
	while [ -z "$efi_done" ] || [ -z "$net_done" ]; do
		json=$($SKYCTL -o json board list)
		if [ -z "$efi_done" ] && echo "$json" | python3 -c 'import json,sys; sys.exit(0 if any(b["state"]=="online" and "qs-efi" in (b.get("dmi") or {}).get("serial","") for b in json.load(sys.stdin)["boards"]) else 1)'; then
			efi_done=$(since "$t_efi"); echo "board qs-efi (UEFI, skyroot.efi, accepted) online after $efi_done s"
		fi
		if [ -z "$net_done" ] && echo "$json" | python3 -c 'import json,sys; sys.exit(0 if any(b["state"]=="online" and "qs-net" in (b.get("dmi") or {}).get("serial","") for b in json.load(sys.stdin)["boards"]) else 1)'; then
			net_done=$(since "$t_net"); echo "board qs-net (network boot) online after $net_done s"
		fi
		i=$((i + 1))
		if [ $i -gt 600 ]; then
			echo "quickstart: the boards did not come online in 5 minutes; see var/boards/*/console.log" >&2
			exit 1
		fi
		sleep 0.5
	done
	timed "board qs-efi: power-on to online (UEFI, accepted by serial)" "$efi_done"
	timed "board qs-net: power-on to online (iPXE network boot)" "$net_done"
	step "skyctl board list"
	$SKYCTL board list
	BOARD=$($SKYCTL -o json board list | python3 -c 'import json,sys; print([b["id"] for b in json.load(sys.stdin)["boards"] if "qs-efi" in (b.get("dmi") or {}).get("serial","")][0])')
	EDU=$($SKYCTL -o json board show "$BOARD" | python3 -c 'import json,sys; b=json.load(sys.stdin); print([d["address"] for g in b["iommu_groups"] for d in g["devices"] if d["vendor_device"]=="1234:11e8"][0])')
	step "pushing the demo guest's images"
	t=$(now)
	$SKYCTL image delete demo-kernel >/dev/null 2>&1 || true
	$SKYCTL image delete demo-initrd >/dev/null 2>&1 || true
	$SKYCTL guest delete demo >/dev/null 2>&1 || true
	$SKYCTL image delete demo-kernel >/dev/null 2>&1 || true
	$SKYCTL image delete demo-initrd >/dev/null 2>&1 || true
	$SKYCTL image push "$ROOT/var/demo-guest/vmlinuz" --name demo-kernel --kind kernel
	$SKYCTL image push "$ROOT/var/demo-guest/initrd.img" --name demo-initrd --kind initrd
	timed "push the demo guest's kernel and initrd" "$(since "$t")"
	step "network 'lan' on VLAN $VLAN of the rack"
	$SKYCTL network show lan >/dev/null 2>&1 || $SKYCTL network create lan --vlan "$VLAN"
	step "starting guest 'demo' on the UEFI board (flash image: skyvmm) with its edu device ($EDU) passed through and a NIC on lan"
	t=$(now)
	$SKYCTL guest create --name demo --board "$BOARD" --kernel demo-kernel --initrd demo-initrd \
		--cmdline "console=ttyS0 quiet skyroot.net=demo" --memory 256M --device "$EDU" --nic lan
	i=0
	while ! $SKYCTL guest console demo 2>/dev/null | grep -q "SKYROOT-GUEST-EDU"; do
		if $SKYCTL -o json guest show demo | grep -q '"state": "failed"'; then
			$SKYCTL guest show demo
			exit 1
		fi
		i=$((i + 1))
		[ $i -lt 600 ] || { echo "quickstart: the guest did not come up; see 'skyctl guest show demo'" >&2; exit 1; }
		sleep 0.5
	done
	timed "guest create to the guest seeing the edu device" "$(since "$t")"
	i=0
	while ! $SKYCTL guest console demo 2>/dev/null | grep -q "SKYROOT-GUEST-NET"; do
		i=$((i + 1))
		[ $i -lt 300 ] || { echo "quickstart: the guest's NIC got no address; see 'skyctl guest console demo'" >&2; exit 1; }
		sleep 0.5
	done
	timed "guest create to its address from the rack's DHCP" "$(since "$t")"
	step "the guest's console (skyctl guest console demo)"
	$SKYCTL guest console demo | grep -a "SKYROOT-" | tr -d '\r'
fi

step "summary"
printf "$summary"
printf '  %-52s %6s s\n' "total" "$(since "$t0")"

cat <<MSG

The controller and the boards keep running.
  Use the CLI:   export SKYROOT_CONFIG=$STATE/skyctl.conf
                 ./build/controller/skyctl/skyctl board list
                 ./build/controller/skyctl/skyctl guest list
                 ./build/controller/skyctl/skyctl guest console demo --follow
  Logs:          $RUN/  (board consoles: var/boards/*/console.log;
                 the rack's dnsmasq: var/racks/$RACK/dnsmasq.log, .leases)
  Stop it all:   ./deploy/quickstart.sh --stop
MSG
