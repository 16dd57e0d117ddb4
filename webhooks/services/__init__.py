"""Writes of the webhooks app: receive (verify, de-duplicate, persist), process (normalise, fan
out), replay, and subscriptions with rotatable signing secrets.

An accepted webhook is committed before it is acknowledged; everything after the commit works
from the stored row. The row is the outbox (``INBOUND``, integrations/outbox, the mechanism
deliveries use too): the receiver queues nothing (a broker write per request would double the
cost of accepting one), the dispatcher relay queues due events in batches on every pass, and
leases guard the processing.

One module per concern: ``endpoints``, ``receiving``, ``processing``, ``relay`` (the outbox's
relay, recovery and replay) and ``subscriptions``; callers import from this package."""

from webhooks.services.endpoints import endpoint_create, endpoint_tolerance_check
from webhooks.services.lifecycle import (
    DEAD_INBOUND_EVENTS,
    FINISHED_INBOUND_EVENTS,
    customer_webhooks_erase,
)
from webhooks.services.processing import OUTBOUND_ACTION, inbound_events_process
from webhooks.services.receiving import (
    EndpointNotFound,
    SignatureRejected,
    inbound_message_store,
    inbound_webhook_receive,
)
from webhooks.services.relay import (
    INBOUND,
    inbound_events_recover_leases,
    inbound_events_relay_due,
    inbound_events_replay,
)
from webhooks.services.sources import (
    SOURCE_KINDS,
    endpoint_settings_update,
    endpoint_source_check,
    endpoint_source_create,
)
from webhooks.services.subscriptions import (
    DEFAULT_GRACE_SECONDS,
    MAX_GRACE_SECONDS,
    subscription_create,
    subscription_deleted,
    subscription_disable,
    subscription_owner_sync,
    subscription_rotate_secret,
)

__all__ = (
    "DEAD_INBOUND_EVENTS",
    "DEFAULT_GRACE_SECONDS",
    "FINISHED_INBOUND_EVENTS",
    "INBOUND",
    "MAX_GRACE_SECONDS",
    "OUTBOUND_ACTION",
    "SOURCE_KINDS",
    "EndpointNotFound",
    "SignatureRejected",
    "customer_webhooks_erase",
    "endpoint_create",
    "endpoint_settings_update",
    "endpoint_source_check",
    "endpoint_source_create",
    "endpoint_tolerance_check",
    "inbound_events_process",
    "inbound_events_recover_leases",
    "inbound_events_relay_due",
    "inbound_events_replay",
    "inbound_message_store",
    "inbound_webhook_receive",
    "subscription_create",
    "subscription_deleted",
    "subscription_disable",
    "subscription_owner_sync",
    "subscription_rotate_secret",
)
