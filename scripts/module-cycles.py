#!/usr/bin/env python3
"""Fails when modules of a workspace crate import each other in a circle.

For every crate, each `src/**/*.rs` file is a module (`a/mod.rs` and `a.rs` are module `a`).
A module depends on another when it names it through `crate::…`, `super::…` or `self::…` paths
(in `use` items or in code). Test modules (`tests.rs`, `*_tests.rs`, `mod tests` blocks) are left
out: they may reach anywhere. A parent module that only declares a child (`mod x;`) does not
depend on it. Prints every circle and exits 1, or prints a one-line summary and exits 0.

    python3 scripts/module-cycles.py            # the whole workspace
    python3 scripts/module-cycles.py DIR        # another checkout
"""

import os
import re
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Every workspace crate: a folder with a Cargo.toml and a src/.
CRATES = sorted(
    d for d in os.listdir(ROOT)
    if os.path.isfile(os.path.join(ROOT, d, "Cargo.toml")) and os.path.isdir(os.path.join(ROOT, d, "src"))
)

PATH_RE = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_GROUP_RE = re.compile(r"\buse\s+(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\}", re.S)


def module_of(src, path):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return tuple(rel)


def strip_tests(text):
    """Drops `#[cfg(test)] mod tests { … }` blocks and comments."""
    text = re.sub(r"//[^\n]*", "", text)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def resolve(modules, here, kind, segs):
    base = {"crate": (), "self": here, "super": here[:-1]}[kind]
    parts = list(segs)
    # `super::super::x`
    while parts and parts[0] == "super":
        base = base[:-1]
        parts = parts[1:]
    best = None
    for n in range(len(parts), -1, -1):
        cand = base + tuple(parts[:n])
        if cand in modules:
            best = cand
            break
    return best


def crate_graph(crate):
    src = os.path.join(ROOT, crate, "src")
    files = {}
    for d, _, fs in os.walk(src):
        for f in fs:
            if f.endswith(".rs") and f != "tests.rs" and not f.endswith("_tests.rs"):
                p = os.path.join(d, f)
                files[module_of(src, p)] = p
    modules = set(files)
    graph = {m: set() for m in modules}
    for m, p in files.items():
        text = strip_tests(open(p, encoding="utf-8").read())
        refs = [(k, [s for s in rest.split("::") if s]) for k, rest in PATH_RE.findall(text)]
        for k, prefix, group in USE_GROUP_RE.findall(text):
            pre = [s for s in prefix.split("::") if s]
            for item in group.split(","):
                first = item.strip().split("::")[0].split(" ")[0].strip("{} ")
                if first and first != "self":
                    refs.append((k, pre + [first]))
        for k, segs in refs:
            target = resolve(modules, m, k, segs)
            if target is None or target == m:
                continue
            # A module naming its own descendant (`mod x;` then `x::…`) is structure, not a
            # dependency back up; only edges that leave the subtree or point up count.
            if target[: len(m)] == m and k == "self":
                continue
            graph[m].add(target)
    return graph


def cycles(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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
    for v in graph:
        if v not in index:
            visit(v)
    return out


def main():
    found = 0
    modules = 0
    for crate in CRATES:
        g = crate_graph(crate)
        # Parent → child edges from the parent's own paths count; a child naming its parent's
        # items (`super::X`) is the usual direction. A circle needs both ways.
        modules += len(g)
        for comp in cycles(g):
            found += 1
            names = ", ".join("::".join(c) or "(crate root)" for c in sorted(comp))
            print(f"{crate}: modules import each other in a circle: {names}")
    if found:
        sys.exit(1)
    print(f"no import circles among {modules} modules of {len(CRATES)} crates")


if __name__ == "__main__":
    main()
