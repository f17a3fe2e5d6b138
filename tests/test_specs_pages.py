"""Spec pages and API: upload → preview → import, permissions, downloads, the milestone page's
Spec check panel, the plan page's column, and query budgets."""

import io
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Role
from api.models import ApiToken
from milestones.models import Milestone
from specs.models import SpecUpload
from tests.factories import (
    add_member,
    grow_team,
    make_criterion,
    make_deliverable,
    make_milestone,
    make_user,
)

FIXTURES = Path(__file__).parent / "fixtures" / "specs"
GUIDE = (FIXTURES / "guide_example.md").read_bytes()
HX = {"HTTP_HX_REQUEST": "true"}


def upload_file(content: bytes, name="spec.md"):
    handle = io.BytesIO(content)
    handle.name = name
    return handle


def import_url(world):
    return reverse("specs:import", args=[world.team.slug])


def post_upload(client, world, content=GUIDE, **extra):
    return client.post(
        import_url(world), {"file": upload_file(content), "plan": world.plan.pk, **extra}
    )


def milestones_in(world) -> int:
    return Milestone.objects.filter(team=world.team).count()


# --- Upload, preview, import ----------------------------------------------------------------------


def test_upload_shows_a_preview_and_saves_nothing_until_confirmed(world, client_for):
    client = client_for(world.member)
    before = milestones_in(world)
    response = post_upload(client, world)
    assert response.status_code == 302
    preview = client.get(response["Location"])
    page = preview.content.decode()
    assert preview.status_code == 200
    assert "Preview: spec.md" in page and "<strong>5</strong> deliverables" in page
    assert "<strong>22</strong> acceptance criteria" in page and "<strong>4</strong> risks" in page
    assert "Backend Engineering Team" in page and "is not a member of this team" in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert milestones_in(world) == before
    confirmed = client.post(response["Location"])
    assert confirmed.status_code == 302
    created = Milestone.objects.get(team=world.team, title="Phase 1: Export Infrastructure Ready")
    assert confirmed["Location"] == reverse("milestone", args=[world.team.slug, created.key])
    assert created.deliverables.count() == 5
    assert not SpecUpload.objects.exists()  # the upload is gone once imported


def test_pasted_markdown_works_too(world, client_for):
    client = client_for(world.member)
    response = client.post(
        import_url(world),
        {"text": "# Pasted\n\n**Target Date**: 2024-05-01\n", "plan": world.plan.pk},
    )
    client.post(response["Location"])
    assert Milestone.objects.filter(team=world.team, title="Pasted").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\x01\x02binary\x00" * 50, "not a text file"),
        (b"", "The submitted file is empty."),
        (b"# Big\n" + b"x" * (10 * 1024 * 1024), "at most 2 MB"),
    ],
)
def test_unreadable_uploads_are_field_errors_not_500s(world, client_for, content, message):
    client = client_for(world.member)
    before = milestones_in(world)
    response = post_upload(client, world, content)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert milestones_in(world) == before and not SpecUpload.objects.exists()


def test_a_table_with_missing_columns_previews_its_error_and_cannot_be_imported(world, client_for):
    client = client_for(world.member)
    response = post_upload(client, world, (FIXTURES / "risk_table_missing_columns.md").read_bytes())
    preview = client.get(response["Location"])
    page = preview.content.decode()
    assert preview.status_code == 400
    assert "nothing can be imported" in page and "<td>17</td>" in page
    assert "no Likelihood or Mitigation column" in page
    assert ">Import</button>" not in page
    before = milestones_in(world)
    refused = client.post(response["Location"])
    assert refused.status_code == 400 and milestones_in(world) == before


def test_import_permissions(world, client_for, client):
    url = import_url(world)
    assert client.get(url).status_code == 302  # log in first
    assert client_for(world.viewer).get(url).status_code == 403
    assert client_for(world.viewer).post(url, {"text": "# X"}).status_code == 403
    assert client_for(world.outsider).get(url).status_code == 404
    assert client_for(world.admin).get(url).status_code == 200
    member = client_for(world.member)
    assert member.get(url).status_code == 200
    location = post_upload(member, world)["Location"]
    # Somebody else's upload, or another team's, is not there for you.
    other = add_member(world.team, make_user("otto"), Role.MEMBER)
    assert client_for(other).get(location).status_code == 404
    assert client_for(world.outsider).get(location).status_code == 404
    assert client_for(world.viewer).post(location).status_code == 403
    assert milestones_in(world) == 1


def test_the_upload_page_is_labelled_and_protected(world, client_for):
    page = client_for(world.member).get(import_url(world)).content.decode()
    assert 'enctype="multipart/form-data"' in page and "csrfmiddlewaretoken" in page
    assert '<label for="id_file">' in page and '<label for="id_text">' in page


def test_page_query_budgets_do_not_grow_with_the_document(world, client_for):
    client = client_for(world.member)
    small = post_upload(client, world, b"# Small\n\n## Deliverables\n\n### 1. A\n")["Location"]
    big_doc = "# Big\n\n## Deliverables\n\n" + "".join(
        f"### {i}. D{i}\n**Owner**: max\n**Acceptance Criteria**:\n- [ ] c\n- [x] d\n\n"
        for i in range(1, 301)
    )
    big = post_upload(client, world, big_doc.encode())["Location"]
    counts = []
    for url in (small, big):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        counts.append(len(queries))
    print(f"preview queries: small {counts[0]}, 300 deliverables {counts[1]}")
    assert counts[0] == counts[1] <= 8
    with CaptureQueriesContext(connection) as queries:
        client.get(import_url(world))
    assert len(queries) <= 6


# --- Milestone page, spec page, downloads ---------------------------------------------------------


def test_the_milestone_page_shows_the_spec_check_and_the_export_button(world, client_for):
    m = world.milestone
    page = client_for(world.viewer).get(reverse("milestone", args=[world.team.slug, m.key]))
    html = page.content.decode()
    assert 'id="speccheck"' in html and "Spec check" in html
    assert "The milestone lists no deliverables." in html
    assert reverse("specs:milestone_export", args=[world.team.slug, m.key]) in html
    fragment = client_for(world.member).get(
        reverse("milestone_section", args=[world.team.slug, m.key, "speccheck"]), **HX
    )
    assert fragment.status_code == 200 and fragment.content.decode().lstrip().startswith("<section")
    deliverable = make_deliverable(m, world.admin, owner=world.member)
    make_criterion(world.admin, deliverable=deliverable)
    refreshed = client_for(world.member).get(
        reverse("milestone_section", args=[world.team.slug, m.key, "speccheck"]), **HX
    )
    assert "The milestone lists no deliverables." not in refreshed.content.decode()


def test_the_spec_page_lists_every_finding_and_the_rules(world, client_for):
    url = reverse("specs:milestone_spec", args=[world.team.slug, world.milestone.key])
    response = client_for(world.viewer).get(url)
    html = response.content.decode()
    assert response.status_code == 200
    assert "missing_rollback_plan" in html and "blocker_without_target_date" in html
    assert client_for(world.outsider).get(url).status_code == 404


def test_downloads_are_markdown_attachments_for_readers_only(world, client_for):
    m_url = reverse("specs:milestone_export", args=[world.team.slug, world.milestone.key])
    p_url = reverse("specs:plan_export", args=[world.team.slug, world.plan.key])
    response = client_for(world.viewer).get(m_url)
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"].startswith(
        f'attachment; filename="{world.milestone.key}'
    )
    assert response.content.decode().startswith(f"# {world.milestone.title}\n")
    plan = client_for(world.viewer).get(p_url)
    assert plan.content.decode().startswith(f"# {world.plan.title}\n\n**Type**: Plan")
    assert client_for(world.outsider).get(m_url).status_code == 404
    assert client_for(world.outsider).get(p_url).status_code == 404


def test_export_queries_do_not_grow(world, client_for):
    client = client_for(world.member)
    url = reverse("specs:plan_export", args=[world.team.slug, world.plan.key])
    # One of each kind, so every prefetch runs (Django skips one with no parent rows).
    make_criterion(world.admin, deliverable=make_deliverable(world.milestone, world.admin))
    with CaptureQueriesContext(connection) as small:
        client.get(url)
    for i in range(5):
        m = make_milestone(world.plan, world.admin, title=f"More {i}")
        for j in range(3):
            make_criterion(world.admin, deliverable=make_deliverable(m, world.admin), text=f"c{j}")
    with CaptureQueriesContext(connection) as big:
        response = client.get(url)
    assert "More 4" in response.content.decode()
    print(f"plan export queries: 1 milestone {len(small)}, 6 milestones {len(big)}")
    assert len(small) == len(big)


def test_escaped_output(world, client_for):
    evil = make_milestone(world.plan, world.admin, title="<script>alert(1)</script>")
    html = (
        client_for(world.member)
        .get(reverse("specs:milestone_spec", args=[world.team.slug, evil.key]))
        .content.decode()
    )
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_the_plan_page_has_a_completeness_column_and_the_links(world, client_for):
    grow_team(world.team, world.admin, plans=1, milestones_per_plan=3)
    html = (
        client_for(world.member)
        .get(reverse("plan", args=[world.team.slug, world.plan.key]))
        .content.decode()
    )
    assert 'title="Spec completeness, 0–100">Spec</abbr>' in html
    assert reverse("specs:milestone_spec", args=[world.team.slug, world.milestone.key]) in html
    assert "of 100 for " + world.milestone.key in html
    assert reverse("specs:plan_export", args=[world.team.slug, world.plan.key]) in html
    assert f"{reverse('specs:import', args=[world.team.slug])}?plan={world.plan.key}" in html
    viewer_html = (
        client_for(world.viewer)
        .get(reverse("plan", args=[world.team.slug, world.plan.key]))
        .content.decode()
    )
    assert "Import spec" not in viewer_html


# --- API ------------------------------------------------------------------------------------------


@pytest.fixture
def api(client):
    def as_user(user):
        _, secret = ApiToken.objects.create_token(user=user, name="t")
        client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
        return client

    return as_user


def test_api_import_previews_then_imports(world, api, settings):
    settings.API_THROTTLE_RATE = None
    client = api(world.member)
    url = "/api/v1/specs/import/"
    body = {"team": world.team.slug, "plan": world.plan.key, "markdown": GUIDE.decode()}
    before = milestones_in(world)
    preview = client.post(url, {**body, "dry_run": True}, content_type="application/json")
    assert preview.status_code == 200 and preview.json()["counts"]["deliverables"] == 5
    assert milestones_in(world) == before
    created = client.post(url, body, content_type="application/json")
    assert created.status_code == 201, created.content
    assert created.json()["saved"] is True and len(created.json()["milestones"]) == 1
    upload = client.post(url, {"team": world.team.slug, "plan": world.plan.key,
                               "file": upload_file(GUIDE)})  # fmt: skip
    assert upload.status_code == 201


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"\x00\x01" * 100, "binary"),
        (b"", "empty"),
        (b"# x\n" + b"y" * (10 * 1024 * 1024), "too_large"),
    ],
)
def test_api_refuses_malformed_files_with_400(world, api, settings, content, code):
    settings.API_THROTTLE_RATE = None
    before = milestones_in(world)
    response = api(world.member).post(
        "/api/v1/specs/import/",
        {"team": world.team.slug, "plan": world.plan.key, "file": upload_file(content)},
    )
    assert response.status_code == 400
    assert [e["code"] for e in response.json()["errors"]] == [code]
    assert milestones_in(world) == before


def test_api_errors_name_lines_and_roles_apply(world, api, settings):
    settings.API_THROTTLE_RATE = None
    markdown = (FIXTURES / "risk_table_missing_columns.md").read_text()
    body = {"team": world.team.slug, "plan": world.plan.key, "markdown": markdown}
    response = api(world.member).post(
        "/api/v1/specs/import/", body, content_type="application/json"
    )
    assert response.status_code == 400 and response.json()["errors"][0]["line"] == 17
    viewer = api(world.viewer).post("/api/v1/specs/import/", body, content_type="application/json")
    assert viewer.status_code == 403
    outsider = api(world.outsider).post("/api/v1/specs/import/", body,
                                        content_type="application/json")  # fmt: skip
    assert outsider.status_code == 404


def test_api_export_and_check(world, api, settings):
    settings.API_THROTTLE_RATE = None
    client = api(world.viewer)
    m = world.milestone
    exported = client.get(f"/api/v1/specs/milestones/{m.pk}/export/")
    assert exported.status_code == 200 and exported["Content-Type"].startswith("text/markdown")
    checked = client.get(f"/api/v1/specs/milestones/{m.pk}/check/").json()
    assert checked["milestone"] == m.key and "missing_rollback_plan" in {
        g["code"] for g in checked["gaps"]
    }
    assert client.get(f"/api/v1/specs/plans/{world.plan.pk}/export/").status_code == 200
    file_check = client.post("/api/v1/specs/check/", {"markdown": GUIDE.decode()},
                             content_type="application/json").json()  # fmt: skip
    assert file_check["valid"] is True and file_check["milestones"][0]["score"] == 95
    outsider = api(world.outsider)
    assert outsider.get(f"/api/v1/specs/milestones/{m.pk}/export/").status_code == 404
    assert outsider.get(f"/api/v1/specs/plans/{world.plan.pk}/export/").status_code == 404
