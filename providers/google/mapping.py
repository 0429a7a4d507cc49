"""Unified Contact <-> Google People API Person.

`FIELD_MAP` below is the whole mapping; the code reads its renames off it, so the table cannot drift
from what is done. Types: every unified type is written as is (Google's predefined types cover most;
assistant, car, callback and personal go as custom type strings, which Google keeps verbatim), and read
back through `unified_type`: known Google types map to the vocabulary, unknown custom types to "other".

What a Person cannot hold (lost on the way to Google, so excluded from the round-trip promise):
- `attributes[].type`: userDefined has only key and value.
- A birthday year of 0000: Google's year 0 means "no year", so it reads back as --MM-DD.
- The keyword "myContacts": that membership is implied for every contact and never reported as a keyword.
  Duplicate keywords collapse to one membership.
- Server-owned fields (id, etag, createdTime, lastModifiedTime): Google keeps its own.

What a unified Contact cannot hold (dropped when reading a Person):
- Person fields outside the table (photos, events, relations, imClients, genders, ...), second and later
  names/nicknames/organizations/biographies/birthdays, address extendedAddress/poBox/countryCode,
  organization extras (current, startDate, ...), birthdays given only as free text.
- Google types outside the vocabulary: workMobile -> mobile, workPager -> pager, googleVoice/ftp/... -> other.
- Values the unified model rejects (an email without "@", over-long strings, beyond the list limits) are
  dropped item by item, so one odd entry at Google never fails a whole sync.

Google-specific notes: `names[].displayName` is output only at Google (it recomputes it from the parts), so
we also send it as `unstructuredName`, and read `unstructuredName` when no displayName comes back. Keywords
are contact groups, by name: a keyword is the name of a group the contact belongs to ("starred", "friends"
and the other system groups, whose resource id is their name, or a user group such as "clients", whose
resource id Google makes up). The connector lists the account's groups (contactGroups.list) to map names
and resource names both ways, and creates a user group (contactGroups.create) the first time a keyword
needs one. Renaming a group at Google renames the keyword of all its members at the next refresh (the
connector notices the rename and the core relists).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, get_args

from gateway.models import ContactInput, ContactType, present, provider_contact, provider_content

#: unified field path -> Person field path ("[0]" singletons are the first entry of a Person list).
FIELD_MAP: dict[str, str] = {
    "name.displayName": "names[0].displayName",
    "name.prefix": "names[0].honorificPrefix",
    "name.givenName": "names[0].givenName",
    "name.middleName": "names[0].middleName",
    "name.familyName": "names[0].familyName",
    "name.suffix": "names[0].honorificSuffix",
    "name.nickname": "nicknames[0].value",
    "company.companyName": "organizations[0].name",
    "company.department": "organizations[0].department",
    "company.jobTitle": "organizations[0].title",
    "company.officeLocation": "organizations[0].location",
    "emailAddresses[].address": "emailAddresses[].value",
    "emailAddresses[].type": "emailAddresses[].type",
    "emailAddresses[].name": "emailAddresses[].displayName",
    "phoneNumbers[].number": "phoneNumbers[].value",
    "phoneNumbers[].type": "phoneNumbers[].type",
    "addresses[].street": "addresses[].streetAddress",
    "addresses[].city": "addresses[].city",
    "addresses[].state": "addresses[].region",
    "addresses[].postalCode": "addresses[].postalCode",
    "addresses[].country": "addresses[].country",
    "addresses[].type": "addresses[].type",
    "urls[].value": "urls[].value",
    "urls[].type": "urls[].type",
    "notes": "biographies[0].value",
    "birthday": "birthdays[0].date",
    "keywords[]": "memberships[].contactGroupMembership.contactGroupResourceName (as the group's name)",
    "attributes[].name": "userDefined[].key",
    "attributes[].value": "userDefined[].value",
}


def _top(path: str) -> str:
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def _renames(unified: str, person: str) -> dict[str, str]:
    """Sub-field renames (unified key -> Person key) of one object or list field, read off FIELD_MAP."""
    return {u.rsplit(".", 1)[1]: p.rsplit(".", 1)[1] for u, p in FIELD_MAP.items()
            if _top(u) == unified and _top(p) == person}


_NAME = _renames("name", "names")
_COMPANY = _renames("company", "organizations")
#: unified list field -> (Person list field, sub-field renames)
_LISTS: dict[str, tuple[str, dict[str, str]]] = {
    field: (person, _renames(field, person))
    for field, person in (("emailAddresses", "emailAddresses"), ("phoneNumbers", "phoneNumbers"),
                          ("addresses", "addresses"), ("urls", "urls"), ("attributes", "userDefined"))
}

# The same renames as tuples (unified key, Person key) for the read side, which runs for every pulled contact
_NAME_READS = tuple(_NAME.items())
_COMPANY_READS = tuple(_COMPANY.items())
_LIST_READS = tuple((field, person, tuple(renames.items())) for field, (person, renames) in _LISTS.items())

#: Every Person field the mapping reads or writes; what updateContact must name so that clearing works.
UPDATE_FIELDS: tuple[str, ...] = tuple(sorted({_top(p) for p in FIELD_MAP.values()}))
#: The personFields mask for reads: the mapped fields plus metadata (source etag, updateTime, deleted).
PERSON_FIELDS: str = ",".join((*UPDATE_FIELDS, "metadata"))

MY_CONTACTS = "myContacts"
GROUP_PREFIX = "contactGroups/"

_VOCABULARY: dict[str, str] = {t.lower(): t for t in get_args(ContactType)}
#: Google's predefined types that are not in the unified vocabulary.
_GOOGLE_TYPES: dict[str, str] = {
    "workmobile": "mobile", "workpager": "pager", "googlevoice": "other", "ftp": "other",
    "reservations": "other", "appinstallpage": "other",
}
_BIRTHDAY = re.compile(r"^(\d{4}|-)-(\d{2})-(\d{2})$")


def unified_type(google_type: str | None) -> str | None:
    """A Google type (predefined or custom) in the unified vocabulary; unknown custom labels are 'other'."""
    return _unified_type(google_type) if google_type else None


@lru_cache(maxsize=1024)  # a handful of types recur across every pulled contact
def _unified_type(google_type: str) -> str:
    key = google_type.lower()
    return _VOCABULARY.get(key) or _GOOGLE_TYPES.get(key, "other")


def update_person_fields(contact: ContactInput) -> str:
    """The updatePersonFields mask for replacing `contact`.

    It names every mapped field whatever `contact` holds: a field the contact leaves out must be cleared
    at Google, and Google only touches the fields the mask names.
    """
    return ",".join(UPDATE_FIELDS)


# --- unified -> Person ---------------------------------------------------------------------------------

def _to_person_item(values: dict[str, Any], renames: dict[str, str]) -> dict[str, Any]:
    return {renames[k]: v for k, v in values.items() if k in renames and v not in (None, "")}


def _date_of(birthday: str) -> dict[str, int]:
    match = _BIRTHDAY.match(birthday)
    if match is None:  # the model's pattern makes this unreachable for a validated ContactInput
        raise ValueError(f"not a birthday: {birthday!r}")
    year, month, day = match.groups()
    date = {"month": int(month), "day": int(day)}
    if year != "-" and int(year):
        date = {"year": int(year), **date}
    return date


def _membership(resource: str) -> dict[str, Any]:
    return {"contactGroupMembership": {"contactGroupResourceName": resource}}


def group_resource(keyword: str, groups: Mapping[str, str] | None = None) -> str:
    """The contact group resource name of a keyword: from `groups` (name -> resource name), else the system
    group of that id ("starred" -> contactGroups/starred)."""
    return (groups or {}).get(keyword) or GROUP_PREFIX + keyword


def contact_to_person(contact: ContactInput, groups: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The Person body (no resourceName/etag) that holds `contact`; always a member of myContacts.

    `groups` maps group names to resource names (the connector lists and creates them); a keyword it does
    not name is taken as a system group's id."""
    person: dict[str, Any] = {}
    if contact.name is not None:
        names = _to_person_item(vars(contact.name), _NAME)
        if "displayName" in names:
            names["unstructuredName"] = names["displayName"]
        if names:
            person["names"] = [names]
        if contact.name.nickname:
            person["nicknames"] = [{"value": contact.name.nickname}]
    if contact.company is not None:
        org = _to_person_item(vars(contact.company), _COMPANY)
        if org:
            person["organizations"] = [org]
    for field, (person_field, renames) in _LISTS.items():
        items = [_to_person_item(vars(item), renames) for item in getattr(contact, field) or []]
        if any(items):
            person[person_field] = [item for item in items if item]
    if contact.notes:
        person["biographies"] = [{"value": contact.notes, "contentType": "TEXT_PLAIN"}]
    if contact.birthday:
        person["birthdays"] = [{"date": _date_of(contact.birthday)}]
    keywords = dict.fromkeys(k for k in contact.keywords or [] if k != MY_CONTACTS)
    person["memberships"] = [_membership(group_resource(k, groups)) for k in (MY_CONTACTS, *keywords)]
    return person


# --- Person -> unified ---------------------------------------------------------------------------------

def _first(items: Any) -> dict[str, Any]:
    """The primary entry of a Person list field (else the first), or {}."""
    if not isinstance(items, list) or not items:
        return {}
    for item in items:
        if isinstance(item, dict) and item.get("metadata", {}).get("primary"):
            return item
    return items[0] if isinstance(items[0], dict) else {}


def _from_person_item(item: dict[str, Any], reads: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """The unified sub-fields an item holds (None and "" are absent), its type in the unified vocabulary."""
    out = present(item, reads)
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = unified_type(kind)
    return out


def _birthday_of(date: Any) -> str | None:
    if not isinstance(date, dict) or not date.get("month") or not date.get("day"):
        return None
    year = date.get("year") or 0
    prefix = f"{year:04d}" if year else "-"
    return f"{prefix}-{date['month']:02d}-{date['day']:02d}"


def group_resources(memberships: Any) -> list[str]:
    """The contact group resource names a Person's memberships name."""
    out: list[str] = []
    for membership in memberships if isinstance(memberships, list) else []:
        cgm = membership.get("contactGroupMembership") if isinstance(membership, dict) else None
        if not isinstance(cgm, dict):
            continue
        resource = cgm.get("contactGroupResourceName") or (
            GROUP_PREFIX + str(cgm["contactGroupId"]) if cgm.get("contactGroupId") else "")
        if resource:
            out.append(resource)
    return out


def _keywords(memberships: Any, names: Mapping[str, str] | None) -> list[str]:
    groups: dict[str, None] = {}
    for resource in group_resources(memberships):
        group = (names or {}).get(resource) or resource.removeprefix(GROUP_PREFIX)
        if group and group != MY_CONTACTS:
            groups[group] = None
    return list(groups)


def person_content(person: dict[str, Any], group_names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The normalized unified content of a Person (what a pull hashes). Never fails on odd Google data:
    invalid parts are dropped. `group_names` maps group resource names to names (the keywords); a group it
    does not name reads as its id (a system group's id is its name)."""
    return provider_content(_person_data(person, group_names))


def person_to_contact(person: dict[str, Any], group_names: Mapping[str, str] | None = None) -> ContactInput:
    """`person_content` as a model."""
    return provider_contact(_person_data(person, group_names))


def _person_data(person: dict[str, Any], group_names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The unified data of a Person, without empty parts (so normalizing it copies nothing)."""
    names = _first(person.get("names"))
    name = _from_person_item(names, _NAME_READS)
    if "displayName" not in name and names.get("unstructuredName"):
        name["displayName"] = names["unstructuredName"]
    nickname = _first(person.get("nicknames")).get("value")
    if nickname:
        name["nickname"] = nickname
    data: dict[str, Any] = {
        "name": name,
        "company": _from_person_item(_first(person.get("organizations")), _COMPANY_READS),
        "notes": _first(person.get("biographies")).get("value"),
        "birthday": _birthday_of(_first(person.get("birthdays")).get("date")),
        "keywords": _keywords(person.get("memberships"), group_names),
    }
    for field, person_field, reads in _LIST_READS:
        items = person.get(person_field)
        if items and isinstance(items, list):
            data[field] = [_from_person_item(i, reads) for i in items if isinstance(i, dict)]
    return {k: v for k, v in data.items() if v}
