"""Sign-off pages: the panel on the milestone page, My sign-offs, and the receipt.

Deciding is a two-step form: the first POST checks the decision with the same rules that record
it (signoffs.check_decision) and shows what is about to be recorded; the second POST, carrying
`confirmed`, records it with signoffs.decide. Both steps work with and without HTMX.
"""

from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F, OuterRef, Subquery
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Role, access_team
from milestones import forms, signoffs
from milestones.access import access_milestone
from milestones.models import (
    CLOSED_STATUSES,
    Blocker,
    Milestone,
    Risk,
    SignoffRole,
    StatusUpdate,
    subquery_count,
    today,
)
from milestones.views.common import CHANGED_EVENT, EditState, apply_errors, respond
from milestones.views.milestone import render_section

MINE_TEMPLATE = "milestones/my_signoffs.html"
MINE_LIMIT = 100
MARKDOWN = "text/markdown; charset=utf-8"


def _role(milestone: Milestone, pk: int) -> SignoffRole:
    return get_object_or_404(
        SignoffRole.objects.active().select_related("holder"), pk=pk, milestone=milestone
    )


def _require_admin(membership):
    if membership.role != Role.ADMIN:
        raise PermissionDenied("Only a team admin can change sign-off roles and holders.")


def _errors_on(form, error):
    if isinstance(error, PermissionDenied):
        form.add_error(None, str(error))
    else:
        apply_errors(form, error)
        if hasattr(error, "error_dict") and "outcome" in error.error_dict:
            # The form calls it "decision"; move the reasons there so they sit by the choice.
            form.errors.pop("__all__", None)
            for message in error.error_dict["outcome"]:
                form.add_error("decision", message)


# --- Deciding -----------------------------------------------------------------------------------


def _decide(request, milestone, role, form):
    """Run the two-step decision; returns (state kind, form, decision or None)."""
    if not form.is_valid():
        return "decide", form, None
    outcome, with_exceptions = form.meaning
    comment = form.cleaned_data["comment"].strip()
    if request.POST.get("change"):
        return "decide", form, None
    seen_scope = request.POST.get("scope") or None  # the scope the holder was shown
    try:
        if not form.cleaned_data["confirmed"]:
            signoffs.check_decision(
                milestone, user=request.user, role=role, outcome=outcome, comment=comment,
                with_exceptions=with_exceptions,
            )  # fmt: skip
            if seen_scope and seen_scope != milestone.scope_hash:
                raise ValidationError({"scope": signoffs.SCOPE_MOVED})
            return "confirm", form, None
        decision = signoffs.decide(
            milestone, user=request.user, role=role, outcome=outcome, comment=comment,
            with_exceptions=with_exceptions, seen_scope_hash=seen_scope,
        )  # fmt: skip
    except (ValidationError, PermissionDenied) as error:
        _errors_on(form, error)
        return "decide", form, None
    return "", form, decision


@login_required
@require_http_methods(["GET", "POST"])
def decide(request, team, key, pk):
    """Decide for one role, from the milestone page or (with `from=mine`) from My sign-offs."""
    milestone = access_milestone(request.user, team, key)
    membership = access_team(request.user, team)
    role = _role(milestone, pk)
    if role.holder_id != request.user.pk:
        raise PermissionDenied("Only the role's holder can decide for it.")
    from_mine = (request.POST.get("from") or request.GET.get("from")) == "mine"
    prefix = f"decide-{role.pk}"
    if request.method == "GET":
        kind = "" if request.GET.get("cancel") else "decide"
        form, decision = forms.SignoffDecisionForm(id_prefix=prefix), None
    else:
        form = forms.SignoffDecisionForm(request.POST, id_prefix=prefix)
        kind, form, decision = _decide(request, milestone, role, form)
    state = EditState(kind=kind, pk=role.pk, form=form)
    if from_mine:
        return _respond_mine(request, milestone, state, decision)
    if decision:
        milestone.refresh_from_db()
    return render_section(request, milestone, membership, "signoffs", state=state,
                          changed=bool(decision))  # fmt: skip


# --- Roles and holders (team admins) --------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def holder(request, team, key, pk):
    milestone = access_milestone(request.user, team, key, for_write=True)
    membership = access_team(request.user, team)
    _require_admin(membership)
    role = _role(milestone, pk)
    prefix = f"holder-{role.pk}"
    if request.method == "GET":
        form = forms.SignoffHolderForm(
            initial={"holder": role.holder}, team_id=milestone.team_id, id_prefix=prefix
        )
    else:
        form = forms.SignoffHolderForm(request.POST, team_id=milestone.team_id, id_prefix=prefix)
        if form.is_valid():
            try:
                signoffs.set_holder(role, actor=request.user, holder=form.cleaned_data["holder"])
            except (ValidationError, PermissionDenied) as error:
                _errors_on(form, error)
            else:
                milestone.refresh_from_db()
                return render_section(request, milestone, membership, "signoffs", changed=True)
    state = EditState(kind="holder", pk=role.pk, form=form)
    return render_section(request, milestone, membership, "signoffs", state=state)


@login_required
@require_http_methods(["GET", "POST"])
def role_add(request, team, key):
    milestone = access_milestone(request.user, team, key, for_write=True)
    membership = access_team(request.user, team)
    _require_admin(membership)
    if request.method == "GET":
        form = forms.SignoffRoleForm(team_id=milestone.team_id, id_prefix="new-role")
    else:
        form = forms.SignoffRoleForm(request.POST, team_id=milestone.team_id, id_prefix="new-role")
        if form.is_valid():
            try:
                signoffs.add_role(
                    milestone,
                    actor=request.user,
                    name=form.cleaned_data["name"],
                    holder=form.cleaned_data["holder"],
                )
            except (ValidationError, PermissionDenied) as error:
                _errors_on(form, error)
            else:
                milestone.refresh_from_db()
                return render_section(request, milestone, membership, "signoffs", changed=True)
    state = EditState(kind="add-role", form=form)
    return render_section(request, milestone, membership, "signoffs", state=state)


@login_required
@require_POST
def role_drop(request, team, key, pk):
    milestone = access_milestone(request.user, team, key, for_write=True)
    membership = access_team(request.user, team)
    _require_admin(membership)
    signoffs.drop_role(_role(milestone, pk), actor=request.user)
    milestone.refresh_from_db()
    return render_section(request, milestone, membership, "signoffs", changed=True)


@login_required
@require_GET
def receipt(request, team, key):
    milestone = access_milestone(request.user, team, key)
    response = HttpResponse(signoffs.receipt(milestone), content_type=MARKDOWN)
    filename = f"{milestone.key}-signoff-receipt.md"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- My sign-offs -----------------------------------------------------------------------------


@dataclass
class Card:
    """One milestone awaiting the user, with the evidence a product owner needs at a glance."""

    milestone: Milestone
    state: signoffs.SignoffState
    my_roles: list
    unmet_musts: list
    latest_update: StatusUpdate | None

    @property
    def is_stale(self) -> bool:
        return any(role.is_stale for role in self.my_roles)

    @property
    def unmet_items(self) -> list[str]:
        return signoffs.unmet_items(self.milestone)

    @property
    def others(self) -> list:
        mine = {role.role.pk for role in self.my_roles}
        return [role for role in self.state.roles if role.role.pk not in mine]


def _cards(user, milestone_ids=None) -> dict[int, Card]:
    """Cards for the milestones awaiting `user` (or for `milestone_ids`), in constant queries."""
    awaiting = signoffs.awaiting_roles(user)
    if milestone_ids is not None:
        awaiting = SignoffRole.objects.active().filter(holder=user, milestone_id__in=milestone_ids)
    # The most urgent first before cutting off at the limit (the roles' own order is not).
    urgent = awaiting.order_by(F("milestone__target_date").asc(nulls_last=True), "milestone__key")
    ids = list(urgent.values_list("milestone_id", flat=True).distinct()[: MINE_LIMIT + 1])
    latest_update = StatusUpdate.objects.filter(milestone=OuterRef("pk")).order_by(
        "-created_at", "-pk"
    )
    milestones = list(
        Milestone.objects.filter(pk__in=ids)
        .with_progress()
        .select_related("team", "plan", "owner")
        .annotate(
            open_risks=subquery_count(Risk.objects.unresolved(), "milestone"),
            open_blockers=subquery_count(Blocker.objects.unresolved(), "milestone"),
            latest_update_id=Subquery(latest_update.values("pk")[:1]),
        )
        .order_by(F("target_date").asc(nulls_last=True), "key")
    )
    states = signoffs.states_for(milestones)
    updates = StatusUpdate.objects.select_related("author").in_bulk(
        [m.latest_update_id for m in milestones if m.latest_update_id]
    )
    musts = signoffs.unmet_musts_for(ids)
    cards = {}
    for milestone in milestones:
        state = states[milestone.pk]
        mine = [role for role in state.roles if role.role.holder_id == user.pk]
        cards[milestone.pk] = Card(
            milestone=milestone,
            state=state,
            my_roles=mine,
            unmet_musts=musts.get(milestone.pk, []),
            latest_update=updates.get(milestone.latest_update_id),
        )
    return cards


def _mine_context(request):
    return {"nav": "signoffs", "today": today(), "closed_statuses": CLOSED_STATUSES}


def _respond_mine(request, milestone, state, decision):
    """My sign-offs after a decide step: the one card with HTMX, else the whole page."""
    card = _cards(request.user, [milestone.pk]).get(milestone.pk)
    context = {**_mine_context(request), "card": card, "editing": state, "decided": decision}
    if not request.htmx:
        cards = _cards(request.user)
        if card and milestone.pk not in cards:
            cards = {milestone.pk: card, **cards}
        context["cards"] = list(cards.values())[:MINE_LIMIT]
    return respond(
        request,
        MINE_TEMPLATE,
        context,
        partial="card" if card else "card-gone",
        redirect_to=reverse("my_signoffs") if decision else None,
        event=CHANGED_EVENT if decision else None,
    )


@login_required
@require_GET
def my_signoffs(request):
    cards = list(_cards(request.user).values())
    context = {
        **_mine_context(request),
        "cards": cards[:MINE_LIMIT],
        "more": len(cards) > MINE_LIMIT,
        "editing": EditState(),
    }
    return respond(request, MINE_TEMPLATE, context, partial=None)
