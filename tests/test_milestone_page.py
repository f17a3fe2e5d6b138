"""The milestone page: sections as HTMX fragments, in-place writes, access, conflicts, budgets.

Every write view is checked for each kind of visitor (anonymous, outsider, viewer, member,
a POST without the CSRF token), the forms for their validation messages, concurrent editors
for the conflict block, and the whole page for a query count that does not grow with the
milestone's size.
"""

import datetime
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from milestones import forms, services
from milestones.models import (
    Activity,
    Blocker,
    Criterion,
    Deliverable,
    Dependency,
    Milestone,
    Risk,
    StatusUpdate,
    today,
)
from tests.factories import make_criterion, make_deliverable, make_milestone

HX = {"HTTP_HX_REQUEST": "true"}
CONFLICT = "Someone else saved this while you were editing"


# --- Helpers ---------------------------------------------------------------------------------


def page_url(milestone) -> str:
    return reverse("milestone", args=[milestone.team.slug, milestone.key])


def section_url(milestone, section: str) -> str:
    return reverse("milestone_section", args=[milestone.team.slug, milestone.key, section])


def add_url(milestone, kind: str) -> str:
    return reverse("milestone_item_add", args=[milestone.team.slug, milestone.key, kind])


def item_url(milestone, kind: str, pk: int, action: str) -> str:
    return reverse("milestone_item", args=[milestone.team.slug, milestone.key, kind, pk, action])


def login_url() -> str:
    return reverse("accounts:login")


def client_as(user) -> Client:
    """A separate logged-in client, for a second editor next to the `client` fixture."""
    client = Client()
    client.force_login(user)
    return client


class _Forms(HTMLParser):
    """Collects each <form>'s action and what a browser would submit from it."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[tuple[str, dict[str, str]]] = []
        self._fields: dict[str, str] | None = None
        self._textarea: str | None = None
        self._select: str | None = None
        self._select_has_selected = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._fields = {}
            self.forms.append((attrs.get("action") or "", self._fields))
            return
        if self._fields is None:
            return
        name = attrs.get("name")
        if tag == "input" and name:
            kind = attrs.get("type", "text")
            if kind in ("submit", "button", "image", "reset"):
                return
            if kind in ("checkbox", "radio") and "checked" not in attrs:
                return
            self._fields[name] = attrs.get("value") or ("on" if kind == "checkbox" else "")
        elif tag == "textarea" and name:
            self._textarea = name
            self._fields[name] = ""
        elif tag == "select" and name:
            self._select, self._select_has_selected = name, False
        elif tag == "option" and self._select:
            value = attrs.get("value") or ""
            if "selected" in attrs:
                self._fields[self._select] = value
                self._select_has_selected = True
            elif not self._select_has_selected and self._select not in self._fields:
                self._fields[self._select] = value  # a browser submits the first option

    def handle_data(self, data):
        if self._textarea and self._fields is not None:
            self._fields[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._fields = None
        elif tag == "textarea" and self._textarea and self._fields is not None:
            # Browsers drop the newline Django puts right after <textarea>.
            value = self._fields[self._textarea]
            self._fields[self._textarea] = value[1:] if value.startswith("\n") else value
            self._textarea = None
        elif tag == "select":
            self._select = None


def form_fields(html: str, action: str) -> dict[str, str]:
    """What submitting the form posting to `action` sends, as parsed from the page."""
    parser = _Forms()
    parser.feed(html)
    found = [fields for form_action, fields in parser.forms if form_action == action]
    assert found, f"no form posting to {action}"
    return dict(found[-1])


def form_values(form_class, instance, *, team_id, id_prefix="x", **changes) -> dict[str, str]:
    """The data an editor who opened `form_class` on `instance` would post, with `changes`."""
    form = form_class(instance=instance, team_id=team_id, id_prefix=id_prefix)
    data = {}
    for bound in form:
        value = bound.value()
        data[bound.html_name] = "" if value is None else str(value)
    data.update({name: str(value) for name, value in changes.items()})
    return data


def field_chunk(html: str, field_id: str) -> str:
    """The markup of one form field: its <div class="field…"> up to the next field."""
    label = html.index(f'<label for="{field_id}"')
    start = html.rindex('<div class="field', 0, label)
    ends = [
        i for i in (html.find('<div class="field', label), html.find("</form>", label)) if i > 0
    ]
    return html[start : min(ends)]


def assert_error_at(html: str, field_id: str, message: str):
    """`message` is shown in the field's own block, and the control points at it."""
    chunk = field_chunk(html, field_id)
    assert "has-error" in chunk.split(">", 1)[0], chunk
    errors = re.findall(r'<p class="field-error" id="([^"]+)"[^>]*>(.*?)</p>', chunk, re.S)
    assert any(message in text for _, text in errors), chunk
    control = re.search(rf'<(?:input|select|textarea)\b[^>]*\bid="{field_id}"[^>]*>', chunk)
    assert control, chunk
    described = re.search(r'aria-describedby="([^"]*)"', control.group(0))
    assert described, control.group(0)
    assert {error_id for error_id, _ in errors} <= set(described.group(1).split())


def section_html(html: str, section_id: str) -> str:
    start = html.index(f'<section id="{section_id}"')
    return html[start : html.index("</section>", start)]


def assert_fragment(response, section_id: str, event: str | None = "milestone-changed"):
    assert response.status_code == 200, response.content[:500]
    body = response.content.decode()
    assert body.lstrip().startswith(f'<section id="{section_id}"') or body.lstrip().startswith(
        f'<header id="{section_id}"'
    ), body[:200]
    assert "<html" not in body
    if event:
        assert event in response.headers.get("HX-Trigger", "")
    else:
        assert "HX-Trigger" not in response.headers
    return body


# --- A milestone with something in every section ---------------------------------------------


class Filled:
    """The world's milestone with deliverables, criteria, risks, blockers, updates and links.

    Rows go in directly (the services' validation and logging are not what these tests are
    about, and they would make every test several times slower).
    """

    def __init__(self, world):
        self.world = world
        admin = world.admin
        m = self.milestone = world.milestone
        self.d1, self.d2 = Deliverable.objects.bulk_create(
            [
                Deliverable(milestone=m, title="Export API", position=0),
                Deliverable(milestone=m, title="Export worker", position=1),
            ]
        )
        self.a1, self.a2, self.s1, self.s2 = Criterion.objects.bulk_create(
            [
                Criterion(deliverable=self.d1, text="Returns 202", position=0),
                Criterion(deliverable=self.d1, text="Rejects bad input", position=1),
                Criterion(milestone=m, text="No data loss", position=0),
                Criterion(milestone=m, text="p95 under 200 ms", position=1, level="should"),
            ]
        )
        self.risk = Risk.objects.create(milestone=m, title="Queue overload")
        self.blocker = Blocker.objects.create(milestone=m, title="Waiting for infra")
        self.update = StatusUpdate.objects.create(
            milestone=m, author=admin, percent_complete=40, confidence=70,
            narrative="First week done.",
        )  # fmt: skip
        self.before = make_milestone(world.plan, admin, title="Schema migrated")
        self.spare = make_milestone(world.plan, admin, title="Docs written")
        self.link = Dependency.objects.create(team=world.team, predecessor=self.before, successor=m)


@pytest.fixture
def filled(world):
    return Filled(world)


# --- Every write view, for every kind of visitor ----------------------------------------------


def titles(queryset) -> list[str]:
    return list(queryset.values_list("title", flat=True))


def milestone_field(name):
    return lambda f: Milestone.objects.values_list(name, flat=True).get(pk=f.milestone.pk)


def edit_values(form_class, obj, **changes):
    return lambda f: form_values(form_class, obj(f), team_id=f.world.team.pk, **changes)


@dataclass(frozen=True)
class Write:
    """One write: where it posts, what, how to read its effect, and what a member gets."""

    name: str
    url: Callable[[Filled], str]
    data: Callable[[Filled], dict]
    state: Callable[[Filled], object]
    expected: Callable[[Filled], object]
    section: str | None = None  # the fragment an HTMX write answers with; None: a redirect
    redirect: Callable[[Filled], str] | None = None

    def __str__(self):
        return self.name


def _deliverable_titles(f):
    return titles(f.milestone.deliverables.order_by("position", "pk"))


def _acceptance(f):
    return list(f.d1.criteria.order_by("position", "pk").values_list("text", flat=True))


def _success(f):
    return list(f.milestone.criteria.order_by("position", "pk").values_list("text", flat=True))


def _links(f):
    return set(Dependency.objects.values_list("predecessor__key", "successor__key"))


BLANK_CRITERION = {"comparator": "", "target": "", "unit": "", "actual": ""}

WRITES = [
    Write(
        "meta",
        lambda f: section_url(f.milestone, "meta"),
        edit_values(forms.MilestoneMetaForm, lambda f: f.milestone, title="Renamed"),
        milestone_field("title"),
        lambda f: "Renamed",
        section="meta",
    ),
    Write(
        "summary",
        lambda f: section_url(f.milestone, "summary"),
        edit_values(forms.MilestoneSummaryForm, lambda f: f.milestone, summary="Why it matters"),
        milestone_field("summary"),
        lambda f: "Why it matters",
        section="summary",
    ),
    Write(
        "rollback",
        lambda f: section_url(f.milestone, "rollback"),
        edit_values(forms.MilestoneRollbackForm, lambda f: f.milestone, rollback_plan="Revert"),
        milestone_field("rollback_plan"),
        lambda f: "Revert",
        section="rollback",
    ),
    Write(
        "retro",
        lambda f: section_url(f.milestone, "retro"),
        edit_values(forms.MilestoneRetroForm, lambda f: f.milestone, retro_actions="Automate"),
        milestone_field("retro_actions"),
        lambda f: "Automate",
        section="retro",
    ),
    Write(
        "create-milestone",
        lambda f: reverse("milestone_create", args=[f.world.team.slug]),
        lambda f: {
            "plan": f.world.plan.pk,
            "title": "Brand new",
            "owner": "",
            "priority": "required",
            "start_date": "",
            "target_date": "",
            "summary": "",
        },
        lambda f: sorted(titles(Milestone.objects.filter(team=f.world.team))),
        lambda f: sorted([*titles(Milestone.objects.filter(team=f.world.team)), "Brand new"]),
        redirect=lambda f: page_url(Milestone.objects.get(title="Brand new")),
    ),
    Write(
        "delete-milestone",
        lambda f: reverse("milestone_delete", args=[f.world.team.slug, f.milestone.key]),
        lambda f: {},
        lambda f: Milestone.objects.filter(pk=f.milestone.pk).exists(),
        lambda f: False,
        redirect=lambda f: reverse("plan", args=[f.world.team.slug, f.world.plan.key]),
    ),
    Write(
        "add-deliverable",
        lambda f: add_url(f.milestone, "deliverable"),
        lambda f: {"title": "Export docs", "status": "planned", "owner": "", "owner_label": ""},
        _deliverable_titles,
        lambda f: ["Export API", "Export worker", "Export docs"],
        section="deliverables",
    ),
    Write(
        "add-acceptance",
        lambda f: add_url(f.milestone, "acceptance"),
        lambda f: {"deliverable": f.d1.pk, "text": "Logs each export", **BLANK_CRITERION},
        _acceptance,
        lambda f: ["Returns 202", "Rejects bad input", "Logs each export"],
        section="deliverables",
    ),
    Write(
        "add-success",
        lambda f: add_url(f.milestone, "success"),
        lambda f: {
            "text": "Runbook reviewed",
            "category": "operational",
            "level": "must",
            **BLANK_CRITERION,
        },
        _success,
        lambda f: ["No data loss", "p95 under 200 ms", "Runbook reviewed"],
        section="success",
    ),
    Write(
        "add-risk",
        lambda f: add_url(f.milestone, "risk"),
        lambda f: {"title": "Vendor late", "likelihood": "high", "impact": "low", "status": "open"},
        lambda f: sorted(titles(f.milestone.risks)),
        lambda f: ["Queue overload", "Vendor late"],
        section="risks",
    ),
    Write(
        "add-blocker",
        lambda f: add_url(f.milestone, "blocker"),
        lambda f: {"title": "No credentials", "priority": "high"},
        lambda f: sorted(titles(f.milestone.blockers)),
        lambda f: ["No credentials", "Waiting for infra"],
        section="blockers",
    ),
    Write(
        "add-update",
        lambda f: add_url(f.milestone, "update"),
        lambda f: {
            "health": "at_risk",
            "percent_complete": "55",
            "confidence": "60",
            "narrative": "Slower than hoped.",
        },
        lambda f: sorted(f.milestone.status_updates.values_list("narrative", flat=True)),
        lambda f: ["First week done.", "Slower than hoped."],
        section="updates",
    ),
    Write(
        "add-dependency",
        lambda f: add_url(f.milestone, "dependency"),
        lambda f: {"other": f.spare.key, "direction": "successor", "lag_days": "2"},
        _links,
        lambda f: {(f.before.key, f.milestone.key), (f.milestone.key, f.spare.key)},
        section="dependencies",
    ),
    Write(
        "edit-deliverable",
        lambda f: item_url(f.milestone, "deliverable", f.d1.pk, "edit"),
        edit_values(forms.DeliverableForm, lambda f: f.d1, title="Export REST API"),
        lambda f: Deliverable.objects.get(pk=f.d1.pk).title,
        lambda f: "Export REST API",
        section="deliverables",
    ),
    Write(
        "edit-acceptance",
        lambda f: item_url(f.milestone, "acceptance", f.a1.pk, "edit"),
        lambda f: {
            **form_values(forms.CriterionForm, f.a1, team_id=f.world.team.pk),
            "text": "Returns 202 Accepted",
        },
        lambda f: Criterion.objects.get(pk=f.a1.pk).text,
        lambda f: "Returns 202 Accepted",
        section="deliverables",
    ),
    Write(
        "edit-success",
        lambda f: item_url(f.milestone, "success", f.s1.pk, "edit"),
        edit_values(forms.CriterionForm, lambda f: f.s1, level="should"),
        lambda f: Criterion.objects.get(pk=f.s1.pk).level,
        lambda f: "should",
        section="success",
    ),
    Write(
        "edit-risk",
        lambda f: item_url(f.milestone, "risk", f.risk.pk, "edit"),
        edit_values(forms.RiskForm, lambda f: f.risk, mitigation="Autoscale"),
        lambda f: Risk.objects.get(pk=f.risk.pk).mitigation,
        lambda f: "Autoscale",
        section="risks",
    ),
    Write(
        "edit-blocker",
        lambda f: item_url(f.milestone, "blocker", f.blocker.pk, "edit"),
        edit_values(forms.BlockerForm, lambda f: f.blocker, next_action="Call infra"),
        lambda f: Blocker.objects.get(pk=f.blocker.pk).next_action,
        lambda f: "Call infra",
        section="blockers",
    ),
    Write(
        "resolve-blocker",
        lambda f: item_url(f.milestone, "blocker", f.blocker.pk, "resolve"),
        edit_values(
            forms.BlockerResolveForm,
            lambda f: f.blocker,
            resolved_on=today().isoformat(),
            resolution="Infra granted access",
        ),
        lambda f: Blocker.objects.values_list("resolved_on", "resolution").get(pk=f.blocker.pk),
        lambda f: (today(), "Infra granted access"),
        section="blockers",
    ),
    *(
        Write(
            f"delete-{kind}",
            (lambda k, a: lambda f: item_url(f.milestone, k, getattr(f, a).pk, "delete"))(
                kind, attr
            ),
            lambda f: {},
            (lambda m, a: lambda f: m.objects.filter(pk=getattr(f, a).pk).exists())(model, attr),
            lambda f: False,
            section=section,
        )
        for kind, attr, model, section in [
            ("deliverable", "d2", Deliverable, "deliverables"),
            ("acceptance", "a2", Criterion, "deliverables"),
            ("success", "s2", Criterion, "success"),
            ("risk", "risk", Risk, "risks"),
            ("blocker", "blocker", Blocker, "blockers"),
            ("update", "update", StatusUpdate, "updates"),
            ("dependency", "link", Dependency, "dependencies"),
        ]
    ),
    Write(
        "move-deliverable-up",
        lambda f: item_url(f.milestone, "deliverable", f.d2.pk, "up"),
        lambda f: {},
        _deliverable_titles,
        lambda f: ["Export worker", "Export API"],
        section="deliverables",
    ),
    Write(
        "move-acceptance-down",
        lambda f: item_url(f.milestone, "acceptance", f.a1.pk, "down"),
        lambda f: {},
        _acceptance,
        lambda f: ["Rejects bad input", "Returns 202"],
        section="deliverables",
    ),
    Write(
        "move-success-up",
        lambda f: item_url(f.milestone, "success", f.s2.pk, "up"),
        lambda f: {},
        _success,
        lambda f: ["p95 under 200 ms", "No data loss"],
        section="success",
    ),
    Write(
        "toggle-acceptance",
        lambda f: item_url(f.milestone, "acceptance", f.a1.pk, "toggle"),
        lambda f: {"checked": "on"},
        lambda f: Criterion.objects.values_list("checked", "met").get(pk=f.a1.pk),
        lambda f: (True, True),
        section="deliverables",
    ),
    Write(
        "toggle-success",
        lambda f: item_url(f.milestone, "success", f.s1.pk, "toggle"),
        lambda f: {"checked": "on"},
        lambda f: Criterion.objects.values_list("checked", "met").get(pk=f.s1.pk),
        lambda f: (True, True),
        section="success",
    ),
]


@pytest.mark.parametrize("write", WRITES, ids=str)
def test_who_may_write(filled, client, client_for, write):
    """Anonymous: log in. Outsider: 404. Viewer: 403. No CSRF token: 403. Member: done."""
    url, data, before = write.url(filled), write.data(filled), write.state(filled)
    activity = Activity.objects.count()

    response = client.post(url, data, **HX)
    assert response.status_code == 302, "anonymous"
    assert response["Location"].startswith(login_url() + "?next=")
    assert write.state(filled) == before

    assert client_for(filled.world.outsider).post(url, data, **HX).status_code == 404
    assert write.state(filled) == before

    assert client_for(filled.world.viewer).post(url, data, **HX).status_code == 403
    assert write.state(filled) == before

    no_token = Client(enforce_csrf_checks=True)
    no_token.force_login(filled.world.member)
    assert no_token.post(url, data, **HX).status_code == 403, "CSRF"
    assert write.state(filled) == before
    assert Activity.objects.count() == activity

    expected = write.expected(filled)
    assert before != expected
    response = client_for(filled.world.member).post(url, data, **HX)
    if write.section:
        assert_fragment(response, write.section)
    else:
        assert response.status_code == 302
        assert response["Location"] == write.redirect(filled)
    assert write.state(filled) == expected
    assert Activity.objects.count() > activity  # every write is logged


NO_JS = [
    "summary",
    "add-deliverable",
    "add-risk",
    "add-dependency",
    "resolve-blocker",
    "delete-update",
    "move-acceptance-down",
    "toggle-success",
]


def test_without_htmx_a_write_redirects_back_to_its_section(filled, client_for):
    """Post/redirect/get: every form works without JavaScript."""
    client = client_for(filled.world.member)
    for write in (w for w in WRITES if w.name in NO_JS):
        expected = write.expected(filled)
        response = client.post(write.url(filled), write.data(filled))
        assert response.status_code == 302, write.name
        assert response["Location"] == f"{page_url(filled.milestone)}#{write.section}"
        assert write.state(filled) == expected, write.name


# The forms a write starts from: a viewer must not even get them.
FORM_PAGES = [
    ("meta-form", lambda f: section_url(f.milestone, "meta") + "?edit=1"),
    ("summary-form", lambda f: section_url(f.milestone, "summary") + "?edit=1"),
    ("add-deliverable-form", lambda f: add_url(f.milestone, "deliverable")),
    (
        "add-acceptance-form",
        lambda f: add_url(f.milestone, "acceptance") + f"?deliverable={f.d1.pk}",
    ),
    ("add-dependency-form", lambda f: add_url(f.milestone, "dependency")),
    ("edit-risk-form", lambda f: item_url(f.milestone, "risk", f.risk.pk, "edit")),
    ("resolve-form", lambda f: item_url(f.milestone, "blocker", f.blocker.pk, "resolve")),
    ("delete-confirmation", lambda f: item_url(f.milestone, "deliverable", f.d1.pk, "delete")),
    ("milestone-delete", lambda f: reverse("milestone_delete", args=["rocket", f.milestone.key])),
    ("create-form", lambda f: reverse("milestone_create", args=["rocket"])),
    (
        "dependency-search",
        lambda f: reverse("dependency_search", args=["rocket", "MLS-001"]) + "?q=MLS",
    ),
]


@pytest.mark.parametrize("url", [u for _, u in FORM_PAGES], ids=[n for n, _ in FORM_PAGES])
def test_forms_are_for_writers_only(filled, client_for, url):
    assert filled.world.team.slug == "rocket"
    assert client_for(filled.world.viewer).get(url(filled), **HX).status_code == 403
    assert client_for(filled.world.outsider).get(url(filled), **HX).status_code == 404
    response = client_for(filled.world.member).get(url(filled), **HX)
    assert response.status_code == 200
    assert "<form" in response.content.decode()


def test_items_of_another_milestone_are_404_through_this_ones_url(filled, client_for):
    other = make_milestone(filled.world.plan, filled.world.admin, title="Elsewhere")
    foreign = make_deliverable(other, filled.world.admin, title="Not yours")
    client = client_for(filled.world.member)
    url = item_url(filled.milestone, "deliverable", foreign.pk, "edit")
    data = form_values(forms.DeliverableForm, foreign, team_id=filled.world.team.pk, title="Mine")
    assert client.post(url, data, **HX).status_code == 404
    assert (
        client.post(item_url(filled.milestone, "deliverable", foreign.pk, "delete")).status_code
        == 404
    )
    # A dependency that does not touch this milestone cannot be removed through it either.
    unrelated = services.add_dependency(filled.spare, other, actor=filled.world.admin)
    assert (
        client.post(item_url(filled.milestone, "dependency", unrelated.pk, "delete")).status_code
        == 404
    )
    assert Deliverable.objects.get(pk=foreign.pk).title == "Not yours"
    assert Dependency.objects.filter(pk=unrelated.pk).exists()


def test_a_success_criterion_cannot_be_reached_as_an_acceptance_one(filled, client_for):
    client = client_for(filled.world.member)
    response = client.post(
        item_url(filled.milestone, "acceptance", filled.s1.pk, "toggle"), {"checked": "on"}
    )
    assert response.status_code == 404
    assert Criterion.objects.get(pk=filled.s1.pk).checked is False


@pytest.mark.parametrize(
    "kind,attr", [("blocker", "blocker"), ("update", "update"), ("dependency", "link")]
)
def test_moving_an_item_without_an_order_is_404_not_a_server_error(filled, client_for, kind, attr):
    client = client_for(filled.world.member)
    client.raise_request_exception = False
    response = client.post(item_url(filled.milestone, kind, getattr(filled, attr).pk, "up"), **HX)
    assert response.status_code == 404


# --- Sections ----------------------------------------------------------------------------------

SECTIONS = [
    "header",
    "meta",
    "summary",
    "deliverables",
    "success",
    "dependencies",
    "risks",
    "blockers",
    "updates",
    "rollback",
    "retro",
    "activity",
]


def test_each_section_renders_alone_for_htmx_and_the_page_has_them_all(filled, client_for):
    client = client_for(filled.world.viewer)
    page = client.get(page_url(filled.milestone)).content.decode()
    assert page.lstrip().lower().startswith("<!doctype html>")
    for section in SECTIONS:
        response = client.get(section_url(filled.milestone, section), **HX)
        body = assert_fragment(response, section, event=None)
        assert f'id="{section}"' in page, section
        assert body.count(f'id="{section}"') == 1
    assert "Export API" in section_html(page, "deliverables")
    assert "Queue overload" in section_html(page, "risks")
    assert "Waiting for infra" in section_html(page, "blockers")
    assert "First week done." in section_html(page, "updates")
    assert filled.before.key in section_html(page, "dependencies")


def test_unknown_sections_and_forms_on_list_sections_are_404(filled, client_for):
    client = client_for(filled.world.member)
    assert client.get(section_url(filled.milestone, "nonsense"), **HX).status_code == 404
    assert client.get(section_url(filled.milestone, "deliverables") + "?edit=1").status_code == 404
    assert client.post(section_url(filled.milestone, "risks"), {"title": "x"}).status_code == 404
    assert client.post(add_url(filled.milestone, "gadget"), {"title": "x"}).status_code == 404
    url = item_url(filled.milestone, "deliverable", filled.d1.pk, "explode")
    assert client.post(url).status_code == 404
    # Status updates are a record: they can be deleted, never edited.
    url = item_url(filled.milestone, "update", filled.update.pk, "edit")
    assert client.post(url, {"narrative": "Rewritten"}).status_code == 404
    assert StatusUpdate.objects.get(pk=filled.update.pk).narrative == "First week done."


def test_a_viewer_sees_the_page_without_any_way_to_change_it(filled, client_for):
    page = client_for(filled.world.viewer).get(page_url(filled.milestone)).content.decode()
    assert "Read-only: you are a viewer in this team" in page
    main = page[page.index('<main id="main"') :]
    for control in (
        "hx-post",
        "?edit=1",
        "Add deliverable",
        "Raise blocker",
        "Post update",
        "toggle-form",
        "Delete milestone",
    ):
        assert control not in main, control


def test_a_member_sees_the_controls(filled, client_for):
    page = client_for(filled.world.member).get(page_url(filled.milestone)).content.decode()
    assert "Read-only" not in page
    for control in ("Add deliverable", "Raise blocker", "Post update", "toggle-form"):
        assert control in page, control
    assert reverse("milestone_delete", args=["rocket", filled.milestone.key]) in page


# --- Validation ------------------------------------------------------------------------------


def open_form(client, url: str, action: str) -> dict[str, str]:
    response = client.get(url, **HX)
    assert response.status_code == 200
    return form_fields(response.content.decode(), action)


def test_a_blank_title_is_refused_next_to_the_field_and_the_input_is_kept(world, client_for):
    client = client_for(world.member)
    url = section_url(world.milestone, "meta")
    data = open_form(client, url + "?edit=1", url)
    data.update(title="", owning_group="Backend guild", estimated_effort="3 weeks")
    response = client.post(url, data, **HX)
    body = assert_fragment(response, "meta", event=None)
    assert_error_at(body, "meta-title", "This field is required.")
    assert 'value="Backend guild"' in field_chunk(body, "meta-owning_group")
    assert 'value="3 weeks"' in field_chunk(body, "meta-estimated_effort")
    assert "autofocus" in field_chunk(body, "meta-title")  # the cursor goes to the error
    saved = Milestone.objects.get(pk=world.milestone.pk)
    assert (saved.title, saved.owning_group, saved.version) == ("Export queue ready", "", 1)


def test_a_target_before_the_start_is_refused_with_the_models_message(world, client_for):
    client = client_for(world.member)
    url = section_url(world.milestone, "meta")
    data = open_form(client, url + "?edit=1", url)
    data.update(start_date="2031-03-10", target_date="2031-03-01", title="Moved")
    response = client.post(url, data, **HX)
    body = assert_fragment(response, "meta", event=None)
    assert_error_at(body, "meta-target_date", "The target date cannot be before the start date.")
    assert 'value="2031-03-01"' in field_chunk(body, "meta-target_date")
    assert 'value="2031-03-10"' in field_chunk(body, "meta-start_date")
    assert 'value="Moved"' in field_chunk(body, "meta-title")
    saved = Milestone.objects.get(pk=world.milestone.pk)
    assert (saved.title, saved.start_date, saved.target_date) == (
        world.milestone.title,
        world.milestone.start_date,
        world.milestone.target_date,
    )
    assert not Activity.objects.filter(verb="updated").exists()


def test_a_plan_or_owner_from_another_team_is_not_accepted(world, client_for):
    from tests.factories import make_plan

    foreign_plan = make_plan(world.other_team, world.outsider, title="Their plan")
    client = client_for(world.member)
    url = section_url(world.milestone, "meta")
    data = open_form(client, url + "?edit=1", url)
    data.update(plan=str(foreign_plan.pk), owner=str(world.outsider.pk))
    body = assert_fragment(client.post(url, data, **HX), "meta", event=None)
    assert "Select a valid choice" in field_chunk(body, "meta-plan")
    assert "Select a valid choice" in field_chunk(body, "meta-owner")
    saved = Milestone.objects.get(pk=world.milestone.pk)
    assert (saved.plan_id, saved.owner_id) == (world.plan.pk, None)


@pytest.mark.parametrize("kind", ["success", "acceptance"])
def test_a_measured_criterion_needs_a_comparator(filled, client_for, kind):
    client = client_for(filled.world.member)
    m = filled.milestone
    query = f"?deliverable={filled.d1.pk}" if kind == "acceptance" else ""
    data = open_form(client, add_url(m, kind) + query, add_url(m, kind))
    assert data.get("deliverable") == (str(filled.d1.pk) if kind == "acceptance" else None)
    data.update(text="p99 latency", target="200", unit="ms", comparator="")
    count = Criterion.objects.count()
    response = client.post(add_url(m, kind), data, **HX)
    section = "deliverables" if kind == "acceptance" else "success"
    body = assert_fragment(response, section, event=None)
    prefix = f"new-acceptance-{filled.d1.pk}" if kind == "acceptance" else "new-success"
    assert_error_at(body, f"{prefix}-comparator", "A measured criterion needs a comparator")
    assert 'value="p99 latency"' in field_chunk(body, f"{prefix}-text")
    assert 'value="200"' in field_chunk(body, f"{prefix}-target")
    assert Criterion.objects.count() == count


def test_a_status_update_of_150_percent_is_refused(world, client_for):
    client = client_for(world.member)
    url = add_url(world.milestone, "update")
    data = open_form(client, url, url)
    data.update(percent_complete="150", confidence="80", narrative="Half **way** there")
    body = assert_fragment(client.post(url, data, **HX), "updates", event=None)
    assert_error_at(
        body, "new-update-percent_complete", "Ensure this value is less than or equal to 100."
    )
    assert "Half **way** there</textarea>" in field_chunk(body, "new-update-narrative")
    assert 'value="80"' in field_chunk(body, "new-update-confidence")
    assert not StatusUpdate.objects.exists()


def test_a_blocker_is_resolved_only_with_a_date_and_a_resolution(filled, client_for):
    client = client_for(filled.world.member)
    url = item_url(filled.milestone, "blocker", filled.blocker.pk, "resolve")
    data = open_form(client, url, url)
    data["resolved_on"] = today().isoformat()
    body = assert_fragment(
        client.post(url, {**data, "resolved_on": "", "resolution": ""}, **HX), "blockers", None
    )
    prefix = f"blocker-{filled.blocker.pk}"
    assert_error_at(body, f"{prefix}-resolved_on", "This field is required.")
    assert_error_at(body, f"{prefix}-resolution", "This field is required.")
    assert Blocker.objects.get(pk=filled.blocker.pk).resolved_on is None

    too_early = (today() - datetime.timedelta(days=3)).isoformat()
    response = client.post(url, {**data, "resolved_on": too_early, "resolution": "Fixed"}, **HX)
    body = assert_fragment(response, "blockers", event=None)
    assert_error_at(
        body, f"{prefix}-resolved_on", "A blocker cannot be resolved before it was raised."
    )
    assert "Fixed</textarea>" in field_chunk(body, f"{prefix}-resolution")
    assert Blocker.objects.get(pk=filled.blocker.pk).resolved_on is None

    response = client.post(url, {**data, "resolution": "Infra granted access"}, **HX)
    body = assert_fragment(response, "blockers")
    assert "✓ Resolved" in body and "Infra granted access" in body
    assert "0 open" in body
    blocker = Blocker.objects.get(pk=filled.blocker.pk)
    assert (blocker.resolved_on, blocker.resolution) == (today(), "Infra granted access")
    header = client.get(section_url(filled.milestone, "header"), **HX).content.decode()
    assert "<strong>0</strong> open blockers" in header


def test_the_resolve_form_offers_today_as_the_resolution_date(filled, client_for):
    client = client_for(filled.world.member)
    url = item_url(filled.milestone, "blocker", filled.blocker.pk, "resolve")
    assert open_form(client, url, url)["resolved_on"] == today().isoformat()


# --- Dependencies --------------------------------------------------------------------------


def add_dependency(client, milestone, other: str, direction: str = "predecessor"):
    url = add_url(milestone, "dependency")
    return client.post(url, {"other": other, "direction": direction, "lag_days": "0"}, **HX)


def test_a_dependency_that_closes_a_cycle_is_refused_naming_the_cycle(filled, client_for):
    client = client_for(filled.world.member)
    m, before = filled.milestone, filled.before  # before (MLS-002) → m (MLS-001) exists
    assert (m.key, before.key) == ("MLS-001", "MLS-002")
    links = Dependency.objects.count()
    body = assert_fragment(add_dependency(client, m, "MLS-002", "successor"), "dependencies", None)
    message = "This dependency would create a cycle: MLS-001 → MLS-002 → MLS-001."
    assert_error_at(body, "dependency-other", message)
    assert 'value="MLS-002"' in field_chunk(body, "dependency-other")
    assert '<option value="successor" selected>' in body  # the direction is kept too
    assert Dependency.objects.count() == links

    services.add_dependency(filled.spare, before, actor=filled.world.admin)  # MLS-003 → MLS-002
    body = add_dependency(client, m, "MLS-003", "successor").content.decode()
    assert "create a cycle: MLS-001 → MLS-003 → MLS-002 → MLS-001." in body
    assert Dependency.objects.count() == links + 1


def test_a_dependency_on_an_unknown_or_foreign_key_is_refused(filled, client_for):
    foreign_plan_owner = filled.world.outsider
    from tests.factories import make_plan

    theirs = make_plan(filled.world.other_team, foreign_plan_owner)
    for _ in range(4):
        make_milestone(theirs, foreign_plan_owner)  # MLS-001 … MLS-004 of the other team
    client = client_for(filled.world.member)
    links = Dependency.objects.count()
    body = assert_fragment(add_dependency(client, filled.milestone, "NOPE-9"), "dependencies", None)
    assert_error_at(body, "dependency-other", "No milestone NOPE-9 in this team.")
    assert 'value="NOPE-9"' in field_chunk(body, "dependency-other")
    body = add_dependency(client, filled.milestone, "MLS-004").content.decode()
    assert "No milestone MLS-004 in this team." in body
    body = add_dependency(client, filled.milestone, "MLS-001").content.decode()
    assert "A milestone cannot depend on itself." in body
    assert Dependency.objects.count() == links
    # Keys are matched whatever their case and surrounding spaces.
    assert_fragment(add_dependency(client, filled.milestone, " mls-003 "), "dependencies")
    assert Dependency.objects.filter(predecessor=filled.spare, successor=filled.milestone).exists()


def test_dependency_search_offers_only_unlinked_milestones_of_the_team(filled, client_for):
    from tests.factories import make_plan

    theirs = make_plan(filled.world.other_team, filled.world.outsider)
    make_milestone(theirs, filled.world.outsider, title="Docs written elsewhere")
    url = reverse("dependency_search", args=["rocket", filled.milestone.key])
    client = client_for(filled.world.member)
    response = client.get(url, {"q": "docs"}, **HX)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="dependency-results"')
    assert "Docs written" in body and filled.spare.key in body
    assert "elsewhere" not in body
    body = client.get(url, {"q": "MLS"}, **HX).content.decode()
    assert filled.spare.key in body
    assert f'value="{filled.before.key}"' not in body  # already linked
    assert f'value="{filled.milestone.key}"' not in body  # itself
    # Without JavaScript the search renders the whole page with the results in place.
    page = client.get(url, {"q": "docs"}).content.decode()
    assert "<!doctype html>" in page.lower() and "Docs written" in page


# --- Two people editing at once ------------------------------------------------------------


def conflict_rows(html: str) -> list[tuple[str, str, str]]:
    table = html[html.index('<div class="conflict"') : html.index("</table>")]
    return re.findall(r'<th scope="row">(.*?)</th><td>(.*?)</td><td>(.*?)</td>', table)


def test_meta_same_field_changed_twice_conflicts_and_save_mine_anyway_wins(world):
    url = section_url(world.milestone, "meta")
    ada, max_ = client_as(world.admin), client_as(world.member)
    form_a = open_form(ada, url + "?edit=1", url)
    form_b = open_form(max_, url + "?edit=1", url)
    assert form_a["version"] == form_b["version"] == "1"
    assert json.loads(form_b["original"])["title"] == "Export queue ready"

    assert_fragment(ada.post(url, {**form_a, "title": "Queue by Ada"}, **HX), "meta")
    response = max_.post(url, {**form_b, "title": "Queue by Max"}, **HX)
    body = assert_fragment(response, "meta", event=None)
    assert CONFLICT in body
    assert conflict_rows(body) == [("Title", "Queue by Ada", "Queue by Max")]
    assert "Save mine anyway" in body and "Discard mine" in body
    assert Milestone.objects.get(pk=world.milestone.pk).title == "Queue by Ada"

    again = form_fields(body, url)  # the re-rendered form: Max's input on top of Ada's save
    assert again["title"] == "Queue by Max"
    assert again["version"] == "2"
    assert json.loads(again["original"])["title"] == "Queue by Ada"
    body = assert_fragment(max_.post(url, again, **HX), "meta")
    assert CONFLICT not in body
    saved = Milestone.objects.get(pk=world.milestone.pk)
    assert (saved.title, saved.version) == ("Queue by Max", 3)


def test_meta_different_fields_changed_at_once_are_both_kept(world):
    url = section_url(world.milestone, "meta")
    ada, max_ = client_as(world.admin), client_as(world.member)
    form_a = open_form(ada, url + "?edit=1", url)
    form_b = open_form(max_, url + "?edit=1", url)
    assert_fragment(ada.post(url, {**form_a, "title": "Queue by Ada"}, **HX), "meta")
    body = assert_fragment(
        max_.post(url, {**form_b, "owning_group": "Platform", "priority": "critical"}, **HX),
        "meta",
    )
    assert CONFLICT not in body
    saved = Milestone.objects.get(pk=world.milestone.pk)
    assert (saved.title, saved.owning_group, saved.priority) == (
        "Queue by Ada",
        "Platform",
        "critical",
    )
    assert "Queue by Ada" in body and "Platform" in body  # the fragment shows both


def test_meta_both_making_the_same_change_is_no_conflict(world):
    url = section_url(world.milestone, "meta")
    ada, max_ = client_as(world.admin), client_as(world.member)
    form_a = open_form(ada, url + "?edit=1", url)
    form_b = open_form(max_, url + "?edit=1", url)
    ada.post(url, {**form_a, "title": "Same idea"}, **HX)
    body = assert_fragment(max_.post(url, {**form_b, "title": "Same idea"}, **HX), "meta")
    assert CONFLICT not in body
    assert Milestone.objects.get(pk=world.milestone.pk).title == "Same idea"


def test_a_deliverable_edited_by_two_people_conflicts_only_on_the_same_field(filled):
    d = filled.d1
    url = item_url(filled.milestone, "deliverable", d.pk, "edit")
    ada, max_ = client_as(filled.world.admin), client_as(filled.world.member)

    form_a, form_b = open_form(ada, url, url), open_form(max_, url, url)
    assert_fragment(ada.post(url, {**form_a, "title": "API by Ada"}, **HX), "deliverables")
    body = assert_fragment(
        max_.post(url, {**form_b, "title": "API by Max"}, **HX), "deliverables", event=None
    )
    assert CONFLICT in body
    assert conflict_rows(body) == [("Title", "API by Ada", "API by Max")]
    assert Deliverable.objects.get(pk=d.pk).title == "API by Ada"
    assert_fragment(max_.post(url, form_fields(body, url), **HX), "deliverables")
    assert Deliverable.objects.get(pk=d.pk).title == "API by Max"

    form_a, form_b = open_form(ada, url, url), open_form(max_, url, url)
    assert_fragment(ada.post(url, {**form_a, "status": "in_review"}, **HX), "deliverables")
    body = assert_fragment(
        max_.post(url, {**form_b, "owner_label": "Infra team"}, **HX), "deliverables"
    )
    assert CONFLICT not in body
    saved = Deliverable.objects.get(pk=d.pk)
    assert (saved.title, saved.status, saved.owner_label) == (
        "API by Max",
        "in_review",
        "Infra team",
    )


def test_a_conflict_shows_choice_labels_not_codes(world):
    url = section_url(world.milestone, "meta")
    ada, max_ = client_as(world.admin), client_as(world.member)
    form_a = open_form(ada, url + "?edit=1", url)
    form_b = open_form(max_, url + "?edit=1", url)
    ada.post(url, {**form_a, "status": "in_progress"}, **HX)
    body = max_.post(url, {**form_b, "status": "cancelled"}, **HX).content.decode()
    assert conflict_rows(body) == [("Status", "In progress", "Cancelled")]
    assert Milestone.objects.get(pk=world.milestone.pk).status == "in_progress"


# --- Criteria, progress and order ----------------------------------------------------------


def header_facts(client, milestone) -> tuple[str, str]:
    """(progress percent, "met of total") as the header fragment shows them."""
    body = client.get(section_url(milestone, "header"), **HX).content.decode()
    percent = re.search(r'aria-valuenow="(\d+)"', body).group(1)
    met = re.search(r"<strong>(\d+)</strong> of (\d+) criteria met", body)
    return percent, f"{met.group(1)}/{met.group(2)}"


def criterion_li(html: str, pk: int) -> str:
    start = html.index(f'id="criterion-{pk}"')
    start = html.rindex("<li", 0, start)
    return html[start : html.index("</li>", start)]


def test_ticking_criteria_changes_met_and_the_progress_in_the_header(filled, client_for):
    client = client_for(filled.world.member)
    m, a1, s1 = filled.milestone, filled.a1, filled.s1
    # Checkable: 1 must criterion + 2 acceptance criteria + 2 deliverables.
    assert header_facts(client, m) == ("0", "0/4")

    body = assert_fragment(
        client.post(item_url(m, "acceptance", a1.pk, "toggle"), {"checked": "on"}, **HX),
        "deliverables",
    )
    li = criterion_li(body, a1.pk)
    assert 'class="criterion met"' in li and " checked" in li
    a1.refresh_from_db()
    assert (a1.checked, a1.met, a1.checked_by) == (True, True, filled.world.member)
    assert a1.checked_at is not None
    assert header_facts(client, m) == ("20", "1/4")

    assert_fragment(
        client.post(item_url(m, "success", s1.pk, "toggle"), {"checked": "on"}, **HX), "success"
    )
    assert header_facts(client, m) == ("40", "2/4")

    body = client.post(item_url(m, "acceptance", a1.pk, "toggle"), {}, **HX).content.decode()
    assert 'class="criterion"' in criterion_li(body, a1.pk)
    a1.refresh_from_db()
    assert (a1.checked, a1.met, a1.checked_by, a1.checked_at) == (False, False, None, None)
    assert header_facts(client, m) == ("20", "1/4")
    kinds = list(Activity.objects.filter(verb__in=["checked", "unchecked"]).values_list("verb"))
    assert sorted(kinds) == [("checked",), ("checked",), ("unchecked",)]


def test_a_measured_criterion_cannot_be_ticked(filled, client_for):
    measured = make_criterion(
        filled.world.admin, milestone=filled.milestone, text="p95", comparator="<=", target=200
    )
    client = client_for(filled.world.member)
    url = item_url(filled.milestone, "success", measured.pk, "toggle")
    client.post(url, {"checked": "on"}, **HX)
    measured.refresh_from_db()
    assert (measured.checked, measured.met) == (False, False)
    assert client.get(url).status_code == 405  # toggles are POST only


def deliverable_order(html: str) -> list[str]:
    return re.findall(r'<h3 class="item-title">(.*?)</h3>', section_html(html, "deliverables"))


def test_deliverables_move_up_and_down(filled, client_for):
    m = filled.milestone
    d3 = Deliverable.objects.create(milestone=m, title="Export docs", position=2)
    client = client_for(filled.world.member)

    body = assert_fragment(
        client.post(item_url(m, "deliverable", d3.pk, "up"), **HX), "deliverables"
    )
    assert deliverable_order(body) == ["Export API", "Export docs", "Export worker"]
    positions = dict(Deliverable.objects.values_list("title", "position"))
    assert positions == {"Export API": 0, "Export docs": 1, "Export worker": 2}

    body = client.post(item_url(m, "deliverable", filled.d1.pk, "up"), **HX).content.decode()
    assert deliverable_order(body) == ["Export API", "Export docs", "Export worker"]  # top

    body = client.post(item_url(m, "deliverable", filled.d1.pk, "down"), **HX).content.decode()
    assert deliverable_order(body) == ["Export docs", "Export API", "Export worker"]
    assert list(m.deliverables.order_by("position").values_list("title", flat=True)) == [
        "Export docs",
        "Export API",
        "Export worker",
    ]
    assert client.get(item_url(m, "deliverable", d3.pk, "up")).status_code == 405
    page = client.get(page_url(m)).content.decode()
    assert deliverable_order(page) == ["Export docs", "Export API", "Export worker"]
    first_up = re.search(r'<button[^>]*aria-label="Move deliverable “Export docs” up"[^>]*>', page)
    assert "disabled" in first_up.group(0)
    last_down = re.search(
        r'<button[^>]*aria-label="Move deliverable “Export worker” down"[^>]*>', page
    )
    assert "disabled" in last_down.group(0)


def test_criteria_move_within_their_own_list(filled, client_for):
    m = filled.milestone
    client = client_for(filled.world.member)
    body = client.post(item_url(m, "acceptance", filled.a2.pk, "up"), **HX).content.decode()
    assert body.index("Rejects bad input") < body.index("Returns 202")
    assert list(filled.d1.criteria.order_by("position").values_list("text", flat=True)) == [
        "Rejects bad input",
        "Returns 202",
    ]
    client.post(item_url(m, "success", filled.s1.pk, "down"), **HX)
    assert list(m.criteria.order_by("position").values_list("text", flat=True)) == [
        "p95 under 200 ms",
        "No data loss",
    ]
    # The success criteria's own order did not touch the acceptance criteria.
    assert list(filled.d1.criteria.order_by("position").values_list("position", flat=True)) == [
        0,
        1,
    ]


# --- Deleting ------------------------------------------------------------------------------


def test_deleting_a_milestone_confirms_what_goes_with_it_then_deletes_it_all(filled, client_for):
    m = filled.milestone
    url = reverse("milestone_delete", args=["rocket", m.key])
    client = client_for(filled.world.member)
    page = client.get(url).content.decode()
    for count, kind in [
        (2, "deliverables"),
        (4, "criteria"),
        (1, "risks?"),
        (1, "blockers?"),
        (1, "dependenc(?:y|ies)"),
        (1, "status updates?"),
    ]:
        assert re.search(rf"<li>{count} {kind}</li>", page), kind
    assert Milestone.objects.filter(pk=m.pk).exists()  # GET only asks

    response = client.post(url)
    assert response.status_code == 302
    assert response["Location"] == reverse("plan", args=["rocket", filled.world.plan.key])
    assert not Milestone.objects.filter(pk=m.pk).exists()
    assert not Deliverable.objects.filter(milestone_id=m.pk).exists()
    assert not Criterion.objects.filter(pk__in=[filled.a1.pk, filled.s1.pk]).exists()
    assert not Risk.objects.exists() and not Blocker.objects.exists()
    assert not StatusUpdate.objects.exists() and not Dependency.objects.exists()
    assert Milestone.objects.filter(pk__in=[filled.before.pk, filled.spare.pk]).count() == 2
    assert Activity.objects.filter(verb="deleted", object_type="milestone", object_id=m.pk).exists()
    assert "Deleted MLS-001" in client.get(response["Location"]).content.decode()


def test_deleting_an_item_confirms_first_then_deletes_it_with_its_criteria(filled, client_for):
    m, d1 = filled.milestone, filled.d1
    client = client_for(filled.world.member)
    url = item_url(m, "deliverable", d1.pk, "delete")
    page = client.get(url).content.decode()
    assert "“Export API” will be deleted from MLS-001." in page
    assert "Its 2 acceptance criteria go with it." in page
    assert f'href="{page_url(m)}#deliverables"' in page
    assert Deliverable.objects.filter(pk=d1.pk).exists()
    body = assert_fragment(client.post(url, **HX), "deliverables")
    assert "Export API" not in body and "Export worker" in body
    assert not Deliverable.objects.filter(pk=d1.pk).exists()
    assert not Criterion.objects.filter(deliverable_id=d1.pk).exists()


# --- Markdown --------------------------------------------------------------------------------

EVIL = (
    "Ship **bold** things.\n\n"
    "<script>alert(1)</script>\n\n"
    "<img src=x onerror=alert(1)>\n\n"
    "[x](javascript:alert(1)) and [docs](https://example.com/docs)"
)


def test_a_summary_is_markdown_with_nothing_executable_left(world, client_for):
    client = client_for(world.member)
    url = section_url(world.milestone, "summary")
    data = open_form(client, url + "?edit=1", url)
    body = assert_fragment(client.post(url, {**data, "summary": EVIL}, **HX), "summary")
    page = client.get(page_url(world.milestone)).content.decode()
    assert Milestone.objects.get(pk=world.milestone.pk).summary == EVIL  # stored as typed
    for html in (body, page):
        summary = section_html(html, "summary")
        assert "<strong>bold</strong>" in summary
        assert "<script" not in summary.lower()
        assert "<img" not in summary.lower()
        assert 'href="https://example.com/docs"' in summary
    for needle in ("onerror", "javascript:", "alert(1)"):
        assert needle not in page.lower(), needle
        assert needle not in body.lower(), needle


def test_markdown_in_other_user_text_is_cleaned_too(filled, client_for):
    Milestone.objects.filter(pk=filled.milestone.pk).update(
        rollback_plan=EVIL, retro_went_well=EVIL
    )
    Deliverable.objects.filter(pk=filled.d1.pk).update(description=EVIL)
    StatusUpdate.objects.filter(pk=filled.update.pk).update(narrative=EVIL)
    page = client_for(filled.world.viewer).get(page_url(filled.milestone)).content.decode()
    assert page.count("<strong>bold</strong>") == 4
    for needle in ("onerror", "javascript:", "alert(1)"):
        assert needle not in page.lower(), needle


# --- Without JavaScript --------------------------------------------------------------------


def test_without_htmx_the_edit_link_renders_the_whole_page_with_the_form(world, client_for):
    client = client_for(world.member)
    url = section_url(world.milestone, "summary")
    response = client.get(url + "?edit=1")
    assert response.status_code == 200
    page = response.content.decode()
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert '<section id="deliverables"' in page and '<header id="header"' in page
    summary = section_html(page, "summary")
    assert f'<form method="post" action="{url}"' in summary
    assert '<textarea name="summary"' in summary
    assert f'href="{url}#summary"' in summary  # Cancel goes back to the page
    data = form_fields(page, url)
    assert "csrfmiddlewaretoken" in data and data["version"] == "1"

    response = client.post(url, {**data, "summary": "Plain **words**"})
    assert response.status_code == 302
    assert response["Location"] == f"{page_url(world.milestone)}#summary"
    page = client.get(response["Location"]).content.decode()
    assert "Plain <strong>words</strong>" in section_html(page, "summary")


def test_without_htmx_an_invalid_form_renders_the_whole_page_with_errors(world, client_for):
    client = client_for(world.member)
    url = section_url(world.milestone, "meta")
    data = form_fields(client.get(url + "?edit=1").content.decode(), url)
    response = client.post(url, {**data, "title": ""})
    assert response.status_code == 200
    page = response.content.decode()
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert_error_at(section_html(page, "meta"), "meta-title", "This field is required.")


# --- Query budget ------------------------------------------------------------------------------


def grow_milestone(milestone, user, *, scale: int) -> None:
    """Bulk-add everything a milestone page lists; `scale` 1 is demo size, 20 is 20×.

    At 20×: 50 deliverables × 10 acceptance criteria, 20 success criteria, 20 risks,
    20 blockers, 30 status updates, 30 activity rows and 10 dependencies.
    """
    big = scale >= 20
    n_deliverables, n_acceptance = (50, 10) if big else (3, 2)
    n_success, n_risks, n_blockers = (20, 20, 20) if big else (2, 2, 1)
    n_updates, n_activity, n_links = (30, 30, 10) if big else (2, 3, 2)
    start = milestone.deliverables.count()
    deliverables = Deliverable.objects.bulk_create(
        Deliverable(
            milestone=milestone,
            title=f"Part {start + i}",
            owner=user if i % 2 else None,
            status=["planned", "accepted"][i % 2],
            position=start + i,
        )
        for i in range(n_deliverables)
    )
    Criterion.objects.bulk_create(
        [
            *(
                Criterion(deliverable=d, text=f"Check {c}", checked=c % 2 == 0, position=c)
                for d in deliverables
                for c in range(n_acceptance)
            ),
            *(
                Criterion(
                    milestone=milestone,
                    text=f"Goal {c}",
                    level=["must", "should"][c % 2],
                    category=["technical", "quality", "operational"][c % 3],
                    checked=c % 3 == 0,
                    position=100 + c,
                )
                for c in range(n_success)
            ),
        ]
    )
    Risk.objects.bulk_create(
        Risk(
            milestone=milestone,
            title=f"Risk {r}",
            owner=user,
            likelihood=["low", "medium", "high"][r % 3],
            impact=["high", "medium", "low"][r % 3],
            mitigation="Watch it" if r % 2 else "",
        )
        for r in range(n_risks)
    )
    Blocker.objects.bulk_create(
        Blocker(
            milestone=milestone,
            title=f"Blocker {b}",
            owner=user,
            next_action="Ask",
            target_resolution_date=today() - datetime.timedelta(days=1),
            resolved_on=today() if b % 2 else None,
            resolution="Done" if b % 2 else "",
        )
        for b in range(n_blockers)
    )
    StatusUpdate.objects.bulk_create(
        StatusUpdate(
            milestone=milestone,
            author=user,
            percent_complete=10,
            confidence=50,
            narrative=f"Week **{u}**",
            next_update_on=today(),
        )
        for u in range(n_updates)
    )
    Activity.objects.bulk_create(
        Activity(
            team_id=milestone.team_id,
            plan_id=milestone.plan_id,
            milestone=milestone,
            actor=user,
            verb="updated",
            object_type="deliverable",
            object_id=1,
            object_repr="Part",
            changes={"title": ["a", "b"]},
        )
        for _ in range(n_activity)
    )
    first = Milestone.objects.filter(team_id=milestone.team_id).count() + 500
    others = Milestone.objects.bulk_create(
        Milestone(
            team_id=milestone.team_id,
            plan_id=milestone.plan_id,
            key=f"DEP-{first + i}",
            title=f"Neighbour {i}",
            forecast_finish=today(),
        )
        for i in range(n_links)
    )
    Dependency.objects.bulk_create(
        Dependency(
            team_id=milestone.team_id,
            predecessor=other if i % 2 else milestone,
            successor=milestone if i % 2 else other,
            lag_days=i,
        )
        for i, other in enumerate(others)
    )


def count_queries(client, url: str, **extra) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **extra)
    assert response.status_code == 200
    return len(queries)


# Measured at demo size and at 20×, the same: session, user, milestone, membership, the header's
# team list, success criteria, deliverables, their acceptance criteria (prefetch), blockers,
# both directions of dependencies, risks, status updates, activity.
MILESTONE_PAGE_QUERIES = 16


def test_the_milestone_page_query_count_does_not_grow_with_the_milestone(
    world, client_for, django_assert_max_num_queries
):
    client = client_for(world.member)
    m = world.milestone
    grow_milestone(m, world.member, scale=1)
    demo = count_queries(client, page_url(m))
    demo_sections = {s: count_queries(client, section_url(m, s), **HX) for s in SECTIONS}
    page = client.get(page_url(m)).content.decode()
    assert "Part 2" in page and "Goal 1" in page and "Risk 1" in page and "Neighbour 1" in page

    grow_milestone(m, world.member, scale=20)
    assert m.deliverables.count() == 53
    assert Criterion.objects.filter(deliverable__milestone=m).count() == 3 * 2 + 50 * 10
    assert Dependency.objects.filter(successor=m).count() + m.successor_links.count() == 12
    twenty_times = count_queries(client, page_url(m))
    sections = {s: count_queries(client, section_url(m, s), **HX) for s in SECTIONS}
    assert sections == demo_sections  # each fragment alone does not grow either
    assert all(n <= MILESTONE_PAGE_QUERIES for n in sections.values())
    print(f"milestone page queries: demo {demo}, 20x {twenty_times}")
    assert demo == twenty_times == MILESTONE_PAGE_QUERIES
    with django_assert_max_num_queries(MILESTONE_PAGE_QUERIES):
        page = client.get(page_url(m)).content.decode()
    assert "Part 52" in page and "Goal 19" in page and "Showing the latest 10 updates." in page
    viewer = client_for(world.viewer)
    with django_assert_max_num_queries(MILESTONE_PAGE_QUERIES):
        assert "Read-only" in viewer.get(page_url(m)).content.decode()


# --- More access and integrity checks -------------------------------------------------------


def test_reading_the_page_needs_a_login_and_membership(filled, client, client_for):
    response = client.get(page_url(filled.milestone))
    assert response.status_code == 302
    assert response["Location"].startswith(login_url())
    assert client.get(section_url(filled.milestone, "header"), **HX).status_code == 302
    outsider = client_for(filled.world.outsider)
    assert outsider.get(page_url(filled.milestone)).status_code == 404
    assert outsider.get(section_url(filled.milestone, "risks"), **HX).status_code == 404
    assert client_for(filled.world.viewer).get(page_url(filled.milestone)).status_code == 200


def test_the_same_key_in_another_team_does_not_reach_this_teams_items(filled, client_for):
    """Olga's team also has an MLS-001; its URLs must not reach Rocket's rows by pk."""
    from tests.factories import make_plan

    theirs = make_milestone(make_plan(filled.world.other_team, filled.world.outsider))
    assert theirs.key == filled.milestone.key == "MLS-001"
    client = client_for(filled.world.outsider)
    data = form_values(
        forms.DeliverableForm, filled.d1, team_id=filled.world.team.pk, title="Hijacked"
    )
    assert (
        client.post(item_url(theirs, "deliverable", filled.d1.pk, "edit"), data).status_code == 404
    )
    url = item_url(theirs, "acceptance", filled.a1.pk, "toggle")
    assert client.post(url, {"checked": "on"}).status_code == 404
    assert client.post(item_url(theirs, "dependency", filled.link.pk, "delete")).status_code == 404
    url = add_url(theirs, "acceptance")
    assert client.post(url, {"deliverable": filled.d1.pk, "text": "x"}).status_code == 404
    assert Deliverable.objects.get(pk=filled.d1.pk).title == "Export API"
    assert Criterion.objects.get(pk=filled.a1.pk).checked is False
    assert Dependency.objects.filter(pk=filled.link.pk).exists()
    assert not Criterion.objects.filter(text="x").exists()


def test_an_acceptance_criterion_needs_a_deliverable_of_this_milestone(filled, client_for):
    other = make_milestone(filled.world.plan, filled.world.admin)
    foreign = Deliverable.objects.create(milestone=other, title="Theirs")
    client = client_for(filled.world.member)
    url = add_url(filled.milestone, "acceptance")
    assert client.get(url, **HX).status_code == 404  # which deliverable?
    assert client.post(url, {"text": "Orphan"}, **HX).status_code == 404
    assert client.post(url, {"deliverable": foreign.pk, "text": "Orphan"}, **HX).status_code == 404
    assert not Criterion.objects.filter(text="Orphan").exists()


def test_htmx_writes_carry_the_csrf_token_the_page_gives_them(filled):
    """The page puts the token in hx-headers; an HTMX POST with it passes the CSRF check."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(filled.world.member)
    page = client.get(page_url(filled.milestone)).content.decode()
    token = json.loads(re.search(r"<body hx-headers='([^']+)'", page).group(1))["x-csrftoken"]
    url = item_url(filled.milestone, "success", filled.s1.pk, "toggle")
    assert client.post(url, {"checked": "on"}, **HX).status_code == 403
    response = client.post(url, {"checked": "on"}, HTTP_X_CSRFTOKEN=token, **HX)
    assert_fragment(response, "success")
    assert Criterion.objects.get(pk=filled.s1.pk).checked is True


def test_the_same_dependency_twice_is_refused(filled, client_for):
    client = client_for(filled.world.member)
    body = add_dependency(client, filled.milestone, filled.before.key).content.decode()
    assert_error_at(body, "dependency-other", "This dependency already exists.")
    assert Dependency.objects.count() == 1


def test_an_acceptance_criterion_conflict_keeps_its_own_form(filled):
    url = item_url(filled.milestone, "acceptance", filled.a1.pk, "edit")
    ada, max_ = client_as(filled.world.admin), client_as(filled.world.member)
    form_a, form_b = open_form(ada, url, url), open_form(max_, url, url)
    assert "level" not in form_b and "category" not in form_b
    assert_fragment(ada.post(url, {**form_a, "text": "Returns 202 fast"}, **HX), "deliverables")
    body = max_.post(url, {**form_b, "text": "Returns 202 always"}, **HX).content.decode()
    assert CONFLICT in body
    again = form_fields(body, url)
    assert "level" not in again and again["text"] == "Returns 202 always"
    assert_fragment(max_.post(url, again, **HX), "deliverables")
    assert Criterion.objects.get(pk=filled.a1.pk).text == "Returns 202 always"


def test_item_links_built_from_the_prefix_match_the_url_patterns(filled, client_for):
    """The templates append to `item_base` instead of reversing each URL; they must agree."""
    deliverable = filled.d1
    criterion = deliverable.criteria.order_by("position").first()
    html = client_for(filled.world.member).get(page_url(filled.milestone)).content.decode()
    for kind, obj, action in [
        ("acceptance", criterion, "toggle"),
        ("acceptance", criterion, "edit"),
        ("acceptance", criterion, "delete"),
        ("acceptance", criterion, "up"),
        ("deliverable", deliverable, "down"),
        ("deliverable", deliverable, "edit"),
    ]:
        assert f'"{item_url(filled.milestone, kind, obj.pk, action)}"' in html, (kind, action)


def test_a_blocker_keeps_its_issue_and_an_owner_outside_the_team(filled, client_for):
    client = client_for(filled.world.member)
    url = item_url(filled.milestone, "blocker", filled.blocker.pk, "edit")
    data = open_form(client, url, url)
    assert "description" in data and "owner_label" in data
    data.update(description="Legal must <sign> the DPA first", owner="", owner_label="Legal team")
    body = assert_fragment(client.post(url, data, **HX), "blockers")
    assert "Legal must &lt;sign&gt; the DPA first" in body
    assert "Owner: Legal team" in body
    blocker = Blocker.objects.get(pk=filled.blocker.pk)
    assert (blocker.description, blocker.owner_label) == (
        "Legal must <sign> the DPA first",
        "Legal team",
    )


def test_a_criterion_shows_its_detail_and_a_risk_its_outside_owner(filled, client_for):
    client = client_for(filled.world.member)
    criterion = filled.d1.criteria.first()
    url = item_url(filled.milestone, "acceptance", criterion.pk, "edit")
    data = open_form(client, url, url)
    data.update(description="- measured at p95\n- over a week")
    body = assert_fragment(client.post(url, data, **HX), "deliverables")
    assert "- measured at p95<br>- over a week" in body
    risk = services.create_object(
        Risk(milestone=filled.milestone, title="Vendor slips", owner_label="Acme Corp"),
        actor=filled.world.member,
    )
    page = client.get(f"/t/{filled.milestone.team.slug}/m/{filled.milestone.key}/").content
    assert f'id="risk-{risk.pk}"' in page.decode() and "Acme Corp" in page.decode()
