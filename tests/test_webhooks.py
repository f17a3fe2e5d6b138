"""Webhooks: events become signed deliveries for the right endpoints; the admin pages.

Deliveries are sent for real to a receiver on 127.0.0.1 (http.server in a thread); the only
thing replaced is publishing to the broker (`published` records what would be queued), so each
test decides when `deliver` runs.
"""

import datetime
import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from milestones import health, services, signoffs
from milestones.models import today
from notifications.models import DeliveryState, Message, MessageKind
from tests.factories import add_member, make_blocker, make_deliverable, make_milestone, make_user
from webhooks import delivery as webhook_delivery
from webhooks import services as webhook_services
from webhooks.addresses import RefusedURL, check_url
from webhooks.models import SUBSCRIBABLE_EVENTS, EventType, WebhookDelivery, WebhookEndpoint

ALL_EVENTS = [event.value for event in SUBSCRIBABLE_EVENTS]


# --- Fixtures ------------------------------------------------------------------------------


class Receiver:
    """An HTTP server on 127.0.0.1 that records every request and answers from `statuses`
    (then 200); `delay` seconds before answering makes it slow."""

    def __init__(self):
        self.requests = []
        self.statuses = []
        self.delay = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                time.sleep(receiver.delay)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(f"answer {status}".encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/milepost?x=1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def bodies(self) -> list[dict]:
        return [json.loads(request["body"]) for request in self.requests]


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def published(monkeypatch):
    """Ids of the deliveries handed to the broker, with their countdowns (nothing runs)."""
    from webhooks.tasks import deliver_webhook

    calls = []
    monkeypatch.setattr(
        deliver_webhook,
        "apply_async",
        lambda args, countdown=None, retry=None: calls.append((args[0], countdown)),
    )
    return calls


def make_endpoint(team, actor, url="http://127.0.0.1:9/never", events=None, **fields):
    endpoint = WebhookEndpoint(team=team, url=url, event_types=events or ALL_EVENTS, **fields)
    return webhook_services.create_endpoint(endpoint, actor=actor)


@pytest.fixture
def endpoint(world, receiver):
    return make_endpoint(world.team, world.admin, receiver.url)


def types_of(endpoint) -> list[str]:
    return list(
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .order_by("pk")
        .values_list("event_type", flat=True)
    )


def deliver_due() -> list[str]:
    return [
        webhook_delivery.deliver(pk)
        for pk in WebhookDelivery.objects.filter(
            state=DeliveryState.PENDING, next_attempt_at__lte=timezone.now()
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    ]


def make_due(delivery):
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


# --- Which events reach which endpoints -----------------------------------------------------


def test_each_domain_change_maps_to_its_event_type(world, endpoint):
    milestone = make_milestone(world.plan, world.admin, title="Queue drained")
    services.update_object(milestone, actor=world.admin, title="Queue drained fast")
    deliverable = make_deliverable(milestone, world.admin, title="Runbook")
    services.update_object(deliverable, actor=world.admin, title="Runbook v2")
    blocker = make_blocker(milestone, world.admin, title="Waiting for infra")
    services.update_object(blocker, actor=world.admin, next_action="Ping infra")  # no event
    services.update_object(blocker, actor=world.admin, resolved_on=today())
    services.update_object(milestone, actor=world.admin, status="completed")
    assert types_of(endpoint) == [
        "milestone.created",
        "milestone.updated",
        "deliverable.updated",
        "deliverable.updated",
        "blocker.raised",
        "blocker.resolved",
        "milestone.updated",
        "milestone.completed",
    ]
    bodies = [json.loads(d.body) for d in WebhookDelivery.objects.order_by("pk")]
    assert bodies[1]["changes"] == {"title": ["Queue drained", "Queue drained fast"]}
    assert [bodies[2]["action"], bodies[3]["action"]] == ["created", "updated"]
    assert bodies[5]["object"]["resolved_on"] == today().isoformat()
    assert bodies[7]["object"]["status"] == "completed"


def test_health_transitions_and_sign_off_decisions_are_events(world, endpoint):
    late = make_milestone(
        world.plan,
        world.admin,
        status="in_progress",
        start_date=today() - datetime.timedelta(days=40),
        target_date=today() - datetime.timedelta(days=5),
    )
    health.evaluate_team(world.team.pk)
    changes = WebhookDelivery.objects.filter(event_type=EventType.MILESTONE_HEALTH_CHANGED)
    late_change = next(
        json.loads(d.body) for d in changes if json.loads(d.body)["object"]["id"] == late.pk
    )
    assert late_change["health"]["from"] == "on_track"
    assert late_change["health"]["to"] == "off_track"
    assert any(reason["code"] == "overdue" for reason in late_change["health"]["reasons"])

    role = world.milestone.signoff_roles.first()
    signoffs.set_holder(role, actor=world.admin, holder=world.member)
    decision = signoffs.decide(
        world.milestone,
        user=world.member,
        role=role,
        outcome="changes_requested",
        comment="The runbook is missing.",
    )
    decided = json.loads(WebhookDelivery.objects.get(event_type=EventType.SIGNOFF_DECIDED).body)
    assert decided["object"]["id"] == decision.pk
    assert decided["object"]["outcome"] == "changes_requested"
    assert decided["object"]["decided_by"] == world.member.username
    assert decided["object"]["current"] is True


def test_only_subscribed_active_endpoints_of_the_objects_team_get_deliveries(world, receiver):
    everything = make_endpoint(world.team, world.admin, receiver.url)
    blockers_only = make_endpoint(world.team, world.admin, receiver.url, events=["blocker.raised"])
    paused = make_endpoint(world.team, world.admin, receiver.url)
    webhook_services.disable(paused, reason="Paused.")
    elsewhere = make_endpoint(world.other_team, world.outsider, receiver.url)

    make_milestone(world.plan, world.admin)
    make_blocker(world.milestone, world.admin)

    assert types_of(everything) == ["milestone.created", "blocker.raised"]
    assert types_of(blockers_only) == ["blocker.raised"]
    assert types_of(paused) == []
    assert types_of(elsewhere) == []
    # The other team's own changes reach only the other team's endpoint.
    other_plan = services.create_object(
        type(world.plan)(team=world.other_team, title="Theirs"), actor=world.outsider
    )
    make_milestone(other_plan, world.outsider)
    assert types_of(elsewhere) == ["milestone.created"]
    assert types_of(everything) == ["milestone.created", "blocker.raised"]


def test_a_rolled_back_change_queues_and_publishes_nothing(
    world, endpoint, published, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        make_milestone(world.plan, world.admin, title="Never happened")
        assert WebhookDelivery.objects.count() == 1
        raise RuntimeError("the request failed")
    assert WebhookDelivery.objects.count() == 0
    assert published == []


def test_a_committed_change_is_published_after_commit(
    world, endpoint, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        make_milestone(world.plan, world.admin)
        assert published == []  # not before the commit
    for callback in callbacks:
        callback()
    delivery = WebhookDelivery.objects.get()
    assert published == [(delivery.pk, None)]


def test_endpoints_are_looked_up_once_per_transaction(world, receiver):
    make_endpoint(world.team, world.admin, receiver.url, events=["blocker.raised"])
    with CaptureQueriesContext(transaction.get_connection()) as queries, transaction.atomic():
        for number in range(3):
            make_blocker(world.milestone, world.admin, title=f"Blocker {number}")
    lookups = [q for q in queries.captured_queries if 'FROM "webhooks_webhookendpoint"' in q["sql"]]
    assert len(lookups) == 1
    assert WebhookDelivery.objects.count() == 3


# --- Sending --------------------------------------------------------------------------------


def test_a_delivery_is_signed_json_with_event_id_type_time_and_the_api_object(
    world, endpoint, receiver, client_for
):
    milestone = make_milestone(world.plan, world.admin, title="Signed and sealed")
    row = WebhookDelivery.objects.get()
    assert webhook_delivery.deliver(row.pk) == DeliveryState.SENT

    (request,) = receiver.requests
    headers, raw = request["headers"], request["body"]
    expected = hmac.new(endpoint.secret.encode(), raw, hashlib.sha256).hexdigest()
    assert headers["X-Milepost-Signature"] == f"sha256={expected}"
    assert hmac.new(b"another secret", raw, hashlib.sha256).hexdigest() != expected
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Milepost-Event"] == "milestone.created"
    body = json.loads(raw)
    assert headers["X-Milepost-Delivery"] == body["id"] == str(row.event_id)
    assert raw.decode() == row.body  # exactly the stored, signed text
    assert body["type"] == "milestone.created"
    assert body["team"] == world.team.slug
    sent_at = datetime.datetime.fromisoformat(body["time"].replace("Z", "+00:00"))
    assert abs((timezone.now() - sent_at).total_seconds()) < 60
    # The object is what the REST API shows for it.
    api = client_for(world.admin).get(f"/api/v1/milestones/{milestone.pk}/").json()
    assert body["object"] == api

    row.refresh_from_db()
    assert (row.state, row.response_status, row.attempts) == ("sent", 200, 1)
    assert row.response_excerpt == "answer 200"
    assert row.duration_ms is not None


def test_a_non_2xx_answer_is_retried_with_backoff_then_fails(
    world, endpoint, receiver, published, settings
):
    settings.OUTBOX_MAX_ATTEMPTS = 2
    receiver.statuses = [503, 500]
    make_blocker(world.milestone, world.admin)
    row = WebhookDelivery.objects.get()

    assert webhook_delivery.deliver(row.pk) == DeliveryState.PENDING
    row.refresh_from_db()
    assert row.response_status == 503
    assert "answered 503" in row.last_error
    assert row.next_attempt_at > timezone.now()
    assert published[-1][0] == row.pk and published[-1][1] > 0  # republished with a countdown
    assert webhook_delivery.deliver(row.pk) == "not claimed"  # not due yet

    make_due(row)
    assert webhook_delivery.deliver(row.pk) == DeliveryState.FAILED
    row.refresh_from_db()
    assert (row.state, row.attempts, row.response_status) == ("failed", 2, 500)
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 1
    assert len(receiver.requests) == 2


def test_no_answer_within_the_timeout_is_a_failed_attempt(world, endpoint, receiver, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    receiver.delay = 1.0
    make_blocker(world.milestone, world.admin)
    row = WebhookDelivery.objects.get()
    assert webhook_delivery.deliver(row.pk) == DeliveryState.PENDING
    row.refresh_from_db()
    assert row.last_error == "No answer within 0.3 s."
    assert row.response_status is None


def test_a_refused_connection_is_a_failed_attempt(world, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = make_endpoint(world.team, world.admin, f"http://127.0.0.1:{port}/")
    make_blocker(world.milestone, world.admin)
    row = WebhookDelivery.objects.get(endpoint=endpoint)
    assert webhook_delivery.deliver(row.pk) == DeliveryState.PENDING
    row.refresh_from_db()
    assert row.last_error.startswith("Could not deliver: ConnectionRefusedError")


def test_the_endpoint_is_disabled_after_repeated_failure_and_admins_are_mailed(
    world, endpoint, receiver, settings, client_for
):
    settings.OUTBOX_MAX_ATTEMPTS = 1
    settings.WEBHOOK_DISABLE_AFTER = 2
    second_admin = add_member(world.team, make_user("bea"), Role.ADMIN)
    receiver.statuses = [500, 500]

    make_blocker(world.milestone, world.admin)
    deliver_due()
    endpoint.refresh_from_db()
    assert (endpoint.is_active, endpoint.consecutive_failures) == (True, 1)
    make_blocker(world.milestone, world.admin)
    deliver_due()

    endpoint.refresh_from_db()
    assert endpoint.is_active is False
    assert endpoint.disabled_automatically is True
    assert endpoint.consecutive_failures == 2
    assert "2 failed deliveries in a row" in endpoint.disabled_reason
    mails = Message.objects.filter(kind=MessageKind.WEBHOOK_DISABLED)
    assert {m.recipient_user for m in mails} == {world.admin, second_admin}  # not the member
    key = f"webhook-disabled:{endpoint.pk}:{endpoint.disabled_at.isoformat()}"
    assert {m.dedupe_key for m in mails} == {key}
    assert all(m.team == world.team for m in mails)
    assert endpoint.url in mails[0].body_text
    assert f"/t/{world.team.slug}/webhooks/{endpoint.pk}/" in mails[0].body_text

    make_blocker(world.milestone, world.admin)  # no longer sent to
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 2
    page = client_for(world.admin).get(reverse("webhooks:index", args=[world.team.slug]))
    assert "Milepost disabled" in page.content.decode()


def test_a_success_resets_the_failure_count(world, endpoint, receiver, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 1
    receiver.statuses = [500]
    make_blocker(world.milestone, world.admin)
    deliver_due()
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 1
    make_blocker(world.milestone, world.admin)
    assert deliver_due() == [DeliveryState.SENT]
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0


def test_queued_deliveries_of_a_disabled_endpoint_are_not_sent_and_not_counted(
    world, endpoint, receiver
):
    make_blocker(world.milestone, world.admin)
    webhook_services.disable(endpoint, reason="Paused.")
    assert deliver_due() == [DeliveryState.FAILED]
    assert receiver.requests == []
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0
    assert WebhookDelivery.objects.get().last_error == "Not sent: the endpoint is disabled."


def test_the_current_secret_signs_every_attempt(world, endpoint, receiver):
    make_blocker(world.milestone, world.admin)
    new_secret = webhook_services.rotate_secret(endpoint)
    deliver_due()
    raw = receiver.requests[0]["body"]
    expected = hmac.new(new_secret.encode(), raw, hashlib.sha256).hexdigest()
    assert receiver.requests[0]["headers"]["X-Milepost-Signature"] == f"sha256={expected}"


def test_a_delivery_connects_to_the_address_that_was_checked(world, receiver, monkeypatch):
    """No second DNS lookup between the check and the connection (DNS rebinding)."""
    real_getaddrinfo = socket.getaddrinfo
    lookups = []

    def fake_getaddrinfo(host, port, *args, **kwargs):
        if host == "receiver.test":
            lookups.append(host)
            return real_getaddrinfo("127.0.0.1", port, *args, **kwargs)
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    port = receiver.server.server_address[1]
    make_endpoint(world.team, world.admin, f"http://receiver.test:{port}/hook")
    make_blocker(world.milestone, world.admin)
    lookups.clear()
    assert deliver_due() == [DeliveryState.SENT]
    assert lookups == ["receiver.test"]
    assert receiver.requests[0]["headers"]["Host"] == f"receiver.test:{port}"


# --- The URL rule ---------------------------------------------------------------------------


@pytest.fixture
def production(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    settings.SITE_URL = "https://milepost.example.com"
    settings.ALLOWED_HOSTS = ["milepost.example.com", ".internal.example.org", "*"]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:8000/", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("http://10.1.2.3/hook", "private"),
        ("http://192.168.0.10/hook", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://0.0.0.0/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("https://milepost.example.com/api/v1/", "Milepost itself"),
        ("https://admin.internal.example.org/", "Milepost itself"),
        ("ftp://files.example.com/", "http:// or https://"),
        ("https://user:secret@93.184.216.34/", "user names and passwords"),
    ],
)
def test_production_refuses_urls_that_point_inward(production, url, why):
    with pytest.raises(RefusedURL, match=why):
        check_url(url)


def test_production_refuses_a_name_that_resolves_to_a_private_address(production, monkeypatch):
    def fake_getaddrinfo(host, port, **kwargs):
        assert host == "hooks.example.net"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port))]  # fmt: skip

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(RefusedURL, match=r"10\.0\.0\.7"):
        check_url("https://hooks.example.net/milepost")


def test_production_accepts_a_public_address(production):
    assert check_url("https://93.184.216.34/hooks") == ["93.184.216.34"]


def test_development_settings_allow_loopback(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    assert check_url("http://127.0.0.1:8000/hook") == ["127.0.0.1"]


def test_a_url_that_turned_private_is_refused_again_at_delivery_time(
    world, endpoint, receiver, settings
):
    make_blocker(world.milestone, world.admin)
    settings.SITE_URL = "https://milepost.example.com"
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False  # as if DNS now pointed somewhere inward
    assert deliver_due() == [DeliveryState.FAILED]  # refused for good: no retries
    assert receiver.requests == []
    row = WebhookDelivery.objects.get()
    assert row.last_error.startswith("Refused:") and "loopback" in row.last_error


# --- Pages: permissions ---------------------------------------------------------------------


def page_urls(team_slug, endpoint_pk, delivery_pk):
    args = [team_slug, endpoint_pk]
    return [
        ("get", reverse("webhooks:index", args=[team_slug])),
        ("get", reverse("webhooks:create", args=[team_slug])),
        ("post", reverse("webhooks:create", args=[team_slug])),
        ("get", reverse("webhooks:endpoint", args=args)),
        ("get", reverse("webhooks:edit", args=args)),
        ("post", reverse("webhooks:edit", args=args)),
        ("get", reverse("webhooks:delete", args=args)),
        ("post", reverse("webhooks:delete", args=args)),
        ("get", reverse("webhooks:rotate", args=args)),
        ("post", reverse("webhooks:rotate", args=args)),
        ("post", reverse("webhooks:ping", args=args)),
        ("post", reverse("webhooks:enable", args=args)),
        ("post", reverse("webhooks:disable", args=args)),
        ("post", reverse("webhooks:redeliver", args=[*args, delivery_pk])),
    ]


def test_only_team_admins_reach_the_webhook_pages(world, endpoint, client, client_for):
    make_blocker(world.milestone, world.admin)
    row = WebhookDelivery.objects.get()
    urls = page_urls(world.team.slug, endpoint.pk, row.pk)
    for method, url in urls:
        response = getattr(client, method)(url)
        assert response.status_code == 302 and "/accounts/login/" in response.url, url
    for user, status in [(world.member, 403), (world.viewer, 403), (world.outsider, 404)]:
        logged_in = client_for(user)
        for method, url in urls:
            assert getattr(logged_in, method)(url).status_code == status, (user, method, url)
    endpoint.refresh_from_db()
    assert endpoint.is_active and WebhookEndpoint.objects.count() == 1
    assert WebhookDelivery.objects.count() == 1


def test_an_admin_of_another_team_cannot_reach_this_teams_endpoints(world, endpoint, client_for):
    make_blocker(world.milestone, world.admin)
    row = WebhookDelivery.objects.get()
    # The outsider is an admin of their own team: this team's endpoint under their slug is 404.
    client = client_for(world.outsider)
    for method, url in page_urls(world.other_team.slug, endpoint.pk, row.pk)[3:]:
        assert getattr(client, method)(url).status_code == 404, (method, url)
    endpoint.refresh_from_db()
    assert endpoint.is_active


def test_the_settings_page_links_to_webhooks_for_admins_only(world, client_for):
    link = reverse("webhooks:index", args=[world.team.slug])
    settings_url = reverse("team_settings", args=[world.team.slug])
    assert link in client_for(world.admin).get(settings_url).content.decode()
    assert link not in client_for(world.member).get(settings_url).content.decode()


# --- Pages: what admins do ------------------------------------------------------------------


def test_an_admin_adds_an_endpoint_and_sees_its_secret_once(world, client_for, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    client = client_for(world.admin)
    response = client.post(
        reverse("webhooks:create", args=[world.team.slug]),
        {"name": "CI bot", "url": "http://127.0.0.1:9000/hook", "event_types": ["blocker.raised"]},
    )
    assert response.status_code == 201
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.team, endpoint.created_by) == (world.team, world.admin)
    assert endpoint.name == "CI bot"
    assert endpoint.event_types == ["blocker.raised"]
    assert endpoint.secret.startswith("whsec_") and len(endpoint.secret) > 40
    assert endpoint.secret in response.content.decode()
    log = client.get(reverse("webhooks:endpoint", args=[world.team.slug, endpoint.pk]))
    assert endpoint.secret not in log.content.decode()
    assert "Nothing sent yet" in log.content.decode()


def test_bad_endpoint_input_gets_field_errors_and_saves_nothing(world, client_for, production):
    client = client_for(world.admin)
    url = reverse("webhooks:create", args=[world.team.slug])
    response = client.post(url, {"url": "http://10.0.0.5/hook", "event_types": []})
    page = response.content.decode()
    assert response.status_code == 400
    assert "Choose at least one event." in page
    assert "private" in page and "field-error" in page
    response = client.post(url, {"url": "not a url", "event_types": ["ping"]})
    page = response.content.decode()
    assert "Enter a valid URL." in page
    assert "Select a valid choice" in page  # ping cannot be subscribed to
    assert WebhookEndpoint.objects.count() == 0


def test_pages_escape_what_admins_typed(world, client_for, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    endpoint = make_endpoint(world.team, world.admin, name="<script>alert(1)</script>")
    page = client_for(world.admin).get(reverse("webhooks:index", args=[world.team.slug]))
    assert "<script>alert(1)</script>" not in page.content.decode()
    assert "&lt;script&gt;" in page.content.decode()
    assert endpoint.pk


def test_an_admin_edits_an_endpoint(world, endpoint, client_for, receiver):
    response = client_for(world.admin).post(
        reverse("webhooks:edit", args=[world.team.slug, endpoint.pk]),
        {"name": "Chat", "url": receiver.url, "event_types": ["milestone.completed"]},
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.name, endpoint.event_types) == ("Chat", ["milestone.completed"])
    make_blocker(world.milestone, world.admin)
    assert types_of(endpoint) == []


def test_deleting_asks_first_then_removes_the_endpoint_and_its_log(world, endpoint, client_for):
    make_blocker(world.milestone, world.admin)
    client = client_for(world.admin)
    url = reverse("webhooks:delete", args=[world.team.slug, endpoint.pk])
    confirm = client.get(url).content.decode()
    assert "cannot be undone" in confirm and "1 delivery" in confirm
    assert WebhookEndpoint.objects.count() == 1
    assert client.post(url).status_code == 302
    assert WebhookEndpoint.objects.count() == 0
    assert WebhookDelivery.objects.count() == 0


def test_rotating_the_secret_asks_first_and_shows_the_new_one(world, endpoint, client_for):
    client = client_for(world.admin)
    url = reverse("webhooks:rotate", args=[world.team.slug, endpoint.pk])
    old = endpoint.secret
    assert "stops working" in client.get(url).content.decode()
    endpoint.refresh_from_db()
    assert endpoint.secret == old
    response = client.post(url)
    endpoint.refresh_from_db()
    assert endpoint.secret != old
    assert endpoint.secret in response.content.decode()
    assert response["Cache-Control"].startswith("max-age=0")


def test_a_ping_is_queued_and_sent_signed(world, endpoint, receiver, client_for):
    client = client_for(world.admin)
    client.post(reverse("webhooks:ping", args=[world.team.slug, endpoint.pk]))
    assert types_of(endpoint) == ["ping"]
    deliver_due()
    (body,) = receiver.bodies()
    assert body["type"] == "ping" and body["object"]["endpoint"] == endpoint.pk
    raw = receiver.requests[0]["body"]
    signature = hmac.new(endpoint.secret.encode(), raw, hashlib.sha256).hexdigest()
    assert receiver.requests[0]["headers"]["X-Milepost-Signature"] == f"sha256={signature}"


def test_an_admin_disables_and_enables_an_endpoint(world, endpoint, client_for):
    client = client_for(world.admin)
    client.post(reverse("webhooks:disable", args=[world.team.slug, endpoint.pk]))
    endpoint.refresh_from_db()
    assert not endpoint.is_active and not endpoint.disabled_automatically
    assert endpoint.disabled_reason == f"Disabled by {world.admin.display_name}."
    assert not Message.objects.filter(kind=MessageKind.WEBHOOK_DISABLED).exists()
    make_blocker(world.milestone, world.admin)
    assert types_of(endpoint) == []
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=4)
    client.post(reverse("webhooks:enable", args=[world.team.slug, endpoint.pk]))
    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.disabled_at is None
    assert endpoint.consecutive_failures == 0
    make_blocker(world.milestone, world.admin)
    assert types_of(endpoint) == ["blocker.raised"]


def test_redeliver_requeues_a_failed_row_and_copies_a_sent_one(
    world, endpoint, receiver, client_for, settings, published, django_capture_on_commit_callbacks
):
    settings.OUTBOX_MAX_ATTEMPTS = 1
    receiver.statuses = [500]
    make_blocker(world.milestone, world.admin, title="First")
    make_blocker(world.milestone, world.admin, title="Second")
    failed, sent = WebhookDelivery.objects.order_by("pk")
    assert deliver_due() == [DeliveryState.FAILED, DeliveryState.SENT]
    client = client_for(world.admin)

    def redeliver(row):
        url = reverse("webhooks:redeliver", args=[world.team.slug, endpoint.pk, row.pk])
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, follow=True).content.decode()

    redeliver(failed)
    failed.refresh_from_db()
    assert (failed.state, failed.attempts) == ("pending", 0)
    assert published[-1] == (failed.pk, None)

    redeliver(sent)
    again = WebhookDelivery.objects.get(redelivery_of=sent)
    assert (again.event_id, again.body, again.state) == (sent.event_id, sent.body, "pending")
    assert published[-1] == (again.pk, None)

    page = redeliver(again)  # still queued: refused
    assert "still queued" in page
    assert WebhookDelivery.objects.count() == 3
    assert deliver_due() == [DeliveryState.SENT, DeliveryState.SENT]
    assert [body["id"] for body in receiver.bodies()[-2:]] == [
        str(failed.event_id),
        str(sent.event_id),
    ]


# --- Query budgets --------------------------------------------------------------------------

INDEX_QUERY_BUDGET = 5
LOG_QUERY_BUDGET = 7


def test_the_webhooks_page_costs_the_same_queries_at_any_size(
    world, client_for, settings, django_assert_max_num_queries
):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    client = client_for(world.admin)
    url = reverse("webhooks:index", args=[world.team.slug])

    def count():
        with django_assert_max_num_queries(INDEX_QUERY_BUDGET) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    small = count()
    print(f"webhooks page: {small} queries", end=" ")
    for number in range(12):
        make_endpoint(world.team, world.admin, f"http://127.0.0.1:9/{number}")
    make_blocker(world.milestone, world.admin)
    assert WebhookDelivery.objects.count() == 12
    assert count() == small


def test_the_delivery_log_costs_the_same_queries_and_is_paginated(
    world, endpoint, client_for, django_assert_max_num_queries
):
    client = client_for(world.admin)
    url = reverse("webhooks:endpoint", args=[world.team.slug, endpoint.pk])
    for _ in range(3):
        make_blocker(world.milestone, world.admin)
    with django_assert_max_num_queries(LOG_QUERY_BUDGET) as small:
        client.get(url)
    for _ in range(57):
        make_blocker(world.milestone, world.admin)
    with django_assert_max_num_queries(LOG_QUERY_BUDGET) as large:
        page = client.get(url).content.decode()
    assert len(large) == len(small)
    print(f"delivery log: {len(small)} queries at 3 and 60 deliveries", end=" ")
    assert page.count('id="delivery-') == 25
    assert "Page 1 of 3" in page
    last = client.get(url, {"page": 3}).content.decode()
    assert last.count('id="delivery-') == 10
