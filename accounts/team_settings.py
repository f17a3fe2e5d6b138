"""Team settings (/t/<team>/settings/): name, key prefix, health thresholds and the default
sign-off roles of new milestones. Team admins edit; everyone else reads."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.models import Team, access_team
from milestones.models import Activity

SETTINGS_FIELDS = [
    "name",
    "milestone_key_prefix",
    "health_slip_days",
    "health_behind_points",
    "health_risk_score",
    "health_signoff_days",
    "health_stale_update_days",
    "health_min_confidence",
    "status_update_cadence_days",
]


class RoleNamesField(forms.CharField):
    """The default sign-off roles, one per line."""

    widget = forms.Textarea(attrs={"rows": 4})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        text = super().to_python(value) or ""
        return [line.strip() for line in text.splitlines() if line.strip()]


class TeamSettingsForm(forms.ModelForm):
    signoff_roles = RoleNamesField(
        label="Default sign-off roles",
        required=False,
        help_text="One per line. New milestones get these roles; existing ones keep theirs. "
        "Leave empty for no sign-off by default.",
    )

    class Meta:
        model = Team
        fields = [*SETTINGS_FIELDS, "signoff_roles"]


@login_required
@require_http_methods(["GET", "POST"])
def team_settings(request, team):
    membership = access_team(request.user, team)
    team_obj = membership.team
    if request.method == "POST":
        membership = access_team(request.user, team, admin=True)
        with transaction.atomic():
            current = Team.objects.select_for_update().get(pk=team_obj.pk)
            before = {name: getattr(current, name) for name in TeamSettingsForm.Meta.fields}
            form = TeamSettingsForm(request.POST, instance=current)
            if form.is_valid():
                try:
                    saved = form.save()
                except ValidationError as error:
                    form.add_error(None, error)
                else:
                    changes = {
                        name: [before[name], getattr(saved, name)] for name in form.changed_data
                    }
                    Activity.objects.create(
                        team=saved, actor=request.user, verb="updated", object_type="team",
                        object_id=saved.pk, object_repr=saved.name[:200], changes=changes,
                    )  # fmt: skip
                    messages.success(request, "Team settings saved.")
                    return redirect("team_settings", team=saved.slug)
    else:
        form = TeamSettingsForm(instance=team_obj)
    if not membership.is_admin:
        for field in form.fields.values():
            field.disabled = True
    context = {"team": team_obj, "membership": membership, "form": form, "nav": "settings"}
    return render(request, "accounts/team_settings.html", context)
