"""ExchangeConnector: one mailbox's contacts through Exchange Web Services, with exchangelib unmodified.

Configuration is fixed, so exchangelib probes nothing: autodiscover off, auth type given (BASIC, or OAUTH2
for a bearer token), server version from settings (`Version(build)`: no ConvertId guessing). exchangelib
blocks (requests), so every call runs in a thread pool bounded in total (`shared_executor("exchange-ews")`,
sized by settings.max_threads) and per account (a semaphore of settings.max_threads_per_account slots, matched by
exchangelib's per-account session pool), so the event loop never waits and one slow mailbox cannot take
every thread. A slot is held until its thread is done, even when the awaiting task is cancelled.

The connector never sleeps and never retries: exchangelib runs with a FailFast policy whose HTTP failures
leave with their status and Retry-After, and `map_errors` is the one place library errors become provider
errors; the core decides. When exchangelib meets ErrorServerBusy without a BackOffMilliseconds hint it
fills in its own 10 s; that is what Throttled.retry_after carries then.

list_changes walks every contacts folder (Contacts and its subfolders, listed with FindFolder at the start
of each round) with SyncFolderItems, at most settings.page_size changes per call, then GetItem for the full
properties of created and updated items (parsed with the emulator's `ews_xml.parse_contact`, twenty times
faster than exchangelib's generic item parser; request, transport and errors stay exchangelib's). The cursor
(`SyncCursor`) is "ews1." + base64url JSON of the folders of the round with their SyncStates and paths, the
folder in progress, and pending item ids: items GetItem could not return (corrupt, or failing for any per-item reason)
are logged and retried at the start of the next round, so one bad item never blocks the rest; one found gone
by then is reported deleted. A folder that disappeared, was renamed or moved between rounds makes the cursor
expire (the caller relists: it tombstones what is gone and updates the folder attribute of what moved); a new
folder is synced from scratch. A contact's folder attribute is its folder's path (folders.py, mapping.py);
creating a contact with one puts it in that folder, made with CreateFolder where missing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests
from exchangelib import DELEGATE, UTC, Account, Configuration, Credentials, OAuth2AuthorizationCodeCredentials
from exchangelib.errors import (
    ErrorFolderNotFound,
    ErrorIrresolvableConflict,
    ErrorItemNotFound,
    EWSError,
    ResponseMessageError,
)
from exchangelib.items import ID_ONLY, Contact
from exchangelib.properties import FolderId
from exchangelib.protocol import Protocol
from exchangelib.transport import BASIC, OAUTH2
from oauthlib.oauth2 import OAuth2Error, OAuth2Token

from gateway.config import ExchangeSettings
from gateway.models import ContactInput
from providers.base import (
    ChangePage,
    Conflict,
    Connector,
    CursorExpired,
    NotFound,
    RemoteContact,
    folder_of,
    shared_executor,
)
from providers.exchange.cursor import SyncCursor
from providers.exchange.ews_errors import (
    PER_REQUEST,
    FailFastPolicy,
    HttpFailure,
    install_adapter,
    map_errors,
    server_version,
    trust_ca_bundle,
)
from providers.exchange.ews_services import READ_FIELDS, ContactRead, GetContacts, SyncItemIds
from providers.exchange.folders import ContactFolders
from providers.exchange.mapping import (
    ITEM_FIELDS,
    contact_to_fields,
    contact_to_item_fields,
    fields_content,
)

__all__ = ["ExchangeConnector", "map_errors", "parse_credentials"]

T = TypeVar("T")
log = logging.getLogger(__name__)

MAX_PAGE = 512  # the server's MaxChangesReturned maximum
_PROBE = 3  # items asked alone before a batch-wide error is taken for the request's own
#: What a call may raise from the library; anything else is a bug and propagates as is.
_LIBRARY_ERRORS = (EWSError, HttpFailure, requests.RequestException, OSError, OAuth2Error)


def _nonempty(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f'Exchange credentials need "{key}": a non-empty string')
    return value


def parse_credentials(raw: dict[str, Any]) -> dict[str, str]:
    """Validate what POST /v1/accounts takes for Exchange.

    Basic: {"ewsUrl", "username", "password"}; OAuth (a bearer token obtained elsewhere, exchangelib's
    access-token-only mode): {"ewsUrl", "username", "accessToken"}. Optional "primarySmtpAddress" names the
    mailbox when it differs from the username (default: the username, which must then be an email address).
    """
    if not isinstance(raw, dict):
        raise ValueError('Exchange credentials must be a JSON object: {"ewsUrl", "username", "password"}')
    allowed = {"ewsUrl", "username", "password", "accessToken", "primarySmtpAddress"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ValueError(f"unknown Exchange credential fields: {', '.join(unknown)} "
                         '(expected "ewsUrl", "username" and "password" or "accessToken")')
    url = _nonempty(raw, "ewsUrl")
    if not url.lower().startswith(("https://", "http://")):
        raise ValueError('Exchange "ewsUrl" must be an http(s) URL such as https://mail.example.com/EWS/Exchange.asmx')
    parsed = {"ewsUrl": url, "username": _nonempty(raw, "username")}
    if ("password" in raw) == ("accessToken" in raw):
        raise ValueError('Exchange credentials need exactly one of "password" and "accessToken"')
    secret = "password" if "password" in raw else "accessToken"
    parsed[secret] = _nonempty(raw, secret)
    if "primarySmtpAddress" in raw:
        parsed["primarySmtpAddress"] = _nonempty(raw, "primarySmtpAddress")
        if "@" not in parsed["primarySmtpAddress"]:
            raise ValueError('Exchange "primarySmtpAddress" must be an email address')
    elif "@" not in parsed["username"]:
        raise ValueError('Exchange credentials need "primarySmtpAddress" (the mailbox\'s email address) when '
                         '"username" is not one (DOMAIN\\user)')
    return parsed


def _remote(read: ContactRead, folder: str | None) -> RemoteContact:
    """A contact read as a RemoteContact: native id = ItemId Id, version = ChangeKey; `folder` its folder's path."""
    return RemoteContact(native_id=read.item_id, version=read.change_key, created_time=read.created,
                         modified_time=read.modified, mapped=functools.partial(fields_content, read.fields, folder))


def _latest(changes: list[RemoteContact]) -> list[RemoteContact]:
    """One change per item, the last one (a retried pending item may also come from its folder's sync)."""
    last = {c.native_id: i for i, c in enumerate(changes)}
    return [c for i, c in enumerate(changes) if last[c.native_id] == i]


@dataclass(slots=True)
class _Fetched:
    """GetItem results for some ids: contacts, ids that are gone, ids that failed (with the error)."""

    found: list[RemoteContact] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    failed: dict[str, Exception] = field(default_factory=dict)


class ExchangeConnector(Connector):
    """A connected Exchange mailbox (one account's EWS credentials)."""

    def __init__(self, credentials: dict[str, Any], settings: ExchangeSettings,
                 executor: ThreadPoolExecutor | None = None) -> None:
        self._creds = parse_credentials(credentials)
        self._settings = settings
        self._version = server_version(settings.server_version)  # a bad setting fails here, not on first call
        self._page_size = max(1, min(settings.page_size, MAX_PAGE))
        self._executor = executor or shared_executor("exchange-ews", settings.max_threads)
        self._slots = asyncio.Semaphore(max(1, settings.max_threads_per_account))
        self._account_obj: Account | None = None
        self._account_lock = threading.Lock()
        self._folders = ContactFolders()
        install_adapter()
        if settings.ca_bundle:
            trust_ca_bundle(self._creds["ewsUrl"], settings.ca_bundle)

    # --- plumbing ---------------------------------------------------------------------------------------
    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking exchangelib call in the pool, within this account's slots; map library errors."""
        loop = asyncio.get_running_loop()
        await self._slots.acquire()
        try:
            future = self._executor.submit(fn, *args)
        except BaseException:
            self._slots.release()
            raise

        def release(_: Any) -> None:  # from the worker thread, when the call is really over
            with suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(self._slots.release)

        future.add_done_callback(release)
        try:
            return await asyncio.wrap_future(future)
        except _LIBRARY_ERRORS as exc:
            raise map_errors(exc) from exc

    def _account(self) -> Account:
        """The exchangelib Account, built once (building it sends nothing)."""
        with self._account_lock:
            if self._account_obj is None:
                creds = self._creds
                if "accessToken" in creds:
                    token = OAuth2Token({"access_token": creds["accessToken"], "token_type": "Bearer"})
                    credentials: Any = OAuth2AuthorizationCodeCredentials(access_token=token)
                    auth_type = OAUTH2
                else:
                    credentials, auth_type = Credentials(creds["username"], creds["password"]), BASIC
                config = Configuration(service_endpoint=creds["ewsUrl"], credentials=credentials, auth_type=auth_type,
                                       version=self._version, retry_policy=FailFastPolicy(),
                                       max_connections=max(1, self._settings.max_threads_per_account))
                self._account_obj = Account(primary_smtp_address=creds.get("primarySmtpAddress", creds["username"]),
                                            config=config, autodiscover=False, access_type=DELEGATE,
                                            default_timezone=UTC)
            return self._account_obj

    # --- blocking parts (run in the pool) ---------------------------------------------------------------
    def _read(self, account: Account, read: ContactRead) -> RemoteContact:
        return _remote(read, self._folders.path_of(account, read.parent_folder_id))

    def _fetch_many(self, account: Account, ids: list[str]) -> list[Any]:
        """GetItem results (ContactRead, None for a non-contact, or the item's exception) in order.

        exchangelib raises, for the whole batch, per-item errors it does not expect (ErrorInternalServerError
        for one corrupt item, say); then each id is asked alone so the others still arrive. When the first
        few alone fail too, the request itself is failing and the error propagates.
        """
        def fetch(chunk: list[str]) -> list[Any]:
            service = GetContacts(account=account, chunk_size=MAX_PAGE)
            return list(service.call(items=[(i, None) for i in chunk], additional_fields=set(READ_FIELDS),
                                     shape=ID_ONLY))
        try:
            return fetch(ids)
        except ResponseMessageError as exc:
            if isinstance(exc, PER_REQUEST):
                raise
            if len(ids) == 1:
                return [exc]
            batch_error = exc
        results: list[Any] = []
        for item_id in ids:
            try:
                results.extend(fetch([item_id]))
            except ResponseMessageError as exc:
                if isinstance(exc, PER_REQUEST):
                    raise
                results.append(exc)
            if len(results) == _PROBE and all(isinstance(r, Exception) for r in results):
                raise batch_error
        return results

    def _fetch(self, account: Account, ids: list[str]) -> _Fetched:
        out = _Fetched()
        if not ids:
            return out
        for item_id, result in zip(ids, self._fetch_many(account, ids), strict=True):
            if isinstance(result, ContactRead):
                out.found.append(self._read(account, result))
            elif isinstance(result, ErrorItemNotFound):
                out.gone.append(item_id)
            elif isinstance(result, Exception):
                log.warning("exchange: GetItem failed for item %s (%s: %s); retrying it next round",
                            item_id, type(result).__name__, result)
                out.failed[item_id] = result
            else:
                out.gone.append(item_id)  # no longer a contact: as good as deleted for us
        return out

    def _start_round(self, account: Account, at: SyncCursor | None) -> tuple[SyncCursor, list[RemoteContact]]:
        """A new round: the folders now, their states from the last round, and the pending items retried.

        A folder removed, renamed or moved since the last round makes the cursor expire: only a relisting
        tells which contacts went with it, or now carry another folder path (their items did not change).
        """
        current = dict(self._folders.listing(account))
        if at is None:
            return SyncCursor([[fid, None, path] for fid, path in current.items()]), []
        states = {f[0]: f[1] for f in at.folders}
        gone = set(states) - set(current)
        if gone:
            raise CursorExpired(f"exchange: {len(gone)} contacts folder(s) were removed; relist")
        moved = [f[2] for f in at.folders if len(f) > 2 and current[f[0]] != f[2]]
        if moved:
            raise CursorExpired(f"exchange: contacts folder(s) {moved} were renamed or moved; relist")
        fetched = self._fetch(account, at.pending)
        changes = fetched.found + [RemoteContact(native_id=i, deleted=True) for i in fetched.gone]
        return SyncCursor([[fid, states.get(fid), path] for fid, path in current.items()], 0,
                          list(fetched.failed)), changes

    def _sync_folder(self, account: Account, at: SyncCursor, budget: int) -> tuple[list[RemoteContact], int, bool]:
        """One SyncFolderItems page of the folder in progress, with GetItem for creates and updates."""
        folder_id, state = at.folders[at.index][:2]
        svc = SyncItemIds(account=account)
        try:
            raw = list(svc.call(folder=FolderId(id=folder_id), shape=ID_ONLY, additional_fields=set(),
                                sync_state=state, ignore=None, max_changes_returned=budget, sync_scope="NormalItems"))
        except ErrorFolderNotFound:
            raise CursorExpired(f"exchange: contacts folder {folder_id} was removed during the round") from None
        fetch_ids = [item.id for kind, item in raw if kind in ("create", "update")]
        fetched = self._fetch(account, fetch_ids)
        by_id = {c.native_id: c for c in fetched.found}
        changes: list[RemoteContact] = []
        for kind, item in raw:
            if kind == "delete":
                changes.append(RemoteContact(native_id=item.id, deleted=True))
            elif kind in ("create", "update") and item.id in by_id:
                changes.append(by_id[item.id])
        changes += [RemoteContact(native_id=i, deleted=True) for i in fetched.gone]
        settled = {c.native_id for c in changes}
        at.pending = [p for p in at.pending if p not in settled] + [i for i in fetched.failed if i not in at.pending]
        at.folders[at.index][1] = svc.sync_state
        if svc.includes_last_item_in_range:
            at.index += 1
        return changes, len(raw), bool(svc.includes_last_item_in_range)

    def _page(self, cursor: str | None) -> ChangePage:
        at = SyncCursor.decode(cursor) if cursor is not None else None
        account = self._account()
        changes: list[RemoteContact] = []
        if at is None or at.complete:
            at, changes = self._start_round(account, at)
        budget = self._page_size - len(changes)
        while not at.complete and budget > 0:
            page, used, folder_done = self._sync_folder(account, at, budget)
            changes += page
            budget -= used
            if not used and not folder_done:
                break  # the server made no progress; the next call resumes here
        return ChangePage(_latest(changes), at.encode(), more=not at.complete)

    def _get_item(self, account: Account, native_id: str) -> ContactRead:
        [result] = self._fetch_many(account, [native_id])
        if isinstance(result, Exception):
            raise result
        if result is None:
            raise NotFound(f"exchange: item {native_id} is not a contact")
        return result

    def _after_write(self, account: Account, item: Contact, contact: ContactInput) -> RemoteContact:
        """The item as stored (GetItem); if it cannot be read back now, the written content and ChangeKey."""
        try:
            return self._read(account, self._get_item(account, item.id))
        except _LIBRARY_ERRORS:  # the write happened: failing now would make the caller write it twice
            return RemoteContact(native_id=item.id, version=item.changekey,
                                 content=fields_content(contact_to_fields(contact), folder_of(contact)))

    def _create(self, contact: ContactInput) -> RemoteContact:
        account = self._account()
        folder = self._folders.target(account, folder_of(contact))
        item = Contact(account=account, folder=folder, **contact_to_item_fields(contact))
        item.save()
        return self._after_write(account, item, contact)

    def _update(self, native_id: str, contact: ContactInput, if_match: str | None) -> RemoteContact:
        account = self._account()
        change_key = if_match if if_match is not None else self._get_item(account, native_id).change_key
        item = Contact(account=account, id=native_id, changekey=change_key, **contact_to_item_fields(contact))
        try:
            item.save(update_fields=list(ITEM_FIELDS), conflict_resolution="NeverOverwrite")
        except ErrorIrresolvableConflict as exc:
            current = None
            with suppress(EWSError):
                current = self._get_item(account, native_id).change_key
            raise Conflict(f"exchange: {exc}", current_version=current) from exc
        return self._after_write(account, item, contact)

    def _delete(self, native_id: str, if_match: str | None) -> None:
        """DeleteItem (HardDelete). EWS ignores the ChangeKey there, so a given if_match is checked first."""
        account = self._account()
        change_key = None
        if if_match is not None:
            change_key = self._get_item(account, native_id).change_key
            if change_key != if_match:
                raise Conflict(f"exchange: item {native_id} changed (ChangeKey {change_key})",
                               current_version=change_key)
        Contact(account=account, id=native_id, changekey=change_key).delete()

    # --- Connector ------------------------------------------------------------------------------------
    async def list_changes(self, cursor: str | None) -> ChangePage:
        """A page of a full listing (cursor None) or of the changes since the last round."""
        return await self._run(self._page, cursor)

    async def get(self, native_id: str) -> RemoteContact:
        return await self._run(lambda: self._read(self._account(), self._get_item(self._account(), native_id)))

    async def create(self, contact: ContactInput) -> RemoteContact:
        """CreateItem in the folder the folder attribute names (made when missing), else in Contacts; then
        GetItem for what Exchange stored."""
        return await self._run(self._create, contact)

    async def update(self, native_id: str, contact: ContactInput, if_match: str | None) -> RemoteContact:
        """UpdateItem of every mapped field with ConflictResolution NeverOverwrite and the ChangeKey `if_match`
        (the current one when None); a stale one raises Conflict."""
        return await self._run(self._update, native_id, contact, if_match)

    async def delete(self, native_id: str, if_match: str | None) -> None:
        await self._run(self._delete, native_id, if_match)

    async def aclose(self) -> None:
        """Close this account's HTTP sessions and drop exchangelib's cached protocol for it."""
        account, self._account_obj = self._account_obj, None
        if account is not None:
            with suppress(KeyError):
                del Protocol[account.protocol.config]
            await asyncio.to_thread(account.protocol.close)  # not the pool: it may be shut down already

