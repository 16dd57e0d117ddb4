"""The REST API's routes, found by walking ``get_resolver().url_patterns``: each pattern under
``/api/v1/`` becomes a path template (``/api/v1/credentials/{pk}/rotate/``) with the methods
its view answers (a viewset's ``actions``; an APIView's implemented handlers; HEAD wherever GET
is). Tests that go over every route use this, so a new endpoint is covered without edits."""

import re
from dataclasses import dataclass

from django.urls import URLResolver, get_resolver

__all__ = ("API_PREFIX", "Route", "api_routes")

API_PREFIX = "/api/v1/"
# Parameters that only choose a rendering (DRF format suffixes): the same view, no object.
SUFFIX_PARAMETERS = {"format"}


@dataclass(frozen=True)
class Route:
    template: str  # "/api/v1/credentials/{pk}/rotate/"
    params: tuple[tuple[str, str], ...]  # (parameter, literal segment before it)
    methods: tuple[str, ...]
    callback: object

    @property
    def segment(self) -> str:
        """The first segment: "credentials" for /api/v1/credentials/{pk}/rotate/."""
        return self.template.removeprefix(API_PREFIX).split("/")[0]


_GROUP = re.compile(r"\(\?P<(\w+)>")
_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


def _template(piece: str) -> str:
    """'^credentials/(?P<pk>\\d+)/$' or 'credentials/<int:pk>/' → 'credentials/{pk}/'."""
    piece = piece.removeprefix("^").removesuffix("$").removesuffix(r"\Z")
    out, start = [], 0
    while match := _GROUP.search(piece, start):
        out.append(piece[start : match.start()])
        depth, end = 1, match.end()
        while depth:  # to the group's closing parenthesis
            if piece[end] == "\\":
                end += 2
                continue
            depth += {"(": 1, ")": -1}.get(piece[end], 0)
            end += 1
        out.append("{" + match.group(1) + "}")
        start = end
    out.append(piece[start:])
    return _CONVERTER.sub(r"{\1}", "".join(out))


def _methods(callback) -> tuple[str, ...]:
    actions = getattr(callback, "actions", None)  # a DRF viewset: {"get": "list", …}
    view = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if actions is not None:
        methods = set(actions)
    elif view is not None:
        methods = {m for m in view.http_method_names if hasattr(view, m)}
    else:  # a plain function view: assume it answers anything
        methods = {"get", "post", "put", "patch", "delete"}
    methods -= {"head", "options"}
    if "get" in methods:
        methods.add("head")
    return tuple(sorted(methods))


def _params(template: str) -> tuple[tuple[str, str], ...]:
    parts = template.split("/")
    params = []
    for i, part in enumerate(parts):
        for name in re.findall(r"\{(\w+)\}", part):
            params.append((name, parts[i - 1] if part == "{" + name + "}" else part))
    return tuple(params)


def _walk(patterns, prefix="/"):
    for entry in patterns:
        template = prefix + _template(str(entry.pattern))
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, template)
        elif template.startswith(API_PREFIX):
            yield template, entry.callback


def api_routes() -> list[Route]:
    routes = []
    for template, callback in _walk(get_resolver().url_patterns):
        params = _params(template)
        if {name for name, _ in params} & SUFFIX_PARAMETERS:
            continue
        routes.append(Route(template, params, _methods(callback), callback))
    return routes
