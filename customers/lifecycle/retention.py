"""Retention: finished rows older than their ``SWITCHYARD_RETAIN_*_DAYS`` are deleted in small
batches, each its own short transaction, so a purge never holds locks for long nor builds one
long transaction, and the API keeps answering while it runs.

A rule names the expired rows of one table (``expired``) and the order that walks them along an
index; the rows that cascade from them go in the same batch. What a live row still references
is never expired: each rule's ``expired`` leaves such rows out (a pending delivery, an inbound
event whose deliveries are kept). Each app adds its rules from its ``AppConfig.ready()`` and a
dispatcher step runs each; ``manage.py purge`` runs them all, or counts with ``--dry-run``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.apps import apps
from django.conf import settings
from django.db import models, transaction
from django.db.models import QuerySet
from django.utils import timezone

from customers.models import ApiKeyAuditEntry

__all__ = (
    "API_KEY_AUDIT",
    "BATCH",
    "STEP_BUDGET_SECONDS",
    "STEP_EVERY_SECONDS",
    "RetentionRule",
    "retain_cutoff",
    "retention_plan",
    "retention_purge",
    "retention_rule_add",
    "retention_rules",
    "retention_step",
)

logger = logging.getLogger(__name__)

# Rows of the rule's own table per transaction (their cascaded rows come with them): a batch of
# deliveries with five attempts each deletes in tens of milliseconds (bench/retention.py).
BATCH = 500
# The purge steps share the dispatcher loop with the relay (every 0.5 s): together they work at
# most this long (plus one batch) per STEP_EVERY_SECONDS and go on at their next runs, so due
# work waits at most about this much longer.
STEP_BUDGET_SECONDS = 0.5
STEP_EVERY_SECONDS = 15


@dataclass(frozen=True)
class RetentionRule:
    """``expired(cutoff)``: the rows of one table that may go, given the cutoff computed from
    ``setting`` (days); walked in ``order_by`` order, which an index should serve.
    ``cascades``: (model, foreign key name) of rows deleted with them, counted by a dry run."""

    name: str
    setting: str
    expired: Callable[[datetime], QuerySet]
    order_by: str
    cascades: tuple[tuple[type[models.Model], str], ...] = field(default=())

    @property
    def model(self) -> type[models.Model]:
        return self.expired(timezone.now()).model


_rules: dict[str, RetentionRule] = {}


def retention_rule_add(rule: RetentionRule, *, step_add: Callable | None = None) -> None:
    """Called from ``AppConfig.ready()`` by the app that owns the rule's table. ``step_add``:
    the dispatcher's, which then runs the rule as step ``purge_<name>`` (passed in, as this
    layer imports no dispatcher)."""
    if rule.name in _rules:
        raise RuntimeError(f"Retention rule '{rule.name}' is added twice")
    _rules[rule.name] = rule
    if step_add is not None:
        step_add(f"purge_{rule.name}", STEP_EVERY_SECONDS, retention_step(rule))


def retention_rules() -> list[RetentionRule]:
    return list(_rules.values())


def retain_cutoff(setting: str) -> datetime | None:
    """Rows finished before this may go; None when the setting keeps them forever (0)."""
    days = getattr(settings, setting)
    if days <= 0:
        return None
    return timezone.now() - timedelta(days=days)


def _table(label: str) -> str:
    return apps.get_model(label)._meta.db_table


def _purge_batch(rule: RetentionRule, cutoff: datetime, size: int) -> dict[str, int]:
    """Delete at most ``size`` expired rows and what cascades from them, in one transaction.
    The rows are picked and locked inside it (skipping rows another writer holds), so a row
    that stopped being expired meanwhile (a dead letter retried) is not picked."""
    with transaction.atomic():
        expired = rule.expired(cutoff).order_by(rule.order_by)
        ids = list(expired.select_for_update(skip_locked=True).values_list("pk", flat=True)[:size])
        if not ids:
            return {}
        # Only the ids are loaded: the rows' bodies never reach Python.
        _, per_model = rule.model.objects.filter(pk__in=ids).only("pk").delete()
    return {_table(label): count for label, count in per_model.items() if count}


def retention_purge(
    rule: RetentionRule,
    *,
    batch: int = BATCH,
    budget_seconds: float | None = None,
    on_batch: Callable[[float, dict[str, int]], object] | None = None,
) -> dict[str, int]:
    """Purge ``rule``'s expired rows batch by batch until none is left or ``budget_seconds``
    have passed. Returns rows deleted per table; ``on_batch(seconds, counts)`` hears of each
    batch (the benchmark times the longest transaction with it)."""
    cutoff = retain_cutoff(rule.setting)
    totals: dict[str, int] = {}
    if cutoff is None:
        return totals
    started = time.monotonic()
    while True:
        batch_started = time.monotonic()
        counts = _purge_batch(rule, cutoff, batch)
        if on_batch is not None and counts:
            on_batch(time.monotonic() - batch_started, counts)
        for table, count in counts.items():
            totals[table] = totals.get(table, 0) + count
        if not counts:
            return totals
        if budget_seconds is not None and time.monotonic() - started >= budget_seconds:
            return totals


def retention_plan(rule: RetentionRule) -> dict[str, int]:
    """What ``retention_purge`` would delete now, per table (counts, nothing deleted)."""
    cutoff = retain_cutoff(rule.setting)
    if cutoff is None:
        return {}
    expired = rule.expired(cutoff)
    plan = {rule.model._meta.db_table: expired.count()}
    for model, fk in rule.cascades:
        plan[model._meta.db_table] = model.objects.filter(
            **{f"{fk}__in": expired.values("pk")}
        ).count()
    return plan


# The steps' shared budget in this process: when the current window started, time spent in it.
_window = {"started": float("-inf"), "spent": 0.0}


def retention_step(rule: RetentionRule) -> Callable[[], dict[str, int]]:
    """The dispatcher step of one rule: a short purge within what is left of the steps' shared
    budget (every rule is due in the same pass), logged when it deleted anything."""

    def step() -> dict[str, int]:
        started = time.monotonic()
        if started - _window["started"] >= STEP_EVERY_SECONDS:
            _window["started"], _window["spent"] = started, 0.0
        left = STEP_BUDGET_SECONDS - _window["spent"]
        if left <= 0:
            return {}
        counts = retention_purge(rule, budget_seconds=left)
        _window["spent"] += time.monotonic() - started
        if counts:
            purged = " ".join(f"{table}={count}" for table, count in sorted(counts.items()))
            logger.info("retention.purged rule=%s %s", rule.name, purged)
        return counts

    return step


def _api_key_audit_expired(cutoff: datetime) -> QuerySet:
    return ApiKeyAuditEntry.objects.filter(created_at__lt=cutoff)


API_KEY_AUDIT = RetentionRule(
    name="api_key_audit",
    setting="SWITCHYARD_RETAIN_AUDIT_DAYS",
    expired=_api_key_audit_expired,
    order_by="created_at",
)
