"""The old entry point of a source checkout (``flask --app wsgi``, ``gunicorn wsgi:app``,
``celery -A wsgi:celery``), kept so existing deployments go on working: the application
is :mod:`review_portal.wsgi`, which the package ships and the project's own files use."""

from review_portal.wsgi import app

__all__ = ["app", "celery"]  # noqa: F822 - celery: __getattr__ below


def __getattr__(name: str):
    # ``celery`` as review_portal.wsgi makes it: on first use, not in a web process's start.
    if name == "celery":
        from review_portal import wsgi

        return wsgi.celery
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
