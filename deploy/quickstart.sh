#!/bin/sh
# Skyroot quickstart: a controller and three boards joining it over mutual TLS.
#
#   ./deploy/quickstart.sh          install deps, build, start, enroll, show the fleet
#   ./deploy/quickstart.sh --stop   stop what the quickstart started
#
# The controller's state lives in ./var/quickstart (kept between runs); the
# three boards are skyagent processes on this machine, each reading its own
# fixture machine identity (tests/fixtures/boards/{a,b,c}).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
STATE=$ROOT/var/quickstart
RUN=$ROOT/var/quickstart-run
AGENT_PORT=${SKY_AGENT_PORT:-7443}
API_PORT=${SKY_API_PORT:-7444}
SKYCTL="$ROOT/build/controller/skyctl --config $STATE/skyctl.conf"

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

stop_all() {
	for f in "$RUN"/agent-*.pid; do [ -e "$f" ] && stop_pidfile "$f"; done
	stop_pidfile "$RUN/skyrootd.pid"
}

if [ "${1:-}" = "--stop" ]; then
	stop_all
	echo "quickstart: stopped (state kept in $STATE; remove it to start a new fleet)"
	exit 0
fi
if [ $# -gt 0 ]; then
	echo "usage: $0 [--stop]" >&2
	exit 2
fi

t0=$(date +%s.%N)
step() { printf '\n== %s\n' "$*"; }

step "installing dependencies (Debian packages)"
./deploy/deps.sh

step "building"
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
echo "built skyrootd, skyagent, skyctl in build/"

mkdir -p "$RUN"
stop_all

if [ ! -f "$STATE/ca.key" ]; then
	step "initialising the controller in $STATE"
	./build/controller/skyrootd init --state "$STATE" --api-listen "127.0.0.1:$API_PORT"
else
	step "reusing the controller state in $STATE"
fi

step "starting skyrootd (agents on 127.0.0.1:$AGENT_PORT, API on https://127.0.0.1:$API_PORT)"
./build/controller/skyrootd run --state "$STATE" \
	--agent-listen "127.0.0.1:$AGENT_PORT" --api-listen "127.0.0.1:$API_PORT" \
	>"$RUN/skyrootd.log" 2>&1 &
echo $! >"$RUN/skyrootd.pid"
i=0
until $SKYCTL token list >/dev/null 2>&1; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 "$(cat "$RUN/skyrootd.pid")" 2>/dev/null; then
		echo "quickstart: skyrootd did not come up; its log:" >&2
		cat "$RUN/skyrootd.log" >&2
		exit 1
	fi
	sleep 0.1
done

step "creating an enrollment token for three boards"
$SKYCTL token create --uses 3 --ttl 1h | tee "$RUN/token.txt"
TOKEN=$(tr ' ' '\n' <"$RUN/token.txt" | sed -n 's/^skyroot.token=//p' | head -n1)
PIN=$(tr ' ' '\n' <"$RUN/token.txt" | sed -n 's/^skyroot.ca=//p' | head -n1)
if [ -z "$TOKEN" ] || [ -z "$PIN" ]; then
	echo "quickstart: could not read the token from skyctl's output" >&2
	exit 1
fi

step "starting three boards (skyagent with fixture identities a, b, c)"
for b in a c b; do
	F=$ROOT/tests/fixtures/boards/$b
	./build/agent/skyagent --controller "127.0.0.1:$AGENT_PORT" --token "$TOKEN" --ca "$PIN" \
		--sysfs-root "$F/sys" --procfs-root "$F/proc" --devfs-root "$F/dev" --cmdline "$F/proc/cmdline" \
		>"$RUN/agent-$b.log" 2>&1 &
	echo $! >"$RUN/agent-$b.pid"
	echo "board $b: pid $!, log $RUN/agent-$b.log"
done

step "waiting for all three boards to be online"
i=0
while :; do
	n=$($SKYCTL -o json board list | grep -c '"state": "online"' || true)
	[ "$n" -ge 3 ] && break
	i=$((i + 1))
	if [ $i -gt 300 ]; then
		echo "quickstart: only $n of 3 boards came online; logs in $RUN" >&2
		exit 1
	fi
	sleep 0.1
done
t1=$(date +%s.%N)
echo "all three online ($(echo "$t1 $t0" | awk '{printf "%.1f", $1 - $2}') s since the quickstart started)"

step "skyctl board list"
$SKYCTL board list

cat <<MSG

The controller and the three boards keep running.
  Use the CLI:   export SKYROOT_CONFIG=$STATE/skyctl.conf
                 ./build/controller/skyctl board list
                 ./build/controller/skyctl board show board-a
  Logs:          $RUN/
  Stop it all:   ./deploy/quickstart.sh --stop
MSG
