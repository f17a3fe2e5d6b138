"""Who may do what through the API: the same roles as the pages.

Every queryset is narrowed to the teams the user belongs to (`team_ids`), so another team's
object is a 404, exactly like a missing one. Writing needs the member or admin role in the
object's team; a viewer gets 403. Roles are read once per request.
"""

from django.utils.translation import gettext_lazy as _
from rest_framework import permissions
from rest_framework.exceptions import PermissionDenied

from accounts.models import WRITE_ROLES, Membership

VIEWER_DENIED = _("Viewers can look but not change anything.")


def roles(request) -> dict[int, str]:
    """{team id: role} for the request's user, loaded once per request."""
    django_request = getattr(request, "_request", request)
    cached = getattr(django_request, "_milepost_api_roles", None)
    if cached is None:
        user = request.user
        cached = (
            dict(Membership.objects.filter(user=user).values_list("team_id", "role"))
            if user and user.is_authenticated
            else {}
        )
        django_request._milepost_api_roles = cached
    return cached


def team_ids(request) -> list[int]:
    return list(roles(request))


def can_write(request, team_id: int) -> bool:
    return roles(request).get(team_id) in WRITE_ROLES


def require_write(request, team_id: int) -> None:
    if not can_write(request, team_id):
        raise PermissionDenied(VIEWER_DENIED)


class TeamRolePermission(permissions.IsAuthenticated):
    """Reads for any member; writes for members and admins of the object's team."""

    message = VIEWER_DENIED

    def has_permission(self, request, view):
        if not super().has_permission(request, view):
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        # Nobody who writes nowhere gets as far as validation: a viewer's POST is a 403.
        return any(role in WRITE_ROLES for role in roles(request).values())

    def has_object_permission(self, request, view, obj):
        if request.method in permissions.SAFE_METHODS:
            return True
        return can_write(request, view.team_id_of(obj))


class HolderDecidesPermission(permissions.IsAuthenticated):
    """Reads for any member; posting a sign-off decision for anyone signed in, whatever their
    team role (a viewer may hold a role): signoffs.decide lets only the role's holder decide
    (403 for anybody else) and the role must be in one of their teams (else 400)."""
