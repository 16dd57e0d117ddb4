"""Which credential serves a call (the one read that decrypts), the secrets a webhook is verified
with, and when each version was last used."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from config.prepared import PreparedRead
from credentials.exceptions import CredentialNotConfigured
from credentials.models import OWNED_PURPOSES, Credential, CredentialVersion
from credentials.services.versions import version_decrypt

if TYPE_CHECKING:
    from customers.models import Customer

__all__ = (
    "LAST_USED_RESOLUTION",
    "ResolvedCredential",
    "credential_resolve",
    "credential_verification_secrets",
    "credential_version_mark_used",
)

State = CredentialVersion.State


# Recording every use would turn each outbound call into a write; a minute is precise enough
# to tell an operator when a previous version stopped being used.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class ResolvedCredential:
    credential_id: int
    version_id: int
    version: int
    # Kept out of repr so that logging or printing a resolution never shows a secret.
    fields: dict[str, str] = field(repr=False)
    # Global, region or tier: it serves several customers, so it may be sent only to the
    # provider's own hosts or a trusted integration (DESIGN §10).
    shared: bool = False


_SCOPE_RANK = ("customer", "region+tier", "region", "tier", "global")


def _rank(credential: Credential, customer: Customer) -> tuple[int, int]:
    """Lower is preferred: customer-specific, region+tier, region, tier, global, and only then
    another region's credential that explicitly allows cross-region use."""
    if credential.customer_id:
        level = "customer"
    elif credential.region_id and credential.tier:
        level = "region+tier"
    elif credential.region_id:
        level = "region"
    else:
        level = "tier" if credential.tier else "global"
    foreign = bool(credential.region_id) and credential.region_id != customer.region_id
    return (len(_SCOPE_RANK) if foreign else 0) + _SCOPE_RANK.index(level), credential.pk


@sensitive_variables("fields")
def credential_resolve(
    *, provider: str, customer: Customer, purpose: str = Credential.Purpose.API
) -> ResolvedCredential:
    """The current fields that calls for this customer use now.

    Raises ``CredentialNotConfigured`` (non-retryable) when no credential serves the customer;
    another region's credential is used only where it allows cross-region use. Owned purposes
    (a subscription's signing secret) are never resolved for a call."""
    if purpose in OWNED_PURPOSES:
        raise ValueError(f"{purpose} credentials are never resolved for a call.")
    candidates = _CANDIDATES.objects(
        provider=provider,
        purpose=purpose,
        customer_id=customer.pk,
        region_id=customer.region_id,
        tier=customer.tier,
    )
    if not candidates:
        raise CredentialNotConfigured(provider=provider, customer=customer, purpose=purpose)
    chosen = min(candidates, key=lambda c: _rank(c, customer))
    version = next(iter(_CURRENT_VERSION.objects(credential_id=chosen.pk)), None)
    if version is None:  # rotated away between the two reads: resolve again
        return credential_resolve(provider=provider, customer=customer, purpose=purpose)
    version.credential = chosen
    return ResolvedCredential(
        credential_id=chosen.pk,
        version_id=version.pk,
        version=version.version,
        fields=version_decrypt(version),
        shared=chosen.customer_id is None,
    )


def _candidates(provider, purpose, customer_id, region_id, tier):
    """Enabled credentials with a current version that may serve the customer: its own, and the
    global, regional and cross-region ones of its tier or of every tier."""
    tier_matches = Q(tier="") | Q(tier=tier)
    return Credential.objects.filter(
        Q(customer=customer_id)
        | Q(customer__isnull=True, region__isnull=True) & tier_matches
        | Q(customer__isnull=True, region=region_id) & tier_matches
        | Q(customer__isnull=True, region__isnull=False, allow_cross_region=True) & tier_matches,
        provider=provider,
        purpose=purpose,
        enabled=True,
        versions__state=State.CURRENT,
    ).order_by()


# Compiled once per process: on a worker's hot path, building these filters cost more than
# running them.
_CANDIDATES = PreparedRead(_candidates)
_CURRENT_VERSION = PreparedRead(
    lambda credential_id: CredentialVersion.objects.filter(
        credential_id=credential_id, state=State.CURRENT
    ).order_by("pk")[:1]
)


@sensitive_variables()
def credential_verification_secrets(*, credential: Credential) -> list[tuple[int, dict[str, str]]]:
    """(version number, fields) of the current and every previous version still in grace, newest
    first: inbound signature checks try each, and record which version matched."""
    now = timezone.now()
    versions = credential.versions.select_related("credential").filter(
        Q(state=State.CURRENT) | Q(state=State.PREVIOUS, grace_until__gt=now)
    )
    return [(v.version, version_decrypt(v)) for v in versions.order_by("-version")]


# Until when (monotonic seconds) this process needs no ``last_used_at`` write per version, so the
# hot path of a webhook or an outbound call skips the shared cache (a Redis round trip) and the
# version lookup while the minute lasts. Keyed by id, or by (credential id, version number) when
# called with those; cleared when full, which only costs a few early writes.
LAST_MARKED_SIZE = 4096


_last_marked: dict[object, float] = {}


def credential_version_mark_used(
    *,
    version_id: int | None = None,
    credential: Credential | None = None,
    version: int | None = None,
) -> None:
    """Record that a version was used now, by id or by (credential, version number) as returned
    by ``credential_verification_secrets``. At most one write per minute per version."""
    memo_key = version_id if version_id is not None else (credential.pk, version)
    now_monotonic = time.monotonic()
    if _last_marked.get(memo_key, float("-inf")) > now_monotonic:
        return
    if len(_last_marked) >= LAST_MARKED_SIZE:
        _last_marked.clear()
    _last_marked[memo_key] = now_monotonic + LAST_USED_RESOLUTION.total_seconds()
    if version_id is None:
        version_id = (
            CredentialVersion.objects.filter(credential=credential, version=version)
            .values_list("pk", flat=True)
            .first()
        )
        if version_id is None:
            return
    # The cache spares the database even the conditional UPDATE; the UPDATE's condition keeps
    # the one-write-per-minute promise across processes that do not share the cache.
    if not cache.add(f"credentials:used:{version_id}", 1, LAST_USED_RESOLUTION.total_seconds()):
        return
    now = timezone.now()
    CredentialVersion.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION),
        pk=version_id,
    ).update(last_used_at=now)
