"""The flat record of the single-token change feed, derived from the unified Contact.

Which value fills which slot:
- name: name.displayName, else prefix/given/middle/family/suffix joined by spaces.
- email: the first email address.  company / title: company.companyName / company.jobTitle.
- business, business2: the first two phones typed `work`; mobile_phone(2): `mobile`;
  home_phone(2): `home`; business_fax: `workFax`; home_fax: `homeFax`.
- other: the first phone of any other type (main, otherFax, pager, assistant, car, callback,
  other, untyped), or a third phone of a type whose two slots are full.
- address: the first address (work before home before the rest), its parts joined
  "street, city, state postalCode, country", empty parts left out, lines of the street
  joined by ", ".
- notes: notes.
- favorite: true when the contact carries a favourite marker as a keyword, case-insensitive:
  `starred` (Google's starred contact group), `favorite`/`favorites`/`favourites`
  (a Graph or Exchange category of that name). Providers without such a notion give false.
A deleted contact is only {"id", "change_type": "DELETED"}.
"""

from __future__ import annotations

from typing import Any

FAVORITE_KEYWORDS = frozenset({"starred", "favorite", "favorites", "favourite", "favourites"})
FIELDS = ("id", "name", "email", "company", "title", "business", "business2", "mobile_phone", "mobile_phone2",
          "home_phone", "home_phone2", "other", "business_fax", "home_fax", "address", "notes", "favorite")
_SLOTS: dict[str, tuple[str, ...]] = {
    "work": ("business", "business2"), "mobile": ("mobile_phone", "mobile_phone2"),
    "home": ("home_phone", "home_phone2"), "workFax": ("business_fax",), "homeFax": ("home_fax",),
}
_ADDRESS_ORDER = {"work": 0, "home": 1}


def _name(name: dict[str, Any]) -> str | None:
    if name.get("displayName"):
        return str(name["displayName"])
    parts = [name.get(k) for k in ("prefix", "givenName", "middleName", "familyName", "suffix")]
    joined = " ".join(p for p in parts if p)
    return joined or None


def _address(addresses: list[dict[str, Any]]) -> str | None:
    if not addresses:
        return None
    first = sorted(addresses, key=lambda a: _ADDRESS_ORDER.get(a.get("type") or "", 2))[0]
    street = ", ".join(line.strip() for line in (first.get("street") or "").splitlines() if line.strip())
    region = " ".join(p for p in (first.get("state"), first.get("postalCode")) if p)
    parts = [street, first.get("city"), region, first.get("country")]
    return ", ".join(p for p in parts if p) or None


def _phones(phones: list[dict[str, Any]], out: dict[str, Any]) -> None:
    for phone in phones:
        slots = _SLOTS.get(phone.get("type") or "", ())
        free = [s for s in slots if out.get(s) is None]
        if free:
            out[free[0]] = phone["number"]
        elif out.get("other") is None:
            out["other"] = phone["number"]


def flat_record(contact: dict[str, Any], change_type: str) -> dict[str, Any]:
    """The flat record of a served Contact JSON, with its change type."""
    out: dict[str, Any] = dict.fromkeys(FIELDS)
    out["id"] = contact["id"]
    out["name"] = _name(contact.get("name") or {})
    emails = contact.get("emailAddresses") or []
    out["email"] = emails[0]["address"] if emails else None
    company = contact.get("company") or {}
    out["company"], out["title"] = company.get("companyName"), company.get("jobTitle")
    _phones(contact.get("phoneNumbers") or [], out)
    out["address"] = _address(contact.get("addresses") or [])
    out["notes"] = contact.get("notes")
    out["favorite"] = any(k.lower() in FAVORITE_KEYWORDS for k in contact.get("keywords") or [])
    out["change_type"] = change_type
    return out


def deleted_record(contact_id: str) -> dict[str, Any]:
    return {"id": contact_id, "change_type": "DELETED"}
