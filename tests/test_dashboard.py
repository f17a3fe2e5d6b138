import datetime
import re
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from milestones.models import (
    Activity,
    Blocker,
    ForecastShift,
    Milestone,
    StatusUpdate,
    today,
)
from milestones.views import dashboard as dashboard_views
from tests.factories import (
    add_member,
    grow_team,
    make_blocker,
    make_milestone,
    make_plan,
    make_status_update,
    make_team,
    make_user,
)

# session, user, membership, the header's team list, owners for the filter, plans, plan
# progress, counts, the page of milestones, needs attention, due soon, awaiting my action,
# activity, what moved.
DASHBOARD_QUERY_BUDGET = 15
# The htmx fragment: session, user, membership, counts, the page of milestones.
DASHBOARD_FRAGMENT_QUERY_BUDGET = 5
HTMX_RESULTS = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "dashboard-results"}


def dashboard_url(team):
    return reverse("dashboard", kwargs={"team": team.slug})


def test_it_lists_the_teams_plans_and_milestones_with_progress(world, client_for):
    response = client_for(world.member).get(dashboard_url(world.team))
    assert response.status_code == 200
    page = response.content.decode()
    assert world.plan.title in page
    assert world.milestone.key in page
    assert world.milestone.title in page
    assert 'aria-valuenow="0"' in page


def test_an_outsider_gets_404_not_a_hint_that_the_team_exists(world, client_for):
    client = client_for(world.outsider)
    assert client.get(dashboard_url(world.team)).status_code == 404
    missing = client.get("/t/no-such-team/")
    assert missing.status_code == 404


def test_an_anonymous_visitor_is_sent_to_log_in(world, client):
    response = client.get(dashboard_url(world.team))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_a_viewer_sees_the_dashboard_read_only(world, client_for):
    response = client_for(world.viewer).get(dashboard_url(world.team))
    assert response.status_code == 200
    assert "Read-only" in response.content.decode()


def test_home_sends_a_member_to_their_team(world, client_for):
    response = client_for(world.member).get("/")
    assert response.status_code == 302
    assert response["Location"] == dashboard_url(world.team)


def test_home_explains_what_to_do_without_a_team(db, client_for):
    response = client_for(make_user("loner")).get("/")
    assert response.status_code == 200
    assert "not in a team yet" in response.content.decode()


def test_switching_team_remembers_the_choice(world, client_for):
    second = make_team("Second")
    add_member(second, world.member, Role.VIEWER)
    client = client_for(world.member)
    response = client.post(reverse("accounts:switch_team"), {"team": second.slug})
    assert response.status_code == 302
    assert response["Location"] == dashboard_url(second)
    assert client.get("/")["Location"] == dashboard_url(second)


def test_switching_to_a_team_you_are_not_in_is_404(world, client_for):
    response = client_for(world.member).post(
        reverse("accounts:switch_team"), {"team": world.other_team.slug}
    )
    assert response.status_code == 404


def test_switching_team_needs_the_csrf_token(world):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(world.member)
    response = client.post(reverse("accounts:switch_team"), {"team": world.team.slug})
    assert response.status_code == 403


def test_filtering_by_plan_shows_only_that_plans_milestones(world, client_for):
    other_plan = make_plan(world.team, world.admin, title="Mobile beta")
    other = make_milestone(other_plan, world.admin, title="Beta build with testers")
    response = client_for(world.member).get(dashboard_url(world.team), {"plan": other_plan.key})
    assert listed_keys(response) == [other.key]
    assert f'<option value="{other_plan.key}" selected>' in response.content.decode()


def count_dashboard_queries(client, team) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(dashboard_url(team))
    assert response.status_code == 200
    return len(queries)


def fill_every_section(team, user):
    """Give every milestone what each dashboard section lists, so no section is empty."""
    on = today()
    milestones = list(Milestone.objects.filter(team=team))
    Milestone.objects.filter(team=team, status="in_progress").update(health="at_risk")
    Milestone.objects.filter(team=team, status="planned").update(
        target_date=on + datetime.timedelta(days=7)
    )
    Blocker.objects.filter(milestone__team=team).update(
        target_resolution_date=on - datetime.timedelta(days=2)
    )
    StatusUpdate.objects.filter(milestone__team=team).update(
        created_at=timezone.now() - datetime.timedelta(days=30)
    )
    Activity.objects.bulk_create(
        Activity(
            team=team,
            plan_id=m.plan_id,
            milestone=m,
            actor=user,
            verb="updated",
            object_type="milestone",
            object_id=m.pk,
            object_repr=str(m),
        )
        for m in milestones
    )
    ForecastShift.objects.bulk_create(
        ForecastShift(
            milestone=m,
            previous_finish=on,
            new_finish=on + datetime.timedelta(days=3),
            cause="test",
        )
        for m in milestones
    )


def test_the_dashboard_query_count_does_not_grow_with_the_data(
    world, client_for, django_assert_max_num_queries
):
    client = client_for(world.member)
    grow_team(world.team, world.member, plans=3, milestones_per_plan=5)
    fill_every_section(world.team, world.member)
    demo_size = count_dashboard_queries(client, world.team)
    page = client.get(dashboard_url(world.team)).content.decode()
    for heading in ("attention-heading", "due-heading", "mine-heading", "activity-heading"):
        assert "<li>" in section(page, heading), heading
    assert "What moved this week" in page

    grow_team(world.team, world.member, plans=57, milestones_per_plan=5)  # 20×: 300 in all
    fill_every_section(world.team, world.member)
    assert Milestone.objects.filter(team=world.team).count() == 301
    twenty_times = count_dashboard_queries(client, world.team)
    assert demo_size == twenty_times <= DASHBOARD_QUERY_BUDGET
    with django_assert_max_num_queries(DASHBOARD_QUERY_BUDGET):
        client.get(dashboard_url(world.team), {"page": 2, "sort": "-priority", "q": "bulk"})
    with django_assert_max_num_queries(DASHBOARD_FRAGMENT_QUERY_BUDGET):
        response = client.get(dashboard_url(world.team), {"page": 3}, **HTMX_RESULTS)
    assert response.status_code == 200


def test_it_shows_health_with_its_reasons(world, client_for):
    from milestones import health
    from milestones.models import today

    overdue = make_milestone(
        world.plan,
        world.admin,
        title="Late one",
        start_date=today() - datetime.timedelta(days=30),
        target_date=today() - datetime.timedelta(days=3),
        status="in_progress",
    )
    health.evaluate_team(world.team.pk)
    page = client_for(world.member).get(dashboard_url(world.team)).content.decode()
    # Icon and text, never colour alone; the icon is hidden from screen readers.
    assert re.search(
        r'class="health health-off_track"><span class="health-icon" aria-hidden="true">✕</span>'
        r"\s*Off track",
        page,
    )
    overdue.refresh_from_db()
    assert overdue.health == "off_track"
    for reason in overdue.health_reasons:
        assert reason["message"] in page
    assert "passed 3 days ago" in page


def test_it_shows_what_moved_this_week_and_why(world, client_for):
    from milestones import health, services
    from milestones.models import today

    first = world.milestone
    services.update_object(first, actor=world.admin, status="in_progress")
    second = make_milestone(
        world.plan,
        world.admin,
        title="Exports in the web app",
        start_date=first.target_date,
        target_date=first.target_date + datetime.timedelta(days=10),
    )
    services.add_dependency(first, second, actor=world.admin, lag_days=2)
    health.evaluate_team(world.team.pk)
    second.refresh_from_db()
    before = second.forecast_finish
    services.update_object(
        first, actor=world.admin, target_date=first.target_date + datetime.timedelta(days=5)
    )
    health.evaluate_team(world.team.pk)
    second.refresh_from_db()
    assert second.forecast_finish == before + datetime.timedelta(days=5)
    assert today() < second.forecast_finish

    page = client_for(world.member).get(dashboard_url(world.team)).content.decode()
    assert "What moved this week" in page
    assert "5 days later" in page
    assert f"{first.key} is forecast to finish later" in page


# --- Helpers for reading the page -----------------------------------------------------------


def results_of(response) -> str:
    """The results fragment (counts, table, pagination): the last part of the page."""
    page = response.content.decode()
    assert 'id="dashboard-results"' in page
    return page.split('id="dashboard-results"', 1)[1]


def listed_keys(response) -> list[str]:
    """Keys of the milestone table's rows, in order."""
    return re.findall(r'<td class="key">([^<]+)</td>', results_of(response))


def section(page: str, heading_id: str) -> str:
    start = page.index(f'id="{heading_id}"')
    return page[start : page.index("</section>", start)]


def count_card(response, label: str) -> int:
    found = re.search(
        rf'card-number">(\d+)</span><span class="card-label">{label}<', results_of(response)
    )
    return int(found.group(1))


def days(n: int) -> datetime.date:
    return today() + datetime.timedelta(days=n)


@pytest.fixture
def catalogue(world):
    """Milestones that differ in every filterable way, in a second plan owned by the member."""
    plan = make_plan(world.team, world.admin, title="Mobile beta")
    m = {
        "alpha": make_milestone(
            plan,
            world.admin,
            title="Alpha Build",
            owner=world.member,
            priority="critical",
            status="in_progress",
            target_date=days(5),
        ),
        "beta": make_milestone(
            plan,
            world.admin,
            title="beta testers onboarded",
            owner=world.admin,
            priority="recommended",
            status="planned",
            target_date=days(30),
        ),
        "gamma": make_milestone(
            plan,
            world.admin,
            title="Gamma release",
            priority="required",
            status="completed",
            target_date=days(2),
        ),
    }
    Milestone.objects.filter(pk=m["alpha"].pk).update(health="at_risk")
    Milestone.objects.filter(pk=m["beta"].pk).update(health="off_track")
    m["plan"] = plan
    return m


# --- Filters, search, sort, pagination ------------------------------------------------------


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"status": "in_progress"}, ["alpha"]),
        ({"status": "completed"}, ["gamma"]),
        ({"health": "off_track"}, ["beta"]),
        ({"health": "at_risk"}, ["alpha"]),
        ({"priority": "critical"}, ["alpha"]),
        ({"priority": "recommended"}, ["beta"]),
        ({"owner": "{member}"}, ["alpha"]),
        ({"owner": "{admin}"}, ["beta"]),
        ({"owner": "none"}, ["world", "gamma"]),
        ({"plan": "{plan}"}, ["alpha", "beta", "gamma"]),
        ({"status": ["planned", "in_progress"], "plan": "{plan}"}, ["alpha", "beta"]),
    ],
)
def test_each_filter_narrows_the_table(world, catalogue, client_for, params, expected):
    ids = {"member": world.member.pk, "admin": world.admin.pk, "plan": catalogue["plan"].key}
    params = {
        name: [v.format(**ids) for v in value] if isinstance(value, list) else value.format(**ids)
        for name, value in params.items()
    }
    response = client_for(world.member).get(dashboard_url(world.team), params)
    by_name = {**catalogue, "world": world.milestone}
    assert listed_keys(response) == [by_name[name].key for name in expected]


def test_filters_combine_and_the_counts_follow_them(world, catalogue, client_for):
    client = client_for(world.member)
    everything = client.get(dashboard_url(world.team))
    assert count_card(everything, "Milestones") == 4
    assert count_card(everything, "Planned") == 2

    response = client.get(
        dashboard_url(world.team),
        {"plan": catalogue["plan"].key, "status": "planned", "health": "off_track"},
    )
    assert listed_keys(response) == [catalogue["beta"].key]
    assert count_card(response, "Milestones") == 1
    assert count_card(response, "Planned") == 1
    assert count_card(response, "In progress") == 0
    assert count_card(response, "Off track") == 1
    assert "1 milestone matches the filters" in results_of(response)

    nothing = client.get(dashboard_url(world.team), {"status": "completed", "priority": "critical"})
    results = results_of(nothing)
    assert listed_keys(nothing) == []
    assert "No milestones match these filters." in results
    assert f'<a href="{dashboard_url(world.team)}">Clear filters</a>' in results


def test_search_finds_keys_and_titles_whatever_the_case(world, catalogue, client_for):
    client = client_for(world.member)
    url = dashboard_url(world.team)
    assert listed_keys(client.get(url, {"q": "BETA TESTERS"})) == [catalogue["beta"].key]
    assert listed_keys(client.get(url, {"q": "alpha build"})) == [catalogue["alpha"].key]
    key = catalogue["gamma"].key
    assert listed_keys(client.get(url, {"q": key.lower()})) == [key]
    assert listed_keys(client.get(url, {"q": "  gamma  "})) == [key]
    assert listed_keys(client.get(url, {"q": "no such words"})) == []


@pytest.mark.parametrize(
    "sort, expected",
    [
        ("", ["alpha", "world", "beta", "gamma"]),  # open first, soonest target first
        ("target", ["gamma", "alpha", "world", "beta"]),
        ("-target", ["beta", "world", "alpha", "gamma"]),
        ("title", ["alpha", "beta", "world", "gamma"]),  # case-insensitive
        ("-title", ["gamma", "world", "beta", "alpha"]),
        ("status", ["world", "beta", "alpha", "gamma"]),  # planned → completed, then key
        ("-status", ["gamma", "alpha", "beta", "world"]),
        ("health", ["world", "gamma", "alpha", "beta"]),  # on track → off track
        ("-health", ["beta", "alpha", "gamma", "world"]),
        ("priority", ["alpha", "world", "gamma", "beta"]),  # critical → recommended
        ("-priority", ["beta", "gamma", "world", "alpha"]),
        ("key", ["world", "alpha", "beta", "gamma"]),
        ("-key", ["gamma", "beta", "alpha", "world"]),
    ],
)
def test_the_table_sorts_by_each_column_both_ways(world, catalogue, client_for, sort, expected):
    response = client_for(world.member).get(dashboard_url(world.team), {"sort": sort})
    by_name = {**catalogue, "world": world.milestone}
    assert listed_keys(response) == [by_name[name].key for name in expected]


def test_sort_headers_say_how_the_table_is_sorted_and_keep_the_filters(world, client_for):
    url = dashboard_url(world.team)
    response = client_for(world.member).get(url, {"sort": "-target", "status": "planned"})
    results = results_of(response)
    assert results.count("aria-sort=") == 1
    target_header = re.search(r'<th scope="col" aria-sort="descending">(.*?)</th>', results)
    assert f'href="{url}?status=planned&amp;sort=target"' in target_header.group(1)
    assert f'href="{url}?status=planned&amp;sort=title"' in results
    assert "sorted by target date, descending" in results
    # The sort travels with the filter form even though the form is outside the fragment.
    assert '<input type="hidden" name="sort" value="-target" form="dashboard-filters">' in results

    ascending = results_of(client_for(world.member).get(url, {"sort": "key"}))
    assert re.search(r'aria-sort="ascending"><a class="sort-link" href="[^"]*sort=-key"', ascending)


def test_pages_keep_the_filters_and_the_sort(world, client_for, monkeypatch):
    monkeypatch.setattr(dashboard_views, "DASHBOARD_PAGE_SIZE", 2)
    for n in range(5):
        make_milestone(world.plan, world.admin, title=f"Paged {n}", priority="critical")
    client = client_for(world.member)
    url = dashboard_url(world.team)
    first = client.get(url, {"priority": "critical", "sort": "title"})
    assert listed_keys(first) == [
        m.key for m in Milestone.objects.filter(title__in=["Paged 0", "Paged 1"]).order_by("title")
    ]
    next_link = f"{url}?priority=critical&amp;sort=title&amp;page=2"
    assert f'href="{next_link}"' in results_of(first)

    third = client.get(url, {"priority": "critical", "sort": "title", "page": "3"})
    assert listed_keys(third) == [Milestone.objects.get(title="Paged 4").key]
    assert f'href="{url}?priority=critical&amp;sort=title&amp;page=2" ' in results_of(third)
    assert "Page 3 of 3" in results_of(third)
    # A page number out of range or not a number shows a page rather than failing.
    assert client.get(url, {"page": "99"}).status_code == 200
    assert client.get(url, {"page": "abc"}).status_code == 200


def test_a_filtered_view_survives_the_round_trip_through_its_url(world, catalogue, client_for):
    """The address htmx pushes is canonical: loading it shows the same view, form filled in."""
    client = client_for(world.member)
    url = dashboard_url(world.team)
    params = {
        "q": "a",
        "plan": catalogue["plan"].key.lower(),
        "owner": str(world.member.pk),
        "status": "in_progress",
        "health": "at_risk",
        "priority": "critical",
        "sort": "-title",
        "page": "",
    }
    fragment = client.get(url, params, **HTMX_RESULTS)
    pushed = fragment["HX-Push-Url"]
    assert urlsplit(pushed).path == url
    assert parse_qsl(urlsplit(pushed).query) == [
        ("plan", catalogue["plan"].key),
        ("owner", str(world.member.pk)),
        ("status", "in_progress"),
        ("health", "at_risk"),
        ("priority", "critical"),
        ("q", "a"),
        ("sort", "-title"),
    ]
    bookmarked = client.get(pushed)
    assert listed_keys(bookmarked) == listed_keys(fragment) == [catalogue["alpha"].key]
    page = bookmarked.content.decode()
    assert 'name="q" value="a"' in page
    assert f'<option value="{catalogue["plan"].key}" selected>' in page
    assert f'<option value="{world.member.pk}" selected>' in page
    for selected in ("in_progress", "at_risk", "critical"):
        assert f'<option value="{selected}" selected>' in page


def test_values_it_does_not_understand_are_ignored_with_a_note(world, client_for):
    response = client_for(world.member).get(
        dashboard_url(world.team),
        {
            "status": ["bogus", "planned"],
            "owner": "abc",
            "health": "<b>bad</b>",
            "priority": "urgent",
            "plan": "not a key!",
            "sort": "nonsense",
            "page": "-1",
            "q": "EXPORT\x00",  # PostgreSQL would refuse the NUL
        },
    )
    assert response.status_code == 200
    results = results_of(response)
    assert listed_keys(response) == [world.milestone.key]  # status=planned still applies
    assert "Unknown status “bogus”." in results
    assert "“abc” is not an owner." in results
    assert "Unknown health “&lt;b&gt;bad&lt;/b&gt;”." in results
    assert "Unknown priority “urgent”." in results
    assert "“not a key!” is not a plan key." in results
    assert "aria-sort=" not in results
    long = client_for(world.member).get(dashboard_url(world.team), {"priority": "x" * 500})
    assert f"Unknown priority “{'x' * 40}…”." in results_of(long)


def test_htmx_gets_only_the_results_fragment(world, catalogue, client_for):
    response = client_for(world.member).get(
        dashboard_url(world.team), {"status": "planned"}, **HTMX_RESULTS
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="dashboard-results"')
    assert body.rstrip().endswith("</div>")
    for outside in ("<html", "<h1", "Needs attention", "Recent activity", 'id="dashboard-filters"'):
        assert outside not in body
    assert listed_keys(response) == [world.milestone.key, catalogue["beta"].key]
    assert "HX-Request" in response["Vary"]
    # The same view still serves the whole page when htmx restores history or targets elsewhere.
    whole = client_for(world.member).get(
        dashboard_url(world.team), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="main"
    )
    assert "<h1>" in whole.content.decode()
    assert whole.context["nav"] == "dashboard"


def test_the_filter_form_works_without_javascript_and_drives_htmx(world, client_for):
    page = client_for(world.member).get(dashboard_url(world.team)).content.decode()
    form = page[
        page.index('<form id="dashboard-filters"') : page.index(
            "</form>", page.index('<form id="dashboard-filters"')
        )
    ]
    assert 'method="get"' in form
    assert f'action="{dashboard_url(world.team)}"' in form
    assert 'hx-target="#dashboard-results"' in form
    assert 'hx-push-url="true"' in form
    assert 'hx-trigger="submit, change, keyup changed delay:300ms from:input[type=search]"' in form
    assert '<button type="submit"' in form
    for name in ("q", "plan", "owner", "status", "health", "priority"):
        assert f'name="{name}"' in form


# --- The overview sections ------------------------------------------------------------------


def test_needs_attention_lists_off_track_at_risk_overdue_and_late_blockers(world, client_for):
    plan = world.plan
    off = make_milestone(plan, world.admin, title="Off one")
    risky = make_milestone(plan, world.admin, title="Risky one")
    Milestone.objects.filter(pk=off.pk).update(health="off_track")
    Milestone.objects.filter(pk=risky.pk).update(health="at_risk")
    late = make_milestone(
        plan, world.admin, title="Late one", start_date=days(-20), target_date=days(-1)
    )
    blocked = make_milestone(plan, world.admin, title="Blocked one")
    make_blocker(blocked, world.admin, title="Vendor API", target_resolution_date=days(-3))
    fine = make_milestone(plan, world.admin, title="Fine one")
    make_blocker(fine, world.admin, title="Future blocker", target_resolution_date=days(3))
    resolved = make_blocker(fine, world.admin, title="Old blocker", target_resolution_date=days(-3))
    Blocker.objects.filter(pk=resolved.pk).update(resolved_on=today())
    done = make_milestone(plan, world.admin, title="Done late", status="completed")
    Milestone.objects.filter(pk=done.pk).update(target_date=days(-5))
    elsewhere = make_milestone(make_plan(world.other_team), world.outsider, title="Not ours")
    Milestone.objects.filter(pk=elsewhere.pk).update(health="off_track")

    page = client_for(world.member).get(dashboard_url(world.team)).content.decode()
    attention = section(page, "attention-heading")
    listed = re.findall(r'/m/([^/]+)/"><span class="key">', attention)
    assert listed[:2] == [off.key, risky.key]  # worst health first
    assert sorted(listed) == sorted([off.key, risky.key, late.key, blocked.key])
    assert "overdue since" in attention
    assert "1 blocker past its date" in attention
    for absent in (fine, done, world.milestone, elsewhere):
        assert absent.title not in attention
    link = reverse("milestone", kwargs={"team": world.team.slug, "key": off.key})
    assert f'href="{link}"' in attention


def test_needs_attention_says_how_many_more_there_are(world, client_for):
    for n in range(dashboard_views.SHORT_LIST_LIMIT + 3):
        m = make_milestone(world.plan, world.admin, title=f"Risky {n}")
        Milestone.objects.filter(pk=m.pk).update(health="at_risk")
    page = client_for(world.member).get(dashboard_url(world.team)).content.decode()
    attention = section(page, "attention-heading")
    assert attention.count("<li>") == dashboard_views.SHORT_LIST_LIMIT
    assert "and 3 more" in attention


def test_due_soon_lists_open_milestones_due_in_the_next_14_days(world, client_for):
    plan = world.plan
    tomorrow = make_milestone(plan, world.admin, title="Due tomorrow", target_date=days(1))
    edge = make_milestone(plan, world.admin, title="Due at the edge", target_date=days(14))
    make_milestone(plan, world.admin, title="Due later", target_date=days(15))
    make_milestone(plan, world.admin, title="Due done", target_date=days(2), status="completed")
    make_milestone(
        plan, world.admin, title="Already late", start_date=days(-9), target_date=days(-1)
    )
    other = make_milestone(
        make_plan(world.other_team), world.outsider, title="Theirs", target_date=days(1)
    )

    page = client_for(world.member).get(dashboard_url(world.team)).content.decode()
    due = section(page, "due-heading")
    assert "Due in the next 14 days" in due
    assert re.findall(r'/m/([^/]+)/"><span class="key">', due) == [tomorrow.key, edge.key]
    assert other.title not in due


def test_awaiting_my_action_lists_the_status_updates_i_owe(world, client_for):
    # The team's cadence (7 days), not the looser health rule (10 days), counted like the
    # reminders count it (milestones.updates_owed): from the latest update, or the start.
    stale_days = world.team.status_update_cadence_days
    assert stale_days < world.team.health_stale_update_days
    plan = world.plan

    def mine(title, **fields):
        return make_milestone(plan, world.admin, title=title, owner=world.member, **fields)

    start = today() - datetime.timedelta(days=stale_days + 2)
    never = mine("Never updated", status="in_progress", start_date=start)
    mine("Just started", status="in_progress", start_date=today())
    stale = mine("Stale update", status="in_progress", start_date=start)
    fresh = mine("Fresh enough", status="in_progress", start_date=start)
    mine("Not started", status="planned", start_date=start)
    theirs = make_milestone(
        plan, world.admin, title="Someone else's", owner=world.admin, status="in_progress"
    )
    now = timezone.now()
    for milestone, age in ((stale, stale_days + 1), (fresh, stale_days - 1), (theirs, 0)):
        update = make_status_update(milestone, world.member)
        StatusUpdate.objects.filter(pk=update.pk).update(
            created_at=now - datetime.timedelta(days=age)
        )

    page = client_for(world.member).get(dashboard_url(world.team)).content.decode()
    awaiting = section(page, "mine-heading")
    # Longest overdue first.
    assert re.findall(r'/m/([^/]+)/#updates"><span class="key">', awaiting) == [
        never.key,
        stale.key,
    ]
    assert "no status update yet" in awaiting
    assert "last update 1\xa0week, 1\xa0day ago" in awaiting
    admin_page = client_for(world.admin).get(dashboard_url(world.team)).content.decode()
    assert "Nothing awaits you" in section(admin_page, "mine-heading")


def test_recent_activity_links_to_what_changed(world, client_for):
    page = client_for(world.member).get(dashboard_url(world.team)).content.decode()
    activity = section(page, "activity-heading")
    milestone_link = reverse(
        "milestone", kwargs={"team": world.team.slug, "key": world.milestone.key}
    )
    plan_link = reverse("plan", kwargs={"team": world.team.slug, "key": world.plan.key})
    assert f'href="{milestone_link}"' in activity
    assert f'href="{plan_link}"' in activity
    assert "ada created milestone “" in activity


def test_plans_show_their_progress_as_the_average_of_their_milestones(world, client_for):
    plan = make_plan(world.team, world.admin, title="Half way")
    make_milestone(plan, world.admin, status="completed")
    make_milestone(plan, world.admin)  # nothing to check: 0%
    make_milestone(plan, world.admin, status="cancelled")  # left out
    empty = make_plan(world.team, world.admin, title="Empty plan")
    page = client_for(world.member).get(dashboard_url(world.team)).content.decode()
    plans = section(page, "plans-heading")
    assert f'aria-valuenow="50" aria-label="Progress of {plan.key}"' in plans
    assert "1 of 2 milestones completed" in plans
    assert f'aria-valuenow="0" aria-label="Progress of {empty.key}"' in plans
    assert "no milestones yet" in plans
    link = reverse("plan", kwargs={"team": world.team.slug, "key": plan.key})
    assert f'<a href="{link}"><span class="key">{plan.key}</span> {plan.title}</a>' in plans


# --- Empty states, roles, isolation, escaping -----------------------------------------------


def test_a_new_team_is_told_to_create_a_plan_first(db, client_for):
    team = make_team("Fresh")
    member = add_member(team, make_user("newbie"), Role.MEMBER)
    viewer = add_member(team, make_user("watcher"), Role.VIEWER)
    create = reverse("plan_create", kwargs={"team": team.slug})

    page = client_for(member).get(dashboard_url(team)).content.decode()
    assert "has no plans yet" in page
    assert f'href="{create}">Create the first plan' in page

    page = client_for(viewer).get(dashboard_url(team)).content.decode()
    assert "has no plans yet" in page
    assert create not in page


def test_a_viewer_sees_no_links_to_create_anything(world, client_for):
    world.plan.status = "archived"
    world.plan.save()  # no open plans: the empty state is where a create link would appear
    page = client_for(world.viewer).get(dashboard_url(world.team)).content.decode()
    assert "No open plans." in page
    assert "/new/" not in page
    member_page = client_for(world.member).get(dashboard_url(world.team)).content.decode()
    assert reverse("plan_create", kwargs={"team": world.team.slug}) in member_page


def test_an_outsider_cannot_get_the_fragment_either(world, client_for):
    response = client_for(world.outsider).get(dashboard_url(world.team), **HTMX_RESULTS)
    assert response.status_code == 404


def test_nothing_of_another_team_shows_up(world, client_for):
    theirs = make_plan(world.other_team, world.outsider, title="Their secret plan")
    milestone = make_milestone(
        theirs,
        world.outsider,
        title="Their secret milestone",
        owner=world.outsider,
        status="in_progress",
        target_date=days(1),
    )
    Milestone.objects.filter(pk=milestone.pk).update(health="off_track")
    client = client_for(world.member)
    for params in ({}, {"owner": str(world.outsider.pk)}, {"plan": theirs.key}, {"q": "secret"}):
        page = client.get(dashboard_url(world.team), params).content.decode()
        assert "secret" not in page.replace('value="secret"', "")
    # Plan keys are per team: the same key names this team's own plan, if any.
    ours = Milestone.objects.filter(team=world.team, plan__key=theirs.key)
    assert listed_keys(client.get(dashboard_url(world.team), {"plan": theirs.key})) == [
        m.key for m in ours
    ]


def test_titles_are_escaped_everywhere(world, client_for):
    evil = "<script>alert('x')</script>"
    make_milestone(world.plan, world.admin, title=evil, target_date=days(1))
    page = client_for(world.member).get(dashboard_url(world.team)).content.decode()
    assert "<script>alert" not in page
    escaped = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"
    assert escaped in results_of_page(page)
    assert escaped in section(page, "due-heading")
    assert escaped in section(page, "activity-heading")
    fragment = client_for(world.member).get(dashboard_url(world.team), {"q": evil}, **HTMX_RESULTS)
    assert "<script>alert" not in fragment.content.decode()


def results_of_page(page: str) -> str:
    return page.split('id="dashboard-results"', 1)[1]
