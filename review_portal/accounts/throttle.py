"""Throttling of failed logins, per account and per client address (``limits`` library).

Counters live in the storage named by ``RATELIMIT_STORAGE_URI`` (memory for one process,
Redis when several processes serve the portal). Unknown e-mails are counted like known
ones, so the throttle reveals nothing about which accounts exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app
from limits import parse, storage, strategies


@dataclass
class LoginThrottle:
    limiter: strategies.MovingWindowRateLimiter
    per_account: object
    per_address: object

    def _keys(self, email: str, address: str | None):
        yield self.per_account, "login-account", email
        yield self.per_address, "login-address", address or "unknown"

    def allowed(self, email: str, address: str | None) -> bool:
        return all(self.limiter.test(item, *key) for item, *key in self._keys(email, address))

    def failed(self, email: str, address: str | None) -> None:
        for item, *key in self._keys(email, address):
            self.limiter.hit(item, *key)

    def succeeded(self, email: str) -> None:
        self.limiter.clear(self.per_account, "login-account", email)


def init_throttle(app: Flask) -> None:
    store = storage.storage_from_string(app.config["RATELIMIT_STORAGE_URI"])
    app.extensions["login_throttle"] = LoginThrottle(
        limiter=strategies.MovingWindowRateLimiter(store),
        per_account=parse(app.config["LOGIN_LIMIT_PER_ACCOUNT"]),
        per_address=parse(app.config["LOGIN_LIMIT_PER_ADDRESS"]),
    )


def login_throttle() -> LoginThrottle:
    return current_app.extensions["login_throttle"]
