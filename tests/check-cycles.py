#!/usr/bin/python3
"""No two source files call each other, directly or round a longer circle.

For every target meson built (one NAME.p/ folder of object files), this
reads each object's global symbols with nm: what it defines and what it
leaves undefined.  File A calls file B when A leaves undefined a symbol B
defines.  Those calls make a graph between the target's source files; a
strongly connected part of more than one file is a circle, printed with
the symbols that close it, and the check fails.

Only calls through the linker are seen: static functions stay inside
their file, and inline functions in headers are the header's, which is
what a circle between .c files is about.  Before it reads the build, the
check proves it can fail: it compiles two files that call each other and
expects to find that circle (a check that cannot fail checks nothing).

usage: check-cycles.py BUILDDIR [CC...]
"""
import os
import subprocess
import sys
import tempfile


def symbols(obj):
    """(defined, undefined) global symbols of one object file."""
    out = subprocess.run(['nm', '-P', '-g', obj], check=True,
                         capture_output=True, text=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind in ('U', 'w', 'v'):
            # weak undefined references are calls too, when someone defines them
            undefined.add(name)
        else:
            defined.add(name)
    return defined, undefined


def source_name(obj, target_dir):
    """writer/libshmetrics.so.0.1.0.p/state.c.o -> writer/state.c (close
    enough: meson flattens paths outside the target's folder into
    names with '_')."""
    rel = os.path.relpath(obj, target_dir)
    if rel.endswith('.o'):
        rel = rel[:-2]
    return rel


def graph(objs, target_dir):
    """{file: {callee file: sorted symbols}} for one target's objects."""
    defs, undefs = {}, {}
    for obj in objs:
        name = source_name(obj, target_dir)
        defs[name], undefs[name] = symbols(obj)
    owner = {}
    for name, syms in defs.items():
        for sym in syms:
            owner.setdefault(sym, set()).add(name)
    edges = {}
    for name, syms in undefs.items():
        out = edges.setdefault(name, {})
        for sym in syms:
            for callee in owner.get(sym, ()):
                if callee != name:
                    out.setdefault(callee, []).append(sym)
    return edges


def circles(edges):
    """Strongly connected parts of more than one node (Tarjan, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = [0]
    nodes = set(edges)
    for callees in edges.values():
        nodes.update(callees)
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, {}))))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]
                    counter[0] += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(edges.get(nxt, {})))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                part = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    part.append(top)
                    if top == node:
                        break
                if len(part) > 1:
                    found.append(sorted(part))
    return found


def report(target, edges, part):
    print(f'{target}: circle between {", ".join(part)}')
    members = set(part)
    for caller in part:
        for callee, syms in sorted(edges.get(caller, {}).items()):
            if callee in members:
                print(f'  {caller} -> {callee}: {", ".join(sorted(syms))}')


def check_tree(builddir):
    targets = {}
    for top, dirs, files in os.walk(builddir):
        dirs[:] = [d for d in dirs if d not in ('meson-private', 'meson-logs')]
        objs = [os.path.join(top, f) for f in files if f.endswith('.o')]
        if not objs:
            continue
        # the target is the NAME.p folder the objects sit in (or under)
        parts = os.path.relpath(top, builddir).split(os.sep)
        cut = next((i for i, p in enumerate(parts) if p.endswith('.p')), None)
        if cut is None:
            continue
        target = os.path.join(builddir, *parts[:cut + 1])
        targets.setdefault(target, []).extend(objs)
    bad = 0
    for target, objs in sorted(targets.items()):
        edges = graph(sorted(objs), target)
        for part in circles(edges):
            report(os.path.relpath(target, builddir), edges, part)
            bad += 1
    return len(targets), bad


def self_test(cc):
    """cc: the compiler's command, a list (meson's, e.g. ccache cc)."""
    """Two files that call each other must be reported."""
    with tempfile.TemporaryDirectory() as tmp:
        target = os.path.join(tmp, 'selftest.p')
        os.mkdir(target)
        sources = {
            'a.c': 'int b(int);\nint a(int x) { return x ? b(x - 1) : 0; }\n',
            'b.c': 'int c(int);\nint b(int x) { return c(x); }\n',
            'c.c': 'int a(int);\nint c(int x) { return a(x); }\n',
            'd.c': 'int a(int);\nint d(void) { return a(3); }\n',
        }
        objs = []
        for name, text in sources.items():
            src = os.path.join(tmp, name)
            with open(src, 'w') as f:
                f.write(text)
            obj = os.path.join(target, name + '.o')
            subprocess.run(cc + ['-c', '-o', obj, src], check=True)
            objs.append(obj)
        parts = circles(graph(sorted(objs), target))
        if parts != [['a.c', 'b.c', 'c.c']]:
            print(f'self-test: expected the circle a.c, b.c, c.c, found {parts}',
                  file=sys.stderr)
            return False
    return True


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    builddir = sys.argv[1]
    cc = sys.argv[2:] or os.environ.get('CC', 'cc').split()
    if not self_test(cc):
        return 1
    count, bad = check_tree(builddir)
    if count == 0:
        print(f'no object files under {builddir}', file=sys.stderr)
        return 1
    if bad:
        print(f'{bad} circle(s) between files: move the shared piece to a file '
              'of its own', file=sys.stderr)
        return 1
    print(f'no circles between files ({count} targets)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
