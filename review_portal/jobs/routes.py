"""The list of recent jobs, a job's progress page (refreshing itself while the job runs, no
JavaScript needed) and the same facts as JSON."""

from __future__ import annotations

from flask import Blueprint, jsonify, make_response, render_template
from flask_login import current_user

from review_portal.extensions import db
from review_portal.jobs.models import Job
from review_portal.jobs.permissions import can_view_job, can_view_jobs
from review_portal.jobs.services import job_status, kind_label, recent_jobs, runner_mode
from review_portal.permissions import ensure, requires

bp = Blueprint("jobs", __name__)

#: Seconds between refreshes of the page of a running job.
REFRESH_SECONDS = 2


@bp.get("/jobs")
@requires(can_view_jobs)
def index():
    from flask import current_app

    jobs = recent_jobs()
    return render_template(
        "jobs/index.html",
        jobs=jobs,
        labels={job.id: kind_label(job.kind) for job in jobs},
        runner=runner_mode(current_app),
    )


@bp.get("/jobs/<int:job_id>")
@requires(can_view_jobs)
def view(job_id: int):
    job = db.get_or_404(Job, job_id)
    ensure(can_view_job(current_user, job))
    response = make_response(
        render_template(
            "jobs/view.html",
            job=job,
            kind=kind_label(job.kind),
            refresh=REFRESH_SECONDS if job.active else None,
        )
    )
    if job.active:
        response.headers["Refresh"] = str(REFRESH_SECONDS)
    return response


@bp.get("/jobs/<int:job_id>.json")
@requires(can_view_jobs)
def status(job_id: int):
    job = db.get_or_404(Job, job_id)
    ensure(can_view_job(current_user, job))
    return jsonify(job_status(job))
