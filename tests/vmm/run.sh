#!/bin/sh
# usage: tests/vmm/run.sh COMMAND [ARGS...]
# Makes sure the guest artefacts exist (tests/vmm/fetch-guest.sh, cached
# outside git), then runs COMMAND with SKY_VMM_GUEST_DIR pointing at them.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=$("$here/fetch-guest.sh" ${SKY_VMM_GUEST_DIR:+"$SKY_VMM_GUEST_DIR"} | tail -n1)
SKY_VMM_GUEST_DIR=$dir
export SKY_VMM_GUEST_DIR
exec "$@"
