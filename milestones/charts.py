"""Small server-rendered charts: numbers in, SVG coordinates out (the templates draw them)."""

import datetime
from dataclasses import dataclass, field

BURNUP_WIDTH = 600
BURNUP_HEIGHT = 160
BURNUP_PADDING = 28
MAX_POINTS = 60


@dataclass
class BurnUp:
    """Criteria in scope and criteria met, per day from the first criterion to today."""

    days: list[datetime.date] = field(default_factory=list)
    scope: list[int] = field(default_factory=list)
    met: list[int] = field(default_factory=list)
    scope_points: str = ""
    met_points: str = ""
    target_x: float | None = None
    today_x: float | None = None
    top: int = 0
    first: datetime.date | None = None
    last: datetime.date | None = None
    width: int = BURNUP_WIDTH
    height: int = BURNUP_HEIGHT
    padding: int = BURNUP_PADDING

    @property
    def is_empty(self) -> bool:
        return not self.days

    @property
    def summary(self) -> str:
        if self.is_empty:
            return "No criteria yet."
        return (
            f"{self.met[-1]} of {self.scope[-1]} criteria met on {self.days[-1]:%-d %b %Y}; "
            f"{self.scope[0]} in scope and {self.met[0]} met on {self.days[0]:%-d %b %Y}."
        )


def met_on(criterion) -> datetime.date | None:
    """The day a criterion became met: when it was ticked, or its last edit if measured."""
    if not criterion.met:
        return None
    moment = criterion.checked_at if criterion.checked_at else criterion.updated_at
    return moment.date() if moment else None


def burnup(criteria, *, start: datetime.date | None, target: datetime.date | None, on):
    """Build the burn-up series for `criteria` (success and acceptance criteria alike).

    The x axis runs from the milestone start (or the first criterion) to the later of today
    and the target date; at most MAX_POINTS samples are taken so long milestones stay light.
    """
    criteria = list(criteria)
    chart = BurnUp()
    if not criteria:
        return chart
    created = sorted(c.created_at.date() for c in criteria)
    met = sorted(d for d in (met_on(c) for c in criteria) if d)
    first = min(created[0], start or created[0])
    last = max(on, target or on, first + datetime.timedelta(days=1))
    span = (last - first).days
    step = max(1, -(-span // MAX_POINTS))
    days = [first + datetime.timedelta(days=n) for n in range(0, span + 1, step)]
    if days[-1] != last:
        days.append(last)
    shown = [day for day in days if day <= on] or [first]
    chart.days = shown
    chart.scope = [sum(1 for d in created if d <= day) for day in shown]
    chart.met = [sum(1 for d in met if d <= day) for day in shown]
    chart.top = max(chart.scope) or 1

    inner_w = BURNUP_WIDTH - 2 * BURNUP_PADDING
    inner_h = BURNUP_HEIGHT - 2 * BURNUP_PADDING

    def x(day):
        return round(BURNUP_PADDING + inner_w * (day - first).days / span, 1)

    def y(value):
        return round(BURNUP_HEIGHT - BURNUP_PADDING - inner_h * value / chart.top, 1)

    chart.scope_points = " ".join(f"{x(d)},{y(v)}" for d, v in zip(shown, chart.scope, strict=True))
    chart.met_points = " ".join(f"{x(d)},{y(v)}" for d, v in zip(shown, chart.met, strict=True))
    chart.today_x = x(min(on, last))
    if target and first <= target <= last:
        chart.target_x = x(target)
    chart.first, chart.last = first, last
    return chart
