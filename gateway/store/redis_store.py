"""The only Store: one account's mirror, change index, tokens and locks in Redis.

Each multi-key step is one Lua script (see `lua/`), so a change takes its
revision, writes its record and moves its index entry atomically, and a page is
read in one round trip whatever its size.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import orjson
import redis.asyncio as aioredis

from gateway.store.keys import AccountKeys, Keys

Index = Literal["live", "dead"]


def _script(name: str) -> str:
    return resources.files("gateway.store").joinpath("lua", f"{name}.lua").read_text()


@dataclass(slots=True)
class PreparedChange:
    """A change ready for the apply script: content already hashed and rendered."""

    id: str
    kind: Literal["u", "d"]
    native_id: str
    native_version: str = ""
    hash: str = ""
    body_prefix: str = ""
    body_suffix: str = ""
    created_time: str = ""
    max_rev: int | None = None

    def as_list(self) -> list[str]:
        guard = "" if self.max_rev is None else str(self.max_rev)
        return [self.id, self.kind, self.hash, self.native_id, self.native_version,
                self.body_prefix, self.body_suffix, self.created_time, guard]


@dataclass(slots=True)
class Record:
    """A contact's mirror record: metadata plus the JSON the API serves."""

    id: str
    rev: int
    created_rev: int
    deleted: bool
    deleted_ms: int | None
    native_version: str
    native_id: str
    body: bytes

    @classmethod
    def parse(cls, contact_id: str, raw: bytes) -> Record:
        meta, _, body = raw.partition(b"\n")
        rev, crev, dead, dms, nver, nid = meta.decode().split("|", 5)
        return cls(contact_id, int(rev), int(crev), dead == "1", int(dms) if dms else None, nver, nid, body)

    @property
    def hash(self) -> str:
        """The content hash, which a live body carries as its etag ('' for a tombstone)."""
        start = self.body.find(b'"etag":"')
        if start < 0:
            return ""
        start += 8
        return self.body[start:self.body.index(b'"', start)].decode()


@dataclass(slots=True)
class Page:
    bodies: list[bytes]
    last_rev: int
    more: bool


@dataclass(slots=True)
class Entry:
    """One change-index entry with what a feed needs to classify it."""

    id: str
    rev: int
    created_rev: int
    deleted: bool
    body: bytes


@dataclass(slots=True)
class MergedPage:
    entries: list[Entry]
    last_rev: int
    more: bool


class RedisStore:
    """Mirror operations for the sync core; every key comes from `Keys`."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys
        self._apply = client.register_script(_script("apply"))
        self._page = client.register_script(_script("page"))
        self._compact = client.register_script(_script("compact"))
        self._merged = client.register_script(_script("merged"))
        self._ackmax = client.register_script(_script("ackmax"))
        self._unlock = client.register_script(_script("unlock"))

    def account(self, account_id: str) -> AccountKeys:
        return self.keys.account(account_id)

    # -- the mirror ------------------------------------------------------------

    async def apply(self, account_id: str, changes: list[PreparedChange], now_iso: str,
                    now_ms: int) -> list[int]:
        """Apply changes in one atomic step; per change the new revision, 0 unchanged, -1 guarded."""
        if not changes:
            return []
        k = self.account(account_id)
        batch = orjson.dumps([change.as_list() for change in changes])
        result = await self._apply(keys=[k.rev, k.records, k.live, k.dead, k.subscriptions, k.events],
                                   args=[now_iso, now_ms, batch])
        *revs, events = (int(r) for r in result)
        if events:
            # a hint for webhook workers; the stream entries themselves were written atomically above
            await self.redis.zadd(self.keys.dirty, {account_id: now_ms})
        return revs

    async def head(self, account_id: str) -> int:
        raw = await self.redis.get(self.account(account_id).rev)
        return int(raw) if raw else 0

    async def record(self, account_id: str, contact_id: str) -> Record | None:
        raw = await self.redis.hget(self.account(account_id).records, contact_id)
        return Record.parse(contact_id, raw) if raw is not None else None

    async def page(self, account_id: str, index: Index, lo: int, hi: int, limit: int) -> Page:
        """Served JSON of the index entries with lo < revision <= hi, in revision order."""
        k = self.account(account_id)
        key = k.live if index == "live" else k.dead
        out = await self._page(keys=[key, k.records], args=[lo, hi, limit])
        return Page(bodies=list(out[2:]), last_rev=int(float(out[1])), more=bool(int(out[0])))

    async def merged(self, account_id: str, lo: int, hi: int, limit: int, bodies: bool = True) -> MergedPage:
        """Live and deleted entries with lo < revision <= hi, in revision order: one feed of both kinds."""
        k = self.account(account_id)
        out = await self._merged(keys=[k.live, k.dead, k.records], args=[lo, hi, limit, "1" if bodies else "0"])
        flat = out[2:]
        entries = [Entry(flat[i].decode(), int(flat[i + 1]), int(flat[i + 2]), flat[i + 3] == b"1", flat[i + 4])
                   for i in range(0, len(flat), 5)]
        return MergedPage(entries, int(float(out[1])), bool(int(out[0])))

    async def scores(self, account_id: str, contact_ids: list[str]) -> dict[str, int]:
        """The current revision of each contact (live or deleted) still in the index."""
        if not contact_ids:
            return {}
        k = self.account(account_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.zmscore(k.live, contact_ids)
        pipe.zmscore(k.dead, contact_ids)
        live, dead = await pipe.execute()
        out: dict[str, int] = {}
        for cid, a, b in zip(contact_ids, live, dead, strict=True):
            if a is not None or b is not None:
                out[cid] = int(a if a is not None else b)
        return out

    async def dead_among(self, account_id: str, contact_ids: list[str]) -> list[str]:
        """Which of these contacts are tombstones."""
        if not contact_ids:
            return []
        scores = await self.redis.zmscore(self.account(account_id).dead, contact_ids)
        return [cid for cid, score in zip(contact_ids, scores, strict=True) if score is not None]

    async def record_acks(self, account_id: str, device: str, revisions: dict[str, int]) -> None:
        """A device's acknowledgements (contact -> revision), applied atomically: see lua/ackmax.lua."""
        k = self.account(account_id)
        args: list[str | int] = []
        for contact_id, rev in revisions.items():
            args += [contact_id, rev]
        if args:
            await self._ackmax(keys=[k.device_acked(device), k.device_sent(device), k.live, k.dead, k.state],
                               args=args)

    async def live_ids_upto(self, account_id: str, max_rev: int) -> list[str]:
        ids = await self.redis.zrangebyscore(self.account(account_id).live, "-inf", max_rev)
        return [i.decode() for i in ids]

    async def count(self, account_id: str, index: Index) -> int:
        k = self.account(account_id)
        return int(await self.redis.zcard(k.live if index == "live" else k.dead))

    async def compact(self, account_id: str, cutoff_ms: int, max_items: int = 1000) -> int:
        """Drop tombstones deleted before `cutoff_ms`; raises the account's tombstone floor."""
        k = self.account(account_id)
        return int(await self._compact(keys=[k.records, k.dead, k.state], args=[cutoff_ms, max_items]))

    # -- per-account state -------------------------------------------------------

    async def tombstone_floor(self, account_id: str) -> int:
        """The highest revision of a compacted tombstone: a reader that last saw less may have missed one."""
        return int(await self.redis.hget(self.account(account_id).state, "floor") or 0)

    async def state(self, account_id: str) -> dict[str, str]:
        raw = await self.redis.hgetall(self.account(account_id).state)
        return {key.decode(): value.decode() for key, value in raw.items()}

    async def set_state(self, account_id: str, **fields: str | int | float) -> None:
        await self.redis.hset(self.account(account_id).state, mapping=dict(fields))

    async def clear_state(self, account_id: str, *fields: str) -> None:
        await self.redis.hdel(self.account(account_id).state, *fields)

    # -- tokens ------------------------------------------------------------------

    async def put_token(self, account_id: str, value: str, ttl_s: int) -> str:
        token = secrets.token_urlsafe(18)
        await self.redis.set(self.account(account_id).token(token), value, ex=ttl_s)
        return token

    async def get_token(self, account_id: str, token: str) -> str | None:
        raw = await self.redis.get(self.account(account_id).token(token))
        return raw.decode() if raw is not None else None

    # -- locks -------------------------------------------------------------------

    async def try_lock(self, key: str, lease_s: float) -> str | None:
        holder = secrets.token_hex(8)
        ok = await self.redis.set(key, holder, nx=True, px=int(lease_s * 1000))
        return holder if ok else None

    async def extend_lock(self, key: str, holder: str, lease_s: float) -> bool:
        return bool(await self._unlock(keys=[key], args=[holder, int(lease_s * 1000)]))

    async def unlock(self, key: str, holder: str) -> None:
        await self._unlock(keys=[key], args=[holder, "0"])
