"""The Contact <-> Graph contact mapping: round trips of everything Graph holds, the documented losses, leniency."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.models import ContactInput, content_of
from providers.base import folder_of
from providers.microsoft.emulator_state import WRITABLE, clean_contact
from providers.microsoft.mapping import (
    FIELD_MAP,
    GRAPH_FIELDS,
    SELECT,
    contact_to_graph,
    graph_to_contact,
    unified_birthday,
)
from tests.providers.microsoft.microsoft_helpers import FULL


def roundtrip(contact: ContactInput) -> ContactInput:
    return graph_to_contact(contact_to_graph(contact), folder_of(contact))


def test_every_mappable_field_round_trips() -> None:
    contact = ContactInput.model_validate(FULL)
    assert content_of(roundtrip(contact)) == content_of(ContactInput.model_validate(FULL))
    assert set(content_of(contact)) == {"name", "company", "emailAddresses", "phoneNumbers", "addresses", "urls",
                                        "notes", "birthday", "keywords", "attributes"}  # not vacuous


def test_graph_body_follows_the_table() -> None:
    body = contact_to_graph(ContactInput.model_validate(FULL))
    assert {k: body[k] for k in ("displayName", "title", "givenName", "middleName", "surname", "generation",
                                 "nickName")} == {
        "displayName": "Dr. Ada King Lovelace Jr.", "title": "Dr.", "givenName": "Ada", "middleName": "King",
        "surname": "Lovelace", "generation": "Jr.", "nickName": "Countess"}
    assert (body["companyName"], body["department"], body["jobTitle"], body["officeLocation"]) == (
        "Analytical Engines Ltd", "R&D", "Analyst", "Building 2")
    assert body["emailAddresses"] == [{"address": "ada@example.com", "name": "Ada L."},
                                      {"address": "ada@home.example"}]
    assert body["businessPhones"] == ["+44 20 0001", "+44 20 0002"]
    assert body["homePhones"] == ["+44 20 0003"] and body["mobilePhone"] == "+44 20 0000"
    assert body["businessAddress"] == {"street": "1 Main St\nFlat 2", "city": "London", "state": "Greater London",
                                       "postalCode": "W1", "countryOrRegion": "United Kingdom"}
    assert body["homeAddress"] == {"city": "Paris"} and body["otherAddress"] == {"street": "3 Other Road"}
    assert body["businessHomePage"] == "https://ada.example"
    assert body["personalNotes"] == FULL["notes"]
    assert body["birthday"] == "1815-12-10T00:00:00Z"
    assert body["categories"] == ["friends", "vip"]
    assert set(body) == set(GRAPH_FIELDS)  # the folder is the URL, never a body property
    assert clean_contact(body) == body  # Graph (the emulator) accepts every property as is


def test_an_empty_contact_clears_every_property() -> None:
    body = contact_to_graph(ContactInput())
    assert set(body) == set(GRAPH_FIELDS)
    assert all(v in (None, [], {}) for v in body.values())
    assert content_of(graph_to_contact(body)) == {}


def test_table_and_select_cover_the_properties() -> None:
    graph_props = {v.split("[")[0].split(".")[0].split(" ")[0] for v in FIELD_MAP.values()}
    graph_props = {"businessAddress" if p == "*Address" else p for p in graph_props}
    assert graph_props - {"parentFolderId"} <= set(GRAPH_FIELDS)
    assert set(GRAPH_FIELDS) <= WRITABLE
    assert set(SELECT.split(",")) == set(GRAPH_FIELDS) | {"id", "changeKey", "parentFolderId", "createdDateTime",
                                                          "lastModifiedDateTime"}


def test_birthdays() -> None:
    assert contact_to_graph(ContactInput(birthday="--02-29"))["birthday"] == "1604-02-29T00:00:00Z"
    assert roundtrip(ContactInput(birthday="--02-29")).birthday == "--02-29"
    assert roundtrip(ContactInput(birthday="0000-01-02")).birthday == "--01-02"  # documented loss
    assert unified_birthday("1815-12-10T11:59:00Z") == "1815-12-10"
    assert unified_birthday("1815-12-09T23:00:00Z") == "1815-12-10"  # local midnight at UTC+1
    assert unified_birthday("1990-05-15T05:00:00Z") == "1990-05-15"  # local midnight at UTC-5
    assert unified_birthday("1990-05-15") == "1990-05-15"
    assert unified_birthday("1990-02-30T00:00:00Z") is None
    assert unified_birthday(None) is None and unified_birthday("soon") is None


def test_documented_losses() -> None:
    contact = ContactInput.model_validate({
        "emailAddresses": [{"address": "a@x.example", "type": "work"}],
        "phoneNumbers": [{"number": "1", "type": "mobile"}, {"number": "2", "type": "mobile"},
                         {"number": "3", "type": "pager"}, {"number": "4"}, {"number": "5", "type": "home"}],
        "addresses": [{"city": "A", "type": "home"}, {"city": "B", "type": "home"}, {"city": "C"},
                      {"city": "D", "type": "other"}],
        "urls": [{"value": "https://blog.example", "type": "blog"}, {"value": "https://home.example",
                                                                       "type": "homePage"}],
        "attributes": [{"name": "crmId", "value": "42"}, {"name": "folder", "value": "Work", "type": "t"}]})
    back = roundtrip(contact)
    assert content_of(back) == {
        "emailAddresses": [{"address": "a@x.example"}],
        "phoneNumbers": [{"number": "5", "type": "home"}, {"number": "1", "type": "mobile"}],
        "addresses": [{"city": "A", "type": "home"}, {"city": "C", "type": "other"}],
        "urls": [{"value": "https://home.example", "type": "work"}],
        "attributes": [{"name": "folder", "value": "Work"}]}
    assert folder_of(ContactInput.model_validate({"attributes": [{"name": "folder"}]})) is None
    for value, path in (("Work//Clients/", "Work/Clients"), (" / ", None), ("Work", "Work")):
        assert folder_of(ContactInput.model_validate({"attributes": [{"name": "folder", "value": value}]})) == path


def test_reading_graph_data_is_lenient() -> None:
    item = {"id": "AAMk1", "@odata.etag": 'W/"x"', "givenName": "Grace", "surname": "", "nickName": None,
            "emailAddresses": [{"address": "not-an-email"}, {"address": "grace@navy.example", "name": ""},
                               "junk"],
            "businessPhones": ["+1 555", ""], "homePhones": None, "mobilePhone": "",
            "homeAddress": {"city": "Arlington", "street": None}, "otherAddress": None, "businessAddress": {},
            "categories": ["x" * 300, "ok"], "personalNotes": "x" * 40_000, "birthday": "garbage",
            "spouseName": "Vincent", "imAddresses": ["grace@im.example"], "children": ["c"]}
    assert content_of(graph_to_contact(item)) == {
        "name": {"givenName": "Grace"},
        "emailAddresses": [{"address": "grace@navy.example"}],
        "phoneNumbers": [{"number": "+1 555", "type": "work"}],
        "addresses": [{"city": "Arlington", "type": "home"}],
        "keywords": ["ok"]}
    assert content_of(graph_to_contact({"id": "AAMk2"})) == {}


_text = st.text(min_size=1, max_size=12)
_email = st.from_regex(r"[a-z0-9._+-]{1,8}@[a-z0-9-]{1,8}\.example", fullmatch=True)
_birthday = st.dates().filter(lambda d: d.year != 1604).map(lambda d: d.isoformat()) | st.dates().map(
    lambda d: d.strftime("--%m-%d"))
#: A folder path as it reads back: "/"-joined non-blank names (an empty part is dropped on the way).
_folder_path = st.lists(_text.filter(lambda t: "/" not in t and t.strip()), min_size=1, max_size=3).map("/".join)
_address_fields = st.fixed_dictionaries({}, optional={k: _text for k in (
    "street", "city", "state", "postalCode", "country")}).filter(bool)


@st.composite
def holdable(draw: st.DrawFn) -> dict[str, Any]:
    """A contact holding only what Graph holds, in Graph's order (phones and addresses by slot)."""
    data: dict[str, Any] = draw(st.fixed_dictionaries({}, optional={
        "name": st.fixed_dictionaries({}, optional={k: _text for k in (
            "displayName", "prefix", "givenName", "middleName", "familyName", "suffix", "nickname")}),
        "company": st.fixed_dictionaries({}, optional={k: _text for k in (
            "companyName", "department", "jobTitle", "officeLocation")}),
        "emailAddresses": st.lists(st.fixed_dictionaries({"address": _email}, optional={"name": _text}),
                                   max_size=3),
        "urls": st.lists(st.fixed_dictionaries({"value": _text, "type": st.just("work")}), max_size=1),
        "notes": st.text(max_size=40), "birthday": _birthday,
        "keywords": st.lists(_text, max_size=4),
        "attributes": st.lists(st.fixed_dictionaries({"name": st.just("folder"), "value": _folder_path}),
                               max_size=1),
    }))
    phones = [{"number": n, "type": "work"} for n in draw(st.lists(_text, max_size=2))]
    phones += [{"number": n, "type": "home"} for n in draw(st.lists(_text, max_size=2))]
    phones += [{"number": n, "type": "mobile"} for n in draw(st.lists(_text, max_size=1))]
    kinds = draw(st.lists(st.sampled_from(["work", "home", "other"]), unique=True, max_size=3))
    addresses = [{**draw(_address_fields), "type": k} for k in ("work", "home", "other") if k in kinds]
    return {**data, "phoneNumbers": phones, "addresses": addresses}


@settings(max_examples=150, deadline=None)
@given(holdable())
def test_round_trip_property(data: dict[str, Any]) -> None:
    contact = ContactInput.model_validate(data)
    assert content_of(roundtrip(contact)) == content_of(contact)
