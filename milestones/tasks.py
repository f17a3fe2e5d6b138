from celery import shared_task

from accounts.models import Team
from milestones import health


@shared_task(name="milestones.evaluate_team_health")
def evaluate_team_health(team_id: int) -> dict:
    """Recompute one team's forecasts and health; safe to run twice (it is idempotent)."""
    if not Team.objects.filter(pk=team_id).exists():
        return {"team": team_id, "skipped": "no such team"}
    outcome = health.evaluate_team(team_id)
    return {"team": team_id, "evaluated": outcome.evaluated, "changed": outcome.changed}


@shared_task(name="milestones.evaluate_all_health")
def evaluate_all_health() -> int:
    """The hourly sweep: queue one evaluation per team, so teams run in parallel on workers."""
    team_ids = list(Team.objects.values_list("pk", flat=True))
    for team_id in team_ids:
        evaluate_team_health.delay(team_id)
    return len(team_ids)
