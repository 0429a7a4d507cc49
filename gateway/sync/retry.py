"""Retry policy for provider calls: connectors raise, this decides whether to wait.

Throttled and Unavailable are retried with exponential backoff, honouring the
provider's Retry-After hint, within a bounded number of attempts; a hint longer
than the longest single delay is not waited for: the caller gets the error (and
the API answers 503 with that Retry-After) at once.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from providers.base import Throttled, Unavailable

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 3
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0

    def delay(self, attempt: int, hint: float | None) -> float | None:
        """Seconds to wait before retry `attempt` (0-based), or None to give up."""
        if attempt >= self.retries:
            return None
        if hint is not None:
            return hint if hint <= self.backoff_max_s else None
        base = min(self.backoff_s * (2 ** attempt), self.backoff_max_s)
        return base * (0.5 + random.random() / 2)

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        attempt = 0
        while True:
            try:
                return await fn()
            except (Throttled, Unavailable) as exc:
                wait = self.delay(attempt, exc.retry_after)
                if wait is None:
                    raise
                attempt += 1
                await asyncio.sleep(wait)


FAIL_FAST = RetryPolicy(retries=0)
