"""How real documents spell things: status words and emoji, levels, dates, section names.

Every function here is forgiving (case, emoji, punctuation) and returns None when it cannot
read its input, so the parser can say what it did instead.
"""

import datetime
import re
import unicodedata
from decimal import Decimal, InvalidOperation

from milestones.models import (
    Comparator,
    CriterionCategory,
    DeliverableStatus,
    Level,
    MilestoneStatus,
    PlanStatus,
    Priority,
    RiskStatus,
    StakeholderFrequency,
)

# --- Emoji and words -----------------------------------------------------------------------

DONE, ACTIVE, REVIEW, TODO, CANCELLED = "done", "active", "review", "todo", "cancelled"

STATUS_EMOJI = {
    "✅": DONE,
    "✔": DONE,
    "☑": DONE,
    "🟢": DONE,
    "🎉": DONE,
    "🏁": DONE,
    "🚧": ACTIVE,
    "🔄": ACTIVE,
    "⏳": ACTIVE,
    "🟡": ACTIVE,
    "🏗": ACTIVE,
    "🔨": ACTIVE,
    "👀": REVIEW,
    "🔍": REVIEW,
    "⬜": TODO,
    "⭕": TODO,
    "📋": TODO,
    "🔲": TODO,
    "⏸": TODO,
    "🗓": TODO,
    "📅": TODO,
    "❌": CANCELLED,
    "🚫": CANCELLED,
    "⛔": CANCELLED,
}

STATUS_WORDS = {
    DONE: (
        "complete",
        "completed",
        "done",
        "finished",
        "delivered",
        "accepted",
        "shipped",
        "closed",
        "achieved",
        "met",
    ),
    ACTIVE: (
        "in progress",
        "in-progress",
        "inprogress",
        "underway",
        "under way",
        "started",
        "ongoing",
        "wip",
        "active",
        "doing",
        "at risk",
        "mostly done",
        "in development",
        "current",
    ),
    REVIEW: (
        "in review",
        "ready for review",
        "review",
        "under review",
        "awaiting review",
        "reviewing",
    ),
    TODO: (
        "planned",
        "not started",
        "todo",
        "to do",
        "pending",
        "upcoming",
        "scheduled",
        "not yet started",
        "backlog",
        "proposed",
        "draft",
        "next",
    ),
    CANCELLED: ("cancelled", "canceled", "dropped", "abandoned", "descoped", "won't do"),
}

MILESTONE_STATUS = {
    DONE: MilestoneStatus.COMPLETED,
    ACTIVE: MilestoneStatus.IN_PROGRESS,
    REVIEW: MilestoneStatus.IN_PROGRESS,
    TODO: MilestoneStatus.PLANNED,
    CANCELLED: MilestoneStatus.CANCELLED,
}
DELIVERABLE_STATUS = {
    DONE: DeliverableStatus.ACCEPTED,
    ACTIVE: DeliverableStatus.IN_PROGRESS,
    REVIEW: DeliverableStatus.IN_REVIEW,
    TODO: DeliverableStatus.PLANNED,
}
PLAN_STATUS = {
    DONE: PlanStatus.COMPLETED,
    ACTIVE: PlanStatus.ACTIVE,
    REVIEW: PlanStatus.ACTIVE,
    TODO: PlanStatus.DRAFT,
}


def clean_text(text: str) -> str:
    """Collapse whitespace and drop the markdown line-break spaces."""
    return re.sub(r"\s+", " ", text or "").strip()


def _is_symbol(char: str) -> bool:
    return unicodedata.category(char)[0] in "SCZ" or char in "\ufe0f\u200d\uf8ff"


def strip_symbols(text: str) -> str:
    """Drop emoji and other symbols (and left-over mojibake of them) from both ends."""
    text = text.strip()
    start, end = 0, len(text)
    while start < end and (_is_symbol(text[start]) or not text[start].isprintable()):
        start += 1
    while end > start and (_is_symbol(text[end - 1]) or not text[end - 1].isprintable()):
        end -= 1
    return text[start:end].strip()


def status_kind(text: str, legend: dict | None = None) -> str | None:
    """DONE, ACTIVE, REVIEW, TODO or CANCELLED for "✅ COMPLETE", "Not Started", "🚧"…"""
    if not text:
        return None
    for emoji, kind in {**STATUS_EMOJI, **(legend or {})}.items():
        if emoji in text:
            return kind
    words = clean_text(strip_symbols(text)).casefold().strip(" .:-*_()[]")
    if not words:
        return None
    # Longest phrases first: "not started" before "started", "in review" before "review".
    phrases = sorted(
        ((phrase, kind) for kind, phrases in STATUS_WORDS.items() for phrase in phrases),
        key=lambda item: -len(item[0]),
    )
    for phrase, kind in phrases:
        if words == phrase or words.startswith(phrase + " ") or words.startswith(phrase + "("):
            return kind
    for phrase, kind in phrases:
        if re.search(rf"\b{re.escape(phrase)}\b", words):
            return kind
    return None


def status_remainder(text: str) -> str:
    """What a status value says beyond its status word: "Planned (starts after setup)" →
    "starts after setup"."""
    inner = re.search(r"\((.+)\)", text or "")
    if inner:
        return inner.group(1).strip()
    parts = re.split(r"\s+[—–-]\s+|:\s+|,\s+", text or "", maxsplit=1)
    return parts[1].strip() if len(parts) == 2 else ""


def level(text: str) -> str | None:
    """Low, medium or high, from "Med", "H", "🔴", "Very high"…"""
    value = clean_text(text).casefold()
    for emoji, result in (
        ("🔴", Level.HIGH),
        ("🟠", Level.HIGH),
        ("🟡", Level.MEDIUM),
        ("🟢", Level.LOW),
    ):
        if emoji in value:
            return result
    value = strip_symbols(value).strip(" .*_")
    table = {
        Level.HIGH: ("high", "h", "very high", "critical", "severe", "major", "p0", "p1", "3"),
        Level.MEDIUM: (
            "medium",
            "med",
            "m",
            "moderate",
            "mid",
            "p2",
            "2",
            "medium-high",
            "medium high",
            "low-medium",
            "low medium",
        ),
        Level.LOW: ("low", "l", "very low", "minor", "minimal", "negligible", "p3", "1"),
    }
    for result, words in table.items():
        if value in words:
            return result
    first = re.split(r"[\s(/,]", value)[0] if value else ""
    for result, words in table.items():
        if first in words:
            return result
    return None


def priority(text: str) -> str | None:
    value = strip_symbols(clean_text(text)).casefold()
    for choice in Priority:
        if value.startswith(choice.value):
            return choice.value
    mapped = {
        "high": Priority.CRITICAL,
        "must": Priority.CRITICAL,
        "p0": Priority.CRITICAL,
        "p1": Priority.CRITICAL,
        "medium": Priority.REQUIRED,
        "med": Priority.REQUIRED,
        "should": Priority.REQUIRED,
        "p2": Priority.REQUIRED,
        "normal": Priority.REQUIRED,
        "low": Priority.RECOMMENDED,
        "could": Priority.RECOMMENDED,
        "nice to have": Priority.RECOMMENDED,
        "optional": Priority.RECOMMENDED,
        "p3": Priority.RECOMMENDED,
    }
    first = re.split(r"[\s(/,]", value)[0] if value else ""
    return mapped.get(value) or mapped.get(first)


def risk_status(text: str) -> str | None:
    value = strip_symbols(clean_text(text)).casefold()
    for choice in RiskStatus:
        if value.startswith(choice.value):
            return choice.value
    mapped = {
        "mitigated": RiskStatus.CLOSED,
        "resolved": RiskStatus.CLOSED,
        "retired": RiskStatus.CLOSED,
        "active": RiskStatus.OPEN,
        "new": RiskStatus.OPEN,
        "in progress": RiskStatus.MITIGATING,
        "happened": RiskStatus.OCCURRED,
        "realised": RiskStatus.OCCURRED,
        "realized": RiskStatus.OCCURRED,
    }
    return mapped.get(value)


def frequency(text: str) -> str | None:
    value = strip_symbols(clean_text(text)).casefold()
    if not value:
        return None
    if "biweekly" in value or "every two weeks" in value or "fortnight" in value:
        return StakeholderFrequency.BIWEEKLY
    if "month" in value:
        return StakeholderFrequency.MONTHLY
    if "change" in value:
        return StakeholderFrequency.ON_CHANGE
    if "milestone" in value or "completion" in value:
        return StakeholderFrequency.AT_MILESTONES
    if "week" in value:
        return StakeholderFrequency.WEEKLY
    return None


def category(text: str) -> str | None:
    value = clean_text(text).casefold()
    table = {
        CriterionCategory.TECHNICAL: (
            "technical",
            "performance",
            "functional",
            "reliability",
            "engineering",
            "scalability",
        ),
        CriterionCategory.OPERATIONAL: (
            "operational",
            "operations",
            "ops",
            "monitoring",
            "support",
            "operability",
        ),
        CriterionCategory.QUALITY: ("quality", "testing", "security", "qa", "test"),
        CriterionCategory.DOCUMENTATION: ("documentation", "docs", "doc", "training"),
    }
    for result, words in table.items():
        if any(re.search(rf"\b{word}\b", value) for word in words):
            return result
    return None


def criterion_level(text: str) -> str:
    value = clean_text(text).casefold()
    if re.search(r"\b(should|nice to have|optional|could|stretch|bonus|desirable)\b", value):
        return "should"
    return "must"


# --- Section names -------------------------------------------------------------------------

SECTION_NAMES = {
    "summary": (
        "summary",
        "milestone summary",
        "overview",
        "goal",
        "goals",
        "objective",
        "objectives",
        "description",
        "purpose",
        "plan summary",
        "executive summary",
    ),
    "deliverables": ("deliverables", "deliverable", "key deliverables", "deliverables section"),
    "deliverables_summary": (
        "deliverables summary",
        "deliverable summary",
        "deliverables overview",
        "deliverables table",
    ),
    "success": (
        "success criteria",
        "acceptance criteria",
        "success metrics",
        "definition of done",
        "exit criteria",
        "done criteria",
        "completion criteria",
        "success criteria section",
        "plan success criteria",
    ),
    "risks": (
        "risks",
        "risk",
        "risks mitigation",
        "risk register",
        "risk assessment",
        "risks mitigations",
        "risk mitigation",
        "risks and mitigations",
        "key risks",
    ),
    "blockers": (
        "blockers",
        "current blockers",
        "blockers issues",
        "open blockers",
        "blockers and issues",
        "issues and blockers",
        "blockers & issues",
    ),
    "rollback": ("rollback plan", "rollback", "rollback strategy", "rollback procedure"),
    "signoff": (
        "sign off",
        "sign off criteria",
        "sign off roles",
        "signoff",
        "sign offs",
        "signoffs",
        "approvals",
        "approval",
        "signoff roles",
        "signoff criteria",
    ),
    "stakeholders": (
        "stakeholder communication",
        "communication plan",
        "stakeholders",
        "communication",
        "stakeholder communications",
    ),
    "legend": ("status legend", "legend", "key"),
    "details": ("other details",),
}


def section_name(heading: str) -> str:
    """A heading reduced to words: "### 🚨 Risks & Mitigation:" → "risks mitigation"."""
    text = strip_symbols(heading).casefold().replace("-", " ").replace("&", " ")
    text = re.sub(r"^\d+[.)]\s*", "", text)
    text = re.sub(r"\band\b", " ", text)
    text = re.sub(r"[^\w\s]", " ", text)
    return clean_text(text)


def section_kind(heading: str) -> str | None:
    return _SECTION_KINDS.get(section_name(heading))


_SECTION_KINDS = {
    section_name(name): kind for kind, names in SECTION_NAMES.items() for name in names
}


# --- Owners --------------------------------------------------------------------------------

NOBODY = {
    "",
    "-",
    "—",
    "–",
    "tbd",
    "tba",
    "none",
    "nobody",
    "unassigned",
    "n/a",
    "na",
    "?",
    "unknown",
    "to be decided",
    "not assigned",
    "not set",
    "no one",
}


def is_nobody(text: str) -> bool:
    return strip_symbols(clean_text(text)).casefold().strip("*_()") in NOBODY


# --- Dates ---------------------------------------------------------------------------------

MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
MONTH = r"(?P<month>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"


def _safe_date(year: int, month: int, day: int) -> datetime.date | None:
    try:
        return datetime.date(year, month, day)
    except ValueError:
        return None


def _nearest_year(month: int, day: int, reference: datetime.date) -> datetime.date | None:
    candidates = [
        d
        for year in (reference.year - 1, reference.year, reference.year + 1)
        if (d := _safe_date(year, month, day))
    ]
    if not candidates:
        return None
    return min(candidates, key=lambda d: abs((d - reference).days))


def parse_date(text: str, reference: datetime.date | None = None) -> datetime.date | None:
    """A date from "January 28, 2024", "2024-01-28", "28 Jan 2024", "Jan 28", "01/28/2024".

    A date without a year takes the year that puts it nearest `reference` (the milestone's
    target date, or today). Text around the date ("Jan 12 (approval pending)") is ignored.
    """
    if not text:
        return None
    value = clean_text(text).casefold()
    reference = reference or datetime.date.today()
    if match := re.search(r"\b(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\b", value):
        return _safe_date(int(match[1]), int(match[2]), int(match[3]))
    if match := re.search(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b", value):
        first, second, year = int(match[1]), int(match[2]), int(match[3])
        # Month first, as the guide's audience writes; day first when month first is impossible.
        return _safe_date(year, first, second) or _safe_date(year, second, first)
    day = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
    year = r"(?:,?\s*(?P<year>\d{4}))?"
    for pattern in (rf"\b{MONTH}\s+{day}\b{year}", rf"\b{day}\s+{MONTH}{year}"):
        if match := re.search(pattern, value):
            month, day_number = MONTHS[match["month"]], int(match["day"])
            if match["year"]:
                return _safe_date(int(match["year"]), month, day_number)
            return _nearest_year(month, day_number, reference)
    return None


def format_date(value: datetime.date | None) -> str:
    """Dates are written the guide's way, with the year: "January 28, 2024"."""
    return f"{value:%B} {value.day}, {value.year}" if value else ""


# --- Measures ------------------------------------------------------------------------------

COMPARATORS = {"≥": ">=", "≤": "<=", "=>": ">=", "=<": "<=", "==": "="}
MEASURE = re.compile(r"\s*\((?:target|goal)\s*:\s*(?P<body>[^()]*)\)\s*$", re.IGNORECASE)
MEASURE_BODY = re.compile(
    r"^(?P<comparator>>=|<=|=>|=<|==|≥|≤|<|>|=)?\s*(?P<target>-?\d[\d,]*(?:\.\d+)?)\s*"
    r"(?P<unit>[^;]*?)\s*(?:;\s*actual\s*:\s*(?P<actual>.*))?$",
    re.IGNORECASE,
)


def decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", ""))
    except (InvalidOperation, AttributeError):
        return None


def split_measure(text: str):
    """("Throughput", measure) from "Throughput (target: >= 10 jobs/s; actual: 12)".

    measure is None when the text has no "(target: …)"; otherwise a dict with comparator,
    target, unit and actual, or with "problem" when the target cannot be read.
    """
    match = MEASURE.search(text)
    if not match:
        return text, None
    plain = text[: match.start()].rstrip()
    body = clean_text(match["body"])
    parts = MEASURE_BODY.match(body)
    if not parts:
        return plain, {"problem": f"“(target: {body})” has no number to measure against"}
    comparator = parts["comparator"] or ""
    comparator = COMPARATORS.get(comparator, comparator)
    actual_text = clean_text(parts["actual"] or "")
    actual = decimal(actual_text.split()[0]) if actual_text else None
    measure = {
        "comparator": comparator,
        "target": decimal(parts["target"]),
        "unit": clean_text(parts["unit"]).rstrip(",")[:30],
        "actual": actual,
    }
    if (
        actual_text
        and actual is None
        and actual_text.casefold()
        not in (
            "-",
            "—",
            "none",
            "not measured",
            "not measured yet",
            "n/a",
            "tbd",
        )
    ):
        measure["actual_problem"] = f"the actual value “{actual_text}” is not a number"
    if comparator not in Comparator.values:
        measure["comparator"] = ">="
        measure["comparator_defaulted"] = True
    return plain, measure


def format_number(value: Decimal) -> str:
    return f"{value.normalize():f}"


def format_measure(comparator: str, target, unit: str, actual) -> str:
    unit_part = f" {unit}" if unit else ""
    actual_part = f"; actual: {format_number(actual)}" if actual is not None else ""
    return f" (target: {comparator} {format_number(target)}{unit_part}{actual_part})"
