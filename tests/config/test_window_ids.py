"""Every maintenance window of a config has a stable, unique ``id``: the one written in
the config, else one derived from its name, else from what it covers and when."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from pymon.config.schema import Config
from pymon.config.windows import MaintenanceWindow, derived_id, with_ids
from tests.config.helpers import issues, load, write

NIGHTLY = "{name: nightly backup, tags: [db], cron: '0 2 * * *', duration: 2h}"
UNNAMED = "{services: ['web-*'], days: [sat, sun]}"
OFFICE = "{id: office-move, services: [printer], start: 2026-05-01, end: 2026-05-03}"


def ids(tmp_path: Path, *windows: str) -> list[str | None]:
    text = "maintenance:\n" + "".join(f"  - {w}\n" for w in windows)
    return [w.id for w in load(tmp_path, text).maintenance]


def window(**keys: object) -> MaintenanceWindow:
    return MaintenanceWindow.model_validate(keys)


def test_id_is_written_derived_from_the_name_or_from_the_content(tmp_path: Path) -> None:
    written, named, unnamed = ids(tmp_path, OFFICE, NIGHTLY, UNNAMED)
    assert written == "office-move"
    assert named == "nightly-backup"
    assert unnamed is not None and re.fullmatch(r"window-[0-9a-f]{10}", unnamed)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Sunday Backup", "sunday-backup"),
        ("  DB: swap disks (rack 3)!  ", "db-swap-disks-rack-3"),
        ("Über-Wartung", "uber-wartung"),
        ("x" * 100, "x" * 64),
    ],
)
def test_a_name_becomes_a_url_safe_id(name: str, expected: str) -> None:
    assert derived_id(window(name=name, services=["a"], days=["sat"])) == expected


def test_a_name_with_nothing_latin_falls_back_to_the_content() -> None:
    assert derived_id(window(name="バックアップ", services=["a"], days=["sat"])).startswith(
        "window-"
    )


def test_an_unnamed_windows_id_follows_what_it_covers_and_when_not_its_comment() -> None:
    base = window(services=["a"], cron="0 2 * * *", duration="1h")
    assert derived_id(base) == derived_id(base.model_copy(update={"comment": "why"}))
    assert derived_id(base) == derived_id(window(services=["a"], cron="0  2 * * *", duration=3600))
    for other in (
        window(services=["b"], cron="0 2 * * *", duration="1h"),
        window(services=["a"], tags=["db"], cron="0 2 * * *", duration="1h"),
        window(services=["a"], cron="0 3 * * *", duration="1h"),
        window(services=["a"], cron="0 2 * * *", duration="2h"),
        window(services=["a"], cron="0 2 * * *", duration="1h", timezone="Europe/Berlin"),
    ):
        assert derived_id(other) != derived_id(base)


def test_ids_stay_put_when_other_windows_come_go_or_change(tmp_path: Path) -> None:
    before = ids(tmp_path, NIGHTLY, UNNAMED, OFFICE)
    edited = "{id: office-move, comment: moved, services: [printer, fax], days: [mon]}"
    after = ids(tmp_path, "{name: new one, services: [x], days: [fri]}", UNNAMED, edited, NIGHTLY)
    assert after[1:] == [before[1], before[2], before[0]]


def test_repeated_names_are_numbered_in_order(tmp_path: Path) -> None:
    again = "{name: Nightly Backup, services: [other], days: [sun]}"
    assert ids(tmp_path, NIGHTLY, again, again.replace("sun", "mon")) == [
        "nightly-backup",
        "nightly-backup-2",
        "nightly-backup-3",
    ]


def test_a_numbered_id_is_still_at_most_64_characters() -> None:
    long = window(name="x" * 100, services=["a"], days=["sat"])
    assert [w.id for w in with_ids((long, long))] == ["x" * 64, "x" * 62 + "-2"]


def test_a_written_id_wins_over_a_derived_one(tmp_path: Path) -> None:
    claimed = "{id: nightly-backup, services: [other], days: [sun]}"
    assert ids(tmp_path, NIGHTLY, claimed) == ["nightly-backup-2", "nightly-backup"]


def test_a_duplicate_written_id_is_an_error_at_its_line(tmp_path: Path) -> None:
    text = f"""\
        maintenance:
          - {OFFICE}
          - {NIGHTLY}
          - {{id: office-move, services: [fax], days: [mon]}}
        """
    assert issues(tmp_path, text) == [
        "FILE:4: maintenance[2].id: duplicate window id 'office-move': maintenance[0] has it "
        "too; each window needs its own id"
    ]


@pytest.mark.parametrize("bad", ["two words", "-dash-first", "a/b", "x" * 65, ""])
def test_an_id_that_would_not_fit_in_a_url_is_an_error(tmp_path: Path, bad: str) -> None:
    text = f"maintenance:\n  - {{id: '{bad}', services: [a], days: [sat]}}\n"
    [issue] = issues(tmp_path, text)
    assert issue.startswith(f"FILE:2: maintenance[0].id: {bad!r} is not a window id: ")


def test_ids_are_unique_across_included_files(tmp_path: Path) -> None:
    write(tmp_path, f"maintenance:\n  - {NIGHTLY}\n", "more.yaml")
    text = f"include: [more.yaml]\nmaintenance:\n  - {NIGHTLY}\n"
    assert [w.id for w in load(tmp_path, text).maintenance] == [
        "nightly-backup",
        "nightly-backup-2",
    ]


def test_a_config_built_in_code_gets_ids_too_and_keeps_them() -> None:
    config = Config(maintenance=(window(name="a", services=["x"], days=["sat"]),) * 2)
    assert [w.id for w in config.maintenance] == ["a", "a-2"]
    assert Config.model_validate(dict(config)) == config
    assert with_ids(config.maintenance) == config.maintenance


def test_duplicate_ids_in_code_raise_a_validation_error() -> None:
    twice = (window(id="x", services=["a"], days=["sat"]),) * 2
    with pytest.raises(ValidationError) as info:
        Config(maintenance=twice)
    assert [e["loc"] for e in info.value.errors()] == [("maintenance", 1, "id")]
