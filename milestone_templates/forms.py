"""Forms of the template pages. They shape input; the models and services hold the rules."""

from django import forms

from milestone_templates.blueprints import Blueprint, Group
from milestone_templates.models import MilestoneTemplate
from milestones.forms import DATE, SHORT_TEXT, MemberChoiceField, team_members
from milestones.models import Milestone, Plan

# How many templates one plan can be built from in a single go.
MAX_STEPS = 8


def open_plans(team):
    return Plan.objects.filter(team=team).open().order_by("title", "pk")


def template_choices(blueprints: list[Blueprint]) -> list:
    """Grouped choices: built-in phases, sprint shapes, then the team's own templates."""
    grouped = {}
    for blueprint in blueprints:
        label = f"{blueprint.name} ({blueprint.duration_label})"
        grouped.setdefault(Group.LABELS[blueprint.group], []).append((blueprint.ref, label))
    return list(grouped.items())


class TemplateDetailsForm(forms.ModelForm):
    """Name and description of a team template (save as template, rename)."""

    class Meta:
        model = MilestoneTemplate
        fields = ["name", "description"]
        widgets = {"description": SHORT_TEXT}

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "template-%s")
        super().__init__(*args, **kwargs)
        self.fields["name"].widget.attrs["autofocus"] = True

    def _post_clean(self):
        # The whole row is validated by services.store_template, once the team and content
        # are set; validating the half-built instance here would report the wrong things.
        pass


class UseTemplateForm(forms.Form):
    plan = forms.ModelChoiceField(queryset=Plan.objects.none(), empty_label=None)
    title = forms.CharField(max_length=Milestone._meta.get_field("title").max_length)
    start_date = forms.DateField(
        widget=DATE, help_text="The target date is the start date plus the template's duration."
    )
    owner = MemberChoiceField(queryset=None, required=False, empty_label="— nobody —")

    def __init__(self, *args, team, **kwargs):
        kwargs.setdefault("auto_id", "use-%s")
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = open_plans(team)
        self.fields["owner"].queryset = team_members(team.pk)


class PlanFromTemplatesForm(forms.Form):
    """A sequence of templates and a start date, for a new or an existing plan."""

    plan = forms.ModelChoiceField(
        queryset=Plan.objects.none(),
        required=False,
        empty_label="— a new plan —",
        label="Add to",
    )
    plan_title = forms.CharField(
        label="New plan title",
        required=False,
        max_length=Plan._meta.get_field("title").max_length,
        help_text="Needed when you create a new plan.",
    )
    start_date = forms.DateField(widget=DATE, help_text="The first milestone starts on this day.")

    def __init__(self, *args, team, blueprints: list[Blueprint], **kwargs):
        kwargs.setdefault("auto_id", "build-%s")
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = open_plans(team)
        self.by_ref = {b.ref: b for b in blueprints}
        choices = [("", "—"), *template_choices(blueprints)]
        for number in range(1, MAX_STEPS + 1):
            self.fields[f"step_{number}"] = forms.ChoiceField(
                label=f"Milestone {number}", choices=choices, required=False
            )

    @property
    def step_fields(self):
        return [self[f"step_{number}"] for number in range(1, MAX_STEPS + 1)]

    def clean(self):
        cleaned = super().clean()
        refs = [cleaned.get(f"step_{n}") for n in range(1, MAX_STEPS + 1)]
        cleaned["blueprints"] = [self.by_ref[ref] for ref in refs if ref]
        if not cleaned["blueprints"] and not self.has_error("step_1"):
            self.add_error("step_1", "Pick at least one template.")
        if not cleaned.get("plan") and not (cleaned.get("plan_title") or "").strip():
            self.add_error("plan_title", "Give the new plan a title, or pick an existing plan.")
        return cleaned
