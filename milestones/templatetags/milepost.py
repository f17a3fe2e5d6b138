from django import template
from django.utils.safestring import mark_safe

from milestones.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text):
    """Render user markdown as sanitised HTML (see milestones.markdown)."""
    return mark_safe(render_markdown(text))
