"""iCalendar feeds: the .ics documents, their secret addresses and the Calendar feeds page."""

import datetime
import hashlib
import re

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from icalendar import Calendar

from accounts.models import Membership
from feeds.models import FeedKind, FeedToken
from milestones import services, signoffs
from milestones.models import (
    ForecastShift,
    Milestone,
    MilestoneStatus,
    SignoffOutcome,
    SignoffRole,
    today,
)
from tests.factories import add_member, grow_team, make_milestone, make_plan, make_user

PAGE = reverse("feeds:index")
# Session, user, the user's feeds, memberships and plans for the form, team switcher.
PAGE_QUERY_BUDGET = 6
# The feed with its membership check, its last-used time, the milestones; for a user's own
# feed also the sign-offs they hold.
FEED_QUERY_BUDGET = {FeedKind.TEAM: 3, FeedKind.PLAN: 3, FeedKind.USER: 4}


@pytest.fixture(autouse=True)
def private_cache(settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "f"}
    }
    cache.clear()
    settings.SITE_URL = "https://milepost.example"


def make_feed(user, kind=FeedKind.TEAM, team=None, plan=None) -> tuple[FeedToken, str]:
    feed, raw = FeedToken.create_for(user, kind=kind, team=team, plan=plan)
    return feed, FeedToken.path_for(raw)


def fetch(url) -> Calendar:
    response = Client().get(url)
    assert response.status_code == 200, response.content
    return Calendar.from_ical(response.content)


def events_by_uid(calendar: Calendar) -> dict:
    return {str(event.uid): event for event in calendar.events}


def move_forecast(milestone: Milestone, finish: datetime.date) -> None:
    """What the health engine does when a forecast moves (see milestones/health.py)."""
    previous = Milestone.objects.values_list("forecast_finish", flat=True).get(pk=milestone.pk)
    Milestone.objects.filter(pk=milestone.pk).update(
        forecast_finish=finish, health_evaluated_at=timezone.now()
    )
    if previous is not None:
        ForecastShift.objects.create(
            milestone=milestone, previous_finish=previous, new_finish=finish
        )


# --- The document --------------------------------------------------------------------------


def test_a_team_feed_is_an_icalendar_document_with_target_dates(world):
    _, url = make_feed(world.member, team=world.team)
    response = Client().get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="milepost-rocket.ics"'
    calendar = Calendar.from_ical(response.content)
    assert calendar["VERSION"] == "2.0"
    assert "X-PUBLISHED-TTL:PT1H" in response.content.decode()
    assert "Rocket" in str(calendar["X-WR-CALNAME"])
    event = events_by_uid(calendar)[f"milestone-{world.milestone.pk}-target@milepost.example"]
    assert event.start == world.milestone.target_date
    assert event.end == world.milestone.target_date + datetime.timedelta(days=1)
    assert str(event["SUMMARY"]) == f"{world.milestone.key} Export queue ready — target"
    assert str(event["URL"]) == f"https://milepost.example/t/rocket/m/{world.milestone.key}/"
    assert "Launch the export service" in str(event["DESCRIPTION"])
    assert event["STATUS"] == "CONFIRMED"
    assert event["TRANSP"] == "TRANSPARENT"
    assert event.stamp is not None and event.last_modified is not None


def test_a_forecast_that_differs_from_the_target_is_a_second_event_and_is_named(world):
    target = world.milestone.target_date
    move_forecast(world.milestone, target + datetime.timedelta(days=5))
    _, url = make_feed(world.member, team=world.team)
    events = events_by_uid(fetch(url))
    pk, key = world.milestone.pk, world.milestone.key
    forecast = events[f"milestone-{pk}-forecast@milepost.example"]
    assert forecast.start == target + datetime.timedelta(days=5)
    assert str(forecast["SUMMARY"]).startswith(f"{key} Export queue ready — forecast finish")
    assert "5 days late" in str(forecast["SUMMARY"])
    target_event = events[f"milestone-{pk}-target@milepost.example"]
    assert "forecast" in str(target_event["SUMMARY"]) and "5 days late" in str(
        target_event["SUMMARY"]
    )
    assert "Forecast finish:" in str(target_event["DESCRIPTION"])


def test_a_forecast_on_the_target_date_adds_no_event(world):
    move_forecast(world.milestone, world.milestone.target_date)
    _, url = make_feed(world.member, team=world.team)
    assert len(fetch(url).events) == 1


def test_completed_and_cancelled_milestones_say_so(world):
    done = make_milestone(world.plan, world.admin, title="Done one")
    dropped = make_milestone(world.plan, world.admin, title="Dropped one")
    services.update_object(done, actor=world.admin, status=MilestoneStatus.COMPLETED)
    services.update_object(dropped, actor=world.admin, status=MilestoneStatus.CANCELLED)
    move_forecast(dropped, dropped.target_date + datetime.timedelta(days=3))
    _, url = make_feed(world.member, plan=world.plan, kind=FeedKind.PLAN)
    events = events_by_uid(fetch(url))
    done_event = events[f"milestone-{done.pk}-target@milepost.example"]
    assert str(done_event["SUMMARY"]) == f"✓ {done.key} Done one — completed"
    assert "Completed on" in str(done_event["DESCRIPTION"])
    dropped_event = events[f"milestone-{dropped.pk}-target@milepost.example"]
    assert dropped_event["STATUS"] == "CANCELLED"
    assert "cancelled" in str(dropped_event["SUMMARY"])
    assert f"milestone-{dropped.pk}-forecast@milepost.example" not in events


def test_milestones_without_a_target_date_are_left_out(world):
    make_milestone(world.plan, world.admin, title="Someday", start_date=None, target_date=None)
    _, url = make_feed(world.member, team=world.team)
    assert [str(e["SUMMARY"]) for e in fetch(url).events] == [
        f"{world.milestone.key} Export queue ready — target"
    ]


def test_moving_a_target_date_updates_the_event_in_place(world):
    _, url = make_feed(world.member, team=world.team)
    uid = f"milestone-{world.milestone.pk}-target@milepost.example"
    before = events_by_uid(fetch(url))
    again = events_by_uid(fetch(url))
    assert before.keys() == again.keys()
    assert again[uid].sequence == before[uid].sequence
    assert again[uid].to_ical() == before[uid].to_ical()

    new_target = world.milestone.target_date + datetime.timedelta(days=7)
    services.update_object(world.milestone, actor=world.admin, target_date=new_target)
    after = events_by_uid(fetch(url))
    assert after.keys() == before.keys()  # same UID: an update, not a new event
    assert after[uid].start == new_target
    assert after[uid].sequence > before[uid].sequence
    assert after[uid].last_modified >= before[uid].last_modified


def test_a_forecast_move_updates_the_forecast_event_in_place(world):
    target = world.milestone.target_date
    move_forecast(world.milestone, target + datetime.timedelta(days=2))
    _, url = make_feed(world.member, team=world.team)
    uid = f"milestone-{world.milestone.pk}-forecast@milepost.example"
    before = events_by_uid(fetch(url))[uid]
    move_forecast(world.milestone, target + datetime.timedelta(days=9))
    after = events_by_uid(fetch(url))[uid]
    assert after.start == target + datetime.timedelta(days=9)
    assert after.sequence > before.sequence


def test_uids_do_not_depend_on_the_feed_or_its_secret(world):
    team_feed, team_url = make_feed(world.member, team=world.team)
    _, plan_url = make_feed(world.member, kind=FeedKind.PLAN, plan=world.plan)
    uids = set(events_by_uid(fetch(team_url)))
    assert uids == set(events_by_uid(fetch(plan_url)))
    new_url = FeedToken.path_for(team_feed.regenerate())
    assert set(events_by_uid(fetch(new_url))) == uids


# --- What each feed holds, and who may read it ---------------------------------------------


def test_my_feed_holds_the_milestones_i_own_in_every_team(world):
    mine = make_milestone(world.plan, world.admin, title="Mine", owner=world.member)
    make_milestone(world.plan, world.admin, title="Not mine", owner=world.admin)
    side = add_member(world.other_team, world.member)
    other_plan = make_plan(world.other_team, world.outsider)
    elsewhere = make_milestone(other_plan, world.outsider, title="Mine elsewhere", owner=side)
    _, url = make_feed(world.member, kind=FeedKind.USER)
    response = Client().get(url)
    assert response["Content-Disposition"] == 'attachment; filename="milepost-max.ics"'
    summaries = sorted(str(e["SUMMARY"]) for e in Calendar.from_ical(response.content).events)
    assert summaries == sorted(
        [f"{mine.key} Mine — target", f"{elsewhere.key} Mine elsewhere — target"]
    )

    Membership.objects.filter(user=world.member, team=world.other_team).delete()
    summaries = [str(e["SUMMARY"]) for e in fetch(url).events]
    assert summaries == [f"{mine.key} Mine — target"]


def test_a_plan_feed_holds_only_that_plan(world):
    other = make_plan(world.team, world.admin, title="Other plan")
    make_milestone(other, world.admin, title="Elsewhere")
    _, url = make_feed(world.viewer, kind=FeedKind.PLAN, plan=world.plan)
    assert [str(e["SUMMARY"]) for e in fetch(url).events] == [
        f"{world.milestone.key} Export queue ready — target"
    ]


def test_the_feed_url_works_without_login_and_stores_only_a_hash(world):
    feed, url = make_feed(world.member, team=world.team)
    raw = url.rsplit("/", 1)[1].removesuffix(".ics")
    assert len(raw) >= 40
    feed.refresh_from_db()
    assert feed.secret_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(FeedToken.objects.values().get(pk=feed.pk))
    assert Client().get(url).status_code == 200
    feed.refresh_from_db()
    assert feed.last_used_at is not None


def test_unknown_and_revoked_feeds_are_404(world):
    feed, url = make_feed(world.member, team=world.team)
    assert Client().get("/calendar/not-a-real-token.ics").status_code == 404
    assert Client().get(url.replace(".ics", "x.ics")).status_code == 404
    feed.revoke()
    response = Client().get(url)
    assert response.status_code == 404
    assert b"BEGIN:VCALENDAR" not in response.content


def test_regenerating_stops_the_old_address_and_starts_a_new_one(world):
    feed, old_url = make_feed(world.member, team=world.team)
    new_url = FeedToken.path_for(feed.regenerate())
    assert Client().get(old_url).status_code == 404
    assert Client().get(new_url).status_code == 200


def test_a_removed_member_s_team_and_plan_feeds_are_404(world):
    _, team_url = make_feed(world.member, team=world.team)
    _, plan_url = make_feed(world.member, kind=FeedKind.PLAN, plan=world.plan)
    _, my_url = make_feed(world.member, kind=FeedKind.USER)
    Membership.objects.filter(user=world.member, team=world.team).delete()
    assert Client().get(team_url).status_code == 404
    assert Client().get(plan_url).status_code == 404
    assert fetch(my_url).events == []


def test_a_deactivated_user_s_feeds_are_404(world):
    _, url = make_feed(world.member, team=world.team)
    world.member.is_active = False
    world.member.save()
    assert Client().get(url).status_code == 404


def test_only_get_and_head_are_answered(world):
    _, url = make_feed(world.member, team=world.team)
    assert Client().head(url).status_code == 200
    assert Client().post(url).status_code == 405


@pytest.mark.parametrize("kind", [FeedKind.TEAM, FeedKind.PLAN, FeedKind.USER])
def test_a_feed_costs_the_same_queries_at_any_size(world, kind, django_assert_max_num_queries):
    plan = world.plan if kind == FeedKind.PLAN else None
    team = world.team if kind == FeedKind.TEAM else None
    _, url = make_feed(world.member, kind=kind, plan=plan, team=team)
    client = Client()
    sizes = []
    for extra in (2, 60):
        grow_team(world.team, world.member, plans=1, milestones_per_plan=extra)
        Milestone.objects.filter(team=world.team).update(
            plan=world.plan,
            owner=world.member,
            forecast_finish=today() + datetime.timedelta(days=40),
        )
        SignoffRole.objects.bulk_create(
            SignoffRole(milestone=m, name="Product owner", holder=world.member)
            for m in Milestone.objects.filter(team=world.team, signoff_roles__isnull=True)
        )
        FeedToken.objects.update(last_used_at=None)  # the write is part of the budget
        with django_assert_max_num_queries(FEED_QUERY_BUDGET[kind]):
            response = client.get(url)
        assert response.status_code == 200
        sizes.append(len(Calendar.from_ical(response.content).events))
    assert sizes[1] > sizes[0] + 90  # 60 more milestones, most with a forecast event too


def test_my_feed_holds_the_sign_offs_awaiting_my_decision(world):
    roles = {
        role.name: role for role in world.milestone.signoff_roles.active().order_by("position")
    }
    for name, holder in [("Product owner", world.member), ("Tech lead", world.admin)]:
        signoffs.set_holder(roles[name], actor=world.admin, holder=holder)
    _, url = make_feed(world.member, kind=FeedKind.USER)
    uid = f"signoff-{roles['Product owner'].pk}@milepost.example"
    before = events_by_uid(fetch(url))
    assert list(before) == [uid]  # only mine: the milestone is owned by nobody
    event = before[uid]
    assert event.start == world.milestone.target_date
    assert str(event["SUMMARY"]) == (
        f"Sign-off due: Product owner for {world.milestone.key} Export queue ready"
    )
    assert str(event["URL"]).endswith(f"/m/{world.milestone.key}/#signoffs")

    new_target = world.milestone.target_date + datetime.timedelta(days=3)
    services.update_object(world.milestone, actor=world.admin, target_date=new_target)
    moved = events_by_uid(fetch(url))[uid]
    assert moved.start == new_target
    assert moved.sequence > event.sequence

    milestone = Milestone.objects.get(pk=world.milestone.pk)
    role = SignoffRole.objects.select_related("holder").get(pk=roles["Product owner"].pk)
    signoffs.decide(milestone, user=world.member, role=role, outcome=SignoffOutcome.APPROVED)
    assert fetch(url).events == []


# --- The Calendar feeds page ---------------------------------------------------------------


def csrf_client(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def csrf_token(client, url=PAGE) -> str:
    page = client.get(url).content.decode()
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def shown_urls(page: str) -> list[str]:
    return re.findall(r'readonly value="(http[^"]+)"', page)


def test_the_page_needs_a_login(world, client):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]


def test_the_page_has_an_empty_state_and_offers_my_teams_and_plans(world, client_for):
    other_plan = make_plan(world.other_team, world.outsider, title="Secret plan")
    page = client_for(world.member).get(PAGE).content.decode()
    assert "You have no calendar feeds yet" in page
    assert '<label for="id_target">What the feed shows</label>' in page
    assert f'value="team:{world.team.pk}"' in page
    assert f'value="plan:{world.plan.pk}"' in page
    assert "Secret plan" not in page and f'value="plan:{other_plan.pk}"' not in page


def test_making_a_feed_shows_its_address_once(world):
    client = csrf_client(world.member)
    response = client.post(
        PAGE, {"target": f"plan:{world.plan.pk}", "csrfmiddlewaretoken": csrf_token(client)}
    )
    assert response.status_code == 302
    feed = FeedToken.objects.get(user=world.member)
    assert (feed.kind, feed.team, feed.plan) == (FeedKind.PLAN, world.team, world.plan)
    page = client.get(PAGE).content.decode()
    [url] = shown_urls(page)
    assert url.startswith("http://testserver/calendar/") and url.endswith(".ics")
    assert 'href="webcal://testserver/calendar/' in page
    assert "Copy it now" in page
    assert Client().get(url.removeprefix("http://testserver")).status_code == 200
    again = client.get(PAGE).content.decode()
    assert shown_urls(again) == []
    assert f"{world.plan.key} Launch the export service (Rocket)" in again
    assert "Regenerate it and subscribe again" in again


def test_a_post_without_the_csrf_token_is_refused(world):
    client = csrf_client(world.member)
    assert client.post(PAGE, {"target": "user"}).status_code == 403
    assert not FeedToken.objects.exists()


def test_another_team_s_plan_or_team_cannot_be_subscribed(world):
    other_plan = make_plan(world.other_team, world.outsider)
    client = csrf_client(world.member)
    for target in (f"plan:{other_plan.pk}", f"team:{world.other_team.pk}", "plan:999999"):
        response = client.post(PAGE, {"target": target, "csrfmiddlewaretoken": csrf_token(client)})
        assert response.status_code == 400
        assert "Select a valid choice" in response.content.decode()
    assert not FeedToken.objects.exists()


def test_a_second_feed_of_the_same_thing_is_refused_with_a_message(world):
    make_feed(world.member, kind=FeedKind.USER)
    client = csrf_client(world.member)
    response = client.post(PAGE, {"target": "user", "csrfmiddlewaretoken": csrf_token(client)})
    assert response.status_code == 400
    assert "You already have a feed of My milestones" in response.content.decode()
    assert FeedToken.objects.count() == 1


def test_regenerating_from_the_page_asks_first_then_changes_the_address(world):
    feed, old_url = make_feed(world.member, team=world.team)
    client = csrf_client(world.member)
    confirm_url = reverse("feeds:action", args=[feed.pk, "regenerate"])
    confirm = client.get(confirm_url)
    assert confirm.status_code == 200
    assert "Regenerate the address of “Team Rocket”?" in confirm.content.decode()
    assert Client().get(old_url).status_code == 200  # looking at the question changes nothing
    response = client.post(confirm_url, {"csrfmiddlewaretoken": csrf_token(client, confirm_url)})
    assert response.status_code == 302
    page = client.get(PAGE).content.decode()
    assert "has a new address; the old one no longer works" in page
    [new_url] = shown_urls(page)
    assert Client().get(old_url).status_code == 404
    assert Client().get(new_url.removeprefix("http://testserver")).status_code == 200


def test_revoking_from_the_page_asks_first_then_stops_the_feed(world):
    feed, url = make_feed(world.member, team=world.team)
    client = csrf_client(world.member)
    confirm_url = reverse("feeds:action", args=[feed.pk, "revoke"])
    assert "Revoke “Team Rocket”?" in client.get(confirm_url).content.decode()
    assert client.post(confirm_url).status_code == 403  # no CSRF token
    assert Client().get(url).status_code == 200
    client.post(confirm_url, {"csrfmiddlewaretoken": csrf_token(client, confirm_url)})
    assert Client().get(url).status_code == 404
    page = client.get(PAGE).content.decode()
    assert "was revoked" in page and "You have no calendar feeds yet" in page
    assert client.get(confirm_url).status_code == 404


def test_someone_else_s_feed_cannot_be_changed(world, client_for):
    feed, url = make_feed(world.member, team=world.team)
    client = client_for(world.admin)
    for action in ("regenerate", "revoke", "delete"):
        target = reverse("feeds:action", args=[feed.pk, action])
        assert client.get(target).status_code == 404
        assert client.post(target).status_code == 404
    assert Client().get(url).status_code == 200


def test_the_page_costs_the_same_queries_at_any_size(
    world, client_for, django_assert_max_num_queries
):
    client = client_for(world.admin)
    for extra in (1, 20):
        for _ in range(extra):
            plan = make_plan(world.team, world.admin)
            make_feed(world.admin, kind=FeedKind.PLAN, plan=plan)
        with django_assert_max_num_queries(PAGE_QUERY_BUDGET):
            assert client.get(PAGE).status_code == 200


def test_a_new_user_can_make_a_feed_of_their_own_milestones(db):
    user = make_user("solo")
    client = csrf_client(user)
    response = client.post(PAGE, {"target": "user", "csrfmiddlewaretoken": csrf_token(client)})
    assert response.status_code == 302
    assert FeedToken.objects.get(user=user).kind == FeedKind.USER


def test_one_active_feed_per_thing_and_a_revoked_one_can_be_replaced(world):
    feed, _ = make_feed(world.member, team=world.team)
    with pytest.raises(ValidationError, match="You already have this feed"):
        FeedToken.create_for(world.member, kind=FeedKind.TEAM, team=world.team)
    feed.revoke()
    make_feed(world.member, team=world.team)
    assert FeedToken.objects.filter(user=world.member).count() == 2
