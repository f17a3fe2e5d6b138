from django import forms

from accounts.models import Membership
from feeds.models import FeedKind, FeedToken
from milestones.models import Plan

ALREADY = (
    "You already have a feed of {title}: it is listed above. Regenerate it if you lost its address."
)


class NewFeedForm(forms.Form):
    """Pick what a new feed shows: my milestones, a team of mine, or a plan in one.

    The choices are built from the user's memberships, so a team or plan the user cannot see
    is not a valid choice (and looks exactly like one that does not exist).
    """

    target = forms.ChoiceField(label="What the feed shows")

    def __init__(self, user, *args, existing: list[FeedToken] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.existing = {(f.kind, f.team_id, f.plan_id) for f in existing}
        memberships = Membership.objects.filter(user=user).select_related("team")
        plans = Plan.objects.visible_to(user).open().order_by("key")
        self.teams = {f"team:{m.team.pk}": m.team for m in memberships}
        self.plans = {f"plan:{p.pk}": p for p in plans}
        choices = [(FeedKind.USER.value, "My milestones, in every team I belong to")]
        for value, team in self.teams.items():
            group = [(value, f"Every milestone of {team.name}")]
            group += [
                (key, f"Plan {plan.key} {plan.title}")
                for key, plan in self.plans.items()
                if plan.team_id == team.pk
            ]
            choices.append((team.name, group))
        self.fields["target"].choices = choices

    def clean_target(self) -> dict:
        value = self.cleaned_data["target"]
        if value in self.teams:
            target = {"kind": FeedKind.TEAM, "team": self.teams[value], "plan": None}
        elif value in self.plans:
            plan = self.plans[value]
            target = {"kind": FeedKind.PLAN, "team": plan.team, "plan": plan}
        else:
            target = {"kind": FeedKind.USER, "team": None, "plan": None}
        team_id = target["team"].pk if target["team"] else None
        plan_id = target["plan"].pk if target["plan"] else None
        if (target["kind"], team_id, plan_id) in self.existing:
            preview = FeedToken(user=self.user, **target)
            raise forms.ValidationError(ALREADY.format(title=preview.title), code="exists")
        return target
