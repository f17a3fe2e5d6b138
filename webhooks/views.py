"""Team admins' webhook pages under /t/<team>/webhooks/.

Every view starts with `access_team(..., admin=True)`: outsiders get 404 (the team's existence
stays hidden), members and viewers 403. Endpoints and deliveries are always looked up within
the team of that membership. State changes go through webhooks.services.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import OuterRef, Subquery
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import access_team
from notifications.models import DeliveryState
from webhooks import events, services
from webhooks.forms import EndpointForm
from webhooks.models import WebhookDelivery, WebhookEndpoint

LOG_PAGE_SIZE = 25


def _admin(request, team: str):
    return access_team(request.user, team, admin=True)


def _endpoint(membership, pk: int) -> WebhookEndpoint:
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk, team_id=membership.team_id)
    endpoint.team = membership.team  # already loaded with the membership
    return endpoint


def _context(membership, **extra) -> dict:
    return {"team": membership.team, "membership": membership, "nav": "settings", **extra}


@login_required
@require_http_methods(["GET"])
def index(request, team):
    membership = _admin(request, team)
    latest = WebhookDelivery.objects.filter(endpoint=OuterRef("pk")).order_by("-created_at", "-pk")
    endpoints = (
        WebhookEndpoint.objects.of_team(membership.team)
        .annotate(
            last_state=Subquery(latest.values("state")[:1]),
            last_event=Subquery(latest.values("event_type")[:1]),
            last_at=Subquery(latest.values("created_at")[:1]),
            last_status=Subquery(latest.values("response_status")[:1]),
        )
        .order_by("created_at", "pk")
    )
    endpoints = list(endpoints)
    context = _context(
        membership,
        endpoints=endpoints,
        auto_disabled=[endpoint for endpoint in endpoints if endpoint.disabled_automatically],
    )
    return render(request, "webhooks/index.html", context)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def create(request, team):
    membership = _admin(request, team)
    endpoint = WebhookEndpoint(team=membership.team)
    if request.method == "POST":
        form = EndpointForm(request.POST, instance=endpoint)
        if form.is_valid():
            services.create_endpoint(form.instance, actor=request.user)
            # The secret is shown in this response only: never in a redirect or a message.
            context = _context(membership, endpoint=form.instance, created=True)
            return render(request, "webhooks/secret.html", context, status=201)
        return render(request, "webhooks/form.html", _context(membership, form=form), status=400)
    form = EndpointForm(instance=endpoint)
    return render(request, "webhooks/form.html", _context(membership, form=form))


@login_required
@require_http_methods(["GET", "POST"])
def edit(request, team, pk):
    membership = _admin(request, team)
    endpoint = _endpoint(membership, pk)
    if request.method == "POST":
        form = EndpointForm(request.POST, instance=endpoint)
        if form.is_valid():
            services.save_endpoint(form.instance)
            messages.success(request, "Endpoint saved.")
            return redirect("webhooks:endpoint", team=membership.team.slug, pk=endpoint.pk)
        context = _context(membership, form=form, endpoint=endpoint)
        return render(request, "webhooks/form.html", context, status=400)
    form = EndpointForm(instance=endpoint)
    return render(request, "webhooks/form.html", _context(membership, form=form, endpoint=endpoint))


@login_required
@require_http_methods(["GET"])
def endpoint_log(request, team, pk):
    """The endpoint's settings, actions and its delivery log (newest first, paginated)."""
    membership = _admin(request, team)
    endpoint = _endpoint(membership, pk)
    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint).defer("body")
    page = Paginator(deliveries, LOG_PAGE_SIZE).get_page(request.GET.get("page"))
    context = _context(
        membership,
        endpoint=endpoint,
        page=page,
        deliveries=list(page),
        disable_after=settings.WEBHOOK_DISABLE_AFTER,
    )
    return render(request, "webhooks/endpoint.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def delete(request, team, pk):
    membership = _admin(request, team)
    endpoint = _endpoint(membership, pk)
    if request.method == "POST":
        services.delete_endpoint(endpoint)
        messages.success(request, f"Deleted the endpoint {endpoint.url}.")
        return redirect("webhooks:index", team=membership.team.slug)
    delivery_count = WebhookDelivery.objects.filter(endpoint=endpoint).count()
    context = _context(membership, endpoint=endpoint, delivery_count=delivery_count)
    return render(request, "webhooks/delete.html", context)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def rotate(request, team, pk):
    membership = _admin(request, team)
    endpoint = _endpoint(membership, pk)
    if request.method == "POST":
        services.rotate_secret(endpoint)
        return render(request, "webhooks/secret.html", _context(membership, endpoint=endpoint))
    return render(request, "webhooks/rotate.html", _context(membership, endpoint=endpoint))


@login_required
@require_POST
def ping(request, team, pk):
    membership = _admin(request, team)
    endpoint = _endpoint(membership, pk)
    if endpoint.is_active:
        events.ping(endpoint)
        messages.success(request, "Queued a ping event; it appears in the log below.")
    else:
        messages.error(request, "The endpoint is disabled: enable it before sending a ping.")
    return redirect("webhooks:endpoint", team=membership.team.slug, pk=endpoint.pk)


@login_required
@require_POST
def enable(request, team, pk):
    membership = _admin(request, team)
    endpoint = _endpoint(membership, pk)
    if services.enable(endpoint):
        messages.success(request, "Endpoint enabled: new events are sent to it again.")
    return redirect("webhooks:endpoint", team=membership.team.slug, pk=endpoint.pk)


@login_required
@require_POST
def disable(request, team, pk):
    membership = _admin(request, team)
    endpoint = _endpoint(membership, pk)
    reason = f"Disabled by {request.user.display_name}."
    if services.disable(endpoint, reason=reason):
        messages.success(request, "Endpoint disabled: nothing is sent to it until you enable it.")
    return redirect("webhooks:endpoint", team=membership.team.slug, pk=endpoint.pk)


@login_required
@require_POST
def redeliver(request, team, pk, delivery_pk):
    membership = _admin(request, team)
    endpoint = _endpoint(membership, pk)
    delivery = get_object_or_404(WebhookDelivery, pk=delivery_pk, endpoint=endpoint)
    delivery.endpoint = endpoint
    if services.redeliver(delivery):
        messages.success(request, f"Queued {delivery.event_type} again.")
    elif not endpoint.is_active:
        messages.error(request, "The endpoint is disabled: enable it before redelivering.")
    elif delivery.state in (DeliveryState.PENDING, DeliveryState.SENDING):
        messages.error(request, "That delivery is still queued; wait for it to finish.")
    else:
        messages.error(request, "That delivery could not be queued again.")
    return redirect("webhooks:endpoint", team=membership.team.slug, pk=endpoint.pk)
