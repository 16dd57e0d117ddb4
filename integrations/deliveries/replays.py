"""Replays: a logged delivery, its attempts and the provider's answers as a JSON fixture, so a
production failure becomes a regression test (tests/integrations/deliveries/test_replays.py).

Only masked records are exported (attempt logs never hold secrets), and they are masked again
with today's rules (secret headers, every form of the credential versions the attempts used) in
case an old row predates one of them."""

from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from credentials.crypto import DecryptionFailed
from credentials.models import CredentialVersion
from credentials.services import version_decrypt
from integrations.deliveries.masking import Masker
from integrations.deliveries.models import Delivery, DeliveryAttempt
from integrations.registry import ProviderNotRegistered, get_provider

__all__ = ("REPLAY_FORMAT", "delivery_replay_export")

REPLAY_FORMAT = "switchyard.delivery-replay/1"


@sensitive_variables("credentials", "fields")
def _masker(delivery: Delivery, attempts: list[DeliveryAttempt]) -> Masker:
    """A masker for the credential versions the attempts used (those not revoked since: a
    revoked version's ciphertext is gone) and the provider's secret headers."""
    ids = {a.credential_version_id for a in attempts if a.credential_version_id is not None}
    versions = CredentialVersion.objects.select_related("credential").filter(pk__in=ids)
    credentials = {}
    for version in versions.exclude(key_id=""):
        try:
            fields = version_decrypt(version)
        except DecryptionFailed:
            continue
        credentials |= {f"{version.pk}.{name}": value for name, value in fields.items()}
    config = delivery.integration.config if delivery.integration else {}
    try:
        secret_headers = get_provider(delivery.provider_key).secret_header_names(config)
    except ProviderNotRegistered:
        secret_headers = ()
    return Masker(credentials=credentials, secret_headers=secret_headers)


def delivery_replay_export(*, delivery: Delivery, name: str, description: str = "") -> dict:
    attempts = list(delivery.attempt_log.order_by("number"))
    masker = _masker(delivery, attempts)
    _headers, _text = masker.headers, masker.text
    return {
        "format": REPLAY_FORMAT,
        "name": name,
        "description": description,
        "exported_at": timezone.now().isoformat(),
        "delivery": {
            "id": delivery.pk,
            "action": delivery.action,
            "provider": delivery.provider_key,
            "operation": delivery.operation,
            "input": delivery.input,
            "customer": {
                "slug": delivery.customer.slug,
                "region": delivery.customer.region.code,
                "tier": delivery.customer.tier,
            },
            "integration_config": delivery.integration.config if delivery.integration else None,
        },
        "attempts": [
            {
                "number": attempt.number,
                "outcome": attempt.outcome,
                "error_class": attempt.error_class,
                "request": {
                    "method": attempt.request_method,
                    "url": _text(attempt.request_url),
                    "headers": _headers(attempt.request_headers or {}),
                    "body": _text(attempt.request_body),
                },
                "response": None
                if attempt.response_status is None
                else {
                    "status": attempt.response_status,
                    "headers": _headers(attempt.response_headers or {}),
                    "body": _text(attempt.response_body),
                },
                "retry_after": attempt.retry_after,
                "next_delay_seconds": attempt.next_delay_seconds,
            }
            for attempt in attempts
        ],
        "expected": {"status": delivery.status, "dead_reason": delivery.dead_reason},
    }
