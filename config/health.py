"""Liveness, readiness and Prometheus metrics: plain views, no authentication, no session."""

import logging

from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from django_q.brokers import get_broker
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from config.metrics import registry
from integrations.heartbeats import worker_is_alive

__all__ = ("healthz", "metrics", "readyz")

logger = logging.getLogger(__name__)


@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_broker() -> None:
    broker = get_broker()
    if broker.ping() is False:
        raise ConnectionError("broker did not answer ping")
    broker.queue_size()


def _check_worker() -> None:
    if not worker_is_alive():
        raise RuntimeError("no worker heartbeat recently; is `manage.py worker` running?")


READINESS_CHECKS = {"database": _check_database, "broker": _check_broker, "worker": _check_worker}


@require_GET
def readyz(request):
    results, failing = {}, []
    for name, check in READINESS_CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:
            logger.warning("readyz.check_failed check=%s error=%s", name, exc.__class__.__name__)
            results[name] = f"failing: {exc.__class__.__name__}: {exc}"[:300]
            failing.append(name)
    if failing:
        return JsonResponse(
            {"status": "unavailable", "failing": failing, "checks": results}, status=503
        )
    return JsonResponse({"status": "ok", "checks": results})


@require_GET
def metrics(request):
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
