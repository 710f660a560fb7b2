#!/usr/bin/env bash
# Unit tests of fwimage/moddeps.py against the fixtures in fwimage/testdata/.
# usage: fwimage/test_moddeps.sh   (exit 0 when every check passes)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
M="python3 $here/moddeps.py"
D=$here/testdata
pass=0
fail=0
out=""
err=""
rc=0

ok() { pass=$((pass + 1)); echo "ok   - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1"; [ -n "${2:-}" ] && printf '       %s\n' "$2"; return 0; }

# run ARGS...: capture stdout, stderr and exit status of moddeps.py
run() {
	local tmp_err
	tmp_err=$(mktemp)
	set +e
	out=$($M "$@" 2>"$tmp_err")
	rc=$?
	set -e
	err=$(cat "$tmp_err")
	rm -f "$tmp_err"
}

# pos NAME: line number of NAME in $out (0 if absent)
pos() { printf '%s\n' "$out" | grep -nx -- "$1" | head -n1 | cut -d: -f1 || true; }

# before A B: A appears, B appears, A first
before() {
	local a b
	a=$(pos "$1"); b=$(pos "$2")
	[ -n "$a" ] && [ -n "$b" ] && [ "$a" -lt "$b" ]
}

t() { # t DESCRIPTION COMMAND...: a check that must succeed
	local what=$1; shift
	if "$@"; then ok "$what"; else bad "$what" "out: $(echo $out) | err: $err | rc=$rc"; fi
}

# --- load order ---------------------------------------------------------
run --dep "$D/modules.dep" --names kvm_amd
t "kvm_amd succeeds" test "$rc" -eq 0
t "kvm_amd: irqbypass before kvm" before irqbypass kvm
t "kvm_amd: kvm before kvm_amd" before kvm kvm_amd
t "kvm_amd: exactly 3 modules" test "$(printf '%s\n' "$out" | wc -l)" -eq 3

run --dep "$D/modules.dep" --names vfio-pci vfio_iommu_type1 kvm-amd
t "vfio-pci with dashes resolves" test "$rc" -eq 0
t "vfio before vfio_pci_core" before vfio vfio_pci_core
t "vfio_virqfd before vfio_pci_core" before vfio_virqfd vfio_pci_core
t "irqbypass before vfio_pci_core" before irqbypass vfio_pci_core
t "vfio_pci_core before vfio_pci" before vfio_pci_core vfio_pci
t "vfio before vfio_iommu_type1" before vfio vfio_iommu_type1
t "shared deps listed once" test "$(printf '%s\n' "$out" | sort | uniq -d | wc -l)" -eq 0
t "irqbypass listed once across kvm and vfio" test "$(printf '%s\n' "$out" | grep -cx irqbypass)" -eq 1

run --dep "$D/modules.dep" virtio_net
t "paths printed by default" test "$(pos kernel/drivers/net/virtio_net.ko)" = "$(printf '%s\n' "$out" | wc -l)"
t "failover before net_failover (path form)" before kernel/net/core/failover.ko kernel/drivers/net/net_failover.ko

# --- transitive deps (lines that list only direct deps) -------------------
run --dep "$D/modules.dep" --names chain_a
t "transitive: chain_c before chain_b before chain_a" test "$(echo $out)" = "chain_c chain_b chain_a"
run --dep "$D/modules.dep" chain_a
t "compressed module paths kept as written" test "$(echo $out)" = "kernel/test/chain_c.ko.xz kernel/test/chain_b.ko.xz kernel/test/chain_a.ko.xz"

# --- requested order is kept where deps allow -----------------------------
run --dep "$D/modules.dep" --names mlx5_core virtio_pci
t "request order kept: mlx5_core before virtio_pci" before mlx5_core virtio_pci
t "mlxfw before mlx5_core" before mlxfw mlx5_core

# --- missing modules ------------------------------------------------------
run --dep "$D/modules.dep" --names kvm_amd e1000e
t "missing required module fails with status 1" test "$rc" -eq 1
t "missing required module is named in the error" grep -q "module e1000e not found" <<<"$err"
t "nothing printed on failure" test -z "$out"

run --dep "$D/modules.dep" --names kvm_amd '?e1000e' '?igb'
t "missing optional modules succeed" test "$rc" -eq 0
t "optional missing module warned about" grep -q "e1000e: no such module" <<<"$err"
t "the rest still resolved" test "$(echo $out)" = "irqbypass kvm kvm_amd"

run --dep "$D/modules.dep" --skip-missing --names e1000e virtio_pci
t "--skip-missing skips" test "$rc" -eq 0
t "--skip-missing resolves the rest" test "$(pos virtio_pci)" -gt 0

run --dep "$D/modules.dep" --builtin "$D/modules.builtin" --names nvme kvm
t "built-in module: success" test "$rc" -eq 0
t "built-in module: noted, not printed" test "$(echo $out)" = "irqbypass kvm"
t "built-in module: says so" grep -q "nvme is built into the kernel" <<<"$err"

# --- cycles ---------------------------------------------------------------
run --dep "$D/cycle.dep" --names a
t "cycle fails with status 1" test "$rc" -eq 1
t "cycle is shown" grep -q "dependency cycle: a -> b -> c -> a" <<<"$err"
run --dep "$D/cycle.dep" --names d
t "module outside the cycle still resolves" test "$rc" -eq 0 -a "$out" = d

# --- broken input ---------------------------------------------------------
run --dep "$D/inconsistent.dep" --names a
t "dependency without own line fails" test "$rc" -eq 1
t "inconsistency explained" grep -q "a needs ghost" <<<"$err"

run --dep "$D/malformed.dep" --names a
t "malformed line fails" test "$rc" -eq 1
t "malformed line number given" grep -q "malformed.dep:2: malformed line" <<<"$err"

run --dep "$D/duplicate.dep" --names foo_bar
t "duplicate module (foo-bar/foo_bar) rejected" grep -q "listed twice" <<<"$err"

run --dep "$D/does-not-exist.dep" kvm
t "unreadable modules.dep: status 1 and hint" test "$rc" -eq 1 -a -n "$(grep -l depmod <<<"$err" || true)"

run --dep "$D/modules.dep"
t "no module given: usage error (status 2)" test "$rc" -eq 2

echo
echo "moddeps: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
