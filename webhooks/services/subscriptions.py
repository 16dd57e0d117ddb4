"""Subscriptions: where processed events are sent, each signed with a secret of its own kept in the
credentials vault, rotatable with a grace period."""

import base64
import re
import secrets

import structlog
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from credentials.models import Credential
from credentials.services import (
    DEFAULT_GRACE_SECONDS,
    credential_create_owned,
    credential_revoke,
    credential_rotate,
)
from customers.models import Customer
from integrations import egress
from integrations.models import OpsNotification
from integrations.ops.services import ops_notify
from integrations.providers.standard_webhooks import StandardWebhooksProvider
from webhooks.models import Subscription

__all__ = (
    "DEFAULT_GRACE_SECONDS",
    "MAX_GRACE_SECONDS",
    "subscription_create",
    "subscription_deleted",
    "subscription_disable",
    "subscription_owner_sync",
    "subscription_resume",
    "subscription_rotate_secret",
)

logger = structlog.stdlib.get_logger(__name__)

SECRET_PREFIX = "whsec_"
SIGNING_PROVIDER = StandardWebhooksProvider.key
SECRET_BYTES = 24  # Svix-compatible secrets (webhook-platforms.md §6.1)
# A subscriber is told to keep both secrets for a while; a week bounds that promise.
MAX_GRACE_SECONDS = 7 * 24 * 3600
EVENT_TYPE_PATTERN = re.compile(r"^(\*|[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*(\.\*)?)$")


@sensitive_variables()
def _new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


@sensitive_variables()
def _signing_credential_create(*, subscription: Subscription, secret: str, created_by) -> None:
    """The subscription's signing credential: its own scope, so that its ciphertexts are bound
    to this subscription, with the subscription's customer as owner (tenancy)."""
    credential = credential_create_owned(
        provider=SIGNING_PROVIDER,
        purpose=Credential.Purpose.SUBSCRIPTION_SIGNING,
        owner_scope=f"subscription:{subscription.pk}",
        customer=subscription.customer,
        label=f"Signing secret of subscription #{subscription.pk}",
        fields={"secret": secret},
        created_by=created_by,
    )
    subscription.signing_credential = credential
    subscription.save(update_fields=["signing_credential"])


def _validate(*, url: str, event_types, allow_private: bool) -> None:
    errors = {}
    try:
        egress.destination_check(url, allow_private=allow_private)
    except egress.EgressRefused as exc:
        # The caller is told the policy's words; the address a name resolved to is logged.
        logger.info("webhooks.subscription_url_refused", detail=str(exc))
        errors["url"] = f"{exc.public_message} For an internal app, an admin may set allow_private."
    if not isinstance(event_types, list) or not event_types:
        errors["event_types"] = 'Give a non-empty list, e.g. ["*"] or ["trello.*"].'
    elif bad := [t for t in event_types if not EVENT_TYPE_PATTERN.match(str(t))]:
        errors["event_types"] = f"Invalid event type pattern: {bad[0]!r}."
    if errors:
        raise ValidationError(errors)


# Every local: the frames below see the secret under other names.
@sensitive_variables()
def subscription_create(
    *,
    url: str,
    event_types: list[str],
    allow_private: bool = False,
    customer: Customer | None = None,
    created_by=None,
) -> tuple[Subscription, str]:
    """Returns (subscription, secret); the secret is not retrievable afterwards. The secret is
    version 1 of the subscription's ``subscription_signing`` credential (audited as created by
    ``created_by``: an API key, an admin user, None for the system)."""
    _validate(url=url, event_types=event_types, allow_private=allow_private)
    secret = _new_secret()
    with transaction.atomic():
        subscription = Subscription.objects.create(
            url=url, event_types=event_types, allow_private=allow_private, customer=customer
        )
        _signing_credential_create(subscription=subscription, secret=secret, created_by=created_by)
    logger.info(
        "webhooks.subscription_created",
        subscription_id=subscription.pk,
        customer=customer.slug if customer else None,
    )
    return subscription, secret


@sensitive_variables()
def subscription_rotate_secret(
    *,
    subscription: Subscription,
    grace_seconds: int = DEFAULT_GRACE_SECONDS,
    created_by=None,
    reason: str = "",
) -> str:
    """A new current secret; the old ones keep signing for ``grace_seconds`` (0 = stop now; an
    old secret already ending sooner keeps its end). A credential rotation of the subscription's
    signing credential: audited, and the retired versions are revoked by upkeep after grace."""
    if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
        raise ValidationError({"grace_seconds": f"Between 0 and {MAX_GRACE_SECONDS} seconds."})
    secret = _new_secret()
    with transaction.atomic():
        locked = Subscription.objects.select_for_update().get(pk=subscription.pk)
        credential = locked.signing_credential
        if credential is None or not credential.enabled:
            # No secret to rotate from (none was ever moved here, or it was revoked entirely):
            # a new credential takes over as version 1.
            _signing_credential_create(subscription=locked, secret=secret, created_by=created_by)
            version = 1
        else:
            version = credential_rotate(
                credential=credential,
                fields={"secret": secret},
                grace_seconds=grace_seconds,
                created_by=created_by,
                reason=reason,
                owned=True,
                cap_previous_grace=True,
            ).version
    subscription.signing_credential = locked.signing_credential
    logger.info(
        "webhooks.subscription_secret_rotated",
        subscription_id=subscription.pk,
        customer=subscription.customer.slug if subscription.customer_id else None,
        version=version,
        grace_seconds=grace_seconds,
    )
    return secret


def subscription_owner_sync(*, subscription: Subscription) -> None:
    """After an admin changed a subscription's customer: its signing credential follows, so
    tenancy checks keep treating it as that customer's."""
    Credential.objects.filter(pk=subscription.signing_credential_id).exclude(
        customer_id=subscription.customer_id
    ).update(customer_id=subscription.customer_id, updated_at=timezone.now())


def subscription_deleted(sender, instance: Subscription, **kwargs) -> None:
    """post_delete of a subscription (admin, or its customer's deletion): its signing secrets
    are revoked, ciphertext and all; the credential stays for its audit trail."""
    credential = Credential.objects.filter(pk=instance.signing_credential_id).first()
    if credential is not None and credential.enabled:
        credential_revoke(
            credential=credential,
            include_current=True,
            reason=f"subscription #{instance.pk} deleted",
        )


def subscription_disable(*, subscription_id: int, reason: str) -> None:
    updated = Subscription.objects.filter(pk=subscription_id, active=True).update(
        active=False, disabled_at=timezone.now(), disabled_reason=reason[:200]
    )
    if updated:
        logger.warning(
            "webhooks.subscription_disabled", subscription_id=subscription_id, reason=reason
        )
        ops_notify(
            type=OpsNotification.Type.SUBSCRIPTION_DISABLED,
            subject=f"subscription:{subscription_id}",
            data={"subscription": subscription_id, "reason": reason[:200]},
        )


def subscription_resume(*, subscription: Subscription) -> bool:
    """Send to a paused or disabled subscription again (an operator fixed the receiver).
    False when it was already active."""
    updated = Subscription.objects.filter(pk=subscription.pk, active=False).update(
        active=True, disabled_at=None, disabled_reason=""
    )
    subscription.refresh_from_db()
    return bool(updated)
