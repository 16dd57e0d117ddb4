"""The fake providers' OAuth 2.0 token endpoint (docs/providers/miro-oauth.md, shopify-oauth.md):
expiring access tokens, refresh tokens that rotate on every use, ``invalid_grant`` on demand;
and an authorization page that approves at once (``deny-…`` client ids: ``access_denied``) for
the authorization-code grant with PKCE (RFC 7636, S256 only), codes single use for 10 minutes.

Tokens the fake did not issue are accepted as before (tests that set any token keep working),
except ``expired-…`` access tokens (answered 401) and ``revoked-…`` refresh tokens (refused with
``invalid_grant``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from urllib.parse import urlencode

from devtools.fakeprovider.replies import Reply, json_reply, text_reply

__all__ = ("FakeTokens",)

ACCESS_TOKEN_SECONDS = 3599  # Miro's example; Shopify documents 3600
CODE_SECONDS = 600  # Miro: a code "expires 10 minutes after issuance"


class FakeTokens:
    """Issued access tokens (token → expiry) and spent refresh tokens, behind one lock: the
    handler threads answer concurrently."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.access: dict[str, float] = {}
            self.spent: set[str] = set()
            self.lifetime = ACCESS_TOKEN_SECONDS
            # code → (client_id, redirect_uri, code_challenge, expiry)
            self.codes: dict[str, tuple[str, str, str, float]] = {}

    def authorize(self, query: dict) -> Reply:
        """The authorization page, approved at once: 302 back to redirect_uri with a code and
        the state, or with ``error=access_denied`` for a ``deny-…`` client id."""
        redirect_uri, client_id = query.get("redirect_uri") or "", query.get("client_id") or ""
        if query.get("response_type") != "code" or not redirect_uri or not client_id:
            return text_reply(400, "response_type=code, client_id and redirect_uri are required")
        challenge = query.get("code_challenge") or ""
        if query.get("code_challenge_method") != "S256" or not challenge:
            return text_reply(400, "code_challenge with code_challenge_method=S256 is required")
        answer = {"state": query.get("state") or ""}
        if client_id.startswith("deny-"):
            answer["error"] = "access_denied"
        else:
            code = f"code-{secrets.token_hex(12)}"
            with self.lock:
                self.codes[code] = (client_id, redirect_uri, challenge, time.time() + CODE_SECONDS)
            answer["code"] = code
        separator = "&" if "?" in redirect_uri else "?"
        return Reply(302, b"", {"Location": f"{redirect_uri}{separator}{urlencode(answer)}"})

    def token(self, form: dict) -> Reply:
        """The token endpoint: the authorization-code grant or the refresh grant."""
        if form.get("grant_type") == "authorization_code":
            return self._code_grant(form)
        return self.refresh(form)

    def _code_grant(self, form: dict) -> Reply:
        """RFC 6749 §4.1.3 with RFC 7636 §4.6: the code once, its redirect_uri, the verifier."""
        if not form.get("client_id") or not form.get("client_secret"):
            return json_reply(401, {"error": "invalid_client"})
        with self.lock:
            issued = self.codes.pop(form.get("code") or "", None)
        if issued is None or issued[3] <= time.time():
            return json_reply(400, {"error": "invalid_grant"})
        client_id, redirect_uri, challenge, _ = issued
        verifier = (form.get("code_verifier") or "").encode("ascii", errors="replace")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
        if (
            form.get("client_id") != client_id
            or form.get("redirect_uri") != redirect_uri
            or not hmac.compare_digest(digest, challenge.encode())
        ):
            return json_reply(400, {"error": "invalid_grant"})
        return self._issue()

    def refresh(self, form: dict) -> Reply:
        """RFC 6749 §6: a new pair; the refresh token used is spent (rotation)."""
        if form.get("grant_type") != "refresh_token":
            return json_reply(400, {"error": "unsupported_grant_type"})
        if not form.get("client_id") or not form.get("client_secret"):
            return json_reply(401, {"error": "invalid_client"})
        used = form.get("refresh_token") or ""
        with self.lock:
            if not used or used.startswith("revoked-") or used in self.spent:
                return json_reply(400, {"error": "invalid_grant"})
            self.spent.add(used)
        return self._issue()

    def _issue(self) -> Reply:
        """A new expiring access token and refresh token."""
        access, refresh = f"at-{secrets.token_hex(12)}", f"rt-{secrets.token_hex(12)}"
        with self.lock:
            self.access[access] = time.time() + self.lifetime
        return json_reply(
            200,
            {
                "token_type": "bearer",
                "access_token": access,
                "refresh_token": refresh,
                "expires_in": self.lifetime,
            },
        )

    def expired(self, token: str) -> bool:
        """An ``expired-…`` token, or one this fake issued whose lifetime is over."""
        if token.startswith("expired-"):
            return True
        with self.lock:
            expires = self.access.get(token)
        return expires is not None and expires <= time.time()
