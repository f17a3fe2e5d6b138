"""Spec check: the spec guide's validator rules and a completeness score.

The same rules run on a markdown file (`manage.py validate_spec`, `check_completeness`, the
import preview) and on a live milestone (its page, the plan page, the API), because both are
first turned into a `specs.document.MilestoneDoc`. Lists that cannot afford to load every
milestone's items use `annotate_spec_counts()` and get the same score from counts.

Score (0–100, rounded down): each rule group below has a weight; a yes/no group earns its weight
when it holds, a per-item group earns weight × the share of its items that pass. The weights
add up to 100, so a spec with no findings scores 100.

| group | weight | earns its weight when |
|---|---|---|
| target date | 10 | the milestone has one |
| owner | 10 | the milestone names an owner (a member or an owning group) |
| rollback plan | 10 | the rollback plan is written |
| success criteria | 10 | there is at least one |
| must-level criterion | 5 | at least one success criterion is must-level |
| deliverables | 5 | there is at least one |
| acceptance criteria | 15 | × share of deliverables with acceptance criteria (0 if none) |
| deliverable owners | 10 | × share of deliverables with an owner (0 without deliverables) |
| measured targets | 5 | × share of measured criteria with a readable target (all, when none) |
| risks identified | 5 | at least one risk is recorded |
| risk mitigations | 5 | × share of risks not closed that have a mitigation (all, when none) |
| sign-off holders | 5 | × share of sign-off roles with a holder (0 without roles) |
| blocker details | 5 | × share of open blockers with an owner and a target date (all, if none) |
"""

import functools
from dataclasses import dataclass, field
from fractions import Fraction

from django.db.models import Exists, OuterRef, Q

from specs.document import ERROR, WARNING, MilestoneDoc


@dataclass(frozen=True)
class Rule:
    code: str
    severity: str
    group: str
    message: str  # what is wrong and how to fix it; {what} names the object


RULES = {
    rule.code: rule
    for rule in [
        Rule(
            "missing_target_date",
            ERROR,
            "target_date",
            "The milestone has no target date. Add a “**Target Date**: January 28, 2024” line.",
        ),
        Rule(
            "missing_owner",
            ERROR,
            "owner",
            "The milestone has no owner. Add an “**Owner**:” line naming a person or team.",
        ),
        Rule(
            "missing_rollback_plan",
            ERROR,
            "rollback_plan",
            "Rollback plan missing. Add a “Rollback Plan” section saying how you would undo "
            "this milestone if it fails.",
        ),
        Rule(
            "no_success_criteria",
            ERROR,
            "success_criteria",
            "No success criteria defined. Add technical, operational and quality criteria as "
            "a checklist under “Success Criteria”.",
        ),
        Rule(
            "no_must_criteria",
            WARNING,
            "must_criterion",
            "No success criterion is must-level. Mark the ones that must pass, e.g. "
            "“### Technical Criteria (Must Pass)”.",
        ),
        Rule(
            "no_deliverables",
            ERROR,
            "deliverables",
            "The milestone lists no deliverables. Add them under “Deliverables”, one heading each.",
        ),
        Rule(
            "deliverable_without_acceptance_criteria",
            ERROR,
            "acceptance_criteria",
            "{what} lacks acceptance criteria. Add specific, testable criteria as a checklist.",
        ),
        Rule(
            "deliverable_without_owner",
            ERROR,
            "deliverable_owners",
            "{what} has no owner. Assign it to a specific person or team.",
        ),
        Rule(
            "measured_criterion_without_target",
            ERROR,
            "measured_targets",
            "{what} is measured but has no target. Write it as “(target: >= 10 jobs/s)”.",
        ),
        Rule(
            "no_risks",
            WARNING,
            "risks",
            "No risks identified. List what could prevent delivery, with likelihood, impact "
            "and mitigation.",
        ),
        Rule(
            "risk_without_mitigation",
            WARNING,
            "risk_mitigations",
            "{what} has no mitigation. Say how you will reduce it.",
        ),
        Rule(
            "no_signoff_roles",
            WARNING,
            "signoff_holders",
            "Nobody is named to sign the milestone off. Add sign-off roles with their holders, "
            "e.g. “- **Tech lead**: alice”.",
        ),
        Rule(
            "signoff_role_without_holder",
            WARNING,
            "signoff_holders",
            "{what} has no holder. Name the person who signs off for this role.",
        ),
        Rule(
            "blocker_without_owner",
            WARNING,
            "blocker_details",
            "{what} has no owner. Name who is resolving it.",
        ),
        Rule(
            "blocker_without_target_date",
            WARNING,
            "blocker_details",
            "{what} has no target resolution date. Say when it should be resolved.",
        ),
    ]
}

WEIGHTS = {
    "target_date": 10,
    "owner": 10,
    "rollback_plan": 10,
    "success_criteria": 10,
    "must_criterion": 5,
    "deliverables": 5,
    "acceptance_criteria": 15,
    "deliverable_owners": 10,
    "measured_targets": 5,
    "risks": 5,
    "risk_mitigations": 5,
    "signoff_holders": 5,
    "blocker_details": 5,
}
assert sum(WEIGHTS.values()) == 100

# Where each kind of finding is fixed on the milestone page.
ANCHORS = {
    "target_date": "meta",
    "owner": "meta",
    "rollback_plan": "rollback",
    "success_criteria": "success",
    "must_criterion": "success",
    "deliverables": "deliverables",
    "acceptance_criteria": "deliverables",
    "deliverable_owners": "deliverables",
    "measured_targets": "success",
    "risks": "risks",
    "risk_mitigations": "risks",
    "signoff_holders": "signoffs",
    "blocker_details": "blockers",
}


@dataclass
class Finding:
    code: str
    severity: str
    message: str
    line: int | None = None
    ref: str = ""  # "deliverable 12": the live object, when checking a live milestone
    milestone: str = ""  # which milestone of a plan document

    @property
    def anchor(self) -> str:
        return ANCHORS[RULES[self.code].group]

    @property
    def where(self) -> str:
        if self.line:
            return f"line {self.line}"
        return self.ref

    def as_dict(self) -> dict:
        data = {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "line": self.line,
        }
        if self.ref:
            data["object"] = self.ref
        if self.milestone:
            data["milestone"] = self.milestone
        return data


@dataclass
class CheckResult:
    score: int
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]

    @property
    def gaps(self) -> list[dict]:
        """Findings counted by rule, in rule order (the summary the plan page and API show)."""
        counts: dict[str, int] = {}
        for finding in self.findings:
            counts[finding.code] = counts.get(finding.code, 0) + 1
        return [gap(code, counts[code]) for code in RULES if code in counts]

    def summary(self) -> dict:
        return summary(self.score, self.gaps)


GAP_PHRASES = {
    "deliverable_without_acceptance_criteria": (
        "deliverable lacks acceptance criteria",
        "deliverables lack acceptance criteria",
    ),
    "deliverable_without_owner": ("deliverable has no owner", "deliverables have no owner"),
    "measured_criterion_without_target": (
        "measured criterion has no target",
        "measured criteria have no target",
    ),
    "risk_without_mitigation": ("risk has no mitigation", "risks have no mitigation"),
    "signoff_role_without_holder": ("sign-off role has no holder", "sign-off roles have no holder"),
    "blocker_without_owner": ("open blocker has no owner", "open blockers have no owner"),
    "blocker_without_target_date": (
        "open blocker has no target date",
        "open blockers have no target date",
    ),
}


def gap(code: str, count: int) -> dict:
    rule = RULES[code]
    if code in GAP_PHRASES:
        one, many = GAP_PHRASES[code]
        message = f"{count} {one if count == 1 else many}"
    else:
        message = rule.message
    return {"code": code, "severity": rule.severity, "count": count, "message": message}


def summary(score: int, gaps: list[dict]) -> dict:
    return {
        "score": score,
        "errors": sum(g["count"] for g in gaps if g["severity"] == ERROR),
        "warnings": sum(g["count"] for g in gaps if g["severity"] == WARNING),
        "gaps": gaps,
    }


# --- The rules on a document -----------------------------------------------------------------


def _share(passed: int, total: int, *, empty: Fraction) -> Fraction:
    return Fraction(passed, total) if total else empty


def score_from_counts(counts: dict) -> int:
    """The score from the counts every check path produces (see the module docstring)."""
    deliverables = counts["deliverables"]
    shares = {
        "target_date": Fraction(int(counts["has_target_date"])),
        "owner": Fraction(int(counts["has_owner"])),
        "rollback_plan": Fraction(int(counts["has_rollback_plan"])),
        "success_criteria": Fraction(int(counts["success"] > 0)),
        "must_criterion": Fraction(int(counts["must"] > 0)),
        "deliverables": Fraction(int(deliverables > 0)),
        "acceptance_criteria": _share(
            counts["deliverables_with_criteria"], deliverables, empty=Fraction(0)
        ),
        "deliverable_owners": _share(counts["deliverables_owned"], deliverables, empty=Fraction(0)),
        "measured_targets": _share(
            counts["measured"] - counts["measured_without_target"],
            counts["measured"],
            empty=Fraction(1),
        ),
        "risks": Fraction(int(counts["risks"] > 0)),
        "risk_mitigations": _share(
            counts["risks_open_mitigated"], counts["risks_open"], empty=Fraction(1)
        ),
        "signoff_holders": _share(counts["roles_held"], counts["roles"], empty=Fraction(0)),
        "blocker_details": _share(
            counts["blockers_open_complete"], counts["blockers_open"], empty=Fraction(1)
        ),
    }
    total = sum(WEIGHTS[group] * share for group, share in shares.items())
    return int(total)  # the weights add up to 100: floor of the weighted sum


def _is_measured_without_target(criterion) -> bool:
    return bool(criterion.measure_problem) or (
        criterion.target is None
        and bool(criterion.comparator or criterion.unit or criterion.actual is not None)
    )


def check_milestone(doc: MilestoneDoc) -> CheckResult:
    """Every rule on one milestone document (from a file or from a live milestone)."""
    findings: list[Finding] = []

    def add(code, *, what="", line=None, ref=""):
        rule = RULES[code]
        findings.append(
            Finding(code, rule.severity, rule.message.format(what=what), line=line, ref=ref)
        )

    if doc.target_date is None:
        add("missing_target_date", line=doc.field_lines.get("target_date", doc.line))
    if not doc.owner:
        add("missing_owner", line=doc.field_lines.get("owner", doc.line))
    if not doc.rollback_plan.strip():
        add("missing_rollback_plan", line=doc.line)
    if not doc.success_criteria:
        add("no_success_criteria", line=doc.line)
    elif not any(c.level == "must" for c in doc.success_criteria):
        add("no_must_criteria", line=doc.success_criteria[0].line)
    if not doc.deliverables:
        add("no_deliverables", line=doc.line)
    for deliverable in doc.deliverables:
        what = f"Deliverable “{deliverable.title}”"
        if not deliverable.criteria:
            add(
                "deliverable_without_acceptance_criteria",
                what=what,
                line=deliverable.line,
                ref=deliverable.ref,
            )
        if not deliverable.owner:
            add("deliverable_without_owner", what=what, line=deliverable.line, ref=deliverable.ref)
    measured = [c for c in doc.all_criteria() if c.is_measured or _is_measured_without_target(c)]
    for criterion in measured:
        if _is_measured_without_target(criterion):
            add(
                "measured_criterion_without_target",
                what=f"Criterion “{criterion.text}”",
                line=criterion.line,
                ref=criterion.ref,
            )
    if not doc.risks:
        add("no_risks", line=doc.line)
    open_risks = [r for r in doc.risks if r.status != "closed"]
    for risk in open_risks:
        if not risk.mitigation.strip():
            add(
                "risk_without_mitigation", what=f"Risk “{risk.title}”", line=risk.line, ref=risk.ref
            )
    roles = doc.signoff_roles or []
    if not roles:
        add("no_signoff_roles", line=doc.line)
    for role in roles:
        if not role.holder:
            add(
                "signoff_role_without_holder",
                what=f"Sign-off role “{role.name}”",
                line=role.line,
                ref=role.ref,
            )
    open_blockers = [b for b in doc.blockers if not b.is_resolved]
    for blocker in open_blockers:
        what = f"Blocker “{blocker.title}”"
        if not blocker.owner:
            add("blocker_without_owner", what=what, line=blocker.line, ref=blocker.ref)
        if blocker.target_resolution_date is None:
            add("blocker_without_target_date", what=what, line=blocker.line, ref=blocker.ref)
    counts = {
        "has_target_date": doc.target_date is not None,
        "has_owner": bool(doc.owner),
        "has_rollback_plan": bool(doc.rollback_plan.strip()),
        "success": len(doc.success_criteria),
        "must": sum(c.level == "must" for c in doc.success_criteria),
        "deliverables": len(doc.deliverables),
        "deliverables_with_criteria": sum(bool(d.criteria) for d in doc.deliverables),
        "deliverables_owned": sum(bool(d.owner) for d in doc.deliverables),
        "measured": len(measured),
        "measured_without_target": sum(_is_measured_without_target(c) for c in measured),
        "risks": len(doc.risks),
        "risks_open": len(open_risks),
        "risks_open_mitigated": sum(bool(r.mitigation.strip()) for r in open_risks),
        "roles": len(roles),
        "roles_held": sum(bool(r.holder) for r in roles),
        "blockers_open": len(open_blockers),
        "blockers_open_complete": sum(
            bool(b.owner) and b.target_resolution_date is not None for b in open_blockers
        ),
    }
    findings.sort(key=lambda f: (f.line or 0, list(RULES).index(f.code)))
    return CheckResult(score_from_counts(counts), findings)


def check_document(parsed) -> list[tuple[str, CheckResult]]:
    """Each milestone of a parsed file with its check, findings labelled with the milestone."""
    results = []
    for milestone in parsed.milestones:
        result = check_milestone(milestone)
        for finding in result.findings:
            finding.milestone = milestone.title
        results.append((milestone.title, result))
    return results


# --- Live milestones ----------------------------------------------------------------------------


def check_live(milestone, *, deliverables, success_criteria, risks, blockers, roles) -> CheckResult:
    """The check of a live milestone from items already loaded (no queries)."""
    from specs.exporter import live_milestone_doc

    doc = live_milestone_doc(
        milestone,
        deliverables=deliverables,
        success_criteria=success_criteria,
        risks=risks,
        blockers=blockers,
        roles=roles,
    )
    return check_milestone(doc)


def check_spec(spec) -> CheckResult:
    """The check for the milestone page, from its `MilestoneSpec` (already loaded lists)."""
    return check_live(
        spec.milestone,
        deliverables=spec.deliverables,
        success_criteria=spec.success_criteria,
        risks=spec.risks,
        blockers=spec.blockers,
        roles=[state.role for state in spec.signoffs.roles],
    )


COUNT_NAMES = (
    "sc_success",
    "sc_must",
    "sc_deliverables",
    "sc_deliverables_with_criteria",
    "sc_deliverables_owned",
    "sc_measured",
    "sc_measured_without_target",
    "sc_risks",
    "sc_risks_open",
    "sc_risks_open_mitigated",
    "sc_roles",
    "sc_roles_held",
    "sc_blockers_open",
    "sc_blockers_open_complete",
    "sc_blockers_open_owned",
    "sc_blockers_open_dated",
)


def annotate_spec_counts(queryset):
    """Add the counts the score needs to a Milestone queryset, as subqueries of the same query:
    a list of any length costs no extra query. `spec_check_summary` reads them."""
    from milestones.models import Criterion, Deliverable, SignoffRole, subquery_count

    measured = Q(target__isnull=False) | ~Q(comparator="") | ~Q(unit="") | Q(actual__isnull=False)
    success = Criterion.objects.filter(milestone__isnull=False)
    measured_criteria = Criterion.objects.filter(measured)
    with_criteria = Deliverable.objects.filter(
        Exists(Criterion.objects.filter(deliverable=OuterRef("pk")))
    )
    roles = SignoffRole.objects.filter(removed_at__isnull=True)
    return queryset.annotate(**risk_and_blocker_counts()).annotate(
        sc_success=subquery_count(success, "milestone"),
        sc_must=subquery_count(success.filter(level="must"), "milestone"),
        sc_deliverables=subquery_count(Deliverable.objects.all(), "milestone"),
        sc_deliverables_with_criteria=subquery_count(with_criteria, "milestone"),
        sc_deliverables_owned=subquery_count(
            Deliverable.objects.filter(Q(owner__isnull=False) | ~Q(owner_label="")), "milestone"
        ),
        sc_measured=_measured_count(measured_criteria),
        sc_measured_without_target=_measured_count(measured_criteria.filter(target__isnull=True)),
        sc_roles=subquery_count(roles, "milestone"),
        sc_roles_held=subquery_count(roles.filter(holder__isnull=False), "milestone"),
    )


def risk_count_filters() -> dict[str, Q]:
    """The score's risk counts, each as the filter of the risks it counts."""
    open_risk = ~Q(status="closed")
    return {
        "sc_risks": Q(),
        "sc_risks_open": open_risk,
        "sc_risks_open_mitigated": open_risk & ~Q(mitigation=""),
    }


def blocker_count_filters() -> dict[str, Q]:
    """The score's blocker counts, each as the filter of the blockers it counts."""
    open_blocker = Q(resolved_on__isnull=True)
    # A member or a named owner outside the team (`owner_label`), as for deliverables.
    owned = Q(owner__isnull=False) | ~Q(owner_label="")
    dated = Q(target_resolution_date__isnull=False)
    return {
        "sc_blockers_open": open_blocker,
        "sc_blockers_open_complete": open_blocker & owned & dated,
        "sc_blockers_open_owned": open_blocker & owned,
        "sc_blockers_open_dated": open_blocker & dated,
    }


def risk_and_blocker_counts() -> dict:
    """The score's risk and blocker counts as subquery annotations for a Milestone queryset.
    (The API's milestone reader counts them with one grouped query per model instead, from the
    same filters, and the rest from the deliverables and criteria it already loads.)"""
    from milestones.models import Blocker, Risk, subquery_count

    return {
        **{
            name: subquery_count(Risk.objects.filter(condition), "milestone")
            for name, condition in risk_count_filters().items()
        },
        **{
            name: subquery_count(Blocker.objects.filter(condition), "milestone")
            for name, condition in blocker_count_filters().items()
        },
    }


def _measured_count(criteria):
    """Success criteria (on the milestone) plus acceptance criteria (on its deliverables)."""
    from milestones.models import subquery_count

    return subquery_count(criteria.filter(milestone__isnull=False), "milestone") + subquery_count(
        criteria.filter(deliverable__isnull=False), "deliverable__milestone"
    )


def _counts_from_annotations(milestone) -> dict:
    return {
        "has_target_date": milestone.target_date is not None,
        "has_owner": bool(milestone.owner_id or milestone.owning_group.strip()),
        "has_rollback_plan": bool(milestone.rollback_plan.strip()),
        **{name.removeprefix("sc_"): getattr(milestone, name) for name in COUNT_NAMES},
    }


def _gaps_from_counts(counts: dict) -> list[dict]:
    found = {
        "missing_target_date": int(not counts["has_target_date"]),
        "missing_owner": int(not counts["has_owner"]),
        "missing_rollback_plan": int(not counts["has_rollback_plan"]),
        "no_success_criteria": int(counts["success"] == 0),
        "no_must_criteria": int(counts["success"] > 0 and counts["must"] == 0),
        "no_deliverables": int(counts["deliverables"] == 0),
        "deliverable_without_acceptance_criteria": counts["deliverables"]
        - counts["deliverables_with_criteria"],
        "deliverable_without_owner": counts["deliverables"] - counts["deliverables_owned"],
        "measured_criterion_without_target": counts["measured_without_target"],
        "no_risks": int(counts["risks"] == 0),
        "risk_without_mitigation": counts["risks_open"] - counts["risks_open_mitigated"],
        "no_signoff_roles": int(counts["roles"] == 0),
        "signoff_role_without_holder": counts["roles"] - counts["roles_held"],
        "blocker_without_owner": counts["blockers_open"] - counts["blockers_open_owned"],
        "blocker_without_target_date": counts["blockers_open"] - counts["blockers_open_dated"],
    }
    return [gap(code, n) for code, n in found.items() if n > 0]


@functools.lru_cache(maxsize=4096)
def _summary_of_counts(counts: tuple) -> dict:
    """Cached: a list of milestones repeats the same few count patterns, and the exact
    fractions of the score are the costly part of a page of API reads. Callers must not
    mutate the result."""
    counts = dict(counts)
    return summary(score_from_counts(counts), _gaps_from_counts(counts))


def spec_check_summary(milestone) -> dict:
    """`{"score", "errors", "warnings", "gaps": [{"code", "severity", "count", "message"}]}`.

    Constant queries for a list: annotate the queryset with `annotate_spec_counts()` (no extra
    query), or
    prefetch `deliverables__criteria`, `criteria`, `risks`, `blockers` and `signoff_roles` (five
    extra queries per list, exact per-rule gaps). A bare milestone costs five queries.
    """
    if hasattr(milestone, "sc_success"):
        return _summary_of_counts(tuple(_counts_from_annotations(milestone).items()))
    deliverables = list(milestone.deliverables.all())
    for deliverable in deliverables:
        deliverable.criteria.all()  # prefetched, or one query each for a bare milestone
    result = check_live(
        milestone,
        deliverables=deliverables,
        success_criteria=list(milestone.criteria.all()),
        risks=list(milestone.risks.all()),
        blockers=list(milestone.blockers.all()),
        roles=[role for role in milestone.signoff_roles.all() if role.removed_at is None],
    )
    return result.summary()
