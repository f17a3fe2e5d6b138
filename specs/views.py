"""Spec pages: import (upload → preview → confirm), a milestone's spec check, and downloads.

Import is for members and admins (viewers get 403, other teams 404, like every write). The
upload is kept as a `SpecUpload` row until it is confirmed, so the preview shows exactly what
the confirmation imports, whatever its size.
"""

import datetime
import re

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import access_team
from milestones.access import access_milestone, access_plan
from milestones.views.milestone import MilestoneSpec
from specs import check
from specs.exporter import export_milestone, export_plan
from specs.forms import SpecUploadForm
from specs.importer import import_document
from specs.models import SpecSection, SpecUpload
from specs.parser import parse

UPLOADS_KEPT_FOR = datetime.timedelta(days=1)


@login_required
@require_http_methods(["GET", "POST"])
def import_page(request, team):
    membership = access_team(request.user, team, for_write=True)
    team_obj = membership.team
    initial = {}
    if plan_key := request.GET.get("plan"):
        initial["plan"] = team_obj.plans.filter(key=plan_key).first()
    if request.method == "POST":
        form = SpecUploadForm(request.POST, request.FILES, team=team_obj)
        if form.is_valid():
            SpecUpload.objects.filter(created_at__lt=timezone.now() - UPLOADS_KEPT_FOR).delete()
            upload = SpecUpload.objects.create(
                team=team_obj,
                user=request.user,
                filename=form.cleaned_data["filename"],
                text=form.cleaned_data["document_text"],
                shape=form.cleaned_data["shape"] or "",
                plan=form.cleaned_data["plan"],
            )
            return redirect("specs:import_preview", team=team_obj.slug, upload=upload.pk)
        status = 400
    else:
        form = SpecUploadForm(initial=initial, team=team_obj)
        status = 200
    context = {"team": team_obj, "membership": membership, "form": form, "nav": "plans"}
    return render(request, "specs/import.html", context, status=status)


def _upload(request, team_obj, upload_id) -> SpecUpload:
    upload = (
        SpecUpload.objects.select_related("plan")
        .filter(pk=upload_id, team=team_obj, user=request.user)
        .first()
    )
    if upload is None:
        raise Http404("This upload is gone: uploads are kept for a day, until imported.")
    return upload


@login_required
@require_http_methods(["GET", "POST"])
def import_preview(request, team, upload):
    membership = access_team(request.user, team, for_write=True)
    team_obj = membership.team
    upload = _upload(request, team_obj, upload)
    document = parse(upload.text, shape=upload.shape or None)
    confirm = request.method == "POST"
    result = import_document(
        document,
        team=team_obj,
        actor=request.user,
        plan=upload.plan,
        dry_run=not confirm,
        filename=upload.filename,
    )
    if confirm and result.saved:
        upload.delete()
        created = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in result.created.items())
        messages.success(request, f"Imported {upload.filename}: {created}.")
        if len(result.milestones) == 1 and document.plan is None:
            return redirect("milestone", team=team_obj.slug, key=result.milestones[0].key)
        return redirect("plan", team=team_obj.slug, key=result.plan.key)
    context = {
        "team": team_obj,
        "membership": membership,
        "nav": "plans",
        "upload": upload,
        "document": document,
        "result": result,
        "checks": check.check_document(document),
        "confirmed": confirm,
    }
    return render(request, "specs/preview.html", context, status=400 if result.has_errors else 200)


@login_required
@require_GET
def milestone_spec(request, team, key):
    """The whole spec check of one milestone, its document sections, export."""
    milestone = access_milestone(request.user, team, key)
    membership = access_team(request.user, team)
    spec = MilestoneSpec(milestone)
    context = {
        "team": milestone.team,
        "membership": membership,
        "milestone": milestone,
        "spec_check": check.check_spec(spec),
        "sections": list(SpecSection.objects.filter(milestone=milestone)),
        "rules": [(rule, check.WEIGHTS[rule.group]) for rule in check.RULES.values()],
        "nav": "plans",
    }
    return render(request, "specs/milestone_spec.html", context)


def _download(markdown: str, name: str) -> HttpResponse:
    response = HttpResponse(markdown, content_type="text/markdown; charset=utf-8")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "spec"
    response["Content-Disposition"] = f'attachment; filename="{safe}.md"'
    return response


@login_required
@require_GET
def milestone_export(request, team, key):
    milestone = access_milestone(request.user, team, key)
    return _download(export_milestone(milestone), f"{milestone.key}-{milestone.title[:40]}")


@login_required
@require_GET
def plan_export(request, team, key):
    plan = access_plan(request.user, team, key)
    return _download(export_plan(plan), f"{plan.key}-{plan.title[:40]}")
