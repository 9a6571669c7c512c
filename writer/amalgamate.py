#!/usr/bin/env python3
"""Write the amalgamated slow path: writer-private.h and writer/*.c as one
header, <shmetrics/writer-impl.h>, for programs that link nothing and
define SHMETRICS_IMPLEMENTATION in one file (SQLite's way).  The shared
functions become file-local there (SHMET_AMALGAMATION, writer-private.h).

usage: amalgamate.py OUTPUT writer-private.h FILE.c...
"""
import re
import sys

OWN_INCLUDE = re.compile(r'^#include "(writer-private\.h|config\.h)"\s*$')


def body(path):
    with open(path, encoding='utf-8') as f:
        lines = f.read().split('\n')
    out = ['/* ---- from writer/%s ---- */' % path.split('/')[-1]]
    for line in lines:
        if OWN_INCLUDE.match(line):
            continue
        out.append(line)
    return '\n'.join(out)


def main():
    output, private, sources = sys.argv[1], sys.argv[2], sys.argv[3:]
    parts = [
        '/*\n * shmetrics: the writer\'s slow path as one header, generated '
        'by\n * writer/amalgamate.py from the files of writer/: do not edit.  '
        '<shmetrics.h>\n * includes it in the one file that defines '
        'SHMETRICS_IMPLEMENTATION.\n */',
        '#ifndef SHMETRICS_WRITER_IMPL_H',
        '#define SHMETRICS_WRITER_IMPL_H',
        '#ifndef SHMETRICS_H',
        '#error "define SHMETRICS_IMPLEMENTATION and include <shmetrics.h> '
        'instead"',
        '#endif',
        '#define SHMET_AMALGAMATION 1',
        body(private),
    ]
    parts += [body(s) for s in sources]
    parts.append('#endif /* SHMETRICS_WRITER_IMPL_H */\n')
    with open(output, 'w', encoding='utf-8') as f:
        f.write('\n'.join(parts))


if __name__ == '__main__':
    main()
