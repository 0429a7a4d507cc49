"""Device sessions: acknowledgements, a newer revision beating an older ack, the cap, expiry, bad UUIDs."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from gateway.models import ContactInput
from tests.conftest import Gateway


def person(name: str) -> ContactInput:
    return ContactInput.model_validate({"name": {"givenName": name}})


async def session_items(gw: Gateway, headers: dict[str, str]) -> list[dict[str, Any]] | None:
    resp = await gw.http.post("/v2/sync/start", headers=headers)
    if resp.status == 204:
        return None
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["meta"] == {"type": "sync_session"}
    queue = body["data"]["queues"][0]
    assert queue["data"]["name"] == "main" and queue["meta"]["type"] == "sync_queue"
    assert queue["meta"]["links"]["self"].endswith(f"/v2/sync/{body['data']['id']}/queues/main")
    items: list[dict[str, Any]] = []
    while True:
        page = await gw.http.get(f"/v2/sync/{body['data']['id']}/queues/main", headers=headers)
        if page.status == 204:
            break
        data = await page.json()
        assert data["meta"]["type"] == "collection" and data["meta"]["failed_objects"] == []
        assert data["meta"]["count"] == len(data["items"])
        items += data["items"]
    assert len(items) == queue["data"]["total_count"]
    return items


async def ack(gw: Gateway, headers: dict[str, str], items: list[dict[str, Any]]) -> None:
    keys = [i["meta"]["sync"]["ack_key"] for i in items]
    resp = await gw.http.post("/v2/sync/ack", json={"data": {"ack_keys": keys}}, headers=headers)
    assert resp.status == 202


async def test_unacknowledged_items_come_back_acknowledged_ones_do_not(gw: Gateway) -> None:
    account_id, auth, provider = await gw.connect("alice")
    for i in range(5):
        provider.create(person(f"P{i}"))
    device = {**auth, "X-Device-UUID": str(uuid.uuid4())}
    first = await session_items(gw, device)
    assert first is not None and len(first) == 5
    assert {i["meta"]["sync"]["event_type"] for i in first} == {"created"}
    await ack(gw, device, first[:3])
    second = await session_items(gw, device)
    assert second is not None
    assert sorted(i["data"]["id"] for i in second) == sorted(i["data"]["id"] for i in first[3:])
    assert {i["meta"]["sync"]["event_type"] for i in second} == {"updated"}  # it was sent before
    await ack(gw, device, second)
    assert await session_items(gw, device) is None  # 204: nothing new
    # another device of the same account starts from the whole address book
    other = {**auth, "X-Basecrm-Device-UUID": str(uuid.uuid4())}
    everything = await session_items(gw, other)
    assert everything is not None and len(everything) == 5


async def test_an_older_ack_does_not_hide_a_newer_revision(gw: Gateway) -> None:
    account_id, auth, provider = await gw.connect("alice")
    native = provider.create(person("v1"))
    device = {**auth, "X-Device-UUID": str(uuid.uuid4())}
    first = await session_items(gw, device)
    assert first is not None and len(first) == 1
    provider.update(native, person("v2"))
    await gw.core.refresher.refresh(account_id)
    await ack(gw, device, first)  # acknowledges v1 only, after v2 exists
    second = await session_items(gw, device)
    assert second is not None and [i["data"]["name"]["givenName"] for i in second] == ["v2"]
    assert second[0]["meta"]["sync"]["revision"] > first[0]["meta"]["sync"]["revision"]
    provider.delete(native)
    third = await session_items(gw, device)  # v2 not acknowledged, and now deleted: the freshest state only
    assert third is not None and [(i["data"], i["meta"]["sync"]["event_type"]) for i in third] == [
        ({"id": first[0]["data"]["id"]}, "deleted")]
    await ack(gw, device, third)
    assert await session_items(gw, device) is None


async def test_a_contact_created_and_deleted_unseen_is_not_reported(gw: Gateway) -> None:
    account_id, auth, provider = await gw.connect("alice")
    provider.create(person("keep"))
    device = {**auth, "X-Device-UUID": str(uuid.uuid4())}
    first = await session_items(gw, device)
    assert first is not None
    await ack(gw, device, first)
    ghost = provider.create(person("ghost"))
    await gw.core.refresher.refresh(account_id)
    provider.delete(ghost)
    assert await session_items(gw, device) is None


async def test_session_cap_and_expiry(gw: Gateway) -> None:
    account_id, auth, provider = await gw.connect("alice")
    provider.create(person("A"))
    gw.core.sessions.max_sessions = 2
    gw.core.sessions.idle_ttl_s = 1
    for _ in range(2):
        assert (await gw.http.post("/v2/sync/start", headers={**auth, "X-Device-UUID": str(uuid.uuid4())})).status \
            == 201
    resp = await gw.http.post("/v2/sync/start", headers={**auth, "X-Device-UUID": str(uuid.uuid4())})
    assert resp.status == 429 and (await resp.json())["code"] == "sync.too_many_sessions"
    await asyncio.sleep(1.1)  # the sessions go idle past their TTL
    device = {**auth, "X-Device-UUID": str(uuid.uuid4())}
    resp = await gw.http.post("/v2/sync/start", headers=device)
    assert resp.status == 201
    session = (await resp.json())["data"]["id"]
    await asyncio.sleep(1.1)
    gone = await gw.http.get(f"/v2/sync/{session}/queues/main", headers=device)
    assert gone.status == 404 and (await gone.json())["code"] == "sync.session_not_found"


async def test_device_uuid_and_ack_bodies_are_checked(gw: Gateway) -> None:
    _, auth, _ = await gw.connect("alice")
    for headers in (auth, {**auth, "X-Device-UUID": "not-a-uuid"}):
        resp = await gw.http.post("/v2/sync/start", headers=headers)
        assert resp.status == 400 and (await resp.json())["code"] == "device.uuid_invalid"
    device = {**auth, "X-Device-UUID": str(uuid.uuid4())}
    for body in ({}, {"data": {"ack_keys": "x"}}, {"data": {"ack_keys": [1]}}, {"data": {"ack_keys": ["nodot"]}}):
        resp = await gw.http.post("/v2/sync/ack", json=body, headers=device)
        assert resp.status == 400, body
    other_device = {**auth, "X-Device-UUID": str(uuid.uuid4())}
    resp = await gw.http.post("/v2/sync/start", headers=device)
    session = (await resp.json())["data"]["id"] if resp.status == 201 else "none"
    resp = await gw.http.get(f"/v2/sync/{session}/queues/main", headers=other_device)
    assert resp.status == 404


async def test_a_device_idle_past_tombstone_retention_still_gets_every_deletion(gw: Gateway) -> None:
    account_id, auth, provider = await gw.connect("alice")
    natives = [provider.create(person(f"P{i}")) for i in range(6)]
    device = {**auth, "X-Device-UUID": str(uuid.uuid4())}
    first = await session_items(gw, device)
    assert first is not None and len(first) == 6
    await ack(gw, device, first[:5])  # the sixth was sent, never acknowledged: the device may hold it too
    by_name = {i["data"]["name"]["givenName"]: i for i in first}
    doomed = {by_name["P0"]["data"]["id"], by_name["P5"]["data"]["id"]}
    provider.delete(natives[0])
    provider.delete(natives[5])
    await gw.core.refresher.refresh(account_id)
    assert await gw.core.store.compact(account_id, cutoff_ms=2**62) == 2  # as if the retention had passed
    floor = int((await gw.core.store.state(account_id))["floor"])

    second = await session_items(gw, device)
    assert second is not None
    deletions = [i for i in second if i["meta"]["sync"]["event_type"] == "deleted"]
    assert {i["data"]["id"] for i in deletions} == doomed
    assert all(i["data"] == {"id": i["data"]["id"]} for i in deletions)
    assert all(i["meta"]["sync"]["revision"] == floor for i in deletions)
    await ack(gw, device, [by_name["P0"]])  # a stale ack of the old version settles nothing
    third = await session_items(gw, device)
    assert third is not None and {i["data"]["id"] for i in third} == doomed
    await ack(gw, device, third)
    assert await session_items(gw, device) is None


async def test_acknowledging_a_deletion_forgets_the_contact_for_the_device(gw: Gateway) -> None:
    account_id, auth, provider = await gw.connect("alice")
    native = provider.create(person("Gone"))
    device_uuid = str(uuid.uuid4())
    device = {**auth, "X-Device-UUID": device_uuid}
    first = await session_items(gw, device)
    assert first is not None
    await ack(gw, device, first)
    provider.delete(native)
    await gw.core.refresher.refresh(account_id)
    second = await session_items(gw, device)
    assert second is not None and [i["meta"]["sync"]["event_type"] for i in second] == ["deleted"]
    await ack(gw, device, second)
    k = gw.core.store.account(account_id)
    assert await gw.core.redis.client.hgetall(k.device_acked(device_uuid)) == {}
    assert await gw.core.redis.client.hgetall(k.device_sent(device_uuid)) == {}
    await gw.core.store.compact(account_id, cutoff_ms=2**62)
    assert await session_items(gw, device) is None  # nothing owed once the deletion was acknowledged
