from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.models import access_team
from milestones.models import Plan
from milestones.timeline import build_timeline


@login_required
@require_GET
def timeline_page(request, team):
    """The team's milestones on a date axis; `?plan=KEY` narrows it to one open plan."""
    membership = access_team(request.user, team)
    team = membership.team
    plans = list(Plan.objects.in_team(team).open().order_by("title"))
    plan_key = request.GET.get("plan", "")
    selected_plan = next((plan for plan in plans if plan.key == plan_key), None)
    if plan_key and selected_plan is None:
        # An archived plan's page links here too; an unknown key shows every plan.
        selected_plan = Plan.objects.in_team(team).filter(key=plan_key).first()
        if selected_plan:
            plans.append(selected_plan)
    context = {
        "team": team,
        "membership": membership,
        "nav": "timeline",
        "plans": plans,
        "selected_plan": selected_plan,
        "timeline": build_timeline(team, plan=selected_plan),
    }
    return render(request, "milestones/timeline.html", context)
