"""Markdown for user-written text (summaries, rollback plans, retrospectives, narratives).

Python-Markdown turns the text into HTML and nh3 then keeps only an allow-list of tags and
attributes, so no script, style, event handler or `javascript:` link survives whatever the
author typed. Links get rel="noopener noreferrer nofollow".
"""

import markdown as markdown_lib
import nh3

ALLOWED_TAGS = {
    "a", "abbr", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "li", "ol", "p", "pre", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "td": {"align"}, "th": {"align"}}
EXTENSIONS = ["extra", "sane_lists"]


def render_markdown(text: str) -> str:
    """Safe HTML for `text`; an empty string for empty text."""
    if not text or not text.strip():
        return ""
    html = markdown_lib.markdown(text, extensions=EXTENSIONS, output_format="html")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
