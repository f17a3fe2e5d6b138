"""The team dashboard (team home).

Top to bottom: what needs attention, what is due in the next 14 days, what I owe, the plans with
their progress, recent activity, what moved this week, and every milestone in a filterable,
sortable, paginated table with its counts. The overview sections are team-wide; the filters in
the query string (see milestones/filters.py) narrow the counts and the table, so a filtered view
can be bookmarked. With htmx, changing a filter, a sort or a page asks the same view for the
`results` partial only.

The page runs a fixed number of SQL queries whatever the size of the team (one per section, no
per-row queries); tests/test_dashboard.py asserts the count at demo size and at 20×.
"""

import datetime
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, F, Q, Window
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET
from django_htmx.http import push_url

from accounts.models import Membership, access_team
from milestones import signoffs
from milestones.filters import (
    SORTS,
    MilestoneFilters,
    clean_sort,
    filter_milestones,
    sort_milestones,
)
from milestones.models import (
    CLOSED_STATUSES,
    Activity,
    Blocker,
    ForecastShift,
    Health,
    Milestone,
    MilestoneStatus,
    Plan,
    PlanStatus,
    Priority,
    subquery_count,
    today,
)
from milestones.updates_owed import overdue_updates
from notifications import delivery_log

DASHBOARD_PAGE_SIZE = 50
MOVED_LIMIT = 10
ACTIVITY_LIMIT = 15
SHORT_LIST_LIMIT = 8  # needs attention, due soon, awaiting my action: the rest is "and N more"
DUE_SOON_DAYS = 14
RESULTS_ID = "dashboard-results"  # the element the htmx filter form and links swap
SORT_LABELS = {
    "target": "target date",
    "key": "key",
    "title": "title",
    "status": "status",
    "health": "health",
    "priority": "priority",
}


@login_required
@require_GET
def home(request):
    """Send the user to the team they used last, or their first team."""
    memberships = Membership.objects.filter(user=request.user).select_related("team")
    chosen = memberships.filter(team_id=request.user.last_team_id).first() or memberships.first()
    if chosen is None:
        return render(request, "milestones/no_team.html")
    return redirect("dashboard", team=chosen.team.slug)


@login_required
@require_GET
def dashboard(request, team):
    membership = access_team(request.user, team)
    team = membership.team
    filters = MilestoneFilters.from_query(request.GET)
    sort = clean_sort(request.GET.get("sort"))
    context = {
        "team": team,
        "membership": membership,
        "nav": "dashboard",
        **milestone_results(request, team, filters, sort),
    }
    if wants_results_only(request):
        response = render(request, "milestones/dashboard.html#results", context)
        push_url(response, context["current_url"])  # the canonical, bookmarkable address
    else:
        context.update(overview(request.user, team))
        if membership.is_admin:  # one COUNT; members and viewers cannot act on it
            context["failed_deliveries"] = delivery_log.recently_failed_count(team)
            context["failed_deliveries_days"] = delivery_log.FAILED_NOTICE_DAYS
        owners = [
            m.user
            for m in Membership.objects.filter(team=team)
            .select_related("user")
            .order_by("user__first_name", "user__last_name", "user__username")
        ]
        context.update(
            owners=owners,
            # A bookmarked plan or owner that is no longer offered still shows as chosen.
            plan_unlisted=bool(filters.plan)
            and filters.plan not in {plan.key for plan in context["plans"]},
            owner_unlisted=filters.owner is not None
            and filters.owner not in {owner.pk for owner in owners},
            status_choices=MilestoneStatus.choices,
            health_choices=Health.choices,
            priority_choices=Priority.choices,
        )
        response = render(request, "milestones/dashboard.html", context)
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response


def wants_results_only(request) -> bool:
    htmx = request.htmx
    return bool(htmx) and htmx.target == RESULTS_ID and not htmx.history_restore_request


def milestone_results(request, team, filters: MilestoneFilters, sort: str) -> dict:
    """The filtered counts, the sorted page of milestones, and the links that keep the filters."""
    milestones = filter_milestones(Milestone.objects.in_team(team), filters)
    overdue = Milestone.objects.in_team(team).overdue()
    counts = milestones.aggregate(
        total=Count("pk"),
        **{status: Count("pk", filter=Q(status=status)) for status in MilestoneStatus.values},
        overdue=Count("pk", filter=Q(pk__in=overdue.values("pk"))),
        # Completed and cancelled milestones are on track by rule; count the open ones only.
        **{
            health: Count("pk", filter=Q(health=health) & ~Q(status__in=CLOSED_STATUSES))
            for health in Health.values
        },
    )
    listed = sort_milestones(milestones.with_progress().select_related("plan", "owner"), sort)
    paginator = Paginator(listed, DASHBOARD_PAGE_SIZE)
    paginator.count = counts["total"]  # a cached property; known already, so no COUNT query
    page = paginator.get_page(request.GET.get("page"))

    def url(*, sort=sort, page=None) -> str:
        pairs = filters.to_query()
        if sort:
            pairs.append(("sort", sort))
        if page and page > 1:
            pairs.append(("page", page))
        return f"{request.path}?{urlencode(pairs)}" if pairs else request.path

    columns = {}
    for name in SORTS:
        current = sort.removeprefix("-") == name
        descending = current and sort.startswith("-")
        columns[name] = {
            "url": url(sort=name if not current or descending else f"-{name}"),
            "aria_sort": ("descending" if descending else "ascending") if current else "",
        }
    if sort:
        direction = "descending" if sort.startswith("-") else "ascending"
        sort_description = f"sorted by {SORT_LABELS[sort.removeprefix('-')]}, {direction}"
    else:
        sort_description = "open milestones first, soonest target first"
    return {
        "filters": filters,
        "sort": sort,
        "sort_description": sort_description,
        "counts": counts,
        "page": page,
        "columns": columns,
        "current_url": url(page=page.number),
        "previous_url": url(page=page.previous_page_number()) if page.has_previous() else "",
        "next_url": url(page=page.next_page_number()) if page.has_next() else "",
        # Clearing the filters keeps the sort: it is not a filter.
        "clear_url": f"{request.path}?{urlencode({'sort': sort})}" if sort else request.path,
        "results_id": RESULTS_ID,
    }


def overview(user, team) -> dict:
    """The team-wide sections; not narrowed by the filters."""
    on = today()
    plans = list(Plan.objects.in_team(team).open().select_related("owner").order_by("title"))
    add_plan_progress(team, plans)

    attention, attention_total = first_rows(
        Milestone.objects.in_team(team)
        .open()
        .annotate(late_blockers=subquery_count(Blocker.objects.past_target(on), "milestone"))
        .filter(
            Q(health__in=(Health.AT_RISK, Health.OFF_TRACK))
            | Q(pk__in=Milestone.objects.in_team(team).overdue(on).values("pk"))
            | Q(late_blockers__gt=0)
        )
        .order_by(SORTS["health"].desc(), F("target_date").asc(nulls_last=True), "key"),
    )
    due_soon, due_soon_total = first_rows(
        Milestone.objects.in_team(team)
        .due_within(DUE_SOON_DAYS, on)
        .select_related("owner")
        .order_by("target_date", "key")
    )
    # Status updates I owe: the rule the reminders and the digest follow too.
    updates_owed = overdue_updates(
        Milestone.objects.in_team(team).filter(owner=user), timezone.now()
    )
    updates_owed_total = len(updates_owed)
    updates_owed = updates_owed[:SHORT_LIST_LIMIT]
    signoffs_owed, signoffs_owed_total = first_rows(
        signoffs.awaiting_roles(user)
        .filter(milestone__team=team)
        .select_related("milestone")
        .order_by(F("milestone__target_date").asc(nulls_last=True), "milestone__key", "position")
    )

    activity = list(
        Activity.objects.in_team(team).select_related("actor", "milestone", "plan")[:ACTIVITY_LIMIT]
    )
    moved = list(
        ForecastShift.objects.filter(
            milestone__team=team,
            new_finish__isnull=False,
            created_at__gte=timezone.now() - datetime.timedelta(days=7),
        )
        .select_related("milestone")
        .order_by("-created_at", "-pk")[:MOVED_LIMIT]
    )
    return {
        "plans": plans,
        "attention": attention,
        "attention_more": attention_total - len(attention),
        "due_soon": due_soon,
        "due_soon_more": due_soon_total - len(due_soon),
        "due_soon_days": DUE_SOON_DAYS,
        "updates_owed": updates_owed,
        "signoffs_owed": signoffs_owed,
        "signoffs_owed_more": signoffs_owed_total - len(signoffs_owed),
        "updates_owed_more": updates_owed_total - len(updates_owed),
        "stale_days": team.health_stale_update_days,
        "activity": activity,
        "moved": moved,
    }


def first_rows(queryset, limit: int = SHORT_LIST_LIMIT) -> tuple[list, int]:
    """The first `limit` rows and how many there are in all, in one query (a window count)."""
    rows = list(queryset.annotate(rows_in_all=Window(Count("pk")))[:limit])
    return rows, (rows[0].rows_in_all if rows else 0)


def add_plan_progress(team, plans: list[Plan]) -> None:
    """Set `milestone_count`, `completed_count` and `progress` on each plan, in one query.

    A plan's progress is the average of its milestones' progress (Milestone.progress: a
    completed milestone counts 100), rounded down; cancelled milestones are left out of it and
    of the counts, since they will never be done. A plan with no milestones is at 0.
    """
    by_plan = {plan.pk: [] for plan in plans}
    milestones = (
        Milestone.objects.in_team(team)
        .exclude(plan__status=PlanStatus.ARCHIVED)
        .exclude(status=MilestoneStatus.CANCELLED)
        .with_progress()
        .only("pk", "plan_id", "status")
        .order_by()
    )
    for milestone in milestones:
        if milestone.plan_id in by_plan:
            by_plan[milestone.plan_id].append(milestone)
    for plan in plans:
        members = by_plan[plan.pk]
        plan.milestone_count = len(members)
        plan.completed_count = sum(m.status == MilestoneStatus.COMPLETED for m in members)
        plan.progress = sum(m.progress for m in members) // len(members) if members else 0
