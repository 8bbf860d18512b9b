"""The registry API against its own OpenAPI document, by schemathesis.

Every operation of ``/api/v1/openapi.json`` is called in process (WSGI, no network) with
requests generated from the document — valid ones and, in schemathesis' negative mode,
invalid ones — and every answer must pass all of schemathesis' default checks: no server
error, a documented status, content type, headers and body schema, valid data accepted and
invalid data refused, unsupported methods answered 405 with ``Allow``. The registry holds
two published snapshots with additions, removals and a change, so the answers carry data.
"""

from __future__ import annotations

import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, settings

from review_portal import create_app
from review_portal.enums import RegistryKind
from review_portal.registry.services import exclude_program, publish_registry
from tests.factories import (
    CoordinatorFactory,
    MunicipalityFactory,
    OrganizationFactory,
    admitted_program,
)
from tests.test_registry_exports import later, reissue


def number_from_one(session, *tables: str) -> None:
    """New rows of ``tables`` numbered from 1 on PostgreSQL too. SQLite numbers them from 1
    in every test (the ids of rolled-back rows are free again); a PostgreSQL sequence never
    goes back. So the small ids schemathesis draws first (1, 2) name the seeded rows on both
    databases, and ``/registry/diff`` is answered 200 on both."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for table in tables:
        assert session.scalar(sa.text(f"SELECT count(*) FROM {table}")) == 0
        session.execute(
            sa.text("SELECT setval(pg_get_serial_sequence(:table, 'id'), 1, false)"),
            {"table": table},
        )


@pytest.fixture
def registry_data(session):
    """Two snapshots of the certified registry: the second adds, removes and changes."""
    number_from_one(session, "municipalities", "registry_snapshots")
    coordinator = CoordinatorFactory()
    municipality = MunicipalityFactory(name="Северный")
    programs = [
        admitted_program(
            percent=percent,
            coordinator=coordinator,
            title=title,
            organization=OrganizationFactory(municipality=municipality),
        )[0]
        for title, percent in [("Робототехника", "81.00"), ("Театральная студия", "75.00")]
    ]
    first = publish_registry(RegistryKind.CERTIFIED, coordinator)
    admitted_program(title="Новая программа", coordinator=coordinator)
    exclude_program(programs[1].current_review, coordinator, "Программа не реализуется")
    reissue(programs[0], coordinator, "93.00")
    second = later(publish_registry(RegistryKind.CERTIFIED, coordinator))
    return first, second


# The document as an application serves it, read at collection (its route reads no
# database). ``schemathesis.pytest.from_fixture`` would read it from the ``app`` fixture,
# but it fails under pytest 9 (it reads ``Function._nodeid``, which pytest 9 removed); each
# case is sent to the test's own application instead (``app=``).
# ``include``: schemathesis leaves out the operation that served the document unless a
# filter names it; GET names every operation of the API.
schema = schemathesis.openapi.from_wsgi(
    "/api/v1/openapi.json", create_app("testing", SQLALCHEMY_DATABASE_URI="sqlite://")
).include(method="GET")


#: The query parameters the document types as integers.
INTEGERS = {
    parameter["name"]
    for parameter in schema.raw_schema["components"]["parameters"].values()
    if parameter["schema"].get("type") == "integer"
}


@schema.hook
def map_query(context, query):
    """Integers spelled as integers. Schemathesis also draws literals from the application's
    source ("constants"), and a float such as ``10.0`` of the analytics then reaches an
    integer parameter as ``age=10.0``: the same number to JSON Schema, but text in a query
    string, which the API rightly reads as no integer. The value is kept, only spelled
    ``10``; every other value, valid or not, is sent as drawn."""
    if not query:
        return query
    return {
        name: int(value)
        if name in INTEGERS and isinstance(value, float) and value.is_integer()
        else value
        for name, value in query.items()
    }


@schema.parametrize()
@settings(
    # About 690 requests per database in all phases (examples, coverage, fuzzing), the
    # same ones in every run: 14 s for both databases on a busy machine (load 5).
    max_examples=100,
    derandomize=True,
    database=None,
    # A busy machine may take longer than Hypothesis' 200 ms for one request.
    deadline=None,
    # The seeded registry is read by every example (the API only reads).
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_api_conforms_to_its_openapi_document(case, app, client, registry_data):
    # Every check schemathesis enables by default (none is left out).
    case.call_and_validate(app=app)
