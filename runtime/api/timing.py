"""Server-side request durations per route, as a Prometheus histogram."""

from __future__ import annotations

import bisect
from collections import defaultdict

BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class RequestTimes:
    """Counts of requests by (method, route template, status class) and duration bucket."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str], list[int]] = defaultdict(
            lambda: [0] * (len(BUCKETS_S) + 1))
        self.sums: dict[tuple[str, str, str], float] = defaultdict(float)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, f"{status // 100}xx")
        self.counts[key][bisect.bisect_left(BUCKETS_S, seconds)] += 1
        self.sums[key] += seconds

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        """(suffix, labels, value) of the histogram's _bucket, _sum and _count samples."""
        out: list[tuple[str, dict[str, str], float]] = []
        for (method, route, status), counts in sorted(self.counts.items()):
            labels = {"method": method, "route": route, "status": status}
            running = 0
            for bound, n in zip((*BUCKETS_S, float("inf")), counts, strict=True):
                running += n
                le = "+Inf" if bound == float("inf") else repr(bound)
                out.append(("_bucket", {**labels, "le": le}, running))
            out.append(("_sum", labels, self.sums[(method, route, status)]))
            out.append(("_count", labels, running))
        return out
