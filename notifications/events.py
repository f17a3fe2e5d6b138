"""Domain events: the one place where a change to the plan reaches e-mail and webhooks.

The services (milestones/services.py), sign-offs (milestones/signoffs.py) and the health engine
(milestones/health.py) call these inside their transactions. Whatever they queue is an outbox
row in that same transaction, published to Celery only after it commits, so a rolled-back
change notifies nobody.
"""

from milestones.models import (
    Blocker,
    Deliverable,
    HealthTransition,
    Milestone,
    MilestoneStatus,
    SignoffDecision,
    SignoffRequest,
)


def object_created(obj, *, actor) -> None:
    from webhooks import events as webhook_events

    if isinstance(obj, Milestone | Deliverable | Blocker):
        webhook_events.object_changed(obj, "created", {})


def object_updated(obj, diff: dict, *, actor) -> None:
    from webhooks import events as webhook_events

    if isinstance(obj, Milestone | Deliverable | Blocker):
        webhook_events.object_changed(obj, "updated", diff)
    if isinstance(obj, Milestone) and diff.get("status", [None, None])[1] == (
        MilestoneStatus.COMPLETED
    ):
        milestone_completed(obj)


def milestone_completed(milestone: Milestone) -> None:
    """A milestone reached completed (by hand, or when its last sign-off arrived)."""
    from notifications import alerts
    from webhooks import events as webhook_events

    alerts.queue_completion_notices(milestone)
    webhook_events.milestone_completed(milestone)


def health_changed(transitions: list[HealthTransition]) -> None:
    """Saved health transitions: an alert for each worse one, a webhook event for each."""
    from notifications import alerts
    from webhooks import events as webhook_events

    if not transitions:
        return
    alerts.queue_health_alerts(transitions)
    webhook_events.health_changed(transitions)


def signoff_requested(request: SignoffRequest) -> None:
    """A holder is asked for a decision (newly assigned, or their decision went stale)."""
    from notifications import alerts

    alerts.queue_signoff_request(request)


def signoff_decided(decision: SignoffDecision) -> None:
    from notifications import alerts
    from webhooks import events as webhook_events

    alerts.queue_signoff_decision(decision)
    webhook_events.signoff_decided(decision)
