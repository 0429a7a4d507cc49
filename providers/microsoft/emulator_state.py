"""State of the Microsoft Graph emulator: mailboxes, their folders, contacts and change logs, tokens, faults.

Kept apart from the HTTP layer so tests can drive it directly (move the clock, expire access tokens).
Every write takes the mailbox's next sequence number and is appended to its folder's log of (seq, id); a
delta page starts with a bisect and walks only what it returns, so delta-listing 10,000 contacts costs O(n)
in total, not O(n^2). Deleted contacts stay as tombstones (reported as `@removed` by later delta rounds).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import itertools
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from providers.control_kit import AuthCodes, Fault

__all__ = ["STATE", "ContactRecord", "EmulatorState", "Fault", "Folder", "Mailbox", "clean_contact"]

DEFAULT_CLIENT_ID = "00000000-0000-4000-8000-00000000c0de"
DEFAULT_CLIENT_SECRET = "emulator-secret"
DEFAULT_TENANT_ID = "11111111-2222-4333-8444-555555555555"
DEFAULT_DOMAIN = "contoso.test"
DEFAULT_FOLDER_NAME = "Contacts"

STRING_PROPS = frozenset({
    "assistantName", "birthday", "businessHomePage", "companyName", "department", "displayName", "fileAs",
    "generation", "givenName", "initials", "jobTitle", "manager", "middleName", "mobilePhone", "nickName",
    "officeLocation", "personalNotes", "profession", "spouseName", "surname", "title", "yomiCompanyName",
    "yomiGivenName", "yomiSurname"})
LIST_PROPS = frozenset({"businessPhones", "categories", "children", "emailAddresses", "homePhones", "imAddresses"})
ADDRESS_PROPS = frozenset({"businessAddress", "homeAddress", "otherAddress"})
ADDRESS_KEYS = frozenset({"street", "city", "state", "postalCode", "countryOrRegion"})
#: Properties a body may carry but the server owns; they are ignored on writes, as Graph does.
READ_ONLY = frozenset({"id", "changeKey", "parentFolderId", "createdDateTime", "lastModifiedDateTime"})
WRITABLE = STRING_PROPS | LIST_PROPS | ADDRESS_PROPS


def _default(prop: str) -> Any:
    return [] if prop in LIST_PROPS else {} if prop in ADDRESS_PROPS else None


def _check_value(prop: str, value: Any) -> Any:
    """The stored form of one property value; ValueError (the 400 message) when Graph would refuse it."""
    if value is None:
        return _default(prop)
    if prop in STRING_PROPS and isinstance(value, str):
        if prop == "birthday":
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"Cannot convert the literal '{value}' to the expected type "
                                 "'Edm.DateTimeOffset'.") from None
        return value
    if prop in LIST_PROPS and isinstance(value, list):
        wanted = dict if prop == "emailAddresses" else str
        if all(isinstance(v, wanted) for v in value):
            return value
    if prop in ADDRESS_PROPS and isinstance(value, dict) and set(value) <= ADDRESS_KEYS:
        return {k: v for k, v in value.items() if v is not None}
    raise ValueError(f"Invalid value for property '{prop}' of type 'microsoft.graph.contact'.")


def clean_contact(body: dict[str, Any]) -> dict[str, Any]:
    """The writable properties of a contact body; ValueError for an unknown property or a bad value."""
    out: dict[str, Any] = {}
    for prop, value in body.items():
        if prop.startswith("@odata.") or prop in READ_ONLY:
            continue
        if prop not in WRITABLE:
            raise ValueError(f"The property '{prop}' does not exist on type 'microsoft.graph.contact'. Make sure "
                             "to only use property names that are defined by the type.")
        out[prop] = _check_value(prop, value)
    return out


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def _unb64(token: str) -> Any:
    try:
        return orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        return None


def _graph_id(prefix: str, *parts: object) -> str:
    digest = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=30).digest()
    return prefix + base64.urlsafe_b64encode(digest).decode() + "AAA="


@dataclass(slots=True)
class ContactRecord:
    """One contact (or tombstone) as stored: its writable properties plus the server-owned ones."""

    contact_id: str
    folder_id: str
    fields: dict[str, Any]
    seq: int
    change_key: str
    created: str
    modified: str
    deleted: bool = False

    @property
    def etag(self) -> str:
        return f'W/"{self.change_key}"'

    def render(self, select: frozenset[str] | None = None) -> dict[str, Any]:
        """The contact JSON as Graph returns it; `select` is the $select set (None: every property)."""
        if self.deleted:
            return {"id": self.contact_id, "@removed": {"reason": "deleted"}}
        body = {"@odata.etag": self.etag, "id": self.contact_id, "createdDateTime": self.created,
                "lastModifiedDateTime": self.modified, "changeKey": self.change_key,
                "parentFolderId": self.folder_id}
        for prop in sorted(WRITABLE):
            body[prop] = self.fields.get(prop, _default(prop))
        if select is not None:
            body = {k: v for k, v in body.items() if k in select or k in ("@odata.etag", "id")}
        return body


@dataclass(slots=True)
class Folder:
    """A contact folder and its change log, ordered by sequence number."""

    folder_id: str
    name: str
    parent_id: str
    ids: set[str] = field(default_factory=set)  # every record (tombstones too) ever in this folder
    log_seq: list[int] = field(default_factory=list)
    log_id: list[str] = field(default_factory=list)

    def render(self) -> dict[str, Any]:
        return {"id": self.folder_id, "displayName": self.name, "parentFolderId": self.parent_id}


class Mailbox:
    """One user's contacts: the default folder, its subfolders, and every record by id."""

    def __init__(self, user: str, domain: str) -> None:
        self.user = user
        self.oid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"msgraph-emulator:{user}"))
        self.upn = user if "@" in user else f"{user}@{domain}"
        self.default = Folder(_graph_id("AQMkAD", user, "contacts"), DEFAULT_FOLDER_NAME, _graph_id("AQMkAD", user))
        self.folders: dict[str, Folder] = {self.default.folder_id: self.default}
        self.records: dict[str, ContactRecord] = {}
        self.seq = 0
        self.epoch = 0  # bumped by expire-cursors: older delta and skip tokens die

    def subfolders(self, parent: Folder | None = None) -> list[Folder]:
        """The child folders of `parent` (default: of the default folder)."""
        parent_id = (parent or self.default).folder_id
        return [f for f in self.folders.values() if f.parent_id == parent_id and f is not self.default]

    def folder_named(self, name: str, parent: Folder | None = None) -> Folder | None:
        """A child folder of `parent` by display name (case-insensitive, as Outlook compares them)."""
        return next((f for f in self.subfolders(parent) if f.name.casefold() == name.casefold()), None)

    def folder_at(self, path: str) -> Folder | None:
        """The folder at a "/"-joined path of names below the default folder."""
        folder: Folder | None = self.default
        for name in path.split("/"):
            folder = self.folder_named(name, folder) if folder is not None else None
        return folder

    def path_of(self, folder: Folder) -> str | None:
        """A folder's "/"-joined path below the default folder; None for the default folder itself."""
        names: list[str] = []
        while folder is not self.default:
            names.append(folder.name)
            folder = self.folders[folder.parent_id]
        return "/".join(reversed(names)) or None

    def get(self, contact_id: str) -> ContactRecord | None:
        record = self.records.get(contact_id)
        return None if record is None or record.deleted else record

    def write(self, contact_id: str, folder: Folder, fields: dict[str, Any], now: str, created: str | None = None,
              deleted: bool = False) -> ContactRecord:
        """Store a new state of a contact under the next sequence number, with a fresh changeKey."""
        self.seq += 1
        digest = hashlib.blake2b(f"{self.user}/{contact_id}/{self.seq}".encode(), digest_size=21).digest()
        record = ContactRecord(contact_id, folder.folder_id, fields, self.seq,
                               "EQAAABYAAAC" + base64.b64encode(digest).decode(), created or now, now, deleted)
        self.records[contact_id] = record
        folder.ids.add(contact_id)
        folder.log_seq.append(self.seq)
        folder.log_id.append(contact_id)
        if len(folder.log_seq) > 2 * len(folder.ids) + 64:
            live = sorted((self.records[i].seq, i) for i in folder.ids)
            folder.log_seq, folder.log_id = [s for s, _ in live], [i for _, i in live]
        return record

    def page(self, folder: Folder, after: int, limit: int, tombstones_after: int) -> tuple[list[ContactRecord], bool]:
        """Up to `limit` records of `folder` changed after seq `after`, in seq order, and whether more follow.

        Tombstones count only when deleted after `tombstones_after` (an initial round skips older ones).
        """
        out: list[ContactRecord] = []
        for i in range(bisect.bisect_right(folder.log_seq, after), len(folder.log_seq)):
            record = self.records[folder.log_id[i]]
            if record.seq != folder.log_seq[i] or (record.deleted and record.seq <= tombstones_after):
                continue
            if len(out) == limit:
                return out, True
            out.append(record)
        return out, False


@dataclass(slots=True)
class DeltaToken:
    """What a $skiptoken (kind "s") or $deltatoken (kind "d") stands for."""

    kind: str
    folder_id: str
    after: int
    tombstones_after: int
    select: list[str] | None


class EmulatorState:
    """Everything the emulator knows. Options:

    client_id / client_secret: the one app registration the token endpoint accepts.
    tenant_id / domain: the one tenant (client credentials need its id or domain in the authority path);
        users' UPNs are <user>@<domain>.
    access_token_lifetime_s: access tokens answer 401 after this (reported as expires_in).
    default_page_size / max_page_size: delta and list page sizes without a preference, and the server cap.
    clock: seconds since the epoch; tests pass a fake one to move time without sleeping.
    """

    def __init__(self, *, client_id: str = DEFAULT_CLIENT_ID, client_secret: str = DEFAULT_CLIENT_SECRET,
                 tenant_id: str = DEFAULT_TENANT_ID, domain: str = DEFAULT_DOMAIN,
                 access_token_lifetime_s: float = 3600.0, default_page_size: int = 10, max_page_size: int = 1000,
                 clock: Callable[[], float] = time.time) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.tenant_id, self.domain = tenant_id, domain
        self.access_token_lifetime_s = access_token_lifetime_s
        self.default_page_size, self.max_page_size = default_page_size, max_page_size
        self.clock = clock
        self.mailboxes: dict[str, Mailbox] = {}
        self.faults: list[Fault] = []
        self.access_tokens_issued = 0
        self._refresh_tokens: dict[str, str] = {}
        self._access_tokens: dict[str, tuple[str | None, float]] = {}  # token -> (user or None for app, expiry)
        self.codes = AuthCodes("M.C5-emu-")
        self._ids = itertools.count(1)

    # --- users, folders, contacts ---------------------------------------------------------------------
    def add_user(self, user: str) -> str:
        """Create the user's mailbox if needed; returns a new refresh token for the user."""
        self.mailboxes.setdefault(user, Mailbox(user, self.domain))
        return self.issue_refresh_token(user)

    def mailbox(self, key: str) -> Mailbox | None:
        """A mailbox by user name, object id or UPN (case-insensitive), as /users/{id} takes them."""
        if key in self.mailboxes:
            return self.mailboxes[key]
        folded = key.casefold()
        return next((m for m in self.mailboxes.values() if folded in (m.oid, m.upn.casefold())), None)

    def now_iso(self) -> str:
        return datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def add_folder(self, mailbox: Mailbox, name: str, parent: Folder | None = None) -> Folder:
        folder = Folder(_graph_id("AAMkAD", mailbox.user, "folder", next(self._ids)), name,
                        (parent or mailbox.default).folder_id)
        mailbox.folders[folder.folder_id] = folder
        return folder

    def folder_path(self, mailbox: Mailbox, path: str) -> Folder:
        """The folder at a "/"-joined path below the default folder, made level by level where missing."""
        folder = mailbox.default
        for name in path.split("/"):
            folder = mailbox.folder_named(name, folder) or self.add_folder(mailbox, name, folder)
        return folder

    def delete_folder(self, mailbox: Mailbox, folder: Folder) -> None:
        """Delete a subfolder, its child folders and every contact in them (their ids die with the folders'
        sync state), as Graph does."""
        for child in mailbox.subfolders(folder):
            self.delete_folder(mailbox, child)
        for contact_id in list(folder.ids):
            if mailbox.get(contact_id) is not None:
                self.delete(mailbox, contact_id)
        del mailbox.folders[folder.folder_id]

    def create(self, mailbox: Mailbox, folder: Folder, fields: dict[str, Any]) -> ContactRecord:
        contact_id = _graph_id("AAMkAD", mailbox.user, "contact", next(self._ids))
        return mailbox.write(contact_id, folder, fields, self.now_iso())

    def update(self, mailbox: Mailbox, contact_id: str, fields: dict[str, Any]) -> ContactRecord:
        """PATCH semantics: the given properties replace the stored ones, the others stay."""
        record = mailbox.records[contact_id]
        merged = {**record.fields, **fields}
        return mailbox.write(contact_id, mailbox.folders[record.folder_id], merged, self.now_iso(), record.created)

    def delete(self, mailbox: Mailbox, contact_id: str) -> None:
        record = mailbox.records[contact_id]
        mailbox.write(contact_id, mailbox.folders[record.folder_id], {}, self.now_iso(), record.created, deleted=True)

    # --- delta tokens ---------------------------------------------------------------------------------
    def delta_token(self, mailbox: Mailbox, token: DeltaToken) -> str:
        return _b64([token.kind, mailbox.user, mailbox.epoch, token.folder_id, token.after,
                     token.tombstones_after, token.select])

    def read_delta_token(self, mailbox: Mailbox, value: str, kind: str, folder: Folder) -> DeltaToken | None:
        """The token's meaning, or None when it is unreadable, foreign or evicted (the caller answers 410)."""
        data = _unb64(value)
        if not (isinstance(data, list) and len(data) == 7 and data[:3] == [kind, mailbox.user, mailbox.epoch]):
            return None
        _, _, _, folder_id, after, tombstones_after, select = data
        if folder_id != folder.folder_id or not isinstance(after, int) or not isinstance(tombstones_after, int):
            return None
        if after > mailbox.seq or not (select is None or isinstance(select, list)):
            return None
        return DeltaToken(kind, folder_id, after, tombstones_after, select)

    def expire_cursors(self, mailbox: Mailbox) -> None:
        mailbox.epoch += 1

    # --- OAuth ----------------------------------------------------------------------------------------
    def issue_refresh_token(self, user: str) -> str:
        token = "0.AXoA-emu-" + secrets.token_urlsafe(32)
        self._refresh_tokens[token] = user
        return token

    def user_of_refresh_token(self, token: str) -> str | None:
        """Refresh tokens stay valid after rotation, as at Entra (until revoked)."""
        return self._refresh_tokens.get(token)

    def revoke_refresh_tokens(self, user: str) -> None:
        self._refresh_tokens = {t: u for t, u in self._refresh_tokens.items() if u != user}

    def issue_access_token(self, user: str | None) -> str:
        """An access token for a user, or (user None) an app-only token for the tenant."""
        self.access_tokens_issued += 1
        token = "eyJ0eXAiOiJKV1QiLCJub25jZSI6" + secrets.token_urlsafe(32)
        self._access_tokens[token] = (user, self.clock() + self.access_token_lifetime_s)
        return token

    def principal_of(self, token: str) -> tuple[bool, str | None]:
        """(valid, user) for an access token; user None is an app-only token."""
        user, expires = self._access_tokens.get(token, (None, 0.0))
        return self.clock() < expires, user

    def expire_access_tokens(self) -> None:
        """Every access token issued so far answers 401 from now on (refresh tokens stay valid)."""
        self._access_tokens.clear()


#: Where an emulator application keeps its state.
STATE = web.AppKey("microsoft_emulator_state", EmulatorState)
