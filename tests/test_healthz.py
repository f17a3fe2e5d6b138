from django.db import DatabaseError

from config import health
from config.celery import app as celery_app


def test_it_reports_ok_when_the_database_answers(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["broker"] in {"ok", "unreachable"}
    assert response["Cache-Control"].startswith("max-age=0")


def test_it_answers_503_when_the_database_is_unreachable(client, db, monkeypatch):
    def refuse():
        raise DatabaseError("connection refused")

    with monkeypatch.context() as patched:
        patched.setattr(health.connection, "cursor", refuse)
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


def test_it_says_when_the_broker_is_unreachable(client, db, monkeypatch):
    # Port 9 (discard) has no Redis behind it on loopback.
    monkeypatch.setattr(celery_app.conf, "broker_url", "redis://127.0.0.1:9/0")
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["broker"] == "unreachable"


def test_it_only_answers_get(client, db):
    assert client.post("/healthz").status_code == 405
