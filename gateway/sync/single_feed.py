"""The single-token change feed: one token, every kind of change since it, as flat records.

A token names a revision R ("now" when issued). Reading it serves every contact whose latest
change lies in (R, H], H fixed when the read begins: CREATED when the contact was created
after R, UPDATED otherwise, DELETED for a tombstone of a contact that existed at R. A contact
created and deleted after R is not reported.

At most `limit` items go in one response. When more changed, the response says
`"more": true` and its token continues the same pass (R, H, last item served): the client
calls again at once with it. Items are never repeated or dropped across consecutive tokens,
because the continuation walks strictly after the last revision served, and anything that
changes meanwhile moves above H into the next pass. The same token store serves the /v1
delta tokens, so expiry and foreign tokens behave the same (400 invalid, 410 expired).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from gateway.store.redis_store import RedisStore
from gateway.sync.changes import TokenExpired, TokenInvalid
from gateway.sync.flat import deleted_record, flat_record


@dataclass(slots=True)
class FeedPage:
    token: str
    items: list[dict[str, Any]]
    more: bool


class SingleTokenFeed:
    def __init__(self, store: RedisStore, delta_ttl_s: int, page_ttl_s: int) -> None:
        self.store = store
        self.delta_ttl_s = delta_ttl_s
        self.page_ttl_s = page_ttl_s

    async def now(self, account_id: str) -> str:
        head = await self.store.head(account_id)
        return await self.store.put_token(account_id, f"s|{head}|{head}|{head}", self.delta_ttl_s)

    async def check(self, account_id: str, token: str) -> tuple[int, int | None, int]:
        """(base, head of a continued pass or None, last served) of a token, or TokenInvalid/TokenExpired."""
        if not token or len(token) > 64:
            raise TokenInvalid
        raw = await self.store.get_token(account_id, token)
        parts = raw.split("|") if raw else []
        if len(parts) != 4 or parts[0] not in ("s", "c"):
            raise TokenInvalid
        base, head, last = int(parts[1]), int(parts[2]), int(parts[3])
        if last < await self.store.tombstone_floor(account_id):
            raise TokenExpired
        return base, (head if parts[0] == "c" else None), last

    async def read(self, account_id: str, token: str, limit: int) -> FeedPage:
        base, head, last = await self.check(account_id, token)
        if head is None:
            head = await self.store.head(account_id)
        items: list[dict[str, Any]] = []
        more = True
        while more and len(items) < limit:
            page = await self.store.merged(account_id, last, head, limit - len(items))
            for entry in page.entries:
                if entry.deleted:
                    if entry.created_rev <= base:
                        items.append(deleted_record(entry.id))
                else:
                    kind = "CREATED" if entry.created_rev > base else "UPDATED"
                    items.append(flat_record(orjson.loads(entry.body), kind))
            last, more = page.last_rev, page.more
        if more:
            nxt = await self.store.put_token(account_id, f"c|{base}|{head}|{last}", self.delta_ttl_s)
        elif head == base:
            nxt = token  # nothing happened: the same token
        else:
            nxt = await self.store.put_token(account_id, f"s|{head}|{head}|{head}", self.delta_ttl_s)
        return FeedPage(nxt, items, more)
