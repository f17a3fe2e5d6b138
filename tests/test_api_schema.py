"""The OpenAPI schema is valid, the docs are served without a CDN, and schemathesis finds no
server error (nor fails any other check but positive_data_acceptance) against a live server."""

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection

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
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert {"401", "406", "429"} <= codes, (method, path)
            if method in ("post", "put", "patch"):
                assert {"400", "403", "413"} <= codes, (method, path)
            if path.startswith("/api/v1/me/"):
                continue  # the caller's own settings: no team, no 404/412 (test_api_preferences)
            if path == "/api/v1/specs/check/":  # reads only the posted file: no team, no 404
                assert {"400", "403", "413", "415"} <= codes and "404" not in codes
            elif method in ("post", "put", "patch"):
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


GUIDE = (Path(__file__).parent / "fixtures" / "specs" / "guide_example.md").read_text()


@contextlib.contextmanager
def connection_kept_open():
    """As Django's test client does: a WSGI request would otherwise close the database
    connection when it finishes, and the test's transaction with it."""
    signals = (request_started, request_finished)
    for signal in signals:
        signal.disconnect(close_old_connections)
    try:
        yield
    finally:
        for signal in signals:
            signal.connect(close_old_connections)


def test_spec_answers_conform_to_the_schema(world, api):
    """Each answer of the spec endpoints, made for real (schemathesis seldom guesses a team
    slug, so it rarely gets past the import's 404), passes schemathesis's response checks:
    status code, content type (markdown for the exports, JSON for errors), headers, body.
    The calls go to Django's WSGI application in this thread (no live server)."""
    import schemathesis
    from django.core.wsgi import get_wsgi_application
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi import checks

    from api.models import ApiToken

    raw = api.anonymous().get(url("schema/"), HTTP_ACCEPT="application/vnd.oai.openapi+json")
    schema = schemathesis.openapi.from_dict(json.loads(raw.content))
    schema.app = get_wsgi_application()  # in this thread, so it sees the test's data
    _, secret = ApiToken.objects.create_token(world.member, "conformance")
    into_plan = {"team": world.team.slug, "plan": world.plan.key}
    guide = {"markdown": GUIDE}
    with_file = {"file": GUIDE.encode()}
    milestone, plan = {"id": world.milestone.pk}, {"id": world.plan.pk}
    json_, multipart = "application/json", "multipart/form-data"
    form = "application/x-www-form-urlencoded"
    answers = [
        ("POST specs/import", {}, json_, {**into_plan, **guide, "dry_run": True}, 200),
        ("POST specs/import", {}, json_, {**into_plan, **guide}, 201),
        ("POST specs/import", {}, multipart, {**into_plan, **with_file}, 201),
        ("POST specs/import", {}, multipart, {**into_plan, "file": b""}, 400),  # the document
        ("POST specs/import", {}, json_, {**into_plan, "markdown": "\x00\x01"}, 400),
        ("POST specs/import", {}, json_, {**guide, "team": "x!", "plan": 3}, 400),  # fields
        ("POST specs/import", {}, json_, {**guide, "team": world.other_team.slug}, 404),
        ("POST specs/import", {}, "text/plain", "# A spec", 415),
        ("POST specs/check", {}, json_, guide, 200),
        ("POST specs/check", {}, multipart, with_file, 200),
        ("POST specs/check", {}, form, guide, 200),
        ("POST specs/check", {}, json_, {"markdown": "", "shape": "x"}, 400),
        ("POST specs/check", {}, multipart, {"markdown": "#" * (3 * 1024 * 1024)}, 413),
        ("GET specs/milestones/{id}/check", milestone, None, None, 200),
        ("GET specs/milestones/{id}/export", milestone, None, None, 200),
        ("GET specs/plans/{id}/export", plan, None, None, 200),
        ("GET specs/plans/{id}/export", {"id": 10**9}, None, None, 404),
        ("GET specs/plans/{id}/export", plan, None, None, 406, "application/json"),
    ]  # fmt: skip
    for label, path_parameters, media_type, body, status, *accept in answers:
        method, path = label.split()
        operation = schema.find_operation_by_label(f"{method} {url(path)}/")
        kwargs = {"body": body, "media_type": media_type} if method == "POST" else {}
        case = operation.Case(path_parameters=path_parameters, **kwargs)
        headers = {"Authorization": f"Bearer {secret}"}
        if accept:
            headers["Accept"] = accept[0]
        with connection_kept_open():
            response = case.call(headers=headers)
        assert response.status_code == status, (label, body, response.text[:300])
        case.validate_response(
            response,
            checks=[
                not_a_server_error,
                checks.status_code_conformance,
                checks.content_type_conformance,
                checks.response_headers_conformance,
                checks.response_schema_conformance,
            ],
        )
    assert world.team.milestones.count() == 1 + 2  # the world's own and the two imports


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


# The spec endpoints' reads of one object, and which object kind their id is.
SPEC_READS = {
    "specs/milestones/{id}/export": "milestones",
    "specs/milestones/{id}/check": "milestones",
    "specs/plans/{id}/export": "plans",
}


# The stateful phase chains valid requests only: there, a value a link carries replaces a
# parameter generated to be invalid, and negative_data_rejection then flags a valid request
# (schemathesis/schemathesis#2983). Invalid data is sent in the examples and fuzzing phases.
STATEFUL_POSITIVE_ONLY = '[phases.stateful.generation]\nmode = "positive"\n'


def schemathesis_config(objects: dict) -> str:
    """schemathesis.toml: the GET of each detail path uses an object that exists."""
    paths = {
        f"{resource}/{{{'slug' if resource == 'teams' else 'id'}}}": key
        for resource, key in objects.items()
    }
    paths.update({path: objects[kind] for path, kind in SPEC_READS.items()})
    sections = [STATEFUL_POSITIVE_ONLY]
    for path, key in paths.items():
        name = "slug" if path.startswith("teams/") else "id"
        sections.append(
            f'[[operations]]\ninclude-name = "GET /api/v1/{path}/"\n'
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
    reachable = ["milestones/{id}", "plans/{id}", *SPEC_READS]
    assert not {f"GET /api/v1/{path}/" for path in reachable} & unreachable
