"""`contacts-gateway worker`: keep every mirror fresh and deliver the webhooks.

Any number of workers share one Redis, beside any number of gateway processes:

- **Refresh.** Every connected account (`Keys.all_accounts`) whose last refresh (state
  `last_refresh`, also set by refreshes a request triggered) is older than
  `worker.refresh_interval_s` is pulled from its provider through `Refresher.refresh`, whose
  per-account lock means no account is pulled by two processes at once. A provider that throttles
  or is down sets the account's `next_refresh_at` to its Retry-After (or `throttle_backoff_s`);
  rejected credentials (the account becomes `reauth_required`) back off from `reauth_backoff_s`,
  doubling up to `reauth_backoff_max_s`, until a pull succeeds again.
- **Delivery.** Accounts with work are found three ways: the `dirty` hint the store sets when a
  change wrote notifications, the `wh:due` hint of scheduled retries, and a sweep of every account
  with subscriptions every `sweep_interval_s` (so a crash between a change and its hint delays a
  notification, never loses it). Each account is then handed to `Deliverer.deliver_account`
  (gateway/webhooks/delivery.py), under the account's delivery lock.

`run_once()` is one burst of both (tests drive it step by step); `run()` loops until stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.core import Core
from gateway.webhooks.delivery import Deliverer
from gateway.webhooks.events import DeliveryReport
from providers.base import AuthFailed, Throttled, Unavailable

log = logging.getLogger(__name__)


def default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


@dataclass
class RefreshReport:
    refreshed: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)            # another process was pulling it
    throttled: list[str] = field(default_factory=list)       # provider throttled or unavailable
    auth_failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    changed: int = 0


@dataclass
class WorkerReport:
    refresh: RefreshReport
    delivery: DeliveryReport

    @property
    def worked(self) -> bool:
        return bool(self.refresh.refreshed or self.delivery.worked)


class Worker:
    def __init__(self, core: Core, name: str | None = None, clock: Callable[[], float] = time.time) -> None:
        self.core = core
        self.settings = core.settings.worker
        self.name = name or default_name()
        self.clock = clock
        self.keys = core.store.keys
        self.redis = core.redis.client
        self.deliverer = Deliverer(core.store, core.webhooks, core.settings.webhooks, self.name, clock)
        self._last_sweep = float("-inf")

    async def aclose(self) -> None:
        await self.deliverer.aclose()

    # -- one burst -------------------------------------------------------------------------------------

    async def run_once(self, sweep: bool | None = None, refresh: bool = True) -> WorkerReport:
        """Refresh the accounts that are due, then deliver what is queued. `sweep`: None = when due."""
        refreshed = await self.refresh_due() if refresh else RefreshReport()
        return WorkerReport(refreshed, await self.deliver(sweep))

    async def refresh_due(self) -> RefreshReport:
        report = RefreshReport()
        due = await self._due_accounts()
        if not due:
            return report
        gate = asyncio.Semaphore(self.settings.refresh_concurrency)

        async def one(account_id: str) -> None:
            async with gate:
                await self._refresh(account_id, report)

        await asyncio.gather(*(one(a) for a in due))
        return report

    async def _due_accounts(self) -> list[str]:
        ids = sorted(i.decode() for i in await self.redis.smembers(self.keys.all_accounts))
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for account_id in ids:
            pipe.hmget(self.keys.account(account_id).state, "last_refresh", "next_refresh_at")
        now = self.clock()
        due = []
        for account_id, (last, not_before) in zip(ids, await pipe.execute(), strict=True):
            if now - float(last or 0) >= self.settings.refresh_interval_s and now >= float(not_before or 0):
                due.append(account_id)
        return due

    async def _refresh(self, account_id: str, report: RefreshReport) -> None:
        store = self.core.store
        try:
            result = await self.core.refresher.refresh(account_id)
        except AuthFailed:
            failures = await self.redis.hincrby(store.account(account_id).state, "auth_failures", 1)
            wait = min(self.settings.reauth_backoff_s * 2 ** (failures - 1), self.settings.reauth_backoff_max_s)
            await store.set_state(account_id, next_refresh_at=self.clock() + wait)
            report.auth_failed.append(account_id)
            log.info("account %s: credentials rejected; next try in %.0f s", account_id, wait)
            return
        except (Throttled, Unavailable) as exc:
            wait = exc.retry_after if exc.retry_after is not None else self.settings.throttle_backoff_s
            await store.set_state(account_id, next_refresh_at=self.clock() + wait)
            report.throttled.append(account_id)
            log.info("account %s: provider %s; next try in %.0f s", account_id, exc.__class__.__name__, wait)
            return
        except Exception:
            if await self.core.identity.account(account_id) is None:
                return  # deleted meanwhile
            log.exception("account %s: refresh failed", account_id)
            await store.set_state(account_id, next_refresh_at=self.clock() + self.settings.refresh_interval_s)
            report.errors.append(account_id)
            return
        if not result.ran:
            report.busy.append(account_id)
            return
        await store.clear_state(account_id, "auth_failures", "next_refresh_at")
        report.refreshed.append(account_id)
        report.changed += result.changed

    async def deliver(self, sweep: bool | None = None) -> DeliveryReport:
        """Deliver to every account with a hint (and, on a sweep, every account with subscriptions)."""
        now = self.clock()
        if sweep is None:
            sweep = now - self._last_sweep >= self.settings.sweep_interval_s
        accounts = await self._accounts_with_work(sweep, int(now * 1000))
        if sweep:
            self._last_sweep = now
        report = DeliveryReport()
        if not accounts:
            return report
        gate = asyncio.Semaphore(self.settings.delivery_concurrency)

        async def one(account_id: str) -> None:
            async with gate:
                try:
                    report.merge(await self.deliverer.deliver_account(account_id))
                except Exception:
                    log.exception("account %s: delivery failed", account_id)

        await asyncio.gather(*(one(a) for a in accounts))
        return report

    async def _accounts_with_work(self, sweep: bool, now_ms: int) -> list[str]:
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrange(self.keys.dirty, 0, -1)
        pipe.zrangebyscore(self.keys.webhook_due, "-inf", now_ms)
        if sweep:
            pipe.smembers(self.keys.webhook_accounts)
        hinted, due, *swept = await pipe.execute()
        found = dict.fromkeys(a.decode() for a in [*hinted, *due])
        if swept:
            found.update((a, None) for a in await self._swept(swept[0], found))
        return list(found)

    async def _swept(self, members: list[bytes], known: dict[str, None]) -> list[str]:
        """Swept accounts whose stream holds entries (delivered ones are deleted from it); accounts with
        neither entries nor subscriptions (deleted meanwhile) leave the sweep."""
        candidates = [a.decode() for a in members if a.decode() not in known]
        if not candidates:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for account_id in candidates:
            keys = self.keys.account(account_id)
            pipe.xlen(keys.events)
            pipe.exists(keys.subscriptions)
        out = await pipe.execute()
        work, gone = [], []
        for n, account_id in enumerate(candidates):
            length, subscribed = out[2 * n], out[2 * n + 1]
            if length:
                work.append(account_id)
            elif not subscribed:
                gone.append(account_id)
        if gone:
            await self.redis.srem(self.keys.webhook_accounts, *gone)
        return work

    # -- the loop --------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Refresh and deliver until `stop` is set; the current bursts finish first (bounded)."""
        stop = stop or asyncio.Event()
        log.info("worker %s: refresh every %.0f s, deliveries polled every %.2f s", self.name,
                 self.settings.refresh_interval_s, self.settings.poll_interval_s)
        check = max(self.settings.poll_interval_s, min(5.0, self.settings.refresh_interval_s / 4))
        loops = [asyncio.create_task(self._loop(stop, self.refresh_due, check)),
                 asyncio.create_task(self._loop(stop, self.deliver, self.settings.poll_interval_s))]
        try:
            await stop.wait()
            _, pending = await asyncio.wait(loops, timeout=self.core.settings.webhooks.delivery_timeout_s + 5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
        finally:
            for task in loops:
                task.cancel()
            await self.aclose()

    async def _loop(self, stop: asyncio.Event, step: Callable[[], object], idle_s: float) -> None:
        while not stop.is_set():
            try:
                report = await step()  # type: ignore[misc]
            except Exception:
                log.exception("worker %s: %s failed", self.name, getattr(step, "__name__", step))
                report = None
            busy = isinstance(report, DeliveryReport) and report.more
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), idle_s)


async def run_worker(core: Core, stop: asyncio.Event, name: str | None = None) -> None:
    """A worker over `core` until `stop` (the CLI and the demo)."""
    await Worker(core, name).run(stop)
