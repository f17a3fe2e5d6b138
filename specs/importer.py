"""Save a parsed spec document into a team: one transaction, every write through the services.

`import_document` creates the plan (for a plan document) or puts the milestone into a plan,
then each milestone with its deliverables, criteria, risks, blockers, sign-off holders and
dependencies, all through `milestones.services.create_object` (and `milestones.signoffs` for
roles), so activity, keys, versions and sign-off scopes stay right. Owners are matched to team
members by username, e-mail or name; an unmatched owner is a warning and stays a label where the
model has one. Any error rolls the whole import back. `dry_run=True` (the preview) walks the
document the same way without writing anything, in a fixed number of queries.
"""

import contextlib
import logging
import re
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, transaction
from django.utils import timezone

from accounts.models import Membership, Role
from milestones import services, signoffs
from milestones.models import (
    Blocker,
    Criterion,
    Deliverable,
    Milestone,
    Plan,
    Risk,
    Stakeholder,
    today,
)
from specs.document import (
    ERROR,
    MILESTONE_SHAPE,
    WARNING,
    CriterionDoc,
    MilestoneDoc,
    ParsedDocument,
    Problem,
)
from specs.models import SpecSection

logger = logging.getLogger(__name__)


@dataclass
class ImportResult:
    document: ParsedDocument
    problems: list[Problem] = field(default_factory=list)
    created: dict = field(default_factory=dict)
    plan: Plan | None = None
    milestones: list[Milestone] = field(default_factory=list)
    saved: bool = False
    dry_run: bool = False

    @property
    def all_problems(self) -> list[Problem]:
        return sorted(self.document.problems + self.problems, key=lambda p: (p.line or 0,))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.all_problems if p.severity == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.all_problems if p.severity == WARNING]

    @property
    def has_errors(self) -> bool:
        return bool(self.errors)

    def as_dict(self) -> dict:
        return {
            "saved": self.saved,
            "dry_run": self.dry_run,
            "shape": self.document.shape,
            "counts": self.document.counts(),
            "created": self.created,
            "plan": self.plan.key if self.plan and self.saved else None,
            "milestones": [m.key for m in self.milestones] if self.saved else [],
            "errors": [p.as_dict() for p in self.errors],
            "warnings": [p.as_dict() for p in self.warnings],
        }


class _Rollback(Exception):
    """Raised inside the import's transaction to undo it (errors found, or a dry run)."""


class People:
    """The team's members, matched by username, e-mail, full name or a unique first name."""

    def __init__(self, team):
        members = [m.user for m in Membership.objects.filter(team=team).select_related("user")]
        self.by_key: dict[str, list] = {}
        for user in members:
            keys = {user.username, user.email, user.get_full_name(), user.first_name}
            for key in keys:
                if key:
                    self.by_key.setdefault(key.casefold().strip(), []).append(user)

    def _exact(self, text: str):
        found = self.by_key.get(text.casefold().strip().lstrip("@"), [])
        unique = {user.pk: user for user in found}
        return next(iter(unique.values())) if len(unique) == 1 else None

    def match(self, text: str):
        """(user or None, label): "Backend Engineer (Alice)" → (alice, "Backend Engineer")."""
        text = (text or "").strip()
        if not text:
            return None, ""
        user = self._exact(text)
        if user:
            return user, ""
        email = re.search(r"<([^<>@\s]+@[^<>\s]+)>", text)
        if email and (user := self._exact(email.group(1))):
            rest = text[: email.start()].strip()
            return user, "" if self._same_person(rest, user) else rest
        inner = re.search(r"\(([^()]+)\)\s*$", text)
        if inner and (user := self._exact(inner.group(1))):
            rest = text[: inner.start()].strip()
            return user, "" if self._same_person(rest, user) else rest
        return None, text

    @staticmethod
    def _same_person(text: str, user) -> bool:
        return not text or text.casefold() in {
            user.get_full_name().casefold(),
            user.username.casefold(),
        }


class Importer:
    """Walks the document and saves each object; with `writing=False` (the preview) it walks the
    same way, matching owners and checking what it can without saving (constant queries)."""

    def __init__(self, result: ImportResult, *, team, actor, plan, filename, writing=True):
        self.writing = writing
        self.result = result
        self.document = result.document
        self.team = team
        self.actor = actor
        self.target_plan = plan
        self.filename = filename
        self.people = People(team)
        self.created = result.created
        self.keys: dict[str, Milestone] = {}
        self.pending_dependencies: list[tuple[Milestone, MilestoneDoc]] = []
        self.is_admin = bool(
            actor and Membership.objects.filter(team=team, user=actor, role=Role.ADMIN).exists()
        )

    # -- reporting

    def problem(self, severity, line, code, message):
        self.result.problems.append(Problem(line, severity, code, message))

    def count(self, kind: str, n: int = 1):
        self.created[kind] = self.created.get(kind, 0) + n

    def save(self, obj, line, what: str) -> bool:
        """create_object, turning refusals into an error on the document's line."""
        if not self.writing:
            return self.precheck(obj, line, what)
        try:
            services.create_object(obj, actor=self.actor)
        except ValidationError as error:
            self.problem(ERROR, line, "invalid", f"{what}: {' '.join(_messages(error))}")
            return False
        except DatabaseError as error:
            self.problem(ERROR, line, "refused", f"{what}: the database refused it ({error}).")
            return False
        return True

    def precheck(self, obj, line, what: str) -> bool:
        """The rules a preview can check without the database."""
        start, target = getattr(obj, "start_date", None), getattr(obj, "target_date", None)
        if isinstance(obj, Milestone | Plan) and start and target and target < start:
            self.problem(
                ERROR,
                line,
                "invalid",
                f"{what}: target date: The target date cannot be before the start date.",
            )
            return False
        return True

    def person(self, text: str, line, what: str, *, keeps_label: bool):
        user, label = self.people.match(text)
        if text and user is None:
            where = "kept as a label" if keeps_label else "the owner is left empty"
            self.problem(
                WARNING,
                line,
                "unmatched_owner",
                f"{what}: “{text}” is not a member of this team; {where}.",
            )
        return user, label

    # -- the run

    def run(self):
        plan = self.plan_for_document()
        if plan is None:
            return
        self.result.plan = plan
        position = services.next_position(plan.milestones.all()) if plan.pk else 0
        for index, milestone_doc in enumerate(self.document.milestones):
            milestone = self.milestone(plan, milestone_doc, position + index)
            if milestone is not None:
                self.result.milestones.append(milestone)
        for milestone, milestone_doc in self.pending_dependencies:
            self.dependencies(milestone, milestone_doc)

    def plan_for_document(self) -> Plan | None:
        if self.document.shape == MILESTONE_SHAPE:
            return self.existing_plan()
        if self.target_plan is not None:
            self.problem(
                WARNING,
                self.document.plan.line,
                "into_existing_plan",
                f"The milestones go into {self.target_plan.key}; the document's own plan "
                "details, criteria and communication table are not imported.",
            )
            return self.target_plan
        return self.new_plan()

    def existing_plan(self) -> Plan | None:
        if self.target_plan is not None:
            return self.target_plan
        milestone = self.document.milestones[0] if self.document.milestones else None
        reference = (milestone.plan_ref if milestone else "").split()
        if reference:
            plan = Plan.objects.filter(team=self.team, key=reference[0]).first()
            if plan:
                return plan
        self.problem(
            ERROR,
            milestone.line if milestone else None,
            "no_plan",
            "Say which plan this milestone goes into: choose a plan (or pass "
            "--plan KEY)."
            + (
                f" The document names “{milestone.plan_ref}”, which is not a plan of this team."
                if milestone and milestone.plan_ref
                else ""
            ),
        )
        return None

    def new_plan(self) -> Plan | None:
        doc = self.document.plan
        owner, _ = self.person(doc.owner, doc.line, "Plan owner", keeps_label=False)
        plan = Plan(
            team=self.team,
            title=doc.title,
            summary=doc.summary,
            owner=owner,
            status=doc.status,
            start_date=doc.start_date,
            target_date=doc.target_date,
        )
        if not self.save(plan, doc.line, f"Plan “{doc.title}”"):
            return None
        self.count("plans")
        for position, criterion in enumerate(doc.criteria):
            self.criterion(criterion, position, plan=plan)
        for position, person_doc in enumerate(doc.stakeholders):
            self.stakeholder(plan, person_doc, position)
        self.sections(doc.notes, plan=plan)
        return plan

    def stakeholder(self, plan, doc, position):
        user, _ = self.people.match(doc.name)
        name, email = doc.name, ""
        if match := re.search(r"<([^<>@\s]+@[^<>\s]+)>", doc.name):
            name, email = doc.name[: match.start()].strip(), match.group(1)
        elif re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", doc.name):
            name, email = "", doc.name
        stakeholder = Stakeholder(
            plan=plan,
            user=user,
            name="" if user else name[:120],
            email="" if user else email,
            channel=doc.channel,
            frequency=doc.frequency,
            content=doc.content,
            position=position,
        )
        if self.save(stakeholder, doc.line, f"Stakeholder “{doc.name}”"):
            self.count("stakeholders")

    def milestone(self, plan, doc: MilestoneDoc, position: int) -> Milestone | None:
        owner, group = self.person(
            doc.owner, doc.field_lines.get("owner", doc.line), "Milestone owner", keeps_label=True
        )
        milestone = Milestone(
            team=self.team,
            plan=plan,
            title=doc.title,
            summary=doc.summary,
            owner=owner,
            owning_group=group[:120],
            priority=doc.priority,
            status=doc.status,
            start_date=doc.start_date,
            target_date=doc.target_date,
            estimated_effort=doc.estimated_effort,
            rollback_plan=doc.rollback_plan,
            position=position,
        )
        if not self.save(milestone, doc.line, f"Milestone “{doc.title}”"):
            return None
        self.count("milestones")
        if doc.key:
            self.keys[doc.key] = milestone
        for index, deliverable_doc in enumerate(doc.deliverables):
            self.deliverable(milestone, deliverable_doc, index)
        for index, criterion in enumerate(doc.success_criteria):
            self.criterion(criterion, index, milestone=milestone)
        for index, risk_doc in enumerate(doc.risks):
            self.risk(milestone, risk_doc, index)
        for blocker_doc in doc.blockers:
            self.blocker(milestone, blocker_doc)
        if doc.signoff_roles is not None:
            self.signoff_roles(milestone, doc)
        self.sections(doc.notes, milestone=milestone)
        if doc.depends_on:
            self.pending_dependencies.append((milestone, doc))
        if self.writing:
            services.record_activity(
                self.actor, milestone, "imported", {"document": [None, self.filename or "markdown"]}
            )
        return milestone

    def deliverable(self, milestone, doc, position):
        owner, label = self.person(
            doc.owner, doc.line, f"Deliverable “{doc.title}”", keeps_label=True
        )
        deliverable = Deliverable(
            milestone=milestone,
            title=doc.title,
            description=doc.description,
            owner=owner,
            owner_label=label[:120],
            status=doc.status,
            target_date=doc.target_date,
            position=position,
        )
        if not self.save(deliverable, doc.line, f"Deliverable “{doc.title}”"):
            return
        self.count("deliverables")
        for index, criterion in enumerate(doc.criteria):
            self.criterion(criterion, index, deliverable=deliverable)

    def criterion(self, doc: CriterionDoc, position, **owner):
        checked = doc.checked and not doc.is_measured
        criterion = Criterion(
            **owner,
            text=doc.text,
            description=doc.description,
            category=doc.category,
            level=doc.level,
            target=doc.target,
            comparator=doc.comparator if doc.is_measured else "",
            unit=doc.unit if doc.is_measured else "",
            actual=doc.actual if doc.is_measured else None,
            checked=checked,
            checked_by=self.actor if checked and self.actor else None,
            checked_at=timezone.now() if checked else None,
            position=position,
        )
        if doc.measure_problem:
            self.problem(
                WARNING,
                doc.line,
                "measure_unreadable",
                f"{doc.measure_problem}; imported as a plain criterion.",
            )
        if not self.save(criterion, doc.line, f"Criterion “{doc.text}”"):
            return
        kind = (
            "plan_criteria"
            if "plan" in owner
            else ("acceptance_criteria" if "deliverable" in owner else "success_criteria")
        )
        self.count(kind)

    def risk(self, milestone, doc, position):
        owner, label = self.person(doc.owner, doc.line, f"Risk “{doc.title}”", keeps_label=True)
        risk = Risk(
            milestone=milestone,
            title=doc.title,
            description=doc.description,
            likelihood=doc.likelihood,
            impact=doc.impact,
            mitigation=doc.mitigation,
            fallback=doc.fallback,
            owner=owner,
            owner_label=label[:120],
            status=doc.status,
            position=position,
        )
        if self.save(risk, doc.line, f"Risk “{doc.title}”"):
            self.count("risks")

    def blocker(self, milestone, doc):
        owner, label = self.person(doc.owner, doc.line, f"Blocker “{doc.title}”", keeps_label=True)
        raised = doc.raised_on or min(today(), doc.resolved_on or today())
        blocker = Blocker(
            milestone=milestone,
            title=doc.title,
            description=doc.issue,
            impact=doc.impact,
            owner=owner,
            owner_label=label[:120],
            next_action=doc.next_action[:300],
            priority=doc.priority,
            target_resolution_date=doc.target_resolution_date,
            raised_on=raised,
            resolved_on=doc.resolved_on,
            resolution=doc.resolution,
        )
        if self.save(blocker, doc.line, f"Blocker “{doc.title}”"):
            self.count("blockers")

    def signoff_roles(self, milestone, doc):
        if not self.is_admin:
            first = doc.signoff_roles[0].line if doc.signoff_roles else doc.line
            self.problem(
                WARNING,
                first,
                "signoff_needs_admin",
                "Only a team admin can set sign-off roles and holders; the milestone "
                "keeps the team's default roles, without holders.",
            )
            return
        if not self.writing:
            for role_doc in doc.signoff_roles:
                self.person(
                    role_doc.holder,
                    role_doc.line,
                    f"Sign-off role “{role_doc.name}”",
                    keeps_label=False,
                )
            self.count("signoff_roles", len(doc.signoff_roles))
            return
        existing = {role.name.casefold(): role for role in milestone.signoff_roles.active()}
        wanted = set()
        for role_doc in doc.signoff_roles:
            holder, _ = self.person(
                role_doc.holder,
                role_doc.line,
                f"Sign-off role “{role_doc.name}”",
                keeps_label=False,
            )
            name = role_doc.name.strip()
            wanted.add(name.casefold())
            try:
                role = existing.get(name.casefold())
                if role is None:
                    signoffs.add_role(milestone, actor=self.actor, name=name, holder=holder)
                elif holder:
                    signoffs.set_holder(role, actor=self.actor, holder=holder)
                self.count("signoff_roles")
            except (ValidationError, PermissionDenied) as error:
                self.problem(
                    ERROR,
                    role_doc.line,
                    "invalid",
                    f"Sign-off role “{name}”: {' '.join(_messages(error))}",
                )
        for name, role in existing.items():
            if name not in wanted:
                signoffs.drop_role(role, actor=self.actor)

    def sections(self, notes, **owner):
        if not self.writing:
            self.count("notes", len(notes)) if notes else None
            return
        SpecSection.objects.bulk_create(
            SpecSection(
                team=self.team, heading=note.heading[:200], body=note.body, position=i, **owner
            )
            for i, note in enumerate(notes)
        )
        if notes:
            self.count("notes", len(notes))

    def dependencies(self, milestone, doc):
        for link in doc.depends_on:
            predecessor = self.keys.get(link.key) or self.team_milestone(link.key)
            if predecessor is None:
                self.problem(
                    WARNING,
                    doc.field_lines.get("depends_on", doc.line),
                    "unknown_dependency",
                    f"{link.key} is not a milestone of this team; "
                    "that dependency was not imported.",
                )
                continue
            if not self.writing:
                self.count("dependencies")
                continue
            try:
                services.add_dependency(
                    predecessor, milestone, actor=self.actor, lag_days=link.lag_days
                )
                self.count("dependencies")
            except ValidationError as error:
                self.problem(
                    WARNING,
                    doc.field_lines.get("depends_on", doc.line),
                    "dependency_refused",
                    f"{link.key} → {milestone.title}: {' '.join(_messages(error))} Not imported.",
                )

    def team_milestone(self, key: str):
        if not hasattr(self, "_team_milestones"):
            wanted = {link.key for _, doc in self.pending_dependencies for link in doc.depends_on}
            self._team_milestones = {
                m.key: m for m in Milestone.objects.filter(team=self.team, key__in=wanted)
            }
        return self._team_milestones.get(key)


def _messages(error) -> list[str]:
    if isinstance(error, ValidationError):
        if hasattr(error, "error_dict"):
            return [
                f"{'' if name == '__all__' else name.replace('_', ' ') + ': '}{message}"
                for name, messages in error.message_dict.items()
                for message in messages
            ]
        return list(error.messages)
    return [str(error)]


def import_document(
    document: ParsedDocument, *, team, actor=None, plan=None, dry_run=False, filename=""
) -> ImportResult:
    """Import `document` into `team` in one transaction; nothing is saved when anything is wrong.

    `plan` is where a milestone spec goes (else the plan its **Plan** line names); for a plan
    document, given a plan, its milestones go there instead of into a new plan.
    """
    result = ImportResult(document=document, dry_run=dry_run)
    if document.has_errors or (not document.milestones and document.plan is None):
        if not document.has_errors:
            result.problems.append(Problem(None, ERROR, "nothing", "The document holds no spec."))
        return result
    if dry_run:
        # The preview: the same walk without writing, in a fixed number of queries.
        Importer(result, team=team, actor=actor, plan=plan, filename=filename, writing=False).run()
        return result
    # Refresh each milestone's sign-off scope once at the end rather than after every item,
    # where the services offer it (same outcome, far fewer queries on a large document).
    batched = getattr(services, "batched_scope_refresh", contextlib.nullcontext)
    try:
        with transaction.atomic(), batched():
            Importer(result, team=team, actor=actor, plan=plan, filename=filename).run()
            if result.has_errors:
                raise _Rollback
    except _Rollback:
        pass
    except Exception as error:  # never a 500 for a document: report it, nothing is saved
        logger.exception("spec import failed")
        result.problems.append(
            Problem(None, ERROR, "failed", f"The import failed and nothing was saved: {error}")
        )
    result.saved = not dry_run and not result.has_errors
    return result
