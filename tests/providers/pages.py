"""Reading a connector's listing the way the refresher does: one round, page by page."""

from __future__ import annotations

from providers.base import ChangePage, Connector


async def drain(connector: Connector, cursor: str | None) -> tuple[list[ChangePage], str | None]:
    """Every page of one round, and the cursor for the next round."""
    pages = [await connector.list_changes(cursor)]
    while pages[-1].more:
        pages.append(await connector.list_changes(pages[-1].cursor))
    return pages, pages[-1].cursor


def ids(pages: list[ChangePage]) -> list[str]:
    return [change.native_id for page in pages for change in page.changes]
