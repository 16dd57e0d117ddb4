import contextlib
import logging

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, throttling

from customers.services import api_key_authenticate

__all__ = ("ApiClient", "ApiKeyAuthentication", "FailedAuthenticationThrottle")

logger = logging.getLogger(__name__)


class ApiClient:
    """The principal behind an API request: an internal app holding an API key."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, api_key):
        self.api_key = api_key
        self.username = f"api-key:{api_key.name}"

    def __str__(self) -> str:
        return self.username


class FailedAuthenticationThrottle(throttling.SimpleRateThrottle):
    """Failed authentications per client address (DRF's sliding window in the shared cache),
    so keys cannot be guessed at speed. Only failures count; once an address is over the
    limit, every request from it waits out the window."""

    scope = "failed-authentication"
    cache_format = "switchyard:throttle:%(scope)s:%(ident)s"

    def get_rate(self):
        return f"{settings.SWITCHYARD_AUTH_FAILURES_PER_MINUTE}/min"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def blocked_for(self, request) -> float | None:
        """Seconds until another attempt is allowed, or None when it is allowed now. An
        unreachable cache (Redis down) throttles nothing: API calls must not fail with it."""
        self.key = self.get_cache_key(request, None)
        self.now = self.timer()
        try:
            self.history = self.cache.get(self.key, [])
        except Exception:
            logger.warning("api.auth_throttle_unavailable", exc_info=True)
            self.history = []
            return None
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        return self.wait() if len(self.history) >= self.num_requests else None

    def record_failure(self, request) -> None:
        self.blocked_for(request)
        self.history.insert(0, self.now)
        with contextlib.suppress(Exception):  # see blocked_for
            self.cache.set(self.key, self.history, self.duration)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        throttle = FailedAuthenticationThrottle()
        wait = throttle.blocked_for(request)
        if wait is not None:
            raise exceptions.Throttled(
                wait, detail="Too many failed authentications from this address."
            )
        scheme, _, raw_key = header.partition(" ")
        if scheme.lower() != self.keyword.lower() or not raw_key.strip():
            throttle.record_failure(request)
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header; expected 'Bearer <api key>'."
            )
        api_key = api_key_authenticate(raw_key=raw_key.strip())
        if api_key is None:
            throttle.record_failure(request)
            raise exceptions.AuthenticationFailed("Unknown, revoked or expired API key.")
        return ApiClient(api_key), api_key

    def authenticate_header(self, request):
        return self.keyword


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A Switchyard API key (sy_…)."}
