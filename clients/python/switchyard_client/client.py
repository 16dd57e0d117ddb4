"""A synchronous client for Switchyard's API.

Calls that are safe to repeat (reads, validation, and a delivery created with an idempotency
key, which this client always sends) are retried on 429, 5xx and connection errors with full
jitter exponential backoff, honouring ``Retry-After``. Calls that change state without such a
key (a retry or cancel of one delivery, a bulk dead-letter retry) are sent once: repeating them
blindly could act twice."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx

from switchyard_client.errors import ApiError

__all__ = ("Client", "RetryPolicy")

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` in all (the first included); delays with full jitter between 0 and
    ``base_seconds`` * 2^n, at most ``cap_seconds``; a ``Retry-After`` up to the cap wins."""

    attempts: int = 4
    base_seconds: float = 0.5
    cap_seconds: float = 8.0

    def delay(self, retry_number: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.cap_seconds)
        ceiling = min(self.cap_seconds, self.base_seconds * 2**retry_number)
        return random.uniform(0, ceiling)  # noqa: S311  (jitter, not a secret)


def _retry_after(response: httpx.Response | None) -> float | None:
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to the computed backoff


class Client:
    """``Client("https://switchyard.internal", api_key)``; use as a context manager or call
    ``close()``. ``transport`` and ``sleep`` are for tests."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v1/",
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )
        self.retry = retry or RetryPolicy()
        self._sleep = sleep

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- transport ------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: object = None,
        params: dict | None = None,
        headers: dict | None = None,
        repeatable: bool,
    ) -> dict:
        """One API call; the decoded JSON answer, or ``ApiError``. ``repeatable``: safe to send
        again after a failure whose outcome is unknown."""
        attempts = self.retry.attempts if repeatable else 1
        for number in range(attempts):
            last = number == attempts - 1
            try:
                response = self._http.request(
                    method, path, json=json, params=params, headers=headers
                )
            except httpx.TransportError:
                if last:
                    raise
                self._sleep(self.retry.delay(number, None))
                continue
            if response.status_code in RETRYABLE_STATUSES and not last:
                self._sleep(self.retry.delay(number, _retry_after(response)))
                continue
            if response.status_code >= 400:
                raise ApiError.from_response(response)
            return response.json() if response.content else {}
        raise AssertionError("unreachable: the last attempt returns or raises")

    def paginate(self, path: str, params: dict | None = None) -> Iterator[dict]:
        """Every item of a list, following ``next`` links (page-number and cursor lists alike)."""
        page = self.request("GET", path, params=params, repeatable=True)
        while True:
            yield from page.get("results", [])
            if not page.get("next"):
                return
            page = self.request("GET", page["next"], repeatable=True)

    # -- deliveries -----------------------------------------------------------------------------

    def create_delivery(
        self, *, customer: str, action: str, input: dict, idempotency_key: str | None = None
    ) -> dict:
        """Queue a call; the delivery (``id``, ``status``, …). One idempotency key per logical
        call (generated unless given), so a retry after a lost answer returns the same
        delivery instead of creating a second one."""
        key = idempotency_key or str(uuid.uuid4())
        return self.request(
            "POST",
            "deliveries/",
            json={"customer": customer, "action": action, "input": input},
            headers={"Idempotency-Key": key},
            repeatable=True,
        )

    def validate_action(self, *, customer: str, action: str, input: dict) -> dict:
        """Check an action's input and routing without queueing anything."""
        body = {"customer": customer, "action": action, "input": input}
        return self.request("POST", "actions/validate/", json=body, repeatable=True)

    def get_delivery(self, delivery_id: int) -> dict:
        """A delivery with its attempts (requests and responses, secrets masked)."""
        return self.request("GET", f"deliveries/{delivery_id}/", repeatable=True)

    def list_deliveries(self, **filters) -> Iterator[dict]:
        return self.paginate("deliveries/", params=filters or None)

    def retry_delivery(self, delivery_id: int) -> dict:
        return self.request("POST", f"deliveries/{delivery_id}/retry/", repeatable=False)

    def cancel_delivery(self, delivery_id: int) -> dict:
        return self.request("POST", f"deliveries/{delivery_id}/cancel/", repeatable=False)

    # -- dead letters ---------------------------------------------------------------------------

    def list_dead_letters(self, **filters) -> Iterator[dict]:
        return self.paginate("dead-letters/", params=filters or None)

    def retry_dead_letters(
        self,
        *,
        ids: list[int] | None = None,
        filter: dict | None = None,
        all: bool = False,
        dry_run: bool = False,
    ) -> dict:
        """Retry dead letters by ``ids``, by ``filter``, or ``all=True``; ``dry_run`` only
        counts them."""
        body: dict = {}
        if ids is not None:
            body["ids"] = ids
        if filter is not None:
            body["filter"] = filter
        if all:
            body["all"] = True
        params = {"dry_run": "true"} if dry_run else None
        return self.request(
            "POST", "dead-letters/retry/", json=body, params=params, repeatable=dry_run
        )
