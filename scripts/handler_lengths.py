"""Measure how long the view functions of the portal are.

A view is a function decorated with ``@<blueprint>.get/post/put/patch/delete/route(...)``
(any blueprint name). Its length is the number of lines from its ``def`` to its last line,
decorators excluded. Prints the count, min, median, p90 and max, and a histogram.

Usage: python scripts/handler_lengths.py [package directory, default review_portal]
"""

from __future__ import annotations

import ast
import statistics
import sys
from pathlib import Path

ROUTE_METHODS = {"get", "post", "put", "patch", "delete", "route"}
BUCKETS = ((1, 10), (11, 20), (21, 40), (41, None))


def is_view(node: ast.AST) -> bool:
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return False
    for decorator in node.decorator_list:
        call = decorator.func if isinstance(decorator, ast.Call) else decorator
        if (
            isinstance(call, ast.Attribute)
            and call.attr in ROUTE_METHODS
            and isinstance(call.value, ast.Name)
        ):
            return True
    return False


def view_lengths(root: Path) -> list[tuple[int, str]]:
    lengths = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if is_view(node):
                length = node.end_lineno - node.lineno + 1
                lengths.append((length, f"{path}:{node.lineno} {node.name}"))
    return lengths


def percentile(values: list[int], share: float) -> int:
    """The nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share // 1))
    return ordered[int(rank) - 1]


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "review_portal")
    found = view_lengths(root)
    values = [length for length, _ in found]
    if not values:
        print("no views found")
        return
    print(f"views: {len(values)}")
    print(
        f"min {min(values)}  median {statistics.median(values):g}  "
        f"p90 {percentile(values, 0.9)}  max {max(values)}  total {sum(values)}"
    )
    for low, high in BUCKETS:
        count = sum(1 for v in values if v >= low and (high is None or v <= high))
        label = f"{low}-{high}" if high else f"{low}+"
        print(f"{label:>6}: {count:3d} {'#' * count}")
    print("longest:")
    for length, where in sorted(found, reverse=True)[:5]:
        print(f"  {length:3d} {where}")


if __name__ == "__main__":
    main()
