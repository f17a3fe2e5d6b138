"""Shared helpers and fixtures for the API tests (tests/test_api_*.py); no tests in here.

Import what a module needs: `from tests.test_api_support import api, no_throttle  # noqa`.
"""

import uuid

import pytest
from rest_framework.test import APIClient

from api.concurrency import etag_for
from api.models import ApiToken


@pytest.fixture(autouse=True)
def no_throttle(settings):
    """The suite makes hundreds of requests per user; the throttle has its own test.

    Each test also gets its own empty in-memory cache, so lockout counters (bad tokens) and
    throttle buckets never leak between tests or from earlier runs.
    """
    settings.API_THROTTLE_RATE = None
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"api-tests-{uuid.uuid4()}",
        }
    }


def url(path: str) -> str:
    return f"/api/v1/{path.lstrip('/')}"


class Api:
    """Clients for each way of calling the API: anonymous, session or token, per user."""

    def anonymous(self) -> APIClient:
        return APIClient()

    def session(self, user) -> APIClient:
        client = APIClient()
        client.force_login(user)
        return client

    def token(self, user, **kwargs) -> APIClient:
        _, secret = ApiToken.objects.create_token(user, "tests", **kwargs)
        return self.bearer(secret)

    def bearer(self, secret: str) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        return client


@pytest.fixture
def api(db) -> Api:
    return Api()


def if_match(obj) -> dict:
    """The header that says “I read this version”, for the APIClient (**kwargs)."""
    obj.refresh_from_db()
    return {"HTTP_IF_MATCH": etag_for(obj)}


def results(response) -> list:
    assert response.status_code == 200, response.content
    return response.json()["results"]
