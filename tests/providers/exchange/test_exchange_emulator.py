"""Pins of the emulator's EWS behaviour (raw SOAP over HTTP), where the connector depends on it."""

from __future__ import annotations

from typing import Any

from lxml import etree

from providers.exchange.bench import basic_auth
from providers.exchange.emulator import EmulatorState
from providers.exchange.soap import EWS_PATH, SOAP, M, T
from tests.providers.exchange.ews_helpers import Control

NS = {"s": SOAP, "m": M, "t": T}
#: Fault codes that make exchangelib resend the request with every older server version.
VERSION_FALLBACK = {"ErrorInvalidRequest", "ErrorInvalidServerVersion", "ErrorIncorrectSchemaVersion",
                    "ErrorInvalidSchemaVersionForMailboxVersion"}


def envelope(body: str) -> str:
    return (f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP}" xmlns:m="{M}" xmlns:t="{T}">'
            '<s:Header><t:RequestServerVersion Version="Exchange2016"/></s:Header>'
            f"<s:Body>{body}</s:Body></s:Envelope>")


def sync(state: str | None = None, limit: int = 100, folder: str = "contacts") -> str:
    token = f"<m:SyncState>{state}</m:SyncState>" if state is not None else ""
    return (f"<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>"
            f'<m:SyncFolderId><t:DistinguishedFolderId Id="{folder}"/></m:SyncFolderId>{token}'
            f"<m:MaxChangesReturned>{limit}</m:MaxChangesReturned></m:SyncFolderItems>")


def get_item(*ids: str) -> str:
    refs = "".join(f'<t:ItemId Id="{i}"/>' for i in ids)
    return (f"<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties>"
            f'<t:FieldURI FieldURI="contacts:GivenName"/></t:AdditionalProperties></m:ItemShape>'
            f"<m:ItemIds>{refs}</m:ItemIds></m:GetItem>")


def update(item_id: str, change_key: str | None, resolution: str, given: str) -> str:
    key = f' ChangeKey="{change_key}"' if change_key else ""
    return (f'<m:UpdateItem ConflictResolution="{resolution}" MessageDisposition="SaveOnly"><m:ItemChanges>'
            f'<t:ItemChange><t:ItemId Id="{item_id}"{key}/><t:Updates><t:SetItemField>'
            f'<t:FieldURI FieldURI="contacts:GivenName"/><t:Contact><t:GivenName>{given}</t:GivenName></t:Contact>'
            f"</t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>")


class Ews:
    """Raw SOAP calls as one mailbox."""

    def __init__(self, control: Control, creds: dict[str, str]) -> None:
        self.client, self.auth = control.client, basic_auth(creds["username"], creds["password"])

    async def post(self, body: str, expect: int = 200, auth: dict[str, str] | None = None) -> Any:
        headers = {"Content-Type": "text/xml; charset=utf-8", **(auth or self.auth)}
        resp = await self.client.post(EWS_PATH, data=envelope(body), headers=headers)
        text = await resp.read()
        assert resp.status == expect, text
        return etree.fromstring(text) if resp.content_type == "text/xml" else None


def msg(root: Any) -> Any:
    return root.find("s:Body", NS)[0].find("m:ResponseMessages", NS)[0]


async def test_authentication(control: Control) -> None:
    creds = await control.add_user("alice")
    assert creds["ewsUrl"] == str(control.client.make_url(EWS_PATH)) and creds["username"] == "alice@exchange.emulator"
    ews = Ews(control, creds)
    bad = [basic_auth(creds["username"], "wrong"), basic_auth("mallory", "x"), {}, {"Authorization": "Basic !!"},
           {"Authorization": "Bearer unknown"}]
    for auth in bad:
        resp = await control.client.post(EWS_PATH, data=envelope(sync()), headers=auth)
        assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Basic")
    assert (await ews.post(sync(), auth=basic_auth("alice", creds["password"]))) is not None  # plain name too


async def test_sync_pages_states_and_expiry(control: Control, state: EmulatorState) -> None:
    ews = Ews(control, await control.add_user("alice"))
    seeded = await control.seed("alice", 5, folders=0)
    first = msg(await ews.post(sync(limit=3)))
    assert first.get("ResponseClass") == "Success" and first.findtext("m:IncludesLastItemInRange", None, NS) == "false"
    creates = first.findall("m:Changes/t:Create/t:Contact/t:ItemId", NS)
    assert [c.get("Id") for c in creates] == seeded[:3]
    second = msg(await ews.post(sync(first.findtext("m:SyncState", None, NS), limit=3)))
    assert second.findtext("m:IncludesLastItemInRange", None, NS) == "true"
    assert len(second.findall("m:Changes/t:Create", NS)) == 2
    state_token = second.findtext("m:SyncState", None, NS)
    again = msg(await ews.post(sync(state_token)))
    assert again.findtext("m:SyncState", None, NS) not in (state_token, None)  # a new state on every page
    assert len(again.find("m:Changes", NS)) == 0
    await control.delete("alice", seeded[0])
    await control.patch("alice", seeded[1], {"notes": "x"})
    changes = msg(await ews.post(sync(state_token))).find("m:Changes", NS)
    assert [(etree.QName(c).localname, c.find(".//t:ItemId", NS).get("Id")) for c in changes] == [
        ("Delete", seeded[0]), ("Update", seeded[1])]

    await control.expire("alice")
    for token in (state_token, "garbage!", "WzFd"):
        error = msg(await ews.post(sync(token)))
        assert error.get("ResponseClass") == "Error"
        assert error.findtext("m:ResponseCode", None, NS) == "ErrorInvalidSyncStateData"
        assert error.findtext("m:MessageText", None, NS).startswith("Synchronization state data is corrupt")
        assert error.find("m:SyncState", NS) is not None and not error.findtext("m:SyncState", None, NS)
        assert error.findtext("m:IncludesLastItemInRange", None, NS) == "true"
    fault = await ews.post(sync(limit=513), expect=500)
    assert fault.findtext("s:Body/s:Fault/faultcode", None, NS) not in {f"a:{c}" for c in VERSION_FALLBACK}


async def test_server_busy_fault_shape_and_user_filter(control: Control, state: EmulatorState) -> None:
    alice, bob = Ews(control, await control.add_user("alice")), Ews(control, await control.add_user("bob"))
    await control.fault(code="ErrorServerBusy", retryAfter=1.5, user="alice", operation="SyncFolderItems")
    assert msg(await bob.post(sync())).get("ResponseClass") == "Success"  # another mailbox: untouched
    root = await alice.post(sync(), expect=500)
    fault = root.find("s:Body/s:Fault", NS)
    assert fault.findtext("faultcode") == "a:ErrorServerBusy"
    detail = fault.find("detail")
    assert detail.findtext("{*}ResponseCode") == "ErrorServerBusy"
    assert detail.find("t:MessageXml/t:Value", NS).get("Name") == "BackOffMilliseconds"
    assert detail.findtext("t:MessageXml/t:Value", None, NS) == "1500"
    assert state.faults == []
    assert msg(await alice.post(sync())).get("ResponseClass") == "Success"
    unknown = await alice.post("<m:ResolveNames/>", expect=500)
    assert unknown.findtext("s:Body/s:Fault/faultcode", None, NS) == "a:ErrorInvalidOperation"


async def test_change_keys_and_conflicts(control: Control) -> None:
    ews = Ews(control, await control.add_user("alice"))
    item_id = await control.create("alice", {"name": {"givenName": "A"}})
    read = msg(await ews.post(get_item(item_id))).find("m:Items/t:Contact", NS)
    key = read.find("t:ItemId", NS).get("ChangeKey")
    assert read.findtext("t:GivenName", None, NS) == "A" and read.find("t:Body", NS) is None  # shape honoured
    for resolution, given_key, code in (("NeverOverwrite", "stale", "ErrorIrresolvableConflict"),
                                        ("AutoResolve", "stale", "ErrorIrresolvableConflict"),
                                        ("NeverOverwrite", None, "ErrorChangeKeyRequiredForWriteOperations")):
        error = msg(await ews.post(update(item_id, given_key, resolution, "B")))
        assert (error.get("ResponseClass"), error.findtext("m:ResponseCode", None, NS)) == ("Error", code)
    ok = msg(await ews.post(update(item_id, key, "NeverOverwrite", "B")))
    new_key = ok.find("m:Items/t:Contact/t:ItemId", NS).get("ChangeKey")
    assert new_key != key and ok.findtext("m:ConflictResults/t:Count", None, NS) == "0"
    forced = msg(await ews.post(update(item_id, key, "AlwaysOverwrite", "C")))
    assert forced.find("m:Items/t:Contact/t:ItemId", NS).get("ChangeKey") not in (key, new_key)
    assert (await control.truth("alice"))[item_id] == {"name": {"givenName": "C"}}


async def test_get_item_errors_and_isolation(control: Control) -> None:
    alice, bob = Ews(control, await control.add_user("alice")), Ews(control, await control.add_user("bob"))
    mine, poisoned = await control.seed("alice", 2, folders=0)
    await control.poison("alice", poisoned)
    messages = msg(await alice.post(get_item(mine, "AAMknope", "bad-id", poisoned))).getparent()
    codes = [(m_.get("ResponseClass"), m_.findtext("m:ResponseCode", None, NS)) for m_ in messages]
    assert codes == [("Success", "NoError"), ("Error", "ErrorItemNotFound"), ("Error", "ErrorInvalidIdMalformed"),
                     ("Error", "ErrorItemCorrupt")]
    assert messages[1].find("m:Items", NS) is not None and len(messages[1].find("m:Items", NS)) == 0
    assert msg(await bob.post(get_item(mine))).findtext("m:ResponseCode", None, NS) == "ErrorItemNotFound"
    await control.heal("alice", poisoned)
    assert msg(await alice.post(get_item(poisoned))).get("ResponseClass") == "Success"
    create = ('<m:CreateItem MessageDisposition="SaveOnly"><m:SavedItemFolderId><t:FolderId Id="AAMkFnope"/>'
              "</m:SavedItemFolderId><m:Items><t:Contact><t:GivenName>X</t:GivenName></t:Contact></m:Items>"
              "</m:CreateItem>")
    assert msg(await alice.post(create)).findtext("m:ResponseCode", None, NS) == "ErrorFolderNotFound"


async def test_control_api(control: Control) -> None:
    await control.call("POST", "/users", {"user": "bad name!"}, 400)
    await control.call("POST", "/users/nobody/seed", {"count": 1}, 404)
    await control.add_user("alice")
    await control.call("POST", "/users/alice/seed", {"count": -1}, 400)
    await control.call("POST", "/users/alice/contacts", {"emailAddresses": [{"address": "nope"}]}, 400)
    await control.call("POST", "/users/alice/contacts?folder=AAMknope", {"notes": "x"}, 404)
    await control.call("PATCH", "/users/alice/contacts/AAMknope", {"notes": "x"}, 404)
    for fault in ({"status": 99}, {"times": 0}, {"code": "NotAnEwsCode"}, {"path": "("}, {"user": 5}):
        await control.call("POST", "/faults", fault, 400)
    await control.add_user("bob")
    a, b = await control.seed("alice", 30, seed=7), await control.seed("bob", 30, seed=7)
    truth_a, truth_b = await control.truth("alice"), await control.truth("bob")
    assert [truth_a[i] for i in a] == [truth_b[i] for i in b]  # deterministic per seed
    assert len({str(c) for c in truth_a.values()}) == 30  # and varied
    item = await control.create("alice", {"name": {"givenName": "P"}, "notes": "keep"})
    patched = await control.patch("alice", item, {"name": None, "keywords": ["k"]})
    assert patched["contact"] == {"notes": "keep", "keywords": ["k"]}
    await control.call("PATCH", f"/users/alice/contacts/{item}", {"bogus": 1}, 400)


def create_folder(parent: str, *names: str, distinguished: bool = False) -> str:
    ref = f'<t:DistinguishedFolderId Id="{parent}"/>' if distinguished else f'<t:FolderId Id="{parent}"/>'
    folders = "".join(f"<t:ContactsFolder><t:DisplayName>{n}</t:DisplayName></t:ContactsFolder>" for n in names)
    return (f"<m:CreateFolder><m:ParentFolderId>{ref}</m:ParentFolderId>"
            f"<m:Folders>{folders}</m:Folders></m:CreateFolder>")


async def test_create_and_rename_folders(control: Control, state: EmulatorState) -> None:
    ews = Ews(control, await control.add_user("alice"))
    made = msg(await ews.post(create_folder("contacts", "Work", distinguished=True)))
    work = made.find("m:Folders/t:ContactsFolder/t:FolderId", NS)
    assert made.get("ResponseClass") == "Success" and work.get("Id") and work.get("ChangeKey")
    answer = (await ews.post(create_folder(work.get("Id"), "Clients", "clients", " ")))
    created, duplicate, unnamed = answer.find("s:Body", NS)[0].find("m:ResponseMessages", NS)
    assert created.get("ResponseClass") == "Success"
    assert duplicate.findtext("m:ResponseCode", None, NS) == "ErrorFolderExists"  # names are case-insensitive
    assert unnamed.get("ResponseClass") == "Error"
    missing = msg(await ews.post(create_folder("AAMkNope", "X")))
    assert missing.findtext("m:ResponseCode", None, NS) == "ErrorFolderNotFound"
    box = state.mailboxes["alice"]
    clients = created.find("m:Folders/t:ContactsFolder/t:FolderId", NS).get("Id")
    assert box.path_of(clients) == "Work/Clients" and box.folders[clients].folder_class == "IPF.Contact"
    key = box.folders[clients].change_key
    renamed = await control.call("PATCH", f"/users/alice/folders/{clients}", {"name": "Customers"})
    assert renamed == {"folderId": clients, "name": "Customers"}
    assert box.path_of(clients) == "Work/Customers" and box.folders[clients].change_key != key
    await control.call("PATCH", f"/users/alice/folders/{box.contacts.folder_id}", {"name": "X"}, 404)
    await control.call("PATCH", f"/users/alice/folders/{clients}", {"name": ""}, 400)
