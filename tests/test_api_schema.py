"""The OpenAPI schema is valid, the docs are served without a CDN, and schemathesis finds no
server error (nor any other check but positive_data_acceptance) against a live server."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from milestones import services
from tests import test_api_support as support
from tests.factories import (
    make_blocker,
    make_criterion,
    make_deliverable,
    make_milestone,
    make_risk,
    make_status_update,
)
from tests.test_api_support import url

api, no_throttle = support.api, support.no_throttle  # fixtures the API tests share


def test_schema_validates_without_warnings(tmp_path):
    """`manage.py spectacular --validate --fail-on-warn` passes."""
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yml"))
    assert (tmp_path / "s.yml").read_text().startswith("openapi: 3.")


def test_schema_endpoint_serves_openapi_3(api):
    response = api.anonymous().get(url("schema/"), HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/milestones/{id}/" in schema["paths"]


def test_every_operation_documents_its_errors(api):
    schema = json.loads(
        api.anonymous().get(url("schema/"), HTTP_ACCEPT="application/vnd.oai.openapi+json").content
    )
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert {"401", "429"} <= codes, (method, path)
            if method in ("post", "put", "patch"):
                assert {"400", "403", "404"} <= codes, (method, path)
            if method in ("put", "patch") or (method == "delete"):
                assert {"412"} <= codes, (method, path)
            if "{" in path:
                assert "404" in codes, (method, path)
    patch = schema["paths"]["/api/v1/milestones/{id}/"]["patch"]
    if_match = [p for p in patch["parameters"] if p["name"] == "If-Match"]
    assert if_match and if_match[0]["required"] is True
    assert "428" in patch["responses"]
    assert "ETag" in patch["responses"]["200"]["headers"]


def test_docs_are_served_from_this_server_not_a_cdn(api):
    response = api.anonymous().get(url("docs/"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "drf_spectacular_sidecar/swagger-ui-dist" in html
    for cdn in ("cdn.jsdelivr.net", "unpkg.com", "cdnjs.cloudflare.com"):
        assert cdn not in html


SCHEMATHESIS = Path(sys.executable).with_name("st")


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_schemathesis_finds_no_server_error(world, api, live_server, settings, tmp_path):
    """Fuzz every operation with a member's token: all checks pass but positive_data_acceptance
    (ids generated from the schema mostly do not exist, so valid-looking writes get 400/404).
    """
    settings.LOGIN_LOCKOUT_FAILURES = 10**6  # schemathesis sends bad tokens on purpose
    from api.models import ApiToken

    m2 = make_milestone(world.plan, world.admin, title="Second")
    deliverable = make_deliverable(world.milestone, world.admin)
    make_criterion(world.admin, deliverable=deliverable)
    make_criterion(world.admin, milestone=world.milestone)
    make_risk(world.milestone, world.admin)
    make_blocker(world.milestone, world.admin)
    make_status_update(world.milestone, world.admin)
    services.add_dependency(world.milestone, m2, actor=world.admin)
    _, secret = ApiToken.objects.create_token(world.member, "schemathesis")

    report = tmp_path / "report.json"
    command = [
        str(SCHEMATHESIS), "run", f"{live_server.url}/api/v1/schema/",
        "--header", f"Authorization: Bearer {secret}",
        "--checks", "all", "--exclude-checks", "positive_data_acceptance",
        "--phases", "examples,fuzzing,stateful", "--max-examples", "10",
        # The live server shares one SQLite connection between its request threads, so two
        # concurrent requests could trip over each other's transactions there; not on PostgreSQL.
        "--workers", "1" if connection.vendor == "sqlite" else "2",
        "--seed", "7", "--max-failures", "20",
        "--report", "json", "--report-json-path", str(report),
    ]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=os.environ
    )
    output = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, output
    assert "passed" in result.stdout, output
