import json

from django.core.management.base import BaseCommand

from specs.check import check_document
from specs.management.commands._spec_files import format_problem, read_document


class Command(BaseCommand):
    help = (
        "Print the completeness score (0-100, see the README for the formula) and the gaps of "
        "a markdown milestone spec or of each milestone of a plan document."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--format", choices=["text", "json"], default="text")

    def handle(self, *args, **options):
        document = read_document(options["file"])
        results = check_document(document)
        overall = sum(r.score for _, r in results) // len(results) if results else 0
        if options["format"] == "json":
            self.stdout.write(
                json.dumps(
                    {
                        "file": options["file"],
                        "score": overall,
                        "milestones": [
                            {"title": title, **result.summary()} for title, result in results
                        ],
                        "problems": [p.as_dict() for p in document.problems],
                    },
                    indent=2,
                    ensure_ascii=False,
                )
            )
            return
        for problem in document.errors:
            self.stdout.write(format_problem(problem))
        for title, result in results:
            self.stdout.write(f"{title}: {result.score}/100")
            for finding in result.findings:
                self.stdout.write("  " + format_problem(finding))
            if not result.findings:
                self.stdout.write("  complete: no gaps")
        if len(results) > 1:
            self.stdout.write(f"Overall: {overall}/100 (the mean of {len(results)} milestones)")
        if not results:
            self.stdout.write("No milestone found in the document: 0/100")
