"""Pull an account's provider changes into the mirror, under the account's refresh lock.

One round follows the provider cursor until the provider says the round is
complete, then stores the new cursor. It takes no lock that writes wait for:
revision guards keep a pulled page from overwriting a newer write (see _round).
A round that starts without a cursor (the first pull, or after CursorExpired)
is a full listing: afterwards every mirror contact the listing did not name,
and that nothing changed since the round began, gets a tombstone. Client tokens never notice the provider's expiry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from gateway.config import SyncSettings
from gateway.identity import Identity
from gateway.store.redis_store import PreparedChange, RedisStore
from gateway.sync.connectors import ConnectorPool
from gateway.sync.locks import account_mutex
from gateway.sync.mirror import Mirror, now_iso, prepare, tombstone
from gateway.sync.retry import RetryPolicy
from providers.base import AuthFailed, ChangePage, Connector, CursorExpired, NotFound, RemoteContact

log = logging.getLogger(__name__)

#: Contacts prepared between two turns of the event loop (see Refresher._apply_page).
PREPARE_STEP = 50


@dataclass(slots=True)
class RefreshResult:
    ran: bool
    changed: int = 0
    full: bool = False


class _InOrderApplier:
    """A round's batches applied strictly in order, one in flight: a batch is sent once the one before it
    returned, so a contact listed twice keeps its later version, while preparing the next batch (of the
    same page or the next) overlaps Redis running the previous one. Keeps what the round needs of the
    results: how many contacts changed, and which ones a guard skipped (-1)."""

    def __init__(self, mirror: Mirror, account_id: str) -> None:
        self._mirror = mirror
        self._account_id = account_id
        self._pending: tuple[list[RemoteContact], asyncio.Future[list[int]]] | None = None
        self.changed = 0
        self.guarded: dict[str, None] = {}

    async def send(self, remotes: list[RemoteContact], prepared: list[PreparedChange]) -> None:
        await self.drain()
        self._pending = remotes, asyncio.ensure_future(self._mirror.apply(self._account_id, prepared))

    async def drain(self) -> None:
        """Wait for the batch in flight, if any, and count its results."""
        if self._pending is None:
            return
        remotes, future = self._pending
        revs = await future
        self._pending = None
        self.changed += sum(1 for r in revs if r > 0)
        self.guarded.update((c.native_id, None) for c, r in zip(remotes, revs, strict=True) if r < 0)

    async def abandon(self) -> None:
        """Stop waiting for the batch in flight (the round failed): it is applied whole or not at all."""
        if self._pending is not None:
            future = self._pending[1]
            self._pending = None
            future.cancel()
            await asyncio.gather(future, return_exceptions=True)


class Refresher:
    def __init__(self, store: RedisStore, mirror: Mirror, connectors: ConnectorPool, identity: Identity,
                 settings: SyncSettings, policy: RetryPolicy) -> None:
        self.store = store
        self.mirror = mirror
        self.connectors = connectors
        self.identity = identity
        self.settings = settings
        self.policy = policy
        self._running: dict[str, asyncio.Task[RefreshResult]] = {}

    async def refresh(self, account_id: str) -> RefreshResult:
        """One round now, unless another process is already pulling this account."""
        keys = self.store.account(account_id)
        holder = await self.store.try_lock(keys.refresh_lock, self.settings.lock_ttl_s)
        if holder is None:
            return RefreshResult(ran=False)
        try:
            result = await self._round(account_id, holder)
        except AuthFailed:
            await self.identity.set_status(account_id, "reauth_required")
            await self.store.set_state(account_id, last_error="auth_failed", last_attempt=time.time())
            raise
        finally:
            await self.store.unlock(keys.refresh_lock, holder)
        cutoff = int((time.time() - self.settings.tombstone_retention_s) * 1000)
        await self.store.compact(account_id, cutoff)
        return result

    async def _fetch(self, connector: Connector, account_id: str, cursor: str | None) -> tuple[ChangePage, int]:
        """One provider page, and the head revision read before asking for it (the page's guard)."""
        head = await self.store.head(account_id)
        page = await self.policy.call(lambda: connector.list_changes(cursor))
        return page, head

    async def _round(self, account_id: str, holder: str) -> RefreshResult:
        """Follow the provider cursor to the end of a round, fetching page N+1 while page N is applied.

        Each page is applied with a guard: a contact the mirror changed after the page was requested
        (a write through the gateway) is not overwritten by the older pulled copy. Such contacts are
        fetched again one by one at the end, under the write mutex, so the provider's truth wins.
        Every apply has returned before the round reads a start revision, refetches, tombstones what a
        full listing lacks, or stores the new cursor.
        """
        keys = self.store.account(account_id)
        connector = await self.connectors.get(account_id)
        cursor = (await self.store.state(account_id)).get("cursor") or None
        full, expiries = cursor is None, 0
        seen: set[str] = set()
        start_rev = await self.store.head(account_id)
        applier = _InOrderApplier(self.mirror, account_id)
        fetch: asyncio.Future[tuple[ChangePage, int]] | None = asyncio.ensure_future(
            self._fetch(connector, account_id, cursor))
        try:
            while fetch is not None:
                try:
                    page, head = await fetch
                except CursorExpired:
                    expiries += 1
                    if expiries > 2:
                        raise
                    log.info("account %s: provider cursor expired, relisting", account_id)
                    await applier.drain()  # the relist's start revision follows every apply sent before it
                    full, seen, start_rev = True, set(), await self.store.head(account_id)
                    fetch = asyncio.ensure_future(self._fetch(connector, account_id, None))
                    continue
                fetch = asyncio.ensure_future(self._fetch(connector, account_id, page.cursor)) if page.more else None
                prepared = await self._apply_page(applier, page, head)
                if full:
                    seen.update(p.id for p in prepared if p.kind == "u")
                if fetch is not None:
                    await self.store.extend_lock(keys.refresh_lock, holder, self.settings.lock_ttl_s)
            await applier.drain()
        finally:
            if fetch is not None:
                fetch.cancel()
                await asyncio.gather(fetch, return_exceptions=True)
            await applier.abandon()  # failed or cancelled mid-round: the applied batches stay (each is atomic)
        changed = applier.changed
        if applier.guarded:
            changed += await self._refetch(account_id, connector, list(applier.guarded))
        if full:
            changed += await self._drop_unlisted(account_id, seen, start_rev)
        await self.store.set_state(account_id, cursor=page.cursor or "", last_refresh=time.time(), ready=1,
                                   last_error="")
        if await self.identity.account(account_id) is not None:
            await self.identity.set_status(account_id, "active")
        return RefreshResult(ran=True, changed=changed, full=full)

    async def _apply_page(self, applier: _InOrderApplier, page: ChangePage, head: int) -> list[PreparedChange]:
        """Map, hash and hand over one page in small steps, in batches of mirror.batch.

        Connectors map lazily (RemoteContact.content), so this is where a page's CPU work happens. Between
        steps the loop runs other tasks: the request for the next page goes out and the provider answers
        it, Redis runs the previous batch's apply (of this page or the one before), and API requests in the
        same process are not held up behind a 1,000-contact page.
        """
        stamp = now_iso()
        prepared: list[PreparedChange] = []
        sent = 0
        step = min(PREPARE_STEP, self.mirror.batch)
        for start in range(0, len(page.changes), step):
            await asyncio.sleep(0)
            prepared += [prepare(c, head, stamp) for c in page.changes[start:start + step]]
            if len(prepared) - sent >= self.mirror.batch or len(prepared) == len(page.changes):
                await applier.send(page.changes[sent:len(prepared)], prepared[sent:])
                sent = len(prepared)
        return prepared

    async def _refetch(self, account_id: str, connector: Connector, native_ids: list[str]) -> int:
        """The provider's current version of contacts a guard skipped, applied under the write mutex."""
        keys = self.store.account(account_id)
        changed = 0
        for native_id in native_ids:
            async with account_mutex(self.store, keys.write_lock, self.settings.lock_ttl_s,
                                     self.settings.lock_ttl_s):
                try:
                    remote = await self.policy.call(lambda n=native_id: connector.get(n))  # type: ignore[misc]
                except NotFound:
                    remote = RemoteContact(native_id, deleted=True)
                changed += sum(1 for r in await self.mirror.apply_remote(account_id, [remote]) if r > 0)
        return changed

    async def _drop_unlisted(self, account_id: str, seen: set[str], start_rev: int) -> int:
        """Tombstone what a full listing no longer shows, unless it changed after the listing began."""
        keys = self.store.account(account_id)
        async with account_mutex(self.store, keys.write_lock, self.settings.lock_ttl_s, self.settings.lock_ttl_s):
            gone = [cid for cid in await self.store.live_ids_upto(account_id, start_rev) if cid not in seen]
            records = [await self.store.record(account_id, cid) for cid in gone]
            doomed = [tombstone(r, max_rev=start_rev) for r in records if r is not None]
            revs = await self.mirror.apply(account_id, doomed)
        return sum(1 for r in revs if r > 0)

    async def ensure_fresh(self, account_id: str, wait_s: float, force: bool = False) -> None:
        """Refresh when the last one is older than the interval; wait at most `wait_s` for it.

        The refresh goes on in the background past the wait; its errors are logged,
        except AuthFailed, which the caller gets when it finishes within the wait.
        """
        state = await self.store.state(account_id)
        last = float(state.get("last_refresh") or 0)
        if not force and time.time() - last < self.settings.refresh_interval_s:
            return
        task = self._running.get(account_id)
        if task is None:
            task = asyncio.create_task(self.refresh(account_id))
            self._running[account_id] = task
            task.add_done_callback(lambda t, a=account_id: self._finished(a, t))  # type: ignore[misc]
        done, _ = await asyncio.wait({task}, timeout=wait_s)
        if task in done and isinstance(task.exception(), AuthFailed):
            raise task.exception()  # type: ignore[misc]

    def _finished(self, account_id: str, task: asyncio.Task[RefreshResult]) -> None:
        self._running.pop(account_id, None)
        if not task.cancelled() and (exc := task.exception()) is not None and not isinstance(exc, AuthFailed):
            log.warning("account %s: refresh failed: %r", account_id, exc)

    async def wait_idle(self) -> None:
        """Wait for this process's background refreshes (tests, shutdown)."""
        await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
