#!/bin/sh
# prometheus_client v0.16.0's own tests (test_core.py, test_exposition.py)
# run against shmetrics, their files unchanged: the pytest plugin
# upstream/prom_as_shmetrics.py puts shmetrics in prometheus_client's place
# and marks the known failures (README, "prometheus_client's tests").
#
# usage: run-upstream.sh BUILD_DIR [pytest arguments]
#
# The tests: from $SHMETRICS_UPSTREAM_TESTS (a directory holding
# test_core.py), else the unchanged copy in upstream/client_python-v0.16.0
# (Apache-2.0, with its LICENSE and NOTICE), else the cache ${XDG_CACHE_HOME:-$HOME/.cache}/shmetrics/client_python-v0.16.0,
# filled once from $CLIENT_PYTHON_GIT (a git directory of
# prometheus/client_python) or a shallow clone from GitHub.  None of
# these: exit 77, which meson reports as skipped.
set -eu
build=$(cd "$1" && pwd)
shift
here=$(cd "$(dirname "$0")" && pwd)
tag=v0.16.0
tests=${SHMETRICS_UPSTREAM_TESTS:-}
# the copy kept in the repository (upstream/client_python-v0.16.0)
if [ -z "$tests" ] && [ -f "$here/upstream/client_python-$tag/tests/test_core.py" ]; then
	tests=$here/upstream/client_python-$tag/tests
fi
if [ -z "$tests" ]; then
	cache=${XDG_CACHE_HOME:-$HOME/.cache}/shmetrics/client_python-$tag
	tests=$cache/tests
	if [ ! -f "$tests/test_core.py" ]; then
		tmp=$(mktemp -d)
		trap 'rm -rf "$tmp"' EXIT
		if [ -n "${CLIENT_PYTHON_GIT:-}" ]; then
			git --git-dir="$CLIENT_PYTHON_GIT" archive "$tag" tests |
				tar -x -C "$tmp" || true
		else
			timeout 60 git clone -q --depth 1 --branch "$tag" \
				https://github.com/prometheus/client_python \
				"$tmp/repo" 2>/dev/null &&
				mv "$tmp/repo/tests" "$tmp/tests" || true
		fi
		if [ -f "$tmp/tests/test_core.py" ]; then
			mkdir -p "$cache"
			rm -rf "$tests"
			mv "$tmp/tests" "$tests"
		fi
	fi
fi
if [ ! -f "$tests/test_core.py" ]; then
	echo "prometheus_client $tag tests not found: set" \
	     "SHMETRICS_UPSTREAM_TESTS or CLIENT_PYTHON_GIT" >&2
	exit 77
fi
# Each run in a scratch copy: pytest writes nothing next to the cache.
run=$(mktemp -d)
trap 'rm -rf "$run"' EXIT
cp -r "$tests" "$run/tests"
cd "$run"
PYTHONPATH="$build/python:$here/upstream${PYTHONPATH:+:$PYTHONPATH}" \
PYTHONDONTWRITEBYTECODE=1 \
	exec /usr/bin/python3 -m pytest -q -p no:cacheprovider \
		-p prom_as_shmetrics -rxf "$@" \
		tests/test_core.py tests/test_exposition.py
