"""Pieces every workspace page uses: HTMX-or-full-page responses, errors, edit conflicts."""

import json
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django_htmx.http import trigger_client_event

from milestones import services
from milestones.services import is_stale

# The event other fragments listen for to refresh themselves (progress, health, activity).
CHANGED_EVENT = "milestone-changed"
PLAN_CHANGED_EVENT = "plan-changed"


@dataclass(frozen=True)
class FieldConflict:
    label: str
    theirs: str
    yours: str


@dataclass
class EditState:
    """Which form a section shows open, with its (possibly invalid) input and any conflict."""

    kind: str = ""
    pk: int | None = None
    form: object = None
    conflicts: list | None = None


@dataclass(frozen=True)
class EditOutcome:
    saved: bool
    form: object = None
    conflicts: list | None = None


def save_edit(form, current, *, actor) -> EditOutcome:
    """Validate `form` and save it onto `current` through the services, unless it conflicts.

    Call inside a transaction with `current` freshly read and locked. On a conflict the
    outcome carries a new form with the editor's input on top of the current version.
    """
    if form.is_valid():
        conflicts = conflicting_fields(form, current)
        if conflicts:
            return EditOutcome(False, restart_form(form, current), conflicts)
        try:
            services.update_object(current, actor=actor, **merged_changes(form, current))
        except ValidationError as error:
            apply_errors(form, error)
        else:
            return EditOutcome(True, form)
    return EditOutcome(False, form)


def apply_errors(form, error: ValidationError) -> None:
    """Put a model's ValidationError on the form: field errors by field, the rest on top."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for name, errors in error.error_dict.items():
        if name in form.fields and name not in ("version", "original"):
            form.add_error(name, errors)
        else:
            for message in errors:
                form.add_error(None, message)


def conflicting_fields(form, current) -> list[FieldConflict]:
    """Fields both this editor and someone else changed, differently, since the form loaded.

    A three-way comparison per field of what the editor started from (`original`), what is
    stored now and what the editor submitted: only a field changed on both sides to different
    values conflicts. Two people editing different fields of a milestone both succeed; nobody
    overwrites someone else's change without seeing it.
    """
    if not is_stale(current, form.data.get(form.add_prefix("version"))):
        return []
    original = form.original_values() or {}
    now, yours = form.snapshot(current), form.submitted()
    conflicts = []
    for name in form.editable_names:
        if name in original and original[name] == now[name]:
            continue  # nobody else touched it
        if yours[name] == now[name] or (name in original and yours[name] == original[name]):
            continue  # same outcome, or only they changed it (merged_changes keeps theirs)
        bound = form[name]
        conflicts.append(
            FieldConflict(
                str(bound.label), _display(bound, now[name]), _display(bound, yours[name])
            )
        )
    return conflicts


def merged_changes(form, current) -> dict:
    """The editor's changes, minus fields only someone else changed since the form loaded."""
    changes = form.changes()
    if not is_stale(current, form.data.get(form.add_prefix("version"))):
        return changes
    original = form.original_values() or {}
    now, yours = form.snapshot(current), form.submitted()
    for name in list(changes):
        if name in original and yours[name] == original[name] != now[name]:
            del changes[name]
    return changes


def _display(bound_field, raw) -> str:
    """A stored or submitted raw value as the person sees it (choice labels, not codes)."""
    raw = "" if raw is None else str(raw)
    choices = getattr(bound_field.field, "choices", None)
    if choices is not None:
        for value, label in choices:
            if str(getattr(value, "value", value)) == raw:
                return str(label)
    return raw or "—"


def restart_form(form, current):
    """The same input on top of the current version, so re-applying it is one click."""
    data = form.data.copy()
    data[form.add_prefix("version")] = str(current.version)
    data[form.add_prefix("original")] = json.dumps(form.snapshot(current))
    return type(form)(
        data, instance=current, team_id=form.team_id, auto_id=form.auto_id, **form.extra_kwargs
    )


def respond(
    request,
    template: str,
    context: dict,
    *,
    partial: str | None,
    redirect_to: str | None = None,
    event: str | None = None,
    status: int = 200,
) -> HttpResponse:
    """Render `partial` for HTMX, else the whole page; after a successful write without
    HTMX, redirect (post/redirect/get) to `redirect_to`."""
    if request.htmx and partial:
        response = render(request, f"{template}#{partial}", context, status=status)
        if event:
            trigger_client_event(response, event, {})
        return response
    if redirect_to and status == 200 and request.method == "POST":
        return redirect(redirect_to)
    return render(request, template, context, status=status)
