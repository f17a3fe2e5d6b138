"""The team settings page: admins change the defaults, everyone else reads them."""

from django.urls import reverse

from milestones.models import Activity, Milestone
from tests.factories import make_milestone

VALID = {
    "name": "Rocket",
    "milestone_key_prefix": "RKT",
    "health_slip_days": "5",
    "health_behind_points": "20",
    "health_risk_score": "6",
    "health_signoff_days": "7",
    "health_stale_update_days": "10",
    "health_min_confidence": "50",
    "status_update_cadence_days": "7",
    "signoff_roles": "Tech lead\nSecurity reviewer\n",
}


def url(world):
    return reverse("team_settings", args=[world.team.slug])


def test_an_admin_changes_the_default_sign_off_roles_for_new_milestones(world, client_for):
    response = client_for(world.admin).post(url(world), VALID)
    assert response.status_code == 302
    world.team.refresh_from_db()
    assert world.team.signoff_roles == ["Tech lead", "Security reviewer"]
    assert world.team.milestone_key_prefix == "RKT"
    fresh = make_milestone(world.plan, world.admin, title="After the change")
    assert list(fresh.signoff_roles.values_list("name", flat=True)) == [
        "Tech lead",
        "Security reviewer",
    ]
    assert fresh.key.startswith("RKT-")
    # Existing milestones keep the roles they had.
    assert world.milestone.signoff_roles.count() == 3
    logged = Activity.objects.get(object_type="team")
    assert logged.changes["signoff_roles"][1] == ["Tech lead", "Security reviewer"]


def test_bad_settings_show_field_errors_and_save_nothing(world, client_for):
    bad = {**VALID, "signoff_roles": "Tech lead\ntech lead", "milestone_key_prefix": "bad-1"}
    response = client_for(world.admin).post(url(world), bad)
    page = response.content.decode()
    assert response.status_code == 200
    assert "may appear only once" in page
    assert "field-error" in page
    world.team.refresh_from_db()
    assert world.team.milestone_key_prefix == "MLS"
    assert len(world.team.signoff_roles) == 3


def test_members_read_the_settings_but_cannot_change_them(world, client_for):
    client = client_for(world.member)
    page = client.get(url(world)).content.decode()
    assert "Only team admins change these settings" in page
    assert "Save settings" not in page
    assert client.post(url(world), VALID).status_code == 403
    assert client_for(world.outsider).get(url(world)).status_code == 404
    assert Milestone.objects.filter(team=world.team).count() == 1


def test_the_settings_page_has_a_fixed_query_count(
    world, client_for, django_assert_max_num_queries
):
    client = client_for(world.admin)
    with django_assert_max_num_queries(8):
        assert client.get(url(world)).status_code == 200
