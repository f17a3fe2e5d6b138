"""Forms of the workspace pages.

Forms only shape input: the rules live on the models (`clean()`, constraints) and run again
when the services save. Owner fields offer the team's members only.
"""

import json
from decimal import Decimal

from django import forms
from django.db import models

from accounts.models import User
from milestones.models import (
    Blocker,
    Criterion,
    Deliverable,
    Milestone,
    Plan,
    Risk,
    SignoffOutcome,
    Stakeholder,
    StatusUpdate,
)

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
SHORT_TEXT = forms.Textarea(attrs={"rows": 3})
LONG_TEXT = forms.Textarea(attrs={"rows": 8})


def team_members(team_id: int):
    return User.objects.filter(memberships__team_id=team_id).order_by("first_name", "username")


def as_text(value) -> str:
    """One spelling per value, so stored and submitted values compare equal when they are."""
    if value is None:
        return ""
    if isinstance(value, models.Model):
        return str(value.pk)
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


class MemberChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.display_name


class WorkspaceForm(forms.ModelForm):
    """A model form scoped to a team, whose element ids carry a prefix (many forms per page).

    `original` holds the values the editor started from, so a save after someone else's save
    can tell whether the two touched the same fields (see views.common.conflicting_fields).
    """

    version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    original = forms.CharField(widget=forms.HiddenInput, required=False)
    owner_fields = ("owner",)

    def __init__(self, *args, team_id: int, id_prefix: str = "", **kwargs):
        kwargs.setdefault("auto_id", f"{id_prefix or self._meta.model._meta.model_name}-%s")
        super().__init__(*args, **kwargs)
        self.team_id = team_id
        self.extra_kwargs = {}
        for name in self.owner_fields:
            if name in self.fields:
                self.fields[name] = MemberChoiceField(
                    queryset=team_members(team_id),
                    required=False,
                    label=self.fields[name].label,
                    empty_label="— nobody —",
                )
        self.autofocus()
        if self.instance.pk and not self.is_bound:
            self.initial["version"] = getattr(self.instance, "version", None)
            self.initial["original"] = json.dumps(self.snapshot(self.instance))

    def autofocus(self):
        """Put the cursor in the first field with an error, else the first field."""
        names = [name for name in self.editable_names if not self.fields[name].widget.is_hidden]
        erroneous = [name for name in names if self.is_bound and name in self._errors_or_empty()]
        target = (erroneous or names or [None])[0]
        for name in names:
            self.fields[name].widget.attrs.pop("autofocus", None)
        if target:
            self.fields[target].widget.attrs["autofocus"] = True

    def _errors_or_empty(self):
        return self._errors or {}

    def full_clean(self):
        super().full_clean()
        self.autofocus()

    def add_error(self, field, error):
        super().add_error(field, error)
        self.autofocus()

    @property
    def editable_names(self) -> list[str]:
        return [name for name in self.fields if name not in ("version", "original")]

    def snapshot(self, obj) -> dict[str, str]:
        """The editable fields of `obj` as strings, comparable across requests."""
        return {
            name: as_text(obj._meta.get_field(name).value_from_object(obj))
            for name in self.editable_names
        }

    def submitted(self) -> dict[str, str]:
        """The cleaned input in the same string form as `snapshot`."""
        return {name: as_text(self.cleaned_data.get(name)) for name in self.editable_names}

    def changes(self) -> dict:
        """The cleaned values of the editable fields, for services.update_object."""
        return {name: self.cleaned_data[name] for name in self.editable_names}

    def original_values(self) -> dict[str, str] | None:
        try:
            original = json.loads(self.data.get(self.add_prefix("original")) or "null")
        except ValueError:
            return None
        return original if isinstance(original, dict) else None

    def _post_clean(self):
        # The services run full_clean when saving; running it here against the form's own
        # copy would need the other owners (team, milestone) set first. Field-level
        # validation still happens in the form's clean_* and field validators.
        pass


class PlanForm(WorkspaceForm):
    class Meta:
        model = Plan
        fields = ["title", "summary", "owner", "status", "start_date", "target_date"]
        widgets = {"summary": LONG_TEXT, "start_date": DATE, "target_date": DATE}
        help_texts = {"summary": "Markdown: **bold**, lists, links, tables."}


class MilestoneCreateForm(WorkspaceForm):
    class Meta:
        model = Milestone
        fields = ["plan", "title", "owner", "priority", "start_date", "target_date", "summary"]
        widgets = {"summary": SHORT_TEXT, "start_date": DATE, "target_date": DATE}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = Plan.objects.filter(team_id=self.team_id).open()
        self.fields["plan"].empty_label = None


class MilestoneMetaForm(WorkspaceForm):
    class Meta:
        model = Milestone
        fields = [
            "title",
            "plan",
            "owner",
            "owning_group",
            "priority",
            "status",
            "start_date",
            "target_date",
            "estimated_effort",
        ]
        widgets = {"start_date": DATE, "target_date": DATE}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = Plan.objects.filter(team_id=self.team_id)
        self.fields["plan"].empty_label = None


class MilestoneSummaryForm(WorkspaceForm):
    class Meta:
        model = Milestone
        fields = ["summary"]
        widgets = {"summary": LONG_TEXT}
        help_texts = {"summary": "Markdown: **bold**, lists, links, tables."}


class MilestoneRollbackForm(WorkspaceForm):
    class Meta:
        model = Milestone
        fields = ["rollback_plan"]
        widgets = {"rollback_plan": LONG_TEXT}
        help_texts = {"rollback_plan": "Markdown. How to undo this milestone if it goes wrong."}


class MilestoneRetroForm(WorkspaceForm):
    class Meta:
        model = Milestone
        fields = ["retro_went_well", "retro_went_badly", "retro_actions", "retro_learnings"]
        widgets = dict.fromkeys(fields, SHORT_TEXT)


class DeliverableForm(WorkspaceForm):
    class Meta:
        model = Deliverable
        fields = ["title", "description", "owner", "owner_label", "status", "target_date"]
        widgets = {"description": SHORT_TEXT, "target_date": DATE}
        labels = {"owner_label": "Or an owner outside the team"}


class CriterionForm(WorkspaceForm):
    """Acceptance criteria use text and the measure; success criteria add category and level."""

    class Meta:
        model = Criterion
        fields = [
            "text", "category", "level", "comparator", "target", "unit", "actual", "description",
        ]  # fmt: skip
        widgets = {"description": SHORT_TEXT}
        labels = {"text": "Criterion", "comparator": "Measured: comparator"}
        help_texts = {"target": "Leave the measure empty for a criterion you tick off."}

    def __init__(self, *args, kind: str = "success", **kwargs):
        super().__init__(*args, **kwargs)
        self.extra_kwargs = {"kind": kind}
        if kind != "success":
            del self.fields["category"]
            del self.fields["level"]
        self.fields["comparator"].required = False


class RiskForm(WorkspaceForm):
    class Meta:
        model = Risk
        fields = [
            "title",
            "likelihood",
            "impact",
            "mitigation",
            "fallback",
            "owner",
            "owner_label",
            "status",
            "description",
        ]
        widgets = {"mitigation": SHORT_TEXT, "fallback": SHORT_TEXT, "description": SHORT_TEXT}
        labels = {"owner_label": "Or an owner outside the team"}


class BlockerForm(WorkspaceForm):
    class Meta:
        model = Blocker
        fields = [
            "title", "description", "impact", "owner", "owner_label", "next_action", "priority",
            "target_resolution_date",
        ]  # fmt: skip
        widgets = {"description": SHORT_TEXT, "impact": SHORT_TEXT, "target_resolution_date": DATE}
        labels = {"owner_label": "Or an owner outside the team"}


class BlockerResolveForm(WorkspaceForm):
    class Meta:
        model = Blocker
        fields = ["resolved_on", "resolution"]
        widgets = {"resolved_on": DATE, "resolution": SHORT_TEXT}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["resolved_on"].required = True
        self.fields["resolution"].required = True


class StakeholderForm(WorkspaceForm):
    owner_fields = ("user",)

    class Meta:
        model = Stakeholder
        fields = [
            "user", "name", "email", "channel", "frequency", "content",
            "gets_digest", "gets_alerts", "gets_completion",
        ]  # fmt: skip
        labels = {"user": "Member", "content": "What they get"}
        help_texts = {
            "gets_digest": "Milepost e-mails them this plan's weekly digest.",
            "gets_alerts": "Milepost e-mails them when a milestone of this plan gets worse.",
            "gets_completion": "Milepost e-mails them when a milestone of this plan completes.",
        }


class StatusUpdateForm(WorkspaceForm):
    class Meta:
        model = StatusUpdate
        fields = ["health", "percent_complete", "confidence", "narrative", "next_update_on"]
        widgets = {
            "narrative": SHORT_TEXT,
            "next_update_on": DATE,
            "percent_complete": forms.NumberInput(attrs={"min": 0, "max": 100}),
            "confidence": forms.NumberInput(attrs={"min": 0, "max": 100}),
        }
        labels = {"health": "Your view of its health"}
        help_texts = {"narrative": "Markdown. What moved, what is next, what worries you."}


class DependencyForm(forms.Form):
    DIRECTIONS = [
        ("predecessor", "must finish before this one starts"),
        ("successor", "cannot start until this one finishes"),
    ]
    other = forms.CharField(label="Milestone key", max_length=16)
    direction = forms.ChoiceField(choices=DIRECTIONS, initial="predecessor")
    lag_days = forms.IntegerField(label="Lag (days)", min_value=0, max_value=365, initial=0)

    def __init__(self, *args, team_id: int, **kwargs):
        kwargs.setdefault("auto_id", "dependency-%s")
        super().__init__(*args, **kwargs)
        self.team_id = team_id

    def clean_other(self):
        key = self.cleaned_data["other"].strip().upper()
        milestone = Milestone.objects.filter(team_id=self.team_id, key=key).first()
        if milestone is None:
            raise forms.ValidationError(f"No milestone {key} in this team.")
        return milestone


# --- Sign-offs ------------------------------------------------------------------------------

DECISION_CHOICES = [
    ("approve", "Approve"),
    ("approve_with_exceptions", "Approve with exceptions"),
    ("request_changes", "Request changes"),
    ("reject", "Reject"),
]
# What each choice records: (outcome, with_exceptions).
DECISION_MEANING = {
    "approve": (SignoffOutcome.APPROVED, False),
    "approve_with_exceptions": (SignoffOutcome.APPROVED, True),
    "request_changes": (SignoffOutcome.CHANGES_REQUESTED, False),
    "reject": (SignoffOutcome.REJECTED, False),
}


class SignoffDecisionForm(forms.Form):
    """A holder's decision. Submitted twice: once to review, once with `confirmed` to record."""

    decision = forms.ChoiceField(choices=DECISION_CHOICES, widget=forms.RadioSelect)
    comment = forms.CharField(
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required to request changes or reject; with exceptions, name them here.",
    )
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, id_prefix: str, **kwargs):
        kwargs.setdefault("auto_id", f"{id_prefix}-%s")
        super().__init__(*args, **kwargs)

    @property
    def meaning(self) -> tuple[str, bool]:
        return DECISION_MEANING[self.cleaned_data["decision"]]

    @property
    def decision_label(self) -> str:
        return dict(DECISION_CHOICES)[self.cleaned_data["decision"]]


class SignoffHolderForm(forms.Form):
    holder = MemberChoiceField(queryset=User.objects.none(), required=False, empty_label="Nobody")

    def __init__(self, *args, team_id: int, id_prefix: str, **kwargs):
        kwargs.setdefault("auto_id", f"{id_prefix}-%s")
        super().__init__(*args, **kwargs)
        self.fields["holder"].queryset = team_members(team_id)


class SignoffRoleForm(SignoffHolderForm):
    name = forms.CharField(label="Role", max_length=60)

    field_order = ["name", "holder"]
