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
        """
        keys = self.store.account(account_id)
        connector = await self.connectors.get(account_id)
        cursor = (await self.store.state(account_id)).get("cursor") or None
        full, expiries, changed = cursor is None, 0, 0
        seen: set[str] = set()
        guarded: dict[str, None] = {}
        start_rev = await self.store.head(account_id)
        fetch = asyncio.ensure_future(self._fetch(connector, account_id, cursor))
        while True:
            try:
                page, head = await fetch
            except CursorExpired:
                expiries += 1
                if expiries > 2:
                    raise
                log.info("account %s: provider cursor expired, relisting", account_id)
                full, seen, start_rev = True, set(), await self.store.head(account_id)
                fetch = asyncio.ensure_future(self._fetch(connector, account_id, None))
                continue
            fetch = asyncio.ensure_future(self._fetch(connector, account_id, page.cursor)) if page.more else None
            try:
                prepared, revs = await self._apply_page(account_id, page, head)
            except BaseException:
                if fetch is not None:
                    fetch.cancel()
                raise
            changed += sum(1 for r in revs if r > 0)
            guarded.update((c.native_id, None) for c, r in zip(page.changes, revs, strict=True) if r < 0)
            if full:
                seen.update(p.id for p in prepared if p.kind == "u")
            if fetch is None:
                break
            await self.store.extend_lock(keys.refresh_lock, holder, self.settings.lock_ttl_s)
        if guarded:
            changed += await self._refetch(account_id, connector, list(guarded))
        if full:
            changed += await self._drop_unlisted(account_id, seen, start_rev)
        await self.store.set_state(account_id, cursor=page.cursor or "", last_refresh=time.time(), ready=1,
                                   last_error="")
        if await self.identity.account(account_id) is not None:
            await self.identity.set_status(account_id, "active")
        return RefreshResult(ran=True, changed=changed, full=full)

    async def _apply_page(self, account_id: str, page: ChangePage, head: int) -> tuple[list[PreparedChange], list[int]]:
        """Map, hash and apply one page in small steps, each batch applied while the next is prepared.

        Connectors map lazily (RemoteContact.content), so this is where a page's CPU work happens. Between
        steps the loop runs other tasks: the request for the next page goes out and the provider answers
        it, Redis runs the previous batch's apply, and API requests in the same process are not held up
        behind a 1,000-contact page. Batches are applied strictly in order (the next is sent only after the
        previous one returned), so a contact listed twice in a page keeps its later version.
        """
        stamp = now_iso()
        prepared: list[PreparedChange] = []
        revs: list[int] = []
        pending: asyncio.Future[list[int]] | None = None
        sent = 0
        try:
            for start in range(0, len(page.changes), PREPARE_STEP):
                await asyncio.sleep(0)
                prepared += [prepare(c, head, stamp) for c in page.changes[start:start + PREPARE_STEP]]
                if len(prepared) - sent >= self.mirror.batch or len(prepared) == len(page.changes):
                    if pending is not None:
                        revs += await pending
                    pending = asyncio.ensure_future(self.mirror.apply(account_id, prepared[sent:]))
                    sent = len(prepared)
            if pending is not None:
                revs += await pending
                pending = None
        finally:
            if pending is not None:  # failed or cancelled mid-page: the applied batches stay (each is atomic)
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)
        return prepared, revs

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
