"""The reflector's abuse limits as pure bookkeeping (no sockets, time passed in): what an address or a token
may still do, and why not.

- Open connections: at most `per_address` from one address and `total` overall, counted from accept to
  close (a slow client holds its slot only until the whole-request deadline).
- Held /v1/hold connections: at most `holds_per_address` per address and `holds_total` overall.
- One budget per address and one per token, token buckets that refill continuously: every /v1/probe
  request and every /v1/hold opening takes one unit from both, so holds cannot be used to sidestep the
  probe rate and the other way round. Over budget: 429 with the seconds until the next unit.

The server holds one Limits object and calls it from its event loop only, so no locks are needed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class RateLimiter:
    """Token bucket per key; `per_minute` units refill per minute up to a burst of the same size."""

    per_minute: float
    max_clients: int = 4096
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> (units, last)

    def allow(self, client: str, now: float | None = None) -> float:
        """0 when allowed (a unit is taken), else the seconds until the next unit."""
        wait = self.peek(client, now)
        if wait == 0.0 and self.per_minute > 0:
            self.take(client, now)
        return wait

    def peek(self, client: str, now: float | None = None) -> float:
        """Like allow() but takes nothing: 0 when a unit is there."""
        if self.per_minute <= 0:
            return 0.0
        tokens = self._level(client, time.monotonic() if now is None else now)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / (self.per_minute / 60.0)

    def take(self, client: str, now: float | None = None) -> None:
        if self.per_minute <= 0:
            return
        now = time.monotonic() if now is None else now
        tokens = self._level(client, now)
        if len(self._buckets) >= self.max_clients and client not in self._buckets:
            self._prune(now)
        self._buckets[client] = (tokens - 1.0, now)

    def _level(self, client: str, now: float) -> float:
        burst = max(1.0, self.per_minute)
        tokens, last = self._buckets.get(client, (burst, now))
        return min(burst, tokens + (now - last) * self.per_minute / 60.0)

    def _prune(self, now: float) -> None:
        # Keys whose bucket has refilled completely carry no information: forget them.
        burst = max(1.0, self.per_minute)
        for key in [k for k in self._buckets if self._level(k, now) >= burst]:
            del self._buckets[key]
        while len(self._buckets) >= self.max_clients:  # still too many: drop the oldest
            del self._buckets[min(self._buckets, key=lambda k: self._buckets[k][1])]


@dataclass(frozen=True)
class Refusal:
    status: int  # 429 (this address / token is over its share) or 503 (the reflector as a whole is full)
    reason: str  # the metrics label: connections-per-address, connections-total, holds-per-address, ...
    message: str
    retry_after: float = 1.0


@dataclass
class Limits:
    """Counts and budgets of one reflector instance (behind a load balancer every instance has its own)."""

    per_address: int = 64
    total: int = 3000
    holds_per_address: int = 40
    holds_total: int = 512
    rate: float = 60.0  # budget units per minute per address (the burst too)
    token_rate: float = 120.0  # budget units per minute per token
    open_by_address: dict[str, int] = field(default_factory=dict)
    holds_by_address: dict[str, int] = field(default_factory=dict)
    open_total: int = 0
    holds_open: int = 0
    by_address: RateLimiter = field(init=False)
    by_token: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.by_address = RateLimiter(self.rate)
        self.by_token = RateLimiter(self.token_rate)

    # ---- open connections

    def connect(self, address: str) -> Refusal | None:
        """Count a new connection from `address`; a Refusal (nothing counted) when it may not open."""
        if self.open_total >= self.total:
            return Refusal(503, "connections-total", "the reflector is busy", 2.0)
        if self.open_by_address.get(address, 0) >= self.per_address:
            return Refusal(429, "connections-per-address",
                           f"more than {self.per_address} open connections from your address")
        self.open_by_address[address] = self.open_by_address.get(address, 0) + 1
        self.open_total += 1
        return None

    def disconnect(self, address: str) -> None:
        self.open_total -= 1
        _decrement(self.open_by_address, address)

    # ---- the shared budget (probes and holds)

    def spend(self, address: str, token: str | None, now: float | None = None) -> Refusal | None:
        """Take one unit from the address's and the token's budget; a Refusal (nothing taken) when either is empty."""
        wait = self.by_address.peek(address, now)
        if wait:
            return Refusal(429, "budget-address", "too many requests from your address", wait)
        if token is not None:
            wait = self.by_token.peek(token, now)
            if wait:
                return Refusal(429, "budget-token", "too many requests with this token", wait)
            self.by_token.take(token, now)
        self.by_address.take(address, now)
        return None

    # ---- held connections

    def hold(self, address: str) -> Refusal | None:
        if self.holds_open >= self.holds_total:
            return Refusal(503, "holds-total", "the reflector holds as many connections as it can", 60.0)
        if self.holds_by_address.get(address, 0) >= self.holds_per_address:
            return Refusal(429, "holds-per-address",
                           f"more than {self.holds_per_address} held connections from your address", 60.0)
        self.holds_by_address[address] = self.holds_by_address.get(address, 0) + 1
        self.holds_open += 1
        return None

    def unhold(self, address: str) -> None:
        self.holds_open -= 1
        _decrement(self.holds_by_address, address)


def _decrement(counts: dict[str, int], key: str) -> None:
    n = counts.get(key, 1) - 1
    if n <= 0:
        counts.pop(key, None)
    else:
        counts[key] = n
