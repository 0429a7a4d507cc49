"""The emulator's control API (/_control, identical on every provider emulator; see EMULATORS.md).

Contacts go in and out as unified Contact JSON and are stored as neutral EWS fields through mapping.py, the
same mapping the connector uses, so a change made here is what the gateway later reads over EWS.
EWS-specific additions, all optional for callers:
- `POST /_control/users/{user}/folders` {"name", "parent"?} -> 201 {"folderId"}; `GET .../folders` ->
  [{"folderId", "name", "parentId"}] (Contacts and its subfolders); `PATCH .../folders/{id}` {"name"} renames;
  `DELETE .../folders/{id}`;
  `POST .../contacts?folder=<folderId>` creates in a subfolder; seed takes "folders": N subfolders (default 1).
- `POST .../contacts/{nativeId}/poison` {"code"?: "ErrorItemCorrupt"} makes GetItem fail for that item with
  that EWS error; `DELETE .../contacts/{nativeId}/poison` heals it.
- `POST .../tokens` -> 201 {"accessToken"}: a Bearer token for OAuth credentials.
- faults also take "user" (mailbox) and "operation" (SOAP operation), since every EWS request shares one
  path, and "code": an EWS error code answered as a SOAP Fault (ErrorServerBusy gets BackOffMilliseconds
  from "retryAfter" seconds).
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from gateway.models import WRITABLE_FIELDS
from providers.base import folder_of
from providers.control_kit import SERVER_FIELDS as _SERVER_FIELDS
from providers.control_kit import add_fault_routes, fault_fields, new_user_name, seed_params
from providers.control_kit import http_error as _http_error
from providers.control_kit import json_response as _json
from providers.control_kit import parse_contact as _contact
from providers.control_kit import read_body as _body
from providers.exchange.emulator_state import STATE, EmulatorState, Fault, ItemRecord, Mailbox
from providers.exchange.mapping import contact_to_fields, fields_to_contact
from providers.exchange.seed import generate, seed_folder
from providers.exchange.soap import EWS_PATH

_CODE = re.compile(r"^Error[A-Za-z0-9]+$")


def _user(request: web.Request) -> tuple[EmulatorState, str]:
    state, user = request.app[STATE], request.match_info["user"]
    if user not in state.mailboxes:
        raise _http_error(404, f"no such user: {user}")
    return state, user


def _record(request: web.Request) -> tuple[EmulatorState, str, ItemRecord]:
    state, user = _user(request)
    record = state.mailboxes[user].get(request.match_info["native_id"])
    if record is None:
        raise _http_error(404, f"no such contact: {request.match_info['native_id']}")
    return state, user, record


def _view(box: Mailbox, record: ItemRecord) -> dict[str, Any]:
    contact = fields_to_contact(record.fields, box.path_of(record.folder_id))
    return {"nativeId": record.item_id, "contact": contact.model_dump(mode="json", exclude_none=True)}


async def _create_user(request: web.Request) -> web.Response:
    user = await new_user_name(request)
    state = request.app[STATE]
    password = state.add_user(user)
    ews_url = f"{request.scheme}://{request.host}{EWS_PATH}"
    credentials = {"ewsUrl": ews_url, "username": state.mailboxes[user].login, "password": password}
    return _json({"user": user, "credentials": credentials}, 201)


async def _create_token(request: web.Request) -> web.Response:
    state, user = _user(request)
    return _json({"accessToken": state.issue_access_token(user)}, 201)


async def _create_folder(request: web.Request) -> web.Response:
    state, user = _user(request)
    body, box = await _body(request), state.mailboxes[user]
    parent = box.folder(str(body.get("parent") or "contacts"))
    if not isinstance(body.get("name"), str) or not body["name"] or parent is None:
        raise _http_error(400, '"name" must be a non-empty string and "parent" an existing folder id')
    return _json({"folderId": box.add_folder(body["name"], parent.folder_id).folder_id}, 201)


async def _list_folders(request: web.Request) -> web.Response:
    state, user = _user(request)
    box = state.mailboxes[user]
    return _json([{"folderId": f.folder_id, "name": f.name, "parentId": f.parent_id}
                  for f in (box.contacts, *box.subfolders(box.contacts.folder_id, True))])


async def _rename_folder(request: web.Request) -> web.Response:
    """A user renaming a folder in Outlook: its items do not change (no SyncFolderItems change for them)."""
    state, user = _user(request)
    body, box, folder_id = await _body(request), state.mailboxes[user], request.match_info["folder_id"]
    if folder_id not in box.folders or box.folders[folder_id].distinguished:
        raise _http_error(404, f"no such subfolder: {folder_id}")
    if not isinstance(body.get("name"), str) or not body["name"].strip():
        raise _http_error(400, '"name" must be a non-empty string')
    box.folders[folder_id].name = body["name"]
    return _json({"folderId": folder_id, "name": body["name"]})


async def _delete_folder(request: web.Request) -> web.Response:
    state, user = _user(request)
    box, folder_id = state.mailboxes[user], request.match_info["folder_id"]
    if folder_id not in box.folders or box.folders[folder_id].distinguished:
        raise _http_error(404, f"no such subfolder: {folder_id}")
    box.delete_folder(folder_id)
    return web.Response(status=204)


async def _create_contact(request: web.Request) -> web.Response:
    state, user = _user(request)
    box, folder_id = state.mailboxes[user], request.query.get("folder")
    if folder_id is not None and folder_id not in box.folders:
        raise _http_error(404, f"no such folder: {folder_id}")
    contact = _contact(await _body(request))
    if folder_id is None and (path := folder_of(contact)) is not None:
        folder_id = box.folder_at(path).folder_id  # the folder attribute places it, as through the connector
    record = state.create(user, contact_to_fields(contact), folder_id)
    return _json({"nativeId": record.item_id}, 201)


async def _list_contacts(request: web.Request) -> web.Response:
    state, user = _user(request)
    records = [r for r in state.mailboxes[user].items.values() if not r.deleted]
    return _json([_view(state.mailboxes[user], r) for r in sorted(records, key=lambda r: r.seq)])


async def _get_contact(request: web.Request) -> web.Response:
    state, user, record = _record(request)
    return _json(_view(state.mailboxes[user], record))


async def _patch_contact(request: web.Request) -> web.Response:
    """Top-level fields present replace the stored ones, null clears, absent ones stay."""
    state, user, record = _record(request)
    body = await _body(request)
    unknown = set(body) - WRITABLE_FIELDS - _SERVER_FIELDS
    if unknown:
        raise _http_error(400, f"unknown contact fields: {sorted(unknown)}")
    merged = fields_to_contact(record.fields).model_dump(exclude_none=True)  # the folder stays where it is
    merged.update({k: v for k, v in body.items() if k in WRITABLE_FIELDS})
    contact = _contact({k: v for k, v in merged.items() if v is not None})
    return _json(_view(state.mailboxes[user], state.update(user, record.item_id, contact_to_fields(contact))))


async def _delete_contact(request: web.Request) -> web.Response:
    state, user, record = _record(request)
    state.delete(user, record.item_id)
    return web.Response(status=204)


async def _poison(request: web.Request) -> web.Response:
    state, user, record = _record(request)
    code = (await _body(request)).get("code", "ErrorItemCorrupt")
    if not isinstance(code, str) or not _CODE.match(code):
        raise _http_error(400, '"code" must be an EWS error code such as "ErrorItemCorrupt"')
    state.mailboxes[user].poison[record.item_id] = code
    return web.Response(status=204)


async def _heal(request: web.Request) -> web.Response:
    state, user = _user(request)
    state.mailboxes[user].poison.pop(request.match_info["native_id"], None)
    return web.Response(status=204)


async def _seed(request: web.Request) -> web.Response:
    state, user = _user(request)
    body = await _body(request)
    (count, seed), folders = seed_params(body), body.get("folders", 1)
    if not isinstance(folders, int) or folders < 0:
        raise _http_error(400, '"folders" must be an integer >= 0')
    box, by_name = state.mailboxes[user], {}
    ids = []
    for i, contact in enumerate(generate(count, seed)):
        name = seed_folder(i, folders)
        if name is not None and name not in by_name:
            by_name[name] = box.folder_at(name).folder_id
        ids.append(state.create(user, contact_to_fields(contact), by_name.get(name) if name else None).item_id)
    return _json({"count": len(ids), "nativeIds": ids}, 201)


async def _expire_cursors(request: web.Request) -> web.Response:
    state, user = _user(request)
    state.expire_cursors(user)
    return web.Response(status=204)


def _fault(body: dict[str, Any]) -> Fault:
    try:
        common = fault_fields(body, default_path=".")
        user, operation, code = body.get("user"), body.get("operation"), body.get("code")
        if any(v is not None and not isinstance(v, str) for v in (user, operation, code)):
            raise ValueError("user, operation and code must be strings")
        if code is not None and not _CODE.match(code):
            raise ValueError("code must be an EWS error code such as ErrorServerBusy")
    except (TypeError, ValueError, re.error) as exc:
        raise _http_error(400, f"invalid fault: {exc}") from None
    return Fault(*common, user, operation, code)


def add_control_routes(app: web.Application) -> None:
    """Mount /_control on an emulator app whose state is app[STATE]."""
    router = app.router
    router.add_post("/_control/users", _create_user)
    router.add_post("/_control/users/{user}/tokens", _create_token)
    router.add_post("/_control/users/{user}/folders", _create_folder)
    router.add_get("/_control/users/{user}/folders", _list_folders)
    router.add_patch("/_control/users/{user}/folders/{folder_id}", _rename_folder)
    router.add_delete("/_control/users/{user}/folders/{folder_id}", _delete_folder)
    router.add_post("/_control/users/{user}/contacts", _create_contact)
    router.add_get("/_control/users/{user}/contacts", _list_contacts)
    router.add_post("/_control/users/{user}/contacts/{native_id}/poison", _poison)
    router.add_delete("/_control/users/{user}/contacts/{native_id}/poison", _heal)
    router.add_get("/_control/users/{user}/contacts/{native_id}", _get_contact)
    router.add_patch("/_control/users/{user}/contacts/{native_id}", _patch_contact)
    router.add_delete("/_control/users/{user}/contacts/{native_id}", _delete_contact)
    router.add_post("/_control/users/{user}/seed", _seed)
    router.add_post("/_control/users/{user}/expire-cursors", _expire_cursors)
    add_fault_routes(app, STATE, _fault)
