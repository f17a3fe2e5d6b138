"""Webhook events: the domain (notifications/events.py) calls these inside its transactions.

Each event becomes one WebhookDelivery row per active endpoint of the object's team that
subscribed to it, in the same transaction, with the JSON body fixed at that moment; the rows
are published to Celery after commit (a rolled-back change sends nothing). Finding the team's
endpoints is one query per transaction (remembered in `_endpoint_cache`); the object's API
representation is only built when some endpoint wants the event.

Body: {"id": event id, "type", "time" (UTC, ISO 8601), "team" (slug), "object": the object as
the REST API shows it, plus "changes" (field: [before, after]) for updates, "action" for
deliverable events and "health" (from, to, reasons) for health changes}.
"""

import datetime
import json
import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from notifications.outbox import dispatch_on_commit
from webhooks.models import EventType, WebhookDelivery, WebhookEndpoint


def object_changed(obj, verb: str, diff: dict) -> None:
    from milestones.models import Blocker, Deliverable, Milestone

    if isinstance(obj, Milestone):
        created = verb == "created"
        event_type = EventType.MILESTONE_CREATED if created else EventType.MILESTONE_UPDATED
        emit(obj.team_id, event_type, lambda: {"object": _milestones([obj.pk])[obj.pk]}, diff)
    elif isinstance(obj, Deliverable):
        emit(
            obj.milestone.team_id,
            EventType.DELIVERABLE_UPDATED,
            lambda: {"action": verb, "object": _deliverable(obj)},
            diff,
        )
    elif isinstance(obj, Blocker):
        if verb == "created":
            event_type = EventType.BLOCKER_RAISED
        elif _became_resolved(diff):
            event_type = EventType.BLOCKER_RESOLVED
        else:
            return
        emit(obj.milestone.team_id, event_type, lambda: {"object": _blocker(obj)}, diff)


def _became_resolved(diff: dict) -> bool:
    before, after = diff.get("resolved_on", [None, None])
    return before is None and after is not None


def milestone_completed(milestone) -> None:
    emit(
        milestone.team_id,
        EventType.MILESTONE_COMPLETED,
        lambda: {"object": _milestones([milestone.pk])[milestone.pk]},
    )


def health_changed(transitions) -> None:
    """One event per transition (an evaluation covers one team, but group to be safe)."""
    from milestones.models import Milestone

    if not transitions:
        return
    ids = {transition.milestone_id for transition in transitions}
    team_of = dict(Milestone.objects.filter(pk__in=ids).values_list("pk", "team_id"))
    represented = {}

    def representation(milestone_id):
        if not represented:  # every transition's milestone at once, on first need
            represented.update(_milestones(sorted(ids)))
        return represented[milestone_id]

    for transition in transitions:
        emit(
            team_of[transition.milestone_id],
            EventType.MILESTONE_HEALTH_CHANGED,
            lambda t=transition: {
                "object": representation(t.milestone_id),
                "health": {"from": t.from_health, "to": t.to_health, "reasons": t.reasons},
            },
        )


def signoff_decided(decision) -> None:
    def payload():
        from api.serializers import SignoffDecisionSerializer

        decision.latest_pk = decision.pk  # just recorded: the latest of its role
        return {"object": SignoffDecisionSerializer(decision).data}

    emit(decision.milestone.team_id, EventType.SIGNOFF_DECIDED, payload)


def ping(endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A test event for one endpoint (whatever it subscribed to), sent like any other."""
    event_id = uuid.uuid4()
    about = {"endpoint": endpoint.pk, "url": endpoint.url, "events": endpoint.event_types}
    data = {"object": about}
    body = render_body(EventType.PING, endpoint.team.slug, data, event_id)
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event_type=EventType.PING, event_id=event_id, body=body
    )
    dispatch_on_commit(delivery)
    return delivery


# --- Emitting ------------------------------------------------------------------------------


def emit(team_id: int, event_type: str, build, changes: dict | None = None) -> list:
    """Queue `event_type` for every active endpoint of the team that wants it.

    `build()` returns the event's data ({"object": …} and extras); it is called only when
    some endpoint subscribed. Returns the delivery rows.
    """
    endpoints = [e for e in _team_endpoints(team_id) if e.subscribes_to(event_type)]
    if not endpoints:
        return []
    data = build()
    if changes:
        data.setdefault("changes", changes)
    event_id = uuid.uuid4()
    body = render_body(event_type, endpoints[0].team.slug, data, event_id)
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(endpoint=endpoint, event_id=event_id, event_type=event_type, body=body)
        for endpoint in endpoints
    )
    for delivery in deliveries:
        dispatch_on_commit(delivery)
    return deliveries


def render_body(event_type: str, team_slug: str, data: dict, event_id: uuid.UUID) -> str:
    """The exact text that is signed and sent: compact JSON, ASCII only (so text == bytes)."""
    envelope = {
        "id": str(event_id),
        "type": str(event_type),
        "time": timezone.now().astimezone(datetime.UTC).isoformat().replace("+00:00", "Z"),
        "team": team_slug,
        **data,
    }
    return json.dumps(envelope, cls=DjangoJSONEncoder, separators=(",", ":"))


def _team_endpoints(team_id: int) -> list[WebhookEndpoint]:
    cache = _endpoint_cache()
    if cache is not None and team_id in cache:
        return cache[team_id]
    endpoints = list(
        WebhookEndpoint.objects.active().filter(team_id=team_id).select_related("team")
    )
    if cache is not None:
        cache[team_id] = endpoints
    return endpoints


def _endpoint_cache() -> dict | None:
    """A dict that lives as long as the current transaction (None outside one).

    Kept on a no-op commit callback, the way milestones.health.request_evaluation remembers
    its request: Django drops the callback, and so the cache, when the transaction (or the
    savepoint it was made in) rolls back.
    """
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        return None
    for _, callback, _ in connection.run_on_commit:
        cache = getattr(callback, "webhook_endpoints", None)
        if cache is not None:
            return cache

    def forget():
        pass

    forget.webhook_endpoints = {}
    transaction.on_commit(forget)
    return forget.webhook_endpoints


def forget_endpoints() -> None:
    """Drop this transaction's cache (an endpoint was added, changed or removed in it)."""
    cache = _endpoint_cache()
    if cache is not None:
        cache.clear()


# --- Representations (the REST API's shapes; read-only use of api/) -------------------------


def _milestones(ids: list[int]) -> dict[int, dict]:
    from api import readers
    from milestones.models import Milestone

    found = list(readers.annotate_rows(Milestone.objects.filter(pk__in=ids)))
    return {shape["id"]: shape for shape in readers.rows(found)}


def _deliverable(deliverable) -> dict:
    from api.serializers import DeliverableSerializer

    return DeliverableSerializer(deliverable).data


def _blocker(blocker) -> dict:
    from api.serializers import BlockerSerializer

    return BlockerSerializer(blocker).data
