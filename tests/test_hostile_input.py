"""Hostile input on every route: no answer of 5xx, and nothing written when refused.

Generated from the application, not a hand list: every rule of the URL map (with the
objects of the permission matrix's world for its ids), every field name of every form the
portal defines (sent in the query string of a GET and the body of a POST), and JSON bodies
for every POST. The values are the classes an adversarial pass found answered with 500:
NUL and other control characters, 2³¹, 2⁶³, 10²⁰, −1, an unknown choice, non-ASCII
digits; for JSON, deep nesting and an object where text is expected. Ids in URLs get the
numeric classes too (a route never matches them: 404).

NUL and control characters are refused before a view reads anything, so for those the test
also checks that no row of any table was added.
"""

from __future__ import annotations

import functools
import json

import pytest
import sqlalchemy as sa
from flask_wtf import FlaskForm

from review_portal.extensions import db
from tests.test_permissions import MATRIX, world  # noqa: F401 - the fixture

NUMBERS = [str(2**31), str(2**63), str(10**20), "-1", "٢"]
CONTROL = ["a\x00b", "x\x07y\x1b"]
CHOICE = ["bogus"]
VALUES = NUMBERS + CONTROL + CHOICE


@functools.cache
def form_field_names() -> tuple[str, ...]:
    """The field names of every form class of the portal."""
    import review_portal  # noqa: F401 - the forms are imported with the app

    names: set[str] = set()
    stack = list(FlaskForm.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if not cls.__module__.startswith("review_portal"):
            continue
        names.update(name for name, value in vars(cls).items() if hasattr(value, "field_class"))
    names.discard("csrf_token")
    return tuple(sorted(names))


def row_count() -> int:
    return sum(
        db.session.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        for table in db.metadata.sorted_tables
    )


def int_variants(url: str) -> list[str]:
    """``url`` with each numeric id replaced by each hostile number."""
    variants = []
    parts = url.split("?", 1)[0].split("/")
    for index, part in enumerate(parts):
        if part.isascii() and part.isdigit():
            for number in NUMBERS:
                variants.append("/".join([*parts[:index], number, *parts[index + 1 :]]))
    return variants


KEYS = sorted(MATRIX)


@pytest.mark.parametrize("key", KEYS, ids="-".join)
def test_hostile_input_never_answers_5xx(client, auth, world, key):  # noqa: F811
    endpoint, method = key
    if endpoint in ("static", "bootstrap.static", "accounts.logout"):
        pytest.skip("static files and logout read no input")
    case = MATRIX[key]
    actor = next(
        (
            a
            for a in ("coordinator", "admin", "applicant_own", "expert", "municipal")
            if case.expect.get(a) == "ok"
        ),
        None,
    )
    if actor is not None:
        auth.login(world.users[actor])
    url = case.url(world)
    fields = form_field_names()
    answers = []
    for variant in int_variants(url):
        response = client.open(variant, method=method)
        response.close()
        answers.append((variant, response.status_code))
    url, _, query = url.partition("?")
    given = dict(pair.split("=", 1) for pair in query.split("&") if pair)
    token = auth.token("/") if method != "GET" else None
    for value in VALUES:
        # Rows are counted only around the requests that must write nothing.
        before = row_count() if value in CONTROL else None
        data = dict.fromkeys(fields, value)
        if method == "GET":
            response = client.get(url, query_string={**data, **given})
        else:
            response = client.open(
                url, method=method, query_string=given, data={**data, "csrf_token": token}
            )
        response.close()
        answers.append((f"{url} fields={value!r}", response.status_code))
        if value in CONTROL:
            assert response.status_code == 400, f"{url}: {value!r} gave {response.status_code}"
            assert row_count() == before, f"{url}: {value!r} wrote a row"
    if method != "GET":
        for body in ("[" * 100_000, json.dumps({name: {"x": 1} for name in fields})):
            response = client.open(
                url,
                method=method,
                data=body,
                content_type="application/json",
                headers={"X-CSRFToken": token},
                query_string=given,
            )
            response.close()
            answers.append((f"{url} json {body[:12]!r}", response.status_code))
    failures = [(where, status) for where, status in answers if status >= 500]
    assert not failures, failures
