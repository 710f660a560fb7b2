#!/bin/sh
# A board's TPM 2.0: Debian's swtpm, its state made by swtpm_setup with an
# EK certificate signed by a manufacturer CA (swtpm_localca; the CA is made
# on first use in CADIR and can serve many TPMs, as one maker's does).
#
#   fwimage/tpm.sh setup STATEDIR CADIR [--no-ek-cert]
#       make the TPM's state in STATEDIR (kept when it exists: the same EK
#       on every boot, as a board's soldered TPM); CADIR/rootca.pem and
#       CADIR/issuer.pem are the CA to give skyrootd (skyrootd tpm-ca add).
#       --no-ek-cert: an EK but no certificate (a maker that wrote none).
#   fwimage/tpm.sh qemu STATEDIR SOCKET PIDFILE
#       start swtpm in the background for QEMU's tpm-emulator on the unix
#       socket SOCKET (QEMU: -chardev socket,id=tpm0,path=SOCKET
#       -tpmdev emulator,id=tpm0,chardev=tpm0 -device tpm-tis,tpmdev=tpm0);
#       it ends when QEMU does.  The firmware starts the TPM (no
#       startup-clear here), so OVMF and the UKI stub measure the boot.
# fwimage/board.sh --tpm uses it; needs Debian's swtpm and swtpm-tools.
set -eu

die() { echo "tpm.sh: $*" >&2; exit 1; }
need() {
	for p in "$@"; do
		command -v "$p" >/dev/null 2>&1 || die "$p not found: install Debian packages swtpm and swtpm-tools (deploy/deps.sh)"
	done
}

cmd=${1:-}
case $cmd in
setup)
	[ $# -ge 3 ] || die "usage: $0 setup STATEDIR CADIR [--no-ek-cert]"
	need swtpm swtpm_setup swtpm_localca
	state=$2 ca=$3 certs=yes
	[ "${4:-}" = --no-ek-cert ] && certs=no
	mkdir -p "$state" "$ca"
	state=$(cd "$state" && pwd) ca=$(cd "$ca" && pwd)
	[ -f "$state/tpm2-00.permall" ] && exit 0
	conf=$state/setup
	mkdir -p "$conf"
	cat >"$conf/localca.conf" <<CONF
statedir = $ca
signingkey = $ca/signkey.pem
issuercert = $ca/issuercert.pem
certserial = $ca/certserial
CONF
	cat >"$conf/localca.options" <<CONF
--platform-manufacturer Skyroot-emulated
--platform-version 2.1
--platform-model swtpm
CONF
	cat >"$conf/swtpm_setup.conf" <<CONF
create_certs_tool = $(command -v swtpm_localca)
create_certs_tool_config = $conf/localca.conf
create_certs_tool_options = $conf/localca.options
active_pcr_banks = sha256
CONF
	if [ $certs = yes ]; then
		set -- --create-ek-cert --create-platform-cert
	else
		set -- --createek
	fi
	swtpm_setup --tpm2 --tpmstate "$state" --config "$conf/swtpm_setup.conf" "$@" --overwrite \
		--pcr-banks sha256 >"$conf/setup.log" 2>&1 || { cat "$conf/setup.log" >&2; die "swtpm_setup failed"; }
	if [ $certs = yes ]; then
		cp "$ca/swtpm-localca-rootca-cert.pem" "$ca/rootca.pem"
		cp "$ca/issuercert.pem" "$ca/issuer.pem"
	fi
	;;
qemu)
	[ $# -eq 4 ] || die "usage: $0 qemu STATEDIR SOCKET PIDFILE"
	need swtpm
	state=$2 sock=$3 pidfile=$4
	[ -f "$state/tpm2-00.permall" ] || die "no TPM state in $state: run '$0 setup' first"
	rm -f "$sock" "$pidfile"
	swtpm socket --tpm2 --tpmstate dir="$state" --ctrl type=unixio,path="$sock" \
		--pid file="$pidfile" --log file="$state/swtpm.log" --terminate --daemon ||
		die "swtpm did not start (see $state/swtpm.log)"
	i=0
	while [ ! -S "$sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	[ -S "$sock" ] || die "swtpm made no socket $sock (see $state/swtpm.log)"
	;;
*) die "usage: $0 setup STATEDIR CADIR [--no-ek-cert] | qemu STATEDIR SOCKET PIDFILE" ;;
esac
