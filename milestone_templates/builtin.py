"""The templates Milepost ships with: five project phases and three sprint shapes.

They are data versioned with the code, not rows, so every team sees the same ones and a fix
here reaches everybody on the next deploy. Durations are calendar days: a milestone made from
a template starting on day D has its target on D + duration.
"""

from decimal import Decimal

from milestone_templates.blueprints import (
    Blueprint,
    CriterionBlueprint,
    DeliverableBlueprint,
    Group,
)
from milestones.models import CriterionCategory as Category
from milestones.models import CriterionLevel as Level

TECH_LEAD, PRODUCT_OWNER, OPS_LEAD = "Tech lead", "Product owner", "Operations lead"


def must(text, category=Category.TECHNICAL, **measure) -> CriterionBlueprint:
    return CriterionBlueprint(text, category, Level.MUST, **measure)


def should(text, category=Category.TECHNICAL, **measure) -> CriterionBlueprint:
    return CriterionBlueprint(text, category, Level.SHOULD, **measure)


def at_most(target, unit) -> dict:
    return {"comparator": "<=", "target": Decimal(target), "unit": unit}


def at_least(target, unit) -> dict:
    return {"comparator": ">=", "target": Decimal(target), "unit": unit}


def deliverable(title, description, *acceptance: str) -> DeliverableBlueprint:
    return DeliverableBlueprint(title, description, tuple(must(text) for text in acceptance))


RESEARCH = Blueprint(
    ref="research-architecture",
    group=Group.PHASE,
    name="Research & architecture",
    summary=(
        "Decide what to build and how before the first line of production code: try the "
        "candidate technologies, settle the architecture, and leave a plan the team can start "
        "from on day one of the next phase."
    ),
    duration_days=10,
    deliverables=(
        deliverable(
            "Technology evaluation",
            "A short write-up of the options that were tried and the trade-offs that decided.",
            "Each shortlisted option was tried on a realistic example, not only read about",
            "The choice and the rejected alternatives are recorded with their reasons",
        ),
        deliverable(
            "Architecture decision records",
            "The decisions that shape the system, kept next to the code or in the team's docs.",
            "Every record states the context, the decision and its consequences",
            "Reviewed by at least one engineer who did not write it",
        ),
        deliverable(
            "Implementation plan",
            "The next milestones in order, with rough sizes and the main risks.",
            "The work is split into milestones of four weeks or less",
            "The biggest risks are listed, each with a mitigation",
        ),
    ),
    success_criteria=(
        must("The tech lead and the engineers who will build it agree on the architecture"),
        must(
            "Findings and decisions are written down and linked from the plan",
            Category.DOCUMENTATION,
        ),
        must(
            "A new engineer sets up the development environment from the instructions",
            Category.OPERATIONAL,
            **at_most(60, "minutes"),
        ),
        should("Every open question has an owner and a date", Category.QUALITY),
    ),
    signoff_roles=(TECH_LEAD, PRODUCT_OWNER),
)

FOUNDATION = Blueprint(
    ref="foundation",
    group=Group.PHASE,
    name="Foundation",
    summary=(
        "Lay the ground the rest of the work stands on: the repository skeleton, a build and "
        "test pipeline, a first environment built from code, and a home for documentation."
    ),
    duration_days=14,
    deliverables=(
        deliverable(
            "Project skeleton",
            "Repository layout, dependency management and code style checks.",
            "Layout, dependency pinning and linters are in place",
            "A new engineer builds and runs the project by following the README",
        ),
        deliverable(
            "Continuous integration pipeline",
            "Checks that run on every change.",
            "Every push runs the linters and the tests",
            "A failing check blocks the merge",
        ),
        deliverable(
            "First environment",
            "A staging environment the skeleton deploys to.",
            "Staging is created from code, not by hand",
            "The skeleton deploys to staging with one command or one merge",
        ),
        deliverable(
            "Test and documentation framework",
            "Where tests and documentation go, and how they run.",
            "The test runner works and holds an example test",
            "The documentation structure is agreed and published",
        ),
    ),
    success_criteria=(
        must("The pipeline is green on the main branch"),
        must("Staging is reachable and deployed by the pipeline", Category.OPERATIONAL),
        must("A full pipeline run finishes quickly", Category.QUALITY, **at_most(10, "minutes")),
        should("The branching and review workflow is written down", Category.DOCUMENTATION),
    ),
    signoff_roles=(TECH_LEAD, OPS_LEAD),
)

CORE_DEVELOPMENT = Blueprint(
    ref="core-development",
    group=Group.PHASE,
    name="Core development",
    summary=(
        "Build the features that make the product worth using, automate what the foundation "
        "left manual, and show that the parts work together."
    ),
    duration_days=21,
    deliverables=(
        deliverable(
            "Primary features",
            "The features this plan exists for.",
            "Each feature meets its acceptance criteria in staging",
            "Features that need a gradual rollout sit behind a flag",
        ),
        deliverable(
            "Automated tests",
            "Tests that keep the features working.",
            "New code has unit tests",
            "Integration tests cover the main flows end to end",
        ),
        deliverable(
            "Integration between components",
            "The services, jobs and stores talking to each other.",
            "Components talk through documented interfaces",
            "A failing dependency is handled without losing data",
        ),
        deliverable(
            "User and developer documentation",
            "How to use it and how to change it.",
            "The main tasks are documented with examples",
            "The API or configuration reference matches the code",
        ),
    ),
    success_criteria=(
        must("All planned features can be demonstrated in staging"),
        must("Line coverage of the new code", Category.QUALITY, **at_least(80, "%")),
        must("The integration test suite passes", Category.QUALITY),
        should(
            "The documentation was reviewed by someone who did not write it", Category.DOCUMENTATION
        ),
        should("Ready for a trial with real users", Category.OPERATIONAL),
    ),
    signoff_roles=(TECH_LEAD, PRODUCT_OWNER, OPS_LEAD),
)

POLISH_PRODUCTION = Blueprint(
    ref="polish-production",
    group=Group.PHASE,
    name="Polish & production",
    summary=(
        "Make it fast, safe and supportable, then ship it: performance and security work, "
        "better error handling, monitoring, and the production rollout."
    ),
    duration_days=10,
    deliverables=(
        deliverable(
            "Performance tuning",
            "Profiling and fixing the slow paths.",
            "A load test ran against production-like data",
            "Hot spots found by profiling are fixed or ticketed",
        ),
        deliverable(
            "Security review",
            "Scans and a review of how secrets and permissions are handled.",
            "Dependency and code scans report no high-severity findings",
            "No secrets in the code, the configuration history or the logs",
        ),
        deliverable(
            "Production rollout",
            "The release itself, and the way back.",
            "Deployed to production through the pipeline",
            "The rollback was rehearsed at least once",
        ),
        deliverable(
            "Monitoring and alerting",
            "Seeing trouble before users report it.",
            "Dashboards show traffic, errors and latency",
            "Alerts reach the person on call",
        ),
    ),
    success_criteria=(
        must("95th percentile response time", Category.TECHNICAL, **at_most(500, "ms")),
        must("The production deployment succeeded and was verified", Category.OPERATIONAL),
        must("Alerts were tested end to end", Category.OPERATIONAL),
        must(
            "The runbook covers deploying, rolling back and the common failures",
            Category.DOCUMENTATION,
        ),
        should("Error messages tell users what to do next", Category.QUALITY),
    ),
    signoff_roles=(TECH_LEAD, PRODUCT_OWNER, OPS_LEAD),
)

MAINTENANCE = Blueprint(
    ref="maintenance",
    group=Group.PHASE,
    name="Maintenance & evolution",
    summary=(
        "One cycle of keeping a shipped product healthy: dependencies current, issues triaged "
        "and fixed, small improvements released, and what was learned passed on. Repeat it as "
        "often as the product lives."
    ),
    duration_days=28,
    deliverables=(
        deliverable(
            "Dependency updates",
            "Libraries, runtimes and base images brought up to date.",
            "Security updates were applied within the cycle",
            "Nothing is more than one major version behind without a recorded reason",
        ),
        deliverable(
            "Issue triage and fixes",
            "New reports looked at, the agreed ones fixed.",
            "Every new issue was triaged within two working days",
            "The agreed fixes are released",
        ),
        deliverable(
            "Improvements release",
            "Small enhancements users asked for.",
            "Release notes are published",
            "The people who asked were told",
        ),
    ),
    success_criteria=(
        must("No critical issue is open at the end of the cycle", Category.OPERATIONAL),
        must("Build and tests are green on the main branch"),
        should("The documentation matches the released behaviour", Category.DOCUMENTATION),
        should("One lesson or how-to was shared with the team", Category.QUALITY),
    ),
    signoff_roles=(TECH_LEAD, OPS_LEAD),
)

QUICK_WIN = Blueprint(
    ref="quick-win",
    group=Group.SPRINT,
    name="Quick win",
    summary=(
        "A small, self-contained piece of value shipped within a week: a script, a tool, a "
        "configuration fix or a focused documentation update."
    ),
    duration_days=7,
    deliverables=(
        deliverable(
            "The change",
            "The script, tool, fix or page itself.",
            "Works as intended where it will be used",
            "Reviewed and merged",
        ),
        deliverable(
            "Usage notes",
            "How to use it, where people will look for it.",
            "Written down next to the change or in the team's docs",
        ),
    ),
    success_criteria=(
        must("Delivered and in use"),
        must("The people it helps know about it", Category.DOCUMENTATION),
        should("Follow-up ideas are captured as issues", Category.QUALITY),
    ),
    signoff_roles=(TECH_LEAD,),
)

CORE_FEATURE = Blueprint(
    ref="core-feature",
    group=Group.SPRINT,
    name="Core feature",
    summary=(
        "A substantial feature built end to end in two to three weeks: from design through "
        "tests and documentation to being ready for production."
    ),
    duration_days=21,
    deliverables=(
        deliverable(
            "Feature implementation",
            "The feature and its integration points.",
            "Every user story of the feature is accepted by the product owner",
            "Behind a flag until it is released",
        ),
        deliverable(
            "Tests",
            "Automated checks for the feature.",
            "The feature's tests pass in the pipeline",
            "The edge cases raised in design review are covered",
        ),
        deliverable(
            "Documentation",
            "What users and the next engineer need to know.",
            "User-facing documentation is updated",
            "A changelog entry is written",
        ),
    ),
    success_criteria=(
        must("The feature is complete and works with its integration points"),
        must("Line coverage of the feature's code", Category.QUALITY, **at_least(80, "%")),
        must("Ready to release to production", Category.OPERATIONAL),
        should("Demonstrated to the stakeholders", Category.DOCUMENTATION),
    ),
    signoff_roles=(TECH_LEAD, PRODUCT_OWNER),
)

LEARNING_SPRINT = Blueprint(
    ref="learning-sprint",
    group=Group.SPRINT,
    name="Learning sprint",
    summary=(
        "A time box to learn a technology or practice and decide whether to adopt it, with a "
        "working proof of concept as the evidence."
    ),
    duration_days=10,
    deliverables=(
        deliverable(
            "Proof of concept",
            "The smallest thing that shows whether the idea holds.",
            "Runs on a realistic example",
            "Kept in a repository the team can read",
        ),
        deliverable(
            "Findings",
            "What was learned, for the people who were not there.",
            "Says what worked, what did not and what adoption would cost",
            "Presented to the team in a short session",
        ),
    ),
    success_criteria=(
        must(
            "An adoption decision is made and recorded: adopt, trial further or drop",
            Category.QUALITY,
        ),
        must("The findings are written down", Category.DOCUMENTATION),
        should("Follow-up work is planned if the decision is to adopt", Category.OPERATIONAL),
    ),
    signoff_roles=(TECH_LEAD,),
)

BUILTIN_TEMPLATES: tuple[Blueprint, ...] = (
    RESEARCH,
    FOUNDATION,
    CORE_DEVELOPMENT,
    POLISH_PRODUCTION,
    MAINTENANCE,
    QUICK_WIN,
    CORE_FEATURE,
    LEARNING_SPRINT,
)
BUILTIN_BY_REF = {blueprint.ref: blueprint for blueprint in BUILTIN_TEMPLATES}

# Ready-made sequences for the plan builder.
PRESETS = {
    "phases": ("The five phases", [b.ref for b in BUILTIN_TEMPLATES if b.group == Group.PHASE]),
}
