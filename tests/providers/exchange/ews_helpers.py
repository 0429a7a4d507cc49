"""Helpers shared by the Exchange provider tests: the control API client, a full contact, TLS."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.providers.control import EmulatorControl


class Control(EmulatorControl):
    """The EWS emulator's /_control API, with its additions: folders and poison items."""

    async def add_user(self, user: str) -> dict[str, str]:
        body = await self.call("POST", "/users", {"user": user}, 201)
        assert body["user"] == user
        return dict(body["credentials"])

    async def create(self, user: str, contact: dict[str, Any], folder: str | None = None) -> str:
        path = f"/users/{user}/contacts" + (f"?folder={folder}" if folder else "")
        return str((await self.call("POST", path, contact, 201))["nativeId"])

    async def folder(self, user: str, name: str) -> str:
        return str((await self.call("POST", f"/users/{user}/folders", {"name": name}, 201))["folderId"])

    async def poison(self, user: str, native_id: str, code: str | None = None) -> None:
        await self.call("POST", f"/users/{user}/contacts/{native_id}/poison", {"code": code} if code else {}, 204)

    async def heal(self, user: str, native_id: str) -> None:
        await self.call("DELETE", f"/users/{user}/contacts/{native_id}/poison", expect=204)



#: A contact using every field an EWS contact can hold, each in a form it holds exactly (see mapping.py).
FULL: dict[str, Any] = {
    "name": {"displayName": "Dr. Ada King Lovelace Jr.", "prefix": "Dr.", "givenName": "Ada", "middleName": "King",
             "familyName": "Lovelace", "suffix": "Jr.", "nickname": "Countess"},
    "company": {"companyName": "Analytical Engines Ltd", "department": "R&D", "jobTitle": "Analyst",
                "officeLocation": "Building 2"},
    "emailAddresses": [{"address": "ada@example.com"}, {"address": "ada@home.example"}, {"address": "a@x.example"}],
    "phoneNumbers": [{"number": "+44 20 0000", "type": "mobile"}, {"number": "+44 20 0001", "type": "work"},
                     {"number": "+44 20 0002", "type": "work"}, {"number": "+44 20 0003", "type": "home"},
                     {"number": "+44 20 0004", "type": "home"}, {"number": "+44 20 0005", "type": "workFax"},
                     {"number": "+44 20 0006", "type": "homeFax"}, {"number": "+44 20 0007", "type": "otherFax"},
                     {"number": "+44 20 0008", "type": "pager"}, {"number": "+44 20 0009", "type": "assistant"},
                     {"number": "555", "type": "car"}, {"number": "556", "type": "callback"},
                     {"number": "557", "type": "main"}, {"number": "558", "type": "other"}],
    "addresses": [{"street": "1 Main St\nFlat 2", "city": "London", "state": "Greater London", "postalCode": "W1",
                   "country": "United Kingdom", "type": "work"},
                  {"city": "Paris", "type": "home"}, {"street": "Elsewhere 3", "country": "Japan", "type": "other"}],
    "urls": [{"value": "https://engines.example", "type": "work"},
             {"value": "https://ada.example", "type": "homePage"}],
    "notes": "Met at the Royal Institution.\nLikes engines — and “quotes” & <tags>.",
    "birthday": "1815-12-10",
    "keywords": ["friends", "vip", "Ünïcode"],
    "attributes": [{"name": "crmId", "value": "42", "type": "text"}, {"name": "flag"}],
}


def self_signed(directory: Path) -> tuple[ssl.SSLContext, str]:
    """A server TLS context for 127.0.0.1 with a fresh self-signed certificate, and the certificate's path."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "EWS emulator test CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "ews.pem", directory / "ews.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context, str(cert_path)
