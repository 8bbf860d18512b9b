"""WSGI entry point: ``flask --app wsgi ...`` and ``gunicorn wsgi:app``."""

from review_portal import create_app

app = create_app()
