"""EWS contact XML: `t:Contact` elements <-> the neutral `EwsFields` of mapping.py.

The emulator uses both directions; the connector parses GetItem responses with `parse_contact` too, because
exchangelib's generic `Contact.from_xml` (every one of ~100 fields per item) cost 20 times as much and was
most of a sync. So the connector and the emulator read contact XML with the same code.

`ELEMENTS` names, for every exchangelib attribute mapping.py writes, its FieldURI and its XML element; it is
checked against `mapping.ITEM_FIELDS` at import, so the emulator holds exactly what the connector maps.
Indexed fields (email addresses, phones, addresses) keep their entries in the order written, as a list of
(Key, value) pairs. Extended properties are matched on their ExtendedFieldURI attributes (a property set
given by name or by GUID). An HTML body (Outlook writes contact notes so) is read as its text.
"""

from __future__ import annotations

import datetime
from functools import lru_cache
from typing import Any

import lxml.html
from exchangelib.extended_properties import ExtendedProperty
from lxml import etree

from providers.exchange.mapping import EXTENDED, ITEM_FIELDS, EwsFields
from providers.exchange.soap import EwsError, t

#: exchangelib attribute -> (FieldURI, element). Extended properties are in mapping.EXTENDED instead.
ELEMENTS: dict[str, tuple[str, str]] = {
    "body": ("item:Body", "Body"),
    "categories": ("item:Categories", "Categories"),
    "display_name": ("contacts:DisplayName", "DisplayName"),
    "given_name": ("contacts:GivenName", "GivenName"),
    "middle_name": ("contacts:MiddleName", "MiddleName"),
    "nickname": ("contacts:Nickname", "Nickname"),
    "company_name": ("contacts:CompanyName", "CompanyName"),
    "email_addresses": ("contacts:EmailAddress", "EmailAddresses"),
    "physical_addresses": ("contacts:PhysicalAddress", "PhysicalAddresses"),
    "phone_numbers": ("contacts:PhoneNumber", "PhoneNumbers"),
    "birthday": ("contacts:Birthday", "Birthday"),
    "business_homepage": ("contacts:BusinessHomePage", "BusinessHomePage"),
    "department": ("contacts:Department", "Department"),
    "generation": ("contacts:Generation", "Generation"),
    "job_title": ("contacts:JobTitle", "JobTitle"),
    "office": ("contacts:OfficeLocation", "OfficeLocation"),
    "surname": ("contacts:Surname", "Surname"),
}
if set(ELEMENTS) | set(EXTENDED) != set(ITEM_FIELDS):
    raise RuntimeError("ews_xml.ELEMENTS has drifted from mapping.ITEM_FIELDS")

#: PhysicalAddress sub-element -> exchangelib sub-field name.
ADDRESS_PARTS: dict[str, str] = {"Street": "street", "City": "city", "State": "state", "CountryOrRegion": "country",
                                 "PostalCode": "zipcode"}
_INDEXED = {"email_addresses", "phone_numbers", "physical_addresses"}
_BY_URI = {uri: attr for attr, (uri, _) in ELEMENTS.items()}
_BY_ELEMENT = {t(element): attr for attr, (_, element) in ELEMENTS.items()}
#: Server-owned item properties the emulator renders from the record itself: FieldURI -> name.
META_URIS: dict[str, str] = {"item:DateTimeCreated": "datetime_created", "item:LastModifiedTime": "last_modified_time",
                             "item:ParentFolderId": "parent_folder_id", "item:ItemClass": "item_class",
                             "item:Subject": "subject"}
#: Every non-extended field, what AllProperties returns.
ALL_FIELDS: frozenset[str] = frozenset(ELEMENTS) | frozenset(META_URIS.values())


_SET_NAMES = ExtendedProperty.DISTINGUISHED_SET_ID_TO_NAME_MAP


def _extended_key(uri: etree._Element) -> str | None:
    """The exchangelib attribute an ExtendedFieldURI names, or None when it is none of ours."""
    tag = uri.get("PropertyTag")
    set_name = uri.get("DistinguishedPropertySetId") or _SET_NAMES.get((uri.get("PropertySetId") or "").lower())
    for attr, cls in EXTENDED.items():
        if tag is not None and getattr(cls, "property_tag", None) is not None:
            try:
                if int(tag, 0) == cls.property_tag:
                    return attr
            except ValueError:
                return None
        elif uri.get("PropertyName") == cls.property_name and set_name == cls.distinguished_property_set_id:
            return attr
    return None


def _render_extended(parent: etree._Element, attr: str, value: str) -> None:
    cls = EXTENDED[attr]
    node = etree.SubElement(parent, t("ExtendedProperty"))
    uri: dict[str, str] = {"PropertyType": str(cls.property_type)}
    if getattr(cls, "property_tag", None) is not None:
        uri["PropertyTag"] = hex(int(cls.property_tag))
    else:
        uri.update(DistinguishedPropertySetId=str(cls.distinguished_property_set_id),
                   PropertyName=str(cls.property_name))
    etree.SubElement(node, t("ExtendedFieldURI"), uri)
    etree.SubElement(node, t("Value")).text = value


# --- XML -> fields -------------------------------------------------------------------------------------

# Qualified tag names, made once: parsing runs per contact of every pull.
_ENTRY, _EXTENDED_PROPERTY, _EXTENDED_FIELD_URI, _VALUE, _STRING = (
    t(n) for n in ("Entry", "ExtendedProperty", "ExtendedFieldURI", "Value", "String"))
_ADDRESS_BY_TAG = {t(part): attr for part, attr in ADDRESS_PARTS.items()}

def _parse_entries(attr: str, elem: etree._Element) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    addresses = attr == "physical_addresses"
    for entry in elem.iterchildren(_ENTRY):
        key = entry.get("Key") or ""
        if addresses:
            parts = {}
            for c in entry:
                part = _ADDRESS_BY_TAG.get(c.tag)
                if part is not None and (text := c.text):
                    parts[part] = text
            out.append((key, parts))
        elif text := entry.text:
            out.append((key, text))
    return out


@lru_cache(maxsize=4096)  # birthdays repeat across an address book
def _birthday(text: str) -> datetime.date:
    try:
        value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise EwsError("ErrorInvalidValueForProperty", f"Invalid Birthday: {text!r}") from None
    return value.date()  # the date as written, offset or not (as exchangelib reads it)


def parse_contact(elem: etree._Element) -> EwsFields:
    """The neutral fields of a `t:Contact` element (unknown elements are ignored).

    This runs for every contact of every Exchange pull: each child's tag is read once (lxml builds it anew
    on every access), and absent or empty values are never stored.
    """
    fields: EwsFields = {}
    for child in elem:
        tag = child.tag
        attr = _BY_ELEMENT.get(tag)
        if attr is None:
            if tag == _EXTENDED_PROPERTY:
                uri, value = child.find(_EXTENDED_FIELD_URI), child.find(_VALUE)
                attr = _extended_key(uri) if uri is not None else None
                if attr is not None and value is not None and value.text:
                    fields[attr] = value.text
            continue
        if attr in _INDEXED:
            if entries := _parse_entries(attr, child):
                fields[attr] = entries
        elif attr == "categories":
            if categories := [s.text for s in child.iterchildren(_STRING) if s.text]:
                fields[attr] = categories
        elif not (text := child.text):
            continue
        elif attr == "birthday":
            fields[attr] = _birthday(text)
        elif attr == "body" and child.get("BodyType") == "HTML":
            if body := str(lxml.html.fromstring(text).text_content()).strip():
                fields[attr] = body
        else:
            fields[attr] = text
    return fields


# --- fields -> XML -------------------------------------------------------------------------------------

def _render_field(parent: etree._Element, attr: str, value: Any) -> None:
    node = etree.SubElement(parent, t(ELEMENTS[attr][1]))
    if attr == "body":
        node.set("BodyType", "Text")
        node.text = value
    elif attr == "categories":
        for category in value:
            etree.SubElement(node, t("String")).text = category
    elif attr == "birthday":
        node.text = f"{value.isoformat()}T11:59:00Z"
    elif attr == "physical_addresses":
        for key, parts in value:
            entry = etree.SubElement(node, t("Entry"), Key=key)
            for element, part in ADDRESS_PARTS.items():
                if parts.get(part):
                    etree.SubElement(entry, t(element)).text = parts[part]
    elif attr in _INDEXED:
        for key, text in value:
            etree.SubElement(node, t("Entry"), Key=key).text = text
    else:
        node.text = value


def render_fields(parent: etree._Element, fields: EwsFields, wanted: frozenset[str]) -> None:
    """Append the `wanted` fields the contact holds, in the schema's order (item fields, then contact fields)."""
    if "body" in wanted and fields.get("body"):
        _render_field(parent, "body", fields["body"])
    if "categories" in wanted and fields.get("categories"):
        _render_field(parent, "categories", fields["categories"])
    for attr in EXTENDED:
        if attr in wanted and fields.get(attr):
            _render_extended(parent, attr, fields[attr])
    for attr in ELEMENTS:
        if attr not in ("body", "categories") and attr in wanted and fields.get(attr):
            _render_field(parent, attr, fields[attr])


def field_of_path(path: etree._Element) -> tuple[str, str | None, str | None]:
    """(attribute, index Key or None, address part or None) of a FieldURI / IndexedFieldURI / ExtendedFieldURI."""
    uri = path.get("FieldURI") or ""
    if path.tag == t("ExtendedFieldURI"):
        attr = _extended_key(path)
        if attr is None:
            raise EwsError("ErrorInvalidPropertyRequest", "The emulator holds no such extended property.")
        return attr, None, None
    if path.tag == t("IndexedFieldURI"):
        base, _, part = uri.partition(":PhysicalAddress:")
        if part:
            return "physical_addresses", path.get("FieldIndex"), ADDRESS_PARTS.get(part)
        return _BY_URI.get(uri, ""), path.get("FieldIndex"), None
    return _BY_URI.get(uri) or META_URIS.get(uri, ""), None, None


def wanted_fields(shape: etree._Element | None) -> frozenset[str]:
    """The attributes an ItemShape asks for: AllProperties/Default give every non-extended one."""
    if shape is None:
        return frozenset()
    base = shape.findtext(t("BaseShape")) or shape.findtext("{*}BaseShape") or "IdOnly"
    wanted = set(ALL_FIELDS) if base in ("AllProperties", "Default") else set()
    extra = shape.find("{*}AdditionalProperties")
    for path in extra if extra is not None else []:
        try:
            attr = field_of_path(path)[0]
        except EwsError:
            continue
        if attr:
            wanted.add(attr)
    return frozenset(wanted)


# --- UpdateItem ----------------------------------------------------------------------------------------

def _set_indexed(entries: list[tuple[str, Any]], key: str, value: Any) -> list[tuple[str, Any]]:
    out = [(k, value if k == key else v) for k, v in entries]
    return out if any(k == key for k, _ in entries) else [*out, (key, value)]


def apply_update(fields: EwsFields, change: etree._Element) -> None:
    """Apply one SetItemField / DeleteItemField to `fields` in place."""
    path = next((c for c in change if c.tag in (t("FieldURI"), t("IndexedFieldURI"), t("ExtendedFieldURI"))), None)
    if path is None:
        raise EwsError("ErrorInvalidPropertyRequest", "The update names no field.")
    attr, key, part = field_of_path(path)
    if not attr or attr in META_URIS.values() or (attr in _INDEXED and not key):
        return  # a field the emulator does not hold: accepted and ignored, as for unknown elements
    setting = change.tag == t("SetItemField")
    value = parse_contact(change.find(t("Contact"))).get(attr) if setting and change.find(t("Contact")) is not None \
        else None
    if attr not in _INDEXED:
        if value is None:
            fields.pop(attr, None)
        else:
            fields[attr] = value
        return
    entries: list[tuple[str, Any]] = list(fields.get(attr) or [])
    new = dict(value or []).get(key) if setting else None
    if attr == "physical_addresses" and part is not None:
        parts = dict(dict(entries).get(key) or {})
        parts.pop(part, None)
        if isinstance(new, dict) and new.get(part):
            parts[part] = new[part]
        entries = _set_indexed(entries, key or "", parts) if parts else [e for e in entries if e[0] != key]
    elif new:
        entries = _set_indexed(entries, key or "", new)
    else:
        entries = [e for e in entries if e[0] != key]
    fields[attr] = entries
    if not entries:
        fields.pop(attr)
