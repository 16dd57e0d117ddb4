"""What every limit store answers, and the decisions both stores share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from integrations.models import CircuitBreaker

__all__ = ("Admission", "LimitStore", "Quota", "State", "as_datetime", "breaker_wait", "rate_wait")

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
    # The provider's bucket headers pace this scope (send_settled); stores ignore it.
    paced: bool = False

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

    def breaker_control(self, provider: str, region: str, *, action: str, now: float) -> str:
        """An operator's action: ``close`` the breaker (failures forgotten), or ``probe`` (an
        open or half-open breaker's cool-off ends now, so the next send is its probe). Returns
        the state before."""


def as_datetime(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=UTC)


# -- database ----------------------------------------------------------------------------------


def rate_wait(windows: list, quotas: list[Quota], customer: str, now: float) -> float | None:
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


def breaker_wait(breaker: CircuitBreaker | None, now: float) -> float | None:
    """Seconds an open breaker (or a half-open one whose probe is in flight) still holds sends
    back; None when it lets one through."""
    if breaker is None or breaker.state == State.CLOSED:
        return None
    until = breaker.open_until if breaker.state == State.OPEN else breaker.probe_until
    return until.timestamp() - now if now < until.timestamp() else None
