"""The Connector interface every provider implements, and the provider errors.

A connector is a pure adapter: it turns a provider's wire protocol into unified
`ContactInput` values and opaque provider cursors, and back. It knows nothing of
HTTP faces, client tokens or Redis, and it never sleeps: retry is the caller's
decision, made from the error it raises.

Errors::

    ProviderError
     ├─ AuthFailed        credentials rejected or revoked; the account needs re-authorization
     ├─ Throttled         slow down; .retry_after seconds (None when the provider gave no hint)
     ├─ Conflict          the native version given to update/delete is stale; .current_version
     ├─ NotFound          the contact does not exist at the provider
     ├─ Unavailable       the provider is down or answered 5xx; .retry_after as for Throttled
     └─ CursorExpired     the provider's sync cursor is gone; the caller relists everything
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from gateway.models import ContactInput, content_of


class ProviderError(Exception):
    """Root of every error a connector raises."""


class AuthFailed(ProviderError):
    pass


class Throttled(ProviderError):
    def __init__(self, message: str = "throttled", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(ProviderError):
    def __init__(self, message: str = "provider unavailable", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Conflict(ProviderError):
    def __init__(self, message: str = "version conflict", current_version: str | None = None) -> None:
        super().__init__(message)
        self.current_version = current_version


class NotFound(ProviderError):
    pass


class CursorExpired(ProviderError):
    pass


def retry_after_seconds(value: str | None) -> float | None:
    """An HTTP Retry-After value in seconds (delta-seconds or an HTTP date); None when absent or unreadable.

    Every connector reads the provider's hint with this, so Throttled/Unavailable.retry_after mean the same.
    """
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class RemoteContact:
    """One contact as the provider holds it; `contact` and `content` are None when `deleted`.

    A connector gives either the model (`contact`) or, on its listing path, the normalized content
    dict (`content=`, from `gateway.models.provider_content`), or a function that maps it (`mapped=`);
    the rest is derived on first use. The mirror hashes `content`, so a pulled contact never needs a
    model built and dumped again, and a lazy mapping lets the refresher map page N while the provider
    is already answering the request for page N+1.
    """

    __slots__ = ("native_id", "version", "deleted", "created_time", "modified_time", "_contact", "_content",
                 "_mapped")

    def __init__(self, native_id: str, version: str | None = None, contact: ContactInput | None = None,
                 deleted: bool = False, created_time: str | None = None, modified_time: str | None = None,
                 *, content: dict[str, Any] | None = None,
                 mapped: Callable[[], dict[str, Any]] | None = None) -> None:
        self.native_id = native_id
        self.version = version
        self.deleted = deleted
        self.created_time = created_time
        self.modified_time = modified_time
        self._contact = contact
        self._content = content
        self._mapped = mapped

    @property
    def contact(self) -> ContactInput | None:
        if self._contact is None and self.content is not None:
            self._contact = ContactInput.model_validate(self.content)
        return self._contact

    @property
    def content(self) -> dict[str, Any] | None:
        if self._content is None:
            if self._mapped is not None:
                self._content, self._mapped = self._mapped(), None
            elif self._contact is not None:
                self._content = content_of(self._contact)
        return self._content

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RemoteContact):
            return NotImplemented
        return (self.native_id, self.version, self.deleted, self.created_time, self.modified_time, self.content) == (
            other.native_id, other.version, other.deleted, other.created_time, other.modified_time, other.content)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"RemoteContact(native_id={self.native_id!r}, version={self.version!r}, deleted={self.deleted!r}, "
                f"content={self.content!r})")


_shared_pools: dict[str, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def shared_executor(name: str, max_threads: int) -> ThreadPoolExecutor:
    """The process-wide thread pool `name` for a blocking client library (its calls bounded in total), made on
    first use with `max_threads` (later sizes are ignored)."""
    with _pools_lock:
        pool = _shared_pools.get(name)
        if pool is None:
            pool = _shared_pools[name] = ThreadPoolExecutor(max_workers=max_threads, thread_name_prefix=name)
        return pool


#: The attribute that holds the folder a contact lives in, for providers with contact folders (Graph, EWS):
#: absent in the default folder, else the folder's path of display names below it, "/"-joined.
FOLDER_ATTRIBUTE = "folder"


def folder_of(contact: ContactInput) -> str | None:
    """The folder path the contact asks for ("Work", "Work/Clients"), or None for the default folder.
    Empty path parts are dropped ("Work//Clients/" is "Work/Clients")."""
    for attribute in contact.attributes or []:
        if attribute.name == FOLDER_ATTRIBUTE and attribute.value:
            return "/".join(part for part in attribute.value.split("/") if part.strip()) or None
    return None


@dataclass(slots=True)
class ChangePage:
    """One batch of changes from `list_changes`.

    `cursor` is what to pass to the next call. While `more` is true it resumes
    this round (a page cursor); when `more` is false the round is complete and
    `cursor` is the provider's delta cursor for the next round. A round started
    with cursor None is a full listing: every live contact appears in it.
    Duplicates within a round are allowed; the mirror absorbs them.
    """

    changes: list[RemoteContact] = field(default_factory=list)
    cursor: str | None = None
    more: bool = False


class Connector(abc.ABC):
    """A connected address book at one provider (one account's credentials)."""

    @abc.abstractmethod
    async def list_changes(self, cursor: str | None) -> ChangePage:
        """Changes since `cursor`, or a full listing when it is None. Raises CursorExpired."""

    @abc.abstractmethod
    async def get(self, native_id: str) -> RemoteContact:
        """The contact as the provider holds it now. Raises NotFound."""

    @abc.abstractmethod
    async def create(self, contact: ContactInput) -> RemoteContact:
        """Create a contact; returns it as stored, with its native id and version."""

    @abc.abstractmethod
    async def update(self, native_id: str, contact: ContactInput, if_match: str | None) -> RemoteContact:
        """Replace the contact's content. A stale `if_match` native version raises Conflict."""

    @abc.abstractmethod
    async def delete(self, native_id: str, if_match: str | None) -> None:
        """Delete the contact. Raises NotFound, or Conflict for a stale `if_match`."""

    async def aclose(self) -> None:
        """Release HTTP sessions and threads. The default holds nothing."""
        return None
