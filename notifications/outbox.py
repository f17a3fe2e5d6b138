"""The transactional outbox: rows first, tasks second, every delivery exactly once in the
normal case and at least once when a worker dies at the wrong moment.

- `queue_message` inserts a Message in the caller's transaction. The unique constraint on
  (recipient, kind, dedupe key) makes a second copy impossible; the Celery task is published
  only after the transaction commits (a rolled-back request queues nothing).
- A task carries the row id. `claim` moves the row from pending to sending with one
  conditional UPDATE, so of two workers handed the same id only one sends.
- A failed attempt puts the row back to pending with `next_attempt_at` pushed out by
  exponential backoff with jitter; after OUTBOX_MAX_ATTEMPTS (or a permanent refusal) it is
  failed and shows in the team admins' delivery log.
- `sweep` (a beat task) publishes again rows whose task never reached the broker (it was down
  when the request committed) and takes back rows left in sending by a worker that died.

The one window that cannot be closed: the mail server accepted a message and the worker died
before its UPDATE to sent committed. After OUTBOX_CLAIM_TIMEOUT the sweeper hands the row to
another worker, which sends it again. Each copy carries the same Message-ID (the row's), so a
client that de-duplicates on it shows one mail. The kill test in
tests/test_notifications_integration.py measures how often it happens.

Other outbox models (webhook deliveries) reuse `claim`, `finish` and `sweep` through
OUTBOX_TASKS.
"""

import datetime
import logging
import random
import smtplib

from celery import current_app
from django.apps import apps
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.module_loading import import_string
from kombu.exceptions import OperationalError as BrokerError

from notifications.models import DeliveryState, Message, recipient_key_for

logger = logging.getLogger(__name__)

# Outbox model → the Celery task that delivers one of its rows (called with the row id).
OUTBOX_TASKS = {
    "notifications.Message": "notifications.tasks.deliver_message",
    "webhooks.WebhookDelivery": "webhooks.tasks.deliver_webhook",
}

# A row whose task was never published gets this long before the sweeper publishes it: the
# request that queued it is normally publishing it this very moment.
UNDISPATCHED_GRACE_SECONDS = 10

# What `finish` returns when the sweeper took the row back before this worker finished: the
# newer attempt owns the row, so this outcome is not recorded.
CLAIM_LOST = "claim lost"


def retry_delay(attempt: int) -> float:
    """Seconds before the attempt after `attempt`: exponential, capped, ±50% jitter so that
    many rows failing together (the mail server was down) do not retry in lock-step."""
    base = settings.OUTBOX_RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0)
    return min(settings.OUTBOX_RETRY_MAX_SECONDS, base) * random.uniform(0.5, 1.5)


# --- Queueing --------------------------------------------------------------------------------


def queue_message(
    *,
    kind: str,
    dedupe_key: str,
    subject: str,
    text: str,
    html: str = "",
    user=None,
    email: str = "",
    team=None,
    headers: dict | None = None,
    send: bool = True,
) -> Message | None:
    """Queue one e-mail inside the caller's transaction; None when the recipient already has
    this kind of message for this key, or has no address. `send=False` records the row as
    skipped (it takes the once-only key but is never sent)."""
    address = (user.email if user is not None else email).strip()
    if not address:
        return None
    try:
        with transaction.atomic():  # a savepoint: a duplicate must not break the caller
            message = Message.objects.create(
                kind=kind,
                recipient_user=user,
                recipient_email=address,
                recipient_key=recipient_key_for(user, address),
                dedupe_key=dedupe_key,
                team=team,
                subject=subject[:300],
                body_text=text,
                body_html=html,
                headers=headers or {},
                **({} if send else {"state": DeliveryState.SKIPPED, "finished_at": timezone.now()}),
            )
    except IntegrityError:
        return None
    if send:
        dispatch_on_commit(message)
    return message


def dispatch_on_commit(row) -> None:
    model, pk = type(row), row.pk
    transaction.on_commit(lambda: dispatch(model, [pk]))


def dispatch(model, pks, *, countdown: float | None = None) -> int:
    """Publish one delivery task per row; returns how many reached the broker.

    A broker that is down is not an error here: the rows stay pending with no
    `dispatched_at`, and the sweeper publishes them once the broker is back.
    """
    task = import_string(OUTBOX_TASKS[model._meta.label])
    published = []
    for pk in pks:
        try:
            task.apply_async((pk,), countdown=countdown, retry=False)
        except (BrokerError, OSError) as error:
            logger.warning("Broker unreachable; %s %s waits for the sweeper: %s", model, pk, error)
            break
        published.append(pk)
    if published:
        model.objects.filter(pk__in=published, state=DeliveryState.PENDING).update(
            dispatched_at=timezone.now()
        )
    return len(published)


# --- Claiming and finishing ------------------------------------------------------------------


def claim(model, pk):
    """Move a due pending row to sending; the row when this caller won it, else None."""
    now = timezone.now()
    won = model.objects.filter(pk=pk, state=DeliveryState.PENDING, next_attempt_at__lte=now).update(
        state=DeliveryState.SENDING, claimed_at=now, attempts=F("attempts") + 1
    )
    if not won:
        early = model.objects.filter(
            pk=pk, state=DeliveryState.PENDING, next_attempt_at__gt=now
        ).values_list("next_attempt_at", flat=True)
        # The retry's task arrived a moment before its time: wait for it. (Tasks run eagerly
        # ignore countdowns; there the sweeper picks the row up when it is due.)
        if early and not current_app.conf.task_always_eager:
            dispatch(model, [pk], countdown=(early[0] - now).total_seconds())
        return None
    return model.objects.get(pk=pk)


def finish(row, *, error: str = "", permanent: bool = False, **fields) -> str:
    """Record the outcome of the attempt `row` was claimed for; returns the new state.

    Success: sent. Failure: pending again after a backoff, or failed when `permanent` or the
    attempts are used up. Conditional on the claim still being ours, so a worker whose claim
    the sweeper took back cannot overwrite the newer attempt.
    """
    now = timezone.now()
    mine = type(row).objects.filter(
        pk=row.pk, state=DeliveryState.SENDING, claimed_at=row.claimed_at
    )
    if not error:
        won = mine.update(state=DeliveryState.SENT, finished_at=now, last_error="", **fields)
        return DeliveryState.SENT if won else CLAIM_LOST
    if permanent or row.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
        won = mine.update(state=DeliveryState.FAILED, finished_at=now, last_error=error, **fields)
        return DeliveryState.FAILED if won else CLAIM_LOST
    delay = retry_delay(row.attempts)
    updated = mine.update(
        state=DeliveryState.PENDING,
        next_attempt_at=now + datetime.timedelta(seconds=delay),
        claimed_at=None,
        dispatched_at=None,
        last_error=error,
        **fields,
    )
    if not updated:
        return CLAIM_LOST
    dispatch(type(row), [row.pk], countdown=delay)
    return DeliveryState.PENDING


def retry_now(model, pk) -> bool:
    """Put a failed row back in the queue (an admin pressed Retry); False if it was not failed."""
    updated = model.objects.filter(pk=pk, state=DeliveryState.FAILED).update(
        state=DeliveryState.PENDING,
        attempts=0,
        next_attempt_at=timezone.now(),
        dispatched_at=None,
        claimed_at=None,
        finished_at=None,
    )
    if updated:
        transaction.on_commit(lambda: dispatch(model, [pk]))
    return bool(updated)


# --- The sweeper -----------------------------------------------------------------------------


def sweep(model) -> dict:
    """Take back abandoned claims and publish rows nobody is working on."""
    now = timezone.now()
    reclaimed, failed = [], 0
    abandoned = model.objects.filter(
        state=DeliveryState.SENDING,
        claimed_at__lt=now - datetime.timedelta(seconds=settings.OUTBOX_CLAIM_TIMEOUT),
    ).values_list("pk", "claimed_at", "attempts")
    note = "The worker stopped during this attempt; the sweeper took the row back."
    for pk, claimed_at, attempts in abandoned:
        same_claim = model.objects.filter(pk=pk, state=DeliveryState.SENDING, claimed_at=claimed_at)
        if attempts >= settings.OUTBOX_MAX_ATTEMPTS:
            failed += same_claim.update(
                state=DeliveryState.FAILED, finished_at=now, last_error=note
            )
        elif same_claim.update(
            state=DeliveryState.PENDING,
            next_attempt_at=now,
            claimed_at=None,
            dispatched_at=None,
            last_error=note,
        ):
            reclaimed.append(pk)
    redispatch_before = now - datetime.timedelta(seconds=settings.OUTBOX_REDISPATCH_AFTER)
    grace = min(UNDISPATCHED_GRACE_SECONDS, settings.OUTBOX_REDISPATCH_AFTER)
    waiting = (
        model.objects.filter(state=DeliveryState.PENDING, next_attempt_at__lte=now)
        .filter(
            Q(dispatched_at__isnull=True, created_at__lt=now - datetime.timedelta(seconds=grace))
            | Q(dispatched_at__lt=redispatch_before)
        )
        .exclude(pk__in=reclaimed)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:5000]
    )
    pks = reclaimed + list(waiting)
    published = dispatch(model, pks) if pks else 0
    return {"reclaimed": len(reclaimed), "failed": failed, "published": published}


def sweep_all() -> dict:
    return {label: sweep(apps.get_model(label)) for label in OUTBOX_TASKS}


# --- Sending e-mail --------------------------------------------------------------------------


def deliver_message(message_id: int) -> str:
    """Claim, send and record one queued e-mail; the body of the Celery task."""
    message = claim(Message, message_id)
    if message is None:
        return "not claimed"
    try:
        send_email(message)
    except (smtplib.SMTPException, OSError) as error:  # timeouts are OSErrors too
        permanent, description = describe_smtp_error(error)
        logger.warning("Message %s attempt %s: %s", message.pk, message.attempts, description)
        return finish(message, error=description, permanent=permanent)
    return finish(message)


def send_email(message: Message) -> None:
    headers = {**message.headers, "Message-ID": message.message_id}
    email = EmailMultiAlternatives(
        subject=message.subject,
        body=message.body_text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.recipient_email],
        headers=headers,
    )
    if message.body_html:
        email.attach_alternative(message.body_html, "text/html")
    with get_connection(fail_silently=False) as connection:
        connection.send_messages([email])


def describe_smtp_error(error: Exception) -> tuple[bool, str]:
    """(permanent?, words for the delivery log). 5xx answers are permanent; 4xx answers,
    refused connections and timeouts are worth another try."""
    code = getattr(error, "smtp_code", None)
    if isinstance(error, smtplib.SMTPRecipientsRefused) and error.recipients:
        code, reply = next(iter(error.recipients.values()))
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        return code >= 500, f"Recipient refused: {code} {text}"
    if code is not None:
        reply = getattr(error, "smtp_error", b"")
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        return code >= 500, f"Mail server answered {code} {text}".strip()
    return False, f"Could not reach the mail server: {error.__class__.__name__}: {error}"
