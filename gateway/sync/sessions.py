"""Device sync sessions with acknowledgements: a view over the change index, per device.

Per device: `acked` maps a contact to the highest revision the device acknowledged, `sent` to
the revision last sent to it, and a watermark W says every index entry up to W is settled
(acknowledged at its current revision, or owed nothing), so a session scans only above W.
A session fixes H (the head) at its start and queues the contacts whose latest revision is
in (W, H] and not acknowledged at that revision, in revision order: only the freshest version
of a contact, since the index holds one entry per contact. An acknowledgement names
(contact, revision), so an ack of an older revision never hides a newer change. What is not
acknowledged comes again in the next session. A device's first session carries the whole
address book. The device may hold a contact once it was sent or acknowledged: then its change
is "updated" (else "created") and its deletion is owed; a contact created and deleted unseen
is not reported. Acknowledging a deletion drops both marks: the device no longer holds the contact.

A device idle for longer than the tombstone retention still learns of every deletion: a contact
it may hold (it has a mark) that is no longer in the index at all had its tombstone compacted, so
its session serves that deletion first, with the account's tombstone floor as its revision (at
least the lost tombstone's, below any later change); an ack at or above the floor settles it.

Sessions live in Redis with an idle TTL; an account has at most `max_sessions` at once.
"""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.store.redis_store import Entry, RedisStore

SCAN = 1000


class TooManySessions(Exception):
    pass


class SessionNotFound(Exception):
    pass


@dataclass(slots=True)
class SessionInfo:
    id: str
    pages: int
    total: int


@dataclass(slots=True)
class QueuePage:
    items: list[dict[str, Any]]
    count_left: int


class DeviceSessions:
    def __init__(self, store: RedisStore, idle_ttl_s: int, max_sessions: int, page_size: int) -> None:
        self.store = store
        self.idle_ttl_s = idle_ttl_s
        self.max_sessions = max_sessions
        self.page_size = page_size

    async def _device_state(self, account_id: str, device: str) -> tuple[int, dict[str, int], dict[str, int]]:
        k = self.store.account(account_id)
        pipe = self.store.redis.pipeline(transaction=False)
        pipe.hget(k.device(device), "watermark")
        pipe.hgetall(k.device_acked(device))
        pipe.hgetall(k.device_sent(device))
        watermark, acked, sent = await pipe.execute()
        return (int(watermark or 0), {a.decode(): int(b) for a, b in acked.items()},
                {a.decode(): int(b) for a, b in sent.items()})

    @staticmethod
    def _owed(entry: Entry, acked: dict[str, int], sent: dict[str, int]) -> bool:
        if acked.get(entry.id, 0) >= entry.rev:
            return False
        return not entry.deleted or entry.id in acked or entry.id in sent

    async def _scan(self, account_id: str, lo: int, hi: int, bodies: bool, limit: int | None = None,
                    state: tuple[int, dict[str, int], dict[str, int]] | None = None) -> tuple[list[Entry], int]:
        """Owed entries in (lo, hi], at most `limit`; returns them and the last revision looked at."""
        _, acked, sent = state or (0, {}, {})
        owed: list[Entry] = []
        last, more = lo, True
        while more and (limit is None or len(owed) < limit):
            page = await self.store.merged(account_id, last, hi, SCAN if limit is None else limit - len(owed),
                                           bodies)
            owed += [e for e in page.entries if self._owed(e, acked, sent)]
            last, more = page.last_rev, page.more
        return owed, (hi if not more else last)

    async def _advance(self, account_id: str, device: str, watermark: int, head: int,
                       owed: list[Entry]) -> int:
        """Move the watermark up to just below the first owed change, and forget what no longer matters:
        sent marks below it (the ack covers them) and both marks of contacts whose deletion is settled.
        A contact with no index entry left keeps its marks: its deletion is owed (see `_orphans`)."""
        new = (owed[0].rev - 1) if owed else head
        if new <= watermark:
            return watermark
        k = self.store.account(account_id)
        _, acked, sent = await self._device_state(account_id, device)
        ids = sorted(set(acked) | set(sent))
        current = await self.store.scores(account_id, ids)
        dead = set(await self.store.dead_among(account_id, ids))
        gone = [cid for cid in ids if cid in dead and current[cid] <= new]
        settled_sent = [cid for cid in sent if cid in current and current[cid] <= new]
        pipe = self.store.redis.pipeline(transaction=True)
        pipe.hset(k.device(device), "watermark", new)
        if gone:
            pipe.hdel(k.device_acked(device), *gone)
        if gone or settled_sent:
            pipe.hdel(k.device_sent(device), *set(gone) | set(settled_sent))
        await pipe.execute()
        return new

    async def _orphans(self, account_id: str, acked: dict[str, int], sent: dict[str, int]) -> tuple[list[str], int]:
        """Contacts the device may hold whose tombstones were compacted, and the tombstone floor."""
        ids = sorted(set(acked) | set(sent))
        current = await self.store.scores(account_id, ids)
        orphans = [cid for cid in ids if cid not in current]
        floor = await self.store.tombstone_floor(account_id) if orphans else 0
        return orphans, floor

    async def start(self, account_id: str, device: str) -> SessionInfo | None:
        """A new session for the device, or None when it has nothing new."""
        k = self.store.account(account_id)
        now_ms = int(time.time() * 1000)
        await self.store.redis.zremrangebyscore(k.sessions, "-inf", now_ms)
        if await self.store.redis.zcard(k.sessions) >= self.max_sessions:
            raise TooManySessions
        head = await self.store.head(account_id)
        state = await self._device_state(account_id, device)
        orphans, floor = await self._orphans(account_id, state[1], state[2])
        owed, _ = await self._scan(account_id, state[0], head, bodies=False, state=state)
        watermark = await self._advance(account_id, device, state[0], head, owed)
        total = len(orphans) + len(owed)
        if not total:
            return None
        session_id = secrets.token_urlsafe(12)
        pipe = self.store.redis.pipeline(transaction=True)
        pipe.hset(k.session(session_id), mapping={"device": device, "watermark": watermark, "head": head,
                                                  "last": watermark, "total": total, "served": 0,
                                                  "orphans": orjson.dumps(orphans), "floor": floor})
        pipe.expire(k.session(session_id), self.idle_ttl_s)
        pipe.zadd(k.sessions, {session_id: now_ms + self.idle_ttl_s * 1000})
        await pipe.execute()
        return SessionInfo(session_id, math.ceil(total / self.page_size), total)

    async def next_page(self, account_id: str, device: str, session_id: str) -> QueuePage | None:
        """The next page of the session's queue, or None once it is drained."""
        k = self.store.account(account_id)
        raw = await self.store.redis.hgetall(k.session(session_id)) if len(session_id) <= 64 else {}
        session = {a.decode(): b.decode() for a, b in raw.items()}
        if not session or session["device"] != device:
            raise SessionNotFound
        state = await self._device_state(account_id, device)
        orphans: list[str] = orjson.loads(session.get("orphans", "[]"))
        floor = int(session.get("floor", "0"))
        gone, orphans = orphans[:self.page_size], orphans[self.page_size:]
        owed: list[Entry] = []
        last = int(session["last"])
        if len(gone) < self.page_size:
            owed, last = await self._scan(account_id, last, int(session["head"]), bodies=True,
                                          limit=self.page_size - len(gone),
                                          state=(int(session["watermark"]), *state[1:]))
        served = int(session["served"]) + len(gone) + len(owed)
        pipe = self.store.redis.pipeline(transaction=True)
        pipe.hset(k.session(session_id), mapping={"last": last, "served": served, "orphans": orjson.dumps(orphans)})
        pipe.expire(k.session(session_id), self.idle_ttl_s)
        pipe.zadd(k.sessions, {session_id: int(time.time() * 1000) + self.idle_ttl_s * 1000})
        if owed:
            pipe.hset(k.device_sent(device), mapping={e.id: e.rev for e in owed})
        await pipe.execute()
        if not gone and not owed:
            return None
        items = [self._deletion(cid, floor) for cid in gone] + [self._item(e, state[1], state[2]) for e in owed]
        return QueuePage(items, max(0, int(session["total"]) - served))

    @staticmethod
    def _deletion(contact_id: str, floor: int) -> dict[str, Any]:
        """The deletion of a contact whose tombstone was compacted (see the module docstring)."""
        sync = {"event_type": "deleted", "ack_key": f"{contact_id}.{floor}", "revision": floor}
        return {"data": {"id": contact_id}, "meta": {"type": "contact", "sync": sync}}

    @staticmethod
    def _item(entry: Entry, acked: dict[str, int], sent: dict[str, int]) -> dict[str, Any]:
        if entry.deleted:
            data: dict[str, Any] = {"id": entry.id}
            event = "deleted"
        else:
            data = orjson.loads(entry.body)
            event = "updated" if entry.id in acked or entry.id in sent else "created"
        sync = {"event_type": event, "ack_key": f"{entry.id}.{entry.rev}", "revision": entry.rev}
        return {"data": data, "meta": {"type": "contact", "sync": sync}}

    async def ack(self, account_id: str, device: str, keys: list[str]) -> None:
        """Acknowledge (contact, revision) pairs; an older revision never lowers a newer ack."""
        best: dict[str, int] = {}
        for key in keys:
            contact_id, _, rev = key.rpartition(".")
            if not contact_id or not (rev.isascii() and rev.isdigit()) or len(key) > 80:
                raise ValueError(key)
            best[contact_id] = max(best.get(contact_id, 0), int(rev))
        if not best:
            return
        await self.store.record_acks(account_id, device, best)
