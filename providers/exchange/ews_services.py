"""exchangelib services the connector subclasses for speed: same requests, transport and errors, leaner parsing.

exchangelib parses every item through the generic `Item.from_xml`, which walks ~100 Contact fields per item;
for a sync that was most of the time. These subclasses override only `_elem_to_obj`, exchangelib's hook that
turns one response element into an object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exchangelib.fields import FieldPath
from exchangelib.items import Contact
from exchangelib.properties import ItemId
from exchangelib.services import GetItem, SyncFolderItems
from exchangelib.util import TNS

from providers.exchange.ews_xml import parse_contact
from providers.exchange.mapping import ONLY_FIELDS, EwsFields


class SyncItemIds(SyncFolderItems):
    """SyncFolderItems keeping only each change's ItemId. The connector fetches full items with GetItem anyway
    (Exchange cannot return Body here), and parsing every Contact field of an IdOnly item was half a sync."""

    def _elem_to_obj(self, elem: Any) -> tuple[str, ItemId]:
        kind = self.change_types_map[elem.tag]
        holder = elem if kind in (self.DELETE, self.READ_FLAG_CHANGE) else elem[0]
        return kind, ItemId.from_xml(elem=holder.find(ItemId.response_tag()), account=self.account)


@dataclass(slots=True)
class ContactRead:
    """A contact as GetItem returned it: ItemId, ChangeKey, the neutral fields, the server's times."""

    item_id: str
    change_key: str | None
    fields: EwsFields
    created: str | None
    modified: str | None
    parent_folder_id: str | None = None


#: GetItem's AdditionalProperties: every mapped field, the times, and the folder the item is in.
READ_FIELDS = frozenset(FieldPath(field=Contact.get_field_by_fieldname(name))
                        for name in (*ONLY_FIELDS, "parent_folder_id"))
CONTACT_TAG = f"{{{TNS}}}Contact"
_PARENT_TAG = f"{{{TNS}}}ParentFolderId"


class GetContacts(GetItem):
    """GetItem whose items are parsed by ews_xml.parse_contact (the emulator's parser) instead of exchangelib's
    generic Contact.from_xml, which walks ~100 fields per item and was 20 times slower. Request, transport
    and errors stay exchangelib's. Items that are not contacts come back as None."""

    def _elem_to_obj(self, elem: Any) -> ContactRead | None:
        if elem.tag != CONTACT_TAG:
            return None
        ref, parent = elem.find(ItemId.response_tag()), elem.find(_PARENT_TAG)
        return ContactRead(ref.get("Id"), ref.get("ChangeKey"), parse_contact(elem),
                           elem.findtext(f"{{{TNS}}}DateTimeCreated"), elem.findtext(f"{{{TNS}}}LastModifiedTime"),
                           parent.get("Id") if parent is not None else None)
