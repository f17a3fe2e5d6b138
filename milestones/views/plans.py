"""Plan pages: create, the plan page with its sections, archive and delete.

Same pattern as the milestone page (see views.milestone): sections are partials of
milestones/plan.html; writes go through milestones.services and carry versions.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import access_team
from milestones import forms, services
from milestones.access import access_plan
from milestones.models import (
    Criterion,
    CriterionCategory,
    Milestone,
    Plan,
    PlanStatus,
    Stakeholder,
    progress_percent,
)
from milestones.timeline import build_timeline
from milestones.views.common import (
    PLAN_CHANGED_EVENT,
    EditState,
    apply_errors,
    respond,
    save_edit,
)
from milestones.views.milestone import MOVES
from specs.check import annotate_spec_counts, spec_check_summary

TEMPLATE = "milestones/plan.html"
SECTIONS = {"meta", "criteria", "milestones", "stakeholders"}
ITEM_KINDS = {
    "criterion": (Criterion, forms.CriterionForm, "criteria", {"kind": "plan"}),
    "stakeholder": (Stakeholder, forms.StakeholderForm, "stakeholders", {}),
}


def plan_milestones(plan: Plan) -> list[Milestone]:
    """The plan's milestones in their order, with progress counts and spec-check scores (one
    query: both are subqueries of it)."""
    milestones = list(
        annotate_spec_counts(plan.milestones.with_progress())
        .select_related("owner")
        .order_by("position", F("target_date").asc(nulls_last=True), "pk")
    )
    for milestone in milestones:
        milestone.progress_value = progress_percent(milestone.status, milestone.progress_counts())
        milestone.spec_check = spec_check_summary(milestone)
    return milestones


def plan_context(request, plan, membership, *, state=None, section=None, **extra):
    context = {
        "team": plan.team,
        "membership": membership,
        "can_write": membership.can_write,
        "plan": plan,
        "editing": state or EditState(),
        "section": section,
        "nav": "plans",
        **extra,
    }
    if section in (None, "milestones"):
        milestones = plan_milestones(plan)
        measured = [m.progress_value for m in milestones if m.progress_value is not None]
        context["milestones"] = milestones
        context["plan_progress"] = sum(measured) // len(measured) if measured else 0
    if section in (None, "criteria"):
        context["criteria"] = list(plan.criteria.order_by("position", "pk"))
    if section in (None, "stakeholders"):
        context["stakeholders"] = list(plan.stakeholders.select_related("user"))
    if section is None:
        context["timeline"] = build_timeline(plan.team, plan=plan)
    return context


def render_section(request, plan, membership, section, *, state=None, changed=False):
    anchor = reverse("plan", args=[plan.team.slug, plan.key]) + f"#{section}"
    context = plan_context(request, plan, membership, state=state, section=section)
    return respond(
        request,
        TEMPLATE,
        context,
        partial=section,
        redirect_to=anchor if changed else None,
        event=PLAN_CHANGED_EVENT if changed else None,
    )


@login_required
@require_GET
def plan_page(request, team, key):
    plan = access_plan(request.user, team, key)
    membership = access_team(request.user, team)
    return respond(request, TEMPLATE, plan_context(request, plan, membership), partial=None)


@login_required
@require_http_methods(["GET", "POST"])
def plan_create(request, team):
    membership = access_team(request.user, team, for_write=True)
    team_obj = membership.team
    if request.method == "POST":
        form = forms.PlanForm(request.POST, team_id=team_obj.pk)
        if form.is_valid():
            plan = Plan(team=team_obj, **form.changes())
            try:
                services.create_object(plan, actor=request.user)
            except ValidationError as error:
                apply_errors(form, error)
            else:
                messages.success(request, f"Created {plan.key}. Now add its first milestone.")
                return redirect("plan", team=team_obj.slug, key=plan.key)
    else:
        form = forms.PlanForm(initial={"owner": request.user}, team_id=team_obj.pk)
    context = {"team": team_obj, "membership": membership, "form": form, "nav": "plans"}
    return respond(request, "milestones/plan_create.html", context, partial=None)


@login_required
@require_http_methods(["GET", "POST"])
def plan_section(request, team, key, section):
    if section not in SECTIONS:
        raise Http404("No such section.")
    editing = request.method == "POST" or request.GET.get("edit")
    if editing and section != "meta":
        raise Http404("This section has no form of its own.")
    plan = access_plan(request.user, team, key, for_write=bool(editing))
    membership = access_team(request.user, team)
    if not editing:
        return render_section(request, plan, membership, section)
    if request.method == "GET":
        form = forms.PlanForm(instance=plan, team_id=plan.team_id, id_prefix="plan")
        return render_section(request, plan, membership, "meta", state=EditState("meta", form=form))
    with transaction.atomic():
        current = (
            Plan.objects.select_for_update(of=("self",))
            .select_related("team", "owner")
            .get(pk=plan.pk)
        )
        form = forms.PlanForm(
            request.POST, instance=current, team_id=plan.team_id, id_prefix="plan"
        )
        outcome = save_edit(form, current, actor=request.user)
    if outcome.saved:
        return render_section(request, current, membership, "meta", changed=True)
    state = EditState("meta", form=outcome.form, conflicts=outcome.conflicts)
    return render_section(request, current, membership, "meta", state=state)


@login_required
@require_POST
def plan_archive(request, team, key):
    """Archive an open plan, or bring an archived one back as active."""
    plan = access_plan(request.user, team, key, for_write=True)
    archived = plan.status == PlanStatus.ARCHIVED
    new_status = PlanStatus.ACTIVE if archived else PlanStatus.ARCHIVED
    services.update_object(plan, actor=request.user, status=new_status)
    verb = "Restored" if archived else "Archived"
    messages.success(request, f"{verb} {plan.key} {plan.title}.")
    return redirect("plan", team=plan.team.slug, key=plan.key)


@login_required
@require_http_methods(["GET", "POST"])
def plan_delete(request, team, key):
    """Delete an empty plan. A plan with milestones is refused: nothing is deleted by surprise."""
    plan = access_plan(request.user, team, key, for_write=True)
    membership = access_team(request.user, team)
    doomed = services.deletion_summary(plan)
    if request.method == "POST" and not doomed["milestones"]:
        services.delete_object(plan, actor=request.user)
        messages.success(request, f"Deleted {plan.key} {plan.title}.")
        return redirect("dashboard", team=plan.team.slug)
    context = {"team": plan.team, "membership": membership, "plan": plan, "doomed": doomed}
    status = 409 if request.method == "POST" else 200
    return respond(request, "milestones/plan_delete.html", context, partial=None, status=status)


@login_required
@require_POST
def milestone_move(request, team, key, milestone_key):
    plan = access_plan(request.user, team, key, for_write=True)
    membership = access_team(request.user, team)
    milestone = get_object_or_404(Milestone, plan=plan, key=milestone_key)
    direction = request.POST.get("direction", "")
    if direction not in MOVES:
        raise Http404("Move up or down.")
    services.move_in_order(milestone, actor=request.user, offset=MOVES[direction])
    return render_section(request, plan, membership, "milestones", changed=True)


def _kind(kind):
    if kind not in ITEM_KINDS:
        raise Http404("No such kind of item.")
    return ITEM_KINDS[kind]


@login_required
@require_http_methods(["GET", "POST"])
def plan_item_add(request, team, key, kind):
    model, form_class, section, kwargs = _kind(kind)
    plan = access_plan(request.user, team, key, for_write=True)
    membership = access_team(request.user, team)
    prefix = f"new-{kind}"
    if request.method == "GET":
        form = form_class(team_id=plan.team_id, id_prefix=prefix, **kwargs)
        return render_section(
            request, plan, membership, section, state=EditState(f"add-{kind}", form=form)
        )
    form = form_class(request.POST, team_id=plan.team_id, id_prefix=prefix, **kwargs)
    if form.is_valid():
        obj = model(plan=plan, **form.changes())
        if kind == "criterion":
            obj.category = CriterionCategory.TECHNICAL
        obj.position = services.next_position(model.objects.filter(plan=plan))
        try:
            services.create_object(obj, actor=request.user)
        except ValidationError as error:
            apply_errors(form, error)
        else:
            return render_section(request, plan, membership, section, changed=True)
    return render_section(
        request, plan, membership, section, state=EditState(f"add-{kind}", form=form)
    )


@login_required
@require_http_methods(["GET", "POST"])
def plan_item(request, team, key, kind, pk, action):
    model, form_class, section, kwargs = _kind(kind)
    write = request.method == "POST" or action in ("edit", "delete")
    plan = access_plan(request.user, team, key, for_write=write)
    membership = access_team(request.user, team)
    obj = get_object_or_404(model, pk=pk, plan=plan)
    if request.method == "POST" and action in MOVES:
        services.move_in_order(obj, actor=request.user, offset=MOVES[action])
        return render_section(request, plan, membership, section, changed=True)
    if request.method == "POST" and action == "toggle" and kind == "criterion":
        checked = request.POST.get("checked") in ("on", "true", "1")
        try:
            services.set_criterion_checked(obj, actor=request.user, checked=checked)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        return render_section(request, plan, membership, section, changed=True)
    if action == "delete":
        if request.method == "POST":
            services.delete_object(obj, actor=request.user)
            return render_section(request, plan, membership, section, changed=True)
        context = {
            "team": plan.team,
            "membership": membership,
            "plan": plan,
            "item": obj,
            "kind": kind,
            "cancel_url": reverse("plan", args=[plan.team.slug, plan.key]) + f"#{section}",
        }
        return respond(request, "milestones/plan_item_delete.html", context, partial=None)
    if action != "edit":
        raise Http404("No such action.")
    prefix = f"{kind}-{obj.pk}"
    if request.method == "GET":
        form = form_class(instance=obj, team_id=plan.team_id, id_prefix=prefix, **kwargs)
        return render_section(
            request, plan, membership, section, state=EditState(f"edit-{kind}", obj.pk, form)
        )
    with transaction.atomic():
        current = model.objects.select_for_update().get(pk=obj.pk)
        form = form_class(
            request.POST, instance=current, team_id=plan.team_id, id_prefix=prefix, **kwargs
        )
        outcome = save_edit(form, current, actor=request.user)
    if outcome.saved:
        return render_section(request, plan, membership, section, changed=True)
    state = EditState(f"edit-{kind}", obj.pk, outcome.form, outcome.conflicts)
    return render_section(request, plan, membership, section, state=state)
