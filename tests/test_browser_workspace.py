"""The plan and milestone workspace in a real browser: HTMX in-place editing end to end.

Everything but the login flow signs in by planting a session cookie (the login form has its
own tests), and setup goes through the factories unless the UI is what is being tested.
"""

import datetime
import re

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import expect

from milestones.models import Dependency, Milestone, Plan, StatusUpdate, today
from tests.factories import make_criterion, make_deliverable, make_milestone

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ACTION_TIMEOUT_MS = 5_000  # fail fast: every step here is one local request away


# --- Helpers ------------------------------------------------------------------------------------


def sign_in(context, live_server, user):
    """Give a browser context a logged-in session for `user` without going through the form.

    Also shortens the context's action timeout, so a broken step fails in 5 s, not 30 s.
    """
    client = Client()
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
    )


def milestone_url(live_server, milestone):
    return f"{live_server.url}/t/{milestone.team.slug}/m/{milestone.key}/"


def plan_url(live_server, plan):
    return f"{live_server.url}/t/{plan.team.slug}/plans/{plan.key}/"


def mark_page(page):
    """Set a flag on `window` that a full page load would wipe out."""
    page.evaluate("window.__marker = 'still the same page'")


def assert_not_reloaded(page):
    assert page.evaluate("window.__marker") == "still the same page"


def progress_bar(page):
    return page.locator("#header [role=progressbar]")


def dependency_column(page, heading):
    return page.locator("#dependencies > .two-col > div").filter(
        has=page.get_by_role("heading", name=heading, exact=True)
    )


@pytest.fixture
def member_page(world, live_server, page):
    sign_in(page.context, live_server, world.member)
    return page


# --- 1. Plan and milestone creation through the UI ---------------------------------------------


def test_member_logs_in_creates_a_plan_and_a_milestone(world, live_server, page):
    page.set_default_timeout(ACTION_TIMEOUT_MS)
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username or e-mail").fill("max")
    page.get_by_label("Password").fill(world.password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Rocket")

    page.get_by_role("navigation", name="Rocket").get_by_role("link", name="New plan").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New plan")
    page.get_by_label("Title").fill("Billing revamp")
    page.get_by_role("button", name="Create plan").click()

    plan = Plan.objects.get(team=world.team, title="Billing revamp")
    expect(page).to_have_url(plan_url(live_server, plan))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{plan.key} Billing revamp")
    expect(page.get_by_role("status")).to_contain_text(f"Created {plan.key}")
    expect(page.get_by_text("This plan has no milestones yet.")).to_be_visible()

    page.get_by_role("link", name="Add milestone", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New milestone")
    expect(page.get_by_label("Plan")).to_have_value(str(plan.pk))
    target = today() + datetime.timedelta(days=30)
    page.get_by_label("Title").fill("Invoices in the new format")
    page.get_by_label("Target date").fill(target.isoformat())
    page.get_by_role("button", name="Create milestone").click()

    milestone = Milestone.objects.get(plan=plan)
    expect(page).to_have_url(milestone_url(live_server, milestone))
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"{milestone.key} Invoices in the new format"
    )
    expect(page.locator("#header time").first).to_have_attribute("datetime", target.isoformat())
    expect(page.get_by_role("navigation", name="Breadcrumb")).to_contain_text("Billing revamp")
    assert milestone.target_date == target
    assert milestone.title == "Invoices in the new format"


# --- 2. Deliverables, criteria and the live progress bar ---------------------------------------


def test_deliverable_and_criteria_added_in_place_and_ticking_moves_progress(
    world, live_server, member_page
):
    page = member_page
    page.goto(milestone_url(live_server, world.milestone))
    expect(progress_bar(page)).to_have_attribute("aria-valuenow", "0")
    mark_page(page)

    deliverables = page.locator("#deliverables")
    deliverables.get_by_role("link", name="Add deliverable").click()
    expect(deliverables.get_by_role("heading", name="New deliverable")).to_be_visible()
    deliverables.get_by_label("Title").fill("CSV exporter")
    deliverables.get_by_role("button", name="Add deliverable").click()
    expect(deliverables.get_by_role("heading", name="CSV exporter", level=3)).to_be_visible()
    expect(deliverables.get_by_role("heading", name="New deliverable")).to_have_count(0)

    for text in ("Exports 10k rows", "Docs written"):
        deliverables.get_by_role("link", name="Add criterion to CSV exporter").click()
        deliverables.get_by_role("textbox", name="Criterion", exact=True).fill(text)
        deliverables.get_by_role("button", name="Add criterion").click()
        expect(deliverables.get_by_role("checkbox", name=text, exact=True)).not_to_be_checked()

    # One deliverable (not accepted) and two acceptance criteria: 0 of 3.
    expect(progress_bar(page)).to_have_attribute("aria-valuenow", "0")
    expect(page.locator("#header .facts")).to_contain_text("0 of 2 criteria met")

    deliverables.get_by_role("checkbox", name="Docs written", exact=True).check()
    expect(progress_bar(page)).to_have_attribute("aria-valuenow", "33")
    expect(progress_bar(page)).to_have_text("33%")
    expect(page.locator("#header .facts")).to_contain_text("1 of 2 criteria met")
    expect(deliverables.get_by_role("checkbox", name="Docs written", exact=True)).to_be_checked()

    deliverables.get_by_role("checkbox", name="Docs written", exact=True).uncheck()
    expect(progress_bar(page)).to_have_attribute("aria-valuenow", "0")
    expect(progress_bar(page)).to_have_text("0%")
    expect(page.locator("#header .facts")).to_contain_text("0 of 2 criteria met")
    expect(
        deliverables.get_by_role("checkbox", name="Docs written", exact=True)
    ).not_to_be_checked()

    assert_not_reloaded(page)
    deliverable = world.milestone.deliverables.get()
    assert deliverable.title == "CSV exporter"
    assert [c.checked for c in deliverable.criteria.order_by("position")] == [False, False]


# --- 3. Escape cancels an edit; markdown is rendered --------------------------------------------


def test_escape_cancels_the_summary_edit_and_markdown_is_rendered(world, live_server, member_page):
    page = member_page
    page.goto(milestone_url(live_server, world.milestone))
    mark_page(page)
    summary = page.locator("#summary")
    empty = summary.get_by_text("No summary yet.")
    expect(empty).to_be_visible()

    summary.get_by_role("link", name="Edit summary").click()
    box = summary.get_by_label("Summary")
    box.fill("A draft nobody should ever see")
    box.press("Escape")
    expect(summary.locator("textarea")).to_have_count(0)
    expect(empty).to_be_visible()
    expect(summary.get_by_role("link", name="Edit summary")).to_be_visible()
    world.milestone.refresh_from_db()
    assert world.milestone.summary == ""

    summary.get_by_role("link", name="Edit summary").click()
    summary.get_by_label("Summary").fill("Ships the **bold** new export queue.")
    summary.get_by_role("button", name="Save").click()
    expect(summary.locator(".prose strong")).to_have_text("bold")
    expect(summary.locator(".prose")).to_have_text("Ships the bold new export queue.")
    expect(summary.locator("textarea")).to_have_count(0)

    assert_not_reloaded(page)
    world.milestone.refresh_from_db()
    assert world.milestone.summary == "Ships the **bold** new export queue."


# --- 4. Dependencies and the cycle check --------------------------------------------------------


def test_dependency_found_by_search_and_the_reverse_link_is_refused_as_a_cycle(
    world, live_server, member_page
):
    page = member_page
    first = world.milestone
    second = make_milestone(world.plan, world.admin, title="Export docs published")
    page.goto(milestone_url(live_server, first))
    # Swapped-in fields are bound at once, so keys typed straight away are not lost.
    assert page.evaluate("htmx.config.defaultSettleDelay") == 0

    dependencies = page.locator("#dependencies")
    dependencies.get_by_role("link", name="Add dependency").click()
    search = dependencies.get_by_label("Find a milestone by key or title")
    search.press_sequentially(second.key.split("-")[-1])
    dependencies.get_by_role("button", name=f"{first.key} waits for it").click()

    waits_for = dependency_column(page, "Waits for")
    expect(waits_for.get_by_role("link", name="Export docs published")).to_be_visible()
    expect(waits_for).to_contain_text(second.key)
    expect(dependencies.get_by_role("heading", name="Add a dependency")).to_have_count(0)
    assert list(Dependency.objects.values_list("predecessor__key", "successor__key")) == [
        (second.key, first.key)
    ]

    page.goto(milestone_url(live_server, second))
    expect(dependency_column(page, "Holds up")).to_contain_text(first.key)
    dependencies.get_by_role("link", name="Add dependency").click()
    # The search leaves out milestones already linked, so add the reverse link by key.
    dependencies.get_by_text("Or type a key and a lag").click()
    dependencies.get_by_label("Milestone key").fill(first.key)
    dependencies.get_by_label("Direction").select_option("predecessor")
    dependencies.get_by_role("button", name="Add dependency").click()

    error = dependencies.locator(".edit-form > .form-errors")
    expect(error).to_contain_text("cycle")
    expect(error).to_contain_text(first.key)
    expect(error).to_contain_text(second.key)
    expect(dependency_column(page, "Waits for")).to_contain_text("Nothing")
    assert Dependency.objects.count() == 1


# --- 5. Status updates --------------------------------------------------------------------------


def test_posting_a_status_update_shows_it_in_the_history(world, live_server, member_page):
    page = member_page
    page.goto(milestone_url(live_server, world.milestone))
    mark_page(page)
    updates = page.locator("#updates")
    expect(updates.get_by_text("No status updates yet.")).to_be_visible()

    updates.get_by_role("link", name="Post update").click()
    updates.get_by_label("Your view of its health").select_option(label="At risk")
    updates.get_by_label("Percent complete").fill("45")
    updates.get_by_label("Confidence").fill("60")
    updates.get_by_label("Narrative").fill("Waiting on the *vendor* for the schema.")
    updates.get_by_role("button", name="Post update").click()

    entry = updates.locator("li.update").first
    expect(entry).to_contain_text("At risk")
    expect(entry).to_contain_text("45%")
    expect(entry).to_contain_text("confidence 60%")
    expect(entry).to_contain_text("Waiting on the vendor for the schema.")
    expect(entry.locator("em")).to_have_text("vendor")
    expect(updates.locator("form")).to_have_count(0)

    assert_not_reloaded(page)
    update = StatusUpdate.objects.get(milestone=world.milestone)
    assert (update.health, update.percent_complete, update.confidence) == ("at_risk", 45, 60)
    assert update.author == world.member


# --- 6. Lost update: two people edit the same details -------------------------------------------


def test_a_concurrent_edit_is_shown_as_a_conflict_and_can_be_overridden(
    world, live_server, browser
):
    milestone = world.milestone
    context_a, context_b = browser.new_context(), browser.new_context()
    try:
        sign_in(context_a, live_server, world.admin)
        sign_in(context_b, live_server, world.member)
        page_a, page_b = context_a.new_page(), context_b.new_page()
        for page in (page_a, page_b):
            page.goto(milestone_url(live_server, milestone))
            page.locator("#meta").get_by_role("link", name="Edit details").click()
            expect(page.locator("#meta").get_by_label("Title")).to_have_value(milestone.title)

        meta_a = page_a.locator("#meta")
        meta_a.get_by_label("Title").fill("Export queue ready for Europe")
        meta_a.get_by_role("button", name="Save").click()
        expect(meta_a.locator("dl.details")).to_contain_text("Export queue ready for Europe")
        expect(page_a.get_by_role("heading", level=1)).to_contain_text(
            "Export queue ready for Europe"
        )

        meta_b = page_b.locator("#meta")
        meta_b.get_by_label("Title").fill("Export queue ready for Asia")
        meta_b.get_by_role("button", name="Save").click()
        conflict = meta_b.locator(".conflict")
        expect(conflict).to_be_visible()
        expect(conflict).to_have_attribute("role", "alert")
        expect(conflict).to_contain_text("Someone else saved this while you were editing")
        title_row = conflict.get_by_role("row").filter(
            has=page_b.get_by_role("rowheader", name="Title")
        )
        expect(title_row.get_by_role("cell")).to_have_text(
            ["Export queue ready for Europe", "Export queue ready for Asia"]
        )
        milestone.refresh_from_db()
        assert milestone.title == "Export queue ready for Europe"

        meta_b.get_by_role("button", name="Save mine anyway").click()
        expect(meta_b.locator("dl.details")).to_contain_text("Export queue ready for Asia")
        expect(meta_b.locator(".conflict")).to_have_count(0)
        expect(page_b.get_by_role("heading", level=1)).to_contain_text(
            "Export queue ready for Asia"
        )
        milestone.refresh_from_db()
        assert milestone.title == "Export queue ready for Asia"
    finally:
        context_a.close()
        context_b.close()


# --- 7. Viewers read, but cannot change anything ------------------------------------------------

EDIT_CONTROLS = re.compile(
    r"^(Edit|Add|Post update|Raise blocker|Resolve|Delete|Archive|Move|Remove)"
)


def assert_read_only(page):
    main = page.locator("main")
    expect(main.get_by_text("Read-only: you are a viewer in this team")).to_be_visible()
    expect(main.get_by_role("link", name=EDIT_CONTROLS)).to_have_count(0)
    expect(main.get_by_role("button", name=EDIT_CONTROLS)).to_have_count(0)
    expect(main.get_by_role("checkbox")).to_have_count(0)
    expect(main.locator("[hx-post], form[method=post]")).to_have_count(0)


def test_a_viewer_sees_the_milestone_and_plan_without_edit_controls(world, live_server, page):
    deliverable = make_deliverable(world.milestone, world.admin, title="Queue worker")
    make_criterion(world.admin, deliverable=deliverable, text="Survives a restart")
    make_criterion(world.admin, milestone=world.milestone, text="No lost jobs")
    sign_in(page.context, live_server, world.viewer)

    page.goto(milestone_url(live_server, world.milestone))
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"{world.milestone.key} Export queue ready"
    )
    expect(page.get_by_role("heading", name="Queue worker")).to_be_visible()
    expect(page.locator("#deliverables")).to_contain_text("Survives a restart")
    expect(page.locator("#success")).to_contain_text("No lost jobs")
    assert_read_only(page)

    page.goto(plan_url(live_server, world.plan))
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"{world.plan.key} Launch the export service"
    )
    expect(page.get_by_role("link", name="Export queue ready", exact=True)).to_be_visible()
    assert_read_only(page)
    expect(page.get_by_role("link", name="New plan")).to_have_count(0)
