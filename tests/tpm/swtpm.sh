#!/bin/sh
# A private TPM 2.0 for tests: Debian's swtpm with an EK certificate signed by
# a throwaway manufacturer CA of its own (swtpm_localca, configured in DIR),
# listening on two free TCP ports of 127.0.0.1 (commands, control).
#
#   tests/tpm/swtpm.sh start DIR   set up DIR (state, CA), start swtpm in the
#                                  background; print its TCTI string
#                                  (swtpm:host=127.0.0.1,port=N) on stdout.
#                                  DIR/pid has its pid; DIR/ca/ holds the
#                                  manufacturer CA (rootca.pem, issuer.pem).
#   tests/tpm/swtpm.sh start DIR --no-ek-cert
#                                  the same TPM without EK certificates (a
#                                  board whose maker wrote none; no CA).
#   tests/tpm/swtpm.sh stop DIR    stop the swtpm of DIR by its pid.
# Exits 77 (skip) with the reason when swtpm or swtpm_setup is missing
# (deploy/packages/base.txt installs them).  SWTPM_AVOID="P ..." lists ports
# not to take.
set -eu

die() { echo "swtpm.sh: $*" >&2; exit 1; }

cmd=${1:-}
dir=${2:-}
certs=yes
[ "${3:-}" = --no-ek-cert ] && certs=no
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: $0 start|stop DIR"

case $cmd in
stop)
	[ -f "$dir/pid" ] || exit 0
	pid=$(cat "$dir/pid")
	case $pid in ''|*[!0-9]*) die "bad pid file $dir/pid" ;; esac
	kill "$pid" 2>/dev/null || true
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	kill -9 "$pid" 2>/dev/null || true
	rm -f "$dir/pid"
	exit 0 ;;
start) ;;
*) die "usage: $0 start|stop DIR" ;;
esac

for p in swtpm swtpm_setup swtpm_localca; do
	command -v $p >/dev/null 2>&1 || { echo "SKIP: $p not installed (deploy/packages/base.txt: swtpm, swtpm-tools)" >&2; exit 77; }
done

dir=$(cd "$dir" && pwd)
# The TPM's state and the manufacturer CA (made on first use), as an
# emulated board's TPM is made (fwimage/tpm.sh)
here=$(cd "$(dirname "$0")" && pwd)
if [ $certs = yes ]; then
	"$here/../../fwimage/tpm.sh" setup "$dir/state" "$dir/ca"
else
	"$here/../../fwimage/tpm.sh" setup "$dir/state" "$dir/ca" --no-ek-cert
fi

# Two free ports next to each other (swtpm's TCTI uses port and port+1),
# neither of those in SWTPM_AVOID (ports the caller handed out to programs
# that have not bound them yet).
ports=$(python3 - <<'PY'
import os, socket
avoid = {int(x) for x in os.environ.get("SWTPM_AVOID", "").split()}
for _ in range(100):
    a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    if p in avoid or p + 1 in avoid:
        a.close(); continue
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 1))
    except OSError:
        a.close(); continue
    a.close(); b.close(); print(p); break
PY
)
[ -n "$ports" ] || die "no two free ports"
ctrl=$((ports + 1))
rm -f "$dir/pid"
swtpm socket --tpm2 --tpmstate dir="$dir/state" \
	--server type=tcp,port=$ports,bindaddr=127.0.0.1 \
	--ctrl type=tcp,port=$ctrl,bindaddr=127.0.0.1 \
	--flags not-need-init,startup-clear \
	--pid file="$dir/pid" --log file="$dir/swtpm.log" --daemon \
	|| die "swtpm did not start (see $dir/swtpm.log)"
i=0
while [ ! -s "$dir/pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -s "$dir/pid" ] || die "swtpm wrote no pid file"
echo "swtpm:host=127.0.0.1,port=$ports"
