from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from accounts.models import Membership, access_team


@login_required
def members_page(request, team):
    membership = access_team(request.user, team)
    members = Membership.objects.filter(team=membership.team).select_related("user")
    return render(
        request,
        "accounts/members.html",
        {"team": membership.team, "membership": membership, "members": members},
    )
