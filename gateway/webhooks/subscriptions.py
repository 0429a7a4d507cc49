"""Webhook subscriptions: their records, the app's index, and the URL validation handshake.

A subscription lives under its account's hash tag, `{a:X}:sub:<id>` (a hash), and its id in the
account's set `{a:X}:subs`: the apply script reads that set, so adding the id is what makes every
later change of the account write a notification to the account's stream, and removing it stops
them. The app's index (`app:<clientId>:subs`, id -> account; `app:<clientId>:subs:ids`, the ids for
paging) finds a subscription from its id and proves it belongs to the caller. `wh:accounts` lists
the accounts that have subscriptions, for the workers' sweep.

Ids are "sub_" + 12 hex digits of the creation time in ms + 8 random hex digits, so the index,
ordered by id, lists subscriptions in creation order.

Besides what the API shows, the record keeps the delivery state the workers share: `failures`
(consecutive failed attempts), `first_failure` and `next_at` (ms: no attempt before it, the
subscription's backoff), and `last_error`.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from gateway.config import WebhookSettings
from gateway.errors import ApiError
from gateway.identity import App
from gateway.store.keys import Keys
from gateway.sync.mirror import now_iso
from gateway.webhooks.egress import EgressRefused, check_url, guarded_session
from gateway.webhooks.signing import signed_headers

RESOURCE = "/contacts"
# a subscription deleted meanwhile is not resurrected as a partial record
_SAVE_IF_EXISTS = """
if redis.call("EXISTS", KEYS[1]) == 1 then redis.call("HSET", KEYS[1], unpack(ARGV)) return 1 end
return 0
"""
ID_PATTERN = re.compile(r"^sub_[0-9a-f]{20}$")


@dataclass(slots=True)
class Subscription:
    id: str
    account_id: str
    client_id: str
    resource: str
    url: str
    active: bool = True
    fail_since: str | None = None
    fail_description: str | None = None
    created: str = ""
    failures: int = 0
    first_failure: int = 0
    next_at: int = 0
    last_error: str = ""

    @classmethod
    def parse(cls, sub_id: str, raw: dict[bytes, bytes]) -> Subscription:
        f = {k.decode(): v.decode() for k, v in raw.items()}
        return cls(sub_id, f["account"], f["app"], f["resource"], f["url"], f.get("active", "1") == "1",
                   f.get("fail_since") or None, f.get("fail_description") or None, f.get("created", ""),
                   int(f.get("failures") or 0), int(f.get("first_failure") or 0), int(f.get("next_at") or 0),
                   f.get("last_error", ""))

    def state(self) -> tuple[object, ...]:
        """The delivery state the workers write back."""
        return (self.active, self.fail_since, self.fail_description, self.failures, self.first_failure,
                self.next_at, self.last_error)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "accountId": self.account_id, "resource": self.resource,
                "notificationUrl": self.url, "active": self.active, "failSince": self.fail_since,
                "failDescription": self.fail_description}


@dataclass(slots=True)
class SubscriptionPage:
    records: list[Subscription]
    next_page_token: str | None


def new_id() -> str:
    return f"sub_{int(time.time() * 1000):012x}{secrets.token_hex(4)}"


class Subscriptions:
    def __init__(self, client: aioredis.Redis, keys: Keys, settings: WebhookSettings) -> None:
        self.redis = client
        self.keys = keys
        self.settings = settings
        self._save = client.register_script(_SAVE_IF_EXISTS)

    # -- the handshake -----------------------------------------------------------------------------

    async def validate_url(self, raw_url: str, signing_secret: str) -> str:
        """POST <url>?validationToken=T and expect 200 with T as the body; the normalized URL, else 400."""
        try:
            url = check_url(raw_url, self.settings.allow_private_targets)
        except EgressRefused as exc:
            raise ApiError(400, "subscription.url_refused", f"notificationUrl is refused: {exc}",
                           field="notificationUrl") from None
        token = secrets.token_urlsafe(24)
        target = url.update_query({"validationToken": token})
        headers = {**signed_headers(signing_secret, b""), "Content-Type": "text/plain"}
        timeout = self.settings.validation_timeout_s
        problem = ""
        try:
            async with guarded_session(self.settings.allow_private_targets, timeout, limit=1) as session, \
                    session.post(target, data=b"", headers=headers, allow_redirects=False) as resp:
                body = await resp.content.read(4096)
                if resp.status != 200:
                    problem = f"it answered {resp.status} instead of 200"
                elif body.decode(errors="replace").strip() != token:
                    problem = "its 200 body is not the validationToken"
        except TimeoutError:
            problem = f"it did not answer within {timeout:g} s"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            problem = f"it cannot be reached ({exc.__class__.__name__}: {exc})"
        if problem:
            raise ApiError(400, "subscription.validation_failed",
                           f"The notificationUrl failed validation: {problem}. The gateway POSTs to it with a "
                           "validationToken query parameter and expects that token back as a 200 text body.",
                           field="notificationUrl")
        return str(url)

    # -- records -----------------------------------------------------------------------------------

    async def create(self, app: App, account_id: str, resource: str, url: str) -> Subscription:
        """Record a subscription whose URL already passed `validate_url`; events start at once."""
        k = self.keys.account(account_id)
        if await self.redis.scard(k.subscriptions) >= self.settings.max_subscriptions_per_account:
            raise ApiError(400, "subscription.limit", "This account already has "
                           f"{self.settings.max_subscriptions_per_account} subscriptions; delete one first.")
        sub = Subscription(new_id(), account_id, app.client_id, resource, url, created=now_iso())
        try:  # the group reads from the start: nothing the apply script writes from now on is skipped
            await self.redis.xgroup_create(k.events, self.settings.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        # the app's index first: a crash after it leaves an index entry without a record, which
        # reads skip and clean, never a subscription that receives notifications but cannot be seen
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.keys.app_subscriptions(app.client_id), sub.id, account_id)
        pipe.zadd(self.keys.app_subscription_ids(app.client_id), {sub.id: 0})
        await pipe.execute()
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(k.subscription(sub.id), mapping={
            "app": app.client_id, "account": account_id, "resource": resource, "url": url, "active": "1",
            "created": sub.created, "failures": 0, "first_failure": 0, "next_at": 0,
        })
        pipe.sadd(k.subscriptions, sub.id)
        await pipe.execute()
        await self.redis.sadd(self.keys.webhook_accounts, account_id)
        return sub

    async def load(self, account_id: str, sub_id: str) -> Subscription | None:
        raw = await self.redis.hgetall(self.keys.account(account_id).subscription(sub_id))
        return Subscription.parse(sub_id, raw) if raw else None

    async def get(self, client_id: str, sub_id: str) -> Subscription | None:
        """The app's subscription with this id (None for another app's, or none)."""
        if not ID_PATTERN.match(sub_id):
            return None
        account = await self.redis.hget(self.keys.app_subscriptions(client_id), sub_id)
        if account is None:
            return None
        sub = await self.load(account.decode(), sub_id)
        if sub is None or sub.client_id != client_id:
            await self._unindex(client_id, [sub_id])
            return None
        return sub

    async def page(self, client_id: str, after: str | None, limit: int) -> SubscriptionPage:
        """The app's subscriptions in creation order, after the id `after`."""
        low = f"({after}" if after else "-"
        ids = [i.decode() for i in await self.redis.zrangebylex(self.keys.app_subscription_ids(client_id), low, "+",
                                                                start=0, num=limit + 1)]
        more, ids = len(ids) > limit, ids[:limit]
        if not ids:
            return SubscriptionPage([], None)
        accounts = await self.redis.hmget(self.keys.app_subscriptions(client_id), ids)
        pipe = self.redis.pipeline(transaction=False)
        for sub_id, account in zip(ids, accounts, strict=True):
            if account is not None:
                pipe.hgetall(self.keys.account(account.decode()).subscription(sub_id))
        raws = iter(await pipe.execute())
        found, stale = [], []
        for sub_id, account in zip(ids, accounts, strict=True):
            raw = next(raws) if account is not None else None
            if raw:
                found.append(Subscription.parse(sub_id, raw))
            else:
                stale.append(sub_id)
        if stale:
            await self._unindex(client_id, stale)
        return SubscriptionPage(found, ids[-1] if more else None)

    async def delete(self, sub: Subscription) -> None:
        """Stop and forget a subscription; its queued notifications are dropped by the workers."""
        k = self.keys.account(sub.account_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.srem(k.subscriptions, sub.id)
        pipe.delete(k.subscription(sub.id), k.deliveries(sub.id))
        pipe.scard(k.subscriptions)
        *_, left = await pipe.execute()
        await self._unindex(sub.client_id, [sub.id])
        if not left:
            await self.redis.srem(self.keys.webhook_accounts, sub.account_id)

    async def _unindex(self, client_id: str, sub_ids: list[str]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hdel(self.keys.app_subscriptions(client_id), *sub_ids)
        pipe.zrem(self.keys.app_subscription_ids(client_id), *sub_ids)
        await pipe.execute()

    # -- delivery state (written by the workers) ----------------------------------------------------

    async def deliveries(self, sub: Subscription, limit: int) -> list[dict[str, Any]]:
        raw = await self.redis.lrange(self.keys.account(sub.account_id).deliveries(sub.id), 0, limit - 1)
        return [orjson.loads(r) for r in raw]

    async def save_state(self, sub: Subscription) -> None:
        """Write the subscription's delivery state back (if it still exists)."""
        key = self.keys.account(sub.account_id).subscription(sub.id)
        await self._save(keys=[key], args=[
            "active", "1" if sub.active else "0", "fail_since", sub.fail_since or "",
            "fail_description", sub.fail_description or "", "failures", sub.failures,
            "first_failure", sub.first_failure, "next_at", sub.next_at, "last_error", sub.last_error])

    async def app_secret(self, client_id: str) -> str | None:
        raw = await self.redis.hget(self.keys.app(client_id), "signing")
        return raw.decode() if raw is not None else None
