"""/api-docs/ui in a real browser: headless Chromium renders Swagger UI and lists every operation.

Swagger UI renders client-side, so the page's static HTML has no operation at all: the test dumps
the DOM Chromium built after running the page's scripts and fetching /api-docs/openapi.json, and
finds one rendered `opblock` per documented operation (its method, path and operationId).
Chromium is Debian's package; the session fixture installs it with apt-get when it is missing.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.docs.conftest import Live

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--virtual-time-budget=15000"]


def install_chromium() -> str:
    """Debian's chromium: found, or installed now (as root, as CI and the developers' machines run)."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0:
        pytest.fail("chromium is missing and only root can apt-get install it: run `apt-get install -y chromium`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    wait_for_lock = ["-o", "DPkg::Lock::Timeout=600"]  # another apt-get may be running on the machine
    for command in (["apt-get", *wait_for_lock, "update"],
                    ["apt-get", *wait_for_lock, "install", "-y", "--no-install-recommends", "chromium"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            pytest.fail(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    found = shutil.which("chromium")
    assert found, "apt-get installed chromium, yet it is not on PATH"
    return found


@pytest.fixture(scope="session")
def chromium() -> str:
    return install_chromium()


class Rendered(HTMLParser):
    """What Swagger UI rendered: (METHOD, path, operationId) of each `opblock`, the schema titles, errors."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str, str]] = []
        self.titles: set[str] = set()
        self._block: dict[str, str] | None = None
        self._in_title = False
        self.errors = 0

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.titles.add(data.strip())
            self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        classes = attributes.get("class", "").split()
        if "opblock" in classes:
            methods = [c.removeprefix("opblock-") for c in classes if c.removeprefix("opblock-") in METHODS]
            self._block = {"method": methods[0].upper() if methods else "", "id": attributes.get("id", "")}
        elif "opblock-summary-path" in classes and self._block is not None:
            operation_id = self._block["id"].rsplit("-", 1)[-1]  # id="operations-<tag>-<operationId>"
            self.found.append((self._block["method"], attributes.get("data-path", ""), operation_id))
            self._block = None
        self._in_title = "json-schema-2020-12__title" in classes
        if "errors-wrapper" in classes or "loading-container" in classes:
            self.errors += 1


async def dump_dom(chromium: str, url: str, profile: Path) -> str:
    process = await asyncio.create_subprocess_exec(
        chromium, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(process.communicate(), 120)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    return out.decode()


async def test_swagger_ui_lists_every_operation(chromium: str, live: Live, openapi: dict[str, Any],
                                                tmp_path: Path) -> None:
    dom = await dump_dom(chromium, f"{live.base_url}/api-docs/ui", tmp_path / "profile")
    parser = Rendered()
    parser.feed(dom)
    expected = sorted((method.upper(), path, op["operationId"]) for path, item in openapi["paths"].items()
                      for method, op in item.items() if method in METHODS)
    webhooks = [op for item in (openapi.get("webhooks") or {}).values() for m, op in item.items() if m in METHODS]
    assert sorted(f for f in parser.found if f in set(expected)) == expected, dom[:3000]
    assert len(parser.found) == len(expected) + len(webhooks), "one block per operation and webhook"
    assert parser.errors == 0, "Swagger UI shows an error or is still loading"
    assert openapi["info"]["title"] in dom
    for tag in openapi["tags"]:
        assert re.search(rf'id="operations-tag-{re.escape(tag["name"])}"', dom), tag["name"]
    assert set(openapi["components"]["schemas"]) <= parser.titles, "the Schemas section lists every schema"


async def test_an_operation_opens_with_its_parameters_resolved(chromium: str, live: Live, tmp_path: Path) -> None:
    """A deep link expands one operation: its parameters, shared ones ($refs) included, are all there."""
    dom = await dump_dom(chromium, f"{live.base_url}/api-docs/ui#/contacts/updateContact", tmp_path / "profile")
    names = re.findall(r'class="parameter__name[^"]*"[^>]*>([^<]+)<', dom)
    types = re.findall(r'class="parameter__type"[^>]*>([^<]+)<', dom)
    assert sorted(names) == ["If-Match", "X-Request-Id", "id"], names
    assert types == ["string"] * 3, types
    assert "Request body" in dom and "precondition_required" in dom  # the body and the documented 428
