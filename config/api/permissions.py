from rest_framework.permissions import SAFE_METHODS, BasePermission

__all__ = ("UnrestrictedKeyForWrites",)


class UnrestrictedKeyForWrites(BasePermission):
    """Keys limited to some customers may read, but not create, regions and customers."""

    message = "This API key is restricted to specific customers and cannot make this change."

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS or view.action == "partial_update":
            return True
        return request.auth is not None and not request.auth.customers.exists()
