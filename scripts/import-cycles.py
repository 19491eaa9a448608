#!/usr/bin/env python3
"""Import circles between the files of each crate (README "Where things are").

A file depends on another when it names a path in it (`crate::flow::service::Service`,
`super::sql`); `mod` declarations and a test module's `use super::*` are not imports. Prints
each circle as a chain of files and exits 1 when there is one; with --graph, prints every
file's imports too.
"""
import os
import re
import sys

CRATES = ["adapter/src", "engine/src"]
PATH = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")


def modules(root):
    """Module path (tuple) -> file, for every file of the crate under root."""
    found = {}
    for directory, _, files in os.walk(root):
        for name in files:
            if not name.endswith(".rs"):
                continue
            file = os.path.join(directory, name)
            parts = os.path.relpath(file, root)[:-3].split(os.sep)
            if parts[-1] in ("mod", "lib", "main"):
                parts = parts[:-1]
            found.setdefault(tuple(parts), file)
    return found


def source(file):
    # Comments name paths without depending on them.
    return re.sub(r"//[^\n]*", "", open(file, encoding="utf-8").read())


def reexports(known):
    """Names the crate root re-exports (`pub use engine::{Engine, Output}`) -> their module,
    so that `crate::Engine` depends on engine.rs, not on the root."""
    names = {}
    for head, tail in re.findall(r"pub use ([a-z_:]+?)::(\{[^}]*\}|\w+);", source(known[()])):
        for name in re.findall(r"\w+", tail):
            names[name] = tuple(head.split("::"))
    return names


def imports(file, module, known, exported):
    """The files `file` (module path `module`) names, resolved to the longest known module."""
    text = source(file)
    named = set()
    # A test module at the end of the file: its `super` is this file.
    tests_at = text.find("mod tests {")
    found = [
        ("self" if match.group(1) == "super" and 0 <= tests_at < match.start() else match.group(1),
         match.group(2))
        for match in PATH.finditer(text)
    ]
    if module == ():
        # The crate root names its own modules without `crate::`.
        tops = {path[0] for path in known if path}
        found += [("crate", "::" + rest) for rest in re.findall(r"\buse ([a-z_]+(?:::\w+)*)", text)
                  if rest.split("::")[0] in tops]
    for start, rest in found:
        parts = rest.split("::")[1:]
        if start == "self":
            if parts[0] != "super":
                continue
            start, parts = "super", parts[1:]
        if start == "super":
            if not parts or parts[0] == "*":
                continue
            path = module[:-1] + tuple(parts)
        elif parts[0] in exported:
            path = exported[parts[0]]
        else:
            path = tuple(parts)
        while path and path not in known:
            path = path[:-1]
        target = known.get(path)
        if target and target != file:
            named.add(target)
    return named


def circles(graph):
    """One circle per strongly connected group of files (Tarjan), as a readable chain."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(10000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def main():
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    show_graph = "--graph" in sys.argv
    found_any = False
    for root in CRATES:
        known = modules(root)
        exported = reexports(known)
        graph = {
            file: imports(file, module, known, exported) for module, file in known.items()
        }
        if show_graph:
            for file in sorted(graph):
                print(file, "->", " ".join(sorted(graph[file])))
        for group in circles(graph):
            found_any = True
            print(f"import circle in {root}: " + ", ".join(group))
    if not found_any:
        print("import circles: none in " + ", ".join(CRATES))
    return 1 if found_any else 0


if __name__ == "__main__":
    sys.exit(main())
