"""Changes to endpoints and deliveries that have side effects: each owns its transaction.

The pages, the admin and the delivery task call these; none of them changes an endpoint's
state by hand.
"""

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, Role
from notifications import outbox
from notifications.models import DeliveryState, MessageKind
from webhooks import events
from webhooks.models import WebhookDelivery, WebhookEndpoint, new_secret


@transaction.atomic
def create_endpoint(endpoint: WebhookEndpoint, *, actor) -> WebhookEndpoint:
    """Validate and save a new endpoint (its secret is generated)."""
    endpoint.created_by = actor
    endpoint.full_clean()
    endpoint.save()
    events.forget_endpoints()
    return endpoint


@transaction.atomic
def save_endpoint(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    endpoint.full_clean()
    endpoint.save()
    events.forget_endpoints()
    return endpoint


@transaction.atomic
def delete_endpoint(endpoint: WebhookEndpoint) -> None:
    """Remove the endpoint and its delivery log; queued deliveries are dropped with it."""
    endpoint.delete()
    events.forget_endpoints()


def rotate_secret(endpoint: WebhookEndpoint) -> str:
    """A new secret, used for every delivery from now on (retries of older events included)."""
    endpoint.secret = new_secret()
    endpoint.secret_rotated_at = timezone.now()
    endpoint.save(update_fields=["secret", "secret_rotated_at", "updated_at"])
    return endpoint.secret


@transaction.atomic
def disable(endpoint: WebhookEndpoint, *, reason: str, automatic: bool = False) -> bool:
    """Stop sending to the endpoint; False when it already was disabled.

    When Milepost disables it (`automatic`), every team admin gets an e-mail.
    """
    now = timezone.now()
    changed = WebhookEndpoint.objects.filter(pk=endpoint.pk, is_active=True).update(
        is_active=False,
        disabled_at=now,
        disabled_reason=reason[:300],
        disabled_automatically=automatic,
        updated_at=now,
    )
    events.forget_endpoints()
    endpoint.refresh_from_db()
    if changed and automatic:
        _notify_admins_of_disabling(endpoint)
    return bool(changed)


@transaction.atomic
def enable(endpoint: WebhookEndpoint) -> bool:
    """Send to the endpoint again, with a fresh failure count; False when it was active."""
    changed = WebhookEndpoint.objects.filter(pk=endpoint.pk, is_active=False).update(
        is_active=True,
        disabled_at=None,
        disabled_reason="",
        disabled_automatically=False,
        consecutive_failures=0,
        updated_at=timezone.now(),
    )
    events.forget_endpoints()
    endpoint.refresh_from_db()
    return bool(changed)


def record_success(endpoint_id: int) -> None:
    WebhookEndpoint.objects.filter(pk=endpoint_id).exclude(consecutive_failures=0).update(
        consecutive_failures=0
    )


@transaction.atomic
def record_failure(endpoint_id: int) -> WebhookEndpoint:
    """A delivery failed for good: count it, and disable the endpoint at the limit."""
    endpoint = (
        WebhookEndpoint.objects.select_for_update().select_related("team").get(pk=endpoint_id)
    )
    endpoint.consecutive_failures = F("consecutive_failures") + 1
    endpoint.save(update_fields=["consecutive_failures"])
    endpoint.refresh_from_db(fields=["consecutive_failures"])
    limit = settings.WEBHOOK_DISABLE_AFTER
    if endpoint.is_active and endpoint.consecutive_failures >= limit:
        disable(
            endpoint,
            reason=f"Milepost disabled it after {endpoint.consecutive_failures} failed "
            "deliveries in a row.",
            automatic=True,
        )
    return endpoint


def _notify_admins_of_disabling(endpoint: WebhookEndpoint) -> None:
    admins = Membership.objects.filter(team_id=endpoint.team_id, role=Role.ADMIN).select_related(
        "user"
    )
    last_error = (
        WebhookDelivery.objects.filter(endpoint=endpoint, state=DeliveryState.FAILED)
        .order_by("-finished_at", "-pk")
        .values_list("last_error", flat=True)
        .first()
    )
    page = settings.SITE_URL.rstrip("/") + reverse(
        "webhooks:endpoint", args=[endpoint.team.slug, endpoint.pk]
    )
    context = {"endpoint": endpoint, "team": endpoint.team, "page": page, "last_error": last_error}
    text = render_to_string("webhooks/email/endpoint_disabled.txt", context)
    for membership in admins:
        outbox.queue_message(
            kind=MessageKind.WEBHOOK_DISABLED,
            dedupe_key=f"webhook-disabled:{endpoint.pk}:{endpoint.disabled_at.isoformat()}",
            subject=f"[{endpoint.team.name}] Webhook disabled: {endpoint.url}",
            text=text,
            user=membership.user,
            team=endpoint.team,
        )


@transaction.atomic
def redeliver(delivery: WebhookDelivery) -> WebhookDelivery | None:
    """Send an event again: the same row when it failed (outbox.retry_now), a new row with the
    same event id and body when it was sent. None when it is still queued or the endpoint is
    disabled."""
    if not delivery.endpoint.is_active:
        return None
    if delivery.state == DeliveryState.FAILED:
        return delivery if outbox.retry_now(WebhookDelivery, delivery.pk) else None
    if delivery.state == DeliveryState.SENT:
        again = WebhookDelivery.objects.create(
            endpoint=delivery.endpoint,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            body=delivery.body,
            redelivery_of=delivery,
        )
        outbox.dispatch_on_commit(again)
        return again
    return None
