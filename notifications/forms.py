"""The preferences form (what the user receives, when, in which time zone, about which plans)
and the delivery log's digest-preview member choice."""

from itertools import groupby

from django import forms
from django.db import transaction

from notifications.models import NotificationPreferences
from notifications.preferences import ALERT_FIELDS, apply_choices, time_zone_names

HOUR_CHOICES = [(hour, f"{hour:02d}:00") for hour in range(24)]


class PreferencesForm(forms.ModelForm):
    """NotificationPreferences plus the user's time zone and the plans in their digest.

    `plans` are the open plans of the user's teams (with `team` loaded); a plan left unticked
    is muted. Mutes of plans not offered here (archived, or of a team the user left) are kept,
    so they still hold if the plan comes back.
    """

    digest_hour = forms.TypedChoiceField(
        label="Digest hour", choices=HOUR_CHOICES, coerce=int, help_text="In your time zone."
    )
    time_zone = forms.ChoiceField(
        label="Time zone",
        help_text="The digest hour and the times in e-mails follow it.",
    )
    included_plans = forms.TypedMultipleChoiceField(
        label="Include in my digest", coerce=int, required=False
    )

    class Meta:
        model = NotificationPreferences
        fields = [
            "digest_enabled",
            "digest_weekday",
            "digest_hour",
            "digest_when_empty",
            *ALERT_FIELDS,
        ]
        widgets = {"digest_when_empty": forms.RadioSelect}

    def __init__(self, *args, user, plans, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.plans = plans
        self.fields["time_zone"].choices = [(name, name) for name in time_zone_names()]
        self.fields["time_zone"].initial = user.time_zone
        self.fields["included_plans"].choices = [(plan.pk, plan.title) for plan in plans]
        muted = set()
        if self.instance.pk:
            muted = set(self.instance.muted_plans.values_list("pk", flat=True))
        self.fields["included_plans"].initial = [plan.pk for plan in plans if plan.pk not in muted]

    def plan_groups(self) -> list[tuple]:
        """[(team, [(plan, ticked), ...]), ...] for the template's per-team checkboxes."""
        ticked = {str(value) for value in self["included_plans"].value() or []}
        return [
            (team, [(plan, str(plan.pk) in ticked) for plan in plans])
            for team, plans in groupby(self.plans, key=lambda plan: plan.team)
        ]

    @transaction.atomic
    def save(self, commit=True):
        preferences = super().save()
        included = set(self.cleaned_data["included_plans"])
        offered = {plan.pk for plan in self.plans}
        apply_choices(
            self.user,
            preferences,
            mute=offered - included,
            unmute=offered & included,
            time_zone=self.cleaned_data["time_zone"],
        )
        return preferences


class PreviewMemberForm(forms.Form):
    """Whose digest the delivery log previews: a member of the team (given as `members`)."""

    member = forms.TypedChoiceField(label="Member", coerce=int)

    def __init__(self, *args, members, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["member"].choices = [
            (user.pk, f"{user.display_name} ({user.email or 'no e-mail address'})")
            for user in members
        ]
