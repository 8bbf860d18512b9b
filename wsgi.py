"""WSGI entry point: ``flask --app wsgi ...``, ``gunicorn wsgi:app`` and
``celery -A wsgi:celery worker``."""

from review_portal import create_app

app = create_app()
#: The Celery app of the portal's background jobs (``review_portal.jobs.worker``).
celery = app.extensions["celery"]
