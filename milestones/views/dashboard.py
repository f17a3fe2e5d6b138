from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Case, Count, F, Q, When
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.models import Membership, access_team
from milestones.models import (
    CLOSED_STATUSES,
    ForecastShift,
    Health,
    Milestone,
    MilestoneStatus,
    Plan,
)

DASHBOARD_PAGE_SIZE = 50
MOVED_LIMIT = 10


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
    milestones = Milestone.objects.in_team(team)

    plan_key = request.GET.get("plan", "")
    plans = list(
        Plan.objects.in_team(team)
        .open()
        .select_related("owner")
        .annotate(
            milestone_count=Count("milestones"),
            completed_count=Count(
                "milestones", filter=Q(milestones__status=MilestoneStatus.COMPLETED)
            ),
        )
        .order_by("title")
    )
    selected_plan = next((plan for plan in plans if plan.key == plan_key), None)
    if selected_plan:
        milestones = milestones.filter(plan=selected_plan)

    counts = milestones.aggregate(
        total=Count("pk"),
        **{status: Count("pk", filter=Q(status=status)) for status in MilestoneStatus.values},
        overdue=Count("pk", filter=Q(pk__in=Milestone.objects.overdue().values("pk"))),
        **{
            health: Count("pk", filter=Q(health=health) & ~Q(status__in=CLOSED_STATUSES))
            for health in (Health.AT_RISK, Health.OFF_TRACK)
        },
    )
    # Open work first, soonest target first; completed and cancelled milestones sink.
    closed_last = Case(When(status__in=CLOSED_STATUSES, then=1), default=0)
    listed = (
        milestones.with_progress()
        .select_related("plan", "owner")
        .order_by(closed_last, F("target_date").asc(nulls_last=True), "key")
    )
    page = Paginator(listed, DASHBOARD_PAGE_SIZE).get_page(request.GET.get("page"))
    moved = (
        ForecastShift.objects.filter(
            milestone__in=milestones,
            new_finish__isnull=False,
            created_at__gte=timezone.now() - timedelta(days=7),
        )
        .select_related("milestone")
        .order_by("-created_at", "-pk")[:MOVED_LIMIT]
    )
    context = {
        "team": team,
        "membership": membership,
        "plans": plans,
        "selected_plan": selected_plan,
        "counts": counts,
        "page": page,
        "statuses": MilestoneStatus,
        "moved": moved,
    }
    return render(request, "milestones/dashboard.html", context)
