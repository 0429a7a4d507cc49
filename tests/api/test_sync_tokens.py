"""The single-token feed: flat records, change types, continuation, and token errors."""

from __future__ import annotations

from typing import Any

from gateway.models import ContactInput
from tests.conftest import Gateway

RICH: dict[str, Any] = {
    "name": {"givenName": "Ada", "familyName": "Lovelace"},
    "company": {"companyName": "Engines", "jobTitle": "Analyst"},
    "emailAddresses": [{"address": "ada@example.com", "type": "work"}],
    "phoneNumbers": [{"number": "1", "type": "work"}, {"number": "2", "type": "work"}, {"number": "3", "type": "work"},
                     {"number": "4", "type": "mobile"}, {"number": "5", "type": "homeFax"},
                     {"number": "6", "type": "home"}],
    "addresses": [{"street": "1 Main St\nFlat 2", "city": "London", "postalCode": "W1", "country": "UK",
                   "type": "home"}],
    "notes": "n", "keywords": ["Starred"],
}


async def feed(gw: Gateway, auth: dict[str, str], token: str, limit: int = 500) -> dict[str, Any]:
    resp = await gw.http.post(f"/api/user/contacts/sync_tokens/{token}", params={"limit": str(limit)}, headers=auth)
    assert resp.status == 200, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def test_flat_records_and_change_types(gw: Gateway) -> None:
    _, auth, provider = await gw.connect("alice")
    old = provider.create(ContactInput.model_validate({"name": {"givenName": "old"}}))
    doomed = provider.create(ContactInput.model_validate({"name": {"givenName": "doomed"}}))
    token = (await (await gw.http.post("/api/user/contacts/sync_tokens", headers=auth)).json())["token"]
    assert (await feed(gw, auth, token))["items"] == []
    provider.create(ContactInput.model_validate(RICH))
    provider.update(old, ContactInput.model_validate({"name": {"givenName": "old2"}}))
    provider.delete(doomed)
    ghost = provider.create(ContactInput.model_validate({"notes": "ghost"}))
    provider.delete(ghost)  # created and deleted between two tokens: not reported
    body = await feed(gw, auth, token)
    kinds = sorted((i["change_type"], i.get("name")) for i in body["items"])
    assert kinds == [("CREATED", "Ada Lovelace"), ("DELETED", None), ("UPDATED", "old2")]
    rich = next(i for i in body["items"] if i["change_type"] == "CREATED")
    assert rich["email"] == "ada@example.com" and rich["company"] == "Engines" and rich["title"] == "Analyst"
    assert (rich["business"], rich["business2"], rich["other"]) == ("1", "2", "3")
    assert (rich["mobile_phone"], rich["home_phone"], rich["home_fax"], rich["business_fax"]) == ("4", "6", "5", None)
    assert rich["address"] == "1 Main St, Flat 2, London, W1, UK" and rich["favorite"] is True
    deleted = next(i for i in body["items"] if i["change_type"] == "DELETED")
    assert set(deleted) == {"id", "change_type"}
    assert (await feed(gw, auth, body["token"]))["items"] == []


async def test_more_than_a_response_holds_continues_without_repeats(gw: Gateway) -> None:
    _, auth, provider = await gw.connect("alice")
    token = (await (await gw.http.post("/api/user/contacts/sync_tokens", headers=auth)).json())["token"]
    for i in range(7):
        provider.create(ContactInput.model_validate({"name": {"givenName": f"P{i}"}}))
    seen: list[str] = []
    while True:
        body = await feed(gw, auth, token, limit=3)
        seen += [i["id"] for i in body["items"]]
        token = body["token"]
        if not body["more"]:
            break
    assert len(seen) == 7 == len(set(seen))


async def test_bad_tokens(gw: Gateway) -> None:
    _, auth_a, _ = await gw.connect("alice")
    _, auth_b, _ = await gw.connect("bob")
    token = (await (await gw.http.post("/api/user/contacts/sync_tokens", headers=auth_a)).json())["token"]
    for t, auth in (("nope", auth_a), (token, auth_b)):
        resp = await gw.http.post(f"/api/user/contacts/sync_tokens/{t}", headers=auth)
        assert resp.status == 400 and (await resp.json())["code"] == "syncToken.invalid"
    resp = await gw.http.post(f"/api/user/contacts/sync_tokens/{token}", params={"limit": "0"}, headers=auth_a)
    assert resp.status == 400


async def test_token_older_than_kept_deletions_is_expired(gw: Gateway) -> None:
    account_id, auth, provider = await gw.connect("alice")
    native = provider.create(ContactInput.model_validate({"notes": "x"}))
    await gw.core.refresher.refresh(account_id)
    token = (await (await gw.http.post("/api/user/contacts/sync_tokens", headers=auth)).json())["token"]
    provider.delete(native)
    await gw.core.refresher.refresh(account_id)
    assert await gw.core.store.compact(account_id, cutoff_ms=2**62) == 1
    resp = await gw.http.post(f"/api/user/contacts/sync_tokens/{token}", headers=auth)
    assert resp.status == 410 and (await resp.json())["code"] == "syncToken.expired"
