"""Changes since a revision, served in pages: the delta and page tokens.

A delta token names a revision R. The pass it begins reads the head H once and
walks the index range (R, H] in revision order; each page token remembers
(R, H, last revision served). A change made during the pass takes a revision
above H, so the next delta delivers it: never lost, never twice in one pass.

Streams: `updated` walks live contacts, `deleted` walks tombstones, `list`
walks live contacts from 0 and ends without a delta token. Tokens are opaque
random strings whose state lives under the account's own keys, so a token of one
account means nothing to another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gateway.store.redis_store import Index, RedisStore

Stream = Literal["updated", "deleted", "list"]
_INDEX: dict[Stream, Index] = {"updated": "live", "deleted": "dead", "list": "live"}


class TokenInvalid(Exception):
    """Unknown, malformed, foreign or wrong-stream token."""


class TokenExpired(Exception):
    """The token is older than the tombstones still kept: start a new sync."""


@dataclass(slots=True)
class PassPage:
    bodies: list[bytes]
    next_page_token: str | None = None
    next_delta_token: str | None = None


@dataclass(slots=True)
class _Cursor:
    stream: Stream
    base: int
    head: int | None
    last: int

    def encode(self) -> str:
        if self.head is None:
            return f"d|{self.stream}|{self.base}"
        return f"p|{self.stream}|{self.base}|{self.head}|{self.last}"

    @classmethod
    def decode(cls, raw: str | None) -> _Cursor:
        if raw is None:
            raise TokenInvalid
        parts = raw.split("|")
        if parts[0] == "d" and len(parts) == 3:
            return cls(parts[1], int(parts[2]), None, int(parts[2]))  # type: ignore[arg-type]
        if parts[0] == "p" and len(parts) == 5:
            return cls(parts[1], int(parts[2]), int(parts[3]), int(parts[4]))  # type: ignore[arg-type]
        raise TokenInvalid


class ChangeFeed:
    """Issues and reads delta and page tokens over one store."""

    def __init__(self, store: RedisStore, delta_ttl_s: int, page_ttl_s: int) -> None:
        self.store = store
        self.delta_ttl_s = delta_ttl_s
        self.page_ttl_s = page_ttl_s

    async def delta_token(self, account_id: str, stream: Stream, revision: int) -> str:
        return await self.store.put_token(account_id, _Cursor(stream, revision, None, revision).encode(),
                                          self.delta_ttl_s)

    async def start(self, account_id: str) -> tuple[str, str]:
        """Tokens of a new sync: updated from 0 (everything), deleted from the head (nothing old)."""
        head = await self.store.head(account_id)
        return (await self.delta_token(account_id, "updated", 0),
                await self.delta_token(account_id, "deleted", head))

    async def cursor(self, account_id: str, stream: Stream, token: str) -> _Cursor:
        """The state behind a token of this account and stream, or TokenInvalid / TokenExpired."""
        if not token or len(token) > 64:
            raise TokenInvalid
        cur = _Cursor.decode(await self.store.get_token(account_id, token))
        if cur.stream != stream:
            raise TokenInvalid
        # Only tombstones are ever compacted: a live pass from revision 0 is always valid.
        needs_tombstones = cur.stream == "deleted" or (cur.head is None and cur.base > 0)
        if needs_tombstones:
            if cur.last < await self.store.tombstone_floor(account_id):
                raise TokenExpired
        return cur

    async def read(self, account_id: str, stream: Stream, token: str | None, page_size: int,
                   delta_token: str | None = None) -> PassPage:
        """One page of a pass. `token` is a page token; `delta_token`, when given, begins a pass."""
        if delta_token is not None:
            cur = await self.cursor(account_id, stream, delta_token)
            if cur.head is not None:
                raise TokenInvalid
            cur.head = await self.store.head(account_id)
        elif token is not None:
            cur = await self.cursor(account_id, stream, token)
            if cur.head is None:
                raise TokenInvalid
        else:
            cur = _Cursor(stream, 0, await self.store.head(account_id), 0)
        return await self._page(account_id, cur, page_size, delta_token)

    async def _page(self, account_id: str, cur: _Cursor, page_size: int, delta_token: str | None) -> PassPage:
        assert cur.head is not None
        page = await self.store.page(account_id, _INDEX[cur.stream], cur.last, cur.head, page_size)
        if page.more:
            nxt = _Cursor(cur.stream, cur.base, cur.head, page.last_rev)
            return PassPage(page.bodies, next_page_token=await self.store.put_token(
                account_id, nxt.encode(), self.page_ttl_s))
        if cur.stream == "list":
            return PassPage(page.bodies)
        if delta_token is not None and cur.head == cur.base:
            return PassPage(page.bodies, next_delta_token=delta_token)  # nothing happened: same token
        return PassPage(page.bodies, next_delta_token=await self.delta_token(account_id, cur.stream, cur.head))
