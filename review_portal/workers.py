"""The processes that render conclusions for a bulk run, each with its own application.

:mod:`review_portal.conclusions.bulk` renders PDFs in a pool of processes started with the
``spawn`` method: a process inherits nothing of the parent, so it builds its own application
with the same configuration (:func:`worker_overrides`) and runs each task in an application
context of it. Building an application means calling the factory, which no domain package may
import; this module is therefore an orchestrator (see ``tests/test_import_graph.py``), and
the factory hands :func:`open_render_pool` to conclusions as
``app.extensions[RENDER_POOL]``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from flask import Flask, current_app

from review_portal import create_app

log = logging.getLogger(__name__)

#: Seconds to wait for the rendering processes to start (import, application, fonts).
START_TIMEOUT = 120

#: The application of this rendering process (set by :func:`_init_worker`).
_worker_app: Flask | None = None


#: What a rendering process renders once at start, outside any transaction of the parent:
#: WeasyPrint, the stylesheet and the conclusions' fonts (regular and bold) load here, not
#: in the first batch, whose transaction holds the year's counter meanwhile.
WARM_UP_HTML = (
    '<html lang="ru"><head><link rel="stylesheet" href="portal-asset:conclusion.css">'
    "</head><body><h1>Заключение</h1><p>Проверка <b>шрифтов</b></p></body></html>"
)


def _init_worker(config_name: str, overrides: dict, ready) -> None:
    global _worker_app
    _worker_app = create_app(config_name, **overrides)
    from review_portal.conclusions.render import RenderError, render_html_bare

    with _worker_app.app_context():
        try:
            render_html_bare(WARM_UP_HTML)
        except RenderError as error:  # the real renders will say what is wrong
            log.warning("rendering process could not warm up: %s", error)
    ready.put(os.getpid())


def _in_app_context(function, /, *args, **kwargs):
    with _worker_app.app_context():
        return function(*args, **kwargs)


class AppProcessPool(ProcessPoolExecutor):
    """A process pool whose every task runs in an application context of its process."""

    def submit(self, fn, /, *args, **kwargs):
        return super().submit(_in_app_context, fn, *args, **kwargs)


def _config_name(app: Flask) -> str:
    if app.config.get("PRODUCTION"):
        return "production"
    if app.config.get("TESTING"):
        return "testing"
    return "development"


def worker_overrides(app: Flask) -> dict:
    """The settings a rendering process must share with this application."""
    overrides = {
        "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
        "STORAGE_DIR": app.config["STORAGE_DIR"],
    }
    if app.config.get("RUBRIC_DIR"):
        overrides["RUBRIC_DIR"] = str(app.config["RUBRIC_DIR"])
    return overrides


def open_render_pool(workers: int) -> Executor | None:
    """``workers`` rendering processes of the current application, started and ready;
    ``None`` (render here) when they cannot start."""
    app = current_app._get_current_object()
    context = multiprocessing.get_context("spawn")
    ready = context.Queue()
    pool = AppProcessPool(
        max_workers=workers,
        mp_context=context,
        initializer=_init_worker,
        initargs=(_config_name(app), worker_overrides(app), ready),
    )
    try:
        # Each submission while no process is idle starts one more process.
        started = [pool.submit(os.getpid) for _ in range(workers)]
        for _ in range(workers):
            ready.get(timeout=START_TIMEOUT)
        for future in started:
            future.result(timeout=START_TIMEOUT)
    except (BrokenProcessPool, queue.Empty, TimeoutError) as error:
        log.warning("rendering processes did not start (%r); rendering in this process", error)
        pool.shutdown(wait=False, cancel_futures=True)
        return None
    finally:
        ready.close()
    return pool
