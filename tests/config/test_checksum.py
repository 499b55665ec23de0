"""The config's checksum leaves the ``node`` section out, and nothing else
(docs/configuration.md, "Locations"; ``config/checksum.py``)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymon.config.load import load_config, load_config_text
from tests.config.helpers import write

SERVICES = """\
services:
  - name: web
    type: tcp
    host: 127.0.0.1
    port: 80
    locations: [eu-west, us-east]
"""
NODE_EU = "node:\n  location: eu-west   # this machine\n"
NODE_US = "node: {location: us-east}\n\n# comments and blank lines before the next key\n\n"


def checksum(tmp_path: Path, text: str, name: str = "pymon.yaml") -> str:
    return load_config(write(tmp_path, text, name), env={}).checksum


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("eu", "us"),
    [
        # First, in the middle, last.
        (NODE_EU + SERVICES, NODE_US + SERVICES),
        ("log: {level: info}\n" + NODE_EU + SERVICES, "log: {level: info}\n" + NODE_US + SERVICES),
        (SERVICES + NODE_EU, SERVICES + NODE_US),
        (SERVICES + "node: {location: eu-west}", SERVICES + "node:\n  location: us-east\n"),
        # Quoted key, spaces before the colon, CRLF line ends.
        ('"node" : {location: eu}\n' + SERVICES, "'node': {location: us}\n" + SERVICES),
        (
            (NODE_EU + SERVICES).replace("\n", "\r\n"),
            (NODE_US + SERVICES).replace("\n", "\r\n"),
        ),
    ],
)
def test_files_that_differ_only_in_node_have_one_checksum(tmp_path: Path, eu: str, us: str) -> None:
    first, second = checksum(tmp_path, eu, "eu.yaml"), checksum(tmp_path, us, "us.yaml")
    assert first == second
    # ... that of the file with no node section at all.
    without = SERVICES if "\r" not in eu else SERVICES.replace("\n", "\r\n")
    if eu.startswith("log:"):
        without = "log: {level: info}\n" + without
    assert first == sha256(without)
    # The locations really are the two files' own.
    assert load_config_text(eu).node.location != load_config_text(us).node.location


def test_a_file_without_node_keeps_the_checksum_of_its_bytes(tmp_path: Path) -> None:
    path = write(tmp_path, SERVICES)
    assert load_config(path).checksum == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "changed",
    [
        SERVICES.replace("port: 80", "port: 81"),
        SERVICES + "# a comment after the services\n",
        "# a comment before node\n" + NODE_EU + SERVICES,
    ],
)
def test_any_other_byte_still_counts(tmp_path: Path, changed: str) -> None:
    base = checksum(tmp_path, NODE_EU + SERVICES, "base.yaml")
    if changed.startswith("#"):
        assert checksum(tmp_path, changed, "changed.yaml") != base
    else:
        assert checksum(tmp_path, NODE_EU + changed, "changed.yaml") != base


def test_the_line_after_node_counts(tmp_path: Path) -> None:
    # The span ends where the next top-level key starts: that key's line is hashed.
    eu = NODE_EU + "log: {level: info}\n" + SERVICES
    us = NODE_US + "log: {level: debug}\n" + SERVICES
    assert checksum(tmp_path, eu, "eu.yaml") != checksum(tmp_path, us, "us.yaml")


@pytest.mark.parametrize(
    ("eu", "us"),
    [
        # Flow style: other keys share node's line, so the whole file counts.
        (
            "{node: {location: eu}, services: []}\n",
            "{node: {location: us}, services: []}\n",
        ),
        # An anchor could carry node's value out of its lines: the whole file counts.
        (
            "node: {location: &l eu}\ninstance: {name: *l}\n",
            "node: {location: &l us}\ninstance: {name: *l}\n",
        ),
    ],
)
def test_node_counts_when_its_lines_are_not_its_own(tmp_path: Path, eu: str, us: str) -> None:
    assert checksum(tmp_path, eu, "eu.yaml") == sha256(eu)
    assert checksum(tmp_path, eu, "eu.yaml") != checksum(tmp_path, us, "us.yaml")


def test_the_anchor_case_would_be_wrong_without_the_rule() -> None:
    # What the fallback guards against: the two files' configs differ beyond node.
    eu = load_config_text("node: {location: &l eu}\ninstance: {name: *l}\n")
    us = load_config_text("node: {location: &l us}\ninstance: {name: *l}\n")
    assert (eu.instance.name, us.instance.name) == ("eu", "us")


def test_text_and_file_agree_with_a_node_section(tmp_path: Path) -> None:
    text = NODE_EU + SERVICES
    assert load_config_text(text).checksum == checksum(tmp_path, text)


def test_a_node_section_in_an_included_file_is_left_out_too(tmp_path: Path) -> None:
    main = "include: [here.yaml]\n" + SERVICES
    write(tmp_path, "node:\n  location: eu-west\n", "here.yaml")
    eu = checksum(tmp_path, main)
    assert load_config(tmp_path / "pymon.yaml", env={}).node.location == "eu-west"
    write(tmp_path, "node: {location: us-east}\n", "here.yaml")
    assert checksum(tmp_path, main) == eu
    write(tmp_path, "node: {location: us-east}\nlog: {level: debug}\n", "here.yaml")
    assert checksum(tmp_path, main) != eu


# Top-level sections besides node, in block style, each a few lines.
_SECTIONS = {
    "instance": "instance:\n  name: a\n",
    "log": "log: {level: info}\n",
    "defaults": "defaults:\n  interval: 30s\n  # a comment\n  timeout: 5s\n",
    "services": SERVICES,
}
_LOCATION = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(
    order=st.permutations(sorted(_SECTIONS)),
    at=st.integers(min_value=0, max_value=len(_SECTIONS)),
    first=_LOCATION,
    second=_LOCATION,
    block=st.booleans(),
)
def test_node_anywhere_never_counts(
    order: list[str], at: int, first: str, second: str, block: bool
) -> None:
    def text(location: str | None) -> str:
        parts = [_SECTIONS[k] for k in order]
        if location is not None:
            # Quoted: a name such as 1e3 or true would read as a number or a boolean.
            value = f"'{location}'"
            block_style = f"node:\n  location: {value}\n"
            parts.insert(at, block_style if block else f"node: {{location: {value}}}\n")
        return "".join(parts)

    with_first = load_config_text(text(first))
    assert with_first.node.location == first
    assert with_first.checksum == load_config_text(text(second)).checksum
    assert with_first.checksum == sha256(text(None))
