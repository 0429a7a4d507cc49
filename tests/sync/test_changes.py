"""The change index over HTTP: passes, pages, tokens, and changes landing mid-pass."""

from __future__ import annotations

from typing import Any

from gateway.models import ContactInput
from tests.conftest import Gateway


def person(name: str, **extra: Any) -> ContactInput:
    return ContactInput.model_validate({"name": {"givenName": name}, **extra})


async def get_page(gw: Gateway, auth: dict[str, str], stream: str, **params: Any) -> dict[str, Any]:
    resp = await gw.http.get(f"/v1/contacts/sync/{stream}", params=params, headers=auth)
    assert resp.status == 200, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def start(gw: Gateway, auth: dict[str, str]) -> dict[str, Any]:
    resp = await gw.http.post("/v1/contacts/sync", headers=auth)
    assert resp.status == 200
    body = await resp.json()
    assert body["ready"] is True
    return body  # type: ignore[no-any-return]


async def test_change_during_a_pass_comes_in_the_next_delta(gw: Gateway) -> None:
    account_id, auth, provider = await gw.connect("alice")
    natives = [provider.create(person(f"P{i}")) for i in range(6)]
    tokens = await start(gw, auth)
    first = await get_page(gw, auth, "updated", deltaToken=tokens["syncUpdatedToken"], pageSize=2)
    assert len(first["records"]) == 2 and "nextPageToken" in first and "nextDeltaToken" not in first
    served = [r["id"] for r in first["records"]]
    # a change lands mid-pass, on a contact already served and on one not yet served
    provider.update(natives[0], person("P0-changed"))
    provider.update(natives[5], person("P5-changed"))
    provider.create(person("new"))
    await gw.core.refresher.refresh(account_id)
    page = first
    while "nextPageToken" in page:
        page = await get_page(gw, auth, "updated", pageToken=page["nextPageToken"], pageSize=2)
        served += [r["id"] for r in page["records"]]
    assert len(served) == len(set(served)), "a contact was served twice in one pass"
    names_in_pass = len(served)
    assert names_in_pass in (5, 6)
    nxt = await get_page(gw, auth, "updated", deltaToken=page["nextDeltaToken"], pageSize=100)
    names = sorted(r["name"]["givenName"] for r in nxt["records"])
    assert names == ["P0-changed", "P5-changed", "new"]


async def test_noop_delta_returns_no_records_and_a_usable_token(gw: Gateway) -> None:
    _, auth, provider = await gw.connect("alice")
    provider.create(person("A"))
    tokens = await start(gw, auth)
    page = await get_page(gw, auth, "updated", deltaToken=tokens["syncUpdatedToken"])
    assert len(page["records"]) == 1
    again = await get_page(gw, auth, "updated", deltaToken=page["nextDeltaToken"])
    assert again["records"] == [] and "nextDeltaToken" in again and "nextPageToken" not in again
    # the same delta token used twice gives the same answer
    twice = await get_page(gw, auth, "updated", deltaToken=page["nextDeltaToken"])
    assert twice["records"] == []


async def test_deleted_stream_reports_deletions_after_start_only(gw: Gateway) -> None:
    account_id, auth, provider = await gw.connect("alice")
    old = provider.create(person("old"))
    keep = provider.create(person("keep"))
    await gw.core.refresher.refresh(account_id)
    provider.delete(old)
    tokens = await start(gw, auth)  # pulls the deletion of `old` before the tokens are made
    page = await get_page(gw, auth, "deleted", deltaToken=tokens["syncDeletedToken"])
    assert page["records"] == []
    provider.delete(keep)
    page = await get_page(gw, auth, "deleted", deltaToken=page["nextDeltaToken"])
    assert [set(r) for r in page["records"]] == [{"id", "timestamp"}]
    updated = await get_page(gw, auth, "updated", deltaToken=tokens["syncUpdatedToken"])
    assert updated["records"] == []


async def test_tokens_are_per_stream_and_validated(gw: Gateway) -> None:
    _, auth, _ = await gw.connect("alice")
    tokens = await start(gw, auth)
    for params in ({"deltaToken": tokens["syncDeletedToken"]}, {"deltaToken": "nope"}, {"pageToken": "x" * 200},
                   {"pageToken": tokens["syncUpdatedToken"]}):
        resp = await gw.http.get("/v1/contacts/sync/updated", params=params, headers=auth)
        assert resp.status == 400
        assert (await resp.json())["code"] == "syncToken.invalid"
    for params in ({}, {"deltaToken": tokens["syncUpdatedToken"], "pageToken": "x"}):
        resp = await gw.http.get("/v1/contacts/sync/updated", params=params, headers=auth)
        assert resp.status == 400 and (await resp.json())["code"] == "validation_error"
    for size in ("0", "1001", "abc", "-1"):
        resp = await gw.http.get("/v1/contacts/sync/updated",
                                 params={"deltaToken": tokens["syncUpdatedToken"], "pageSize": size}, headers=auth)
        assert resp.status == 400 and (await resp.json())["field"] == "pageSize"


async def test_token_older_than_tombstone_retention_is_expired(gw: Gateway) -> None:
    account_id, auth, provider = await gw.connect("alice")
    a = provider.create(person("A"))
    provider.create(person("B"))
    tokens = await start(gw, auth)
    provider.delete(a)
    await gw.core.refresher.refresh(account_id)
    dropped = await gw.core.store.compact(account_id, cutoff_ms=2**62)  # as if the retention had passed
    assert dropped == 1
    resp = await gw.http.get("/v1/contacts/sync/deleted", params={"deltaToken": tokens["syncDeletedToken"]},
                             headers=auth)
    assert resp.status == 410 and (await resp.json())["code"] == "syncToken.expired"
    # a full listing (revision 0) stays valid, and a new sync start works
    page = await get_page(gw, auth, "updated", deltaToken=tokens["syncUpdatedToken"])
    assert [r["name"]["givenName"] for r in page["records"]] == ["B"]
    fresh = await start(gw, auth)
    assert (await get_page(gw, auth, "deleted", deltaToken=fresh["syncDeletedToken"]))["records"] == []
