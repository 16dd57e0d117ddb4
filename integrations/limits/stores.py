"""Shared state of rate limits, cool-downs and circuit breakers: Redis when ``REDIS_URL`` is set,
the database otherwise. Both give the same answers (tests/integrations/limits run each case on
both); every decision is one atomic step (a Lua script, or a transaction holding row locks), so
any number of worker processes on any number of machines share one limit.

Times are epoch seconds passed in by the caller, so the boundary tests can use a made-up clock.
Hosts must keep their clocks in sync (NTP), as they already must for ``next_attempt_at``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Protocol

from django.conf import settings
from django.db import transaction

from config.db import update_fields_many
from integrations.models import CircuitBreaker, RateLimitWindow

__all__ = (
    "Admission",
    "DatabaseStore",
    "LimitStore",
    "Quota",
    "RedisStore",
    "limit_store",
)

State = CircuitBreaker.State


@dataclass(frozen=True)
class Quota:
    """At most ``rate`` sends in any ``window`` seconds for the scope ``key``.

    ``window`` already includes the safety margin (requests reach the provider a little after
    the limiter admits them, and not always in the same order)."""

    key: str
    rate: int
    window: float
    backlog_share: float = 1.0

    @property
    def step(self) -> float:
        """Spacing of deferred sends: ``backlog_share`` of the allowed rate, evenly spread. The
        rest of the capacity is left for fresh work, so another customer's delivery on a
        shared key finds room at once instead of racing a backlog that fills every slot."""
        return self.window / (self.rate * self.backlog_share)


@dataclass(frozen=True)
class Admission:
    """The answer to one send: ``wait`` is None when it may go (``granted`` rate-limit slots are
    taken, this send's and any more asked for; ``probe`` when it is the breaker's half-open
    trial), else the seconds to wait and ``cause``, "rate" or "breaker". ``clean``: the breaker
    was closed with no failures counted, so a success has nothing to reset."""

    wait: float | None
    cause: str = ""
    probe: bool = False
    clean: bool = False
    granted: int = 0


class LimitStore(Protocol):
    def admit(
        self,
        quotas: list[Quota],
        *,
        customer: str,
        now: float,
        breaker: tuple[str, str],
        probe_lease: float,
        count: int = 1,
        horizon: float = 0.0,
    ) -> Admission:
        """In one atomic step: a send may go when every quota has room and the ``breaker``
        (provider, region) lets it through; only then are its slots taken from every quota
        (all or none). A refused send is told when to try again: for the rate limit, its place
        among this customer's deferred work. The first caller after a breaker's cool-off
        becomes its probe, holding the half-open state for ``probe_lease`` seconds.

        ``count`` > 1 asks for that many slots at once, for sends made within ``horizon``
        seconds (a closed breaker only; as many as every quota has room for). Such slots are
        stamped at ``now + horizon``, the latest a send may use them, so each send is counted
        no later than it happens and at most ``horizon`` earlier: the quota's margin covers it."""

    def recheck(self, quotas: list[Quota], *, breaker: tuple[str, str], now: float) -> Admission:
        """Without writing or locking anything: may slots granted earlier still be used? Yes
        (``wait`` None, with ``clean`` as in ``admit``) unless a cool-down has begun on one of
        the scopes (``wait``: until it ends) or the breaker is no longer closed (``wait`` 0);
        either way the caller drops its grant and asks ``admit``, which decides."""

    def cool_down(self, keys: list[str], *, until: float) -> None:
        """Admit nothing on these scopes before ``until`` (the provider answered 429)."""

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
        """Count a call's result; returns the new state when this result changed it."""

    def reset(self) -> None:
        """Forget all limiter state (tests)."""


def _dt(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=UTC)


# -- database ----------------------------------------------------------------------------------


def _deferral(windows: list, quotas: list[Quota], customer: str, now: float) -> float | None:
    """The database store's rate-limit decision on rows already locked: None when every quota
    has room (the caller then takes the slots), else the wait, booking the customer's place."""
    free = now
    for window, quota in zip(windows, quotas, strict=True):
        window.hits = [t for t in window.hits if t > now - quota.window]
        free = max(free, window.cooldown_until)
        if len(window.hits) >= quota.rate:
            free = max(free, window.hits[len(window.hits) - quota.rate] + quota.window)
    if free <= now:
        return None
    slot = max([free, *(w.next_slots.get(customer, 0) for w in windows)])
    for window, quota in zip(windows, quotas, strict=True):
        # Slots in the past are dead weight; keeping only future ones bounds the row's size.
        window.next_slots = {c: s for c, s in window.next_slots.items() if s > now}
        window.next_slots[customer] = slot + quota.step
    return slot - now


def _breaker_wait(breaker: CircuitBreaker | None, now: float) -> float | None:
    """Seconds an open breaker (or a half-open one whose probe is in flight) still holds sends
    back; None when it lets one through."""
    if breaker is None or breaker.state == State.CLOSED:
        return None
    until = breaker.open_until if breaker.state == State.OPEN else breaker.probe_until
    return until.timestamp() - now if now < until.timestamp() else None


class DatabaseStore:
    """Rows locked with SELECT … FOR UPDATE (PostgreSQL); on SQLite every transaction already
    takes the write lock at BEGIN (IMMEDIATE mode), which serialises them the same way."""

    def _locked_windows(self, keys: list[str]) -> list[RateLimitWindow]:
        locked = RateLimitWindow.objects.select_for_update().filter(key__in=keys)
        rows = {window.key: window for window in locked.order_by("key")}
        return [rows[key] for key in keys] if len(rows) == len(set(keys)) else []

    def _windows(self, keys: list[str]) -> list[RateLimitWindow]:
        """Lock the rows of ``keys`` in key order (no deadlocks), creating missing ones."""
        windows = self._locked_windows(keys)
        if not windows:
            with transaction.atomic(savepoint=True):
                RateLimitWindow.objects.bulk_create(
                    [RateLimitWindow(key=key) for key in keys], ignore_conflicts=True
                )
            windows = self._locked_windows(keys)
        return windows

    def _breaker_row(self, breaker: tuple[str, str]) -> CircuitBreaker | None:
        provider, region = breaker
        return CircuitBreaker.objects.filter(provider_key=provider, region=region).first()

    def admit(
        self, quotas, *, customer, now, breaker, probe_lease, count=1, horizon=0.0
    ) -> Admission:
        # The breaker is read before the windows are locked: an open one answers without a
        # write transaction, and the lock (on SQLite, the database's) is held for less.
        breaker_row = self._breaker_row(breaker)
        held = _breaker_wait(breaker_row, now)
        if held is not None:
            return Admission(held, cause="breaker")
        with transaction.atomic():
            windows = self._windows([q.key for q in quotas]) if quotas else []
            wait = _deferral(windows, quotas, customer, now)
            if wait is not None:
                admission = Admission(wait, cause="rate")
            elif breaker_row is None or breaker_row.state == State.CLOSED:
                room = [q.rate - len(w.hits) for w, q in zip(windows, quotas, strict=True)]
                admission = Admission(
                    None,
                    clean=breaker_row is None or not breaker_row.failing_deliveries,
                    granted=min([count, *room]),
                )
            else:
                admission = self._probe(breaker_row, now=now, probe_lease=probe_lease)
            if admission.wait is None:
                stamp = now if admission.granted == 1 else now + horizon
                for window in windows:
                    window.hits += [stamp] * admission.granted
            update_fields_many(windows, ["hits", "next_slots"])
        return admission

    def recheck(self, quotas, *, breaker, now) -> Admission:
        breaker_row = self._breaker_row(breaker)
        if breaker_row is not None and breaker_row.state != State.CLOSED:
            return Admission(0.0, cause="breaker")
        cooldowns = RateLimitWindow.objects.filter(key__in=[q.key for q in quotas])
        until = max(cooldowns.values_list("cooldown_until", flat=True), default=0.0)
        if until > now:
            return Admission(until - now, cause="rate")
        return Admission(None, clean=breaker_row is None or not breaker_row.failing_deliveries)

    def cool_down(self, keys: list[str], *, until: float) -> None:
        with transaction.atomic():
            for window in self._windows(keys):
                if window.cooldown_until < until:
                    window.cooldown_until = until
                    window.save(update_fields=["cooldown_until"])

    def _probe(self, breaker: CircuitBreaker, *, now: float, probe_lease: float) -> Admission:
        """The breaker's cool-off (or its probe's lease) is over: a conditional update makes
        one of all callers arriving now the probe."""
        mine = CircuitBreaker.objects.filter(pk=breaker.pk, state=breaker.state)
        if breaker.state == State.OPEN:
            won = mine.filter(open_until=breaker.open_until)
        else:
            won = mine.filter(probe_until=breaker.probe_until)
        if won.update(state=State.HALF_OPEN, probe_until=_dt(now + probe_lease)):
            return Admission(None, probe=True, granted=1)
        return Admission(probe_lease, cause="breaker")

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
        scope = CircuitBreaker.objects.filter(provider_key=provider, region=region)
        if ok:
            # The common case, a success on a healthy provider, reads and writes nothing else.
            dirty = scope.exclude(state=State.CLOSED, failing_deliveries=[])
            before = dirty.values_list("state", flat=True).first()
            if before is None:
                return None
            dirty.update(
                state=State.CLOSED,
                failing_deliveries=[],
                opened_at=None,
                open_until=None,
                probe_until=None,
            )
            return State.CLOSED if before != State.CLOSED else None
        CircuitBreaker.objects.get_or_create(provider_key=provider, region=region)
        with transaction.atomic():
            breaker = scope.select_for_update().get()
            breaker.last_error = error
            changed = None
            if breaker.state == State.HALF_OPEN:
                changed = State.OPEN
            elif breaker.state == State.CLOSED:
                if delivery_id not in breaker.failing_deliveries:
                    breaker.failing_deliveries = [*breaker.failing_deliveries, delivery_id]
                if len(breaker.failing_deliveries) >= threshold:
                    changed = State.OPEN
            if changed:
                breaker.state = State.OPEN
                breaker.opened_at = _dt(now)
                breaker.open_until = _dt(now + cool_off)
                breaker.probe_until = None
            breaker.save()
        return changed

    def reset(self) -> None:
        RateLimitWindow.objects.all().delete()
        CircuitBreaker.objects.all().delete()


# -- Redis -------------------------------------------------------------------------------------

# KEYS: the breaker hash and its set of failing deliveries, then per quota its log (sorted set
# of send times) and its meta hash (cooldown, customer slots). ARGV: now, customer field,
# member prefix, probe lease, count, horizon, then rate, window and step per quota.
# Returns {verdict, wait, granted}: verdict 'rate' or 'breaker' (wait), else 'clean', 'go' or
# 'probe'.
ADMIT_SCRIPT = """
local now = tonumber(ARGV[1])
local customer = ARGV[2]
local member = ARGV[3]
local lease = tonumber(ARGV[4])
local granted = tonumber(ARGV[5])
local horizon = tonumber(ARGV[6])
local n = (#KEYS - 2) / 2
local free = now
for i = 1, n do
  local log, meta = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
  local rate, window = tonumber(ARGV[4 + 3 * i]), tonumber(ARGV[5 + 3 * i])
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - window)
  local cool = tonumber(redis.call('HGET', meta, 'cooldown') or '0')
  if cool > free then free = cool end
  local count = redis.call('ZCARD', log)
  if count >= rate then
    local entry = redis.call('ZRANGE', log, count - rate, count - rate, 'WITHSCORES')
    local t = tonumber(entry[2]) + window
    if t > free then free = t end
  elseif rate - count < granted then
    granted = rate - count
  end
end
if free > now then
  local slot = free
  for i = 1, n do
    local s = tonumber(redis.call('HGET', KEYS[2 + 2 * i], customer) or '0')
    if s > slot then slot = s end
  end
  for i = 1, n do
    local meta = KEYS[2 + 2 * i]
    local window, step = tonumber(ARGV[5 + 3 * i]), tonumber(ARGV[6 + 3 * i])
    redis.call('HSET', meta, customer, tostring(slot + step))
    local ttl = math.ceil((slot + step - now + window) * 1000)
    if redis.call('PTTL', meta) < ttl then redis.call('PEXPIRE', meta, ttl) end
  end
  return {'rate', tostring(slot - now), 0}
end
local verdict = 'clean'
local st = redis.call('HMGET', KEYS[1], 'state', 'open_until', 'probe_until')
local state = st[1] or 'closed'
if state == 'closed' then
  if redis.call('EXISTS', KEYS[2]) == 1 then verdict = 'go' end
else
  local until_at = tonumber(state == 'open' and st[2] or st[3])
  if now < until_at then return {'breaker', tostring(until_at - now), 0} end
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_until', tostring(now + lease))
  verdict = 'probe'
  granted = 1
end
local stamp = now
if granted > 1 then stamp = now + horizon end
for i = 1, n do
  local window = tonumber(ARGV[5 + 3 * i])
  for g = 1, granted do
    redis.call('ZADD', KEYS[1 + 2 * i], stamp, member .. ':' .. g)
  end
  redis.call('PEXPIRE', KEYS[1 + 2 * i], math.ceil((window + stamp - now) * 1000) + 1000)
end
return {verdict, '0', granted}
"""

COOL_DOWN_SCRIPT = """
local until_at = tonumber(ARGV[1])
local ttl = math.ceil((until_at - tonumber(ARGV[2])) * 1000) + 1000
for i = 1, #KEYS do
  if tonumber(redis.call('HGET', KEYS[i], 'cooldown') or '0') < until_at then
    redis.call('HSET', KEYS[i], 'cooldown', tostring(until_at))
  end
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
"""

# KEYS: the breaker hash, the set of failing deliveries. ARGV: ok, delivery, threshold,
# cool-off, now, error. Returns the new state when it changed, else false.
BREAKER_RECORD_SCRIPT = """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local now = tonumber(ARGV[5])
if ARGV[1] == '1' then
  if state == 'closed' and redis.call('EXISTS', KEYS[2]) == 0 then return false end
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'state', 'closed')
  redis.call('HDEL', KEYS[1], 'opened_at', 'open_until', 'probe_until')
  if state == 'closed' then return false end
  return 'closed'
end
redis.call('HSET', KEYS[1], 'last_error', ARGV[6])
if state == 'open' then return false end
if state == 'closed' then
  redis.call('SADD', KEYS[2], ARGV[2])
  if redis.call('SCARD', KEYS[2]) < tonumber(ARGV[3]) then return false end
end
redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', tostring(now),
           'open_until', tostring(now + tonumber(ARGV[4])))
redis.call('HDEL', KEYS[1], 'probe_until')
return 'open'
"""


class RedisStore:
    """Sliding-window logs in sorted sets and breakers in hashes, changed by Lua scripts (one
    atomic step each). Breaker transitions are mirrored to the ``CircuitBreaker`` table."""

    prefix = "switchyard:limits:"

    def __init__(self, url: str):
        import redis

        self.redis = redis.Redis.from_url(url)
        self._admit = self.redis.register_script(ADMIT_SCRIPT)
        self._cool_down = self.redis.register_script(COOL_DOWN_SCRIPT)
        self._breaker_record = self.redis.register_script(BREAKER_RECORD_SCRIPT)

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

    def _mirror(self, provider: str, region: str) -> None:
        key = self._breaker_key(provider, region)
        state = {k.decode(): v.decode() for k, v in self.redis.hgetall(key).items()}
        failing = sorted(int(m) for m in self.redis.smembers(f"{key}:failing"))

        def epoch(name):
            return _dt(float(state[name])) if name in state else None

        CircuitBreaker.objects.update_or_create(
            provider_key=provider,
            region=region,
            defaults={
                "state": state.get("state", State.CLOSED),
                "failing_deliveries": failing,
                "opened_at": epoch("opened_at"),
                "open_until": epoch("open_until"),
                "probe_until": epoch("probe_until"),
                "last_error": state.get("last_error", ""),
            },
        )

    def reset(self) -> None:
        for key in self.redis.scan_iter(f"{self.prefix}*", count=1000):
            self.redis.delete(key)


@cache
def limit_store() -> LimitStore:
    """The process's store: Redis when configured, else the database."""
    if settings.REDIS_URL:
        return RedisStore(settings.REDIS_URL)
    return DatabaseStore()
