"""State of the EWS emulator: mailboxes, their contact folders and items, sync states, faults, poison items.

Kept apart from the SOAP layer so tests can drive it directly. Per mailbox, every write takes the next
sequence number; each folder keeps a log of (seq, item id) in seq order, so SyncFolderItems starts a page
with a bisect and walks only what it returns: syncing 10,000 contacts costs O(n) in total, not O(n^2).
Deleted items stay as tombstones so an incremental sync can report them. A SyncState is an opaque base64
token naming (user, folder, epoch, seq); expire-cursors bumps the mailbox epoch, which voids them all.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import itertools
import re
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from aiohttp import web

from providers.exchange.mapping import EwsFields

ROOT = "root"
CONTACTS = "contacts"
DOMAIN = "exchange.emulator"


@dataclass(slots=True)
class ItemRecord:
    """One contact (or tombstone) as stored: neutral EWS fields plus the server-owned metadata."""

    item_id: str
    folder_id: str
    fields: EwsFields
    seq: int
    created_seq: int
    change_key: str
    created: str
    modified: str
    deleted: bool = False


@dataclass(slots=True)
class FolderRecord:
    """A folder of the mailbox; contact folders keep the change log SyncFolderItems walks."""

    folder_id: str
    name: str
    parent_id: str | None
    distinguished: str | None = None
    folder_class: str = "IPF.Contact"
    live: int = 0  # items that are not deleted
    size: int = 0  # items ever stored here, tombstones included: what a compacted log holds
    log_seq: list[int] = field(default_factory=list)
    log_id: list[str] = field(default_factory=list)

    @property
    def change_key(self) -> str:
        """Changes with the folder's name, as a rename changes a real folder's ChangeKey."""
        return "AQAAAA" + hashlib.blake2b(f"{self.folder_id}/{self.name}".encode(), digest_size=6).hexdigest()


@dataclass(slots=True)
class Change:
    kind: str  # "Create" | "Update" | "Delete"
    record: ItemRecord


class Mailbox:
    """One user's mailbox: root, the Contacts folder and its subfolders, items by id."""

    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user, password
        self.login = user if "@" in user else f"{user}@{DOMAIN}"  # exchangelib wants an email address
        self.items: dict[str, ItemRecord] = {}
        self.seq = 0
        self.epoch = 0
        self.poison: dict[str, str] = {}  # item id -> the EWS error GetItem answers for it
        self.root = FolderRecord(_id("F", user, ROOT), "root", None, ROOT, "IPF.Note")
        self.contacts = FolderRecord(_id("F", user, CONTACTS), "Contacts", self.root.folder_id, CONTACTS)
        self.folders: dict[str, FolderRecord] = {f.folder_id: f for f in (self.root, self.contacts)}

    def folder(self, ref: str) -> FolderRecord | None:
        """A folder by id or distinguished name."""
        if ref == ROOT:
            return self.root
        if ref == CONTACTS:
            return self.contacts
        return self.folders.get(ref)

    def subfolders(self, parent_id: str, deep: bool) -> list[FolderRecord]:
        direct = [f for f in self.folders.values() if f.parent_id == parent_id]
        if not deep:
            return direct
        return [g for f in direct for g in (f, *self.subfolders(f.folder_id, True))]

    def path_of(self, folder_id: str) -> str | None:
        """A folder's path of names below Contacts ("Work/Clients"); None for Contacts or a folder not below it."""
        names: list[str] = []
        folder = self.folders.get(folder_id)
        while folder is not None and folder.folder_id != self.contacts.folder_id and len(names) <= len(self.folders):
            names.append(folder.name)
            folder = self.folders.get(folder.parent_id) if folder.parent_id is not None else None
        return "/".join(reversed(names)) if folder is not None and names else None

    def folder_named(self, name: str, parent_id: str) -> FolderRecord | None:
        """A child folder by display name (case-insensitive, as Exchange compares them)."""
        return next((f for f in self.subfolders(parent_id, False) if f.name.casefold() == name.casefold()), None)

    def folder_at(self, path: str) -> FolderRecord:
        """The contacts folder at a path below Contacts (case-insensitive), made level by level where missing."""
        folder = self.contacts
        for name in path.split("/"):
            folder = self.folder_named(name, folder.folder_id) or self.add_folder(name, folder.folder_id)
        return folder

    def add_folder(self, name: str, parent_id: str) -> FolderRecord:
        folder = FolderRecord(_id("F", self.user, f"{parent_id}/{name}/{len(self.folders)}"), name, parent_id)
        self.folders[folder.folder_id] = folder
        return folder

    def delete_folder(self, folder_id: str) -> None:
        """Remove a folder, its subfolders and their items (no tombstones: the folder itself is gone)."""
        for folder in (self.folders[folder_id], *self.subfolders(folder_id, True)):
            del self.folders[folder.folder_id]
            for item_id in set(folder.log_id):
                self.items.pop(item_id, None)

    def get(self, item_id: str) -> ItemRecord | None:
        """The live item, or None when it does not exist or is deleted."""
        record = self.items.get(item_id)
        return None if record is None or record.deleted else record

    def write(self, item_id: str, folder_id: str, fields: EwsFields, now: str, deleted: bool = False) -> ItemRecord:
        """Store a new state of an item under the next sequence number, with a fresh ChangeKey."""
        self.seq += 1
        old = self.items.get(item_id)
        folder = self.folders[folder_id]
        folder.live += (0 if deleted else 1) - (1 if old is not None and not old.deleted else 0)
        folder.size += old is None
        digest = hashlib.blake2b(f"{item_id}/{self.seq}".encode(), digest_size=9).digest()
        record = ItemRecord(item_id, folder_id, fields, self.seq, old.created_seq if old else self.seq,
                            "CQAAABYA" + base64.b64encode(digest).decode(), old.created if old else now, now, deleted)
        self.items[item_id] = record
        folder.log_seq.append(self.seq)
        folder.log_id.append(item_id)
        if len(folder.log_seq) > 2 * folder.size + 64:  # superseded entries pile up: drop them
            live = sorted((r.seq, r.item_id) for r in self.items.values() if r.folder_id == folder_id)
            folder.log_seq, folder.log_id = [s for s, _ in live], [i for _, i in live]
        return record

    def changes(self, folder: FolderRecord, after: int, limit: int) -> tuple[list[Change], int, bool]:
        """Up to `limit` changes of `folder` after seq `after`, the seq they reach, and whether more follow.

        An item created after `after` is a Create (skipped when it is already deleted again), a later change
        of an older item an Update, a deletion of an older item a Delete. A first sync (after 0) is every
        live item as a Create.
        """
        out: list[Change] = []
        reached = after
        for i in range(bisect.bisect_right(folder.log_seq, after), len(folder.log_seq)):
            record = self.items.get(folder.log_id[i])
            if record is None or record.seq != folder.log_seq[i]:
                continue  # superseded by a later change
            if record.deleted and record.created_seq > after:
                continue
            if len(out) == limit:
                return out, reached, True
            kind = "Delete" if record.deleted else "Create" if record.created_seq > after else "Update"
            out.append(Change(kind, record))
            reached = record.seq
        return out, self.seq, False


@dataclass(slots=True)
class Fault:
    """An injected failure: the next `times` matching requests wait `delay_ms`, then fail so (if `status` or
    `code`). `user` and `operation` narrow the match, as every EWS request shares one path."""

    pattern: re.Pattern[str]
    status: int | None
    times: int
    delay_ms: int = 0
    retry_after: float | None = None
    user: str | None = None
    operation: str | None = None
    code: str | None = None

    def matches(self, path: str, user: str | None, operation: str | None) -> bool:
        return bool(self.pattern.search(path)) and self.user in (None, user) and self.operation in (None, operation)


def _id(prefix: str, *parts: str) -> str:
    digest = hashlib.blake2b("/".join(parts).encode(), digest_size=30).digest()
    return f"AAMk{prefix}" + base64.urlsafe_b64encode(digest).decode()


class EmulatorState:
    """Everything the emulator knows. Options:

    clock: seconds since the epoch, for item times (tests may pass a fake one).
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.mailboxes: dict[str, Mailbox] = {}
        self.faults: list[Fault] = []
        self.requests = 0
        self.log: deque[tuple[str | None, str]] = deque(maxlen=10_000)  # (claimed user, operation), newest last
        self._tokens: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._states = itertools.count(1)

    # --- users and items ------------------------------------------------------------------------------
    def add_user(self, user: str) -> str:
        """Create the mailbox if needed; returns its password."""
        if user not in self.mailboxes:
            self.mailboxes[user] = Mailbox(user, "pw-" + secrets.token_urlsafe(12))
        return self.mailboxes[user].password

    def issue_access_token(self, user: str) -> str:
        """A Bearer token for the mailbox (what an OAuth client would have obtained elsewhere)."""
        token = "eyJ0eXAiOiJKV1Qi." + secrets.token_urlsafe(24)
        self._tokens[token] = user
        return token

    def user_of_token(self, token: str) -> str | None:
        return self._tokens.get(token)

    def user_of_login(self, login: str) -> str | None:
        """The mailbox a Basic-auth login names: its user name or its email address."""
        if login in self.mailboxes:
            return login
        name = login.removesuffix(f"@{DOMAIN}")
        return name if name in self.mailboxes and self.mailboxes[name].login == login else None

    def revoke_tokens(self) -> None:
        self._tokens.clear()

    def now_iso(self) -> str:
        return datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def create(self, user: str, fields: EwsFields, folder_id: str | None = None) -> ItemRecord:
        box = self.mailboxes[user]
        item_id = _id("I", user, str(next(self._ids)), secrets.token_hex(4))
        return box.write(item_id, folder_id or box.contacts.folder_id, fields, self.now_iso())

    def update(self, user: str, item_id: str, fields: EwsFields) -> ItemRecord:
        box = self.mailboxes[user]
        return box.write(item_id, box.items[item_id].folder_id, fields, self.now_iso())

    def delete(self, user: str, item_id: str) -> None:
        box = self.mailboxes[user]
        box.write(item_id, box.items[item_id].folder_id, {}, self.now_iso(), deleted=True)
        box.poison.pop(item_id, None)

    # --- sync states ----------------------------------------------------------------------------------
    def sync_state(self, user: str, folder_id: str, seq: int) -> str:
        """A new opaque SyncState (a fresh token on every page, as exchangelib expects)."""
        box = self.mailboxes[user]
        raw = orjson.dumps([user, folder_id, box.epoch, seq, next(self._states)])
        return base64.b64encode(raw).decode()

    def read_sync_state(self, user: str, folder_id: str, token: str) -> int | None:
        """The seq a SyncState stands for, or None when it is corrupt, foreign or expired."""
        try:
            value = orjson.loads(base64.b64decode(token, validate=True))
        except (binascii.Error, ValueError):
            return None
        box = self.mailboxes[user]
        if not (isinstance(value, list) and len(value) == 5 and value[:3] == [user, folder_id, box.epoch]):
            return None
        seq = value[3]
        return seq if isinstance(seq, int) and 0 <= seq <= box.seq else None

    def expire_cursors(self, user: str) -> None:
        self.mailboxes[user].epoch += 1

    # --- faults ---------------------------------------------------------------------------------------
    def take_fault(self, path: str, user: str | None, operation: str | None) -> Fault | None:
        """The first fault matching the request, consuming one of its `times`."""
        for fault in self.faults:
            if fault.matches(path, user, operation):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None


#: Where an emulator application keeps its state.
STATE = web.AppKey("exchange_emulator_state", EmulatorState)
