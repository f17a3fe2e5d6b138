import datetime

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Role
from tests.factories import add_member, grow_team, make_milestone, make_team, make_user

DASHBOARD_QUERY_BUDGET = 10


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
    from tests.factories import make_plan

    other_plan = make_plan(world.team, world.admin, title="Mobile beta")
    other = make_milestone(other_plan, world.admin, title="Beta build with testers")
    response = client_for(world.member).get(dashboard_url(world.team), {"plan": other_plan.key})
    page = response.content.decode()
    assert other.title in page
    assert world.milestone.title not in page


def count_dashboard_queries(client, team) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(dashboard_url(team))
    assert response.status_code == 200
    return len(queries)


def test_the_dashboard_query_count_does_not_grow_with_the_data(
    world, client_for, django_assert_max_num_queries
):
    client = client_for(world.member)
    grow_team(world.team, world.member, plans=3, milestones_per_plan=5)
    demo_size = count_dashboard_queries(client, world.team)
    grow_team(world.team, world.member, plans=27, milestones_per_plan=5)
    ten_times = count_dashboard_queries(client, world.team)
    assert demo_size == ten_times
    with django_assert_max_num_queries(DASHBOARD_QUERY_BUDGET):
        client.get(dashboard_url(world.team), {"page": 2})


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
    assert 'class="health health-off_track">Off track' in page
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
