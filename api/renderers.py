"""JSON rendering with orjson: the same bytes as DRF's compact JSONRenderer, several times faster
on large responses (a page of 50 milestones with their whole spec)."""

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils import encoders

# Datetimes, dates and anything orjson does not know go through DRF's encoder, so values are
# written exactly as before (e.g. "…Z" for UTC, Decimals as DRF writes them).
_DRF_DEFAULT = encoders.JSONEncoder().default
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


class FastJSONRenderer(JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if self.get_indent(accepted_media_type, renderer_context or {}) is not None:
            return super().render(data, accepted_media_type, renderer_context)
        body = orjson.dumps(data, default=_DRF_DEFAULT, option=_OPTIONS)
        if b"\xe2\x80\xa8" in body or b"\xe2\x80\xa9" in body:
            # As DRF does: keep the output a strict JavaScript subset.
            body = body.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
        return body
