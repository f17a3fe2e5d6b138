"""Sign-off pages: the panel on the milestone page, the two-step decision (with and without
HTMX), roles and holders, My sign-offs and its query budget, the receipt, the dashboard and
the milestone delete page."""

import datetime
import html
import re

import pytest
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Role, User
from milestones import services, signoffs
from milestones.models import (
    Activity,
    CriterionLevel,
    Milestone,
    MilestoneStatus,
    SignoffDecision,
    SignoffOutcome,
    SignoffRole,
    today,
)
from tests.factories import (
    add_member,
    grow_team,
    make_blocker,
    make_criterion,
    make_deliverable,
    make_milestone,
    make_plan,
    make_risk,
    make_status_update,
    make_team,
    make_user,
)

HX = {"HTTP_HX_REQUEST": "true"}
MY_SIGNOFFS_QUERY_BUDGET = 10
APPROVED = SignoffOutcome.APPROVED


# --- Helpers ---------------------------------------------------------------------------------


def page_url(m) -> str:
    return reverse("milestone", args=[m.team.slug, m.key])


def decide_url(m, role) -> str:
    return reverse("signoff_decide", args=[m.team.slug, m.key, role.pk])


def holder_url(m, role) -> str:
    return reverse("signoff_holder", args=[m.team.slug, m.key, role.pk])


def drop_url(m, role) -> str:
    return reverse("signoff_role_drop", args=[m.team.slug, m.key, role.pk])


def add_role_url(m) -> str:
    return reverse("signoff_role_add", args=[m.team.slug, m.key])


def receipt_url(m) -> str:
    return reverse("signoff_receipt", args=[m.team.slug, m.key])


MINE = reverse("my_signoffs")


def roles_of(m) -> dict[str, SignoffRole]:
    return {r.name: r for r in m.signoff_roles.active().select_related("holder")}


def hold(world, m=None, holders=None) -> dict[str, SignoffRole]:
    m = m or world.milestone
    holders = holders or {
        "Tech lead": world.admin,
        "Product owner": world.member,
        "Operations lead": world.viewer,
    }
    for name, role in roles_of(m).items():
        if name in holders:
            signoffs.set_holder(role, actor=world.admin, holder=holders[name])
    return roles_of(m)


def decide(m, role, outcome=APPROVED, comment="", with_exceptions=False):
    role = SignoffRole.objects.select_related("holder").get(pk=role.pk)
    return signoffs.decide(
        Milestone.objects.get(pk=m.pk),
        user=role.holder,
        role=role,
        outcome=outcome,
        comment=comment,
        with_exceptions=with_exceptions,
    )


def text(content) -> str:
    """Visible text, tags dropped, entities decoded and whitespace collapsed."""
    if isinstance(content, bytes):
        content = content.decode()
    content = re.sub(r"<(script|style)\b.*?</\1>", " ", content, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", content)).split())


def element(content, tag: str, id_: str) -> str:
    """The HTML of the `<tag id="id_">` element (the first closing tag of its kind ends it)."""
    if isinstance(content, bytes):
        content = content.decode()
    match = re.search(rf'<{tag}\b[^>]*\bid="{re.escape(id_)}".*?</{tag}>', content, re.S)
    assert match, f"no <{tag} id={id_}>"
    return match.group(0)


def panel(content) -> str:
    return element(content, "section", "signoffs")


def role_row(content, role) -> str:
    return text(element(content, "tr", f"signoff-role-{role.pk}"))


def card(content, m) -> str:
    return element(content, "article", f"card-{m.pk}")


BLOCK_TAGS = r"(?:div|details|ul|ol|table|blockquote|section|article|form|h[1-6]|p)"


def assert_no_blocks_in_paragraphs(content):
    """A browser closes a <p> at the first block element inside it, moving what follows out
    of the paragraph (and out of anything styled or located through it)."""
    if isinstance(content, bytes):
        content = content.decode()
    for paragraph in re.findall(r"<p\b[^>]*>(.*?)</p>", content, re.S):
        block = re.search(rf"<{BLOCK_TAGS}\b", paragraph)
        assert not block, f"a <{block.group(0)[1:]}> inside a <p>: {paragraph[:300]}"


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def governed(world):
    return hold(world)


@pytest.fixture
def unmet(world, governed):
    """world.milestone with an unmet must-criterion and a deliverable in review."""
    make_criterion(world.admin, milestone=world.milestone, text="Runbook reviewed")
    make_deliverable(world.milestone, world.admin, title="Queue worker", status="in_review")
    return governed


# --- The panel on the milestone page --------------------------------------------------------


def test_the_panel_shows_roles_holders_and_awaiting(world, client_for, governed):
    content = client_for(world.member).get(page_url(world.milestone)).content
    section = panel(content)
    assert "0 of 3 approved" in text(section)
    assert role_row(section, governed["Tech lead"]).startswith("Tech lead ada Awaiting")
    assert role_row(section, governed["Product owner"]).startswith("Product owner max Awaiting")
    assert "Operations lead vic Awaiting" in role_row(section, governed["Operations lead"])
    # Max holds the product owner role: he can decide for it and for nothing else.
    assert decide_url(world.milestone, governed["Product owner"]) in section
    assert decide_url(world.milestone, governed["Tech lead"]) not in section
    # Only admins see holder and role controls.
    assert holder_url(world.milestone, governed["Tech lead"]) not in section
    assert add_role_url(world.milestone) not in section
    assert "Decision history (0)" in text(section)
    assert "No decisions yet." in text(section)
    admin_section = panel(client_for(world.admin).get(page_url(world.milestone)).content)
    assert holder_url(world.milestone, governed["Tech lead"]) in admin_section
    assert drop_url(world.milestone, governed["Tech lead"]) in admin_section
    assert add_role_url(world.milestone) in admin_section


def test_the_panel_before_any_holder_and_without_roles(world, client_for):
    section = text(panel(client_for(world.admin).get(page_url(world.milestone)).content))
    assert "Nobody yet" in section
    assert "No role has a holder yet: give each role a holder" in section
    for role in roles_of(world.milestone).values():
        signoffs.drop_role(role, actor=world.admin)
    section = text(panel(client_for(world.admin).get(page_url(world.milestone)).content))
    assert "This milestone needs no sign-off. Add a role" in section


def test_the_panel_shows_decisions_stale_flags_history_and_exceptions(world, client_for, unmet):
    m = world.milestone
    tech = decide(
        m, unmet["Tech lead"], comment="Runbook after launch, agreed with ops", with_exceptions=True
    )
    ops = decide(m, unmet["Operations lead"], SignoffOutcome.REJECTED, "No on-call rota yet")
    content = client_for(world.member).get(page_url(m)).content
    section = panel(content)
    assert_no_blocks_in_paragraphs(section)
    exceptions = text(_exceptions_box(section))
    assert "Approved with exceptions" in exceptions
    assert "ada (Tech lead," in exceptions
    assert "Runbook after launch, agreed with ops" in exceptions
    assert "Approved with exceptions ada" in role_row(section, unmet["Tech lead"])
    assert "Rejected vic" in role_row(section, unmet["Operations lead"])
    assert "Product owner max Awaiting" in role_row(section, unmet["Product owner"])
    history = text(_history(section))
    assert "Decision history (2)" in history
    assert "vic as Operations lead: Rejected" in history
    assert "No on-call rota yet" in history
    assert "ada as Tech lead: Approved with exceptions" in history
    assert f"scope {tech.scope_hash[:12]}" in history
    # The reasons a plain approval is refused are listed under the table.
    assert "Before a plain approval" in text(section)
    assert "Must-criterion not met: Runbook reviewed" in text(section)
    assert "Deliverable not accepted: Queue worker (in review)" in text(section)
    assert "stale" not in history

    # The scope moves: both decisions go stale, and say so.
    services.update_object(
        Milestone.objects.get(pk=m.pk),
        actor=world.member,
        target_date=m.target_date + datetime.timedelta(days=3),
    )
    section = panel(client_for(world.member).get(page_url(m)).content)
    row = role_row(section, unmet["Tech lead"])
    assert "Awaiting stale: approved" in row
    assert "Awaiting stale: rejected" in role_row(section, unmet["Operations lead"])
    assert "0 of 3 approved" in text(section)
    assert text(_history(section)).count("stale") == 2
    assert "stale" in text(_exceptions_box(section))  # the exception stays, flagged stale
    assert f'id="decision-{tech.pk}"' in section and f'id="decision-{ops.pk}"' in section


def _exceptions_box(section: str) -> str:
    match = re.search(r'<div class="exceptions".*?</div>', section, re.S)
    assert match, "no exceptions box"
    return match.group(0)


def _history(section: str) -> str:
    match = re.search(r'<details class="signoff-history".*?</details>', section, re.S)
    assert match
    return match.group(0)


def test_the_panel_says_approved_when_all_roles_approve(world, client_for, governed):
    for role in governed.values():
        decide(world.milestone, role)
    content = client_for(world.member).get(page_url(world.milestone)).content
    assert "3 of 3 approved" in text(panel(content))
    assert 'class="exceptions"' not in panel(content)
    assert Milestone.objects.get(pk=world.milestone.pk).status == MilestoneStatus.COMPLETED


def test_the_panel_section_renders_alone_for_htmx(world, client_for, governed):
    url = reverse("milestone_section", args=[world.team.slug, world.milestone.key, "signoffs"])
    response = client_for(world.member).get(url, **HX)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="signoffs"')
    assert "<html" not in body


# --- Deciding: two steps, with and without HTMX -------------------------------------------------


def test_decide_with_htmx_reviews_then_records(world, client_for, governed):
    m, role = world.milestone, governed["Product owner"]
    client = client_for(world.member)
    url = decide_url(m, role)

    form = client.get(url, **HX)
    assert form.status_code == 200
    assert "Your decision as Product owner" in text(form.content)
    assert 'name="decision"' in form.content.decode()
    assert "<html" not in form.content.decode()

    review = client.post(url, {"decision": "approve", "comment": "Good to go"}, **HX)
    assert review.status_code == 200
    body = review.content.decode()
    assert "Confirm your decision" in text(body)
    assert "You are about to record Approve as Product owner" in text(body)
    assert 'name="confirmed" value="true"' in body
    assert '<input type="hidden" name="decision" value="approve">' in body
    assert '<input type="hidden" name="comment" value="Good to go">' in body
    assert "HX-Trigger" not in review.headers
    assert not SignoffDecision.objects.exists()

    done = client.post(
        url, {"decision": "approve", "comment": "Good to go", "confirmed": "true"}, **HX
    )
    assert done.status_code == 200
    assert "milestone-changed" in done.headers["HX-Trigger"]
    decision = SignoffDecision.objects.get()
    assert (decision.role_id, decision.outcome, decision.comment) == (
        role.pk,
        APPROVED,
        "Good to go",
    )
    assert decision.decided_by == world.member
    section = text(done.content)
    assert "1 of 3 approved" in section
    assert "Approved max" in role_row(done.content.decode(), role)
    # A double click on the confirmation records nothing more and says why.
    again = client.post(
        url, {"decision": "approve", "comment": "Good to go", "confirmed": "true"}, **HX
    )
    assert again.status_code == 200
    assert "This decision is already recorded for Product owner" in text(again.content)
    assert SignoffDecision.objects.count() == 1


def test_decide_without_htmx_redirects_after_recording(world, client_for, governed):
    m, role = world.milestone, governed["Tech lead"]
    client = client_for(world.admin)
    url = decide_url(m, role)
    page = client.get(url)
    assert page.status_code == 200 and "<html" in page.content.decode()
    assert "Your decision as Tech lead" in text(page.content)
    review = client.post(url, {"decision": "request_changes", "comment": "Add metrics"})
    assert review.status_code == 200
    assert "Confirm your decision" in text(review.content)
    assert "You are about to record Request changes as Tech lead" in text(review.content)
    done = client.post(
        url, {"decision": "request_changes", "comment": "Add metrics", "confirmed": "true"}
    )
    assert done.status_code == 302
    assert done.url == page_url(m) + "#signoffs"
    decision = SignoffDecision.objects.get()
    assert (decision.outcome, decision.comment) == (SignoffOutcome.CHANGES_REQUESTED, "Add metrics")
    assert Activity.objects.filter(verb="decided", actor=world.admin).count() == 1


def test_a_scope_change_between_review_and_confirmation_records_nothing(
    world, client_for, governed
):
    m, role = world.milestone, governed["Product owner"]
    client = client_for(world.member)
    url = decide_url(m, role)
    seen = Milestone.objects.get(pk=m.pk).scope_hash
    form = client.get(url, **HX).content.decode()
    assert f'<input type="hidden" name="scope" value="{seen}">' in form
    data = {"decision": "approve", "comment": "ok", "scope": seen}
    review = client.post(url, data, **HX).content.decode()
    assert "Confirm your decision" in text(review)
    assert f'<input type="hidden" name="scope" value="{seen}">' in review

    make_deliverable(m, world.admin, title="Slipped in meanwhile", status="accepted")
    refused = client.post(url, {**data, "confirmed": "true"}, **HX).content.decode()
    assert signoffs.SCOPE_MOVED in html.unescape(refused)
    assert "Your decision as Product owner" in text(refused)
    assert not SignoffDecision.objects.exists()
    # The review step spots it too; the form then carries the new scope.
    again = client.post(url, data, **HX).content.decode()
    assert signoffs.SCOPE_MOVED in html.unescape(again)
    now = Milestone.objects.get(pk=m.pk).scope_hash
    assert f'<input type="hidden" name="scope" value="{now}">' in again
    client.post(url, {**data, "scope": now}, **HX)
    client.post(url, {**data, "scope": now, "confirmed": "true"}, **HX)
    assert SignoffDecision.objects.get().scope_hash == now


def test_change_goes_back_to_the_form_with_the_input_kept(world, client_for, governed):
    url = decide_url(world.milestone, governed["Product owner"])
    response = client_for(world.member).post(
        url, {"decision": "reject", "comment": "Wrong market", "change": "1"}, **HX
    )
    body = response.content.decode()
    assert "Your decision as Product owner" in text(body)
    assert "Confirm your decision" not in text(body)
    assert re.search(r'<input[^>]*value="reject"[^>]*checked', body)
    assert "Wrong market</textarea>" in body
    assert not SignoffDecision.objects.exists()


def test_cancel_closes_the_form(world, client_for, governed):
    url = decide_url(world.milestone, governed["Product owner"])
    response = client_for(world.member).get(url, {"cancel": "1"}, **HX)
    assert "Your decision as" not in text(response.content)
    assert "0 of 3 approved" in text(response.content)


@pytest.mark.parametrize("decision", ["request_changes", "reject"])
def test_a_missing_comment_is_a_field_error(world, client_for, governed, decision):
    url = decide_url(world.milestone, governed["Product owner"])
    for confirmed in ("", "true"):
        response = client_for(world.member).post(
            url, {"decision": decision, "comment": "  ", "confirmed": confirmed}, **HX
        )
        body = response.content.decode()
        assert "Confirm your decision" not in text(body)
        field = re.search(
            r'<div class="field has-error wide">.*?<div class="form-actions">', body, re.S
        )
        assert field, body
        assert signoffs.COMMENT_REQUIRED in html.unescape(field.group(0))
    assert not SignoffDecision.objects.exists()


def test_unmet_reasons_appear_on_the_decision_field(world, client_for, unmet):
    url = decide_url(world.milestone, unmet["Product owner"])
    client = client_for(world.member)
    form = text(client.get(url, **HX).content)
    assert "A plain approval is refused until these are done" in form
    assert "Must-criterion not met: Runbook reviewed" in form
    for confirmed in ("", "true"):
        response = client.post(url, {"decision": "approve", "confirmed": confirmed}, **HX)
        body = response.content.decode()
        fieldset = re.search(
            r'<fieldset class="decision-choices has-error">.*?</fieldset>', body, re.S
        )
        assert fieldset, body
        errors = text(fieldset.group(0))
        assert "Approval is refused while the milestone is not done:" in errors
        assert "Must-criterion not met: Runbook reviewed" in errors
        assert "Deliverable not accepted: Queue worker (in review)" in errors
        assert 'class="form-errors"' not in body  # on the field, not at the top
    assert not SignoffDecision.objects.exists()

    # Approve with exceptions, naming them, goes through the confirmation and is recorded.
    missing = client.post(url, {"decision": "approve_with_exceptions"}, **HX)
    assert signoffs.EXCEPTIONS_NEED_COMMENT in html.unescape(missing.content.decode())
    comment = "Runbook after launch; worker review continues"
    review = client.post(url, {"decision": "approve_with_exceptions", "comment": comment}, **HX)
    assert "You are about to record Approve with exceptions as Product owner" in text(
        review.content
    )
    client.post(
        url, {"decision": "approve_with_exceptions", "comment": comment, "confirmed": "true"}, **HX
    )
    decision = SignoffDecision.objects.get()
    assert decision.with_exceptions and decision.comment == comment
    page = panel(client.get(page_url(world.milestone)).content)
    assert comment in text(_exceptions_box(page))


def test_an_unknown_decision_is_a_field_error(world, client_for, governed):
    url = decide_url(world.milestone, governed["Product owner"])
    response = client_for(world.member).post(
        url, {"decision": "shrug", "comment": "x", "confirmed": "true"}, **HX
    )
    assert response.status_code == 200
    assert "Select a valid choice" in text(response.content)
    assert not SignoffDecision.objects.exists()


def test_a_cancelled_milestone_offers_no_decision(world, client_for, governed):
    services.update_object(world.milestone, actor=world.admin, status=MilestoneStatus.CANCELLED)
    client = client_for(world.member)
    url = decide_url(world.milestone, governed["Product owner"])
    assert url not in panel(client.get(page_url(world.milestone)).content)
    response = client.post(url, {"decision": "approve", "confirmed": "true"}, **HX)
    assert "cancelled" in text(response.content)
    assert not SignoffDecision.objects.exists()


def test_only_the_holder_may_open_or_post_the_decision(world, client_for, client, governed):
    url = decide_url(world.milestone, governed["Product owner"])
    for user in (world.admin, world.viewer):
        client_for(user)
        assert client.get(url).status_code == 403
        assert client.post(url, {"decision": "approve", "confirmed": "true"}).status_code == 403
    client_for(world.outsider)
    assert client.post(url, {"decision": "approve", "confirmed": "true"}).status_code == 404
    client.logout()
    response = client.post(url, {"decision": "approve", "confirmed": "true"})
    assert response.status_code == 302 and reverse("accounts:login") in response.url
    assert not SignoffDecision.objects.exists()


def test_a_viewer_holding_a_role_can_decide(world, client_for, governed):
    url = decide_url(world.milestone, governed["Operations lead"])
    response = client_for(world.viewer).post(url, {"decision": "approve", "confirmed": "true"})
    assert response.status_code == 302
    assert SignoffDecision.objects.get().decided_by == world.viewer


def test_another_teams_sign_off_urls_are_not_found(world, client_for, governed):
    decide(world.milestone, governed["Tech lead"])
    m, role = world.milestone, governed["Tech lead"]
    client = client_for(world.outsider)
    for url in (decide_url(m, role), holder_url(m, role), add_role_url(m), receipt_url(m)):
        assert client.get(url).status_code == 404, url
    for url in (decide_url(m, role), holder_url(m, role), add_role_url(m), drop_url(m, role)):
        assert client.post(url, {"decision": "approve", "name": "X"}).status_code == 404, url
    # A role of another milestone through this milestone's URL: not found either.
    other = make_milestone(world.plan, world.admin)
    other_role = hold(world, other)["Product owner"]
    assert client_for(world.member).get(decide_url(m, other_role)).status_code == 404


# --- Roles and holders ----------------------------------------------------------------------


def test_members_cannot_change_holders_or_roles(world, client_for, governed):
    m, role = world.milestone, governed["Tech lead"]
    client = client_for(world.member)
    assert client.get(holder_url(m, role)).status_code == 403
    assert client.post(holder_url(m, role), {"holder": world.member.pk}).status_code == 403
    assert client.post(add_role_url(m), {"name": "Legal"}).status_code == 403
    assert client.post(drop_url(m, role)).status_code == 403
    client_for(world.viewer)
    assert client.post(holder_url(m, role), {"holder": world.viewer.pk}).status_code == 403
    assert SignoffRole.objects.get(pk=role.pk).holder == world.admin
    assert not SignoffRole.objects.filter(name="Legal").exists()


def test_an_admin_changes_a_holder_in_place_and_it_is_logged(world, client_for, governed):
    m, role = world.milestone, governed["Tech lead"]
    client = client_for(world.admin)
    form = client.get(holder_url(m, role), **HX)
    assert "Save holder" in text(form.content)
    response = client.post(holder_url(m, role), {"holder": world.member.pk}, **HX)
    assert response.status_code == 200
    assert "milestone-changed" in response.headers["HX-Trigger"]
    assert role_row(response.content.decode(), role).startswith("Tech lead max")
    assert SignoffRole.objects.get(pk=role.pk).holder == world.member
    entry = Activity.objects.filter(object_type="signoffrole", verb="updated").latest("pk")
    assert entry.actor == world.admin and entry.changes == {"holder": ["ada", "max"]}
    # Without HTMX: post/redirect/get.
    response = client.post(holder_url(m, role), {"holder": ""})
    assert response.status_code == 302 and response.url == page_url(m) + "#signoffs"
    assert SignoffRole.objects.get(pk=role.pk).holder is None


def test_the_holder_must_be_a_member_of_the_team(world, client_for, governed):
    m, role = world.milestone, governed["Tech lead"]
    response = client_for(world.admin).post(
        holder_url(m, role), {"holder": world.outsider.pk}, **HX
    )
    assert response.status_code == 200
    assert "Select a valid choice" in text(response.content)
    assert SignoffRole.objects.get(pk=role.pk).holder == world.admin


def test_an_admin_adds_and_drops_roles(world, client_for, governed):
    m = world.milestone
    client = client_for(world.admin)
    response = client.post(add_role_url(m), {"name": "Security", "holder": world.member.pk}, **HX)
    assert response.status_code == 200
    role = SignoffRole.objects.get(milestone=m, name="Security")
    assert role.holder == world.member
    assert role_row(response.content.decode(), role).startswith("Security max ✎ Awaiting")
    duplicate = client.post(add_role_url(m), {"name": "Security"}, **HX)
    assert "already has a sign-off role of that name" in text(duplicate.content)
    assert SignoffRole.objects.filter(milestone=m, name="Security").count() == 1

    response = client.post(drop_url(m, role), **HX)
    assert response.status_code == 200
    assert f"signoff-role-{role.pk}" not in response.content.decode()
    assert not SignoffRole.objects.filter(pk=role.pk).exists()
    logged = Activity.objects.filter(object_type="signoffrole", object_id=role.pk)
    assert set(logged.values_list("verb", flat=True)) == {"created", "removed"}


# --- Receipt ----------------------------------------------------------------------------------


def test_the_receipt_is_markdown_with_every_decision_and_hash(world, client_for, unmet):
    m = world.milestone
    first = decide(m, unmet["Tech lead"], comment="Runbook later", with_exceptions=True)
    second = decide(m, unmet["Operations lead"], SignoffOutcome.CHANGES_REQUESTED, "Need alerts")
    make_deliverable(m, world.member, title="Alerts")  # both go stale
    third = decide(m, unmet["Operations lead"], SignoffOutcome.REJECTED, "Still no alerts")
    response = client_for(world.viewer).get(receipt_url(m))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{m.key}-signoff-receipt.md"'
    body = response.content.decode()
    m.refresh_from_db()
    assert body.startswith(f"# Sign-off receipt: {m.key} {m.title}\n")
    assert f"- Current scope hash: `{m.scope_hash}`" in body
    assert "| Tech lead | ada | awaiting (last decision Approved is stale) |" in body
    assert "| Product owner | max | awaiting |" in body
    assert "| Operations lead | vic | Rejected " in body
    assert "### 1. Tech lead: Approved WITH EXCEPTIONS" in body
    assert "### 2. Operations lead: Changes requested" in body
    assert "### 3. Operations lead: Rejected" in body
    for decision in (first, second, third):
        assert f"- Record hash: `{decision.record_hash}`" in body
        assert f"- Previous record: `{decision.previous_hash}`" in body
    assert f"- Scope hash: `{first.scope_hash}` (stale)" in body
    assert f"- Scope hash: `{third.scope_hash}`\n" in body
    assert "  > Runbook later" in body and "  > Still no alerts" in body
    assert "- By: ada" in body


# --- Delete ---------------------------------------------------------------------------------------


def test_a_milestone_with_decisions_cannot_be_deleted_from_the_page(world, client_for, governed):
    m = world.milestone
    decide(m, governed["Tech lead"])
    client = client_for(world.admin)
    url = reverse("milestone_delete", args=[world.team.slug, m.key])
    page = client.get(url)
    assert "cannot be deleted: it has sign-off decisions" in text(page.content)
    assert "and its contents</button>" not in page.content.decode()
    response = client.post(url)
    assert response.status_code == 302 and response.url == page_url(m)
    assert any("has sign-off decisions" in message for message in messages_of(response))
    assert Milestone.objects.filter(pk=m.pk).exists()


def test_a_milestone_without_decisions_can_still_be_deleted(world, client_for, governed):
    url = reverse("milestone_delete", args=[world.team.slug, world.milestone.key])
    assert "and its contents</button>" in client_for(world.admin).get(url).content.decode()
    response = client_for(world.admin).post(url)
    assert response.status_code == 302
    assert not Milestone.objects.filter(pk=world.milestone.pk).exists()


# --- Dashboard ------------------------------------------------------------------------------


def test_the_dashboard_lists_the_sign_offs_i_owe(world, client_for, governed):
    m = world.milestone
    later = make_milestone(
        world.plan,
        world.admin,
        title="Later thing",
        target_date=today() + datetime.timedelta(days=40),
    )
    hold(world, later)
    url = reverse("dashboard", args=[world.team.slug])
    page = client_for(world.member).get(url).content.decode()
    owed = text(page.split("Sign-offs I owe", 1)[1].split("</ul>", 1)[0])
    assert owed.index(m.title) < owed.index("Later thing")
    assert "as Product owner" in owed
    assert "stale" not in owed
    decide(m, roles_of(m)["Product owner"])
    page = client_for(world.member).get(url).content.decode()
    owed = text(page.split("Sign-offs I owe", 1)[1].split("</ul>", 1)[0])
    assert m.title not in owed and "Later thing" in owed
    make_deliverable(m, world.admin)  # the approval goes stale: owed again, flagged
    page = client_for(world.member).get(url).content.decode()
    owed = text(page.split("Sign-offs I owe", 1)[1].split("</ul>", 1)[0])
    assert f"{m.key} {m.title} as Product owner · stale" in owed
    # Someone holding nothing owes nothing.
    assert (
        "Sign-offs I owe"
        not in client_for(world.outsider)
        .get(reverse("dashboard", args=[world.other_team.slug]))
        .content.decode()
    )


# --- My sign-offs -----------------------------------------------------------------------------


@pytest.fixture
def mine(world):
    """Max holds the product owner role on three milestones across two teams."""
    soon = world.milestone  # target +20 days
    hold(world, soon)
    m2 = make_milestone(
        world.plan,
        world.admin,
        title="Billing cut-over",
        target_date=today() + datetime.timedelta(days=5),
    )
    hold(world, m2)
    second_team = make_team("Mobile")
    add_member(second_team, world.member, Role.VIEWER)
    lead = add_member(second_team, make_user("lena"), Role.ADMIN)
    plan = make_plan(second_team, lead, title="App")
    m3 = make_milestone(
        plan, lead, title="Offline mode", target_date=today() + datetime.timedelta(days=9)
    )
    for role in roles_of(m3).values():
        signoffs.set_holder(
            role, actor=lead, holder=world.member if role.name == "Product owner" else lead
        )
    # Not awaiting max: someone else's role, a closed milestone, an ungoverned one.
    make_milestone(world.plan, world.admin, title="Nobody holds anything")
    closed = make_milestone(world.plan, world.admin, title="Cancelled one")
    hold(world, closed)
    services.update_object(closed, actor=world.admin, status=MilestoneStatus.CANCELLED)
    return {"soon": soon, "m2": m2, "m3": m3, "lead": lead}


def test_my_signoffs_lists_what_awaits_me_across_teams_by_target_date(world, client_for, mine):
    response = client_for(world.member).get(MINE)
    assert response.status_code == 200
    page = response.content.decode()
    title = r'<h2 id="card-\d+-title"><a [^>]*><span class="key">[^<]+</span> ([^<]+)</a>'
    titles = re.findall(title, page)
    assert titles == ["Billing cut-over", "Offline mode", "Export queue ready"]
    assert "Mobile · App" in text(card(page, mine["m3"]))
    assert 'aria-current="page"' in page.split("My sign-offs</a>")[0].rsplit("<a", 1)[1]
    # Two roles on one milestone: one card, a decision for each.
    signoffs.set_holder(
        roles_of(mine["m2"])["Operations lead"], actor=world.admin, holder=world.member
    )
    page = client_for(world.member).get(MINE).content.decode()
    assert page.count(f'id="card-{mine["m2"].pk}"') == 1
    both = text(card(page, mine["m2"]))
    assert "As Product owner : awaiting" in both and "As Operations lead : awaiting" in both
    assert "Showing the first" not in text(page)
    # Ada only holds the tech lead roles in Rocket.
    ada = text(client_for(world.admin).get(MINE).content)
    assert "Billing cut-over" in ada and "Offline mode" not in ada


def test_my_signoffs_shows_the_evidence(world, client_for, mine):
    m = mine["m2"]
    first = make_deliverable(m, world.admin, title="Ledger export", status="accepted")
    make_deliverable(m, world.admin, title="Invoice PDFs", status="in_progress")
    make_criterion(world.admin, deliverable=first, text="Totals match", checked=True)
    make_criterion(world.admin, milestone=m, text="Finance signed the totals", checked=True)
    make_criterion(world.admin, milestone=m, text="No double charges in the dry run")
    make_criterion(world.admin, milestone=m, text="Pretty emails", level=CriterionLevel.SHOULD)
    make_risk(m, world.admin, title="Rounding")
    make_risk(m, world.admin, title="Old", status="closed")
    make_blocker(m, world.admin, title="Waiting for the bank")
    make_status_update(m, world.admin, narrative="Old news", percent_complete=10)
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)
    make_status_update(
        m, world.member, narrative="Dry run next week", percent_complete=60, created_at=later
    )
    roles = roles_of(m)
    decide(m, roles["Tech lead"], comment="Dry run pending", with_exceptions=True)
    decide(m, roles["Operations lead"], SignoffOutcome.CHANGES_REQUESTED, "Need a runbook")

    page = client_for(world.member).get(MINE).content
    assert_no_blocks_in_paragraphs(page)
    content = text(card(page, m))
    assert "1 of 2 must-criteria met" in content
    assert "1 of 1 acceptance criteria met" in content
    assert "1 of 2 deliverables accepted" in content
    assert "1 open risk" in content and "1 open blocker" in content
    assert "Unmet must-criteria No double charges in the dry run" in content
    assert "Pretty emails" not in content
    assert "Dry run next week" in content and "60%" in content and "Old news" not in content
    assert "Tech lead (ada): Approved with exceptions" in content
    assert "Operations lead (vic): Changes requested" in content
    assert "As Product owner : awaiting your decision" in content.replace("Owner:", "")
    assert "stale" not in content.replace("stale flag", "")


def test_my_signoffs_flags_stale_and_drops_decided_milestones(world, client_for, mine):
    m = mine["soon"]
    decide(m, roles_of(m)["Product owner"])
    page = client_for(world.member).get(MINE).content.decode()
    assert f'id="card-{m.pk}"' not in page
    services.update_object(
        Milestone.objects.get(pk=m.pk), actor=world.admin, title="Export queue live"
    )
    # With health reasons the card shows them in a <details> next to the flags.
    reason = {"code": "behind_schedule", "health": "at_risk", "message": "Behind", "link": ""}
    Milestone.objects.filter(pk=m.pk).update(health="at_risk", health_reasons=[reason])
    page = client_for(world.member).get(MINE).content.decode()
    assert_no_blocks_in_paragraphs(page)
    flags = re.search(r'<div class="card-flags">.*?</div>\s*</header>', card(page, m), re.S)
    assert "stale: the scope changed since your last decision" in text(flags.group(0))
    assert "stale:" not in text(card(page, mine["m2"]))


def test_my_signoffs_empty_state(world, client_for):
    page = text(client_for(world.member).get(MINE).content)
    assert "Nothing awaits your sign-off." in page
    response = client_for(world.outsider).get(MINE)
    assert "Nothing awaits your sign-off." in text(response.content)


def test_my_signoffs_needs_a_login(client):
    response = client.get(MINE)
    assert response.status_code == 302 and reverse("accounts:login") in response.url


def test_deciding_inline_from_my_signoffs_with_htmx(world, client_for, mine):
    m = mine["m2"]
    role = roles_of(m)["Product owner"]
    client = client_for(world.member)
    url = decide_url(m, role)
    page = client.get(MINE).content.decode()
    assert f'hx-get="{url}?from=mine"' in card(page, m)

    form = client.get(url, {"from": "mine"}, **HX).content.decode()
    assert form.lstrip().startswith(f'<article class="panel signoff-card" id="card-{m.pk}"')
    assert "Your decision as Product owner" in text(form)
    assert '<input type="hidden" name="from" value="mine">' in form
    assert f'hx-post="{url}?from=mine"' in form

    review = client.post(url, {"from": "mine", "decision": "reject", "comment": "Too risky"}, **HX)
    body = review.content.decode()
    assert body.lstrip().startswith(f'<article class="panel signoff-card" id="card-{m.pk}"')
    assert "Confirm your decision" in text(body)
    assert '<input type="hidden" name="from" value="mine">' in body
    assert not SignoffDecision.objects.filter(milestone=m).exists()

    empty = client.post(url, {"from": "mine", "decision": "reject", "confirmed": "true"}, **HX)
    assert signoffs.COMMENT_REQUIRED in html.unescape(empty.content.decode())
    done = client.post(
        url,
        {"from": "mine", "decision": "reject", "comment": "Too risky", "confirmed": "true"},
        **HX,
    )
    assert done.status_code == 200
    assert "milestone-changed" in done.headers["HX-Trigger"]
    assert "Recorded: Rejected as Product owner." in text(done.content)
    assert "As Product owner : Rejected" in text(done.content)
    decision = SignoffDecision.objects.get(milestone=m)
    assert (decision.outcome, decision.comment) == (SignoffOutcome.REJECTED, "Too risky")
    # It no longer awaits max.
    assert f'id="card-{m.pk}"' not in client.get(MINE).content.decode()


def test_deciding_from_my_signoffs_without_htmx(world, client_for, mine):
    m = mine["m3"]
    role = roles_of(m)["Product owner"]
    client = client_for(world.member)
    url = decide_url(m, role)
    form = client.get(url, {"from": "mine"})
    assert "<html" in form.content.decode() and "My sign-offs" in text(form.content)
    review = client.post(url, {"from": "mine", "decision": "approve", "comment": ""})
    assert "Confirm your decision" in text(card(review.content, m))
    done = client.post(url, {"from": "mine", "decision": "approve", "confirmed": "true"})
    assert done.status_code == 302 and done.url == MINE
    assert SignoffDecision.objects.get(milestone=m).outcome == APPROVED


def _count(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(MINE)
    assert response.status_code == 200
    return len(queries), response.content.decode()


def test_my_signoffs_query_count_does_not_grow_with_the_data(
    world, client, django_assert_max_num_queries
):
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    priya = User.objects.get(username="priya")
    alice = User.objects.get(username="alice")
    omar = User.objects.get(username="omar")
    demo = priya.memberships.get().team
    client.force_login(priya)
    demo_awaiting = signoffs.awaiting_roles(priya).count()
    demo_queries, page = _count(client)
    assert page.count('class="panel signoff-card"') == demo_awaiting > 2

    # 20×: bulk milestones in the demo team (a third of them completed), each open one with
    # the three roles held and the tech lead's approval (with exceptions) on every other one;
    # and a second team of priya's.
    demo_size = Milestone.objects.filter(team=demo).count()
    grow_team(demo, alice, plans=-(-19 * demo_size // 10), milestones_per_plan=10)
    assert Milestone.objects.filter(team=demo).count() >= 20 * demo_size
    grown = list(
        Milestone.objects.filter(team=demo, key__startswith="BLK-").exclude(status="completed")
    )
    holders = {"Tech lead": alice, "Product owner": priya, "Operations lead": omar}
    SignoffRole.objects.bulk_create(
        SignoffRole(milestone=m, name=name, holder=holder, position=i)
        for m in grown
        for i, (name, holder) in enumerate(holders.items())
    )
    for m in grown[::2]:
        decide(m, m.signoff_roles.get(name="Tech lead"), comment="Known gaps", with_exceptions=True)
    elsewhere = make_team("Elsewhere too")
    add_member(elsewhere, priya, Role.MEMBER)
    grow_team(elsewhere, alice, plans=3, milestones_per_plan=10)
    extra = Milestone.objects.filter(team=elsewhere).exclude(status="completed")
    SignoffRole.objects.bulk_create(
        SignoffRole(milestone=m, name="PO", holder=priya) for m in extra
    )
    twenty_times = signoffs.awaiting_roles(priya).count()
    assert twenty_times > 10 * demo_awaiting and twenty_times > signoffs_view_limit()

    grown_queries, page = _count(client)
    print(f"my sign-offs queries: demo {demo_queries}, 20x {grown_queries}")
    assert demo_queries == grown_queries <= MY_SIGNOFFS_QUERY_BUDGET
    with django_assert_max_num_queries(MY_SIGNOFFS_QUERY_BUDGET):
        client.get(MINE)
    cards = page.count('class="panel signoff-card"')
    assert cards == min(twenty_times, signoffs_view_limit())
    assert f"Showing the first {signoffs_view_limit()}." in text(page)
    # The most urgent come first, whatever the page cut-off.
    shown = [
        int(pk) for pk in re.findall(r'<article class="panel signoff-card" id="card-(\d+)"', page)
    ]
    by_urgency = list(
        Milestone.objects.filter(pk__in=signoffs.awaiting_roles(priya).values("milestone_id"))
        .order_by("target_date", "key")
        .values_list("pk", flat=True)[: signoffs_view_limit()]
    )
    assert shown == by_urgency


def signoffs_view_limit() -> int:
    from milestones.views.signoffs import MINE_LIMIT

    return MINE_LIMIT
