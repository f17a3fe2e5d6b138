from django.core.management.base import BaseCommand, CommandError

from milestones import signoffs


class Command(BaseCommand):
    help = (
        "Check every milestone's chain of sign-off decisions: each record's hash, its scope "
        "hash and its link to the previous record. Exits 1 naming each altered record."
    )

    def handle(self, *args, **options):
        checked, problems = signoffs.verify_chains()
        for problem in problems:
            self.stderr.write(f"ALTERED {problem}")
        if problems:
            raise CommandError(
                f"{len(problems)} problem(s) in {checked} sign-off decision(s); see above."
            )
        self.stdout.write(f"{checked} sign-off decision(s) checked; every chain is intact.")
