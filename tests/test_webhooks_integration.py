"""Webhooks end to end: a real Celery worker process delivers to a receiver on 127.0.0.1.

The receiver checks X-Milepost-Signature itself, as an integration would, and answers 401 to
a bad one. The worker runs on this test's database and its own queue on a private Redis
(tests/services.py), with short retry pauses so backoff and disabling take seconds.
"""

import hashlib
import hmac
import itertools
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from milestones import services
from milestones.models import today
from notifications.models import DeliveryState, Message, MessageKind
from tests.factories import make_blocker, make_milestone
from tests.services import outbox_worker, private_redis, publishing_to, wait_until
from webhooks import services as webhook_services
from webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

WORKER_ENV = {
    "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
    "WEBHOOK_TIMEOUT_SECONDS": "5",
    "OUTBOX_RETRY_BASE_SECONDS": "0.5",
    "OUTBOX_RETRY_MAX_SECONDS": "2",
    "OUTBOX_MAX_ATTEMPTS": "3",
    "WEBHOOK_DISABLE_AFTER": "2",
    "EMAIL_URL": "memory://",
}


class VerifyingReceiver:
    """Answers `status` (default 204) to requests whose signature verifies, 401 otherwise."""

    def __init__(self, status: int = 204):
        self.secret = b""
        self.status = status
        self.requests = []  # (monotonic time, verified?, parsed body)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                expected = hmac.new(receiver.secret, raw, hashlib.sha256).hexdigest()
                given = self.headers.get("X-Milepost-Signature", "")
                verified = hmac.compare_digest(given, f"sha256={expected}")
                receiver.requests.append((time.monotonic(), verified, json.loads(raw)))
                self.send_response(receiver.status if verified else 401)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/milepost"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def worker_on_redis(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    queue = f"milepost-webhooks-{uuid.uuid4().hex[:8]}"
    with (
        private_redis() as redis,
        publishing_to(redis.url, queue),
        outbox_worker(redis.url, queue, extra_env=WORKER_ENV) as worker,
    ):
        worker.wait_until_ready()
        yield worker
        assert worker.poll() is None, f"the worker died; see {worker.log_path}"


def make_endpoint(world, url):
    endpoint = WebhookEndpoint(team=world.team, url=url, event_types=["milestone.created",
                               "blocker.raised", "blocker.resolved"])  # fmt: skip
    return webhook_services.create_endpoint(endpoint, actor=world.admin)


def test_a_real_worker_delivers_signed_events_the_receiver_verifies(world, worker_on_redis):
    with VerifyingReceiver() as receiver:
        endpoint = make_endpoint(world, receiver.url)
        receiver.secret = endpoint.secret.encode()
        milestone = make_milestone(world.plan, world.admin, title="Delivered by a worker")
        blocker = make_blocker(milestone, world.admin)
        services.update_object(blocker, actor=world.admin, resolved_on=today())

        def all_sent():
            rows = list(WebhookDelivery.objects.filter(state=DeliveryState.SENT))
            return rows if len(rows) == 3 else None

        rows = wait_until(all_sent, timeout=60, message="the three deliveries were not all sent")
    assert [verified for _, verified, _ in receiver.requests] == [True, True, True]
    received = {body["type"]: body for _, _, body in receiver.requests}
    assert set(received) == {"milestone.created", "blocker.raised", "blocker.resolved"}
    assert received["milestone.created"]["object"]["title"] == "Delivered by a worker"
    assert {row.response_status for row in rows} == {204}
    assert {row.attempts for row in rows} == {1}


def test_a_failing_receiver_gets_retries_with_backoff_then_the_endpoint_is_disabled(
    world, worker_on_redis
):
    with VerifyingReceiver(status=500) as receiver:
        endpoint = make_endpoint(world, receiver.url)
        receiver.secret = endpoint.secret.encode()
        make_blocker(world.milestone, world.admin, title="First")
        make_blocker(world.milestone, world.admin, title="Second")

        def disabled():
            endpoint.refresh_from_db()
            return not endpoint.is_active

        wait_until(disabled, timeout=90, message="the endpoint was not disabled")

    rows = list(WebhookDelivery.objects.order_by("pk"))
    assert [(row.state, row.attempts, row.response_status) for row in rows] == [
        ("failed", 3, 500),
        ("failed", 3, 500),
    ]
    assert all(verified for _, verified, _ in receiver.requests)
    for row in rows:
        times = [at for at, _, body in receiver.requests if body["id"] == str(row.event_id)]
        assert len(times) == 3
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        # base 0.5 s, doubling, ±50% jitter: at least 0.25 s, then at least 0.5 s.
        assert gaps[0] >= 0.2 and gaps[1] >= 0.45, gaps
    assert endpoint.disabled_automatically
    assert endpoint.consecutive_failures == 2
    notice = Message.objects.get(kind=MessageKind.WEBHOOK_DISABLED)
    assert notice.recipient_user == world.admin
    assert notice.dedupe_key == f"webhook-disabled:{endpoint.pk}:{endpoint.disabled_at.isoformat()}"
