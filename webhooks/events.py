"""Webhook events (placeholder until the webhooks module lands: emits nothing yet)."""


def object_changed(obj, verb: str, diff: dict) -> None:
    pass


def milestone_completed(milestone) -> None:
    pass


def health_changed(transitions) -> None:
    pass


def signoff_decided(decision) -> None:
    pass
