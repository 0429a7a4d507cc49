"""Unified Contact <-> EWS Contact item (exchangelib's `Contact`, and the emulator's XML through `EwsFields`).

`FIELD_MAP` below is the whole mapping; the code reads its renames off it. Between the unified model and
exchangelib sits one neutral form, `EwsFields`: a dict keyed by exchangelib Contact attribute names holding
plain values (str, date, lists of (EWS key, value) pairs). The connector writes through exchangelib objects
(`contact_to_item_fields`) and reads GetItem XML with `ews_xml.parse_contact` (fast) into `EwsFields`;
`item_to_contact` maps an exchangelib Contact for any other caller. The emulator stores `EwsFields` and
renders them as XML with `ews_xml.py`. So the connector and the emulator cannot disagree on a field.

Types: phones go to the EWS key of their type (`PHONE_KEYS`; a second work/home number to BusinessPhone2 /
HomePhone2), addresses to Business / Home / Other, urls of type work to BusinessHomePage and of type homePage
to PidTagPersonalHomePage (an extended property: EWS has no element for it).

What an EWS contact cannot hold (lost on the way to Exchange, so excluded from the round-trip promise):
- `emailAddresses[].type` and `.name`: EmailAddress1..3 carry an address only; a 4th address is dropped.
- More phones than EWS keys of their type (one each; work and home have two); untyped phones and phones typed
  outside `PHONE_KEYS` are stored as OtherTelephone and read back as "other" (dropped if that key is taken).
- More than one address per Business / Home / Other key; untyped addresses and other types are stored as
  Other (read back as "other"), a second address of a type also goes to Other when it is free, else is dropped.
- urls beyond one work and one homePage url: an untyped or otherwise typed url takes the free slot of the two
  (read back with that slot's type); more are dropped. They read back in that order: work, then homePage.
- List order within emails, phones and addresses is kept as written (the emulator does; real Exchange may
  return entries in its own order, which the mirror then sees once as a change).
- A birthday year of 0000 or before 1605: EWS needs a year, and Outlook's "no year" convention is 1604, so
  --MM-DD is stored as 1604-MM-DD and read back as --MM-DD. Dates that do not exist (02-30) are dropped.
- Carriage returns in notes (XML normalizes CR LF to LF); notes written as HTML by Outlook are read as text.
- Server-owned fields (id, etag, createdTime, lastModifiedTime): Exchange keeps its own.
- A contact's folder is not a field of the item: as with Graph, a contact in a subfolder of Contacts carries
  the attribute {"name": "folder", "value": <path>} (display names below Contacts, "/"-joined, "Work/Clients"),
  listed first among its attributes; one in Contacts itself carries none. It is read from the folder the item
  is in (`fields_content(fields, folder)`), never stored with the item, and it places a contact only when it
  is created (the connector makes missing folders); EWS updates do not move items between folders.
- A contact without displayName is saved with an empty DisplayName (exchangelib requires the element).
  Attributes are held whole (name, value, type) as JSON in one named extended property.

What a unified Contact cannot hold (dropped when reading): Initials, FileAs, CompleteName, ImAddresses,
AssistantName, Children, SpouseName, Manager, Profession, WeddingAnniversary, photos, other extended
properties, and the phone keys Isdn / RadioPhone / Telex / TtyTddPhone (read as "other") and CompanyMainPhone
(read as "main"). Values the unified model rejects are dropped item by item, so one odd item never fails a sync.
"""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

import lxml.html
from exchangelib import Body, HTMLBody
from exchangelib.ewsdatetime import EWSDate
from exchangelib.extended_properties import ExtendedProperty
from exchangelib.indexed_properties import EmailAddress, PhoneNumber, PhysicalAddress
from exchangelib.items import Contact

from gateway.models import ContactInput, present, provider_contact, provider_content
from providers.base import FOLDER_ATTRIBUTE

#: unified field path -> (exchangelib Contact attribute path, EWS element or property).
FIELD_MAP: dict[str, tuple[str, str]] = {
    "name.displayName": ("display_name", "contacts:DisplayName"),
    "name.prefix": ("name_prefix", "ExtendedProperty PropertyTag 0x3A45 (PidTagDisplayNamePrefix)"),
    "name.givenName": ("given_name", "contacts:GivenName"),
    "name.middleName": ("middle_name", "contacts:MiddleName"),
    "name.familyName": ("surname", "contacts:Surname"),
    "name.suffix": ("generation", "contacts:Generation"),
    "name.nickname": ("nickname", "contacts:Nickname"),
    "company.companyName": ("company_name", "contacts:CompanyName"),
    "company.department": ("department", "contacts:Department"),
    "company.jobTitle": ("job_title", "contacts:JobTitle"),
    "company.officeLocation": ("office", "contacts:OfficeLocation"),
    "emailAddresses[].address": ("email_addresses[].email", "contacts:EmailAddress (EmailAddress1..3)"),
    "phoneNumbers[].number": ("phone_numbers[].phone_number", "contacts:PhoneNumber (key: PHONE_KEYS)"),
    "phoneNumbers[].type": ("phone_numbers[].label", "contacts:PhoneNumber FieldIndex"),
    "addresses[].street": ("physical_addresses[].street", "contacts:PhysicalAddress:Street"),
    "addresses[].city": ("physical_addresses[].city", "contacts:PhysicalAddress:City"),
    "addresses[].state": ("physical_addresses[].state", "contacts:PhysicalAddress:State"),
    "addresses[].postalCode": ("physical_addresses[].zipcode", "contacts:PhysicalAddress:PostalCode"),
    "addresses[].country": ("physical_addresses[].country", "contacts:PhysicalAddress:CountryOrRegion"),
    "addresses[].type": ("physical_addresses[].label", "contacts:PhysicalAddress FieldIndex (ADDRESS_KEYS)"),
    "urls[type=work].value": ("business_homepage", "contacts:BusinessHomePage"),
    "urls[type=homePage].value": ("personal_homepage", "ExtendedProperty PropertyTag 0x3A50 (PidTagPersonalHomePage)"),
    "notes": ("body", "item:Body (BodyType Text)"),
    "birthday": ("birthday", "contacts:Birthday"),
    "keywords[]": ("categories", "item:Categories"),
    "attributes[]": ("gateway_attributes", "ExtendedProperty PublicStrings/ContactsGatewayAttributes (JSON)"),
}

#: unified phone type -> the EWS PhoneNumber keys that hold it, in order of use.
PHONE_KEYS: dict[str, tuple[str, ...]] = {
    "work": ("BusinessPhone", "BusinessPhone2"), "home": ("HomePhone", "HomePhone2"), "mobile": ("MobilePhone",),
    "main": ("PrimaryPhone",), "workFax": ("BusinessFax",), "homeFax": ("HomeFax",), "otherFax": ("OtherFax",),
    "pager": ("Pager",), "assistant": ("AssistantPhone",), "car": ("CarPhone",), "callback": ("Callback",),
    "other": ("OtherTelephone",),
}
#: EWS PhoneNumber key -> unified type (every key EWS has).
PHONE_TYPES: dict[str, str] = {
    **{key: kind for kind, keys in PHONE_KEYS.items() for key in keys},
    "CompanyMainPhone": "main", "Isdn": "other", "RadioPhone": "other", "Telex": "other", "TtyTddPhone": "other",
}
#: unified address type -> EWS PhysicalAddress key.
ADDRESS_KEYS: dict[str, str] = {"work": "Business", "home": "Home", "other": "Other"}
ADDRESS_TYPES: dict[str, str] = {key: kind for kind, key in ADDRESS_KEYS.items()}
EMAIL_KEYS: tuple[str, ...] = EmailAddress.LABEL_CHOICES
#: url type -> exchangelib attribute.
URL_FIELDS: dict[str, str] = {"work": "business_homepage", "homePage": "personal_homepage"}
NO_YEAR = 1604  # Outlook's year for a birthday without one


class NamePrefix(ExtendedProperty):
    """PidTagDisplayNamePrefix: the title (Dr., Ms.). EWS exposes it only read-only inside CompleteName."""

    property_tag = 0x3A45
    property_type = "String"


class PersonalHomePage(ExtendedProperty):
    """PidTagPersonalHomePage: EWS has an element for the business home page only."""

    property_tag = 0x3A50
    property_type = "String"


class GatewayAttributes(ExtendedProperty):
    """The unified attributes, whole, as JSON in one named string property of our own."""

    distinguished_property_set_id = "PublicStrings"
    property_name = "ContactsGatewayAttributes"
    property_type = "String"


#: exchangelib attribute -> the extended property class registered on Contact under that name.
EXTENDED: dict[str, type[ExtendedProperty]] = {
    "name_prefix": NamePrefix, "personal_homepage": PersonalHomePage, "gateway_attributes": GatewayAttributes,
}
for _attr, _cls in EXTENDED.items():  # exchangelib's documented way; registration is process-wide and once
    if _attr not in {f.name for f in Contact.FIELDS}:
        Contact.register(_attr, _cls)


def _renames(prefix: str) -> dict[str, str]:
    """unified sub-field -> exchangelib attribute, for the entries of FIELD_MAP under `prefix`."""
    return {u.removeprefix(prefix): e.rsplit(".", 1)[-1] for u, (e, _) in FIELD_MAP.items() if u.startswith(prefix)}


_NAME = _renames("name.")
_COMPANY = _renames("company.")
_ADDRESS = {k: v for k, v in _renames("addresses[].").items() if k != "type"}
# The same renames as tuples for the read side, which runs for every pulled contact
_NAME_READS, _COMPANY_READS, _ADDRESS_READS = (tuple(r.items()) for r in (_NAME, _COMPANY, _ADDRESS))
_URL_READS = tuple(URL_FIELDS.items())
_SCALARS: tuple[str, ...] = (*_NAME.values(), *_COMPANY.values(), *URL_FIELDS.values())
#: Every exchangelib Contact attribute the mapping writes; what an update must name so that clearing works.
ITEM_FIELDS: tuple[str, ...] = tuple(dict.fromkeys(e.split("[", 1)[0] for e, _ in FIELD_MAP.values()))
#: What GetItem asks for: the mapped fields plus the server's times.
ONLY_FIELDS: tuple[str, ...] = (*ITEM_FIELDS, "datetime_created", "last_modified_time")
_BIRTHDAY = re.compile(r"^(\d{4}|-)-(\d{2})-(\d{2})$")

#: The neutral form: exchangelib attribute -> str | date | list[str] | list[(key, str)] | list[(key, dict)].
EwsFields = dict[str, Any]


# --- unified -> EWS ------------------------------------------------------------------------------------

def _take(free: list[str], wanted: tuple[str, ...]) -> str | None:
    """The first of `wanted` still in `free` (removed from it), else None."""
    for key in wanted:
        if key in free:
            free.remove(key)
            return key
    return None


def _phones(contact: ContactInput) -> list[tuple[str, str]]:
    free, out = list(PHONE_TYPES), []
    for phone in contact.phoneNumbers or []:
        key = _take(free, PHONE_KEYS.get(phone.type or "other", PHONE_KEYS["other"]) + PHONE_KEYS["other"])
        if key is not None:
            out.append((key, phone.number))
    return out


def _addresses(contact: ContactInput) -> list[tuple[str, dict[str, str]]]:
    free, out = list(ADDRESS_TYPES), []
    for address in contact.addresses or []:
        parts = {ews: getattr(address, uni) for uni, ews in _ADDRESS.items() if getattr(address, uni)}
        key = _take(free, (ADDRESS_KEYS.get(address.type or "other", "Other"), "Other"))
        if parts and key is not None:
            out.append((key, parts))
    return out


def _urls(contact: ContactInput) -> dict[str, str]:
    out: dict[str, str] = {}
    for url in contact.urls or []:
        slot = URL_FIELDS.get(url.type or "")
        if slot is None or slot in out:
            slot = next((s for s in URL_FIELDS.values() if s not in out), None)
        if slot is not None and slot not in out:
            out[slot] = url.value
    return out


def _birthday(value: str | None) -> datetime.date | None:
    match = _BIRTHDAY.match(value or "")
    if match is None:
        return None
    year, month, day = match.groups()
    try:
        return datetime.date(NO_YEAR if year == "-" or int(year) <= NO_YEAR else int(year), int(month), int(day))
    except ValueError:
        return None


def contact_to_fields(contact: ContactInput) -> EwsFields:
    """The neutral EWS form of `contact`: only the fields it holds."""
    out: EwsFields = {}
    for part, renames in ((contact.name, _NAME), (contact.company, _COMPANY)):
        if part is not None:
            out.update({ews: getattr(part, uni) for uni, ews in renames.items() if getattr(part, uni)})
    emails = (contact.emailAddresses or [])[:len(EMAIL_KEYS)]
    out["email_addresses"] = [(key, e.address) for key, e in zip(EMAIL_KEYS, emails, strict=False)]
    out["phone_numbers"] = _phones(contact)
    out["physical_addresses"] = _addresses(contact)
    out.update(_urls(contact))
    out["body"] = contact.notes
    out["birthday"] = _birthday(contact.birthday)
    out["categories"] = list(contact.keywords or [])
    attributes = [a.model_dump(exclude_none=True) for a in contact.attributes or [] if a.name != FOLDER_ATTRIBUTE]
    out["gateway_attributes"] = json.dumps(attributes, ensure_ascii=False, separators=(",", ":")) if attributes \
        else None
    return {k: v for k, v in out.items() if v not in (None, "", [])}


def contact_to_item_fields(contact: ContactInput) -> dict[str, Any]:
    """exchangelib `Contact(**fields)` keyword arguments for `contact`: every mapped attribute, None to clear."""
    fields = contact_to_fields(contact)
    out: dict[str, Any] = dict.fromkeys(ITEM_FIELDS)
    out.update({k: v for k, v in fields.items() if k in _SCALARS or k in EXTENDED})
    out["display_name"] = fields.get("display_name", "")
    out["email_addresses"] = [EmailAddress(label=k, email=v) for k, v in fields.get("email_addresses", [])]
    out["phone_numbers"] = [PhoneNumber(label=k, phone_number=v) for k, v in fields.get("phone_numbers", [])]
    out["physical_addresses"] = [PhysicalAddress(label=k, **v) for k, v in fields.get("physical_addresses", [])]
    out["body"] = Body(fields["body"]) if "body" in fields else None
    out["birthday"] = EWSDate.from_date(fields["birthday"]) if "birthday" in fields else None
    out["categories"] = fields.get("categories")
    return out


# --- EWS -> unified ------------------------------------------------------------------------------------

def _text(body: Any) -> str | None:
    """A Body as plain text (Outlook writes contact notes as HTML)."""
    if not body:
        return None
    if isinstance(body, HTMLBody):
        return str(lxml.html.fromstring(str(body)).text_content()).strip() or None
    return str(body)


def item_fields(item: Contact) -> EwsFields:
    """The neutral EWS form of an exchangelib Contact."""
    out: EwsFields = {attr: getattr(item, attr, None) for attr in (*_SCALARS, *EXTENDED)}
    out["email_addresses"] = [(e.label, e.email) for e in item.email_addresses or []]
    out["phone_numbers"] = [(p.label, p.phone_number) for p in item.phone_numbers or []]
    out["physical_addresses"] = [(a.label, {k: getattr(a, k) for k in _ADDRESS.values() if getattr(a, k)})
                                 for a in item.physical_addresses or []]
    out["body"] = _text(item.body)
    out["birthday"] = item.birthday
    out["categories"] = list(item.categories or [])
    return out


def item_to_contact(item: Contact) -> ContactInput:
    """The unified content of an exchangelib Contact."""
    return fields_to_contact(item_fields(item))


def _attributes(raw: Any, folder: str | None) -> list[Any]:
    """The folder attribute (where the item is), then the attributes stored with the item."""
    try:
        value = json.loads(raw) if isinstance(raw, str) else []
    except ValueError:
        value = []
    stored = [a for a in value if isinstance(a, dict) and a.get("name") != FOLDER_ATTRIBUTE] \
        if isinstance(value, list) else []
    return [{"name": FOLDER_ATTRIBUTE, "value": folder}, *stored] if folder else stored


def _birthday_text(value: Any) -> str | None:
    if not isinstance(value, datetime.date):
        return None
    return f"--{value:%m-%d}" if value.year == NO_YEAR else f"{value.year:04d}-{value:%m-%d}"


def fields_content(fields: EwsFields, folder: str | None = None) -> dict[str, Any]:
    """The normalized unified content of the neutral EWS form (what a pull hashes), `folder` the path of the
    item's folder below Contacts (None: Contacts itself). Never fails on odd data: invalid parts are dropped."""
    return provider_content(_fields_data(fields, folder))


def fields_to_contact(fields: EwsFields, folder: str | None = None) -> ContactInput:
    """`fields_content` as a model."""
    return provider_contact(_fields_data(fields, folder))


def _fields_data(fields: EwsFields, folder: str | None) -> dict[str, Any]:
    """The unified data of the neutral EWS form, without empty parts (so normalizing it copies nothing).

    Values are taken as they are: the rare odd one is dropped by provider_content's validation.
    """
    data: dict[str, Any] = {
        "name": present(fields, _NAME_READS),
        "company": present(fields, _COMPANY_READS),
        "emailAddresses": [{"address": v} for _, v in fields.get("email_addresses") or [] if v],
        "phoneNumbers": [{"number": v, "type": PHONE_TYPES.get(k, "other")}
                         for k, v in fields.get("phone_numbers") or [] if v],
        "addresses": [{**present(parts, _ADDRESS_READS),
                       "type": ADDRESS_TYPES.get(k, "other")} for k, parts in fields.get("physical_addresses") or []],
        "urls": [{"value": v, "type": kind} for kind, attr in _URL_READS if (v := fields.get(attr))],
        "notes": fields.get("body"),
        "birthday": _birthday_text(fields.get("birthday")),
        "keywords": [c for c in fields.get("categories") or [] if c],
        "attributes": _attributes(fields.get("gateway_attributes"), folder),
    }
    return {k: v for k, v in data.items() if v}

