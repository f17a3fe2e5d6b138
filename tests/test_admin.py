"""The Django admin: staff see only the teams they administer, and saves go through services."""

from django.contrib.auth.models import Permission
from django.urls import reverse

from accounts.models import Role
from milestones.models import Activity, Milestone
from tests.factories import add_member, make_milestone, make_plan, make_user


def make_staff_admin_of(team):
    user = make_user("staffer", is_staff=True)
    add_member(team, user, Role.ADMIN)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label__in=["milestones", "accounts"])
    )
    return user


def test_staff_see_only_milestones_of_teams_they_administer(world, client):
    theirs = make_milestone(make_plan(world.other_team, world.outsider), title="Secret rollout")
    client.force_login(make_staff_admin_of(world.team))
    page = client.get(reverse("admin:milestones_milestone_changelist")).content.decode()
    assert world.milestone.title in page
    assert theirs.title not in page
    response = client.get(reverse("admin:milestones_milestone_change", args=[theirs.pk]))
    assert response.status_code == 302  # the admin's "does not exist" redirect, no details


def test_a_superuser_sees_every_team(world, client):
    theirs = make_milestone(make_plan(world.other_team, world.outsider), title="Secret rollout")
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:milestones_milestone_changelist")).content.decode()
    assert world.milestone.title in page
    assert theirs.title in page


def test_an_admin_edit_is_validated_and_logged(world, client):
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    url = reverse("admin:milestones_milestone_change", args=[world.milestone.pk])
    form = client.get(url).context["adminform"].form
    data = {
        name: value
        for name, value in form.initial.items()
        if value is not None and name in form.fields
    }
    data.update(
        {
            "title": "Export queue live",
            "owner": world.member.pk,
            "plan": world.plan.pk,
            "team": world.team.pk,
        }
    )
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    world.milestone.refresh_from_db()
    assert world.milestone.title == "Export queue live"
    assert world.milestone.version == 2
    entry = Activity.objects.filter(milestone=world.milestone, verb="updated").get()
    assert entry.changes["title"] == ["Export queue ready", "Export queue live"]

    data["start_date"], data["target_date"] = "2030-05-10", "2030-05-01"
    refused = client.post(url, data)
    assert refused.status_code == 200
    assert "cannot be before the start date" in refused.content.decode()
    unchanged = Milestone.objects.get(pk=world.milestone.pk)
    assert unchanged.target_date == world.milestone.target_date
    assert unchanged.version == 2


def test_the_activity_log_cannot_be_edited_or_deleted_in_the_admin(world, client):
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    entry = Activity.objects.first()
    change = client.post(reverse("admin:milestones_activity_change", args=[entry.pk]), {})
    assert change.status_code == 403
    delete = client.post(
        reverse("admin:milestones_activity_delete", args=[entry.pk]), {"post": "yes"}
    )
    assert delete.status_code == 403
    assert Activity.objects.filter(pk=entry.pk).exists()
