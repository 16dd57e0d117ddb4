"""Pooled HTTP sessions: one per provider per process, created on first use.

A session per call would open a new TCP (and TLS) connection every time and, under load, run
the machine out of sockets. django-q2 forks its workers, so each worker builds its own pool."""

import requests
from requests.adapters import HTTPAdapter

__all__ = ("USER_AGENT", "session_for")

USER_AGENT = "Switchyard/0.1 (+https://switchyard.dev)"
POOL_MAXSIZE = 10

_sessions: dict[str, requests.Session] = {}


def session_for(provider_key: str) -> requests.Session:
    session = _sessions.get(provider_key)
    if session is None:
        session = requests.Session()
        # Retries belong to the delivery engine (recorded, backed off); never hidden in urllib3.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_MAXSIZE, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = USER_AGENT
        session.trust_env = False
        _sessions[provider_key] = session
    return session
