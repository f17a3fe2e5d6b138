from django.utils.functional import SimpleLazyObject

from accounts.models import Membership


def teams(request):
    """The signed-in user's memberships, for the team switcher in the page header."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    memberships = SimpleLazyObject(
        lambda: list(Membership.objects.filter(user=user).select_related("team"))
    )
    return {"user_memberships": memberships}
