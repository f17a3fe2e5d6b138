from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from milestones.models import Milestone, Plan
from specs.exporter import export_milestone, export_plan


class Command(BaseCommand):
    help = "Write a milestone (MLS-001) or a plan (PLAN-001) as a markdown spec document."

    def add_arguments(self, parser):
        parser.add_argument("key")
        parser.add_argument("--team", help="the team's slug (needed when several teams use KEY)")
        parser.add_argument("--output", "-o", help="write to this file instead of the output")

    def handle(self, *args, **options):
        key = options["key"].strip()
        found = []
        for model in (Milestone, Plan):
            queryset = model.objects.filter(key=key).select_related("team")
            if options["team"]:
                queryset = queryset.filter(team__slug=options["team"])
            found += list(queryset[:10])
        if not found:
            where = f" in team {options['team']}" if options["team"] else ""
            raise CommandError(f"No milestone or plan {key}{where}.")
        if len(found) > 1:
            teams = ", ".join(sorted({obj.team.slug for obj in found}))
            raise CommandError(f"{key} exists in several teams ({teams}); pass --team.")
        obj = found[0]
        markdown = export_milestone(obj) if isinstance(obj, Milestone) else export_plan(obj)
        if options["output"]:
            Path(options["output"]).write_text(markdown, encoding="utf-8")
            self.stderr.write(f"Wrote {obj.key} to {options['output']}.")
        else:
            self.stdout.write(markdown, ending="")
