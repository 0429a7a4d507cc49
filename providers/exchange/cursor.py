"""The connector's list_changes cursor: "ews1." + base64url JSON, opaque to the core.

It holds the folders of the round with their SyncStates and paths, the index of the folder in progress (== the number
of folders once the round is complete), and the ids of items GetItem could not return, to fetch again at the
start of the next round. A cursor that is not ours reads as expired, so the caller relists.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from providers.base import CursorExpired

_PREFIX = "ews1."


@dataclass(slots=True)
class SyncCursor:
    """Where list_changes resumes: the round's folders [id, SyncState | None, path | None] (cursors written
    before paths were kept have no path), the index of the folder in progress (== len(folders) when the round
    is complete), and item ids to fetch again next round."""

    folders: list[list[Any]]
    index: int = 0
    pending: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.index >= len(self.folders)

    def encode(self) -> str:
        raw = json.dumps({"f": self.folders, "i": self.index, "p": self.pending}, separators=(",", ":"))
        return _PREFIX + base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> SyncCursor:
        """Parse a cursor; one that is not ours is as good as expired (the caller relists)."""
        try:
            if not cursor.startswith(_PREFIX):
                raise ValueError("prefix")
            text = cursor.removeprefix(_PREFIX)
            data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            folders, index, pending = data["f"], data["i"], data["p"]
            valid = (isinstance(folders, list) and all(_folder_entry(f) for f in folders)
                     and isinstance(index, int) and 0 <= index <= len(folders)
                     and isinstance(pending, list) and all(isinstance(p, str) for p in pending))
            if not valid:
                raise ValueError("shape")
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            raise CursorExpired("unreadable Exchange cursor") from None
        return cls(folders, index, pending)


def _folder_entry(entry: Any) -> bool:
    """[id, SyncState | None] or [id, SyncState | None, path | None]."""
    return (isinstance(entry, list) and len(entry) in (2, 3) and isinstance(entry[0], str)
            and all(isinstance(v, str | None) for v in entry[1:]))
