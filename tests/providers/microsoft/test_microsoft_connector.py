"""MicrosoftConnector through the real msal and aiohttp, against the HTTPS emulator."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
import requests

from gateway.models import ContactInput, content_of
from providers.base import AuthFailed, Conflict, CursorExpired, NotFound, ProviderError, Throttled, Unavailable
from providers.microsoft.auth import TokenError
from providers.microsoft.connector import MicrosoftConnector, map_errors, parse_credentials
from providers.microsoft.emulator import EmulatorState
from providers.microsoft.graph import GraphHTTPError
from tests.providers.microsoft.microsoft_helpers import FULL, Control, FakeClock, graph_call
from tests.providers.pages import drain, ids

Connect = Callable[..., MicrosoftConnector]


def folder(change: Any) -> str | None:
    attributes = change.contact.attributes or []
    return next((a.value for a in attributes if a.name == "folder"), None)


async def test_full_listing_spans_folders_and_pages(alice: MicrosoftConnector, control: Control) -> None:
    seeded = await control.seed("alice", 25, seed=3)
    pages, cursor = await drain(alice, None)
    assert [page.more for page in pages] == [True, True, True, False]  # default folder: 2 pages, Work, Family
    assert sorted(ids(pages)) == sorted(seeded)
    changes = [c for p in pages for c in p.changes]
    assert all(c.version and c.version.startswith('W/"') and c.contact is not None and not c.deleted
               for c in changes)
    assert [folder(c) for c in changes].count(None) == 16
    assert {folder(c) for c in changes} == {None, "Work", "Family"}
    truth = {t["nativeId"]: t["contact"] for t in await control.call("GET", "/users/alice/contacts")}
    assert all(c.contact is not None and content_of(c.contact) == truth[c.native_id] for c in changes)
    quiet, cursor = await drain(alice, cursor)
    assert ids(quiet) == [] and [p.more for p in quiet] == [True, True, False]


async def test_incremental_changes_in_two_folders(alice: MicrosoftConnector, control: Control) -> None:
    seeded = await control.seed("alice", 8, seed=1)  # 0: default, 1: Work, 3: Family
    _, cursor = await drain(alice, None)
    created_default = await control.create("alice", {"name": {"givenName": "New"}, "notes": "n"})
    created_work = await control.create("alice", {"name": {"givenName": "Worker"},
                                                  "attributes": [{"name": "folder", "value": "Work"}]})
    await control.patch("alice", seeded[0], {"notes": "changed", "company": None})
    await control.patch("alice", seeded[1], {"notes": "changed at work"})
    await control.delete("alice", seeded[2])
    await control.delete("alice", seeded[5])  # Work
    pages, next_cursor = await drain(alice, cursor)
    changes = {c.native_id: c for p in pages for c in p.changes}
    assert set(changes) == {created_default, created_work, seeded[0], seeded[1], seeded[2], seeded[5]}
    assert content_of(changes[created_default].contact) == {"name": {"givenName": "New"}, "notes": "n"}  # type: ignore[arg-type]
    assert folder(changes[created_work]) == "Work"
    assert changes[seeded[0]].contact is not None and changes[seeded[0]].contact.notes == "changed"
    assert changes[seeded[0]].contact.company is None
    assert changes[seeded[1]].contact is not None and changes[seeded[1]].contact.notes == "changed at work"
    assert folder(changes[seeded[1]]) == "Work"
    for gone in (seeded[2], seeded[5]):
        assert changes[gone].deleted and changes[gone].contact is None and changes[gone].version is None
    assert next_cursor is not None and next_cursor != cursor
    assert ids((await drain(alice, next_cursor))[0]) == []


async def test_folders_created_or_removed_between_rounds(alice: MicrosoftConnector, control: Control,
                                                        http: aiohttp.ClientSession, state: EmulatorState) -> None:
    await control.seed("alice", 4)
    _, cursor = await drain(alice, None)
    fresh = await control.create("alice", {"notes": "x", "attributes": [{"name": "folder", "value": "Brand New"}]})
    pages, cursor = await drain(alice, cursor)
    assert ids(pages) == [fresh] and folder(pages[-1].changes[0]) == "Brand New"
    mailbox = state.mailboxes["alice"]
    token = state.issue_access_token("alice")
    work = mailbox.folder_named("Work")
    assert work is not None
    await graph_call(http, "DELETE", f"/v1.0/me/contactFolders/{work.folder_id}", token, 204)
    with pytest.raises(CursorExpired, match="removed or renamed"):
        await alice.list_changes(cursor)
    pages, _ = await drain(alice, None)  # the relisting the core does next
    assert sorted(ids(pages)) == sorted(t["nativeId"] for t in await control.call("GET", "/users/alice/contacts"))


async def test_nested_folders_are_synced_and_written_by_path(alice: MicrosoftConnector, control: Control,
                                                            http: aiohttp.ClientSession,
                                                            state: EmulatorState) -> None:
    token = state.issue_access_token("alice")
    work = await graph_call(http, "POST", "/v1.0/me/contactFolders", token, 201, json={"displayName": "Work"})
    clients = await graph_call(http, "POST", f"/v1.0/me/contactFolders/{work['id']}/childFolders", token, 201,
                               json={"displayName": "Clients"})
    vip = await graph_call(http, "POST", f"/v1.0/me/contactFolders/{clients['id']}/childFolders", token, 201,
                           json={"displayName": "VIP"})
    deep = await graph_call(http, "POST", f"/v1.0/me/contactFolders/{vip['id']}/contacts", token, 201,
                            json={"givenName": "Deep"})
    inside = await graph_call(http, "POST", f"/v1.0/me/contactFolders/{clients['id']}/contacts", token, 201,
                              json={"givenName": "Inside"})
    pages, cursor = await drain(alice, None)
    listed = {c.native_id: folder(c) for p in pages for c in p.changes}
    assert listed == {deep["id"]: "Work/Clients/VIP", inside["id"]: "Work/Clients"}

    created = await alice.create(ContactInput.model_validate(
        {"name": {"givenName": "New"}, "attributes": [{"name": "folder", "value": "Work/Clients/Prospects"}]}))
    assert folder(created) == "Work/Clients/Prospects"
    mailbox = state.mailboxes["alice"]
    prospects = mailbox.folder_at("Work/Clients/Prospects")
    assert prospects is not None and prospects.parent_id == clients["id"]  # made inside the existing path
    assert mailbox.get(created.native_id).folder_id == prospects.folder_id  # type: ignore[union-attr]
    pages, cursor = await drain(alice, cursor)
    assert [(c.native_id, folder(c)) for p in pages for c in p.changes] == [
        (created.native_id, "Work/Clients/Prospects")]

    await graph_call(http, "DELETE", f"/v1.0/me/contactFolders/{vip['id']}", token, 204)
    with pytest.raises(CursorExpired, match="removed or renamed"):  # its contact went with it
        await alice.list_changes(cursor)


async def test_folder_removed_mid_round(alice: MicrosoftConnector, control: Control, http: aiohttp.ClientSession,
                                        state: EmulatorState) -> None:
    await control.seed("alice", 30)
    first = await alice.list_changes(None)
    assert first.more
    family = state.mailboxes["alice"].folder_named("Family")
    assert family is not None
    await graph_call(http, "DELETE", f"/v1.0/me/contactFolders/{family.folder_id}",
                     state.issue_access_token("alice"), 204)
    with pytest.raises(CursorExpired, match="gone"):
        await drain(alice, first.cursor)


async def test_evicted_delta_tokens(alice: MicrosoftConnector, control: Control) -> None:
    await control.seed("alice", 30)  # the default folder takes two pages
    _, cursor = await drain(alice, None)
    await drain(alice, cursor)  # still valid
    await control.call("POST", "/users/alice/expire-cursors", expect=204)
    with pytest.raises(CursorExpired):
        await drain(alice, cursor)
    first = await alice.list_changes(None)  # a fresh listing works, and its page links die too
    assert first.more and len(first.changes) == 10
    await control.call("POST", "/users/alice/expire-cursors", expect=204)
    with pytest.raises(CursorExpired):
        await drain(alice, first.cursor)
    for bad in ("not-a-cursor", "mg1.bm9wZQ", "mg1.W1siIiwieCIsbnVsbCxudWxsXV0"):
        with pytest.raises(CursorExpired):
            await alice.list_changes(bad)


async def test_round_trip_through_the_emulator(alice: MicrosoftConnector, control: Control) -> None:
    contact = ContactInput.model_validate(FULL)
    created = await alice.create(contact)
    assert created.native_id.startswith("AAMk") and created.version and created.modified_time
    assert created.contact is not None and content_of(created.contact) == content_of(contact)
    fetched = await alice.get(created.native_id)
    assert fetched.version == created.version
    assert fetched.contact is not None and content_of(fetched.contact) == content_of(contact)
    listed = [c for p in (await drain(alice, None))[0] for c in p.changes]
    assert [c.native_id for c in listed] == [created.native_id]
    assert listed[0].contact is not None and content_of(listed[0].contact) == content_of(contact)
    truth = await control.call("GET", f"/users/alice/contacts/{created.native_id}")
    assert truth["contact"] == content_of(contact)
    plain = await alice.create(ContactInput(notes="default folder"))  # no folder attribute: default folder
    assert plain.contact is not None and content_of(plain.contact) == {"notes": "default folder"}
    truth = await control.call("GET", f"/users/alice/contacts/{plain.native_id}")
    assert truth["contact"] == {"notes": "default folder"}


async def test_update_replaces_and_clears(alice: MicrosoftConnector, control: Control) -> None:
    created = await alice.create(ContactInput.model_validate(FULL))
    replacement = ContactInput.model_validate({"name": {"givenName": "Only"}, "keywords": ["k"],
                                               "attributes": [{"name": "folder", "value": "Work"}]})
    updated = await alice.update(created.native_id, replacement, created.version)
    assert updated.version != created.version
    assert updated.contact is not None and content_of(updated.contact) == content_of(replacement)
    truth = await control.call("GET", f"/users/alice/contacts/{created.native_id}")
    assert truth["contact"] == content_of(replacement)
    again = await alice.update(created.native_id, ContactInput(notes="no etag given"), None)
    assert again.contact is not None and again.contact.notes == "no etag given"
    assert folder(again) == "Work"  # Graph cannot move a contact: the folder stays


async def test_stale_etag_conflicts(alice: MicrosoftConnector, control: Control) -> None:
    created = await alice.create(ContactInput(notes="v1"))
    await control.patch("alice", created.native_id, {"notes": "changed behind our back"})
    with pytest.raises(Conflict) as info:
        await alice.update(created.native_id, ContactInput(notes="v2"), created.version)
    current = await alice.get(created.native_id)
    assert info.value.current_version == current.version != created.version
    assert current.contact is not None and current.contact.notes == "changed behind our back"
    with pytest.raises(Conflict):
        await alice.delete(created.native_id, created.version)
    await alice.delete(created.native_id, current.version)
    for call in (alice.get(created.native_id), alice.delete(created.native_id, None),
                 alice.update(created.native_id, ContactInput(notes="v3"), current.version), alice.get("a/b")):
        with pytest.raises(NotFound):
            await call


async def test_throttled_with_retry_after(alice: MicrosoftConnector, control: Control, state: EmulatorState) -> None:
    await control.fault(path="/contacts/delta$", status=429, times=1, retryAfter=7)
    with pytest.raises(Throttled) as info:
        await alice.list_changes(None)
    assert info.value.retry_after == 7.0
    assert state.faults == []  # one request only: the connector did not retry
    assert (await alice.list_changes(None)).more is False


async def test_unavailable(alice: MicrosoftConnector, control: Control, clock: FakeClock) -> None:
    created = await alice.create(ContactInput(notes="x"))
    await control.fault(path="^/v1.0/me/contacts/", status=503, times=1)
    with pytest.raises(Unavailable) as info:
        await alice.get(created.native_id)
    assert info.value.retry_after is None
    await control.fault(path="^/v1.0/me/contacts/", status=504, times=1, retryAfter=2)
    with pytest.raises(Unavailable) as info:
        await alice.get(created.native_id)
    assert info.value.retry_after == 2.0
    assert (await alice.get(created.native_id)).contact is not None
    await control.fault(path="/oauth2/v2.0/token$", status=503, times=1, retryAfter=3)
    clock.advance(3601)  # the token must be refreshed, and the token endpoint is down
    with pytest.raises(Unavailable, match="token endpoint") as info:
        await alice.get(created.native_id)
    assert info.value.retry_after == 3.0


async def test_invalid_refresh_token_or_client(connect: Connect, control: Control) -> None:
    with pytest.raises(AuthFailed, match="invalid_grant"):
        await connect({"refreshToken": "0.AXoA-bogus"}).list_changes(None)
    token = await control.add_user("bob")
    with pytest.raises(AuthFailed, match="invalid_client"):
        await connect({"refreshToken": token}, client_secret="wrong").list_changes(None)
    with pytest.raises(AuthFailed, match="authority"):
        await connect({"refreshToken": token, "tenantId": "no-such-tenant"}).list_changes(None)
    assert (await connect({"refreshToken": token}).list_changes(None)).changes == []


async def test_access_token_expiry_refreshes_transparently(alice: MicrosoftConnector, state: EmulatorState,
                                                           clock: FakeClock) -> None:
    created = await alice.create(ContactInput(notes="x"))
    first_refresh = alice._tokens.refresh_token
    assert state.access_tokens_issued == 1
    clock.advance(3601)  # the server now answers 401 to the token the client still believes in
    assert (await alice.get(created.native_id)).contact is not None
    assert state.access_tokens_issued == 2
    assert alice._tokens.refresh_token != first_refresh  # the rotated refresh token is kept
    got = await asyncio.gather(*(alice.get(created.native_id) for _ in range(5)))
    assert len(got) == 5 and state.access_tokens_issued == 2  # a live token is reused
    state.revoke_refresh_tokens("alice")
    state.expire_access_tokens()
    with pytest.raises(AuthFailed):
        await alice.get(created.native_id)


async def test_app_only_client_credentials(connect: Connect, control: Control, state: EmulatorState,
                                           clock: FakeClock) -> None:
    await control.add_user("alice")
    await control.add_user("bob")
    seeded = await control.seed("alice", 5)
    await control.seed("bob", 3)
    for mailbox in ("alice@contoso.test", state.mailboxes["alice"].oid):
        app = connect({"tenantId": state.tenant_id, "mailbox": mailbox})
        pages, _ = await drain(app, None)
        assert sorted(ids(pages)) == sorted(seeded)
    created = await app.create(ContactInput(notes="by the app", attributes=[{"name": "folder", "value": "Work"}]))
    assert folder(created) == "Work"
    issued = state.access_tokens_issued
    clock.advance(3601)  # msal's cache still holds the token; the 401 makes the connector drop it
    assert (await app.get(created.native_id)).contact is not None
    assert state.access_tokens_issued == issued + 1
    with pytest.raises(AuthFailed):
        await drain(connect({"tenantId": state.tenant_id, "mailbox": "nobody@contoso.test"}), None)
    with pytest.raises(AuthFailed):
        await drain(connect({"tenantId": "common", "mailbox": "alice"}), None)


async def test_requests_ca_bundle_in_the_environment_does_not_break_trust(
        connect: Connect, control: Control, monkeypatch: pytest.MonkeyPatch, ms_settings: Any) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    discovery = f"{ms_settings.authority}/v2.0/.well-known/openid-configuration"

    def naive() -> None:  # what msal does with its verify= option: the environment wins, and trust fails
        with requests.Session() as session:
            session.verify = ms_settings.ca_bundle
            session.get(discovery, timeout=10)

    with pytest.raises(requests.exceptions.SSLError):
        await asyncio.to_thread(naive)
    connector = connect({"refreshToken": await control.add_user("carol")})
    assert (await connector.list_changes(None)).changes == []


def test_parse_credentials() -> None:
    assert parse_credentials({"refreshToken": "r"}) == {"refreshToken": "r"}
    assert parse_credentials({"refreshToken": "r", "tenantId": "t"}) == {"refreshToken": "r", "tenantId": "t"}
    assert parse_credentials({"tenantId": "t", "mailbox": "m@x"}) == {"tenantId": "t", "mailbox": "m@x"}
    bad: list[Any] = [{}, {"refreshToken": ""}, {"refreshToken": 5}, {"refreshToken": "r", "password": "p"},
                      {"mailbox": "m"}, {"tenantId": "t"}, {"refreshToken": "r", "mailbox": "m"},
                      {"tenantId": " ", "mailbox": "m"}, ["refreshToken"]]
    for raw in bad:
        with pytest.raises(ValueError, match="Microsoft"):
            parse_credentials(raw)


def test_map_errors_edge_cases() -> None:
    def graph(status: int, code: str = "", **headers: str) -> ProviderError:
        body = b'{"error": {"code": "%s", "message": "m"}}' % code.encode()
        return map_errors(GraphHTTPError(status, body, headers))

    assert isinstance(graph(400, "resyncRequired"), CursorExpired)
    assert isinstance(graph(410), CursorExpired)
    assert isinstance(graph(404, "ErrorInvalidUser"), AuthFailed)
    assert isinstance(graph(403, "ErrorAccessDenied"), AuthFailed)
    dated = graph(429, **{"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert isinstance(dated, Throttled) and dated.retry_after == 0.0
    assert type(graph(400, "ErrorInvalidRequest")) is ProviderError
    assert isinstance(map_errors(GraphHTTPError(502, b"<html>", {})), Unavailable)
    assert isinstance(map_errors(TokenError({"error": "temporarily_unavailable"})), Unavailable)
    assert isinstance(map_errors(TokenError({"error": "invalid_grant"})), AuthFailed)
    assert isinstance(map_errors(ConnectionRefusedError()), Unavailable)
    assert isinstance(map_errors(aiohttp.ClientConnectionError()), Unavailable)
