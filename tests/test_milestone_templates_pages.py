"""Template pages: list, detail, save as template, rename, delete, create from a template and
build a plan; permissions, team isolation, CSRF, escaping and query budgets."""

import datetime
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from milestone_templates import services as template_services
from milestone_templates.builtin import BUILTIN_BY_REF, BUILTIN_TEMPLATES
from milestone_templates.models import MilestoneTemplate
from milestones.models import Criterion, Deliverable, Dependency, Milestone, Plan, today
from tests.factories import make_deliverable, make_milestone, make_plan

D = datetime.date
HX = {"HTTP_HX_REQUEST": "true"}

# SQL queries per page, whatever the number of templates, deliverables and criteria.
LIST_BUDGET = 6
DETAIL_BUDGET = 5
SAVE_PAGE_BUDGET = 10
USE_PAGE_BUDGET = 9
BUILD_PAGE_BUDGET = 7


def url(name, team, *args):
    return reverse(f"milestone_templates:{name}", args=[team.slug, *args])


def make_template(world, name="Queue rollout", deliverables=2, criteria=2, team=None):
    """A team template saved from a milestone with `deliverables` × `criteria` acceptance
    criteria and `criteria` success criteria (rows bulk-inserted: this is page data only)."""
    team = team or world.team
    plan = world.plan if team == world.team else make_plan(team)
    source = make_milestone(plan, None, title=f"Source of {name}")
    parts = Deliverable.objects.bulk_create(
        Deliverable(milestone=source, title=f"Part {d}", position=d) for d in range(deliverables)
    )
    Criterion.objects.bulk_create(
        [
            *(
                Criterion(deliverable=part, text=f"Check {part.position}.{c}", position=c)
                for part in parts
                for c in range(criteria)
            ),
            *(Criterion(milestone=source, text=f"Goal {c}", position=c) for c in range(criteria)),
        ]
    )
    return template_services.save_as_template(source, actor=None, name=name)


def selected_options(html: str, name: str) -> str | None:
    select = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', html, re.S)
    chosen = re.search(r'<option value="([^"]*)"[^>]*selected', select.group(1))
    return chosen.group(1) if chosen else None


# --- Reading: list and detail ---------------------------------------------------------------


def test_the_list_shows_built_ins_with_durations_and_an_empty_state(world, client_for):
    response = client_for(world.viewer).get(url("list", world.team))
    html = response.content.decode()
    assert response.status_code == 200
    for blueprint in BUILTIN_TEMPLATES:
        assert blueprint.name.replace("&", "&amp;") in html
    assert "<td>2 weeks</td>" in html and "<td>10 days</td>" in html
    assert "has no templates of its own yet" in html
    # A viewer reads but gets no way to write.
    assert url("use", world.team, "foundation") not in html
    assert url("build_plan", world.team) not in html


def test_the_list_shows_the_teams_templates_and_no_other_teams(world, client_for):
    make_template(world, "Queue rollout")
    make_template(world, "Their secret", team=world.other_team)
    html = client_for(world.member).get(url("list", world.team)).content.decode()
    assert "Queue rollout" in html and "Their secret" not in html
    assert "has no templates of its own yet" not in html
    assert url("use", world.team, "foundation") in html


def test_the_teams_templates_are_paginated(world, client_for):
    for n in range(23):
        # Not "T20": an ISO timestamp on the page at 20:00 would contain it.
        MilestoneTemplate.objects.create(team=world.team, name=f"Tpl {n:02d}", duration_days=7)
    client = client_for(world.member)
    first = client.get(url("list", world.team)).content.decode()
    second = client.get(url("list", world.team) + "?page=2").content.decode()
    assert "Tpl 19" in first and "Tpl 20" not in first and "Page 1 of 2" in first
    assert "Tpl 20" in second and "Tpl 22" in second and "Tpl 00" not in second


def test_a_built_in_template_page_lists_its_contents(world, client_for):
    response = client_for(world.viewer).get(url("detail", world.team, "polish-production"))
    html = response.content.decode()
    assert response.status_code == 200
    blueprint = BUILTIN_BY_REF["polish-production"]
    for deliverable in blueprint.deliverables:
        assert deliverable.title in html
    assert "&lt;= 500 ms" in html
    assert "10 days" in html and "Operations lead" in html
    assert "Create a milestone from this template" not in html  # viewer


def test_unknown_and_other_teams_templates_are_404(world, client_for):
    theirs = make_template(world, "Theirs", team=world.other_team)
    client = client_for(world.member)
    assert client.get(url("detail", world.team, theirs.pk)).status_code == 404
    assert client.get(url("detail", world.team, "no-such-thing")).status_code == 404
    assert client.get(url("edit", world.team, theirs.pk)).status_code == 404
    assert client.get(url("delete", world.team, theirs.pk)).status_code == 404
    assert client.get(url("use", world.team, theirs.pk)).status_code == 404


@pytest.mark.parametrize(
    ("name", "args"),
    [("list", []), ("detail", ["foundation"]), ("build_plan", []), ("use", ["foundation"])],
)
def test_outsiders_get_404_and_anonymous_visitors_log_in(world, client, client_for, name, args):
    anonymous = client.get(url(name, world.team, *args))
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert client_for(world.outsider).get(url(name, world.team, *args)).status_code == 404


def test_output_is_escaped(world, client_for):
    template = make_template(world, "<script>alert(1)</script>")
    client = client_for(world.member)
    for page in (url("list", world.team), url("detail", world.team, template.pk)):
        html = client.get(page).content.decode()
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# --- Save as template -----------------------------------------------------------------------


def test_a_member_saves_a_milestone_as_a_template(world, client_for):
    make_deliverable(world.milestone, world.admin, title="Queue")
    client = client_for(world.member)
    save_url = url("save", world.team, world.milestone.key)
    page = client.get(save_url).content.decode()
    assert f'value="{world.milestone.title}"' in page  # the name starts as the title
    assert "1 deliverable" in page
    response = client.post(save_url, {"name": "Queue launch", "description": "Use for queues"})
    template = MilestoneTemplate.objects.get()
    assert response.status_code == 302
    assert response["Location"] == url("detail", world.team, template.pk)
    assert (template.name, template.description, template.created_by) == (
        "Queue launch", "Use for queues", world.member,
    )  # fmt: skip
    assert template.content["deliverables"][0]["title"] == "Queue"


def test_saving_with_a_taken_name_shows_the_error_and_saves_nothing(world, client_for):
    make_template(world, "Queue launch")
    response = client_for(world.member).post(
        url("save", world.team, world.milestone.key), {"name": "QUEUE LAUNCH"}
    )
    assert response.status_code == 200
    assert "already has a template with this name" in response.content.decode()
    assert MilestoneTemplate.objects.count() == 1


def test_viewers_cannot_save_templates_and_outsiders_see_nothing(world, client_for):
    save_url = url("save", world.team, world.milestone.key)
    client = client_for(world.viewer)
    assert client.get(save_url).status_code == 403
    assert client.post(save_url, {"name": "Nope"}).status_code == 403
    client = client_for(world.outsider)
    assert client.get(save_url).status_code == 404
    assert client.post(save_url, {"name": "Nope"}).status_code == 404
    assert not MilestoneTemplate.objects.exists()


def test_forms_need_the_csrf_token(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.member)
    response = client.post(url("save", world.team, world.milestone.key), {"name": "X"})
    assert response.status_code == 403
    assert not MilestoneTemplate.objects.exists()


# --- Rename and delete ----------------------------------------------------------------------


def test_rename_a_template(world, client_for):
    template = make_template(world, "Old name")
    make_template(world, "Taken")
    client = client_for(world.member)
    edit_url = url("edit", world.team, template.pk)
    assert 'value="Old name"' in client.get(edit_url).content.decode()
    taken = client.post(edit_url, {"name": "taken", "description": ""})
    assert "already has a template with this name" in taken.content.decode()
    blank = client.post(edit_url, {"name": "", "description": ""})
    assert "This field is required." in blank.content.decode()
    response = client.post(edit_url, {"name": "New name", "description": "Better"})
    assert response.status_code == 302
    template.refresh_from_db()
    assert (template.name, template.description) == ("New name", "Better")


def test_delete_asks_first_then_deletes(world, client_for):
    template = make_template(world, "Doomed")
    client = client_for(world.member)
    delete_url = url("delete", world.team, template.pk)
    page = client.get(delete_url).content.decode()
    assert "Delete the template “Doomed”?" in page and 'method="post"' in page
    assert MilestoneTemplate.objects.filter(pk=template.pk).exists()
    response = client.post(delete_url)
    assert response.status_code == 302 and response["Location"] == url("list", world.team)
    assert not MilestoneTemplate.objects.filter(pk=template.pk).exists()
    assert Milestone.objects.filter(title="Source of Doomed").exists()


def test_viewers_cannot_rename_or_delete(world, client_for):
    template = make_template(world, "Kept")
    client = client_for(world.viewer)
    assert client.post(url("edit", world.team, template.pk), {"name": "X"}).status_code == 403
    assert client.post(url("delete", world.team, template.pk)).status_code == 403
    template.refresh_from_db()
    assert template.name == "Kept"


# --- Create a milestone from a template -----------------------------------------------------


def test_create_a_milestone_from_a_template_and_land_on_it(world, client_for):
    client = client_for(world.member)
    use_url = url("use", world.team, "quick-win")
    page = client.get(use_url + f"?plan={world.plan.key}").content.decode()
    assert selected_options(page, "plan") == str(world.plan.pk)
    assert 'value="Quick win"' in page
    response = client.post(
        use_url,
        {"plan": world.plan.pk, "title": "CLI export", "start_date": "2027-03-01",
         "owner": world.member.pk, "action": "create"},
    )  # fmt: skip
    milestone = Milestone.objects.get(title="CLI export")
    assert response.status_code == 302
    assert response["Location"] == reverse("milestone", args=[world.team.slug, milestone.key])
    assert (milestone.start_date, milestone.target_date) == (D(2027, 3, 1), D(2027, 3, 8))
    assert milestone.owner == world.member
    assert milestone.deliverables.count() == 2


def test_bad_input_is_explained_and_nothing_is_created(world, client_for):
    client = client_for(world.member)
    other_plan = make_plan(world.other_team, world.outsider)
    before = Milestone.objects.count()
    response = client.post(
        url("use", world.team, "quick-win"),
        {"plan": other_plan.pk, "title": "", "start_date": "2027-02-30", "action": "create"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Select a valid choice" in html
    assert "This field is required." in html
    assert "Enter a valid date." in html
    assert Milestone.objects.count() == before


def test_the_dates_preview_is_a_fragment_for_htmx(world, client_for):
    response = client_for(world.member).post(
        url("use", world.team, "core-feature"),
        {"plan": world.plan.pk, "title": "", "start_date": "2027-03-01", "action": "preview"},
        **HX,
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and 'id="dates"' in html
    assert 'datetime="2027-03-22"' in html
    assert not Milestone.objects.filter(title="Core feature").exists()


def test_without_a_plan_the_use_page_sends_you_to_the_plan_builder(world, client_for):
    team_without_plans = world.other_team
    response = client_for(world.outsider).get(url("use", team_without_plans, "foundation"))
    assert response.status_code == 302
    assert response["Location"] == url("build_plan", team_without_plans) + "?step_1=foundation"


def test_viewers_cannot_create_from_templates(world, client_for):
    client = client_for(world.viewer)
    response = client.post(
        url("use", world.team, "quick-win"),
        {"plan": world.plan.pk, "title": "X", "start_date": "2027-03-01", "action": "create"},
    )
    assert response.status_code == 403
    assert client.get(url("build_plan", world.team)).status_code == 403
    assert not Milestone.objects.filter(title="X").exists()


# --- Build a plan ---------------------------------------------------------------------------


def build_data(**overrides):
    data = {"plan": "", "plan_title": "Export service", "start_date": "2027-01-04"}
    for n, ref in enumerate(
        ["research-architecture", "foundation", "core-development", "polish-production",
         "maintenance"], 1,
    ):  # fmt: skip
        data[f"step_{n}"] = ref
    data.update(overrides)
    return data


def test_the_phases_preset_fills_in_the_five_phases(world, client_for):
    html = client_for(world.member).get(url("build_plan", world.team) + "?preset=phases")
    html = html.content.decode()
    steps = [selected_options(html, f"step_{n}") for n in range(1, 7)]
    assert steps == [
        "research-architecture", "foundation", "core-development", "polish-production",
        "maintenance", "",
    ]  # fmt: skip
    assert f'value="{today():%Y-%m-%d}"' in html


def test_building_for_an_existing_plan_starts_after_its_last_milestone(world, client_for):
    html = (
        client_for(world.member)
        .get(url("build_plan", world.team) + f"?plan={world.plan.key}&step_1=quick-win")
        .content.decode()
    )
    assert selected_options(html, "plan") == str(world.plan.pk)
    assert selected_options(html, "step_1") == "quick-win"
    day_after = world.milestone.target_date + datetime.timedelta(days=1)
    assert f'value="{day_after:%Y-%m-%d}"' in html


def test_preview_shows_the_dates_and_saves_nothing(world, client_for):
    client = client_for(world.member)
    plans_before = Plan.objects.count()
    page = client.post(url("build_plan", world.team), build_data(action="preview"))
    # The dates need only the templates and a start: no plan title yet is fine for a preview.
    fragment = client.post(
        url("build_plan", world.team), build_data(action="preview", plan_title=""), **HX
    )
    for response in (page, fragment):
        html = response.content.decode()
        assert response.status_code == 200
        assert 'datetime="2027-01-15"' in html and 'datetime="2027-04-01"' in html
        assert "5 milestones" in html
    assert "<html" not in fragment.content.decode()
    assert Plan.objects.count() == plans_before


def test_create_a_plan_of_five_phases_from_the_page(world, client_for):
    response = client_for(world.member).post(
        url("build_plan", world.team), build_data(action="create")
    )
    plan = Plan.objects.get(title="Export service")
    assert response.status_code == 302
    assert response["Location"] == reverse("plan", args=[world.team.slug, plan.key])
    milestones = list(plan.milestones.order_by("position"))
    assert [m.target_date for m in milestones] == [
        D(2027, 1, 14), D(2027, 1, 29), D(2027, 2, 20), D(2027, 3, 3), D(2027, 4, 1),
    ]  # fmt: skip
    assert Dependency.objects.filter(successor__plan=plan).count() == 4


def test_the_builder_explains_what_is_missing(world, client_for):
    data = build_data(plan_title="", action="create")
    for n in range(1, 6):
        data[f"step_{n}"] = ""
    response = client_for(world.member).post(url("build_plan", world.team), data)
    html = response.content.decode()
    assert "Pick at least one template." in html
    assert "Give the new plan a title, or pick an existing plan." in html
    assert not Plan.objects.filter(title="").exists()
    unknown = client_for(world.member).post(
        url("build_plan", world.team), build_data(step_1="not-a-template", action="create")
    )
    assert "Select a valid choice" in unknown.content.decode()


def test_the_builder_offers_the_teams_templates_but_not_other_teams(world, client_for):
    ours = make_template(world, "Ours")
    theirs = make_template(world, "Theirs", team=world.other_team)
    html = client_for(world.member).get(url("build_plan", world.team)).content.decode()
    assert f'value="{ours.pk}"' in html and "Theirs" not in html
    response = client_for(world.member).post(
        url("build_plan", world.team), build_data(step_1=str(theirs.pk), action="create")
    )
    assert "Select a valid choice" in response.content.decode()


# --- Entry points ---------------------------------------------------------------------------


def test_the_create_pages_link_to_templates(world, client_for):
    client = client_for(world.member)
    milestone_page = client.get(
        reverse("milestone_create", args=[world.team.slug]) + f"?plan={world.plan.key}"
    ).content.decode()
    assert f'href="{url("list", world.team)}?plan={world.plan.key}"' in milestone_page
    plan_page = client.get(reverse("plan_create", args=[world.team.slug])).content.decode()
    assert f'href="{url("build_plan", world.team)}"' in plan_page


# --- Query budgets --------------------------------------------------------------------------


def count_queries(client, method, path, data=None) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = getattr(client, method)(path, data) if data else getattr(client, method)(path)
    assert response.status_code == 200, response.status_code
    return len(queries)


def test_page_queries_do_not_grow_with_templates_or_their_contents(
    world, client_for, django_assert_max_num_queries
):
    client = client_for(world.member)
    small = make_template(world, "Small", deliverables=1, criteria=1)
    small_source = Milestone.objects.get(title="Source of Small")
    pages = {
        "list": (url("list", world.team), LIST_BUDGET),
        "detail": (url("detail", world.team, small.pk), DETAIL_BUDGET),
        "save": (url("save", world.team, small_source.key), SAVE_PAGE_BUDGET),
        "use": (url("use", world.team, small.pk), USE_PAGE_BUDGET),
        "build": (url("build_plan", world.team), BUILD_PAGE_BUDGET),
    }
    before = {name: count_queries(client, "get", path) for name, (path, _) in pages.items()}

    big = make_template(world, "Big", deliverables=25, criteria=8)
    for n in range(30):
        MilestoneTemplate.objects.create(
            team=world.team, name=f"Extra {n}", duration_days=7, content=big.content
        )
    big_source = Milestone.objects.get(title="Source of Big")
    pages["detail"] = (url("detail", world.team, big.pk), DETAIL_BUDGET)
    pages["save"] = (url("save", world.team, big_source.key), SAVE_PAGE_BUDGET)
    pages["use"] = (url("use", world.team, big.pk), USE_PAGE_BUDGET)
    for name, (path, budget) in pages.items():
        with django_assert_max_num_queries(budget):
            after = count_queries(client, "get", path)
        assert after == before[name], f"{name}: {before[name]} queries, then {after}"
    print(f"queries per page: {before}")

    preview = build_data(action="preview")
    with django_assert_max_num_queries(BUILD_PAGE_BUDGET):
        count_queries(client, "post", url("build_plan", world.team), preview)


def test_the_milestone_and_plan_pages_link_to_templates_for_writers_only(world, client_for):
    milestone_page = reverse("milestone", args=[world.team.slug, world.milestone.key])
    plan_page = reverse("plan", args=[world.team.slug, world.plan.key])
    save = url("save", world.team, world.milestone.key)
    build = url("build_plan", world.team) + f"?plan={world.plan.key}"

    member = client_for(world.member)
    assert save in member.get(milestone_page).content.decode()
    assert build in member.get(plan_page).content.decode()
    viewer = client_for(world.viewer)
    assert save not in viewer.get(milestone_page).content.decode()
    assert build not in viewer.get(plan_page).content.decode()
