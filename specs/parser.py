"""Markdown spec documents → `specs.document` objects, with every problem's line number.

Two shapes (see the README's "Specs as documents"):

* a **milestone spec** as in the spec guide: an H1 title, `**Field**: value` metadata lines,
  then sections (Summary, Deliverables with numbered H3s, Success Criteria with H3 groups,
  Risks & Mitigation table, Current Blockers, Rollback Plan, Sign-Off…);
* a **plan**: an H1 plan title with metadata lines and one H2 per milestone ("Milestone 2: High
  Availability") whose H3 phases' checklists become deliverables and acceptance criteria.

The parser never raises on a document: whatever it cannot read becomes a `Problem`. It does not
touch the database; owners stay as the text the document names.
"""

import datetime
import re
from dataclasses import dataclass, field

import ftfy

from specs import vocabulary as vocab
from specs.document import (
    ERROR,
    MILESTONE_SHAPE,
    PLAN_SHAPE,
    WARNING,
    BlockerDoc,
    CriterionDoc,
    DeliverableDoc,
    DependencyDoc,
    MilestoneDoc,
    Note,
    ParsedDocument,
    PlanDoc,
    Problem,
    RiskDoc,
    SignoffRoleDoc,
    StakeholderDoc,
)

# Larger uploads are refused before they are read (page, API and command alike).
MAX_BYTES = 2 * 1024 * 1024
TITLE_LIMIT = 200
CRITERION_LIMIT = 300

# --- Reading bytes -------------------------------------------------------------------------


class UnreadableDocument(Exception):
    """The bytes are not a markdown document at all (binary, empty, too large)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.problem = Problem(None, ERROR, code, message)


def decode(data: bytes) -> tuple[str, list[Problem]]:
    """Text from uploaded bytes, or UnreadableDocument saying why not."""
    if len(data) > MAX_BYTES:
        raise UnreadableDocument(
            "too_large",
            f"The file is {len(data) / 1024 / 1024:.1f} MB; spec documents may be at most "
            f"{MAX_BYTES // 1024 // 1024} MB. Split the plan into several documents.",
        )
    if not data.strip():
        raise UnreadableDocument("empty", "The file is empty: there is nothing to import.")
    sample = data[:8192]
    if b"\x00" in data or _control_share(sample) > 0.1:
        raise UnreadableDocument(
            "binary",
            "This is not a text file (it contains binary data). Upload the spec as markdown "
            "(.md) text.",
        )
    problems = []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        text = data.decode("cp1252", errors="replace")
        problems.append(
            Problem(
                None,
                WARNING,
                "not_utf8",
                f"The file is not UTF-8 (byte {error.start}); it was read as Windows-1252. "
                "Check accented letters and symbols in the preview.",
            )
        )
    return text, problems


def _control_share(sample: bytes) -> float:
    controls = sum(1 for byte in sample if byte < 32 and byte not in (9, 10, 12, 13))
    return controls / max(len(sample), 1)


# --- Lines, sections and blocks --------------------------------------------------------------

HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")
CHECK = re.compile(
    r"^(?P<indent>\s*)(?:[-*+]|\d+[.)])\s+\[(?P<mark>[ xX✓✔✅*-]?)\]\s*(?P<text>.*)$"
)
BULLET = re.compile(r"^(?P<indent>\s*)(?P<marker>[-*+]|\d+[.)])\s+(?P<text>.*)$")
FIELD_BOLD = re.compile(
    r"^\s*(?:[-*+]\s+)?(?:\*\*|__)(?P<label>[^*_\n]{1,60}?)(?:\s*:\s*(?:\*\*|__)|(?:\*\*|__)\s*:)"
    r"\s*(?P<value>.*)$"
)
NEXT_FIELD = re.compile(r"\s(?:\*\*|__)[^*_\n]{1,40}?(?::\s*(?:\*\*|__)|(?:\*\*|__)\s*:)")
TABLE_ROW = re.compile(r"^\s*\|.*\|?\s*$")
TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")

# Plain "Owner: Alice" lines count as fields only for these labels (others are prose).
PLAIN_FIELD_LABELS = {
    "target date",
    "owner",
    "status",
    "priority",
    "start date",
    "estimated effort",
    "goal",
    "due date",
    "deadline",
    "key",
    "plan",
    "depends on",
    "effort",
    "duration",
}
PLAIN_FIELD = re.compile(r"^(?P<label>[A-Za-z][A-Za-z ]{1,30}):\s+(?P<value>\S.*)$")


@dataclass
class Line:
    number: int
    text: str
    in_code: bool = False


@dataclass
class Section:
    level: int
    title: str
    line: int
    body: list[Line] = field(default_factory=list)
    children: list["Section"] = field(default_factory=list)


@dataclass
class Block:
    kind: str  # field, label, check, item, table, text, blank, code
    line: int
    text: str = ""
    label: str = ""
    value: str = ""
    checked: bool = False
    indent: int = 0
    children: list[Line] = field(default_factory=list)
    rows: list[tuple[int, list[str]]] = field(default_factory=list)


def to_lines(text: str) -> list[Line]:
    lines, fence = [], None
    for number, raw in enumerate(text.split("\n"), start=1):
        raw = raw.rstrip("\r")
        match = FENCE.match(raw)
        if fence:
            lines.append(Line(number, raw, in_code=True))
            if match and match.group(1) == fence:
                fence = None
            continue
        if match:
            fence = match.group(1)
            lines.append(Line(number, raw, in_code=True))
            continue
        lines.append(Line(number, raw))
    return lines


def build_tree(lines: list[Line]) -> Section:
    root = Section(0, "", 0)
    stack = [root]
    for line in lines:
        match = None if line.in_code else HEADING.match(line.text)
        if match:
            section = Section(len(match.group(1)), match.group(2).strip(), line.number)
            while stack[-1].level >= section.level:
                stack.pop()
            stack[-1].children.append(section)
            stack.append(section)
        else:
            stack[-1].body.append(line)
    return root


def _indent(text: str) -> int:
    expanded = text.expandtabs(4)
    return len(expanded) - len(expanded.lstrip(" "))


def field_match(text: str):
    """(label, value) for `**Label**: value`, `**Label:** value` or a known plain label."""
    match = FIELD_BOLD.match(text)
    if match:
        return vocab.strip_symbols(match["label"]).strip(), match["value"].strip()
    match = PLAIN_FIELD.match(text)
    if match and match["label"].strip().casefold() in PLAIN_FIELD_LABELS:
        return match["label"].strip(), match["value"].strip()
    return None


def blocks(body: list[Line]) -> list[Block]:
    """Group a section's lines into fields, checklists (with their nested lines), tables…"""
    result: list[Block] = []
    index = 0
    while index < len(body):
        line = body[index]
        text = line.text
        if line.in_code:
            result.append(Block("code", line.number, text=text))
            index += 1
            continue
        if not text.strip():
            result.append(Block("blank", line.number))
            index += 1
            continue
        if TABLE_ROW.match(text) and text.strip().startswith("|"):
            table = Block("table", line.number)
            while index < len(body) and not body[index].in_code:
                row = body[index].text
                if not (row.strip().startswith("|") and TABLE_ROW.match(row)):
                    break
                if not TABLE_RULE.match(row):
                    table.rows.append((body[index].number, split_row(row)))
                index += 1
            result.append(table)
            continue
        check = CHECK.match(text)
        bullet = BULLET.match(text)
        if (check or bullet) and not FIELD_BOLD.match(text):
            indent = _indent(text)
            children, index = _nested(body, index + 1, indent)
            if check:
                mark = check["mark"]
                block = Block("check", line.number, text=check["text"].strip(), indent=indent)
                block.checked = mark not in ("", " ", "-")
            else:
                block = Block("item", line.number, text=bullet["text"].strip(), indent=indent)
                block.label = bullet["marker"]
            block.children = children
            result.append(block)
            continue
        matched = field_match(text)
        if matched:
            label, value = matched
            for part_label, part_value in _split_fields(label, value):
                kind = "field" if part_value else "label"
                result.append(
                    Block(kind, line.number, text=text, label=part_label, value=part_value)
                )
            index += 1
            continue
        result.append(Block("text", line.number, text=text))
        index += 1
    return result


def _split_fields(label: str, value: str):
    """`**Duration:** 1 week **Type:** Tool` holds two fields on one line."""
    parts = [(label, value)]
    while True:
        label, value = parts[-1]
        match = NEXT_FIELD.search(value)
        if not match:
            return parts
        following = field_match(value[match.start() :].strip())
        if not following:
            return parts
        parts[-1] = (label, value[: match.start()].strip())
        parts.append(following)


def _nested(body: list[Line], index: int, indent: int) -> tuple[list[Line], int]:
    """Lines under a list item: more indented, or blank lines followed by such lines."""
    children = []
    while index < len(body):
        line = body[index]
        if not line.text.strip():
            ahead = index
            while ahead < len(body) and not body[ahead].text.strip():
                ahead += 1
            if ahead < len(body) and _indent(body[ahead].text) > indent:
                children.extend(body[index:ahead])
                index = ahead
                continue
            break
        if _indent(line.text) <= indent:
            break
        children.append(line)
        index += 1
    return children, index


def split_row(row: str) -> list[str]:
    text = row.strip()
    if text.startswith("|"):
        text = text[1:]
    if text.endswith("|") and not text.endswith("\\|"):
        text = text[:-1]
    cells = re.split(r"(?<!\\)\|", text)
    return [cell.strip().replace("\\|", "|") for cell in cells]


def dedent(lines: list[Line]) -> str:
    texts = [line.text.expandtabs(4) for line in lines]
    widths = [_indent(t) for t in texts if t.strip()]
    cut = min(widths) if widths else 0
    return "\n".join(t[cut:] for t in texts).strip("\n")


def cell_text(text: str) -> str:
    """A table cell or one-line field: `<br>` stands for a line break."""
    parts = re.split(r"<br\s*/?>", text or "", flags=re.IGNORECASE)
    return "\n".join(plain(part) for part in parts).strip()


def plain(text: str) -> str:
    """Inline text without emphasis markers around it."""
    text = vocab.clean_text(text)
    text = re.sub(r"^(\*\*|__)(.*)\1$", r"\2", text)
    return text.strip()


def section_markdown(section: Section, *, skip: set[int] = frozenset()) -> str:
    """The section's content as markdown, its sub-headings starting at ###.

    Sub-sections whose heading line is in `skip` (handled elsewhere) are left out.
    """
    parts = [_body_text(section.body)]
    for child in section.children:
        if child.line in skip:
            continue
        parts.append(_subtree_markdown(child, depth=3, skip=skip))
    return "\n\n".join(part for part in parts if part.strip()).strip()


def _subtree_markdown(section: Section, *, depth: int, skip) -> str:
    heading = "#" * min(depth, 6) + " " + section.title
    parts = [heading, _body_text(section.body)]
    for child in section.children:
        if child.line not in skip:
            parts.append(_subtree_markdown(child, depth=depth + 1, skip=skip))
    return "\n\n".join(part for part in parts if part.strip())


def _body_text(lines: list[Line]) -> str:
    return "\n".join(line.text.rstrip() for line in lines).strip("\n")


def shift_headings(markdown: str, levels: int) -> str:
    """Move every heading of a stored note `levels` deeper (outside code fences)."""
    if not levels:
        return markdown
    out = []
    for line in to_lines(markdown):
        match = None if line.in_code else HEADING.match(line.text)
        if match:
            depth = min(len(match.group(1)) + levels, 6)
            out.append("#" * depth + " " + match.group(2))
        else:
            out.append(line.text)
    return "\n".join(out)


# --- Titles --------------------------------------------------------------------------------

NUMBERING = re.compile(r"^(?:\d+[.)]|\d+\s*[-–—:])\s*")
MILESTONE_PREFIX = re.compile(r"^milestone\s+\d+\s*[:.\-–—]\s*", re.IGNORECASE)
MILESTONE_LIKE = re.compile(
    r"^(milestone|phase|stage|sprint|release|iteration|step|m)\s*[\d.]+\b", re.IGNORECASE
)
STATUS_PHRASES = sorted(
    {phrase for phrases in vocab.STATUS_WORDS.values() for phrase in phrases}, key=len, reverse=True
)


def _is_status_phrase(text: str) -> bool:
    return vocab.clean_text(text).casefold() in STATUS_PHRASES


def clean_title(raw: str, legend: dict | None = None) -> tuple[str, str | None]:
    """(title, status kind) from "✅ 1. Redis Queue — COMPLETE": numbering, emoji and a trailing
    status ("🚧", "(In Progress)", "— done", "COMPLETE") are taken off; a parenthesis or a word
    that is not clearly a status ("(Production-Ready)", "Make it done") stays."""
    title = vocab.clean_text(raw)
    status = None
    lead = title[: len(title) - len(title.lstrip("".join(c for c in title if vocab._is_symbol(c))))]
    if lead and _has_status_emoji(lead, legend):
        status = vocab.status_kind(lead, legend)
    title = title[len(lead) :].strip()
    while True:
        before = title
        bare = vocab.strip_symbols(title)
        if bare != title:
            status = status or vocab.status_kind(title[len(bare) :], legend)
            title = bare
        match = re.search(r"\(([^()]*)\)\s*$", title)
        if match and match.start() > 0 and _is_status_phrase(match.group(1)):
            status = status or vocab.status_kind(match.group(1))
            title = title[: match.start()].rstrip()
        for phrase in STATUS_PHRASES:
            if not title.casefold().endswith(phrase) or len(title) == len(phrase):
                continue
            head, tail = title[: -len(phrase)], title[-len(phrase) :]
            separated = head.rstrip() != head and head.rstrip()[-1:] in "-–—:|"
            if head.rstrip() != head and (separated or tail.isupper() or bare != before):
                status = status or vocab.status_kind(tail)
                title = head.rstrip().rstrip("-–—:|").rstrip()
            break
        if title == before:
            break
    title = NUMBERING.sub("", title).strip()
    return vocab.strip_symbols(title) or vocab.clean_text(raw), status


def _has_status_emoji(text: str, legend) -> bool:
    return any(emoji in text for emoji in {**vocab.STATUS_EMOJI, **(legend or {})})


# --- The parser ----------------------------------------------------------------------------

MILESTONE_FIELDS = {
    "key": ("key", "id", "milestone key", "milestone id"),
    "plan": ("plan", "plan key"),
    "target_date": (
        "target date",
        "date",
        "target",
        "due",
        "due date",
        "deadline",
        "target completion",
        "completion date",
        "end date",
        "finish",
        "target completion date",
    ),
    "start_date": ("start date", "start", "starts", "kickoff", "kick off"),
    "owner": ("owner", "owners", "lead", "responsible", "owned by", "accountable", "dri"),
    "status": ("status", "state"),
    "priority": ("priority",),
    "estimated_effort": ("estimated effort", "effort", "estimate", "duration", "size"),
    "goal": ("goal", "objective"),
    "depends_on": ("depends on", "dependencies", "blocked by", "predecessors", "after"),
    "health": ("health",),
}
PLAN_FIELDS = {
    "key": ("key", "id", "plan key", "plan id"),
    "owner": ("owner", "owners", "lead", "responsible", "owned by"),
    "status": ("status", "state"),
    "start_date": ("start date", "start", "starts", "kickoff"),
    "target_date": (
        "target date",
        "target",
        "due",
        "due date",
        "deadline",
        "end date",
        "date",
        "completion date",
    ),
}
DELIVERABLE_FIELDS = {
    "description": ("description", "summary", "details", "what"),
    "owner": ("owner", "owners", "assignee", "responsible", "owned by", "lead"),
    "status": ("status", "state"),
    "target_date": ("target date", "target", "due", "due date", "deadline", "eta"),
}
BLOCKER_FIELDS = {
    "issue": ("issue", "description", "problem", "what"),
    "impact": ("impact", "effect"),
    "owner": ("owner", "assignee", "responsible"),
    "next_action": ("action", "next action", "next step", "next steps", "actions"),
    "target_resolution_date": (
        "target resolution",
        "target resolution date",
        "target",
        "target date",
        "due",
        "resolve by",
        "eta",
    ),
    "priority": ("priority", "severity"),
    "raised_on": ("raised", "raised on", "since", "opened", "reported"),
    "resolved_on": ("resolved", "resolved on", "closed"),
    "resolution": ("resolution",),
    "status": ("status", "state"),
}
RISK_COLUMNS = {
    "title": ("risk", "risks", "description", "risk description", "name", "title"),
    "likelihood": ("likelihood", "probability", "prob", "chance"),
    "impact": ("impact", "severity", "consequence"),
    "mitigation": ("mitigation", "mitigations", "mitigation strategy", "response"),
    "fallback": ("fallback", "contingency", "plan b"),
    "owner": ("owner",),
    "status": ("status",),
    "description": ("details", "notes", "risk details", "comments"),
}
RISK_REQUIRED = ("title", "likelihood", "impact", "mitigation")
RISK_HEADERS = {
    "title": "Risk",
    "likelihood": "Likelihood",
    "impact": "Impact",
    "mitigation": "Mitigation",
}
STAKEHOLDER_COLUMNS = {
    "name": ("stakeholder", "who", "name", "audience", "person", "group"),
    "channel": ("channel", "how", "medium", "method"),
    "frequency": ("frequency", "update frequency", "how often", "cadence", "when"),
    "content": ("content", "what", "topics", "information"),
}
FILLER_SUMMARY_TABLE = {"target": ("target", "target date", "due", "date", "eta")}
NO_ROLES = "No sign-off roles."  # what the export writes for a milestone without roles
CONTAINERS_EXTRACTED = {"risks", "blockers", "deliverables", "success", "rollback", "signoff"}


def _field_key(label: str, table: dict) -> str | None:
    name = vocab.section_name(label)
    for key, names in table.items():
        if name in names:
            return key
    return None


def _columns(header: list[str], table: dict) -> dict[str, int]:
    found = {}
    for position, cell in enumerate(header):
        key = _field_key(plain(cell), table)
        if key and key not in found:
            found[key] = position
    return found


class Parser:
    def __init__(self, text: str, *, shape: str | None = None, today: datetime.date | None = None):
        self.text = text
        self.requested_shape = shape
        self.today = today or datetime.date.today()
        self.problems: list[Problem] = []
        self.legend: dict = {}

    # -- reporting

    def warn(self, line, code, message):
        self.problems.append(Problem(line, WARNING, code, message))

    def error(self, line, code, message):
        self.problems.append(Problem(line, ERROR, code, message))

    # -- entry point

    def parse(self) -> ParsedDocument:
        text = self.text.replace("\r\n", "\n").replace("\r", "\n")
        # Mojibake only hides in non-ASCII lines; repairing line by line keeps line numbers.
        text = "\n".join(
            line if line.isascii() else ftfy.fix_text(line) for line in text.split("\n")
        )
        text = _strip_front_matter(text)
        root = build_tree(to_lines(text))
        headings = _all_sections(root)
        if not headings:
            self.error(
                1,
                "no_title",
                "The document has no headings. A spec starts with its title as a first-level "
                "heading, e.g. “# Phase 1: Export Infrastructure Ready”.",
            )
            return ParsedDocument(MILESTONE_SHAPE, problems=self.problems)
        top = min(section.level for section in headings)
        title_sections = [s for s in headings if s.level == top]
        if top != 1:
            self.warn(
                title_sections[0].line,
                "no_h1",
                f"The document has no first-level heading; “{title_sections[0].title}” was "
                "taken as its title.",
            )
        title_section = title_sections[0]
        self._legend_from(headings)
        shape = self.requested_shape or self._detect_shape(title_section)
        if shape == PLAN_SHAPE:
            document = self._plan(title_section)
        else:
            document = ParsedDocument(MILESTONE_SHAPE, milestones=[self._milestone(title_section)])
        for extra in title_sections[1:]:
            self.warn(
                extra.line,
                "second_title",
                f"A second top-level heading “{extra.title}” was found; its content is kept "
                "as a note.",
            )
            target = document.plan if document.plan else document.milestones[0]
            target.notes.append(Note(plain(extra.title), section_markdown(extra), extra.line))
        self._check_before_title(root, title_section)
        document.problems = sorted(self.problems, key=lambda p: (p.line or 0, p.severity))
        return document

    def _check_before_title(self, root: Section, title: Section):
        stray = [line for line in root.body if line.text.strip()]
        if stray and title in root.children:
            self.warn(
                stray[0].number,
                "text_before_title",
                "Text before the title heading was ignored; put it under a section.",
            )

    def _legend_from(self, sections: list[Section]):
        for section in sections:
            if vocab.section_kind(section.title) != "legend":
                continue
            for line in section.body:
                text = vocab.clean_text(line.text.lstrip("-*+ "))
                if not text or text[0].isalnum():
                    continue
                symbol = text.split()[0]
                meaning = text[len(symbol) :].strip(" -=:")
                kind = vocab.status_kind(meaning)
                if kind and not any(ch.isalnum() for ch in symbol):
                    self.legend[symbol] = kind

    def _detect_shape(self, title: Section) -> str:
        for block in blocks(title.body):
            is_type = block.kind == "field" and vocab.section_name(block.label) in (
                "type",
                "document",
            )
            if is_type and vocab.section_name(block.value) == "plan":
                return PLAN_SHAPE
        kinds = [vocab.section_kind(child.title) for child in title.children]
        if "deliverables" in kinds:
            return MILESTONE_SHAPE
        for child in title.children:
            if vocab.section_kind(child.title):
                continue
            clean, _ = clean_title(child.title, self.legend)
            if MILESTONE_LIKE.match(clean) or self._has_milestone_fields(child):
                return PLAN_SHAPE
        return MILESTONE_SHAPE

    def _has_milestone_fields(self, section: Section) -> bool:
        signals = {"goal", "priority", "estimated_effort", "status", "target_date"}
        for block in blocks(section.body):
            if block.kind == "field" and _field_key(block.label, MILESTONE_FIELDS) in signals:
                return True
        return False

    # -- plan shape

    def _plan(self, title_section: Section) -> ParsedDocument:
        title, _ = clean_title(title_section.title, self.legend)
        plan = PlanDoc(title=self._limit(title, title_section.line, "plan title"))
        plan.line = title_section.line
        other_details = []
        summary_parts = []
        for block in blocks(title_section.body):
            if block.kind == "field":
                key = _field_key(block.label, PLAN_FIELDS)
                if vocab.section_name(block.label) in ("type", "document"):
                    continue
                self._plan_field(plan, key, block, other_details)
            elif block.kind in ("text", "item", "check", "code") or block.kind == "label":
                summary_parts.append(self._block_text(block))
        if summary_parts:
            plan.summary = "\n".join(summary_parts).strip()
        if other_details:
            plan.notes.append(Note("Other details", "\n".join(other_details), title_section.line))
        reference = plan.target_date or plan.start_date or self.today
        self._dates_pending(plan, title_section, reference)
        number = 0
        for child in title_section.children:
            kind = vocab.section_kind(child.title)
            if kind == "summary":
                text = section_markdown(child)
                plan.summary = f"{plan.summary}\n\n{text}".strip() if plan.summary else text
            elif kind == "success":
                plan.criteria.extend(self._checklist_criteria(child, plan_level=True))
            elif kind == "stakeholders":
                plan.stakeholders.extend(self._stakeholders(child))
            elif kind in ("legend", "details"):
                plan.notes.append(Note(plain(child.title), section_markdown(child), child.line))
            elif kind == "risks":
                self.warn(
                    child.line,
                    "plan_risks",
                    "Risks belong to milestones in Milepost; this plan-level risk section is "
                    "kept as a note. Move each risk under its milestone to import it.",
                )
                plan.notes.append(Note(plain(child.title), section_markdown(child), child.line))
            elif kind is None and self._is_milestone_section(child):
                number += 1
                milestone = self._milestone(child, plan_reference=reference)
                plan.milestones.append(milestone)
            else:
                plan.notes.append(Note(plain(child.title), section_markdown(child), child.line))
        if not plan.milestones:
            self.warn(
                title_section.line,
                "no_milestones",
                "The plan has no milestone sections (one H2 per milestone, e.g. “## Milestone "
                "1: Foundation”).",
            )
        return ParsedDocument(PLAN_SHAPE, milestones=plan.milestones, plan=plan)

    def _dates_pending(self, plan, section, reference):
        """Plan dates without a year are read against the plan's own other date."""
        for block in blocks(section.body):
            if block.kind != "field":
                continue
            key = _field_key(block.label, PLAN_FIELDS)
            if key in ("start_date", "target_date") and getattr(plan, key) is None:
                value = vocab.parse_date(block.value, reference)
                if value:
                    setattr(plan, key, value)

    def _plan_field(self, plan: PlanDoc, key, block: Block, other_details: list):
        value = plain(block.value)
        if key == "key":
            plan.key = value
        elif key == "owner":
            plan.owner = "" if vocab.is_nobody(value) else value
        elif key == "status":
            kind = vocab.status_kind(value, self.legend)
            if kind in vocab.PLAN_STATUS:
                plan.status = vocab.PLAN_STATUS[kind]
            elif vocab.clean_text(value).casefold() == "archived":
                plan.status = "archived"
            else:
                self.warn(
                    block.line,
                    "unknown_status",
                    f"Plan status “{value}” is not one "
                    "Milepost knows (draft, active, completed, archived); kept Active.",
                )
        elif key in ("start_date", "target_date"):
            parsed = vocab.parse_date(value, None) if re.search(r"\d{4}", value) else None
            if parsed:
                setattr(plan, key, parsed)
            elif not vocab.parse_date(value, self.today):
                self.warn(
                    block.line,
                    "bad_date",
                    f"“{value}” is not a date Milepost can read "
                    "(try 2024-01-28 or January 28, 2024); left empty.",
                )
        else:
            other_details.append(f"**{block.label}**: {block.value}")

    def _is_milestone_section(self, section: Section) -> bool:
        clean, _ = clean_title(section.title, self.legend)
        if MILESTONE_LIKE.match(clean) or self._has_milestone_fields(section):
            return True
        if section.children:
            return True
        return any(b.kind == "check" for b in blocks(section.body))

    # -- milestone

    def _milestone(self, section: Section, plan_reference=None) -> MilestoneDoc:
        raw_title, title_status = clean_title(section.title, self.legend)
        if section.level > 1:
            raw_title = MILESTONE_PREFIX.sub("", raw_title) or raw_title
        milestone = MilestoneDoc(
            title=self._limit(raw_title, section.line, "milestone title"), line=section.line
        )
        if title_status:
            milestone.status = vocab.MILESTONE_STATUS[title_status]
        meta_blocks = blocks(section.body)
        # The reference for dates without a year: the milestone's own dated target, if any.
        reference = plan_reference or self.today
        for block in meta_blocks:
            if block.kind == "field" and _field_key(block.label, MILESTONE_FIELDS) == "target_date":
                full = (
                    vocab.parse_date(block.value, None)
                    if re.search(r"\d{4}", block.value)
                    else None
                )
                if full:
                    reference = full
                    break
        self.reference = reference
        other_details, summary_parts = [], []
        for block in meta_blocks:
            if block.kind == "field":
                key = _field_key(block.label, MILESTONE_FIELDS)
                if key:
                    milestone.field_lines.setdefault(key, block.line)
                self._milestone_field(milestone, key, block, other_details, summary_parts)
            elif block.kind in ("text", "item", "check", "code", "label", "table"):
                summary_parts.append(self._block_text(block))
        if other_details:
            milestone.notes.append(Note("Other details", "\n".join(other_details), section.line))
        has_deliverables_section = any(
            vocab.section_kind(s.title) == "deliverables" for s in _all_sections(section)
        )
        for child in section.children:
            self._milestone_section(milestone, child, has_deliverables_section, summary_parts)
        if summary_parts:
            summary = "\n".join(p for p in summary_parts if p is not None).strip()
            milestone.summary = "\n\n".join(x for x in (milestone.summary, summary) if x).strip()
        return milestone

    def _milestone_field(self, milestone, key, block, other_details, summary_parts):
        value = plain(block.value)
        if key == "key":
            milestone.key = value.split()[0] if value else ""
        elif key == "plan":
            milestone.plan_ref = value
        elif key in ("target_date", "start_date"):
            parsed = vocab.parse_date(value, self.reference)
            if parsed:
                setattr(milestone, key, parsed)
            elif not vocab.is_nobody(value):
                self.warn(
                    block.line,
                    "bad_date",
                    f"“{value}” is not a date Milepost can read "
                    "(try 2024-01-28 or January 28, 2024); left empty.",
                )
        elif key == "owner":
            milestone.owner = "" if vocab.is_nobody(value) else value
        elif key == "status":
            kind = vocab.status_kind(value, self.legend)
            if kind is None:
                self.warn(
                    block.line,
                    "unknown_status",
                    f"Status “{value}” is not one Milepost "
                    "knows (planned, in progress, completed, cancelled); kept Planned.",
                )
            else:
                milestone.status = vocab.MILESTONE_STATUS[kind]
                if "at risk" in value.casefold():
                    self.warn(
                        block.line,
                        "health_is_computed",
                        "“At Risk” is health, which "
                        "Milepost computes from the facts; imported as In progress.",
                    )
        elif key == "priority":
            choice = vocab.priority(value)
            if choice:
                milestone.priority = choice
            else:
                self.warn(
                    block.line,
                    "unknown_priority",
                    f"Priority “{value}” is not one "
                    "Milepost knows (critical, required, recommended); kept Required.",
                )
        elif key == "estimated_effort":
            milestone.estimated_effort = value[:60]
        elif key == "goal":
            summary_parts.insert(0, block.value.strip())
        elif key == "depends_on":
            milestone.depends_on.extend(self._dependencies(value, block.line))
        elif key == "health":
            pass  # computed by Milepost, never imported
        else:
            other_details.append(f"**{block.label}**: {block.value}")

    def _dependencies(self, value: str, line: int) -> list[DependencyDoc]:
        found = []
        for match in re.finditer(r"\b([A-Z][A-Z0-9]{0,7}-\d{1,6})\b(?:\s*\(\+(\d+)\s*d)?", value):
            found.append(DependencyDoc(match[1], int(match[2] or 0)))
        if not found and not vocab.is_nobody(value):
            self.warn(
                line,
                "bad_dependency",
                f"“{value}” names no milestone key (e.g. MLS-001); no dependency imported.",
            )
        return found

    def _milestone_section(self, milestone, child, has_deliverables_section, summary_parts):
        kind = vocab.section_kind(child.title)
        if kind == "summary":
            milestone.summary = "\n\n".join(
                x for x in (milestone.summary, section_markdown(child)) if x
            )
        elif kind == "deliverables":
            milestone.deliverables.extend(self._deliverables(child))
        elif kind == "deliverables_summary":
            self._deliverables_summary(milestone, child)
        elif kind == "success":
            milestone.success_criteria.extend(self._success(child))
        elif kind == "risks":
            milestone.risks.extend(self._risks(child))
        elif kind == "blockers":
            milestone.blockers.extend(self._blockers(child))
        elif kind == "rollback":
            text = section_markdown(child)
            milestone.rollback_plan = "\n\n".join(x for x in (milestone.rollback_plan, text) if x)
        elif kind == "signoff":
            self._signoff(milestone, child)
        elif not has_deliverables_section and any(b.kind == "check" for b in blocks(child.body)):
            milestone.deliverables.append(self._phase(child))
        else:
            self._note(milestone, child, has_deliverables_section)

    def _note(self, milestone, section, has_deliverables_section):
        """An unknown section is kept as a note, minus the known sections inside it."""
        extracted = set()
        for inner in _all_sections(section)[1:]:
            if inner.line in extracted:
                continue
            kind = vocab.section_kind(inner.title)
            if kind in CONTAINERS_EXTRACTED and not _inside(inner, extracted, section):
                self._milestone_section(milestone, inner, has_deliverables_section, [])
                extracted.add(inner.line)
        body = section_markdown(section, skip=extracted)
        if body or section.title:
            milestone.notes.append(Note(plain(section.title), body, section.line))

    # -- deliverables

    def _deliverables(self, section: Section) -> list[DeliverableDoc]:
        found = []
        for child in section.children:
            found.append(self._deliverable(child))
        for block in blocks(section.body):
            if block.kind in ("check", "item") and block.indent == 0:
                found.append(self._deliverable_from_item(block))
        return found

    def _deliverable(self, section: Section) -> DeliverableDoc:
        title, status = clean_title(section.title, self.legend)
        deliverable = DeliverableDoc(
            title=self._limit(title, section.line, "deliverable title"), line=section.line
        )
        if status:
            deliverable.status = vocab.DELIVERABLE_STATUS.get(status, "planned")
        self._deliverable_body(deliverable, blocks(section.body))
        for child in section.children:
            kind = vocab.section_kind(child.title)
            if kind == "success" or "acceptance" in child.title.casefold():
                deliverable.criteria.extend(self._checklist_criteria(child))
            else:
                extra = _subtree_markdown(child, depth=4, skip=set())
                deliverable.description = "\n\n".join(
                    x for x in (deliverable.description, extra) if x
                )
        return deliverable

    def _deliverable_body(self, deliverable, body_blocks):
        label = None
        description = [deliverable.description] if deliverable.description else []
        in_description = False
        for block in body_blocks:
            if block.kind == "label":
                label = vocab.section_name(block.label)
                in_description = label in DELIVERABLE_FIELDS["description"]
                if not in_description and not _criteria_label(label):
                    description.append(f"{block.label}:")
                continue
            if block.kind == "field":
                key = _field_key(block.label, DELIVERABLE_FIELDS)
                label, in_description = None, key == "description"
                self._deliverable_field(deliverable, key, block, description)
                continue
            if block.kind == "check" or (
                block.kind == "item" and label is not None and _criteria_label(label)
            ):
                deliverable.criteria.append(self._criterion(block))
                in_description = False
                continue
            if block.kind == "blank":
                if description and description[-1] != "":
                    description.append("")
                continue
            description.append(self._block_text(block))
        deliverable.description = "\n".join(description).strip()

    def _deliverable_field(self, deliverable, key, block, description):
        value = plain(block.value)
        if key == "description":
            description.append(block.value.strip())
        elif key == "owner":
            deliverable.owner = "" if vocab.is_nobody(value) else value
        elif key == "status":
            kind = vocab.status_kind(value, self.legend)
            if kind in vocab.DELIVERABLE_STATUS:
                deliverable.status = vocab.DELIVERABLE_STATUS[kind]
                remainder = vocab.status_remainder(value)
                if remainder:
                    description.append(f"Status note: {remainder}")
            else:
                self.warn(
                    block.line,
                    "unknown_status",
                    f"Deliverable status “{value}” is not "
                    "one Milepost knows (planned, in progress, in review, accepted); kept "
                    "Planned.",
                )
                description.append(f"Status note: {value}")
        elif key == "target_date":
            parsed = vocab.parse_date(value, self.reference)
            if parsed:
                deliverable.target_date = parsed
            else:
                self.warn(
                    block.line,
                    "bad_date",
                    f"“{value}” is not a date Milepost can read; "
                    "the deliverable's target date is left empty.",
                )
        else:
            description.append(f"{block.label}: {block.value}")

    def _deliverable_from_item(self, block: Block) -> DeliverableDoc:
        title, status = clean_title(block.text, self.legend)
        deliverable = DeliverableDoc(
            title=self._limit(title, block.line, "deliverable title"), line=block.line
        )
        if block.kind == "check" and block.checked:
            deliverable.status = "accepted"
        elif status:
            deliverable.status = vocab.DELIVERABLE_STATUS.get(status, "planned")
        nested = blocks([Line(x.number, x.text) for x in _dedent_lines(block.children)])
        self._deliverable_body(deliverable, nested)
        return deliverable

    def _phase(self, section: Section) -> DeliverableDoc:
        """A plan's phase: its checklists are the acceptance criteria, the rest describes it."""
        title, status = clean_title(section.title, self.legend)
        deliverable = DeliverableDoc(
            title=self._limit(title, section.line, "phase title"), line=section.line
        )
        if status:
            deliverable.status = vocab.DELIVERABLE_STATUS.get(status, "planned")
        self._deliverable_body(deliverable, blocks(section.body))
        for child in section.children:
            if any(b.kind == "check" for b in blocks(child.body)):
                for block in blocks(child.body):
                    if block.kind == "check":
                        deliverable.criteria.append(self._criterion(block))
            else:
                extra = _subtree_markdown(child, depth=4, skip=set())
                deliverable.description = "\n\n".join(
                    x for x in (deliverable.description, extra) if x
                )
        return deliverable

    def _deliverables_summary(self, milestone: MilestoneDoc, section: Section):
        """The guide's summary table repeats the deliverables; its Target column fills their
        target dates by row order when the counts agree. Otherwise it is kept as a note."""
        tables = [b for b in blocks(section.body) if b.kind == "table"]
        used = False
        if len(tables) == 1 and tables[0].rows:
            header, *rows = tables[0].rows
            columns = _columns(header[1], FILLER_SUMMARY_TABLE)
            if "target" in columns and len(rows) == len(milestone.deliverables):
                for (_line, cells), deliverable in zip(rows, milestone.deliverables, strict=True):
                    cell = cells[columns["target"]] if columns["target"] < len(cells) else ""
                    parsed = vocab.parse_date(cell, self.reference)
                    if parsed and deliverable.target_date is None:
                        deliverable.target_date = parsed
                used = True
        if not used:
            milestone.notes.append(
                Note(plain(section.title), section_markdown(section), section.line)
            )

    # -- criteria

    def _criterion(self, block: Block, *, category="technical", level="must") -> CriterionDoc:
        raw = block.text
        text, measure = vocab.split_measure(raw)
        text = vocab.clean_text(text)
        criterion = CriterionDoc(
            text=text, checked=block.checked, category=category, level=level, line=block.line
        )
        if block.children:
            criterion.description = dedent(block.children)
        if measure:
            if "problem" in measure:
                criterion.measure_problem = measure["problem"]
                criterion.text = vocab.clean_text(raw)
            else:
                criterion.comparator = measure["comparator"]
                criterion.target = measure["target"]
                criterion.unit = measure["unit"]
                criterion.actual = measure["actual"]
                criterion.checked = False  # a measured criterion is met by its actual value
                if measure.get("comparator_defaulted"):
                    self.warn(
                        block.line,
                        "comparator_defaulted",
                        "The target names no comparator (<, <=, =, >=, >); >= was assumed.",
                    )
                if measure.get("actual_problem"):
                    self.warn(
                        block.line,
                        "bad_actual",
                        f"In this criterion {measure['actual_problem']}; "
                        "no actual value was imported.",
                    )
        if not criterion.text:
            criterion.text = "(untitled criterion)"
            self.warn(block.line, "empty_item", "A checklist item has no text.")
        if len(criterion.text) > CRITERION_LIMIT:
            self.warn(
                block.line,
                "text_shortened",
                f"The criterion is {len(criterion.text)} "
                f"characters; the first {CRITERION_LIMIT} are its text, the whole is kept "
                "as its description.",
            )
            criterion.description = "\n\n".join(
                x for x in (criterion.text, criterion.description) if x
            )
            criterion.text = criterion.text[: CRITERION_LIMIT - 1] + "…"
        return criterion

    def _checklist_criteria(
        self, section: Section, *, plan_level=False, category="technical", level="must"
    ) -> list[CriterionDoc]:
        found = []
        label_category, label_level = category, level
        for block in blocks(section.body):
            if block.kind == "label":
                label_category = vocab.category(block.label) or category
                label_level = vocab.criterion_level(block.label)
            elif block.kind in ("check", "item") and block.indent == 0:
                found.append(self._criterion(block, category=label_category, level=label_level))
        for child in section.children:
            found.extend(
                self._checklist_criteria(
                    child,
                    plan_level=plan_level,
                    category=category,
                    level=vocab.criterion_level(child.title),
                )
            )
        return found

    def _success(self, section: Section) -> list[CriterionDoc]:
        found = self._checklist_criteria_own(section, "technical", "must")
        for child in section.children:
            found.extend(self._success_group(child))
        if not found:
            self.warn(
                section.line,
                "no_criteria",
                "The success criteria section lists no checklist items (“- [ ] …”).",
            )
        return found

    def _success_group(self, group: Section) -> list[CriterionDoc]:
        heading = plain(vocab.strip_symbols(group.title))
        category = vocab.category(heading)
        if category is None:
            category = "technical"
            self.warn(
                group.line,
                "unknown_category",
                f"“{heading}” is not a criteria category "
                "Milepost knows (technical, operational, quality, documentation); its "
                "criteria are filed under Technical.",
            )
        level = vocab.criterion_level(heading)
        found = self._checklist_criteria_own(group, category, level)
        for child in group.children:
            found.extend(self._success_group(child))
        return found

    def _checklist_criteria_own(self, section, category, level):
        found = []
        current_category, current_level = category, level
        for block in blocks(section.body):
            if block.kind == "label":
                current_category = vocab.category(block.label) or category
                current_level = vocab.criterion_level(block.label)
            elif block.kind in ("check", "item") and block.indent == 0:
                found.append(self._criterion(block, category=current_category, level=current_level))
        return found

    # -- risks

    def _risks(self, section: Section) -> list[RiskDoc]:
        found = []
        tables = [b for s in _all_sections(section) for b in blocks(s.body) if b.kind == "table"]
        if not tables:
            self.warn(
                section.line,
                "risks_not_a_table",
                "Risks are read from a table with the "
                "columns Risk, Likelihood, Impact and Mitigation; this section has none.",
            )
        for table in tables:
            found.extend(self._risk_table(table))
        return found

    def _risk_table(self, table: Block) -> list[RiskDoc]:
        (header_line, header), *rows = table.rows
        columns = _columns(header, RISK_COLUMNS)
        missing = [RISK_HEADERS[key] for key in RISK_REQUIRED if key not in columns]
        if missing:
            self.error(
                header_line,
                "risk_table_columns",
                f"The risks table has no {' or '.join(missing)} column. A risks table needs the "
                "columns Risk, Likelihood, Impact and Mitigation (found: "
                f"{', '.join(plain(c) for c in header) or 'nothing'}).",
            )
            return []
        found = []
        for line, cells in rows:
            cells = self._fit_row(cells, header, line)
            values = {key: cell_text(cells[index]) for key, index in columns.items()}
            for key in ("mitigation", "fallback", "owner", "description"):
                if key in values and vocab.is_nobody(values[key]):
                    values[key] = ""
            if not values["title"]:
                self.warn(line, "empty_row", "A risks table row has no risk; it was skipped.")
                continue
            risk = RiskDoc(title=self._limit(values["title"], line, "risk"), line=line)
            risk.description = values.get("description", "")
            if len(values["title"]) > TITLE_LIMIT:
                risk.description = "\n\n".join(x for x in (values["title"], risk.description) if x)
            for key in ("likelihood", "impact"):
                parsed = vocab.level(values[key])
                if parsed:
                    setattr(risk, key, parsed)
                else:
                    self.warn(
                        line,
                        "unknown_level",
                        f"{key.capitalize()} “{values[key]}” is "
                        "not low, medium or high; Medium was assumed.",
                    )
            mitigation = values["mitigation"]
            risk.mitigation = "" if vocab.is_nobody(mitigation) else mitigation
            risk.fallback = values.get("fallback", "")
            owner = values.get("owner", "")
            risk.owner = "" if vocab.is_nobody(owner) else owner
            if values.get("status"):
                status = vocab.risk_status(values["status"])
                if status:
                    risk.status = status
                else:
                    self.warn(
                        line,
                        "unknown_status",
                        f"Risk status “{values['status']}” is not "
                        "open, mitigating, occurred or closed; kept Open.",
                    )
            found.append(risk)
        return found

    def _fit_row(self, cells, header, line):
        if len(cells) < len(header):
            self.warn(
                line,
                "short_row",
                f"This table row has {len(cells)} cells, the header "
                f"{len(header)}; the missing cells were left empty.",
            )
            cells = cells + [""] * (len(header) - len(cells))
        elif len(cells) > len(header):
            self.warn(
                line,
                "long_row",
                f"This table row has {len(cells)} cells, the header "
                f"{len(header)}; the extra cells were ignored.",
            )
        return cells

    # -- blockers

    def _blockers(self, section: Section) -> list[BlockerDoc]:
        found = [self._blocker(child) for child in section.children]
        for block in blocks(section.body):
            if block.kind in ("item", "check") and block.indent == 0:
                text = plain(block.text)
                if vocab.is_nobody(text) or text.casefold().startswith(("no blockers", "none")):
                    continue
                title, priority = _title_priority(text)
                blocker = BlockerDoc(
                    title=self._limit(title, block.line, "blocker"), line=block.line
                )
                if priority:
                    blocker.priority = priority
                if block.kind == "check" and block.checked:
                    blocker.resolved_on = self.today
                nested = blocks([Line(x.number, x.text) for x in _dedent_lines(block.children)])
                self._blocker_fields(blocker, nested)
                found.append(blocker)
        return found

    def _blocker(self, section: Section) -> BlockerDoc:
        title, status = clean_title(section.title, self.legend)
        title, priority = _title_priority(title)
        blocker = BlockerDoc(title=self._limit(title, section.line, "blocker"), line=section.line)
        if priority:
            blocker.priority = priority
        self._blocker_fields(blocker, blocks(section.body))
        if status == vocab.DONE and not blocker.resolved_on:
            blocker.resolved_on = self.today
        return blocker

    def _blocker_fields(self, blocker: BlockerDoc, body_blocks):
        extra = []
        for block in body_blocks:
            if block.kind != "field":
                if block.kind not in ("blank",):
                    extra.append(self._block_text(block))
                continue
            key = _field_key(block.label, BLOCKER_FIELDS)
            value = cell_text(block.value)
            if key in ("issue", "impact", "next_action", "resolution"):
                setattr(blocker, key, value[:300] if key == "next_action" else value)
            elif key == "owner":
                blocker.owner = "" if vocab.is_nobody(value) else value
            elif key == "priority":
                blocker.priority = vocab.level(value) or blocker.priority
            elif key in ("target_resolution_date", "raised_on", "resolved_on"):
                parsed = vocab.parse_date(value, self.reference)
                if parsed:
                    setattr(blocker, key, parsed)
                elif not vocab.is_nobody(value):
                    self.warn(
                        block.line,
                        "bad_date",
                        f"“{value}” is not a date Milepost can read; left empty.",
                    )
            elif key == "status":
                if vocab.status_kind(value) == vocab.DONE and not blocker.resolved_on:
                    blocker.resolved_on = self.today
            else:
                extra.append(f"{block.label}: {block.value}")
        if extra:
            blocker.issue = "\n".join(x for x in [blocker.issue, *extra] if x).strip()

    # -- sign-off and stakeholders

    def _signoff(self, milestone: MilestoneDoc, section: Section):
        roles = []
        rest = []
        for block in blocks(section.body):
            if block.kind == "field":
                holder = plain(block.value)
                roles.append(
                    SignoffRoleDoc(
                        name=block.label[:60],
                        holder="" if vocab.is_nobody(holder) else holder,
                        line=block.line,
                    )
                )
            elif block.kind == "blank":
                rest.append("")
            else:
                rest.append(self._block_text(block))
        for child in section.children:
            child_roles = [b for b in blocks(child.body) if b.kind == "field"]
            if vocab.section_kind(child.title) == "signoff" and child_roles:
                self._signoff(milestone, child)
            else:
                rest.append(_subtree_markdown(child, depth=3, skip=set()))
        text = "\n".join(rest).strip()
        if roles or text == NO_ROLES:
            milestone.signoff_roles = (milestone.signoff_roles or []) + roles
        if text and text != NO_ROLES:
            milestone.notes.append(Note(plain(section.title), text, section.line))

    def _stakeholders(self, section: Section) -> list[StakeholderDoc]:
        found = []
        tables = [b for s in _all_sections(section) for b in blocks(s.body) if b.kind == "table"]
        for table in tables:
            (header_line, header), *rows = table.rows
            columns = _columns(header, STAKEHOLDER_COLUMNS)
            if "name" not in columns:
                self.error(
                    header_line,
                    "stakeholder_table_columns",
                    "The communication table "
                    "has no Stakeholder column (who is told); it needs Stakeholder and "
                    "usually Frequency, Channel and Content.",
                )
                continue
            for line, cells in rows:
                cells = self._fit_row(cells, header, line)
                values = {key: cell_text(cells[index]) for key, index in columns.items()}
                for key in ("channel", "frequency", "content"):
                    if key in values and vocab.is_nobody(values[key]):
                        values[key] = ""
                if not values["name"]:
                    self.warn(line, "empty_row", "A communication row names nobody; skipped.")
                    continue
                person = StakeholderDoc(
                    name=values["name"][:120],
                    line=line,
                    channel=values.get("channel", "")[:80],
                    content=values.get("content", "")[:200],
                )
                frequency = values.get("frequency", "")
                parsed = vocab.frequency(frequency)
                if parsed:
                    person.frequency = parsed
                elif frequency:
                    # "Daily standup" says how as much as how often: keep it as the channel.
                    person.channel = (person.channel or frequency)[:80]
                    self.warn(
                        line,
                        "unknown_frequency",
                        f"“{frequency}” is not weekly, every "
                        "two weeks, monthly, on change or at milestones; kept as the "
                        "channel, frequency Weekly.",
                    )
                found.append(person)
        return found

    # -- helpers

    def _limit(self, text: str, line, what: str) -> str:
        text = text or ""
        if len(text) > TITLE_LIMIT:
            self.warn(
                line,
                "text_shortened",
                f"The {what} is {len(text)} characters; it was shortened to {TITLE_LIMIT}.",
            )
            return text[: TITLE_LIMIT - 1] + "…"
        return text

    def _block_text(self, block: Block) -> str:
        if block.kind in ("check", "item"):
            marker = f"[{'x' if block.checked else ' '}] " if block.kind == "check" else ""
            bullet = block.label if block.kind == "item" and block.label else "-"
            lines = [" " * block.indent + f"{bullet} {marker}{block.text}"]
            lines += [line.text for line in block.children]
            return "\n".join(lines)
        if block.kind == "table":
            return "\n".join(
                ("| " + " | ".join(cells) + " |") + ("\n|" + "---|" * len(cells) if i == 0 else "")
                for i, (_, cells) in enumerate(block.rows)
            )
        if block.kind == "label":
            return block.text.strip()
        return block.text


def _criteria_label(label: str) -> bool:
    return label in (
        "acceptance criteria",
        "acceptance",
        "criteria",
        "success criteria",
        "done when",
        "definition of done",
        "checks",
        "checklist",
        "success metrics",
        "tasks",
        "deliverables",
    )


def _title_priority(title: str) -> tuple[str, str | None]:
    match = re.search(
        r"\s*\((?:priority\s*:\s*)?([^()]+?)(?:\s+priority)?\)\s*$", title, re.IGNORECASE
    )
    if match:
        level = vocab.level(match.group(1))
        if level:
            return title[: match.start()].strip(), level
    return title, None


def _dedent_lines(lines: list[Line]) -> list[Line]:
    widths = [_indent(line.text) for line in lines if line.text.strip()]
    cut = min(widths) if widths else 0
    return [Line(line.number, line.text.expandtabs(4)[cut:]) for line in lines]


def _all_sections(section: Section) -> list[Section]:
    found = [section] if section.level else []
    for child in section.children:
        found.extend(_all_sections(child))
    return found


def _inside(section: Section, extracted_lines: set, root: Section) -> bool:
    """Whether `section` sits inside a section already taken out of `root`."""

    def walk(node, inside):
        if node is section:
            return inside
        for child in node.children:
            result = walk(child, inside or node.line in extracted_lines)
            if result is not None:
                return result
        return None

    return bool(walk(root, False))


def _strip_front_matter(text: str) -> str:
    if text.startswith("---\n"):
        end = text.find("\n---\n", 4)
        if end != -1:
            # Keep the line count so line numbers still point at the original file.
            return "\n" * (text[: end + 5].count("\n")) + text[end + 5 :]
    return text


def parse(text: str, *, shape: str | None = None, today=None) -> ParsedDocument:
    """Parse markdown text; never raises on content."""
    return Parser(text, shape=shape, today=today).parse()


def parse_bytes(data: bytes, *, shape: str | None = None, today=None) -> ParsedDocument:
    """Parse uploaded bytes: unreadable files become a document with one error."""
    try:
        text, problems = decode(data)
    except UnreadableDocument as unreadable:
        return ParsedDocument(MILESTONE_SHAPE, problems=[unreadable.problem])
    document = parse(text, shape=shape, today=today)
    document.problems = problems + document.problems
    return document
