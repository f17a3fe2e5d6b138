"""Event e-mails (placeholder: the content module replaces this)."""


def queue_health_alerts(transitions) -> int:
    return 0


def queue_signoff_request(request) -> None:
    return None


def queue_signoff_decision(decision) -> None:
    return None


def queue_completion_notices(milestone) -> int:
    return 0


def queue_update_reminders(now=None) -> int:
    return 0
