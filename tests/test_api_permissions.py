"""The permission matrix: every endpoint × method × caller, asserting the status.

Callers: anonymous, a bad bearer token, and for each of outsider (admin of another team),
viewer, member and admin both a session and a personal API token. Every write that should
succeed is sent with the right If-Match, so the cell tests permission, not concurrency.
Each write works on a fresh object, so cells do not depend on each other.

Sign-off roles are changed by team admins only (signoffs.add_role, set_holder, drop_role);
a sign-off decision is recorded for the role's holder only, whatever their team role
(signoffs.decide), and never changed or deleted. `me/notification-preferences/` is the
caller's own, so every signed-in caller reads and writes it.

The spec endpoints (specs/api.py) are one URL each, tried with every method: importing is a
write (members and admins of the team), exporting and checking a milestone or plan are reads
(viewers too), and checking a posted file reads no team at all (anyone signed in).
"""

import datetime
import itertools

import pytest

from accounts.models import Role
from milestones import services, signoffs
from milestones.models import Activity, today
from tests import test_api_support as support
from tests.factories import (
    add_member,
    make_blocker,
    make_criterion,
    make_deliverable,
    make_milestone,
    make_plan,
    make_risk,
    make_status_update,
)
from tests.test_api_support import if_match, url

api, no_throttle = support.api, support.no_throttle  # fixtures the API tests share

# --- Callers ---------------------------------------------------------------------------------

CALLERS = [
    "anonymous",
    "bad_token",
    "outsider_session",
    "outsider_token",
    "viewer_session",
    "viewer_token",
    "member_session",
    "member_token",
    "admin_session",
    "admin_token",
]


def client_for(api, world, caller: str):
    if caller == "anonymous":
        return api.anonymous()
    if caller == "bad_token":
        return api.bearer("mpt_not-a-real-token")
    who, how = caller.rsplit("_", 1)
    user = getattr(world, who)
    return api.session(user) if how == "session" else api.token(user)


def role_of(caller: str) -> str:
    return caller.rsplit("_", 1)[0]


# --- Objects each resource works on (fresh for every cell that changes something) -----------


def successor(world):
    return make_milestone(world.plan, world.admin, title="Later")


_names = itertools.count(1)


def role_name() -> str:
    """A sign-off role name not yet used on the milestone."""
    return f"Reviewer {next(_names)}"


def held_role(w, holder):
    return signoffs.add_role(w.milestone, actor=w.admin, name=role_name(), holder=holder)


def decision(w):
    role = held_role(w, w.admin)
    return signoffs.decide(
        w.milestone, user=w.admin, role=role, outcome="changes_requested", comment="Not yet"
    )


def role_to_decide(w, caller: str, *, own: bool):
    """For `create`, a role the caller holds (a team member: viewer, member or admin);
    for `decide_unheld`, one held by somebody else. Outsiders cannot hold our roles."""
    who = role_of(caller)
    if who not in ("viewer", "member", "admin"):
        return held_role(w, w.admin)
    user = getattr(w, who)
    if own:
        return held_role(w, user)
    return held_role(w, w.member if user == w.admin else w.admin)


BUILD = {
    "plans": lambda w: make_plan(w.team, w.admin),
    "milestones": lambda w: make_milestone(w.plan, w.admin),
    "deliverables": lambda w: make_deliverable(w.milestone, w.admin),
    "criteria": lambda w: make_criterion(w.admin, milestone=w.milestone),
    "risks": lambda w: make_risk(w.milestone, w.admin),
    "blockers": lambda w: make_blocker(w.milestone, w.admin),
    "dependencies": lambda w: services.add_dependency(w.milestone, successor(w), actor=w.admin),
    "status-updates": lambda w: make_status_update(w.milestone, w.admin),
    "activity": lambda w: Activity.objects.filter(team=w.team).first(),
    "health": lambda w: w.milestone,
    "teams": lambda w: w.team,
    "signoff-roles": lambda w: held_role(w, None),
    "signoff-decisions": decision,
}
PREFERENCES = "me/notification-preferences"


def new_body(resource: str, w, caller: str) -> dict:
    if resource == "signoff-decisions":
        role = role_to_decide(w, caller, own=True)
        return {"role": role.pk, "outcome": "changes_requested", "comment": "Not yet"}
    return {
        "plans": lambda: {"team": w.team.slug, "title": "New plan"},
        "milestones": lambda: {"plan": w.plan.pk, "title": "New milestone"},
        "deliverables": lambda: {"milestone": w.milestone.pk, "title": "New deliverable"},
        "criteria": lambda: {"milestone": w.milestone.pk, "text": "It works"},
        "risks": lambda: {"milestone": w.milestone.pk, "title": "It breaks"},
        "blockers": lambda: {"milestone": w.milestone.pk, "title": "Waiting"},
        "dependencies": lambda: {"predecessor": w.milestone.pk, "successor": successor(w).pk},
        "status-updates": lambda: {
            "milestone": w.milestone.pk,
            "percent_complete": 30,
            "confidence": 80,
            "narrative": "Going well.",
        },
        "activity": lambda: {"verb": "made up"},
        "health": lambda: {"health": "on_track"},
        "teams": lambda: {"name": "Mine now"},
        "signoff-roles": lambda: {
            "milestone": w.milestone.pk,
            "name": role_name(),
            "holder": w.member.username,
        },
        PREFERENCES: lambda: {"digest_hour": 9},
    }[resource]()


def full_body(resource: str, w) -> dict:
    """A PUT body (every required field)."""
    return {
        "plans": {"title": "Renamed", "status": "active"},
        "milestones": {
            "plan": w.plan.pk,
            "title": "Renamed",
            "target_date": str(today() + datetime.timedelta(days=40)),
        },
        "deliverables": {"title": "Renamed", "status": "in_progress"},
        "criteria": {"text": "Renamed", "level": "should"},
        "risks": {"title": "Renamed", "likelihood": "high"},
        "blockers": {"title": "Renamed", "priority": "high"},
        "signoff-roles": {"holder": w.member.username},
        PREFERENCES: {
            "digest_enabled": True,
            "digest_weekday": 4,
            "digest_hour": 16,
            "digest_when_empty": "skip",
            "at_risk_alerts": False,
            "signoff_requests": True,
            "signoff_decisions": True,
            "update_reminders": False,
            "completion_notices": True,
            "muted_plans": [],
            "time_zone": "Europe/Berlin",
        },
    }.get(resource, {"title": "Renamed"})


PATCHES = {
    "plans": {"title": "Patched"},
    "milestones": {"status": "in_progress"},
    "deliverables": {"status": "accepted"},
    "criteria": {"checked": True},
    "risks": {"mitigation": "Have a plan B."},
    "blockers": {"resolved_on": str(today())},
    "signoff-roles": {"holder": "max"},
    PREFERENCES: {"at_risk_alerts": False, "time_zone": "America/New_York"},
}

EDITABLE = {"plans", "milestones", "deliverables", "criteria", "risks", "blockers"}
APPEND_ONLY = {"dependencies", "status-updates"}
READ_ONLY = {"activity", "health", "teams"}
ORDERED = {"milestones", "deliverables", "criteria"}
VERSIONED = EDITABLE | {"signoff-roles"}  # writes need If-Match
RESOURCES = sorted(
    EDITABLE | APPEND_ONLY | READ_ONLY | {"signoff-roles", "signoff-decisions", PREFERENCES}
)
OPERATIONS = ["list", "retrieve", "create", "put", "patch", "delete", "move"]
# Which operations each resource answers (the rest are 405, or 404 for a move URL).
SUPPORTED = {
    **{r: {"list", "retrieve", "create", "put", "patch", "delete"} for r in EDITABLE},
    **{r: {"list", "retrieve", "create", "delete"} for r in APPEND_ONLY},
    **{r: {"list", "retrieve"} for r in READ_ONLY},
    "signoff-roles": {"list", "retrieve", "create", "patch", "delete"},
    "signoff-decisions": {"list", "retrieve", "create", "decide_unheld"},
    PREFERENCES: {"list", "retrieve", "put", "patch"},  # one object: list and retrieve alike
}
for _resource in ORDERED:
    SUPPORTED[_resource].add("move")


def detail_path(resource, obj) -> str:
    if resource == PREFERENCES:
        return url(f"{PREFERENCES}/")
    return url(f"{resource}/{obj.slug if resource == 'teams' else obj.pk}/")


def supported(resource: str, operation: str) -> bool:
    return operation in SUPPORTED[resource]


def expected(resource: str, operation: str, caller: str) -> int:
    """The status each caller should get; the single source of truth for the matrix."""
    role = role_of(caller)
    if operation == "move" and resource not in ORDERED:
        return 404  # no such URL
    if role in ("anonymous", "bad"):
        return 401
    if resource == PREFERENCES:  # the caller's own, whatever their team role
        return 200 if supported(resource, operation) else 405
    reading = operation in ("list", "retrieve")
    if reading:
        if operation == "list":
            return 200
        return 404 if role == "outsider" else 200
    if resource == "signoff-decisions":
        # Anyone signed in may try to decide (a viewer may hold a role); signoffs.decide
        # lets only the role's holder, and another team's role does not exist (400).
        if not supported(resource, operation):
            return 405
        if role == "outsider":
            return 400
        return 201 if operation == "create" else 403
    # A write. Nobody who writes nowhere gets past the permission check.
    if role == "viewer":
        return 403
    if not supported(resource, operation):
        return 405
    if role == "outsider":
        # The objects and parents of the team do not exist for them.
        return 400 if operation == "create" else 404
    if resource == "signoff-roles" and role != "admin":
        return 403  # roles and holders are for team admins
    return {"create": 201, "delete": 204}.get(operation, 200)


def perform(client, world, resource: str, operation: str, caller: str):
    base = url(f"{resource}/")
    if operation == "list":
        return client.get(base)
    if operation == "create":
        return client.post(base, new_body(resource, world, caller))
    if operation == "decide_unheld":
        role = role_to_decide(world, caller, own=False)
        return client.post(base, {"role": role.pk, "outcome": "approved", "with_exceptions": True,
                                  "comment": "Ship it"})  # fmt: skip
    target = BUILD[resource](world) if resource != PREFERENCES else None
    path = detail_path(resource, target)
    if operation == "retrieve":
        return client.get(path)
    headers = if_match(target) if resource in VERSIONED else {}
    if operation == "put":
        return client.put(path, full_body(resource, world), **headers)
    if operation == "patch":
        return client.patch(path, PATCHES.get(resource, {"title": "x"}), **headers)
    if operation == "delete":
        return client.delete(path, **headers)
    if operation == "move":
        return client.post(f"{path}move/", {"offset": -1})
    raise AssertionError(operation)


# --- The spec endpoints: one URL each, every method -----------------------------------------

# Path (`{id}` for the object's) → the one method it answers.
SPEC_ENDPOINTS = {
    "specs/import": "post",
    "specs/check": "post",
    "specs/milestones/{id}/export": "get",
    "specs/milestones/{id}/check": "get",
    "specs/plans/{id}/export": "get",
}
METHODS = ["get", "post", "put", "patch", "delete"]
SPEC = "# Imported by the matrix\n"


def expected_spec(endpoint: str, method: str, caller: str) -> int:
    role = role_of(caller)
    if role in ("anonymous", "bad"):
        return 401
    if endpoint == "specs/check":  # reads only the posted file
        return 200 if method == "post" else 405
    if method != "get" and role == "viewer":
        return 403  # nobody who writes nowhere gets past the permission check
    if method != SPEC_ENDPOINTS[endpoint]:
        return 405
    if role == "outsider":
        return 404  # the team (import) or the object is not theirs
    return 201 if endpoint == "specs/import" else 200


def perform_spec(client, world, endpoint: str, method: str):
    target = world.plan if endpoint.startswith("specs/plans/") else world.milestone
    path = url(endpoint.replace("{id}", str(target.pk)) + "/")
    body = {"markdown": SPEC}
    if endpoint == "specs/import":
        body.update(team=world.team.slug, plan=world.plan.key)
    if method in ("get", "delete"):
        return getattr(client, method)(path)
    return getattr(client, method)(path, body)


CASES = [(resource, operation) for resource in RESOURCES for operation in OPERATIONS]
CASES.append(("signoff-decisions", "decide_unheld"))  # a role somebody else holds
CASES += [(endpoint, method) for endpoint in SPEC_ENDPOINTS for method in METHODS]
MATRIX_SIZE = len(CASES) * len(CALLERS)


@pytest.mark.parametrize(("resource", "operation"), CASES)
def test_permission_matrix(world, api, resource, operation):
    # A second milestone in the plan, so that moving one up always has somewhere to go.
    make_milestone(world.plan, world.admin, title="Second")
    mismatches = []
    spec = resource in SPEC_ENDPOINTS
    for caller in CALLERS:
        client = client_for(api, world, caller)
        if spec:
            response = perform_spec(client, world, resource, operation)
            want = expected_spec(resource, operation, caller)
        else:
            response = perform(client, world, resource, operation, caller)
            want = expected(resource, operation, caller)
        if response.status_code != want:
            mismatches.append(
                f"{caller}: {operation} {resource} → {response.status_code}, expected {want}: "
                f"{response.content[:200]!r}"
            )
    assert not mismatches, "\n".join(mismatches)


def test_every_api_resource_is_in_the_matrix():
    """A resource added to api/urls.py without its cells here fails this test."""
    from api.urls import router

    registered = {prefix for prefix, _viewset, _basename in router.registry}
    assert registered | {PREFERENCES} == set(RESOURCES)


def test_every_spec_endpoint_is_in_the_matrix():
    """An API URL added to specs/urls.py without its cells here fails this test."""
    from specs.urls import urlpatterns

    routes = {
        str(pattern.pattern).removeprefix("api/v1/").rstrip("/").replace("<int:pk>", "{id}")
        for pattern in urlpatterns
        if str(pattern.pattern).startswith("api/v1/")
    }
    assert routes == set(SPEC_ENDPOINTS)


def test_matrix_size_is_what_the_readme_says():
    assert MATRIX_SIZE == ((14 * 7 + 1) + 5 * 5) * 10 == 1240


def test_a_viewer_who_writes_in_another_team_still_gets_403_here(world, api):
    """Write access is per team: an admin elsewhere is still only a viewer in this team."""
    other_admin = add_member(world.other_team, role=Role.ADMIN)
    add_member(world.team, other_admin, Role.VIEWER)
    client = api.token(other_admin)
    response = client.post(url("deliverables/"), {"milestone": world.milestone.pk, "title": "X"})
    assert response.status_code == 403
    response = client.patch(
        url(f"milestones/{world.milestone.pk}/"), {"title": "X"}, **if_match(world.milestone)
    )
    assert response.status_code == 403
    assert not world.milestone.deliverables.exists()
    body = {"team": world.team.slug, "plan": world.plan.key, "markdown": SPEC}
    assert client.post(url("specs/import/"), body).status_code == 403
    assert world.team.milestones.count() == 1


@pytest.mark.parametrize("resource", [r for r in RESOURCES if r != PREFERENCES])
def test_lists_never_include_another_teams_rows(world, api, resource):
    """Both teams have one of everything; each member sees only their own team's rows."""
    from tests.test_api_permissions import BUILD as build

    class Other:
        team = world.other_team
        admin = world.outsider
        plan = make_plan(world.other_team, world.outsider)
        milestone = make_milestone(plan, world.outsider)

    ours, theirs = build[resource](world), build[resource](Other)
    for user, mine, not_mine in (
        (world.member, ours, theirs),
        (world.outsider, theirs, ours),
    ):
        response = api.token(user).get(url(f"{resource}/"), {"page_size": 200})
        assert response.status_code == 200
        ids = {row["id"] for row in response.json()["results"]}
        assert mine.pk in ids
        assert not_mine.pk not in ids
