"""The milestone page: the whole spec on one page, each section edited in place.

Every section is a `{% partialdef %}` of milestones/milestone.html. With HTMX a request
renders just its section; without JavaScript the same URLs render the whole page (GET) or
redirect back to it (POST), so every link and form works either way. Writes go through
milestones.services; edits carry the object's version (see views.common.conflicting_fields).
"""

from dataclasses import dataclass
from functools import cached_property

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Prefetch, Q
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import access_team
from milestones import charts, forms, services, signoffs
from milestones.access import access_milestone
from milestones.models import (
    CLOSED_STATUSES,
    LEVEL_WEIGHT,
    Activity,
    Blocker,
    Criterion,
    CriterionCategory,
    CriterionLevel,
    Deliverable,
    DeliverableStatus,
    Dependency,
    Level,
    Milestone,
    Plan,
    Risk,
    StatusUpdate,
    progress_percent,
    today,
)
from milestones.views.common import (
    CHANGED_EVENT,
    EditState,
    apply_errors,
    respond,
    save_edit,
)
from specs.check import check_spec

TEMPLATE = "milestones/milestone.html"
ACTIVITY_LIMIT = 25
UPDATES_SHOWN = 10
SEARCH_LIMIT = 10

# Sections that edit the milestone's own fields, and the form for each.
FIELD_SECTIONS = {
    "meta": forms.MilestoneMetaForm,
    "summary": forms.MilestoneSummaryForm,
    "rollback": forms.MilestoneRollbackForm,
    "retro": forms.MilestoneRetroForm,
}
SECTIONS = {
    *FIELD_SECTIONS,
    "header",
    "deliverables",
    "success",
    "dependencies",
    "risks",
    "blockers",
    "updates",
    "activity",
    "signoffs",
    "speccheck",
}


# --- What the page shows ---------------------------------------------------------------------


class MilestoneSpec:
    """Everything the page shows about one milestone, each part loaded on first use.

    A fragment request touches only what its section needs; the whole page loads each part
    with one query (plus one prefetch for acceptance criteria), whatever the milestone's size.
    """

    def __init__(self, milestone: Milestone, on=None):
        self.milestone = milestone
        self.on = on or today()

    @cached_property
    def deliverables(self) -> list[Deliverable]:
        acceptance = Criterion.objects.order_by("position", "pk")
        return list(
            self.milestone.deliverables.select_related("owner")
            .prefetch_related(Prefetch("criteria", queryset=acceptance))
            .order_by("position", "pk")
        )

    @cached_property
    def success_criteria(self) -> list[Criterion]:
        return list(self.milestone.criteria.order_by("position", "pk"))

    @cached_property
    def success_groups(self) -> list[tuple[str, list[Criterion]]]:
        """Success criteria by category (in the category order), musts before shoulds."""
        groups = []
        for category in CriterionCategory:
            items = [c for c in self.success_criteria if c.category == category]
            if items:
                items.sort(key=lambda c: (c.level != CriterionLevel.MUST, c.position, c.pk))
                groups.append((category.label, items))
        return groups

    @cached_property
    def acceptance_criteria(self) -> list[Criterion]:
        return [c for d in self.deliverables for c in d.criteria.all()]

    @cached_property
    def progress_counts(self) -> dict:
        musts = [c for c in self.success_criteria if c.level == CriterionLevel.MUST]
        return {
            "must_total": len(musts),
            "must_met": sum(c.met for c in musts),
            "acceptance_total": len(self.acceptance_criteria),
            "acceptance_met": sum(c.met for c in self.acceptance_criteria),
            "deliverables_total": len(self.deliverables),
            "deliverables_accepted": sum(
                d.status == DeliverableStatus.ACCEPTED for d in self.deliverables
            ),
        }

    @cached_property
    def progress(self) -> int:
        return progress_percent(self.milestone.status, self.progress_counts) or 0

    @cached_property
    def criteria_met(self) -> tuple[int, int]:
        everything = self.success_criteria + self.acceptance_criteria
        return sum(c.met for c in everything), len(everything)

    @cached_property
    def burnup(self) -> charts.BurnUp:
        return charts.burnup(
            self.success_criteria + self.acceptance_criteria,
            start=self.milestone.start_date,
            target=self.milestone.target_date,
            on=self.on,
        )

    @cached_property
    def predecessors(self) -> list[Dependency]:
        return list(
            self.milestone.predecessor_links.select_related("predecessor").order_by(
                "predecessor__key"
            )
        )

    @cached_property
    def successors(self) -> list[Dependency]:
        return list(
            self.milestone.successor_links.select_related("successor").order_by("successor__key")
        )

    @cached_property
    def risks(self) -> list[Risk]:
        return list(self.milestone.risks.select_related("owner").order_by("-score", "pk"))

    @cached_property
    def risk_matrix(self) -> list[dict]:
        """Rows of impact (high first), columns of likelihood (low first), open risks only."""
        open_risks = [r for r in self.risks if r.status in ("open", "mitigating")]
        rows = []
        for impact in reversed(Level):
            cells = []
            for likelihood in Level:
                score = LEVEL_WEIGHT[likelihood] * LEVEL_WEIGHT[impact]
                band = "high" if score >= 6 else "medium" if score >= 3 else "low"
                risks = [r for r in open_risks if (r.likelihood, r.impact) == (likelihood, impact)]
                cells.append({"likelihood": likelihood, "band": band, "risks": risks})
            rows.append({"impact": impact, "cells": cells})
        return rows

    @cached_property
    def blockers(self) -> list[Blocker]:
        return list(self.milestone.blockers.select_related("owner"))

    @cached_property
    def open_blockers(self) -> list[Blocker]:
        return [b for b in self.blockers if not b.is_resolved]

    @cached_property
    def updates(self) -> list[StatusUpdate]:
        return list(self.milestone.status_updates.select_related("author")[: UPDATES_SHOWN + 1])

    @cached_property
    def signoffs(self) -> signoffs.SignoffState:
        return signoffs.state_of(self.milestone)

    @cached_property
    def signoff_unmet(self) -> list[str]:
        return signoffs.unmet_items(
            self.milestone, deliverables=self.deliverables, success_criteria=self.success_criteria
        )

    @cached_property
    def activity(self) -> list[Activity]:
        return list(
            Activity.objects.filter(milestone=self.milestone).select_related("actor")[
                :ACTIVITY_LIMIT
            ]
        )


def page_context(request, milestone, membership, *, section=None, state=None, **extra):
    state = state or EditState()
    spec = MilestoneSpec(milestone)
    context = {
        "team": milestone.team,
        "membership": membership,
        "can_write": membership.can_write,
        "milestone": milestone,
        "spec": spec,
        # The spec check reads the lists the page loads anyway: no query of its own.
        "spec_check": SimpleLazyObject(lambda: check_spec(spec)),
        "editing": state,
        "section": section,
        "nav": "plans",
        "levels": Level,
        "is_closed": milestone.status in CLOSED_STATUSES,
        # Item URLs are /t/<team>/m/<key>/<kind>/<pk>/<action>/ (see milestones/urls.py); the
        # templates append to this prefix because reversing hundreds of them per page is slow.
        "item_base": reverse("milestone", args=[milestone.team.slug, milestone.key]),
        **extra,
    }
    return context


def render_section(request, milestone, membership, section, *, state=None, changed=False):
    anchor = reverse("milestone", args=[milestone.team.slug, milestone.key]) + f"#{section}"
    context = page_context(request, milestone, membership, section=section, state=state)
    return respond(
        request,
        TEMPLATE,
        context,
        partial=section,
        redirect_to=anchor if changed else None,
        event=CHANGED_EVENT if changed else None,
    )


# --- Pages -------------------------------------------------------------------------------------


@login_required
@require_GET
def milestone_page(request, team, key):
    milestone = access_milestone(request.user, team, key)
    membership = access_team(request.user, team)
    return respond(request, TEMPLATE, page_context(request, milestone, membership), partial=None)


@login_required
@require_http_methods(["GET", "POST"])
def milestone_create(request, team):
    membership = access_team(request.user, team, for_write=True)
    team_obj = membership.team
    plans = Plan.objects.filter(team=team_obj).open()
    if not plans.exists():
        messages.info(request, "Create a plan first: every milestone belongs to a plan.")
        return redirect("plan_create", team=team_obj.slug)
    initial = {}
    wanted_plan = plans.filter(key=request.GET.get("plan", "")).first()
    if wanted_plan:
        initial["plan"] = wanted_plan
    if request.method == "POST":
        form = forms.MilestoneCreateForm(request.POST, team_id=team_obj.pk)
        if form.is_valid():
            milestone = Milestone(
                team=team_obj,
                position=services.next_position(form.cleaned_data["plan"].milestones.all()),
                **form.changes(),
            )
            try:
                services.create_object(milestone, actor=request.user)
            except ValidationError as error:
                apply_errors(form, error)
            else:
                messages.success(request, f"Created {milestone.key}. Now add its deliverables.")
                return redirect("milestone", team=team_obj.slug, key=milestone.key)
    else:
        form = forms.MilestoneCreateForm(initial=initial, team_id=team_obj.pk)
    context = {"team": team_obj, "membership": membership, "form": form, "nav": "plans"}
    return respond(request, "milestones/milestone_create.html", context, partial=None)


@login_required
@require_http_methods(["GET", "POST"])
def milestone_delete(request, team, key):
    milestone = access_milestone(request.user, team, key, for_write=True)
    membership = access_team(request.user, team)
    if request.method == "POST":
        plan = milestone.plan
        try:
            services.delete_object(milestone, actor=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return redirect("milestone", team=milestone.team.slug, key=milestone.key)
        messages.success(request, f"Deleted {milestone.key} {milestone.title} and its contents.")
        return redirect("plan", team=milestone.team.slug, key=plan.key)
    context = {
        "team": milestone.team,
        "membership": membership,
        "milestone": milestone,
        "doomed": services.deletion_summary(milestone),
        "has_decisions": milestone.signoff_decisions.exists(),
    }
    return respond(request, "milestones/milestone_delete.html", context, partial=None)


# --- Sections of the milestone's own fields ----------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def section(request, team, key, section):
    if section not in SECTIONS:
        raise Http404("No such section.")
    editing = request.method == "POST" or request.GET.get("edit")
    if editing and section not in FIELD_SECTIONS:
        raise Http404("This section has no form of its own.")
    milestone = access_milestone(request.user, team, key, for_write=bool(editing))
    membership = access_team(request.user, team)
    if not editing:
        return render_section(request, milestone, membership, section)
    form_class = FIELD_SECTIONS[section]
    if request.method == "GET":
        form = form_class(instance=milestone, team_id=milestone.team_id, id_prefix=section)
        state = EditState(kind=section, form=form)
        return render_section(request, milestone, membership, section, state=state)
    return _save_fields(request, milestone, membership, section, form_class)


def _save_fields(request, milestone, membership, section, form_class):
    with transaction.atomic():
        current = (
            Milestone.objects.select_for_update(of=("self",))
            .select_related("team", "plan")
            .get(pk=milestone.pk)
        )
        form = form_class(
            request.POST, instance=current, team_id=current.team_id, id_prefix=section
        )
        outcome = save_edit(form, current, actor=request.user)
    if outcome.saved:
        return render_section(request, current, membership, section, changed=True)
    state = EditState(section, form=outcome.form, conflicts=outcome.conflicts)
    return render_section(request, current, membership, section, state=state)


# --- Items inside the milestone: deliverables, criteria, risks, blockers, … -------------------


@dataclass(frozen=True)
class ItemKind:
    model: type
    form_class: type | None
    section: str
    lookup: str  # how an item of this kind reaches its milestone
    form_kwargs: tuple = ()


ITEM_KINDS = {
    "deliverable": ItemKind(Deliverable, forms.DeliverableForm, "deliverables", "milestone"),
    "acceptance": ItemKind(
        Criterion,
        forms.CriterionForm,
        "deliverables",
        "deliverable__milestone",
        (("kind", "acceptance"),),
    ),
    "success": ItemKind(
        Criterion, forms.CriterionForm, "success", "milestone", (("kind", "success"),)
    ),
    "risk": ItemKind(Risk, forms.RiskForm, "risks", "milestone"),
    "blocker": ItemKind(Blocker, forms.BlockerForm, "blockers", "milestone"),
    "update": ItemKind(StatusUpdate, forms.StatusUpdateForm, "updates", "milestone"),
    "dependency": ItemKind(Dependency, None, "dependencies", "successor"),
}
MOVES = {"up": -1, "down": 1}
ORDERED_KINDS = {"deliverable", "acceptance", "success"}  # the kinds people put in order


def _kind(kind: str) -> ItemKind:
    if kind not in ITEM_KINDS:
        raise Http404("No such kind of item.")
    return ITEM_KINDS[kind]


def _item(kind: str, milestone: Milestone, pk: int):
    spec = _kind(kind)
    if kind == "dependency":
        query = Q(predecessor=milestone) | Q(successor=milestone)
        return get_object_or_404(Dependency.objects.filter(query), pk=pk)
    return get_object_or_404(spec.model, pk=pk, **{spec.lookup: milestone})


def _form(kind, *args, milestone, id_prefix, **kwargs):
    spec = _kind(kind)
    return spec.form_class(
        *args, team_id=milestone.team_id, id_prefix=id_prefix, **dict(spec.form_kwargs), **kwargs
    )


@login_required
@require_http_methods(["GET", "POST"])
def item_add(request, team, key, kind):
    spec = _kind(kind)
    milestone = access_milestone(request.user, team, key, for_write=True)
    membership = access_team(request.user, team)
    if kind == "dependency":
        return _add_dependency(request, milestone, membership)
    parent = milestone
    if kind == "acceptance":
        deliverable_pk = request.POST.get("deliverable") or request.GET.get("deliverable")
        if not str(deliverable_pk or "").isdigit():
            raise Http404("Say which deliverable the criterion belongs to.")
        parent = get_object_or_404(Deliverable, pk=deliverable_pk, milestone=milestone)
    id_prefix = f"new-{kind}" + (f"-{parent.pk}" if kind == "acceptance" else "")
    state_pk = parent.pk if kind == "acceptance" else None
    if request.method == "GET":
        form = _form(kind, milestone=milestone, id_prefix=id_prefix)
        state = EditState(kind=f"add-{kind}", pk=state_pk, form=form)
        return render_section(request, milestone, membership, spec.section, state=state)
    form = _form(kind, request.POST, milestone=milestone, id_prefix=id_prefix)
    if form.is_valid():
        owner = {"deliverable": parent} if kind == "acceptance" else {"milestone": milestone}
        obj = spec.model(**owner, **form.changes())
        if hasattr(obj, "position"):
            obj.position = services.next_position(
                spec.model.objects.filter(**{spec.lookup.split("__")[0]: parent})
                if kind != "acceptance"
                else parent.criteria.all()
            )
        try:
            if kind == "update":
                services.post_status_update(milestone, actor=request.user, **form.changes())
            else:
                services.create_object(obj, actor=request.user)
        except ValidationError as error:
            apply_errors(form, error)
        else:
            return render_section(request, milestone, membership, spec.section, changed=True)
    state = EditState(kind=f"add-{kind}", pk=state_pk, form=form)
    return render_section(request, milestone, membership, spec.section, state=state)


@login_required
@require_http_methods(["GET", "POST"])
def item(request, team, key, kind, pk, action):
    spec = _kind(kind)
    write = request.method == "POST" or action in ("edit", "delete", "resolve")
    milestone = access_milestone(request.user, team, key, for_write=write)
    membership = access_team(request.user, team)
    obj = _item(kind, milestone, pk)
    if action in MOVES:
        if kind not in ORDERED_KINDS:
            raise Http404("No such action.")
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        services.move_in_order(obj, actor=request.user, offset=MOVES[action])
        return render_section(request, milestone, membership, spec.section, changed=True)
    if action == "toggle" and isinstance(obj, Criterion):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        return _toggle(request, milestone, membership, spec, obj)
    if action == "delete":
        return _delete_item(request, milestone, membership, kind, spec, obj)
    if action == "edit" and spec.form_class and kind != "update":
        return _edit_item(request, milestone, membership, kind, spec, obj, spec.form_class)
    if action == "resolve" and isinstance(obj, Blocker):
        return _edit_item(request, milestone, membership, kind, spec, obj, forms.BlockerResolveForm)
    raise Http404("No such action.")


def _toggle(request, milestone, membership, spec, criterion):
    checked = request.POST.get("checked") in ("on", "true", "1")
    try:
        services.set_criterion_checked(criterion, actor=request.user, checked=checked)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return render_section(request, milestone, membership, spec.section, changed=True)


def _edit_item(request, milestone, membership, kind, spec, obj, form_class):
    id_prefix = f"{kind}-{obj.pk}"
    action = "resolve" if form_class is forms.BlockerResolveForm else "edit"
    kwargs = dict(spec.form_kwargs) if form_class is spec.form_class else {}

    def make(*args, instance):
        return form_class(
            *args, instance=instance, team_id=milestone.team_id, id_prefix=id_prefix, **kwargs
        )

    if request.method == "GET":
        form = make(instance=obj)
        if action == "resolve" and not form.initial.get("resolved_on"):
            form.initial["resolved_on"] = today()
        state = EditState(kind=f"{action}-{kind}", pk=obj.pk, form=form)
        return render_section(request, milestone, membership, spec.section, state=state)
    with transaction.atomic():
        current = type(obj).objects.select_for_update().get(pk=obj.pk)
        outcome = save_edit(make(request.POST, instance=current), current, actor=request.user)
    if outcome.saved:
        return render_section(request, milestone, membership, spec.section, changed=True)
    state = EditState(f"{action}-{kind}", obj.pk, outcome.form, outcome.conflicts)
    return render_section(request, milestone, membership, spec.section, state=state)


def _delete_item(request, milestone, membership, kind, spec, obj):
    if request.method == "POST":
        services.delete_object(obj, actor=request.user)
        return render_section(request, milestone, membership, spec.section, changed=True)
    context = {
        "team": milestone.team,
        "membership": membership,
        "milestone": milestone,
        "item": obj,
        "kind": kind,
        "doomed": services.deletion_summary(obj),
        "cancel_url": reverse("milestone", args=[milestone.team.slug, milestone.key])
        + f"#{spec.section}",
    }
    return respond(request, "milestones/item_delete.html", context, partial=None)


# --- Dependencies ------------------------------------------------------------------------------


def _candidates(milestone, query: str):
    """Team milestones matching `query` by key or title that could be linked to this one."""
    if not query:
        return []
    linked = Dependency.objects.filter(Q(predecessor=milestone) | Q(successor=milestone))
    exclude = {milestone.pk}
    for before, after in linked.values_list("predecessor_id", "successor_id"):
        exclude.update((before, after))
    return list(
        Milestone.objects.filter(team_id=milestone.team_id)
        .filter(Q(key__icontains=query) | Q(title__icontains=query))
        .exclude(pk__in=exclude)
        .select_related("plan")
        .order_by("key")[:SEARCH_LIMIT]
    )


@login_required
@require_GET
def dependency_search(request, team, key):
    milestone = access_milestone(request.user, team, key, for_write=True)
    membership = access_team(request.user, team)
    query = request.GET.get("q", "").strip()[:100]
    state = EditState(kind="add-dependency", form=forms.DependencyForm(team_id=milestone.team_id))
    context = page_context(
        request,
        milestone,
        membership,
        section="dependencies",
        state=state,
        search_query=query,
        search_results=_candidates(milestone, query),
    )
    partial = "dependency-results" if request.htmx else None
    return respond(request, TEMPLATE, context, partial=partial)


def _add_dependency(request, milestone, membership):
    state = EditState(kind="add-dependency", form=forms.DependencyForm(team_id=milestone.team_id))
    if request.method == "GET":
        return render_section(request, milestone, membership, "dependencies", state=state)
    form = forms.DependencyForm(request.POST, team_id=milestone.team_id)
    if form.is_valid():
        other = form.cleaned_data["other"]
        before, after = (
            (other, milestone)
            if form.cleaned_data["direction"] == "predecessor"
            else (milestone, other)
        )
        try:
            services.add_dependency(
                before, after, actor=request.user, lag_days=form.cleaned_data["lag_days"]
            )
        except ValidationError as error:
            for message in error.messages:
                form.add_error("other", message)
        else:
            return render_section(request, milestone, membership, "dependencies", changed=True)
    state.form = form
    return render_section(request, milestone, membership, "dependencies", state=state)
