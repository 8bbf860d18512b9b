"""WSGI entry point, shipped in the package: ``flask --app review_portal.wsgi ...``,
``gunicorn review_portal.wsgi:app`` and ``celery -A review_portal.wsgi:celery worker``.

The configuration comes from the environment (``REVIEW_PORTAL_CONFIG``, ``DATABASE_URL``,
...: :mod:`review_portal.config`). The ``wsgi.py`` at the root of a source checkout
re-exports these two names for deployments that still say ``wsgi:app``."""

from review_portal import create_app

app = create_app()
#: The Celery app of the portal's background jobs (``review_portal.jobs.worker``).
celery = app.extensions["celery"]
