"""Connect in the admin: the OAuth 2.0 authorization-code grant (RFC 6749 §4.1) with PKCE
(RFC 7636, S256) that stores a customer's first tokens as its ``api`` credential.

The pending Connect (state, code_verifier, customer, provider, redirect_uri) lives in the
operator's server-side session, never in a URL other than the state itself. A state is matched
in constant time, used once (removed whatever the outcome) and expires after ten minutes, the
life of a Miro authorization code. The code is exchanged through the same token request as the
refresh (``integrations.oauth.oauth_token_request``: egress policy, client credential, the
client secret only to the provider's own hosts or a trusted integration's base_url).
Facts: docs/providers/miro-oauth.md, shopify-oauth.md."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from urllib.parse import urlencode

from django.views.decorators.debug import sensitive_variables

from credentials.exceptions import CredentialNotConfigured
from credentials.models import Credential, CredentialVersion
from credentials.services import credential_create, credential_resolve, credential_rotate
from customers.models import Customer
from integrations.oauth import (
    ERROR_CODE,
    REFRESH_GRACE_SECONDS,
    TokenRefreshFailed,
    oauth_token_request,
)
from integrations.providers.types import CredentialPurpose
from integrations.registry import get_provider
from integrations.selectors import integration_active_get

__all__ = (
    "AUTHORIZE_PAGES",
    "STATE_SECONDS",
    "ConnectFailed",
    "connect_providers",
    "oauth_connect_finish",
    "oauth_connect_start",
    "pkce_challenge",
)

SESSION_KEY = "switchyard_oauth_connect"
# Miro: an authorization code "expires 10 minutes after issuance"; a Connect lives as long.
STATE_SECONDS = 600
# Pending Connects kept per session; an older one is dropped when a new one starts.
MAX_PENDING = 5
# Per provider: (authorization page, path of that page on a trusted base_url override).
# Miro: https://developers.miro.com/docs/getting-started-with-oauth; Shopify: the shop's own
# host (docs/providers/shopify-oauth.md).
AUTHORIZE_PAGES = {
    "miro": ("https://miro.com/oauth/authorize", "/oauth/authorize"),
    "shopify": (None, "/admin/oauth/authorize"),
}
# Scopes proposed on the Connect page (the operator may change them). Miro takes the app's
# configured scopes when none are sent; Shopify's set_order_tags writes orders.
DEFAULT_SCOPES = {"miro": "", "shopify": "write_orders"}


class ConnectFailed(Exception):
    """The Connect did not store tokens; the message is for the operator and holds no secret."""


@dataclass(frozen=True)
class ConnectTarget:
    provider_key: str
    name: str
    scope: str


def connect_providers() -> list[ConnectTarget]:
    """Providers configured with an authorization page and a token endpoint."""
    targets = []
    for key in AUTHORIZE_PAGES:
        provider = get_provider(key)
        if provider.oauth_token_path:
            targets.append(ConnectTarget(key, provider.name, DEFAULT_SCOPES.get(key, "")))
    return targets


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 §4.2, S256: BASE64URL(SHA256(ASCII(code_verifier))) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _integration_config(provider_key: str, customer: Customer) -> tuple[dict, bool]:
    integration = integration_active_get(customer=customer, provider_key=provider_key)
    if integration is None:
        return {}, False
    return dict(integration.config), bool(integration.trusted)


def _authorize_url(provider_key: str, customer: Customer) -> str:
    """The provider's authorization page for this customer. A base_url override counts only on
    an integration an admin marked trusted, as for the client secret."""
    provider = get_provider(provider_key)
    default, path = AUTHORIZE_PAGES[provider_key]
    config, trusted = _integration_config(provider_key, customer)
    if config.get("base_url") and not trusted:
        raise ConnectFailed(
            f"{customer}'s {provider.name} integration points at its own base_url; an admin "
            "marks it trusted before the app's client secret may go there."
        )
    if config.get("base_url") or default is None:
        base = provider.base_url(config=config, region=customer.region.code)
        if not base:
            raise ConnectFailed(
                f"{customer} has no active {provider.name} integration saying where to connect "
                "(Shopify: its shop)."
            )
        return base + path
    return default


def oauth_connect_start(
    *,
    session: MutableMapping,
    provider_key: str,
    customer: Customer,
    redirect_uri: str,
    scope: str = "",
) -> str:
    """Remember a new pending Connect in ``session``; the provider's authorization URL to send
    the operator's browser to. Raises ``ConnectFailed``."""
    if provider_key not in AUTHORIZE_PAGES:
        raise ConnectFailed(f"Provider '{provider_key}' has no OAuth 2.0 Connect.")
    provider = get_provider(provider_key)
    try:
        client = credential_resolve(
            provider=provider_key, customer=customer, purpose=CredentialPurpose.OAUTH_CLIENT
        )
    except CredentialNotConfigured:
        raise ConnectFailed(
            f"No {provider.name} '{CredentialPurpose.OAUTH_CLIENT}' credential serves {customer}: "
            "an admin adds the app's client_id and client_secret first."
        ) from None
    url = _authorize_url(provider_key, customer)
    state, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(64)
    pending = _pending_alive(session)[-(MAX_PENDING - 1) :]
    pending.append(
        {
            "state": state,
            "verifier": verifier,
            "provider": provider_key,
            "customer": customer.pk,
            "redirect_uri": redirect_uri,
            "started": time.time(),
        }
    )
    session[SESSION_KEY] = pending
    query = {
        "response_type": "code",
        "client_id": client.fields.get("client_id", ""),
        "redirect_uri": redirect_uri,
        "state": state,
        "code_challenge": pkce_challenge(verifier),
        "code_challenge_method": "S256",
    }
    if scope.strip():
        query["scope"] = scope.strip()
    return f"{url}?{urlencode(query)}"


def _pending_alive(session: MutableMapping) -> list[dict]:
    now = time.time()
    pending = session.get(SESSION_KEY) or []
    return [p for p in pending if isinstance(p, dict) and now - p["started"] < STATE_SECONDS]


def _pending_take(session: MutableMapping, state: str) -> dict:
    """The pending Connect of ``state``, removed from the session (single use). Every entry is
    compared in constant time; an expired one is found, removed and refused."""
    pending = list(session.get(SESSION_KEY) or [])
    found = None
    for entry in pending:
        if hmac.compare_digest(str(entry.get("state", "")).encode(), state.encode()):
            found = entry
    if found is None:
        raise ConnectFailed(
            "The provider's answer matches no Connect started in this session (unknown or "
            "already used state); start Connect again."
        )
    pending.remove(found)
    session[SESSION_KEY] = pending
    if time.time() - found["started"] >= STATE_SECONDS:
        raise ConnectFailed(
            f"This Connect expired ({STATE_SECONDS // 60} minutes); start Connect again."
        )
    return found


@sensitive_variables()
def oauth_connect_finish(
    *, session: MutableMapping, query: MutableMapping, actor
) -> tuple[Credential, CredentialVersion]:
    """The provider sent the browser back with ``query``: check the state, exchange the code
    with the PKCE verifier, store the tokens as the customer's ``api`` credential (created, or
    rotated when one exists; audited with ``actor``). Raises ``ConnectFailed``."""
    entry = _pending_take(session, str(query.get("state") or ""))
    provider = get_provider(entry["provider"])
    error = str(query.get("error") or "")
    if error:
        code = error if ERROR_CODE.match(error) else "error"
        if code == "access_denied":
            raise ConnectFailed(f"Access to {provider.name} was declined (access_denied).")
        raise ConnectFailed(f"{provider.name} did not authorise the app ({code}).")
    if not query.get("code"):
        raise ConnectFailed(f"{provider.name} sent no authorization code back.")
    customer = Customer.objects.select_related("region").filter(pk=entry["customer"]).first()
    if customer is None:
        raise ConnectFailed("The customer of this Connect no longer exists.")
    config, trusted = _integration_config(provider.key, customer)
    grant = {
        "grant_type": "authorization_code",
        "code": str(query["code"]),
        "redirect_uri": entry["redirect_uri"],
        "code_verifier": entry["verifier"],
    }
    try:
        tokens = oauth_token_request(provider, customer, config, trusted, grant)
    except TokenRefreshFailed as exc:
        if exc.kind == "reauthorise":
            raise ConnectFailed(
                f"{provider.name} refused the authorization code ({exc.error_class}); start "
                "Connect again."
            ) from None
        raise ConnectFailed(str(exc)) from None
    return _tokens_store(provider.key, customer, tokens, actor)


@sensitive_variables("tokens")
def _tokens_store(
    provider_key: str, customer: Customer, tokens: dict, actor
) -> tuple[Credential, CredentialVersion]:
    reason = "OAuth 2.0 Connect (authorization code)"
    existing = Credential.objects.filter(
        provider=provider_key,
        purpose=CredentialPurpose.API,
        customer=customer,
        enabled=True,
    ).first()
    if existing is None:
        credential = credential_create(
            provider=provider_key,
            purpose=CredentialPurpose.API,
            customer=customer,
            label="Connected with OAuth 2.0",
            fields=tokens,
            created_by=actor,
        )
        return credential, credential.versions.get(state=CredentialVersion.State.CURRENT)
    version = credential_rotate(
        credential=existing,
        fields=tokens,
        grace_seconds=REFRESH_GRACE_SECONDS,
        created_by=actor,
        reason=reason,
    )
    return existing, version
