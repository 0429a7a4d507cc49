"""A clock a test moves forward: emulator token and cursor ages, webhook backoff and retry periods."""

from __future__ import annotations

import time


class FakeClock:
    """Real time plus an offset, so a test can move time forward without sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds
