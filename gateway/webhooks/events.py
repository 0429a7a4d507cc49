"""What webhook delivery handles: stream entries (Event), attempts, per-turn reports, the backoff curve."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, fields

import orjson


def retry_delay(failures: int, base_s: float, max_s: float, rand: Callable[[], float] = random.random) -> float:
    """Seconds before the next attempt after `failures` consecutive failures: exponential, equal jitter."""
    full = min(base_s * 2 ** max(failures - 1, 0), max_s)
    return full / 2 + rand() * full / 2


def _ids(raw: bytes) -> list[str]:
    """A JSON array of ids from the apply script (whose cjson writes an empty array as {})."""
    value = orjson.loads(raw)
    return [str(v) for v in value] if isinstance(value, list) else []


def sort_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass(slots=True)
class Event:
    """One stream entry: a chunk of one change batch, for one subscription."""

    entry_id: str
    sub_id: str
    revision: int
    updated: list[str]
    deleted: list[str]

    @classmethod
    def parse(cls, entry_id: bytes | str, raw: dict[bytes, bytes] | None) -> Event | None:
        eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        if raw is None:
            return None
        try:
            return cls(eid, raw[b"sub"].decode(), int(raw[b"revision"]), _ids(raw[b"updated"]), _ids(raw[b"deleted"]))
        except (KeyError, ValueError, orjson.JSONDecodeError):
            return None

    @property
    def created_ms(self) -> int:
        return sort_key(self.entry_id)[0]

    def parts(self, max_ids: int) -> list[tuple[list[str], list[str]]]:
        """The notifications this entry makes: one, unless it holds more than `max_ids` ids."""
        if len(self.updated) + len(self.deleted) <= max_ids:
            return [(self.updated, self.deleted)]
        out: list[tuple[list[str], list[str]]] = []
        out += [(self.updated[i:i + max_ids], []) for i in range(0, len(self.updated), max_ids)]
        out += [([], self.deleted[i:i + max_ids]) for i in range(0, len(self.deleted), max_ids)]
        return out

    def notification_id(self, part: int = 0, parts: int = 1) -> str:
        base = f"{self.sub_id}.{self.entry_id}"
        return base if parts == 1 else f"{base}.{part}"


@dataclass(slots=True)
class Attempt:
    ok: bool
    gone: bool
    status: int | None
    latency_ms: float
    error: str | None
    notification_id: str
    revision: int
    at: str


@dataclass
class DeliveryReport:
    accounts: int = 0
    delivered: int = 0      # entries whose notifications got a 2xx
    failed: int = 0         # entries whose attempt failed (then scheduled or dead-lettered)
    deferred: int = 0       # entries rescheduled without an attempt (their subscription is backing off)
    dead_lettered: int = 0
    dropped: int = 0        # entries of subscriptions that no longer exist
    removed: int = 0        # subscriptions removed because the consumer answered 410
    claimed: int = 0        # entries claimed from a worker that stopped
    busy: int = 0           # accounts another worker was delivering
    more: bool = False      # an account's turn ended with work left

    def merge(self, other: DeliveryReport) -> None:
        for f in fields(self):
            if f.name == "more":
                self.more = self.more or other.more
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def worked(self) -> bool:
        return bool(self.delivered or self.failed or self.deferred or self.dead_lettered or self.dropped
                    or self.claimed or self.more)
