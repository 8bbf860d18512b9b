"""The deployment files in deploy/ read as their tools read them, and agree with the portal.

The systemd units pass ``systemd-analyze verify`` (skipped without it) and their commands
are the portal's: gunicorn's options parse, ``worker`` and ``beat`` are commands of the
portal's CLI, beat's ``--schedule`` is Celery's option, and the processes that write
uploads may write ``STORAGE_DIR`` of the example environment. The nginx site renders from
``PUBLIC_URL`` and ``MAX_UPLOAD_MB`` with ``client_max_body_size`` equal to the portal's
``MAX_CONTENT_LENGTH``, and refuses settings that cannot work. The compose file parses and
runs the same commands; the Dockerfile copies files that exist and installs Debian packages
that exist. Docker itself is not run here (no registry to pull images from); the live test
of the nginx site is tests/test_deploy_nginx.py.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
ENV_EXAMPLE = DEPLOY / "review-portal.env.example"
#: Where the units expect the checkout and its virtual environment.
INSTALL_DIR = "/opt/review-portal"
VENV_BIN = Path(sys.executable).parent
MIB = 1024 * 1024


def render_module():
    """deploy/render_nginx.py, imported (it is a script, not a package module)."""
    spec = importlib.util.spec_from_file_location("render_nginx", DEPLOY / "render_nginx.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def unit_settings(name: str) -> dict[str, dict[str, list[str]]]:
    """A unit file's settings: section → key → values (a key may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    section = None
    for raw in (UNITS / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        section.setdefault(key.strip(), []).append(value.strip())
    return sections


def exec_start(name: str) -> list[str]:
    """The unit's command, its programs taken from this virtual environment."""
    (command,) = unit_settings(name)["Service"]["ExecStart"]
    argv = shlex.split(command)
    program = Path(argv[0])
    assert program.parent == Path(INSTALL_DIR, ".venv", "bin"), argv[0]
    return [str(VENV_BIN / program.name), *argv[1:]]


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


PORTAL_UNITS = [
    "review-portal-web.service",
    "review-portal-worker.service",
    "review-portal-beat.service",
]
ALL_UNITS = ["review-portal-migrate.service", *PORTAL_UNITS]


# --- systemd ----------------------------------------------------------------------------


def test_units_pass_systemd_analyze_verify(tmp_path):
    """The units as systemd reads them: no unknown key, no misplaced one, every program
    executable (here: this virtual environment's)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    for name in ALL_UNITS:
        text = (UNITS / name).read_text().replace(f"{INSTALL_DIR}/.venv/bin", str(VENV_BIN))
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        [analyze, "verify", "--man=no", *ALL_UNITS],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_every_unit_runs_as_the_portal_user_with_the_environment_file_and_hardening():
    for name in ALL_UNITS:
        service = unit_settings(name)["Service"]
        assert service["User"] == ["review-portal"], name
        assert service["EnvironmentFile"] == ["/etc/review-portal/review-portal.env"], name
        assert service["WorkingDirectory"] == [INSTALL_DIR], name
        for key, value in {
            "NoNewPrivileges": "yes",
            "ProtectSystem": "strict",
            "ProtectHome": "yes",
            "PrivateTmp": "yes",
        }.items():
            assert service[key] == [value], (name, key)


def test_the_processes_that_write_files_may_write_storage_dir_and_no_other():
    storage = render_module().read_env_file(ENV_EXAMPLE)["STORAGE_DIR"]
    for name in ("review-portal-web.service", "review-portal-worker.service"):
        settings = unit_settings(name)
        assert settings["Service"]["ReadWritePaths"] == [storage], name
        assert settings["Unit"]["RequiresMountsFor"] == [storage], name
    for name in ("review-portal-beat.service", "review-portal-migrate.service"):
        assert "ReadWritePaths" not in unit_settings(name)["Service"], name


def test_the_portal_units_start_after_the_migrations():
    (command,) = unit_settings("review-portal-migrate.service")["Service"]["ExecStart"]
    assert shlex.split(command)[1:] == ["--app", "review_portal.wsgi", "db", "upgrade"]
    assert unit_settings("review-portal-migrate.service")["Service"]["Type"] == ["oneshot"]
    for name in PORTAL_UNITS:
        unit = unit_settings(name)["Unit"]
        assert "review-portal-migrate.service" in unit["Requires"][0].split(), name
        assert "review-portal-migrate.service" in unit["After"][0].split(), name


def test_the_old_entry_point_of_a_checkout_is_the_packaged_one(tmp_path):
    """Deployments written before review_portal.wsgi (``wsgi:app``, ``flask --app wsgi``)
    keep working from a checkout: the root ``wsgi.py`` hands them the same application."""
    environ = {k: v for k, v in os.environ.items() if k != "FLASK_APP"} | {
        "REVIEW_PORTAL_CONFIG": "testing",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'old.sqlite'}",
    }
    same = (
        "import wsgi, review_portal.wsgi as packaged;"
        "print(wsgi.app is packaged.app, wsgi.celery is packaged.celery)"
    )
    printed = subprocess.run(
        [sys.executable, "-c", same], cwd=ROOT, env=environ, capture_output=True, text=True
    )
    assert printed.stdout.split() == ["True", "True"], printed.stderr
    heads = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "heads"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    newest = sorted((ROOT / "review_portal" / "migrations" / "versions").glob("*.py"))[-1]
    assert heads.stdout.split()[:2] == [newest.name.split("_")[1], "(head)"], heads.stderr


def test_gunicorn_options_of_the_web_unit_are_gunicorns_and_match_the_nginx_upstream():
    from gunicorn.config import Config

    argv = exec_start("review-portal-web.service")
    assert Path(argv[0]).name == "gunicorn" and Path(argv[0]).exists()
    parsed = Config().parser().parse_args(argv[1:])
    assert parsed.bind == ["127.0.0.1:8000"]
    assert parsed.args == ["review_portal.wsgi:app"]
    # nginx proxies to the address gunicorn listens on.
    site = render_module().site_values(
        {"PUBLIC_URL": "https://portal.example.org"}, certificate="c", certificate_key="k"
    )
    assert site["UPSTREAM"] == parsed.bind[0]
    assert unit_settings("review-portal-web.service")["Service"]["Type"] == ["notify"]


def test_worker_and_beat_run_commands_of_the_portal():
    from celery.bin.beat import beat

    from review_portal import create_app

    app = create_app("testing")
    worker = exec_start("review-portal-worker.service")
    assert worker[1:] == ["--app", "review_portal.wsgi", "worker"]
    beat_argv = exec_start("review-portal-beat.service")
    assert beat_argv[1:4] == ["--app", "review_portal.wsgi", "beat"]
    assert {"worker", "beat"} <= set(app.cli.commands)
    schedule = beat_argv[4]
    assert schedule.startswith("--schedule=/var/lib/review-portal-beat/")
    assert any("--schedule" in param.opts for param in beat.params)
    assert unit_settings("review-portal-beat.service")["Service"]["StateDirectory"] == [
        "review-portal-beat"
    ]


# --- the example environment --------------------------------------------------------------


def test_the_example_environment_is_a_production_one_missing_only_the_secrets():
    from review_portal.config import production_problems

    settings = render_module().read_env_file(ENV_EXAMPLE)
    assert settings["REVIEW_PORTAL_CONFIG"] == "production"
    assert settings["SECRET_KEY"] == settings["AUDIT_ANCHOR_KEY"] == ""
    assert settings["PUBLIC_URL"].startswith("https://")
    assert settings["TRUSTED_PROXY_HOPS"] == "1"
    config = {
        **settings,
        "SECRET_KEY": "x" * 48,
        "AUDIT_ANCHOR_KEY": "y" * 48,
        "SESSION_COOKIE_SECURE": True,
        "REMEMBER_COOKIE_SECURE": True,
        "HSTS_SECONDS": 1,
        "CONTENT_SECURITY_POLICY": "default-src 'self'",
        "MAX_CONTENT_LENGTH": 1,
        "TRUSTED_PROXY_HOPS": int(settings["TRUSTED_PROXY_HOPS"]),
    }
    assert production_problems(config) == []


# --- nginx ------------------------------------------------------------------------------


def test_client_max_body_size_is_the_portals_request_limit():
    from review_portal.config import BaseConfig

    render = render_module()
    text = render.render(
        render.site_values(
            {
                "PUBLIC_URL": "https://portal.example.org",
                "MAX_UPLOAD_MB": str(BaseConfig.MAX_UPLOAD_MB),
            },
            certificate="/c.pem",
            certificate_key="/k.pem",
        )
    )
    (size,) = re.findall(r"^\s*client_max_body_size (\d+)m;", text, re.MULTILINE)
    assert int(size) * MIB == BaseConfig.MAX_CONTENT_LENGTH


def test_the_site_renders_from_the_environment_file(tmp_path):
    env = tmp_path / "portal.env"
    env.write_text(
        "# comment\nPUBLIC_URL='https://portal.example.org:8443/'\nMAX_UPLOAD_MB=5\nOTHER=1\n"
    )
    result = subprocess.run(
        [sys.executable, str(DEPLOY / "render_nginx.py"), "--env-file", str(env)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    lines = [line.strip() for line in result.stdout.splitlines()]
    body = [line for line in lines if line and not line.startswith("#")]
    assert "@" not in "".join(line for line in body if "@too_large" not in line)
    assert "server_name portal.example.org;" in body
    assert "listen 8443 ssl;" in body
    assert "listen 80;" in body
    assert "return 301 https://portal.example.org:8443$request_uri;" in body
    assert "client_max_body_size 6m;" in body
    assert "proxy_set_header X-Forwarded-Host portal.example.org:8443;" in body
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in body
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in body
    assert "ssl_certificate /etc/ssl/certs/review-portal.pem;" in body
    # No file is served from the disk: everything goes to the portal.
    assert not [line for line in body if line.startswith(("root ", "alias ", "autoindex"))]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"PUBLIC_URL": "http://portal.example.org"}, "https://"),
        ({}, "https://"),
        ({"PUBLIC_URL": "https://portal.example.org/portal"}, "no path"),
        ({"PUBLIC_URL": "https://portal.example.org", "MAX_UPLOAD_MB": "big"}, "number"),
        ({"PUBLIC_URL": "https://portal.example.org", "MAX_UPLOAD_MB": "0"}, "positive"),
        ({"PUBLIC_URL": "https://portal.example.org:99999"}, "port"),
    ],
)
def test_settings_that_cannot_work_are_refused(tmp_path, settings, message):
    env = tmp_path / "portal.env"
    env.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    result = subprocess.run(
        [sys.executable, str(DEPLOY / "render_nginx.py"), "--env-file", str(env)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert message in result.stderr


def test_a_value_that_would_change_the_site_is_refused():
    render = render_module()
    values = render.site_values(
        {"PUBLIC_URL": "https://portal.example.org"},
        certificate="/c.pem; include /etc/passwd",
        certificate_key="/k.pem",
    )
    with pytest.raises(render.RenderError, match="SSL_CERTIFICATE"):
        render.render(values)


# --- Docker (not run: parsed and checked against the repository) ------------------------


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_runs_postgres_redis_and_the_portals_processes():
    services = compose()["services"]
    assert services["postgres"]["image"] == "postgres:15"
    assert services["redis"]["image"] == "redis:7"
    assert {"migrate", "web", "worker", "beat"} <= set(services)
    for name in ("migrate", "web", "worker", "beat"):
        service = services[name]
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}, name
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        assert service["env_file"] == "review-portal.env"
        assert service["environment"]["STORAGE_DIR"] == "/var/lib/review-portal/storage"
        assert service["environment"]["DATABASE_URL"].startswith("postgresql://")
    assert services["migrate"]["command"] == [
        "flask",
        "--app",
        "review_portal.wsgi",
        "db",
        "upgrade",
    ]
    # The same commands as the systemd units.
    assert services["worker"]["command"][1:] == exec_start("review-portal-worker.service")[1:]
    assert services["beat"]["command"][1:] == exec_start("review-portal-beat.service")[1:]
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    assert services["web"]["ports"] == ["127.0.0.1:8000:8000"]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) of deploy/Dockerfile, continuation lines joined."""
    text = (DEPLOY / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            instructions.append((word.upper(), rest.strip()))
    return instructions


def test_dockerfile_uses_files_programs_and_packages_that_exist():
    import json

    instructions = dockerfile_instructions()
    (base,) = [rest for word, rest in instructions if word == "FROM"]
    assert re.fullmatch(r"python:3\.1[1-9]-slim-bookworm", base)
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    for word, rest in instructions:
        if word == "COPY":
            *sources, _target = rest.split()
            for source in sources:
                assert (ROOT / source).exists(), source
        if word == "RUN" and "apt-get install" in rest:
            packages = [
                token
                for token in rest.split("apt-get install", 1)[1].split("&&")[0].split()
                if not token.startswith("-")
            ]
            assert packages
            if shutil.which("apt-cache"):
                # libc6 is on every Debian: without it the package lists are empty (a
                # fresh container before `apt-get update`) and nothing can be told.
                shown = subprocess.run(
                    ["apt-cache", "show", "--no-all-versions", "libc6", *packages],
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                found = set(re.findall(r"^Package: (\S+)$", shown.stdout, re.MULTILINE))
                if "libc6" in found:
                    assert found == {"libc6", *packages}, shown.stderr
    # What the image runs: gunicorn as the web unit does, listening on the container's net.
    (cmd,) = [json.loads(rest) for word, rest in instructions if word == "CMD"]
    web = exec_start("review-portal-web.service")
    assert cmd[0] == "gunicorn" and (VENV_BIN / cmd[0]).exists()
    assert option(cmd, "--bind") == "0.0.0.0:8000"
    assert [arg for arg in cmd[1:] if arg != "0.0.0.0:8000"] == [
        arg for arg in web[1:] if arg != "127.0.0.1:8000"
    ]
    for program in ("pip", "pybabel", "flask"):
        assert (VENV_BIN / program).exists(), program
    # The image holds what the portal needs to start (the package holds the configuration,
    # the entry point and the migrations), the translations' sources and the old entry point;
    # everything let in exists.
    # The dependencies come from the lock with their hashes, as in `make run`; the project
    # adds none of its own.
    runs = [rest for word, rest in instructions if word == "RUN"]
    assert any("pip install --require-hashes -r requirements/runtime.txt" in rest for rest in runs)
    assert any("pip install --no-deps --no-build-isolation -e ." in rest for rest in runs)
    assert not any(re.search(r"pip install (-e )?\.(\s|$)", rest) for rest in runs)
    for needed in (
        "pyproject.toml",
        "setup.py",
        "README.md",
        "review_portal/",
        "wsgi.py",
        "requirements/runtime.txt",
    ):
        assert f"!{needed}" in ignored, needed
    for line in ignored:
        if line.startswith("!"):
            assert (ROOT / line[1:]).exists(), line
