#!/bin/sh
# Which cell of a series holds what is the rule book's
# (include/shmetrics/rules.h and its part cells.h: shmet_seg_cell_*): no
# other source computes a role's cell from a series' first cell.  This
# looks for the shapes
# such arithmetic had (first + 1, first + b, first + nb + 1,
# cells_per_series - 1, [c + 1], cell[1], ...) in every C source and
# header outside tests/, comments left out, the writers' inline hot path
# (include/shmetrics.h, include/shmetrics/inline-impl.h: its handles keep
# a series' first cell, and a role's cell is shmet_seg_cell_*(0); its
# rseq sections take byte offsets, shmet_seg_cell_bucket_bytes and
# shmet_seg_cell_bucket_to_sum_bytes) and the Python gauge included.
# usage: check-cells.sh SRCDIR
set -eu
cd "$1"
re='first(_cell)?(\([^)]*\))?[[:space:]]*\+[[:space:]]*(1|b|k|nb|bound_count)\b|\[[[:space:]]*(c|cell|first|fold_cell)[[:space:]]*\+[[:space:]]*1[[:space:]]*\]|cells_per_series[[:space:]]*-[[:space:]]*1|part_cells\[p\][[:space:]]*\+[[:space:]]*(m->)?part_bounds|(bound_count|nb|part_bounds\[p\])[[:space:]]*\+[[:space:]]*1[[:space:]]*\]|cell\[[01]\]|8ull \* cell \+ 8|8ull \* (i|b)\b|\+ 1 - (i|b)\b|->cell\[(i|b)\]'
files=$(find include lib writer exporter tools python collectors bench \
	-name '*.[ch]' ! -path include/shmetrics/rules.h \
	! -path include/shmetrics/cells.h | sort)
[ -n "$files" ] || { echo "no sources under $1" >&2; exit 1; }
# file:line:code, with comments cut off the code before the second look
found=$(echo "$files" | xargs grep -nE "$re" |
	sed -E 's#/\*.*$##; s#//.*$##; s#^([^:]+:[0-9]+:)[[:space:]]*\*.*$#\1#' |
	grep -E "^[^:]+:[0-9]+:.*($re)" || true)
if [ -n "$found" ]; then
	echo "$found"
	echo "cell positions computed outside include/shmetrics/rules.h (use shmet_seg_cell_*)" >&2
	exit 1
fi
echo "cells ok: roles only in include/shmetrics/rules.h and cells.h"
