#!/usr/bin/env python3
"""Import cycles between the files of each crate (`make lint`): a file that names another module of
its crate (`use crate::a::b`, `use super::x`, `crate::x::f(...)`, `super::x::f(...)`) depends on it;
a cycle of such dependencies between files is reported, and the script exits 1.

Only dependencies between files are counted (a module and its own `mod.rs` aside), which is what
makes a crate's files readable one at a time."""
import os
import re
import sys

# Cycles known and left for later. A new cycle fails the check, and so does one of these once it
# is gone (so the list only shrinks). Empty since the coordinator's split into scheduler/ and
# server/ (issue 32).
KNOWN = set()

CRATES = ["src", "engine/src", "sweep/src", "coordinator/src", "worker/src", "proto/src", "figures/src"]
PATH = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")


def module_of(root, path):
    rel = os.path.relpath(path, root)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return rel


def file_of(modules, parts):
    """The longest module prefix of `parts` that is a file of the crate."""
    for n in range(len(parts), 0, -1):
        key = tuple(parts[:n])
        if key in modules:
            return key
    return None


def strip_tests(text):
    cut = text.find("#[cfg(test)]")
    return text if cut < 0 else text[:cut]


def crate_edges(root):
    modules = {}
    for d, _, files in os.walk(root):
        for f in files:
            if f.endswith(".rs"):
                p = os.path.join(d, f)
                modules[tuple(module_of(root, p))] = p
    edges = {m: set() for m in modules}
    for m, p in modules.items():
        is_dir_module = os.path.basename(p) in ("mod.rs", "lib.rs", "main.rs")
        text = strip_tests(open(p, encoding="utf-8").read())
        for head, tail in PATH.findall(text):
            parts = [x for x in tail.split("::") if x]
            if head == "crate":
                target = parts
            else:
                base = list(m) if is_dir_module else list(m[:-1])
                while parts and parts[0] == "super":
                    base = base[:-1]
                    parts = parts[1:]
                # `super::` of a file names its parent module.
                target = base + parts
            t = file_of(modules, target)
            if t is None or t == m or t == ():
                continue
            # A module's own file (mod.rs) and its children are one unit of reading.
            if len(t) < len(m) and m[: len(t)] == t:
                continue
            edges[m].add(t)
    return modules, edges


def cycles(edges):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
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
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def main():
    root_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    found = set()
    for c in CRATES:
        root = os.path.join(root_dir, c)
        modules, edges = crate_edges(root)
        for comp in cycles(edges):
            found.add(tuple(sorted(os.path.relpath(modules[m], root_dir) for m in comp)))
    bad = 0
    for names in sorted(found):
        known = names in KNOWN
        bad += not known
        print(f"import cycle{' (known)' if known else ''}: {' <-> '.join(names)}")
    for names in sorted(KNOWN - found):
        bad += 1
        print(f"gone, remove it from KNOWN in {__file__}: {' <-> '.join(names)}")
    if bad:
        return 1
    print(f"no new import cycles between files ({len(found)} known)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
