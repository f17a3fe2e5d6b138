"""Sign-off in a real browser (Debian's chromium), on the demo data: Priya approves from My
sign-offs through the confirmation step, the milestone shows the approval, and once Bob edits
a deliverable the approval shows stale."""

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from accounts.models import User
from milestones import signoffs
from milestones.models import Milestone, SignoffDecision, SignoffOutcome

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ACTION_TIMEOUT_MS = 5_000  # fail fast: every step here is one local request away
DEMO_PASSWORD = "milepost-demo"
PENDING = {"dualwrite": "Dual-write of product events", "sync": "Offline mode and background sync"}


@pytest.fixture
def demo(transactional_db):
    call_command("seed_demo", verbosity=0)


def log_in(page, live_server, login):
    page.set_default_timeout(ACTION_TIMEOUT_MS)
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username or e-mail").fill(login)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Demo")


def milestone_url(live_server, milestone):
    return f"{live_server.url}/t/{milestone.team.slug}/m/{milestone.key}/"


def product_owner_row(page, milestone):
    role = milestone.signoff_roles.active().get(name="Product owner")
    return page.locator(f"#signoff-role-{role.pk}")


def test_priya_approves_from_my_signoffs_and_bobs_edit_makes_it_stale(
    demo, live_server, page, browser
):
    dualwrite = Milestone.objects.get(title=PENDING["dualwrite"])
    sync = Milestone.objects.get(title=PENDING["sync"])
    unmet = signoffs.unmet_items(dualwrite)

    # Priya logs in and opens My sign-offs.
    log_in(page, live_server, "priya")
    page.get_by_role("navigation", name="Account").get_by_role("link", name="My sign-offs").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My sign-offs")
    cards = page.locator("article.signoff-card")
    for milestone in (dualwrite, sync):
        card = page.locator(f"#card-{milestone.pk}")
        expect(card.get_by_role("heading", level=2)).to_have_text(
            f"{milestone.key} {milestone.title}"
        )
        # Tech and operations leads already approved (with exceptions); she is the one missing.
        for name, holder in (("Tech lead", "alice"), ("Operations lead", "omar")):
            display = User.objects.get(username=holder).display_name
            expect(card.locator(".other-roles")).to_contain_text(f"{name} ({display}): Approved")
        expect(card.locator(".my-roles")).to_contain_text(
            "As Product owner: awaiting your decision"
        )
    # Most urgent first: the sync milestone (target sooner) is above dual-write.
    ids = cards.evaluate_all("cards => cards.map(card => card.id)")
    assert ids.index(f"card-{sync.pk}") < ids.index(f"card-{dualwrite.pk}")

    # She decides on dual-write inline, through the confirmation step.
    card = page.locator(f"#card-{dualwrite.pk}")
    page.evaluate("window.__marker = 'same page'")
    card.get_by_role("link", name=f"Decide on {dualwrite.key} as Product owner").click()
    expect(card.get_by_role("heading", name="Your decision as Product owner")).to_be_visible()
    if unmet:
        expect(card.locator(".decide-form .unmet")).to_contain_text(unmet[0])
        card.get_by_label("Approve with exceptions").check()
        comment = "Accepting the open items until cut-over; gaps found there block the cut-over."
        label = "Approve with exceptions"
    else:
        card.get_by_label("Approve", exact=True).check()
        comment = "Looks complete to me."
        label = "Approve"
    card.get_by_label("Comment").fill(comment)
    card.get_by_role("button", name="Review decision").click()
    expect(card.get_by_role("heading", name="Confirm your decision")).to_be_visible()
    expect(card).to_contain_text(f"You are about to record {label} as Product owner")
    assert not SignoffDecision.objects.filter(
        milestone=dualwrite, role__name="Product owner"
    ).exists()
    card.get_by_role("button", name=f"Record: {label}").click()
    expect(card.get_by_role("status")).to_contain_text("Recorded: Approved")
    assert page.evaluate("window.__marker") == "same page"
    decision = SignoffDecision.objects.get(milestone=dualwrite, role__name="Product owner")
    assert decision.outcome == SignoffOutcome.APPROVED
    assert decision.comment == comment
    assert decision.with_exceptions == bool(unmet)

    # The milestone page shows her approval, and every role has now approved.
    card.get_by_role("link", name=f"{dualwrite.key} {dualwrite.title}").click()
    expect(page).to_have_url(milestone_url(live_server, dualwrite) + "#signoffs")
    panel = page.locator("#signoffs")
    expect(product_owner_row(page, dualwrite)).to_contain_text("Approved")
    expect(product_owner_row(page, dualwrite)).to_contain_text("priya")
    expect(panel.get_by_role("heading", level=2)).to_contain_text("3 of 3 approved")
    if unmet:
        expect(panel.locator(".exceptions")).to_contain_text(comment)
    expect(panel.locator(".signoff-history")).to_contain_text(comment)
    assert Milestone.objects.get(pk=dualwrite.pk).status == "completed"

    # Bob, in his own browser context, edits a deliverable of that milestone.
    deliverable = dualwrite.deliverables.order_by("position", "pk").first()
    bob_context = browser.new_context()
    try:
        bob = bob_context.new_page()
        log_in(bob, live_server, "bob")
        bob.goto(milestone_url(live_server, dualwrite))
        deliverables = bob.locator("#deliverables")
        deliverables.get_by_role("link", name=f"Edit deliverable “{deliverable.title}”").click()
        expect(deliverables.get_by_role("heading", name="Edit deliverable")).to_be_visible()
        deliverables.get_by_label("Title").fill(f"{deliverable.title} (v2)")
        deliverables.get_by_role("button", name="Save").click()
        expect(
            deliverables.get_by_role("heading", name=f"{deliverable.title} (v2)", level=3)
        ).to_be_visible()
    finally:
        bob_context.close()

    # Priya's approval now shows stale on the milestone page; the milestone is open again.
    page.reload()
    row = product_owner_row(page, dualwrite)
    expect(row).to_contain_text("Awaiting")
    expect(row.locator(".stale")).to_contain_text("stale: approved")
    expect(page.locator("#signoffs .signoff-history .stale").first).to_be_visible()
    expect(page.locator("#signoffs").get_by_role("heading", level=2)).to_contain_text(
        "0 of 3 approved"
    )
    assert Milestone.objects.get(pk=dualwrite.pk).status == "in_progress"
    # And the milestone is back on her list, flagged stale.
    page.get_by_role("navigation", name="Account").get_by_role("link", name="My sign-offs").click()
    expect(page.locator(f"#card-{dualwrite.pk} .card-flags")).to_contain_text(
        "stale: the scope changed since your last decision"
    )
