"""Fixtures of the browser suite: a real ``pymon run``, its targets, a prefix proxy, Chromium.

The browser is Debian's Chromium driven by Playwright (never a downloaded one); a
test that cannot have it is skipped, which ``PYMON_REQUIRE_ALL=1`` turns into a
failure. Each test writes a screenshot per step into ``test-artifacts/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import re
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from pymon.model import Status
from tests.conftest import need
from tests.support.cli import PYMON
from tests.support.proxy import PrefixProxy
from tests.support.servers import TcpListener, free_port

if TYPE_CHECKING:
    from playwright.async_api import Browser, Dialog, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--headless=new",
    "--disable-background-networking",
]
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"

# Names the suite's services use; the hostile ones check escaping on every page.
SCRIPT_NAME = "<script>alert(1)</script>"
IMG_NAME = "<img src=x onerror=alert(2)>"


@dataclass
class Targets:
    """TCP listeners the services point at; a test stops one to make its service fail."""

    by_name: dict[str, TcpListener] = field(default_factory=dict)

    def __getitem__(self, name: str) -> TcpListener:
        return self.by_name[name]


@dataclass
class Running:
    """A ``pymon run`` subprocess with its web server."""

    process: asyncio.subprocess.Process
    port: int
    base_path: str
    log: Path

    @property
    def url(self) -> str:
        """The web server's own URL with ``base_path``, no trailing slash."""
        return f"http://127.0.0.1:{self.port}{self.base_path}"


# The services every browser test sees: (name, target up at start?, tags).
SERVICES: list[tuple[str, bool, list[str]]] = [
    ("alpha", True, ["db"]),
    ("bravo", True, ["web"]),
    ("charlie", False, ["web"]),
    ("delta", True, ["db"]),
    ("echo", False, ["mail"]),
    (SCRIPT_NAME, False, ["hostile"]),
    (IMG_NAME, True, ["hostile"]),
]


def storage_url(work: Path) -> str:
    """The SQLite file of the ``pymon run`` working in ``work``."""
    return f"sqlite:///{work}/pymon.db"


def config_text(
    tmp: Path,
    port: int,
    targets: Targets,
    *,
    base_path: str = "",
    auth: Mapping[str, Any] | None = None,
    proxied: bool = False,
    extra: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The suite's config as JSON (which YAML reads as is): no quoting of hostile names.
    ``extra`` services come after the suite's own."""
    web: dict[str, Any] = {"listen": f"127.0.0.1:{port}", "base_path": base_path}
    if proxied:
        # Trusting a proxy on loopback ends the loopback rule: writes then need a login.
        web["trusted_proxies"] = ["127.0.0.1"]
    if auth:
        web["auth"] = dict(auth)
    config = {
        "instance": {"name": "browser-suite"},
        "storage": {"url": storage_url(tmp), "flush_interval": "100ms"},
        "web": web,
        "defaults": {
            "interval": "300ms",
            "timeout": "1s",
            "flap_guard": {s.value: 1 for s in Status if s is not Status.DISABLED},
        },
        "services": [
            {
                "name": name,
                "type": "tcp",
                "host": "127.0.0.1",
                "port": targets[name].port,
                "tags": tags,
            }
            for name, _, tags in SERVICES
        ]
        + list(extra),
    }
    return json.dumps(config, indent=2)


@pytest.fixture
def browser_ready() -> None:
    """Skip (or fail under PYMON_REQUIRE_ALL) without Playwright or Debian's Chromium."""
    need(importlib.util.find_spec("playwright") is not None, "playwright is not installed")
    need(CHROMIUM.exists(), f"{CHROMIUM} is missing (apt-get install chromium)")


@pytest.fixture
async def targets() -> AsyncIterator[Targets]:
    found = Targets()
    for name, up, _ in SERVICES:
        found.by_name[name] = listener = TcpListener()
        if up:
            await listener.start()
    yield found
    for listener in found.by_name.values():
        await listener.stop()


StartPymon = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start_pymon(
    tmp_path: Path, targets: Targets, browser_ready: None
) -> AsyncIterator[StartPymon]:
    """``await start_pymon(base_path=..., auth=..., proxied=..., extra=..., seed=...)``: a
    running ``pymon run``; ``seed(url)`` may fill its storage URL before it starts."""
    started: list[Running] = []

    async def start(
        *,
        base_path: str = "",
        auth: Mapping[str, Any] | None = None,
        proxied: bool = False,
        extra: Sequence[Mapping[str, Any]] = (),
        seed: Callable[[str], Awaitable[None]] | None = None,
    ) -> Running:
        port = free_port()
        work = tmp_path / f"pymon-{len(started)}"
        work.mkdir()
        if seed is not None:
            await seed(storage_url(work))
        config = work / "pymon.yaml"
        config.write_text(
            config_text(
                work, port, targets, base_path=base_path, auth=auth, proxied=proxied, extra=extra
            )
        )
        log = work / "pymon.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                *PYMON, "run", "-c", str(config), cwd=work, stdout=out, stderr=out
            )
        running = Running(process, port, base_path, log)
        started.append(running)
        await until_ready(running)
        return running

    yield start
    for running in started:
        await stop(running)


async def until_ready(running: Running, within: float = 30.0) -> None:
    """Poll ``/healthz`` until pymon answers and every service has been checked once."""
    async with httpx.AsyncClient() as client:
        try:
            async with asyncio.timeout(within):
                while True:
                    if running.process.returncode is not None:
                        raise AssertionError(f"pymon exited:\n{running.log.read_text()}")
                    with contextlib.suppress(httpx.HTTPError):
                        answer = await client.get(f"{running.url}/api/v1/services")
                        rows = answer.json().get("services", []) if answer.is_success else []
                        if rows and all(r["status"] != "unknown" for r in rows):
                            return
                    await asyncio.sleep(0.1)
        except TimeoutError:
            raise AssertionError(f"pymon never got ready:\n{running.log.read_text()}") from None


async def stop(running: Running) -> None:
    """SIGTERM, then SIGKILL if it does not stop in time."""
    if running.process.returncode is not None:
        return
    running.process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(running.process.wait(), 15)
    except TimeoutError:
        running.process.kill()
        await running.process.wait()


@pytest.fixture
async def prefix_proxy() -> AsyncIterator[Callable[[str, str], Awaitable[PrefixProxy]]]:
    """``await prefix_proxy(upstream, "/outer")``: a reverse proxy adding X-Forwarded-Prefix."""
    proxies: list[PrefixProxy] = []

    async def start(upstream: str, prefix: str) -> PrefixProxy:
        proxy = PrefixProxy(upstream, prefix)
        await proxy.start()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        await proxy.stop()


@pytest.fixture
async def browser(browser_ready: None) -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Shots:
    """Writes ``test-artifacts/<test>-<NN>-<step>.png``."""

    page: Page
    stem: str
    taken: int = 0

    async def __call__(self, step: str) -> None:
        self.taken += 1
        path = ARTIFACTS / f"{self.stem}-{self.taken:02d}-{step}.png"
        await self.page.screenshot(path=str(path), full_page=True)


@dataclass
class Dialogs:
    """Every JavaScript dialog a page opened (none should: an alert means injection)."""

    seen: list[str] = field(default_factory=list)


@pytest.fixture
async def page(
    browser: Browser, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Page, Shots, Dialogs]]:
    """A fresh browser context and page, its screenshot taker, and its dialog log."""
    ARTIFACTS.mkdir(exist_ok=True)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    new_page = await context.new_page()
    new_page.set_default_timeout(10_000)
    dialogs = Dialogs()

    async def on_dialog(dialog: Dialog) -> None:
        dialogs.seen.append(dialog.message)
        await dialog.dismiss()

    new_page.on("dialog", on_dialog)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    try:
        yield new_page, Shots(new_page, stem), dialogs
    finally:
        await context.close()
