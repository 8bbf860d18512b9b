"""The old entry point of a source checkout (``flask --app wsgi``, ``gunicorn wsgi:app``,
``celery -A wsgi:celery``), kept so existing deployments go on working: the application
is :mod:`review_portal.wsgi`, which the package ships and the project's own files use."""

from review_portal.wsgi import app, celery

__all__ = ["app", "celery"]
