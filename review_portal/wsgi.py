"""WSGI entry point, shipped in the package: ``flask --app review_portal.wsgi ...``,
``gunicorn review_portal.wsgi:app`` and ``celery -A review_portal.wsgi:celery worker``.

The configuration comes from the environment (``REVIEW_PORTAL_CONFIG``, ``DATABASE_URL``,
...: :mod:`review_portal.config`). The ``wsgi.py`` at the root of a source checkout
re-exports these two names for deployments that still say ``wsgi:app``.

``celery`` is made when first asked for (Celery's ``-A``, the root ``wsgi.py``): a web process
imports Celery only when it sends a job (:func:`review_portal.jobs.worker.celery_app`)."""

import gc

# The start allocates a few hundred thousand long-lived objects (modules, classes, mappers,
# routes, templates' helpers) and the cyclic garbage collector would walk them over and over
# while they are made (~8 % of the start's CPU); collect nothing meanwhile, then move what
# the start made out of the collector's sight (gc.freeze: a later collection does not walk
# it, and in forked workers it is not written to, so its pages stay shared).
gc.disable()
try:
    from review_portal import create_app

    app = create_app()
finally:
    gc.enable()
gc.freeze()


def __getattr__(name: str):
    if name == "celery":
        #: The Celery app of the portal's background jobs (``review_portal.jobs.worker``).
        from review_portal.jobs.worker import celery_app

        return celery_app(app)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
