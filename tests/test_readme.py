"""The README is a newcomer's map: it names every page of ``docs/`` and every picture
it shows is there (and small enough to load fast)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PICTURE_MAX = 200 * 1024


def test_every_docs_page_is_listed() -> None:
    pages = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))
    assert pages, "no docs/*.md found"
    assert [p for p in pages if f"`{p}`" not in README] == []


def test_every_picture_is_there_and_small() -> None:
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert "docs/dashboard.png" in pictures
    for picture in pictures:
        path = ROOT / picture
        assert path.is_file(), picture
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{picture} is not a PNG"
        assert path.stat().st_size < PICTURE_MAX, f"{picture} is over 200 KB"
