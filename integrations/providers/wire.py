"""Helpers adapters share to read what crosses the wire: Retry-After, JSON bodies, Unix
timestamps, header names, and constant-time signature checks over every secret version."""

from __future__ import annotations

import base64
import hmac
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime

from django.views.decorators.debug import sensitive_variables

from config.json_limits import MAX_JSON_DEPTH, json_violation
from integrations.providers.types import PayloadInvalid, ProviderResponse, SignatureInvalid

__all__ = (
    "b64_hmac",
    "check_secrets",
    "headers_lower",
    "json_object",
    "parse_json_body",
    "retry_after_seconds",
    "unix_seconds",
)


def retry_after_seconds(response: ProviderResponse) -> float | None:
    """``Retry-After`` as seconds: delta-seconds (Shopify sends floats such as 0.05) or a date."""
    value = (response.header("Retry-After") or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def json_object(response: ProviderResponse, *, key: str | None = None) -> dict:
    """The body as a JSON object (optionally one member of it); ``PayloadInvalid`` otherwise."""
    body = response.json_or_none()
    if key is not None and isinstance(body, dict):
        body = body.get(key)
    if not isinstance(body, dict):
        where = f"'{key}' " if key else ""
        raise PayloadInvalid(
            f"Expected a JSON object {where}in the response, got: {response.excerpt()}"
        )
    return body


def unix_seconds(value: str | None) -> int | None:
    """A signed header's Unix time in seconds, or None. ASCII digits only: ``str.isdigit`` and
    ``int`` also take '²' or Arabic-Indic digits. At most 12 of them, so arithmetic with it
    cannot overflow a float."""
    if value is None or not _UNIX_SECONDS.fullmatch(value):
        return None
    return int(value)


_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


def headers_lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _not_json(constant: str):
    raise PayloadInvalid(f"Body holds {constant}, which is not JSON.")


def parse_json_body(body: bytes) -> dict:
    """The body as a JSON object, or PayloadInvalid: not JSON (``NaN`` and ``Infinity``
    included), not an object, or beyond ``config.json_limits`` (too deep, a NUL character)."""
    try:
        payload = json.loads(body, parse_constant=_not_json)
    except RecursionError:
        raise PayloadInvalid(f"Body is nested deeper than {MAX_JSON_DEPTH} levels.") from None
    except PayloadInvalid:
        raise
    except (ValueError, UnicodeDecodeError):
        raise PayloadInvalid("Body is not JSON.") from None
    if not isinstance(payload, dict):
        raise PayloadInvalid("Body is not a JSON object.")
    if violation := json_violation(payload):
        raise PayloadInvalid(f"Body cannot be stored: {violation}.")
    return payload


@sensitive_variables()
def b64_hmac(secret: str, message: bytes, digestmod) -> str:
    return base64.b64encode(hmac.new(secret.encode(), message, digestmod).digest()).decode()


@sensitive_variables()
def check_secrets(secrets: list[tuple[int, str]], matches: Callable[[str], bool]) -> int:
    """The version of the first secret for which ``matches(secret)`` holds (each compared in
    constant time by the caller); every version is tried so timing does not reveal which."""
    matched = None
    for version, secret in secrets:
        if secret and matches(secret) and matched is None:
            matched = version
    if matched is None:
        raise SignatureInvalid("No signature matches any current or grace-period secret.")
    return matched
