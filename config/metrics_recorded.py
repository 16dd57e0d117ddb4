"""Metrics recorded by the process that does the work (DESIGN §11 names), as opposed to the
gauges of ``config.metrics`` that web computes from the database at scrape time.

Workers and the dispatcher serve them on ``SWITCHYARD_METRICS_PORT``. A worker is a django-q2
cluster whose tasks run in child processes, so it switches prometheus-client to multiprocess
mode (one file per process in a directory, summed at scrape) before any child is forked."""

import os
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server, values
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = (
    "DELIVERY_ATTEMPTS",
    "DELIVERY_ATTEMPT_DURATION",
    "DELIVERY_LATENCY",
    "DISPATCH_STEP_DURATION",
    "INBOUND_PROCESSING_LATENCY",
    "metrics_serve",
    "multiprocess_enable",
    "recorded",
)

recorded = CollectorRegistry()

# One provider call: tens of milliseconds to the attempt deadline (30 s by default).
ATTEMPT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Accepted → succeeded spans retries and backoff: seconds to a day.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400)

DELIVERY_ATTEMPT_DURATION = Histogram(
    "switchyard_delivery_attempt_duration_seconds",
    "Duration of one delivery attempt (the provider call), by provider and outcome.",
    ["provider", "outcome"],
    buckets=ATTEMPT_BUCKETS,
    registry=recorded,
)
DELIVERY_ATTEMPTS = Counter(
    "switchyard_delivery_attempts",
    "Delivery attempts made, by provider and outcome.",
    ["provider", "outcome"],
    registry=recorded,
)
DELIVERY_LATENCY = Histogram(
    "switchyard_delivery_latency_seconds",
    "From a delivery's acceptance to its success, retries included, by provider.",
    ["provider"],
    buckets=LATENCY_BUCKETS,
    registry=recorded,
)
INBOUND_PROCESSING_LATENCY = Histogram(
    "switchyard_inbound_processing_latency_seconds",
    "From an inbound event's receipt to the end of its processing (fan-out), by provider.",
    ["provider"],
    buckets=LATENCY_BUCKETS,
    registry=recorded,
)
DISPATCH_STEP_DURATION = Histogram(
    "switchyard_dispatch_step_duration_seconds",
    "Duration of one run of a dispatcher step, by step.",
    ["step"],
    buckets=ATTEMPT_BUCKETS,
    registry=recorded,
)


def multiprocess_enable(directory: Path) -> None:
    """Record into per-process files under ``directory`` from now on (this process and those it
    forks). Files of an earlier run are removed: their counts belong to processes gone."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    # Children of the labelled metrics are created at first use, with the class set here.
    values.ValueClass = values.MultiProcessValue()


def metrics_serve(port: int, addr: str, *, multiprocess_dir: Path | None = None) -> None:
    """Serve /metrics on ``port`` from a daemon thread: this process's metrics, or the sum of
    every process's files in ``multiprocess_dir``."""
    if multiprocess_dir is None:
        registry = recorded
    else:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(multiprocess_dir))
    start_http_server(port, addr=addr, registry=registry)
