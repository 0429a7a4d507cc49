"""The Contact <-> Person mapping: round trips of everything a Person holds, and Google data read leniently."""

from __future__ import annotations

from typing import Any, get_args

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.models import ContactInput, ContactType, content_of
from providers.google.mapping import (
    FIELD_MAP,
    PERSON_FIELDS,
    UPDATE_FIELDS,
    contact_to_person,
    person_to_contact,
    unified_type,
    update_person_fields,
)
from tests.providers.google.google_helpers import FULL


def roundtrip(contact: ContactInput) -> ContactInput:
    return person_to_contact(contact_to_person(contact))


def test_every_mappable_field_round_trips() -> None:
    contact = ContactInput.model_validate(FULL)
    assert content_of(roundtrip(contact)) == content_of(contact)
    assert content_of(roundtrip(contact)) == content_of(ContactInput.model_validate(FULL))  # not vacuous


def test_person_shape_follows_the_table() -> None:
    person = contact_to_person(ContactInput.model_validate(FULL))
    assert person["names"] == [{"displayName": "Dr. Ada King Lovelace Jr.", "honorificPrefix": "Dr.",
                                "givenName": "Ada", "middleName": "King", "familyName": "Lovelace",
                                "honorificSuffix": "Jr.", "unstructuredName": "Dr. Ada King Lovelace Jr."}]
    assert person["nicknames"] == [{"value": "Countess"}]
    assert person["organizations"] == [{"name": "Analytical Engines Ltd", "department": "R&D",
                                        "title": "Analyst", "location": "Building 2"}]
    assert person["emailAddresses"][0] == {"value": "ada@example.com", "type": "work", "displayName": "Ada L."}
    assert person["addresses"][0]["region"] == "Greater London"
    assert person["addresses"][0]["streetAddress"] == "1 Main St\nFlat 2"
    assert person["biographies"] == [{"value": FULL["notes"], "contentType": "TEXT_PLAIN"}]
    assert person["birthdays"] == [{"date": {"year": 1815, "month": 12, "day": 10}}]
    assert person["userDefined"] == [{"key": "crmId", "value": "42"}, {"key": "flag"}]
    groups = [m["contactGroupMembership"]["contactGroupResourceName"] for m in person["memberships"]]
    assert groups == ["contactGroups/myContacts", "contactGroups/friends", "contactGroups/vip"]
    assert set(person) == set(UPDATE_FIELDS)


def test_field_masks_cover_the_table() -> None:
    tops = {path.split("[")[0].split(".")[0] for path in FIELD_MAP.values()}
    assert set(update_person_fields(ContactInput()).split(",")) == tops
    assert set(PERSON_FIELDS.split(",")) == tops | {"metadata"}


def test_birthday_without_year() -> None:
    contact = ContactInput(birthday="--02-29")
    assert contact_to_person(contact)["birthdays"] == [{"date": {"month": 2, "day": 29}}]
    assert roundtrip(contact).birthday == "--02-29"
    assert person_to_contact({"birthdays": [{"date": {"year": 0, "month": 3, "day": 4}}]}).birthday == "--03-04"
    assert person_to_contact({"birthdays": [{"text": "sometime"}]}).birthday is None


def test_documented_losses() -> None:
    contact = ContactInput.model_validate({"attributes": [{"name": "k", "value": "v", "type": "custom"}],
                                           "keywords": ["myContacts", "a", "a"], "birthday": "0000-01-02"})
    back = roundtrip(contact)
    assert back.attributes is not None and back.attributes[0].type is None
    assert back.keywords == ["a"]
    assert back.birthday == "--01-02"


def test_google_types_map_to_the_vocabulary() -> None:
    assert unified_type("workMobile") == "mobile"
    assert unified_type("workPager") == "pager"
    assert unified_type("googleVoice") == "other"
    assert unified_type("Boat phone") == "other"
    assert unified_type("homeFax") == "homeFax"
    assert unified_type("Work") == "work"
    assert unified_type(None) is None
    for vocabulary_type in get_args(ContactType):
        assert unified_type(vocabulary_type) == vocabulary_type


def test_reading_google_data_is_lenient() -> None:
    person = {
        "resourceName": "people/c1", "etag": "%x",
        "names": [{"givenName": "Old", "metadata": {"primary": False}},
                  {"unstructuredName": "Grace Hopper", "givenName": "Grace", "metadata": {"primary": True}}],
        "emailAddresses": [{"value": "not-an-email", "type": "home"},
                           {"value": "grace@navy.example", "type": "workMobile", "formattedType": "Work"}],
        "phoneNumbers": [{"value": "+1 555", "type": "Sailboat", "canonicalForm": "+1555"}],
        "organizations": [{"name": "US Navy", "current": True}, {"name": "Remington Rand"}],
        "memberships": [{"contactGroupMembership": {"contactGroupId": "starred"}},
                        {"contactGroupMembership": {"contactGroupResourceName": "contactGroups/myContacts"}},
                        {"domainMembership": {"inViewerDomain": True}}],
        "photos": [{"url": "https://example.com/p.jpg"}],
        "biographies": [{"value": "x" * 40_000}],
    }
    contact = person_to_contact(person)
    assert content_of(contact) == {
        "name": {"displayName": "Grace Hopper", "givenName": "Grace"},
        "company": {"companyName": "US Navy"},
        "emailAddresses": [{"address": "grace@navy.example", "type": "mobile"}],
        "phoneNumbers": [{"number": "+1 555", "type": "other"}],
        "keywords": ["starred"],
    }
    assert person_to_contact({"biographies": [{"value": "x" * 40_000}], "urls": [{"value": "u"}]}) == \
        ContactInput.model_validate({"urls": [{"value": "u"}]})


def test_an_empty_person_is_an_empty_contact() -> None:
    assert content_of(person_to_contact({"resourceName": "people/c1", "etag": "%e"})) == {}
    assert contact_to_person(ContactInput()) == {
        "memberships": [{"contactGroupMembership": {"contactGroupResourceName": "contactGroups/myContacts"}}]}


_text = st.text(max_size=12)
_type = st.none() | st.sampled_from(get_args(ContactType))
_email = st.from_regex(r"[a-z0-9._+-]{1,8}@[a-z0-9-]{1,8}\.example", fullmatch=True)
_birthday = st.dates().filter(lambda d: d.year > 0).map(lambda d: d.isoformat()) | st.dates().map(
    lambda d: d.strftime("--%m-%d"))
_keyword = st.text(min_size=1, max_size=10).filter(lambda k: k != "myContacts")
_contacts = st.fixed_dictionaries({}, optional={
    "name": st.fixed_dictionaries({}, optional={k: _text for k in (
        "displayName", "prefix", "givenName", "middleName", "familyName", "suffix", "nickname")}),
    "company": st.fixed_dictionaries({}, optional={k: _text for k in (
        "companyName", "department", "jobTitle", "officeLocation")}),
    "emailAddresses": st.lists(st.fixed_dictionaries({"address": _email}, optional={"type": _type, "name": _text}),
                               max_size=3),
    "phoneNumbers": st.lists(st.fixed_dictionaries({"number": st.text(min_size=1, max_size=12)},
                                                   optional={"type": _type}), max_size=3),
    "addresses": st.lists(st.fixed_dictionaries({}, optional={k: _text for k in (
        "street", "city", "state", "postalCode", "country")} | {"type": _type}), max_size=2),
    "urls": st.lists(st.fixed_dictionaries({"value": st.text(min_size=1, max_size=12)}, optional={"type": _type}),
                     max_size=2),
    "notes": st.text(max_size=40),
    "birthday": _birthday,
    "keywords": st.lists(_keyword, max_size=4, unique=True),
    "attributes": st.lists(st.fixed_dictionaries({"name": st.text(min_size=1, max_size=8)},
                                                 optional={"value": st.none() | _text}), max_size=3),
})


@settings(max_examples=150, deadline=None)
@given(_contacts)
def test_round_trip_property(data: dict[str, Any]) -> None:
    contact = ContactInput.model_validate(data)
    assert content_of(roundtrip(contact)) == content_of(contact)
