#!/bin/sh
# Install the Debian packages shmetrics needs, only those missing:
# 'apt-get update' once, then one 'apt-get install -y'.  Run as root.
set -eu
packages="gcc g++ clang libclang-rt-14-dev meson ninja-build pkg-config
	check liburcu-dev libcivetweb-dev libjansson-dev libdeflate-dev
	zlib1g-dev libssl-dev libcrypt-dev libyaml-dev openssl curl wrk valgrind
	prometheus prometheus-alertmanager victoria-metrics systemd python3
	python3-prometheus-client python3-yaml libncurses-dev tmux python3-dev
	python3-pytest python3-flask gunicorn gnuplot-nox gcc-aarch64-linux-gnu
	libc6-dev-arm64-cross"
missing=""
for p in $packages; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	"install ok installed") ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0
echo "installing:$missing" >&2
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: run as root to install:$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >/dev/null
