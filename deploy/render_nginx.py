#!/usr/bin/env python3
"""Render the nginx site of the portal (deploy/nginx/review-portal.conf) from its settings.

    python3 deploy/render_nginx.py --env-file /etc/review-portal/review-portal.env \\
        --certificate /etc/ssl/certs/review-portal.pem \\
        --certificate-key /etc/ssl/private/review-portal.key \\
        > /etc/nginx/sites-available/review-portal.conf

``PUBLIC_URL`` gives the server name, the HTTPS port and the target of the HTTP redirect;
``MAX_UPLOAD_MB`` gives ``client_max_body_size`` (``MAX_UPLOAD_MB + 1`` MB, the portal's
own ``MAX_CONTENT_LENGTH``). They are read from ``--env-file`` (the systemd
``EnvironmentFile``: ``KEY=VALUE`` lines) or, without it, from the environment.
Standard library only: it runs with the system's ``python3``, outside the portal's venv.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

TEMPLATE = Path(__file__).resolve().parent / "nginx" / "review-portal.conf"
PLACEHOLDER = re.compile(r"@([A-Z_]+)@")
#: The portal's default upload limit (review_portal/config.py), used when the settings do
#: not name one.
DEFAULT_MAX_UPLOAD_MB = 20


class RenderError(ValueError):
    """The settings cannot make a working site (the message says which and why)."""


def read_env_file(path: str | Path) -> dict[str, str]:
    """The ``KEY=VALUE`` lines of a systemd ``EnvironmentFile`` (comments and blank lines
    skipped, one pair of surrounding quotes removed)."""
    values = {}
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise RenderError(f"{path}:{number}: not a KEY=VALUE line: {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def client_max_body_size_mb(max_upload_mb: int) -> int:
    """nginx's limit for ``MAX_UPLOAD_MB``: the portal's ``MAX_CONTENT_LENGTH`` in MB."""
    return max_upload_mb + 1


def site_values(
    settings: dict[str, str],
    *,
    certificate: str,
    certificate_key: str,
    upstream: str = "127.0.0.1:8000",
    listen_address: str = "",
    http_port: int = 80,
    https_port: int | None = None,
) -> dict[str, str]:
    """The value of every placeholder of the template."""
    public_url = (settings.get("PUBLIC_URL") or "").strip()
    parts = urlsplit(public_url)
    if parts.scheme != "https" or not parts.hostname:
        raise RenderError(f"PUBLIC_URL must be the portal's https:// address, not {public_url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise RenderError(
            f"PUBLIC_URL must have no path ({public_url!r}): the site serves the portal "
            "at the root of its host"
        )
    try:
        max_upload_mb = int(settings.get("MAX_UPLOAD_MB") or DEFAULT_MAX_UPLOAD_MB)
    except ValueError:
        raise RenderError(
            f"MAX_UPLOAD_MB must be a number: {settings['MAX_UPLOAD_MB']!r}"
        ) from None
    if max_upload_mb < 1:
        raise RenderError(f"MAX_UPLOAD_MB must be positive: {max_upload_mb}")
    try:
        public_port = parts.port
    except ValueError:
        raise RenderError(f"PUBLIC_URL has an invalid port: {public_url!r}") from None
    prefix = f"{listen_address}:" if listen_address else ""
    return {
        "SERVER_NAME": parts.hostname,
        "PUBLIC_URL": f"https://{parts.netloc}",
        "PUBLIC_HOST": parts.netloc,
        "HTTP_LISTEN": f"{prefix}{http_port}",
        "HTTPS_LISTEN": f"{prefix}{https_port or public_port or 443}",
        "UPSTREAM": upstream,
        "CLIENT_MAX_BODY_SIZE": f"{client_max_body_size_mb(max_upload_mb)}m",
        "MAX_UPLOAD_MB": str(max_upload_mb),
        "SSL_CERTIFICATE": certificate,
        "SSL_CERTIFICATE_KEY": certificate_key,
    }


def render(values: dict[str, str], template: str | None = None) -> str:
    """The template with every placeholder replaced outside comments (where the names
    stay, documenting the file); one without a value is an error."""
    text = TEMPLATE.read_text(encoding="utf-8") if template is None else template
    for name, value in values.items():
        if re.search(r"[\s;{}'\"]", value):
            raise RenderError(f"{name} may not contain spaces, quotes, ';' or braces: {value!r}")
    lines = []
    for line in text.splitlines(keepends=True):
        if not line.lstrip().startswith("#"):
            unknown = sorted(set(PLACEHOLDER.findall(line)) - set(values))
            if unknown:
                raise RenderError("no value for " + ", ".join(f"@{name}@" for name in unknown))
            line = PLACEHOLDER.sub(lambda match: values[match.group(1)], line)
        lines.append(line)
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env-file", help="the portal's environment file (default: environ)")
    parser.add_argument("--certificate", default="/etc/ssl/certs/review-portal.pem")
    parser.add_argument("--certificate-key", default="/etc/ssl/private/review-portal.key")
    parser.add_argument("--upstream", default="127.0.0.1:8000", help="gunicorn's --bind")
    parser.add_argument("--listen-address", default="", help="e.g. 127.0.0.1 (default: all)")
    parser.add_argument("--http-port", type=int, default=80)
    parser.add_argument("--https-port", type=int, help="default: the port of PUBLIC_URL, else 443")
    parser.add_argument("-o", "--output", help="write here instead of standard output")
    args = parser.parse_args(argv)
    try:
        settings = read_env_file(args.env_file) if args.env_file else dict(os.environ)
        text = render(
            site_values(
                settings,
                certificate=args.certificate,
                certificate_key=args.certificate_key,
                upstream=args.upstream,
                listen_address=args.listen_address,
                http_port=args.http_port,
                https_port=args.https_port,
            )
        )
    except (RenderError, OSError) as error:
        print(f"render_nginx: {error}", file=sys.stderr)
        return 2
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
