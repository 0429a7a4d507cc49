"""A provider held in memory, behind the real Connector interface, for tests and benchmarks.

`FakeProvider` is the provider's truth (what a control API would change);
`FakeConnector` is how the gateway sees it: incremental cursors over a change
log, pages of a fixed size, native versions checked on writes, cursors that can
be expired and faults that can be injected.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.models import ContactInput
from providers import ProviderFactory
from providers.base import (
    AuthFailed,
    ChangePage,
    Conflict,
    Connector,
    CursorExpired,
    NotFound,
    RemoteContact,
    Unavailable,
)


@dataclass
class FakeProvider:
    page_size: int = 50
    contacts: dict[str, tuple[str, ContactInput]] = field(default_factory=dict)
    log: list[tuple[int, str]] = field(default_factory=list)  # (seq, native id) per change
    deleted: set[str] = field(default_factory=set)
    seq: int = 0
    epoch: int = 0  # bumping it expires every cursor
    fail_next: list[Exception] = field(default_factory=list)
    #: awaited inside list_changes after the page is read: "meanwhile" actions for race tests
    during_list: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def _touch(self, native_id: str) -> None:
        self.seq += 1
        self.log.append((self.seq, native_id))

    def create(self, contact: ContactInput) -> str:
        native_id = f"n{next(self._ids)}"
        self.contacts[native_id] = (f"v{self.seq + 1}", contact)
        self._touch(native_id)
        return native_id

    def update(self, native_id: str, contact: ContactInput) -> None:
        self.contacts[native_id] = (f"v{self.seq + 1}", contact)
        self._touch(native_id)

    def delete(self, native_id: str) -> None:
        del self.contacts[native_id]
        self.deleted.add(native_id)
        self._touch(native_id)

    def expire_cursors(self) -> None:
        self.epoch += 1

    def remote(self, native_id: str) -> RemoteContact:
        if native_id not in self.contacts:
            return RemoteContact(native_id, deleted=True)
        version, contact = self.contacts[native_id]
        return RemoteContact(native_id, version, contact)


class FakeConnector(Connector):
    """Cursor format: 'epoch:seq' (delta) or 'epoch:full:offset:snapshot_seq' (a full listing's page)."""

    def __init__(self, provider: FakeProvider) -> None:
        self.p = provider

    def _maybe_fail(self) -> None:
        if self.p.fail_next:
            raise self.p.fail_next.pop(0)

    async def list_changes(self, cursor: str | None) -> ChangePage:
        self._maybe_fail()
        p = self.p
        if cursor is None:
            cursor = f"{p.epoch}:full:0:{p.seq}"
        parts = cursor.split(":")
        if int(parts[0]) != p.epoch:
            raise CursorExpired("cursor expired")
        if parts[1] == "full":
            offset, snap = int(parts[2]), int(parts[3])
            ids = sorted(p.contacts)[offset:offset + p.page_size]
            more = offset + p.page_size < len(p.contacts)
            nxt = f"{p.epoch}:full:{offset + p.page_size}:{snap}" if more else f"{p.epoch}:{snap}"
            page = ChangePage([p.remote(i) for i in ids], nxt, more)
        else:
            since = int(parts[1])
            window = [nid for s, nid in p.log if s > since][: p.page_size]
            upto = since + len(window)  # log entries have consecutive seqs
            more = any(s > upto for s, _ in p.log[-1:])
            page = ChangePage([p.remote(i) for i in window], f"{p.epoch}:{upto}", more)
        while p.during_list:
            await p.during_list.pop(0)()
        return page

    async def get(self, native_id: str) -> RemoteContact:
        self._maybe_fail()
        if native_id not in self.p.contacts:
            raise NotFound(native_id)
        return self.p.remote(native_id)

    async def create(self, contact: ContactInput) -> RemoteContact:
        self._maybe_fail()
        return self.p.remote(self.p.create(contact))

    def _check(self, native_id: str, if_match: str | None) -> None:
        if native_id not in self.p.contacts:
            raise NotFound(native_id)
        current = self.p.contacts[native_id][0]
        if if_match is not None and if_match != current:
            raise Conflict("stale version", current_version=current)

    async def update(self, native_id: str, contact: ContactInput, if_match: str | None) -> RemoteContact:
        self._maybe_fail()
        self._check(native_id, if_match)
        self.p.update(native_id, contact)
        return self.p.remote(native_id)

    async def delete(self, native_id: str, if_match: str | None) -> None:
        self._maybe_fail()
        self._check(native_id, if_match)
        self.p.delete(native_id)


@dataclass
class FakeRegistry:
    """Provider mailboxes by name: credentials {"mailbox": name} select one."""

    mailboxes: dict[str, FakeProvider] = field(default_factory=dict)

    def mailbox(self, name: str, page_size: int = 50) -> FakeProvider:
        return self.mailboxes.setdefault(name, FakeProvider(page_size=page_size))

    def factory(self) -> ProviderFactory:
        def parse(raw: dict[str, Any]) -> dict[str, Any]:
            name = raw.get("mailbox")
            if not isinstance(name, str) or not name:
                raise ValueError("credentials.mailbox must be a non-empty string")
            if raw.get("revoked"):
                raise ValueError("these credentials were revoked")
            return {"mailbox": name}

        def connect(creds: dict[str, Any]) -> Connector:
            return FakeConnector(self.mailbox(creds["mailbox"]))

        return ProviderFactory(parse, connect)


__all__ = ["AuthFailed", "FakeConnector", "FakeProvider", "FakeRegistry", "Unavailable"]
