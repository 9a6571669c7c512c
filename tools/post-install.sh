#!/bin/sh
# meson install's last step: run ldconfig after an install into the live
# system, so that libshmetrics.so.0 in the prefix's libdir is found at run
# time without LD_LIBRARY_PATH.  A --destdir install (a package or a test
# root) and a non-root install leave the cache alone.
if [ -z "${DESTDIR:-}" ] && [ "$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then
	ldconfig
fi
exit 0
