"""Notification pages: preferences, unsubscribe links, the team delivery log with retry and the
digest preview, the dashboard's failed-delivery notice, and the Django admin."""

import datetime
import itertools
import zoneinfo

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from milestones.models import Health, Milestone, PlanStatus, Stakeholder
from notifications import delivery_log, digest
from notifications.models import (
    DeliveryState,
    EmailOptOut,
    Message,
    MessageKind,
    NotificationPreferences,
    Weekday,
    recipient_key_for,
)
from notifications.preferences import next_digest
from notifications.unsubscribe import make_token
from tests.factories import add_member, make_milestone, make_plan, make_user
from tests.test_dashboard import DASHBOARD_QUERY_BUDGET

_numbers = itertools.count(1)
PREFERENCES_QUERY_BUDGET = 7
LOG_QUERY_BUDGET = 6
PREVIEW_QUERY_BUDGET = 16
UNSUBSCRIBE_QUERY_BUDGET = 3
HTMX = {"HTTP_HX_REQUEST": "true"}


def make_message(*, team=None, user=None, email="", state=DeliveryState.SENT, **fields):
    address = user.email if user is not None else email
    number = next(_numbers)
    fields.setdefault("kind", MessageKind.AT_RISK)
    fields.setdefault("subject", f"Message {number}")
    fields.setdefault("dedupe_key", f"test:{number}")
    if state == DeliveryState.FAILED:
        fields.setdefault("finished_at", timezone.now())
        fields.setdefault("attempts", 6)
        fields.setdefault("last_error", "Recipient refused: 550 mailbox unavailable")
    return Message.objects.create(
        recipient_user=user,
        recipient_email=address,
        recipient_key=recipient_key_for(user, address),
        team=team,
        body_text="Body",
        state=state,
        **fields,
    )


def preferences_data(plans=(), **overrides):
    data = {
        "digest_enabled": "on",
        "digest_weekday": "0",
        "digest_hour": "8",
        "time_zone": "UTC",
        "digest_when_empty": "short",
        "at_risk_alerts": "on",
        "signoff_requests": "on",
        "signoff_decisions": "on",
        "update_reminders": "on",
        "completion_notices": "on",
        "included_plans": [str(plan.pk) for plan in plans],
    }
    data.update(overrides)
    return {name: value for name, value in data.items() if value is not None}


def count_queries(client, url, **params):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params)
    assert response.status_code == 200
    return len(queries)


# --- Preferences -----------------------------------------------------------------------------

PREFERENCES_URL = "/notifications/"


def test_preferences_need_a_login(client):
    response = client.get(PREFERENCES_URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


# Early on a Monday (UTC): this week's default digest hour (Monday 08:00) is still ahead.
MONDAY_EARLY = datetime.datetime(2026, 11, 23, 5, tzinfo=datetime.UTC)


@time_machine.travel(MONDAY_EARLY, tick=False)
def test_preferences_show_the_defaults_to_a_user_who_never_chose(world, client_for):
    response = client_for(world.member).get(PREFERENCES_URL)
    page = response.content.decode()
    assert response.status_code == 200
    assert '<option value="8" selected>08:00</option>' in page
    assert '<option value="0" selected>Monday</option>' in page
    assert '<option value="UTC" selected>UTC</option>' in page
    assert 'name="digest_enabled" id="id_digest_enabled" checked' in page
    assert (
        f'id="include-plan-{world.plan.pk}" name="included_plans" value="{world.plan.pk}" checked'
        in page
    )
    assert world.plan.title in page
    assert "Your next digest goes out on" in page
    assert "Monday 23 November 2026 at 08:00</time></strong> (UTC)" in page
    assert not NotificationPreferences.objects.filter(user=world.member).exists()


@time_machine.travel(MONDAY_EARLY, tick=False)
def test_saving_preferences_creates_them_and_sets_the_time_zone(world, client_for):
    second = make_plan(world.team, world.admin, title="Second plan")
    client = client_for(world.member)
    data = preferences_data(
        [second],
        digest_weekday=str(Weekday.THURSDAY),
        digest_hour="17",
        time_zone="Europe/Berlin",
        digest_when_empty="skip",
        at_risk_alerts=None,  # unticked
    )
    response = client.post(PREFERENCES_URL, data)
    assert response.status_code == 302 and response["Location"] == PREFERENCES_URL
    preferences = NotificationPreferences.objects.get(user=world.member)
    assert (preferences.digest_weekday, preferences.digest_hour) == (Weekday.THURSDAY, 17)
    assert preferences.digest_when_empty == "skip"
    assert preferences.at_risk_alerts is False and preferences.signoff_requests is True
    assert list(preferences.muted_plans.all()) == [world.plan]
    world.member.refresh_from_db()
    assert world.member.time_zone == "Europe/Berlin"
    page = client.get(PREFERENCES_URL).content.decode()
    assert "Notification preferences saved." in page
    assert "Thursday 26 November 2026 at 17:00</time></strong> (Europe/Berlin)" in page


@time_machine.travel(MONDAY_EARLY + datetime.timedelta(hours=4), tick=False)
def test_the_page_says_when_this_weeks_digest_is_due_now(world, client_for):
    page = client_for(world.member).get(PREFERENCES_URL).content.decode()
    assert "Your digest for this week is due" in page
    make_message(user=world.member, kind=MessageKind.DIGEST, dedupe_key="2026-W48")
    page = client_for(world.member).get(PREFERENCES_URL).content.decode()
    assert "Monday 30 November 2026 at 08:00" in page


def test_ticking_a_plan_again_unmutes_it(world, client_for):
    preferences = NotificationPreferences.objects.create(user=world.member)
    preferences.muted_plans.add(world.plan)
    client = client_for(world.member)
    page = client.get(PREFERENCES_URL).content.decode()
    assert f'value="{world.plan.pk}"> ' in page  # shown unticked
    client.post(PREFERENCES_URL, preferences_data([world.plan]))
    assert not preferences.muted_plans.exists()


def test_mutes_of_plans_not_offered_are_kept(world, client_for):
    archived = make_plan(world.team, world.admin, title="Old plan", status=PlanStatus.ARCHIVED)
    preferences = NotificationPreferences.objects.create(user=world.member)
    preferences.muted_plans.add(archived)
    page = client_for(world.member).get(PREFERENCES_URL).content.decode()
    assert "Old plan" not in page
    client_for(world.member).post(PREFERENCES_URL, preferences_data([world.plan]))
    assert list(preferences.muted_plans.all()) == [archived]


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("digest_hour", "24", "Select a valid choice. 24 is not one of the available choices."),
        ("digest_hour", "", "This field is required."),
        ("digest_weekday", "7", "Select a valid choice. 7 is not one of the available choices."),
        ("time_zone", "Mars/Olympus_Mons", "Select a valid choice. Mars/Olympus_Mons is not"),
        ("digest_when_empty", "sometimes", "Select a valid choice. sometimes is not"),
    ],
)
def test_bad_preferences_are_refused_with_field_errors_and_nothing_saved(
    world, client_for, field, value, error
):
    data = preferences_data([], **{"time_zone": "Asia/Tokyo", field: value})
    response = client_for(world.member).post(PREFERENCES_URL, data)
    assert response.status_code == 400
    assert error in response.context["form"].errors[field][0]
    assert "Nothing was saved" in response.content.decode()
    assert not NotificationPreferences.objects.filter(user=world.member).exists()
    world.member.refresh_from_db()
    assert world.member.time_zone == "UTC"


@time_machine.travel(MONDAY_EARLY, tick=False)
def test_a_refused_form_still_shows_the_stored_schedule(world, client_for):
    data = preferences_data([], digest_weekday=str(Weekday.THURSDAY), digest_hour="24")
    response = client_for(world.member).post(PREFERENCES_URL, data)
    assert response.status_code == 400
    assert "Monday 23 November 2026 at 08:00" in response.content.decode()


def test_another_teams_plan_cannot_be_included_or_seen(world, client_for):
    theirs = make_plan(world.other_team, world.outsider, title="Their secret plan")
    client = client_for(world.member)
    assert "Their secret plan" not in client.get(PREFERENCES_URL).content.decode()
    response = client.post(PREFERENCES_URL, preferences_data([world.plan, theirs]))
    assert response.status_code == 400
    assert "included_plans" in response.context["form"].errors
    assert not NotificationPreferences.objects.filter(user=world.member).exists()


def test_plans_are_grouped_by_team_and_escaped(world, client_for):
    add_member(world.other_team, world.member, Role.VIEWER)
    make_plan(world.other_team, world.outsider, title="<script>alert(1)</script>")
    page = client_for(world.member).get(PREFERENCES_URL).content.decode()
    assert "<legend>Elsewhere</legend>" in page and "<legend>Rocket</legend>" in page
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_preferences_need_the_csrf_token(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.member)
    response = client.post(PREFERENCES_URL, preferences_data([world.plan]))
    assert response.status_code == 403
    assert not NotificationPreferences.objects.filter(user=world.member).exists()


def test_the_preferences_page_query_count_does_not_grow(
    world, client_for, django_assert_max_num_queries
):
    client = client_for(world.member)
    NotificationPreferences.objects.create(user=world.member).muted_plans.add(world.plan)
    few = count_queries(client, PREFERENCES_URL)
    for number in range(40):
        plan = make_plan(world.team, world.admin, title=f"Plan {number}")
        world.member.notification_preferences.muted_plans.add(plan)
    many = count_queries(client, PREFERENCES_URL)
    print(f"preferences page: {few} and {many} queries")
    assert few == many
    with django_assert_max_num_queries(PREFERENCES_QUERY_BUDGET):
        client.get(PREFERENCES_URL)


def test_a_turned_off_digest_says_so(world, client_for):
    NotificationPreferences.objects.create(user=world.member, digest_enabled=False)
    page = client_for(world.member).get(PREFERENCES_URL).content.decode()
    assert "The weekly digest is off" in page


# --- When the next digest goes out -----------------------------------------------------------

WEDNESDAY_NOON_UTC = datetime.datetime(2026, 11, 25, 12, tzinfo=datetime.UTC)
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def test_next_digest_is_the_coming_weekday_and_hour_in_the_users_zone(world):
    world.member.time_zone = "Europe/Berlin"
    preferences = NotificationPreferences(user=world.member, digest_weekday=Weekday.THURSDAY)
    upcoming = next_digest(world.member, preferences, now=WEDNESDAY_NOON_UTC)
    assert upcoming.at == datetime.datetime(2026, 11, 26, 8, tzinfo=BERLIN)
    assert upcoming.at.astimezone(datetime.UTC).hour == 7
    assert not upcoming.due_now


def test_next_digest_is_due_now_when_the_hour_passed_and_nothing_was_queued(world):
    world.member.time_zone = "Europe/Berlin"
    preferences = NotificationPreferences(user=world.member)
    monday_ten_berlin = datetime.datetime(2026, 11, 23, 10, tzinfo=BERLIN)
    assert next_digest(world.member, preferences, now=monday_ten_berlin).due_now
    make_message(
        user=world.member,
        kind=MessageKind.DIGEST,
        dedupe_key=digest.iso_week(monday_ten_berlin.date()),
    )
    upcoming = next_digest(world.member, preferences, now=monday_ten_berlin)
    assert upcoming == type(upcoming)(datetime.datetime(2026, 11, 30, 8, tzinfo=BERLIN))


def test_no_next_digest_when_it_is_off(world):
    preferences = NotificationPreferences(user=world.member, digest_enabled=False)
    assert next_digest(world.member, preferences, now=WEDNESDAY_NOON_UTC) is None


# --- Unsubscribe -----------------------------------------------------------------------------


def unsubscribe_url(recipient_key, kind):
    return reverse("notifications:unsubscribe", args=[make_token(recipient_key, kind)])


def one_click(url):
    """What a mail client sends for RFC 8058: no session, no CSRF token."""
    return Client(enforce_csrf_checks=True).post(
        url,
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )


def test_the_unsubscribe_page_changes_nothing_on_get(world, client):
    url = unsubscribe_url(recipient_key_for(world.member), MessageKind.DIGEST)
    response = client.get(url)
    page = response.content.decode()
    assert response.status_code == 200
    assert "weekly digests" in page and world.member.email in page
    assert '<button type="submit" class="button danger">Unsubscribe</button>' in page
    assert NotificationPreferences.for_user(world.member).digest_enabled
    assert not NotificationPreferences.objects.exists()


def test_the_unsubscribe_pages_cost_a_few_queries(world, django_assert_max_num_queries):
    url = unsubscribe_url(recipient_key_for(world.member), MessageKind.DIGEST)
    with django_assert_max_num_queries(UNSUBSCRIBE_QUERY_BUDGET):
        Client().get(url)
    with django_assert_max_num_queries(UNSUBSCRIBE_QUERY_BUDGET + 4):  # the write, savepoints
        one_click(url)


def test_a_one_click_post_without_csrf_or_login_stops_the_digest(world):
    url = unsubscribe_url(recipient_key_for(world.member), MessageKind.DIGEST)
    response = one_click(url)
    assert response.status_code == 200
    assert "You are unsubscribed" in response.content.decode()
    preferences = NotificationPreferences.objects.get(user=world.member)
    assert preferences.digest_enabled is False
    assert preferences.at_risk_alerts is True  # only the digest


def test_unsubscribing_from_an_alert_turns_off_only_that_alert(world, client):
    NotificationPreferences.objects.create(user=world.member, digest_weekday=Weekday.FRIDAY)
    url = unsubscribe_url(recipient_key_for(world.member), MessageKind.SIGNOFF_REQUEST)
    assert "sign-off requests" in client.get(url).content.decode()
    client.post(url)
    preferences = NotificationPreferences.objects.get(user=world.member)
    assert preferences.signoff_requests is False
    assert preferences.digest_enabled and preferences.at_risk_alerts
    assert preferences.digest_weekday == Weekday.FRIDAY  # the existing row, updated


def test_a_plain_address_unsubscribes_with_an_opt_out_row_idempotently(db):
    url = unsubscribe_url(recipient_key_for(email="Stake.Holder@Example.com"), MessageKind.DIGEST)
    assert one_click(url).status_code == 200
    second = Client().post(url)
    assert second.status_code == 200
    assert list(EmailOptOut.objects.values_list("email", "kind")) == [
        ("stake.holder@example.com", "digest")
    ]
    page = Client().get(url).content.decode()
    assert "already unsubscribed" in page
    assert "Unsubscribe</button>" not in page


def test_unsubscribing_twice_leaves_the_user_unsubscribed(world):
    url = unsubscribe_url(recipient_key_for(world.member), MessageKind.AT_RISK)
    assert one_click(url).status_code == 200
    assert one_click(url).status_code == 200
    assert NotificationPreferences.objects.get(user=world.member).at_risk_alerts is False
    assert "already unsubscribed" in Client().get(url).content.decode()


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        make_token("user:1", "digest")[:-2] + "xx",  # signature altered
        make_token("user:999999", "digest"),  # no such user
        make_token("user:1", "webhook_disabled"),  # a kind nobody can leave
        make_token("robot:1", "digest"),
    ],
)
def test_a_bad_unsubscribe_link_is_a_clear_404_and_changes_nothing(world, token):
    url = reverse("notifications:unsubscribe", args=[token])
    for response in (Client().get(url), one_click(url)):
        assert response.status_code == 404
        assert "This unsubscribe link does not work" in response.content.decode()
    assert not NotificationPreferences.objects.exists()
    assert not EmailOptOut.objects.exists()


def test_a_token_for_one_user_cannot_be_edited_to_another(world):
    token = make_token(recipient_key_for(world.member), MessageKind.DIGEST)
    rest = token.split(":", 1)[1]
    forged = make_token(recipient_key_for(world.admin), MessageKind.DIGEST).split(":", 1)[0]
    response = one_click(reverse("notifications:unsubscribe", args=[f"{forged}:{rest}"]))
    assert response.status_code == 404
    assert NotificationPreferences.for_user(world.admin).digest_enabled


# --- Delivery log ----------------------------------------------------------------------------


def log_url(team, **params):
    url = reverse("notifications:delivery_log", args=[team.slug])
    return url if not params else f"{url}?{'&'.join(f'{k}={v}' for k, v in params.items())}"


def test_the_delivery_log_is_for_team_admins_only(world, client, client_for):
    url = log_url(world.team)
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    assert client_for(world.member).get(url).status_code == 403
    assert client_for(world.viewer).get(url).status_code == 403
    assert client_for(world.outsider).get(url).status_code == 404
    response = client_for(world.admin).get(url)
    assert response.status_code == 200
    assert "No e-mails yet" in response.content.decode()


def test_the_delivery_log_link_is_shown_to_admins_only(world, client_for):
    link = f'href="{log_url(world.team)}"'
    assert link in client_for(world.admin).get(f"/t/{world.team.slug}/").content.decode()
    assert link not in client_for(world.member).get(f"/t/{world.team.slug}/").content.decode()


def test_the_delivery_log_shows_this_teams_mail_and_no_other(world, client_for):
    stranger = add_member(world.other_team, make_user("stranger"))
    add_member(world.other_team, world.member, Role.MEMBER)  # in both teams
    Stakeholder.objects.create(plan=world.plan, email="Board@Example.com", name="Board")
    their_plan = make_plan(world.other_team, world.outsider)
    Stakeholder.objects.create(plan=their_plan, email="investor@example.com")
    shown = [
        make_message(team=world.team, user=world.member, subject="Our alert"),
        make_message(user=world.member, kind=MessageKind.DIGEST, subject="Member digest"),
        make_message(email="board@example.com", kind=MessageKind.DIGEST, subject="Board digest"),
    ]
    hidden = [
        make_message(team=world.other_team, user=world.member, subject="Their alert to max"),
        make_message(user=stranger, kind=MessageKind.DIGEST, subject="Stranger digest"),
        make_message(email="investor@example.com", kind=MessageKind.DIGEST, subject="Investor"),
    ]
    page = client_for(world.admin).get(log_url(world.team)).content.decode()
    for message in shown:
        assert message.subject in page
    for message in hidden:
        assert message.subject not in page
    # Newest first.
    assert page.index("Board digest") < page.index("Member digest") < page.index("Our alert")
    other = client_for(world.outsider).get(log_url(world.other_team)).content.decode()
    assert "Their alert to max" in other and "Investor" in other and "Our alert" not in other


def test_digests_of_stakeholders_with_accounts_outside_the_team_are_in_the_log(world, client_for):
    guest = make_user("guest")  # no membership in Rocket
    Stakeholder.objects.create(plan=world.plan, user=guest)
    make_message(user=guest, kind=MessageKind.DIGEST, subject="Guest digest")
    make_message(team=None, user=guest, kind=MessageKind.AT_RISK, subject="Not a digest")
    page = client_for(world.admin).get(log_url(world.team)).content.decode()
    assert "Guest digest" in page and "Not a digest" not in page


def test_the_delivery_log_filters_by_state(world, client_for):
    client = client_for(world.admin)
    assert "No failed e-mails" in client.get(log_url(world.team, state="failed")).content.decode()
    make_message(team=world.team, subject="Went out", state=DeliveryState.SENT)
    make_message(team=world.team, subject="Bounced", state=DeliveryState.FAILED)
    make_message(team=world.team, subject="Waiting", state=DeliveryState.PENDING)
    make_message(team=world.team, subject="In flight", state=DeliveryState.SENDING)
    expectations = {
        "failed": {"Bounced"},
        "pending": {"Waiting", "In flight"},
        "sent": {"Went out"},
        "all": {"Went out", "Bounced", "Waiting", "In flight"},
        "nonsense": {"Went out", "Bounced", "Waiting", "In flight"},
    }
    for state, subjects in expectations.items():
        page = client.get(log_url(world.team, state=state)).content.decode()
        for subject in {"Went out", "Bounced", "Waiting", "In flight"}:
            assert (subject in page) == (subject in subjects), (state, subject)
    page = client.get(log_url(world.team, state="failed")).content.decode()
    assert "550 mailbox unavailable" in page and "Retry" in page


def test_the_delivery_log_is_paginated_by_fifty(world, client_for):
    for _ in range(60):
        make_message(team=world.team)
    client = client_for(world.admin)
    first = client.get(log_url(world.team))
    assert len(first.context["page"].object_list) == 50
    assert "Page 1 of 2" in first.content.decode()
    second = client.get(log_url(world.team, page=2))
    assert len(second.context["page"].object_list) == 10
    assert 'rel="prev"' in second.content.decode()


def test_the_delivery_log_query_count_does_not_grow(
    world, client_for, django_assert_max_num_queries
):
    client = client_for(world.admin)
    for _ in range(3):
        make_message(team=world.team, user=world.member, state=DeliveryState.FAILED)
    few = count_queries(client, log_url(world.team))
    for number in range(120):
        user = add_member(world.team, make_user(f"bulk{number}"))
        make_message(team=world.team, user=user, state=DeliveryState.FAILED)
        make_message(user=user, kind=MessageKind.DIGEST)
    many = count_queries(client, log_url(world.team, state="failed", page=2))
    print(f"delivery log: {few} and {many} queries")
    assert few == many
    with django_assert_max_num_queries(LOG_QUERY_BUDGET):
        client.get(log_url(world.team))


def test_the_delivery_log_escapes_what_it_shows(world, client_for):
    make_message(
        team=world.team,
        subject="<img src=x onerror=alert(1)>",
        state=DeliveryState.FAILED,
        last_error="<b>boom</b>",
    )
    page = client_for(world.admin).get(log_url(world.team)).content.decode()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<b>boom</b>" not in page


# --- Retry -----------------------------------------------------------------------------------


def retry_url(team, message):
    return reverse("notifications:delivery_retry", args=[team.slug, message.pk])


def test_retry_puts_a_failed_message_back_in_the_queue(
    world, client_for, django_capture_on_commit_callbacks
):
    failed = make_message(team=world.team, user=world.member, state=DeliveryState.FAILED)
    client = client_for(world.admin)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(retry_url(world.team, failed), {"state": "failed", "page": "1"})
    assert response.status_code == 302
    assert response["Location"] == log_url(world.team, state="failed")
    failed.refresh_from_db()
    assert (failed.state, failed.attempts, failed.finished_at) == (DeliveryState.PENDING, 0, None)
    assert len(callbacks) == 1  # the delivery task, published after commit
    assert "queued again" in client.get(response["Location"]).content.decode()


def test_retry_with_htmx_returns_the_updated_row(world, client_for):
    failed = make_message(team=world.team, user=world.member, state=DeliveryState.FAILED)
    response = client_for(world.admin).post(retry_url(world.team, failed), **HTMX)
    page = response.content.decode()
    assert response.status_code == 200
    assert page.lstrip().startswith(f'<tr id="message-{failed.pk}"')
    assert "Pending" in page and "queued again" in page and "Retry</button>" not in page


def test_retry_leaves_a_message_that_did_not_fail_alone(world, client_for):
    sent = make_message(team=world.team, state=DeliveryState.SENT, attempts=1)
    response = client_for(world.admin).post(retry_url(world.team, sent))
    assert response.status_code == 302
    sent.refresh_from_db()
    assert (sent.state, sent.attempts) == (DeliveryState.SENT, 1)


def test_retry_is_for_this_teams_admins_and_messages_only(world, client_for):
    ours = make_message(team=world.team, state=DeliveryState.FAILED)
    theirs = make_message(team=world.other_team, state=DeliveryState.FAILED)
    assert client_for(world.member).post(retry_url(world.team, ours)).status_code == 403
    assert client_for(world.outsider).post(retry_url(world.team, ours)).status_code == 404
    assert client_for(world.admin).post(retry_url(world.team, theirs)).status_code == 404
    assert client_for(world.admin).get(retry_url(world.team, ours)).status_code == 405
    for message in (ours, theirs):
        message.refresh_from_db()
        assert message.state == DeliveryState.FAILED


def test_retry_needs_the_csrf_token(world):
    failed = make_message(team=world.team, state=DeliveryState.FAILED)
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.admin)
    assert client.post(retry_url(world.team, failed)).status_code == 403
    failed.refresh_from_db()
    assert failed.state == DeliveryState.FAILED


# --- Dashboard notice ------------------------------------------------------------------------


def test_team_admins_see_recent_failures_on_the_dashboard(world, client_for):
    dashboard = f"/t/{world.team.slug}/"
    make_message(team=world.team, state=DeliveryState.FAILED)
    make_message(user=world.member, kind=MessageKind.DIGEST, state=DeliveryState.FAILED)
    make_message(
        team=world.team,
        state=DeliveryState.FAILED,
        finished_at=timezone.now() - datetime.timedelta(days=8),
    )
    make_message(team=world.other_team, state=DeliveryState.FAILED)
    make_message(team=world.team, state=DeliveryState.SENT)
    page = client_for(world.admin).get(dashboard).content.decode()
    assert "2 e-mails failed to send in the last 7 days" in page
    assert f'href="{log_url(world.team)}?state=failed">delivery log</a>' in page
    assert "failed to send" not in client_for(world.member).get(dashboard).content.decode()


def test_no_failure_notice_when_nothing_failed(world, client_for):
    make_message(team=world.team, state=DeliveryState.SENT)
    page = client_for(world.admin).get(f"/t/{world.team.slug}/").content.decode()
    assert "failed to send" not in page
    assert delivery_log.recently_failed_count(world.team) == 0


def test_the_notice_costs_admins_one_query_whatever_the_failures(
    world, client_for, django_assert_max_num_queries
):
    dashboard = f"/t/{world.team.slug}/"
    make_message(team=world.team, state=DeliveryState.FAILED)
    as_member = count_queries(client_for(world.member), dashboard)
    as_admin = count_queries(client_for(world.admin), dashboard)
    for _ in range(50):
        make_message(team=world.team, state=DeliveryState.FAILED)
    assert count_queries(client_for(world.admin), dashboard) == as_admin == as_member + 1
    client = client_for(world.admin)
    with django_assert_max_num_queries(DASHBOARD_QUERY_BUDGET + 1):
        client.get(dashboard)


# --- Digest preview --------------------------------------------------------------------------


def preview_url(team, member=None, text=False):
    name = "notifications:digest_preview_text" if text else "notifications:digest_preview"
    url = reverse(name, args=[team.slug])
    return url if member is None else f"{url}?member={member.pk}"


@pytest.fixture
def two_team_member(world):
    """max is in both teams, and each team has an off-track milestone."""
    add_member(world.other_team, world.member, Role.MEMBER)
    theirs = make_plan(world.other_team, world.outsider, title="Confidential merger plan")
    secret = make_milestone(theirs, world.outsider, title="Secret acquisition milestone")
    Milestone.objects.filter(pk__in=[secret.pk, world.milestone.pk]).update(health=Health.OFF_TRACK)
    return world.member


def test_the_preview_shows_a_members_digest_for_this_team_only(world, client_for, two_team_member):
    response = client_for(world.admin).get(preview_url(world.team, two_team_member))
    page = response.content.decode()
    assert response.status_code == 200
    assert world.plan.title in page and world.milestone.title in page
    assert "Confidential merger plan" not in page
    assert "Secret acquisition milestone" not in page
    assert response.context["subject"].startswith("Milepost weekly")
    assert f'id="preview-subject">{response.context["subject"]}<' in page
    assert "<iframe" in page and "sandbox" in page
    text = client_for(world.admin).get(preview_url(world.team, two_team_member, text=True))
    assert text["Content-Type"].startswith("text/plain")
    body = text.content.decode()
    assert world.milestone.title in body and "Secret acquisition milestone" not in body
    # The member's own digest (no team restriction) does contain the other team's plan.
    own = digest.render_digest(digest.build_digest(two_team_member))
    assert "Confidential merger plan" in own.text


def test_the_preview_hides_the_members_unsubscribe_link(world, client_for, two_team_member):
    response = client_for(world.admin).get(preview_url(world.team, two_team_member))
    text = client_for(world.admin).get(preview_url(world.team, two_team_member, text=True))
    for body in (response.context["html"], text.content.decode()):
        assert "/notifications/unsubscribe/" not in body
        assert "#unsubscribe-link-hidden-in-preview" in body


def test_the_preview_defaults_to_the_admin_and_refuses_non_members(world, client_for):
    client = client_for(world.admin)
    response = client.get(preview_url(world.team))
    assert response.status_code == 200 and response.context["chosen"] == world.admin
    refused = client.get(preview_url(world.team, world.outsider))
    assert refused.status_code == 400
    assert "Select a valid choice" in refused.content.decode()
    assert client.get(preview_url(world.team, world.outsider, text=True)).status_code == 400


def test_the_preview_is_for_team_admins_only(world, client, client_for):
    url = preview_url(world.team, world.member)
    assert client.get(url).status_code == 302
    assert client_for(world.member).get(url).status_code == 403
    assert client_for(world.viewer).get(url).status_code == 403
    assert client_for(world.outsider).get(url).status_code == 404
    assert client_for(world.outsider).get(preview_url(world.team, text=True)).status_code == 404


def test_the_preview_query_count_does_not_grow(
    world, client_for, two_team_member, django_assert_max_num_queries
):
    client = client_for(world.admin)
    few = count_queries(client, preview_url(world.team), member=two_team_member.pk)
    for number in range(10):
        plan = make_plan(world.team, world.admin, title=f"Bulk plan {number}")
        for _ in range(3):
            make_milestone(plan, world.admin, owner=two_team_member, status="in_progress")
    Milestone.objects.filter(team=world.team).update(health=Health.AT_RISK)
    many = count_queries(client, preview_url(world.team), member=two_team_member.pk)
    print(f"digest preview: {few} and {many} queries")
    assert few == many
    with django_assert_max_num_queries(PREVIEW_QUERY_BUDGET):
        client.get(preview_url(world.team, two_team_member))


def test_the_preview_says_when_the_member_turned_the_digest_off(world, client_for):
    NotificationPreferences.objects.create(user=world.member, digest_enabled=False)
    page = client_for(world.admin).get(preview_url(world.team, world.member)).content.decode()
    assert "has turned the weekly digest off" in page


# --- Django admin ----------------------------------------------------------------------------


def staff_admin_of(team):
    user = make_user("staffer", is_staff=True)
    add_member(team, user, Role.ADMIN)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="notifications"))
    return user


def test_the_admin_lists_filters_and_searches_messages(world, client):
    make_message(team=world.team, subject="Weekly thing", state=DeliveryState.SENT)
    make_message(team=world.team, subject="Broken thing", state=DeliveryState.FAILED)
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    url = reverse("admin:notifications_message_changelist")
    page = client.get(url, {"state__exact": "failed"}).content.decode()
    assert "Broken thing" in page and "Weekly thing" not in page
    page = client.get(url, {"q": "weekly"}).content.decode()
    assert "Weekly thing" in page and "Broken thing" not in page
    for name in ("notificationpreferences", "emailoptout"):
        assert client.get(reverse(f"admin:notifications_{name}_changelist")).status_code == 200


def test_the_admin_retries_failed_messages(world, client):
    failed = make_message(team=world.team, state=DeliveryState.FAILED)
    sent = make_message(team=world.team, state=DeliveryState.SENT)
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    response = client.post(
        reverse("admin:notifications_message_changelist"),
        {"action": "retry_failed", "_selected_action": [failed.pk, sent.pk]},
        follow=True,
    )
    assert "Queued 1 message again. 1 had not failed" in response.content.decode()
    failed.refresh_from_db()
    sent.refresh_from_db()
    assert (failed.state, sent.state) == (DeliveryState.PENDING, DeliveryState.SENT)


def test_the_admin_shows_messages_read_only(world, client):
    message = make_message(team=world.team, subject="Original")
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    url = reverse("admin:notifications_message_change", args=[message.pk])
    assert client.get(url).status_code == 200
    client.post(url, {"subject": "Changed", "state": "failed"})
    message.refresh_from_db()
    assert (message.subject, message.state) == ("Original", DeliveryState.SENT)


def test_staff_see_only_the_messages_of_teams_they_administer(world, client):
    make_message(team=world.team, subject="Ours")
    make_message(team=world.other_team, subject="Theirs")
    client.force_login(staff_admin_of(world.team))
    page = client.get(reverse("admin:notifications_message_changelist")).content.decode()
    assert "Ours" in page and "Theirs" not in page
