#!/usr/bin/env bash
# Skyroot soak: N simulated boards on one controller for M minutes, with
# churn, image fetches and inventory changes, against a slow-client flood on
# every port of the controller at the same time.  Prints figures; not a test
# (never run by `meson test`, not in CI).
#
#   tests/bench/soak/run.sh                 10,000 boards, 10 minutes, flood on
#   tests/bench/soak/run.sh --quick         1,000 boards, 2 minutes
#   tests/bench/soak/run.sh --boards N --minutes M [--no-flood] [--connections C]
#
# What it does: builds skyrootd, skyctl and soak_driver (meson/ninja, in
# $BUILD, default build/), makes a controller state in a temporary folder,
# starts skyrootd on free loopback ports (agent, API and network boot, with
# an 8 MiB stand-in vmlinuz) with the open-file limit raised to the hard
# limit, makes a token for N boards, pushes a 4 MiB image, copies 4 fixture
# boards, then starts the flood (flood.py: C slow connections per port) and
# the driver (soak_driver), which prints one line and its figures every
# minute.  At the end: the flood's figures, a summary and the verdict:
#   - the controller is still running;
#   - RSS flat: the last minute within 10% of minute 2 (minute 1 when M < 3);
#   - no session lost but the churned ones, every board up at the end;
#   - heartbeat round trip p99 under 1 s in every minute;
#   - every churned board back within 60 s; every image fetch and inventory
#     change through the API.
# Every process it starts is stopped by pid at exit.
#
# Environment: BUILD, KEEP=1 keeps the temporary folder (logs).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
BOARDS=10000
MINUTES=10
FLOOD=1
CONNECTIONS=2000
FIXTURES=4

usage() { sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) BOARDS=1000 MINUTES=2 ;;
	--boards) BOARDS=${2:?--boards needs a number}; shift ;;
	--minutes) MINUTES=${2:?--minutes needs a number}; shift ;;
	--connections) CONNECTIONS=${2:?--connections needs a number}; shift ;;
	--no-flood) FLOOD=0 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done
for v in "$BOARDS" "$MINUTES" "$CONNECTIONS"; do
	[[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: '$v' is not a positive number" >&2; exit 2; }
done
if [ "$BOARDS" -gt 10000 ] || [ "$BOARDS" -le "$FIXTURES" ]; then
	echo "run.sh: --boards from $((FIXTURES + 1)) to 10000 (one enrollment token has at most 10000 uses)" >&2
	exit 2
fi

# ---- build ----
. "$ROOT/tests/bench/lib.sh"
bench_build "$BUILD" controller/skyrootd/skyrootd controller/skyctl/skyctl tests/bench/soak/soak_driver
SKYROOTD=$ROOT/$BUILD/controller/skyrootd/skyrootd
SKYCTL=$ROOT/$BUILD/controller/skyctl/skyctl
DRIVER=$ROOT/$BUILD/tests/bench/soak/soak_driver

# ---- open files: the controller holds a socket per board and per flood connection ----
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
if [ "$NOFILE" != unlimited ] && [ "$NOFILE" -lt $((BOARDS + 256)) ]; then
	die "the open-file limit is $NOFILE: $BOARDS boards need $((BOARDS + 256)); raise the hard limit or use --boards"
fi

# ---- temporary state (identities in a tmpfs, as boards keep them in /run) ----
TMP=$(mktemp -d -t skyroot-soak.XXXXXX)
SHM=/dev/shm
[ -d "$SHM" ] && [ -w "$SHM" ] || SHM=$TMP
IDS=$(mktemp -d "$SHM/skyroot-soak-ids.XXXXXX")
STATE=$TMP/state
CTL_PID=
FLOOD_PID=
DRIVER_PID=
stop_pid() { # pid [signal]
	if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
		kill "-${2:-TERM}" "$1" 2>/dev/null || true
		wait "$1" 2>/dev/null || true
	fi
}
cleanup() {
	local rc=$?
	stop_pid "$DRIVER_PID" INT
	stop_pid "$FLOOD_PID"
	stop_pid "$CTL_PID"
	rm -rf "$IDS"
	bench_tmp_done "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

AGENT_PORT=$(free_port)
API_PORT=$(free_port)
BOOT_PORT=$(free_port)

"$SKYROOTD" init --state "$STATE" --api-listen "127.0.0.1:$API_PORT" >"$TMP/init.log" ||
	die "skyrootd init failed: $(cat "$TMP/init.log")"
CONF=$STATE/skyctl.conf
API_TOKEN=$(awk -F' *= *' '$1 == "token" { print $2 }' "$CONF")

# Network boot files: an 8 MiB kernel stand-in (Debian's is about that size).
mkdir -p "$TMP/firmware"
head -c $((8 << 20)) /dev/urandom >"$TMP/firmware/vmlinuz"
head -c $((1 << 20)) /dev/urandom >"$TMP/firmware/initrd.img"

"$SKYROOTD" run --state "$STATE" --agent-listen "127.0.0.1:$AGENT_PORT" --api-listen "127.0.0.1:$API_PORT" \
	--boot-listen "127.0.0.1:$BOOT_PORT" --firmware "$TMP/firmware" --log-level warn >"$TMP/skyrootd.log" 2>&1 &
CTL_PID=$!
wait_port "$AGENT_PORT" "$CTL_PID" skyrootd "$TMP/skyrootd.log"
wait_port "$API_PORT" "$CTL_PID" skyrootd "$TMP/skyrootd.log"
wait_port "$BOOT_PORT" "$CTL_PID" skyrootd "$TMP/skyrootd.log"
say "skyrootd pid $CTL_PID: agents 127.0.0.1:$AGENT_PORT, API :$API_PORT, boot :$BOOT_PORT;" \
	"open-file limit $(awk '/Max open files/ { print $4 }' "/proc/$CTL_PID/limits")"

json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
TOKEN_JSON=$("$SKYCTL" --config "$CONF" -o json token create --uses "$BOARDS" --ttl 2h) ||
	die "skyctl token create failed"
TOKEN=$(json_field token <<<"$TOKEN_JSON")
PIN=$(json_field ca_pin <<<"$TOKEN_JSON")

head -c $((4 << 20)) /dev/urandom >"$TMP/image.bin"
IMAGE=$("$SKYCTL" --config "$CONF" -o json image push "$TMP/image.bin" --name soak-image | json_field id) ||
	die "skyctl image push failed"

# Fixture boards: real sysfs/procfs trees, each with its own DMI UUID.
for i in $(seq 0 $((FIXTURES - 1))); do
	cp -a tests/fixtures/boards/a "$TMP/fixtures-$i"
	mkdir -p "$TMP/fixtures"
	mv "$TMP/fixtures-$i" "$TMP/fixtures/$i"
	printf '5b0f4c0e-9a31-4d0b-8e2a-%012x\n' "$((RANDOM * 65536 + RANDOM * 4 + i))" \
		>"$TMP/fixtures/$i/sys/devices/virtual/dmi/id/product_uuid"
done

say "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(free -g | awk '/Mem:/ { print $2 " GiB, " $7 " GiB available" }')"

# ---- the flood ----
ENROLL_GUESS=$((BOARDS / 50 + 60))
if [ "$FLOOD" = 1 ]; then
	say "flood: $CONNECTIONS slow connections on each of the agent, API and boot ports"
	python3 "$ROOT/tests/bench/soak/flood.py" --agent-port "$AGENT_PORT" --api-port "$API_PORT" \
		--boot-port "$BOOT_PORT" --connections "$CONNECTIONS" --api-token "$API_TOKEN" \
		--duration $((ENROLL_GUESS * 3 + MINUTES * 60 + 120)) > >(tee "$TMP/flood.txt") 2>&1 &
	FLOOD_PID=$!
	sleep 5 # the connections ramp up at 400/s a port
fi

# ---- the boards ----
say "driver: $BOARDS boards, $MINUTES minutes, 1% churn a minute"
set +e
"$DRIVER" --controller "127.0.0.1:$AGENT_PORT" --ca "$PIN" --token "$TOKEN" --boards "$BOARDS" \
	--minutes "$MINUTES" --identity-root "$IDS/boards" --fixtures "$TMP/fixtures" --skyctl "$SKYCTL" \
	--skyctl-config "$CONF" --image "$IMAGE" --ctl-pid "$CTL_PID" > >(tee "$TMP/driver.txt") 2>&1 &
DRIVER_PID=$!
wait "$DRIVER_PID"
DRIVER_RC=$?
DRIVER_PID=
set -e

CTL_ALIVE=1
kill -0 "$CTL_PID" 2>/dev/null || CTL_ALIVE=0
CTL_RSS=$(awk '/VmRSS/ { print $2 }' "/proc/$CTL_PID/status" 2>/dev/null || echo -)
CTL_FDS=$(ls "/proc/$CTL_PID/fd" 2>/dev/null | wc -l)
if [ -n "$FLOOD_PID" ]; then
	say "flood: stopping it"
	stop_pid "$FLOOD_PID"
	FLOOD_PID=
fi
sleep 1

# ---- summary and verdict ----
cat "$TMP/driver.txt" "$TMP/flood.txt" 2>/dev/null | awk '$1 == "figure" { print $2, $3 }' >"$TMP/figures.txt"
fig() { awk -v n="$1" '$1 == n { v = $2 } END { print (v == "" ? "-" : v) }' "$TMP/figures.txt"; }
WARN_LINES=$(grep -c . "$TMP/skyrootd.log" || true)
say "summary (commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown); $(nproc) cores shared by skyrootd, the boards and the flood; load average $(cut -d' ' -f1-3 /proc/loadavg))"
row() { printf '%-46s %s\n' "$1" "$2"; }
row "boards / online after enrollment" "$BOARDS / $(fig soak.m1.sessions) at the end of minute 1; enrolled in $(fig soak.enroll_s) s ($(fig soak.enroll_rate)/s)"
row "flood" "$([ "$FLOOD" = 1 ] && echo "$CONNECTIONS connections on each of 3 ports" || echo off)"
row "sessions at the end" "$(fig soak.sessions_end) of $BOARDS"
row "churned (killed + restarted)" "$(fig soak.churned)"
row "reconnect p50 / p99 / max (ms)" "$(fig soak.reconnect_p50) / $(fig soak.reconnect_p99) / $(fig soak.reconnect_max)"
row "heartbeat RTT p50 / p99 / max (ms)" "$(fig soak.hb_p50) / $(fig soak.hb_p99) / $(fig soak.hb_max)"
row "image fetches done (p50 ms)" "$(fig soak.fetches) ($(fig soak.fetch_p50))"
row "inventory changes seen by the API (max ms)" "$(fig soak.inventory_changes) ($(fig soak.inventory_max))"
row "controller RSS KiB: minute 1 / 2 / last / max" "$(fig soak.m1.rss) / $(fig soak.m2.rss) / $(fig "soak.m$MINUTES.rss") / $(fig soak.ctl_rss_max)"
row "controller fds: minute 1 / last / max" "$(fig soak.m1.fds) / $(fig "soak.m$MINUTES.fds") / $(fig soak.ctl_fds_max)"
row "controller after the run" "$([ "$CTL_ALIVE" = 1 ] && echo "running, RSS $CTL_RSS KiB, $CTL_FDS fds" || echo "DEAD (see $TMP/skyrootd.log)")"
row "controller log lines (warn and worse)" "$WARN_LINES"
row "errors: lost / refused / reconnect_slow" "$(fig soak.errors.session_lost) / $(fig soak.errors.refused) / $(fig soak.errors.reconnect_slow)"
row "errors: api / fetch / inventory" "$(fig soak.errors.api) / $(fig soak.errors.fetch) / $(fig soak.errors.inventory)"
if [ "$FLOOD" = 1 ]; then
	for k in agent.hello-trickle agent.frame-trickle api.hello-trickle api.header-trickle api.unread-download \
		boot.header-trickle boot.unread-download; do
		row "flood $k: closed by ctl / failed" "$(fig "flood.$k.closed") / $(fig "flood.$k.failed")"
	done
fi

FAILS=0
check() { # ok(0/1) what
	if [ "$1" = 1 ]; then printf '  ok    %s\n' "$2"; else printf '  FAIL  %s\n' "$2"; FAILS=$((FAILS + 1)); fi
}
num() { [ "$1" != - ] && [ -n "$1" ]; }
ok_if() { if awk "BEGIN { exit !($1) }"; then echo 1; else echo 0; fi; }
BASE_MIN=$([ "$MINUTES" -ge 3 ] && echo 2 || echo 1)
RB=$(fig "soak.m$BASE_MIN.rss")
RL=$(fig "soak.m$MINUTES.rss")
say "verdict"
check "$CTL_ALIVE" "the controller is still running"
check "$([ "$DRIVER_RC" = 0 ] && echo 1 || echo 0)" "every board enrolled and the driver ran its $MINUTES minutes (exit $DRIVER_RC)"
if num "$RB" && num "$RL"; then
	check "$(ok_if "$RL <= 1.10 * $RB")" "RSS flat: minute $MINUTES $RL KiB within 10% of minute $BASE_MIN $RB KiB"
else
	check 0 "RSS flat: no figures (minute $BASE_MIN: $RB, minute $MINUTES: $RL)"
fi
SE=$(fig soak.sessions_end)
LOST=$(fig soak.errors.session_lost)
check "$(num "$SE" && num "$LOST" && ok_if "$SE == $BOARDS && $LOST == 0" || echo 0)" \
	"no session lost but the churned ones: $LOST lost, $SE of $BOARDS up at the end"
WORST=-
for m in $(seq 1 "$MINUTES"); do
	v=$(fig "soak.m$m.hb_p99")
	num "$v" && { [ "$WORST" = - ] || awk "BEGIN { exit !($v > $WORST) }"; } && WORST=$v
done
check "$(num "$WORST" && ok_if "$WORST < 1000" || echo 0)" "heartbeat p99 under 1 s in every minute: worst minute $WORST ms"
RS=$(fig soak.errors.reconnect_slow)
check "$(num "$RS" && ok_if "$RS == 0" || echo 0)" "every churned board back within 60 s ($RS were not)"
API=$(fig soak.errors.api) FE=$(fig soak.errors.fetch) IE=$(fig soak.errors.inventory)
check "$(num "$API" && ok_if "$API + $FE + $IE == 0" || echo 0)" \
	"every image fetch and inventory change got through: api $API, fetch $FE, inventory $IE errors"
if [ "$FAILS" = 0 ]; then
	say "PASS: $BOARDS boards, $MINUTES minutes"
else
	say "FAIL: $FAILS of the checks above ($BOARDS boards, $MINUTES minutes); logs in $TMP"
	KEEP=1
	exit 1
fi
