"""Flask extension singletons, created unbound and initialised in ``create_app``."""

from __future__ import annotations

from functools import cached_property

import click
from flask import Flask
from flask_babel import Babel
from flask_bootstrap import Bootstrap5
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from review_portal.db import Base


class _MigrateConfig:
    """What Flask-Migrate keeps in ``app.extensions["migrate"]`` (its ``_MigrateConfig``:
    ``db``, ``directory``, ``configure_args``, ``migrate``), without importing Flask-Migrate:
    its ``migrate`` (the ``flask_migrate.Migrate`` whose ``get_config`` the commands and
    ``flask_migrate.upgrade`` call) is made on first use."""

    def __init__(self, db, directory: str, configure_args: dict):
        self.db = db
        self.directory = directory
        self.configure_args = configure_args

    @cached_property
    def migrate(self):
        from flask_migrate import Migrate

        return Migrate(db=self.db, directory=self.directory, **self.configure_args)

    @property
    def metadata(self):
        return self.db.metadata


class _MigrateCommands(click.Group):
    """``flask db``: Flask-Migrate's group of commands, imported only when it runs (its
    ``--help`` line in ``flask --help`` needs nothing)."""

    def _group(self) -> click.Group:
        from flask_migrate.cli import db as group

        return group

    def make_context(self, info_name, args, parent=None, **extra):
        return self._group().make_context(info_name, args, parent=parent, **extra)

    def list_commands(self, ctx):
        return self._group().list_commands(ctx)

    def get_command(self, ctx, cmd_name):
        return self._group().get_command(ctx, cmd_name)


class Migrate:
    """Flask-Migrate's ``Migrate`` as the portal uses it, lazily: Flask-Migrate imports
    Alembic (and Alembic Mako and Pygments), a tenth of a web process's start, and only
    ``flask db`` and the migration tests need them. ``init_app`` leaves in
    ``app.extensions["migrate"]`` and ``app.cli`` what Flask-Migrate's would."""

    def init_app(self, app: Flask, db, directory: str, command: str = "db", **kwargs) -> None:
        configure_args = {"compare_type": True, "render_as_batch": True, **kwargs}
        app.extensions["migrate"] = _MigrateConfig(db, str(directory), configure_args)
        app.cli.add_command(_MigrateCommands(command, help="Perform database migrations."))


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
bootstrap = Bootstrap5()
