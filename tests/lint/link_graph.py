#!/usr/bin/python3
"""link_graph - which of a program's files use which, from the symbols its
objects define and need (nm), and a check that they form no circle.

    link_graph.py [--show] OBJ...

An edge a -> b: a.o needs a symbol (a function or a variable) that b.o
defines. The file that defines main() is the program's root: it owns the
settings every file reads and calls every thread's entry, so edges into it
are left out of the circle check (and shown). Exit 1 on a circle, naming it.
"""
import os
import subprocess
import sys


def symbols(obj):
    """(defined, needed) global symbols of one object file."""
    out = subprocess.run(["nm", "--defined-only", "-g", obj], capture_output=True,
                         text=True, check=True).stdout
    defined = {line.split()[-1] for line in out.splitlines() if line.strip()}
    out = subprocess.run(["nm", "-u", obj], capture_output=True, text=True,
                         check=True).stdout
    needed = {line.split()[-1] for line in out.splitlines() if line.strip()}
    return defined, needed


def graph(objs):
    name = {o: os.path.basename(o)[:-2] for o in objs}
    syms = {name[o]: symbols(o) for o in objs}
    owner = {s: n for n, (d, _) in syms.items() for s in d}
    edges = {n: {} for n in syms}
    for n, (_, needed) in syms.items():
        for s in needed:
            if s in owner and owner[s] != n:
                edges[n].setdefault(owner[s], []).append(s)
    root = next((n for n, (d, _) in syms.items() if "main" in d), None)
    return edges, root


def circle(edges, root):
    """A circle among the files other than root, as a list, or None."""
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(edges[n]):
            if m == root:
                continue
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(edges):
        if n != root and n not in state:
            found = visit(n)
            if found:
                return found
    return None


def main(argv):
    show = "--show" in argv
    objs = [a for a in argv[1:] if a != "--show"]
    if not objs:
        sys.exit("usage: link_graph.py [--show] OBJ...")
    edges, root = graph(objs)
    if show:
        for n in sorted(edges):
            for m in sorted(edges[n]):
                print("%s -> %s: %s" % (n, m, " ".join(sorted(edges[n][m]))))
    found = circle(edges, root)
    if found:
        print("link_graph: a circle: %s" % " -> ".join(found))
        return 1
    print("link_graph: %d files, no circle (edges into %s, the root, aside)"
          % (len(edges), root))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
