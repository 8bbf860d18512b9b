"""Server CPU per request of the portal's pages under gunicorn, against a bare Flask hello
world under the same gunicorn in the same run (a benchmark, not a test: never run by
``make test`` or pytest).

    .venv/bin/python bench/pages.py          # ~4 minutes: seeding ~2.5, measuring ~1
    # options: --seconds S (3: each page per round), --rounds N (3), --programs N (100),
    #          --experts N (200), --scale N (10: the small database is 1/N of the large),
    #          --municipalities N (300: the region's municipalities, topped up after the season),
    #          --seed N (1), --server postgresql://postgres@127.0.0.1:5432,
    #          --database NAME (pages_bench), --small-database NAME (pages_bench_small),
    #          --redis redis://127.0.0.1:6379/9, --reuse (measure the databases of an earlier
    #          run again), --profile PAGE (cProfile of PAGE in-process instead, see below)

1. Two PostgreSQL databases of its own are dropped, created, migrated and seeded exactly as
   ``bench/load.py`` seeds its two (``seed_database``: a simulated season through the
   services, then programs in review with accepted assignments); the region then gets
   empty municipalities up to ``--municipalities`` (the registry's filter lists them all,
   as a real region's 300 would be).
2. SQL statements per page on both databases (``load.count_statements``: the second of two
   identical requests in-process): a count larger on the large database fails the run.
3. Two gunicorn servers, each ``--workers 1 --worker-class sync`` (no ``--preload``: the
   deployed command has none): the portal (``REVIEW_PORTAL_CONFIG=production``, the client
   playing the TLS proxy as in ``bench/load.py``) and ``bench/hello_wsgi.py``. One client
   requests each page back to back for ``--seconds`` in every one of ``--rounds`` rounds
   (the hello world first in each round, so its figure shares the machine's load with the
   pages'); before and after each, the worker's user + system CPU is read from
   ``/proc/<worker pid>/stat``. CPU ms per request = the worker's CPU / requests; the
   ratio = the hello world's CPU ms / the page's (the issue's 0.93 / 32.5 = 0.029×; the
   target is ≥ 0.15×). Medians over the rounds. The PostgreSQL backends' CPU per request
   is shown beside it (not part of the ratio). Pages: ``GET /registry``, ``GET /expert``,
   ``GET /sheets/<id>``, ``POST /sheets/<id>/autosave`` (each save from the revision the
   previous one returned), ``GET /coordinator``, ``GET /verify/<number>``.

``--profile PAGE`` (``registry``, ``expert``, ``sheet``, ``autosave``, ``coordinator``,
``verify``) profiles that page with cProfile through the Flask test client in this process
on the large database (production configuration, ``--reuse`` implied) and prints the top
functions by cumulative and by own time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import os
import pstats
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import load  # noqa: E402  (bench/load.py: seeding, servers, the client)

HOST = load.HOST
PAGES = ("registry", "expert", "sheet", "autosave", "coordinator", "verify")
LABELS = {
    "hello": "GET / (hello world)",
    "registry": "GET /registry",
    "expert": "GET /expert",
    "sheet": "GET /sheets/<id>",
    "autosave": "POST /sheets/<id>/autosave",
    "coordinator": "GET /coordinator",
    "verify": "GET /verify/<number>",
}
TICK = os.sysconf("SC_CLK_TCK")


def top_up_municipalities(url: str, storage: str, count: int) -> int:
    """Add municipalities (names of ``bench/registry.py``) until the region has ``count``."""
    from registry import municipality_names
    from sqlalchemy import func, select

    from review_portal.extensions import db
    from review_portal.organizations.models import Municipality

    app = load.portal_app(url, storage)
    with app.app_context():
        have = set(db.session.execute(select(Municipality.name)).scalars())
        names = municipality_names(min(count, 300))
        for name in names + [f"муниципальный округ № {i}" for i in range(1, count + 1)]:
            if len(have) >= count:
                break
            if name not in have:
                db.session.add(Municipality(name=name))
                have.add(name)
        db.session.commit()
        total = db.session.execute(select(func.count()).select_from(Municipality)).scalar()
        db.engine.dispose()
    return total


def seed_one(label, url, storage, programs, experts, extra, seed, reuse, municipalities) -> dict:
    seeded = load.seed_database(label, url, storage, programs, experts, extra, seed, reuse)
    seeded["sizes"]["municipalities"] = top_up_municipalities(url, storage, municipalities)
    return seeded


def use_tree(tree: str) -> None:
    """A child process's initializer: import the portal from ``tree``."""
    sys.path.insert(0, tree)


def worker_cpu(server: load.Server) -> float:
    """User + system CPU seconds of the server's (one) worker so far."""
    children = load.children_of(server.process.pid)
    if len(children) != 1:
        raise RuntimeError(f"expected one gunicorn worker, found {children}")
    fields = Path(f"/proc/{children[0]}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class Portal:
    """The client's side of the measured pages: a logged-in expert, a logged-in
    coordinator and an anonymous visitor, each with its own cookies."""

    def __init__(self, server: load.Server, seeded: dict, seed: int) -> None:
        stats = load.Stats()
        self.stats = stats
        subject = seeded["subject"]
        self.expert = load.Expert(
            subject["email"], [subject["assignment"]], load.Browser(server.base, stats, True), seed
        )
        self.coordinator = load.Browser(server.base, stats, True)
        self.coordinator_email = seeded["coordinator"]
        self.anonymous = load.Browser(server.base, stats, True)
        self.number = seeded["numbers"][0]

    async def login(self) -> None:
        if not await self.expert.login():
            raise RuntimeError(f"the expert's login failed: {self.stats.samples}")
        page = await self.coordinator.request("GET /login", "GET", "/login")
        answer = await self.coordinator.request(
            "POST /login",
            "POST",
            "/login",
            data={
                "csrf_token": load.csrf_of(page.text),
                "email": self.coordinator_email,
                "password": load.PASSWORD,
            },
            expect=(302,),
            referer="/login",
        )
        if answer is None:
            raise RuntimeError(f"the coordinator's login failed: {self.stats.samples}")

    async def resync(self) -> None:
        """Take the sheet's revision from its page: another tree's server (``--compare``)
        saves the same sheet in between."""
        sheet = self.expert.sheets[0]
        page = await self.expert.browser.request("sheet", "GET", f"/sheets/{sheet.assignment_id}")
        tag = load._REVISION.search(page.text).group(0)
        sheet.revision = int(load._VALUE.search(tag).group(1))
        self.expert.csrf = load.csrf_of(page.text)

    async def one(self, page: str) -> bool:
        sheet = self.expert.sheets[0]
        if page == "registry":
            answer = await self.anonymous.request("registry", "GET", "/registry")
        elif page == "expert":
            answer = await self.expert.browser.request("expert", "GET", "/expert")
        elif page == "sheet":
            answer = await self.expert.browser.request(
                "sheet", "GET", f"/sheets/{sheet.assignment_id}"
            )
        elif page == "autosave":
            return await self.expert.autosave(sheet)
        elif page == "coordinator":
            answer = await self.coordinator.request("coordinator", "GET", "/coordinator")
        else:
            answer = await self.anonymous.request("verify", "GET", f"/verify/{self.number}")
        return answer is not None

    async def close(self) -> None:
        for browser in (self.expert.browser, self.coordinator, self.anonymous):
            await browser.close()


async def hello_one(client) -> bool:
    return (await client.get("/")).status_code == 200


async def measure(server: load.Server, seconds: float, call) -> tuple[int, float, float]:
    """Requests, worker CPU seconds and PostgreSQL backends' CPU seconds of ``call()`` run
    back to back for ``seconds``."""
    for _warm in range(3):
        await call()
    cpu, pg = worker_cpu(server), server.postgres_cpu_seconds()
    deadline = time.perf_counter() + seconds
    requests = 0
    while time.perf_counter() < deadline:
        if not await call():
            raise RuntimeError("a request failed")  # run_rounds says which
        requests += 1
    return requests, worker_cpu(server) - cpu, server.postgres_cpu_seconds() - pg


async def run_rounds(args, servers: dict[str, load.Server], hello_server, seeded) -> dict:
    """``servers``: the portal's servers by tree label (this tree, ``--compare``'s)."""
    portals = {label: Portal(server, seeded, args.seed) for label, server in servers.items()}
    for portal in portals.values():
        await portal.login()
    import httpx

    hello = httpx.AsyncClient(base_url=hello_server.base, timeout=load.TIMEOUT)
    cases = [("", "hello")] + [(label, name) for name in PAGES for label in servers]
    results: dict[tuple[str, str], list[dict]] = {case: [] for case in cases}
    try:
        for round_number in range(args.rounds):
            for label, name in cases:
                if name == "hello":
                    n, cpu, pg = await measure(hello_server, args.seconds, lambda: hello_one(hello))
                else:
                    portal = portals[label]
                    if name == "autosave":
                        await portal.resync()
                    n, cpu, pg = await measure(
                        servers[label], args.seconds, lambda p=portal, n=name: p.one(n)
                    )
                results[(label, name)].append(
                    {"requests": n, "cpu_ms": cpu * 1000 / n, "pg_ms": pg * 1000 / n}
                )
            print(f"round {round_number + 1}: load average {load_average()}", flush=True)
    except RuntimeError:
        for portal in portals.values():
            print("\n".join(portal.stats.samples), file=sys.stderr)
        raise
    finally:
        for portal in portals.values():
            await portal.close()
        await hello.aclose()
    for portal in portals.values():
        if portal.stats.errors:
            raise RuntimeError(f"errors: {portal.stats.samples}")
    return results


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def gunicorn(app: str, chdir: Path, port: int) -> list[str]:
    return [
        str(Path(sys.executable).with_name("gunicorn")),
        "--workers", "1", "--worker-class", "sync", "--bind", f"{HOST}:{port}",
        "--chdir", str(chdir), "--timeout", "60", "--log-level", "warning", app,
    ]  # fmt: skip


def report(results: dict) -> dict:
    hello_ms = statistics.median(r["cpu_ms"] for r in results[("", "hello")])
    print(
        f"\n== server CPU per request (one sync worker; median of "
        f"{len(results[('', 'hello')])} rounds); ratio = hello world's CPU ms / the page's "
        f"(target ≥ 0.15×); PG ms: the PostgreSQL backends' CPU per request"
    )
    print(f"  {'request':<30} {'tree':<8} {'requests':>8} {'CPU ms':>8} {'ratio':>7} {'rounds (CPU ms)':>24} {'PG ms':>6}")  # fmt: skip
    summary = {}
    for (label, name), rows in results.items():
        cpu = statistics.median(r["cpu_ms"] for r in rows)
        pg = statistics.median(r["pg_ms"] for r in rows)
        ratio = hello_ms / cpu
        each = " ".join(f"{r['cpu_ms']:.2f}" for r in rows)
        print(
            f"  {LABELS[name]:<30} {label:<8} {sum(r['requests'] for r in rows):>8} "
            f"{cpu:>8.2f} {ratio:>6.3f}× {each:>24} {pg:>6.2f}"
        )
        key = f"{name} ({label})" if label and label != "this" else name
        summary[key] = {"cpu_ms": round(cpu, 3), "ratio": round(ratio, 4), "pg_ms": round(pg, 3)}
    return summary


def profile(args, seeded_url: str, storage: str) -> None:
    """cProfile of one page through the test client, in this process."""
    from review_portal import create_app

    os.environ.setdefault("DATABASE_URL", seeded_url)
    os.environ.setdefault("PUBLIC_URL", f"https://{HOST}:8000")
    os.environ.setdefault("SECRET_KEY", secrets.token_hex(32))
    os.environ.setdefault("AUDIT_ANCHOR_KEY", secrets.token_hex(32))
    app = create_app(
        "production",
        SQLALCHEMY_DATABASE_URI=seeded_url,
        # The configuration classes read the environment when they are imported (above).
        PUBLIC_URL=os.environ["PUBLIC_URL"],
        STORAGE_DIR=storage,
        RATELIMIT_STORAGE_URI=args.redis,
        WTF_CSRF_ENABLED=False,
    )
    info = json.loads(Path(storage, "pages-bench.json").read_text())
    client = app.test_client()
    headers = {"X-Forwarded-Proto": "https"}
    page = args.profile
    if page in ("expert", "sheet", "autosave", "coordinator"):
        who = info["coordinator"] if page == "coordinator" else info["subject"]["email"]
        answer = client.post(
            "/login", data={"email": who, "password": load.PASSWORD}, headers=headers
        )
        assert answer.status_code == 302, answer.status_code
    sheet = info["subject"]["assignment"]
    revision = {"n": None}

    def call():
        if page == "autosave":
            if revision["n"] is None:
                text = client.get(f"/sheets/{sheet}", headers=headers).get_data(as_text=True)
                revision["n"] = int(
                    load._VALUE.search(load._REVISION.search(text).group(0)).group(1)
                )
            answer = client.post(
                f"/sheets/{sheet}/autosave",
                json={"revision": revision["n"], "scores": {}, "comments": {},
                      "recommendations": f"r{revision['n']}", "confirmed": False},
                headers={**headers, "Accept": "application/json"},
            )  # fmt: skip
            revision["n"] = answer.get_json()["revision"]
        else:
            url = {
                "registry": "/registry",
                "expert": "/expert",
                "sheet": f"/sheets/{sheet}",
                "coordinator": "/coordinator",
                "verify": f"/verify/{info['numbers'][0]}",
            }[page]
            answer = client.get(url, headers=headers)
        assert answer.status_code == 200, (page, answer.status_code)

    for _warm in range(5):
        call()
    n = args.profile_requests
    started = time.process_time()
    for _ in range(n):
        call()
    plain = (time.process_time() - started) * 1000 / n
    # CPU time, not wall time: waiting for the database is not the server's CPU.
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for _ in range(n):
        call()
    profiler.disable()
    print(f"{page}: {plain:.2f} ms CPU per request in-process without the profiler ({n} requests)")
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(30)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--programs", type=int, default=100)
    parser.add_argument("--experts", type=int, default=200)
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--municipalities", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="pages_bench")
    parser.add_argument("--small-database", default="pages_bench_small")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument(
        "--compare",
        metavar="TREE",
        help="also measure the portal of another checkout (its review_portal/, translations "
        "compiled) in the same rounds: before/after figures of one run",
    )
    parser.add_argument("--profile", choices=PAGES)
    parser.add_argument("--profile-requests", type=int, default=100)
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= 60 or not 1 <= args.rounds <= 20:
        parser.error("--seconds in (0, 60], --rounds in [1, 20]")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    print(
        f"{load.CPUS} CPU cores, load average {load_average()} at start; Python "
        f"{sys.version.split()[0]}; gunicorn --workers 1 --worker-class sync",
        flush=True,
    )
    names = {"large": args.database, "small": args.small_database}
    storages = {k: str(Path(tempfile.gettempdir()) / f"{v}-storage") for k, v in names.items()}
    if args.profile:
        profile(args, f"{args.server}/{args.database}", storages["large"])
        return 0
    if args.reuse:
        urls = {k: f"{args.server}/{v}" for k, v in names.items()}
    else:
        urls = {k: load.recreate_database(args.server, v) for k, v in names.items()}
        for path in storages.values():
            shutil.rmtree(path, ignore_errors=True)
    plans = {
        "large": (urls["large"], args.programs, args.experts, 2),
        "small": (
            urls["small"],
            max(10, args.programs // args.scale),
            max(20, args.experts // args.scale),
            2,
        ),
    }
    started = time.perf_counter()
    saved = {label: Path(storages[label], "pages-bench.json") for label in names}
    if args.reuse and all(path.exists() for path in saved.values()):
        # The earlier run's seeding as it was: the same data measured again.
        seeded = {label: json.loads(path.read_text()) for label, path in saved.items()}
    else:
        with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
            futures = {
                label: pool.submit(
                    seed_one,
                    label,
                    url,
                    storages[label],
                    programs,
                    experts,
                    extra,
                    args.seed,
                    args.reuse,
                    args.municipalities,
                )  # fmt: skip
                for label, (url, programs, experts, extra) in plans.items()
            }
            seeded = {label: future.result() for label, future in futures.items()}
        for label, path in saved.items():
            path.write_text(json.dumps(seeded[label]))
        print(f"seeded in {time.perf_counter() - started:.0f} s", flush=True)
    large = seeded["large"]

    sizes = "; ".join(
        f"{label}: " + ", ".join(f"{v} {k}" for k, v in seeded[label]["sizes"].items())
        for label in ("small", "large")
    )
    growing = 0
    for tree in ([args.compare] if args.compare else []) + [str(ROOT)]:
        # In a child importing that tree's portal (the statements differ between versions).
        with ProcessPoolExecutor(
            max_workers=1,
            mp_context=get_context("spawn"),
            initializer=use_tree,
            initargs=(str(Path(tree).resolve()),),
        ) as pool:
            counts = {
                label: pool.submit(load.count_statements, seeded[label], storages[label]).result()
                for label in seeded
            }
        print(f"\n{tree}:", end="")
        grows = load.print_counts(counts["small"], counts["large"], sizes)
        if tree == str(ROOT):
            growing = grows

    with tempfile.TemporaryDirectory(prefix="pages-bench-") as tmp:
        hello_port, portal_port = load.free_port(HOST), load.free_port(HOST)
        hello = load.start_server(
            gunicorn("hello_wsgi:app", ROOT / "bench", hello_port),
            dict(os.environ), Path(tmp, "hello.log"), hello_port, "/",
        )  # fmt: skip
        env = dict(os.environ)
        env.update(
            REVIEW_PORTAL_CONFIG="production",
            SECRET_KEY=secrets.token_hex(32),
            AUDIT_ANCHOR_KEY=secrets.token_hex(32),
            DATABASE_URL=urls["large"],
            STORAGE_DIR=storages["large"],
            RATELIMIT_STORAGE_URI=args.redis,
            PUBLIC_URL=f"https://{HOST}:{portal_port}",
        )
        trees = {"this": ROOT}
        if args.compare:
            trees = {"compare": Path(args.compare).resolve(), "this": ROOT}
        servers: dict[str, load.Server] = {}
        logs = []
        try:
            for label, tree in trees.items():
                port = portal_port if label == "this" else load.free_port(HOST)
                env["PUBLIC_URL"] = f"https://{HOST}:{port}"
                logs.append(Path(tmp, f"portal-{label}.log"))
                servers[label] = load.start_server(
                    gunicorn("review_portal.wsgi:app", tree, port), dict(env), logs[-1], port,
                    "/healthz",
                )  # fmt: skip
                servers[label].database = args.database
            results = asyncio.run(run_rounds(args, servers, hello, large))
        finally:
            for server in servers.values():
                server.stop()
            hello.stop()
        tracebacks = sum(log.read_text().count("Traceback (most recent call last)") for log in logs)
    summary = report(results)
    print(f"load average at the end {load_average()}; portal log tracebacks = {tracebacks}")
    print(json.dumps({"pages": summary, "growing_statement_counts": growing}))
    return 1 if growing or tracebacks else 0


if __name__ == "__main__":
    sys.exit(main())
