"""Command-line commands: ``seed-demo``, ``audit-verify``, ``audit-anchor``, ``send-reminders``,
``close-discussions``, ``send-digest``, ``send-mail`` (alias ``deliver-outbox``), ``create-user``, ``run-job``,
``sweep-jobs``, ``simulate``, ``worker``, ``beat``, ``rebuild-agreement``,
``storage-cleanup``."""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from review_portal.extensions import db
from review_portal.unit_of_work import unit_of_work


def register(app: Flask) -> None:
    app.cli.add_command(seed_demo)
    app.cli.add_command(audit_verify)
    app.cli.add_command(audit_anchor)
    app.cli.add_command(send_reminders)
    app.cli.add_command(close_discussions)
    app.cli.add_command(send_digest)
    app.cli.add_command(registry_validity)
    app.cli.add_command(registry_exports)
    app.cli.add_command(send_mail)
    # The earlier name of send-mail, kept for scripts and the README.
    app.cli.add_command(send_mail, "deliver-outbox")
    app.cli.add_command(create_user)
    app.cli.add_command(run_job)
    app.cli.add_command(sweep_jobs)
    app.cli.add_command(simulate)
    app.cli.add_command(worker)
    app.cli.add_command(beat)
    app.cli.add_command(rebuild_agreement)
    app.cli.add_command(storage_cleanup)


#: Seed of the season ``seed-demo --season N`` simulates in the demo region.
DEMO_SEASON_SEED = 2026

#: What the progress bar of ``seed-demo`` calls each phase of a season.
PHASE_LABELS = {
    "region": "providers and experts",
    "programs": "programs written and submitted",
    "screening": "screening",
    "expertise": "experts at work",
    "decisions": "decisions and conclusions",
    "appeals": "appeals filed, re-scored and decided",
    "revision": "revised programs reviewed again",
    "registry": "registry published",
    "validity": "entries reach their end date: renewed or expired",
}


class SeasonBar:
    """A progress bar on standard error over the phases of a season, each weighted by its
    share of the time (``simulation.season.PHASES``); its label names the phase under way.
    Where standard error is no terminal, click writes each new label as a line instead of
    drawing, and the season's own lines are written as they come; on a terminal they wait
    until the bar is finished, so as not to break it."""

    #: Steps of the bar per percent of the season.
    RESOLUTION = 10

    def __init__(self, programs: int, file=None) -> None:
        from review_portal.simulation.season import PHASES

        self.file = file or sys.stderr
        self.weights = PHASES
        self.bar = click.progressbar(
            length=sum(PHASES.values()) * self.RESOLUTION,
            label=f"Season of {programs} programs",
            file=self.file,
            show_eta=False,
            show_percent=True,
            width=30,
        )
        self.position = 0
        self.lines: list[str] = []
        self.drawn = self.file.isatty()

    def __enter__(self) -> SeasonBar:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        self.bar.__exit__(*exc_info)
        for line in self.lines:
            click.echo(f"  {line}")
        self.lines.clear()

    def echo(self, line: str) -> None:
        if self.drawn:
            self.lines.append(line)
        else:
            click.echo(f"  {line}")

    def progress(self, phase: str, done: int, total: int) -> None:
        """``done`` of ``total`` steps of ``phase`` are behind: move the bar (never back)."""
        before = 0
        for name, weight in self.weights.items():
            if name == phase:
                break
            before += weight
        share = min(1.0, done / total) if total else 1.0
        position = round((before + self.weights.get(phase, 0) * share) * self.RESOLUTION)
        label = f"Season: {PHASE_LABELS.get(phase, phase)}"
        if label != self.bar.label and position >= self.position:
            self.bar.label = label
        if position > self.position:
            self.bar.update(position - self.position)
            self.position = position
        else:
            self.bar.render_progress()


@contextmanager
def quiet_log(verbose: bool):
    """The log's INFO lines held back (WARNING and above still shown) unless ``verbose``:
    a seeded season logs hundreds of them, which would break its progress bar."""
    root = logging.getLogger()
    level = root.level
    if not verbose and root.getEffectiveLevel() < logging.WARNING:
        root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.setLevel(level)


@click.command("seed-demo")
@with_appcontext
@click.option(
    "--season",
    "season_programs",
    type=click.IntRange(0, 10_000),
    default=0,
    help="Also simulate a season of this many programs, once per season seed (make run: 12).",
)
@click.option(
    "--season-seed",
    type=int,
    default=DEMO_SEASON_SEED,
    show_default=True,
    help="The season's seed: another seed adds another season (make demo-season).",
)
@click.option("--verbose", is_flag=True, help="Keep the log's INFO lines while seeding.")
def seed_demo(season_programs: int, season_seed: int, verbose: bool) -> None:
    """Create the demo region (idempotent), and a simulated season with a progress bar on
    standard error; refuses to run under the production configuration."""
    if current_app.config.get("PRODUCTION"):
        raise click.ClickException("seed-demo refuses to run under the production configuration.")
    from review_portal.demo import DEMO_PASSWORD, seed_demo_region
    from review_portal.simulation.season import run_season, season_accounts, season_done

    with quiet_log(verbose):
        click.echo("Seeding the demo region...", err=True)
        with unit_of_work():
            accounts = seed_demo_region()
        if season_programs and not season_done(season_seed):
            click.echo(
                f"Simulating a season of {season_programs} programs (once per seed "
                f"{season_seed}; every step through the portal's services)...",
                err=True,
            )
            started = time.perf_counter()
            with SeasonBar(season_programs) as bar:
                run_season(
                    season_programs,
                    max(6, season_programs // 3),
                    season_seed,
                    echo=bar.echo,
                    progress=bar.progress,
                )
            click.echo(f"Season simulated in {time.perf_counter() - started:.0f} s.", err=True)
    for seed in sorted({DEMO_SEASON_SEED, season_seed}):
        if season_done(seed):
            accounts += [(role, email, DEMO_PASSWORD) for role, email in season_accounts(seed)]
    click.echo("Demo region is ready. Demo accounts (role, e-mail, password):")
    seen = set()
    for role, email, password in accounts:
        if email not in seen:
            seen.add(email)
            click.echo(f"  {role:<12} {email:<40} {password}")


@click.command("audit-verify")
def audit_verify() -> None:
    """Verify the audit log: every record, the chain's links and head, and every signed
    anchor; exit 1 naming the first record that cannot be trusted."""
    from review_portal.audit.verification import ANCHOR_CODES, verify_chain

    report = verify_chain()
    last = report.last_anchor
    anchors = f"{report.anchors} signed anchors match" + (
        f" (the last at position {last.position}, {last.anchored_at:%Y-%m-%d %H:%M} UTC, "
        f"{last.label})"
        if last
        else ""
    )
    if report.ok:
        click.echo(
            f"Audit chain intact: {report.checked} records checked "
            f"({report.pending} not linked yet); {anchors}."
        )
        return
    where = (
        f"record {report.first_broken_id}"
        if report.first_broken_id is not None
        else "the end of the log"
    )
    click.echo(
        f"Audit chain BROKEN at {where}"
        + (f" (position {report.position})" if report.position else "")
        + f": {report.problem} ({report.checked} records before it are intact).",
        err=True,
    )
    if report.code in ANCHOR_CODES:
        click.echo(
            f"The anchor that does not match: {report.bad_anchor.label} at position "
            f"{report.bad_anchor.position}; {anchors}: the record named is the first after it.",
            err=True,
        )
    sys.exit(1)


@click.command("audit-anchor")
@click.option("--reason", default="command", show_default=True, help="Kept with the anchor.")
def audit_anchor(reason: str) -> None:
    """Link the queued audit records and sign the chain's head (the daily job does it; run
    it from cron once a day when there is no Celery worker)."""
    from review_portal.audit.services import anchor_chain

    anchor, linked = anchor_chain(reason)
    click.echo(
        f"Anchor {anchor.id}: position {anchor.position}, link {anchor.link}, "
        f"signature {anchor.signature} ({linked} records linked now)."
    )


@click.command("send-reminders")
def send_reminders() -> None:
    """Queue today's deadline reminders and overdue notices (safe to run every hour)."""
    from review_portal.assignment.reminders import send_reminders as run
    from review_portal.assignment.services import local_today

    with unit_of_work():
        counts = run(local_today())
    click.echo(
        f"Reminders: {counts['reminders']}; overdue notices: {counts['overdue']}; "
        f"coordinator digests: {counts['digests']}."
    )


@click.command("send-digest")
def send_digest() -> None:
    """Queue the staff's daily digests due (from 8:00 in the center; safe to run hourly)."""
    from review_portal.main.digest import send_digests

    with unit_of_work():
        sent = send_digests()
    click.echo(f"Daily digests: {sent}.")


@click.command("registry-validity")
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="The day to act as of (YYYY-MM-DD); default: today in the center's time zone.",
)
def registry_validity(today) -> None:
    """Remind providers of registry entries ending in 90 and 30 days and make the entries
    whose end date passed pending removals (safe to run hourly: nothing happens twice)."""
    from review_portal.assignment.services import local_today
    from review_portal.registry.validity import send_validity_notices

    with unit_of_work():
        counts = send_validity_notices(today.date() if today else local_today())
    click.echo(f"Reminders: {counts['reminders']}; expired entries: {counts['expired']}.")


@click.command("registry-exports")
def registry_exports() -> None:
    """Build the whole-registry XLSX of each kind's latest publication where it is missing
    (after an upgrade that changed the file's layout; safe to run again)."""
    from review_portal.enums import RegistryKind
    from review_portal.registry.exports import build_snapshot_xlsx
    from review_portal.registry.queries import latest_snapshot

    built = 0
    for kind in RegistryKind:
        snapshot = latest_snapshot(kind)
        if snapshot is not None:
            built += len(build_snapshot_xlsx(snapshot, missing_only=True))
    click.echo(f"Registry XLSX files built: {built}.")


@click.command("close-discussions")
def close_discussions() -> None:
    """Send reviews whose discussion deadline has passed to a third expert (run hourly)."""
    from review_portal.reconciliation.services import close_expired_discussions

    with unit_of_work():
        handled = close_expired_discussions()
    click.echo(f"Discussions closed: {len(handled)}.")


@click.command("send-mail")
@click.option("--limit", type=int, default=None, help="Send at most this many messages.")
def send_mail(limit: int | None) -> None:
    """Send the e-mail messages that are due (SMTP, or the log without SMTP_HOST)."""
    from review_portal.notifications.services import MailConfigurationError, deliver_outbox

    try:
        report = deliver_outbox(limit)
    except MailConfigurationError as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"Sent: {report.sent}; to retry: {report.retrying}; failed: {report.failed}."
        + (" The mail server could not be reached." if report.unreachable else "")
    )


@click.command("create-user")
@click.option("--email", required=True)
@click.option("--name", "full_name", required=True)
@click.option("--role", "roles", multiple=True, required=True)
@click.password_option()
def create_user(email: str, full_name: str, roles: tuple[str, ...], password: str) -> None:
    """Create an approved user with the given roles (e.g. the first administrator)."""
    from review_portal.accounts.services import create_approved_user
    from review_portal.enums import Role

    with unit_of_work():
        user = create_approved_user(email, password, full_name, [Role(r) for r in roles])
    click.echo(f"Created user {user.id} <{user.email}>.")


@click.command("run-job")
@click.argument("job_id", type=int)
def run_job(job_id: int) -> None:
    """Run a background job in the foreground, resume one that was interrupted, or run
    again one that failed."""
    from review_portal.jobs.models import JobStatus
    from review_portal.jobs.services import JobError
    from review_portal.jobs.services import run_job as run

    try:
        job = run(job_id, retry_failed=True)
    except JobError as error:
        raise click.ClickException(str(error)) from None
    if job.active:  # its lock is held: another process runs it now
        click.echo(f"Job {job.id} ({job.kind}) is being run by another process; nothing done.")
        return
    click.echo(
        f"Job {job.id} ({job.kind}): {job.status.value}; {job.done} of {job.total} processed; "
        f"not done: {len(job.failed_items or [])}." + (f" Error: {job.error}" if job.error else "")
    )
    if job.status == JobStatus.FAILED:
        sys.exit(1)


@click.command("sweep-jobs")
@click.option(
    "--run",
    "run_here",
    is_flag=True,
    help="Without Celery: also run the requeued jobs here, one after the other.",
)
@with_appcontext
def sweep_jobs(run_here: bool) -> None:
    """Requeue running jobs whose worker died (no heartbeat for JOB_STALE_AFTER_SECONDS) and,
    with Celery, send them and the jobs the broker refused to the job queue (beat does this
    every JOB_SWEEP_SECONDS)."""
    from review_portal.jobs.services import run_job as run
    from review_portal.jobs.services import runner_mode
    from review_portal.jobs.sweeper import sweep_jobs as sweep

    report = sweep()
    click.echo(
        f"Requeued: {_ids(report.requeued)}; sent to the job queue: {_ids(report.sent)}; "
        f"the job queue refused: {_ids(report.unsent)}."
    )
    if report.unsent:
        sys.exit(1)
    if runner_mode(current_app) == "celery" or not report.requeued:
        return
    if not run_here:
        click.echo("Run them with: flask run-job <id> (or sweep-jobs --run).")
        return
    for job_id in report.requeued:
        job = run(job_id)
        click.echo(f"Job {job.id} ({job.kind}): {job.status.value}.")


def _ids(ids: list[int]) -> str:
    return ", ".join(map(str, ids)) or "none"


@click.command("simulate")
@with_appcontext
@click.option("--programs", type=click.IntRange(1, 100_000), default=300, show_default=True)
@click.option("--experts", type=click.IntRange(2, 20_000), default=60, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--unless-done",
    is_flag=True,
    help="Do nothing when a season with this seed has already been simulated (make run).",
)
@click.option(
    "--coordinator-expert",
    is_flag=True,
    help="The season's first expert is a coordinator too: the portal refuses them every "
    "staff action on the reviews they sit on, and a second coordinator acts there.",
)
def simulate(
    programs: int, experts: int, seed: int, unless_done: bool, coordinator_expert: bool
) -> None:
    """Run a whole season end to end through the portal's services; the last line printed
    is its summary as one JSON object. Refused under the production configuration."""
    import json

    if current_app.config.get("PRODUCTION"):
        raise click.ClickException("simulate refuses to run under the production configuration.")
    from review_portal.simulation.season import run_season, season_done

    if unless_done and season_done(seed):
        click.echo(f"A season with seed {seed} is already simulated; nothing to do.")
        return
    summary = run_season(
        programs, experts, seed, echo=click.echo, coordinator_expert=coordinator_expert
    )
    click.echo(json.dumps(summary, ensure_ascii=False, sort_keys=False))


@click.command("worker", context_settings={"ignore_unknown_options": True})
@click.option("--beat", "with_beat", is_flag=True, help="Also run the periodic schedule here.")
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@with_appcontext
def worker(with_beat: bool, celery_args: tuple[str, ...]) -> None:
    """Run a Celery worker for the background jobs (needs CELERY_BROKER_URL); further
    arguments go to ``celery worker`` (e.g. --concurrency 2)."""
    celery = _celery_or_fail()
    argv = ["worker", "--loglevel=INFO", *(["--beat"] if with_beat else []), *celery_args]
    celery.worker_main(argv)


@click.command("beat", context_settings={"ignore_unknown_options": True})
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@with_appcontext
def beat(celery_args: tuple[str, ...]) -> None:
    """Run Celery beat: sends the periodic jobs (outbox, reminders, discussions) on
    schedule. Exactly one per deployment."""
    celery = _celery_or_fail()
    celery.start(["beat", "--loglevel=INFO", *celery_args])


def _celery_or_fail():
    if not current_app.config.get("CELERY_BROKER_URL"):
        raise click.ClickException(
            "CELERY_BROKER_URL is not set (e.g. redis://127.0.0.1:6379/0): without a broker "
            "jobs run inside the web process and no worker is needed."
        )
    from review_portal.jobs.worker import celery_app

    return celery_app(current_app)


@click.command("rebuild-agreement")
def rebuild_agreement() -> None:
    """Recompute the sums the agreement figures read (and each submitted sheet's total in
    percent) from the scores; the services keep them, so this is for data written around
    them (an import, a repair)."""
    from review_portal.scoring.summary import rebuild

    with unit_of_work():
        counts = rebuild(db.session.connection())
    click.echo(
        f"Submitted sheets: {counts['sheets']}; units: {counts['total_units']} totals, "
        f"{counts['criterion_units']} criteria."
    )


@click.command("storage-cleanup")
@click.option(
    "--dry-run", is_flag=True, help="List the unreferenced files and their sizes; delete nothing."
)
@click.option(
    "--older-than",
    "hours",
    type=click.FloatRange(1, 24 * 3650),
    default=24,
    show_default=True,
    help="Delete only files unchanged for this many hours, at least 1 (files of uploads "
    "and jobs in progress are younger).",
)
def storage_cleanup(dry_run: bool, hours: float) -> None:
    """Delete the files in STORAGE_DIR that no document, conclusion, job or snapshot
    references (rolled-back uploads, replaced drafts, exports of no snapshot). A file is
    written before the row that references it commits, so only files older than
    --older-than go (see review_portal/storage_cleanup.py); --dry-run lists them first."""
    from datetime import timedelta

    from review_portal.storage_cleanup import Survey, delete_unreferenced, survey

    grace = timedelta(hours=hours)
    if dry_run:
        found = survey(grace)
        click.echo(f"Unreferenced files older than {hours:g} h (a real run deletes them):")
        for item in found.old:
            click.echo(_file_line(item))
        click.echo(f"Total: {len(found.old)} files, {_size(Survey.size(found.old))}.")
        if found.recent:
            click.echo(f"Unreferenced but younger than {hours:g} h (kept):")
            for item in found.recent:
                click.echo(_file_line(item))
            click.echo(f"Total: {len(found.recent)} files, {_size(Survey.size(found.recent))}.")
        if found.missing:
            click.echo(f"Referenced files missing from the storage: {found.missing}.", err=True)
        return
    with unit_of_work():
        deleted = delete_unreferenced(grace)
    for item in deleted.files:
        click.echo(f"deleted {_file_line(item).strip()}")
    click.echo(
        f"Deleted: {len(deleted.files)} files, {_size(deleted.size)}"
        + (f"; {deleted.kept} in use again, kept." if deleted.kept else ".")
    )


def _file_line(item) -> str:
    return (
        f"  {item.relative()}\t{item.size} bytes\t{item.modified:%Y-%m-%d %H:%M} UTC\t{item.kind}"
    )


def _size(size: int) -> str:
    return f"{size} bytes ({size / 1024 / 1024:.1f} MB)"
