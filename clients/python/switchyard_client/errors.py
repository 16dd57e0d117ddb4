"""Errors the API answered, as the problem documents (RFC 9457) it sends."""

import httpx

__all__ = ("ApiError",)


class ApiError(Exception):
    """A 4xx or 5xx answer. ``problem`` is its problem document (``type``, ``title``, ``status``,
    ``detail`` and, for invalid input, ``errors`` naming each field)."""

    def __init__(self, status: int, problem: dict):
        self.status = status
        self.problem = problem
        self.errors: dict = problem.get("errors") or {}
        super().__init__(f"{status}: {problem.get('detail') or problem.get('title') or 'error'}")

    @classmethod
    def from_response(cls, response: httpx.Response) -> "ApiError":
        try:
            problem = response.json()
        except ValueError:
            problem = {}
        if not isinstance(problem, dict):
            problem = {}
        return cls(response.status_code, problem or {"detail": response.text[:300]})
