"""Sending one webhook delivery: claim the row, check the URL again, POST, record the outcome.

Any 2xx answer is success. Anything else (another status, a redirect, no answer within
WEBHOOK_TIMEOUT_SECONDS, a refused connection, a host that no longer resolves) is a failed
attempt: `outbox.finish` retries it with backoff until OUTBOX_MAX_ATTEMPTS. When a delivery
fails for good its endpoint's failure count goes up (services.record_failure disables it at
WEBHOOK_DISABLE_AFTER); a success resets the count.
"""

import hashlib
import hmac
import http.client
import logging
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from notifications.models import DeliveryState
from notifications.outbox import claim, finish
from webhooks import services
from webhooks.addresses import RefusedURL, UnresolvedHost, check_url, split
from webhooks.models import WebhookDelivery

logger = logging.getLogger(__name__)

USER_AGENT = "Milepost-Webhooks/1"
EXCERPT_CHARS = 500


def signature(secret: str, body: bytes) -> str:
    """The X-Milepost-Signature value: sha256=<hex HMAC-SHA256 of the raw body>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Answer:
    status: int
    reason: str
    excerpt: str


class DeliveryError(Exception):
    """The attempt failed before any HTTP answer; the message goes in the delivery log."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


def deliver(delivery_id: int) -> str:
    """Claim, send and record one delivery; the body of the Celery task."""
    delivery = claim(WebhookDelivery, delivery_id)
    if delivery is None:
        return "not claimed"
    endpoint = delivery.endpoint
    if not endpoint.is_active:
        # Not the receiver's failure, so it does not count towards disabling.
        return finish(delivery, error="Not sent: the endpoint is disabled.", permanent=True)
    body = delivery.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Milepost-Event": delivery.event_type,
        "X-Milepost-Delivery": str(delivery.event_id),
        "X-Milepost-Signature": signature(endpoint.secret, body),
    }
    started = time.monotonic()
    try:
        answer = post(endpoint.url, body, headers, timeout=settings.WEBHOOK_TIMEOUT_SECONDS)
    except DeliveryError as error:
        elapsed = round((time.monotonic() - started) * 1000)
        logger.info("Webhook delivery %s attempt %s: %s", delivery.pk, delivery.attempts, error)
        state = finish(
            delivery,
            error=str(error),
            permanent=error.permanent,
            response_status=None,
            response_excerpt="",
            duration_ms=elapsed,
        )
        return _count(delivery, state)
    elapsed = round((time.monotonic() - started) * 1000)
    outcome = {
        "response_status": answer.status,
        "response_excerpt": answer.excerpt,
        "duration_ms": elapsed,
    }
    if 200 <= answer.status < 300:
        state = finish(delivery, **outcome)
    else:
        note = " (redirects are not followed)" if 300 <= answer.status < 400 else ""
        error = f"The endpoint answered {answer.status} {answer.reason}".strip() + note + "."
        state = finish(delivery, error=error, **outcome)
    return _count(delivery, state)


def _count(delivery: WebhookDelivery, state: str) -> str:
    if state == DeliveryState.SENT:
        services.record_success(delivery.endpoint_id)
    elif state == DeliveryState.FAILED:
        services.record_failure(delivery.endpoint_id)
    return state


def post(url: str, body: bytes, headers: dict, *, timeout: float) -> Answer:
    """POST `body` to `url`, connecting only to the addresses the URL rule approved just now."""
    try:
        addresses = check_url(url)
    except UnresolvedHost as error:
        raise DeliveryError(str(error)) from None  # DNS may be back on the next attempt
    except RefusedURL as error:
        raise DeliveryError(f"Refused: {error}", permanent=True) from None
    scheme, host, port = split(url)
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection_class = PinnedHTTPSConnection if scheme == "https" else PinnedHTTPConnection
    connection = connection_class(host, port, addresses=addresses, timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        excerpt = response.read(EXCERPT_CHARS * 4).decode("utf-8", errors="replace")
        return Answer(response.status, response.reason or "", excerpt[:EXCERPT_CHARS])
    except TimeoutError:
        raise DeliveryError(f"No answer within {timeout:g} s.") from None
    except ssl.SSLError as error:
        raise DeliveryError(f"TLS failed: {error.reason or error}.") from None
    except (OSError, http.client.HTTPException) as error:
        description = f"{error.__class__.__name__}: {error}".strip(": ")
        raise DeliveryError(f"Could not deliver: {description}.") from None
    finally:
        connection.close()


def connect_to_any(addresses: list[str], port: int, timeout: float) -> socket.socket:
    """A connection to the first of `addresses` that answers (as socket.create_connection
    does for a host name, but without resolving it again)."""
    last_error = None
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as error:
            last_error = error
    raise last_error


class PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to approved IP addresses while naming the host in the request (Host header)."""

    def __init__(self, host, port, *, addresses: list[str], timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.addresses = addresses

    def connect(self):
        self.sock = connect_to_any(self.addresses, self.port, self.timeout)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As above, with TLS verified against the host name (SNI and certificate)."""

    def __init__(self, host, port, *, addresses: list[str], timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.addresses = addresses

    def connect(self):
        sock = connect_to_any(self.addresses, self.port, self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)
