import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify


def zone_of(name: str) -> ZoneInfo:
    """The time zone called `name` (a user's `time_zone`), or the site's when the name is
    empty or unknown."""
    try:
        return ZoneInfo(name or settings.TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings.TIME_ZONE)


class MilepostUserManager(UserManager):
    def get_by_login(self, login: str):
        """The user whose username or e-mail address is `login` (case-insensitive)."""
        login = login.strip()
        by_username = self.filter(username__iexact=login).first()
        if by_username is not None or "@" not in login:
            return by_username or self.get(username__iexact=login)
        return self.get(email__iexact=login)


class User(AbstractUser):
    """A person who signs in. E-mail addresses are unique so they can be used to log in."""

    email = models.EmailField("e-mail address", blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    last_team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = MilepostUserManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                condition=~models.Q(email=""),
                name="user_email_unique_ci",
                violation_error_message="A user with this e-mail address already exists.",
            ),
            models.UniqueConstraint(Lower("username"), name="user_username_unique_ci"),
        ]

    def __str__(self):
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username


class TeamQuerySet(models.QuerySet):
    def visible_to(self, user):
        if not user.is_authenticated:
            return self.none()
        return self.filter(memberships__user=user)


def default_signoff_roles() -> list[str]:
    return ["Tech lead", "Product owner", "Operations lead"]


def validate_role_names(value):
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise ValidationError("Give the sign-off roles as a list of names.")
    names = [name.strip() for name in value]
    if any(not name or len(name) > 60 for name in names):
        raise ValidationError("Each sign-off role needs a name of at most 60 characters.")
    if len({name.casefold() for name in names}) != len(names):
        raise ValidationError("Each sign-off role may appear only once.")


class Team(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    milestone_key_prefix = models.CharField(
        max_length=8,
        default="MLS",
        help_text="Upper-case letters that start every milestone key, e.g. MLS in MLS-001.",
    )
    # Counters behind generated keys; only ever advanced with the team row locked.
    milestone_sequence = models.PositiveIntegerField(default=0, editable=False)
    plan_sequence = models.PositiveIntegerField(default=0, editable=False)
    # Health thresholds (see milestones/health.py and the README for what each one means).
    health_slip_days = models.PositiveSmallIntegerField(
        default=5, help_text="Off track when the forecast finish is this many days past target."
    )
    health_behind_points = models.PositiveSmallIntegerField(
        default=20,
        validators=[MaxValueValidator(100)],
        help_text="At risk when progress trails elapsed time by more than this many points.",
    )
    health_risk_score = models.PositiveSmallIntegerField(
        default=6,
        validators=[MinValueValidator(1), MaxValueValidator(9)],
        help_text="Open risks scoring at least this (likelihood × impact, 1–9) need a mitigation.",
    )
    health_signoff_days = models.PositiveSmallIntegerField(
        default=7, help_text="At risk when sign-offs are missing this close to the target date."
    )
    status_update_cadence_days = models.PositiveSmallIntegerField(
        "status update cadence (days)",
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(90)],
        help_text="Owners of in-progress milestones are reminded when their last update is older.",
    )
    health_stale_update_days = models.PositiveSmallIntegerField(
        default=10, help_text="At risk when an in-progress milestone has no update for longer."
    )
    health_min_confidence = models.PositiveSmallIntegerField(
        default=50,
        validators=[MaxValueValidator(100)],
        help_text="At risk when the latest update's confidence is below this.",
    )
    signoff_roles = models.JSONField(
        "default sign-off roles",
        default=default_signoff_roles,
        blank=True,
        validators=[validate_role_names],
        help_text="The roles every new milestone must be signed off by, in order.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TeamQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(milestone_key_prefix__regex=r"^[A-Z][A-Z0-9]{0,7}$"),
                name="team_key_prefix_format",
                violation_error_message="The key prefix must be 1–8 upper-case letters or digits.",
            )
        ]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = slugify(self.name)[:60] or "team"
        super().save(*args, **kwargs)

    def role_of(self, user) -> str | None:
        membership = self.memberships.filter(user=user).only("role").first()
        return membership.role if membership else None


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


WRITE_ROLES = (Role.ADMIN, Role.MEMBER)


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team__name", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="membership_unique"),
            models.CheckConstraint(
                condition=models.Q(role__in=Role.values), name="membership_role_valid"
            ),
        ]

    def __str__(self):
        return f"{self.user} in {self.team} ({self.get_role_display()})"

    @property
    def can_write(self) -> bool:
        return self.role in WRITE_ROLES

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


def access_team(user, slug: str, *, for_write: bool = False, admin: bool = False) -> Membership:
    """The user's membership of the team `slug`.

    A user who is not a member gets 404, so the team's existence is not revealed; a member
    without the needed role gets 403.
    """
    if not user.is_authenticated:
        raise Http404("No such team.")
    membership = (
        Membership.objects.select_related("team").filter(user=user, team__slug=slug).first()
    )
    if membership is None:
        raise Http404("No such team.")
    if admin and not membership.is_admin:
        raise PermissionDenied("Only team admins can do this.")
    if for_write and not membership.can_write:
        raise PermissionDenied("Viewers can look but not change anything.")
    return membership


# --- Invitations ---------------------------------------------------------------------------

# An invitation link works for this long after it was mailed; re-sending mails a fresh link.
INVITATION_MAX_AGE = datetime.timedelta(days=14)
INVITATION_SALT = "accounts.invitation"


class InvitationError(Exception):
    """An invitation link that cannot be used; `reason` says why, for the error page."""

    INVALID, EXPIRED, REVOKED, USED = "invalid", "expired", "revoked", "used"

    def __init__(self, reason: str, invitation: "Invitation | None" = None):
        super().__init__(reason)
        self.reason = reason
        self.invitation = invitation


class InvitationQuerySet(models.QuerySet):
    def pending(self):
        """Neither accepted nor revoked (an expired link is still pending: it can be re-sent)."""
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True)

    def for_email(self, email: str):
        return self.filter(email__iexact=email.strip())

    def from_token(self, token: str) -> "Invitation":
        """The pending invitation a mailed link stands for, or InvitationError saying why not."""
        try:
            pk = signing.loads(
                token, salt=INVITATION_SALT, max_age=INVITATION_MAX_AGE.total_seconds()
            )
        except signing.SignatureExpired:
            reason = InvitationError.EXPIRED
            pk = _unverified_pk(token)
            invitation = self.select_related("team").filter(pk=pk).first() if pk else None
            if invitation and not invitation.is_pending:
                reason = invitation.state  # "used" or "revoked" says more than "expired"
            raise InvitationError(reason, invitation) from None
        except signing.BadSignature:
            raise InvitationError(InvitationError.INVALID) from None
        invitation = (
            self.select_related("team", "invited_by").filter(pk=pk).first()
            if isinstance(pk, int)
            else None
        )
        if invitation is None:
            raise InvitationError(InvitationError.INVALID)
        if not invitation.is_pending:
            raise InvitationError(invitation.state, invitation)
        return invitation


def _unverified_pk(token: str) -> int | None:
    """The id inside a correctly signed but expired token (only used to word the error)."""
    try:
        pk = signing.loads(token, salt=INVITATION_SALT)
    except signing.BadSignature:
        return None
    return pk if isinstance(pk, int) else None


class Invitation(models.Model):
    """An e-mail address asked to join a team with a role, by a signed link that is mailed.

    Pending until it is accepted (which creates the membership) or revoked. At most one pending
    invitation per team and address: inviting the address again updates and re-sends that one.
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField("e-mail address")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # When the latest mail went out; None while it has not (yet) been sent successfully.
    sent_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                "team",
                Lower("email"),
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_pending_per_email",
                violation_error_message="This address already has a pending invitation.",
            ),
            models.CheckConstraint(
                condition=models.Q(role__in=Role.values), name="invitation_role_valid"
            ),
        ]

    def __str__(self):
        return f"{self.email} to {self.team} ({self.get_role_display()})"

    def clean(self):
        if self.is_pending and self.team_id and self.email:
            members = Membership.objects.filter(
                team_id=self.team_id, user__email__iexact=self.email
            )
            if members.exists():
                raise ValidationError({"email": f"{self.email} is already a member of this team."})

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None

    @property
    def state(self) -> str:
        if self.accepted_at:
            return InvitationError.USED
        if self.revoked_at:
            return InvitationError.REVOKED
        return "expired" if self.is_expired else "pending"

    @property
    def expires_at(self) -> datetime.datetime | None:
        return self.sent_at + INVITATION_MAX_AGE if self.sent_at else None

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    def make_token(self) -> str:
        """A signed, timestamped token carrying this invitation's id (see INVITATION_MAX_AGE)."""
        return signing.dumps(self.pk, salt=INVITATION_SALT)

    def accept_url(self, token: str) -> str:
        """The absolute link for the mail (links in mails use settings.SITE_URL)."""
        path = reverse("accounts:invitation_accept", kwargs={"token": token})
        return settings.SITE_URL.rstrip("/") + path
