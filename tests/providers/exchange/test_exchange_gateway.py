"""The gateway end to end with Exchange: exchangelib against the EWS emulator, through the HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.config import Settings
from tests.providers.exchange.ews_helpers import FULL, Control
from tests.providers.gateway_harness import ProviderGateway, provider_gateway


@pytest.fixture
async def xg(settings: Settings, redis_target: dict[str, Any], control: Control,
             aiohttp_client: Any) -> AsyncIterator[ProviderGateway]:
    settings.exchange.page_size = 50
    async with provider_gateway(settings, redis_target, control, aiohttp_client, "exchange") as gateway:
        yield gateway


async def test_every_field_round_trips_through_ews(xg: ProviderGateway) -> None:
    _, auth = await xg.connect("alice")
    resp = await xg.http.post("/v1/contacts", json=FULL, headers=auth)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert {k: created[k] for k in FULL} == FULL
    records, _ = await xg.sync_all(auth, (await xg.start(auth))["syncUpdatedToken"])
    assert len(records) == 1 and {k: records[0][k] for k in FULL} == FULL and records[0]["etag"] == created["etag"]


async def test_invalid_sync_state_is_absorbed(xg: ProviderGateway) -> None:
    account_id, auth = await xg.connect("alice")
    natives = await xg.control.seed("alice", 120, seed=5, folders=2)
    tokens = await xg.start(auth)
    records, delta = await xg.sync_all(auth, tokens["syncUpdatedToken"])
    assert len(records) == 120
    head = await xg.core.store.head(account_id)
    await xg.control.expire("alice")
    await xg.control.patch("alice", natives[3], {"notes": "changed while the state was invalid"})
    await xg.control.delete("alice", natives[8])
    changed, _ = await xg.sync_all(auth, delta)
    assert [r["notes"] for r in changed] == ["changed while the state was invalid"]
    gone, _ = await xg.sync_all(auth, tokens["syncDeletedToken"], "deleted")
    assert len(gone) == 1
    assert await xg.core.store.head(account_id) == head + 2


async def test_patch_conflicting_with_a_change_in_exchange_is_412(xg: ProviderGateway) -> None:
    _, auth = await xg.connect("alice")
    created = await (await xg.http.post("/v1/contacts", json={"notes": "mine"}, headers=auth)).json()
    native = next(iter(await xg.control.truth("alice")))
    await xg.control.patch("alice", native, {"notes": "theirs"})
    resp = await xg.http.patch(f"/v1/contacts/{created['id']}", json={"notes": "again"},
                               headers={**auth, "If-Match": created["etag"]})
    assert resp.status == 412, await resp.text()
    now = await (await xg.http.get(f"/v1/contacts/{created['id']}", headers=auth)).json()
    assert now["notes"] == "theirs" and now["etag"] == (await resp.json())["currentEtag"]


async def test_a_poison_item_does_not_block_the_sync(xg: ProviderGateway) -> None:
    _, auth = await xg.connect("alice")
    natives = await xg.control.seed("alice", 10, seed=9)
    await xg.control.poison("alice", natives[4])
    tokens = await xg.start(auth)
    records, delta = await xg.sync_all(auth, tokens["syncUpdatedToken"])
    assert len(records) == 9
    await xg.control.heal("alice", natives[4])
    healed, _ = await xg.sync_all(auth, delta)
    assert len(healed) == 1


async def test_server_busy_is_retried_then_reported(xg: ProviderGateway) -> None:
    _, auth = await xg.connect("alice")
    await xg.control.fault(path=".*", operation="CreateItem", code="ErrorServerBusy", retryAfter=0.01, times=1)
    assert (await xg.http.post("/v1/contacts", json={"notes": "after a busy server"}, headers=auth)).status == 201
    await xg.control.fault(path=".*", operation="CreateItem", status=503, times=20)
    resp = await xg.http.post("/v1/contacts", json={"notes": "never"}, headers=auth)
    assert resp.status == 503 and (await resp.json())["code"] == "provider.unavailable"
    truth = await xg.control.truth("alice")
    assert [c.get("notes") for c in truth.values()] == ["after a busy server"]


async def test_a_folder_renamed_in_exchange_renames_its_contacts_folder_attribute(xg: ProviderGateway) -> None:
    """The items of a renamed folder do not change in Exchange; the gateway still reports each, once."""
    account_id, auth = await xg.connect("alice")
    await xg.control.seed("alice", 40, seed=2, folders=2)
    tokens = await xg.start(auth)
    records, delta = await xg.sync_all(auth, tokens["syncUpdatedToken"])
    in_clients = sorted(r["id"] for r in records if {"name": "folder", "value": "Clients"} in r.get("attributes", []))
    assert in_clients and len(in_clients) < len(records)
    head = await xg.core.store.head(account_id)
    folders = await xg.control.call("GET", "/users/alice/folders")
    clients = next(f["folderId"] for f in folders if f["name"] == "Clients")
    await xg.control.call("PATCH", f"/users/alice/folders/{clients}", {"name": "Customers"})
    changed, delta2 = await xg.sync_all(auth, delta)
    assert sorted(r["id"] for r in changed) == in_clients
    assert all(r["attributes"][0] == {"name": "folder", "value": "Customers"} for r in changed)
    assert await xg.core.store.head(account_id) == head + len(in_clients)  # the relist changed nothing else
    again, _ = await xg.sync_all(auth, delta2)
    assert again == []


async def test_a_contact_created_with_a_folder_lands_in_it(xg: ProviderGateway) -> None:
    _, auth = await xg.connect("alice")
    body = {"name": {"givenName": "Filed"}, "attributes": [{"name": "folder", "value": "Work/Clients"}]}
    resp = await xg.http.post("/v1/contacts", json=body, headers=auth)
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["attributes"] == body["attributes"]
    truth = await xg.control.call("GET", "/users/alice/contacts")
    assert [t["contact"] for t in truth] == [body]
    folders = {f["name"]: f for f in await xg.control.call("GET", "/users/alice/folders")}
    assert folders["Clients"]["parentId"] == folders["Work"]["folderId"]
