from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.models import access_team


@login_required
@require_GET
def timeline_page(request, team):
    membership = access_team(request.user, team)
    return render(
        request, "milestones/timeline.html", {"team": membership.team, "membership": membership}
    )
