"""Key scopes (DESIGN §10): ``app`` keys act for the customers they may see; configuration that
spans customers (regions, customers, shared credentials, trusted integrations, private
destinations, breaker errors) needs an ``admin`` key."""

from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS, BasePermission

__all__ = ("AdminScopeForWrites", "ScopeRequired", "is_admin", "scope_require_admin")

ADMIN = "admin"


class ScopeRequired(exceptions.PermissionDenied):
    default_code = "scope-required"

    def __init__(self, what: str, scope: str = ADMIN):
        super().__init__(
            f"{what} needs an API key with the '{scope}' scope; this key's scope is 'app'.",
            code=self.default_code,
        )


def is_admin(request) -> bool:
    return request.auth is not None and request.auth.is_admin


def scope_require_admin(request, what: str) -> None:
    """Raise a 403 problem naming the scope unless the request's key has it."""
    if not is_admin(request):
        raise ScopeRequired(what)


class AdminScopeForWrites(BasePermission):
    """Any key may read; creating or changing needs the admin scope."""

    def has_permission(self, request, view):
        if request.method not in SAFE_METHODS:
            scope_require_admin(request, f"{request.method} {request.path}")
        return True
