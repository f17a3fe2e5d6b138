from django import template
from django.utils.safestring import mark_safe

from milestones.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text):
    """Render user markdown as sanitised HTML (see milestones.markdown)."""
    return mark_safe(render_markdown(text))


# The nouns services.deletion_summary counts, plural → singular.
SINGULAR = {
    "acceptance criteria": "acceptance criterion",
    "blockers": "blocker",
    "criteria": "criterion",
    "deliverables": "deliverable",
    "dependencies": "dependency",
    "milestones": "milestone",
    "plan criteria": "plan criterion",
    "risks": "risk",
    "status updates": "status update",
}


@register.filter
def quantity(noun: str, count: int) -> str:
    """“1 risk”, “3 risks”: `noun` is the plural, as services.deletion_summary names it."""
    return f"{count} {SINGULAR.get(noun, noun) if count == 1 else noun}"
