"""The plan page: its sections, milestone order, archive and delete, access and query budget."""

import datetime
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from milestones import forms
from milestones.models import (
    Activity,
    Criterion,
    Deliverable,
    Dependency,
    Milestone,
    Plan,
    Stakeholder,
    today,
)
from tests.factories import make_milestone, make_plan
from tests.test_milestone_page import (
    CONFLICT,
    HX,
    assert_error_at,
    assert_fragment,
    client_as,
    conflict_rows,
    criterion_li,
    field_chunk,
    form_fields,
    form_values,
    login_url,
    open_form,
    section_html,
)

CHANGED = "plan-changed"


def plan_url(plan) -> str:
    return reverse("plan", args=[plan.team.slug, plan.key])


def plan_section_url(plan, section: str) -> str:
    return reverse("plan_section", args=[plan.team.slug, plan.key, section])


def plan_add_url(plan, kind: str) -> str:
    return reverse("plan_item_add", args=[plan.team.slug, plan.key, kind])


def plan_item_url(plan, kind: str, pk: int, action: str) -> str:
    return reverse("plan_item", args=[plan.team.slug, plan.key, kind, pk, action])


def move_url(plan, milestone) -> str:
    return reverse("milestone_move", args=[plan.team.slug, plan.key, milestone.key])


def row_keys(html: str) -> list[str]:
    return re.findall(r'<tr id="row-([^"]+)">', html)


class PlanFilled:
    """The world's plan with three milestones, two criteria and two stakeholders; plus an
    empty second plan."""

    def __init__(self, world):
        self.world = world
        self.plan = world.plan
        self.m1 = world.milestone
        Milestone.objects.filter(pk=self.m1.pk).update(position=0)
        self.m2 = make_milestone(self.plan, world.admin, title="Worker deployed", position=1)
        self.m3 = make_milestone(self.plan, world.admin, title="Customers migrated", position=2)
        self.c1, self.c2 = Criterion.objects.bulk_create(
            [
                Criterion(plan=self.plan, text="All exports on the new service", position=0),
                Criterion(plan=self.plan, text="Old service switched off", position=1),
            ]
        )
        self.st1, self.st2 = Stakeholder.objects.bulk_create(
            [
                Stakeholder(plan=self.plan, name="Support lead", channel="e-mail", position=0),
                Stakeholder(
                    plan=self.plan, email="cto@example.com", frequency="monthly", position=1
                ),
            ]
        )
        self.empty = make_plan(world.team, world.admin, title="Someday maybe")


@pytest.fixture
def filled(world):
    return PlanFilled(world)


# --- Every write view, for every kind of visitor ----------------------------------------------


@dataclass(frozen=True)
class Write:
    name: str
    url: Callable[[PlanFilled], str]
    data: Callable[[PlanFilled], dict]
    state: Callable[[PlanFilled], object]
    expected: Callable[[PlanFilled], object]
    section: str | None = None  # the fragment an HTMX write answers with; None: a redirect
    redirect: Callable[[PlanFilled], str] | None = None

    def __str__(self):
        return self.name


def _order(f):
    return list(f.plan.milestones.order_by("position", "pk").values_list("key", flat=True))


def _criteria(f):
    return list(f.plan.criteria.order_by("position", "pk").values_list("text", flat=True))


def _stakeholders(f):
    return [str(s) for s in f.plan.stakeholders.order_by("position", "pk")]


def _plan_field(name):
    return lambda f: Plan.objects.values_list(name, flat=True).get(pk=f.plan.pk)


C1, C2 = "All exports on the new service", "Old service switched off"

WRITES = [
    Write(
        "create-plan",
        lambda f: reverse("plan_create", args=["rocket"]),
        lambda f: {
            "title": "Mobile beta",
            "summary": "",
            "owner": f.world.member.pk,
            "status": "active",
            "start_date": "",
            "target_date": "",
        },
        lambda f: sorted(Plan.objects.filter(team=f.world.team).values_list("title", flat=True)),
        lambda f: ["Launch the export service", "Mobile beta", "Someday maybe"],
        redirect=lambda f: plan_url(Plan.objects.get(title="Mobile beta")),
    ),
    Write(
        "meta",
        lambda f: plan_section_url(f.plan, "meta"),
        lambda f: form_values(
            forms.PlanForm, f.plan, team_id=f.world.team.pk, title="Export service, v2"
        ),
        _plan_field("title"),
        lambda f: "Export service, v2",
        section="meta",
    ),
    Write(
        "archive",
        lambda f: reverse("plan_archive", args=["rocket", f.plan.key]),
        lambda f: {},
        _plan_field("status"),
        lambda f: "archived",
        redirect=lambda f: plan_url(f.plan),
    ),
    Write(
        "delete-empty-plan",
        lambda f: reverse("plan_delete", args=["rocket", f.empty.key]),
        lambda f: {},
        lambda f: Plan.objects.filter(pk=f.empty.pk).exists(),
        lambda f: False,
        redirect=lambda f: reverse("dashboard", args=["rocket"]),
    ),
    Write(
        "move-milestone-up",
        lambda f: move_url(f.plan, f.m3),
        lambda f: {"direction": "up"},
        _order,
        lambda f: ["MLS-001", "MLS-003", "MLS-002"],
        section="milestones",
    ),
    Write(
        "move-milestone-down",
        lambda f: move_url(f.plan, f.m1),
        lambda f: {"direction": "down"},
        _order,
        lambda f: ["MLS-002", "MLS-001", "MLS-003"],
        section="milestones",
    ),
    Write(
        "add-criterion",
        lambda f: plan_add_url(f.plan, "criterion"),
        lambda f: {"text": "Costs down 20%", "comparator": "", "target": "", "unit": ""},
        _criteria,
        lambda f: [C1, C2, "Costs down 20%"],
        section="criteria",
    ),
    Write(
        "add-stakeholder",
        lambda f: plan_add_url(f.plan, "stakeholder"),
        lambda f: {"name": "Finance", "frequency": "monthly", "channel": "", "content": ""},
        _stakeholders,
        lambda f: ["Support lead", "cto@example.com", "Finance"],
        section="stakeholders",
    ),
    Write(
        "edit-criterion",
        lambda f: plan_item_url(f.plan, "criterion", f.c1.pk, "edit"),
        lambda f: form_values(
            forms.CriterionForm, f.c1, team_id=f.world.team.pk, text="Every export moved"
        ),
        _criteria,
        lambda f: ["Every export moved", C2],
        section="criteria",
    ),
    Write(
        "delete-criterion",
        lambda f: plan_item_url(f.plan, "criterion", f.c1.pk, "delete"),
        lambda f: {},
        _criteria,
        lambda f: [C2],
        section="criteria",
    ),
    Write(
        "move-criterion-up",
        lambda f: plan_item_url(f.plan, "criterion", f.c2.pk, "up"),
        lambda f: {},
        _criteria,
        lambda f: [C2, C1],
        section="criteria",
    ),
    Write(
        "move-criterion-down",
        lambda f: plan_item_url(f.plan, "criterion", f.c1.pk, "down"),
        lambda f: {},
        _criteria,
        lambda f: [C2, C1],
        section="criteria",
    ),
    Write(
        "toggle-criterion",
        lambda f: plan_item_url(f.plan, "criterion", f.c1.pk, "toggle"),
        lambda f: {"checked": "on"},
        lambda f: Criterion.objects.values_list("checked", "met").get(pk=f.c1.pk),
        lambda f: (True, True),
        section="criteria",
    ),
    Write(
        "edit-stakeholder",
        lambda f: plan_item_url(f.plan, "stakeholder", f.st1.pk, "edit"),
        lambda f: form_values(
            forms.StakeholderForm, f.st1, team_id=f.world.team.pk, frequency="on_change"
        ),
        lambda f: Stakeholder.objects.get(pk=f.st1.pk).frequency,
        lambda f: "on_change",
        section="stakeholders",
    ),
    Write(
        "delete-stakeholder",
        lambda f: plan_item_url(f.plan, "stakeholder", f.st2.pk, "delete"),
        lambda f: {},
        _stakeholders,
        lambda f: ["Support lead"],
        section="stakeholders",
    ),
    Write(
        "move-stakeholder-down",
        lambda f: plan_item_url(f.plan, "stakeholder", f.st1.pk, "down"),
        lambda f: {},
        _stakeholders,
        lambda f: ["cto@example.com", "Support lead"],
        section="stakeholders",
    ),
    Write(
        "move-stakeholder-up",
        lambda f: plan_item_url(f.plan, "stakeholder", f.st2.pk, "up"),
        lambda f: {},
        _stakeholders,
        lambda f: ["cto@example.com", "Support lead"],
        section="stakeholders",
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
        assert_fragment(response, write.section, event=CHANGED)
    else:
        assert response.status_code == 302
        assert response["Location"] == write.redirect(filled)
    assert write.state(filled) == expected
    assert Activity.objects.count() > activity  # every write is logged


def test_without_htmx_a_write_redirects_back_to_its_section(filled, client_for):
    client = client_for(filled.world.member)
    for write in WRITES:
        if write.name not in ("meta", "move-milestone-up", "add-stakeholder", "toggle-criterion"):
            continue
        expected = write.expected(filled)
        response = client.post(write.url(filled), write.data(filled))
        assert response.status_code == 302, write.name
        assert response["Location"] == f"{plan_url(filled.plan)}#{write.section}"
        assert write.state(filled) == expected, write.name


FORM_PAGES = [
    ("meta-form", lambda f: plan_section_url(f.plan, "meta") + "?edit=1"),
    ("add-criterion", lambda f: plan_add_url(f.plan, "criterion")),
    ("edit-stakeholder", lambda f: plan_item_url(f.plan, "stakeholder", f.st1.pk, "edit")),
    ("delete-criterion", lambda f: plan_item_url(f.plan, "criterion", f.c1.pk, "delete")),
    ("delete-plan", lambda f: reverse("plan_delete", args=["rocket", f.plan.key])),
    ("create-plan", lambda f: reverse("plan_create", args=["rocket"])),
    ("create-milestone", lambda f: reverse("milestone_create", args=["rocket"])),
]


@pytest.mark.parametrize("url", [u for _, u in FORM_PAGES], ids=[n for n, _ in FORM_PAGES])
def test_forms_are_for_writers_only(filled, client_for, url):
    assert client_for(filled.world.viewer).get(url(filled), **HX).status_code == 403
    assert client_for(filled.world.outsider).get(url(filled), **HX).status_code == 404
    response = client_for(filled.world.member).get(url(filled), **HX)
    assert response.status_code == 200
    assert "<form" in response.content.decode()


def test_items_of_another_plan_are_404_through_this_ones_url(filled, client_for):
    foreign = Criterion.objects.create(plan=filled.empty, text="Elsewhere")
    client = client_for(filled.world.member)
    url = plan_item_url(filled.plan, "criterion", foreign.pk, "toggle")
    assert client.post(url, {"checked": "on"}, **HX).status_code == 404
    assert (
        client.post(plan_item_url(filled.plan, "criterion", foreign.pk, "delete")).status_code
        == 404
    )
    assert Criterion.objects.get(pk=foreign.pk).checked is False
    other = make_milestone(filled.empty, filled.world.admin, title="In the other plan")
    response = client.post(move_url(filled.plan, other), {"direction": "up"}, **HX)
    assert response.status_code == 404
    assert client.post(plan_add_url(filled.plan, "gadget"), {}).status_code == 404
    url = plan_item_url(filled.plan, "stakeholder", filled.st1.pk, "toggle")
    assert client.post(url, {"checked": "on"}).status_code == 404


# --- Sections ----------------------------------------------------------------------------------


def test_each_section_renders_alone_for_htmx(filled, client_for):
    client = client_for(filled.world.viewer)
    page = client.get(plan_url(filled.plan)).content.decode()
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert '<section id="timeline"' in page
    for section in ("meta", "criteria", "milestones", "stakeholders"):
        body = assert_fragment(
            client.get(plan_section_url(filled.plan, section), **HX), section, event=None
        )
        assert f'<section id="{section}"' in page
        assert 'id="timeline"' not in body
    assert row_keys(page) == ["MLS-001", "MLS-002", "MLS-003"]
    assert C1 in section_html(page, "criteria")
    assert "cto@example.com" in section_html(page, "stakeholders")
    client = client_for(filled.world.member)
    assert client.get(plan_section_url(filled.plan, "nonsense"), **HX).status_code == 404
    assert client.get(plan_section_url(filled.plan, "criteria") + "?edit=1").status_code == 404
    assert client.post(plan_section_url(filled.plan, "milestones"), {}).status_code == 404


def test_a_viewer_sees_the_plan_without_any_way_to_change_it(filled, client_for):
    page = client_for(filled.world.viewer).get(plan_url(filled.plan)).content.decode()
    assert "Read-only: you are a viewer in this team" in page
    main = page[page.index('<main id="main"') :]
    for control in ("hx-post", "?edit=1", "Archive plan", "Delete plan", "Add milestone"):
        assert control not in main, control
    member_page = client_for(filled.world.member).get(plan_url(filled.plan)).content.decode()
    for control in ("hx-post", "?edit=1", "Archive plan", "Delete plan", "Add milestone"):
        assert control in member_page, control


# --- Validation ------------------------------------------------------------------------------


def test_plan_meta_validation_keeps_the_input_and_saves_nothing(filled, client_for):
    client = client_for(filled.world.member)
    url = plan_section_url(filled.plan, "meta")
    data = open_form(client, url + "?edit=1", url)
    body = assert_fragment(
        client.post(url, {**data, "title": "", "summary": "Keep me"}, **HX), "meta", event=None
    )
    assert_error_at(body, "plan-title", "This field is required.")
    assert "Keep me</textarea>" in field_chunk(body, "plan-summary")

    data.update(start_date="2031-05-10", target_date="2031-05-01", title="Later")
    body = assert_fragment(client.post(url, data, **HX), "meta", event=None)
    assert_error_at(body, "plan-target_date", "The target date cannot be before the start date.")
    assert 'value="2031-05-01"' in field_chunk(body, "plan-target_date")
    assert 'value="Later"' in field_chunk(body, "plan-title")
    plan = Plan.objects.get(pk=filled.plan.pk)
    assert (plan.title, plan.summary, plan.target_date, plan.version) == (
        "Launch the export service",
        "",
        None,
        1,
    )


def test_a_measured_plan_criterion_needs_a_comparator(filled, client_for):
    client = client_for(filled.world.member)
    url = plan_add_url(filled.plan, "criterion")
    data = open_form(client, url, url)
    assert "category" not in data and "level" not in data  # plan criteria have neither
    data.update(text="Cost per export", target="0.02", unit="EUR", comparator="")
    body = assert_fragment(client.post(url, data, **HX), "criteria", event=None)
    assert_error_at(body, "new-criterion-comparator", "A measured criterion needs a comparator")
    assert 'value="Cost per export"' in field_chunk(body, "new-criterion-text")
    assert _criteria(filled) == [C1, C2]


def test_a_stakeholder_needs_someone_to_tell(filled, client_for):
    client = client_for(filled.world.member)
    url = plan_add_url(filled.plan, "stakeholder")
    data = open_form(client, url, url)
    data.update(channel="Slack #exports", content="Weekly digest")
    body = assert_fragment(client.post(url, data, **HX), "stakeholders", event=None)
    errors = body[body.index('<div class="form-errors"') :]
    assert "Name a member, an e-mail address or a person." in errors[: errors.index("</div>")]
    assert 'value="Slack #exports"' in field_chunk(body, "new-stakeholder-channel")
    outsider = {**data, "user": str(filled.world.outsider.pk)}
    body = client.post(url, outsider, **HX).content.decode()
    assert "Select a valid choice" in field_chunk(body, "new-stakeholder-user")
    assert _stakeholders(filled) == ["Support lead", "cto@example.com"]
    # A team member is enough.
    response = client.post(url, {**data, "user": str(filled.world.viewer.pk)}, **HX)
    assert_fragment(response, "stakeholders", event=CHANGED)
    assert Stakeholder.objects.filter(plan=filled.plan, user=filled.world.viewer).exists()


def test_creating_a_plan_validates_and_then_opens_it(world, client_for):
    client = client_for(world.member)
    url = reverse("plan_create", args=["rocket"])
    data = form_fields(client.get(url).content.decode(), "")
    assert data["owner"] == str(world.member.pk)  # the creator owns it by default
    response = client.post(url, {**data, "title": ""})
    assert response.status_code == 200
    assert_error_at(response.content.decode(), "plan-title", "This field is required.")
    assert Plan.objects.count() == 1
    response = client.post(url, {**data, "title": "Mobile beta"})
    plan = Plan.objects.get(title="Mobile beta")
    assert (plan.key, plan.owner, plan.team) == ("PLAN-002", world.member, world.team)
    assert response["Location"] == plan_url(plan)
    assert "Created PLAN-002" in client.get(plan_url(plan)).content.decode()


def test_creating_a_milestone_starts_from_the_plan_and_goes_last(filled, client_for):
    client = client_for(filled.world.member)
    url = reverse("milestone_create", args=["rocket"])
    page = client.get(url, {"plan": filled.empty.key}).content.decode()
    assert f'<option value="{filled.empty.pk}" selected>' in page
    data = form_fields(page, "")
    assert data["plan"] == str(filled.empty.pk)

    data.update(plan=str(filled.plan.pk), title="Too early", start_date="2031-02-02")
    data.update(target_date="2031-01-01")
    response = client.post(url, data)
    assert response.status_code == 200
    body = response.content.decode()
    assert_error_at(body, "milestone-target_date", "The target date cannot be before the start")
    assert 'value="Too early"' in field_chunk(body, "milestone-title")
    assert not Milestone.objects.filter(title="Too early").exists()

    response = client.post(url, {**data, "title": "Last one", "target_date": "2031-03-01"})
    created = Milestone.objects.get(title="Last one")
    assert response["Location"] == reverse("milestone", args=["rocket", created.key])
    assert (created.key, created.plan, created.position) == ("MLS-004", filled.plan, 3)
    assert created.baseline_target_date == datetime.date(2031, 3, 1)
    page = client.get(plan_url(filled.plan)).content.decode()
    assert row_keys(page) == ["MLS-001", "MLS-002", "MLS-003", "MLS-004"]

    foreign = make_plan(filled.world.other_team, filled.world.outsider)
    response = client.post(url, {**data, "plan": str(foreign.pk), "title": "Sneaky"})
    assert "Select a valid choice" in field_chunk(response.content.decode(), "milestone-plan")
    assert not Milestone.objects.filter(title="Sneaky").exists()


# --- Conflicts -----------------------------------------------------------------------------


def test_plan_meta_conflicts_only_when_both_change_the_same_field(filled):
    url = plan_section_url(filled.plan, "meta")
    ada, max_ = client_as(filled.world.admin), client_as(filled.world.member)
    form_a, form_b = open_form(ada, url + "?edit=1", url), open_form(max_, url + "?edit=1", url)
    assert json.loads(form_b["original"])["title"] == "Launch the export service"
    assert_fragment(ada.post(url, {**form_a, "title": "Ada's title"}, **HX), "meta", CHANGED)
    body = assert_fragment(max_.post(url, {**form_b, "title": "Max's title"}, **HX), "meta", None)
    assert CONFLICT in body
    assert conflict_rows(body) == [("Title", "Ada&#x27;s title", "Max&#x27;s title")]
    assert Plan.objects.get(pk=filled.plan.pk).title == "Ada's title"
    assert_fragment(max_.post(url, form_fields(body, url), **HX), "meta", CHANGED)
    assert Plan.objects.get(pk=filled.plan.pk).title == "Max's title"

    form_a, form_b = open_form(ada, url + "?edit=1", url), open_form(max_, url + "?edit=1", url)
    ada.post(url, {**form_a, "summary": "Why we do this"}, **HX)
    body = assert_fragment(
        max_.post(url, {**form_b, "target_date": "2031-12-31"}, **HX), "meta", CHANGED
    )
    assert CONFLICT not in body
    plan = Plan.objects.get(pk=filled.plan.pk)
    assert (plan.summary, plan.target_date) == ("Why we do this", datetime.date(2031, 12, 31))


# --- Order, archive, delete ------------------------------------------------------------------


def test_milestones_move_up_and_down_the_plan(filled, client_for):
    client = client_for(filled.world.member)
    body = assert_fragment(
        client.post(move_url(filled.plan, filled.m3), {"direction": "up"}, **HX),
        "milestones",
        event=CHANGED,
    )
    assert row_keys(body) == ["MLS-001", "MLS-003", "MLS-002"]
    assert _order(filled) == ["MLS-001", "MLS-003", "MLS-002"]
    assert dict(filled.plan.milestones.values_list("key", "position")) == {
        "MLS-001": 0,
        "MLS-003": 1,
        "MLS-002": 2,
    }
    body = client.post(move_url(filled.plan, filled.m1), {"direction": "up"}, **HX)
    assert row_keys(body.content.decode()) == ["MLS-001", "MLS-003", "MLS-002"]  # already first
    body = client.post(move_url(filled.plan, filled.m2), {"direction": "down"}, **HX)
    assert row_keys(body.content.decode()) == ["MLS-001", "MLS-003", "MLS-002"]  # already last
    body = client.post(move_url(filled.plan, filled.m1), {"direction": "down"}, **HX)
    assert row_keys(body.content.decode()) == ["MLS-003", "MLS-001", "MLS-002"]
    page = client.get(plan_url(filled.plan)).content.decode()
    assert row_keys(page) == ["MLS-003", "MLS-001", "MLS-002"]
    first_up = re.search(r'<button[^>]*aria-label="Move MLS-003 up"[^>]*>', page).group(0)
    last_down = re.search(r'<button[^>]*aria-label="Move MLS-002 down"[^>]*>', page).group(0)
    assert "disabled" in first_up and "disabled" in last_down
    moved = Activity.objects.filter(verb="moved", object_type="milestone")
    assert moved.count() == 2  # moves that cannot happen are not logged

    assert client.post(move_url(filled.plan, filled.m1), {"direction": "left"}).status_code == 404
    assert client.get(move_url(filled.plan, filled.m1)).status_code == 405
    assert _order(filled) == ["MLS-003", "MLS-001", "MLS-002"]


def test_archiving_hides_the_plan_and_restoring_brings_it_back(filled, client_for):
    client = client_for(filled.world.member)
    url = reverse("plan_archive", args=["rocket", filled.plan.key])
    response = client.post(url)
    assert response["Location"] == plan_url(filled.plan)
    assert Plan.objects.get(pk=filled.plan.pk).status == "archived"
    page = client.get(plan_url(filled.plan)).content.decode()
    assert "Archived PLAN-001" in page
    assert "This plan is archived" in page and "Restore plan" in page
    create = client.get(reverse("milestone_create", args=["rocket"])).content.decode()
    offered = field_chunk(create, "milestone-plan")
    assert f'<option value="{filled.plan.pk}"' not in offered  # not offered for new work
    assert f'<option value="{filled.empty.pk}"' in offered
    assert client.get(url).status_code == 405  # archive is POST only

    response = client.post(url)
    assert Plan.objects.get(pk=filled.plan.pk).status == "active"
    page = client.get(response["Location"]).content.decode()
    assert "Restored PLAN-001" in page
    assert "This plan is archived" not in page and "Archive plan" in page


def test_creating_a_milestone_without_an_open_plan_asks_for_a_plan_first(world, client_for):
    Plan.objects.filter(pk=world.plan.pk).update(status="archived")
    client = client_for(world.member)
    response = client.get(reverse("milestone_create", args=["rocket"]))
    assert response["Location"] == reverse("plan_create", args=["rocket"])


def test_a_plan_with_milestones_is_not_deleted(filled, client_for):
    client = client_for(filled.world.member)
    url = reverse("plan_delete", args=["rocket", filled.plan.key])
    page = client.get(url).content.decode()
    assert "This plan still has 3 milestones." in page
    assert reverse("plan_archive", args=["rocket", filled.plan.key]) in page
    response = client.post(url)
    assert response.status_code == 409
    assert "This plan still has 3 milestones." in response.content.decode()
    assert Plan.objects.filter(pk=filled.plan.pk).exists()
    assert Milestone.objects.filter(plan=filled.plan).count() == 3
    assert not Activity.objects.filter(verb="deleted").exists()


def test_an_empty_plan_is_deleted_with_its_criteria_and_stakeholders(filled, client_for):
    client = client_for(filled.world.member)
    for m in (filled.m1, filled.m2, filled.m3):
        client.post(reverse("milestone_delete", args=["rocket", m.key]))
    url = reverse("plan_delete", args=["rocket", filled.plan.key])
    page = client.get(url).content.decode()
    assert "The plan has no milestones." in page and f"Delete {filled.plan.key}" in page
    response = client.post(url)
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard", args=["rocket"])
    assert not Plan.objects.filter(pk=filled.plan.pk).exists()
    assert not Criterion.objects.filter(pk__in=[filled.c1.pk, filled.c2.pk]).exists()
    assert not Stakeholder.objects.filter(pk__in=[filled.st1.pk, filled.st2.pk]).exists()
    assert Activity.objects.filter(verb="deleted", object_type="plan").count() == 1
    assert client.get(plan_url(filled.plan)).status_code == 404


def test_ticking_a_plan_criterion_marks_it_met(filled, client_for):
    client = client_for(filled.world.member)
    url = plan_item_url(filled.plan, "criterion", filled.c1.pk, "toggle")
    body = assert_fragment(client.post(url, {"checked": "on"}, **HX), "criteria", CHANGED)
    li = criterion_li(body, filled.c1.pk)
    assert 'class="criterion met"' in li and " checked" in li
    c1 = Criterion.objects.get(pk=filled.c1.pk)
    assert (c1.checked, c1.met, c1.checked_by) == (True, True, filled.world.member)
    body = client.post(url, {}, **HX).content.decode()
    assert 'class="criterion"' in criterion_li(body, filled.c1.pk)
    assert Criterion.objects.get(pk=filled.c1.pk).met is False


def test_plan_progress_is_the_mean_of_its_measurable_milestones(filled, client_for):
    Criterion.objects.bulk_create(
        [
            Criterion(milestone=filled.m1, text="One", checked=True),
            Criterion(milestone=filled.m1, text="Two"),
        ]
    )
    Milestone.objects.filter(pk=filled.m2.pk).update(status="completed")
    # m3 has nothing to check, so it does not count: (50 + 100) / 2.
    body = (
        client_for(filled.world.viewer)
        .get(plan_section_url(filled.plan, "milestones"), **HX)
        .content.decode()
    )
    assert re.search(r'aria-valuenow="75" aria-label="Progress of PLAN-001"', body)
    assert re.search(r'aria-valuenow="50" aria-label="Progress of MLS-001"', body)
    assert re.search(r'aria-valuenow="100" aria-label="Progress of MLS-002"', body)
    assert re.search(r'aria-valuenow="0" aria-label="Progress of MLS-003"', body)


def test_the_plan_summary_is_sanitised_markdown(filled, client_for):
    Plan.objects.filter(pk=filled.plan.pk).update(
        summary="**Goal**\n\n<script>alert(1)</script><img src=x onerror=alert(1)>"
        "\n\n[x](javascript:alert(1))"
    )
    page = client_for(filled.world.viewer).get(plan_url(filled.plan)).content.decode()
    assert "<strong>Goal</strong>" in section_html(page, "meta")
    for needle in ("onerror", "javascript:", "alert(1)"):
        assert needle not in page.lower(), needle


def test_without_htmx_the_plan_edit_link_renders_the_whole_page(filled, client_for):
    client = client_for(filled.world.member)
    url = plan_section_url(filled.plan, "meta")
    page = client.get(url + "?edit=1").content.decode()
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert '<section id="milestones"' in page
    assert f'<form method="post" action="{url}"' in section_html(page, "meta")
    data = form_fields(page, url)
    response = client.post(url, {**data, "title": "No JavaScript needed"})
    assert response["Location"] == f"{plan_url(filled.plan)}#meta"
    assert Plan.objects.get(pk=filled.plan.pk).title == "No JavaScript needed"


# --- Query budget ------------------------------------------------------------------------------


def add_milestones(plan, owner, count: int) -> None:
    """Bulk-add milestones with deliverables, criteria and links, plus plan-level rows."""
    start = Milestone.objects.filter(team=plan.team).count()
    milestones = Milestone.objects.bulk_create(
        Milestone(
            team=plan.team,
            plan=plan,
            key=f"BLK-{start + i}",
            title=f"Bulk milestone {start + i}",
            owner=owner if i % 2 else None,
            owning_group="" if i % 2 else "Infra",
            position=start + i,
            status=["planned", "in_progress", "completed", "cancelled"][i % 4],
            health=["on_track", "at_risk", "off_track"][i % 3],
            health_reasons=[{"health": "at_risk", "message": "Slipping"}] if i % 3 else [],
            is_critical=i % 5 == 0,
            start_date=today() - datetime.timedelta(days=20),
            target_date=today() + datetime.timedelta(days=i % 40 - 10),
        )
        for i in range(count)
    )
    deliverables = Deliverable.objects.bulk_create(
        Deliverable(milestone=m, title="Part", status=["planned", "accepted"][i % 2])
        for m in milestones
        for i in range(2)
    )
    Criterion.objects.bulk_create(
        [
            *(
                Criterion(deliverable=d, text="Check", checked=i % 2 == 0)
                for d in deliverables
                for i in range(2)
            ),
            *(Criterion(milestone=m, text="Goal", checked=True) for m in milestones),
            *(
                Criterion(plan=plan, text=f"Plan goal {i}", position=i)
                for i in range(max(2, count // 10))
            ),
        ]
    )
    Dependency.objects.bulk_create(
        Dependency(team=plan.team, predecessor=a, successor=b)
        for a, b in itertools.pairwise(milestones)
    )
    Stakeholder.objects.bulk_create(
        Stakeholder(plan=plan, user=owner if i % 2 else None, name=f"Reader {i}", position=i)
        for i in range(max(2, count // 10))
    )


# Measured with 10 and with 200 milestones, the same: session, user, plan, membership, the
# header's team list, milestones with their progress counts, plan criteria, stakeholders, and
# the timeline's milestones and dependencies.
PLAN_PAGE_QUERIES = 10


def count_queries(client, url: str, **extra) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **extra)
    assert response.status_code == 200
    return len(queries)


def test_the_plan_page_query_count_does_not_grow_with_the_plan(
    world, client_for, django_assert_max_num_queries
):
    client = client_for(world.member)
    add_milestones(world.plan, world.member, 9)
    assert world.plan.milestones.count() == 10
    ten = count_queries(client, plan_url(world.plan))
    sections = ("meta", "criteria", "milestones", "stakeholders")
    ten_sections = {
        s: count_queries(client, plan_section_url(world.plan, s), **HX) for s in sections
    }

    add_milestones(world.plan, world.member, 190)
    assert world.plan.milestones.count() == 200
    two_hundred = count_queries(client, plan_url(world.plan))
    print(f"plan page queries: 10 milestones {ten}, 200 milestones {two_hundred}")
    assert ten == two_hundred == PLAN_PAGE_QUERIES
    assert {
        s: count_queries(client, plan_section_url(world.plan, s), **HX) for s in sections
    } == ten_sections
    with django_assert_max_num_queries(PLAN_PAGE_QUERIES):
        page = client.get(plan_url(world.plan)).content.decode()
    assert len(row_keys(page)) == 200
    assert "Bulk milestone 199" in page and "Plan goal 18" in page
