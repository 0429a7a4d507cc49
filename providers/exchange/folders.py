"""A mailbox's contacts folders as the connector sees them: ids, paths of names, and making missing ones.

A folder's path is its chain of display names below the Contacts folder, "/"-joined ("Work/Clients"), the
value of a contact's folder attribute (mapping.py); Contacts itself has none. Folders are listed with one
FindFolder (Deep traversal) below Contacts. Everything here blocks (exchangelib) and runs in the
connector's worker threads; the tables are replaced whole, never edited in place, so a reader in another
thread sees one listing or the next.
"""

from __future__ import annotations

import threading
from typing import Any

from exchangelib import Account
from exchangelib.folders import Folder, FolderCollection


class ContactFolders:
    """The contacts folders of one mailbox, as last listed."""

    def __init__(self) -> None:
        self._paths: dict[str, str] = {}  # subfolder id -> path
        self._objects: dict[str, Any] = {}  # subfolder id -> exchangelib folder (a parent for new folders)
        self._root_id: str | None = None
        self._elsewhere: frozenset[str] = frozenset()  # folder ids items were in that a listing since lacked
        self._lock = threading.Lock()  # one creation of missing folders at a time

    def listing(self, account: Account) -> list[tuple[str, str | None]]:
        """(id, path) of Contacts (path None) and of every contacts folder below it, Contacts first."""
        contacts = account.contacts
        found = []
        for folder in FolderCollection(account=account, folders=[contacts]).find_folders(depth="Deep"):
            if isinstance(folder, Exception):
                raise folder
            found.append(folder)
        by_id = {f.id: f for f in found}

        def path(folder: Any, depth: int = 0) -> str:
            parent = folder.parent_folder_id.id if folder.parent_folder_id is not None else None
            name = folder.name or ""
            if parent not in by_id or depth > len(by_id):  # right below Contacts (or a cycle, cut)
                return name
            return f"{path(by_id[parent], depth + 1)}/{name}"

        paths = {f.id: path(f) for f in found if (f.folder_class or "").startswith("IPF.Contact")}
        self._paths, self._objects, self._root_id = paths, {f.id: f for f in found}, contacts.id
        self._elsewhere = frozenset()
        return [(contacts.id, None), *paths.items()]

    def path_of(self, account: Account, folder_id: str | None) -> str | None:
        """The path of the folder an item is in (None for Contacts, or a folder not below it)."""
        if folder_id is None or folder_id == self._root_id or folder_id in self._elsewhere:
            return None
        if folder_id not in self._paths:
            self.listing(account)  # made since the last listing?
            if folder_id not in self._paths:  # no: not a contacts folder below Contacts; not listed again for it
                self._elsewhere = self._elsewhere | {folder_id}
        return self._paths.get(folder_id)

    def target(self, account: Account, path: str | None) -> Any:
        """The folder at `path` (case-insensitive, as Outlook), made level by level where missing."""
        if path is None:
            return account.contacts
        with self._lock:
            if self._named(path) is None:
                self.listing(account)  # made elsewhere since the last listing?
            parent = account.contacts
            names = path.split("/")
            for depth in range(1, len(names) + 1):
                existing = self._named("/".join(names[:depth]))
                if existing is None:
                    folder = Folder(parent=parent, name=names[depth - 1], folder_class="IPF.Contact")
                    folder.save()
                    self._paths = {**self._paths, folder.id: "/".join(names[:depth])}
                    self._objects = {**self._objects, folder.id: folder}
                    existing = folder
                parent = existing
            return parent

    def _named(self, path: str) -> Any:
        wanted = path.casefold()
        return next((self._objects[fid] for fid, p in self._paths.items() if p.casefold() == wanted), None)
