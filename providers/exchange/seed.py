"""Deterministic, varied, realistic unified contacts for the EWS emulator's seed control call.

The same (count, seed) always gives the same contacts, so a benchmark or a failing test can be replayed.
Fields appear with realistic frequencies and use what an EWS contact can hold (see mapping.py): typed phones
over the EWS keys, at most three emails, Business/Home/Other addresses, a work and a home page, year-less
birthdays. `seed_folder` spreads contacts over the Contacts folder and named subfolders.
"""

from __future__ import annotations

import random
from typing import Any

from gateway.models import ContactInput
from providers.google.seed import DEPARTMENTS, DOMAINS, GIVEN, TITLES, _ascii, _maybe

FAMILY = ["Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Berners-Lee", "Liskov", "Thompson", "Allen",
          "Ritchie", "Lamarr", "McCarthy", "Perlman", "Knuth", "Spärck Jones", "Dijkstra", "Wirth", "García",
          "Nakamura", "Okafor", "Haddad", "Lindqvist", "O'Brien", "Müller", "Chen", "Patel", "Rossi", "Silva"]
COMPANIES = ["Analytical Engines Ltd", "Bletchley Systems", "Cobol & Co", "Kernel Works", "Apollo Guidance",
             "Hypertext Inc", "Acme Corporation", "Initech", "Globex", "Umbrella Logistics"]
#: (street, city, state, country, postal code)
PLACES = [("High Street", "London", None, "United Kingdom", "W1A 1AA"),
          ("Rue de Rivoli", "Paris", "Île-de-France", "France", "75001"),
          ("Unter den Linden", "Berlin", "Berlin", "Germany", "10115"),
          ("Elm Avenue", "Springfield", "IL", "United States", "62701"),
          ("Chuo-dori", "Tokyo", "Tokyo", "Japan", "100-0001"),
          ("Avenida Paulista", "São Paulo", "SP", "Brazil", "01310-100")]
CATEGORIES = ["Business", "Personal", "VIP", "Clients", "Suppliers", "Family"]
NOTES = ["Met at the conference in Lisbon.", "Prefers email over phone.", "Introduced by Ada.\nFollow up in Q3.",
         "Allergic to peanuts — remember for the dinner."]
PHONE_TYPES = ["mobile", "work", "home", "main", "workFax", "homeFax", "pager", "assistant", "car", "other"]
#: Subfolders of Contacts the seed uses, in order, when asked for more than the Contacts folder.
FOLDERS = ["Clients", "Suppliers", "Family", "Archive"]


def _name(rng: random.Random, given: str, family: str) -> dict[str, Any]:
    name: dict[str, Any] = {"givenName": given, "familyName": family, "displayName": f"{given} {family}"}
    if _maybe(rng, 0.15):
        name["prefix"] = rng.choice(["Dr.", "Ms.", "Mr.", "Prof."])
    if _maybe(rng, 0.1):
        name["middleName"] = rng.choice(GIVEN)
    if _maybe(rng, 0.05):
        name["suffix"] = rng.choice(["Jr.", "III"])
    if _maybe(rng, 0.1):
        name["nickname"] = given[:3]
    return name


def _reachable(rng: random.Random, data: dict[str, Any], local: str) -> None:
    if _maybe(rng, 0.85):
        data["emailAddresses"] = [{"address": f"{local}{n or ''}@{rng.choice(DOMAINS)}"}
                                  for n in range(rng.choice([1, 1, 1, 2, 3]))]
    if _maybe(rng, 0.75):
        data["phoneNumbers"] = [
            {"number": f"+{rng.randint(1, 99)} {rng.randint(100, 999)} {rng.randint(1000000, 9999999)}", "type": kind}
            for kind in rng.sample(PHONE_TYPES, k=rng.choice([1, 1, 2, 3]))]
    if _maybe(rng, 0.4):
        street, city, state, country, postcode = rng.choice(PLACES)
        data["addresses"] = [{"street": f"{rng.randint(1, 250)} {street}", "city": city, "state": state,
                              "postalCode": postcode, "country": country,
                              "type": rng.choice(["home", "work", "other"])}]
    if _maybe(rng, 0.2):
        kind = rng.choice(["work", "homePage"])
        data["urls"] = [{"value": f"https://{rng.choice(DOMAINS)}/~{local}", "type": kind}]


def _details(rng: random.Random, data: dict[str, Any]) -> None:
    if _maybe(rng, 0.5):
        data["company"] = {"companyName": rng.choice(COMPANIES), "jobTitle": rng.choice(TITLES)}
        if _maybe(rng, 0.5):
            data["company"]["department"] = rng.choice(DEPARTMENTS)
        if _maybe(rng, 0.2):
            data["company"]["officeLocation"] = f"Building {rng.randint(1, 9)}"
    if _maybe(rng, 0.2):
        data["notes"] = rng.choice(NOTES)
    if _maybe(rng, 0.3):
        year = rng.choice(["--", f"{rng.randint(1940, 2005)}-"])
        data["birthday"] = f"{year}{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if _maybe(rng, 0.25):
        data["keywords"] = rng.sample(CATEGORIES, k=rng.choice([1, 1, 2]))
    if _maybe(rng, 0.1):
        data["attributes"] = [{"name": "crmId", "value": str(rng.randint(10000, 99999)), "type": "text"}]


def _contact(rng: random.Random, i: int) -> dict[str, Any]:
    given, family = rng.choice(GIVEN), rng.choice(FAMILY)
    data: dict[str, Any] = {"name": _name(rng, given, family)}
    _reachable(rng, data, f"{_ascii(given)}.{_ascii(family)}{i}")
    _details(rng, data)
    return data


def generate(count: int, seed: int | str) -> list[ContactInput]:
    """`count` contacts, the same for the same seed."""
    rng = random.Random(seed)
    return [ContactInput.model_validate(_contact(rng, i)) for i in range(count)]


def seed_folder(index: int, folders: int) -> str | None:
    """The subfolder name of the `index`-th seeded contact (None: the Contacts folder itself).

    With `folders` subfolders, one contact in five goes to a subfolder, round robin.
    """
    if folders <= 0 or index % 5 != 4:
        return None
    return FOLDERS[(index // 5) % min(folders, len(FOLDERS))]
