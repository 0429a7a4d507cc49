"""Property: a client that follows the delta/page protocol ends with exactly the provider's address book.

Random provider-side creates, updates and deletes (and writes through the
gateway) interleave with paged client syncs of both streams: random page sizes,
tokens used twice, the provider cursor expiring, changes landing between pages.
Checked, besides the final state:
- timeliness: at the end of each pass, every change made before that pass began
  is in the client's copy, unless a change made during the pass superseded it
  (then the next pass owes the later one, and is checked for it);
- no duplicate within a pass: a pass never serves the same contact twice;
- only real changes take revisions: a refresh adds at most one revision per
  provider-side change since the last one, so a relist of an unchanged book adds none.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.app import create_app
from gateway.config import Settings
from gateway.core import Core, build_core
from gateway.models import ContactInput, content_of
from gateway.store.connection import RedisHandle
from gateway.sync.mirror import contact_id_for
from tests.conftest import open_client
from tests.fake_provider import FakeRegistry

NAMES = st.sampled_from(["Ada", "Alan", "Grace", "Edsger", "Barbara"])
contacts = st.builds(
    lambda given, email, phone: {
        "name": {"givenName": given},
        **({"emailAddresses": [{"address": f"{email}@example.com", "type": "work"}]} if email else {}),
        **({"phoneNumbers": [{"number": phone, "type": "mobile"}]} if phone else {}),
    },
    NAMES, st.one_of(st.none(), st.sampled_from(["a", "b", "c"])), st.one_of(st.none(), st.sampled_from(["1", "2"])),
)
#: Changes at the provider, writes through the gateway, and provider cursor expiry (shared with the faces' tests).
CHANGE_OPS = (
    st.tuples(st.just("create"), contacts),
    st.tuples(st.just("update"), st.integers(0, 50), contacts),
    st.tuples(st.just("delete"), st.integers(0, 50)),
    st.tuples(st.just("api_create"), contacts),
    st.tuples(st.just("api_update"), st.integers(0, 50), contacts),
    st.tuples(st.just("api_delete"), st.integers(0, 50)),
    st.tuples(st.just("expire")),
)
ops = st.one_of(
    *CHANGE_OPS,
    st.tuples(st.just("refresh")),
    st.tuples(st.just("step"), st.sampled_from(["updated", "deleted"]), st.integers(1, 7)),
    st.tuples(st.just("step"), st.just("updated"), st.integers(1, 3)),
    st.tuples(st.just("reuse"), st.sampled_from(["updated", "deleted"])),
)


def state_of(contact: dict[str, Any]) -> bytes:
    return orjson.dumps(content_of(ContactInput.model_validate(contact)), option=orjson.OPT_SORT_KEYS)


def state_of_record(record: dict[str, Any]) -> bytes:
    body = {k: v for k, v in record.items() if k not in ("id", "etag", "createdTime", "lastModifiedTime")}
    return state_of(body)


@dataclass
class StreamClient:
    """One stream (updated or deleted) as a client follows it."""

    name: str
    token: str
    token_kind: str = "deltaToken"
    last_request: tuple[str, str] | None = None
    pass_no: int = 0
    pass_start_event: int = 0
    pass_ids: set[str] = field(default_factory=set)
    last_served: set[str] = field(default_factory=set)


@dataclass
class World:
    http: TestClient
    auth: dict[str, str]
    provider: Any
    copy: dict[str, bytes] = field(default_factory=dict)
    events: list[tuple[int, str, bytes | None]] = field(default_factory=list)  # (seq, contact id, state|None)
    native_ids: list[str] = field(default_factory=list)
    #: how the client's copy represents a contact state (a face may flatten it); identity by default
    view: Callable[[str, bytes], bytes] = field(default=lambda _cid, state: state)

    def record_event(self, native_id: str, state: bytes | None) -> None:
        self.events.append((len(self.events) + 1, contact_id_for(native_id), state))

    def truth(self) -> dict[str, bytes]:
        return {contact_id_for(n): self.view(contact_id_for(n), state_of(c.model_dump()))
                for n, (_, c) in self.provider.contacts.items()}

    def check_pass(self, stream: StreamClient) -> None:
        self.check_since(stream.name, stream.pass_start_event, stream.pass_no)

    def check_since(self, kinds: str, start_event: int, pass_no: int) -> None:
        """At the end of a pass: each contact's last change before the pass began is in the copy.

        `kinds` is "updated", "deleted" or "both": which changes this pass delivers.
        """
        by_contact: dict[str, list[tuple[int, bytes | None]]] = {}
        for seq, cid, state in self.events:
            by_contact.setdefault(cid, []).append((seq, state))
        for cid, history in by_contact.items():
            before = [h for h in history if h[0] <= start_event]
            if not before:
                continue
            last_seq, last_state = before[-1]
            if any(q > last_seq for q, _ in history):
                continue  # superseded during this pass: the next pass owes the later change
            have = self.copy.get(cid)
            if kinds in ("updated", "both") and last_state is not None:
                assert have == self.view(cid, last_state), f"{cid}: change before pass {pass_no} not delivered"
            if kinds in ("deleted", "both") and last_state is None:
                assert have is None, f"{cid}: deletion before pass {pass_no} not delivered"


async def request(world: World, stream: StreamClient, kind: str, token: str, size: int) -> None:
    if kind == "deltaToken":
        stream.pass_no += 1
        stream.pass_start_event = len(world.events)
        stream.pass_ids = set()
    resp = await world.http.get(f"/v1/contacts/sync/{stream.name}", params={kind: token, "pageSize": str(size)},
                                headers=world.auth)
    assert resp.status == 200, await resp.text()
    page = await resp.json()
    assert ("nextPageToken" in page) != ("nextDeltaToken" in page)
    stream.last_request = (kind, token)
    stream.last_served = {rec["id"] for rec in page["records"]}
    for rec in page["records"]:
        assert rec["id"] not in stream.pass_ids, "served twice in one pass"
        stream.pass_ids.add(rec["id"])
        if stream.name == "updated":
            world.copy[rec["id"]] = state_of_record(rec)
        else:
            world.copy.pop(rec["id"], None)
    if "nextPageToken" in page:
        stream.token, stream.token_kind = page["nextPageToken"], "pageToken"
    else:
        stream.token, stream.token_kind = page["nextDeltaToken"], "deltaToken"
        world.check_pass(stream)


async def drain(world: World, stream: StreamClient) -> None:
    """Finish the running pass, then run one full delta pass."""
    while stream.token_kind == "pageToken":
        await request(world, stream, stream.token_kind, stream.token, 1000)
    await request(world, stream, "deltaToken", stream.token, 1000)
    while stream.token_kind == "pageToken":
        await request(world, stream, stream.token_kind, stream.token, 1000)


async def api_write(world: World, op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind == "api_create":
        resp = await world.http.post("/v1/contacts", json=op[1], headers=world.auth)
        assert resp.status == 201, await resp.text()
        cid = (await resp.json())["id"]
        native = next(n for n in world.provider.contacts if contact_id_for(n) == cid)
        world.native_ids.append(native)
        world.record_event(native, state_of(op[1]))
        return
    live = [n for n in world.native_ids if n in world.provider.contacts]
    if not live:
        return
    native = live[op[1] % len(live)]
    cid = contact_id_for(native)
    got = await world.http.get(f"/v1/contacts/{cid}", headers=world.auth)
    if got.status == 404:
        return  # not pulled into the mirror yet
    etag = got.headers["ETag"]
    if kind == "api_update":
        resp = await world.http.patch(f"/v1/contacts/{cid}", json=op[2], headers={**world.auth, "If-Match": etag})
        assert resp.status in (200, 412), await resp.text()
        if resp.status == 200:
            world.record_event(native, state_of(world.provider.contacts[native][1].model_dump()))
    else:
        resp = await world.http.delete(f"/v1/contacts/{cid}", headers={**world.auth, "If-Match": etag})
        assert resp.status in (204, 412), await resp.text()
        if resp.status == 204:
            world.record_event(native, None)


def provider_change(world: World, op: tuple[Any, ...]) -> int:
    """A change made at the provider, behind the gateway's back; returns how many changes it made."""
    provider = world.provider
    if op[0] == "create":
        native = provider.create(ContactInput.model_validate(op[1]))
        world.native_ids.append(native)
        world.record_event(native, state_of(op[1]))
        return 1
    live = sorted(provider.contacts)
    if not live:
        return 0
    native = live[op[1] % len(live)]
    if op[0] == "update":
        provider.update(native, ContactInput.model_validate(op[2]))
        world.record_event(native, state_of(op[2]))
    else:
        provider.delete(native)
        world.record_event(native, None)
    return 1


@asynccontextmanager
async def harness(target: dict[str, Any], page_size: int,
                  apply_batch: int = 500) -> AsyncIterator[tuple[World, Core, str]]:
    """A gateway over HTTP on a fake provider, one connected account, and a World to record events in.

    `apply_batch` below the page size splits a pulled page into several mirror applies, in flight while
    the next batch (or page) is prepared."""
    prefix = f"p{uuid.uuid4().hex[:12]}"
    cfg = Settings(redis={"key_prefix": prefix},
                   sync={"refresh_interval_s": 0.0, "lock_ttl_s": 5.0, "apply_batch": apply_batch})
    fakes = FakeRegistry()
    client = open_client(target)
    core = build_core(cfg, {"fake": fakes.factory()}, redis=RedisHandle(client))
    app_rec, secret = await core.identity.create_app("prop")
    basic = {"Authorization": "Basic " + base64.b64encode(f"{app_rec.client_id}:{secret}".encode()).decode()}
    try:
        async with TestClient(TestServer(create_app(cfg, core=core))) as http:
            provider = fakes.mailbox("m", page_size)
            resp = await http.post("/v1/accounts", json={"serviceType": "fake", "credentials": {"mailbox": "m"}},
                                   headers=basic)
            account = await resp.json()
            yield World(http, {"Authorization": f"Bearer {account['accessToken']}"}, provider), core, \
                account["accountId"]
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
        await core.aclose()


async def scenario(target: dict[str, Any], steps: list[tuple[Any, ...]], page_size: int,
                   apply_batch: int = 500) -> None:
    async with harness(target, page_size, apply_batch) as (world, core, account_id):
        http, provider = world.http, world.provider
        start = await (await http.post("/v1/contacts/sync", headers=world.auth)).json()
        streams = {"updated": StreamClient("updated", start["syncUpdatedToken"]),
                   "deleted": StreamClient("deleted", start["syncDeletedToken"])}
        pending_changes = 0
        for op in steps:
            kind = op[0]
            if kind in ("create", "update", "delete"):
                pending_changes += provider_change(world, op)
            elif kind == "expire":
                provider.expire_cursors()
            elif kind == "refresh":
                before = await core.store.head(account_id)
                await core.refresher.refresh(account_id)
                after = await core.store.head(account_id)
                assert after - before <= pending_changes, "a refresh took revisions for no change"
                pending_changes = 0
            elif kind == "step":
                stream = streams[op[1]]
                if stream.token_kind == "deltaToken":
                    pending_changes = 0  # a delta request pulls from the provider first
                await request(world, stream, stream.token_kind, stream.token, op[2])
            elif kind == "reuse":
                stream = streams[op[1]]
                if stream.last_request is not None:
                    stream.pass_ids -= stream.last_served  # a replayed page may repeat what it served
                    await request(world, stream, stream.last_request[0], stream.last_request[1], 5)
            else:
                await api_write(world, op)
        for stream in streams.values():
            await drain(world, stream)
        assert world.copy == world.truth()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(ops, min_size=12, max_size=50), page_size=st.integers(1, 6),
       apply_batch=st.one_of(st.integers(1, 4), st.just(500)))
def test_client_copy_equals_provider(redis_target: dict[str, Any], steps: list[tuple[Any, ...]],
                                     page_size: int, apply_batch: int) -> None:
    asyncio.run(scenario(redis_target, steps, page_size, apply_batch))
