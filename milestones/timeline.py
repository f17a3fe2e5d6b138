"""The team timeline: layout of milestones on a date axis, for a server-rendered SVG.

`build_timeline()` loads a team's (or one plan's) milestones and their dependencies in two
queries, whatever the size, and computes every coordinate in Python. The template
`milestones/_timeline_svg.html` only draws what it is given; nothing here knows about HTML.

Coordinates are in SVG pixels. A date maps to the left edge of its day, so a bar runs from
its start date's x to its target date's x, and the today line sits at today's x.
"""

import datetime
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from milestones.models import Dependency, Health, Milestone, MilestoneStatus, Plan, today

if TYPE_CHECKING:
    from accounts.models import Team

# Layout, in px.
LABEL_WIDTH = 300  # left column: key and title of each row
RIGHT_MARGIN = 80  # room for the note after the last bar
AXIS_HEIGHT = 40  # month labels above the rows
FOOT_HEIGHT = 28  # month labels again below, so a tall chart stays readable
PLAN_ROW_HEIGHT = 28
ROW_HEIGHT = 24
BAR_HEIGHT = 12
MIN_BAR_WIDTH = 3
MIN_WIDTH, MAX_WIDTH = 900, 2400
PREFERRED_PX_PER_DAY = 4
MIN_CHART_WIDTH = MIN_WIDTH - LABEL_WIDTH - RIGHT_MARGIN
MAX_CHART_WIDTH = MAX_WIDTH - LABEL_WIDTH - RIGHT_MARGIN
MIN_MONTH_LABEL_GAP = 70  # px between month labels before some are skipped
MIN_WEEK_TICK_GAP = 14  # px between week ticks before they are left out
MIN_WEEK_LABEL_GAP = 24  # px between week ticks before their day numbers are left out
PAD_BEFORE, PAD_AFTER = 7, 14  # days around the earliest and latest date shown
LABEL_CHARS = 40  # key + title that fit the left column at 12px, even in bold

# Health as a glyph and words, so colour is never the only signal. Closed milestones are
# neutral: their computed health is always "on track" and says nothing.
TONES = {
    Health.ON_TRACK: ("✓", "on track"),
    Health.AT_RISK: ("!", "at risk"),
    Health.OFF_TRACK: ("✕", "off track"),
    MilestoneStatus.COMPLETED: ("done", "completed"),
    MilestoneStatus.CANCELLED: ("cancelled", "cancelled"),
}

DEFERRED = ("summary", "rollback_plan", "retro_went_well", "retro_went_badly")
DEFERRED += ("retro_actions", "retro_learnings", "plan__summary")


def _r(value: float) -> float:
    return round(value, 1)


def format_date(value: datetime.date | None) -> str:
    return f"{value.day} {value:%b %Y}" if value else ""


def _days(n: int) -> str:
    return f"{n} day{'' if abs(n) == 1 else 's'}"


@dataclass
class Span:
    x: float
    width: float

    @property
    def end(self) -> float:
        return _r(self.x + self.width)


@dataclass
class Tick:
    x: float
    label: str  # month name (major) or day of the month (a week's Monday); may be empty
    major: bool  # a month boundary rather than a week

    @property
    def label_x(self) -> float:
        return _r(self.x + 4)

    @property
    def top(self) -> float:
        return 4 if self.major else AXIS_HEIGHT - 8


@dataclass
class Row:
    milestone: Milestone
    y: float  # top of the row
    tone: str  # on_track, at_risk, off_track, completed or cancelled
    glyph: str
    health_words: str
    label: str  # the title, shortened to fit the left column
    description: str  # everything about the bar in words (the bar's <title>)
    critical: bool
    bar: Span | None = None  # start → target; None without a target date
    forecast: Span | None = None  # forecast start → forecast finish, when it differs
    forecast_late: bool = False
    baseline_x: float | None = None  # only when the target moved off the baseline
    target_x: float | None = None
    note: str = ""  # glyph and slip, drawn after the bar
    note_x: float = 0
    predecessors: list[str] = field(default_factory=list)

    @property
    def mid(self) -> float:
        return _r(self.y + ROW_HEIGHT / 2)

    @property
    def bar_y(self) -> float:
        return _r(self.y + (ROW_HEIGHT - BAR_HEIGHT) / 2 - 2)

    @property
    def bar_mid(self) -> float:
        return _r(self.bar_y + BAR_HEIGHT / 2)

    @property
    def forecast_y(self) -> float:
        return _r(self.bar_y + BAR_HEIGHT + 1)

    @property
    def forecast_mid(self) -> float:
        return _r(self.forecast_y + 2)

    @property
    def text_y(self) -> float:
        return _r(self.y + ROW_HEIGHT / 2 + 4)

    @property
    def baseline_points(self) -> str:
        """A diamond centred on the bar at the baseline target."""
        if self.baseline_x is None:
            return ""
        x, y, r = self.baseline_x, self.bar_mid, 5
        return f"{_r(x)},{_r(y - r)} {_r(x + r)},{_r(y)} {_r(x)},{_r(y + r)} {_r(x - r)},{_r(y)}"

    @property
    def slip_days(self) -> int | None:
        return self.milestone.forecast_slip_days

    @property
    def slip_text(self) -> str:
        """Forecast finish against the baseline, e.g. "+5 days", "−2 days", "on time"."""
        slip = self.slip_days
        if slip is None:
            return ""
        if slip == 0:
            return "on time"
        return f"{'+' if slip > 0 else '−'}{_days(abs(slip))}"


@dataclass
class Group:
    plan: Plan
    y: float  # top of the plan's header row
    label: str
    rows: list[Row] = field(default_factory=list)
    target_x: float | None = None  # the plan's own target date

    @property
    def text_y(self) -> float:
        return _r(self.y + PLAN_ROW_HEIGHT / 2 + 5)

    @property
    def height(self) -> float:
        return PLAN_ROW_HEIGHT

    @property
    def flag_d(self) -> str:
        """A small flag on the header row at the plan's target date."""
        if self.target_x is None:
            return ""
        x, y = self.target_x, _r(self.y + 5)
        return f"M{x},{y} v18 M{x},{y} h9 l-3,4 l3,4 h-9 z"


@dataclass
class Arrow:
    d: str  # SVG path from the predecessor's bar end to the successor's bar start
    predecessor: str
    successor: str
    lag_days: int
    critical: bool


@dataclass
class Timeline:
    team: "Team"
    plan: Plan | None
    on: datetime.date
    start: datetime.date
    end: datetime.date
    px_per_day: float
    width: float
    height: float
    groups: list[Group]
    ticks: list[Tick]
    arrows: list[Arrow]
    today_x: float
    chart_x: float = LABEL_WIDTH
    axis_height: float = AXIS_HEIGHT

    @property
    def rows(self) -> list[Row]:
        return [row for group in self.groups for row in group.rows]

    @property
    def has_bars(self) -> bool:
        return any(row.bar for group in self.groups for row in group.rows)

    @property
    def undated(self) -> list[Row]:
        return [row for row in self.rows if row.bar is None]

    @property
    def dom_id(self) -> str:
        return f"timeline-{self.plan.key}" if self.plan else "timeline"

    @property
    def rows_bottom(self) -> float:
        return self.height - FOOT_HEIGHT

    @property
    def foot_y(self) -> float:
        return self.height - 10

    @property
    def divider_x(self) -> float:
        return LABEL_WIDTH - 4

    @property
    def label_clip_width(self) -> float:
        return LABEL_WIDTH - 10

    @property
    def undated_x(self) -> float:
        return LABEL_WIDTH + 8

    @property
    def today_label_x(self) -> float:
        return _r(self.today_x + 4)

    @property
    def summary(self) -> str:
        """The chart in one paragraph, for the SVG's <desc>."""
        rows = self.rows
        tones = {tone: sum(row.tone == tone for row in rows) for tone in TONES}
        plans = len(self.groups)
        parts = [
            f"{len(rows)} milestone{'' if len(rows) == 1 else 's'} "
            f"in {plans} plan{'' if plans == 1 else 's'}, "
            f"from {format_date(self.start)} to {format_date(self.end)}; "
            f"today is {format_date(self.on)}.",
            ", ".join(f"{count} {TONES[tone][1]}" for tone, count in tones.items() if count) + ".",
        ]
        critical = sum(row.critical for row in rows)
        if critical:
            parts.append(f"{critical} on the critical path.")
        late = sum(1 for row in rows if row.forecast_late)
        if late:
            parts.append(f"{late} forecast to finish after the target.")
        if self.undated:
            parts.append(f"{len(self.undated)} without a target date.")
        return " ".join(parts)


def load(team, plan: Plan | None = None):
    """The milestones to show and the links among them: two queries, whatever the size."""
    milestones = Milestone.objects.filter(team=team).select_related("plan").defer(*DEFERRED)
    links = Dependency.objects.filter(team=team)
    if plan is not None:
        milestones = milestones.filter(plan=plan)
        links = links.filter(predecessor__plan=plan, successor__plan=plan)
    milestones = list(milestones.order_by("plan__title", "plan_id", "position", "pk"))
    links = list(links.order_by("pk").values_list("predecessor_id", "successor_id", "lag_days"))
    return milestones, links


def build_timeline(team, *, plan: Plan | None = None, on: datetime.date | None = None) -> Timeline:
    milestones, links = load(team, plan)
    return layout(team, milestones, links, plan=plan, on=on or today())


def layout(team, milestones, links, *, plan=None, on: datetime.date) -> Timeline:
    """Place `milestones` (ordered by plan) and `links` (predecessor, successor, lag) on a grid."""
    shown = {m.pk: m for m in milestones}
    links = [link for link in links if link[0] in shown and link[1] in shown]
    start, end = date_range(milestones, on)
    days = max((end - start).days, 1)
    chart_width = min(max(days * PREFERRED_PX_PER_DAY, MIN_CHART_WIDTH), MAX_CHART_WIDTH)
    px_per_day = chart_width / days

    def x_of(day: datetime.date) -> float:
        return _r(LABEL_WIDTH + (day - start).days * px_per_day)

    predecessors = {}
    for before, after, _lag in links:
        predecessors.setdefault(after, []).append(shown[before].key)

    groups: list[Group] = []
    y = AXIS_HEIGHT
    for milestone in milestones:
        if not groups or groups[-1].plan.pk != milestone.plan_id:
            groups.append(plan_group(milestone.plan, y, x_of))
            y += PLAN_ROW_HEIGHT
        row = place(milestone, y, x_of)
        row.predecessors = predecessors.get(milestone.pk, [])
        groups[-1].rows.append(row)
        y += ROW_HEIGHT

    rows = {row.milestone.pk: row for group in groups for row in group.rows}
    arrows = [
        arrow(rows[before], rows[after], lag)
        for before, after, lag in links
        if rows[before].bar and rows[after].bar
    ]
    return Timeline(
        team=team,
        plan=plan,
        on=on,
        start=start,
        end=end,
        px_per_day=px_per_day,
        width=_r(LABEL_WIDTH + chart_width + RIGHT_MARGIN),
        height=y + FOOT_HEIGHT,
        groups=groups,
        ticks=ticks(start, end, px_per_day, x_of),
        arrows=arrows,
        today_x=x_of(on),
    )


def date_range(milestones, on: datetime.date) -> tuple[datetime.date, datetime.date]:
    """Every date drawn, and today, padded a little on each side."""
    dates = [on]
    for m in milestones:
        if m.target_date:
            dates += [m.target_date, m.start_date, m.baseline_target_date]
            dates += [m.forecast_start, m.forecast_finish, m.plan.target_date]
    dates = [d for d in dates if d]
    lo, hi = min(dates), max(dates)
    return lo - datetime.timedelta(days=PAD_BEFORE), hi + datetime.timedelta(days=PAD_AFTER)


def plan_group(plan: Plan, y: float, x_of) -> Group:
    label = f"{plan.key} · {plan.title}"
    if plan.status != "active":
        label += f" ({plan.get_status_display().lower()})"
    return Group(
        plan=plan,
        y=y,
        label=shorten(label, LABEL_CHARS),
        target_x=x_of(plan.target_date) if plan.target_date else None,
    )


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def place(m: Milestone, y: float, x_of) -> Row:
    """One milestone's row: bar, forecast, baseline marker, note and words."""
    tone = m.status if m.is_closed else m.health
    glyph, words = TONES.get(tone, ("?", tone))
    row = Row(
        milestone=m,
        y=y,
        tone=tone,
        glyph=glyph,
        health_words=words,
        # Critical rows are bold, so they get a few characters fewer.
        label=shorten(m.title, max(LABEL_CHARS - len(m.key) - 3 * m.is_critical, 12)),
        description="",
        critical=m.is_critical and not m.is_closed,
    )
    if m.target_date:
        target_x = x_of(m.target_date)
        begin = m.start_date or m.forecast_start or m.target_date
        begin_x = min(x_of(begin), target_x)
        row.target_x = target_x
        row.bar = Span(begin_x, _r(max(target_x - begin_x, MIN_BAR_WIDTH)))
        if m.baseline_target_date and m.baseline_target_date != m.target_date:
            row.baseline_x = x_of(m.baseline_target_date)
        # A completed milestone's "forecast" is its finish date; the bar already says done.
        if not m.is_closed and m.forecast_finish and m.forecast_finish != m.target_date:
            f_start_x = x_of(m.forecast_start or begin)
            f_end_x = x_of(m.forecast_finish)
            f_start_x = min(f_start_x, f_end_x)
            row.forecast = Span(f_start_x, _r(max(f_end_x - f_start_x, MIN_BAR_WIDTH)))
            row.forecast_late = m.forecast_finish > m.target_date
        right = max(
            row.bar.end,
            row.forecast.end if row.forecast else 0,
            row.baseline_x + 5 if row.baseline_x is not None else 0,
        )
        row.note_x = _r(right + 10)  # clear of the arrows' elbows at +4
        slip = m.forecast_slip_days
        row.note = f"{glyph} +{slip}d" if not m.is_closed and slip and slip > 0 else glyph
    row.description = describe(m, row)
    return row


def describe(m: Milestone, row: Row) -> str:
    """The bar in words: key, title, dates, forecast, slip, health, critical path."""
    parts = [f"{m.key} {m.title}."]
    if not m.target_date:
        parts.append("No target date yet.")
    else:
        start = f"{format_date(m.start_date)} → " if m.start_date else "Due "
        parts.append(f"{start}{format_date(m.target_date)}.")
        if row.baseline_x is not None:
            parts.append(f"Baseline target {format_date(m.baseline_target_date)}.")
        if m.status == MilestoneStatus.COMPLETED and m.completed_on:
            parts.append(f"Completed on {format_date(m.completed_on)}.")
        elif row.forecast:
            parts.append(f"Forecast finish {format_date(m.forecast_finish)}.")
        slip = m.forecast_slip_days
        if slip and not m.is_closed:
            parts.append(f"{_days(abs(slip))} {'late' if slip > 0 else 'early'} on the baseline.")
    parts.append(f"Status: {m.get_status_display().lower()}.")
    if not m.is_closed:
        parts.append(f"Health: {row.health_words}.")
        parts += [reason["message"] for reason in m.health_reasons or () if "message" in reason]
    if row.critical:
        slack = f" (slack {_days(m.slack_days)})" if m.slack_days is not None else ""
        parts.append(f"On the critical path{slack}.")
    return " ".join(parts)


def arrow(before: Row, after: Row, lag: int) -> Arrow:
    """An elbow from the end of `before`'s bar to the start of `after`'s bar.

    When the successor starts well right of the predecessor's end, one elbow; otherwise the
    path drops to the successor's row edge, runs back left and enters the bar from the left.
    """
    elbow, approach = 4, 10  # approach leaves room for the arrowhead
    x1, y1 = before.bar.end, before.mid
    x2, y2 = after.bar.x, after.mid
    if x2 - x1 >= elbow + approach:
        d = f"M{x1},{y1} H{_r(x1 + elbow)} V{y2} H{_r(x2 - 1)}"
    else:
        edge = after.y if y2 > y1 else after.y + ROW_HEIGHT
        d = f"M{x1},{y1} H{_r(x1 + elbow)} V{_r(edge)} H{_r(x2 - approach)} V{y2} H{_r(x2 - 1)}"
    return Arrow(
        d=d,
        predecessor=before.milestone.key,
        successor=after.milestone.key,
        lag_days=lag,
        critical=before.critical and after.critical,
    )


def ticks(start: datetime.date, end: datetime.date, px_per_day: float, x_of) -> list[Tick]:
    """Month gridlines and names (every 2nd, 3rd… month when crowded); weeks when there is room.

    The first name carries the year, as does every January. When the range begins well before
    its first named month, its start is named too, so even a three-week range says its month.
    """
    out = []
    week_px = px_per_day * 7
    if week_px >= MIN_WEEK_TICK_GAP:
        monday = start + datetime.timedelta(days=-start.weekday() % 7)
        while monday <= end:
            label = str(monday.day) if week_px >= MIN_WEEK_LABEL_GAP else ""
            out.append(Tick(x_of(monday), label, major=False))
            monday += datetime.timedelta(days=7)
    step = next((s for s in (1, 2, 3, 6, 12) if s * 30.4 * px_per_day >= MIN_MONTH_LABEL_GAP), 12)
    months = []
    month = datetime.date(start.year, start.month, 1)
    while month <= end:
        if month >= start:
            months.append((month, (month.year * 12 + month.month - 1) % step == 0))
        month = datetime.date(month.year + month.month // 12, month.month % 12 + 1, 1)
    named = [month for month, is_named in months if is_named]
    year_shown = False
    if not named or (named[0] - start).days * px_per_day >= MIN_MONTH_LABEL_GAP:
        out.append(Tick(x_of(start), f"{start:%b %Y}", major=True))
        year_shown = True
    for month, is_named in months:
        label = ""
        if is_named:
            label = f"{month:%b}" if year_shown and month.month != 1 else f"{month:%b %Y}"
            year_shown = True
        out.append(Tick(x_of(month), label, major=True))
    return sorted(out, key=lambda tick: (tick.x, tick.major))
