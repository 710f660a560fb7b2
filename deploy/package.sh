#!/bin/sh
# Build Skyroot's Debian packages (deploy/debian) in a temporary copy of
# the tree (nothing is written into the tree) and print the .deb paths.
#
# usage: deploy/package.sh [--firmware DIR | --no-firmware] OUTDIR
#
#   skyroot-controller  skyrootd, skyctl, skyrootd.service, /etc/default/skyrootd
#   skyroot-agent       skyagent-full, skyagent.service, /etc/default/skyagent
#   skyroot-firmware    the firmware images, in /usr/lib/skyroot/firmware
#
# The firmware is never built inside the package build: fwimage/build.sh
# downloads Debian's kernel package (a package build must not reach the
# network), takes minutes, and embeds the firmware's own agent.  So the
# firmware package ships images made before it:
#   --firmware DIR   the images of an earlier 'fwimage/build.sh --out DIR'
#   (neither)        run fwimage/build.sh now (needs build/agent/skyagent)
#   --no-firmware    only skyroot-controller and skyroot-agent
set -eu

usage() {
	echo "usage: deploy/package.sh [--firmware DIR | --no-firmware] OUTDIR" >&2
	exit 2
}
die() {
	echo "package.sh: $*" >&2
	exit 1
}

firmware=""
fw_mode=build
while [ $# -gt 0 ]; do
	case $1 in
	--firmware)
		[ $# -ge 2 ] || usage
		firmware=$2 fw_mode=dir
		shift 2
		;;
	--firmware=*) firmware=${1#*=} fw_mode=dir; shift ;;
	--no-firmware) fw_mode=none; shift ;;
	-h | --help)
		sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	-*) echo "package.sh: unknown option '$1'" >&2; usage ;;
	*) break ;;
	esac
done
[ $# -eq 1 ] || usage
outdir=$1

top=$(cd "$(dirname "$0")/.." && pwd)
for tool in dpkg-buildpackage dh fakeroot; do
	command -v "$tool" >/dev/null 2>&1 ||
		die "$tool is missing: run deploy/deps.sh (it installs deploy/packages/*.txt)"
done
if [ "$fw_mode" = dir ]; then
	[ -d "$firmware" ] || die "--firmware $firmware is not a folder (make one with fwimage/build.sh --out DIR)"
	[ -n "$(ls -A "$firmware")" ] || die "--firmware $firmware is empty (make it with fwimage/build.sh --out DIR)"
fi

# The changelog's version is the package's: it must be meson's.
version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$top/meson.build" | head -n1)
deb_version=$(sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' "$top/deploy/debian/changelog")
[ "$version" = "$deb_version" ] ||
	die "meson.build says version $version, deploy/debian/changelog $deb_version: add a changelog entry (dch -v $version)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/skyroot-package.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
src=$tmp/skyroot-$version
mkdir "$src"

# The tree as it is (uncommitted changes too), without build folders.
if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$top" && git ls-files -z -co --exclude-standard |
		tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$src"
else
	(cd "$top" && tar --exclude=./.git --exclude='./build*' --exclude=./var \
		--exclude=./fwimage/out --exclude=./fwimage/cache -cf - .) | tar -xf - -C "$src"
fi
rm -rf "$src/debian"
cp -R "$top/deploy/debian" "$src/debian"

case $fw_mode in
dir)
	mkdir "$src/debian/firmware"
	cp -R "$firmware"/. "$src/debian/firmware/"
	;;
build)
	[ -x "$top/build/agent/skyagent" ] ||
		die "no build/agent/skyagent to put in the firmware: build first (meson setup build && ninja -C build), or give --firmware DIR or --no-firmware"
	echo "package.sh: building the firmware (fwimage/build.sh)" >&2
	"$top/fwimage/build.sh" --out "$src/debian/firmware" >"$tmp/firmware.log" 2>&1 ||
		{ tail -n 30 "$tmp/firmware.log" >&2; die "fwimage/build.sh failed (log above)"; }
	;;
esac

# -b: the controller, the agent and the firmware; -B: without the firmware.
what=-b
[ "$fw_mode" = none ] && what=-B
echo "package.sh: building the packages in $src" >&2
if ! (cd "$src" && DEB_BUILD_OPTIONS="parallel=$(nproc) ${DEB_BUILD_OPTIONS:-noautodbgsym}" \
	dpkg-buildpackage "$what" -us -uc >"$tmp/build.log" 2>&1); then
	tail -n 40 "$tmp/build.log" >&2
	die "dpkg-buildpackage failed (the end of its log is above)"
fi

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
for deb in "$tmp"/*.deb; do
	[ -e "$deb" ] || die "dpkg-buildpackage made no .deb"
	mv "$deb" "$outdir/"
	echo "$outdir/${deb##*/}"
done
