"""State of the Google People emulator: users, their contacts and change logs, OAuth tokens, faults.

Kept apart from the HTTP layer so tests can drive it directly (advance the clock, expire access tokens).
Per user, contacts live in a dict and every write takes the user's next sequence number. A log of
(seq, id) pairs in seq order lets a page start with a bisect and walk only what it returns, so listing
10,000 contacts costs O(n) in total, not O(n^2). Deleted contacts stay as tombstones, as at Google.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from providers.control_kit import AuthCodes, Fault
from providers.google.mapping import GROUP_PREFIX

DEFAULT_CLIENT_ID = "contacts-gateway-emulator.apps.googleusercontent.com"
DEFAULT_CLIENT_SECRET = "emulator-secret"
CONTACTS_SCOPE = "https://www.googleapis.com/auth/contacts"

#: Person fields updateContact may name (the discovery document's list).
UPDATABLE_FIELDS: frozenset[str] = frozenset({
    "addresses", "biographies", "birthdays", "calendarUrls", "clientData", "emailAddresses", "events",
    "externalIds", "genders", "imClients", "interests", "locales", "locations", "memberships",
    "miscKeywords", "names", "nicknames", "occupations", "organizations", "phoneNumbers", "relations",
    "sipAddresses", "urls", "userDefined",
})
#: Person fields personFields may name.
READABLE_FIELDS: frozenset[str] = UPDATABLE_FIELDS | {"ageRanges", "coverPhotos", "metadata", "photos", "skills"}
#: Contact-source fields Google holds at most once.
SINGLETON_FIELDS: tuple[str, ...] = ("names", "birthdays", "biographies", "genders")


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def _unb64(token: str) -> Any:
    """The value `_b64` encoded, or None for anything that is not such a token."""
    try:
        return orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        return None


def clean_person(body: dict[str, Any]) -> dict[str, Any]:
    """The storable fields of a Person body, with Google's membership defaults filled in."""
    fields = {k: v for k, v in body.items() if k in UPDATABLE_FIELDS and v not in (None, [], {})}
    memberships = []
    for m in fields.get("memberships") or [{"contactGroupMembership": {
            "contactGroupResourceName": GROUP_PREFIX + "myContacts"}}]:
        cgm = dict(m.get("contactGroupMembership") or {}) if isinstance(m, dict) else {}
        name = cgm.get("contactGroupResourceName") or f"{GROUP_PREFIX}{cgm.get('contactGroupId', '')}"
        cgm.update(contactGroupResourceName=name, contactGroupId=name.removeprefix(GROUP_PREFIX))
        memberships.append({"contactGroupMembership": cgm})
    fields["memberships"] = memberships
    return fields


@dataclass(slots=True)
class PersonRecord:
    """One contact (or tombstone) as stored: its Person fields plus the server-owned metadata."""

    person_id: str
    fields: dict[str, Any]
    seq: int
    etag: str
    source_etag: str
    update_time: str
    deleted: bool = False

    @property
    def resource_name(self) -> str:
        return f"people/{self.person_id}"

    def render(self, wanted: frozenset[str] | None = None) -> dict[str, Any]:
        """The Person JSON; `wanted` is the personFields mask (None: every field)."""
        person: dict[str, Any] = {"resourceName": self.resource_name, "etag": self.etag}
        if self.deleted or wanted is None or "metadata" in wanted:
            source = {"type": "CONTACT", "id": self.person_id[1:17], "etag": self.source_etag,
                      "updateTime": self.update_time}
            person["metadata"] = {"sources": [source], "objectType": "PERSON"}
            if self.deleted:
                person["metadata"]["deleted"] = True
                return person
        for key, value in self.fields.items():
            if wanted is None or key in wanted:
                person[key] = value
        return person


#: The system contact groups every Google account has (resource id = name), with their display names.
SYSTEM_GROUPS: dict[str, str] = {
    "myContacts": "My Contacts", "starred": "Starred", "friends": "Friends", "family": "Family",
    "coworkers": "Coworkers", "chatBuddies": "Chat contacts", "all": "All Contacts", "blocked": "Blocked",
}


class Book:
    """One user's address book: records by id, the change log ordered by sequence number, contact groups."""

    def __init__(self, user: str) -> None:
        self.user = user
        self.records: dict[str, PersonRecord] = {}
        #: contact group resource name -> its name; user groups get opaque hex ids, as at Google
        self.groups: dict[str, str] = {GROUP_PREFIX + g: g for g in SYSTEM_GROUPS}
        self.seq = 0
        self.epoch = 0  # bumped by expire-cursors: older sync tokens die
        self.live = 0
        self._log_seq: list[int] = []
        self._log_id: list[str] = []

    def write(self, person_id: str, fields: dict[str, Any], update_time: str,
              deleted: bool = False) -> PersonRecord:
        """Store a new state of a contact under the next sequence number, with fresh etags."""
        self.seq += 1
        digest = hashlib.blake2b(f"{self.user}/{person_id}/{self.seq}".encode(), digest_size=18).digest()
        old = self.records.get(person_id)
        self.live += (0 if deleted else 1) - (1 if old is not None and not old.deleted else 0)
        record = PersonRecord(person_id, fields, self.seq, "%" + base64.b64encode(digest).decode(),
                              "#" + digest[:9].hex(), update_time, deleted)
        self.records[person_id] = record
        self._log_seq.append(self.seq)
        self._log_id.append(person_id)
        if len(self._log_seq) > 2 * len(self.records) + 64:
            self._compact()
        return record

    def group_named(self, name: str) -> str | None:
        """The resource name of the contact group called `name`, if there is one."""
        return next((resource for resource, n in self.groups.items() if n == name), None)

    def add_group(self, name: str) -> str:
        """A new user contact group; its resource name."""
        digest = hashlib.blake2b(f"{self.user}/group/{name}/{len(self.groups)}".encode(), digest_size=8)
        resource = GROUP_PREFIX + digest.hexdigest()
        self.groups[resource] = name
        return resource

    def is_system_group(self, resource: str) -> bool:
        return resource.removeprefix(GROUP_PREFIX) in SYSTEM_GROUPS

    def render_group(self, resource: str) -> dict[str, Any]:
        """A ContactGroup as contactGroups.list, .create and .update return it (its etag changes on rename)."""
        name = self.groups[resource]
        system = self.is_system_group(resource)
        etag = "#" + hashlib.blake2b(f"{resource}/{name}".encode(), digest_size=6).hexdigest()
        return {"resourceName": resource, "etag": etag,
                "groupType": "SYSTEM_CONTACT_GROUP" if system else "USER_CONTACT_GROUP", "name": name,
                "formattedName": SYSTEM_GROUPS[name] if system else name}

    def get(self, person_id: str) -> PersonRecord | None:
        """The live contact, or None when it does not exist or is deleted."""
        record = self.records.get(person_id)
        return None if record is None or record.deleted else record

    def _compact(self) -> None:
        """Drop superseded log entries (a contact's older sequence numbers)."""
        live = sorted((r.seq, r.person_id) for r in self.records.values())
        self._log_seq = [seq for seq, _ in live]
        self._log_id = [pid for _, pid in live]

    def page(self, after: int, limit: int, tombstones_after: int) -> tuple[list[PersonRecord], bool]:
        """Up to `limit` records changed after seq `after`, in seq order, and whether more follow.

        Tombstones count only when deleted after `tombstones_after` (a full listing skips older ones).
        """
        out: list[PersonRecord] = []
        for i in range(bisect.bisect_right(self._log_seq, after), len(self._log_seq)):
            record = self.records[self._log_id[i]]
            if record.seq != self._log_seq[i] or (record.deleted and record.seq <= tombstones_after):
                continue
            if len(out) == limit:
                return out, True
            out.append(record)
        return out, False


class EmulatorState:
    """Everything the emulator knows. Options:

    client_id / client_secret: the one OAuth client the token endpoint accepts.
    access_token_lifetime_s: access tokens answer 401 after this (reported as expires_in).
    sync_token_max_age_s: sync tokens older than this are expired (Google: 7 days).
    clock: seconds since the epoch; tests pass a fake one to move time without sleeping.
    """

    def __init__(self, *, client_id: str = DEFAULT_CLIENT_ID, client_secret: str = DEFAULT_CLIENT_SECRET,
                 access_token_lifetime_s: float = 3600.0, sync_token_max_age_s: float = 7 * 86400.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.access_token_lifetime_s = access_token_lifetime_s
        self.sync_token_max_age_s = sync_token_max_age_s
        self.clock = clock
        self.books: dict[str, Book] = {}
        self.faults: list[Fault] = []
        self.access_tokens_issued = 0
        self._refresh_tokens: dict[str, str] = {}
        self._access_tokens: dict[str, tuple[str, float]] = {}
        self.codes = AuthCodes("4/emu-")
        self._ids = itertools.count(1)

    # --- users and contacts ---------------------------------------------------------------------------
    def add_user(self, user: str) -> str:
        """Create the user's book if needed; returns a new refresh token for the user."""
        self.books.setdefault(user, Book(user))
        token = "1//emu-" + secrets.token_urlsafe(24)
        self._refresh_tokens[token] = user
        return token

    def now_iso(self) -> str:
        return datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def create(self, user: str, body: dict[str, Any]) -> PersonRecord:
        person_id = f"c{7311862046327800000 + next(self._ids)}"
        return self.books[user].write(person_id, clean_person(body), self.now_iso())

    def update(self, user: str, person_id: str, body: dict[str, Any], mask: set[str]) -> PersonRecord:
        """Replace the fields named in `mask` with the body's (absent means cleared)."""
        book = self.books[user]
        fields = dict(book.records[person_id].fields)
        for key in mask:
            fields.pop(key, None)
        fields.update({k: v for k, v in body.items() if k in mask})
        return book.write(person_id, clean_person(fields), self.now_iso())

    def delete(self, user: str, person_id: str) -> None:
        self.books[user].write(person_id, {}, self.now_iso(), deleted=True)

    # --- sync and page tokens -------------------------------------------------------------------------
    def sync_token(self, user: str) -> str:
        book = self.books[user]
        return _b64(["s", user, book.epoch, book.seq, self.clock()])

    def sync_seq(self, user: str, token: str) -> int | None:
        """The sequence number a sync token stands for, or None when it is unknown or expired."""
        value = _unb64(token)
        if not (isinstance(value, list) and len(value) == 5 and value[:2] == ["s", user]):
            return None
        _, _, epoch, seq, issued = value
        book = self.books[user]
        if epoch != book.epoch or not isinstance(seq, int) or seq > book.seq:
            return None
        return seq if self.clock() - issued <= self.sync_token_max_age_s else None

    def expire_cursors(self, user: str) -> None:
        self.books[user].epoch += 1

    @staticmethod
    def page_token(kind: str, after: int, base: int) -> str:
        return _b64(["p", kind, after, base])

    @staticmethod
    def read_page_token(token: str, kind: str) -> tuple[int, int] | None:
        """(after, base) of a page token of this kind of listing, or None when it is not one."""
        value = _unb64(token)
        if isinstance(value, list) and len(value) == 4 and value[:2] == ["p", kind]:
            if all(isinstance(v, int) for v in value[2:]):
                return value[2], value[3]
        return None

    # --- OAuth ----------------------------------------------------------------------------------------
    def user_of_refresh_token(self, token: str) -> str | None:
        return self._refresh_tokens.get(token)

    def issue_access_token(self, user: str) -> str:
        self.access_tokens_issued += 1
        token = "ya29.emu-" + secrets.token_urlsafe(24)
        self._access_tokens[token] = (user, self.clock() + self.access_token_lifetime_s)
        return token

    def user_of_access_token(self, token: str) -> str | None:
        """The user a live access token belongs to; None when unknown or expired."""
        user, expires = self._access_tokens.get(token, (None, 0.0))
        return user if user is not None and self.clock() < expires else None

    def expire_access_tokens(self) -> None:
        """Every access token issued so far answers 401 from now on (refresh tokens stay valid)."""
        self._access_tokens.clear()

    def revoke(self, token: str) -> bool:
        """Revoke a refresh or access token; False when it was not known."""
        return (self._refresh_tokens.pop(token, None) or self._access_tokens.pop(token, None)) is not None


#: Where an emulator application keeps its state.
STATE = web.AppKey("google_emulator_state", EmulatorState)
