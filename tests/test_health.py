"""Health rules, history and evaluation (milestones/health.py), against the database.

Every evaluation passes an explicit `on` date, so the clock is frozen at ON (a fixed date)
whatever day the suite runs; `day(n)` is n days after ON.
"""

import datetime
import threading
import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Role
from milestones import health, services, tasks
from milestones.models import (
    ForecastShift,
    Health,
    HealthTransition,
    Level,
    Milestone,
    MilestoneStatus,
    RiskStatus,
    today,
)
from milestones.tasks import evaluate_team_health
from tests.conftest import World
from tests.factories import (
    add_member,
    grow_team,
    make_blocker,
    make_milestone,
    make_plan,
    make_risk,
    make_status_update,
    make_team,
    make_user,
)

ON = datetime.date(2030, 6, 3)


def day(n: int) -> datetime.date:
    return ON + datetime.timedelta(days=n)


def at(date: datetime.date) -> datetime.datetime:
    """Noon of `date` in the current time zone (so its local date is `date`)."""
    return timezone.make_aware(datetime.datetime.combine(date, datetime.time(12)))


def milestone(world, start: int | None, target: int | None, **fields) -> Milestone:
    return make_milestone(
        world.plan,
        world.member,
        owner=world.member,
        start_date=None if start is None else day(start),
        target_date=None if target is None else day(target),
        **fields,
    )


def update(world, m, when: int, **fields):
    return make_status_update(m, world.member, created_at=at(day(when)), **fields)


def evaluate(team, on: datetime.date = ON) -> health.Outcome:
    return health.evaluate_team(team.pk, on=on)


def reasons(m, world, on: datetime.date = ON) -> list[dict]:
    """Evaluate the team on `on` and return the milestone's stored reasons."""
    evaluate(world.team, on)
    m.refresh_from_db()
    return m.health_reasons


def codes(m, world, on: datetime.date = ON) -> list[str]:
    return [reason["code"] for reason in reasons(m, world, on)]


def set_threshold(team, **values):
    for name, value in values.items():
        setattr(team, name, value)
    team.save(update_fields=list(values))


# --- One test per rule, each with its boundary -----------------------------------------------


def test_overdue_from_the_day_after_the_target(world):
    m = milestone(world, -10, 0, status=MilestoneStatus.IN_PROGRESS)
    assert "overdue" not in codes(m, world, on=day(0))
    found = [r for r in reasons(m, world, on=day(1)) if r["code"] == "overdue"]
    assert len(found) == 1
    assert found[0]["health"] == Health.OFF_TRACK
    assert "1 day ago" in found[0]["message"]
    assert m.health == Health.OFF_TRACK


def test_forecast_late_when_the_slip_is_more_than_the_teams_slip_days(world):
    # Planned, start passed: it starts on `on` and keeps its 20 days, so the forecast finish
    # slips by (on − planned start) days.
    m = milestone(world, -6, 14)
    assert world.team.health_slip_days == 5
    assert "forecast_late" not in codes(m, world, on=day(-1))  # slip exactly 5
    assert m.forecast_finish == day(19)
    found = [r for r in reasons(m, world, on=day(0)) if r["code"] == "forecast_late"]  # slip 6
    assert m.forecast_finish == day(20)
    assert len(found) == 1
    assert found[0]["health"] == Health.OFF_TRACK
    assert "6 days after the target" in found[0]["message"]
    assert m.health == Health.OFF_TRACK


def test_behind_schedule_when_progress_trails_elapsed_time_by_more_than_the_threshold(world):
    # 100 days from start to target; 30 % reported. Elapsed share on day 0 is 50 % (20 points
    # behind: not more than 20), on day 1 it is 51 % (21 points behind).
    m = milestone(world, -50, 50, status=MilestoneStatus.IN_PROGRESS)
    update(world, m, -1, percent_complete=30)
    assert world.team.health_behind_points == 20
    assert "behind_schedule" not in codes(m, world, on=day(0))
    found = [r for r in reasons(m, world, on=day(1)) if r["code"] == "behind_schedule"]
    assert len(found) == 1
    assert found[0]["health"] == Health.AT_RISK
    assert found[0]["message"] == "Progress is 30% with 51% of the time from start to target gone."


def test_behind_schedule_only_applies_in_progress(world):
    m = milestone(world, -50, 50)  # planned
    update(world, m, -1, percent_complete=0)
    assert "behind_schedule" not in codes(m, world, on=day(40))


def test_pushed_by_predecessor_when_its_finish_plus_lag_passes_this_start(world):
    before = milestone(world, 0, 10)
    after = milestone(world, 12, 20)
    services.add_dependency(before, after, actor=world.member, lag_days=2)
    # Day 10 + lag 2 = day 12: exactly this milestone's planned start, nothing moves.
    assert "pushed_by_predecessor" not in codes(after, world)
    assert after.forecast_finish == day(20)
    services.update_object(before, actor=world.member, target_date=day(11))
    found = [r for r in reasons(after, world) if r["code"] == "pushed_by_predecessor"]
    assert after.forecast_finish == day(21)
    assert len(found) == 1
    assert found[0]["health"] == Health.AT_RISK
    assert found[0]["link"] == "#dependencies"
    assert found[0]["message"].startswith(f"{before.key} is forecast to finish late")
    assert after.health == Health.AT_RISK  # one day late is within the slip allowance


def test_unmitigated_risk_at_or_above_the_teams_risk_score(world):
    m = milestone(world, 1, 20)
    six = make_risk(m, world.member, likelihood=Level.HIGH, impact=Level.MEDIUM)
    four = make_risk(m, world.member, likelihood=Level.MEDIUM, impact=Level.MEDIUM)
    six.refresh_from_db()
    four.refresh_from_db()
    assert (six.score, four.score, world.team.health_risk_score) == (6, 4, 6)
    found = [r for r in reasons(m, world) if r["code"] == "unmitigated_risk"]
    assert [r["link"] for r in found] == [f"#risk-{six.pk}"]
    assert found[0]["health"] == Health.AT_RISK
    assert "scores 6 of 9" in found[0]["message"]

    # The boundary is the team's: at 4 the medium/medium risk counts, at 5 it does not.
    set_threshold(world.team, health_risk_score=4)
    links = {r["link"] for r in reasons(m, world) if r["code"] == "unmitigated_risk"}
    assert links == {f"#risk-{six.pk}", f"#risk-{four.pk}"}
    set_threshold(world.team, health_risk_score=5)
    links = {r["link"] for r in reasons(m, world) if r["code"] == "unmitigated_risk"}
    assert links == {f"#risk-{six.pk}"}


def test_a_mitigated_or_closed_risk_is_no_reason(world):
    m = milestone(world, 1, 20)
    risk = make_risk(m, world.member, likelihood=Level.HIGH, impact=Level.HIGH)
    assert "unmitigated_risk" in codes(m, world)
    services.update_object(risk, actor=world.member, mitigation="Second supplier on standby.")
    assert "unmitigated_risk" not in codes(m, world)
    services.update_object(risk, actor=world.member, mitigation="", status=RiskStatus.CLOSED)
    assert "unmitigated_risk" not in codes(m, world)
    services.update_object(risk, actor=world.member, status=RiskStatus.MITIGATING)
    assert "unmitigated_risk" in codes(m, world)  # mitigating, but with no mitigation written


def test_blocker_overdue_from_the_day_after_its_target_resolution_date(world):
    m = milestone(world, 1, 20)
    blocker = make_blocker(
        m, world.member, raised_on=day(-5), target_resolution_date=day(0), title="Vendor API key"
    )
    assert "blocker_overdue" not in codes(m, world, on=day(0))
    found = [r for r in reasons(m, world, on=day(1)) if r["code"] == "blocker_overdue"]
    assert len(found) == 1
    assert found[0]["health"] == Health.AT_RISK
    assert found[0]["link"] == f"#blocker-{blocker.pk}"
    assert "Vendor API key" in found[0]["message"]


def test_a_resolved_blocker_is_no_reason(world):
    m = milestone(world, 1, 20)
    make_blocker(
        m,
        world.member,
        raised_on=day(-5),
        target_resolution_date=day(-3),
        resolved_on=day(-1),
        resolution="Key issued.",
    )
    assert "blocker_overdue" not in codes(m, world, on=day(1))


def test_stale_update_when_the_last_update_is_more_than_the_threshold_old(world):
    m = milestone(world, -30, 30, status=MilestoneStatus.IN_PROGRESS)
    update(world, m, -10, percent_complete=50)
    assert world.team.health_stale_update_days == 10
    assert "stale_update" not in codes(m, world, on=day(0))  # exactly 10 days
    found = [r for r in reasons(m, world, on=day(1)) if r["code"] == "stale_update"]
    assert len(found) == 1
    assert found[0]["health"] == Health.AT_RISK
    assert found[0]["message"] == "11 days since the last status update."


def test_stale_update_counts_from_the_start_without_any_update(world):
    m = milestone(world, -10, 30, status=MilestoneStatus.IN_PROGRESS)
    assert "stale_update" not in codes(m, world, on=day(0))
    found = [r for r in reasons(m, world, on=day(1)) if r["code"] == "stale_update"]
    assert [r["message"] for r in found] == ["11 days since the start, with no status update yet."]


def test_stale_update_only_applies_in_progress(world):
    m = milestone(world, 5, 60)  # planned
    update(world, m, -40)
    assert "stale_update" not in codes(m, world, on=day(0))


@pytest.mark.parametrize("reported", [Health.AT_RISK, Health.OFF_TRACK])
def test_reported_health_takes_the_level_of_the_latest_update(world, reported):
    m = milestone(world, 1, 20)
    status_update = update(world, m, 0, health=reported)
    found = [r for r in reasons(m, world) if r["code"] == "reported_health"]
    assert len(found) == 1
    assert found[0]["health"] == reported
    assert found[0]["link"] == f"#update-{status_update.pk}"
    assert m.health == reported


def test_reported_health_only_counts_the_latest_update(world):
    m = milestone(world, 1, 20)
    update(world, m, -2, health=Health.OFF_TRACK)
    update(world, m, -1, health=Health.ON_TRACK)
    assert "reported_health" not in codes(m, world)
    assert m.health == Health.ON_TRACK


def test_low_confidence_below_the_teams_minimum(world):
    m = milestone(world, 1, 20)
    update(world, m, 0, confidence=50)
    assert world.team.health_min_confidence == 50
    assert "low_confidence" not in codes(m, world)  # equal is enough
    low = update(world, m, 1, confidence=49)
    found = [r for r in reasons(m, world, on=day(1)) if r["code"] == "low_confidence"]
    assert len(found) == 1
    assert found[0]["health"] == Health.AT_RISK
    assert found[0]["link"] == f"#update-{low.pk}"
    assert "49%" in found[0]["message"]


@pytest.mark.parametrize("status", [MilestoneStatus.COMPLETED, MilestoneStatus.CANCELLED])
def test_closed_milestones_are_on_track_with_no_reasons(world, status):
    m = milestone(world, -30, -10, status=status)
    make_risk(m, world.member, likelihood=Level.HIGH, impact=Level.HIGH)
    make_blocker(m, world.member, raised_on=day(-20), target_resolution_date=day(-15))
    update(world, m, -9, health=Health.OFF_TRACK, confidence=5)
    assert reasons(m, world, on=day(5)) == []
    assert m.health == Health.ON_TRACK


def test_a_milestone_that_is_completed_improves_to_on_track(world):
    m = milestone(world, -30, -10, status=MilestoneStatus.IN_PROGRESS)
    assert "overdue" in codes(m, world)
    services.update_object(m, actor=world.member, status=MilestoneStatus.COMPLETED)
    assert reasons(m, world) == []
    assert m.health == Health.ON_TRACK


# --- Overall health, thresholds, reason shape -------------------------------------------------


def test_overall_health_is_the_worst_reason(world):
    m = milestone(world, 1, 20)
    update(world, m, 0, confidence=10)
    assert codes(m, world) == ["low_confidence"]
    assert m.health == Health.AT_RISK
    # Add an off-track reason next to the at-risk one.
    assert set(codes(m, world, on=day(21))) >= {"overdue", "low_confidence"}
    assert m.health == Health.OFF_TRACK


def test_overall_of_reasons():
    def reason(level):
        return health.Reason("x", level, "A sentence.", "#x")

    assert health.overall([]) == Health.ON_TRACK
    assert health.overall([reason(Health.AT_RISK)]) == Health.AT_RISK
    worst = [reason(Health.AT_RISK), reason(Health.OFF_TRACK), reason(Health.AT_RISK)]
    assert health.overall(worst) == Health.OFF_TRACK


def test_team_thresholds_move_the_boundaries(world):
    m = milestone(world, -30, 30, status=MilestoneStatus.IN_PROGRESS)
    update(world, m, -12, percent_complete=50, confidence=40)
    late = milestone(world, -7, 13)  # planned: slips 7 days on ON
    assert {"stale_update", "low_confidence"} <= set(codes(m, world))
    assert "forecast_late" in codes(late, world)

    set_threshold(
        world.team, health_stale_update_days=12, health_min_confidence=40, health_slip_days=7
    )
    assert "stale_update" not in codes(m, world)
    assert "low_confidence" not in codes(m, world)
    assert "forecast_late" not in codes(late, world)
    assert "stale_update" in codes(m, world, on=day(1))
    assert "forecast_late" in codes(late, world, on=day(1))


def test_reasons_have_a_code_a_health_a_sentence_and_a_link(world):
    m = milestone(world, -40, -1, status=MilestoneStatus.IN_PROGRESS)
    make_risk(m, world.member, likelihood=Level.HIGH, impact=Level.HIGH)
    make_blocker(m, world.member, raised_on=day(-20), target_resolution_date=day(-2))
    update(world, m, -15, percent_complete=10, confidence=20, health=Health.AT_RISK)
    found = reasons(m, world)
    assert {r["code"] for r in found} == {
        "overdue",
        "forecast_late",
        "behind_schedule",
        "unmitigated_risk",
        "blocker_overdue",
        "stale_update",
        "reported_health",
        "low_confidence",
    }
    for reason in found:
        assert set(reason) == {"code", "health", "message", "link"}
        assert reason["health"] in Health.values
        message = reason["message"]
        assert message[0].isupper() or message[0].isdigit(), message
        assert message.endswith("."), message
        assert len(message.split()) >= 4, message
        assert reason["link"].startswith("#") and len(reason["link"]) > 1


# --- History: transitions and forecast shifts -------------------------------------------------


def test_a_health_change_is_recorded_exactly_once(world):
    m = milestone(world, -10, 0, status=MilestoneStatus.IN_PROGRESS)
    update(world, m, 0, percent_complete=100)  # forecast to finish on day 0, its target
    evaluate(world.team, on=day(0))
    assert not HealthTransition.objects.filter(milestone=m).exists()

    evaluate(world.team, on=day(1))
    evaluate(world.team, on=day(1))
    transition = HealthTransition.objects.get(milestone=m)
    assert (transition.from_health, transition.to_health) == (Health.ON_TRACK, Health.OFF_TRACK)
    assert transition.is_worse is True
    assert "overdue" in [r["code"] for r in transition.reasons]


def test_an_improvement_is_recorded_as_not_worse(world):
    m = milestone(world, 1, 20)
    update(world, m, 0, health=Health.AT_RISK)
    evaluate(world.team)
    update(world, m, 1, health=Health.ON_TRACK)
    evaluate(world.team, on=day(1))
    evaluate(world.team, on=day(1))
    transitions = list(HealthTransition.objects.filter(milestone=m).order_by("pk"))
    assert [(t.from_health, t.to_health, t.is_worse) for t in transitions] == [
        (Health.ON_TRACK, Health.AT_RISK, True),
        (Health.AT_RISK, Health.ON_TRACK, False),
    ]
    assert transitions[1].reasons == []


def test_unchanged_health_with_changed_reasons_is_no_transition(world):
    m = milestone(world, 1, 20)
    update(world, m, 0, confidence=10)
    evaluate(world.team)
    make_risk(m, world.member, likelihood=Level.HIGH, impact=Level.HIGH)
    evaluate(world.team)
    m.refresh_from_db()
    assert [r["code"] for r in m.health_reasons] == ["unmitigated_risk", "low_confidence"]
    assert HealthTransition.objects.filter(milestone=m).count() == 1


def test_a_forecast_shift_names_the_predecessor_that_moved_it(world):
    # The predecessor is half done after 10 of its 20 days: forecast to finish on day 10.
    before = milestone(world, -10, 10, status=MilestoneStatus.IN_PROGRESS)
    update(world, before, -1, percent_complete=50)
    after = milestone(world, 10, 20)
    services.add_dependency(before, after, actor=world.member)
    evaluate(world.team)
    after.refresh_from_db()
    assert after.forecast_finish == day(20)
    assert not ForecastShift.objects.filter(milestone__in=[before, after]).exists()

    # Progress drops to 25 %: 10 days × 100 / 25 = 40 days from day −10, so day 30.
    update(world, before, 0, percent_complete=25)
    evaluate(world.team)
    shift = ForecastShift.objects.get(milestone=after)
    assert (shift.previous_finish, shift.new_finish) == (day(20), day(40))
    assert shift.moved_days == 20
    assert before.key in shift.cause
    assert shift.cause == f"{before.key} is forecast to finish later"
    own = ForecastShift.objects.get(milestone=before)
    assert (own.previous_finish, own.new_finish) == (day(10), day(30))
    assert own.cause == "progress, dates or status changed"

    evaluate(world.team)
    assert ForecastShift.objects.filter(milestone__in=[before, after]).count() == 2


def test_no_forecast_shift_when_the_forecast_is_first_computed(world):
    m = milestone(world, 1, 20)
    evaluate(world.team)
    m.refresh_from_db()
    assert m.forecast_finish == day(20)
    assert not ForecastShift.objects.filter(milestone=m).exists()


# --- Concurrency and size ---------------------------------------------------------------------


class _NoBroker:
    """Stands in for the Celery task, so commits in a transactional test enqueue nothing."""

    def __init__(self):
        self.calls = []

    def delay(self, team_id):
        self.calls.append(team_id)


def evaluate_waiting_for_the_lock(team_id: int) -> health.Outcome:
    """evaluate_team, where a second caller waits for the first one's lock.

    PostgreSQL (SELECT … FOR UPDATE) and a SQLite file (BEGIN IMMEDIATE with a busy timeout)
    make the second evaluation wait by themselves. Django's SQLite test database lives in
    memory with a shared cache, where BEGIN IMMEDIATE fails at once with "database table is
    locked" instead of waiting; trying BEGIN again until it succeeds is that wait.
    """
    deadline = time.monotonic() + 10
    while True:
        try:
            return health.evaluate_team(team_id, on=ON)
        except OperationalError as error:
            retry = connection.vendor == "sqlite" and "locked" in str(error)
            if not retry or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def test_two_simultaneous_evaluations_record_one_transition(transactional_db, monkeypatch):
    monkeypatch.setattr("milestones.tasks.evaluate_team_health", _NoBroker())
    team = make_team("Parallel")
    member = add_member(team, make_user(), Role.MEMBER)
    plan = make_plan(team, member)
    m = make_milestone(plan, member, start_date=day(1), target_date=day(20))
    health.evaluate_team(team.pk, on=ON)
    make_risk(m, member, likelihood=Level.HIGH, impact=Level.HIGH)

    barrier = threading.Barrier(2)
    outcomes, errors = [], []

    def run():
        try:
            barrier.wait(timeout=10)
            outcomes.append(evaluate_waiting_for_the_lock(team.pk))
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(outcomes) == 2
    transition = HealthTransition.objects.get(milestone=m)
    assert (transition.from_health, transition.to_health) == (Health.ON_TRACK, Health.AT_RISK)
    assert sorted(len(outcome.transitions) for outcome in outcomes) == [0, 1]


def count_evaluation_queries(team, on) -> int:
    with CaptureQueriesContext(connection) as queries:
        outcome = health.evaluate_team(team.pk, on=on)
    assert outcome.changed > 0
    assert outcome.transitions
    return len(queries)


def test_the_query_count_does_not_grow_with_the_team(db):
    # grow_team dates everything from the real today (starts 30 days ago); evaluating 40 days
    # ago puts every milestone on track, and a stricter confidence minimum (the bulk updates
    # say 60 %) then moves every open one to at risk, so both runs write rows and transitions.
    on = today() - datetime.timedelta(days=40)
    owner = make_user()
    small, big = make_team("Small"), make_team("Big")
    grow_team(small, owner, plans=1, milestones_per_plan=6)
    grow_team(big, owner, plans=10, milestones_per_plan=6)
    for team in (small, big):
        health.evaluate_team(team.pk, on=on)  # settle
        set_threshold(team, health_min_confidence=61)
    assert (
        Milestone.objects.filter(team=big).count()
        == 10 * Milestone.objects.filter(team=small).count()
    )
    assert count_evaluation_queries(small, on) == count_evaluation_queries(big, on)


# --- Entry points: the command and the task ---------------------------------------------------


def test_the_command_prints_a_line_per_team(world):
    milestone(world, -10, -1, status=MilestoneStatus.IN_PROGRESS)
    out = StringIO()
    call_command("evaluate_health", stdout=out)
    lines = out.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == ["elsewhere", "rocket"]
    assert lines[1].startswith("rocket: 2 milestone(s) evaluated, 2 changed, ")
    assert lines[0] == (
        "elsewhere: 0 milestone(s) evaluated, 0 changed, 0 health change(s) (0 worse)."
    )


def test_the_command_evaluates_one_team(world):
    out = StringIO()
    call_command("evaluate_health", "--team", "rocket", stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("rocket: 1 milestone(s) evaluated")


def test_the_command_refuses_an_unknown_team(world):
    with pytest.raises(CommandError, match="nowhere"):
        call_command("evaluate_health", "--team", "nowhere", stdout=StringIO())


def test_the_task_returns_a_summary(world):
    milestone(world, 1, 20)
    assert evaluate_team_health(world.team.pk) == {
        "team": world.team.pk,
        "evaluated": 2,
        "changed": 2,
    }
    assert evaluate_team_health(world.team.pk) == {
        "team": world.team.pk,
        "evaluated": 2,
        "changed": 0,
    }


def test_the_task_skips_a_team_that_no_longer_exists(db):
    assert evaluate_team_health(987654) == {"team": 987654, "skipped": "no such team"}


# --- Queuing evaluations after edits ---------------------------------------------------------


@pytest.fixture
def queued(monkeypatch):
    calls = []
    monkeypatch.setattr(tasks.evaluate_team_health, "delay", calls.append)
    return calls


def test_an_edit_queues_one_evaluation_after_commit(transactional_db, queued):
    world = World()
    queued.clear()
    with transaction.atomic():
        services.update_object(world.milestone, actor=world.member, title="Renamed")
        services.update_object(world.milestone, actor=world.member, summary="Two changes")
        assert queued == []  # nothing before the commit
    assert queued == [world.team.pk]


def test_a_rolled_back_edit_does_not_stop_later_evaluations(transactional_db, queued):
    world = World()
    queued.clear()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.update_object(world.milestone, actor=world.member, title="Never saved")
        raise RuntimeError("abandon the change")
    assert queued == []
    services.update_object(world.milestone, actor=world.member, title="Saved")
    assert queued == [world.team.pk]


def test_an_edit_succeeds_when_the_broker_is_unreachable(transactional_db, monkeypatch):
    world = World()

    def broker_down(team_id):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.evaluate_team_health, "delay", broker_down)
    services.update_object(world.milestone, actor=world.member, title="Still saved")
    world.milestone.refresh_from_db()
    assert world.milestone.title == "Still saved"
