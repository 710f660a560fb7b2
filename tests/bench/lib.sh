# Shell helpers of the benchmark scripts (tests/bench/run.sh,
# tests/bench/soak/run.sh), sourced by them once their arguments are read.

T_START=$(date +%s)
# A step, with the seconds since the start.
say() { printf '\n== [%3ds] %s\n' "$(($(date +%s) - T_START))" "$*"; }
die() { echo "run.sh: $*" >&2; exit 1; }

# bench_build BUILD TARGET...: configure BUILD if it is not, build the targets.
bench_build() {
	local build=$1
	shift
	if [ ! -f "$build/build.ninja" ]; then
		say "configuring $build"
		meson setup "$build" -Dwerror=true >/dev/null
	fi
	ninja -C "$build" "$@" >/dev/null || die "the build failed: run 'ninja -C $build' to see why"
}

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_port PORT PID WHAT LOGS: until 127.0.0.1:PORT accepts, or die when PID
# exits or after 10 s (LOGS says where to look).
wait_port() {
	local port=$1 pid=$2 what=$3 logs=$4 i
	for i in $(seq 1 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || die "$what exited at start; see $logs"
		sleep 0.1
	done
	die "$what does not listen on 127.0.0.1:$port after 10 s; see $logs"
}

# bench_tmp_done RC: keep the run's folder $TMP (logs) when KEEP=1 or the
# run failed (RC not 0), else remove it.
bench_tmp_done() {
	if [ "${KEEP:-0}" = 1 ] || [ "$1" != 0 ]; then
		echo "run.sh: logs kept in $TMP" >&2
	else
		rm -rf "$TMP"
	fi
}
