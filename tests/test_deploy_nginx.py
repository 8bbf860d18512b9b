"""Debian's nginx with the shipped site in front of gunicorn, over HTTPS on loopback.

What runs is what deploy/ ships: the example environment file (deploy/review-portal.env.example)
with the site-specific values replaced, the migration unit's ``flask db upgrade``, the
portal's ``create-user``, the web unit's gunicorn command (two workers instead of four, on a
free port; it must tell systemd it is ready, ``Type=notify``), and the nginx site rendered
by deploy/render_nginx.py from that environment file, with a self-signed certificate made
here, inside a minimal ``nginx.conf`` of the test's own (its own prefix, free loopback ports,
not a daemon). The portal runs the production configuration on a migrated SQLite file, its
login throttle in Redis (``TEST_REDIS_URL``).

``PUBLIC_URL`` is ``https://localhost:<nginx's HTTPS port>``: the client reaches the portal
only through nginx, gunicorn listens on another port, so a link or redirect built on
gunicorn's own address, or on plain HTTP, shows. ``MAX_UPLOAD_MB`` is 1 to keep uploads
small.

Checked: plain HTTP redirects to the same path on PUBLIC_URL; a login works (the CSRF
check of HTTPS compares the Referer with the host the portal believes, so it passes only
when ``X-Forwarded-Proto``/``-Host`` arrive and are trusted); the answers carry
``Strict-Transport-Security`` (the portal saw HTTPS) and ``Secure`` cookies; a forged Host
changes nothing; an upload of exactly ``MAX_UPLOAD_MB`` reaches the portal intact, a
request up to nginx's limit reaches the portal (which refuses the file with its own
message) and one byte more gets nginx's 413 without reaching it; every redirect and
absolute link (the password reset e-mail's, the OpenAPI document's) is on PUBLIC_URL, and
the e-mailed link works; a file in ``STORAGE_DIR`` cannot be fetched by any URL.

Needs the ``nginx`` and ``openssl`` commands and Redis; without them the test is skipped,
unless ``REQUIRE_NGINX=1`` (set by .ci/run, which installs nginx), then it fails.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
import redis

from tests.processes import accepts, free_port, spawn, stop, tail, wait_until
from tests.test_deploy_files import DEPLOY, ENV_EXAMPLE, ROOT, exec_start, render_module

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
HOST = "127.0.0.1"
MAX_UPLOAD_MB = 1
MIB = 1024 * 1024
#: Seconds any one step may take (a busy machine); the whole test takes far less.
STEP_TIMEOUT = 60
EMAIL = "coordinator@example.org"
PASSWORD = "Deploy-test-2026-pass"
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
#: Absolute URLs in attributes of a page.
ABSOLUTE_LINK = re.compile(r'(?:href|src|action|content)="((?:https?:)?//[^"]*)"')


def unavailable(reason: str):
    if os.environ.get("REQUIRE_NGINX") == "1":
        pytest.fail(f"REQUIRE_NGINX=1 but the nginx test cannot run: {reason}")
    pytest.skip(reason)


@dataclass
class Deployment:
    public_url: str
    http_port: int
    gunicorn_port: int
    ca: ssl.SSLContext
    storage: Path
    database: Path
    #: Every (request URL, Location) of a redirect answered through nginx.
    redirects: list[tuple[str, str]] = field(default_factory=list)
    #: Every HTML or JSON text answered through nginx.
    pages: list[str] = field(default_factory=list)

    def client(self, **kwargs) -> httpx.Client:
        def record(response: httpx.Response) -> None:
            response.read()
            if "location" in response.headers:
                self.redirects.append((str(response.request.url), response.headers["location"]))
            if response.headers.get("content-type", "").startswith(
                ("text/html", "application/json")
            ):
                self.pages.append(response.text)

        return httpx.Client(
            base_url=self.public_url,
            verify=self.ca,
            timeout=STEP_TIMEOUT,
            event_hooks={"response": [record]},
            **kwargs,
        )

    def token(self, client: httpx.Client, path: str) -> str:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return CSRF.search(response.text).group(1)

    def post(self, client: httpx.Client, path: str, **kwargs) -> httpx.Response:
        """A form POST as a browser sends it: the Referer is the page of the form."""
        headers = {"Referer": f"{self.public_url}{path}", **kwargs.pop("headers", {})}
        return client.post(path, headers=headers, **kwargs)

    def login(self, client: httpx.Client) -> httpx.Response:
        data = {"email": EMAIL, "password": PASSWORD, "csrf_token": self.token(client, "/login")}
        return self.post(client, "/login", data=data)


def portal_environment(base: Path, https_port: int) -> dict[str, str]:
    """The example environment file with what is this machine's replaced."""
    settings = render_module().read_env_file(ENV_EXAMPLE)
    settings.update(
        SECRET_KEY=secrets.token_urlsafe(48),
        AUDIT_ANCHOR_KEY=secrets.token_urlsafe(48),
        DATABASE_URL=f"sqlite:///{base / 'portal.sqlite'}",
        PUBLIC_URL=f"https://localhost:{https_port}",
        STORAGE_DIR=str(base / "storage"),
        MAX_UPLOAD_MB=str(MAX_UPLOAD_MB),
        RATELIMIT_STORAGE_URI=REDIS_URL,
        # No worker here: a job would run in the web process (none is started).
        CELERY_BROKER_URL="",
        SMTP_HOST="",
    )
    return settings


NGINX_CONF = """\
# The test's nginx.conf (Debian's /etc/nginx/nginx.conf, reduced): the site is included
# as Debian includes sites-enabled/*.
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {logs}/nginx-error.log notice;
events {{ worker_connections 64; }}
http {{
    access_log {logs}/nginx-access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/review-portal.conf;
}}
"""


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    certificate, key = directory / "cert.pem", directory / "key.pem"
    options = "-x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1"
    names = "-subj /CN=localhost -addext subjectAltName=DNS:localhost"
    subprocess.run(
        ["openssl", "req", *options.split(), *names.split(), "-keyout", str(key)]
        + ["-out", str(certificate)],
        check=True,
        capture_output=True,
        timeout=STEP_TIMEOUT,
    )
    return certificate, key


def notify_socket(path: Path) -> socket.socket:
    """A datagram socket standing for systemd's NOTIFY_SOCKET."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(STEP_TIMEOUT)
    return sock


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    # nginx is in /usr/sbin, which a user's PATH may not hold.
    nginx_program = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    for program, found in (("nginx", nginx_program), ("openssl", shutil.which("openssl"))):
        if found is None:
            unavailable(f"`{program}` is not installed (apt-get install nginx openssl)")
    probe = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        probe.ping()
    except redis.exceptions.RedisError as error:
        unavailable(f"Redis is not reachable at {REDIS_URL}: {error}")
    finally:
        probe.close()

    started = time.monotonic()
    base = tmp_path_factory.mktemp("deploy")
    # nginx's workers run as nobody when the test runs as root: their temporary files need
    # a directory they can reach (pytest's are private to the user). Short, for the socket.
    prefix = Path(tempfile.mkdtemp(prefix="rp-nginx-"))
    prefix.chmod(0o755)
    processes: list[subprocess.Popen] = []
    try:
        http_port, https_port, gunicorn_port = free_port(HOST), free_port(HOST), free_port(HOST)
        settings = portal_environment(base, https_port)
        env_file = base / "review-portal.env"
        env_file.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
        env = {**os.environ, **settings, "PYTHONPATH": str(ROOT)}
        # The units' Environment= lines, on this test's directories.
        env.update(XDG_CACHE_HOME=str(base / "cache"), XDG_RUNTIME_DIR=str(prefix))
        env.pop("FLASK_APP", None)
        portal_log, nginx_log = base / "portal.log", base / "nginx-error.log"
        logs = [portal_log, nginx_log]

        # The migrations, as review-portal-migrate.service runs them.
        migrate = spawn(exec_start("review-portal-migrate.service"), portal_log, env=env, cwd=ROOT)
        processes.append(migrate)

        # The site rendered from the environment file, in a minimal nginx.conf.
        certificate, key = self_signed_certificate(prefix)
        site = prefix / "review-portal.conf"
        subprocess.run(
            [sys.executable, str(DEPLOY / "render_nginx.py"), "--env-file", str(env_file)]
            + ["--certificate", str(certificate), "--certificate-key", str(key)]
            + ["--upstream", f"{HOST}:{gunicorn_port}", "--listen-address", HOST]
            + ["--http-port", str(http_port), "--output", str(site)],
            check=True,
            timeout=STEP_TIMEOUT,
        )
        (prefix / "nginx.conf").write_text(NGINX_CONF.format(prefix=prefix, logs=base))
        nginx_command = [nginx_program, "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
        nginx_command += ["-e", "stderr"]
        checked = subprocess.run(
            [*nginx_command, "-t"], capture_output=True, text=True, timeout=STEP_TIMEOUT
        )
        assert checked.returncode == 0, checked.stderr
        nginx = spawn(nginx_command, nginx_log)
        processes.append(nginx)

        assert migrate.wait(timeout=STEP_TIMEOUT * 2) == 0, tail(portal_log)
        flask = exec_start("review-portal-migrate.service")[0]
        user = ["--email", EMAIL, "--name", "Deploy Test", "--role", "coordinator"]
        create_user = spawn(
            [flask, "--app", "review_portal.wsgi", "create-user", *user, "--password", PASSWORD],
            portal_log,
            env=env,
            cwd=ROOT,
        )
        processes.append(create_user)

        # gunicorn as review-portal-web.service starts it, with systemd's readiness socket.
        command = exec_start("review-portal-web.service")
        command[command.index("--bind") + 1] = f"{HOST}:{gunicorn_port}"
        command[command.index("--workers") + 1] = "2"
        ready = notify_socket(prefix / "notify")
        gunicorn = spawn(
            command, portal_log, env={**env, "NOTIFY_SOCKET": str(prefix / "notify")}, cwd=ROOT
        )
        processes.append(gunicorn)
        try:
            message = ready.recv(4096).decode()
        except TimeoutError:
            raise AssertionError(f"gunicorn never said READY=1\n{tail(portal_log)}") from None
        finally:
            ready.close()
        assert "READY=1" in message

        assert create_user.wait(timeout=STEP_TIMEOUT * 2) == 0, tail(portal_log)
        wait_until(
            lambda: accepts(https_port, HOST),
            "nginx listens",
            timeout=STEP_TIMEOUT,
            process=nginx,
            log=nginx_log,
        )
        deployment = Deployment(
            public_url=settings["PUBLIC_URL"],
            http_port=http_port,
            gunicorn_port=gunicorn_port,
            ca=ssl.create_default_context(cafile=str(certificate)),
            storage=Path(settings["STORAGE_DIR"]),
            database=base / "portal.sqlite",
        )

        def healthy() -> bool:
            with deployment.client() as client:
                try:
                    return client.get("/healthz").status_code == 200
                except httpx.HTTPError:
                    return False

        wait_until(
            healthy,
            "/healthz through nginx",
            timeout=STEP_TIMEOUT,
            process=gunicorn,
            log=portal_log,
        )
        deployment.pages.clear()
        print(f"deployment ready in {time.monotonic() - started:.1f} s")
        yield deployment
        for log in logs:
            assert "Traceback" not in log.read_text(), tail(log)
        # gunicorn started and stopped without a warning (its control socket included).
        assert not re.search(r"\[(WARNING|ERROR|CRITICAL)\]", portal_log.read_text()), tail(
            portal_log
        )
    finally:
        for process in reversed(processes):
            stop(process)
        shutil.rmtree(prefix, ignore_errors=True)


def test_plain_http_is_redirected_to_the_same_path_on_public_url(deployment):
    response = httpx.get(
        f"http://{HOST}:{deployment.http_port}/registry?page=2",
        headers={"Host": "localhost"},
        timeout=STEP_TIMEOUT,
    )
    assert response.status_code == 301
    assert response.headers["location"] == f"{deployment.public_url}/registry?page=2"


def test_a_login_through_nginx(deployment):
    with deployment.client() as client:
        refused = client.get("/coordinator")
        assert refused.status_code == 302
        assert urlsplit(refused.headers["location"]).path == "/login"

        page = client.get("/login")
        assert page.status_code == 200
        # The portal knew the request came over HTTPS (X-Forwarded-Proto, one trusted proxy).
        assert page.headers["strict-transport-security"].startswith("max-age=")

        response = deployment.login(client)
        assert response.status_code == 302, response.text[:2000]
        cookie = response.headers["set-cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie
        home = client.get(response.headers["location"])
        assert home.status_code == 200
        assert "Deploy Test" in home.text
        assert "no-store" in home.headers["cache-control"]


def test_a_forged_host_changes_nothing(deployment):
    """nginx passes PUBLIC_URL's host whatever the request said: a form posted with a
    foreign Host (and a Referer to match it) fails the CSRF origin check."""
    forged = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    with deployment.client() as client:
        data = {
            "email": EMAIL,
            "password": PASSWORD,
            "csrf_token": deployment.token(client, "/login"),
        }
        response = client.post(
            "/login", data=data, headers={**forged, "Referer": "https://evil.example/login"}
        )
        # The portal's CSRF refusal (the Referer is not the host it believes).
        assert response.status_code == 400
        assert "Срок действия формы истёк" in response.text
        assert client.get("/coordinator").status_code == 302  # not logged in


def test_uploads_below_at_and_above_the_limit(deployment):
    with deployment.client() as client:
        assert deployment.login(client).status_code == 302

        # The largest file the portal accepts reaches it whole: it answers its checksum.
        content = os.urandom(MAX_UPLOAD_MB * MIB)
        token = deployment.token(client, "/verify")
        accepted = deployment.post(
            client,
            "/verify",
            data={"csrf_token": token},
            files={"file": ("copy.pdf", content, "application/pdf")},
        )
        assert accepted.status_code == 200, accepted.text[:2000]
        assert hashlib.sha256(content).hexdigest() in accepted.text

        # nginx's limit is the portal's request limit (MAX_UPLOAD_MB + 1 MB): a request of
        # that size reaches the portal, which refuses the file with its own message on the
        # form, 413 (below the request limit the form's size check says so, at exactly the
        # limit Werkzeug refuses the request and the error handler shows the same form).
        limit = (MAX_UPLOAD_MB + 1) * MIB
        for total, status in ((limit - 1, 413), (limit, 413)):
            body, content_type = multipart({"csrf_token": token}, total=total)
            refused = deployment.post(
                client, "/verify", content=body, headers={"Content-Type": content_type}
            )
            assert refused.status_code == status, total
            assert "content-security-policy" in refused.headers  # the portal's answer
            assert "invalid-feedback" in refused.text
            assert f"Размер файла превышает {MAX_UPLOAD_MB} МБ." in refused.text

        # One byte more: nginx answers 413 itself, the portal never sees it.
        body, content_type = multipart({"csrf_token": token}, total=limit + 1)
        too_large = deployment.post(
            client, "/verify", content=body, headers={"Content-Type": content_type}
        )
        assert too_large.status_code == 413
        assert too_large.headers["server"] == "nginx"
        assert "content-security-policy" not in too_large.headers
        assert f"<p>Размер файла превышает {MAX_UPLOAD_MB} МБ.</p>" in too_large.text
        assert "<form" not in too_large.text


def multipart(fields: dict[str, str], *, total: int) -> tuple[bytes, str]:
    """A form with a file whose whole body is exactly ``total`` bytes."""
    boundary = f"deploy-test-{secrets.token_hex(12)}"
    head = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="copy.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    )
    end = f"\r\n--{boundary}--\r\n".encode()
    size = total - len(head.encode()) - len(end)
    body = head.encode() + b"x" * size + end
    assert len(body) == total
    return body, f"multipart/form-data; boundary={boundary}"


def test_links_and_redirects_are_on_public_url(deployment):
    before = len(deployment.redirects), len(deployment.pages)
    with deployment.client() as client:
        # The e-mailed password reset link: on PUBLIC_URL, and it works through nginx.
        token = deployment.token(client, "/password/reset")
        sent = deployment.post(
            client, "/password/reset", data={"email": EMAIL, "csrf_token": token}
        )
        assert sent.status_code == 302
        with sqlite3.connect(deployment.database) as connection:
            (body,) = connection.execute(
                "SELECT body FROM outbox_messages WHERE to_email = ? ORDER BY id DESC LIMIT 1",
                (EMAIL,),
            ).fetchone()
        (link,) = re.findall(r"https?://\S+", body)
        assert link.startswith(f"{deployment.public_url}/password/reset/")
        opened = client.get(link)
        assert opened.status_code == 200
        assert 'name="password"' in opened.text

        api = client.get("/api/v1/openapi.json")
        assert api.status_code == 200
        assert [server["url"] for server in api.json()["servers"]] == [
            f"{deployment.public_url}/api/v1"
        ]
        assert client.get("/verify", params={"number": "67-2026-00001"}).status_code == 302
        assert deployment.login(client).status_code == 302
        assert client.get("/").status_code == 302

    redirects = deployment.redirects[before[0] :]
    # The reset request, /verify?number=, the login, / when logged in (and the login's).
    assert len(redirects) >= 4, redirects
    for request_url, location in redirects:
        assert not location.startswith("http://"), (request_url, location)
        assert not location.startswith("//"), (request_url, location)
        assert urljoin(request_url, location).startswith(f"{deployment.public_url}/")
    gunicorn = f"{HOST}:{deployment.gunicorn_port}"
    for page in deployment.pages[before[1] :]:
        assert gunicorn not in page
        for link in ABSOLUTE_LINK.findall(page):
            assert link.startswith(f"{deployment.public_url}/"), link


def test_storage_dir_is_not_served(deployment):
    secret = secrets.token_hex(16)
    deployment.storage.mkdir(parents=True, exist_ok=True)
    (deployment.storage / "documents").mkdir(exist_ok=True)
    for path in (deployment.storage / "leak.pdf", deployment.storage / "documents" / "leak.pdf"):
        path.write_text(secret)
    storage = str(deployment.storage).lstrip("/")
    paths = [
        "/leak.pdf",
        "/documents/leak.pdf",
        "/storage/leak.pdf",
        "/storage/documents/leak.pdf",
        "/instance/storage/leak.pdf",
        "/static/../storage/leak.pdf",
        "/static/%2e%2e/%2e%2e/storage/leak.pdf",
        f"/{storage}/leak.pdf",
        f"/static/../../../../../../{storage}/leak.pdf",
        "/storage/",
    ]
    with deployment.client() as client:
        for path in paths:
            response = client.get(path)
            assert secret not in response.text, path
            assert response.status_code in (301, 302, 400, 403, 404), (path, response.status_code)


def test_nginx_gives_each_request_its_own_id(deployment):
    """The id in the portal's log lines is nginx's, whatever the client sent."""
    with deployment.client() as client:
        first = client.get("/login", headers={"X-Request-Id": "chosen-by-the-client"})
        second = client.get("/login", headers={"X-Request-Id": "chosen-by-the-client"})
    ids = [first.headers["X-Request-Id"], second.headers["X-Request-Id"]]
    assert all(re.fullmatch(r"[0-9a-f]{32}", value) for value in ids), ids
    assert ids[0] != ids[1]
