"""A task travels through Redis to a real worker process and its result comes back."""

import uuid

import pytest
from celery import Celery

from tests.services import celery_worker, redis_server

pytestmark = pytest.mark.integration


def test_a_task_round_trips_through_redis_and_a_real_worker():
    queue = f"milepost-test-{uuid.uuid4().hex[:8]}"
    with redis_server() as redis_url, celery_worker(redis_url, queue) as worker:
        client = Celery(broker=redis_url, backend=redis_url, set_as_current=False)
        try:
            result = client.send_task("milepost.ping", queue=queue)
            answer = result.get(timeout=90)
        finally:
            client.close()
        assert worker.poll() is None, "the worker died"
    assert answer["pong"] is True
    # The answer came from the worker subprocess, not from this process running it eagerly.
    assert answer["pid"] == worker.pid
