"""Templates in a real browser: building a plan with the keyboard, with the htmx date preview."""

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import expect

from milestones.models import Dependency, Plan

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(context, live_server, user):
    client = Client()
    client.force_login(user)
    context.set_default_timeout(5_000)
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )


def test_build_a_plan_of_the_five_phases_with_the_keyboard(world, live_server, page):
    sign_in(page.context, live_server, world.member)
    page.goto(f"{live_server.url}/t/{world.team.slug}/templates/")
    page.get_by_role("link", name="Plan all five phases").click()
    expect(page.get_by_label("Milestone 5")).to_have_value("maintenance")

    page.get_by_label("New plan title").fill("Export service")
    page.get_by_label("Start date").fill("2027-01-04")
    page.keyboard.press("Tab")  # leaving the field fires `change`: htmx previews the dates
    preview = page.locator("#preview")
    expect(preview.get_by_role("row", name="Maintenance & evolution")).to_contain_text(
        "Thu 1 Apr 2027"
    )
    assert not Plan.objects.filter(title="Export service").exists()

    page.get_by_role("button", name="Create milestones").focus()
    page.keyboard.press("Enter")
    # Some 90 rows go through the services one by one (see the README's measured figures).
    expect(page.get_by_role("heading", level=1)).to_contain_text("Export service", timeout=30_000)
    plan = Plan.objects.get(title="Export service")
    assert plan.milestones.count() == 5
    assert Dependency.objects.filter(successor__plan=plan).count() == 4
