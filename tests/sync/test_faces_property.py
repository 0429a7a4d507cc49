"""Property: the single-token feed and device sessions each rebuild the provider's address book.

Same machinery as test_property: random provider changes and gateway writes interleave with
the face's own client protocol; the client's copy must end equal to the provider's, each pass
must deliver every change made before it began (unless superseded meanwhile), no item may come
twice in one pass, and the kinds must be right (created/CREATED only for what the client lacks).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.sync.flat import flat_record
from tests.sync.test_property import CHANGE_OPS, World, api_write, harness, provider_change, state_of_record

FEED_OPS = st.one_of(
    *CHANGE_OPS,
    st.tuples(st.just("step"), st.integers(1, 4)),
    st.tuples(st.just("step"), st.integers(1, 4)),
)
DEVICE_OPS = st.one_of(
    *CHANGE_OPS,
    st.tuples(st.just("compact")),  # every tombstone dropped, as if the retention had passed
    st.tuples(st.just("session"), st.sampled_from(["all", "none", "half", "one_page"])),
    st.tuples(st.just("session"), st.just("all")),
)


async def act(world: World, op: tuple[Any, ...]) -> bool:
    """Provider-side or gateway-side changes; False when the op is the client's own."""
    if op[0] in ("create", "update", "delete"):
        provider_change(world, op)
    elif op[0] in ("api_create", "api_update", "api_delete"):
        await api_write(world, op)
    elif op[0] == "expire":
        world.provider.expire_cursors()
    else:
        return False
    return True


async def feed_pass(world: World, token: str, limit: int, pass_no: int) -> str:
    """Follow the feed from a token until `more` is false; apply and check; returns the next token."""
    start_event, served = len(world.events), set()
    while True:
        resp = await world.http.post(f"/api/user/contacts/sync_tokens/{token}", params={"limit": str(limit)},
                                     headers=world.auth)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert len(body["items"]) <= limit
        for item in body["items"]:
            cid, kind = item["id"], item["change_type"]
            assert cid not in served, "an item came twice across consecutive tokens of one pass"
            served.add(cid)
            if kind == "DELETED":
                assert cid in world.copy, "deletion of a contact the client never had"
                world.copy.pop(cid)
            else:
                assert (kind == "CREATED") == (cid not in world.copy), (kind, cid)
                world.copy[cid] = orjson_flat(item)
        token = body["token"]
        if not body["more"]:
            world.check_since("both", start_event, pass_no)
            return token


def orjson_flat(item: dict[str, Any]) -> bytes:
    return orjson.dumps({k: v for k, v in item.items() if k != "change_type"}, option=orjson.OPT_SORT_KEYS)


def flat_view(cid: str, state: bytes) -> bytes:
    """A contact state as the feed's flat record would show it."""
    return orjson_flat(flat_record({"id": cid, **orjson.loads(state)}, "-"))


async def feed_scenario(target: dict[str, Any], steps: list[tuple[Any, ...]], page_size: int) -> None:
    async with harness(target, page_size) as (world, _core, _account):
        world.view = flat_view
        token = (await (await world.http.post("/api/user/contacts/sync_tokens", headers=world.auth)).json())["token"]
        passes = 0
        for op in steps:
            if not await act(world, op):
                passes += 1
                token = await feed_pass(world, token, op[1], passes)
        await feed_pass(world, token, 1000, passes + 1)
        assert world.copy == world.truth()


class Device:
    def __init__(self, world: World) -> None:
        self.world = world
        self.headers = {**world.auth, "X-Device-UUID": str(uuid.uuid4())}
        self.sessions = 0
        self.unacked_deletions: set[str] = set()  # an unacknowledged deletion comes again

    async def session(self, mode: str) -> bool:
        """One session; acknowledges all, none, every other item, or only the first page. False on 204."""
        w = self.world
        start_event = len(w.events)
        resp = await w.http.post("/v2/sync/start", headers=self.headers)
        if resp.status == 204:
            return False
        assert resp.status == 201, await resp.text()
        self.sessions += 1
        session = (await resp.json())["data"]
        total, got, served = session["queues"][0]["data"]["total_count"], 0, set()
        while True:
            page = await w.http.get(f"/v2/sync/{session['id']}/queues/main", headers=self.headers)
            if page.status == 204:
                break
            body = await page.json()
            keys = []
            for item in body["items"]:
                cid, sync = item["data"]["id"], item["meta"]["sync"]
                assert cid not in served, "served twice in one session"
                served.add(cid)
                keys.append(sync["ack_key"])
                if sync["event_type"] == "deleted":
                    assert cid in w.copy or cid in self.unacked_deletions, "deletion of a contact never held"
                    w.copy.pop(cid, None)
                    self.unacked_deletions.add(cid)
                else:
                    assert (sync["event_type"] == "created") == (cid not in w.copy), (sync, cid)
                    w.copy[cid] = state_of_record(item["data"])
            got += len(body["items"])
            acks = {"all": keys, "none": [], "half": keys[::2], "one_page": keys}[mode]
            self.unacked_deletions -= {key.rpartition(".")[0] for key in acks}
            if acks:
                ack = await w.http.post("/v2/sync/ack", json={"data": {"ack_keys": acks}}, headers=self.headers)
                assert ack.status == 202
            if mode == "one_page":
                return True
        assert got <= total
        if mode in ("all", "none", "half"):
            w.check_since("both", start_event, self.sessions)
        return True


async def device_scenario(target: dict[str, Any], steps: list[tuple[Any, ...]], page_size: int) -> None:
    async with harness(target, page_size) as (world, core, account_id):
        core.sessions.page_size = 3
        device = Device(world)
        for op in steps:
            if op[0] == "compact":
                await core.refresher.refresh(account_id)
                await core.store.compact(account_id, cutoff_ms=2**62)
            elif not await act(world, op):
                await device.session(op[1])
        for _ in range(len(steps) + 5):
            if not await device.session("all"):
                break
        else:
            raise AssertionError("sessions never drained")
        assert world.copy == world.truth()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(FEED_OPS, min_size=8, max_size=40), page_size=st.integers(1, 6))
def test_single_token_feed_rebuilds_the_provider(redis_target: dict[str, Any], steps: list[tuple[Any, ...]],
                                                 page_size: int) -> None:
    asyncio.run(feed_scenario(redis_target, steps, page_size))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(DEVICE_OPS, min_size=8, max_size=40), page_size=st.integers(1, 6))
def test_device_sessions_rebuild_the_provider(redis_target: dict[str, Any], steps: list[tuple[Any, ...]],
                                              page_size: int) -> None:
    asyncio.run(device_scenario(redis_target, steps, page_size))
