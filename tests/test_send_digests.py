"""The weekly digest (notifications/digest.py) and `manage.py send_digests`: what a digest
holds, how it reads, who is due when (time zones, chosen weekday and hour), once per ISO week,
empty weeks, and constant queries."""

import datetime
from io import StringIO

import pytest
import time_machine
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Membership, Role, User
from milestones import signoffs
from milestones.models import (
    ForecastShift,
    Health,
    HealthTransition,
    Milestone,
    MilestoneStatus,
    Plan,
    PlanStatus,
    Stakeholder,
    StatusUpdate,
)
from notifications import digest, unsubscribe
from notifications.models import (
    DeliveryState,
    EmailOptOut,
    EmptyDigest,
    Message,
    MessageKind,
    NotificationPreferences,
)
from tests.factories import (
    add_member,
    grow_team,
    make_blocker,
    make_milestone,
    make_plan,
    make_risk,
    make_status_update,
    make_team,
    make_user,
)

SITE = "http://127.0.0.1:8000"
UTC = datetime.UTC
# A Monday, 09:00 UTC: every UTC user's default digest hour (08:00) has passed.
NOW = datetime.datetime(2026, 11, 23, 9, tzinfo=UTC)
TODAY = NOW.date()
DAY = datetime.timedelta(days=1)


@pytest.fixture(autouse=True)
def frozen_clock():
    """Everything, fixtures included, happens on Monday 23 Nov 2026 unless a test moves on."""
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture(autouse=True)
def site_url(settings):
    settings.SITE_URL = SITE


def digests(**filters):
    return Message.objects.filter(kind=MessageKind.DIGEST, **filters)


def set_prefs(user, **fields) -> NotificationPreferences:
    prefs, _ = NotificationPreferences.objects.update_or_create(user=user, defaults=fields)
    return prefs


def labels(lines) -> list[str]:
    return [line.label for line in lines]


def _milestone(plan, actor, title, **fields):
    fields.setdefault("target_date", TODAY + 30 * DAY)
    return make_milestone(plan, actor, title=title, **fields)


class Rich:
    """Ada's week: something for every section, plus things that must stay out."""

    def __init__(self, world):
        self.world = world
        ada, team = world.admin, world.team
        self.ada = ada
        self.plan = world.plan
        self.billing = make_plan(team, ada, title="Billing <v2>")
        muted = make_plan(team, ada, title="Muted plan")
        self.kept_muted = make_plan(team, ada, title="Muted but a stakeholder")
        archived = make_plan(team, ada, title="Old plan", status=PlanStatus.ARCHIVED)
        prefs = set_prefs(ada)
        prefs.muted_plans.set([muted, self.kept_muted])
        Stakeholder.objects.create(plan=self.kept_muted, user=ada, gets_digest=True)

        def bad(plan, title, health, reasons):
            m = _milestone(plan, ada, title, owner=world.member)
            Milestone.objects.filter(pk=m.pk).update(health=health, health_reasons=reasons)
            return m

        self.off = bad(
            self.plan,
            "Queue <off>",
            Health.OFF_TRACK,
            [{"code": "overdue", "health": "off_track", "message": "Target passed.", "link": ""}],
        )
        self.risky = bad(
            self.billing,
            "Invoices at risk",
            Health.AT_RISK,
            [{"code": "x", "health": "at_risk", "message": "Progress is behind.", "link": ""}],
        )
        self.kept = bad(self.kept_muted, "Kept off track", Health.OFF_TRACK, [])
        bad(muted, "Muted off track", Health.OFF_TRACK, [])
        bad(archived, "Archived off track", Health.OFF_TRACK, [])
        outsider_plan = make_plan(world.other_team, world.outsider, title="Elsewhere plan")
        m = _milestone(outsider_plan, world.outsider, "Secret elsewhere")
        Milestone.objects.filter(pk=m.pk).update(health=Health.OFF_TRACK)

        self.due = _milestone(self.plan, ada, "Due soon", target_date=TODAY + 5 * DAY)
        _milestone(self.plan, ada, "Due later", target_date=TODAY + 15 * DAY)
        self.done = _milestone(self.billing, ada, "Done this week")
        Milestone.objects.filter(pk=self.done.pk).update(
            status=MilestoneStatus.COMPLETED, completed_on=TODAY - 3 * DAY
        )
        old = _milestone(self.billing, ada, "Done long ago")
        Milestone.objects.filter(pk=old.pk).update(
            status=MilestoneStatus.COMPLETED, completed_on=TODAY - 10 * DAY
        )

        self.slipped = _milestone(self.plan, ada, "Slipped five")
        back_and_forth = _milestone(self.plan, ada, "Back and forth")

        def shift(m, before, after, days_ago, cause=""):
            ForecastShift.objects.create(
                milestone=m,
                previous_finish=before,
                new_finish=after,
                cause=cause,
                created_at=NOW - days_ago * DAY,
            )

        dec1, dec4, dec6 = (datetime.date(2026, 12, d) for d in (1, 4, 6))
        shift(self.slipped, dec1, dec4, 3, "MLS-9 is forecast to finish later")
        shift(self.slipped, dec4, dec6, 1, "progress, dates or status changed")
        shift(back_and_forth, dec1, dec4, 4)
        shift(back_and_forth, dec4, dec1, 2)
        shift(self.due, dec1, dec6, 9)  # last week

        self.better = _milestone(self.plan, ada, "Got better")

        def transition(m, frm, to, days_ago):
            HealthTransition.objects.create(
                milestone=m, from_health=frm, to_health=to, created_at=NOW - days_ago * DAY
            )

        transition(self.better, Health.OFF_TRACK, Health.AT_RISK, 5)
        transition(self.better, Health.AT_RISK, Health.ON_TRACK, 2)
        transition(self.off, Health.ON_TRACK, Health.OFF_TRACK, 2)  # worse: not "improved"
        transition(self.due, Health.AT_RISK, Health.ON_TRACK, 8)  # last week

        with time_machine.travel(NOW - 2 * DAY, tick=False):
            self.blocker = make_blocker(self.off, ada, title="Waiting on <legal>")
            self.risk = make_risk(self.risky, ada, title="Vendor late", likelihood="high")
        with time_machine.travel(NOW - 9 * DAY, tick=False):
            make_blocker(self.off, ada, title="Old blocker")
            make_risk(self.risky, ada, title="Old risk")

        # Needs Ada's action: a sign-off she holds, and an update she owes.
        role = self.due.signoff_roles.get(name="Product owner")
        signoffs.set_holder(role, actor=ada, holder=ada)
        with time_machine.travel(NOW - 9 * DAY, tick=False):
            self.owed = _milestone(
                self.billing, ada, "Update owed", owner=ada, status=MilestoneStatus.IN_PROGRESS
            )
            make_status_update(self.owed, ada)


@pytest.fixture
def rich(world):
    return Rich(world)


# --- What a digest holds ----------------------------------------------------------------------


def test_the_digest_has_every_section(rich):
    built = digest.build_digest(rich.ada)

    assert labels(built.needs_action) == [
        f"{rich.due.key} Due soon",
        f"{rich.owed.key} Update owed",
    ]
    assert "your sign-off as Product owner: awaiting you" in built.needs_action[0].detail
    assert "last status update 9 days ago; the team asks for one every 7 days" in (
        built.needs_action[1].detail
    )
    assert labels(built.off_track) == [
        f"{rich.off.key} Queue <off>",
        f"{rich.kept.key} Kept off track",
    ]
    assert built.off_track[0].notes == ["Target passed."]
    assert labels(built.at_risk) == [f"{rich.risky.key} Invoices at risk"]
    assert built.at_risk[0].notes == ["Progress is behind."]
    assert labels(built.due_soon) == [f"{rich.due.key} Due soon"]
    assert built.due_soon[0].detail.startswith("due 28 Nov 2026 (in 5 days); on track")
    assert labels(built.completed) == [f"{rich.done.key} Done this week"]
    assert labels(built.slipped) == [f"{rich.slipped.key} Slipped five"]
    assert built.slipped[0].detail == "forecast finish 5 days later, now 6 Dec 2026"
    assert built.slipped[0].notes == ["progress, dates or status changed"]
    assert labels(built.improved) == [f"{rich.better.key} Got better"]
    assert built.improved[0].detail == "at risk → on track"
    assert labels(built.new_blockers) == ["Waiting on <legal>"]
    assert labels(built.new_risks) == ["Vendor late"]
    assert "score 6 (likelihood high, impact medium); no mitigation yet" in (
        built.new_risks[0].detail
    )
    assert built.counts == {
        "needs_action": 2,
        "off_track": 2,
        "at_risk": 1,
        "due_soon": 1,
        "completed": 1,
        "slipped": 1,
        "improved": 1,
        "new_blockers": 1,
        "new_risks": 1,
    }
    assert not built.is_empty
    assert built.week == "2026-W48"


def test_muted_archived_and_other_teams_plans_stay_out(rich):
    built = digest.build_digest(rich.ada)
    titles = {plan.title for plan in built.plans}
    assert "Muted plan" not in titles and "Old plan" not in titles
    assert "Muted but a stakeholder" in titles  # a stakeholder with gets_digest keeps it
    everything = " ".join(line.label for section in built.sections for line in section.lines)
    assert "Muted off track" not in everything
    assert "Archived off track" not in everything
    assert "Secret elsewhere" not in everything


def test_plans_narrow_the_digest_down(rich):
    built = digest.build_digest(rich.ada, plans=Plan.objects.filter(pk=rich.billing.pk))
    assert [plan.pk for plan in built.plans] == [rich.billing.pk]
    assert labels(built.off_track) == []
    assert labels(built.at_risk) == [f"{rich.risky.key} Invoices at risk"]
    assert labels(built.needs_action) == [f"{rich.owed.key} Update owed"]


def test_a_plan_of_another_team_cannot_be_slipped_in(rich):
    elsewhere = Plan.objects.filter(team=rich.world.other_team)
    built = digest.build_digest(rich.ada, plans=elsewhere)
    assert built.plans == [] and built.is_empty


def test_dates_and_the_week_are_the_users_own(rich):
    sunday_evening = datetime.datetime(2026, 11, 22, 20, tzinfo=UTC)  # Monday 09:00 in Auckland
    rich.ada.time_zone = "Pacific/Auckland"
    built = digest.build_digest(rich.ada, now=sunday_evening)
    assert built.week == "2026-W48"
    assert built.due_soon[0].detail.startswith("due 28 Nov 2026 (in 5 days)")
    rich.ada.time_zone = "UTC"
    built = digest.build_digest(rich.ada, now=sunday_evening)
    assert built.week == "2026-W47"
    assert built.due_soon[0].detail.startswith("due 28 Nov 2026 (in 6 days)")


def test_the_week_is_the_seven_days_up_to_now(rich):
    later = digest.build_digest(rich.ada, now=NOW + 4 * DAY)
    assert labels(later.completed) == []  # completed 7 days before
    # Only the second shift is still inside the week: 4 → 6 December.
    assert later.slipped[0].detail == "forecast finish 2 days later, now 6 Dec 2026"
    assert labels(later.improved) == [f"{rich.better.key} Got better"]


def test_a_stakeholder_address_gets_the_plans_they_follow(rich):
    Stakeholder.objects.create(plan=rich.billing, email="Board@Client.example")
    Stakeholder.objects.create(plan=rich.plan, email="board@client.example", gets_digest=False)
    built = digest.build_stakeholder_digest("board@client.example")
    assert [plan.pk for plan in built.plans] == [rich.billing.pk]
    assert built.needs_action == []
    assert labels(built.at_risk) == [f"{rich.risky.key} Invoices at risk"]
    assert labels(built.completed) == [f"{rich.done.key} Done this week"]
    assert built.recipient_key == "email:board@client.example"


# --- How it reads -----------------------------------------------------------------------------


def test_the_rendered_digest_summarises_and_links_back(rich):
    rendered = digest.render_digest(digest.build_digest(rich.ada))

    assert rendered.subject == "Milepost weekly: 2 need your action, 2 off track, 1 at risk"
    text, html = rendered.text, rendered.html
    assert "Your Milepost week up to Monday 23 November 2026 (UTC)." in text
    assert "NEEDS YOUR ACTION (2)" in text and "OFF TRACK (2)" in text
    assert f"- {rich.off.key} Queue <off> [{rich.plan.key} {rich.plan.title}]" in text
    assert "  * Target passed." in text
    assert f"{SITE}/t/{rich.world.team.slug}/m/{rich.off.key}/" in text
    assert f"{SITE}/signoffs/" in text
    assert f"{SITE}/t/{rich.world.team.slug}/m/{rich.blocker.milestone.key}/#blocker-" in text
    assert "Waiting on <legal>" in text
    assert f"{rich.billing.key} Billing <v2>: {SITE}/t/{rich.world.team.slug}/plans/" in text

    assert "Queue &lt;off&gt;" in html and "Waiting on &lt;legal&gt;" in html
    assert "Billing &lt;v2&gt;" in html and "<legal>" not in html
    assert '<h2 style="font-size:16px;margin:20px 0 8px;' in html
    assert f'href="{SITE}/t/{rich.world.team.slug}/m/{rich.off.key}/"' in html


def test_the_digest_carries_a_working_unsubscribe_link(rich):
    rendered = digest.render_digest(digest.build_digest(rich.ada))
    url = rendered.headers["List-Unsubscribe"].strip("<>")
    assert rendered.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = url.rstrip("/").rsplit("/", 1)[-1]
    assert unsubscribe.read_token(token) == (f"user:{rich.ada.pk}", "digest")
    assert f"Stop the weekly digest: {url}" in rendered.text
    assert url in rendered.html
    assert f"{SITE}/notifications/" in rendered.text


def test_an_empty_week_reads_as_such(world):
    loner = add_member(make_team("Quiet"), make_user("quinn"))
    built = digest.build_digest(loner)
    assert built.is_empty
    rendered = digest.render_digest(built)
    assert rendered.subject == "Milepost weekly: nothing needs you this week"
    assert "Nothing needs you this week" in rendered.text
    assert "You follow no open plans." in rendered.text


def test_long_sections_are_cut_with_a_link_to_the_rest(world):
    for n in range(digest.SECTION_LIMIT + 3):
        _milestone(world.plan, world.admin, f"Soon {n}", target_date=TODAY + 2 * DAY)
    built = digest.build_digest(world.admin)
    assert built.counts["due_soon"] == digest.SECTION_LIMIT + 3
    rendered = digest.render_digest(built)
    assert f"DUE IN THE NEXT 14 DAYS ({digest.SECTION_LIMIT + 3})" in rendered.text
    assert "... and 3 more: " in rendered.text
    assert "Soon 22" not in rendered.text  # the last three are behind the link


# --- Constant queries -------------------------------------------------------------------------


def _digest_queries(user) -> int:
    with CaptureQueriesContext(connection) as captured:
        digest.render_digest(digest.build_digest(user))
    return len(captured.captured_queries)


def test_building_and_rendering_a_digest_takes_constant_queries(
    rich, django_assert_max_num_queries
):
    small = _digest_queries(rich.ada)
    with django_assert_max_num_queries(10):
        digest.render_digest(digest.build_digest(rich.ada))

    # Ten times the plans, milestones, blockers and risks, and a second team of Ada's.
    grow_team(rich.world.team, rich.ada, plans=10, milestones_per_plan=10)
    second = make_team("Second")
    Membership.objects.create(team=second, user=rich.ada, role=Role.ADMIN)
    grow_team(second, rich.ada, plans=5, milestones_per_plan=10)
    for milestone in Milestone.objects.filter(plan__title__startswith="Bulk")[:40]:
        ForecastShift.objects.create(
            milestone=milestone,
            previous_finish=TODAY,
            new_finish=TODAY + 2 * DAY,
            created_at=NOW - DAY,
        )
        HealthTransition.objects.create(
            milestone=milestone, from_health="off_track", to_health="on_track", created_at=NOW
        )
    large = digest.build_digest(rich.ada)
    assert len(large.plans) == 3 + 10 + 5
    assert large.counts["new_blockers"] > 100 and large.counts["slipped"] == 41
    with django_assert_max_num_queries(10):
        digest.render_digest(digest.build_digest(rich.ada))
    assert _digest_queries(rich.ada) == small


def test_recipients_of_the_same_plans_share_the_plan_sections_in_a_run(
    rich, django_assert_num_queries
):
    shared = {}
    first = digest.build_digest(rich.world.member, shared=shared)
    with django_assert_num_queries(3):  # followed plans, sign-offs, status updates owed
        second = digest.build_digest(rich.world.viewer, shared=shared)
    assert second.counts == first.counts
    assert labels(second.off_track) == labels(first.off_track)
    # Ada mutes plans, so she follows others: her sections are her own.
    assert digest.build_digest(rich.ada, shared=shared).counts["off_track"] == 2
    assert first.counts["off_track"] == 3  # Max mutes nothing


# --- Who is due, when -------------------------------------------------------------------------


@pytest.fixture
def travellers(world):
    """Two people on the far sides of the date line, with Monday 08:00 defaults."""
    team = world.team
    aroha = add_member(team, make_user("aroha", time_zone="Pacific/Auckland"))
    luis = add_member(team, make_user("luis", time_zone="America/Los_Angeles"))
    return aroha, luis


def due_names(moment) -> set[str]:
    return {
        recipient.user.username if recipient.user else recipient.email
        for recipient in digest.due_recipients(moment)
    }


def run(moment, **kwargs):
    with time_machine.travel(moment, tick=False):
        return digest.queue_due_digests(**kwargs)


def test_each_user_is_due_at_monday_eight_in_their_own_time_zone(world, travellers):
    aroha, luis = travellers
    everyone_else = {"ada", "max", "vic", "olga"}
    # Last week's digests went out on Monday 16 November; everyone is up to date.
    run(datetime.datetime(2026, 11, 16, 17, tzinfo=UTC))
    assert set(digests().values_list("dedupe_key", flat=True)) == {"2026-W47"}

    # Auckland (UTC+13) reaches Monday 08:00 at 19:00 UTC on Sunday.
    assert due_names(datetime.datetime(2026, 11, 22, 18, 59, tzinfo=UTC)) == set()
    assert due_names(datetime.datetime(2026, 11, 22, 19, 0, tzinfo=UTC)) == {"aroha"}
    run(datetime.datetime(2026, 11, 22, 19, 5, tzinfo=UTC))
    assert digests(recipient_user=aroha, dedupe_key="2026-W48").exists()

    # The UTC users at 08:00 UTC, Los Angeles (UTC-8) at 16:00 UTC.
    assert due_names(datetime.datetime(2026, 11, 23, 8, tzinfo=UTC)) == everyone_else
    run(datetime.datetime(2026, 11, 23, 8, tzinfo=UTC))
    assert due_names(datetime.datetime(2026, 11, 23, 15, 59, tzinfo=UTC)) == set()
    assert due_names(datetime.datetime(2026, 11, 23, 16, 0, tzinfo=UTC)) == {"luis"}
    run(datetime.datetime(2026, 11, 23, 16, tzinfo=UTC))
    assert digests(recipient_user=luis, dedupe_key="2026-W48").exists()

    # Once per ISO week: nobody is due again until next week.
    assert due_names(datetime.datetime(2026, 11, 29, 18, 59, tzinfo=UTC)) == set()
    assert digests(dedupe_key="2026-W48").count() == 6


def test_the_chosen_weekday_and_hour_count(world):
    berliner = add_member(world.team, make_user("bert", time_zone="Europe/Berlin"))
    set_prefs(berliner, digest_weekday=4, digest_hour=17)  # Friday 17:00 CET = 16:00 UTC
    assert "bert" not in due_names(NOW)
    assert "bert" not in due_names(datetime.datetime(2026, 11, 27, 15, 59, tzinfo=UTC))
    assert "bert" in due_names(datetime.datetime(2026, 11, 27, 16, 0, tzinfo=UTC))
    assert "bert" in due_names(datetime.datetime(2026, 11, 29, 22, 0, tzinfo=UTC))  # still W48
    records = run(datetime.datetime(2026, 11, 27, 16, 0, tzinfo=UTC), user=berliner)
    assert records[0].queued
    assert "bert" not in due_names(datetime.datetime(2026, 11, 29, 22, 0, tzinfo=UTC))


def test_nobody_without_the_digest_an_address_or_a_team_is_due(world):
    set_prefs(world.member, digest_enabled=False)
    User.objects.filter(pk=world.viewer.pk).update(email="")
    make_user("teamless")
    User.objects.filter(pk=world.outsider.pk).update(is_active=False)
    assert due_names(NOW) == {"ada"}


def test_stakeholder_addresses_are_due_monday_eight_site_time(world, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    Stakeholder.objects.create(plan=world.plan, email="Board@Client.example")
    Stakeholder.objects.create(plan=world.plan, email="board@client.example")  # same person
    Stakeholder.objects.create(plan=world.plan, email="left@client.example")
    Stakeholder.objects.create(plan=world.plan, email="quiet@client.example", gets_digest=False)
    Stakeholder.objects.create(plan=world.plan, email=world.member.email)  # has an account
    EmailOptOut.objects.create(email="left@client.example", kind=MessageKind.DIGEST)
    # Monday 08:00 in Berlin is 07:00 UTC.
    assert "board@client.example" not in due_names(
        datetime.datetime(2026, 11, 23, 6, 59, tzinfo=UTC)
    )
    due = due_names(datetime.datetime(2026, 11, 23, 7, 0, tzinfo=UTC))
    assert {name for name in due if "@" in name} == {"board@client.example"}

    records = run(datetime.datetime(2026, 11, 23, 7, 0, tzinfo=UTC))
    mail = digests().get(recipient_email="board@client.example")
    assert mail.recipient_key == "email:board@client.example"
    assert mail.dedupe_key == "2026-W48" and mail.team is None
    assert "Choose what Milepost e-mails you" not in mail.body_text
    assert "because you are listed as a stakeholder of these plans" in mail.body_text
    assert any(r.recipient == "board@client.example" and r.queued for r in records)


def test_finding_who_is_due_takes_a_few_queries_for_many_people(
    world, django_assert_max_num_queries
):
    Stakeholder.objects.create(plan=world.plan, email="board@client.example")

    def add_people(n):
        start = User.objects.count()
        users = User.objects.bulk_create(
            User(username=f"bulk{start + i}", email=f"bulk{start + i}@example.com")
            for i in range(n)
        )
        Membership.objects.bulk_create(Membership(team=world.team, user=u) for u in users)
        NotificationPreferences.objects.bulk_create(
            NotificationPreferences(user=u, digest_hour=7) for u in users[: n // 2]
        )

    add_people(10)
    with django_assert_max_num_queries(4):
        small = digest.due_recipients(NOW)
    add_people(1000)
    with django_assert_max_num_queries(4):
        large = digest.due_recipients(NOW)
    assert len(small) == 4 + 10 + 1 and len(large) == 4 + 1010 + 1


# --- Queueing ---------------------------------------------------------------------------------


def test_queueing_writes_one_digest_per_recipient_and_week(world):
    records = digest.queue_due_digests()
    assert {r.recipient for r in records} == {
        world.admin.email,
        world.member.email,
        world.viewer.email,
        world.outsider.email,
    }
    assert all(r.queued for r in records)
    assert digests().count() == 4
    assert digest.queue_due_digests() == []
    # Forcing a user ignores the hour, not the week.
    again = digest.queue_due_digests(user=world.admin)
    assert again[0].queued is False and again[0].note == "already queued for 2026-W48"
    assert digests().count() == 4


def test_a_digest_message_is_addressed_and_delivered(
    rich, django_capture_on_commit_callbacks, mailoutbox
):
    with django_capture_on_commit_callbacks(execute=True):
        digest.queue_due_digests(user=rich.ada)
    message = digests().get(recipient_user=rich.ada)
    assert message.team is None
    assert message.dedupe_key == "2026-W48"
    assert message.recipient_key == f"user:{rich.ada.pk}"
    assert message.subject == "Milepost weekly: 2 need your action, 2 off track, 1 at risk"
    [mail] = [m for m in mailoutbox if m.to == [rich.ada.email]]
    assert mail.subject == message.subject
    assert mail.extra_headers["List-Unsubscribe"] == message.headers["List-Unsubscribe"]
    assert mail.alternatives[0].content == message.body_html
    assert "OFF TRACK (2)" in mail.body


def test_an_empty_week_sends_a_short_note_or_nothing_as_chosen(world):
    short = add_member(make_team("Quiet"), make_user("shorty"))
    skipper = add_member(make_team("Quieter"), make_user("skipper"))
    set_prefs(skipper, digest_when_empty=EmptyDigest.SKIP)

    records = {r.recipient: r for r in digest.queue_due_digests()}
    assert records[short.email].queued
    assert records[short.email].subject == "Milepost weekly: nothing needs you this week"
    assert records[skipper.email].queued is False
    assert "nothing to report" in records[skipper.email].note
    # A skipped row takes the week's key; nothing is ever sent for it.
    [skipped] = digests(recipient_user=skipper)
    assert skipped.state == DeliveryState.SKIPPED
    assert not [m for m in mail.outbox if m.to == [skipper.email]]
    # Not rebuilt on every run for the rest of the week, and not sent later in the week.
    assert skipper.username not in due_names(NOW + DAY)
    _milestone(make_plan(skipper.memberships.get().team, skipper), skipper, "News")
    assert digest.queue_due_digests(now=NOW + DAY) == []
    # Next week is a new week.
    assert skipper.username in due_names(NOW + 7 * DAY)


def test_a_run_that_dies_half_way_keeps_what_it_queued(world, monkeypatch):
    real_build = digest.build_digest
    calls = []

    def dies_on_the_third(user, **kwargs):
        calls.append(user)
        if len(calls) == 3:
            raise RuntimeError("worker killed")
        return real_build(user, **kwargs)

    monkeypatch.setattr(digest, "build_digest", dies_on_the_third)
    with pytest.raises(RuntimeError):
        digest.queue_due_digests()
    assert digests().count() == 2

    monkeypatch.setattr(digest, "build_digest", real_build)
    records = digest.queue_due_digests()
    assert len(records) == 2 and all(r.queued for r in records)
    assert digests().count() == 4


def test_a_dry_run_builds_everything_and_writes_nothing(rich):
    records = digest.queue_due_digests(dry_run=True)
    mine = next(r for r in records if r.recipient == rich.ada.email)
    assert mine.subject == "Milepost weekly: 2 need your action, 2 off track, 1 at risk"
    assert mine.counts["off_track"] == 2 and mine.queued is False
    assert not digests().exists()


def test_per_recipient_queueing_costs_the_same_for_a_big_team(rich, django_assert_max_num_queries):
    def one_digest_queries():
        Message.objects.filter(kind=MessageKind.DIGEST).delete()
        with CaptureQueriesContext(connection) as captured:
            digest.queue_due_digests(user=rich.ada)
        return len(captured.captured_queries)

    small = one_digest_queries()
    grow_team(rich.world.team, rich.ada, plans=10, milestones_per_plan=10)
    assert one_digest_queries() == small <= 18


# --- The command ------------------------------------------------------------------------------


def command(*args) -> str:
    out = StringIO()
    call_command("send_digests", *args, stdout=out)
    return out.getvalue()


def test_the_command_prints_a_line_per_recipient_and_a_total(rich):
    output = command()
    lines = output.strip().splitlines()
    ada_line = next(line for line in lines if rich.ada.email in line)
    assert ada_line.startswith("queued")
    assert "“Milepost weekly: 2 need your action, 2 off track, 1 at risk”" in ada_line
    assert "(action 2, off track 2, at risk 1, due soon 1, completed 1" in ada_line
    assert lines[-1] == "4 of 4 digests queued."
    assert digests().count() == 4


def test_the_command_dry_run_writes_nothing(rich):
    output = command("--dry-run")
    assert "would queue" in output
    assert output.strip().splitlines()[-1] == (
        "Dry run: 4 of 4 digests would be queued; nothing written."
    )
    assert not digests().exists()


def test_the_command_forces_one_user_by_username_or_email(rich):
    early = datetime.datetime(2026, 11, 23, 6, tzinfo=UTC)  # before Ada's 08:00
    with time_machine.travel(early, tick=False):
        assert command().strip() == "0 of 0 digests queued."
        output = command("--user", rich.world.member.email.upper())
        assert output.splitlines()[0].startswith(f"queued      {rich.world.member.email}")
        assert command("--user", rich.world.member.username).splitlines()[0].startswith("skipped")
    assert digests().count() == 1


def test_the_command_refuses_an_unknown_user(world):
    with pytest.raises(CommandError, match="No user has the username or e-mail address “nobody”"):
        command("--user", "nobody")
    with pytest.raises(CommandError, match=r"“nobody@example\.com”"):
        command("--user", "nobody@example.com")


def test_status_updates_reset_the_needs_action_entry(rich):
    make_status_update(rich.owed, rich.ada)
    built = digest.build_digest(rich.ada)
    assert f"{rich.owed.key} Update owed" not in labels(built.needs_action)
    assert StatusUpdate.objects.filter(milestone=rich.owed).count() == 2
