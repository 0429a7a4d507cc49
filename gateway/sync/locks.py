"""The per-account write mutex, shared by every gateway process through Redis.

A provider write and its mirror apply, and a refresh's page fetch and its
apply, run under it. That orders them: a page fetched before a write is applied
before the write's result, never after it, so a pulled page cannot roll back a
write the mirror already holds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gateway.errors import ApiError
from gateway.store.redis_store import RedisStore


@asynccontextmanager
async def account_mutex(store: RedisStore, key: str, lease_s: float, wait_s: float) -> AsyncIterator[None]:
    deadline = time.monotonic() + wait_s
    delay = 0.002
    while (holder := await store.try_lock(key, lease_s)) is None:
        if time.monotonic() >= deadline:
            raise ApiError(503, "account.busy", "The account is busy with another change; retry shortly.",
                           headers={"Retry-After": "1"})
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)
    try:
        yield
    finally:
        await store.unlock(key, holder)
