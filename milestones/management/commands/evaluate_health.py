from django.core.management.base import BaseCommand, CommandError

from accounts.models import Team
from milestones import health


class Command(BaseCommand):
    help = "Recompute forecasts, critical paths and health for every team (or one)."

    def add_arguments(self, parser):
        parser.add_argument("--team", help="Slug of the one team to evaluate")

    def handle(self, *args, team=None, **options):
        teams = Team.objects.order_by("slug")
        if team:
            teams = teams.filter(slug=team)
            if not teams.exists():
                raise CommandError(f"No team with the slug “{team}”.")
        for each in teams:
            outcome = health.evaluate_team(each.pk)
            worse = sum(1 for t in outcome.transitions if t.is_worse)
            self.stdout.write(
                f"{each.slug}: {outcome.evaluated} milestone(s) evaluated, {outcome.changed} "
                f"changed, {len(outcome.transitions)} health change(s) ({worse} worse)."
            )
