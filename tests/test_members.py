"""The Members page: invitations by e-mail, role changes, removals, and who may do them."""

import re
import time
from unittest import mock

import pytest
from django.contrib.admin.sites import site as admin_site
from django.test import Client
from django.urls import reverse

from accounts import members
from accounts.models import INVITATION_MAX_AGE, Invitation, Membership, Role, User
from milestones import services, signoffs
from milestones.models import Activity, Milestone
from tests.factories import PASSWORD, add_member, make_user

MEMBERS_PAGE_QUERY_BUDGET = (
    8  # measured: 7 (session, user, access, members, invitations, activity, team switcher)
)
HTMX = {"HX-Request": "true"}


def url(name, world, *args):
    return reverse(name, args=[world.team.slug, *args])


def membership(world, user) -> Membership:
    return Membership.objects.get(team=world.team, user=user)


def invite(client, world, email, role="member", **kwargs):
    return client.post(url("member_invite", world), {"email": email, "role": role}, **kwargs)


def link_path(message) -> str:
    """The path of the invitation link in a mail (links use settings.SITE_URL)."""
    found = re.search(r"https://milepost\.example(/accounts/invitations/\S+/)", message.body)
    assert found, message.body
    return found.group(1)


@pytest.fixture
def site_url(settings):
    settings.SITE_URL = "https://milepost.example"


# Invitation mail goes out when the transaction commits, so these tests really commit.
commits = pytest.mark.django_db(transaction=True)


def pending_invitation(world, email="new@example.com", role=Role.MEMBER) -> Invitation:
    invitation = Invitation.objects.create(
        team=world.team, email=email, role=role, invited_by=world.admin
    )
    members.send_invitation_mail(invitation)
    return invitation


# --- The page -------------------------------------------------------------------------------


def test_an_admin_sees_every_control(world, client_for):
    response = client_for(world.admin).get(url("members", world))
    assert response.status_code == 200
    page = response.content.decode()
    for name in ("ada", "max", "vic"):
        assert f'<th scope="row">{name}' in page
    assert 'name="role"' in page
    assert f'action="{url("member_role", world, membership(world, world.member).pk)}"' in page
    assert "Send invitation" in page
    assert f'hx-post="{url("member_remove", world, membership(world, world.member).pk)}"' in page
    assert response.context["nav"] == "members"
    assert response.context["team"] == world.team
    assert response.context["membership"] == membership(world, world.admin)
    assert 'aria-current="page">Members' in page


@pytest.mark.parametrize("who", ["member", "viewer"])
def test_members_and_viewers_see_the_list_without_controls(world, client_for, who):
    pending_invitation(world)
    response = client_for(getattr(world, who)).get(url("members", world))
    assert response.status_code == 200
    page = response.content.decode()
    for name in ("ada", "max", "vic"):
        assert f'<th scope="row">{name}' in page
    assert "new@example.com" in page  # pending invitations are visible too
    assert 'name="role"' not in page
    assert "/role/" not in page and "/remove/" not in page
    assert "/resend/" not in page and "/revoke/" not in page
    assert "Send invitation" not in page
    assert "Team admins invite people" in page


def test_outsiders_get_404_and_anonymous_users_log_in(world, client, client_for):
    response = client.get(url("members", world))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
    assert client_for(world.outsider).get(url("members", world)).status_code == 404


def test_it_says_when_no_invitation_is_pending(world, client_for):
    page = client_for(world.admin).get(url("members", world)).content.decode()
    assert "No pending invitations." in page
    assert "No invitations, role changes or removals yet." in page


def test_the_table_and_controls_are_labelled(world, client_for):
    page = client_for(world.admin).get(url("members", world)).content.decode()
    pk = membership(world, world.member).pk
    assert "<caption>3 members</caption>" in page
    assert f'<label for="role-{pk}" class="visually-hidden">Role of max</label>' in page
    assert '<label for="id_email">E-mail address</label>' in page
    assert "Only admin" in page  # ada is the only admin: no remove button for her


def count_page_queries(client, world, django_assert_max_num_queries) -> int:
    with django_assert_max_num_queries(MEMBERS_PAGE_QUERY_BUDGET) as queries:
        response = client.get(url("members", world))
    assert response.status_code == 200
    return len(queries)


def test_the_page_query_count_does_not_grow_with_the_team(
    world, client_for, django_assert_max_num_queries
):
    client = client_for(world.admin)
    for number in range(2):
        add_member(world.team, make_user(f"early{number}"), Role.VIEWER)
        pending_invitation(world, f"early{number}@example.com")
    small = count_page_queries(client, world, django_assert_max_num_queries)
    assert Membership.objects.filter(team=world.team).count() == 5
    for number in range(95):
        user = add_member(world.team, make_user(f"late{number}"), Role.MEMBER)
        Milestone.objects.filter(pk=world.milestone.pk).update(owner=user)
    for number in range(20):
        pending_invitation(world, f"late{number}@example.com")
    assert Membership.objects.filter(team=world.team).count() == 100
    large = count_page_queries(client, world, django_assert_max_num_queries)
    assert small == large
    # Members and viewers get the page without the ownership counts; also within budget.
    count_page_queries(client_for(world.viewer), world, django_assert_max_num_queries)


def test_an_htmx_request_gets_only_the_panel(world, client_for):
    response = client_for(world.admin).get(url("members", world), headers=HTMX)
    page = response.content.decode()
    assert response.status_code == 200
    assert page.lstrip().startswith('<div id="members-panel"')
    assert "<html" not in page


# --- Who may write --------------------------------------------------------------------------


def write_requests(world):
    """(method, url, data) for every write, aimed at max's membership or a pending invitation."""
    target = membership(world, world.member).pk
    invitation = pending_invitation(world).pk
    return [
        ("post", url("member_invite", world), {"email": "x@example.com", "role": "member"}),
        ("post", url("member_role", world, target), {"role": "admin"}),
        ("get", url("member_remove", world, target), {}),
        ("post", url("member_remove", world, target), {}),
        ("post", url("invitation_resend", world, invitation), {}),
        ("get", url("invitation_revoke", world, invitation), {}),
        ("post", url("invitation_revoke", world, invitation), {}),
    ]


def assert_nothing_changed(world):
    assert membership(world, world.member).role == Role.MEMBER
    assert Membership.objects.filter(team=world.team).count() == 3
    assert list(Invitation.objects.values_list("email", "revoked_at")) == [
        ("new@example.com", None)
    ]


@pytest.mark.parametrize("who, status", [("outsider", 404), ("viewer", 403), ("member", 403)])
def test_only_admins_may_write(world, client_for, who, status, mailoutbox):
    requests = write_requests(world)
    client = client_for(getattr(world, who))
    for method, path, data in requests:
        response = getattr(client, method)(path, data)
        assert response.status_code == status, (method, path)
        response = getattr(client, method)(path, data, headers=HTMX)
        assert response.status_code == status, (method, path)
    assert_nothing_changed(world)
    assert len(mailoutbox) == 1  # only the fixture's own invitation mail


def test_anonymous_writes_go_to_the_login_page(world, client):
    for method, path, data in write_requests(world):
        response = getattr(client, method)(path, data)
        assert response.status_code == 302, (method, path)
        assert response["Location"].startswith(reverse("accounts:login"))
    assert_nothing_changed(world)


def test_objects_of_another_team_are_not_found(world, client_for):
    elsewhere = Membership.objects.get(user=world.outsider)
    client = client_for(world.admin)
    assert (
        client.post(url("member_role", world, elsewhere.pk), {"role": "viewer"}).status_code == 404
    )
    assert client.post(url("member_remove", world, elsewhere.pk)).status_code == 404
    other = Invitation.objects.create(team=world.other_team, email="z@example.com")
    assert client.post(url("invitation_revoke", world, other.pk)).status_code == 404
    assert Membership.objects.get(pk=elsewhere.pk).role == Role.ADMIN


def test_writes_need_the_csrf_token(world, mailoutbox):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.admin)
    for method, path, data in write_requests(world):
        if method == "post":
            assert client.post(path, data).status_code == 403, path
            assert client.post(path, data, headers=HTMX).status_code == 403, path
    assert_nothing_changed(world)
    page = client.get(url("members", world)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(
        url("member_role", world, membership(world, world.member).pk),
        {"role": "viewer", "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302
    assert membership(world, world.member).role == Role.VIEWER


def test_accepting_an_invitation_needs_the_csrf_token(world, site_url):
    invitation = pending_invitation(world)
    path = reverse("accounts:invitation_accept", args=[invitation.make_token()])
    client = Client(enforce_csrf_checks=True)
    data = {
        "username": "newbie",
        "password1": "a long fresh phrase",
        "password2": "a long fresh phrase",
    }
    assert client.post(path, data).status_code == 403
    assert not User.objects.filter(username="newbie").exists()


# --- Inviting -------------------------------------------------------------------------------


@commits
def test_inviting_mails_a_signed_link(world, client_for, mailoutbox, site_url):
    response = invite(client_for(world.admin), world, "New.Person@Example.COM", "viewer")
    assert response.status_code == 302
    assert response["Location"] == url("members", world)
    invitation = Invitation.objects.get()
    assert (invitation.email, invitation.role, invitation.invited_by) == (
        "New.Person@example.com",
        Role.VIEWER,
        world.admin,
    )
    assert invitation.sent_at is not None
    assert invitation.expires_at == invitation.sent_at + INVITATION_MAX_AGE
    [message] = mailoutbox
    assert message.to == ["New.Person@example.com"]
    assert message.subject == "ada invited you to Rocket on Milepost"
    assert "with the role viewer" in message.body
    assert Invitation.objects.from_token(link_path(message).split("/")[-2]) == invitation
    page = client_for(world.admin).get(url("members", world)).content.decode()
    assert "Invitation sent to New.Person@example.com." in page
    assert "ada invited New.Person@example.com as viewer" in page


def test_inviting_a_member_is_a_field_error_and_keeps_the_input(world, client_for, mailoutbox):
    response = invite(client_for(world.admin), world, "MAX@example.com", "admin")
    assert response.status_code == 200
    page = response.content.decode()
    assert re.search(
        r'<p class="field-error" id="id_email_error">MAX@example.com is already a member', page
    )
    assert 'value="MAX@example.com"' in page
    assert 'aria-invalid="true"' in page
    assert '<option value="admin" selected>' in page
    assert not Invitation.objects.exists()
    assert mailoutbox == []


def test_an_invalid_address_or_role_is_a_field_error(world, client_for):
    page = invite(client_for(world.admin), world, "not-an-address", "owner").content.decode()
    assert 'id="id_email_error">Enter a valid email address.' in page
    assert 'id="id_role_error">Select a valid choice.' in page
    assert 'value="not-an-address"' in page
    assert not Invitation.objects.exists()


@commits
def test_inviting_a_pending_address_again_updates_and_resends(world, client_for, mailoutbox):
    client = client_for(world.admin)
    invite(client, world, "new@example.com", "member")
    response = invite(client, world, "NEW@example.com", "admin")
    assert response.status_code == 302
    invitation = Invitation.objects.get()
    assert invitation.role == Role.ADMIN
    assert len(mailoutbox) == 2
    assert [m.to for m in mailoutbox] == [["new@example.com"], ["new@example.com"]]
    page = client.get(url("members", world)).content.decode()
    assert "Invitation sent again to new@example.com." in page
    assert "ada changed the invitation of new@example.com to admin" in page


@commits
def test_an_htmx_invite_returns_the_panel(world, client_for, mailoutbox):
    client = client_for(world.admin)
    response = invite(client, world, "new@example.com", headers=HTMX)
    page = response.content.decode()
    assert response.status_code == 200
    assert page.lstrip().startswith('<div id="members-panel"')
    assert "Invitation sent to new@example.com." in page
    assert '<th scope="row">new@example.com</th>' in page
    response = invite(client, world, "bad", headers=HTMX)
    assert response.status_code == 200
    assert 'id="id_email_error">Enter a valid email address.' in response.content.decode()


@commits
def test_a_mail_that_cannot_be_sent_is_reported_and_can_be_resent(world, client_for, mailoutbox):
    client = client_for(world.admin)
    with mock.patch("accounts.members.send_mail", side_effect=OSError("connection refused")):
        response = invite(client, world, "new@example.com")
    assert response.status_code == 302
    invitation = Invitation.objects.get()
    assert invitation.sent_at is None
    page = client.get(url("members", world)).content.decode()
    assert "the mail could not be sent" in page
    assert "Mail not sent" in page
    response = client.post(url("invitation_resend", world, invitation.pk))
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.sent_at is not None
    assert len(mailoutbox) == 1


@commits
def test_resending_mails_a_fresh_link(world, client_for, mailoutbox):
    invitation = pending_invitation(world)
    response = client_for(world.admin).post(
        url("invitation_resend", world, invitation.pk), headers=HTMX
    )
    assert response.status_code == 200
    assert "Invitation sent again to new@example.com." in response.content.decode()
    assert len(mailoutbox) == 2
    assert Invitation.objects.count() == 1


def test_revoking_asks_first_then_the_link_stops_working(world, client_for, client, site_url):
    invitation = pending_invitation(world)
    admin = client_for(world.admin)
    confirm = admin.get(url("invitation_revoke", world, invitation.pk))
    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert "Revoke the invitation to new@example.com?" in page
    assert f'<form method="post" action="{url("invitation_revoke", world, invitation.pk)}"' in page
    invitation.refresh_from_db()
    assert invitation.revoked_at is None  # asking changes nothing
    response = admin.post(url("invitation_revoke", world, invitation.pk))
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    assert "No pending invitations." in admin.get(url("members", world)).content.decode()
    admin.logout()
    page = client.get(reverse("accounts:invitation_accept", args=[invitation.make_token()]))
    assert page.status_code == 410
    assert "This invitation was withdrawn" in page.content.decode()


def test_the_page_offers_hx_confirm_before_destructive_actions(world, client_for):
    invitation = pending_invitation(world)
    page = client_for(world.admin).get(url("members", world)).content.decode()
    assert 'hx-confirm="Revoke the invitation to new@example.com?' in page
    assert 'hx-confirm="Remove max from Rocket?' in page
    # Without JavaScript the same buttons open the confirmation pages.
    assert f'<form method="get" action="{url("invitation_revoke", world, invitation.pk)}"' in page


# --- Accepting ------------------------------------------------------------------------------


@commits
def test_a_new_person_signs_up_from_the_mail(world, client_for, client, mailoutbox, site_url):
    invite(client_for(world.admin), world, "new@example.com", "viewer")
    client.logout()
    path = link_path(mailoutbox[0])
    form = client.get(path)
    assert form.status_code == 200
    page = form.content.decode()
    assert "Join Rocket" in page and "new@example.com" in page
    assert 'name="password1"' in page

    weak = client.post(path, {"username": "newbie", "password1": "123", "password2": "123"})
    assert weak.status_code == 200
    weak_page = weak.content.decode()
    assert "This password is too short" in weak_page
    assert "This password is entirely numeric" in weak_page
    assert 'value="newbie"' in weak_page  # the input is kept
    taken = client.post(path, {"username": "MAX", "password1": "x", "password2": "x"})
    assert "A user with that username already exists." in taken.content.decode()
    assert not User.objects.filter(email="new@example.com").exists()

    done = client.post(
        path,
        {
            "username": "newbie",
            "first_name": "Nell",
            "last_name": "Newman",
            "password1": "a long fresh phrase",
            "password2": "a long fresh phrase",
        },
    )
    assert done.status_code == 302
    assert done["Location"] == reverse("dashboard", args=[world.team.slug])
    user = User.objects.get(username="newbie")
    assert (user.email, user.display_name, user.last_team) == (
        "new@example.com",
        "Nell Newman",
        world.team,
    )
    assert user.check_password("a long fresh phrase")
    assert membership(world, user).role == Role.VIEWER
    assert int(client.session["_auth_user_id"]) == user.pk
    invitation = Invitation.objects.get()
    assert invitation.accepted_by == user and invitation.accepted_at is not None

    again = client.get(path)
    assert again.status_code == 410
    assert "This invitation was already accepted" in again.content.decode()


@commits
def test_someone_with_an_account_logs_in_then_joins(
    world, client_for, client, mailoutbox, site_url
):
    invite(client_for(world.admin), world, "OLGA@example.com", "member")
    client.logout()
    path = link_path(mailoutbox[0])
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('accounts:login')}?next={path.replace(':', '%3A')}"
    logged_in = client.post(
        response["Location"], {"username": "olga", "password": PASSWORD, "next": path}
    )
    assert logged_in.status_code == 302
    assert logged_in["Location"] == path
    confirm = client.get(path)
    assert confirm.status_code == 200
    assert "Join Rocket</button>" in confirm.content.decode()
    assert not Membership.objects.filter(team=world.team, user=world.outsider).exists()
    joined = client.post(path)
    assert joined.status_code == 302
    assert joined["Location"] == reverse("dashboard", args=[world.team.slug])
    assert membership(world, world.outsider).role == Role.MEMBER
    assert Membership.objects.filter(user=world.outsider).count() == 2  # kept the other team
    activity = Activity.objects.get(verb="accepted")
    assert (activity.actor, activity.team) == (world.outsider, world.team)


def test_the_wrong_account_cannot_accept(world, client_for, site_url):
    invitation = pending_invitation(world, "someone.else@example.com")
    path = reverse("accounts:invitation_accept", args=[invitation.make_token()])
    client = client_for(world.outsider)
    response = client.get(path)
    assert response.status_code == 403
    assert "not with the invited address" in response.content.decode()
    assert client.post(path).status_code == 403
    assert not Membership.objects.filter(team=world.team, user=world.outsider).exists()
    invitation.refresh_from_db()
    assert invitation.is_pending


def test_an_expired_link_gets_a_clear_page(world, client):
    invitation = pending_invitation(world)
    fifteen_days_ago = time.time() - 15 * 24 * 3600
    with mock.patch("django.core.signing.time.time", return_value=fifteen_days_ago):
        token = invitation.make_token()
    response = client.get(reverse("accounts:invitation_accept", args=[token]))
    assert response.status_code == 410
    page = response.content.decode()
    assert "This invitation has expired" in page
    assert "Ask ada to send you a new one to Rocket." in page
    assert client.post(reverse("accounts:invitation_accept", args=[token])).status_code == 410
    thirteen_days_ago = time.time() - 13 * 24 * 3600
    with mock.patch("django.core.signing.time.time", return_value=thirteen_days_ago):
        token = invitation.make_token()
    assert client.get(reverse("accounts:invitation_accept", args=[token])).status_code == 200


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),  # signature
        lambda token: "MTIz" + token[token.index(":") :],  # payload: another id
        lambda token: "nonsense",
    ],
)
def test_a_tampered_link_gets_a_clear_page(world, client, tamper):
    invitation = pending_invitation(world)
    response = client.get(
        reverse("accounts:invitation_accept", args=[tamper(invitation.make_token())])
    )
    assert response.status_code == 404
    assert "This invitation link is not valid" in response.content.decode()


def test_a_link_to_a_deleted_invitation_is_not_valid(world, client):
    invitation = pending_invitation(world)
    token = invitation.make_token()
    invitation.delete()  # e.g. in the Django admin
    response = client.get(reverse("accounts:invitation_accept", args=[token]))
    assert response.status_code == 404


def test_an_existing_member_accepting_keeps_their_role(world, client_for):
    invitation = Invitation.objects.create(
        team=world.team, email="max@example.com", role=Role.VIEWER, invited_by=world.admin
    )
    # The invitation predates max joining (e.g. through the admin); accepting changes nothing.
    response = client_for(world.member).post(
        reverse("accounts:invitation_accept", args=[invitation.make_token()])
    )
    assert response.status_code == 302
    assert membership(world, world.member).role == Role.MEMBER
    invitation.refresh_from_db()
    assert invitation.accepted_by == world.member


# --- Roles ----------------------------------------------------------------------------------


def test_an_admin_changes_a_role_and_it_is_logged(world, client_for):
    client = client_for(world.admin)
    target = membership(world, world.member)
    response = client.post(url("member_role", world, target.pk), {"role": "admin"})
    assert response.status_code == 302
    assert membership(world, world.member).role == Role.ADMIN
    activity = Activity.objects.get(object_type="member")
    assert (activity.actor, activity.verb, activity.changes) == (
        world.admin,
        "updated",
        {"role": ["member", "admin"]},
    )
    page = client.get(url("members", world)).content.decode()
    assert "max is now Admin." in page
    assert "ada changed the role of max from member to admin" in page


def test_an_htmx_role_change_returns_the_panel(world, client_for):
    target = membership(world, world.viewer)
    response = client_for(world.admin).post(
        url("member_role", world, target.pk), {"role": "member"}, headers=HTMX
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert page.lstrip().startswith('<div id="members-panel"')
    assert "vic is now Member." in page
    assert membership(world, world.viewer).role == Role.MEMBER


def test_the_last_admin_cannot_be_demoted(world, client_for):
    client = client_for(world.admin)
    own = membership(world, world.admin)
    for headers in ({}, HTMX):
        response = client.post(
            url("member_role", world, own.pk), {"role": "viewer"}, headers=headers
        )
        assert response.status_code == 200
        page = response.content.decode()
        assert f'<p class="field-error" id="member-{own.pk}-error" role="alert">' in page
        assert "Rocket needs at least one admin." in page
        # The attempted value is kept in the row's select.
        row = page[page.index(f'id="role-{own.pk}"') :]
        assert row.index('<option value="viewer" selected>') < row.index("</select>")
    assert membership(world, world.admin).role == Role.ADMIN
    assert not Activity.objects.filter(object_type="member").exists()


def test_an_invalid_role_is_refused_in_the_row(world, client_for):
    target = membership(world, world.member)
    response = client_for(world.admin).post(url("member_role", world, target.pk), {"role": "boss"})
    assert response.status_code == 200
    assert "Select a valid choice. boss is not one of the available choices." in (
        response.content.decode()
    )
    assert membership(world, world.member).role == Role.MEMBER


def test_an_admin_who_demotes_themselves_gets_a_full_refresh(world, client_for):
    Membership.objects.filter(team=world.team, user=world.member).update(role=Role.ADMIN)
    client = client_for(world.admin)
    own = membership(world, world.admin)
    response = client.post(url("member_role", world, own.pk), {"role": "member"}, headers=HTMX)
    assert response.status_code == 200
    assert response["HX-Refresh"] == "true"
    assert membership(world, world.admin).role == Role.MEMBER
    assert client.post(url("member_role", world, own.pk), {"role": "admin"}).status_code == 403


# --- Removing -------------------------------------------------------------------------------


def test_removing_asks_first_and_says_what_they_own(world, client_for):
    services.update_object(world.milestone, actor=world.admin, owner=world.member)
    services.update_object(world.plan, actor=world.admin, owner=world.member)
    target = membership(world, world.member)
    client = client_for(world.admin)
    listing = client.get(url("members", world)).content.decode()
    assert "They own 1 plan and 1 milestone here, which will have no owner." in listing
    response = client.get(url("member_remove", world, target.pk))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Remove max from Rocket?" in page
    assert "They own 1 plan and 1 milestone in this team." in page
    assert f'<form method="post" action="{url("member_remove", world, target.pk)}"' in page
    assert Membership.objects.filter(pk=target.pk).exists()


def test_removing_a_member_unassigns_what_they_own(world, client_for):
    services.update_object(world.milestone, actor=world.admin, owner=world.member)
    world.member.last_team = world.team
    world.member.save()
    client = client_for(world.admin)
    response = client.post(url("member_remove", world, membership(world, world.member).pk))
    assert response.status_code == 302
    assert not Membership.objects.filter(team=world.team, user=world.member).exists()
    world.milestone.refresh_from_db()
    world.member.refresh_from_db()
    assert world.milestone.owner is None
    assert world.member.last_team is None
    unassigned = Activity.objects.filter(milestone=world.milestone, verb="updated").first()
    assert unassigned.changes == {"owner": ["max", None]}
    removed = Activity.objects.get(object_type="member", verb="removed")
    assert (removed.actor, removed.object_repr) == (world.admin, "max")
    page = client.get(url("members", world)).content.decode()
    assert "max was removed from Rocket. What they owned is now unassigned: 1 milestone." in page
    assert "ada removed max (member) from the team" in page
    assert client_for(world.member).get(url("members", world)).status_code == 404


def test_an_htmx_removal_returns_the_panel(world, client_for):
    target = membership(world, world.viewer)
    response = client_for(world.admin).post(url("member_remove", world, target.pk), headers=HTMX)
    page = response.content.decode()
    assert response.status_code == 200
    assert page.lstrip().startswith('<div id="members-panel"')
    assert "vic was removed from Rocket." in page
    assert f'id="member-{target.pk}"' not in page


def test_the_last_admin_cannot_be_removed(world, client_for):
    own = membership(world, world.admin)
    client = client_for(world.admin)
    response = client.post(url("member_remove", world, own.pk))
    assert response.status_code == 200
    assert "Rocket needs at least one admin." in response.content.decode()
    response = client.post(url("member_remove", world, own.pk), headers=HTMX)
    assert response.status_code == 200
    assert f'id="member-{own.pk}-error"' in response.content.decode()
    assert Membership.objects.filter(pk=own.pk).exists()


def test_an_admin_may_leave_when_another_admin_remains(world, client_for):
    Membership.objects.filter(team=world.team, user=world.member).update(role=Role.ADMIN)
    own = membership(world, world.admin)
    response = client_for(world.admin).post(url("member_remove", world, own.pk), headers=HTMX)
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("home")
    assert not Membership.objects.filter(pk=own.pk).exists()


# --- Admin ----------------------------------------------------------------------------------


def test_the_django_admin_lists_and_revokes_invitations(world, client):
    invitation = pending_invitation(world)
    superuser = User.objects.create_superuser("root", "root@example.com", PASSWORD)
    client.force_login(superuser)
    changelist = reverse("admin:accounts_invitation_changelist")
    assert client.get(changelist).status_code == 200
    assert not admin_site.get_model_admin(Invitation).has_add_permission(mock.Mock())
    response = client.post(changelist, {"action": "revoke", "_selected_action": [invitation.pk]})
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None


# --- In a browser (htmx) --------------------------------------------------------------------


@pytest.mark.browser
@commits
def test_an_admin_manages_members_in_the_browser(world, live_server, page, mailoutbox):
    from playwright.sync_api import expect

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username or e-mail").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(live_server.url + url("members", world))
    page.evaluate("window.notReloaded = true")

    page.get_by_label("Role of max").select_option("admin")
    page.get_by_role("button", name="Save role of max").click()
    expect(page.get_by_role("status")).to_contain_text("max is now Admin.")
    assert membership(world, world.member).role == Role.ADMIN

    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Remove vic").click()
    expect(page.get_by_role("button", name="Remove vic")).to_be_visible()
    assert Membership.objects.filter(team=world.team, user=world.viewer).exists()
    messages = []
    page.once("dialog", lambda dialog: (messages.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Remove vic").click()
    expect(page.get_by_role("status")).to_contain_text("vic was removed from Rocket.")
    assert messages == ["Remove vic from Rocket?"]

    page.get_by_label("E-mail address").fill("new@example.com")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("status")).to_contain_text("Invitation sent to new@example.com.")
    expect(page.get_by_role("row", name="new@example.com")).to_contain_text("Works until")
    assert [m.to for m in mailoutbox] == [["new@example.com"]]
    assert page.evaluate("window.notReloaded") is True


def test_removing_a_member_takes_them_off_the_sign_off_roles_they_hold(world, client_for):
    role = world.milestone.signoff_roles.get(name="Product owner")
    signoffs.set_holder(role, actor=world.admin, holder=world.member)
    client = client_for(world.admin)
    client.post(url("member_remove", world, membership(world, world.member).pk))
    role.refresh_from_db()
    assert role.holder is None
    change = Activity.objects.filter(object_type="signoffrole", verb="updated").first()
    assert change.changes == {"holder": ["max", None]}
    page = client.get(url("members", world)).content.decode()
    assert "What they owned is now unassigned: 1 sign-off role." in page
