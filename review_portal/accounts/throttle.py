"""The limits on logging in, registering and asking for a password reset.

Logging in slows an attacker without locking the owner out. Only failed attempts (a wrong
password, or an e-mail without an account: both are counted alike, so the limits say
nothing about which accounts exist) are counted, under three counters:

* **account at an address** (``LOGIN_LIMIT_PER_PAIR``, 5 per 15 minutes): failures for one
  e-mail from one address. Someone guessing a password gets 5 tries per 15 minutes from
  their address; the owner logging in from any other address is not affected. There is
  deliberately no counter of an account's failures over all addresses: that is the
  counter that let anybody lock an owner out by typing wrong passwords for their e-mail.
  Guessing spread over many addresses is left to the password rules (ten characters,
  letters and digits) and argon2, and shows in the audit log (``account.login_failed``).
* **address** (``LOGIN_LIMIT_PER_ADDRESS``, 50 per 15 minutes): failures from one address
  over all e-mails, against someone trying one password on many accounts. Many people
  share one address (a school or a municipal office behind NAT), and people who type their
  password right are never counted, so the figure only has to be above what the honest
  users of one address get wrong in a quarter of an hour (25 people each mistyping twice).
  Past it the address gets one more try as each failure becomes 15 minutes old: 200
  guesses an hour instead of thousands.
* **trusted browser**: a browser in which someone has logged in to the account keeps a
  signed cookie naming it (``login_browser``, 180 days, only its keyed digest). An attempt
  for that account from that browser is counted on its own counter (the account in this
  browser, ``LOGIN_LIMIT_PER_PAIR``) instead of the two above, so neither a pupil guessing
  passwords on the school's address nor one guessing the teacher's own password there
  keeps the teacher out of the account from the browser they use.

A right password clears the failures of that account at that address (and in that
browser); the address's counter is never cleared by a success, or an attacker would clear
it by logging in to an account of their own between guesses.

Registration (both forms together), password-reset requests and the public verification
upload are counted per address on every submission. Reset requests are also counted per
e-mail asked for (from anywhere): past ``PASSWORD_RESET_LIMIT_PER_EMAIL`` the answer is
the usual "if an account exists we have sent a link" and no message goes out, so the limit
neither floods a mailbox nor tells whether the account exists; the owner still has the
links already sent.
"""

from __future__ import annotations

import secrets

from flask import current_app, request, url_for
from flask_babel import lazy_gettext as _l
from itsdangerous import BadData, URLSafeTimedSerializer

from review_portal.accounts.models import normalize_email
from review_portal.throttling import Rule, client_address, digest, forget, spend

#: The trusted-browser cookie, its lifetime and how many accounts it remembers.
BROWSER_COOKIE = "login_browser"
BROWSER_DAYS = 180
BROWSER_ACCOUNTS = 10


def _account() -> str:
    """The account the login form names (whether or not it exists), as a digest."""
    return digest(normalize_email(request.form.get("email", "")))


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="login-browser")


def _browser() -> dict | None:
    """This browser's id and the accounts logged in from it, when its cookie is good."""
    raw = request.cookies.get(BROWSER_COOKIE)
    if not raw:
        return None
    try:
        data = _serializer().loads(raw, max_age=BROWSER_DAYS * 24 * 3600)
    except BadData:
        return None
    if not (
        isinstance(data, dict)
        and isinstance(data.get("id"), str)
        and isinstance(data.get("accounts"), list)
    ):
        return None
    return data


def trusted_browser() -> bool:
    """Whether the account the form names has been logged in to from this browser."""
    browser = _browser()
    return browser is not None and _account() in browser["accounts"]


def _pair() -> str:
    return f"{_account()}@{client_address()}"


def _in_browser() -> str:
    browser = _browser()
    return f"{_account()}@browser:{browser['id'] if browser else ''}"


LOGIN_PAIR = Rule(
    "LOGIN_LIMIT_PER_PAIR",
    _pair,
    "login-pair",
    _l("Too many failed attempts to log in to this account from your address."),
    failures_only=True,
    exempt_when=trusted_browser,
)
LOGIN_ADDRESS = Rule(
    "LOGIN_LIMIT_PER_ADDRESS",
    client_address,
    "login-address",
    _l("Too many failed login attempts from your network address."),
    failures_only=True,
    exempt_when=trusted_browser,
)
LOGIN_BROWSER = Rule(
    "LOGIN_LIMIT_PER_PAIR",
    _in_browser,
    "login-browser",
    _l("Too many failed attempts to log in to this account from this browser."),
    failures_only=True,
    exempt_when=lambda: not trusted_browser(),
)
#: Every limit of the login form.
LOGIN = (LOGIN_PAIR, LOGIN_BROWSER, LOGIN_ADDRESS)

REGISTRATION = Rule(
    "REGISTRATION_LIMIT_PER_ADDRESS",
    client_address,
    "registration",
    _l("Too many registration attempts from your network address."),
)
RESET_REQUEST = Rule(
    "PASSWORD_RESET_LIMIT_PER_ADDRESS",
    client_address,
    "password-reset",
    _l("Too many password reset requests from your network address."),
)


def login_succeeded(response, email: str):
    """After a right password: this account's failures at this address (and in this
    browser) are forgotten, and the browser is trusted for the account from now on."""
    forget(LOGIN_PAIR, LOGIN_BROWSER)
    browser = _browser() or {"id": secrets.token_urlsafe(12), "accounts": []}
    mine = digest(normalize_email(email))
    accounts = [a for a in browser["accounts"] if a != mine][-(BROWSER_ACCOUNTS - 1) :]
    config = current_app.config
    response.set_cookie(
        BROWSER_COOKIE,
        _serializer().dumps({"id": browser["id"], "accounts": [*accounts, mine]}),
        max_age=BROWSER_DAYS * 24 * 3600,
        path=url_for("accounts.login"),
        secure=bool(config.get("SESSION_COOKIE_SECURE")),
        httponly=True,
        samesite="Lax",
    )
    return response


def reset_mail_allowed(email: str) -> bool:
    """Count a reset request for ``email``; false when that e-mail has had its share."""
    return spend(
        "PASSWORD_RESET_LIMIT_PER_EMAIL", "password-reset-email", digest(normalize_email(email))
    )
