"""The outbox's rules, called directly (notifications/outbox.py).

Publishing is observed at one point: the delivery task's `apply_async`. Nothing here talks to
a broker or a mail server except the broker-down test, which points the Celery app at a closed
port; tests/test_notifications_integration.py runs the same code with a real worker and SMTP.
"""

import datetime
import smtplib
import time
from dataclasses import dataclass
from unittest import mock

import pytest
from celery import current_app
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction
from django.utils import timezone

from config.celery import app as celery_app
from notifications import outbox, tasks
from notifications.models import DeliveryState, Message, MessageKind
from tests.factories import make_user
from tests.services import free_port, publishing_to

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Published:
    pk: int
    countdown: float | None


@pytest.fixture(autouse=True)
def project_celery_app():
    """Shared tasks resolve to Celery's *current* app, and any `Celery()` made earlier in the
    run (a client in another test) takes that place: make it the project's app again."""
    previous = current_app._get_current_object()
    celery_app.set_current()
    yield
    previous.set_current()


@pytest.fixture
def published():
    """Every delivery task the code under test hands to Celery, instead of sending it."""
    calls: list[Published] = []

    def record(args, countdown=None, **options):
        calls.append(Published(args[0], countdown))

    with mock.patch.object(tasks.deliver_message, "apply_async", side_effect=record):
        yield calls


@pytest.fixture
def not_eager():
    """Tasks published (to the patched apply_async), not run in this process."""
    assert celery_app.conf.task_always_eager  # the suite's setting (Makefile TEST_ENV)
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = True


@pytest.fixture
def outbox_settings(settings):
    settings.OUTBOX_MAX_ATTEMPTS = 4
    settings.OUTBOX_RETRY_BASE_SECONDS = 10.0
    settings.OUTBOX_RETRY_MAX_SECONDS = 60.0
    settings.OUTBOX_CLAIM_TIMEOUT = 300.0
    settings.OUTBOX_REDISPATCH_AFTER = 300.0
    return settings


def queue(**fields) -> Message | None:
    fields.setdefault("kind", MessageKind.DIGEST)
    fields.setdefault("dedupe_key", "2026-W47")
    fields.setdefault("subject", "Your week in Milepost")
    fields.setdefault("text", "Nothing needs your attention.")
    if "user" not in fields:
        fields.setdefault("email", "stakeholder@example.com")
    return outbox.queue_message(**fields)


def make_row(**fields) -> Message:
    """A row written directly, in whatever state a test needs."""
    address = fields.pop("email", f"row{Message.objects.count()}@example.com")
    fields.setdefault("kind", MessageKind.AT_RISK)
    fields.setdefault("dedupe_key", "transition:1")
    return Message.objects.create(
        recipient_email=address,
        recipient_key=f"email:{address}",
        subject="Subject",
        body_text="Body",
        **fields,
    )


def ago(seconds: float) -> datetime.datetime:
    return timezone.now() - datetime.timedelta(seconds=seconds)


def reloaded(row: Message) -> Message:
    return Message.objects.get(pk=row.pk)


# --- Queueing --------------------------------------------------------------------------------


def test_queueing_the_same_message_twice_keeps_one_row_and_publishes_once(
    published, django_capture_on_commit_callbacks
):
    user = make_user("dana")
    with django_capture_on_commit_callbacks(execute=True):
        first = queue(user=user)
        second = queue(user=user)

    assert first is not None
    assert second is None
    assert list(Message.objects.values_list("pk", flat=True)) == [first.pk]
    assert published == [Published(first.pk, None)]
    first.refresh_from_db()
    assert first.state == DeliveryState.PENDING
    assert first.recipient_key == f"user:{user.pk}"
    assert first.dispatched_at is not None


def test_another_week_or_kind_or_recipient_is_another_message(published):
    user = make_user("dana")
    rows = [
        queue(user=user),
        queue(user=user, dedupe_key="2026-W48"),
        queue(user=user, kind=MessageKind.UPDATE_REMINDER),
        queue(email="Dana@Example.com"),
        queue(email="dana@example.com "),  # the same plain address, spelled differently
    ]
    assert [row is not None for row in rows] == [True, True, True, True, False]
    assert Message.objects.count() == 4


def test_a_duplicate_leaves_the_callers_transaction_usable(published):
    """The once-only constraint fires inside a savepoint: on PostgreSQL a failed statement
    outside one would abort everything the caller does afterwards."""
    with transaction.atomic():
        queue()
        assert queue() is None
        later = queue(dedupe_key="2026-W48")
    assert later is not None
    assert Message.objects.count() == 2


def test_a_recipient_without_an_address_gets_nothing(published):
    assert queue(user=make_user("nomail", email="")) is None
    assert queue(email="   ") is None
    assert not Message.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_leaves_no_row_and_publishes_nothing(published):
    with pytest.raises(RuntimeError), transaction.atomic():
        assert queue() is not None
        raise RuntimeError("the request failed after queueing")

    assert not Message.objects.exists()
    assert published == []

    with transaction.atomic():
        row = queue()
        assert published == [], "published before the transaction committed"
    assert published == [Published(row.pk, None)]
    assert reloaded(row).dispatched_at is not None


# --- Claiming and finishing ------------------------------------------------------------------


def test_only_one_claim_wins(published):
    row = queue()
    won = outbox.claim(Message, row.pk)
    assert won is not None
    assert (won.state, won.attempts) == (DeliveryState.SENDING, 1)
    assert won.claimed_at is not None

    assert outbox.claim(Message, row.pk) is None
    assert reloaded(row).attempts == 1


def test_a_task_that_arrives_before_the_retry_time_is_published_again_for_then(
    published, not_eager
):
    row = make_row(next_attempt_at=timezone.now() + datetime.timedelta(seconds=30))
    assert outbox.claim(Message, row.pk) is None
    assert reloaded(row).state == DeliveryState.PENDING
    [again] = published
    assert again.pk == row.pk
    assert 28 < again.countdown <= 30


def test_run_eagerly_an_early_task_leaves_the_row_to_the_sweeper(published):
    """Eager tasks ignore countdowns: publishing again would run it again at once, forever."""
    assert celery_app.conf.task_always_eager  # the suite's setting (Makefile TEST_ENV)
    row = make_row(next_attempt_at=timezone.now() + datetime.timedelta(seconds=30))
    assert outbox.claim(Message, row.pk) is None
    assert published == []
    assert reloaded(row).state == DeliveryState.PENDING


def test_a_successful_attempt_is_sent(published):
    row = outbox.claim(Message, queue().pk)
    assert outbox.finish(row) == DeliveryState.SENT
    row = reloaded(row)
    assert (row.state, row.attempts, row.last_error) == (DeliveryState.SENT, 1, "")
    assert row.finished_at is not None


def test_a_failed_attempt_waits_a_backoff_then_is_published_for_that_time(
    published, outbox_settings
):
    row = outbox.claim(Message, queue().pk)
    published.clear()
    before = timezone.now()
    assert outbox.finish(row, error="Mail server answered 451 later") == DeliveryState.PENDING

    row = reloaded(row)
    assert row.state == DeliveryState.PENDING
    assert row.last_error == "Mail server answered 451 later"
    assert row.claimed_at is None
    wait = (row.next_attempt_at - before).total_seconds()
    assert 5.0 <= wait <= 15.0 + 1  # base 10 s after the first attempt, ±50%
    [retry] = published
    assert retry.pk == row.pk
    assert abs(retry.countdown - wait) < 1
    assert row.dispatched_at is not None  # the retry's task reached the (patched) broker


def test_the_last_attempt_fails_the_row_for_good(published, outbox_settings):
    outbox_settings.OUTBOX_MAX_ATTEMPTS = 2
    row = queue()
    for _ in range(2):
        Message.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
        claimed = outbox.claim(Message, row.pk)
        published.clear()
        state = outbox.finish(claimed, error="Could not reach the mail server")

    assert state == DeliveryState.FAILED
    row = reloaded(row)
    assert (row.state, row.attempts) == (DeliveryState.FAILED, 2)
    assert row.last_error == "Could not reach the mail server"
    assert row.finished_at is not None
    assert published == []
    assert outbox.claim(Message, row.pk) is None


def test_a_permanent_refusal_fails_at_the_first_attempt(published, outbox_settings):
    row = outbox.claim(Message, queue().pk)
    published.clear()
    state = outbox.finish(row, error="Recipient refused: 550 no such user", permanent=True)
    assert state == DeliveryState.FAILED
    row = reloaded(row)
    assert (row.state, row.attempts) == (DeliveryState.FAILED, 1)
    assert published == []


def test_retry_delay_doubles_per_attempt_up_to_the_cap(outbox_settings, monkeypatch):
    monkeypatch.setattr(outbox.random, "uniform", lambda low, high: 1.0)  # no jitter
    assert [outbox.retry_delay(attempt) for attempt in range(1, 7)] == [
        10.0, 20.0, 40.0, 60.0, 60.0, 60.0,
    ]  # fmt: skip


def test_retry_delay_jitter_stays_within_half_either_way(outbox_settings):
    for attempt, expected in [(1, 10.0), (3, 40.0), (12, 60.0)]:
        delays = [outbox.retry_delay(attempt) for _ in range(400)]
        assert min(delays) >= expected * 0.5
        assert max(delays) <= expected * 1.5
        # Spread out, not a constant: rows failing together must not retry together.
        assert max(delays) - min(delays) > expected * 0.5


def test_a_finish_from_a_worker_whose_claim_was_taken_back_changes_nothing(
    published, outbox_settings
):
    row = queue()
    first_worker = outbox.claim(Message, row.pk)
    # The first worker stalls past the claim timeout; the sweeper hands the row on.
    Message.objects.filter(pk=row.pk).update(claimed_at=ago(301))
    first_worker.claimed_at = reloaded(row).claimed_at
    assert outbox.sweep(Message)["reclaimed"] == 1
    second_worker = outbox.claim(Message, row.pk)
    published.clear()

    assert outbox.finish(first_worker, error="timed out") == outbox.CLAIM_LOST
    assert outbox.finish(first_worker) == outbox.CLAIM_LOST
    current = reloaded(row)
    assert (current.state, current.attempts) == (DeliveryState.SENDING, 2)
    assert current.claimed_at == second_worker.claimed_at
    assert published == []

    outbox.finish(second_worker)
    assert reloaded(row).state == DeliveryState.SENT


def test_retry_now_puts_a_failed_row_back_in_the_queue(
    published, django_capture_on_commit_callbacks
):
    row = make_row(
        state=DeliveryState.FAILED,
        attempts=6,
        last_error="Recipient refused: 550",
        finished_at=ago(60),
        next_attempt_at=ago(3600),
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox.retry_now(Message, row.pk) is True
        assert published == []  # only after the admin's transaction commits

    row = reloaded(row)
    assert (row.state, row.attempts, row.finished_at) == (DeliveryState.PENDING, 0, None)
    assert row.next_attempt_at >= ago(5)
    assert published == [Published(row.pk, None)]


@pytest.mark.parametrize("state", [DeliveryState.PENDING, DeliveryState.SENDING, "sent"])
def test_retry_now_refuses_a_row_that_has_not_failed(
    published, django_capture_on_commit_callbacks, state
):
    row = make_row(state=state, attempts=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox.retry_now(Message, row.pk) is False
    assert (reloaded(row).state, reloaded(row).attempts) == (state, 1)
    assert published == []


# --- The sweeper -----------------------------------------------------------------------------


def test_the_sweeper_takes_back_abandoned_claims(published, outbox_settings):
    abandoned = make_row(
        email="a@example.com", state=DeliveryState.SENDING, attempts=1, claimed_at=ago(301)
    )
    working = make_row(
        email="b@example.com", state=DeliveryState.SENDING, attempts=1, claimed_at=ago(30)
    )
    out_of_attempts = make_row(
        email="c@example.com", state=DeliveryState.SENDING, attempts=4, claimed_at=ago(400)
    )

    assert outbox.sweep(Message) == {"reclaimed": 1, "failed": 1, "published": 1}

    abandoned = reloaded(abandoned)
    assert abandoned.state == DeliveryState.PENDING
    assert abandoned.claimed_at is None
    assert abandoned.next_attempt_at <= timezone.now()
    assert "worker stopped" in abandoned.last_error
    assert published == [Published(abandoned.pk, None)]
    assert reloaded(working).state == DeliveryState.SENDING
    out_of_attempts = reloaded(out_of_attempts)
    assert out_of_attempts.state == DeliveryState.FAILED
    assert "worker stopped" in out_of_attempts.last_error


def test_the_sweeper_publishes_rows_whose_task_never_reached_the_broker(published, outbox_settings):
    undispatched = make_row(email="a@example.com", created_at=ago(11))
    just_queued = make_row(email="b@example.com")  # its request is publishing it right now
    lost_long_ago = make_row(email="c@example.com", created_at=ago(900), dispatched_at=ago(301))
    in_the_queue = make_row(email="d@example.com", created_at=ago(60), dispatched_at=ago(60))
    waiting_to_retry = make_row(email="e@example.com", created_at=ago(60), next_attempt_at=ago(-60))
    for state in (DeliveryState.SENT, DeliveryState.FAILED):
        make_row(email=f"{state}@example.com", state=state, created_at=ago(900))

    result = outbox.sweep(Message)

    assert result == {"reclaimed": 0, "failed": 0, "published": 2}
    assert {call.pk for call in published} == {undispatched.pk, lost_long_ago.pk}
    assert reloaded(undispatched).dispatched_at >= ago(5)
    assert reloaded(just_queued).dispatched_at is None
    assert reloaded(in_the_queue).dispatched_at <= ago(59)
    assert reloaded(waiting_to_retry).dispatched_at is None


def test_the_sweeper_does_nothing_on_a_quiet_outbox(published, django_assert_num_queries):
    make_row(state=DeliveryState.SENT)
    with django_assert_num_queries(2):  # abandoned claims, then rows waiting for a task
        assert outbox.sweep(Message) == {"reclaimed": 0, "failed": 0, "published": 0}
    assert published == []


# --- The broker is down ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_change_commits_when_the_broker_is_unreachable():
    """Nothing listens on the broker's port: the commit succeeds at once and the row waits,
    undispatched, for the sweeper."""
    closed = f"redis://127.0.0.1:{free_port()}/0"
    with publishing_to(closed, "milepost-test-closed"):
        started = time.monotonic()
        with transaction.atomic():
            row = queue()
        elapsed = time.monotonic() - started

    row = reloaded(row)
    assert row.state == DeliveryState.PENDING
    assert row.dispatched_at is None
    assert elapsed < 5.0, f"the commit waited {elapsed:.1f}s for the broker"


# --- Sending ---------------------------------------------------------------------------------


class RefusingBackend(BaseEmailBackend):
    """A mail server that refuses the recipient with `RefusingBackend.reply`."""

    reply = (451, b"4.3.0 Mailbox busy, try later")

    def send_messages(self, messages):
        raise smtplib.SMTPRecipientsRefused({messages[0].to[0]: self.reply})


def test_delivering_sends_the_row_once_with_its_message_id(published, django_assert_num_queries):
    row = queue(
        html="<p>Nothing needs your attention.</p>",
        headers={"List-Unsubscribe": "<https://milepost.example/u/x>"},
    )
    with django_assert_num_queries(3):  # claim, read the row, record the outcome
        assert outbox.deliver_message(row.pk) == DeliveryState.SENT
    assert outbox.deliver_message(row.pk) == "not claimed"

    [sent] = mail.outbox
    assert sent.to == ["stakeholder@example.com"]
    assert sent.extra_headers["Message-ID"] == row.message_id
    assert sent.extra_headers["List-Unsubscribe"] == "<https://milepost.example/u/x>"
    assert sent.alternatives[0][1] == "text/html"
    assert reloaded(row).state == DeliveryState.SENT


def test_a_temporary_refusal_is_retried_and_a_permanent_one_fails(
    published, outbox_settings, monkeypatch
):
    outbox_settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"
    busy = queue(email="busy@example.com")
    assert outbox.deliver_message(busy.pk) == DeliveryState.PENDING
    busy = reloaded(busy)
    assert busy.last_error == "Recipient refused: 451 4.3.0 Mailbox busy, try later"

    monkeypatch.setattr(RefusingBackend, "reply", (550, b"5.1.1 No such user"))
    gone = queue(email="gone@example.com")
    assert outbox.deliver_message(gone.pk) == DeliveryState.FAILED
    gone = reloaded(gone)
    assert (gone.attempts, gone.last_error) == (1, "Recipient refused: 550 5.1.1 No such user")
    assert mail.outbox == []


@pytest.mark.parametrize(
    ("error", "permanent", "words"),
    [
        (
            smtplib.SMTPRecipientsRefused({"a@example.com": (451, b"4.7.1 Greylisted")}),
            False,
            "Recipient refused: 451 4.7.1 Greylisted",
        ),
        (
            smtplib.SMTPRecipientsRefused({"a@example.com": (550, b"5.1.1 User unknown")}),
            True,
            "Recipient refused: 550 5.1.1 User unknown",
        ),
        (
            smtplib.SMTPDataError(554, b"5.7.1 Message rejected as spam"),
            True,
            "Mail server answered 554 5.7.1 Message rejected as spam",
        ),
        (
            smtplib.SMTPDataError(452, b"4.3.1 Insufficient system storage"),
            False,
            "Mail server answered 452 4.3.1 Insufficient system storage",
        ),
        (
            ConnectionRefusedError(111, "Connection refused"),
            False,
            "Could not reach the mail server: ConnectionRefusedError: [Errno 111] "
            "Connection refused",
        ),
        (
            smtplib.SMTPServerDisconnected("Connection unexpectedly closed"),
            False,
            "Could not reach the mail server: SMTPServerDisconnected: Connection "
            "unexpectedly closed",
        ),
        (
            TimeoutError("timed out"),
            False,
            "Could not reach the mail server: TimeoutError: timed out",
        ),
    ],
)
def test_describe_smtp_error(error, permanent, words):
    assert outbox.describe_smtp_error(error) == (permanent, words)
