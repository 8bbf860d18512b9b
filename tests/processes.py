"""Servers and workers that a test or a benchmark starts as processes of its own.

Each runs in its own session (so its process group holds gunicorn's or Celery's children
too), with standard output and standard error appended to one log file; the caller waits
until it answers, failing with the log's tail when the process exits or the time runs out,
and stops it with SIGTERM, then SIGKILL to the whole group when it does not end in time.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

#: How much of a log a failure shows.
TAIL_CHARS = 4000


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the OS's choice)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def accepts(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def spawn(
    command: list[str], log: Path, *, env: dict | None = None, cwd: Path | str | None = None
) -> subprocess.Popen:
    """Start ``command`` in a session of its own, its stdout and stderr appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def tail(log: Path | None) -> str:
    """The end of ``log``, or nothing when there is no log (yet)."""
    return log.read_text(errors="replace")[-TAIL_CHARS:] if log and log.exists() else ""


def wait_until(
    condition: Callable[[], T],
    what: str,
    *,
    timeout: float,
    process: subprocess.Popen | None = None,
    log: Path | None = None,
) -> T:
    """Call ``condition`` until it returns something true, and return that; fail (an
    AssertionError with the log's tail) when ``process`` exits first or ``timeout`` seconds
    pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: the process exited\n{tail(log)}")
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout} s\n{tail(log)}")
        time.sleep(0.1)


def stop(process: subprocess.Popen, timeout: float = 15, *, whole_group: bool = False) -> None:
    """End a process started by ``spawn``: SIGTERM (its own graceful shutdown; to every
    process of its group with ``whole_group``), then after ``timeout`` seconds SIGKILL to its
    whole process group (children included)."""
    if process.poll() is None:
        if whole_group:
            os.killpg(process.pid, signal.SIGTERM)
        else:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def kill_job_midway(
    database_url: str,
    job_id: int,
    *,
    at_least: int,
    process: subprocess.Popen,
    timeout: float,
    log: Path | None = None,
) -> int:
    """SIGKILL ``process``'s whole group once job ``job_id`` has ``at_least`` units done,
    with the job held still between the look and the kill; the units done then.

    Each look writes the job's row in a transaction of its own (a row lock on PostgreSQL,
    the database's write lock on SQLite) and reads ``done`` in it; every unit the job
    commits updates that row, so while the look holds it the job cannot commit another unit
    — a slow or descheduled test can no longer see the job finish before the kill lands."""
    from sqlalchemy import create_engine, select, update

    from review_portal.jobs.models import Job

    jobs = Job.__table__
    sqlite = database_url.startswith("sqlite")
    engine = create_engine(database_url, connect_args={"timeout": 60} if sqlite else {})
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as connection:
                transaction = connection.begin()
                connection.execute(update(jobs).where(jobs.c.id == job_id).values(done=jobs.c.done))
                done = connection.execute(select(jobs.c.done).where(jobs.c.id == job_id)).scalar()
                if done >= at_least:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=30)
                    transaction.rollback()
                    return done
                transaction.rollback()
            if process.poll() is not None:
                raise AssertionError(f"the job's process exited first\n{tail(log)}")
            if time.monotonic() >= deadline:
                raise AssertionError(f"the job made no progress in {timeout} s\n{tail(log)}")
            time.sleep(0.05)
    finally:
        engine.dispose()
