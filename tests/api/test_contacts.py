"""Contacts CRUD over HTTP: ETags, If-Match, validation, and rejected requests changing nothing."""

from __future__ import annotations

import io
from typing import Any

from gateway.models import ContactInput
from tests.conftest import Gateway

FULL: dict[str, Any] = {
    "name": {"displayName": "Dr Ada King", "prefix": "Dr", "givenName": "Ada", "middleName": "A.",
             "familyName": "King", "suffix": "II", "nickname": "Countess"},
    "company": {"companyName": "Engines", "department": "R&D", "jobTitle": "Analyst", "officeLocation": "B2"},
    "emailAddresses": [{"address": "ada@example.com", "type": "work", "name": "Ada"}],
    "phoneNumbers": [{"number": "+44 1", "type": "mobile"}, {"number": "+44 2", "type": "workFax"}],
    "addresses": [{"street": "1 Main St", "city": "London", "state": "LDN", "postalCode": "W1",
                   "country": "UK", "type": "home"}],
    "urls": [{"value": "https://example.com", "type": "homePage"}],
    "notes": "met at the RI", "birthday": "1815-12-10", "keywords": ["vip"],
    "attributes": [{"name": "crmId", "value": "42", "type": "string"}],
}


async def test_create_get_patch_delete(gw: Gateway) -> None:
    _, auth, provider = await gw.connect("alice")
    resp = await gw.http.post("/v1/contacts", json=FULL, headers=auth)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    etag = resp.headers["ETag"]
    assert etag == f'"{created["etag"]}"' and resp.headers["Location"].endswith(f"/v1/contacts/{created['id']}")
    assert {k: created[k] for k in FULL} == FULL
    assert len(provider.contacts) == 1

    got = await gw.http.get(f"/v1/contacts/{created['id']}", headers=auth)
    assert got.status == 200 and got.headers["ETag"] == etag and await got.json() == created
    cached = await gw.http.get(f"/v1/contacts/{created['id']}", headers={**auth, "If-None-Match": etag})
    assert cached.status == 304

    patch = {"notes": None, "company": {"companyName": "Difference"}}
    resp = await gw.http.patch(f"/v1/contacts/{created['id']}", json=patch, headers={**auth, "If-Match": etag})
    assert resp.status == 200, await resp.text()
    patched = await resp.json()
    assert "notes" not in patched and patched["company"] == {"companyName": "Difference"}
    assert patched["name"] == FULL["name"] and patched["createdTime"] == created["createdTime"]
    assert resp.headers["ETag"] != etag

    stale = await gw.http.delete(f"/v1/contacts/{created['id']}", headers={**auth, "If-Match": etag})
    assert stale.status == 412 and (await stale.json())["currentEtag"] == patched["etag"]
    resp = await gw.http.delete(f"/v1/contacts/{created['id']}", headers={**auth, "If-Match": resp.headers["ETag"]})
    assert resp.status == 204 and provider.contacts == {}
    assert (await gw.http.get(f"/v1/contacts/{created['id']}", headers=auth)).status == 404


async def test_patch_needs_if_match_and_rejects_stale(gw: Gateway) -> None:
    _, auth, provider = await gw.connect("alice")
    created = await (await gw.http.post("/v1/contacts", json={"notes": "x"}, headers=auth)).json()
    url = f"/v1/contacts/{created['id']}"
    resp = await gw.http.patch(url, json={"notes": "y"}, headers=auth)
    assert resp.status == 428 and (await resp.json())["code"] == "precondition_required"
    resp = await gw.http.patch(url, json={"notes": "y"}, headers={**auth, "If-Match": '"bogus"'})
    body = await resp.json()
    assert resp.status == 412 and body["code"] == "precondition_failed" and body["currentEtag"] == created["etag"]
    assert body["message"] and body["requestId"]
    native = next(iter(provider.contacts))
    assert provider.contacts[native][1].notes == "x"


async def test_provider_side_change_makes_patch_412_and_refreshes_the_mirror(gw: Gateway) -> None:
    _, auth, provider = await gw.connect("alice")
    created = await (await gw.http.post("/v1/contacts", json={"notes": "mine"}, headers=auth)).json()
    native = next(iter(provider.contacts))
    provider.update(native, ContactInput.model_validate({"notes": "theirs"}))  # not pulled yet
    resp = await gw.http.patch(f"/v1/contacts/{created['id']}", json={"notes": "again"},
                               headers={**auth, "If-Match": f'"{created["etag"]}"'})
    assert resp.status == 412
    body = await resp.json()
    assert body["currentEtag"] != created["etag"]
    assert provider.contacts[native][1].notes == "theirs"
    now = await (await gw.http.get(f"/v1/contacts/{created['id']}", headers=auth)).json()
    assert now["notes"] == "theirs" and now["etag"] == body["currentEtag"]


async def test_invalid_bodies_are_400_naming_the_field_and_change_nothing(gw: Gateway) -> None:
    account_id, auth, provider = await gw.connect("alice")
    created = await (await gw.http.post("/v1/contacts", json={"notes": "keep"}, headers=auth)).json()
    head = await gw.core.store.head(account_id)
    cases: list[tuple[Any, str]] = [
        ({"emailAddresses": [{"address": "not-an-email"}]}, "emailAddresses.0.address"),
        ({"birthday": "12/10/1815"}, "birthday"),
        ({"nickname": "top-level is unknown"}, "nickname"),
        ({"phoneNumbers": [{"number": "1", "type": "satellite"}]}, "phoneNumbers.0.type"),
        ({"notes": "x" * 40_000}, "notes"),
        ({"keywords": ["k"] * 101}, "keywords"),
        ({"name": {"givenName": "x" * 300}}, "name.givenName"),
        ({"name": {"unknown": "x"}}, "name.unknown"),
        ([1, 2], "body"),
    ]
    for body, field in cases:
        resp = await gw.http.post("/v1/contacts", json=body, headers=auth)
        err = await resp.json()
        assert resp.status == 400 and err["code"] == "validation_error" and err["field"] == field, (body, err)
        resp = await gw.http.patch(f"/v1/contacts/{created['id']}", json=body,
                                   headers={**auth, "If-Match": created["etag"]})
        err = await resp.json()
        assert resp.status == 400, (body, err)
    for patch in ({"id": "x"}, {"etag": "x"}):
        resp = await gw.http.patch(f"/v1/contacts/{created['id']}", json=patch,
                                   headers={**auth, "If-Match": created["etag"]})
        assert resp.status == 400 and (await resp.json())["field"] in patch
    resp = await gw.http.post("/v1/contacts", data=b"{not json", headers={**auth, "Content-Type": "application/json"})
    assert resp.status == 400 and (await resp.json())["code"] == "invalid_json"
    resp = await gw.http.post("/v1/contacts", data=b"", headers=auth)
    assert resp.status == 400 and (await resp.json())["code"] == "invalid_json"
    big = io.BytesIO(b'{"notes": "' + b"x" * 2_000_000 + b'"}')
    resp = await gw.http.post("/v1/contacts", data=big, headers={**auth, "Content-Type": "application/json"})
    assert resp.status == 413 and (await resp.json())["code"] == "payload_too_large"
    assert await gw.core.store.head(account_id) == head
    assert len(provider.contacts) == 1 and next(iter(provider.contacts.values()))[1].notes == "keep"


async def test_list_contacts_pages(gw: Gateway) -> None:
    account_id, auth, provider = await gw.connect("alice")
    for i in range(25):
        provider.create(ContactInput.model_validate({"name": {"givenName": f"P{i:02d}"}}))
    await gw.core.refresher.refresh(account_id)
    seen: list[str] = []
    params: dict[str, str] = {"pageSize": "10"}
    while True:
        page = await (await gw.http.get("/v1/contacts", params=params, headers=auth)).json()
        seen += [r["name"]["givenName"] for r in page["records"]]
        if "nextPageToken" not in page:
            break
        params = {"pageSize": "10", "pageToken": page["nextPageToken"]}
    assert sorted(seen) == [f"P{i:02d}" for i in range(25)]
    assert "nextDeltaToken" not in page
