from django.conf import settings
from django.contrib.auth.models import AbstractUser, UserManager
from django.core.exceptions import PermissionDenied
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.http import Http404
from django.utils.text import slugify


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
    health_stale_update_days = models.PositiveSmallIntegerField(
        default=10, help_text="At risk when an in-progress milestone has no update for longer."
    )
    health_min_confidence = models.PositiveSmallIntegerField(
        default=50,
        validators=[MaxValueValidator(100)],
        help_text="At risk when the latest update's confidence is below this.",
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
