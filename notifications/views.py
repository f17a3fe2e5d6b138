"""Notification pages.

- Preferences (/notifications/): the signed-in user's own digest schedule, alerts, time zone
  and the plans in their digest.
- Unsubscribe (/notifications/unsubscribe/<token>/): no log-in; the signed token in the link
  is the credential. GET only describes, POST acts (also RFC 8058 one-click posts).
- Delivery log (/t/<team>/deliveries/): team admins see the team's outbox messages, retry
  failed ones, and preview the digest a member would get, limited to this team's plans.
"""

import re
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Membership, access_team
from milestones.models import Plan
from notifications import delivery_log, digest, outbox
from notifications.forms import PreferencesForm, PreviewMemberForm
from notifications.models import EmptyDigest, Message, NotificationPreferences
from notifications.preferences import next_digest, subscription_from_token, unsubscribe

LOG_PAGE_SIZE = 50


# --- Preferences -----------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request):
    user = request.user
    current = NotificationPreferences.for_user(user)
    # Before the form touches `current`: a refused form must not move the date shown.
    upcoming = next_digest(user, current)
    plans = list(
        Plan.objects.visible_to(user)
        .open()
        .select_related("team")
        .order_by("team__name", "team_id", "title", "pk")
    )
    if request.method == "POST":
        form = PreferencesForm(request.POST, instance=current, user=user, plans=plans)
        if form.is_valid():
            form.save()
            messages.success(request, "Notification preferences saved.")
            return redirect("notifications:preferences")
        status = 400
    else:
        form = PreferencesForm(instance=current, user=user, plans=plans)
        status = 200
    context = {
        "form": form,
        "next_digest": upcoming,
        "time_zone": user.time_zone,
        "nav": "notifications",
    }
    return render(request, "notifications/preferences.html", context, status=status)


# --- Unsubscribe -----------------------------------------------------------------------------


# No CSRF check: mail clients post RFC 8058 one-click unsubscribes (body
# "List-Unsubscribe=One-Click") straight to this address, with no session and no CSRF token.
# The signed token in the URL is the credential, and a forged request without it does nothing.
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe_page(request, token):
    subscription = subscription_from_token(token)
    if subscription is None:
        return render(request, "notifications/unsubscribe_invalid.html", status=404)
    context = {"subscription": subscription, "token": token}
    if request.method == "POST":
        unsubscribe(subscription)
        return render(request, "notifications/unsubscribe_done.html", context)
    # GET changes nothing: link scanners and previews follow links in mail.
    context["active"] = subscription.is_active()
    return render(request, "notifications/unsubscribe.html", context)


# --- Delivery log ----------------------------------------------------------------------------


def _log_url(team_slug: str, state: str, page_number: int | None = None) -> str:
    pairs = []
    if state != "all":
        pairs.append(("state", state))
    if page_number and page_number > 1:
        pairs.append(("page", page_number))
    path = reverse("notifications:delivery_log", args=[team_slug])
    return f"{path}?{urlencode(pairs)}" if pairs else path


def _state_filter(value) -> str:
    return value if value in delivery_log.STATE_FILTERS else "all"


@login_required
@require_GET
def delivery_log_page(request, team):
    membership = access_team(request.user, team, admin=True)
    team = membership.team
    state = _state_filter(request.GET.get("state"))
    listed = delivery_log.in_state(delivery_log.team_messages([team.pk]), state).select_related(
        "recipient_user"
    )
    page = Paginator(listed, LOG_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "team": team,
        "membership": membership,
        "nav": "deliveries",
        "page": page,
        "state": state,
        "states": [
            (name, label, _log_url(team.slug, name))
            for name, (label, _) in delivery_log.STATE_FILTERS.items()
        ],
        "previous_url": _log_url(team.slug, state, page.previous_page_number())
        if page.has_previous()
        else "",
        "next_url": _log_url(team.slug, state, page.next_page_number()) if page.has_next() else "",
    }
    return render(request, "notifications/delivery_log.html", context)


@login_required
@require_POST
def delivery_retry(request, team, pk):
    membership = access_team(request.user, team, admin=True)
    team = membership.team
    message = get_object_or_404(delivery_log.team_messages([team.pk]), pk=pk)
    with transaction.atomic():  # the delivery task is published once this commits
        queued = outbox.retry_now(Message, message.pk)
    message.refresh_from_db()
    if request.htmx:
        context = {"team": team, "message": message, "state": "all", "retried": queued}
        return render(request, "notifications/delivery_log.html#delivery-row", context)
    if queued:
        messages.success(request, f"The e-mail to {message.recipient_email} is queued again.")
    else:
        messages.info(request, f"The e-mail to {message.recipient_email} had not failed.")
    state = _state_filter(request.POST.get("state"))
    page_number = request.POST.get("page", "")
    return redirect(_log_url(team.slug, state, int(page_number) if page_number.isdigit() else None))


# An unsubscribe link inside a previewed digest would let the admin switch the member's digest
# off; the preview keeps the link's place but not the member's token.
HIDDEN_LINK = "#unsubscribe-link-hidden-in-preview"


def hide_unsubscribe_links(body: str) -> str:
    path = reverse("notifications:unsubscribe", args=["TOKEN"]).split("TOKEN")[0]
    link = f"(?:{re.escape(settings.SITE_URL.rstrip('/'))})?{re.escape(path)}" + r"[^\s\"'<>&]+"
    return re.sub(link, HIDDEN_LINK, body or "")


def _preview(request, team_slug):
    """(context, rendered digest or None) for the preview pages."""
    membership = access_team(request.user, team_slug, admin=True)
    team = membership.team
    members = [
        m.user
        for m in Membership.objects.filter(team=team)
        .select_related("user")
        .order_by("user__first_name", "user__last_name", "user__username")
    ]
    data = request.GET if "member" in request.GET else {"member": request.user.pk}
    form = PreviewMemberForm(data, members=members)
    context = {"team": team, "membership": membership, "nav": "deliveries", "form": form}
    if not form.is_valid():
        return context, None
    chosen = next(user for user in members if user.pk == form.cleaned_data["member"])
    # Only this team's plans: an admin must never see another team's milestones through a
    # member who also belongs to it.
    built = digest.build_digest(chosen, plans=Plan.objects.in_team(team).open())
    rendered = digest.render_digest(built)
    context.update(
        chosen=chosen,
        digest=built,
        subject=rendered.subject,
        html=hide_unsubscribe_links(rendered.html),
        chosen_preferences=NotificationPreferences.for_user(chosen),
        skip_when_empty=EmptyDigest.SKIP,
    )
    return context, rendered


@login_required
@require_GET
def digest_preview(request, team):
    context, _ = _preview(request, team)
    status = 200 if context["form"].is_valid() else 400
    return render(request, "notifications/digest_preview.html", context, status=status)


@login_required
@require_GET
def digest_preview_text(request, team):
    rendered = _preview(request, team)[1]
    if rendered is None:
        return HttpResponse(
            "Choose a member of this team.", status=400, content_type="text/plain; charset=utf-8"
        )
    text = hide_unsubscribe_links(rendered.text)
    return HttpResponse(text, content_type="text/plain; charset=utf-8")
