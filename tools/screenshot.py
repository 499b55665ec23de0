"""The README's pictures of the dashboard, made again from the demo:

    .venv/bin/python tools/screenshot.py            # docs/dashboard.png, docs/service.png
    .venv/bin/python tools/screenshot.py --out /tmp # somewhere else

It runs ``python -m pymon run`` on the built-in demo config (``src/pymon/demo.yaml``,
its port 8080 moved to a free one so it runs beside a pymon already there) in a
temporary directory, waits until every service has a confirmed status and the
service page's chart has a few minutes of results, and photographs two pages with
Debian's Chromium (``/usr/bin/chromium``) through Playwright, the browser the test
suite uses: the overview, and the ``api-health`` service page with its chart.
Takes about ``--minutes`` (default 2) plus a few seconds; nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "src" / "pymon" / "demo.yaml"
CHROMIUM = Path("/usr/bin/chromium")
# A laptop's browser window: wide enough for the services table, short enough that
# the PNGs stay small (the README's pictures should load fast).
VIEWPORT_WIDTH, VIEWPORT_HEIGHT = 1200, 760
# The pictures: file name, page, what must be on it before the shot, and the part of
# it to take (None: the window).
SHOTS: list[tuple[str, str, str, str | None]] = [
    ("dashboard.png", "/", "#counts", None),
    (
        "service.png",
        "/services/api-health",
        "#chart[data-draws] path.line",
        'section[aria-labelledby="history-title"]',
    ),
]
STARTUP = 60.0  # seconds pymon may take to answer at all


def free_port() -> int:
    """A TCP port nobody listens on now (the kernel's pick)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def demo_config(port: int) -> str:
    """The demo config, serving (and checking itself) on ``port`` instead of 8080."""
    text = DEMO.read_text()
    if "8080" not in text:
        raise SystemExit(f"{DEMO} no longer serves on 8080: update tools/screenshot.py")
    return text.replace("8080", str(port))


def this_checkout() -> dict[str, str]:
    """The environment with this checkout's ``src`` first on the path: the demo runs
    the code beside this script, whichever pymon the venv installed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    return env


async def until_settled(client: httpx.AsyncClient, base: str, minutes: float) -> None:
    """Wait until pymon answers, every service is confirmed, and ``minutes`` of history
    stand behind the chart (the demo checks every 5 to 15 s)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP
    while True:
        with contextlib.suppress(httpx.HTTPError):
            answer = await client.get(f"{base}/api/v1/services")
            if answer.is_success:
                break
        if loop.time() > deadline:
            raise SystemExit(f"pymon did not answer on {base} within {STARTUP:.0f} s")
        await asyncio.sleep(0.5)
    started = loop.time()
    while True:
        services = (await client.get(f"{base}/api/v1/services")).json()["services"]
        settled = all(s["confirmed"] and s["status"] != "unknown" for s in services)
        if settled and loop.time() - started >= minutes * 60:
            return
        await asyncio.sleep(1.0)


async def photograph(base: str, out: Path) -> list[Path]:
    """Each of :data:`SHOTS` of the pymon at ``base``, as PNG files in ``out``."""
    from playwright.async_api import async_playwright

    made: list[Path] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless=new"]
        )
        try:
            context = await browser.new_context(
                viewport={"width": VIEWPORT_WIDTH, "height": VIEWPORT_HEIGHT},
                color_scheme="light",
            )
            tab = await context.new_page()
            for name, path, ready, part in SHOTS:
                await tab.goto(f"{base}{path}")
                await tab.locator(ready).first.wait_for(timeout=30_000)
                target = out / name
                if part is None:
                    await tab.screenshot(path=str(target))
                else:
                    await tab.locator(part).screenshot(path=str(target))
                made.append(target)
        finally:
            await browser.close()
    return made


async def main(out: Path, minutes: float) -> int:
    """Start the demo, wait, photograph, stop; the exit status."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="pymon-screenshot-") as work:
        config = Path(work) / "pymon.yaml"
        config.write_text(demo_config(port))
        log = Path(work) / "pymon.log"
        with log.open("wb") as sink:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "pymon", "run", "-c", str(config),
                cwd=work, stdout=sink, stderr=sink, env=this_checkout(),
            )  # fmt: skip
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                print(f"pymon demo on {base}; waiting {minutes:g} min for its history")
                await until_settled(client, base, minutes)
            made = await photograph(base, out)
        except BaseException:
            print(log.read_text()[-4000:], file=sys.stderr)
            raise
        finally:
            process.terminate()
            await process.wait()
    for path in made:
        print(f"{path}: {path.stat().st_size // 1024} KB")
    return 0


def cli() -> None:
    """``tools/screenshot.py [--out DIR] [--minutes M]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where the PNGs go")
    parser.add_argument(
        "--minutes", type=float, default=2.0, help="history to gather before the shots"
    )
    args = parser.parse_args()
    if not 0 <= args.minutes <= 60:
        parser.error("--minutes: between 0 and 60")
    if not CHROMIUM.exists():
        parser.error(f"{CHROMIUM} is missing (apt-get install chromium)")
    sys.exit(asyncio.run(main(args.out, args.minutes)))


if __name__ == "__main__":
    cli()
