#!/bin/sh
# usage: tests/fuzz/run.sh FUZZER SEED_CORPUS SECONDS
# Runs one libFuzzer target for SECONDS from the seed corpus (read only: new
# inputs go to a temporary folder).  Fails on any crash, leak, sanitizer
# report or timeout; the input that did it is kept as
# $FUZZ_ARTIFACTS/NAME-crash-… (default: the working directory) and the
# command that replays it is printed.
set -eu
fuzzer=$1 seeds=$2 secs=$3
name=$(basename "$fuzzer")
[ -x "$fuzzer" ] || { echo "run.sh: $fuzzer is not built (meson setup with -Dfuzz=true)" >&2; exit 2; }
[ -d "$seeds" ] || { echo "run.sh: no seed corpus at $seeds" >&2; exit 2; }
art=${FUZZ_ARTIFACTS:-$(pwd)}/
mkdir -p "$art"
work=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX")
trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
set +e
"$fuzzer" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=70000 \
	-print_final_stats=1 -artifact_prefix="$art$name-" "$work" "$seeds" >"$work/log" 2>&1
rc=$?
set -e
grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|INFO: seed corpus)' "$work/log" || true
echo "new inputs this run: $(ls "$work" | grep -cv '^log$')"
if [ "$rc" -ne 0 ]; then
	tail -n 60 "$work/log"
	echo "run.sh: $name failed (exit $rc); replay with: $fuzzer $art$name-<crash file>" >&2
	exit 1
fi
