"""Unified Contact <-> Microsoft Graph contact (the PATCH/POST body and the JSON Graph returns).

`FIELD_MAP` below is the whole mapping; the code reads its renames and type slots off it, so the table
cannot drift from what is done. Graph holds one contact per folder: `[type=x]` entries name the Graph
property that holds the items of that unified type.

Where the contact lives: a Graph contact sits in one contact folder (`parentFolderId`), which the unified
model has no field for. We keep it as the attribute `{"name": "folder", "value": <folder path>}`:
contacts of the mailbox's default "Contacts" folder carry no such attribute, those of any other folder carry
its path of display names below the default folder, "/"-joined: "Work" for a subfolder, "Work/Clients" for a
folder inside it. Writing a contact with that attribute creates it in that folder (the connector creates the
missing folders, level by level); without it, in the default folder. (A display name that itself holds "/"
reads back as is, but a path naming it on creation is split at the "/".) Graph cannot move a contact between
folders, so the attribute only matters on creation. The folder is not part of the Graph body:
`graph_to_contact(item, folder)` takes it from the caller, who knows which folder the item came from.

What Graph cannot hold (lost on the way to Graph, so excluded from the round-trip promise):
- Email types: Graph's `emailAddresses` are [{address, name}] with no type, so emails read back untyped
  (Outlook also keeps only three addresses; the emulator does not check that).
- Phone types other than work, home and mobile (main, fax, pager, assistant, other, untyped, ...), and a
  second mobile number: dropped. Phones read back in slot order: work..., home..., mobile.
- More than one address per type, or addresses typed other than work/home/other: only the first of each
  slot is kept; an untyped address takes the `otherAddress` slot when it is free and reads back as "other".
  Addresses read back in slot order: work, home, other.
- URLs: only `businessHomePage`, one URL. The first url typed work, else homePage, else untyped is kept and
  reads back typed "work"; every other url is dropped.
- Attributes other than "folder" (Graph v1.0 has no custom fields on contacts), and any attribute `type`;
  a folder path's empty parts ("Work//Clients/" reads back "Work/Clients", "/" as the default folder).
- A birthday's year 0000 and year-less birthdays are held as year 1604 (the Outlook / vCard convention
  for "no year") and read back as --MM-DD, so a real birthday in 1604 reads back year-less too.
- Server-owned fields (id, etag, createdTime, lastModifiedTime): Graph keeps its own.

What a unified Contact cannot hold (dropped when reading Graph): assistantName, children, fileAs, initials,
manager, profession, spouseName, imAddresses, the yomi* fields, email `name` when blank, and any value the
unified model rejects (checked item by item, so one odd entry never fails a whole sync). Graph birthdays
are DateTimeOffsets in UTC; Outlook stores local midnight (or 11:59) converted to UTC, so the date is
rounded to the nearest midnight: "1815-12-09T23:00:00Z" (midnight at UTC+1) reads as 1815-12-10.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from gateway.models import ContactInput, present, provider_contact, provider_content
from providers.base import FOLDER_ATTRIBUTE

#: unified field path -> Graph contact property ("[type=x]": the unified items of that type).
FIELD_MAP: dict[str, str] = {
    "name.displayName": "displayName",
    "name.prefix": "title",
    "name.givenName": "givenName",
    "name.middleName": "middleName",
    "name.familyName": "surname",
    "name.suffix": "generation",
    "name.nickname": "nickName",
    "company.companyName": "companyName",
    "company.department": "department",
    "company.jobTitle": "jobTitle",
    "company.officeLocation": "officeLocation",
    "emailAddresses[].address": "emailAddresses[].address",
    "emailAddresses[].name": "emailAddresses[].name",
    "phoneNumbers[type=work].number": "businessPhones[]",
    "phoneNumbers[type=home].number": "homePhones[]",
    "phoneNumbers[type=mobile].number": "mobilePhone",
    "addresses[type=work]": "businessAddress",
    "addresses[type=home]": "homeAddress",
    "addresses[type=other]": "otherAddress",
    "addresses[].street": "*Address.street",
    "addresses[].city": "*Address.city",
    "addresses[].state": "*Address.state",
    "addresses[].postalCode": "*Address.postalCode",
    "addresses[].country": "*Address.countryOrRegion",
    "urls[type=work|homePage|none].value": "businessHomePage",
    "notes": "personalNotes",
    "birthday": "birthday",
    "keywords[]": "categories[]",
    "attributes[name=folder].value": "parentFolderId (as the folder's \"/\"-joined path of displayNames)",
}

NO_YEAR = 1604

_SLOT = re.compile(r"^(\w+)\[type=(\w+)\]")


def _fields(prefix: str) -> dict[str, str]:
    """Plain renames under `prefix.` (unified sub-field -> Graph property)."""
    return {u.split(".", 1)[1]: g for u, g in FIELD_MAP.items() if u.startswith(prefix + ".")}


def _slots(unified: str) -> dict[str, str]:
    """Unified type -> Graph property for the typed slots of a unified list field."""
    out: dict[str, str] = {}
    for u, g in FIELD_MAP.items():
        match = _SLOT.match(u)
        if match and match.group(1) == unified:
            out[match.group(2)] = g.removesuffix("[]")
    return out


_NAME = _fields("name")
_COMPANY = _fields("company")
_ADDRESS = {u.split(".", 1)[1]: g.split(".", 1)[1] for u, g in FIELD_MAP.items() if u.startswith("addresses[].")}
_PHONE_SLOTS = _slots("phoneNumbers")  # work -> businessPhones, home -> homePhones, mobile -> mobilePhone
_ADDRESS_SLOTS = _slots("addresses")  # work -> businessAddress, home -> homeAddress, other -> otherAddress
_URL_TYPES: tuple[str | None, ...] = ("work", "homePage", None)
_URL_READ_TYPE = "work"

#: Every Graph property the mapping writes; a contact body always carries all of them (null/[]/{} clears).
GRAPH_FIELDS: tuple[str, ...] = (
    *_NAME.values(), *_COMPANY.values(), "emailAddresses", *_PHONE_SLOTS.values(), *_ADDRESS_SLOTS.values(),
    "businessHomePage", "personalNotes", "birthday", "categories",
)
#: The $select for reads: the mapped properties plus what the connector needs to place and version a contact.
SELECT: str = ",".join(("id", "changeKey", "parentFolderId", "createdDateTime", "lastModifiedDateTime",
                        *GRAPH_FIELDS))
_LIST_PHONES = tuple(g for g in _PHONE_SLOTS.values() if g.endswith("Phones"))
# The same tables as tuples, for the read side (run for every pulled contact)
_NAME_READS = tuple(_NAME.items())
_COMPANY_READS = tuple(_COMPANY.items())
_ADDRESS_READS = tuple(_ADDRESS.items())
_ADDRESS_SLOT_READS = tuple(_ADDRESS_SLOTS.items())
_PHONE_READS = tuple((kind, prop, prop in _LIST_PHONES) for kind, prop in _PHONE_SLOTS.items())
_BIRTHDAY = re.compile(r"^(\d{4}|-)-(\d{2})-(\d{2})$")
_GRAPH_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}))?")


# --- unified -> Graph ----------------------------------------------------------------------------------

def _address(values: dict[str, Any]) -> dict[str, str]:
    return {_ADDRESS[k]: v for k, v in values.items() if k in _ADDRESS and v not in (None, "")}


def _addresses(contact: ContactInput) -> dict[str, dict[str, str]]:
    slots: dict[str, dict[str, str]] = {prop: {} for prop in _ADDRESS_SLOTS.values()}
    taken: set[str] = set()
    for item in contact.addresses or []:
        prop = _ADDRESS_SLOTS.get(item.type or "other")
        if prop is not None and prop not in taken:
            taken.add(prop)
            slots[prop] = _address(vars(item))
    return slots


def _phones(contact: ContactInput) -> dict[str, Any]:
    out: dict[str, Any] = {prop: [] for prop in _LIST_PHONES}
    out[_PHONE_SLOTS["mobile"]] = None
    for phone in contact.phoneNumbers or []:
        prop = _PHONE_SLOTS.get(phone.type or "")
        if prop in _LIST_PHONES:
            out[prop].append(phone.number)
        elif prop is not None and out[prop] is None:
            out[prop] = phone.number
    return out


def _homepage(contact: ContactInput) -> str | None:
    urls = contact.urls or []
    for wanted in _URL_TYPES:
        for url in urls:
            if url.type == wanted:
                return url.value
    return None


def _graph_birthday(birthday: str | None) -> str | None:
    match = _BIRTHDAY.match(birthday or "")
    if match is None:
        return None
    year, month, day = match.groups()
    held = int(year) if year != "-" and int(year) else NO_YEAR
    return f"{held:04d}-{month}-{day}T00:00:00Z"


def contact_to_graph(contact: ContactInput) -> dict[str, Any]:
    """The POST/PATCH body holding `contact`: every mapped property present, null/[]/{} where empty.

    The folder attribute is not in it: it picks the URL the body is POSTed to (see the module docstring).
    """
    name = vars(contact.name) if contact.name is not None else {}
    company = vars(contact.company) if contact.company is not None else {}
    body: dict[str, Any] = {g: name.get(u) or None for u, g in _NAME.items()}
    body.update({g: company.get(u) or None for u, g in _COMPANY.items()})
    body["emailAddresses"] = [{"address": e.address, **({"name": e.name} if e.name else {})}
                              for e in contact.emailAddresses or []]
    body.update(_phones(contact))
    body.update(_addresses(contact))
    body["businessHomePage"] = _homepage(contact)
    body["personalNotes"] = contact.notes or None
    body["birthday"] = _graph_birthday(contact.birthday)
    body["categories"] = list(contact.keywords or [])
    return body


# --- Graph -> unified ----------------------------------------------------------------------------------

def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def unified_birthday(value: Any) -> str | None:
    """A Graph DateTimeOffset birthday as YYYY-MM-DD (or --MM-DD for the no-year 1604), nearest midnight."""
    return _unified_birthday(value) if isinstance(value, str) else None


@lru_cache(maxsize=4096)  # birthdays repeat across an address book; parsing one costs a date computation
def _unified_birthday(value: str) -> str | None:
    match = _GRAPH_DATE.match(value)
    if match is None:
        return None
    year, month, day, hour = match.groups()
    try:
        when = date(int(year), int(month), int(day))
    except ValueError:
        return None
    if hour is not None and int(hour) >= 12 and when < date.max:
        when += timedelta(days=1)
    return f"--{when:%m-%d}" if when.year == NO_YEAR else when.isoformat()


def _strings(value: Any) -> list[str]:
    return [v for v in value if v and isinstance(v, str)] if isinstance(value, list) else []


def _read_phones(item: dict[str, Any]) -> list[dict[str, str]]:
    phones: list[dict[str, str]] = []
    for kind, prop, many in _PHONE_READS:
        value = item.get(prop)
        if value:
            numbers = value if many else [value]
            if isinstance(numbers, list):
                phones += [{"number": n, "type": kind} for n in numbers if n and isinstance(n, str)]
    return phones


def _read_addresses(item: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    for kind, prop in _ADDRESS_SLOT_READS:
        value = item.get(prop)
        if value and isinstance(value, dict) and (fields := present(value, _ADDRESS_READS)):
            fields["type"] = kind
            out.append(fields)
    return out


def _read_emails(value: Any) -> list[dict[str, str]]:
    out = []
    for entry in value if isinstance(value, list) else []:
        if isinstance(entry, dict) and _text(entry.get("address")):
            email = {"address": entry["address"]}
            if _text(entry.get("name")):
                email["name"] = entry["name"]
            out.append(email)
    return out


def graph_content(item: dict[str, Any], folder: str | None = None) -> dict[str, Any]:
    """The normalized unified content of a Graph contact (what a pull hashes); `folder` is its folder's
    name (None: the default folder).

    Never fails on odd Graph data: parts the unified model rejects are dropped, item by item.
    """
    return provider_content(_graph_data(item, folder))


def graph_to_contact(item: dict[str, Any], folder: str | None = None) -> ContactInput:
    """`graph_content` as a model."""
    return provider_contact(_graph_data(item, folder))


def _graph_data(item: dict[str, Any], folder: str | None) -> dict[str, Any]:
    """The unified data of a Graph contact, without empty parts (so normalizing it copies nothing).

    Values are taken as they are: the rare non-string is dropped by provider_content's validation (this
    runs for every contact of every pull, so there are no per-value type checks here).
    """
    data: dict[str, Any] = {
        "name": present(item, _NAME_READS),
        "company": present(item, _COMPANY_READS),
        "emailAddresses": _read_emails(item.get("emailAddresses")),
        "phoneNumbers": _read_phones(item),
        "addresses": _read_addresses(item),
        "urls": [{"value": item["businessHomePage"], "type": _URL_READ_TYPE}] if _text(
            item.get("businessHomePage")) else None,
        "notes": _text(item.get("personalNotes")),
        "birthday": unified_birthday(item.get("birthday")),
        "keywords": _strings(item.get("categories")),
        "attributes": [{"name": FOLDER_ATTRIBUTE, "value": folder}] if folder else None,
    }
    return {k: v for k, v in data.items() if v}
