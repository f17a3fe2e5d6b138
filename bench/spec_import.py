"""Time the import of a 1 MB plan document (and report what the guide's example yields).

    .venv/bin/python bench/spec_import.py                 # a temporary SQLite file
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/milepost_spec_bench \
        .venv/bin/python bench/spec_import.py             # a scratch PostgreSQL database

The database DATABASE_URL names is flushed first: point it at a scratch database. Builds a plan
document in the spec format (milestones with phases, checklists, measured criteria, risk tables,
blockers, notes) until it reaches --size bytes, then times parsing, the preview (dry run) and the
import (one transaction, every write through milestones.services), and prints the counts.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if "DATABASE_URL" not in os.environ:
    os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3"
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "bench")
os.environ.setdefault("ALLOWED_HOSTS", "*")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "true")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from accounts.models import Membership, Team, User  # noqa: E402
from specs.importer import import_document  # noqa: E402
from specs.parser import parse  # noqa: E402


def milestone_section(number: int) -> str:
    phases = []
    for phase in range(1, 4):
        items = "\n".join(
            f"- [{'x' if (number + phase + i) % 3 == 0 else ' '}] Step {i} of phase {phase} "
            f"for milestone {number}: configure, verify and document the change"
            for i in range(1, 7)
        )
        phases.append(f"### Phase {phase}: Work package {phase}\n\n{items}\n")
    risks = "\n".join(
        f"| Risk {r} of milestone {number} | Medium | High | Mitigation plan {r} agreed |"
        for r in range(1, 4)
    )
    return f"""## Milestone {number}: Capability {number}

**Goal**: Deliver capability {number} end to end, measured and documented.
**Priority**: Required
**Estimated Effort**: 2 weeks
**Status**: In Progress
**Target Date**: 2025-{(number % 12) + 1:02d}-15
**Owner**: bench-owner

{"".join(phases)}
### Success Criteria

- [ ] Throughput sustained (target: >= {number} jobs/s; actual: {number + 1})
- [x] Error budget respected for milestone {number}
- [ ] Runbook reviewed by operations

### Risks

| Risk | Likelihood | Impact | Mitigation |
|------|------------|--------|------------|
{risks}

### Current Blockers

#### 1. Waiting on approval {number} (High Priority)
- **Issue**: Change board meets weekly
- **Owner**: bench-owner
- **Target Resolution**: 2025-{(number % 12) + 1:02d}-01

### Rollback Plan

Turn off the flag for capability {number}; nothing else changes.

### Notes

Free text about milestone {number} that Milepost keeps as a note on the milestone.
"""


def plan_document(size: int) -> str:
    parts = ["# Bench plan\n\n**Owner**: bench-owner\n**Status**: Active\n\n"]
    number = 0
    while sum(len(p.encode()) for p in parts) < size:
        number += 1
        parts.append(milestone_section(number))
    return "\n".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="document size in bytes")
    options = parser.parse_args()
    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    team = Team.objects.create(name="Bench", slug="bench")
    owner = User.objects.create_user("bench-owner", "bench@example.com", "x")
    Membership.objects.create(team=team, user=owner, role="admin")

    guide = parse((ROOT / "tests/fixtures/specs/guide_example.md").read_text())
    print("guide example:", guide.counts())

    text = plan_document(options.size)
    started = time.perf_counter()
    document = parse(text)
    parsed = time.perf_counter() - started
    counts = document.counts()
    items = sum(counts[k] for k in ("milestones", "deliverables", "acceptance_criteria",
                                    "success_criteria", "risks", "blockers"))  # fmt: skip
    print(f"document: {len(text.encode()):,} bytes; {counts}; {items:,} domain objects")
    print(f"parse: {parsed:.2f} s")
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        preview = import_document(document, team=team, actor=owner, dry_run=True)
    print(f"preview (dry run): {time.perf_counter() - started:.2f} s, {len(queries)} queries, "
          f"{len(preview.errors)} errors")  # fmt: skip
    started = time.perf_counter()
    result = import_document(document, team=team, actor=owner, filename="bench.md")
    elapsed = time.perf_counter() - started
    print(f"import: {elapsed:.1f} s ({items / elapsed:,.0f} objects/s), saved={result.saved}, "
          f"{len(result.errors)} errors, created {result.created}")  # fmt: skip
    print(f"database: {connection.vendor}")


if __name__ == "__main__":
    main()
