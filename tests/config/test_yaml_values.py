"""YAML the loader does not take (tags, complex keys, values a tag cannot read) is an issue
with its line, never a traceback; a ``!!python`` tag is refused, never executed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.config.helpers import issues

PLAIN = "(a config holds text, numbers, booleans, lists and mappings)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("instance: {name: !!float x}\n", "FILE:1: instance.name: cannot read 'x' as !!float"),
        (
            "scheduler:\n  concurrency: !!int x\n",
            "FILE:2: scheduler.concurrency: cannot read 'x' as !!int",
        ),
        (
            "instance: {name: !!bool maybe}\n",
            "FILE:1: instance.name: cannot read 'maybe' as !!bool",
        ),
        (
            "maintenance:\n  - start: 2024-13-45\n",
            "FILE:2: maintenance[0].start: cannot read '2024-13-45' as !!timestamp",
        ),
        (
            "services:\n  - ? [a, [b]]\n    : x\n",
            "FILE:2: services[0]: a key must be text or a number, not a list (a '? ' key)",
        ),
        (
            "? {a: 1}\n: 1\n",
            "FILE:1: a key must be text or a number, not a mapping (a '? ' key)",
        ),
        (
            "instance:\n  name: !!python/object/apply:os.system ['touch PWNED']\n",
            f"FILE:2: instance.name: unsupported tag !!python/object/apply:os.system {PLAIN}",
        ),
        ("log: !!binary aGVsbG8=\n", f"FILE:1: log: unsupported tag !!binary {PLAIN}"),
        ("log: !!set {a, b}\n", f"FILE:1: log: unsupported tag !!set {PLAIN}"),
        ("log: !!omap [a: 1]\n", f"FILE:1: log: unsupported tag !!omap {PLAIN}"),
        ("log: !local {a: 1}\n", f"FILE:1: log: unsupported tag !local {PLAIN}"),
    ],
)
def test_yaml_that_is_not_plain_data_is_an_issue_at_its_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    found = issues(tmp_path, text)
    assert len(found) == 1
    assert found[0].startswith(expected)


def test_the_path_is_found_through_aliases_and_sequences(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        defaults: &d {interval: 30s}
        services:
          - name: a
            type: tcp
            host: 127.0.0.1
            port: 1
            tags: [x, !!int y]
          - *d
        """,
    )
    assert found == [
        "FILE:7: services[0].tags[1]: cannot read 'y' as !!int (invalid literal "
        "for int() with base 10: 'y')"
    ]


def test_an_included_file_names_itself_and_its_path(tmp_path: Path) -> None:
    (tmp_path / "more.yaml").write_text("services:\n  - name: b\n    port: !!int x\n")
    found = issues(tmp_path, "include: [more.yaml]\n")
    assert found == [
        f"{tmp_path / 'more.yaml'}:3: services[0].port: cannot read 'x' as !!int "
        "(invalid literal for int() with base 10: 'x')"
    ]


def test_a_secret_that_its_tag_cannot_read_is_not_shown(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        "notifications:\n  channels:\n    mail:\n      type: email\n"
        "      password: !!int hunter2\n",
    )
    assert found == [
        "FILE:5: notifications.channels.mail.password: "
        "cannot read a value that is not shown (a secret) as !!int"
    ]


def test_a_python_tag_is_never_executed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    issues(tmp_path, "log: !!python/object/apply:os.system ['touch PWNED']\n")
    assert not (tmp_path / "PWNED").exists()


def test_plain_tags_still_read(tmp_path: Path) -> None:
    """An explicit core tag on a value it fits is plain YAML, and a date reads as written."""
    found = issues(
        tmp_path,
        "instance: {name: !!str 12}\nscheduler: {concurrency: !!int '0'}\n"
        "maintenance:\n  - {start: 2024-05-01}\n",
    )
    assert all("invalid YAML" not in issue for issue in found)
