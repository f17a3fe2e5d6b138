"""The OpenAPI schema is valid, the docs are served without a CDN, and schemathesis finds no
server error (nor fails any other check but positive_data_acceptance) against a live server."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from milestones import services, signoffs
from milestones.models import Activity
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
        if path.startswith("/api/v1/me/"):
            continue  # the caller's own settings: no team, no 403/404/412 (test_api_preferences)
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


# Every check schemathesis has but positive_data_acceptance: the schema says "an integer" for
# a parent id, and most integers name no object of the caller's teams, so the API rightly
# answers 400 to such "valid" bodies.
CHECKS = [
    "not_a_server_error", "status_code_conformance", "content_type_conformance",
    "response_headers_conformance", "response_schema_conformance", "negative_data_rejection",
    "missing_required_header", "unsupported_method", "allow_header_conformance",
    "use_after_free", "ensure_resource_availability", "ignored_auth",
    "object_level_authorization",
]  # fmt: skip


def existing_objects(world) -> dict[str, object]:
    """One object of each kind, so detail reads return real bodies (their schema is checked)
    instead of 404 for the ids schemathesis makes up."""
    m2 = make_milestone(world.plan, world.admin, title="Second")
    deliverable = make_deliverable(world.milestone, world.admin)
    role = signoffs.add_role(world.milestone, actor=world.admin, name="QA", holder=world.member)
    return {
        "plans": world.plan.pk,
        "milestones": world.milestone.pk,
        "health": world.milestone.pk,
        "deliverables": deliverable.pk,
        "criteria": make_criterion(world.admin, deliverable=deliverable).pk,
        "risks": make_risk(world.milestone, world.admin).pk,
        "blockers": make_blocker(world.milestone, world.admin).pk,
        "status-updates": make_status_update(world.milestone, world.admin).pk,
        "dependencies": services.add_dependency(world.milestone, m2, actor=world.admin).pk,
        "signoff-roles": role.pk,
        "signoff-decisions": signoffs.decide(
            world.milestone, user=world.member, role=role, outcome="rejected", comment="No"
        ).pk,
        "activity": Activity.objects.filter(team=world.team).latest("pk").pk,
        "teams": world.team.slug,
    }


def schemathesis_config(objects: dict) -> str:
    """schemathesis.toml: the GET of each detail path uses an object that exists."""
    sections = []
    for resource, key in objects.items():
        name = "slug" if resource == "teams" else "id"
        sections.append(
            f'[[operations]]\ninclude-name = "GET /api/v1/{resource}/{{{name}}}/"\n'
            f"parameters = {{ {name} = {json.dumps(key)} }}\n"
        )
    return "\n".join(sections)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_schemathesis_finds_no_server_error(world, api, live_server, settings, tmp_path):
    """Fuzz every operation (and stateful sequences of them) with a member's token; every
    check in CHECKS passes. Prints schemathesis's summary (run with -s to see it)."""
    settings.LOGIN_LOCKOUT_FAILURES = 10**6  # schemathesis sends bad tokens on purpose
    from api.models import ApiToken

    (tmp_path / "schemathesis.toml").write_text(schemathesis_config(existing_objects(world)))
    _, secret = ApiToken.objects.create_token(world.member, "schemathesis")
    # The schema from the test client, not over HTTP: it takes seconds to generate on a busy
    # machine, longer than schemathesis waits for a response.
    schema = tmp_path / "schema.json"
    schema.write_bytes(
        api.anonymous().get(url("schema/"), HTTP_ACCEPT="application/vnd.oai.openapi+json").content
    )
    report = tmp_path / "report.json"
    command = [
        str(SCHEMATHESIS), "run", str(schema), "--url", live_server.url,
        "--header", f"Authorization: Bearer {secret}",
        "--checks", ",".join(CHECKS),
        "--phases", "examples,fuzzing,stateful", "--max-examples", "8",
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
    print(output)
    assert result.returncode == 0, output
    summary = json.loads(report.read_text())
    operations = sum(len(methods) for methods in json.loads(schema.read_text())["paths"].values())
    assert summary["operations"]["tested"] == operations
    assert summary["test_cases"]["generated"] > 5 * operations
    assert summary["test_cases"]["with_failures"] == 0
    assert not summary["errors"]
    unreachable = set(summary["warnings"]["missing_test_data"])
    assert not {f"GET /api/v1/{resource}/{{id}}/" for resource in ("milestones", "plans")} & (
        unreachable
    )
