"""Token-bucket rate limits keyed by client address, by token, and for logins."""

from __future__ import annotations

import time


class RateLimiter:
    """`rate` requests per second on average, `burst` at once, per key.

    Used from the event loop only, so no lock. Idle keys are forgotten when the table grows.

    Args:
        rate: tokens added per second.
        burst: bucket size.
        max_keys: table size that triggers pruning of full (idle) buckets.
    """

    def __init__(self, rate: float, burst: int, max_keys: int = 50_000) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def hit(self, key: str, now: float | None = None) -> float:
        """Take one token; return 0.0 when allowed, else seconds until one is available."""
        now = time.monotonic() if now is None else now
        tokens, at = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > self.max_keys:
                self._prune(now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        full_after = self.burst / self.rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}
