"""The preferences page in a real browser (Debian's chromium): a member moves their digest to
another day, hour and time zone and leaves a plan out of it; a reload shows it all saved."""

import re

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import expect

from notifications.models import NotificationPreferences, Weekday
from tests.factories import make_plan

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ACTION_TIMEOUT_MS = 5_000  # fail fast: every step here is one local request away


def sign_in(context, live_server, user):
    """A logged-in session cookie for `user` (the log-in form has its own browser test)."""
    client = Client()
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
    )


def plan_box(group, plan):
    return group.get_by_role("checkbox", name=f"{plan.key} {plan.title}")


def test_a_member_moves_their_digest_and_leaves_a_plan_out(world, live_server, page):
    kept = make_plan(world.team, world.admin, title="Billing revamp")
    sign_in(page.context, live_server, world.member)
    page.goto(f"{live_server.url}/t/{world.team.slug}/")
    page.get_by_role("navigation", name="Account").get_by_role("link", name="Notifications").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Notifications")

    page.get_by_label("Digest day").select_option(label="Thursday")
    page.get_by_label("Digest hour").select_option(label="17:00")
    page.get_by_label("Time zone").select_option("America/New_York")
    plans = page.get_by_role("group", name="Rocket")
    plan_box(plans, world.plan).uncheck()
    page.get_by_role("button", name="Save preferences").click()

    expect(page.get_by_role("status").first).to_contain_text("Notification preferences saved.")
    page.reload()
    expect(page.get_by_label("Digest day")).to_have_value(str(Weekday.THURSDAY.value))
    expect(page.get_by_label("Digest hour")).to_have_value("17")
    expect(page.get_by_label("Time zone")).to_have_value("America/New_York")
    expect(plan_box(plans, world.plan)).not_to_be_checked()
    expect(plan_box(plans, kept)).to_be_checked()
    # Thursday 17:00 New York time, or "due" when that has passed this week already.
    expect(page.locator("#next-digest")).to_contain_text(
        re.compile(r"Thursday .* at 17:00 \(America/New_York\)|this week is due")
    )

    preferences = NotificationPreferences.objects.get(user=world.member)
    assert (preferences.digest_weekday, preferences.digest_hour) == (Weekday.THURSDAY, 17)
    assert list(preferences.muted_plans.all()) == [world.plan]
    world.member.refresh_from_db()
    assert world.member.time_zone == "America/New_York"
