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
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from gateway.plain_schema import typed_dict_of

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
# Explicit classes, not \d or \s: pydantic reads those as Unicode classes, JSON Schema (ECMA-262) does not.
Email = Annotated[str, StringConstraints(min_length=3, max_length=320, pattern=r"^[^@ \t\n\r\f\v]+@[^@ \t\n\r\f\v]+$")]
Phone = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Birthday = Annotated[str, StringConstraints(pattern=r"^([0-9]{4}|-)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]
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
_WRITABLE = set(WRITABLE_FIELDS)


def _clean_list(items: list[Any]) -> list[Any]:
    """Without empty items, and without None/"" inside its objects; a clean list is returned as it is."""
    for i in items:  # a plain loop: this runs for every list of every pulled contact
        if not i or (isinstance(i, dict) and not all(i.values())):
            break
    else:
        return items
    cleaned = [{k: v for k, v in i.items() if v} if isinstance(i, dict) else i for i in items]
    return [i for i in cleaned if i]


def normalize(data: dict[str, Any]) -> dict[str, Any]:
    """The normalized content of validated data in ContactInput's shape: None, "", [] and {} all mean absent.

    Validated data holds only strings, objects of strings and lists of those, so "empty" is plain
    falsiness and cleaning is two flat passes. A part that is already clean is kept as it is, not
    copied: this runs once per pulled contact.
    """
    out: dict[str, Any] = {}
    for key, value in data.items():
        if not value:
            continue
        if isinstance(value, dict):
            if not all(value.values()):
                value = {k: v for k, v in value.items() if v}
                if not value:
                    continue
        elif isinstance(value, list):
            value = _clean_list(value)
            if not value:
                continue
        out[key] = value
    return out


def present(values: dict[str, Any], reads: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """Provider properties renamed to unified sub-fields, (unified, provider) pairs in `reads`, for the ones
    `values` holds: None and "" are left out, as `normalize` would drop them. Runs per pulled contact."""
    return {u: v for u, p in reads if (v := values.get(p))}


def content_of(contact: ContactInput) -> dict[str, Any]:
    """The normalized content of a contact: writable fields only (see `normalize`)."""
    return normalize(contact.model_dump(include=_WRITABLE, exclude_none=True))


def canonical_json(content: dict[str, Any]) -> bytes:
    """Normalized content as JSON with sorted keys: what is hashed, and what the mirror serves."""
    return orjson.dumps(content, option=orjson.OPT_SORT_KEYS)


def content_hash(canonical: bytes) -> str:
    """A stable digest of canonical content JSON: the contact's ETag."""
    return hashlib.blake2b(canonical, digest_size=12).hexdigest()


#: Checks plain data against ContactInput's schema without building a model (see gateway.plain_schema).
_validate = TypeAdapter(typed_dict_of(ContactInput)).validator.validate_python


def _accepts(data: dict[str, Any]) -> bool:
    try:
        _validate(data)
    except ValidationError:
        return False
    return True


def _lenient(data: dict[str, Any]) -> ContactInput:
    kept: dict[str, Any] = {}
    for key, value in data.items():
        if _accepts({key: value}):
            kept[key] = value
        elif isinstance(value, list):
            limit = MAX_KEYWORDS if key == "keywords" else MAX_ITEMS
            kept[key] = [item for item in value if _accepts({key: [item]})][:limit]
        elif isinstance(value, dict):
            kept[key] = {k: v for k, v in value.items() if _accepts({key: {k: v}})}
    return ContactInput.model_validate(kept)


def provider_content(data: dict[str, Any]) -> dict[str, Any]:
    """The normalized content of a contact read from a provider: validated whole, else part by part.

    Providers hold data our client-facing bounds would refuse (an email without "@", too many
    phones); one odd value must not stop a whole contact, let alone a sync, from arriving.
    This runs once per pulled contact, so the usual case costs one validation and no model dump:
    the mapping hands over plain JSON types (str, lists, dicts), which validation accepts unchanged,
    so a dict that validates normalizes to exactly `content_of` of its model.
    """
    try:
        _validate(data)
    except ValidationError:
        return content_of(_lenient(data))
    return normalize(data)


def provider_contact(data: dict[str, Any]) -> ContactInput:
    """`provider_content` as a model (for callers that want attribute access)."""
    return ContactInput.model_validate(provider_content(data))
