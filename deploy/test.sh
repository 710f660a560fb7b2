#!/bin/sh
# Install what the tests need, build, and run every suite:
#   unit + integration + fwimage + deploy  (build/, -Werror; deploy: the
#                                Debian packages; fwimage: the image's tools)
#                                skyrootd with its default threads (a loop
#                                per CPU, at least 2 here)
#   unit + integration again     (build-asan/, AddressSanitizer + UBSan), skyrootd
#                                with --threads 1: both arrangements of the event
#                                loops run the whole suite, without a third run
#                                (ThreadSanitizer: tests/bench/tsan.sh, ~8 min)
#                                Store engines the same way: the main run keeps
#                                the store in SQLite, the ASan run in PostgreSQL
#                                (one private server for the run, started here
#                                with tests/pg/pgserver.py and stopped at the
#                                end, also on failure or interrupt; its URI in
#                                SKY_TEST_PG, a fresh database per fleet,
#                                tests/integration/fleetlib.py), so every
#                                integration test runs on both engines.  A
#                                PostgreSQL that cannot start fails the run
#                                under CI=true; elsewhere the ASan run falls
#                                back to SQLite and says so.
#   fuzz                         (build-fuzz/, clang libFuzzer targets, a short run each)
#   e2e                          (emulated boards: the firmware image with a
#                                stand-in agent (e2e_boards), then with the
#                                real agent against a real controller)
# SKY_SKIP_E2E=1 leaves the e2e suite out: its tests count as skipped,
# named, with that reason.
#
# Skips.  A test that cannot run here exits 77 (meson's skip) after printing
# one line that says why, containing "SKIP" (by convention "SKIP: why",
# e.g. "SKIP: OVMF missing (deploy/deps.sh installs it)"); a cmocka case
# that calls skip() is a skipped TAP subtest (tests/cmocka_tap.py).  Tests
# skip only for something missing or in the way: root, OVMF, a tool, a build
# option, a machine state the test must not touch.
# The summary (deploy/test_summary.py) lists every skipped test and subtest
# by name with that line, before the last line
#   "N passed, N failed, N skipped (why)"
# A skip without a reason line is a failure.  Under CI=true (as .ci/run
# runs) every skip by a test is a failure: CI installs and enables what the
# tests need, so a skip there is a test that stopped running unnoticed.
# Exits non-zero on any failure.
set -eu
cd "$(dirname "$0")/.."

./deploy/deps.sh

JOBS=$(nproc)
summary_files=""
# Every product, whatever a build folder was set up with: no test vanishes.
# -Dman=enabled: the man_pages test needs them (scdoc, deploy/packages/cli.txt).
ALL_PRODUCTS="-Dlibvirt=enabled -Dpostgresql=enabled -Dcontroller=true -Dagent=true -Dskyctl=true -Dman=enabled"

build() {
	dir=$1; shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" -Dwerror=true "$@" >/dev/null
	fi
	meson configure "$dir" -Dwerror=true $ALL_PRODUCTS >/dev/null
	ninja -C "$dir" >/dev/null
}

run_suites() {
	dir=$1; log=$2; shift 2
	# meson exits non-zero when a test fails; the summary below counts it.
	meson test -C "$dir" --num-processes "$JOBS" --print-errorlogs --logbase "$log" "$@" || true
	summary_files="$summary_files $dir/meson-logs/$log.json"
}

echo "== build (release, -Werror)"
build build
# skyrootd's event loops (controller/skyrootd/loops.c): the main run uses the
# daemon's default (a loop per CPU; on a 1-CPU machine 2, so that sessions
# still cross loops), the ASan run one loop (tests/integration/fleetlib.py
# passes SKY_THREADS as --threads).
if [ "$JOBS" -gt 1 ]; then MAIN_THREADS=""; else MAIN_THREADS=2; fi
echo "== unit + integration (skyrootd threads: ${MAIN_THREADS:-default, $JOBS})"
export SKY_THREADS="$MAIN_THREADS"
unset SKY_TEST_PG # the main run keeps the store in SQLite (the ASan run: PostgreSQL)
run_suites build main --suite unit --suite integration --suite fwimage --suite deploy

echo "== sanitizers (ASan + UBSan): unit + integration (skyrootd --threads 1, store on PostgreSQL)"
build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
# One private PostgreSQL for the run; stopped by its pid file on any exit.
PG_DIR=$(mktemp -d /tmp/skyroot-test-pg.XXXXXX)
stop_pg() {
	python3 tests/pg/pgserver.py stop "$PG_DIR" || true
	rm -rf "$PG_DIR"
}
trap stop_pg EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if PG_URI=$(python3 tests/pg/pgserver.py start "$PG_DIR"); then
	# the server's base URI: each fleet makes (and drops) a database of its own
	SKY_TEST_PG=${PG_URI%/*}
	export SKY_TEST_PG
	echo "   PostgreSQL for the store: $SKY_TEST_PG"
elif [ "${CI:-}" = true ]; then
	echo "FAIL: the private PostgreSQL (tests/pg/pgserver.py) did not start: the PostgreSQL run cannot happen" >&2
	exit 1
else
	echo "   WARNING: the private PostgreSQL did not start: this ASan run keeps the store in SQLite," \
		"the PostgreSQL engine goes untested (CI=true makes this a failure)"
fi
export SKY_THREADS=1
run_suites build-asan asan --suite unit --suite integration
unset SKY_THREADS SKY_TEST_PG
stop_pg
trap - EXIT INT TERM

echo "== fuzz (libFuzzer + ASan + UBSan, clang): each target ${SKY_FUZZ_SECONDS:-8} s from its seed corpus"
if [ ! -f build-fuzz/build.ninja ]; then
	CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false -Db_sanitize=address,undefined \
		-Db_lundef=false -Dbuildtype=debugoptimized >/dev/null
fi
meson configure build-fuzz -Dwerror=true $ALL_PRODUCTS -Dfuzz_seconds="${SKY_FUZZ_SECONDS:-8}" >/dev/null
ninja -C build-fuzz >/dev/null
run_suites build-fuzz fuzz --suite fuzz

if [ "${SKY_SKIP_E2E:-0}" != 1 ]; then
	echo "== e2e (emulated boards: firmware image, UEFI and network boot, guests, kexec)"
	run_suites build e2e --suite e2e
else
	echo "== e2e left out (SKY_SKIP_E2E=1): its tests count as skipped"
	meson test -C build --no-rebuild --list --suite e2e |
		python3 deploy/test_summary.py left-out e2e SKY_SKIP_E2E=1 build/meson-logs/e2e-left-out.json
	summary_files="$summary_files build/meson-logs/e2e-left-out.json"
fi

echo "== summary"
# shellcheck disable=SC2086 # one word per log
exec python3 deploy/test_summary.py $summary_files
