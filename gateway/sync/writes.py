"""Writes through the gateway: provider first, then the mirror at once (read-your-writes).

Two version checks guard a write. The client's If-Match is compared with the
mirror's ETag; then the provider gets the native version the mirror holds, so a
change made at the provider that the mirror has not pulled yet is caught too.
A provider conflict refreshes that one contact in the mirror and becomes 412.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from gateway.config import SyncSettings
from gateway.errors import ApiError, not_found, precondition_failed, provider_unavailable, reauth_required
from gateway.models import WRITABLE_FIELDS, ContactInput
from gateway.store.redis_store import Record, RedisStore
from gateway.sync.connectors import ConnectorPool
from gateway.sync.locks import account_mutex
from gateway.sync.mirror import Mirror, contact_id_for
from gateway.sync.retry import RetryPolicy
from providers.base import AuthFailed, Conflict, NotFound, RemoteContact, Throttled, Unavailable

_SERVER_FIELDS = ("id", "etag", "createdTime", "lastModifiedTime")


def validation_error(exc: ValidationError) -> ApiError:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "body"
    return ApiError(400, "validation_error", f"Invalid field '{field}': {first['msg']}.", field=field)


def parse_contact(raw: Any) -> ContactInput:
    if not isinstance(raw, dict):
        raise ApiError(400, "validation_error", "The body must be a JSON object (a Contact).", field="body")
    try:
        return ContactInput.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc) from None


def content_from_body(body: bytes) -> dict[str, Any]:
    """The writable content of a served contact JSON."""
    data: dict[str, Any] = orjson.loads(body)
    return {k: v for k, v in data.items() if k not in _SERVER_FIELDS}


def etag_matches(header: str, etag: str) -> bool:
    """If-Match: '*', or any listed tag, quoted or not, weak prefix ignored."""
    for part in header.split(","):
        tag = part.strip().removeprefix("W/").strip('"')
        if tag == "*" or tag == etag:
            return True
    return False


class Writer:
    def __init__(self, store: RedisStore, mirror: Mirror, connectors: ConnectorPool, settings: SyncSettings,
                 policy: RetryPolicy) -> None:
        self.store = store
        self.mirror = mirror
        self.connectors = connectors
        self.settings = settings
        self.policy = policy

    async def live_record(self, account_id: str, contact_id: str) -> Record:
        record = await self.store.record(account_id, contact_id)
        if record is None or record.deleted:
            raise not_found("No contact with this id.")
        return record

    async def _provider(self, call: Any) -> Any:
        try:
            return await self.policy.call(call)
        except (Throttled, Unavailable) as exc:
            raise provider_unavailable(exc.retry_after, str(exc)) from None
        except AuthFailed:
            raise reauth_required() from None

    def _mutex(self, account_id: str) -> Any:
        key = self.store.account(account_id).write_lock
        return account_mutex(self.store, key, self.settings.lock_ttl_s, self.settings.lock_ttl_s)

    async def _applied(self, account_id: str, remote: RemoteContact) -> Record:
        await self.mirror.apply_remote(account_id, [remote])
        return await self.live_record(account_id, contact_id_for(remote.native_id))

    async def create(self, account_id: str, contact: ContactInput) -> Record:
        connector = await self.connectors.get(account_id)
        async with self._mutex(account_id):
            remote = await self._provider(lambda: connector.create(contact))
            return await self._applied(account_id, remote)

    async def update(self, account_id: str, contact_id: str, if_match: str, patch: dict[str, Any]) -> Record:
        """PATCH: top-level fields present replace the field, null clears it, absent ones stay."""
        unknown = sorted(set(patch) - WRITABLE_FIELDS)
        if unknown:
            raise ApiError(400, "validation_error", f"Unknown or read-only field '{unknown[0]}'.", field=unknown[0])
        parse_contact(patch)  # the patch alone must be valid: errors name the client's own field
        connector = await self.connectors.get(account_id)
        async with self._mutex(account_id):
            record = await self.live_record(account_id, contact_id)
            if not etag_matches(if_match, record.hash):
                raise precondition_failed(record.hash)
            merged = parse_contact({**content_from_body(record.body), **patch})
            try:
                remote = await self._provider(
                    lambda: connector.update(record.native_id, merged, record.native_version or None))
            except Conflict:
                current = await self._refetch(account_id, record)
                raise precondition_failed(current.hash if current else None) from None
            except NotFound:
                await self.mirror.apply_remote(account_id, [RemoteContact(record.native_id, deleted=True)])
                raise not_found("The contact was deleted at the provider.") from None
            return await self._applied(account_id, remote)

    async def delete(self, account_id: str, contact_id: str, if_match: str | None) -> None:
        connector = await self.connectors.get(account_id)
        async with self._mutex(account_id):
            record = await self.live_record(account_id, contact_id)
            if if_match is not None and not etag_matches(if_match, record.hash):
                raise precondition_failed(record.hash)
            native_version = record.native_version or None if if_match is not None else None
            try:
                await self._provider(lambda: connector.delete(record.native_id, native_version))
            except Conflict:
                current = await self._refetch(account_id, record)
                raise precondition_failed(current.hash if current else None) from None
            except NotFound:
                pass  # already gone at the provider: the mirror catches up below
            await self.mirror.apply_remote(account_id, [RemoteContact(record.native_id, deleted=True)])

    async def _refetch(self, account_id: str, record: Record) -> Record | None:
        """The provider's current version of one contact, applied to the mirror."""
        connector = await self.connectors.get(account_id)
        try:
            remote = await self._provider(lambda: connector.get(record.native_id))
        except NotFound:
            remote = RemoteContact(record.native_id, deleted=True)
        await self.mirror.apply_remote(account_id, [remote])
        found = await self.store.record(account_id, record.id)
        return found if found is not None and not found.deleted else None
