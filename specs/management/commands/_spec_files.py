"""What the spec commands share: reading a markdown file the way the upload page does."""

from pathlib import Path

from django.core.management.base import CommandError

from specs.document import MILESTONE_SHAPE, ParsedDocument
from specs.parser import MAX_BYTES, UnreadableDocument, parse_bytes


def read_document(path: str, *, shape: str | None = None):
    """Parse FILE.md (never touching the database); a missing or unreadable file is an error."""
    file = Path(path)
    if not file.is_file():
        raise CommandError(f"{path}: no such file.")
    if file.stat().st_size > MAX_BYTES:
        # Refused before reading it, like an upload.
        refusal = UnreadableDocument(
            "too_large",
            f"The file is {file.stat().st_size / 1024 / 1024:.1f} MB; spec documents may be at "
            f"most {MAX_BYTES // 1024 // 1024} MB. Split the plan into several documents.",
        )
        return ParsedDocument(MILESTONE_SHAPE, problems=[refusal.problem])
    return parse_bytes(file.read_bytes(), shape=shape)


def format_problem(problem) -> str:
    where = f"line {problem.line}: " if problem.line else ""
    return f"{where}{problem.severity}: {problem.message} [{problem.code}]"
