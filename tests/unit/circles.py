#!/usr/bin/env python3
"""No two .c files of a library call each other in a circle (house rule).

usage: circles.py LIBRARY.a ...

For each object in the archive, `nm` gives the global symbols it defines
and the ones it uses; object A depends on object B when A uses a symbol B
defines.  Any strongly connected set of two or more objects is a circle:
it is printed with the symbols that close it, and the exit status is 1.
"""
import subprocess
import sys


def members(lib):
    out = subprocess.run(['nm', '-A', '-g', lib], check=True, capture_output=True, text=True).stdout
    defs, uses = {}, {}
    for line in out.splitlines():
        # "lib.a:obj.c.o:0000000000000000 T name" or "lib.a:obj.c.o:                 U name"
        head, _, rest = line.rpartition(':')
        obj = head.split(':')[-1].rsplit('/', 1)[-1]
        parts = rest.split()
        if len(parts) < 2:
            continue
        kind, name = parts[-2], parts[-1]
        defs.setdefault(obj, set())
        uses.setdefault(obj, set())
        if kind == 'U':
            uses[obj].add(name)
        else:
            defs[obj].add(name)
    return defs, uses


def circles(defs, uses):
    owner = {s: o for o, ss in defs.items() for s in ss}
    edges = {o: {} for o in defs}
    for o, ss in uses.items():
        for s in ss:
            t = owner.get(s)
            if t and t != o:
                edges[o].setdefault(t, set()).add(s)
    # Tarjan's strongly connected components.
    index, low, stack, on, sccs, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return edges, sccs


def main():
    bad = 0
    for lib in sys.argv[1:]:
        defs, uses = members(lib)
        edges, sccs = circles(defs, uses)
        for comp in sccs:
            bad = 1
            print(f'{lib}: circle between {", ".join(comp)}:')
            for a in comp:
                for b in comp:
                    if b in edges[a]:
                        print(f'  {a} -> {b}: {", ".join(sorted(edges[a][b])[:6])}')
        if not sccs:
            print(f'{lib}: {len(defs)} objects, no circle')
            for a in sorted(edges):
                if edges[a]:
                    print(f'  {a} -> {", ".join(sorted(edges[a]))}')
    return bad


if __name__ == '__main__':
    sys.exit(main())
