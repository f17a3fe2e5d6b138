from celery import shared_task

from notifications import outbox


@shared_task(name="notifications.deliver_message")
def deliver_message(message_id: int) -> str:
    """Send one outbox row; safe to run twice for the same id (only one run claims it)."""
    return outbox.deliver_message(message_id)


@shared_task(name="notifications.sweep_outbox")
def sweep_outbox() -> dict:
    """Every minute: publish rows whose task never reached a worker, take back dead claims."""
    return outbox.sweep_all()


@shared_task(name="notifications.queue_due_digests")
def queue_due_digests() -> int:
    """Every 15 minutes: queue this week's digest for everyone whose chosen hour has come."""
    from notifications import digest

    return len(digest.queue_due_digests())


@shared_task(name="notifications.queue_update_reminders")
def queue_update_reminders() -> int:
    """Hourly: remind owners of in-progress milestones whose status update is overdue."""
    from notifications import alerts

    return alerts.queue_update_reminders()
