"""Unit tests of the apply script: revisions only for real changes, tombstones, guards."""

from __future__ import annotations

from gateway.core import Core
from gateway.models import ContactInput
from gateway.sync.mirror import contact_id_for, prepare, tombstone
from providers.base import RemoteContact


def remote(native: str, name: str | None, version: str = "v1") -> RemoteContact:
    if name is None:
        return RemoteContact(native, deleted=True)
    return RemoteContact(native, version, ContactInput.model_validate({"name": {"givenName": name}}))


async def test_revisions_only_for_real_changes(core: Core) -> None:
    acct = "acc1"
    assert await core.mirror.apply_remote(acct, [remote("n1", "A"), remote("n2", "B")]) == [1, 2]
    # same content again, even with a new native version: no revision, but the version is kept
    assert await core.mirror.apply_remote(acct, [remote("n1", "A", "v2")]) == [0]
    record = await core.store.record(acct, contact_id_for("n1"))
    assert record is not None and record.native_version == "v2" and record.rev == 1
    assert await core.mirror.apply_remote(acct, [remote("n1", "A2")]) == [3]
    record = await core.store.record(acct, contact_id_for("n1"))
    assert record is not None and record.rev == 3 and record.created_rev == 1
    assert await core.store.head(acct) == 3


async def test_delete_makes_one_tombstone_and_recreation_is_a_creation(core: Core) -> None:
    acct = "acc1"
    await core.mirror.apply_remote(acct, [remote("n1", "A")])
    assert await core.mirror.apply_remote(acct, [remote("n1", None)]) == [2]
    assert await core.mirror.apply_remote(acct, [remote("n1", None), remote("n9", None)]) == [0, 0]
    record = await core.store.record(acct, contact_id_for("n1"))
    assert record is not None and record.deleted and record.deleted_ms
    assert await core.store.count(acct, "live") == 0 and await core.store.count(acct, "dead") == 1
    assert await core.mirror.apply_remote(acct, [remote("n1", "A")]) == [3]
    record = await core.store.record(acct, contact_id_for("n1"))
    assert record is not None and record.created_rev == 3 and not record.deleted
    assert await core.store.count(acct, "dead") == 0


async def test_guard_skips_records_changed_after_max_rev(core: Core) -> None:
    acct = "acc1"
    await core.mirror.apply_remote(acct, [remote("n1", "A"), remote("n2", "B")])
    rec1 = await core.store.record(acct, contact_id_for("n1"))
    await core.mirror.apply_remote(acct, [remote("n1", "A-new")])  # rev 3 > guard 2
    assert rec1 is not None
    assert await core.mirror.apply(acct, [tombstone(rec1, max_rev=2)]) == [-1]
    assert await core.mirror.apply(acct, [prepare(remote("n2", None), max_rev=2)]) == [4]


async def test_served_json_keeps_created_time_and_etag_is_content(core: Core) -> None:
    import orjson

    acct = "acc1"
    await core.mirror.apply_remote(acct, [remote("n1", "A")])
    first = await core.store.record(acct, contact_id_for("n1"))
    await core.mirror.apply_remote(acct, [remote("n1", "B")])
    second = await core.store.record(acct, contact_id_for("n1"))
    assert first is not None and second is not None
    a, b = orjson.loads(first.body), orjson.loads(second.body)
    assert a["createdTime"] == b["createdTime"] and a["etag"] != b["etag"] and b["etag"] == second.hash
    assert b["id"] == contact_id_for("n1") and b["name"] == {"givenName": "B"}
    # ABA: back to the first content gives back the first ETag
    await core.mirror.apply_remote(acct, [remote("n1", "A")])
    third = await core.store.record(acct, contact_id_for("n1"))
    assert third is not None and third.hash == first.hash


async def test_accounts_do_not_share_a_mirror(core: Core) -> None:
    await core.mirror.apply_remote("acc1", [remote("n1", "A")])
    assert await core.store.record("acc2", contact_id_for("n1")) is None
    assert await core.store.head("acc2") == 0
