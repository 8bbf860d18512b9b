"""Rate limits on the portal's public doors, on Flask-Limiter.

A view is marked with :func:`throttled` and the :class:`Rule` objects that apply to it;
:func:`init_throttling` gives every application its own ``Limiter`` (Flask-Limiter keeps its
storage and settings on the instance, so one instance shared by several applications, as
the tests create them, would share their counters and the last one's settings) and wraps
the marked views of that application. Counters live in the ``limits`` storage
``RATELIMIT_STORAGE_URI`` (``memory://`` for one process, ``redis://…`` shared by all web
processes), in a moving window (``RATELIMIT_STRATEGY``).

Every limit is a setting (a ``limits`` string such as ``"5 per 15 minutes"``), read on each
request, so an operator changes it in the configuration and a test may lower it.

The client's address is ``request.remote_addr``: behind ``TRUSTED_PROXY_HOPS`` reverse
proxies it is the address they saw (:mod:`review_portal.security` installs ``ProxyFix``),
never a raw ``X-Forwarded-For`` that a client could write itself.

**When the storage is unreachable** (Redis stopped, its address closed or silent) the
portal fails *over*, neither open nor closed: each process counts in its own memory
(Flask-Limiter's in-memory fallback, ``RATELIMIT_IN_MEMORY_FALLBACK_ENABLED``), logs the
warning "Rate limit storage unreachable - falling back to in-memory storage" once, and
tries the storage again now and then. Logging in keeps working and keeps its limits, per
process instead of shared (with N web processes an attacker gets up to N times the
tries for as long as the outage lasts); failing closed would lock every user out because
of a counter, failing open would drop the protection. A request during which the storage
goes away (its check passed, a later count fails) is answered as usual and the error
logged: no user ever gets a 500 because of the counters. Redis is given short timeouts
(:data:`REDIS_TIMEOUT`), so a silent address costs a request a second, not a minute.

A refused request raises ``RateLimitExceeded`` (429); :mod:`review_portal.main.errors`
answers it with the rule's message, ``Retry-After`` (:func:`retry_after`) and a page or
JSON. The rules themselves are where their views are (the login rules in
:mod:`review_portal.accounts.throttle`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app, g, request
from flask_limiter import Limiter
from limits import parse_many

log = logging.getLogger(__name__)

#: Where the application's ``Limiter`` is kept in ``app.extensions``.
EXTENSION = "review_portal_limiter"

#: Seconds Redis may take to accept a connection or to answer (the counters' storage).
REDIS_TIMEOUT = 1.0


def client_address() -> str:
    """The client's address as the portal believes it (see the module's docstring)."""
    return request.remote_addr or "unknown"


def digest(text: str) -> str:
    """A keyed digest of ``text`` (an e-mail address): counters and cookies never hold the
    address itself, and nobody without the ``SECRET_KEY`` can tell whose counter is whose."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, b"throttle:" + text.encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class Rule:
    """One limit: ``setting`` names the configuration entry with the ``limits`` string,
    ``key`` what is counted (an address, an account at an address), ``scope`` the counters'
    name (the same scope on two views shares the counters), ``message`` what a refused
    client reads."""

    setting: str
    key: Callable[[], str]
    scope: str
    message: object
    #: Counted only when the view calls :func:`count_failure` (a wrong password), not for
    #: every request; checked before every request all the same.
    failures_only: bool = False
    #: When it returns true the rule is neither checked nor counted for this request.
    exempt_when: Callable[[], bool] | None = None

    def value(self) -> str:
        return current_app.config[self.setting]


def throttled(*rules: Rule):
    """Mark a view with the rules checked on its POST requests (GET shows a form)."""

    def mark(view):
        view.throttle_rules = (*getattr(view, "throttle_rules", ()), *rules)
        return view

    return mark


def _not_a_post() -> bool:
    return request.method != "POST"


def init_throttling(app: Flask) -> None:
    """This application's limiter, and its marked views wrapped to check their rules
    (after the blueprints are registered: it walks the views)."""
    uri = app.config["RATELIMIT_STORAGE_URI"]
    limiter = Limiter(
        key_func=client_address,
        storage_uri=uri,
        storage_options=(
            {"socket_connect_timeout": REDIS_TIMEOUT, "socket_timeout": REDIS_TIMEOUT}
            if uri.startswith(("redis://", "rediss://"))
            else {}
        ),
        strategy=app.config.get("RATELIMIT_STRATEGY", "moving-window"),
        # Retry-After is written by the 429 handler; no X-RateLimit-* on ordinary answers.
        headers_enabled=False,
        # The in-memory fallback takes over when the storage fails; an error past it (the
        # storage lost in the middle of a request) is logged, never a 500 (see above).
        swallow_errors=True,
    )
    limiter.init_app(app)
    # Every rule below counts POST requests only, and no default limits are set: other
    # requests skip Flask-Limiter's per-request walk of the rules (~0.15 ms of each page).
    limiter.request_filter(_not_a_post)
    app.extensions[EXTENSION] = limiter
    if not limiter.enabled:
        return
    for endpoint, view in list(app.view_functions.items()):
        rules = getattr(view, "throttle_rules", ())
        if not rules:
            continue
        for rule in rules:
            view = limiter.shared_limit(
                rule.value,
                scope=rule.scope,
                key_func=rule.key,
                methods=["POST"],
                error_message=lambda rule=rule: str(rule.message),
                exempt_when=rule.exempt_when,
                deduct_when=_failed if rule.failures_only else None,
            )(view)
        app.view_functions[endpoint] = view


def limiter_of(app: Flask) -> Limiter:
    return app.extensions[EXTENSION]


def _limiter() -> Limiter:
    return limiter_of(current_app)


def _storage_failed(limiter: Limiter, error: Exception) -> None:
    """Log (once per application) that the storage failed under one of our own calls."""
    if not getattr(limiter, "review_portal_warned", False):
        limiter.review_portal_warned = True
        log.warning("rate limit storage unreachable (%s); counting in memory meanwhile", error)


def count_failure() -> None:
    """This request failed (a wrong password): its ``failures_only`` rules count it."""
    g.throttle_failure = True


def _failed(response) -> bool:
    return bool(g.get("throttle_failure"))


def forget(*rules: Rule) -> None:
    """Clear this request's counters of ``rules`` (a right password clears the failures
    counted for that account at this address)."""
    limiter = _limiter()
    if not limiter.enabled:
        return
    scopes = {rule.scope for rule in rules}
    for counted in limiter.current_limits:
        if counted.request_args[-1] in scopes:
            try:
                limiter.limiter.clear(counted.limit, *counted.request_args)
            except Exception as error:  # noqa: BLE001 - the counters' storage is unreachable
                _storage_failed(limiter, error)
                return


def spend(setting: str, scope: str, key: str) -> bool:
    """Count one use of ``key`` against the limit in ``setting``; false (and nothing
    counted) when it is used up. For limits whose refusal the view answers itself."""
    limiter = _limiter()
    if not limiter.enabled:
        return True
    prefix = current_app.config.get("RATELIMIT_KEY_PREFIX")
    args = [prefix, key, scope] if prefix else [key, scope]
    items = parse_many(current_app.config[setting])
    try:
        if not all(limiter.limiter.test(item, *args) for item in items):
            return False
        for item in items:
            limiter.limiter.hit(item, *args)
    except Exception as error:  # noqa: BLE001 - the counters' storage is unreachable
        # Only when the storage fails within this very request (otherwise ``limiter``
        # already counts in memory): this one use is let through uncounted.
        _storage_failed(limiter, error)
    return True


def retry_after() -> int | None:
    """Seconds until the limit that refused this request lets one more through."""
    limiter = current_app.extensions.get(EXTENSION)
    counted = limiter.current_limit if limiter is not None and limiter.enabled else None
    if counted is None or not counted.breached:
        return None
    try:
        reset = counted.window[0]
    except Exception as error:  # noqa: BLE001 - the counters' storage is unreachable
        _storage_failed(limiter, error)
        return None
    return max(1, math.ceil(reset - time.time()))
