"""OAuth 2.0 access tokens that expire (Miro, Shopify): the refresh grant (RFC 6749 §6) under one
lock per credential, its answer stored as a new credential version.

The lock is the credential's row lock (``select_for_update``), the one the vault's rotation
already takes: on PostgreSQL a row lock, on SQLite the database write lock of an IMMEDIATE
transaction. It works on both backends without Redis, is shared by every process that shares
the database, and is released by the database if its holder dies. Whoever gets it second finds
a newer current version and uses it, so N workers refresh once (refresh tokens rotate: a second
refresh with the same one would fail). Facts: docs/providers/miro-oauth.md, shopify-oauth.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests
import structlog
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from credentials.exceptions import CredentialNotConfigured
from credentials.models import Credential, CredentialVersion
from credentials.services import (
    ResolvedCredential,
    credential_resolve,
    credential_rotate,
    version_decrypt,
)
from integrations import egress
from integrations.egress_url import url_host
from integrations.providers.base import BaseProvider
from integrations.providers.types import CredentialPurpose
from integrations.registry import get_provider

if TYPE_CHECKING:
    from customers.models import Customer

__all__ = (
    "REFRESH_GRACE_SECONDS",
    "REFRESH_MARGIN",
    "TokenRefreshFailed",
    "oauth_refreshable",
    "oauth_token_fresh",
    "oauth_token_request",
)

logger = structlog.stdlib.get_logger(__name__)

# Shopify: "Proactively refresh tokens a few minutes before they expire"; tokens live an hour.
REFRESH_MARGIN = timedelta(minutes=5)
# The replaced version stays readable this long (calls already sent with it), then is revoked.
REFRESH_GRACE_SECONDS = 300
# (connect, read) seconds of the token request; the lock is held meanwhile, so it stays short.
TOKEN_TIMEOUT = (3.05, 15.0)
# Only an RFC 6749 §5.2 error code is ever copied from the answer into an error message.
ERROR_CODE = re.compile(r"^[a-z_]{1,64}$")


class TokenRefreshFailed(Exception):
    """The refresh did not give a usable token. ``kind``: ``reauthorise`` (the grant is gone:
    someone must connect the account again), ``configuration`` (no client credential, a refused
    destination) or ``transient`` (network, 5xx: a later attempt may succeed). The message
    never holds a secret."""

    def __init__(self, message: str, *, kind: str, error_class: str):
        super().__init__(message)
        self.kind = kind
        self.error_class = error_class


def oauth_refreshable(provider: BaseProvider, resolved: ResolvedCredential | None) -> bool:
    """The provider has a token endpoint and the credential a refresh token to use there."""
    return bool(provider.oauth_token_path and resolved and resolved.fields.get("refresh_token"))


def _due(fields: Mapping[str, str], now: datetime) -> bool:
    """Expires within the margin. No ``expires_at``: unknown, refreshed only on a 401."""
    text = fields.get("expires_at")
    if not text:
        return False
    try:
        expires_at = datetime.fromisoformat(text)
    except ValueError:
        return True  # unreadable: a refresh writes a readable one
    if timezone.is_naive(expires_at):
        expires_at = timezone.make_aware(expires_at, timezone.utc)
    return expires_at - REFRESH_MARGIN <= now


@sensitive_variables()
def oauth_token_fresh(
    *,
    provider_key: str,
    customer: Customer,
    resolved: ResolvedCredential | None,
    config: Mapping,
    trusted: bool = False,
    force: bool = False,
) -> ResolvedCredential | None:
    """``resolved``, or the credential's newer version when its access token is due (``force``:
    the provider answered 401 to it). Raises ``TokenRefreshFailed``.

    Takes the credential's row lock, then re-reads the current version: when another worker
    refreshed while this one waited, its version is used and the token endpoint is not called."""
    provider = get_provider(provider_key)
    if not oauth_refreshable(provider, resolved):
        return resolved
    if not force and not _due(resolved.fields, timezone.now()):
        return resolved
    with transaction.atomic():
        locked = Credential.objects.select_for_update().get(pk=resolved.credential_id)
        current = locked.versions.filter(state=CredentialVersion.State.CURRENT).first()
        if current is None:
            raise TokenRefreshFailed(
                f"The {provider.name} credential has no current version; re-authorise the account.",
                kind="reauthorise",
                error_class="oauth_no_current_version",
            )
        if current.version != resolved.version:
            return _resolved_of(locked, current, version_decrypt(current))
        fields = version_decrypt(current)
        if not force and not _due(fields, timezone.now()):
            return _resolved_of(locked, current, fields)
        # An expiry the new answer does not restate would make every later call refresh again.
        kept = {name: value for name, value in fields.items() if name != "expires_at"}
        fields = kept | _refresh_grant(provider, customer, config, trusted, fields)
        new = credential_rotate(
            credential=locked,
            fields=fields,
            grace_seconds=REFRESH_GRACE_SECONDS,
            reason="OAuth 2.0 token refresh",
        )
    logger.info("oauth.refreshed", provider=provider.key, credential=locked.pk, to=new.version)
    return _resolved_of(locked, new, fields)


@sensitive_variables()
def _resolved_of(
    credential: Credential, version: CredentialVersion, fields: dict[str, str]
) -> ResolvedCredential:
    return ResolvedCredential(
        credential_id=credential.pk,
        version_id=version.pk,
        version=version.version,
        fields=fields,
        shared=credential.customer_id is None,
    )


@sensitive_variables()
def _refresh_grant(
    provider: BaseProvider, customer: Customer, config: Mapping, trusted: bool, fields: Mapping
) -> dict[str, str]:
    """POST the refresh grant through the egress policy; the new token fields."""
    grant = {"grant_type": "refresh_token", "refresh_token": fields["refresh_token"]}
    return oauth_token_request(provider, customer, config, trusted, grant)


@sensitive_variables()
def oauth_token_request(
    provider: BaseProvider, customer: Customer, config: Mapping, trusted: bool, grant: Mapping
) -> dict[str, str]:
    """POST ``grant`` (refresh, or the Connect flow's authorization code) with the app's client
    credential to the token endpoint through the egress policy; the token fields."""
    try:
        client = credential_resolve(
            provider=provider.key, customer=customer, purpose=CredentialPurpose.OAUTH_CLIENT
        ).fields
    except CredentialNotConfigured as exc:
        raise TokenRefreshFailed(
            f"{exc} An admin adds the app's client_id and client_secret as an "
            f"'{CredentialPurpose.OAUTH_CLIENT}' credential.",
            kind="configuration",
            error_class="oauth_client_not_configured",
        ) from None
    url = _token_url(provider, config, customer, trusted)
    form = {
        **grant,
        "client_id": client.get("client_id", ""),
        "client_secret": client.get("client_secret", ""),
    }
    try:
        response = egress.session_for(provider.key).post(
            url, data=form, timeout=TOKEN_TIMEOUT, allow_redirects=False
        )
    except egress.EgressRefused as exc:
        logger.warning("oauth.token_endpoint_refused", provider=provider.key, detail=str(exc))
        raise TokenRefreshFailed(
            f"Token endpoint refused: {exc.public_message}",
            kind="configuration",
            error_class="egress_refused",
        ) from None
    except requests.RequestException as exc:
        raise TokenRefreshFailed(
            f"{provider.name} token endpoint unreachable: {exc.__class__.__name__}.",
            kind="transient",
            error_class="oauth_refresh_unreachable",
        ) from None
    return _tokens_of(provider, response)


def _token_url(provider: BaseProvider, config: Mapping, customer: Customer, trusted: bool) -> str:
    """The token endpoint; the app's client secret serves every customer, so like any shared
    credential it goes only to the provider's own HTTPS hosts or a trusted integration's."""
    base = provider.base_url(config=config, region=customer.region.code) or ""
    url = base + provider.oauth_token_path
    parts = urlsplit(url)
    # The host HTTP clients connect to; none for a URL they read differently (refused below).
    host = url_host(url)
    own = parts.scheme == "https" and parts.port in (None, 443) and host
    if not trusted and not (own and host in provider.own_hosts(config)):
        raise TokenRefreshFailed(
            f"The {provider.name} client secret is sent only to {provider.name}'s own hosts or "
            f"to a base_url an admin marked trusted, not to '{host or parts.netloc}'.",
            kind="configuration",
            error_class="credential_not_allowed",
        )
    return url


@sensitive_variables()
def _tokens_of(provider: BaseProvider, response: requests.Response) -> dict[str, str]:
    """access_token, refresh_token (rotated, or the old one kept when none is sent back: RFC 6749
    §6) and expires_at from a token answer; 400/401 means the grant is gone."""
    try:
        body = response.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    code = body.get("error") if isinstance(body.get("error"), str) else ""
    code = code if ERROR_CODE.match(code or "") else ""
    if response.status_code == 200 and isinstance(body.get("access_token"), str):
        tokens = {"access_token": body["access_token"]}
        if isinstance(body.get("refresh_token"), str) and body["refresh_token"]:
            tokens["refresh_token"] = body["refresh_token"]
        expires_in = body.get("expires_in")
        if isinstance(expires_in, int | float) and expires_in > 0:
            tokens["expires_at"] = (timezone.now() + timedelta(seconds=expires_in)).isoformat()
        return tokens
    if code == "invalid_client":
        raise TokenRefreshFailed(
            f"{provider.name} refused the app's OAuth client (invalid_client): check its "
            f"'{CredentialPurpose.OAUTH_CLIENT}' credential.",
            kind="configuration",
            error_class="oauth_invalid_client",
        )
    if response.status_code in (400, 401):
        raise TokenRefreshFailed(
            f"{provider.name} refused the refresh token ({code or response.status_code}): "
            "re-authorise the account (connect it again) to get new tokens.",
            kind="reauthorise",
            error_class="oauth_invalid_grant",
        )
    raise TokenRefreshFailed(
        f"{provider.name} token endpoint answered HTTP {response.status_code}.",
        kind="transient",
        error_class="oauth_refresh_failed",
    )
