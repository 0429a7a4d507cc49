"""ExchangeConnector through the real exchangelib, against the EWS emulator."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from exchangelib.errors import (
    ErrorInvalidPropertyRequest,
    ErrorInvalidSyncStateData,
    ErrorIrresolvableConflict,
    ErrorItemNotFound,
    ErrorServerBusy,
    ErrorTimeoutExpired,
)
from exchangelib.version import EXCHANGE_2016

from gateway.config import ExchangeSettings
from gateway.models import ContactInput, content_of
from providers.base import AuthFailed, Conflict, CursorExpired, NotFound, ProviderError, Throttled, Unavailable
from providers.exchange.connector import ExchangeConnector, map_errors, parse_credentials
from providers.exchange.emulator import EmulatorState, create_app
from providers.exchange.ews_errors import HttpFailure, server_version
from providers.exchange.mapping import contact_to_fields
from providers.exchange.soap import EWS_PATH
from tests.providers.exchange.ews_helpers import FULL, Control, self_signed
from tests.providers.pages import drain, ids

Connect = Callable[..., ExchangeConnector]


def operations(state: EmulatorState, name: str) -> int:
    return sum(1 for _, op in state.log if op == name)


async def test_full_listing_spans_folders_and_pages(alice: ExchangeConnector, control: Control,
                                                    state: EmulatorState) -> None:
    seeded = await control.seed("alice", 25, seed=3, folders=2)  # 20 in Contacts, 3 in Clients, 2 in Suppliers
    truth = await control.truth("alice")
    pages, cursor = await drain(alice, None)
    assert [len(p.changes) for p in pages] == [10, 10, 5]
    assert [p.more for p in pages] == [True, True, False]
    assert sorted(ids(pages)) == sorted(seeded)
    for change in (c for p in pages for c in p.changes):
        assert change.version and change.modified_time and not change.deleted and change.contact is not None
        assert content_of(change.contact) == truth[change.native_id]
    assert operations(state, "FindFolder") == 1 and operations(state, "SyncFolderItems") == 4
    assert {op for _, op in state.log} == {"GetFolder", "FindFolder", "SyncFolderItems", "GetItem"}  # no probing
    assert cursor is not None
    empty = await alice.list_changes(cursor)
    assert empty.changes == [] and not empty.more


async def test_incremental_changes_from_the_cursor(alice: ExchangeConnector, control: Control) -> None:
    seeded = await control.seed("alice", 12, folders=1)
    _, cursor = await drain(alice, None)
    created = await control.create("alice", {"name": {"givenName": "New"}, "notes": "n"})
    in_sub = await control.create("alice", {"name": {"displayName": "Sub"}}, folder=await control.folder("alice", "X"))
    await control.patch("alice", seeded[0], {"notes": "changed", "company": None})
    await control.patch("alice", seeded[4], {"keywords": ["moved"]})  # lives in the Clients subfolder
    await control.delete("alice", seeded[1])
    pages, next_cursor = await drain(alice, cursor)
    changes = {c.native_id: c for p in pages for c in p.changes}
    assert set(changes) == {created, in_sub, seeded[0], seeded[4], seeded[1]}
    assert content_of(changes[created].contact) == {"name": {"givenName": "New"}, "notes": "n"}  # type: ignore[arg-type]
    assert changes[seeded[0]].contact is not None and changes[seeded[0]].contact.notes == "changed"
    assert changes[seeded[0]].contact.company is None
    assert changes[seeded[4]].contact is not None and changes[seeded[4]].contact.keywords == ["moved"]
    assert changes[seeded[1]].deleted and changes[seeded[1]].contact is None
    assert next_cursor is not None and next_cursor != cursor
    assert (await alice.list_changes(next_cursor)).changes == []


async def test_incremental_round_spans_pages(alice: ExchangeConnector, control: Control) -> None:
    seeded = await control.seed("alice", 12, folders=0)
    _, cursor = await drain(alice, None)
    for native_id in seeded:
        await control.patch("alice", native_id, {"notes": "bulk edit"})
    pages, _ = await drain(alice, cursor)
    assert [len(p.changes) for p in pages] == [10, 2] and [p.more for p in pages] == [True, False]
    assert sorted(ids(pages)) == sorted(seeded)
    assert all(c.contact is not None and c.contact.notes == "bulk edit" for p in pages for c in p.changes)


async def test_invalid_sync_state_expires_the_cursor(alice: ExchangeConnector, control: Control) -> None:
    seeded = await control.seed("alice", 15, folders=0)
    _, cursor = await drain(alice, None)
    first = await alice.list_changes(None)
    assert first.more
    await control.expire("alice")
    with pytest.raises(CursorExpired):
        await alice.list_changes(cursor)
    with pytest.raises(CursorExpired):
        await alice.list_changes(first.cursor)  # a page cursor of a round holds SyncStates too
    for garbage in ("not-a-cursor", "ews1.!!!", "ews1.e30"):
        with pytest.raises(CursorExpired):
            await alice.list_changes(garbage)
    pages, _ = await drain(alice, None)  # relisting gives fresh states
    assert sorted(ids(pages)) == sorted(seeded)


async def test_folders_appearing_and_disappearing(alice: ExchangeConnector, control: Control) -> None:
    await control.seed("alice", 3, folders=0)
    _, cursor = await drain(alice, None)
    folder = await control.folder("alice", "Family")
    inside = await control.create("alice", {"name": {"displayName": "Kid"}}, folder=folder)
    pages, cursor = await drain(alice, cursor)
    assert ids(pages) == [inside]
    await control.call("DELETE", f"/users/alice/folders/{folder}", expect=204)
    with pytest.raises(CursorExpired):
        await alice.list_changes(cursor)  # what it held is gone without a trace: the caller relists

    await control.seed("alice", 25, folders=1)  # 20 more in Contacts, 5 in a new Clients subfolder
    first = await alice.list_changes(None)
    assert first.more
    clients = [f for f in (await control.call("GET", "/users/alice/folders")) if f["name"] == "Clients"]
    await control.call("DELETE", f"/users/alice/folders/{clients[0]['folderId']}", expect=204)
    with pytest.raises(CursorExpired):
        await drain(alice, first.cursor)  # gone during the round


async def test_round_trip_through_the_emulator(alice: ExchangeConnector, control: Control) -> None:
    contact = ContactInput.model_validate(FULL)
    created = await alice.create(contact)
    assert created.native_id.startswith("AAMk") and created.version and created.created_time
    assert created.contact is not None and content_of(created.contact) == content_of(contact)
    fetched = await alice.get(created.native_id)
    assert fetched.version == created.version
    assert fetched.contact is not None and content_of(fetched.contact) == content_of(contact)
    pages, _ = await drain(alice, None)
    [listed] = [c for p in pages for c in p.changes]
    assert listed.contact is not None and content_of(listed.contact) == content_of(contact)
    assert (await control.truth("alice"))[created.native_id] == content_of(contact)


async def test_update_replaces_and_clears(alice: ExchangeConnector, control: Control) -> None:
    created = await alice.create(ContactInput.model_validate(FULL))
    replacement = ContactInput.model_validate({"name": {"givenName": "Only"}, "keywords": ["k"],
                                               "phoneNumbers": [{"number": "1", "type": "car"}]})
    updated = await alice.update(created.native_id, replacement, created.version)
    assert updated.version != created.version
    assert updated.contact is not None and content_of(updated.contact) == content_of(replacement)
    assert (await control.truth("alice"))[created.native_id] == content_of(replacement)
    again = await alice.update(created.native_id, ContactInput(notes="no ChangeKey given"), None)
    assert again.contact is not None and content_of(again.contact) == {"notes": "no ChangeKey given"}


async def test_stale_change_key_conflicts(alice: ExchangeConnector, control: Control) -> None:
    created = await alice.create(ContactInput(notes="v1"))
    await control.patch("alice", created.native_id, {"notes": "changed behind our back"})
    with pytest.raises(Conflict) as info:
        await alice.update(created.native_id, ContactInput(notes="v2"), created.version)
    current = await alice.get(created.native_id)
    assert info.value.current_version == current.version != created.version
    assert current.contact is not None and current.contact.notes == "changed behind our back"


async def test_delete_checks_if_match(alice: ExchangeConnector) -> None:
    created = await alice.create(ContactInput(notes="v1"))
    updated = await alice.update(created.native_id, ContactInput(notes="v2"), created.version)
    with pytest.raises(Conflict) as info:
        await alice.delete(created.native_id, created.version)
    assert info.value.current_version == updated.version
    await alice.delete(created.native_id, updated.version)
    with pytest.raises(NotFound):
        await alice.get(created.native_id)
    with pytest.raises(NotFound):
        await alice.delete(created.native_id, None)
    with pytest.raises(NotFound):
        await alice.update(created.native_id, ContactInput(notes="v3"), updated.version)
    with pytest.raises(NotFound):
        await alice.get("not-an-ews-id")


async def test_server_busy_is_throttled_with_back_off(alice: ExchangeConnector, control: Control,
                                                      state: EmulatorState) -> None:
    await control.seed("alice", 3, folders=0)
    await control.fault(operation="SyncFolderItems", code="ErrorServerBusy", retryAfter=1.5)
    with pytest.raises(Throttled) as info:
        await alice.list_changes(None)
    assert info.value.retry_after == 1.5
    assert state.faults == [] and operations(state, "SyncFolderItems") == 1  # exchangelib did not retry
    assert len((await alice.list_changes(None)).changes) == 3


async def test_http_failures(alice: ExchangeConnector, control: Control, state: EmulatorState) -> None:
    created = await alice.create(ContactInput(notes="x"))
    await control.fault(operation="GetItem", status=503, retryAfter=2)
    with pytest.raises(Unavailable) as unavailable:
        await alice.get(created.native_id)
    assert unavailable.value.retry_after == 2.0
    await control.fault(operation="GetItem", status=429, retryAfter=7)
    with pytest.raises(Throttled) as throttled:
        await alice.get(created.native_id)
    assert throttled.value.retry_after == 7.0
    await control.fault(operation="GetItem", code="ErrorInternalServerError")
    with pytest.raises(Unavailable):
        await alice.get(created.native_id)
    assert operations(state, "GetItem") == 4  # three failures, each tried once, and the create's read-back
    assert (await alice.get(created.native_id)).contact is not None


@pytest.mark.parametrize("code", [None, "ErrorInternalServerError"])
async def test_poison_item_does_not_block_the_rest(alice: ExchangeConnector, control: Control,
                                                   code: str | None) -> None:
    seeded = await control.seed("alice", 12, folders=0)
    await control.poison("alice", seeded[3], code)
    pages, cursor = await drain(alice, None)
    assert sorted(ids(pages)) == sorted(set(seeded) - {seeded[3]})
    pages, cursor = await drain(alice, cursor)  # still poisoned: retried, nothing else changes
    assert ids(pages) == []
    await control.heal("alice", seeded[3])
    changed = await control.create("alice", {"name": {"displayName": "Other"}})
    pages, cursor = await drain(alice, cursor)
    healed = {c.native_id: c for p in pages for c in p.changes}
    assert set(healed) == {seeded[3], changed}
    assert healed[seeded[3]].contact is not None and not healed[seeded[3]].deleted
    pages, _ = await drain(alice, cursor)
    assert ids(pages) == []  # delivered once, no longer pending


async def test_pending_item_deleted_meanwhile_is_reported_deleted(alice: ExchangeConnector,
                                                                  control: Control) -> None:
    seeded = await control.seed("alice", 4, folders=0)
    await control.poison("alice", seeded[0])
    _, cursor = await drain(alice, None)
    await control.delete("alice", seeded[0])
    pages, _ = await drain(alice, cursor)
    assert [(c.native_id, c.deleted) for p in pages for c in p.changes] == [(seeded[0], True)]


async def test_wrong_password_and_unreachable(control: Control, make_connector: Connect) -> None:
    creds = await control.add_user("bob")
    with pytest.raises(AuthFailed):
        await make_connector({**creds, "password": "wrong"}).list_changes(None)
    with pytest.raises(AuthFailed):
        await make_connector({**creds, "username": "nobody@exchange.emulator"}).get("AAMkx")
    with pytest.raises(Unavailable):
        await make_connector({**creds, "ewsUrl": "http://127.0.0.1:9/EWS/Exchange.asmx"}).list_changes(None)
    assert (await make_connector(creds).list_changes(None)).changes == []


async def test_mailboxes_are_isolated(control: Control, make_connector: Connect) -> None:
    alice, bob = make_connector(await control.add_user("alice")), make_connector(await control.add_user("bob"))
    alice_ids, bob_ids = await control.seed("alice", 3), await control.seed("bob", 4)
    assert sorted(ids((await drain(alice, None))[0])) == sorted(alice_ids)
    assert sorted(ids((await drain(bob, None))[0])) == sorted(bob_ids)
    with pytest.raises(NotFound):
        await alice.get(bob_ids[0])
    with pytest.raises(NotFound):
        await alice.delete(bob_ids[0], None)


async def test_a_slow_mailbox_does_not_starve_another(control: Control, make_connector: Connect) -> None:
    """Three threads in all, two per account: four slow calls of A hold two threads, B gets the third."""
    pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="test-isolation")
    try:
        slow = make_connector(await control.add_user("slow"), pool, max_threads_per_account=2)
        fast = make_connector(await control.add_user("fast"), pool, max_threads_per_account=2)
        [slow_id], [fast_id] = await control.seed("slow", 1), await control.seed("fast", 1)
        await slow.get(slow_id)
        await fast.get(fast_id)  # both accounts warmed up: one GetItem per get() from now on
        await control.fault(user="slow", delayMs=3000, times=100)
        slow_calls = [asyncio.create_task(slow.get(slow_id)) for _ in range(4)]
        await asyncio.sleep(0.05)  # the slow calls are in flight (or queued for their account's slots)
        fast_call = asyncio.create_task(fast.get(fast_id))
        done, _ = await asyncio.wait([fast_call, *slow_calls], return_when=asyncio.FIRST_COMPLETED)
        assert done == {fast_call}, "the fast mailbox waited for the slow one"
        assert not any(task.done() for task in slow_calls)
        await control.call("DELETE", "/faults", expect=204)
        results = await asyncio.gather(*slow_calls)
        assert all(r.native_id == slow_id for r in results)
    finally:
        pool.shutdown(wait=True)


async def test_cancelled_call_keeps_its_slot_until_the_thread_ends(control: Control, make_connector: Connect,
                                                                   state: EmulatorState) -> None:
    alice = make_connector(await control.add_user("alice"), max_threads_per_account=1)
    [native_id] = await control.seed("alice", 1)
    await alice.get(native_id)
    await control.fault(user="alice", delayMs=1000)
    first = asyncio.create_task(alice.get(native_id))
    await asyncio.sleep(0.1)
    first.cancel()
    second = asyncio.create_task(alice.get(native_id))
    await asyncio.sleep(0.2)
    assert not second.done() and operations(state, "GetItem") <= 2  # waits: the thread still holds the slot
    assert (await second).native_id == native_id



# asyncio's TLS server (CPython sslproto) leaks the server-side transport of a handshake the client aborts, as
# the untrusted connector below does; `collect_garbage` makes it surface here, where this filter applies.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_https_with_ca_bundle_and_bearer_token(collect_garbage: None, aiohttp_server: Any, tmp_path: Path,
                                                     make_connector: Connect) -> None:
    """REQUESTS_CA_BUNDLE (set on this machine) must not override the configured bundle; OAuth needs https."""
    context, ca_bundle = self_signed(tmp_path)
    state = EmulatorState()
    server = await aiohttp_server(create_app(state), ssl=context)
    state.add_user("carol")
    native_id = state.create("carol", contact_to_fields(ContactInput(notes="over TLS"))).item_id
    url = str(server.make_url(EWS_PATH))
    assert url.startswith("https://127.0.0.1:")
    creds = {"ewsUrl": url, "username": "carol@exchange.emulator", "accessToken": state.issue_access_token("carol")}
    carol = make_connector(creds, ca_bundle=ca_bundle)
    assert (await carol.get(native_id)).contact == ContactInput(notes="over TLS")
    pages, _ = await drain(carol, None)
    assert ids(pages) == [native_id]
    state.revoke_tokens()
    with pytest.raises(AuthFailed):
        await make_connector(creds, ca_bundle=ca_bundle).get(native_id)
    other = {**creds, "ewsUrl": url.replace("127.0.0.1", "localhost")}  # another endpoint: no bundle registered
    with pytest.raises(Unavailable):
        await make_connector(other).get(native_id)


def test_parse_credentials_and_settings() -> None:
    basic = {"ewsUrl": "https://mail.example.com/EWS/Exchange.asmx", "username": "ada@example.com", "password": "p"}
    assert parse_credentials(basic) == basic
    oauth = {**{k: basic[k] for k in ("ewsUrl", "username")}, "accessToken": "t"}
    assert parse_credentials(oauth) == oauth
    domain = {**basic, "username": "CORP\\ada", "primarySmtpAddress": "ada@example.com"}
    assert parse_credentials(domain) == domain
    bad: list[Any] = [{}, ["ewsUrl"], {**basic, "password": ""}, {**basic, "ewsUrl": "mail.example.com"},
                      {**basic, "accessToken": "t"}, {k: basic[k] for k in ("ewsUrl", "username")},
                      {**basic, "username": "CORP\\ada"}, {**basic, "tenant": "x"}, {**basic, "username": 5}]
    for raw in bad:
        with pytest.raises(ValueError, match="Exchange"):
            parse_credentials(raw)
    assert server_version("Exchange2016").build == EXCHANGE_2016
    assert server_version("Exchange2013_SP1").api_version == "Exchange2013_SP1"
    assert server_version("Exchange2019").api_version == "Exchange2016"
    with pytest.raises(ValueError, match="server_version"):
        ExchangeConnector(basic, ExchangeSettings(server_version="Exchange1999"))


def test_map_errors_edge_cases() -> None:
    assert isinstance(map_errors(HttpFailure(401, None, "")), AuthFailed)
    assert isinstance(map_errors(HttpFailure(500, 3, "")), Unavailable)
    assert isinstance(map_errors(HttpFailure(400, None, "")), ProviderError)
    assert isinstance(map_errors(ErrorItemNotFound("x")), NotFound)
    assert isinstance(map_errors(ErrorInvalidSyncStateData("x")), CursorExpired)
    assert isinstance(map_errors(ErrorIrresolvableConflict("x")), Conflict)
    assert isinstance(map_errors(requests.ConnectionError("refused")), Unavailable)
    try:
        try:
            raise ErrorTimeoutExpired("connection reset")
        except ErrorTimeoutExpired:
            raise ErrorServerBusy("Reraised from ErrorTimeoutExpired", back_off=10) from None
    except ErrorServerBusy as busy:
        reraised = busy
    assert isinstance(map_errors(reraised), Unavailable)  # exchangelib's disguise of a dropped connection
    assert type(map_errors(ErrorInvalidPropertyRequest("x"))) is ProviderError


async def test_contacts_carry_their_folder_and_creates_make_folders(alice: ExchangeConnector, control: Control,
                                                                   state: EmulatorState) -> None:
    clients = await control.folder("alice", "Clients")
    vip = (await control.call("POST", "/users/alice/folders", {"name": "VIP", "parent": clients}, 201))["folderId"]
    nested = await control.create("alice", {"name": {"givenName": "Nested"}}, folder=vip)
    root = await control.create("alice", {"name": {"givenName": "Root"}})
    pages, _ = await drain(alice, None)
    listed = {c.native_id: c.content for p in pages for c in p.changes}
    in_vip = [{"name": "folder", "value": "Clients/VIP"}]
    assert listed[nested] == {"name": {"givenName": "Nested"}, "attributes": in_vip}
    assert listed[root] == {"name": {"givenName": "Root"}}

    box = state.mailboxes["alice"]
    made = await alice.create(ContactInput.model_validate({"name": {"givenName": "Made"}, "attributes": [
        {"name": "x", "value": "1"}, {"name": "folder", "value": "Projects//2027/"}]}))
    assert made.content == {"name": {"givenName": "Made"}, "attributes": [
        {"name": "folder", "value": "Projects/2027"}, {"name": "x", "value": "1"}]}  # the folder first, as read
    record = box.get(made.native_id)
    assert record is not None and box.path_of(record.folder_id) == "Projects/2027"
    assert "folder" not in record.fields["gateway_attributes"]  # where it lives, not a stored attribute
    folders = len(box.folders)
    lower = [{"name": "folder", "value": "projects/2027"}]
    again = await alice.create(ContactInput.model_validate({"attributes": lower}))
    assert len(box.folders) == folders  # the same folder, matched as Outlook matches names
    assert again.content == {"attributes": [{"name": "folder", "value": "Projects/2027"}]}
    # an update does not move a contact: the attribute reads where it is
    moved = await alice.update(nested, ContactInput.model_validate({"name": {"givenName": "Still"}, "attributes": [
        {"name": "folder", "value": "Elsewhere"}]}), None)
    assert moved.content == {"name": {"givenName": "Still"}, "attributes": [{"name": "folder", "value": "Clients/VIP"}]}
    assert await alice.get(nested) == moved


async def test_a_renamed_folder_expires_the_cursor(alice: ExchangeConnector, control: Control) -> None:
    clients = await control.folder("alice", "Clients")
    await control.create("alice", {"name": {"givenName": "In"}}, folder=clients)
    _, cursor = await drain(alice, None)
    assert cursor is not None and (await alice.list_changes(cursor)).changes == []
    await control.call("PATCH", f"/users/alice/folders/{clients}", {"name": "Customers"})
    with pytest.raises(CursorExpired, match="renamed or moved"):
        await alice.list_changes(cursor)
    pages, _ = await drain(alice, None)
    assert [c.content for p in pages for c in p.changes] == [
        {"name": {"givenName": "In"}, "attributes": [{"name": "folder", "value": "Customers"}]}]
