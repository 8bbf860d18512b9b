"""Every URL answers a method it does not take with 405 and an ``Allow`` header that lists
exactly the methods it takes (RFC 9110), on pages and in the API alike.

Generated from the URL map: one request per rule, to a URL built from the rule with a
value its converters accept, with a method that no rule of that URL pattern takes.
"""

from __future__ import annotations

import re
from collections import defaultdict

import pytest
from werkzeug.routing import AnyConverter, IntegerConverter

from review_portal import create_app

PROBES = ("DELETE", "PUT", "PATCH", "POST", "GET")


def _rules():
    app = create_app("testing", SQLALCHEMY_DATABASE_URI="sqlite://")
    return list(app.url_map.iter_rules())


RULES = _rules()


def allowed_methods(url_map) -> dict[str, set[str]]:
    """The methods of each URL pattern: the union over the rules that share it (one
    endpoint may answer GET and another POST on one path)."""
    methods: dict[str, set[str]] = defaultdict(set)
    for rule in url_map.iter_rules():
        methods[rule.rule] |= rule.methods
    return methods


def sample_url(rule) -> str:
    """A URL of ``rule`` whose values its converters accept."""
    values = {}
    # The converters of a rule's arguments are only kept in this private attribute.
    for name, converter in rule._converters.items():
        if isinstance(converter, AnyConverter):
            values[name] = sorted(converter.items)[0]
        elif isinstance(converter, IntegerConverter):
            values[name] = 1
        else:
            # "x", or a digit where the converter asks for one (a registry number).
            values[name] = "x" if re.fullmatch(converter.regex, "x") else "1"
    return rule.build(values, append_unknown=False)[1]


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: f"{rule.endpoint}:{rule.rule}")
def test_a_method_the_url_does_not_take_is_405_with_allow(client, rule):
    methods = allowed_methods(client.application.url_map)[rule.rule]
    method = next(m for m in PROBES if m not in methods)
    url = sample_url(rule)

    for accept in ("text/html", "application/json"):
        response = client.open(url, method=method, headers={"Accept": accept})

        assert response.status_code == 405, (url, method, accept)
        allow = {m.strip() for m in response.headers.get("Allow", "").split(",") if m.strip()}
        assert allow == methods, (url, method, accept)
