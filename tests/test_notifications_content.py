"""Event e-mails (notifications/alerts.py): at-risk alerts, sign-off requests and decisions,
completion notices and status update reminders: who gets what, what it says, once only."""

import datetime

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Role
from milestones import health, services, signoffs
from milestones.models import (
    Health,
    HealthTransition,
    Milestone,
    MilestoneStatus,
    SignoffOutcome,
    SignoffRequest,
    SignoffRequestReason,
    Stakeholder,
    StatusUpdate,
)
from notifications import alerts, unsubscribe
from notifications.models import EmailOptOut, Message, MessageKind, NotificationPreferences
from tests.factories import (
    add_member,
    make_criterion,
    make_milestone,
    make_plan,
    make_status_update,
    make_user,
)

SITE = "http://127.0.0.1:8000"


@pytest.fixture(autouse=True)
def site_url(settings):
    settings.SITE_URL = SITE


def turn_off(user, preference: str):
    NotificationPreferences.objects.update_or_create(user=user, defaults={preference: False})


def rows(kind, **filters):
    return Message.objects.filter(kind=kind, **filters)


def addresses(kind, **filters) -> set[str]:
    return set(rows(kind, **filters).values_list("recipient_email", flat=True))


class Cast:
    """World plus the people around one plan: a plan owner, a milestone owner, stakeholders
    of every sort (a member, plain addresses, one that opted out, an ex-member)."""

    def __init__(self, world):
        self.world = world
        self.team = world.team
        self.plan_owner = world.admin
        self.owner = world.member
        self.plan = world.plan
        self.plan.owner = self.plan_owner
        self.plan.save(update_fields=["owner"])
        self.milestone = make_milestone(
            self.plan, world.admin, title="Export <queue> & retries", owner=self.owner
        )
        self.milestone.refresh_from_db()
        self.member_stakeholder = world.viewer
        self.former = make_user("fred")  # a stakeholder row that outlived his membership
        for user in (self.member_stakeholder, self.former):
            Stakeholder.objects.create(plan=self.plan, user=user, gets_alerts=True)
        Stakeholder.objects.create(plan=self.plan, email="Pat@Client.example", gets_alerts=True)
        Stakeholder.objects.create(plan=self.plan, email="gone@client.example", gets_alerts=True)
        Stakeholder.objects.create(plan=self.plan, email="quiet@client.example")  # no alerts
        EmailOptOut.objects.create(email="gone@client.example", kind=MessageKind.AT_RISK)


@pytest.fixture
def cast(world):
    return Cast(world)


def worse(milestone, *, to=Health.OFF_TRACK, frm=Health.ON_TRACK, reasons=None):
    return HealthTransition.objects.create(
        milestone=milestone,
        from_health=frm,
        to_health=to,
        reasons=reasons
        if reasons is not None
        else [
            {
                "code": "overdue",
                "health": Health.OFF_TRACK,
                "message": "The target date 1 Nov 2026 passed 3 days ago.",
                "link": "#dates",
            },
            {
                "code": "unmitigated_risk",
                "health": Health.AT_RISK,
                "message": "Risk “Vendor <late>” scores 9 and has no mitigation.",
                "link": "#risk-7",
            },
        ],
    )


# --- At-risk alerts ---------------------------------------------------------------------------


def test_a_worse_health_alerts_the_owners_and_the_stakeholders_who_asked(cast):
    transition = worse(cast.milestone)

    assert alerts.queue_health_alerts([transition]) == 4

    assert addresses(MessageKind.AT_RISK) == {
        cast.owner.email,
        cast.plan_owner.email,
        cast.member_stakeholder.email,
        "Pat@Client.example",
    }
    # Not: the opted-out address, the stakeholder without alerts, the ex-member.
    message = rows(MessageKind.AT_RISK).get(recipient_user=cast.owner)
    assert message.dedupe_key == f"transition:{transition.pk}"
    assert message.team == cast.team
    assert message.recipient_key == f"user:{cast.owner.pk}"
    plain = rows(MessageKind.AT_RISK).get(recipient_user=None)
    assert plain.recipient_key == "email:pat@client.example"


def test_the_alert_says_what_changed_and_why_with_links(cast):
    alerts.queue_health_alerts([worse(cast.milestone)])
    message = rows(MessageKind.AT_RISK).get(recipient_user=cast.owner)
    key = cast.milestone.key
    page = f"{SITE}/t/{cast.team.slug}/m/{key}/"

    assert message.subject == f"{key} is now off track: Export <queue> & retries"
    text = message.body_text
    assert f"Hello {cast.owner.display_name}," in text
    assert f"{key} Export <queue> & retries" in text  # plain text is not HTML-escaped
    assert "went from on track to off track" in text
    assert "- The target date 1 Nov 2026 passed 3 days ago. [off track] " + page + "#dates" in text
    assert "Risk “Vendor <late>” scores 9 and has no mitigation. [at risk]" in text
    assert f"Open the milestone: {page}" in text
    assert "because you own this milestone" in text

    html = message.body_html
    assert "Export &lt;queue&gt; &amp; retries" in html
    assert "Vendor &lt;late&gt;" in html
    assert "<queue>" not in html
    assert f'href="{page}#risk-7"' in html


def test_every_alert_carries_its_own_unsubscribe_link_and_headers(cast):
    alerts.queue_health_alerts([worse(cast.milestone)])
    for message in rows(MessageKind.AT_RISK):
        header = message.headers["List-Unsubscribe"]
        assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        url = header.strip("<>")
        token = url.rstrip("/").rsplit("/", 1)[-1]
        assert unsubscribe.read_token(token) == (message.recipient_key, MessageKind.AT_RISK)
        assert url in message.body_text
        assert url in message.body_html
        assert url == unsubscribe.unsubscribe_url(message.recipient_key, MessageKind.AT_RISK)


def test_users_get_a_preferences_link_and_plain_addresses_do_not(cast):
    alerts.queue_health_alerts([worse(cast.milestone)])
    preferences = SITE + reverse("notifications:preferences")
    user_mail = rows(MessageKind.AT_RISK).get(recipient_user=cast.owner)
    plain_mail = rows(MessageKind.AT_RISK).get(recipient_user=None)
    assert f"Choose what Milepost e-mails you: {preferences}\n" in user_mail.body_text
    assert f'href="{preferences}"' in user_mail.body_html
    assert "Choose what Milepost e-mails you" not in plain_mail.body_text
    assert f'href="{preferences}"' not in plain_mail.body_html
    assert "Stop at-risk alerts" in plain_mail.body_text


def test_a_user_who_turned_alerts_off_gets_none(cast):
    turn_off(cast.owner, "at_risk_alerts")
    NotificationPreferences.objects.create(user=cast.plan_owner, signoff_requests=False)
    alerts.queue_health_alerts([worse(cast.milestone)])
    got = addresses(MessageKind.AT_RISK)
    assert cast.owner.email not in got
    assert cast.plan_owner.email in got  # other preferences off do not matter


def test_one_person_reached_twice_gets_one_alert(cast):
    Stakeholder.objects.create(plan=cast.plan, user=cast.owner, gets_alerts=True)
    Stakeholder.objects.create(plan=cast.plan, email="pat@client.EXAMPLE", gets_alerts=True)
    alerts.queue_health_alerts([worse(cast.milestone)])
    assert rows(MessageKind.AT_RISK, recipient_user=cast.owner).count() == 1
    assert rows(MessageKind.AT_RISK, recipient_user=None).count() == 1


def test_the_same_transition_twice_alerts_once(cast):
    transition = worse(cast.milestone)
    assert alerts.queue_health_alerts([transition]) == 4
    assert alerts.queue_health_alerts([transition]) == 0
    assert rows(MessageKind.AT_RISK).count() == 4


@pytest.mark.parametrize(
    "frm, to",
    [(Health.OFF_TRACK, Health.ON_TRACK), (Health.AT_RISK, Health.ON_TRACK)],
)
def test_an_improvement_is_not_alerted(cast, frm, to):
    assert alerts.queue_health_alerts([worse(cast.milestone, frm=frm, to=to)]) == 0
    assert not rows(MessageKind.AT_RISK).exists()


def test_at_risk_to_off_track_is_worse_and_alerted(cast):
    alerts.queue_health_alerts([worse(cast.milestone, frm=Health.AT_RISK, to=Health.OFF_TRACK)])
    message = rows(MessageKind.AT_RISK).get(recipient_user=cast.owner)
    assert "went from at risk to off track" in message.body_text


def test_alerts_stay_in_the_milestones_team(cast, world):
    # Olga (another team) is listed as a stakeholder by mistake: she is not told anything.
    Stakeholder.objects.create(plan=cast.plan, user=world.outsider, gets_alerts=True)
    alerts.queue_health_alerts([worse(cast.milestone)])
    assert world.outsider.email not in addresses(MessageKind.AT_RISK)


def test_the_health_engine_alerts_once_per_change_and_mail_goes_out(
    cast, django_capture_on_commit_callbacks, mailoutbox
):
    m = cast.milestone
    Milestone.objects.filter(pk=m.pk).update(
        start_date=datetime.date(2026, 9, 1), target_date=datetime.date(2026, 10, 1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        health.evaluate_team(cast.team.pk, on=datetime.date(2026, 10, 5))
    with django_capture_on_commit_callbacks(execute=True):
        health.evaluate_team(cast.team.pk, on=datetime.date(2026, 10, 5))  # nothing changed

    transition = HealthTransition.objects.get(milestone=m)
    alerted = rows(MessageKind.AT_RISK, dedupe_key=f"transition:{transition.pk}")
    assert alerted.count() == 4
    owner_mail = alerted.get(recipient_user=cast.owner)
    assert "The target date 1 Oct 2026 passed 4 days ago" in owner_mail.body_text
    sent = {mail.to[0]: mail for mail in mailoutbox if mail.subject.startswith(m.key)}
    assert set(sent) == set(alerted.values_list("recipient_email", flat=True))
    mail = sent[cast.owner.email]
    assert mail.subject == owner_mail.subject
    assert mail.extra_headers["List-Unsubscribe"] == owner_mail.headers["List-Unsubscribe"]
    assert mail.alternatives[0].mimetype == "text/html"


def _alert_queries(transitions) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as captured:
        queued = alerts.queue_health_alerts(transitions)
    reads = [q for q in captured.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]
    return len(reads), queued


def test_alert_recipients_are_found_in_constant_queries(cast, world):
    one = [worse(cast.milestone)]
    reads_for_one, queued_for_one = _alert_queries(one)
    many = []
    for n in range(10):
        plan = make_plan(world.team, world.admin, owner=world.admin)
        milestone = make_milestone(plan, world.admin, owner=world.member)
        Stakeholder.objects.create(plan=plan, email=f"s{n}@client.example", gets_alerts=True)
        Stakeholder.objects.create(plan=plan, user=world.viewer, gets_alerts=True)
        many.append(worse(milestone))
    reads_for_many, queued_for_many = _alert_queries(many)
    assert queued_for_one == 4 and queued_for_many == 40
    assert reads_for_many == reads_for_one <= 5


def test_a_batch_of_alerts_stays_within_its_budget(cast, world, django_assert_max_num_queries):
    many = []
    for _ in range(10):
        plan = make_plan(world.team, world.admin, owner=world.admin)
        many.append(worse(make_milestone(plan, world.admin, owner=world.member)))
    # 5 reads, then per message the savepoint, the insert and its release.
    with django_assert_max_num_queries(5 + 3 * 20):
        assert alerts.queue_health_alerts(many) == 20


# --- Sign-off requests ------------------------------------------------------------------------


@pytest.fixture
def product_owner_role(cast):
    role = cast.milestone.signoff_roles.get(name="Product owner")
    return signoffs.set_holder(role, actor=cast.world.admin, holder=cast.member_stakeholder)


def test_a_new_holder_is_asked_for_a_decision(cast, product_owner_role):
    request = SignoffRequest.objects.get(role=product_owner_role)
    message = rows(MessageKind.SIGNOFF_REQUEST).get()
    key = cast.milestone.key
    assert message.recipient_user == cast.member_stakeholder
    assert message.dedupe_key == f"signoff-request:{request.pk}"
    assert message.team == cast.team
    assert message.subject == f"Sign-off needed: Product owner for {key} Export <queue> & retries"
    assert "You hold the Product owner sign-off" in message.body_text
    assert f"Decide on My sign-offs: {SITE}{reverse('my_signoffs')}" in message.body_text
    assert f'href="{SITE}{reverse("my_signoffs")}"' in message.body_html
    token = message.headers["List-Unsubscribe"].strip("<>").rstrip("/").rsplit("/", 1)[-1]
    assert unsubscribe.read_token(token) == (
        f"user:{cast.member_stakeholder.pk}",
        MessageKind.SIGNOFF_REQUEST,
    )


def test_a_stale_decision_asks_again_saying_the_scope_changed(cast, product_owner_role):
    m = cast.milestone
    signoffs.decide(
        m,
        user=cast.member_stakeholder,
        role=product_owner_role,
        outcome=SignoffOutcome.CHANGES_REQUESTED,
        comment="Needs a runbook",
    )
    make_criterion(cast.world.admin, milestone=m, text="Runbook written")
    stale = SignoffRequest.objects.get(reason=SignoffRequestReason.STALE)
    message = rows(MessageKind.SIGNOFF_REQUEST).get(dedupe_key=f"signoff-request:{stale.pk}")
    assert message.subject.startswith("Sign-off again: Product owner")
    assert "changed since your decision as Product owner" in message.body_text
    assert rows(MessageKind.SIGNOFF_REQUEST).count() == 2


def test_a_holder_who_turned_requests_off_is_not_mailed(cast):
    turn_off(cast.member_stakeholder, "signoff_requests")
    role = cast.milestone.signoff_roles.get(name="Product owner")
    signoffs.set_holder(role, actor=cast.world.admin, holder=cast.member_stakeholder)
    assert SignoffRequest.objects.filter(role=role).exists()
    assert not rows(MessageKind.SIGNOFF_REQUEST).exists()


def test_the_same_request_is_mailed_once(cast, product_owner_role):
    request = SignoffRequest.objects.get(role=product_owner_role)
    assert alerts.queue_signoff_request(request) is False
    assert rows(MessageKind.SIGNOFF_REQUEST).count() == 1


# --- Sign-off decisions -----------------------------------------------------------------------


def test_the_owner_hears_of_a_decision_with_its_comment_and_exceptions(cast, product_owner_role):
    make_criterion(cast.world.admin, milestone=cast.milestone, text="Docs published")  # unmet
    decision = signoffs.decide(
        cast.milestone,
        user=cast.member_stakeholder,
        role=product_owner_role,
        outcome=SignoffOutcome.APPROVED,
        with_exceptions=True,
        comment="Docs <later>; everything else is in.",
    )
    message = rows(MessageKind.SIGNOFF_DECISION).get()
    assert message.recipient_user == cast.owner
    assert message.dedupe_key == f"decision:{decision.pk}"
    who = cast.member_stakeholder.display_name
    assert message.subject == (
        f"Approved with exceptions: {cast.milestone.key} Export <queue> & retries "
        f"(Product owner, {who})"
    )
    assert "Docs <later>; everything else is in." in message.body_text
    assert "accepts exceptions" in message.body_text
    assert "Docs &lt;later&gt;" in message.body_html
    assert f"{SITE}/t/{cast.team.slug}/m/{cast.milestone.key}/#signoffs" in message.body_text


def test_a_rejection_reads_as_one(cast, product_owner_role):
    signoffs.decide(
        cast.milestone,
        user=cast.member_stakeholder,
        role=product_owner_role,
        outcome=SignoffOutcome.REJECTED,
        comment="Wrong service.",
    )
    message = rows(MessageKind.SIGNOFF_DECISION).get()
    assert message.subject.startswith("Rejected: ")
    assert "accepts exceptions" not in message.body_text


def test_no_mail_when_the_owner_decided_or_turned_decisions_off(cast):
    role = cast.milestone.signoff_roles.get(name="Tech lead")
    signoffs.set_holder(role, actor=cast.world.admin, holder=cast.owner)
    signoffs.decide(
        cast.milestone, user=cast.owner, role=role, outcome="rejected", comment="Not yet."
    )
    assert not rows(MessageKind.SIGNOFF_DECISION).exists()

    turn_off(cast.owner, "signoff_decisions")
    other = cast.milestone.signoff_roles.get(name="Operations lead")
    signoffs.set_holder(other, actor=cast.world.admin, holder=cast.plan_owner)
    signoffs.decide(
        cast.milestone, user=cast.plan_owner, role=other, outcome="rejected", comment="No."
    )
    assert not rows(MessageKind.SIGNOFF_DECISION).exists()


# --- Completion notices -----------------------------------------------------------------------


@pytest.fixture
def completion_audience(cast):
    Stakeholder.objects.create(plan=cast.plan, email="board@client.example")
    Stakeholder.objects.create(plan=cast.plan, email="nope@client.example", gets_completion=False)
    Stakeholder.objects.create(plan=cast.plan, email="left@client.example")
    EmailOptOut.objects.create(email="left@client.example", kind=MessageKind.COMPLETION)
    turn_off(cast.former, "completion_notices")
    return cast


@time_machine.travel(datetime.datetime(2026, 11, 20, 10, tzinfo=datetime.UTC), tick=False)
def test_completion_is_told_to_the_plan_owner_and_stakeholders(completion_audience):
    cast = completion_audience
    m = cast.milestone
    Milestone.objects.filter(pk=m.pk).update(baseline_target_date=datetime.date(2026, 11, 17))
    m.refresh_from_db()
    services.update_object(m, actor=cast.owner, status=MilestoneStatus.COMPLETED)

    got = addresses(MessageKind.COMPLETION)
    assert got == {
        cast.plan_owner.email,
        cast.member_stakeholder.email,
        "Pat@Client.example",
        "gone@client.example",  # opted out of alerts, not of completion notices
        "board@client.example",
        "quiet@client.example",
    }
    message = rows(MessageKind.COMPLETION).get(recipient_email="board@client.example")
    assert message.dedupe_key == f"completed:{m.pk}:2026-11-20"
    assert message.subject == f"Completed: {m.key} Export <queue> & retries"
    assert "was completed on 20 Nov 2026, 3 days after its first committed target" in (
        message.body_text
    )
    assert f"{SITE}/t/{cast.team.slug}/plans/{cast.plan.key}/" in message.body_text
    assert "Stop completion notices" in message.body_text


def test_a_completion_notice_is_sent_once_per_completion(completion_audience):
    cast = completion_audience
    services.update_object(cast.milestone, actor=cast.owner, status=MilestoneStatus.COMPLETED)
    count = rows(MessageKind.COMPLETION).count()
    assert alerts.queue_completion_notices(cast.milestone) == 0
    assert rows(MessageKind.COMPLETION).count() == count == 6


# --- Status update reminders ------------------------------------------------------------------

START = datetime.datetime(2026, 11, 2, 9, tzinfo=datetime.UTC)


@pytest.fixture
def in_progress(world):
    with time_machine.travel(START, tick=False):
        m = make_milestone(
            world.plan,
            world.admin,
            owner=world.member,
            status=MilestoneStatus.IN_PROGRESS,
            start_date=datetime.date(2026, 10, 20),
            target_date=datetime.date(2026, 12, 20),
        )
        make_status_update(m, world.member)
    return m


def reminders_at(moment) -> int:
    with time_machine.travel(moment, tick=False):
        return alerts.queue_update_reminders()


def test_a_reminder_once_per_cadence_and_a_new_update_resets_it(world, in_progress):
    day = datetime.timedelta(days=1)
    assert reminders_at(START + 7 * day - datetime.timedelta(minutes=1)) == 0
    assert reminders_at(START + 7 * day) == 1
    assert reminders_at(START + 7 * day + datetime.timedelta(hours=1)) == 0
    assert reminders_at(START + 13 * day) == 0
    assert reminders_at(START + 14 * day) == 1  # two cadences without an update

    with time_machine.travel(START + 15 * day, tick=False):
        make_status_update(in_progress, world.member)
    assert reminders_at(START + 21 * day) == 0
    assert reminders_at(START + 22 * day) == 1

    latest = StatusUpdate.objects.filter(milestone=in_progress).latest()
    keys = list(
        rows(MessageKind.UPDATE_REMINDER)
        .order_by("created_at")
        .values_list("dedupe_key", flat=True)
    )
    first = StatusUpdate.objects.filter(milestone=in_progress).earliest()
    assert keys == [
        f"update:{in_progress.pk}:{first.pk}:1",
        f"update:{in_progress.pk}:{first.pk}:2",
        f"update:{in_progress.pk}:{latest.pk}:1",
    ]


def test_the_reminder_says_how_long_it_has_been(world, in_progress):
    world.member.time_zone = "Pacific/Auckland"
    world.member.save(update_fields=["time_zone"])
    reminders_at(START + datetime.timedelta(days=9))
    message = rows(MessageKind.UPDATE_REMINDER).get()
    assert message.recipient_user == world.member
    assert message.team == world.team
    assert message.subject == f"Status update due: {in_progress.key} {in_progress.title}"
    assert "was 9 days ago (2 Nov 2026)" in message.body_text
    assert "asks for one every 7 days" in message.body_text
    assert f"/m/{in_progress.key}/#updates" in message.body_text


def test_without_any_update_the_start_counts(world):
    with time_machine.travel(START, tick=False):
        m = make_milestone(
            world.plan,
            world.admin,
            owner=world.member,
            status=MilestoneStatus.IN_PROGRESS,
            start_date=datetime.date(2026, 11, 1),
        )
    assert reminders_at(datetime.datetime(2026, 11, 7, 23, tzinfo=datetime.UTC)) == 0
    assert reminders_at(datetime.datetime(2026, 11, 8, 0, tzinfo=datetime.UTC)) == 1
    message = rows(MessageKind.UPDATE_REMINDER).get()
    assert message.dedupe_key == f"update:{m.pk}:none:1"
    assert "has had no status update since work began (1 Nov 2026)" in message.body_text


def test_reminders_follow_the_team_cadence_and_the_owner_preference(world, in_progress):
    world.team.status_update_cadence_days = 3
    world.team.save(update_fields=["status_update_cadence_days"])
    assert reminders_at(START + datetime.timedelta(days=3)) == 1
    turn_off(world.member, "update_reminders")
    assert reminders_at(START + datetime.timedelta(days=6)) == 0


def test_no_reminder_for_milestones_not_in_progress(world, in_progress):
    Milestone.objects.filter(pk=in_progress.pk).update(status=MilestoneStatus.PLANNED)
    assert reminders_at(START + datetime.timedelta(days=30)) == 0


def test_reminders_take_constant_queries(world, django_assert_max_num_queries):
    def milestones(n):
        with time_machine.travel(START, tick=False):
            for _ in range(n):
                owner = add_member(world.team, make_user(), Role.MEMBER)
                m = make_milestone(
                    world.plan, world.admin, owner=owner, status=MilestoneStatus.IN_PROGRESS
                )
                make_status_update(m, owner)

    milestones(1)
    with django_assert_max_num_queries(5 + 3 * 1):
        assert reminders_at(START + datetime.timedelta(days=8)) == 1
    milestones(10)
    with django_assert_max_num_queries(5 + 3 * 10):
        assert reminders_at(START + datetime.timedelta(days=8)) == 10
    # Nothing new to send: the reads only, whatever the number of milestones.
    with django_assert_max_num_queries(2):
        assert reminders_at(START + datetime.timedelta(days=8, hours=1)) == 0


def test_an_unsubscribe_token_is_the_same_every_time_and_refuses_tampering():
    first = unsubscribe.make_token("user:7", MessageKind.DIGEST)
    # The body and the List-Unsubscribe header of one mail are rendered moments apart.
    with time_machine.travel(datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC), tick=False):
        assert unsubscribe.make_token("user:7", MessageKind.DIGEST) == first
    assert unsubscribe.read_token(first) == ("user:7", MessageKind.DIGEST)
    assert (
        unsubscribe.read_token(first[:-2] + ("A" if first[-2] != "A" else "B") + first[-1]) is None
    )
    assert unsubscribe.read_token("not-a-token") is None
