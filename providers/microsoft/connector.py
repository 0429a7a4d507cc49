"""MicrosoftConnector: one Microsoft 365 mailbox's contacts through Microsoft Graph.

Tokens come from msal (auth.py, in worker threads); Graph is called with aiohttp (graph.py), where every
failure becomes a provider error at one boundary, `map_errors`. The connector never sleeps and never
retries; the core's policy does.

Sync covers every contact folder: the default "Contacts" folder (`/contacts/delta`) and every folder below
it, nested or not (`GET /contactFolders`, then `/contactFolders/{id}/childFolders` of each folder found, then
`/contactFolders/{id}/contacts/delta` each: Graph addresses any folder of the mailbox by its id). A contact's
folder is its path of display names below the default folder, "/"-joined ("Work/Clients"; see mapping.py).
A round walks the folders one delta page per call, following `@odata.nextLink` until `@odata.deltaLink`.
The cursor (see `_Cursor`) is "mg1." + base64url JSON of one [folder id ("" = default), phase, link, name]
per folder; phase "p" = not read yet this round (link: last round's deltaLink, or None for a first
listing), "n" = paging (link: nextLink), "d" = done (link: this round's deltaLink). A round starts by
listing the folders again: a new folder joins with a first listing (all its contacts are new to us); a
folder removed or renamed since the last round raises CursorExpired, because only a relisting can tell
which contacts went with it (or now carry another folder name). A delta token Graph evicted (410
syncStateNotFound / resyncRequired) or a folder that vanished mid-round (404) raise CursorExpired too.
"""

from __future__ import annotations

import base64
import binascii
import functools
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from gateway.config import MicrosoftSettings
from gateway.models import ContactInput
from providers.base import (
    ChangePage,
    Conflict,
    Connector,
    CursorExpired,
    NotFound,
    ProviderError,
    RemoteContact,
    folder_of,
)
from providers.microsoft.auth import TokenSource
from providers.microsoft.graph import GraphClient, map_errors
from providers.microsoft.mapping import SELECT, contact_to_graph, graph_content

__all__ = ["MicrosoftConnector", "map_errors", "parse_credentials"]

_CURSOR_PREFIX = "mg1."
_DEFAULT = ""  # the cursor key of the default Contacts folder
_ID_SAFE = "=-_"


def _non_empty(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f'Microsoft "{key}", when given, must be a non-empty string')
    return value


def parse_credentials(raw: dict[str, Any]) -> dict[str, str]:
    """Validate what POST /v1/accounts takes for office365.

    Delegated: {"refreshToken": str, "tenantId"?: str}. App-only (the gateway's app, client credentials):
    {"tenantId": str, "mailbox": str (user id or UPN)}.
    """
    if not isinstance(raw, dict):
        raise ValueError('Microsoft credentials must be a JSON object: {"refreshToken": "..."} or '
                         '{"tenantId": "...", "mailbox": "..."}')
    unknown = sorted(set(raw) - {"refreshToken", "tenantId", "mailbox"})
    if unknown:
        raise ValueError(f"unknown Microsoft credential fields: {', '.join(unknown)} "
                         '(expected "refreshToken" and optionally "tenantId", or "tenantId" and "mailbox")')
    refresh, tenant, mailbox = (_non_empty(raw, k) for k in ("refreshToken", "tenantId", "mailbox"))
    if refresh is not None and mailbox is not None:
        raise ValueError('Microsoft credentials take either "refreshToken" (delegated) or "mailbox" (app-only), '
                         "not both")
    if refresh is not None:
        return {"refreshToken": refresh, **({"tenantId": tenant} if tenant else {})}
    if mailbox is None:
        raise ValueError('Microsoft credentials need "refreshToken" (delegated access), or "tenantId" and '
                         '"mailbox" (app-only access)')
    if tenant is None:
        raise ValueError('Microsoft app-only credentials need "tenantId" with "mailbox"')
    return {"tenantId": tenant, "mailbox": mailbox}


# --- cursors -------------------------------------------------------------------------------------------

@dataclass(slots=True)
class _Entry:
    """One folder's place in a round: key ("" = default folder), phase "p"/"n"/"d", link, display name."""

    key: str
    phase: str
    link: str | None
    name: str | None


class _Cursor:
    """Encoding of a round's per-folder state; one that is not ours is as good as expired."""

    @staticmethod
    def encode(entries: list[_Entry]) -> str:
        raw = orjson.dumps([[e.key, e.phase, e.link, e.name] for e in entries])
        return _CURSOR_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def decode(cursor: str) -> list[_Entry]:
        try:
            if not cursor.startswith(_CURSOR_PREFIX):
                raise ValueError("prefix")
            text = cursor.removeprefix(_CURSOR_PREFIX)
            data = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            entries = [_Entry(*row) for row in data]
        except (ValueError, TypeError, binascii.Error):
            raise CursorExpired("unreadable Microsoft cursor") from None
        valid = entries and entries[0].key == _DEFAULT and all(
            isinstance(e.key, str) and e.phase in ("p", "n", "d") and (e.link is None or isinstance(e.link, str))
            and (e.name is None or isinstance(e.name, str)) and (e.phase == "p" or e.link) for e in entries)
        if not valid:
            raise CursorExpired("unreadable Microsoft cursor")
        return entries


class MicrosoftConnector(Connector):
    """A connected Microsoft 365 mailbox (delegated refresh token, or app-only access to one mailbox)."""

    def __init__(self, credentials: dict[str, Any], settings: MicrosoftSettings) -> None:
        parsed = parse_credentials(credentials)
        self._settings = settings
        self._tokens = TokenSource(settings, parsed.get("refreshToken"), parsed.get("tenantId"))
        self._graph = GraphClient(settings, self._tokens)
        mailbox = parsed.get("mailbox")
        self._root = "/me" if mailbox is None else f"/users/{quote(mailbox, safe='@')}"
        self._folders: dict[str, str] = {}  # subfolder id -> its "/"-joined path, as last listed
        self._default_id: str | None = None

    # --- folders --------------------------------------------------------------------------------------
    async def _children(self, url: str) -> list[dict[str, Any]]:
        """Every folder of a folder listing (all pages)."""
        found: list[dict[str, Any]] = []
        next_url: str | None = f"{url}?$top=100"
        while next_url:
            page = await self._graph.call("GET", next_url) or {}
            found += [f for f in page.get("value") or [] if isinstance(f, dict) and f.get("id")]
            next_url = page.get("@odata.nextLink")
        return found

    async def _list_folders(self) -> dict[str, str]:
        """Every folder below the default folder, nested too, id -> "/"-joined path, parents before children."""
        folders: dict[str, str] = {}
        level = [(f, str(f.get("displayName") or "")) for f in await self._children(f"{self._root}/contactFolders")]
        for folder, _ in level:
            self._default_id = folder.get("parentFolderId") or self._default_id
        while level:
            below: list[tuple[dict[str, Any], str]] = []
            for folder, path in level:
                if folder["id"] in folders:  # a folder listed twice (or a cycle) is walked once
                    continue
                folders[folder["id"]] = path
                url = f"{self._root}/contactFolders/{quote(folder['id'], safe=_ID_SAFE)}/childFolders"
                below += [(c, f"{path}/{c.get('displayName') or ''}") for c in await self._children(url)]
            level = below
        self._folders = folders
        return folders

    async def _folder_name(self, folder_id: str | None) -> str | None:
        """The folder attribute value for a contact's parentFolderId (None: the default folder)."""
        if not folder_id or folder_id == self._default_id:
            return None
        if folder_id not in self._folders:
            await self._list_folders()
        return self._folders.get(folder_id)  # not a subfolder after a fresh listing: the default folder

    def _named(self, name: str) -> str | None:
        return next((fid for fid, n in self._folders.items() if n.casefold() == name.casefold()), None)

    async def _folder_id(self, path: str) -> str:
        """The id of the folder at a "/"-joined path (case-insensitive, as Outlook), made level by level where
        missing (`POST /contactFolders`, then `/contactFolders/{parent}/childFolders`)."""
        found = self._named(path)
        if found is None:
            await self._list_folders()
            found = self._named(path)
        if found is not None:
            return found
        parent: str | None = None
        names = path.split("/")
        for depth in range(1, len(names) + 1):
            prefix = "/".join(names[:depth])
            existing = self._named(prefix)
            if existing is None:
                url = f"{self._root}/contactFolders" if parent is None else \
                    f"{self._root}/contactFolders/{quote(parent, safe=_ID_SAFE)}/childFolders"
                created = await self._graph.call("POST", url, {"displayName": names[depth - 1]}) or {}
                existing = str(created["id"])
                self._folders[existing] = prefix
            parent = existing
        assert parent is not None
        return parent

    def _delta_url(self, key: str) -> str:
        """The first delta call of a folder; $select goes only there (Graph keeps it in its tokens)."""
        folder = "" if key == _DEFAULT else f"/contactFolders/{quote(key, safe=_ID_SAFE)}"
        return f"{self._root}{folder}/contacts/delta?$select={SELECT}"

    async def _new_round(self, previous: list[_Entry] | None) -> list[_Entry]:
        """Every folder pending, on last round's deltaLinks; CursorExpired when one was removed or renamed."""
        folders = await self._list_folders()
        known = {e.key: e for e in previous or []}
        for entry in previous or []:
            if entry.key != _DEFAULT and folders.get(entry.key) != entry.name:
                raise CursorExpired(f"contact folder {entry.name!r} was removed or renamed; relist everything")
        default = known.get(_DEFAULT)
        entries = [_Entry(_DEFAULT, "p", default.link if default else None, None)]
        for folder_id, name in folders.items():
            entries.append(_Entry(folder_id, "p", known[folder_id].link if folder_id in known else None, name))
        return entries

    # --- Connector ------------------------------------------------------------------------------------
    async def list_changes(self, cursor: str | None) -> ChangePage:
        """One delta page of one folder; `more` until every folder reached its deltaLink this round."""
        entries = _Cursor.decode(cursor) if cursor is not None else await self._new_round(None)
        if all(e.phase == "d" for e in entries):
            entries = await self._new_round(entries)
        entry = next(e for e in entries if e.phase != "d")
        prefer = {"Prefer": f"odata.maxpagesize={self._settings.page_size}"}
        try:
            page = await self._graph.call("GET", entry.link or self._delta_url(entry.key), headers=prefer)
        except NotFound as exc:
            raise CursorExpired(f"contact folder {entry.name!r} is gone: {exc}") from exc
        page = page or {}
        if entry.key != _DEFAULT and entry.key not in self._folders:
            self._folders[entry.key] = entry.name or ""
        changes = []
        for item in page.get("value") or []:
            if "@removed" in item:
                changes.append(RemoteContact(native_id=item["id"], deleted=True))
            else:
                if entry.key == _DEFAULT and item.get("parentFolderId"):
                    self._default_id = item["parentFolderId"]
                changes.append(_remote(item, entry.name))
        if page.get("@odata.nextLink"):
            entry.phase, entry.link = "n", page["@odata.nextLink"]
        elif page.get("@odata.deltaLink"):
            entry.phase, entry.link = "d", page["@odata.deltaLink"]
        else:
            raise ProviderError("graph: a delta page without @odata.nextLink or @odata.deltaLink")
        return ChangePage(changes, _Cursor.encode(entries), more=any(e.phase != "d" for e in entries))

    async def get(self, native_id: str) -> RemoteContact:
        item = await self._graph.call("GET", f"{self._contact_path(native_id)}?$select={SELECT}") or {}
        return _remote(item, await self._folder_name(item.get("parentFolderId")))

    async def create(self, contact: ContactInput) -> RemoteContact:
        """POST to the folder the folder attribute names (made when missing), else to the default folder."""
        name = folder_of(contact)
        folder_id = None if name is None else await self._folder_id(name)
        folder = "" if folder_id is None else f"/contactFolders/{quote(folder_id, safe=_ID_SAFE)}"
        item = await self._graph.call("POST", f"{self._root}{folder}/contacts", contact_to_graph(contact)) or {}
        if folder_id is None and item.get("parentFolderId"):
            self._default_id = item["parentFolderId"]
        return _remote(item, None if folder_id is None else self._folders.get(folder_id, name))

    async def update(self, native_id: str, contact: ContactInput, if_match: str | None) -> RemoteContact:
        """PATCH every mapped property (null/[]/{} clears). Graph cannot move a contact: the folder stays."""
        headers = {"If-Match": if_match} if if_match else {}
        try:
            item = await self._graph.call("PATCH", self._contact_path(native_id), contact_to_graph(contact),
                                          headers) or {}
        except Conflict as exc:
            raise Conflict(str(exc), current_version=await self._current_version(native_id)) from exc
        return _remote(item, await self._folder_name(item.get("parentFolderId")))

    async def delete(self, native_id: str, if_match: str | None) -> None:
        headers = {"If-Match": if_match} if if_match else {}
        try:
            await self._graph.call("DELETE", self._contact_path(native_id), headers=headers)
        except Conflict as exc:
            raise Conflict(str(exc), current_version=await self._current_version(native_id)) from exc

    async def aclose(self) -> None:
        """Close the Graph session and msal's HTTP session."""
        await self._graph.aclose()
        self._tokens.close()

    # --- helpers --------------------------------------------------------------------------------------
    def _contact_path(self, native_id: str) -> str:
        if not native_id or "/" in native_id:
            raise NotFound(f"not a Graph contact id: {native_id!r}")
        return f"{self._root}/contacts/{quote(native_id, safe=_ID_SAFE)}"

    async def _current_version(self, native_id: str) -> str | None:
        """The current etag for a Conflict's current_version; None when it cannot be read now."""
        try:
            return (await self.get(native_id)).version
        except ProviderError:
            return None


def _remote(item: dict[str, Any], folder: str | None) -> RemoteContact:
    """A Graph contact as a RemoteContact: version = @odata.etag (W/"<changeKey>")."""
    version = item.get("@odata.etag") or (f'W/"{item["changeKey"]}"' if item.get("changeKey") else None)
    return RemoteContact(native_id=item["id"], version=version, created_time=item.get("createdDateTime"),
                         modified_time=item.get("lastModifiedDateTime"),
                         mapped=functools.partial(graph_content, item, folder))
