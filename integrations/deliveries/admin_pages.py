"""What the delivery page shows above its fields: the attempt timeline (request and response
folded away, copy-as-curl), the links to what the delivery touched, and the breaker that may be
holding it. Attempt records are masked when stored; headers are masked again here, so a page
never shows a secret even if a record predates a header being known as secret."""

import json
import shlex
from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse

from config.admin_tools import change_url, when
from credentials.models import CredentialVersion
from integrations.deliveries.masking import masker_for
from integrations.deliveries.models import Delivery, DeliveryAttempt
from integrations.models import CircuitBreaker

__all__ = ("AttemptRow", "attempt_rows", "breaker_for", "curl_command", "delivery_links")

# The webhooks app's operation; its input names the subscription and the inbound event.
OUTBOUND_PROVIDER = "standard_webhooks"
# Attempts shown in full on the page; older ones are summarised by the count.
TIMELINE_SHOWN = 100


def _pretty(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _masked_headers(headers) -> dict:
    return masker_for({}).headers(headers or {})


def curl_command(attempt: DeliveryAttempt) -> str:
    """The attempt's request as a curl command, from the stored (masked) record."""
    if not attempt.request_method:
        return ""
    parts = ["curl", "-X", attempt.request_method, shlex.quote(attempt.request_url)]
    for name, value in sorted(_masked_headers(attempt.request_headers).items()):
        parts += ["-H", shlex.quote(f"{name}: {value}")]
    if attempt.request_body:
        parts += ["--data-raw", shlex.quote(attempt.request_body)]
    return " ".join(parts)


def _seconds(value: float | None) -> str:
    """Delays as an operator reads them: 0.3 s, 12 s, 4 min."""
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.1f} s"
    if value < 120:
        return f"{round(value)} s"
    return f"{value / 60:.1f} min"


@dataclass(frozen=True)
class AttemptRow:
    attempt: DeliveryAttempt
    started: str
    next_delay: str
    request_headers: str
    response_headers: str
    curl: str
    credential_url: str


def _credential_url(credential_id: int | None) -> str:
    if credential_id is None:
        return ""
    return reverse("admin:credentials_credential_change", args=[credential_id])


def attempt_rows(delivery: Delivery) -> tuple[list[AttemptRow], int]:
    """The newest ``TIMELINE_SHOWN`` attempts, oldest first, and how many are left out."""
    attempts = list(delivery.attempt_log.order_by("-number")[:TIMELINE_SHOWN])[::-1]
    total = delivery.attempt_log.count() if len(attempts) == TIMELINE_SHOWN else len(attempts)
    versions = dict(
        CredentialVersion.objects.filter(
            pk__in={a.credential_version_id for a in attempts if a.credential_version_id}
        ).values_list("pk", "credential_id")
    )
    rows = [
        AttemptRow(
            attempt=a,
            started=when(a.started_at),
            next_delay=_seconds(a.next_delay_seconds),
            request_headers=_pretty(_masked_headers(a.request_headers)),
            response_headers=_pretty(_masked_headers(a.response_headers)),
            curl=curl_command(a),
            credential_url=_credential_url(versions.get(a.credential_version_id)),
        )
        for a in attempts
    ]
    return rows, total - len(rows)


def breaker_for(delivery: Delivery) -> CircuitBreaker | None:
    return CircuitBreaker.objects.filter(
        provider_key=delivery.provider_key, region=delivery.customer.region.code
    ).first()


def _outbound_links(delivery: Delivery) -> list[tuple[str, str, str]]:
    """A fan-out delivery's subscription and inbound event (admin URLs by name: the webhooks
    app sits above this one)."""
    links = []
    data = delivery.input if isinstance(delivery.input, dict) else {}
    for label, key, url_name in (
        ("Subscription", "subscription", "admin:webhooks_subscription_change"),
        ("Inbound event", "event", "admin:webhooks_inboundevent_change"),
    ):
        if isinstance(data.get(key), int):
            try:
                links.append((label, reverse(url_name, args=[data[key]]), f"#{data[key]}"))
            except NoReverseMatch:
                continue
    return links


def delivery_links(delivery: Delivery) -> list[tuple[str, str, str]]:
    """(label, url, text) for what this delivery touched."""
    links = [("Customer", change_url(delivery.customer), str(delivery.customer))]
    if delivery.integration_id:
        links.append(
            ("Integration", change_url(delivery.integration), f"#{delivery.integration_id}")
        )
    breaker = breaker_for(delivery)
    if breaker is not None:
        links.append(("Circuit breaker", change_url(breaker), breaker.get_state_display()))
    if delivery.provider_key == OUTBOUND_PROVIDER:
        links += _outbound_links(delivery)
    return links
