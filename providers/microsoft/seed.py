"""Deterministic seed contacts for the Graph emulator, spread over the default folder and two subfolders.

The contacts themselves come from the Google emulator's generator (one source of varied, realistic unified
contacts for every emulator); each gets a folder attribute from a fixed cycle, so any seed of two or more
contacts spans at least two folders and four or more span three. What Graph cannot hold (phone types other
than work/home/mobile, custom attributes, ...) is dropped when the emulator stores them, as Graph would.
"""

from __future__ import annotations

from gateway.models import Attribute, ContactInput
from providers.base import FOLDER_ATTRIBUTE
from providers.google.seed import generate as generate_unified

#: Folder of the i-th seeded contact (None: the default "Contacts" folder), cycled.
SEED_FOLDERS: tuple[str | None, ...] = (None, "Work", None, "Family", None, "Work", None, None)


def generate(count: int, seed: int | str) -> list[ContactInput]:
    """`count` contacts with folder attributes, the same for the same seed."""
    out = []
    for i, contact in enumerate(generate_unified(count, seed)):  # type: ignore[arg-type]  (Random takes str too)
        folder = SEED_FOLDERS[i % len(SEED_FOLDERS)]
        attributes = [Attribute(name=FOLDER_ATTRIBUTE, value=folder)] if folder else None
        out.append(contact.model_copy(update={"attributes": attributes}))
    return out
