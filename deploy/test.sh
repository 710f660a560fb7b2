#!/bin/sh
# Install what the tests need, build, and run every suite:
#   unit + integration + deploy  (build/, -Werror; deploy: the Debian packages)
#                                skyrootd with its default threads (a loop per CPU,
#                                at least 2 here)
#   unit + integration again     (build-asan/, AddressSanitizer + UBSan), skyrootd
#                                with --threads 1: both arrangements of the event
#                                loops run the whole suite, without a third run
#   fuzz                         (build-fuzz/, clang libFuzzer targets, a short run each)
#   e2e                          (emulated boards, when the firmware builds)
# Ends with one line "N passed, N failed[, N skipped]"; exits non-zero on any failure.
set -eu
cd "$(dirname "$0")/.."

./deploy/deps.sh

JOBS=$(nproc)
summary_files=""
# Every product, whatever a build folder was set up with: no test vanishes.
ALL_PRODUCTS="-Dlibvirt=enabled -Dcontroller=true -Dagent=true -Dskyctl=true"

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
run_suites build main --suite unit --suite integration --suite fwimage --suite deploy

echo "== sanitizers (ASan + UBSan): unit + integration (skyrootd --threads 1)"
build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
export SKY_THREADS=1
run_suites build-asan asan --suite unit --suite integration
unset SKY_THREADS

echo "== fuzz (libFuzzer + ASan + UBSan, clang): each target ${SKY_FUZZ_SECONDS:-20} s from its seed corpus"
if [ ! -f build-fuzz/build.ninja ]; then
	CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false -Db_sanitize=address,undefined \
		-Db_lundef=false -Dbuildtype=debugoptimized >/dev/null
fi
meson configure build-fuzz -Dwerror=true $ALL_PRODUCTS -Dfuzz_seconds="${SKY_FUZZ_SECONDS:-20}" >/dev/null
ninja -C build-fuzz >/dev/null
run_suites build-fuzz fuzz --suite fuzz

if [ "${SKY_SKIP_E2E:-0}" != 1 ]; then
	echo "== e2e (emulated boards: firmware image, UEFI and network boot, guests, kexec)"
	run_suites build e2e --suite e2e
fi

python3 - $summary_files <<'PY'
import json, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        failed += 1
        print(f"missing test log {path}")
        continue
    for line in lines:
        t = json.loads(line)
        r = t.get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
            print(f"FAILED: {t.get('name')} ({r}) in {path}")
line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed else 0)
PY
