"""The schedule pass (milestones/schedule.py) on hand-built graphs: no database, a fixed today.

Dates are written as offsets from TODAY, so `d(12)` is twelve days after today.
"""

import datetime

import pytest

from milestones.schedule import (
    CANCELLED,
    COMPLETED,
    IN_PROGRESS,
    PLANNED,
    Link,
    Task,
    compute,
    planned_duration,
    topological_order,
)

TODAY = datetime.date(2030, 1, 10)


def d(offset: int) -> datetime.date:
    return TODAY + datetime.timedelta(days=offset)


def task(id, start, target, *, plan=1, status=PLANNED, **fields) -> Task:
    """A task whose dates are offsets from TODAY (None stays None)."""
    return Task(
        id=id,
        plan_id=plan,
        status=status,
        start_date=None if start is None else d(start),
        target_date=None if target is None else d(target),
        **fields,
    )


def run(tasks, links=(), deadlines=None, today=TODAY):
    by_id = {t.id: t for t in tasks}
    if deadlines is None:
        deadlines = dict.fromkeys({t.plan_id for t in tasks})
    return compute(by_id, list(links), deadlines, today)


# --- Topological order ----------------------------------------------------------------------


def test_topological_order_puts_every_predecessor_first():
    links = [Link(3, 1), Link(1, 2), Link(3, 2), Link(4, 3)]
    order = topological_order([1, 2, 3, 4], links)
    assert sorted(order) == [1, 2, 3, 4]
    for link in links:
        assert order.index(link.predecessor_id) < order.index(link.successor_id)


def test_topological_order_ignores_links_to_unknown_milestones():
    assert topological_order([1, 2], [Link(1, 2), Link(2, 99), Link(98, 1)]) == [1, 2]


def test_topological_order_refuses_a_cycle():
    with pytest.raises(ValueError, match="cycle"):
        topological_order([1, 2, 3], [Link(1, 2), Link(2, 3), Link(3, 1)])


def test_compute_refuses_a_cycle():
    tasks = [task(1, 0, 5), task(2, 5, 10)]
    with pytest.raises(ValueError, match="cycle"):
        run(tasks, [Link(1, 2), Link(2, 1)])


# --- Propagation along a chain --------------------------------------------------------------


def chain(m1_target: int, m2_start: int = 12):
    """M1 → (lag 2) → M2 → (lag 3) → M3, all planned, all starting on or after today."""
    tasks = [
        task(1, 0, m1_target),  # M1
        task(2, m2_start, m2_start + 10),  # M2, 10 days
        task(3, 25, 30),  # M3, 5 days
    ]
    return run(tasks, [Link(1, 2, lag_days=2), Link(2, 3, lag_days=3)])


def test_an_on_time_chain_keeps_its_planned_dates():
    forecasts = chain(m1_target=10)
    assert [(forecasts[i].start, forecasts[i].finish) for i in (1, 2, 3)] == [
        (d(0), d(10)),
        (d(12), d(22)),
        (d(25), d(30)),
    ]
    assert [forecasts[i].pushed_by for i in (1, 2, 3)] == [None, None, None]
    assert forecasts[2].predecessors == [1]
    assert forecasts[3].predecessors == [2]


def test_slipping_the_first_milestone_moves_the_whole_chain_by_the_same_amount():
    before, after = chain(m1_target=10), chain(m1_target=15)
    moved = {i: (after[i].finish - before[i].finish).days for i in (1, 2, 3)}
    assert moved == {1: 5, 2: 5, 3: 5}
    # M2 now starts at M1's finish + lag 2, M3 at M2's finish + lag 3.
    assert after[2].start == d(15 + 2)
    assert after[3].start == d(27 + 3)
    assert (after[2].pushed_by, after[3].pushed_by) == (1, 2)


def test_a_gap_before_a_successor_absorbs_part_of_a_slip():
    # M2 planned at day 14: M1 (day 10) + lag 2 = day 12 leaves a 2-day gap. Moving M1 by
    # 5 days to day 15 moves M2 to 15 + 2 = 17, i.e. by 5 − 2 = 3 days, and M3 by 3 days too.
    before, after = chain(m1_target=10, m2_start=14), chain(m1_target=15, m2_start=14)
    assert before[2].start == d(14) and before[2].pushed_by is None
    assert after[2].start == d(17)
    assert (after[2].finish - before[2].finish).days == 3
    # M3: before 24 + 3 = 27 > 25, so it was already pushed; after 27 + 3 = 30.
    assert (before[3].start, after[3].start) == (d(27), d(30))
    assert (after[3].finish - before[3].finish).days == 3


# --- Diamonds -------------------------------------------------------------------------------


def diamond(lag_from_a: int = 0):
    tasks = [
        task(1, 0, 10),  # A finishes day 10
        task(2, 0, 15),  # B finishes day 15
        task(3, 5, 8),  # C, 3 days, planned at day 5
    ]
    return run(tasks, [Link(1, 3, lag_days=lag_from_a), Link(2, 3)])


def test_a_diamond_takes_the_later_predecessor():
    forecasts = diamond()
    assert forecasts[3].start == d(15)
    assert forecasts[3].finish == d(18)
    assert forecasts[3].pushed_by == 2
    assert sorted(forecasts[3].predecessors) == [1, 2]


def test_a_diamond_counts_the_lag_when_choosing_the_later_predecessor():
    forecasts = diamond(lag_from_a=7)  # A: 10 + 7 = 17 > B's 15
    assert forecasts[3].start == d(17)
    assert forecasts[3].finish == d(20)
    assert forecasts[3].pushed_by == 1


# --- Milestones in progress -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("progress", "finish"),
    [
        (25, 30),  # 10 elapsed days at 25 %: 10 × 100 / 25 = 40 days from day −10
        (30, 24),  # 1000 / 30 = 33.3…, rounded up to 34 days from day −10
        (50, 10),  # exactly on plan
        (90, 2),  # ceil(1000 / 90) = 12 days from day −10
        (100, 0),  # done in 10 days: today
    ],
)
def test_in_progress_finish_is_projected_from_progress(progress, finish):
    forecasts = run([task(1, -10, 10, status=IN_PROGRESS, progress=progress)])
    assert forecasts[1].start == d(-10)
    assert forecasts[1].finish == d(finish)


def test_in_progress_with_no_progress_keeps_the_planned_duration():
    forecasts = run([task(1, -10, 15, status=IN_PROGRESS, progress=0)])
    assert (forecasts[1].start, forecasts[1].finish) == (d(-10), d(15))


def test_in_progress_with_no_progress_is_never_forecast_before_today():
    # Planned duration 20 days from day −30 would end on day −10; the work is not done.
    forecasts = run([task(1, -30, -10, status=IN_PROGRESS, progress=0)])
    assert forecasts[1].finish == TODAY


def test_in_progress_projection_is_never_before_today():
    # 100 % after 10 days projects day −20 + 10 = day −10, yet the milestone is still open.
    forecasts = run([task(1, -20, -5, status=IN_PROGRESS, progress=100)])
    assert forecasts[1].finish == TODAY


def test_in_progress_starting_today_keeps_the_planned_duration():
    forecasts = run([task(1, 0, 8, status=IN_PROGRESS, progress=60)])
    assert (forecasts[1].start, forecasts[1].finish) == (d(0), d(8))


def test_in_progress_is_not_pushed_by_a_predecessor():
    tasks = [task(1, 0, 30), task(2, -5, 5, status=IN_PROGRESS, progress=50)]
    forecasts = run(tasks, [Link(1, 2)])
    assert forecasts[2].start == d(-5)
    assert forecasts[2].pushed_by is None


# --- Planned, completed, cancelled ----------------------------------------------------------


def test_a_planned_milestone_whose_start_has_passed_starts_today():
    forecasts = run([task(1, -5, 5)])
    assert forecasts[1].start == TODAY
    assert forecasts[1].finish == d(10)  # keeps its 10 planned days
    assert forecasts[1].pushed_by is None


def test_a_planned_milestone_without_a_start_date_finishes_on_its_target():
    forecasts = run([task(1, None, 7)])
    assert (forecasts[1].start, forecasts[1].finish) == (d(7), d(7))
    assert planned_duration(task(1, None, 7)) == 0


def test_a_completed_milestone_is_forecast_to_finish_on_its_completion_date():
    forecasts = run([task(1, -20, -5, status=COMPLETED, completed_on=d(-3))])
    assert (forecasts[1].start, forecasts[1].finish) == (d(-20), d(-3))


def test_a_completed_milestone_without_a_completion_date_uses_its_target():
    forecasts = run([task(1, -20, -5, status=COMPLETED)])
    assert forecasts[1].finish == d(-5)


def test_a_completed_predecessor_pushes_by_its_completion_date_plus_lag():
    tasks = [task(1, -20, -5, status=COMPLETED, completed_on=d(-2)), task(2, 0, 4)]
    forecasts = run(tasks, [Link(1, 2, lag_days=5)])
    assert forecasts[2].start == d(3)
    assert forecasts[2].pushed_by == 1


def test_a_cancelled_milestone_has_no_forecast_and_pushes_nothing():
    tasks = [task(1, 0, 50, status=CANCELLED), task(2, 5, 10)]
    forecasts = run(tasks, [Link(1, 2, lag_days=3)])
    cancelled = forecasts[1]
    assert (cancelled.start, cancelled.finish, cancelled.slack_days) == (None, None, None)
    assert cancelled.critical is False
    assert (forecasts[2].start, forecasts[2].finish) == (d(5), d(10))
    assert forecasts[2].pushed_by is None


def test_a_milestone_without_a_target_date_has_no_forecast():
    forecasts = run([task(1, 0, None)])
    assert (forecasts[1].start, forecasts[1].finish) == (None, None)


# --- Slack and the critical path ------------------------------------------------------------
#
# Plan 1 (deadline day 40)             Plan 2 (deadline day 35)      Plan 3 (no deadline)
#   A(1) 0→10 ─┬─> B(2) 10→20 ─lag 2─┐    E(5) 31→33 (2 days)          G(7) 0→12
#              └─> C(3) 10→15 ───────┴─> D(4) 22→30 ─lag 1─> E        H(8) 3→8
#                                                             F(6) 0→5
#
# Forward pass: every milestone keeps its planned dates (D: max(22, 20+2, 15) = 22;
# E: max(31, 30+1) = 31).
# Backward pass (latest allowed finish LF; slack = LF − forecast finish):
#   E: LF = plan 2 deadline 35                        slack 35 − 33 = 2
#   F: LF = 35                                        slack 35 − 5  = 30
#   D: LF = min(40, E's LF 35 − E's 2 days − lag 1 = 32) = 32   slack 32 − 30 = 2
#      (without the cross-plan successor E it would be 40 − 30 = 10)
#   B: LF = min(40, 32 − 8 − lag 2 = 22) = 22         slack 22 − 20 = 2
#   C: LF = min(40, 32 − 8 − lag 0 = 24) = 24         slack 24 − 15 = 9
#   A: LF = min(40, B: 22 − 10 = 12, C: 24 − 5 = 19) = 12   slack 12 − 10 = 2
#   G, H: plan 3's latest forecast finish is day 12:  G 12 − 12 = 0, H 12 − 8 = 4
# Critical (least slack per plan): plan 1 A, B, D (2); plan 2 E (2); plan 3 G (0).

GRAPH_TASKS = [
    task(1, 0, 10, plan=1),  # A
    task(2, 10, 20, plan=1),  # B
    task(3, 10, 15, plan=1),  # C
    task(4, 22, 30, plan=1),  # D
    task(5, 31, 33, plan=2),  # E
    task(6, 0, 5, plan=2),  # F
    task(7, 0, 12, plan=3),  # G
    task(8, 3, 8, plan=3),  # H
]
GRAPH_LINKS = [
    Link(1, 2),
    Link(1, 3),
    Link(2, 4, lag_days=2),
    Link(3, 4),
    Link(4, 5, lag_days=1),
]
GRAPH_DEADLINES = {1: d(40), 2: d(35), 3: None}


def test_the_known_graph_keeps_its_planned_dates():
    forecasts = run(GRAPH_TASKS, GRAPH_LINKS, GRAPH_DEADLINES)
    finishes = {i: (f.finish - TODAY).days for i, f in forecasts.items()}
    assert finishes == {1: 10, 2: 20, 3: 15, 4: 30, 5: 33, 6: 5, 7: 12, 8: 8}
    assert all(f.pushed_by is None for f in forecasts.values())


def test_slack_on_the_known_graph():
    forecasts = run(GRAPH_TASKS, GRAPH_LINKS, GRAPH_DEADLINES)
    slack = {i: f.slack_days for i, f in forecasts.items()}
    assert slack == {1: 2, 2: 2, 3: 9, 4: 2, 5: 2, 6: 30, 7: 0, 8: 4}


def test_critical_path_on_the_known_graph():
    forecasts = run(GRAPH_TASKS, GRAPH_LINKS, GRAPH_DEADLINES)
    assert {i for i, f in forecasts.items() if f.critical} == {1, 2, 4, 5, 7}


def test_a_successor_in_another_plan_constrains_a_predecessors_slack():
    without_e = [link for link in GRAPH_LINKS if link.successor_id != 5]
    alone = run(GRAPH_TASKS, without_e, GRAPH_DEADLINES)
    assert alone[4].slack_days == 10  # 40 − 30: only plan 1's deadline
    assert alone[2].slack_days == 10  # 40 − 8 − 2 − 20
    assert run(GRAPH_TASKS, GRAPH_LINKS, GRAPH_DEADLINES)[4].slack_days == 2


def test_a_plan_without_a_target_date_uses_its_latest_forecast_finish():
    forecasts = run(GRAPH_TASKS, GRAPH_LINKS, GRAPH_DEADLINES)
    assert (forecasts[7].slack_days, forecasts[8].slack_days) == (0, 4)
    # Moving G's target later moves the plan's horizon with it: G stays at 0, H gains 6 days.
    later = [task(7, 0, 18, plan=3) if t.id == 7 else t for t in GRAPH_TASKS]
    moved = run(later, GRAPH_LINKS, GRAPH_DEADLINES)
    assert (moved[7].slack_days, moved[8].slack_days) == (0, 10)


def test_slack_is_negative_when_a_plan_will_miss_its_deadline():
    # Plan 1's deadline at day 26: D finishes on day 30, so D LF = min(26, 32) = 26 → −4;
    # B: 26 − 8 − 2 − 20 = −4; C: 26 − 8 − 15 = 3; A: min(26, B 16 − 10 = 6, C 18 − 5 = 13)
    # = 6 → −4.
    forecasts = run(GRAPH_TASKS, GRAPH_LINKS, {**GRAPH_DEADLINES, 1: d(26)})
    assert {i: forecasts[i].slack_days for i in (1, 2, 3, 4)} == {1: -4, 2: -4, 3: 3, 4: -4}
    assert {i for i in (1, 2, 3, 4) if forecasts[i].critical} == {1, 2, 4}


def test_closed_milestones_have_no_slack_and_are_never_critical():
    tasks = [
        task(1, -20, -5, status=COMPLETED, completed_on=d(-5)),
        task(2, -10, 20, status=CANCELLED),
        task(3, 0, 10),
    ]
    forecasts = run(tasks, [Link(1, 3), Link(2, 3)], {1: d(10)})
    assert (forecasts[1].slack_days, forecasts[1].critical) == (None, False)
    assert (forecasts[2].slack_days, forecasts[2].critical) == (None, False)
    assert (forecasts[3].slack_days, forecasts[3].critical) == (0, True)
