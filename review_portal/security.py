"""HTTP hardening of every answer, and the production start-up check.

* Headers on every response: the content security policy (``CONTENT_SECURITY_POLICY``: the
  portal's own scripts, styles, fonts and images only; no inline script or style, no
  framing), ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: same-origin``, and on
  HTTPS answers ``Strict-Transport-Security`` (``HSTS_SECONDS``).
* ``Cache-Control: no-store`` and ``Pragma: no-cache`` on every answer to a logged-in user
  (:func:`private_answers`): nothing a user saw stays in a shared or browser cache after
  they leave; static files and anonymous answers (the public registry) keep their caching.
* Behind reverse proxies, ``TRUSTED_PROXY_HOPS`` of them are believed for the client's
  address, scheme and host (``X-Forwarded-*``), so throttling counts the real client and a
  request that came in over HTTPS knows it; with 0 nothing forwarded is believed.
* Production refuses to start while :func:`config.production_problems` finds anything.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, g, request, session

from review_portal.config import ConfigurationError, production_problems


def check_production(app: Flask) -> None:
    """Refuse to start a production application whose hardening does not hold."""
    problems = production_problems(app.config)
    if problems:
        raise ConfigurationError("Production configuration is not safe: " + "; ".join(problems))


def init_security(app: Flask) -> None:
    if app.config.get("PRODUCTION"):
        check_production(app)
    hops = int(app.config.get("TRUSTED_PROXY_HOPS") or 0)
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    app.after_request(secure_headers)
    app.after_request(private_answers)


def secure_headers(response: Response) -> Response:
    """The headers of every answer (downloads of files included: nothing else sets them)."""
    config = current_app.config
    policy = config.get("CONTENT_SECURITY_POLICY")
    if policy:
        response.headers.setdefault("Content-Security-Policy", policy)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    seconds = int(config.get("HSTS_SECONDS") or 0)
    if seconds and request.is_secure:
        response.headers.setdefault(
            "Strict-Transport-Security", f"max-age={seconds}; includeSubDomains"
        )
    return response


def private_answers(response: Response) -> Response:
    """An answer to a logged-in user is stored by no cache: ``no-store`` and ``private``
    (whatever else the view said stays, except ``public`` and the lifetimes)."""
    if _answers_a_user():
        control = response.cache_control
        control.public = False
        control.max_age = None
        control.s_maxage = None
        control.private = True
        control.no_store = True
        response.headers["Pragma"] = "no-cache"
    return response


def _answers_a_user() -> bool:
    """Whether the answer is for a logged-in user: the user this request loaded, or (when
    the view never asked) a session or a remember cookie that claims one. Static files are
    the same for everybody."""
    endpoint = request.endpoint or ""
    if endpoint == "static" or endpoint.endswith(".static"):
        return False
    user = g.get("_login_user")
    if user is not None:
        # A user the request loaded (Flask-Login loads active users only), told without
        # the database: this runs after the request's commit, which expired the user.
        from review_portal.db import loaded_id

        return loaded_id(user) is not None or bool(user.is_authenticated)
    config = current_app.config
    if config.get("SESSION_COOKIE_NAME", "session") in request.cookies and "_user_id" in session:
        return True
    return config.get("REMEMBER_COOKIE_NAME", "remember_token") in request.cookies
