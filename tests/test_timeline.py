"""The team timeline: layout (milestones.timeline), the SVG page and its query budget."""

import datetime
import itertools
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from milestones import services
from milestones.models import Milestone, MilestoneStatus, today
from milestones.timeline import LABEL_WIDTH, MAX_WIDTH, MIN_WIDTH, build_timeline
from tests.factories import grow_team, make_milestone, make_plan

TIMELINE_QUERY_BUDGET = 7
DAY = datetime.timedelta(days=1)


def timeline_url(team):
    return reverse("timeline", kwargs={"team": team.slug})


def days(n: int) -> datetime.date:
    return today() + n * DAY


def row_of(timeline, milestone):
    return next(row for row in timeline.rows if row.milestone.pk == milestone.pk)


def set_fields(milestone, **fields):
    """Write computed fields (forecast, critical path) as the health engine would."""
    Milestone.objects.filter(pk=milestone.pk).update(**fields)


# --- Layout ---------------------------------------------------------------------------------


def test_an_arrow_runs_from_the_predecessors_bar_end_to_the_successors_bar_start(world):
    first = make_milestone(world.plan, world.admin, start_date=days(-10), target_date=days(5))
    second = make_milestone(world.plan, world.admin, start_date=days(20), target_date=days(40))
    services.add_dependency(first, second, actor=world.admin)

    timeline = build_timeline(world.team)

    [arrow] = timeline.arrows
    before, after = row_of(timeline, first), row_of(timeline, second)
    assert (arrow.predecessor, arrow.successor) == (first.key, second.key)
    assert arrow.d.startswith(f"M{before.bar.end},{before.mid} ")
    assert f"V{after.mid} " in arrow.d
    assert arrow.d.endswith(f"H{round(after.bar.x - 1, 1)}")
    assert after.predecessors == [first.key]


def test_an_arrow_to_a_successor_that_starts_earlier_detours_around_it(world):
    first = make_milestone(world.plan, world.admin, start_date=days(-10), target_date=days(30))
    second = make_milestone(world.plan, world.admin, start_date=days(0), target_date=days(40))
    services.add_dependency(first, second, actor=world.admin)

    [arrow] = build_timeline(world.team).arrows

    x_values = [float(v) for v in re.findall(r"H(-?[\d.]+)", arrow.d)]
    assert x_values[-1] < x_values[0], "goes back left to enter the successor from the left"


def test_the_baseline_marker_shows_only_when_the_target_moved(world):
    kept = make_milestone(world.plan, world.admin, target_date=days(20))
    moved = make_milestone(world.plan, world.admin, target_date=days(20))
    services.update_object(moved, actor=world.admin, target_date=days(30))

    timeline = build_timeline(world.team)

    assert row_of(timeline, kept).baseline_x is None
    moved_row = row_of(timeline, moved)
    assert moved_row.baseline_x is not None
    assert moved_row.baseline_x < moved_row.target_x
    assert moved_row.baseline_points
    assert "Baseline target" in moved_row.description


def test_the_forecast_shows_where_it_differs_from_the_target(world):
    on_time = make_milestone(world.plan, world.admin, target_date=days(20))
    late = make_milestone(world.plan, world.admin, target_date=days(20))
    set_fields(on_time, forecast_start=days(-10), forecast_finish=days(20))
    set_fields(late, forecast_start=days(-10), forecast_finish=days(32), health="off_track")

    timeline = build_timeline(world.team)

    assert row_of(timeline, on_time).forecast is None
    late_row = row_of(timeline, late)
    assert late_row.forecast_late
    assert late_row.forecast.end > late_row.target_x
    assert late_row.note == "✕ +12d"
    assert late_row.slip_text == "+12 days"


def test_the_today_line_sits_at_todays_date(world):
    on = days(3)
    timeline = build_timeline(world.team, on=on)

    assert timeline.start < on < timeline.end
    expected = LABEL_WIDTH + (on - timeline.start).days * timeline.px_per_day
    assert timeline.today_x == pytest.approx(expected, abs=0.1)


def test_the_range_includes_today_even_when_every_milestone_is_in_the_past(world):
    set_fields(world.milestone, start_date=days(-400), target_date=days(-300))
    timeline = build_timeline(world.team)
    assert timeline.start < today() < timeline.end


def test_rows_are_grouped_under_their_plan_in_plan_order(world):
    zebra = make_plan(world.team, world.admin, title="Zebra rollout")
    alpha = make_plan(world.team, world.admin, title="Alpha pilot")
    z1 = make_milestone(zebra, world.admin)
    a1 = make_milestone(alpha, world.admin)
    a2 = make_milestone(alpha, world.admin)

    timeline = build_timeline(world.team)

    assert [g.plan.title for g in timeline.groups] == [
        "Alpha pilot",
        "Launch the export service",
        "Zebra rollout",
    ]
    assert [r.milestone.pk for r in timeline.groups[0].rows] == [a1.pk, a2.pk]
    assert [r.milestone.pk for r in timeline.groups[2].rows] == [z1.pk]
    tops = []
    for group in timeline.groups:
        tops += [group.y, *(row.y for row in group.rows)]
    assert tops == sorted(tops) and len(set(tops)) == len(tops), "one row each, top to bottom"


def test_milestones_without_dates_are_listed_without_a_bar(world):
    undated = make_milestone(world.plan, world.admin, start_date=None, target_date=None)
    timeline = build_timeline(world.team)
    assert row_of(timeline, undated).bar is None
    assert row_of(timeline, world.milestone).bar is not None
    assert [row.milestone.pk for row in timeline.undated] == [undated.pk]


def test_closed_milestones_are_neutral_and_critical_only_when_open(world):
    done = make_milestone(world.plan, world.admin)
    dropped = make_milestone(world.plan, world.admin)
    set_fields(done, status=MilestoneStatus.COMPLETED, completed_on=today(), is_critical=True)
    set_fields(dropped, status=MilestoneStatus.CANCELLED)
    set_fields(world.milestone, is_critical=True, slack_days=0, health="at_risk")

    timeline = build_timeline(world.team)

    assert row_of(timeline, done).tone == "completed"
    assert not row_of(timeline, done).critical
    assert row_of(timeline, dropped).tone == "cancelled"
    open_row = row_of(timeline, world.milestone)
    assert (open_row.tone, open_row.glyph, open_row.critical) == ("at_risk", "!", True)
    assert "critical path" in open_row.description


def test_a_plans_timeline_shows_only_its_milestones_and_links_inside_it(world):
    other = make_plan(world.team, world.admin, title="Mobile beta")
    inside = make_milestone(world.plan, world.admin, start_date=days(25), target_date=days(40))
    outside = make_milestone(other, world.admin, start_date=days(25), target_date=days(40))
    services.add_dependency(world.milestone, inside, actor=world.admin)
    services.add_dependency(world.milestone, outside, actor=world.admin)

    timeline = build_timeline(world.team, plan=world.plan)

    assert {row.milestone.pk for row in timeline.rows} == {world.milestone.pk, inside.pk}
    assert [(a.predecessor, a.successor) for a in timeline.arrows] == [
        (world.milestone.key, inside.key)
    ]


def test_a_hundred_milestones_get_a_row_each_and_the_width_stays_bounded(world):
    grow_team(world.team, world.member, plans=6, milestones_per_plan=20)
    timeline = build_timeline(world.team)
    assert len(timeline.rows) == 121
    assert len(timeline.groups) == 7
    assert MIN_WIDTH <= timeline.width <= MAX_WIDTH
    assert timeline.height > 121 * 24


@pytest.mark.parametrize("span_days", [3, 30, 365, 5 * 365])
def test_the_width_stays_bounded_for_short_and_long_ranges(world, span_days):
    set_fields(world.milestone, start_date=today(), target_date=days(span_days))
    timeline = build_timeline(world.team)
    assert MIN_WIDTH <= timeline.width <= MAX_WIDTH
    months = [tick for tick in timeline.ticks if tick.major and tick.label]
    assert months, "at least one month is named"
    assert all(b.x - a.x >= 60 for a, b in itertools.pairwise(months)), "names do not overlap"


def test_a_three_week_range_within_one_month_still_names_it(world):
    on = datetime.date(2026, 3, 10)
    set_fields(world.milestone, start_date=on, target_date=on + 3 * DAY, baseline_target_date=None)
    timeline = build_timeline(world.team, on=on)
    assert timeline.start.month == timeline.end.month == 3
    assert [tick.label for tick in timeline.ticks if tick.major] == ["Mar 2026"]
    days_of_mondays = [tick.label for tick in timeline.ticks if not tick.major]
    assert days_of_mondays == ["9", "16", "23"]


def test_build_timeline_costs_the_same_queries_whatever_the_size(world):
    def count():
        with CaptureQueriesContext(connection) as queries:
            build_timeline(world.team)
        return len(queries)

    small = count()
    grow_team(world.team, world.member, plans=5, milestones_per_plan=10)
    assert small == count() == 2


# --- The page -------------------------------------------------------------------------------


def test_a_member_sees_the_svg_timeline(world, client_for):
    response = client_for(world.viewer).get(timeline_url(world.team))
    assert response.status_code == 200
    assert response.context["nav"] == "timeline"
    assert response.context["membership"].user == world.viewer
    page = response.content.decode()
    assert 'role="img"' in page
    assert "<desc" in page
    assert world.milestone.key in page
    milestone_url = reverse("milestone", args=[world.team.slug, world.milestone.key])
    assert f'href="{milestone_url}"' in page
    assert "Timeline as a table" in page
    assert 'aria-current="page"' in page


def test_an_outsider_gets_404(world, client_for):
    assert client_for(world.outsider).get(timeline_url(world.team)).status_code == 404


def test_an_anonymous_visitor_is_sent_to_log_in(world, client):
    response = client.get(timeline_url(world.team))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_the_plan_filter_shows_one_plans_milestones(world, client_for):
    other = make_plan(world.team, world.admin, title="Mobile beta")
    beta = make_milestone(other, world.admin, title="Beta build with testers")
    client = client_for(world.member)

    page = client.get(timeline_url(world.team), {"plan": other.key}).content.decode()
    assert beta.title in page
    assert world.milestone.title not in page

    unknown = client.get(timeline_url(world.team), {"plan": "NOPE-1"}).content.decode()
    assert beta.title in unknown and world.milestone.title in unknown


def test_the_plan_filter_also_takes_an_archived_plan_from_its_page(world, client_for):
    archived = make_plan(world.team, world.admin, title="Old pilot", status="archived")
    old = make_milestone(archived, world.admin, title="Pilot shipped")
    response = client_for(world.member).get(timeline_url(world.team), {"plan": archived.key})
    assert response.context["selected_plan"] == archived
    page = response.content.decode()
    assert old.title in page
    assert world.milestone.title not in page


def test_titles_are_escaped(world, client_for):
    make_milestone(world.plan, world.admin, title="<script>alert(1)</script>")
    page = client_for(world.member).get(timeline_url(world.team)).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_without_dated_milestones_it_says_to_add_target_dates(world, client_for):
    set_fields(world.milestone, start_date=None, target_date=None, baseline_target_date=None)
    page = client_for(world.member).get(timeline_url(world.team)).content.decode()
    assert "<svg" not in page.split("<main", 1)[1]
    assert "Add a target date" in page
    assert world.milestone.key in page  # still listed, so it can be opened and dated


def count_page_queries(client, team) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(timeline_url(team))
    assert response.status_code == 200
    return len(queries)


def test_the_page_query_count_does_not_grow_with_the_data(
    world, client_for, django_assert_max_num_queries
):
    client = client_for(world.member)
    first = make_milestone(world.plan, world.admin, start_date=days(25), target_date=days(40))
    services.add_dependency(world.milestone, first, actor=world.admin)
    grow_team(world.team, world.member, plans=2, milestones_per_plan=4)
    assert Milestone.objects.filter(team=world.team).count() == 10
    small = count_page_queries(client, world.team)
    grow_team(world.team, world.member, plans=38, milestones_per_plan=5)
    assert Milestone.objects.filter(team=world.team).count() == 20 * 10
    assert count_page_queries(client, world.team) == small
    with django_assert_max_num_queries(TIMELINE_QUERY_BUDGET):
        client.get(timeline_url(world.team))
