#!/usr/bin/env python3
"""Lists module cycles in server/src by reading `use` lines (and `crate::` paths in code).

A module is a file (`room/actor.rs` is `room::actor`, `room/mod.rs` is `room`). An edge A -> B
means A names `crate::B...` or `super::...` resolving to B; a parent does not depend on its
children by declaring them (`mod x;`), and `pub use` re-exports are ignored. Exit status 1 if
there is a cycle. Usage: scripts/module-cycles.py [server/src]
"""
import os, re, sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "server", "src")
mods = {}
for dirpath, _, files in os.walk(root):
    for f in files:
        if not f.endswith(".rs"):
            continue
        rel = os.path.relpath(os.path.join(dirpath, f), root)[:-3].split(os.sep)
        if rel[-1] in ("mod", "lib", "main"):
            rel = rel[:-1]
        mods["::".join(rel)] = os.path.join(dirpath, f)

def resolve(path):
    """The longest known module that `path` (a::b::c) starts with."""
    parts = path.split("::")
    for n in range(len(parts), 0, -1):
        cand = "::".join(parts[:n])
        if cand in mods:
            return cand
    return None

def expand(line):
    """Paths a line names: `use a::{b::C, d}` gives a::b::C and a::d (one level of braces)."""
    out = []
    for m in re.finditer(r"\b((?:crate|super)(?:::\w+)*)::\{([^{}]*)\}", line):
        for item in m.group(2).split(","):
            item = item.strip().split(" as ")[0]
            if item and item != "self":
                out.append(m.group(1) + "::" + item)
            elif item == "self":
                out.append(m.group(1))
    line = re.sub(r"::\{[^{}]*\}", "", line)
    out += re.findall(r"\b(?:crate|super)(?:::\w+)+", line)
    return out

edges = {m: set() for m in mods}
for m, file in mods.items():
    text = open(file, encoding="utf-8").read()
    # test modules may use anything
    text = re.split(r"#\[cfg\(test\)\]\s*mod tests\s*\{", text)[0]
    here = m.split("::") if m else []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith(("//", "pub use", "pub(crate) use", "#[cfg(test)]")):
            continue
        for path in expand(s):
            names = path.split("::")
            if names[0] == "crate":
                target = resolve("::".join(names[1:]))
            else:
                base = here[:-1]
                names = names[1:]
                while names and names[0] == "super":
                    base, names = base[:-1], names[1:]
                target = resolve("::".join(base + names))
            # a module does not depend on itself or on its own children by naming them
            if target is None or target == m or (m and target.startswith(m + "::")) or not m:
                continue
            edges[m].add(target)

# strongly connected components (Tarjan)
index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
def strong(v):
    index[v] = low[v] = counter[0]; counter[0] += 1
    stack.append(v); on.add(v)
    for w in edges[v]:
        if w not in index:
            strong(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            out.append(sorted(comp))
sys.setrecursionlimit(10000)
for v in edges:
    if v not in index:
        strong(v)
for comp in out:
    print("cycle:", " <-> ".join(comp))
    for a in comp:
        for b in sorted(edges[a] & set(comp)):
            print(f"  {a} -> {b}")
print(f"{len(mods)} modules, {sum(len(e) for e in edges.values())} edges, {len(out)} cycles")
sys.exit(1 if out else 0)
