#!/bin/sh
# usage: tests/fuzz/run.sh FUZZER SEED_CORPUS SECONDS
# Runs one libFuzzer target for SECONDS from the seed corpus (read only: new
# inputs go to a temporary folder).  Fails on any crash, leak, sanitizer
# report or timeout; the input that did it is kept as
# $FUZZ_ARTIFACTS/NAME-crash-… (default: the working directory) and the
# command that replays it is printed.
#
# A crash found is kept as a regression test: the failing input goes into
# the target's corpus, tests/fuzz/corpus/NAME/, where fuzz_replay_NAME (a
# unit test of every normal build, gcc and ASan) and the next fuzz run feed
# it again.  run.sh prints the exact command for each input it found:
#     cp ARTIFACT tests/fuzz/corpus/NAME/crash-SHA1
# or does it itself with FUZZ_KEEP=1 in the environment:
#     FUZZ_KEEP=1 tests/fuzz/run.sh build-fuzz/tests/fuzz/fuzz_NAME tests/fuzz/corpus/NAME 600
# Fix the bug, see fuzz_replay_NAME pass, and commit the input with the fix.
set -eu
fuzzer=$1 seeds=$2 secs=$3
name=$(basename "$fuzzer")
[ -x "$fuzzer" ] || { echo "run.sh: $fuzzer is not built (meson setup with -Dfuzz=true)" >&2; exit 2; }
[ -d "$seeds" ] || { echo "run.sh: no seed corpus at $seeds" >&2; exit 2; }
art=${FUZZ_ARTIFACTS:-$(pwd)}/
mkdir -p "$art"
work=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/new" "$work/art" # new inputs; this run's artifacts, copied to $art afterwards
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
set +e
"$fuzzer" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=70000 \
	-print_final_stats=1 -artifact_prefix="$work/art/$name-" "$work/new" "$seeds" >"$work/log" 2>&1
rc=$?
set -e
grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|INFO: seed corpus)' "$work/log" || true
echo "new inputs this run: $(ls "$work/new" | wc -l)"
if [ "$rc" -ne 0 ]; then
	tail -n 60 "$work/log"
	echo "run.sh: $name failed (exit $rc); replay with: $fuzzer $art$name-<crash file>" >&2
	found=0
	for a in "$work/art/$name"-*; do
		[ -f "$a" ] || continue
		found=1
		f="$art$(basename "$a")"
		cp "$a" "$f"
		keep="$seeds/crash-$(sha1sum "$f" | cut -c1-40)"
		if [ "${FUZZ_KEEP:-0}" = 1 ]; then
			cp "$f" "$keep"
			echo "run.sh: kept $f as $keep (a regression test now: fuzz_replay_${name#fuzz_})" >&2
		else
			echo "run.sh: keep it as a regression test with: cp '$f' '$keep'" >&2
		fi
	done
	[ "$found" = 1 ] || echo "run.sh: libFuzzer left no input for this failure (see the log above)" >&2
	exit 1
fi
