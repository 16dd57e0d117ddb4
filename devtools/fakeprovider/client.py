"""Drives a fake provider server from a test or a bench."""

from __future__ import annotations

import requests

__all__ = ("FakeProviderClient",)


class FakeProviderClient:
    """Drives a fake provider server through its control endpoints (in this or another process)."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self._session = requests.Session()

    def _call(self, method: str, path: str, payload: dict | None = None, **params) -> dict:
        response = self._session.request(
            method, f"{self.url}{path}", json=payload, params=params or None, timeout=5
        )
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        self._call("POST", "/_reset")

    def fault(self, **settings) -> dict:
        """``path_prefix`` plus any of status, count, retry_after, latency_ms, drop_connection,
        failure_rate (DESIGN.md §7a)."""
        return self._call("POST", "/_faults", settings)["fault"]

    def limit(self, **settings) -> dict:
        """``path_prefix``, ``rate``, ``per_seconds``; over it the provider's own 429 answers."""
        return self._call("POST", "/_limits", settings)["limit"]

    def journal(self, path_prefix: str = "") -> list[dict]:
        params = {"path_prefix": path_prefix} if path_prefix else {}
        return self._call("GET", "/_journal", **params)["requests"]

    def close(self) -> None:
        self._session.close()
