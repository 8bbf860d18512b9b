"""The CPU a web process spends starting: ``import review_portal.wsgi`` (the import of the
portal and ``create_app()``) against a bare Flask app (``import flask; flask.Flask("x")``),
each in a fresh interpreter, alternating, several runs; the median of each, their ratio and
the machine's load average. Optionally (``--importtime``) the heaviest packages of
``python -X importtime`` for the portal's import.

    .venv/bin/python bench/startup.py                # 7 runs of each
    .venv/bin/python bench/startup.py --runs 11 --importtime
    .venv/bin/python bench/startup.py --source /tmp/old  # also an older checkout's package

``--source DIR`` also measures the ``review_portal`` package of another checkout (``git
archive <commit> review_portal | tar -x -C DIR``) in the same run, to compare before/after.

CPU is the child's user + system time (``resource.getrusage(RUSAGE_CHILDREN)``), so waiting
for the disk or for a busy machine's other processes does not count; a busy machine still
slows every run a little (shared caches), which is why both are measured in the same run.
The portal reads its configuration from the environment as a deployment would; without a
``DATABASE_URL`` this makes a scratch SQLite database and migrates it first (``flask db
upgrade``), so the start-up check of the rubrics reads the database as in production.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PORTAL = "import review_portal.wsgi"
BARE = "import flask; app = flask.Flask('x')"


def from_source(code: str, source: str) -> str:
    """``code`` importing ``review_portal`` from the checkout ``source`` (ahead of the
    editable install's finder)."""
    return (
        "import sys; sys.meta_path[:] = [f for f in sys.meta_path "
        f"if 'editable' not in repr(f)]; sys.path.insert(0, {source!r}); {code}"
    )


def cpu_of(code: str, env: dict) -> float:
    """Seconds of CPU (user + system) of ``python -c code`` in a fresh interpreter."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def importtime(env: dict, top: int) -> list[tuple[str, float]]:
    """The ``top`` packages by their own import time (ms, summed over their modules)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", PORTAL],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    own: Counter[str] = Counter()
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if match:
            own[match[2].split(".")[0]] += int(match[1]) / 1000
    return own.most_common(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each (default 7)")
    parser.add_argument("--importtime", action="store_true", help="also the heaviest imports")
    parser.add_argument("--top", type=int, default=15, help="packages listed (default 15)")
    parser.add_argument("--source", help="also measure review_portal of this checkout")
    args = parser.parse_args()

    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as scratch:
        if "DATABASE_URL" not in env:
            env["DATABASE_URL"] = f"sqlite:///{scratch}/startup.db"
            flask = [sys.executable, "-m", "flask", "--app", "review_portal.wsgi"]
            subprocess.run(
                [*flask, "db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True
            )
        # One run of each first: byte-code compiled and files in the page cache.
        cpu_of(PORTAL, env)
        cpu_of(BARE, env)
        load_before = os.getloadavg()
        other = from_source(PORTAL, args.source) if args.source else None
        if other:
            cpu_of(other, env)
        portal, bare, older = [], [], []
        for _ in range(args.runs):
            portal.append(cpu_of(PORTAL, env))
            bare.append(cpu_of(BARE, env))
            if other:
                older.append(cpu_of(other, env))
        load_after = os.getloadavg()
        heaviest = importtime(env, args.top) if args.importtime else []

    p, b = statistics.median(portal), statistics.median(bare)
    print(f"runs: {args.runs} of each, alternating; CPU = user + system of the child")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in load_before)}")
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in load_after)}")
    print(f"bare Flask app ({BARE}):")
    print(
        f"  median {b * 1000:.0f} ms CPU (min {min(bare) * 1000:.0f}, max {max(bare) * 1000:.0f})"
    )
    print(f"portal ({PORTAL}):")
    print(
        f"  median {p * 1000:.0f} ms CPU (min {min(portal) * 1000:.0f}, "
        f"max {max(portal) * 1000:.0f})"
    )
    print(f"ratio portal / bare Flask: {p / b:.2f}x (target <= 3x)")
    if older:
        o = statistics.median(older)
        print(f"portal of {args.source}:")
        print(
            f"  median {o * 1000:.0f} ms CPU (min {min(older) * 1000:.0f}, "
            f"max {max(older) * 1000:.0f})"
        )
        print(f"ratio {args.source} / bare Flask: {o / b:.2f}x")
    if heaviest:
        print("heaviest packages of the portal's import (own import time, one run):")
        for name, ms in heaviest:
            print(f"  {ms:8.1f} ms  {name}")


if __name__ == "__main__":
    main()
