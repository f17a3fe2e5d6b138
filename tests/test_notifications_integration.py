"""The outbox end to end: a real Celery worker on Redis, a real SMTP server, no eager mode.

Each test starts `celery worker --pool=solo` subprocesses (tests/services.py) on its own queue,
pointed at this run's test database and at an aiosmtpd sink on loopback, with short OUTBOX_*
times so retries, claim timeouts and the sweeper act within seconds. Test data is written
before this process is pointed at the broker (while tasks still run eagerly), so the worker
only sees what each test sends it. `pytest -s` prints the figures (attempts, timings, the kill
test's duplicates).
"""

import datetime
import itertools
import re
import time
import uuid
from collections import Counter

import pytest
from celery import Celery
from django.conf import settings
from django.db import transaction
from django.urls import reverse

from accounts.models import Membership, Role, User
from milestones import signoffs
from milestones.models import Health, HealthTransition, Milestone, MilestoneStatus, today
from notifications import alerts, outbox
from notifications.models import DeliveryState, Message, MessageKind, NotificationPreferences
from tests.factories import add_member, make_milestone, make_plan, make_team, make_user
from tests.services import (
    PrivateRedis,
    free_port,
    outbox_worker,
    publishing_to,
    redis_server,
    smtp_sink,
    start_outbox_worker,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# Short enough for a test, long enough that a healthy attempt (milliseconds) is never taken
# for an abandoned one.
FAST_OUTBOX = {
    "OUTBOX_MAX_ATTEMPTS": "4",
    "OUTBOX_RETRY_BASE_SECONDS": "0.3",
    "OUTBOX_RETRY_MAX_SECONDS": "2",
    "OUTBOX_CLAIM_TIMEOUT": "3",
    "OUTBOX_REDISPATCH_AFTER": "2",
    "EMAIL_TIMEOUT": "5",
}


class Stack:
    """Redis, a queue of this test's own, and a client that sends tasks to it by name."""

    def __init__(self, redis_url: str):
        self.redis_url = redis_url
        self.queue = f"milepost-outbox-{uuid.uuid4().hex[:10]}"
        # Not the current app: shared tasks in this process must keep resolving to config's.
        self.client = Celery(broker=redis_url, backend=redis_url, set_as_current=False)

    def worker_env(self, email_url: str, **overrides) -> dict:
        return {"EMAIL_URL": email_url, "SITE_URL": settings.SITE_URL, **FAST_OUTBOX, **overrides}

    def worker(self, email_url: str, *, name: str = "worker", **overrides):
        return outbox_worker(
            self.redis_url, self.queue, name=name, extra_env=self.worker_env(email_url, **overrides)
        )

    def start_worker(self, email_url: str, *, name: str, **overrides):
        return start_outbox_worker(
            self.redis_url, self.queue, name=name, extra_env=self.worker_env(email_url, **overrides)
        )

    def live(self):
        """From here on, what this process queues is published to the worker's queue."""
        return publishing_to(self.redis_url, self.queue)

    def send(self, task_name: str, *args):
        return self.client.send_task(task_name, args=args, queue=self.queue)

    def run(self, task_name: str, *args, timeout: float = 60):
        """Send a task and wait for the worker's answer."""
        return self.send(task_name, *args).get(timeout=timeout)


@pytest.fixture
def stack():
    with redis_server() as redis_url:
        stack = Stack(redis_url)
        try:
            yield stack
        finally:
            stack.client.close()


def digest_recipients(count: int) -> list[User]:
    """`count` members of one team with a plan, each due for this week's digest (Monday 00:00
    in their time zone has always passed), in bulk."""
    team = make_team("Digest readers")
    owner = add_member(team, make_user("plan-owner"), Role.ADMIN)
    plan = make_plan(team, owner, title="Export service rollout")
    make_milestone(plan, owner, title="Queue ready", target_date=today() + datetime.timedelta(3))
    prefix = uuid.uuid4().hex[:6]
    User.objects.bulk_create(
        User(username=f"reader-{prefix}-{i:03d}", email=f"reader-{prefix}-{i:03d}@example.com")
        for i in range(count - 1)
    )
    readers = list(User.objects.filter(username__startswith=f"reader-{prefix}-"))
    Membership.objects.bulk_create(Membership(team=team, user=user) for user in readers)
    everyone = [owner, *readers]
    NotificationPreferences.objects.bulk_create(
        NotificationPreferences(user=user, digest_weekday=0, digest_hour=0) for user in everyone
    )
    return everyone


def sent_digests() -> int:
    return Message.objects.filter(kind=MessageKind.DIGEST, state=DeliveryState.SENT).count()


def sweep_until(stack: Stack, done, *, timeout: float, every: float = 1.0, workers=()):
    """Send the sweeper every `every` seconds (as beat would) until `done()`."""

    def swept():
        if done():
            return True
        stack.send("notifications.sweep_outbox")
        return False

    return wait_until(swept, timeout=timeout, interval=every, workers=workers)


# --- a. A digest arrives, and its unsubscribe link works ------------------------------------


def test_a_digest_arrives_with_both_parts_and_a_working_unsubscribe_link(stack, client):
    [reader] = digest_recipients(1)
    with smtp_sink() as sink, stack.live(), stack.worker(sink.url) as worker:
        assert stack.run("notifications.queue_due_digests") == 1
        [mail] = sink.wait_for(1, workers=[worker])

    row = Message.objects.get(kind=MessageKind.DIGEST)
    assert (row.state, row.attempts) == (DeliveryState.SENT, 1)
    assert mail["To"] == reader.email
    assert mail["Message-ID"] == row.message_id
    assert mail["Subject"].startswith("Milepost weekly")
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "Export service rollout" in text and "Export service rollout" in html

    header = mail["List-Unsubscribe"].strip()  # folded onto its own line: leading space
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = re.fullmatch(r"<(.+)>", header).group(1)
    assert link.startswith(settings.SITE_URL + "/")
    assert link in text
    assert link in html

    response = client.post(
        link.removeprefix(settings.SITE_URL),
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert NotificationPreferences.for_user(User.objects.get(pk=reader.pk)).digest_enabled is False


# --- b. The schedule twice in one week ------------------------------------------------------


def test_running_the_digest_schedule_twice_in_a_week_sends_one_each(stack):
    readers = digest_recipients(3)
    with smtp_sink() as sink, stack.live(), stack.worker(sink.url) as worker:
        assert stack.run("notifications.queue_due_digests") == 3
        assert stack.run("notifications.queue_due_digests") == 0
        sink.wait_for(3, workers=[worker])
        wait_until(lambda: sent_digests() == 3, timeout=20, workers=[worker])
        # Both runs are done and every row is sent: nothing else can be on its way.
        time.sleep(0.5)

    assert sink.per_recipient() == Counter(dict.fromkeys((reader.email for reader in readers), 1))
    assert Message.objects.filter(kind=MessageKind.DIGEST).count() == 3


# --- c. A rolled-back transaction -----------------------------------------------------------


def test_a_rolled_back_transaction_sends_nothing(stack):
    with smtp_sink() as sink, stack.live(), stack.worker(sink.url) as worker:
        with pytest.raises(RuntimeError), transaction.atomic():
            outbox.queue_message(
                kind=MessageKind.AT_RISK, dedupe_key="rolled-back", subject="Never",
                text="Never sent", email="rolled-back@example.com",
            )  # fmt: skip
            raise RuntimeError("the change failed")
        # A committed message behind it proves the worker was running all along.
        with transaction.atomic():
            outbox.queue_message(
                kind=MessageKind.AT_RISK, dedupe_key="committed", subject="Sent",
                text="Sent", email="committed@example.com",
            )  # fmt: skip
        sink.wait_for(1, workers=[worker])
        time.sleep(0.5)

    assert sink.per_recipient() == Counter({"committed@example.com": 1})
    assert list(Message.objects.values_list("recipient_email", flat=True)) == [
        "committed@example.com"
    ]


# --- d. The mail server says "try again later" ----------------------------------------------


def test_a_temporary_smtp_refusal_is_retried_until_delivered(stack):
    with smtp_sink(refuse_first=2) as sink, stack.live(), stack.worker(sink.url) as worker:
        started = time.monotonic()
        with transaction.atomic():
            row = outbox.queue_message(
                kind=MessageKind.AT_RISK, dedupe_key="busy", subject="Retried",
                text="Third time lucky", email="busy@example.com",
            )  # fmt: skip
        sink.wait_for(1, workers=[worker])
        delivered = time.monotonic() - started
        wait_until(
            lambda: Message.objects.get(pk=row.pk).state == DeliveryState.SENT,
            timeout=10,
            workers=[worker],
        )

    row.refresh_from_db()
    assert (row.attempts, row.last_error) == (3, "")
    assert len(sink.attempt_times) == 3 and sink.count == 1
    gaps = [later - earlier for earlier, later in itertools.pairwise(sink.attempt_times)]
    # Base 0.3 s, doubling, ±50% jitter: at least 0.15 s, then at least 0.3 s.
    assert gaps[0] >= 0.15 and gaps[1] >= 0.3, gaps
    print(
        f"\nretry: 451 twice, delivered at attempt {row.attempts}, {delivered:.2f} s after "
        f"commit; gaps between attempts {', '.join(f'{gap:.2f} s' for gap in gaps)}"
    )


# --- e. The mail server stays down ----------------------------------------------------------


def test_smtp_down_beyond_the_attempts_fails_the_row_and_the_admin_sees_it(stack, client):
    team = make_team("Mail down")
    admin = add_member(team, make_user("mail-admin"), Role.ADMIN)
    member = add_member(team, make_user("mail-member"))
    nothing_listens = f"smtp://127.0.0.1:{free_port()}"
    with stack.live(), stack.worker(nothing_listens, OUTBOX_MAX_ATTEMPTS="3") as worker:
        with transaction.atomic():
            row = outbox.queue_message(
                kind=MessageKind.AT_RISK, dedupe_key="transition:down", team=team,
                subject="MLS-001 is now off track", text="Off track", user=member,
            )  # fmt: skip
        wait_until(
            lambda: Message.objects.get(pk=row.pk).state == DeliveryState.FAILED,
            timeout=60,
            workers=[worker],
        )

    row.refresh_from_db()
    assert row.attempts == 3
    assert row.last_error.startswith("Could not reach the mail server: ConnectionRefusedError")

    client.force_login(admin)
    page = client.get(reverse("notifications:delivery_log", args=[team.slug]), {"state": "failed"})
    assert page.status_code == 200
    html = page.content.decode()
    assert f'id="message-{row.pk}"' in html
    assert "MLS-001 is now off track" in html
    assert "ConnectionRefusedError" in html
    assert member.email in html


# --- f. The kill test -----------------------------------------------------------------------


def test_a_worker_killed_mid_run_loses_nothing_and_repeats_at_most_one_mail(stack):
    recipients = digest_recipients(200)
    addresses = {user.email for user in recipients}
    with smtp_sink() as sink, stack.live():
        first = stack.start_worker(sink.url, name="first")
        try:
            started = time.monotonic()
            stack.send("notifications.queue_due_digests")
            wait_until(lambda: sink.count >= 100, timeout=240, interval=0.002, workers=[first])
            first.kill()
            killed_after = time.monotonic() - started
        finally:
            first.stop()
        at_kill = sink.count
        rows_at_kill = Counter(Message.objects.values_list("state", flat=True))

        with stack.worker(sink.url, name="second") as second:
            assert stack.run("notifications.queue_due_digests") == 0  # all queued already
            sweep_until(
                stack, lambda: sent_digests() == len(recipients), timeout=120, workers=[second]
            )
            settled_after = time.monotonic() - started

    received = sink.per_recipient()
    duplicates = sum(count - 1 for count in received.values() if count > 1)
    print(
        f"\nkill test: {len(recipients)} recipients; SIGKILL after {killed_after:.2f} s with "
        f"{at_kill} mails received (rows then: {dict(rows_at_kill)}); settled after "
        f"{settled_after:.2f} s: {sink.count} mails received, "
        f"{len(received)} distinct recipients, {duplicates} duplicate(s)"
    )
    assert set(received) == addresses, "every recipient got the digest"
    per_row = Counter(
        Message.objects.filter(kind=MessageKind.DIGEST, state=DeliveryState.SENT).values_list(
            "recipient_email", flat=True
        )
    )
    assert per_row == Counter(dict.fromkeys(addresses, 1))
    assert not Message.objects.exclude(state=DeliveryState.SENT).exists()
    # The documented window: only the mail in flight when the worker died can arrive twice,
    # and its copies share one Message-ID.
    assert duplicates <= 1
    if duplicates:
        [twice] = [address for address, count in received.items() if count > 1]
        ids = {m["Message-ID"] for m in sink.messages() if m["To"] == twice}
        assert len(ids) == 1


# --- g. The broker is down when the request commits -----------------------------------------


def test_a_request_succeeds_with_the_broker_down_and_the_sweeper_delivers_later(stack, client):
    team = make_team("Broker down")
    owner = add_member(team, make_user("broker-owner"), Role.ADMIN)
    holder = add_member(team, make_user("broker-holder"))
    plan = make_plan(team, owner)
    milestone = make_milestone(plan, owner, owner=owner, title="Export queue ready")
    role = milestone.signoff_roles.active().order_by("position").first()
    signoffs.set_holder(role, actor=owner, holder=holder)
    client.force_login(holder)
    url = reverse("signoff_decide", args=[team.slug, milestone.key, role.pk])

    broker = PrivateRedis()  # ours alone, never the shared Redis: this test stops it
    try:
        with smtp_sink() as sink, publishing_to(broker.url, stack.queue):
            started = time.monotonic()
            response = client.post(
                url, {"decision": "request_changes", "comment": "Add metrics", "confirmed": "true"}
            )
            answered = time.monotonic() - started
            assert response.status_code == 302
            row = Message.objects.get(kind=MessageKind.SIGNOFF_DECISION)
            assert (row.state, row.dispatched_at) == (DeliveryState.PENDING, None)
            assert row.recipient_email == owner.email

            broker.start()
            client_app = Celery(broker=broker.url, backend=broker.url, set_as_current=False)
            worker_env = stack.worker_env(sink.url)
            try:
                with outbox_worker(broker.url, stack.queue, extra_env=worker_env) as worker:

                    def delivered():
                        if Message.objects.get(pk=row.pk).state == DeliveryState.SENT:
                            return True
                        client_app.send_task("notifications.sweep_outbox", queue=stack.queue)
                        return False

                    wait_until(delivered, timeout=60, interval=1.0, workers=[worker])
            finally:
                client_app.close()
    finally:
        broker.stop()

    decision_mails = [m for m in sink.messages() if m["Message-ID"] == row.message_id]
    assert len(decision_mails) == 1
    assert decision_mails[0]["To"] == owner.email
    print(f"\nbroker down: the sign-off decision answered in {answered:.2f} s")
    assert answered < 10


# --- h. One alert per health change ---------------------------------------------------------


def test_a_health_change_alerts_once_however_often_it_is_evaluated(stack):
    team = make_team("Health")
    owner = add_member(team, make_user("health-owner"), Role.ADMIN)
    plan = make_plan(team, owner)
    milestone = make_milestone(plan, owner, owner=owner, title="Ship the importer")
    # Last evaluated on track, and overdue since: written behind the services' back, so no
    # evaluation runs before the worker's.
    Milestone.objects.filter(pk=milestone.pk).update(
        status=MilestoneStatus.IN_PROGRESS,
        start_date=today() - datetime.timedelta(days=40),
        target_date=today() - datetime.timedelta(days=5),
        health=Health.ON_TRACK,
        health_reasons=[],
    )
    earlier_alerts = set(Message.objects.values_list("pk", flat=True))
    earlier_transitions = set(HealthTransition.objects.values_list("pk", flat=True))

    with smtp_sink() as sink, stack.live(), stack.worker(sink.url) as worker:
        first = stack.run("milestones.evaluate_team_health", team.pk)
        second = stack.run("milestones.evaluate_team_health", team.pk)
        [mail] = sink.wait_for(1, workers=[worker])
        wait_until(
            lambda: not Message.objects.exclude(state=DeliveryState.SENT).exists(),
            timeout=10,
            workers=[worker],
        )
        time.sleep(0.5)

    assert first["changed"] >= 1 and second["changed"] == 0
    [transition] = HealthTransition.objects.exclude(pk__in=earlier_transitions)
    assert (transition.milestone_id, transition.to_health) == (milestone.pk, Health.OFF_TRACK)
    [alert] = Message.objects.exclude(pk__in=earlier_alerts)
    assert (alert.kind, alert.dedupe_key) == (MessageKind.AT_RISK, f"transition:{transition.pk}")
    assert sink.count == 1
    assert mail["To"] == owner.email
    assert mail["Message-ID"] == alert.message_id
    assert milestone.key in mail["Subject"]
    # Handing the same transition to the alerts again (a retried task) queues nothing.
    assert alerts.queue_health_alerts([transition]) == 0
    assert not Message.objects.exclude(pk__in=[*earlier_alerts, alert.pk]).exists()
