"""The limit store in Redis: each decision one Lua script (lua/), so one atomic step."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import redis

from integrations.limits.stores.base import Admission, State, as_datetime
from integrations.models import CircuitBreaker

__all__ = ("RedisStore",)

LUA = Path(__file__).with_name("lua")


def _lua(name: str) -> str:
    return (LUA / f"{name}.lua").read_text()


class RedisStore:
    """Sliding-window logs in sorted sets and breakers in hashes, changed by Lua scripts (one
    atomic step each). Breaker transitions are mirrored to the ``CircuitBreaker`` table."""

    prefix = "switchyard:limits:"

    def __init__(self, url: str):
        self.redis = redis.Redis.from_url(url)
        self._admit = self.redis.register_script(_lua("admit"))
        self._cool_down = self.redis.register_script(_lua("cool_down"))
        self._breaker_record = self.redis.register_script(_lua("breaker_record"))
        self._breaker_control = self.redis.register_script(_lua("breaker_control"))

    def _breaker_key(self, provider: str, region: str) -> str:
        return f"{self.prefix}breaker:{provider}:{region}"

    def _meta_key(self, scope: str) -> str:
        return f"{self.prefix}meta:{scope}"

    def admit(
        self, quotas, *, customer, now, breaker, probe_lease, count=1, horizon=0.0
    ) -> Admission:
        breaker_key = self._breaker_key(*breaker)
        keys = [breaker_key, f"{breaker_key}:failing"]
        member = f"{now!r}:{uuid.uuid4().hex[:12]}"
        args = [repr(now), customer, member, repr(probe_lease), count, repr(horizon)]
        for quota in quotas:
            keys += [f"{self.prefix}log:{quota.key}", self._meta_key(quota.key)]
            args += [quota.rate, repr(quota.window), repr(quota.step)]
        verdict, wait, granted = self._admit(keys=keys, args=args)
        verdict = verdict.decode()
        if verdict in ("rate", "breaker"):
            return Admission(float(wait), cause=verdict)
        if verdict == "probe":
            self._mirror(*breaker)
        return Admission(None, probe=verdict == "probe", clean=verdict == "clean", granted=granted)

    def recheck(self, quotas, *, breaker, now) -> Admission:
        breaker_key = self._breaker_key(*breaker)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(breaker_key, "state").exists(f"{breaker_key}:failing")
        for quota in quotas:
            pipe.hget(self._meta_key(quota.key), "cooldown")
        state, failing, *cooldowns = pipe.execute()
        if state not in (None, b"closed"):
            return Admission(0.0, cause="breaker")
        until = max((float(c) for c in cooldowns if c is not None), default=0.0)
        if until > now:
            return Admission(until - now, cause="rate")
        return Admission(None, clean=not failing)

    def cool_down(self, keys: list[str], *, until: float) -> None:
        meta = [self._meta_key(key) for key in keys]
        self._cool_down(keys=meta, args=[repr(until), repr(datetime.now(UTC).timestamp())])

    def breaker_record(
        self,
        provider: str,
        region: str,
        *,
        ok: bool,
        delivery_id: int,
        threshold: int,
        cool_off: float,
        now: float,
        error: str = "",
    ) -> str | None:
        key = self._breaker_key(provider, region)
        changed = self._breaker_record(
            keys=[key, f"{key}:failing"],
            args=["1" if ok else "0", delivery_id, threshold, repr(cool_off), repr(now), error],
        )
        if changed is None:
            return None
        self._mirror(provider, region)
        return changed.decode()

    def breaker_control(self, provider: str, region: str, *, action: str, now: float) -> str:
        key = self._breaker_key(provider, region)
        before = self._breaker_control(keys=[key, f"{key}:failing"], args=[action, repr(now)])
        self._mirror(provider, region)
        return before.decode()

    def _mirror(self, provider: str, region: str) -> None:
        key = self._breaker_key(provider, region)
        state = {k.decode(): v.decode() for k, v in self.redis.hgetall(key).items()}
        failing = sorted(int(m) for m in self.redis.smembers(f"{key}:failing"))

        def epoch(name):
            return as_datetime(float(state[name])) if name in state else None

        CircuitBreaker.objects.update_or_create(
            provider_key=provider,
            region=region,
            defaults={
                "state": state.get("state", State.CLOSED),
                "failing_deliveries": failing,
                "opened_at": epoch("opened_at"),
                "first_opened_at": epoch("first_opened_at"),
                "open_until": epoch("open_until"),
                "probe_until": epoch("probe_until"),
                "last_error": state.get("last_error", ""),
            },
        )
