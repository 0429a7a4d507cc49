"""Initial pull of 10,000 contacts from the People API emulator, and the gateway's share of it."""

from __future__ import annotations

from pathlib import Path

from bench.common import Table


async def run(table: Table, directory: Path) -> None:
    return None
