"""A spec document as plain data, independent of where it came from.

The parser turns markdown into these objects, the exporter turns live milestones and plans into
them, the renderer turns them into markdown, the importer saves them through the services, and
the spec check reads them. One shape in the middle keeps the four directions in step.

Owners and holders are kept as the text a document names (a username, a name, "Infra team");
`line` is the 1-based line of the document where the object starts (None for live objects),
and `ref` says which live object a document object stands for ("deliverable 12"), so findings
can point at either.
"""

import datetime
from dataclasses import dataclass, field
from decimal import Decimal

ERROR = "error"
WARNING = "warning"


@dataclass
class Problem:
    """Something the parser or importer could not take as written."""

    line: int | None
    severity: str
    code: str
    message: str

    def as_dict(self) -> dict:
        return {
            "line": self.line,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
        }


@dataclass
class CriterionDoc:
    text: str
    checked: bool = False
    category: str = "technical"
    level: str = "must"
    target: Decimal | None = None
    comparator: str = ""
    unit: str = ""
    actual: Decimal | None = None
    # "(target: …)" was written but could not be read: a measured criterion without a target.
    measure_problem: str = ""
    description: str = ""
    line: int | None = None
    ref: str = ""

    @property
    def is_measured(self) -> bool:
        return self.target is not None


@dataclass
class DeliverableDoc:
    title: str
    description: str = ""
    owner: str = ""
    status: str = "planned"
    target_date: datetime.date | None = None
    criteria: list[CriterionDoc] = field(default_factory=list)
    line: int | None = None
    ref: str = ""


@dataclass
class RiskDoc:
    title: str
    likelihood: str = "medium"
    impact: str = "medium"
    mitigation: str = ""
    fallback: str = ""
    owner: str = ""
    status: str = "open"
    description: str = ""
    line: int | None = None
    ref: str = ""


@dataclass
class BlockerDoc:
    title: str
    issue: str = ""
    impact: str = ""
    owner: str = ""
    next_action: str = ""
    priority: str = "medium"
    target_resolution_date: datetime.date | None = None
    raised_on: datetime.date | None = None
    resolved_on: datetime.date | None = None
    resolution: str = ""
    line: int | None = None
    ref: str = ""

    @property
    def is_resolved(self) -> bool:
        return self.resolved_on is not None


@dataclass
class SignoffRoleDoc:
    name: str
    holder: str = ""
    line: int | None = None
    ref: str = ""


@dataclass
class Note:
    """A section Milepost has no field for, kept as written (markdown, headings relative:
    the section's own sub-headings start at ###)."""

    heading: str
    body: str
    line: int | None = None


@dataclass
class DependencyDoc:
    key: str
    lag_days: int = 0


@dataclass
class MilestoneDoc:
    title: str
    key: str = ""
    plan_ref: str = ""
    owner: str = ""
    status: str = "planned"
    priority: str = "required"
    start_date: datetime.date | None = None
    target_date: datetime.date | None = None
    estimated_effort: str = ""
    summary: str = ""
    rollback_plan: str = ""
    deliverables: list[DeliverableDoc] = field(default_factory=list)
    success_criteria: list[CriterionDoc] = field(default_factory=list)
    risks: list[RiskDoc] = field(default_factory=list)
    blockers: list[BlockerDoc] = field(default_factory=list)
    # None: the document says nothing about sign-off roles (the team's defaults apply).
    signoff_roles: list[SignoffRoleDoc] | None = None
    depends_on: list[DependencyDoc] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    line: int | None = None
    ref: str = ""
    # Where each metadata line was, by field name, so findings on a file can point at it.
    field_lines: dict = field(default_factory=dict)

    def all_criteria(self) -> list[CriterionDoc]:
        return self.success_criteria + [c for d in self.deliverables for c in d.criteria]


@dataclass
class StakeholderDoc:
    name: str
    channel: str = ""
    frequency: str = "weekly"
    content: str = ""
    line: int | None = None


@dataclass
class PlanDoc:
    title: str
    key: str = ""
    owner: str = ""
    status: str = "active"
    start_date: datetime.date | None = None
    target_date: datetime.date | None = None
    summary: str = ""
    criteria: list[CriterionDoc] = field(default_factory=list)
    stakeholders: list[StakeholderDoc] = field(default_factory=list)
    milestones: list[MilestoneDoc] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    line: int | None = None


MILESTONE_SHAPE = "milestone"
PLAN_SHAPE = "plan"


@dataclass
class ParsedDocument:
    """What a markdown file says: one milestone spec, or a plan with its milestones."""

    shape: str
    milestones: list[MilestoneDoc] = field(default_factory=list)
    plan: PlanDoc | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == WARNING]

    @property
    def has_errors(self) -> bool:
        return any(p.severity == ERROR for p in self.problems)

    def counts(self) -> dict[str, int]:
        """How many of each thing the document holds (the preview's and the bench's figures)."""
        milestones = self.milestones
        return {
            "plans": 1 if self.plan else 0,
            "milestones": len(milestones),
            "deliverables": sum(len(m.deliverables) for m in milestones),
            "acceptance_criteria": sum(len(d.criteria) for m in milestones for d in m.deliverables),
            "success_criteria": sum(len(m.success_criteria) for m in milestones),
            "plan_criteria": len(self.plan.criteria) if self.plan else 0,
            "risks": sum(len(m.risks) for m in milestones),
            "blockers": sum(len(m.blockers) for m in milestones),
            "signoff_roles": sum(len(m.signoff_roles or []) for m in milestones),
            "stakeholders": len(self.plan.stakeholders) if self.plan else 0,
            "notes": sum(len(m.notes) for m in milestones)
            + (len(self.plan.notes) if self.plan else 0),
        }
