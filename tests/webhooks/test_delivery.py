"""Deliveries: every change notified and signed, outages survived, backoff, dead letters, 410, crashes."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from gateway.models import ContactInput
from gateway.webhooks.events import retry_delay
from gateway.worker import Worker
from tests.conftest import Gateway
from tests.webhooks.conftest import Consumer, FakeClock, drain, eventually, subscribe, write_contact


def person(name: str) -> ContactInput:
    return ContactInput.model_validate({"name": {"givenName": name}})


async def sub_state(gw: Gateway, sub_id: str) -> dict[str, Any]:
    resp = await gw.http.get(f"/v1/subscriptions/{sub_id}", headers=gw.basic)
    assert resp.status == 200
    return await resp.json()  # type: ignore[no-any-return]


async def deliveries(gw: Gateway, sub_id: str, size: int = 100) -> list[dict[str, Any]]:
    resp = await gw.http.get(f"/v1/subscriptions/{sub_id}/deliveries", params={"pageSize": str(size)},
                             headers=gw.basic)
    assert resp.status == 200
    return (await resp.json())["records"]  # type: ignore[no-any-return]


def assert_no_conflicting_duplicates(consumer: Consumer) -> None:
    """A notification may come twice (at least once), but only as the same notification."""
    by_id: dict[str, bytes] = {}
    for r in consumer.received:
        assert by_id.setdefault(r.body["id"], r.raw) == r.raw


async def test_every_change_is_notified_and_signed(gw: Gateway, consumer: Consumer, worker: Worker) -> None:
    account_id, auth, provider = await gw.connect("alice", page_size=7)
    sub = await subscribe(gw, account_id, consumer.url)
    natives = [provider.create(person(f"P{i}")) for i in range(20)]  # changes at the provider...
    await worker.run_once()  # ...pulled by the worker's scheduled refresh, then delivered
    written = [await write_contact(gw, auth, f"W{i}") for i in range(3)]  # writes through the gateway
    provider.delete(natives[0])
    provider.update(natives[1], person("renamed"))
    await gw.core.refresher.refresh(account_id)
    etag = (await (await gw.http.get(f"/v1/contacts/{written[0]}", headers=auth)).json())["etag"]
    resp = await gw.http.delete(f"/v1/contacts/{written[0]}", headers={**auth, "If-Match": f'"{etag}"'})
    assert resp.status == 204
    await drain(worker)
    live = {r["id"] for r in (await (await gw.http.get("/v1/contacts?pageSize=100", headers=auth)).json())["records"]}
    updated, deleted = consumer.changes()
    assert updated == live | {written[0]} | deleted  # every contact that ever changed was announced
    assert len(deleted) == 2 and written[0] in deleted
    assert all(r.signed for r in consumer.received)
    head = await gw.core.store.head(account_id)
    for r in consumer.received:
        assert set(r.body) == {"id", "subscriptionId", "accountId", "resource", "revision", "changes"}
        assert r.body["subscriptionId"] == sub["id"] and r.body["accountId"] == account_id
        assert r.body["resource"] == "/contacts" and 1 <= r.body["revision"] <= head
        assert r.headers["Content-Type"] == "application/json"
    assert max(r.body["revision"] for r in consumer.received) == head
    assert len(set(consumer.ids)) == len(consumer.ids)  # nothing twice when nothing failed
    log = await deliveries(gw, sub["id"])
    assert len(log) == len(consumer.received) and all(d["outcome"] == "delivered" and d["status"] == 200 for d in log)
    assert all(d["latencyMs"] >= 0 and d["error"] is None for d in log)
    k = gw.core.store.account(account_id)
    assert await gw.core.redis.client.xlen(k.events) == 0  # delivered entries leave the stream
    assert await gw.core.redis.client.xpending(k.events, "deliver") in ({"pending": 0, "min": None, "max": None,
                                                                        "consumers": []},)


async def test_notifications_are_bounded_in_size(gw: Gateway, consumer: Consumer, worker: Worker) -> None:
    gw.core.settings.webhooks.max_ids_per_notification = 100
    account_id, _, provider = await gw.connect("alice", page_size=1200)
    await subscribe(gw, account_id, consumer.url)
    for i in range(1200):
        provider.create(person(f"P{i}"))
    await gw.core.refresher.refresh(account_id)
    entries = await gw.core.redis.client.xlen(gw.core.store.account(account_id).events)
    assert entries == 3  # the apply script's chunks of at most 500 ids
    await drain(worker)
    assert all(len(r.body["changes"]["updated"]) <= 100 for r in consumer.received)
    assert len(consumer.received) == 12 and len(set(consumer.ids)) == 12
    assert len(consumer.changes()[0]) == 1200


async def test_each_subscription_gets_every_change(gw: Gateway, consumer: Consumer, worker: Worker) -> None:
    account_id, auth, _ = await gw.connect("alice")
    subs = [await subscribe(gw, account_id, consumer.url) for _ in range(3)]
    ids = [await write_contact(gw, auth, f"W{i}") for i in range(4)]
    await drain(worker)
    per_sub = Counter(r.body["subscriptionId"] for r in consumer.received)
    assert per_sub == {s["id"]: 4 for s in subs}
    assert consumer.changes()[0] == set(ids)


async def test_a_consumer_down_for_a_day_receives_everything(gw: Gateway, consumer: Consumer, worker: Worker,
                                                             clock: FakeClock) -> None:
    account_id, auth, _ = await gw.connect("alice")
    sub = await subscribe(gw, account_id, consumer.url)
    consumer.status = 503
    ids = []
    attempts_while_down = 0
    for hour in range(23):  # a change every hour for 23 hours, the consumer down all along
        ids.append(await write_contact(gw, auth, f"H{hour}"))
        for _ in range(6):
            clock.advance(600)
            await worker.run_once(refresh=False)
        attempts_while_down = len(consumer.received)
    assert 0 < attempts_while_down < 23 * 3  # probes, not one attempt per change per step
    state = await sub_state(gw, sub["id"])
    assert state["active"] is True  # failing, but nothing is older than the retry period yet
    consumer.status = 200
    down = len(consumer.received)
    clock.advance(3600)  # the longest backoff
    await drain(worker)
    received_after = consumer.received[down:]
    assert {cid for r in received_after for cid in r.body["changes"]["updated"]} == set(ids)
    assert consumer.changes()[0] == set(ids)
    assert_no_conflicting_duplicates(consumer)
    assert len({r.body["id"] for r in received_after}) == len(received_after) == 23
    log = await deliveries(gw, sub["id"])
    assert log[0]["outcome"] == "delivered" and any(d["status"] == 503 and d["error"] == "HTTP 503" for d in log)
    k = gw.core.store.account(account_id)
    assert await gw.core.redis.client.zcard(k.retries) == 0 and await gw.core.redis.client.xlen(k.events) == 0
    assert (await sub_state(gw, sub["id"]))["active"] is True


async def test_a_consumer_that_refuses_connections_then_returns(gw: Gateway, consumer: Consumer, worker: Worker,
                                                                aiohttp_server: Any, clock: FakeClock) -> None:
    """Connection errors count as failures; a consumer back on the same URL gets what it missed."""
    account_id, auth, _ = await gw.connect("alice")
    from aiohttp import web

    from tests.webhooks.conftest import signing_secret

    down = Consumer(secret=await signing_secret(gw))
    app = web.Application()
    app.router.add_post("/hook", down.handle)
    server = await aiohttp_server(app)
    sub = await subscribe(gw, account_id, str(server.make_url("/hook")))
    port = server.port
    await server.close()
    ids = [await write_contact(gw, auth, f"C{i}") for i in range(5)]
    await worker.run_once(refresh=False)
    log = await deliveries(gw, sub["id"])
    assert log and all(d["outcome"] == "failed" and d["status"] is None for d in log)
    assert "connection failed" in log[0]["error"]
    back = await aiohttp_server(app, port=port)
    assert back.port == port
    clock.advance(3600)
    await drain(worker)
    assert down.changes()[0] == set(ids) and all(r.signed for r in down.received)


async def test_timeouts_count_as_failures(gw: Gateway, consumer: Consumer, worker: Worker, clock: FakeClock) -> None:
    gw.core.settings.webhooks.delivery_timeout_s = 0.2
    account_id, auth, _ = await gw.connect("alice")
    sub = await subscribe(gw, account_id, consumer.url)
    consumer.delay_s = 1.0
    cid = await write_contact(gw, auth, "slow")
    report = await worker.run_once(refresh=False)
    assert report.delivery.failed == 1 and report.delivery.delivered == 0
    (attempt,) = await deliveries(gw, sub["id"])
    assert attempt["outcome"] == "failed" and attempt["error"].startswith("timeout")
    consumer.delay_s = 0
    clock.advance(60)
    await drain(worker)
    assert [r.body["changes"]["updated"] for r in consumer.received] == [[cid], [cid]]
    assert consumer.received[0].raw == consumer.received[1].raw  # the retry is the same notification


def test_backoff_schedule() -> None:
    base, cap = 10.0, 3600.0
    lows = [retry_delay(n, base, cap, rand=lambda: 0.0) for n in range(1, 12)]
    highs = [retry_delay(n, base, cap, rand=lambda: 1.0) for n in range(1, 12)]
    assert highs == [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]
    assert lows == [h / 2 for h in highs]  # equal jitter: half fixed, half random
    rng = random.Random(7)
    samples = [retry_delay(3, base, cap, rand=rng.random) for _ in range(200)]
    assert all(20 <= s <= 40 for s in samples) and len(set(samples)) == 200


async def test_a_failing_subscription_backs_off_and_defers(gw: Gateway, consumer: Consumer, worker: Worker,
                                                           clock: FakeClock) -> None:
    account_id, auth, _ = await gw.connect("alice")
    sub = await subscribe(gw, account_id, consumer.url)
    consumer.status = 500
    await write_contact(gw, auth, "A")
    before = int(clock() * 1000)
    report = await worker.run_once(refresh=False)
    assert report.delivery.failed == 1 and len(consumer.received) == 1
    record = await gw.core.webhooks.load(account_id, sub["id"])
    assert record is not None and record.failures == 1
    assert before + 5_000 <= record.next_at <= int(clock() * 1000) + 10_000  # 10 s base, equal jitter
    # while it backs off, new changes are queued for it without an attempt
    await write_contact(gw, auth, "B")
    report = await worker.run_once(refresh=False)
    assert report.delivery.deferred == 1 and len(consumer.received) == 1
    k = gw.core.store.account(account_id)
    due = await gw.core.redis.client.zrange(k.retries, 0, -1, withscores=True)
    assert len(due) == 2 and {int(score) for _, score in due} == {record.next_at}
    assert await gw.core.redis.client.zscore(gw.core.store.keys.webhook_due, account_id) == record.next_at
    # the next probe fails: the delay doubles
    clock.advance(10)
    report = await worker.run_once(refresh=False)
    assert report.delivery.failed == 1 and report.delivery.deferred == 1 and len(consumer.received) == 2
    second = await gw.core.webhooks.load(account_id, sub["id"])
    assert second is not None and second.failures == 2
    assert 10_000 <= second.next_at - int(clock() * 1000) <= 20_000
    consumer.status = 200
    clock.advance(20)
    await drain(worker)
    assert len(consumer.received) == 4  # the two probes of A, then A and B
    healed = await gw.core.webhooks.load(account_id, sub["id"])
    assert healed is not None and healed.failures == 0 and healed.next_at == 0


async def test_dead_letters_after_the_retry_period(gw: Gateway, consumer: Consumer, worker: Worker,
                                                   clock: FakeClock) -> None:
    gw.core.settings.webhooks.retry_period_s = 3600
    account_id, auth, _ = await gw.connect("alice")
    sub = await subscribe(gw, account_id, consumer.url)
    consumer.status = 500
    cid = await write_contact(gw, auth, "doomed")
    for _ in range(12):
        clock.advance(400)
        await worker.run_once(refresh=False)
    k = gw.core.store.account(account_id)
    client = gw.core.redis.client
    dead = await client.xrange(k.dead_letters)
    assert len(dead) == 1
    fields = dead[0][1]
    assert fields[b"sub"] == sub["id"].encode() and fields[b"error"] == b"HTTP 500"
    assert fields[b"updated"] == f'["{cid}"]'.encode() and fields[b"notification"].startswith(sub["id"].encode())
    assert await client.xlen(k.events) == 0 and await client.zcard(k.retries) == 0
    state = await sub_state(gw, sub["id"])
    assert state["active"] is False and state["failSince"] and state["failDescription"] == "HTTP 500"
    log = await deliveries(gw, sub["id"])
    assert log[0]["outcome"] == "deadLettered" and log[0]["error"] == "HTTP 500"
    attempts = [d for d in log if d["outcome"] == "failed"]
    assert 4 <= len(attempts) <= 10  # backoff: 10 s, 20 s, 40 s ... within the hour
    # it stays subscribed: the consumer comes back, the next change is delivered and the mark cleared
    consumer.status = 200
    clock.advance(3600)
    later = await write_contact(gw, auth, "later")
    await drain(worker)
    assert consumer.received[-1].body["changes"]["updated"] == [later]
    state = await sub_state(gw, sub["id"])
    assert state["active"] is True and state["failSince"] is None and state["failDescription"] is None


async def test_410_removes_the_subscription(gw: Gateway, consumer: Consumer, worker: Worker) -> None:
    account_id, auth, _ = await gw.connect("alice")
    sub = await subscribe(gw, account_id, consumer.url)
    consumer.status = 410
    await write_contact(gw, auth, "A")
    await write_contact(gw, auth, "B")
    report = await worker.run_once(refresh=False)
    assert report.delivery.removed == 1 and report.delivery.delivered == 0
    assert (await gw.http.get(f"/v1/subscriptions/{sub['id']}", headers=gw.basic)).status == 404
    k = gw.core.store.account(account_id)
    client = gw.core.redis.client
    assert await client.scard(k.subscriptions) == 0 and await client.xlen(k.events) == 0
    received = len(consumer.received)
    await write_contact(gw, auth, "C")  # no subscription: no notification is even queued
    assert await client.xlen(k.events) == 0
    await drain(worker)
    assert len(consumer.received) == received


async def test_a_deleted_subscriptions_queue_is_dropped(gw: Gateway, consumer: Consumer, worker: Worker) -> None:
    account_id, auth, _ = await gw.connect("alice")
    sub = await subscribe(gw, account_id, consumer.url)
    await write_contact(gw, auth, "A")
    assert (await gw.http.delete(f"/v1/subscriptions/{sub['id']}", headers=gw.basic)).status == 204
    report = await worker.run_once(refresh=False)
    assert report.delivery.dropped == 1 and consumer.received == []
    assert await gw.core.redis.client.xlen(gw.core.store.account(account_id).events) == 0


async def test_a_lost_hint_is_found_by_the_sweep(gw: Gateway, consumer: Consumer, worker: Worker) -> None:
    """A crash between the apply script (which queued the notification) and the hint loses nothing."""
    account_id, auth, _ = await gw.connect("alice")
    await subscribe(gw, account_id, consumer.url)
    cid = await write_contact(gw, auth, "A")
    await gw.core.redis.client.delete(gw.core.store.keys.dirty)  # as if the process died before ZADD
    await worker.run_once(refresh=False, sweep=False)
    assert consumer.received == []
    await worker.run_once(refresh=False, sweep=True)
    assert consumer.changes()[0] == {cid}


async def test_a_worker_killed_mid_delivery_loses_nothing(gw: Gateway, consumer: Consumer,
                                                          make_worker: Callable[[str], Worker]) -> None:
    gw.core.settings.webhooks.visibility_timeout_s = 0.6
    account_id, auth, _ = await gw.connect("alice")
    await subscribe(gw, account_id, consumer.url)
    ids = [await write_contact(gw, auth, f"K{i}") for i in range(30)]
    first, second = make_worker("first"), make_worker("second")
    consumer.hold = asyncio.Event()
    dying = asyncio.create_task(first.run_once(refresh=False))
    await eventually(lambda: len(consumer.received) >= 8)  # a window in flight, the rest taken but unsent
    in_flight = set(consumer.ids)
    dying.cancel()
    await asyncio.gather(dying, return_exceptions=True)
    # a killed process does not release its lock: it lapses with the lease
    k = gw.core.store.account(account_id)
    await gw.core.redis.client.set(k.delivery_lock, "dead-worker", px=600)
    pending = await gw.core.redis.client.xpending(k.events, "deliver")
    assert pending["pending"] == 30 and [c["name"] for c in pending["consumers"]] == [b"first"]
    consumer.hold.set()
    consumer.hold = None
    report = await second.run_once(refresh=False)
    assert report.delivery.busy == 1 and len(consumer.received) == len(in_flight)  # never two at once
    await asyncio.sleep(0.7)  # the lease and the visibility timeout pass
    report = await second.run_once(refresh=False)
    assert report.delivery.claimed == 30 and report.delivery.delivered == 30
    await drain(second)
    assert consumer.changes()[0] == set(ids)
    counts = Counter(consumer.ids)
    assert {nid for nid, n in counts.items() if n > 1} <= in_flight  # repeats only of what was in flight
    assert all(n <= 2 for n in counts.values())
    assert_no_conflicting_duplicates(consumer)
    assert (await gw.core.redis.client.xpending(k.events, "deliver"))["pending"] == 0


async def test_two_workers_share_the_work_without_sending_twice(gw: Gateway, consumer: Consumer,
                                                                make_worker: Callable[[str], Worker]) -> None:
    accounts = [await gw.connect(f"m{i}") for i in range(6)]
    for account_id, _, _ in accounts:
        await subscribe(gw, account_id, consumer.url)
    consumer.delay_s = 0.01
    workers = [make_worker("a"), make_worker("b")]

    async def keep_working(worker: Worker, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await worker.run_once(refresh=False)
            await asyncio.sleep(0)

    stop = asyncio.Event()
    loops = [asyncio.create_task(keep_working(w, stop)) for w in workers]
    ids = []
    for n in range(8):
        for _, auth, _ in accounts:
            ids.append(await write_contact(gw, auth, f"S{n}"))
    await eventually(lambda: len(consumer.received) >= len(ids))
    await asyncio.sleep(0.2)
    stop.set()
    await asyncio.gather(*loops)
    assert len(consumer.received) == len(ids) and len(set(consumer.ids)) == len(ids)
    assert consumer.changes()[0] == set(ids)


async def test_the_sweep_forgets_deleted_accounts(gw: Gateway, consumer: Consumer, worker: Worker) -> None:
    account_id, auth, _ = await gw.connect("alice")
    await subscribe(gw, account_id, consumer.url)
    await write_contact(gw, auth, "A")
    await drain(worker)
    assert (await gw.http.delete(f"/v1/accounts/{account_id}", headers=gw.basic)).status == 204
    await worker.run_once(refresh=False, sweep=True)
    client = gw.core.redis.client
    assert not await client.sismember(gw.core.store.keys.webhook_accounts, account_id)
    assert [k async for k in client.scan_iter(match=f"{gw.core.store.account(account_id).base}:*")] == []


async def test_what_is_served_and_sent_matches_the_openapi_document(gw: Gateway, consumer: Consumer,
                                                                    worker: Worker, clock: FakeClock) -> None:
    import jsonschema

    from gateway.api.docs import load_spec

    components = load_spec()["components"]

    def check(instance: Any, schema: str) -> None:
        jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{schema}", "components": components},
                                        format_checker=jsonschema.FormatChecker()).validate(instance)

    account_id, auth, _ = await gw.connect("alice")
    sub = await subscribe(gw, account_id, consumer.url)
    check(sub, "Subscription")
    consumer.status = 500
    gw.core.settings.webhooks.retry_period_s = 30
    await write_contact(gw, auth, "A")
    await worker.run_once(refresh=False)
    clock.advance(60)
    await worker.run_once(refresh=False)  # dead-lettered: the subscription is failing
    consumer.status = 200
    clock.advance(3600)
    await write_contact(gw, auth, "B")
    await drain(worker)
    for r in consumer.received:
        check(r.body, "Notification")
    log = await deliveries(gw, sub["id"])
    assert {d["outcome"] for d in log} == {"delivered", "failed", "deadLettered"}
    for record in log:
        check(record, "Delivery")
    page = await (await gw.http.get("/v1/subscriptions", headers=gw.basic)).json()
    check(page, "SubscriptionPage")
