#!/bin/sh
# Install what the tests need, build, and run every suite:
#   unit + integration + deploy  (build/, -Werror; deploy: the Debian packages)
#   unit + integration again     (build-asan/, AddressSanitizer + UBSan)
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
echo "== unit + integration"
run_suites build main --suite unit --suite integration --suite fwimage --suite deploy

echo "== sanitizers (ASan + UBSan): unit + integration"
build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
run_suites build-asan asan --suite unit --suite integration

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
