#!/bin/sh
# Install exactly the Debian 12 packages Skyroot needs that are missing.
# Idempotent: a second run installs nothing.  Usage: deploy/deps.sh
set -eu

# Every deploy/packages/*.txt lists packages, one a line, '#' comments.
here=$(cd "$(dirname "$0")" && pwd)
PKGS=$(cat "$here"/packages/*.txt | sed 's/#.*//' | tr -s ' \t\n' '\n' | sed '/^$/d' | sort -u)

missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done

if [ -z "$missing" ]; then
	echo "deps: all packages present"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
else
	SUDO=
fi
echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# Refresh the package index only when it is missing or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -n1)" ]; then
	$SUDO apt-get update -qq
fi
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "deps: done"
