#!/bin/sh
# Make a man page from its scdoc source:
#   build-man.sh SCDOC SRC OUT [SKYCTL]
# With SKYCTL, the line "@SKYCTL_SECTIONS@" of SRC is replaced by what
# 'SKYCTL help --scdoc' prints (made from skyctl's command table).
set -eu
scdoc=$1 src=$2 out=$3
if [ $# -ge 4 ]; then
	gen=$(mktemp)
	trap 'rm -f "$gen"' EXIT
	"$4" help --scdoc >"$gen"
	grep -qx '@SKYCTL_SECTIONS@' "$src" || { echo "$src has no @SKYCTL_SECTIONS@ line" >&2; exit 1; }
	sed -e "/^@SKYCTL_SECTIONS@\$/{r $gen" -e 'd}' "$src" >"$gen.scd"
	trap 'rm -f "$gen" "$gen.scd"' EXIT
	"$scdoc" <"$gen.scd" >"$out"
else
	"$scdoc" <"$src" >"$out"
fi
