import json

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Team, User
from milestones.models import Plan
from specs.importer import import_document
from specs.management.commands._spec_files import format_problem, read_document


class Command(BaseCommand):
    help = (
        "Import a markdown milestone spec (into --plan, or the plan its **Plan** line names) or "
        "a plan document (into a new plan, or into --plan) into a team. One transaction: any "
        "error and nothing is saved. --dry-run shows what would be created."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--team", required=True, help="the team's slug")
        parser.add_argument("--plan", help="key of an existing plan of the team, e.g. PLAN-001")
        parser.add_argument("--user", help="username recorded as the author (a team member)")
        parser.add_argument("--shape", choices=["milestone", "plan"], help="skip the guessing")
        parser.add_argument("--dry-run", action="store_true")
        parser.add_argument("--format", choices=["text", "json"], default="text")

    def handle(self, *args, **options):
        team = Team.objects.filter(slug=options["team"]).first()
        if team is None:
            raise CommandError(f"No team with the slug “{options['team']}”.")
        plan = None
        if options["plan"]:
            plan = Plan.objects.filter(team=team, key=options["plan"]).first()
            if plan is None:
                raise CommandError(f"Team {team.slug} has no plan {options['plan']}.")
        actor = None
        if options["user"]:
            actor = User.objects.filter(
                username__iexact=options["user"], memberships__team=team
            ).first()
            if actor is None:
                raise CommandError(f"{options['user']} is not a member of {team.slug}.")
        document = read_document(options["file"], shape=options["shape"])
        result = import_document(
            document,
            team=team,
            actor=actor,
            plan=plan,
            dry_run=options["dry_run"],
            filename=options["file"],
        )
        if options["format"] == "json":
            self.stdout.write(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
        else:
            for problem in result.all_problems:
                self.stdout.write(format_problem(problem))
            created = ", ".join(
                f"{n} {kind.replace('_', ' ')}" for kind, n in result.created.items()
            )
            if result.has_errors:
                self.stdout.write(
                    f"Not imported ({len(result.errors)} error(s)); nothing was saved."
                )
            elif result.dry_run:
                self.stdout.write(f"Dry run: would create {created}. Nothing was saved.")
            else:
                keys = ", ".join(m.key for m in result.milestones)
                self.stdout.write(f"Imported into {result.plan.key}: {created} ({keys}).")
        if result.has_errors:
            raise SystemExit(1)
