"""The EWS operations of the emulator: one function per operation, request element in, response messages out.

Each takes the mailbox the request authenticated as, so mailboxes are isolated by construction: an id of
another mailbox is simply not found. Shapes and error codes follow ../shared/providers/exchange-ews.md.
"""

from __future__ import annotations

from lxml import etree

from providers.exchange.emulator_state import EmulatorState, FolderRecord, ItemRecord, Mailbox
from providers.exchange.ews_xml import apply_update, parse_contact, render_fields, wanted_fields
from providers.exchange.soap import EwsError, EwsFault, m, message, t

MAX_SYNC_CHANGES = 512
_CONFLICT_CHECKED = {"NeverOverwrite", "AutoResolve"}


# --- helpers -------------------------------------------------------------------------------------------

def _folder_ref(elem: etree._Element) -> str:
    return elem.get("Id") or ""


def _folder(box: Mailbox, elem: etree._Element | None) -> FolderRecord:
    folder = box.folder(_folder_ref(elem)) if elem is not None else None
    if folder is None:
        raise EwsError("ErrorFolderNotFound")
    return folder


def _folder_ids(container: etree._Element | None) -> list[etree._Element]:
    return [c for c in container if c.tag in (t("FolderId"), t("DistinguishedFolderId"))] if container is not None \
        else []


def _item(box: Mailbox, item_id: str | None) -> ItemRecord:
    if not item_id or not item_id.startswith("AAMk"):
        raise EwsError("ErrorInvalidIdMalformed")
    record = box.get(item_id)
    if record is None:
        raise EwsError("ErrorItemNotFound")
    return record


def _render_folder(parent: etree._Element, box: Mailbox, folder: FolderRecord) -> None:
    tag = "ContactsFolder" if folder.folder_class.startswith("IPF.Contact") else "Folder"
    node = etree.SubElement(parent, t(tag))
    etree.SubElement(node, t("FolderId"), Id=folder.folder_id, ChangeKey=folder.change_key)
    if folder.parent_id is not None:
        parent_folder = box.folders[folder.parent_id]
        etree.SubElement(node, t("ParentFolderId"), Id=parent_folder.folder_id, ChangeKey=parent_folder.change_key)
    etree.SubElement(node, t("FolderClass")).text = folder.folder_class
    etree.SubElement(node, t("DisplayName")).text = folder.name
    etree.SubElement(node, t("TotalCount")).text = str(folder.live)
    etree.SubElement(node, t("ChildFolderCount")).text = str(len(box.subfolders(folder.folder_id, False)))
    if folder.distinguished:
        etree.SubElement(node, t("DistinguishedFolderId")).text = folder.distinguished


def render_item(parent: etree._Element, box: Mailbox, record: ItemRecord, wanted: frozenset[str]) -> None:
    """A `t:Contact` with its ItemId and the `wanted` fields."""
    node = etree.SubElement(parent, t("Contact"))
    etree.SubElement(node, t("ItemId"), Id=record.item_id, ChangeKey=record.change_key)
    if "parent_folder_id" in wanted:
        folder = box.folders[record.folder_id]
        etree.SubElement(node, t("ParentFolderId"), Id=folder.folder_id, ChangeKey=folder.change_key)
    if "item_class" in wanted:
        etree.SubElement(node, t("ItemClass")).text = "IPM.Contact"
    if "subject" in wanted and record.fields.get("display_name"):
        etree.SubElement(node, t("Subject")).text = record.fields["display_name"]
    render_fields(node, record.fields, wanted)
    if "datetime_created" in wanted:
        etree.SubElement(node, t("DateTimeCreated")).text = record.created
    if "last_modified_time" in wanted:
        etree.SubElement(node, t("LastModifiedTime")).text = record.modified


def _items_message(operation: str, box: Mailbox, records: list[ItemRecord],
                   wanted: frozenset[str]) -> etree._Element:
    msg = message(operation)
    items = etree.SubElement(msg, m("Items"))
    for record in records:
        render_item(items, box, record, wanted)
    return msg


def _int(value: str | None, default: int, name: str) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        raise EwsFault("ErrorSchemaValidation", f"{name} must be an integer.") from None


# --- folders -------------------------------------------------------------------------------------------

def get_folder(state: EmulatorState, box: Mailbox, op: etree._Element) -> list[etree._Element]:
    out = []
    for ref in _folder_ids(op.find(m("FolderIds"))):
        try:
            folder = _folder(box, ref)
        except EwsError as exc:
            out.append(message("GetFolder", exc))
            continue
        msg = message("GetFolder")
        _render_folder(etree.SubElement(msg, m("Folders")), box, folder)
        out.append(msg)
    return out


def _paging(view: etree._Element | None) -> tuple[int, int]:
    """Offset and MaxEntriesReturned of an IndexedPage*View (0 and 1000 without one)."""
    offset = _int(view.get("Offset") if view is not None else None, 0, "Offset")
    limit = _int(view.get("MaxEntriesReturned") if view is not None else None, 1000, "MaxEntriesReturned")
    return offset, limit


def _paged_root(msg: etree._Element, offset: int, shown: int, total: int) -> etree._Element:
    """The RootFolder of a paged Find* answer: where the next page starts, and whether this was the last."""
    return etree.SubElement(msg, m("RootFolder"), IndexedPagingOffset=str(offset + shown),
                            TotalItemsInView=str(total), IncludesLastItemInRange=str(offset + shown >= total).lower())


def find_folder(state: EmulatorState, box: Mailbox, op: etree._Element) -> list[etree._Element]:
    """Subfolders (Shallow or Deep) of each parent, paged by IndexedPageFolderView."""
    deep = op.get("Traversal") == "Deep"
    offset, limit = _paging(op.find(m("IndexedPageFolderView")))
    out = []
    for ref in _folder_ids(op.find(m("ParentFolderIds"))):
        try:
            parent = _folder(box, ref)
        except EwsError as exc:
            out.append(message("FindFolder", exc))
            continue
        found = box.subfolders(parent.folder_id, deep)
        page = found[offset:offset + limit]
        msg = message("FindFolder")
        folders = etree.SubElement(_paged_root(msg, offset, len(page), len(found)), t("Folders"))
        for folder in page:
            _render_folder(folders, box, folder)
        out.append(msg)
    return out


def create_folder(state: EmulatorState, box: Mailbox, op: etree._Element) -> list[etree._Element]:
    """New folders under one parent; a display name its siblings already have is ErrorFolderExists."""
    parents = _folder_ids(op.find(m("ParentFolderId")))
    try:
        parent = _folder(box, parents[0] if parents else None)
    except EwsError as exc:
        return [message("CreateFolder", exc)]
    out = []
    for elem in op.find(m("Folders")) if op.find(m("Folders")) is not None else []:
        name = (elem.findtext(t("DisplayName")) or "").strip()
        if not name:
            out.append(message("CreateFolder", EwsError("ErrorInvalidPropertySet", "A folder needs a DisplayName.")))
            continue
        if box.folder_named(name, parent.folder_id) is not None:
            out.append(message("CreateFolder", EwsError("ErrorFolderExists")))
            continue
        folder = box.add_folder(name, parent.folder_id)
        folder.folder_class = elem.findtext(t("FolderClass")) or (
            "IPF.Contact" if elem.tag == t("ContactsFolder") else "IPF.Note")
        msg = message("CreateFolder")
        node = etree.SubElement(etree.SubElement(msg, m("Folders")), elem.tag)
        etree.SubElement(node, t("FolderId"), Id=folder.folder_id, ChangeKey=folder.change_key)
        out.append(msg)
    return out


# --- items ---------------------------------------------------------------------------------------------

def find_item(state: EmulatorState, box: Mailbox, op: etree._Element) -> list[etree._Element]:
    """Live items of each folder in creation order, paged by IndexedPageItemView (Shallow traversal only)."""
    wanted = wanted_fields(op.find(m("ItemShape")))
    offset, limit = _paging(op.find(m("IndexedPageItemView")))
    out = []
    for ref in _folder_ids(op.find(m("ParentFolderIds"))):
        try:
            folder = _folder(box, ref)
        except EwsError as exc:
            out.append(message("FindItem", exc))
            continue
        live = sorted((r for r in box.items.values() if r.folder_id == folder.folder_id and not r.deleted),
                      key=lambda r: r.created_seq)
        page = live[offset:offset + limit]
        msg = message("FindItem")
        items = etree.SubElement(_paged_root(msg, offset, len(page), len(live)), t("Items"))
        for record in page:
            render_item(items, box, record, wanted)
        out.append(msg)
    return out


def _sync_error(exc: EwsError) -> etree._Element:
    msg = message("SyncFolderItems", exc)
    etree.SubElement(msg, m("SyncState"))
    etree.SubElement(msg, m("IncludesLastItemInRange")).text = "true"
    return msg


def sync_folder_items(state: EmulatorState, box: Mailbox, op: etree._Element) -> list[etree._Element]:
    """Changes of one folder since a SyncState (every live item as Create without one), a new state per page."""
    limit = _int(op.findtext(m("MaxChangesReturned")), 100, "MaxChangesReturned")
    if not 1 <= limit <= MAX_SYNC_CHANGES:
        raise EwsFault("ErrorSchemaValidation", f"MaxChangesReturned must be between 1 and {MAX_SYNC_CHANGES}.")
    wanted = wanted_fields(op.find(m("ItemShape"))) - {"body"}  # Exchange never returns Body here
    holder = op.find(m("SyncFolderId"))
    try:
        folder = _folder(box, _folder_ids(holder)[0] if holder is not None and len(holder) else None)
    except EwsError as exc:
        return [_sync_error(exc)]
    token = op.findtext(m("SyncState"))
    after = state.read_sync_state(box.user, folder.folder_id, token) if token else 0
    if after is None:
        return [_sync_error(EwsError("ErrorInvalidSyncStateData"))]
    changes, reached, more = box.changes(folder, after, limit)
    msg = message("SyncFolderItems")
    etree.SubElement(msg, m("SyncState")).text = state.sync_state(box.user, folder.folder_id, reached)
    etree.SubElement(msg, m("IncludesLastItemInRange")).text = "false" if more else "true"
    container = etree.SubElement(msg, m("Changes"))
    for change in changes:
        node = etree.SubElement(container, t(change.kind))
        if change.kind == "Delete":
            etree.SubElement(node, t("ItemId"), Id=change.record.item_id, ChangeKey=change.record.change_key)
        else:
            render_item(node, box, change.record, wanted)
    return [msg]


def get_item(state: EmulatorState, box: Mailbox, op: etree._Element) -> list[etree._Element]:
    wanted = wanted_fields(op.find(m("ItemShape")))
    out = []
    for ref in op.find(m("ItemIds")) if op.find(m("ItemIds")) is not None else []:
        try:
            record = _item(box, ref.get("Id"))
            if record.item_id in box.poison:
                raise EwsError(box.poison[record.item_id])
        except EwsError as exc:
            msg = message("GetItem", exc)
            etree.SubElement(msg, m("Items"))
            out.append(msg)
            continue
        out.append(_items_message("GetItem", box, [record], wanted))
    return out


def create_item(state: EmulatorState, box: Mailbox, op: etree._Element) -> list[etree._Element]:
    holder = op.find(m("SavedItemFolderId"))
    folder_ref = _folder_ids(holder)[0] if holder is not None and len(holder) else None
    folder = _folder(box, folder_ref) if folder_ref is not None else box.contacts
    out = []
    for elem in op.find(m("Items")) if op.find(m("Items")) is not None else []:
        if elem.tag != t("Contact"):
            out.append(message("CreateItem", EwsError("ErrorInvalidItemForOperation",
                                                      "The emulator stores contacts only.")))
            continue
        try:
            record = state.create(box.user, parse_contact(elem), folder.folder_id)
        except EwsError as exc:
            out.append(message("CreateItem", exc))
            continue
        out.append(_items_message("CreateItem", box, [record], frozenset()))
    return out


def _update_one(state: EmulatorState, box: Mailbox, change: etree._Element, resolution: str) -> ItemRecord:
    ref = change.find(t("ItemId"))
    record = _item(box, ref.get("Id") if ref is not None else None)
    change_key = ref.get("ChangeKey") if ref is not None else None
    if resolution in _CONFLICT_CHECKED:
        if not change_key and resolution == "NeverOverwrite":
            raise EwsError("ErrorChangeKeyRequiredForWriteOperations")
        if change_key and change_key != record.change_key:
            raise EwsError("ErrorIrresolvableConflict")
    fields = dict(record.fields)
    for update in change.find(t("Updates")) if change.find(t("Updates")) is not None else []:
        if update.tag in (t("SetItemField"), t("DeleteItemField")):
            apply_update(fields, update)
        else:
            raise EwsError("ErrorInvalidPropertyRequest", f"The emulator does not implement {update.tag}.")
    return state.update(box.user, record.item_id, fields)


def update_item(state: EmulatorState, box: Mailbox, op: etree._Element) -> list[etree._Element]:
    """ItemChanges applied one by one; a stale ChangeKey is ErrorIrresolvableConflict unless AlwaysOverwrite."""
    resolution = op.get("ConflictResolution", "AutoResolve")
    out = []
    for change in op.find(m("ItemChanges")) if op.find(m("ItemChanges")) is not None else []:
        try:
            record = _update_one(state, box, change, resolution)
        except EwsError as exc:
            msg = message("UpdateItem", exc)
            etree.SubElement(msg, m("Items"))
            out.append(msg)
            continue
        msg = _items_message("UpdateItem", box, [record], frozenset())
        etree.SubElement(etree.SubElement(msg, m("ConflictResults")), t("Count")).text = "0"
        out.append(msg)
    return out


def delete_item(state: EmulatorState, box: Mailbox, op: etree._Element) -> list[etree._Element]:
    """Every DeleteType removes the item from its contacts folder (a Delete for SyncFolderItems)."""
    out = []
    for ref in op.find(m("ItemIds")) if op.find(m("ItemIds")) is not None else []:
        try:
            record = _item(box, ref.get("Id"))
        except EwsError as exc:
            out.append(message("DeleteItem", exc))
            continue
        state.delete(box.user, record.item_id)
        out.append(message("DeleteItem"))
    return out
