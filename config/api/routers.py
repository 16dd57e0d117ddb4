"""The API's router: detail routes take their id through the ``id`` path converter, so an id
that is not a database id (``abc``, ``1e30``, ``null,null``, 2**70) resolves to no route and
gets the 404 problem, before any view or query sees it."""

from django.urls import register_converter
from rest_framework.routers import SimpleRouter

__all__ = ("MAX_ID", "ApiRouter", "IdConverter")

# Primary keys are 64-bit signed integers (BigAutoField) on every backend.
MAX_ID = 2**63 - 1


class IdConverter:
    regex = "[0-9]{1,19}"  # ASCII digits only: \d would also take other scripts' digits

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > MAX_ID:
            raise ValueError(f"{value} is beyond the largest id")  # Django: no match, 404
        return number

    def to_url(self, value) -> str:
        return str(value)


register_converter(IdConverter, "id")


class ApiRouter(SimpleRouter):
    """A viewset's lookup is an ``id`` unless it names another converter
    (``lookup_value_converter = "slug"``)."""

    def __init__(self):
        super().__init__(use_regex_path=False)
        self._default_value_pattern = "id"
