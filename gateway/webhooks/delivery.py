"""Delivering one account's notifications: at least once, signed, with backoff, shared by many workers.

The durable log is the account's stream `{a:X}:events`: the apply script adds one entry per
(change batch chunk, subscription) in the same atomic step as the change. Workers read it through
one consumer group (`webhooks.group`, "deliver"), each worker a consumer of its own name, and only
the worker holding the account's delivery lock (`{a:X}:lock:deliver`, a lease it renews while it
works) touches the account, so no notification is ever sent by two workers at once.

An entry's life:

    XADD (apply script) -> XREADGROUP by a worker (pending, in flight)
      2xx               -> XACK + XDEL                                    delivered
      failure           -> ZADD {a:X}:wh:retry <due> + XACK (one MULTI)   scheduled, still in the stream
      due retry         -> taken from the retry set by a script that sets its score to now + lease
      410               -> the subscription is removed; its entries are dropped
      retry period over -> XADD {a:X}:wh:dead + XACK + XDEL               dead-lettered, subscription failing

A worker that dies mid-delivery leaves entries pending under its name (or retries leased to it): once
its lock lapses, the next worker takes the lock, claims pending entries idle longer than
`visibility_timeout_s` with XAUTOCLAIM, and finds leased retries due again. Those notifications may
reach the consumer twice, always under the same notification id `<subscription id>.<entry id>`.

Backoff is per subscription: a failed attempt sets the subscription's `next_at` to
`min(base * 2**(failures-1), max)` with equal jitter (half fixed, half random); until then its
other notifications are not attempted but scheduled at `next_at`, so a consumer that is down gets
one probe per backoff step, not one per queued change (a failing subscription gets one notification
in flight, a healthy one up to WINDOW). The first success resets it (and clears a failing mark).
A notification older than `retry_period_s` that fails again, or comes due while its subscription
is backing off, is dead-lettered and the subscription marked failing (`active` false, `failSince`,
`failDescription`); it stays subscribed, and the next success reactivates it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
from redis.exceptions import ResponseError

from gateway.config import WebhookSettings
from gateway.store.keys import AccountKeys
from gateway.store.redis_store import RedisStore
from gateway.sync.locks import Lease
from gateway.sync.mirror import now_iso
from gateway.webhooks.egress import EgressRefused, check_url, guarded_session
from gateway.webhooks.events import Attempt, DeliveryReport, Event, retry_delay, sort_key
from gateway.webhooks.signing import signed_headers
from gateway.webhooks.subscriptions import Subscription, Subscriptions

log = logging.getLogger(__name__)

#: one account's turn in a burst; then the worker moves on and comes back (the hint is kept)
BURST_S = 2.0
#: notifications of one subscription in flight at once
WINDOW = 8
SECRET_TTL_S = 60.0
#: a subscription's attempt log expires this long after its last attempt (no orphan if the account goes)
LOG_TTL_S = 30 * 86400

# The dirty hint is removed only if no change raised it since it was read.
_UNHINT = """
local score = redis.call("ZSCORE", KEYS[1], ARGV[1])
if score and tonumber(score) <= tonumber(ARGV[2]) then return redis.call("ZREM", KEYS[1], ARGV[1]) end
return 0
"""
# Due retries, leased: their score becomes now + lease, so a worker dying with them makes them due again.
_TAKE_DUE = """
local ids = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", ARGV[1], "LIMIT", 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call("ZADD", KEYS[1], ARGV[2], id) end
return ids
"""


class Deliverer:
    """One worker's delivery of notifications, one account at a time (`deliver_account`)."""

    def __init__(self, store: RedisStore, subscriptions: Subscriptions, settings: WebhookSettings, consumer: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.redis = store.redis
        self.keys = store.keys
        self.subs = subscriptions
        self.settings = settings
        self.consumer = consumer
        self.clock = clock
        self._take_due = self.redis.register_script(_TAKE_DUE)
        self._unhint = self.redis.register_script(_UNHINT)
        self._session: aiohttp.ClientSession | None = None
        self._grouped: set[str] = set()
        self._secrets: dict[str, tuple[float, str | None]] = {}

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = guarded_session(self.settings.allow_private_targets, self.settings.delivery_timeout_s)
        return self._session

    async def aclose(self) -> None:
        """Close the HTTP client, and leave the groups this worker has nothing pending in."""
        if self._session is not None:
            await self._session.close()
        accounts = list(self._grouped)
        if not accounts:
            return
        pipe = self.redis.pipeline(transaction=False)
        for account_id in accounts:
            pipe.xpending_range(self.keys.account(account_id).events, self.settings.group, "-", "+", 1,
                                consumername=self.consumer)
        pending = await pipe.execute(raise_on_error=False)
        pipe = self.redis.pipeline(transaction=False)
        for account_id, mine in zip(accounts, pending, strict=True):
            if mine == []:  # nothing pending here (a stream that is gone answers an error: skipped)
                pipe.xgroup_delconsumer(self.keys.account(account_id).events, self.settings.group, self.consumer)
        await pipe.execute(raise_on_error=False)

    # -- one account ---------------------------------------------------------------------------------

    async def deliver_account(self, account_id: str) -> DeliveryReport:
        """Claim, retry and send what the account's stream holds, for at most about BURST_S."""
        k = self.keys.account(account_id)
        report = DeliveryReport(accounts=1)
        holder = await self.store.try_lock(k.delivery_lock, self.settings.visibility_timeout_s)
        if holder is None:
            report.busy = 1
            return report
        lease = Lease(self.store, k.delivery_lock, holder, self.settings.visibility_timeout_s)
        try:
            await self._drain(account_id, k, report, lease)
        finally:
            await lease.release()
        return report

    async def _drain(self, account_id: str, k: AccountKeys, report: DeliveryReport, lease: Lease) -> None:
        # the hint stays until the account is drained (a worker dying mid-way leaves it for the next);
        # a change meanwhile raises its score, and a raised hint is not removed
        hint = await self.redis.zscore(self.keys.dirty, account_id)
        if not await self.redis.exists(k.events):
            await self._forget_if_idle(account_id, k, hint)
            return
        await self._ensure_group(account_id, k)
        entries = await self._claim(k, report)
        entries += await self._due(k)
        deadline = time.monotonic() + BURST_S
        while not lease.lost:
            entries += await self._read_new(account_id, k)
            if not entries:
                break
            await self._process(account_id, k, entries, report, lease)
            entries = []
            if time.monotonic() > deadline:
                report.more = True
                break
        if report.more or lease.lost:
            await self.redis.zadd(self.keys.dirty, {account_id: self.now_ms()})
        elif hint is not None:
            await self._unhint(keys=[self.keys.dirty], args=[account_id, int(hint)])
        await self._next_due(account_id, k)

    async def _next_due(self, account_id: str, k: AccountKeys) -> None:
        """When the account next needs a worker: its earliest retry, or, while entries another (stopped)
        worker took are still pending, when they become claimable."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrange(k.retries, 0, 0, withscores=True)
        pipe.xpending(k.events, self.settings.group)
        first, pending = await pipe.execute()
        due = [int(first[0][1])] if first else []
        if pending["pending"]:
            due.append(self.now_ms() + int(self.settings.visibility_timeout_s * 1000))
        if due:
            await self.redis.zadd(self.keys.webhook_due, {account_id: min(due)})
        else:
            await self.redis.zrem(self.keys.webhook_due, account_id)

    async def _forget_if_idle(self, account_id: str, k: AccountKeys, hint: float | None) -> None:
        """No stream: nothing queued. Drop the account from the sweep if it has no subscriptions either."""
        if hint is not None:
            await self._unhint(keys=[self.keys.dirty], args=[account_id, int(hint)])
        await self.redis.zrem(self.keys.webhook_due, account_id)
        if not await self.redis.scard(k.subscriptions):
            await self.redis.srem(self.keys.webhook_accounts, account_id)

    async def _ensure_group(self, account_id: str, k: AccountKeys) -> None:
        if account_id in self._grouped:
            return
        try:
            await self.redis.xgroup_create(k.events, self.settings.group, id="0")
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._grouped.add(account_id)

    async def _read_new(self, account_id: str, k: AccountKeys) -> list[Any]:
        group, count = self.settings.group, self.settings.batch_size
        try:
            out = await self.redis.xreadgroup(group, self.consumer, {k.events: ">"}, count=count)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._grouped.discard(account_id)
            await self._ensure_group(account_id, k)
            out = await self.redis.xreadgroup(group, self.consumer, {k.events: ">"}, count=count)
        return list(out[0][1]) if out else []

    async def _claim(self, k: AccountKeys, report: DeliveryReport) -> list[Any]:
        """Entries another consumer took and left unsettled for longer than the visibility timeout."""
        idle_ms = int(self.settings.visibility_timeout_s * 1000)
        out = await self.redis.xautoclaim(k.events, self.settings.group, self.consumer, idle_ms, "0-0",
                                          count=self.settings.batch_size)
        claimed = [(eid, raw) for eid, raw in out[1] if eid is not None]
        if claimed:
            report.claimed += len(claimed)
            log.info("claimed %d notifications of %s left by a stopped worker", len(claimed), k.base)
            await self._drop_idle_consumers(k)
        return claimed

    async def _drop_idle_consumers(self, k: AccountKeys) -> None:
        """Forget consumers (stopped workers) with nothing pending, idle for ten visibility timeouts."""
        idle_ms = 10 * self.settings.visibility_timeout_s * 1000
        for info in await self.redis.xinfo_consumers(k.events, self.settings.group):
            name = info["name"].decode() if isinstance(info["name"], bytes) else info["name"]
            if name != self.consumer and not info["pending"] and info["idle"] > idle_ms:
                await self.redis.xgroup_delconsumer(k.events, self.settings.group, name)

    async def _due(self, k: AccountKeys) -> list[Any]:
        now = self.now_ms()
        lease_ms = int(self.settings.visibility_timeout_s * 1000)
        ids = await self._take_due(keys=[k.retries], args=[now, now + lease_ms, self.settings.batch_size])
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for eid in ids:
            pipe.xrange(k.events, eid, eid, count=1)
        found, gone = [], []
        for eid, rows in zip(ids, await pipe.execute(), strict=True):
            if rows:
                found.append(rows[0])
            else:
                gone.append(eid)
        if gone:
            await self.redis.zrem(k.retries, *gone)
        return found

    # -- a batch -------------------------------------------------------------------------------------

    async def _process(self, account_id: str, k: AccountKeys, entries: list[Any], report: DeliveryReport,
                       lease: Lease) -> None:
        by_sub: dict[str, list[Event]] = {}
        junk: list[str] = []
        for eid, raw in entries:
            event = Event.parse(eid, raw)
            if event is None:
                junk.append(eid.decode() if isinstance(eid, bytes) else eid)
            else:
                by_sub.setdefault(event.sub_id, []).append(event)
        subs = {sid: await self.subs.load(account_id, sid) for sid in by_sub}
        for sid, sub in subs.items():
            if sub is None:
                junk += [e.entry_id for e in by_sub.pop(sid)]
        if junk:
            report.dropped += len(junk)
            await self._settle(k, junk, [])
        await asyncio.gather(*(self._deliver_sub(k, sub, sorted(by_sub[sid], key=lambda e: sort_key(e.entry_id)),
                                                 report, lease)
                               for sid, sub in subs.items() if sub is not None))

    async def _deliver_sub(self, k: AccountKeys, sub: Subscription, events: list[Event], report: DeliveryReport,
                           lease: Lease) -> None:
        """One subscription's entries: windows of WINDOW in flight, gated by its backoff."""
        before = sub.state()
        secret = await self._secret(sub.client_id)
        i = 0
        while i < len(events) and not lease.lost:
            if sub.next_at > self.now_ms():
                report.deferred += len(events) - i
                await self._schedule(k, sub, events[i:], sub.next_at, sub.last_error or "backing off", report)
                break
            size = 1 if sub.failures else WINDOW  # a failing consumer gets one probe at a time
            start, i = i, i + size
            window = events[start:i]
            attempts = await asyncio.gather(*(self._send(sub, e, secret) for e in window))
            if any(a.gone for a in attempts):
                await self._settle(k, [e.entry_id for e in events[start:]], attempts, sub)
                await self.subs.delete(sub)
                delivered = sum(1 for a in attempts if a.ok)
                report.removed += 1
                report.delivered += delivered
                report.dropped += len(events) - start - delivered
                log.info("subscription %s removed: its consumer answered 410", sub.id)
                return
            done = [(e, a) for e, a in zip(window, attempts, strict=True) if a.ok]
            failed = [(e, a) for e, a in zip(window, attempts, strict=True) if not a.ok]
            await self._settle(k, [e.entry_id for e, _ in done], attempts, sub)
            report.delivered += len(done)
            if failed:
                report.failed += len(failed)
                self._failed(sub, failed[-1][1].error or "failed")
                await self._schedule(k, sub, [e for e, _ in failed], sub.next_at, sub.last_error, report)
            elif sub.failures or not sub.active:
                sub.failures, sub.first_failure, sub.next_at = 0, 0, 0
                sub.active, sub.fail_since, sub.fail_description, sub.last_error = True, None, None, ""
        if sub.state() != before:
            await self.subs.save_state(sub)

    def _failed(self, sub: Subscription, error: str) -> None:
        now = self.now_ms()
        sub.failures += 1
        if sub.failures == 1:
            sub.first_failure = now
        delay = retry_delay(sub.failures, self.settings.backoff_base_s, self.settings.backoff_max_s)
        sub.next_at = now + int(delay * 1000)
        sub.last_error = error

    async def _schedule(self, k: AccountKeys, sub: Subscription, events: list[Event], due_ms: int, error: str,
                        report: DeliveryReport) -> None:
        """Put entries in the retry set (and out of the pending list), or dead-letter the expired ones."""
        cutoff = self.now_ms() - int(self.settings.retry_period_s * 1000)
        expired = [e for e in events if e.created_ms <= cutoff]
        keep = [e for e in events if e.created_ms > cutoff]
        pipe = self.redis.pipeline(transaction=True)
        if keep:
            pipe.zadd(k.retries, {e.entry_id: due_ms for e in keep})
            pipe.xack(k.events, self.settings.group, *[e.entry_id for e in keep])
        if expired:
            self._dead_letter(pipe, k, sub, expired, error)
            report.dead_lettered += len(expired)
        await pipe.execute()

    def _dead_letter(self, pipe: Any, k: AccountKeys, sub: Subscription, events: list[Event], error: str) -> None:
        at = now_iso(self.clock())
        for e in events:
            pipe.xadd(k.dead_letters, {"notification": e.notification_id(), "sub": sub.id, "revision": e.revision,
                                       "updated": orjson.dumps(e.updated), "deleted": orjson.dumps(e.deleted),
                                       "error": error, "at": at},
                      maxlen=self.settings.dead_letter_max, approximate=True)
            pipe.lpush(k.deliveries(sub.id), orjson.dumps({
                "notificationId": e.notification_id(), "revision": e.revision, "attemptedAt": at, "status": None,
                "latencyMs": None, "error": error, "outcome": "deadLettered"}))
        ids = [e.entry_id for e in events]
        pipe.xack(k.events, self.settings.group, *ids)
        pipe.xdel(k.events, *ids)
        pipe.zrem(k.retries, *ids)
        pipe.ltrim(k.deliveries(sub.id), 0, self.settings.deliveries_kept - 1)
        sub.active = False
        sub.fail_since = sub.fail_since or now_iso((sub.first_failure or self.now_ms()) / 1000)
        sub.fail_description = error or sub.last_error or "delivery failed"

    async def _settle(self, k: AccountKeys, done: list[str], attempts: list[Attempt],
                      sub: Subscription | None = None) -> None:
        """Entries finished with (delivered, dropped), and the attempts to log, in one MULTI."""
        if not done and not attempts:
            return
        pipe = self.redis.pipeline(transaction=True)
        if done:
            pipe.xack(k.events, self.settings.group, *done)
            pipe.xdel(k.events, *done)
            pipe.zrem(k.retries, *done)
        if attempts and sub is not None:
            pipe.lpush(k.deliveries(sub.id), *[orjson.dumps({
                "notificationId": a.notification_id, "revision": a.revision, "attemptedAt": a.at, "status": a.status,
                "latencyMs": round(a.latency_ms, 1), "error": a.error,
                "outcome": "delivered" if a.ok else "failed"}) for a in attempts])
            pipe.ltrim(k.deliveries(sub.id), 0, self.settings.deliveries_kept - 1)
            pipe.expire(k.deliveries(sub.id), LOG_TTL_S)
        await pipe.execute()

    # -- one notification ----------------------------------------------------------------------------

    async def _secret(self, client_id: str) -> str | None:
        cached = self._secrets.get(client_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        secret = await self.subs.app_secret(client_id)
        self._secrets[client_id] = (time.monotonic() + SECRET_TTL_S, secret)
        return secret

    async def _send(self, sub: Subscription, event: Event, secret: str | None) -> Attempt:
        """POST the entry's notification(s); the first failure ends the attempt."""
        parts = event.parts(self.settings.max_ids_per_notification)
        at = now_iso(self.clock())
        total_ms, status = 0.0, None
        for n, (updated, deleted) in enumerate(parts):
            nid = event.notification_id(n, len(parts))
            body = orjson.dumps({"id": nid, "subscriptionId": sub.id, "accountId": sub.account_id,
                                 "resource": sub.resource, "revision": event.revision,
                                 "changes": {"updated": updated, "deleted": deleted}})
            started = time.perf_counter()
            status, error = await self._post(sub.url, body, secret)
            total_ms += (time.perf_counter() - started) * 1000
            if error is not None or status is None or not 200 <= status < 300:
                error = error or f"HTTP {status}"
                return Attempt(False, status == 410, status, total_ms, error, nid, event.revision, at)
        return Attempt(True, False, status, total_ms, None, event.notification_id(), event.revision, at)

    async def _post(self, url: str, body: bytes, secret: str | None) -> tuple[int | None, str | None]:
        if secret is None:
            return None, "the subscription's app has no signing secret"
        try:
            check_url(url, self.settings.allow_private_targets)
            async with self.session.post(url, data=body, headers=signed_headers(secret, body),
                                         allow_redirects=False) as resp:
                await resp.content.read(65536)
                return resp.status, None
        except EgressRefused as exc:
            return None, f"refused: {exc}"
        except TimeoutError:
            return None, f"timeout after {self.settings.delivery_timeout_s:g} s"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return None, f"connection failed: {exc.__class__.__name__}: {exc}"
