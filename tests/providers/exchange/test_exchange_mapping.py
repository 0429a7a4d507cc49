"""Unified Contact <-> EWS contact: round trips of every mapped field, and the documented losses."""

from __future__ import annotations

import datetime
from typing import Any

from exchangelib import HTMLBody
from exchangelib.items import Contact
from exchangelib.version import EXCHANGE_2016, Version
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.models import ContactInput, content_of
from providers.exchange.ews_xml import ALL_FIELDS, parse_contact, render_fields
from providers.exchange.mapping import (
    EXTENDED,
    FIELD_MAP,
    PHONE_KEYS,
    contact_to_fields,
    contact_to_item_fields,
    fields_to_contact,
    item_to_contact,
)
from providers.exchange.soap import T
from tests.providers.exchange.ews_helpers import FULL

VERSION = Version(build=EXCHANGE_2016)


def via_exchangelib(contact: ContactInput) -> ContactInput:
    """contact -> exchangelib Contact -> the XML exchangelib sends -> parsed back by exchangelib -> contact."""
    item = Contact(**contact_to_item_fields(contact))
    xml = item.to_xml(version=VERSION)
    return item_to_contact(Contact.from_xml(elem=xml, account=None))


def via_emulator_xml(contact: ContactInput) -> ContactInput:
    """contact -> neutral fields -> the emulator's t:Contact XML -> parsed back -> contact."""
    node = etree.Element(f"{{{T}}}Contact")
    render_fields(node, contact_to_fields(contact), ALL_FIELDS | frozenset(EXTENDED))
    return fields_to_contact(parse_contact(etree.fromstring(etree.tostring(node))))


def test_full_contact_covers_every_mapped_field() -> None:
    full = ContactInput.model_validate(FULL)
    content = content_of(full)
    for unified in FIELD_MAP:
        top, _, rest = unified.partition(".")
        top = top.split("[")[0]
        assert top in content, unified
        if rest and not unified.startswith(("urls", "emailAddresses", "phoneNumbers", "addresses")):
            assert rest in content[top], unified
    used = {p["type"] for p in FULL["phoneNumbers"]}
    assert used == set(PHONE_KEYS)


def test_round_trip_every_field() -> None:
    contact = ContactInput.model_validate(FULL)
    assert content_of(fields_to_contact(contact_to_fields(contact))) == content_of(contact)
    assert content_of(via_exchangelib(contact)) == content_of(contact)
    assert content_of(via_emulator_xml(contact)) == content_of(contact)


def test_exchangelib_sees_the_ews_names() -> None:
    item = Contact(**contact_to_item_fields(ContactInput.model_validate(FULL)))
    assert (item.given_name, item.surname, item.generation, item.office) == ("Ada", "Lovelace", "Jr.", "Building 2")
    assert [(p.label, p.phone_number) for p in item.phone_numbers][:3] == [
        ("MobilePhone", "+44 20 0000"), ("BusinessPhone", "+44 20 0001"), ("BusinessPhone2", "+44 20 0002")]
    assert [e.label for e in item.email_addresses] == ["EmailAddress1", "EmailAddress2", "EmailAddress3"]
    assert [a.label for a in item.physical_addresses] == ["Business", "Home", "Other"]
    assert item.birthday == datetime.date(1815, 12, 10) and item.business_homepage == "https://engines.example"
    assert (item.name_prefix, item.personal_homepage) == ("Dr.", "https://ada.example")
    assert item.categories == ["friends", "vip", "Ünïcode"]
    xml = etree.tostring(item.to_xml(version=VERSION)).decode()
    assert 'PropertyTag="0x3a45"' in xml and 'PropertyName="ContactsGatewayAttributes"' in xml


def lossy(data: dict[str, Any]) -> dict[str, Any]:
    contact = ContactInput.model_validate(data)
    out = content_of(via_exchangelib(contact))
    assert out == content_of(via_emulator_xml(contact))  # the emulator loses exactly what Exchange loses
    return out


def test_documented_losses() -> None:
    emails = [{"address": f"a{i}@x.example", "type": "work", "name": "A"} for i in range(4)]
    assert lossy({"emailAddresses": emails}) == {"emailAddresses": [{"address": f"a{i}@x.example"} for i in range(3)]}
    phones = [{"number": "1"}, {"number": "2", "type": "mobile"}, {"number": "3", "type": "mobile"},
              {"number": "4", "type": "blog"}]
    assert lossy({"phoneNumbers": phones})["phoneNumbers"] == [
        {"number": "1", "type": "other"}, {"number": "2", "type": "mobile"}]
    addresses = [{"city": "A", "type": "work"}, {"city": "B", "type": "work"}, {"city": "C"}, {"type": "home"}]
    assert lossy({"addresses": addresses})["addresses"] == [{"city": "A", "type": "work"},
                                                            {"city": "B", "type": "other"}]
    urls = [{"value": "https://a", "type": "blog"}, {"value": "https://b"}, {"value": "https://c", "type": "work"}]
    assert lossy({"urls": urls})["urls"] == [{"value": "https://a", "type": "work"},
                                             {"value": "https://b", "type": "homePage"}]
    assert lossy({"birthday": "--02-29"}) == {"birthday": "--02-29"}
    assert lossy({"birthday": "0000-03-04"}) == {"birthday": "--03-04"}
    assert lossy({"birthday": "2023-02-30"}) == {}
    assert lossy({"name": {"givenName": "No display"}}) == {"name": {"givenName": "No display"}}


def test_reading_odd_exchange_data() -> None:
    item = Contact(display_name="X", body=HTMLBody("<html><body><p>Line <b>one</b></p></body></html>"),
                   birthday=datetime.date(1604, 1, 2))
    assert content_of(item_to_contact(item)) == {"name": {"displayName": "X"}, "notes": "Line one",
                                                 "birthday": "--01-02"}
    fields = {"email_addresses": [("EmailAddress1", "not-an-email"), ("EmailAddress2", "ok@x.example")],
              "phone_numbers": [("Isdn", "1"), ("CompanyMainPhone", "2"), ("Telex", "")],
              "gateway_attributes": "{not json", "given_name": "g" * 300, "surname": "S"}
    assert content_of(fields_to_contact(fields)) == {
        "name": {"familyName": "S"}, "emailAddresses": [{"address": "ok@x.example"}],
        "phoneNumbers": [{"number": "1", "type": "other"}, {"number": "2", "type": "main"}]}
    assert content_of(fields_to_contact({"gateway_attributes": '[{"name": "a"}, 5, {"value": "no name"}]'})) == {
        "attributes": [{"name": "a"}]}


def test_clearing_sends_every_mapped_field() -> None:
    fields = contact_to_item_fields(ContactInput(notes="only notes"))
    assert set(fields) >= {"display_name", "given_name", "phone_numbers", "categories", "name_prefix"}
    assert fields["display_name"] == "" and fields["phone_numbers"] == [] and fields["given_name"] is None


_SUBSETS = st.fixed_dictionaries({}, optional={
    "name": st.sampled_from([FULL["name"], {"givenName": "Only"}]),
    "company": st.just(FULL["company"]),
    "emailAddresses": st.lists(st.sampled_from(FULL["emailAddresses"]), max_size=3, unique_by=lambda e: e["address"]),
    "phoneNumbers": st.lists(st.sampled_from(FULL["phoneNumbers"]), max_size=6, unique_by=lambda p: p["number"]),
    "addresses": st.permutations(FULL["addresses"]),
    "urls": st.sampled_from([FULL["urls"], FULL["urls"][:1], FULL["urls"][1:]]),  # work first: see mapping.py
    "notes": st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=40),
    "birthday": st.dates(datetime.date(1605, 1, 1), datetime.date(2100, 1, 1)).map(str) | st.just("--07-04"),
    "keywords": st.lists(st.sampled_from(["a", "b", "ç"]), max_size=3),
    "attributes": st.lists(st.sampled_from(FULL["attributes"]), max_size=2),
})


@settings(deadline=None, max_examples=60)
@given(_SUBSETS)
def test_round_trip_holdable_subsets(data: dict[str, Any]) -> None:
    phones = data.get("phoneNumbers") or []
    if sum(p["type"] in ("work", "home") for p in phones) > 4:
        return
    contact = ContactInput.model_validate(data)
    assert content_of(via_exchangelib(contact)) == content_of(contact)
    assert content_of(via_emulator_xml(contact)) == content_of(contact)


def test_parsing_real_exchange_shapes() -> None:
    """What real Exchange may send beyond what the emulator renders: HTML notes, property sets by GUID."""
    xml = f"""<t:Contact xmlns:t="{T}"><t:ItemId Id="AAMk1" ChangeKey="CQ1"/>
      <t:Body BodyType="HTML">&lt;html&gt;&lt;body&gt;&lt;p&gt;Met &lt;b&gt;twice&lt;/b&gt;&lt;/p&gt;
        &lt;/body&gt;&lt;/html&gt;</t:Body>
      <t:ExtendedProperty><t:ExtendedFieldURI PropertySetId="00020329-0000-0000-C000-000000000046"
        PropertyName="ContactsGatewayAttributes" PropertyType="String"/><t:Value>[{{"name":"k"}}]</t:Value>
      </t:ExtendedProperty>
      <t:ExtendedProperty><t:ExtendedFieldURI PropertyTag="14917" PropertyType="String"/><t:Value>Ms.</t:Value>
      </t:ExtendedProperty>
      <t:ExtendedProperty><t:ExtendedFieldURI PropertyTag="0x8005" PropertyType="String"/><t:Value>x</t:Value>
      </t:ExtendedProperty>
      <t:CompleteName><t:Title>Ms.</t:Title></t:CompleteName><t:Initials>AL</t:Initials>
      <t:Birthday>1815-12-10T00:00:00+01:00</t:Birthday></t:Contact>"""
    contact = fields_to_contact(parse_contact(etree.fromstring(xml)))
    assert content_of(contact) == {"name": {"prefix": "Ms."}, "notes": "Met twice", "birthday": "1815-12-10",
                                   "attributes": [{"name": "k"}]}
