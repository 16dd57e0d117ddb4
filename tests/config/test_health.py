from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.heartbeats import heartbeat_record
from integrations.models import ProcessHeartbeat
from integrations.tasks import worker_heartbeat

pytestmark = pytest.mark.django_db


def test_healthz_needs_no_auth(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_names_the_missing_worker(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["worker"]
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"] == "ok"
    assert "manage.py worker" in body["checks"]["worker"]


def test_readyz_ok_after_a_worker_ran_the_probe(client):
    worker_heartbeat()
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "ok"


def test_readyz_fails_when_the_worker_heartbeat_is_stale(client, settings):
    heartbeat_record(role="worker")
    ProcessHeartbeat.objects.update(seen_at=timezone.now() - timedelta(minutes=5))
    settings.SWITCHYARD_WORKER_STALE_SECONDS = 60
    assert client.get("/readyz").status_code == 503


def test_readyz_names_a_failing_database(client, monkeypatch):
    from config import health

    def broken():
        raise ConnectionError("connection refused")

    monkeypatch.setitem(health.READINESS_CHECKS, "database", broken)
    worker_heartbeat()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["database"]
    assert "connection refused" in response.json()["checks"]["database"]


def test_metrics_exposes_heartbeat_age(client):
    worker_heartbeat()
    response = client.get("/metrics")
    assert response.status_code == 200
    assert 'switchyard_process_heartbeat_age_seconds{role="worker"}' in response.content.decode()
