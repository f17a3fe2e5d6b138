"""The orjson renderer writes the very bytes DRF's JSONRenderer would."""

import datetime
import decimal
import uuid

from rest_framework.renderers import JSONRenderer

from api.renderers import FastJSONRenderer


def test_the_fast_renderer_matches_drf_byte_for_byte():
    data = {
        "text": "Étape ✅ “quoted” \u2028 line",
        "when": datetime.datetime(2026, 11, 21, 9, 30, tzinfo=datetime.UTC),
        "day": datetime.date(2026, 11, 21),
        "amount": decimal.Decimal("12.50"),
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "nested": [{"n": 1, "f": 1.5, "none": None, "yes": True}],
        7: "a non-string key",
    }
    assert FastJSONRenderer().render(data) == JSONRenderer().render(data)


def test_indent_requests_still_pretty_print():
    fast = FastJSONRenderer().render({"a": [1]}, "application/json; indent=2")
    assert fast == JSONRenderer().render({"a": [1]}, "application/json; indent=2")
    assert b"\n" in fast
