#!/usr/bin/env bash
# Skyroot benchmarks of the foundation: enrollment and idle agent sessions,
# side by side with what bounds them or what a user would pick instead.
#
#   tests/bench/run.sh              the whole run (a few minutes on 2 cores)
#   tests/bench/run.sh --quick      smaller N and a shorter hold, to try it out
#   tests/bench/run.sh --no-nginx   skip the nginx comparison
#   tests/bench/run.sh --enroll-only  the machine's limits and enrollment only
#   tests/bench/run.sh --db=postgresql://HOST:PORT/NAME  the store in that (empty)
#                                   PostgreSQL database instead of SQLite (skyrootd init --db);
#                                   tests/bench/pg_vs_sqlite.py runs both side by side
#
# What it does: builds what it needs (meson/ninja, in $BUILD, default
# build/), makes a controller state in a temporary folder, starts skyrootd
# on free loopback ports (stopped by pid at exit), and runs
#   1. openssl speed ecdsap256 / ecdhx25519 and an fsync loop: the machine's limits
#   2. bench_agents --mode enroll: $ENROLL_N boards until ENROLLED, $ENROLL_RUNS
#      runs with skyrootd's default threads, and as many with --threads 1 when
#      'skyrootd run --help' has that option, interleaved (a fresh skyrootd
#      process per run, who goes first alternates), every run printed, the
#      summary from the medians; then $ENROLL_N boards until online
#   3. bench_agents --mode idle: $IDLE_SMALL and $IDLE_LARGE sessions held $HOLD s
#      (a fresh skyrootd process for each, so freed memory of an earlier run
#      does not hide the cost of this one)
#   4. bench_tls_idle against nginx: $IDLE_LARGE mTLS 1.3 keep-alive connections
# and prints a summary with the aims of the issue and the ratios.
#
# Environment: BUILD, ENROLL_N (2000), ENROLL_RUNS (2), IDLE_SMALL (1000), IDLE_LARGE (10000),
# HOLD (30 s), CONCURRENCY (64), HEARTBEAT_MS (10000), SKYROOTD (the binary
# to run instead of $BUILD's), KEEP=1 keeps the temporary folder (logs, perf
# output) instead of removing it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
ENROLL_N=${ENROLL_N:-2000}
ENROLL_RUNS=${ENROLL_RUNS:-2}
IDLE_SMALL=${IDLE_SMALL:-1000}
IDLE_LARGE=${IDLE_LARGE:-10000}
HOLD=${HOLD:-30}
CONCURRENCY=${CONCURRENCY:-64}
HEARTBEAT_MS=${HEARTBEAT_MS:-10000}
NGINX=1
ENROLL_ONLY=0
DB_URI=

for arg in "$@"; do
	case "$arg" in
	--quick) ENROLL_N=500 IDLE_SMALL=200 IDLE_LARGE=1000 HOLD=12 HEARTBEAT_MS=5000 ;;
	--no-nginx) NGINX=0 ;;
	--enroll-only) ENROLL_ONLY=1 ;;
	--db=*) DB_URI=${arg#--db=} ;;
	-h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
	*) echo "run.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
	esac
done
if [ "$IDLE_LARGE" -gt 10000 ] || [ "$ENROLL_N" -gt 10000 ]; then
	echo "run.sh: at most 10000 boards per run (one enrollment token has at most 10000 uses)" >&2
	exit 2
fi
case "$ENROLL_RUNS" in
''|*[!0-9]*) echo "run.sh: ENROLL_RUNS must be a number" >&2; exit 2 ;;
esac
if [ "$ENROLL_RUNS" -lt 2 ]; then
	echo "run.sh: ENROLL_RUNS must be at least 2 (every figure is run at least twice)" >&2
	exit 2
fi

# ---- build ----
. "$ROOT/tests/bench/lib.sh"
bench_build "$BUILD" controller/skyrootd/skyrootd controller/skyctl/skyctl tests/bench/bench_agents tests/bench/bench_tls_idle
SKYROOTD=${SKYROOTD:-$ROOT/$BUILD/controller/skyrootd/skyrootd}
SKYCTL=$ROOT/$BUILD/controller/skyctl/skyctl
BENCH_AGENTS=$ROOT/$BUILD/tests/bench/bench_agents
BENCH_TLS=$ROOT/$BUILD/tests/bench/bench_tls_idle

# ---- file descriptors: each session needs one in this process and one in skyrootd ----
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
if [ "$NOFILE" != unlimited ] && [ "$NOFILE" -lt $((IDLE_LARGE + 100)) ]; then
	new=$((NOFILE - 100))
	echo "run.sh: the open-file limit is $NOFILE: holding $new sessions instead of $IDLE_LARGE" >&2
	IDLE_LARGE=$new
fi

# ---- temporary state, processes stopped by pid at exit ----
TMP=$(mktemp -d -t skyroot-bench.XXXXXX)
STATE=$TMP/state
CTL_PID=
NGX_PID=
PERF_PID=
cleanup() {
	local rc=$?
	for pid in $PERF_PID $NGX_PID $CTL_PID; do
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
		fi
	done
	bench_tmp_done "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FIGS=$TMP/figures.txt
: >"$FIGS"
# Run a benchmark, show its output as it comes, keep its figures.
record() {
	local out=$TMP/out.txt rc=0
	"$@" | tee "$out" || rc=$?
	awk '$1 == "figure" { print $2, $3 }' "$out" >>"$FIGS"
	return $rc
}
put() { echo "$1 $2" >>"$FIGS"; }
fig() { awk -v n="$1" '$1 == n { v = $2 } END { print (v == "" ? "-" : v) }' "$FIGS"; }
calc() { awk "BEGIN { x = $1; if (x == int(x)) printf \"%d\", x; else if (x >= 100 || x <= -100) printf \"%.0f\", x; else if (x >= 1 || x <= -1) printf \"%.2f\", x; else printf \"%.3g\", x }"; }

AGENT_PORT=$(free_port)
API_PORT=$(free_port)
NGX_PORT=$(free_port)

"$SKYROOTD" init --state "$STATE" --api-listen "127.0.0.1:$API_PORT" ${DB_URI:+--db "$DB_URI"} >"$TMP/init.log" ||
	die "skyrootd init failed: $(cat "$TMP/init.log")"
CONF=$STATE/skyctl.conf


# ctl_start [ARG...]: skyrootd run with the extra arguments (--threads N).
ctl_start() {
	"$SKYROOTD" run --state "$STATE" --agent-listen "127.0.0.1:$AGENT_PORT" \
		--api-listen "127.0.0.1:$API_PORT" "$@" >>"$TMP/skyrootd.log" 2>&1 &
	CTL_PID=$!
	wait_port "$AGENT_PORT" "$CTL_PID" skyrootd "$TMP"
	wait_port "$API_PORT" "$CTL_PID" skyrootd "$TMP"
}
ctl_stop() {
	if [ -n "$CTL_PID" ]; then
		kill -TERM "$CTL_PID" 2>/dev/null || true
		wait "$CTL_PID" 2>/dev/null || true
		CTL_PID=
	fi
}
# Sets TOKEN and PIN: a token for N boards.
new_token() {
	local json
	json=$("$SKYCTL" --config "$CONF" -o json token create --uses "$1" --ttl 1h) ||
		die "skyctl token create failed"
	TOKEN=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])' <<<"$json")
	PIN=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["ca_pin"])' <<<"$json")
}

# ---- 1. the machine's limits ----
say "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(openssl version)"
if awk '{ exit !($1 > 0.5) }' /proc/loadavg; then
	echo "run.sh: warning: the machine is busy (load average above 0.5): the figures will be lower and noisy" >&2
fi
say "openssl speed -seconds 2 ecdsap256 / ecdhx25519 (one core)"
read -r SIGN_S VERIFY_S < <(openssl speed -seconds 2 ecdsap256 2>/dev/null | awk '/nistp256/ { print $(NF-1), $NF }')
X25519_S=$(openssl speed -seconds 2 ecdhx25519 2>/dev/null | awk '/X25519/ { print $NF }')
[ -n "$SIGN_S" ] && [ -n "$VERIFY_S" ] || die "cannot read 'openssl speed ecdsap256' output"
echo "ECDSA P-256: $SIGN_S sign/s, $VERIFY_S verify/s; X25519: ${X25519_S:-?} derive/s"
put ecdsa.sign_per_s "$SIGN_S"
put ecdsa.verify_per_s "$VERIFY_S"
put x25519.per_s "${X25519_S:-0}"

say "fsync rate: dd bs=4k count=2000 oflag=dsync in the state folder (each write waits for the disk)"
DD_S=$(LC_ALL=C dd if=/dev/zero of="$STATE/fsync.test" bs=4k count=2000 oflag=dsync 2>&1 |
	awk -F', ' '/copied/ { sub(/ s$/, "", $3); print $3 }')
rm -f "$STATE/fsync.test"
FSYNC_S=$(calc "2000 / $DD_S")
echo "$FSYNC_S synchronous writes/s"
put fsync.per_s "$FSYNC_S"

# Count the controller's fdatasync/fsync calls during a run, when perf can:
# interval mode, so we know when counting has begun (perf takes a while).
perf_start() {
	local i
	PERF_PID=
	command -v perf >/dev/null 2>&1 && [ -n "$CTL_PID" ] || return 0
	perf stat -I 200 -x, -e syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync -p "$CTL_PID" \
		-o "$TMP/perf.$1.txt" 2>/dev/null &
	PERF_PID=$!
	for i in $(seq 1 50); do
		grep -q sys_enter "$TMP/perf.$1.txt" 2>/dev/null && return 0
		kill -0 "$PERF_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "run.sh: perf stat cannot count the controller's fsync calls; going on without" >&2
	kill -TERM "$PERF_PID" 2>/dev/null || true
	wait "$PERF_PID" 2>/dev/null || true
	PERF_PID=
}
perf_stop() {
	if [ -z "$PERF_PID" ]; then
		echo -
		return 0
	fi
	kill -INT "$PERF_PID" 2>/dev/null || true
	wait "$PERF_PID" 2>/dev/null || true
	PERF_PID=
	awk -F, '$4 ~ /sys_enter_f(data)?sync/ && $2 ~ /^[0-9]+$/ { n += $2 } END { print n + 0 }' "$TMP/perf.$1.txt"
}

# ---- 2. enrollment ----
# skyrootd's --threads, when it has it: the default and --threads 1, side by side.
SETTINGS=default
# The help text first, then grep: piped straight into grep -q, skyrootd may
# get SIGPIPE once grep has its match, and with pipefail the test fails.
RUN_HELP=$("$SKYROOTD" run --help 2>&1 || true)
if grep -q -e '--threads\b' <<<"$RUN_HELP"; then
	SETTINGS="default t1"
fi
label() { if [ "$1" = t1 ]; then echo "skyrootd --threads 1"; else echo "skyrootd's default threads"; fi; }
# median SETTING SUFFIX: the median of the runs' figures ('-' when there are none).
median() {
	local r
	for r in $(seq 1 "$ENROLL_RUNS"); do fig "enroll_$1_$r.$2"; done | { grep -v '^-$' || true; } | sort -g |
		awk '{ v[NR] = $1 } END { if (!NR) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# runs SETTING SUFFIX: the figure of each run, "a, b, ...".
runs() {
	local r out=
	for r in $(seq 1 "$ENROLL_RUNS"); do out="$out${out:+, }$(fig "enroll_$1_$r.$2")"; done
	echo "$out"
}
enroll_run() { # SETTING RUN
	local set=$1 r=$2 syncs
	if [ "$set" = t1 ]; then ctl_start --threads 1; else ctl_start; fi
	say "enrollment run $r/$ENROLL_RUNS, $(label "$set") (fresh skyrootd, pid $CTL_PID): $ENROLL_N boards, concurrency $CONCURRENCY, each until it has its certificate"
	new_token "$ENROLL_N"
	if [ "$set$r" = default1 ]; then perf_start enroll; fi
	record "$BENCH_AGENTS" --name "enroll_${set}_$r" --mode enroll --stop-at enrolled --controller "127.0.0.1:$AGENT_PORT" \
		--ca "$PIN" --token "$TOKEN" --boards "$ENROLL_N" --concurrency "$CONCURRENCY" --ctl-pid "$CTL_PID" ||
		die "the enrollment benchmark failed; the controller's log is $TMP/skyrootd.log"
	if [ "$set$r" = default1 ]; then
		syncs=$(perf_stop enroll)
		if [ "$syncs" != - ]; then
			put enroll.fsyncs "$syncs"
			echo "controller: $syncs fdatasync/fsync calls for $ENROLL_N enrollments"
		fi
	fi
	ctl_stop
}
for r in $(seq 1 "$ENROLL_RUNS"); do
	# Who goes first alternates from run to run (ABBA).
	order=$SETTINGS
	if [ $((r % 2)) = 0 ]; then order=$(echo "$SETTINGS" | awk '{ for (i = NF; i > 0; i--) printf "%s%s", $i, (i > 1 ? " " : "") }'); fi
	for set in $order; do
		enroll_run "$set" "$r"
	done
done
# The summary's enroll.* (default threads) and enroll1t.* (--threads 1) figures: medians of the runs.
for set in $SETTINGS; do
	prefix=enroll
	[ "$set" = t1 ] && prefix=enroll1t
	for suffix in rate latency.p50 latency.p99 ctl_cpu ctl_bound agents_cpu; do
		put "$prefix.$suffix" "$(median "$set" "$suffix")"
	done
done

ctl_start
say "enrollment until online: $ENROLL_N more boards, each until its mTLS session is up ($(label default))"
new_token "$ENROLL_N"
record "$BENCH_AGENTS" --name online --mode enroll --stop-at online --controller "127.0.0.1:$AGENT_PORT" \
	--ca "$PIN" --token "$TOKEN" --boards "$ENROLL_N" --concurrency "$CONCURRENCY" --ctl-pid "$CTL_PID" ||
	echo "run.sh: the enrollment-until-online benchmark failed" >&2
ctl_stop

# ---- 3. idle sessions ----
idle_run() {
	local n=$1 tag=$2
	ctl_start
	say "idle: $n mTLS sessions, heartbeat $HEARTBEAT_MS ms, held $HOLD s (fresh skyrootd, pid $CTL_PID)"
	new_token "$n"
	record "$BENCH_AGENTS" --name "idle$tag" --mode idle --controller "127.0.0.1:$AGENT_PORT" --ca "$PIN" \
		--token "$TOKEN" --boards "$n" --concurrency "$CONCURRENCY" --hold "$HOLD" --heartbeat "$HEARTBEAT_MS" \
		--ctl-pid "$CTL_PID" || echo "run.sh: bench_agents --mode idle with $n sessions failed" >&2
	ctl_stop
}
if [ "$ENROLL_ONLY" = 0 ]; then
	idle_run "$IDLE_SMALL" S
	idle_run "$IDLE_LARGE" L
fi

# ---- 4. nginx holding the same connections ----
NGINX_NOTE=
nginx_run() {
	local n=$1 dir=$TMP/nginx worker i
	if ! command -v nginx >/dev/null 2>&1; then
		local pkgs
		pkgs=$(grep -v '^[[:space:]]*#' "$ROOT/tests/bench/packages.txt" | xargs)
		if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
			say "installing $pkgs (tests/bench/packages.txt)"
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q $pkgs >"$TMP/apt.log" 2>&1 ||
				{ apt-get update -q >>"$TMP/apt.log" 2>&1 &&
				  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $pkgs >>"$TMP/apt.log" 2>&1; } || true
		fi
		if ! command -v nginx >/dev/null 2>&1; then
			NGINX_NOTE="nginx is not installed and could not be installed (apt-get install $pkgs as root)"
			return 0
		fi
	fi
	say "nginx: $n idle mTLS 1.3 keep-alive connections, one request per $HEARTBEAT_MS ms, held $HOLD s"
	mkdir -p "$dir"
	# A client certificate from the controller's CA, as a board has.
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/client.key" \
		-subj /O=Skyroot/CN=bench-client -out "$dir/client.csr" 2>/dev/null
	printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' \
		>"$dir/client.ext"
	openssl x509 -req -in "$dir/client.csr" -CA "$STATE/ca.crt" -CAkey "$STATE/ca.key" -CAcreateserial \
		-days 1 -extfile "$dir/client.ext" -out "$dir/client.crt" 2>/dev/null
	cat "$STATE/server.crt" "$STATE/ca.crt" >"$dir/server-chain.crt"
	# The controller's settings where nginx has one: TLS 1.3 only, no session
	# cache, no tickets, a client certificate required, one worker.
	cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile $((n + 1000));
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections $((n + 1000)); }
http {
	access_log off;
	client_body_temp_path $dir/tmp-body;
	proxy_temp_path $dir/tmp-proxy;
	fastcgi_temp_path $dir/tmp-fastcgi;
	uwsgi_temp_path $dir/tmp-uwsgi;
	scgi_temp_path $dir/tmp-scgi;
	keepalive_timeout 600s;
	keepalive_requests 1000000;
	server {
		listen 127.0.0.1:$NGX_PORT ssl;
		ssl_certificate $dir/server-chain.crt;
		ssl_certificate_key $STATE/server.key;
		ssl_protocols TLSv1.3;
		ssl_session_cache off;
		ssl_session_tickets off;
		ssl_client_certificate $STATE/ca.crt;
		ssl_verify_client on;
		location = /hb { return 200 "beat\n"; }
	}
}
EOF
	nginx -p "$dir" -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1 &
	NGX_PID=$!
	wait_port "$NGX_PORT" "$NGX_PID" nginx "$TMP"
	worker=
	for i in $(seq 1 50); do
		worker=$(pgrep -P "$NGX_PID" | head -n1 || true)
		[ -n "$worker" ] && break
		sleep 0.1
	done
	[ -n "$worker" ] || die "nginx started no worker; see $dir/error.log"
	echo "nginx $(nginx -v 2>&1 | sed 's/.*\///'), master $NGX_PID, worker $worker"
	record "$BENCH_TLS" --name nginx --server "127.0.0.1:$NGX_PORT" --ca-file "$STATE/ca.crt" \
		--cert "$dir/client.crt" --key "$dir/client.key" --conns "$n" --concurrency "$CONCURRENCY" \
		--hold "$HOLD" --interval "$HEARTBEAT_MS" --server-pid "$worker" ||
		echo "run.sh: bench_tls_idle against nginx failed" >&2
	kill -QUIT "$NGX_PID" 2>/dev/null || true
	wait "$NGX_PID" 2>/dev/null || true
	NGX_PID=
}
if [ "$ENROLL_ONLY" = 1 ]; then
	NGINX_NOTE="skipped (--enroll-only)"
elif [ "$NGINX" = 1 ]; then
	nginx_run "$IDLE_LARGE"
else
	NGINX_NOTE="skipped (--no-nginx)"
fi

# ---- summary ----
# Controller ECDSA operations per enrollment: TLS handshake signature (1),
# CSR verification (1), certificate signature (1).  Its first mTLS session
# adds a handshake signature and two verifications (client certificate, its
# CertificateVerify).
BOUND_ENROLL=$(calc "1 / (2 / $SIGN_S + 1 / $VERIFY_S)")
BOUND_ONLINE=$(calc "1 / (3 / $SIGN_S + 3 / $VERIFY_S)")
# Each TLS 1.3 handshake also makes an X25519 key share and derives the
# secret (two scalar multiplications; openssl speed times the derive).
BOUND_ENROLL_X=$BOUND_ENROLL
if [ "$(fig x25519.per_s)" != 0 ]; then
	BOUND_ENROLL_X=$(calc "1 / (2 / $SIGN_S + 1 / $VERIFY_S + 2 / $(fig x25519.per_s))")
fi
E_RATE=$(fig enroll.rate)
O_ONLINE=$(fig online.online_rate)
ratio() { # a b -> a/b or -
	if [ "$1" = - ] || [ "$2" = - ] || [ -z "$1" ] || [ -z "$2" ]; then echo -; else calc "$1 / $2"; fi
}
mark() { # value op aim -> ok / MISS / -
	if [ "$1" = - ]; then echo -; elif awk "BEGIN { exit !($1 $2 $3) }"; then echo ok; else echo MISS; fi
}
row() { printf '%-44s %14s %12s  %s\n' "$1" "$2" "$3" "$4"; }

REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ "$REV" != unknown ] && ! git -C "$ROOT" diff --quiet HEAD -- controller common agent proto 2>/dev/null; then
	REV="$REV + local changes"
fi
say "summary (commit $REV; store $([ -n "$DB_URI" ] && echo PostgreSQL || echo SQLite); $(nproc) cores; skyrootd and the simulated agents share them; load average now $(cut -d' ' -f1-3 /proc/loadavg))"
row "what" "measured" "aim" "ratio / note"
row "--------------------------------------------" "--------------" "------------" "------------------------------"
row "enrollments/s, $(label default)" "$E_RATE" ">= 1000" "$(mark "$E_RATE" '>=' 1000); $(ratio "$E_RATE" 1000) of the aim; median of $ENROLL_RUNS runs: $(runs default rate); concurrency $CONCURRENCY"
if [ "$SETTINGS" = "default t1" ]; then
	T1_RATE=$(fig enroll1t.rate)
	row "enrollments/s, skyrootd --threads 1" "$T1_RATE" "" "median of $ENROLL_RUNS runs: $(runs t1 rate); default / --threads 1 = $(ratio "$E_RATE" "$T1_RATE")"
	row "  ctl CPU per enrollment, --threads 1 (us)" "$(fig enroll1t.ctl_cpu)" "" "default threads: $(fig enroll.ctl_cpu) us"
else
	row "  skyrootd --threads" "-" "" "'skyrootd run --help' has no --threads option: one setting measured"
fi
row "  ECDSA bound (2 sign + 1 verify, 1 core)" "$BOUND_ENROLL" "" "measured / bound = $(ratio "$E_RATE" "$BOUND_ENROLL")"
row "  controller CPU per enrollment (us)" "$(fig enroll.ctl_cpu)" "" "crypto floor $(calc "1e6 / $BOUND_ENROLL") us: $(ratio "$(fig enroll.ctl_cpu)" "$(calc "1e6 / $BOUND_ENROLL")")x"
row "  with X25519 key share + derive" "$BOUND_ENROLL_X" "" "measured / bound = $(ratio "$E_RATE" "$BOUND_ENROLL_X")"
row "  controller-only bound (1 core)" "$(fig enroll.ctl_bound)" "" "if the agents were free: $(ratio "$(fig enroll.ctl_bound)" 1000) of the aim"
row "  simulated agents' CPU per enrollment (us)" "$(fig enroll.agents_cpu)" "" "same $(nproc) cores as the controller"
if [ "$(fig enroll.agents_cpu)" != - ] && [ "$(fig enroll.ctl_cpu)" != - ]; then
	BOX=$(calc "$(nproc) * 1e6 / ($(fig enroll.agents_cpu) + $(fig enroll.ctl_cpu))")
	row "  this box's bound, agents + controller" "$BOX" "" "measured / bound = $(ratio "$E_RATE" "$BOX") ($(nproc) cores fully used)"
fi
if [ "$(fig enroll.fsyncs)" != - ] && [ "$(fig enroll.fsyncs)" != 0 ]; then
	PER=$(ratio "$ENROLL_N" "$(fig enroll.fsyncs)")
	row "  enrollments per fsync (group commit)" "$PER" "" "fsync $(fig fsync.per_s)/s -> bound $(ratio "$(fig fsync.per_s)" "$(ratio 1 "$PER")") enrollments/s"
fi
row "enroll latency p50 / p99 (ms)" "$(fig enroll.latency.p50) / $(fig enroll.latency.p99)" "" "start -> ENROLLED, $ENROLL_N boards, medians of the runs"
row "onboarding/s (enroll + first mTLS session)" "$O_ONLINE" "" "bound $BOUND_ONLINE (3 sign + 3 verify): $(ratio "$O_ONLINE" "$BOUND_ONLINE")"
row "  its latency p50 / p99 (ms)" "$(fig online.online_latency.p50) / $(fig online.online_latency.p99)" "" "start -> SESSION_UP"
for t in S L; do
	[ "$ENROLL_ONLY" = 0 ] || break
	n=$([ $t = S ] && echo "$IDLE_SMALL" || echo "$IDLE_LARGE")
	PS=$(fig idle$t.rss_per_session)
	row "controller RSS per idle session, $n (KiB)" "$PS" "<= 40" "$(mark "$PS" '<=' 40); all-in $(fig idle$t.rss_per_session_all) KiB; $(fig idle$t.ctl_rss_hold) KiB total"
	P99=$(fig idle$t.hb_rtt_us.p99)
	row "heartbeat RTT p50 / p99, $n sessions (us)" "$(fig idle$t.hb_rtt_us.p50) / $P99" "p99 < 20000" "$(mark "$P99" '<' 20000); max $(fig idle$t.hb_rtt_us.max) us; $(fig idle$t.hb_rate) beats/s; 1 us resolution"
	UP=$(fig idle$t.sessions) DOWNS=$(fig idle$t.downs_in_hold)
	row "  sessions up / dropped in the hold" "$UP / $DOWNS" "$n / 0" "$(mark "$UP" '>=' "$n") / $(mark "$DOWNS" '==' 0); fewest beats per session: $(fig idle$t.min_beats)"
	row "  agents' own loop lag p99 / max (ms)" "$(fig idle$t.agents_lag.p99) / $(fig idle$t.agents_lag.max)" "" "the simulated boards' share of the round trip"
	row "  CPU in the hold: skyrootd / agents (%)" "$(fig idle$t.ctl_cpu_hold) / $(fig idle$t.agents_cpu_hold)" "" "of one core"
done
if [ -z "$NGINX_NOTE" ] && [ "$(fig nginx.rss_per_conn)" != - ]; then
	NP=$(fig nginx.rss_per_conn)
	row "nginx RSS per idle mTLS conn, $IDLE_LARGE (KiB)" "$NP" "" "skyrootd / nginx = $(ratio "$(fig idleL.rss_per_session)" "$NP")"
	row "nginx request RTT p50 / p99 (us)" "$(fig nginx.req_rtt_us.p50) / $(fig nginx.req_rtt_us.p99)" "" "max $(fig nginx.req_rtt_us.max) us; 1 us resolution; client lag p99 $(fig nginx.client_lag.p99) ms"
	row "  skyrootd heartbeat / nginx request RTT" "$(ratio "$(fig idleL.hb_rtt_us.p50)" "$(fig nginx.req_rtt_us.p50)") / $(ratio "$(fig idleL.hb_rtt_us.p99)" "$(fig nginx.req_rtt_us.p99)")" "" "p50 / p99, $IDLE_LARGE connections each, both CLOCK_MONOTONIC in us"
	row "nginx mTLS handshakes + 1st request/s" "$(fig nginx.connect_rate)" "" "skyrootd sessions/s (incl. enrollment): $(fig idleL.enroll.online_rate)"
	row "  nginx CPU per connection (us)" "$(fig nginx.srv_cpu)" "" "skyrootd per enrollment + session: $(fig idleL.enroll.ctl_cpu)"
else
	row "nginx comparison" "-" "" "${NGINX_NOTE:-failed; see above}"
fi
