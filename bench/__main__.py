"""`make bench`: every benchmark on an embedded Redis of its own; prints one table at the end."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from bench import core_bench, exchange_bench, google_bench, microsoft_bench, webhook_bench
from bench.common import Table


async def main(selected: list[str]) -> None:
    table = Table()
    sections = {"core": core_bench.run, "google": google_bench.run, "microsoft": microsoft_bench.run,
                "exchange": exchange_bench.run, "webhooks": webhook_bench.run}
    with tempfile.TemporaryDirectory(prefix="gw-bench-") as tmp:
        for name, run in sections.items():
            if selected and name not in selected:
                continue
            print(f"[{name}]", flush=True)
            await run(table, Path(tmp) / name)
    print("\n" + table.render())


if __name__ == "__main__":
    from gateway.runtime import tune_gc

    tune_gc()  # as in `serve` and `worker`, whose work the benchmarks measure
    asyncio.run(main(sys.argv[1:]))
