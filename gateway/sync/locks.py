"""Locks shared by every gateway process through Redis.

`account_mutex`: the per-account write mutex. A provider write and its mirror apply run under it,
and so do a refresh's re-fetch of guarded contacts and its tombstoning of unlisted ones, so neither
can interleave with a write. (A refresh's pages are applied without it: revision guards keep a
pulled page from rolling back a write the mirror already holds; see gateway/sync/refresh.py.)

`Lease`: a lock held while a long piece of work runs (a worker's turn delivering an account's
webhooks), renewed in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gateway.errors import ApiError
from gateway.store.redis_store import RedisStore

log = logging.getLogger(__name__)


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


class Lease:
    """A Redis lock held for as long as a piece of work runs, renewed in the background every third of its
    lease; `lost` turns true once the lock could not be renewed (another process may hold it now)."""

    def __init__(self, store: RedisStore, key: str, holder: str, lease_s: float) -> None:
        self.store, self.key, self.holder, self.lease_s = store, key, holder, lease_s
        self.lost = False
        self._task = asyncio.create_task(self._renew())

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            if not await self.store.extend_lock(self.key, self.holder, self.lease_s):
                self.lost = True
                log.warning("lock %s lost; stopping the work it guarded", self.key)
                return

    async def release(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.store.unlock(self.key, self.holder)
