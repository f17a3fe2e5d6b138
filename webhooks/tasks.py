from celery import shared_task

from webhooks import delivery


@shared_task(name="webhooks.deliver_webhook")
def deliver_webhook(delivery_id: int) -> str:
    """Send one webhook delivery row; safe to run twice for the same id (one run claims it)."""
    return delivery.deliver(delivery_id)
