"""Answers of the fake providers, and the helpers that build them."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus

__all__ = ("Reply", "fake_id", "json_reply", "seconds_text", "status_phrase", "text_reply")

JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict = field(default_factory=dict)


def json_reply(status: int, payload, headers: dict | None = None) -> Reply:
    return Reply(
        status, json.dumps(payload).encode(), {"Content-Type": JSON_TYPE, **(headers or {})}
    )


def text_reply(status: int, text: str, headers: dict | None = None) -> Reply:
    return Reply(status, text.encode(), {"Content-Type": TEXT_TYPE, **(headers or {})})


def status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def fake_id(length: int = 24) -> str:
    return uuid.uuid4().hex[:length]


def seconds_text(delay: float) -> str:
    return f"{delay:.3f}".rstrip("0").rstrip(".") or "0"
