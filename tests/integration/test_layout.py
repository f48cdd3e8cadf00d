"""The source tree's shape, checked on every `make check` (docs/design.md,
"Module map"): src/ is cut by layer (util, proto, store, fs, app, from the
bottom up) and a file includes only headers of its layer or below; the
modules' include graph has no cycle (a module is a .c file and its
headers of the same name, _priv included); no .c file is over 1,500
lines and no function over 120; docs/design.md names every .c file."""

import os
import re
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRC = os.path.join(ROOT, "src")
LAYERS = ["util", "proto", "store", "fs", "app"]
MAX_FILE_LINES = 1500
MAX_FUNCTION_LINES = 120
INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def layout_files(top):
    """Every .c and .h file under top, as paths."""
    for d, _, names in os.walk(top):
        for n in names:
            if n.endswith((".c", ".h")):
                yield os.path.join(d, n)


def layout_module(path):
    """The module a file belongs to: its name without the extension and
    the _priv suffix of a private header."""
    base = os.path.splitext(os.path.basename(path))[0]
    return base[:-5] if base.endswith("_priv") else base


def layout_graph():
    """module -> the set of other modules whose headers it includes."""
    graph = {}
    for top in (SRC,):
        for path in layout_files(top):
            mod = layout_module(path)
            with open(path, encoding="utf-8") as f:
                text = f.read()
            deps = graph.setdefault(mod, set())
            for inc in INCLUDE_RE.findall(text):
                dep = layout_module(inc)
                if dep != mod:
                    deps.add(dep)
    return graph


def layout_cycle(graph):
    """A cycle of the graph as a list of modules, or None."""
    state = {}
    stack = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if d not in graph:
                continue
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def layout_layers():
    """header name -> its layer (the folder it is in under src/)."""
    where = {}
    for layer in LAYERS:
        for path in layout_files(os.path.join(SRC, layer)):
            where[os.path.basename(path)] = layer
    return where


def layout_upward(where):
    """(file, header) pairs where a file includes a header of a layer
    above its own."""
    bad = []
    for layer in LAYERS:
        for path in layout_files(os.path.join(SRC, layer)):
            with open(path, encoding="utf-8") as f:
                text = f.read()
            for inc in INCLUDE_RE.findall(text):
                dep = where.get(os.path.basename(inc))
                if dep and LAYERS.index(dep) > LAYERS.index(layer):
                    bad.append((os.path.relpath(path, ROOT), inc))
    return bad


def layout_functions(text):
    """(name, first line, length) of each function defined in C text:
    from its signature's first line to its closing brace."""
    lines = text.split("\n")
    out, depth, start = [], 0, None
    for i, line in enumerate(lines):
        if depth == 0 and line.startswith("{"):
            j = i - 1
            while j > 0 and lines[j][:1] in (" ", "\t"):
                j -= 1
            start = j
        depth += line.count("{") - line.count("}")
        if depth == 0 and start is not None and line.startswith("}"):
            m = re.search(r"(\w+)\s*\(", lines[start])
            out.append((m.group(1) if m else lines[start], start + 1,
                        i - start + 1))
            start = None
    return out


class LayoutTest(unittest.TestCase):
    def test_src_is_cut_by_layer(self):
        stray = [n for n in os.listdir(SRC)
                 if os.path.isfile(os.path.join(SRC, n))]
        self.assertEqual(stray, [], "files outside the layer folders")
        self.assertEqual(sorted(d for d in os.listdir(SRC)
                                if os.path.isdir(os.path.join(SRC, d))),
                         sorted(LAYERS))

    def test_includes_point_down(self):
        bad = layout_upward(layout_layers())
        self.assertEqual(bad, [], "upward includes")

    def test_no_file_too_long(self):
        long_files = []
        for path in layout_files(SRC):
            if path.endswith(".c"):
                with open(path, encoding="utf-8") as f:
                    n = f.read().count("\n")
                if n > MAX_FILE_LINES:
                    long_files.append((os.path.relpath(path, ROOT), n))
        self.assertEqual(long_files, [])

    def test_no_function_too_long(self):
        long_fns = []
        for path in layout_files(SRC):
            if path.endswith(".c"):
                with open(path, encoding="utf-8") as f:
                    for name, line, n in layout_functions(f.read()):
                        if n > MAX_FUNCTION_LINES:
                            long_fns.append((os.path.relpath(path, ROOT),
                                             line, name, n))
        self.assertEqual(long_fns, [])

    def test_design_names_every_source_file(self):
        with open(os.path.join(ROOT, "docs", "design.md"),
                  encoding="utf-8") as f:
            design = f.read()
        missing = [os.path.relpath(p, ROOT) for p in layout_files(SRC)
                   if p.endswith(".c") and os.path.basename(p) not in design]
        self.assertEqual(missing, [], "not named in docs/design.md")

    def test_the_checks_catch(self):
        # The checks themselves: an upward include and a long function
        # are found.
        self.assertEqual(
            [f[0] for f in layout_functions(
                "static int f(void)\n{\n" + "\tx;\n" * 3 + "}\n")],
            ["f"])
        self.assertEqual(layout_functions(
            "int g(int a,\n      int b)\n{\n}\n")[0][2], 4)
        where = layout_layers()
        self.assertEqual(where.get("fsnode.h"), "fs")
        self.assertEqual(where.get("log.h"), "util")


    def test_no_include_cycle(self):
        cycle = layout_cycle(layout_graph())
        self.assertIsNone(cycle, "include cycle: " + " -> ".join(cycle or []))

    def test_cycle_is_found(self):
        # The check itself: a graph with a cycle is caught.
        self.assertEqual(layout_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}),
                         ["a", "b", "c", "a"])
        self.assertIsNone(layout_cycle({"a": {"b"}, "b": set()}))


if __name__ == "__main__":
    unittest.main()
