"""The review portal: a Flask application for the independent quality assessment of
supplementary education programs (НОК ДООП) run by a regional model center."""

from __future__ import annotations

from flask import Flask

from review_portal.config import BaseConfig, get_config


def create_app(config: str | type[BaseConfig] | None = None, **overrides) -> Flask:
    """Build the application: configuration, extensions, blueprints, error pages and CLI."""
    app = Flask(__name__, instance_relative_config=False)
    config_cls = config if isinstance(config, type) else get_config(config)
    app.config.from_object(config_cls)
    app.config.update(overrides)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql://"):
        # psycopg 3 is the driver: accept the usual URL spelling.
        app.config["SQLALCHEMY_DATABASE_URI"] = app.config["SQLALCHEMY_DATABASE_URI"].replace(
            "postgresql://", "postgresql+psycopg://", 1
        )

    register_logging(app)
    register_extensions(app)
    register_blueprints(app)
    register_throttling(app)
    register_errorhandlers(app)
    register_template_helpers(app)
    register_cli(app)
    app.json.ensure_ascii = False
    return app


def register_logging(app: Flask) -> None:
    """First: its ``after_request`` (the access line) then runs after every other one."""
    from review_portal.logging_setup import configure_logging

    configure_logging(app)


def register_extensions(app: Flask) -> None:
    from pathlib import Path

    from review_portal import models  # noqa: F401  (every table known to the metadata)
    from review_portal.accounts import loader
    from review_portal.extensions import babel, bootstrap, csrf, db, login_manager, migrate
    from review_portal.i18n import select_locale, select_timezone

    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    db.init_app(app)
    migrate.init_app(
        app,
        db,
        directory=str(Path(__file__).resolve().parent / "migrations"),
        render_as_batch=True,
        compare_type=True,
    )
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    from review_portal import lazy_text

    lazy_text.install(app)  # templates' ``_`` without Flask-Babel's walk of the proxies
    bootstrap.init_app(app)
    login_manager.init_app(app)
    loader.init_login(app)
    if uri.startswith("sqlite"):
        from review_portal.db import configure_sqlite

        with app.app_context():
            configure_sqlite(db.engine)
    from review_portal.security import init_security

    init_security(app)

    from review_portal import input_guard, unit_of_work

    unit_of_work.init_app(app)
    input_guard.init_app(app)

    from review_portal.conclusions.bulk import RENDER_POOL

    app.extensions[RENDER_POOL] = open_render_pool

    from review_portal.rubrics.registry import check_rubrics

    check_rubrics(app)


def open_render_pool(workers: int):
    """:func:`review_portal.workers.open_render_pool`, imported when a bulk run opens its
    pool (multiprocessing is not needed to serve pages)."""
    from review_portal.workers import open_render_pool

    return open_render_pool(workers)


def register_blueprints(app: Flask) -> None:
    from review_portal.accounts.admin_routes import bp as users_bp
    from review_portal.accounts.routes import bp as accounts_bp
    from review_portal.analytics.routes import bp as analytics_bp
    from review_portal.appeals.routes import bp as appeals_bp
    from review_portal.assignment.coordinator_routes import bp as assigning_bp
    from review_portal.assignment.routes import bp as assignment_bp
    from review_portal.audit.routes import bp as audit_bp
    from review_portal.conclusions.bulk_routes import CONFIRM_MANY_RULE, confirm_many
    from review_portal.conclusions.routes import bp as conclusions_bp
    from review_portal.experts.routes import bp as experts_bp
    from review_portal.imports.routes import bp as imports_bp
    from review_portal.jobs.routes import bp as jobs_bp
    from review_portal.main.routes import bp as main_bp
    from review_portal.notifications.routes import bp as notifications_bp
    from review_portal.organizations.routes import bp as organizations_bp
    from review_portal.programs.compare_routes import bp as compare_bp
    from review_portal.programs.document_routes import bp as documents_bp
    from review_portal.programs.routes import bp as programs_bp
    from review_portal.programs.screening_routes import bp as screening_bp
    from review_portal.reconciliation.discussion_routes import bp as discussion_bp
    from review_portal.reconciliation.result_routes import bp as results_bp
    from review_portal.reconciliation.routes import bp as reconciliation_bp
    from review_portal.registry.api import bp as registry_api_bp
    from review_portal.registry.export_routes import bp as registry_exports_bp
    from review_portal.registry.routes import bp as registry_bp
    from review_portal.rubrics.routes import bp as rubrics_bp
    from review_portal.scoring.routes import bp as scoring_bp
    from review_portal.settings.routes import bp as settings_bp

    for bp in (
        main_bp,
        accounts_bp,
        users_bp,
        organizations_bp,
        programs_bp,
        documents_bp,
        compare_bp,
        screening_bp,
        assigning_bp,
        assignment_bp,
        imports_bp,
        audit_bp,
        experts_bp,
        rubrics_bp,
        scoring_bp,
        reconciliation_bp,
        discussion_bp,
        results_bp,
        conclusions_bp,
        jobs_bp,
        registry_bp,
        registry_exports_bp,
        registry_api_bp,
        analytics_bp,
        settings_bp,
        notifications_bp,
        appeals_bp,
    ):
        app.register_blueprint(bp)
    # A conclusions view under the reconciliation's name (see conclusions.bulk_routes).
    path, endpoint, methods = CONFIRM_MANY_RULE
    app.add_url_rule(path, endpoint, confirm_many, methods=methods)
    register_development_mail(app)


def register_development_mail(app: Flask) -> None:
    """Development only: the mailbox's pages when there is one, and the web process's
    delivery of due mail when jobs run in its threads (notifications.devmail)."""
    from review_portal.notifications.devmail import init_ticker, mailbox_dir

    if mailbox_dir(app.config):
        from review_portal.notifications.devmail_routes import bp as devmail_bp

        app.register_blueprint(devmail_bp)
    init_ticker(app)


def register_throttling(app: Flask) -> None:
    """Flask-Limiter, after the blueprints: it wraps the views marked ``@throttled``."""
    from review_portal.throttling import init_throttling

    init_throttling(app)


def register_errorhandlers(app: Flask) -> None:
    from review_portal.main.errors import register

    register(app)


def register_template_helpers(app: Flask) -> None:
    from review_portal.main.templating import register

    register(app)


def register_cli(app: Flask) -> None:
    from review_portal.cli import register

    register(app)
