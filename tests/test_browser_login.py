"""Log in through a real browser (Debian's chromium) and see the demo plans."""

from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from milestones.models import Milestone, Plan

pytestmark = pytest.mark.browser
SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"


@pytest.fixture
def demo(transactional_db):
    call_command("seed_demo", verbosity=0)


def log_in(page, live_server, login, password="milepost-demo"):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username or e-mail").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_bob_logs_in_and_sees_the_demo_plans(demo, live_server, page):
    log_in(page, live_server, "bob")
    expect(page.get_by_role("heading", level=1)).to_have_text("Demo")
    plans = Plan.objects.filter(team__slug="demo")
    assert plans.count() >= 2
    for plan in plans:
        expect(page.get_by_role("link", name=f"{plan.key} {plan.title}")).to_be_visible()
    overdue = Milestone.objects.filter(team__slug="demo").overdue().order_by("target_date")
    soonest = overdue.first()
    first_row = page.get_by_role("row").nth(1)
    expect(first_row).to_contain_text(soonest.title)
    expect(first_row).to_contain_text("overdue")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "dashboard-desktop.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=SCREENSHOTS / "dashboard-phone.png", full_page=True)


def test_a_wrong_password_is_refused_with_a_clear_message(demo, live_server, page):
    log_in(page, live_server, "bob@milepost.example", password="not-the-password")
    expect(page.get_by_role("alert")).to_contain_text("do not match an account")
    expect(page).to_have_url(f"{live_server.url}/accounts/login/")


def test_logging_in_with_the_email_address_works_too(demo, live_server, page):
    log_in(page, live_server, "BOB@milepost.example")
    expect(page.get_by_role("heading", level=1)).to_have_text("Demo")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in to Milepost")
