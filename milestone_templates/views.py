"""Template pages: the list, one template, save a milestone as a template, rename and delete,
create a milestone from a template, and build a plan from a sequence of templates.

Reading takes any role in the team; everything that writes takes member or admin. Teams are
reached through the user's memberships (`access_team`, `access_milestone`), so another team's
templates and milestones are 404s. Writes go through milestone_templates.services.
"""

import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Max
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import access_team
from milestone_templates import services
from milestone_templates.blueprints import Blueprint, Group
from milestone_templates.builtin import BUILTIN_BY_REF, BUILTIN_TEMPLATES, PRESETS
from milestone_templates.forms import (
    MAX_STEPS,
    PlanFromTemplatesForm,
    TemplateDetailsForm,
    UseTemplateForm,
    open_plans,
)
from milestone_templates.models import MilestoneTemplate
from milestones.access import access_milestone
from milestones.models import today
from milestones.views.common import apply_errors

TEAM_TEMPLATES_PER_PAGE = 20


def _base_context(membership, **extra) -> dict:
    return {
        "team": membership.team,
        "membership": membership,
        "can_write": membership.can_write,
        "nav": "templates",
        **extra,
    }


def _team_template(membership, pk: int) -> MilestoneTemplate:
    queryset = MilestoneTemplate.objects.in_team(membership.team).select_related("created_by")
    return get_object_or_404(queryset, pk=pk)


def _load(membership, ref: str) -> tuple[Blueprint, MilestoneTemplate | None]:
    """The template `ref` names, and its row when it is a team template; 404 otherwise."""
    if ref in BUILTIN_BY_REF:
        return BUILTIN_BY_REF[ref], None
    if not ref.isdigit():
        raise Http404("No such template.")
    row = _team_template(membership, int(ref))
    try:
        return row.blueprint(), row
    except ValidationError as error:
        raise Http404(f"This template cannot be read: {' '.join(error.messages)}") from None


def _plan_key(request) -> str:
    return (request.GET.get("plan") or request.POST.get("from_plan") or "")[:16]


@login_required
@require_GET
def template_list(request, team):
    membership = access_team(request.user, team)
    rows = MilestoneTemplate.objects.in_team(membership.team).select_related("created_by")
    page = Paginator(rows, TEAM_TEMPLATES_PER_PAGE).get_page(request.GET.get("page"))
    team_templates = []
    for row in page:
        try:
            team_templates.append((row, row.blueprint()))
        except ValidationError:
            team_templates.append((row, None))
    plan_key = _plan_key(request)
    context = _base_context(
        membership,
        phases=[b for b in BUILTIN_TEMPLATES if b.group == Group.PHASE],
        sprints=[b for b in BUILTIN_TEMPLATES if b.group == Group.SPRINT],
        team_templates=team_templates,
        page=page,
        plan_key=plan_key,
        plan_query=f"?{urlencode({'plan': plan_key})}" if plan_key else "",
        presets=PRESETS,
    )
    return render(request, "milestone_templates/list.html", context)


@login_required
@require_GET
def template_detail(request, team, ref):
    membership = access_team(request.user, team)
    blueprint, row = _load(membership, ref)
    context = _base_context(membership, blueprint=blueprint, row=row)
    return render(request, "milestone_templates/detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def template_use(request, team, ref):
    membership = access_team(request.user, team, for_write=True)
    team_obj = membership.team
    blueprint, _row = _load(membership, ref)
    plans = open_plans(team_obj)
    if request.method == "POST":
        form = UseTemplateForm(request.POST, team=team_obj)
        preview = request.POST.get("action") == "preview"
        if form.is_valid() and not preview:
            try:
                milestone = services.create_milestone(
                    blueprint,
                    plan=form.cleaned_data["plan"],
                    actor=request.user,
                    start_date=form.cleaned_data["start_date"],
                    title=form.cleaned_data["title"],
                    owner=form.cleaned_data["owner"],
                )
            except ValidationError as error:
                apply_errors(form, error)
            else:
                messages.success(
                    request,
                    f"Created {milestone.key} from the template “{blueprint.name}”: "
                    f"{len(blueprint.deliverables)} deliverables, "
                    f"{len(blueprint.success_criteria)} success criteria.",
                )
                return redirect("milestone", team=team_obj.slug, key=milestone.key)
    else:
        if not plans.exists():
            messages.info(
                request, "Every milestone belongs to a plan: start a plan from this template."
            )
            query = urlencode({"step_1": blueprint.ref})
            builder = reverse("milestone_templates:build_plan", args=[team_obj.slug])
            return redirect(f"{builder}?{query}")
        initial = {"title": blueprint.name, "start_date": today()}
        wanted = plans.filter(key=_plan_key(request)).first() if _plan_key(request) else None
        if wanted:
            initial["plan"] = wanted
        form = UseTemplateForm(initial=initial, team=team_obj)
    start = _valid_date(form, "start_date")
    context = _base_context(
        membership,
        blueprint=blueprint,
        form=form,
        start=start,
        target=services.target_for(start, blueprint) if start else None,
    )
    if request.htmx and request.POST.get("action") == "preview":
        return render(request, "milestone_templates/use.html#dates", context)
    return render(request, "milestone_templates/use.html", context)


def _valid_date(form, name: str) -> datetime.date | None:
    """The form's date, from its input when bound (even if other fields are wrong)."""
    if not form.is_bound:
        return form.initial.get(name)
    field = form.fields[name]
    try:
        return field.clean(field.widget.value_from_datadict(form.data, form.files, name))
    except ValidationError:
        return None


@login_required
@require_http_methods(["GET", "POST"])
def template_save(request, team, key):
    milestone = access_milestone(request.user, team, key, for_write=True)
    membership = access_team(request.user, team)
    if request.method == "POST":
        form = TemplateDetailsForm(request.POST)
        if form.is_valid():
            try:
                template = services.save_as_template(
                    milestone,
                    actor=request.user,
                    name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"],
                )
            except ValidationError as error:
                apply_errors(form, error)
            else:
                messages.success(
                    request, f"Saved {milestone.key} as the team template “{template.name}”."
                )
                return redirect("milestone_templates:detail", team=team, ref=template.pk)
    else:
        form = TemplateDetailsForm(
            initial={"name": milestone.title, "description": milestone.summary}
        )
    context = _base_context(
        membership, milestone=milestone, form=form, shape=services.capture(milestone)
    )
    return render(request, "milestone_templates/save.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def template_edit(request, team, pk):
    membership = access_team(request.user, team, for_write=True)
    row = _team_template(membership, pk)
    if request.method == "POST":
        form = TemplateDetailsForm(request.POST, instance=row)
        if form.is_valid():
            row.name = form.cleaned_data["name"]
            row.description = form.cleaned_data["description"]
            try:
                services.store_template(row)
            except ValidationError as error:
                apply_errors(form, error)
            else:
                messages.success(request, f"Saved the template “{row.name}”.")
                return redirect("milestone_templates:detail", team=team, ref=row.pk)
    else:
        form = TemplateDetailsForm(instance=row)
    context = _base_context(membership, row=row, form=form)
    return render(request, "milestone_templates/edit.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def template_delete(request, team, pk):
    membership = access_team(request.user, team, for_write=True)
    row = _team_template(membership, pk)
    if request.method == "POST":
        name = row.name
        row.delete()
        messages.success(
            request, f"Deleted the template “{name}”. Milestones made from it are unchanged."
        )
        return redirect("milestone_templates:list", team=team)
    context = _base_context(membership, row=row)
    return render(request, "milestone_templates/delete.html", context)


def _builder_initial(request, team, plans, blueprints) -> dict:
    """Starting values from the link that opened the builder: ?plan=KEY, ?preset=phases,
    ?step_1=ref… (so every entry point is a plain link)."""
    known = {b.ref for b in blueprints}
    picked = [request.GET.get(f"step_{n}") for n in range(1, MAX_STEPS + 1)]
    refs = [ref for ref in picked if ref in known]
    if not refs:
        refs = list(PRESETS.get(request.GET.get("preset", ""), ("", []))[1])
    initial = {f"step_{n}": ref for n, ref in enumerate(refs, 1)}
    start = today()
    key = _plan_key(request)
    plan = plans.filter(key=key).first() if key else None
    if plan:
        initial["plan"] = plan
        last = plan.milestones.aggregate(last=Max("target_date"))["last"]
        if last and last >= start:
            start = last + datetime.timedelta(days=1)
    initial["start_date"] = start
    return initial


@login_required
@require_http_methods(["GET", "POST"])
def build_plan(request, team):
    membership = access_team(request.user, team, for_write=True)
    team_obj = membership.team
    blueprints = services.available_blueprints(team_obj)
    plans = open_plans(team_obj)
    slots = None
    if request.method == "POST":
        form = PlanFromTemplatesForm(request.POST, team=team_obj, blueprints=blueprints)
        preview = request.POST.get("action") == "preview"
        valid = form.is_valid()
        data = form.cleaned_data
        if preview and data.get("blueprints") and data.get("start_date"):
            # The dates need only the templates and the start; the plan can come later.
            slots = services.lay_out(data["blueprints"], data["start_date"])
        elif valid and not preview:
            try:
                plan, milestones = services.create_plan(
                    data["blueprints"],
                    actor=request.user,
                    start_date=data["start_date"],
                    plan=data["plan"],
                    team=team_obj,
                    plan_title=data["plan_title"].strip(),
                )
            except ValidationError as error:
                apply_errors(form, error)
            else:
                messages.success(
                    request,
                    f"Added {len(milestones)} milestones to {plan.key}, "
                    f"{milestones[0].start_date:%-d %b %Y} to "
                    f"{milestones[-1].target_date:%-d %b %Y}, each depending on the one "
                    "before.",
                )
                return redirect("plan", team=team_obj.slug, key=plan.key)
    else:
        initial = _builder_initial(request, team_obj, plans, blueprints)
        form = PlanFromTemplatesForm(initial=initial, team=team_obj, blueprints=blueprints)
    context = _base_context(membership, form=form, slots=slots, presets=PRESETS)
    if request.htmx and request.POST.get("action") == "preview":
        return render(request, "milestone_templates/build_plan.html#preview", context)
    return render(request, "milestone_templates/build_plan.html", context)
