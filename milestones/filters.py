"""Filters and sort orders for lists of milestones, read from a query string.

The dashboard uses them, and the REST API is meant to use the same ones:

    filters = MilestoneFilters.from_query(request.GET)
    milestones = filter_milestones(Milestone.objects.in_team(team), filters)
    milestones = sort_milestones(milestones, clean_sort(request.GET.get("sort")))

Parameters (those marked "repeatable" may be given several times; any of the values matches):

| parameter  | value                                                        |
|------------|--------------------------------------------------------------|
| `plan`     | a plan key, e.g. `PLAN-001` (case-insensitive)               |
| `owner`    | the owner's user id, or `none` for milestones with no owner  |
| `status`   | repeatable; `planned`, `in_progress`, `completed`, `cancelled` |
| `health`   | repeatable; `on_track`, `at_risk`, `off_track`               |
| `priority` | repeatable; `critical`, `required`, `recommended`            |
| `q`        | text found in the key or the title, case-insensitive         |
| `sort`     | `target`, `key`, `title`, `status`, `health` or `priority`;  |
|            | a leading `-` sorts descending                               |

A value that is not understood is never an error: it is left out, and `MilestoneFilters.ignored`
says which, so a page can tell the user. Filtering never widens the queryset it is given, so a
team-scoped queryset stays team-scoped (an owner id or plan key of another team matches nothing).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from django.db.models import Case, F, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Lower

from milestones.models import (
    CLOSED_STATUSES,
    KEY_PATTERN,
    Health,
    MilestoneStatus,
    Priority,
)

SEARCH_MAX_LENGTH = 100
NO_OWNER = "none"


def _values(params: Mapping, name: str) -> list[str]:
    """Every non-empty value of `name`; works with a QueryDict or a plain dict."""
    if hasattr(params, "getlist"):
        raw = params.getlist(name)
    else:
        value = params.get(name)
        raw = value if isinstance(value, list | tuple) else [value]
    # NUL characters are dropped: PostgreSQL refuses them in a query parameter.
    cleaned = (str(value).replace("\x00", "").strip() for value in raw if value is not None)
    return [value for value in cleaned if value]


def _shown(value: str) -> str:
    """A value quoted back in a note, cut short."""
    return value if len(value) <= 40 else f"{value[:40]}…"


@dataclass(frozen=True)
class MilestoneFilters:
    plan: str = ""
    owner: int | None = None
    no_owner: bool = False
    status: tuple[str, ...] = ()
    health: tuple[str, ...] = ()
    priority: tuple[str, ...] = ()
    q: str = ""
    # Human-readable notes about values that were left out, e.g. 'Unknown status “done”.'
    ignored: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_query(cls, params: Mapping) -> "MilestoneFilters":
        ignored = []

        def choices(name: str, allowed, label: str) -> tuple[str, ...]:
            chosen = []
            for value in _values(params, name):
                if value in allowed.values:
                    if value not in chosen:
                        chosen.append(value)
                else:
                    ignored.append(f"Unknown {label} “{_shown(value)}”.")
            return tuple(chosen)

        plan = ""
        for value in _values(params, "plan")[:1]:
            if KEY_PATTERN.match(value.upper()):
                plan = value.upper()
            else:
                ignored.append(f"“{_shown(value)}” is not a plan key.")

        owner, no_owner = None, False
        for value in _values(params, "owner")[:1]:
            if value.lower() == NO_OWNER:
                no_owner = True
            elif value.isascii() and value.isdigit() and len(value) < 19:
                owner = int(value)
            else:
                ignored.append(f"“{_shown(value)}” is not an owner.")

        return cls(
            plan=plan,
            owner=owner,
            no_owner=no_owner,
            status=choices("status", MilestoneStatus, "status"),
            health=choices("health", Health, "health"),
            priority=choices("priority", Priority, "priority"),
            q=next(iter(_values(params, "q")), "")[:SEARCH_MAX_LENGTH],
            ignored=tuple(ignored),
        )

    @property
    def active(self) -> bool:
        """True when any filter narrows the list."""
        return bool(
            self.plan
            or self.owner is not None
            or self.no_owner
            or self.status
            or self.health
            or self.priority
            or self.q
        )

    @property
    def owner_value(self) -> str:
        """The `owner` parameter as it appears in a URL (for selecting the form option)."""
        if self.no_owner:
            return NO_OWNER
        return "" if self.owner is None else str(self.owner)

    def to_query(self) -> list[tuple[str, str]]:
        """The canonical query-string pairs for these filters (empty ones left out)."""
        pairs = []
        if self.plan:
            pairs.append(("plan", self.plan))
        if self.owner_value:
            pairs.append(("owner", self.owner_value))
        for name in ("status", "health", "priority"):
            pairs.extend((name, value) for value in getattr(self, name))
        if self.q:
            pairs.append(("q", self.q))
        return pairs


def filter_milestones(queryset: QuerySet, filters: MilestoneFilters) -> QuerySet:
    """`queryset` narrowed by `filters`. Pass a team-scoped queryset; this never widens it."""
    if filters.plan:
        queryset = queryset.filter(plan__key=filters.plan)
    if filters.no_owner:
        queryset = queryset.filter(owner__isnull=True)
    elif filters.owner is not None:
        queryset = queryset.filter(owner_id=filters.owner)
    if filters.status:
        queryset = queryset.filter(status__in=filters.status)
    if filters.health:
        queryset = queryset.filter(health__in=filters.health)
    if filters.priority:
        queryset = queryset.filter(priority__in=filters.priority)
    if filters.q:
        queryset = queryset.filter(Q(key__icontains=filters.q) | Q(title__icontains=filters.q))
    return queryset


# --- Sorting --------------------------------------------------------------------------------


def _choice_rank(name: str, choices) -> Case:
    """The position of the field's value in its choices, so 'ascending' follows their order."""
    return Case(
        *(When(**{name: value}, then=Value(rank)) for rank, value in enumerate(choices.values)),
        default=Value(len(choices.values)),
        output_field=IntegerField(),
    )


# Ascending follows the order users read these in: keys and titles A→Z (titles ignore case),
# targets soonest first (no target last either way), status planned → cancelled, health
# on track → off track, priority critical → recommended.
SORTS = {
    "target": F("target_date"),
    "key": F("key"),
    "title": Lower("title"),
    "status": _choice_rank("status", MilestoneStatus),
    "health": _choice_rank("health", Health),
    "priority": _choice_rank("priority", Priority),
}


def clean_sort(value: str | None) -> str:
    """`value` if it names a known sort (optionally with a leading `-`), else ''."""
    value = (value or "").strip()
    return value if value.removeprefix("-") in SORTS else ""


def sort_milestones(queryset: QuerySet, sort: str) -> QuerySet:
    """Order by a cleaned `sort`; '' is the default: open before closed, soonest target first.

    Ties are broken by key and id, so pages never overlap.
    """
    name = sort.removeprefix("-")
    if name not in SORTS:
        closed_last = Case(When(status__in=CLOSED_STATUSES, then=1), default=0)
        return queryset.order_by(closed_last, F("target_date").asc(nulls_last=True), "key", "pk")
    expression = SORTS[name]
    if sort.startswith("-"):
        order = expression.desc(nulls_last=True)
        return queryset.order_by(order, F("key").desc(), F("pk").desc())
    return queryset.order_by(expression.asc(nulls_last=True), "key", "pk")
