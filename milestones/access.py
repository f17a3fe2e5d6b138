"""The one way views reach domain objects.

Each helper looks the object up *through the user's memberships*, so an object of a team the
user is not in is indistinguishable from one that does not exist (404). Write access needs the
member or admin role; a viewer gets 403.
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404

from accounts.models import WRITE_ROLES, Membership, access_team
from milestones.models import (
    Blocker,
    Criterion,
    Deliverable,
    Dependency,
    Milestone,
    Plan,
    Risk,
    StatusUpdate,
)


def _require_write(user, team_id: int):
    role = Membership.objects.filter(user=user, team_id=team_id).values_list("role", flat=True)
    if not role or role[0] not in WRITE_ROLES:
        raise PermissionDenied("Viewers can look but not change anything.")


def _get(queryset, user, *, for_write: bool, team_path: str, **lookup):
    if not user.is_authenticated:
        raise Http404
    obj = queryset.filter(**{f"{team_path}__memberships__user": user}, **lookup).first()
    if obj is None:
        raise Http404("Nothing here, or not in a team you belong to.")
    if for_write:
        team_id = obj
        for part in team_path.split("__"):
            team_id = getattr(team_id, part)
        _require_write(user, team_id.pk)
    return obj


def access_plan(user, team_slug: str, key: str, *, for_write: bool = False) -> Plan:
    queryset = Plan.objects.select_related("team", "owner")
    return _get(
        queryset, user, for_write=for_write, team_path="team", team__slug=team_slug, key=key
    )


def access_milestone(user, team_slug: str, key: str, *, for_write: bool = False) -> Milestone:
    queryset = Milestone.objects.select_related("team", "plan", "owner")
    return _get(
        queryset, user, for_write=for_write, team_path="team", team__slug=team_slug, key=key
    )


def _milestone_child(model, user, pk: int, for_write: bool, *extra_related):
    queryset = model.objects.select_related("milestone__team", *extra_related)
    return _get(queryset, user, for_write=for_write, team_path="milestone__team", pk=pk)


def access_deliverable(user, pk: int, *, for_write: bool = False) -> Deliverable:
    return _milestone_child(Deliverable, user, pk, for_write)


def access_risk(user, pk: int, *, for_write: bool = False) -> Risk:
    return _milestone_child(Risk, user, pk, for_write)


def access_blocker(user, pk: int, *, for_write: bool = False) -> Blocker:
    return _milestone_child(Blocker, user, pk, for_write)


def access_status_update(user, pk: int, *, for_write: bool = False) -> StatusUpdate:
    return _milestone_child(StatusUpdate, user, pk, for_write)


def access_dependency(user, pk: int, *, for_write: bool = False) -> Dependency:
    queryset = Dependency.objects.select_related("team", "predecessor", "successor")
    return _get(queryset, user, for_write=for_write, team_path="team", pk=pk)


def access_criterion(user, pk: int, *, for_write: bool = False) -> Criterion:
    """Criteria hang off a plan, a milestone or a deliverable; each path is checked."""
    for team_path in ("milestone__team", "deliverable__milestone__team", "plan__team"):
        owner_field = team_path.split("__")[0]
        queryset = Criterion.objects.select_related(team_path).filter(
            **{f"{owner_field}__isnull": False}
        )
        try:
            return _get(queryset, user, for_write=for_write, team_path=team_path, pk=pk)
        except Http404:
            continue
    raise Http404("Nothing here, or not in a team you belong to.")


__all__ = [
    "access_blocker",
    "access_criterion",
    "access_deliverable",
    "access_dependency",
    "access_milestone",
    "access_plan",
    "access_risk",
    "access_status_update",
    "access_team",
]
