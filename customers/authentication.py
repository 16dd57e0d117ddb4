import contextlib
import logging
import time

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, throttling

from customers.services import api_key_authenticate

__all__ = (
    "ApiClient",
    "ApiKeyAuthentication",
    "FailedAuthenticationThrottle",
    "UnblockedAddresses",
)

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
        if len(self.history) < self.num_requests:
            return None
        # Until the failure that makes the count reach the limit leaves the window. (DRF's
        # wait() is None once more failures than the limit are recorded, as processes failing
        # at once do, which would let a guesser through.)
        return self.duration - (self.now - self.history[self.num_requests - 1])

    def record_failure(self, request) -> None:
        self.blocked_for(request)
        self.history.insert(0, self.now)
        with contextlib.suppress(Exception):  # see blocked_for
            self.cache.set(self.key, self.history, self.duration)


class UnblockedAddresses:
    """Addresses this process found unblocked in the last ``seconds``: a client that has not
    failed here is not looked up in the shared cache on each request. A failure here forgets
    its address, so a guesser is checked on every try after the first: at most one unchecked
    guess per process and ``seconds`` once another process has blocked it."""

    def __init__(self, seconds: float = 1.0, size: int = 4096):
        self.seconds, self.size = seconds, size
        self._checked_at: dict[str, float] = {}

    def __contains__(self, address: str) -> bool:
        checked_at = self._checked_at.get(address)
        return checked_at is not None and time.monotonic() - checked_at < self.seconds

    def add(self, address: str) -> None:
        if len(self._checked_at) >= self.size:
            self._checked_at.clear()
        self._checked_at[address] = time.monotonic()

    def discard(self, address: str) -> None:
        self._checked_at.pop(address, None)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"
    unblocked = UnblockedAddresses()

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        throttle = FailedAuthenticationThrottle()
        address = throttle.get_ident(request)
        if address not in self.unblocked:
            wait = throttle.blocked_for(request)
            if wait is not None:
                raise exceptions.Throttled(
                    wait, detail="Too many failed authentications from this address."
                )
            self.unblocked.add(address)
        scheme, _, raw_key = header.partition(" ")
        if scheme.lower() != self.keyword.lower() or not raw_key.strip():
            self._failed(throttle, request, address)
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header; expected 'Bearer <api key>'."
            )
        api_key = api_key_authenticate(raw_key=raw_key.strip())
        if api_key is None:
            self._failed(throttle, request, address)
            raise exceptions.AuthenticationFailed("Unknown, revoked or expired API key.")
        return ApiClient(api_key), api_key

    def _failed(self, throttle: FailedAuthenticationThrottle, request, address: str) -> None:
        self.unblocked.discard(address)
        throttle.record_failure(request)

    def authenticate_header(self, request):
        return self.keyword


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A Switchyard API key (sy_…)."}
