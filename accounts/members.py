"""The Members page (/t/<team>/members/) and e-mail invitations.

The first half holds the state changes: each owns its transaction, checks the rules that span
rows (a team keeps at least one admin), records an Activity row, and sends mail only after
the transaction commits. The views in the second half check access with `access_team`, call
those functions and render `accounts/members.html` (its `members-panel` partial for htmx).
Only team admins may write; members and viewers see the same page without the controls.
"""

import logging
import smtplib

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce, Lower
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseClientRefresh

from accounts.forms import InvitationSignupForm, InviteForm, RoleForm
from accounts.models import (
    INVITATION_MAX_AGE,
    Invitation,
    InvitationError,
    Membership,
    Role,
    Team,
    User,
    access_team,
)
from milestones import services, signoffs
from milestones.models import Activity, Blocker, Deliverable, Milestone, Plan, Risk, SignoffRole

logger = logging.getLogger(__name__)

LAST_ADMIN = "{team} needs at least one admin. Make someone else an admin first."
RECENT_CHANGES = 10

# What a member can own in a team, as (singular, plural, queryset of the team's objects).
OWNED_KINDS = [
    ("plan", "plans", lambda team: Plan.objects.in_team(team)),
    ("milestone", "milestones", lambda team: Milestone.objects.in_team(team)),
    ("deliverable", "deliverables", lambda team: Deliverable.objects.filter(milestone__team=team)),
    ("risk", "risks", lambda team: Risk.objects.in_team(team)),
    ("blocker", "blockers", lambda team: Blocker.objects.in_team(team)),
]
# Held rather than owned: removing a member also takes them off these (see remove_member).
HELD_KINDS = [("sign-off role", "sign-off roles")]


# --- State changes ---------------------------------------------------------------------------


def _lock_team(team_id: int) -> Team:
    """Serialise membership changes in a team, so two admins cannot demote each other at once."""
    return Team.objects.select_for_update().get(pk=team_id)


def _log(team_id, actor, verb: str, object_type: str, obj, label: str, changes=None) -> None:
    Activity.objects.create(
        team_id=team_id,
        actor=actor if actor and actor.is_authenticated else None,
        verb=verb,
        object_type=object_type,
        object_id=obj.pk,
        object_repr=label[:200],
        changes=changes or {},
    )


def _keep_an_admin(membership: Membership) -> None:
    """Refuse to take away the team's last admin."""
    others = Membership.objects.filter(team_id=membership.team_id, role=Role.ADMIN)
    if not others.exclude(pk=membership.pk).exists():
        raise ValidationError(LAST_ADMIN.format(team=membership.team))


@transaction.atomic
def invite(team: Team, *, email: str, role: str, invited_by) -> tuple[Invitation, bool]:
    """Invite `email` to `team` and mail the link after commit.

    An address with a pending invitation gets that invitation updated (role) and re-sent, never
    a second one. Raises ValidationError when the address already belongs to a member.
    Returns the invitation and whether it is new.
    """
    _lock_team(team.pk)
    invitation = Invitation.objects.pending().for_email(email).filter(team=team).first()
    created = invitation is None
    if created:
        invitation = Invitation(team=team, email=email, invited_by=invited_by)
    old_role = None if created else invitation.role
    invitation.role = role
    invitation.sent_at = None  # set again once the mail is out
    invitation.full_clean()
    invitation.save()
    if old_role != role:
        verb = "created" if created else "updated"
        _log(team.pk, invited_by, verb, "invitation", invitation, invitation.email,
             {"role": [old_role, role]})  # fmt: skip
    transaction.on_commit(lambda: send_invitation_mail(invitation))
    return invitation, created


@transaction.atomic
def resend_invitation(invitation: Invitation) -> None:
    """Mail a fresh link (valid for INVITATION_MAX_AGE from now) after commit."""
    invitation.sent_at = None
    invitation.save(update_fields=["sent_at"])
    transaction.on_commit(lambda: send_invitation_mail(invitation))


def send_invitation_mail(invitation: Invitation) -> bool:
    """Mail the invitation with a newly signed link; on success record when it went out.

    A mail server that fails is logged, not raised: the invitation stays pending with
    `sent_at` empty, and the page offers to send it again.
    """
    sent_at = timezone.now()
    context = {
        "invitation": invitation,
        "team": invitation.team,
        "inviter": invitation.invited_by,
        "link": invitation.accept_url(invitation.make_token()),
        "expires_at": sent_at + INVITATION_MAX_AGE,
    }
    subject = " ".join(render_to_string("accounts/email/invitation_subject.txt", context).split())
    body = render_to_string("accounts/email/invitation_body.txt", context)
    try:
        send_mail(subject, body, None, [invitation.email])
    except (smtplib.SMTPException, OSError):
        logger.exception("Could not mail invitation %s to %s", invitation.pk, invitation.email)
        return False
    invitation.sent_at = sent_at
    Invitation.objects.filter(pk=invitation.pk).update(sent_at=sent_at)
    return True


@transaction.atomic
def revoke_invitation(invitation: Invitation, *, actor) -> bool:
    """Withdraw a pending invitation: its links stop working. False if it was not pending."""
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not invitation.is_pending:
        return False
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    _log(invitation.team_id, actor, "revoked", "invitation", invitation, invitation.email)
    return True


@transaction.atomic
def accept_invitation(invitation: Invitation, user: User) -> tuple[Membership, bool]:
    """Make `user` (whose address the invitation was sent to) a member with the invited role.

    Raises InvitationError when the invitation was used or revoked meanwhile. A user who is
    already a member keeps their role. Returns the membership and whether it is new.
    """
    if user.email.casefold() != invitation.email.casefold():
        raise ValueError("An invitation is accepted by the account with its e-mail address.")
    invitation = Invitation.objects.select_for_update().select_related("team").get(pk=invitation.pk)
    if not invitation.is_pending:
        raise InvitationError(invitation.state, invitation)
    membership, created = Membership.objects.get_or_create(
        team=invitation.team, user=user, defaults={"role": invitation.role}
    )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    _log(invitation.team_id, user, "accepted", "invitation", invitation, invitation.email,
         {"role": [None, membership.role]} if created else None)  # fmt: skip
    if user.last_team_id is None:
        user.last_team = invitation.team
        user.save(update_fields=["last_team"])
    return membership, created


@transaction.atomic
def create_account_and_accept(invitation: Invitation, form: InvitationSignupForm) -> User:
    """Create the invited person's account from the sign-up form and accept the invitation."""
    user = form.save()
    accept_invitation(invitation, user)
    return user


@transaction.atomic
def change_role(membership: Membership, role: str, *, actor) -> bool:
    """Give a member another role; the last admin cannot be demoted. True if it changed."""
    _lock_team(membership.team_id)
    membership = Membership.objects.select_related("team", "user").get(pk=membership.pk)
    if membership.role == role:
        return False
    if membership.is_admin:
        _keep_an_admin(membership)
    old_role, membership.role = membership.role, role
    membership.full_clean()
    membership.save(update_fields=["role"])
    _log(membership.team_id, actor, "updated", "member", membership,
         membership.user.display_name, {"role": [old_role, role]})  # fmt: skip
    return True


def owned_in_team(team: Team, user: User) -> dict[str, list]:
    """What `user` owns in `team`, by kind ('plan', 'milestone', …); kinds with nothing left out."""
    owned = {}
    for singular, _plural, objects in OWNED_KINDS:
        items = list(objects(team).filter(owner=user))
        if items:
            owned[singular] = items
    return owned


@transaction.atomic
def remove_member(membership: Membership, *, actor) -> dict[str, int]:
    """Take a member out of the team; the last admin cannot be removed.

    Everything they own in the team (plans, milestones, deliverables, risks, blockers) is
    unassigned through the services, so each item logs the change: the domain rule is that an
    owner is a member. Returns how many items of each kind were unassigned.
    """
    _lock_team(membership.team_id)
    membership = Membership.objects.select_related("team", "user").get(pk=membership.pk)
    if membership.is_admin:
        _keep_an_admin(membership)
    owned = owned_in_team(membership.team, membership.user)
    for items in owned.values():
        for item in items:
            services.update_object(item, actor=actor, owner=None)
    held = list(
        SignoffRole.objects.active().filter(milestone__team=membership.team, holder=membership.user)
    )
    for role in held:
        signoffs.set_holder(role, actor=actor, holder=None)
    if held:
        owned["sign-off role"] = held
    _log(membership.team_id, actor, "removed", "member", membership,
         membership.user.display_name, {"role": [membership.role, None]})  # fmt: skip
    membership.delete()
    User.objects.filter(pk=membership.user_id, last_team=membership.team).update(last_team=None)
    return {kind: len(items) for kind, items in owned.items()}


# --- Page ------------------------------------------------------------------------------------


def describe_owned(counts: dict[str, int]) -> str:
    """'3 milestones and 1 plan' from {'milestone': 3, 'plan': 1}; '' when nothing is owned."""
    parts = [
        f"{counts[singular]} {singular if counts[singular] == 1 else plural}"
        for singular, plural in [(s, p) for s, p, _objects in OWNED_KINDS] + HELD_KINDS
        if counts.get(singular)
    ]
    if len(parts) > 1:
        return ", ".join(parts[:-1]) + " and " + parts[-1]
    return parts[0] if parts else ""


def describe_change(activity: Activity) -> str:
    """One line of the page's "Recent changes" for a member or invitation activity row."""
    who = activity.actor.display_name if activity.actor else "Milepost"
    old, new = ([*activity.changes.get("role", []), None, None])[:2]
    old, new = (Role(value).label.lower() if value in Role.values else "" for value in (old, new))
    name = activity.object_repr
    lines = {
        ("member", "updated"): f"{who} changed the role of {name} from {old} to {new}",
        ("member", "removed"): f"{who} removed {name} ({old}) from the team",
        ("invitation", "created"): f"{who} invited {name} as {new}",
        ("invitation", "updated"): f"{who} changed the invitation of {name} to {new}",
        ("invitation", "revoked"): f"{who} revoked the invitation of {name}",
        ("invitation", "accepted"): f"{who} accepted the invitation of {name}"
        + (f" and joined as {new}" if new else ""),
    }
    return lines.get((activity.object_type, activity.verb), activity.describe())


def _owned_count_columns(team: Team) -> dict:
    """One COUNT subquery per owned kind, matched on the membership's user."""
    columns = {}
    for singular, _plural, objects in OWNED_KINDS:
        counted = (
            objects(team)
            .filter(owner=OuterRef("user_id"))
            .order_by()
            .values("owner")
            .annotate(n=Count("pk"))
            .values("n")
        )
        columns[f"owns_{singular}"] = Coalesce(Subquery(counted, output_field=IntegerField()), 0)
    return columns


def _render_page(request, membership, *, invite_form=None, row_errors=None, kept_roles=None):
    """The page, or only its members-panel partial for htmx. Queries do not grow with size."""
    team = membership.team
    row_errors, kept_roles = row_errors or {}, kept_roles or {}
    members = (
        Membership.objects.filter(team=team)
        .select_related("user")
        .order_by(Lower("user__username"))
    )
    if membership.is_admin:
        members = members.annotate(**_owned_count_columns(team))
    members = list(members)
    for member in members:
        member.shown_role = kept_roles.get(member.pk, member.role)
        member.error = row_errors.get(member.pk)
        if membership.is_admin:
            member.owned = describe_owned(
                {singular: getattr(member, f"owns_{singular}") for singular, *_ in OWNED_KINDS}
            )
    context = {
        "team": team,
        "membership": membership,
        "nav": "members",
        "members": members,
        "admin_count": sum(member.role == Role.ADMIN for member in members),
        "invitations": list(
            Invitation.objects.pending().filter(team=team).select_related("invited_by")
        ),
        "changes": [
            (activity, describe_change(activity))
            for activity in Activity.objects.in_team(team)
            .filter(object_type__in=["member", "invitation"])
            .select_related("actor")[:RECENT_CHANGES]
        ],
        "roles": Role.choices,
        "invite_form": invite_form or InviteForm(),
        "max_age_days": INVITATION_MAX_AGE.days,
    }
    template = "accounts/members.html"
    return render(request, f"{template}#members-panel" if request.htmx else template, context)


def _render_confirm(request, membership, *, title, text, action, button, error=None):
    """The no-JavaScript confirmation step before a destructive write (htmx uses hx-confirm)."""
    context = {
        "team": membership.team,
        "membership": membership,
        "nav": "members",
        "confirm": {
            "title": title,
            "text": text,
            "action": action,
            "button": button,
            "error": error,
        },
    }
    return render(request, "accounts/members.html", context)


def _done(request, membership, message: str, *, level=messages.SUCCESS):
    """After a write: the fresh panel for htmx, otherwise back to the page (post/redirect/get)."""
    messages.add_message(request, level, message)
    if request.htmx:
        return _render_page(request, membership)
    return redirect("members", team=membership.team.slug)


def _own_standing_changed(request, message: str, *, still_member: bool, team: Team):
    """The actor changed their own standing: the whole page (nav included) must change."""
    messages.success(request, message)
    if still_member:
        if request.htmx:
            return HttpResponseClientRefresh()
        return redirect("members", team=team.slug)
    if request.htmx:
        return HttpResponseClientRedirect(reverse("home"))
    return redirect("home")


@login_required
@require_GET
def members_page(request, team):
    membership = access_team(request.user, team)
    return _render_page(request, membership)


@login_required
@require_POST
def member_invite(request, team):
    membership = access_team(request.user, team, admin=True)
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            invitation, created = invite(
                membership.team, invited_by=request.user, **form.cleaned_data
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            # With no transaction around the view the mail has been tried by now.
            if invitation.sent_at is None:
                message = (
                    f"The invitation to {invitation.email} is saved, but the mail could not be "
                    "sent. Try “Resend” in a moment."
                )
                return _done(request, membership, message, level=messages.ERROR)
            verb = "Invitation sent" if created else "Invitation sent again"
            return _done(request, membership, f"{verb} to {invitation.email}.")
    return _render_page(request, membership, invite_form=form)


@login_required
@require_POST
def member_role(request, team, pk):
    membership = access_team(request.user, team, admin=True)
    target = get_object_or_404(
        Membership.objects.select_related("user"), pk=pk, team=membership.team
    )
    form = RoleForm(request.POST)
    if form.is_valid():
        role = form.cleaned_data["role"]
        try:
            changed = change_role(target, role, actor=request.user)
        except ValidationError as error:
            form.add_error("role", error)
        else:
            name = target.user.display_name
            if not changed:
                return _done(request, membership, f"{name} is already {Role(role).label}.")
            message = f"{name} is now {Role(role).label}."
            if target.user_id == request.user.pk:
                return _own_standing_changed(
                    request, message, still_member=True, team=membership.team
                )
            return _done(request, membership, message)
    return _render_page(
        request,
        membership,
        row_errors={target.pk: " ".join(form.errors["role"])},
        kept_roles={target.pk: request.POST.get("role", "")},
    )


@login_required
@require_http_methods(["GET", "POST"])
def member_remove(request, team, pk):
    membership = access_team(request.user, team, admin=True)
    target = get_object_or_404(
        Membership.objects.select_related("user"), pk=pk, team=membership.team
    )
    name, error = target.user.display_name, None
    if request.method == "POST":
        try:
            unassigned = describe_owned(remove_member(target, actor=request.user))
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            message = f"{name} was removed from {membership.team}."
            if unassigned:
                message += f" What they owned is now unassigned: {unassigned}."
            if target.user_id == request.user.pk:
                return _own_standing_changed(
                    request, message, still_member=False, team=membership.team
                )
            return _done(request, membership, message)
        if request.htmx:
            return _render_page(request, membership, row_errors={target.pk: error})
    owned = describe_owned(
        {kind: len(items) for kind, items in owned_in_team(membership.team, target.user).items()}
    )
    text = [f"{name} ({target.user.email or target.user.username}) will lose access to "
            f"{membership.team} and its plans."]  # fmt: skip
    if owned:
        text.append(
            f"They own {owned} in this team. Removing them leaves these without an owner "
            "(the items stay, and each change is logged) until you assign someone new."
        )
    if target.user_id == request.user.pk:
        text.append("This is you: you will no longer see this team.")
    return _render_confirm(
        request,
        membership,
        title=f"Remove {name} from {membership.team}?",
        text=text,
        action=reverse("member_remove", args=[membership.team.slug, target.pk]),
        button=f"Remove {name}",
        error=error,
    )


def _pending_invitation(membership, pk) -> Invitation:
    return get_object_or_404(
        Invitation.objects.pending().select_related("team", "invited_by"),
        pk=pk,
        team=membership.team,
    )


@login_required
@require_POST
def invitation_resend(request, team, pk):
    membership = access_team(request.user, team, admin=True)
    invitation = _pending_invitation(membership, pk)
    resend_invitation(invitation)
    if invitation.sent_at is None:
        message = f"The mail to {invitation.email} could not be sent. Try again in a moment."
        return _done(request, membership, message, level=messages.ERROR)
    return _done(request, membership, f"Invitation sent again to {invitation.email}.")


@login_required
@require_http_methods(["GET", "POST"])
def invitation_revoke(request, team, pk):
    membership = access_team(request.user, team, admin=True)
    invitation = _pending_invitation(membership, pk)
    if request.method == "POST":
        revoke_invitation(invitation, actor=request.user)
        return _done(request, membership, f"The invitation to {invitation.email} was revoked.")
    return _render_confirm(
        request,
        membership,
        title=f"Revoke the invitation to {invitation.email}?",
        text=["The link in the mail stops working. You can invite the address again later."],
        action=reverse("invitation_revoke", args=[membership.team.slug, invitation.pk]),
        button="Revoke invitation",
    )


# --- Accepting an invitation (/accounts/invitations/<token>/) --------------------------------


def _invitation_error(request, error: InvitationError):
    status = 404 if error.reason == InvitationError.INVALID else 410
    context = {"reason": error.reason, "invitation": error.invitation,
               "max_age_days": INVITATION_MAX_AGE.days}  # fmt: skip
    return render(request, "accounts/invitation_invalid.html", context, status=status)


@require_http_methods(["GET", "POST"])
def invitation_accept(request, token):
    """Join a team from a mailed link.

    Signed in with the invited address: confirm with a button (a POST, so mail scanners that
    follow links accept nothing). Signed in as someone else: say so. Not signed in, and an
    account uses the address: log in first and come back here. No account yet: a sign-up form
    that creates the account, the membership, and signs in.
    """
    try:
        invitation = Invitation.objects.from_token(token)
    except InvitationError as error:
        return _invitation_error(request, error)
    context = {"invitation": invitation, "invited_team": invitation.team}
    user = request.user
    if user.is_authenticated:
        if user.email.casefold() != invitation.email.casefold():
            return render(
                request,
                "accounts/invitation_accept.html",
                {**context, "wrong_account": True},
                status=403,
            )
        if request.method == "POST":
            try:
                _membership, created = accept_invitation(invitation, user)
            except InvitationError as error:
                return _invitation_error(request, error)
            if created:
                messages.success(request, f"Welcome to {invitation.team}.")
            else:
                messages.success(request, f"You are already a member of {invitation.team}.")
            return redirect("dashboard", team=invitation.team.slug)
        return render(request, "accounts/invitation_accept.html", context)

    if User.objects.filter(email__iexact=invitation.email).exists():
        messages.info(
            request,
            f"Log in as {invitation.email} to accept the invitation to {invitation.team}.",
        )
        return redirect_to_login(request.get_full_path())

    form = InvitationSignupForm(request.POST or None, email=invitation.email)
    if request.method == "POST" and form.is_valid():
        try:
            user = create_account_and_accept(invitation, form)
        except InvitationError as error:
            return _invitation_error(request, error)
        login(request, user)
        messages.success(request, f"Welcome to Milepost and to {invitation.team}.")
        return redirect("dashboard", team=invitation.team.slug)
    return render(request, "accounts/invitation_accept.html", {**context, "form": form})
