"""Forecasts, slack and the critical path: one pass over plain data, no database access.

The formulas (also in the README):

- A *completed* milestone's forecast finish is its completion date (its target date if none
  was recorded); its forecast start is its start date (or the finish).
- A *cancelled* milestone, or one without a target date, has no forecast and constrains nothing.
- A milestone's **planned duration** is target − start in days (0 without a start date).
- A milestone that has *not started* (planned) starts at the latest of its planned start, today,
  and each predecessor's forecast finish + lag; it then keeps its planned duration.
- A milestone *in progress* has started: its forecast start is its start date. Its finish is
  projected from progress: with p% done after e elapsed days, the whole takes e × 100 / p days,
  so finish = start + ceil(e × 100 / p). With no progress yet (or no elapsed time) it keeps its
  planned duration. The finish is never earlier than today, because the work is not done.
- **Slip** = forecast finish − baseline target date.
- **Slack** is computed backwards from each plan's target date (or, without one, from the
  plan's latest forecast finish): a milestone's latest allowed finish is the earliest of its
  plan's deadline and, for each successor, the successor's latest allowed start − lag. Slack =
  latest allowed finish − forecast finish.
- The **critical path** of a plan is the set of its open milestones with the least slack in
  that plan (zero when the plan is exactly on its deadline, negative when it will miss it).
  Successors in other plans take part in the backward pass, so cross-plan chains count.
"""

import datetime
import math
from collections import defaultdict, deque
from dataclasses import dataclass, field

PLANNED, IN_PROGRESS, COMPLETED, CANCELLED = "planned", "in_progress", "completed", "cancelled"


@dataclass
class Task:
    """What the pass needs to know about one milestone."""

    id: int
    plan_id: int
    status: str
    start_date: datetime.date | None
    target_date: datetime.date | None
    completed_on: datetime.date | None = None
    progress: int = 0


@dataclass
class Link:
    predecessor_id: int
    successor_id: int
    lag_days: int = 0


@dataclass
class Forecast:
    start: datetime.date | None = None
    finish: datetime.date | None = None
    # The predecessor whose finish (+ lag) set this milestone's start, when it pushed it later
    # than planned; None when the milestone's own dates decided.
    pushed_by: int | None = None
    slack_days: int | None = None
    critical: bool = False
    predecessors: list[int] = field(default_factory=list)


def topological_order(ids, links: list[Link]) -> list[int]:
    """Milestone ids with every predecessor before its successors (Kahn's algorithm)."""
    waiting = dict.fromkeys(ids, 0)
    following = defaultdict(list)
    for link in links:
        if link.predecessor_id in waiting and link.successor_id in waiting:
            following[link.predecessor_id].append(link.successor_id)
            waiting[link.successor_id] += 1
    ready = deque(sorted(node for node, count in waiting.items() if count == 0))
    order = []
    while ready:
        node = ready.popleft()
        order.append(node)
        for successor in following[node]:
            waiting[successor] -= 1
            if waiting[successor] == 0:
                ready.append(successor)
    if len(order) != len(waiting):
        raise ValueError("The dependencies contain a cycle; the model layer should refuse these.")
    return order


def days(n: int) -> datetime.timedelta:
    return datetime.timedelta(days=n)


def planned_duration(task: Task) -> int:
    if task.start_date and task.target_date:
        return max((task.target_date - task.start_date).days, 0)
    return 0


def _forward(task: Task, incoming: list[Link], forecasts: dict, today: datetime.date) -> Forecast:
    if task.status == CANCELLED or task.target_date is None:
        return Forecast()
    if task.status == COMPLETED:
        finish = task.completed_on or task.target_date
        return Forecast(start=min(task.start_date or finish, finish), finish=finish)

    duration = planned_duration(task)
    if task.status == IN_PROGRESS:
        start = task.start_date or today
        elapsed = (today - start).days
        if task.progress > 0 and elapsed > 0:
            finish = start + days(math.ceil(elapsed * 100 / task.progress))
        else:
            finish = start + days(duration)
        return Forecast(start=start, finish=max(finish, today))

    start = max(task.start_date or task.target_date, today)
    pushed_by = None
    for link in incoming:
        before = forecasts.get(link.predecessor_id)
        if before is None or before.finish is None:
            continue
        earliest = before.finish + days(link.lag_days)
        if earliest > start:
            start, pushed_by = earliest, link.predecessor_id
    return Forecast(start=start, finish=start + days(duration), pushed_by=pushed_by)


def compute(
    tasks: dict[int, Task],
    links: list[Link],
    plan_deadlines: dict[int, datetime.date | None],
    today: datetime.date,
) -> dict[int, Forecast]:
    """Forecast, slack and criticality for every task, in two passes over the graph."""
    order = topological_order(tasks.keys(), links)
    incoming, outgoing = defaultdict(list), defaultdict(list)
    for link in links:
        if link.predecessor_id in tasks and link.successor_id in tasks:
            incoming[link.successor_id].append(link)
            outgoing[link.predecessor_id].append(link)

    forecasts: dict[int, Forecast] = {}
    for task_id in order:
        forecast = _forward(tasks[task_id], incoming[task_id], forecasts, today)
        forecast.predecessors = [link.predecessor_id for link in incoming[task_id]]
        forecasts[task_id] = forecast

    deadlines = dict(plan_deadlines)
    for task_id, forecast in forecasts.items():
        plan_id = tasks[task_id].plan_id
        if deadlines.get(plan_id) is None and forecast.finish is not None:
            latest = deadlines.get(("latest", plan_id))
            deadlines[("latest", plan_id)] = max(latest or forecast.finish, forecast.finish)

    latest_finish: dict[int, datetime.date] = {}
    for task_id in reversed(order):
        task, forecast = tasks[task_id], forecasts[task_id]
        if forecast.finish is None or task.status in (COMPLETED, CANCELLED):
            continue
        limit = deadlines.get(task.plan_id) or deadlines.get(("latest", task.plan_id))
        for link in outgoing[task_id]:
            after = tasks[link.successor_id]
            if link.successor_id not in latest_finish:
                continue
            latest_start = latest_finish[link.successor_id] - days(planned_duration(after))
            candidate = latest_start - days(link.lag_days)
            limit = candidate if limit is None else min(limit, candidate)
        if limit is None:
            continue
        latest_finish[task_id] = limit
        forecast.slack_days = (limit - forecast.finish).days

    least_slack: dict[int, int] = {}
    for task_id, forecast in forecasts.items():
        if forecast.slack_days is not None:
            plan_id = tasks[task_id].plan_id
            least_slack[plan_id] = min(
                least_slack.get(plan_id, forecast.slack_days), forecast.slack_days
            )
    for task_id, forecast in forecasts.items():
        if forecast.slack_days is not None:
            forecast.critical = forecast.slack_days <= least_slack[tasks[task_id].plan_id]
    return forecasts
