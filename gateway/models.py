"""The unified Contact: one Aurinko-shaped schema for every provider.

`ContactInput` is what clients send (POST, and the merged result of a PATCH):
unknown top-level fields are rejected and every string and list is bounded, so a
bad request fails here, before it reaches a provider or the store.
`Contact` adds the server-owned fields (`id`, `etag`, times) for responses.

`content_of()` is the normalized content the mirror hashes: two contacts with the
same content are the same contact, whatever their times or ids.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

#: The one type vocabulary every provider maps to (emails, phones, addresses, urls).
ContactType = Literal[
    "home", "work", "mobile", "main", "homeFax", "workFax", "otherFax", "pager",
    "assistant", "car", "callback", "homePage", "blog", "profile", "personal", "other",
]

MAX_SHORT = 256
MAX_NOTES = 32_768
MAX_ITEMS = 50
MAX_KEYWORDS = 100

Short = Annotated[str, StringConstraints(max_length=MAX_SHORT)]
Email = Annotated[str, StringConstraints(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
Phone = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Birthday = Annotated[str, StringConstraints(pattern=r"^(\d{4}|-)-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")]
Keyword = Annotated[str, StringConstraints(min_length=1, max_length=MAX_SHORT)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class Name(_Strict):
    displayName: Short | None = None
    prefix: Short | None = None
    givenName: Short | None = None
    middleName: Short | None = None
    familyName: Short | None = None
    suffix: Short | None = None
    nickname: Short | None = None


class Company(_Strict):
    companyName: Short | None = None
    department: Short | None = None
    jobTitle: Short | None = None
    officeLocation: Short | None = None


class EmailAddress(_Strict):
    address: Email
    type: ContactType | None = None
    name: Short | None = None


class PhoneNumber(_Strict):
    number: Phone
    type: ContactType | None = None


class Address(_Strict):
    street: Annotated[str, StringConstraints(max_length=1024)] | None = None
    city: Short | None = None
    state: Short | None = None
    postalCode: Annotated[str, StringConstraints(max_length=64)] | None = None
    country: Short | None = None
    type: ContactType | None = None


class Url(_Strict):
    value: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    type: ContactType | None = None


class Attribute(_Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=MAX_SHORT)]
    value: Annotated[str, StringConstraints(max_length=4096)] | None = None
    type: Short | None = None


class ContactInput(_Strict):
    """A contact as a client writes it. Every field is optional; PATCH replaces top-level fields."""

    name: Name | None = None
    company: Company | None = None
    emailAddresses: Annotated[list[EmailAddress], Field(max_length=MAX_ITEMS)] | None = None
    phoneNumbers: Annotated[list[PhoneNumber], Field(max_length=MAX_ITEMS)] | None = None
    addresses: Annotated[list[Address], Field(max_length=MAX_ITEMS)] | None = None
    urls: Annotated[list[Url], Field(max_length=MAX_ITEMS)] | None = None
    notes: Annotated[str, StringConstraints(max_length=MAX_NOTES)] | None = None
    birthday: Birthday | None = None
    keywords: Annotated[list[Keyword], Field(max_length=MAX_KEYWORDS)] | None = None
    attributes: Annotated[list[Attribute], Field(max_length=MAX_ITEMS)] | None = None


class Contact(ContactInput):
    """A contact as the gateway serves it."""

    id: str | None = None
    etag: str | None = None
    createdTime: str | None = None
    lastModifiedTime: str | None = None


#: Top-level fields a client may write; PATCH bodies are checked against this.
WRITABLE_FIELDS: frozenset[str] = frozenset(ContactInput.model_fields)


def _prune(value: Any) -> Any:
    """Drop None, empty strings, empty lists and empty objects, recursively: they all mean 'absent'."""
    if isinstance(value, dict):
        out = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        items = [_prune(v) for v in value]
        return [v for v in items if v not in (None, "", [], {})]
    return value


def content_of(contact: ContactInput) -> dict[str, Any]:
    """The normalized content of a contact: writable fields only, empties removed."""
    raw = contact.model_dump(include=set(WRITABLE_FIELDS), exclude_none=True)
    return _prune(raw)  # type: ignore[no-any-return]


def content_hash(content: dict[str, Any]) -> str:
    """A stable digest of normalized content; its prefix is the contact's ETag."""
    return hashlib.blake2b(orjson.dumps(content, option=orjson.OPT_SORT_KEYS), digest_size=12).hexdigest()
