"""Data lifecycle: how long finished rows are kept (retention) and how a departing customer's
data is removed (erasure).

Both are registries at the lowest app layer, filled by each app from its ``AppConfig.ready()``
for the tables it owns, so ``manage.py purge`` and ``manage.py customer_erase`` reach every
table while no app imports one above it. ``retention`` runs the rules in short batches;
``erasure`` runs the erasers, highest layer first."""

from customers.lifecycle.erasure import (
    CustomerNotFound,
    Erased,
    ErasureReport,
    customer_erase,
    eraser_add,
)
from customers.lifecycle.retention import (
    API_KEY_AUDIT,
    STEP_EVERY_SECONDS,
    RetentionRule,
    retain_cutoff,
    retention_plan,
    retention_purge,
    retention_rule_add,
    retention_rules,
    retention_step,
)

__all__ = (
    "API_KEY_AUDIT",
    "STEP_EVERY_SECONDS",
    "CustomerNotFound",
    "Erased",
    "ErasureReport",
    "RetentionRule",
    "customer_erase",
    "eraser_add",
    "retain_cutoff",
    "retention_plan",
    "retention_purge",
    "retention_rule_add",
    "retention_rules",
    "retention_step",
)
