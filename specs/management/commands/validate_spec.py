import json

from django.core.management.base import BaseCommand

from specs.check import check_document
from specs.management.commands._spec_files import format_problem, read_document


class Command(BaseCommand):
    help = (
        "Check a markdown milestone spec or plan against the spec guide's rules. Exit status 0 "
        "when there are no errors, 1 when there are (warnings alone do not fail)."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("file", help="the markdown document, e.g. docs/specs/mls-001.md")
        parser.add_argument("--format", choices=["text", "json"], default="text")

    def handle(self, *args, **options):
        document = read_document(options["file"])
        results = check_document(document)
        findings = [finding for _, result in results for finding in result.findings]
        errors = document.errors + [f for f in findings if f.severity == "error"]
        warnings = document.warnings + [f for f in findings if f.severity == "warning"]
        if options["format"] == "json":
            self.stdout.write(
                json.dumps(
                    {
                        "file": options["file"],
                        "valid": not errors,
                        "shape": document.shape,
                        "problems": [p.as_dict() for p in document.problems],
                        "findings": [f.as_dict() for f in findings],
                        "scores": {title: result.score for title, result in results},
                    },
                    indent=2,
                    ensure_ascii=False,
                )
            )
        else:
            for problem in document.problems:
                self.stdout.write(format_problem(problem))
            for finding in findings:
                self.stdout.write(format_problem(finding))
            verdict = "valid" if not errors else "not valid"
            self.stdout.write(
                f"{options['file']}: {verdict}: {len(errors)} error(s), {len(warnings)} warning(s)."
            )
        if errors:
            raise SystemExit(1)
