"""The source tree's shape, checked on every `make check`: the modules'
include graph has no cycle (a module is a .c file and its header of the
same name), so that dependencies point one way."""

import os
import re
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRC = os.path.join(ROOT, "src")
INCLUDE = os.path.join(ROOT, "include")
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
    for top in (SRC, INCLUDE):
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


class LayoutTest(unittest.TestCase):
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
