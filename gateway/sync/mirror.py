"""The mirror: turn provider contacts into atomic, revisioned changes.

A contact's id is derived from its provider id, so a relist after a cursor
expiry finds the same ids without a lookup table. Its ETag is the digest of its
normalized content: equal content means no change and no new revision (the
apply script compares digests), which is what keeps a full relist from
re-announcing an unchanged address book.
"""

from __future__ import annotations

import base64
import hashlib
import time
from datetime import UTC, datetime

from gateway.models import canonical_json, content_hash
from gateway.store.redis_store import PreparedChange, Record, RedisStore
from providers.base import RemoteContact


def contact_id_for(native_id: str) -> str:
    """A stable, URL-safe gateway id for a provider id: 96 bits of a BLAKE2 digest, 16 characters.

    (base64url, not base32: the standard library's base32 is pure Python, and this runs per pulled contact.)
    """
    digest = hashlib.blake2b(native_id.encode(), digest_size=12).digest()
    return base64.urlsafe_b64encode(digest).decode()


def now_iso(ts: float | None = None) -> str:
    moment = datetime.fromtimestamp(ts if ts is not None else time.time(), UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def prepare(remote: RemoteContact, max_rev: int | None = None, seen_at: str | None = None) -> PreparedChange:
    """Hash and render one provider contact for the apply script."""
    cid = contact_id_for(remote.native_id)
    version = remote.version or ""
    content = None if remote.deleted else remote.content
    if content is None:
        return PreparedChange(cid, "d", remote.native_id, version, max_rev=max_rev)
    canonical = canonical_json(content)
    digest = content_hash(canonical)
    stamp = seen_at or now_iso()
    inner = canonical[1:-1].decode()
    prefix = f'{{"id":"{cid}","etag":"{digest}"'
    modified = remote.modified_time or stamp
    suffix = (f",{inner}" if inner else "") + f',"lastModifiedTime":"{modified}"}}'
    return PreparedChange(cid, "u", remote.native_id, version, digest, prefix, suffix,
                          remote.created_time or stamp, max_rev)


def tombstone(record: Record, max_rev: int | None = None) -> PreparedChange:
    """A deletion of a mirror record (a relist no longer lists it)."""
    return PreparedChange(record.id, "d", record.native_id, record.native_version, max_rev=max_rev)


class Mirror:
    """Applies prepared changes to one store, in bounded batches."""

    def __init__(self, store: RedisStore, batch: int = 500) -> None:
        self.store = store
        self.batch = batch

    async def apply(self, account_id: str, changes: list[PreparedChange]) -> list[int]:
        """Apply in order; per change its new revision (0 unchanged, -1 skipped by its guard)."""
        out: list[int] = []
        ts = time.time()
        stamp, ms = now_iso(ts), int(ts * 1000)
        for start in range(0, len(changes), self.batch):
            out.extend(await self.store.apply(account_id, changes[start:start + self.batch], stamp, ms))
        return out

    async def apply_remote(self, account_id: str, remotes: list[RemoteContact]) -> list[int]:
        stamp = now_iso()
        return await self.apply(account_id, [prepare(r, seen_at=stamp) for r in remotes])
