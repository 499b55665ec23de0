"""``include``: config in several files, merged in order; every issue names its own file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pymon.config.load import load_config
from pymon.errors import ConfigError
from tests.config.helpers import write
from tests.support.cli import pymon


def _issues(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    return [str(issue) for issue in info.value.issues]


def _tree(tmp_path: Path, main: str, **files: str) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        write(tmp_path, text, name)
    return write(tmp_path, main)


def test_services_from_included_files_follow_the_main_files_in_sorted_order(
    tmp_path: Path,
) -> None:
    main = _tree(
        tmp_path,
        """
        include: [services/*.yaml]
        services:
          - {name: main, type: tcp, host: h, port: 1}
        """,
        **{
            "services/b.yaml": "services:\n  - {name: b, type: tcp, host: h, port: 2}\n",
            "services/a.yaml": "services:\n  - {name: a, type: tcp, host: h, port: 3}\n",
        },
    )
    config = load_config(main, env={})
    assert [s.name for s in config.services] == ["main", "a", "b"]


def test_an_included_file_may_define_a_section_the_main_file_lacks(tmp_path: Path) -> None:
    main = _tree(
        tmp_path,
        "include: [extra.yaml]\n",
        **{"extra.yaml": "instance: {name: from-include}\ndefaults: {interval: 7s}\n"},
    )
    config = load_config(main, env={})
    assert config.instance.name == "from-include"
    assert config.defaults.interval == 7


def test_maintenance_lists_concatenate(tmp_path: Path) -> None:
    window = (
        "  - {{name: {}, services: [x], start: '2030-01-01T00:00:00Z', "
        "end: '2030-01-01T01:00:00Z'}}\n"
    )
    main = _tree(
        tmp_path,
        "include: [m.yaml]\nmaintenance:\n" + window.format("one"),
        **{"m.yaml": "maintenance:\n" + window.format("two")},
    )
    config = load_config(main, env={})
    assert [w.name for w in config.maintenance] == ["one", "two"]


def test_error_in_included_file_names_that_file_its_line_and_its_own_path(
    tmp_path: Path,
) -> None:
    inc = tmp_path / "services" / "web.yaml"
    main = _tree(
        tmp_path,
        """
        include: [services/*.yaml]
        services:
          - {name: main, type: tcp, host: h, port: 1}
        """,
        **{
            "services/web.yaml": """
            services:
              - name: web
                type: tcp
                host: h
                port: notaport
            """
        },
    )
    assert _issues(main) == [f"{inc}:5: services[0].port: expected an integer, got 'notaport'"]


def test_a_section_defined_twice_names_both_files(tmp_path: Path) -> None:
    main = _tree(
        tmp_path,
        "include: [other.yaml]\n\ninstance: {name: a}\n",
        **{"other.yaml": "# comment\ninstance: {name: b}\n"},
    )
    assert _issues(main) == [
        f"{tmp_path / 'other.yaml'}:2: instance: instance is already defined at {main}:3; "
        "only services and maintenance may be given in several files"
    ]


def test_duplicate_name_across_files_points_at_the_first_file(tmp_path: Path) -> None:
    main = _tree(
        tmp_path,
        "include: [x.yaml]\nservices:\n  - {name: dup, type: tcp, host: h, port: 1}\n",
        **{"x.yaml": "services:\n  - {name: dup, type: tcp, host: h, port: 2}\n"},
    )
    assert _issues(main) == [
        f"{tmp_path / 'x.yaml'}:2: services[0].name: duplicate service name 'dup' "
        f"(first defined at {main}:3)"
    ]


def test_a_heartbeat_token_used_in_two_files_names_both(tmp_path: Path) -> None:
    token = "t" * 20
    main = _tree(
        tmp_path,
        f"include: [x.yaml]\nservices:\n  - {{name: a, type: heartbeat, token: {token}}}\n",
        **{"x.yaml": f"services:\n  - {{name: b, type: heartbeat, token: {token}}}\n"},
    )
    assert _issues(main) == [
        f"{tmp_path / 'x.yaml'}:2: services[0].token: token already used by service 'a' "
        f"({main}:3); each heartbeat needs its own"
    ]


def test_depends_on_may_name_a_service_of_another_file(tmp_path: Path) -> None:
    main = _tree(
        tmp_path,
        "include: [x.yaml]\nservices:\n  - {name: gw, type: tcp, host: h, port: 1}\n",
        **{"x.yaml": "services:\n  - {name: db, type: tcp, host: h, port: 2, depends_on: [gw]}\n"},
    )
    assert load_config(main, env={}).service("db") is not None


def test_included_files_may_not_include(tmp_path: Path) -> None:
    main = _tree(tmp_path, "include: [x.yaml]\n", **{"x.yaml": "services: []\ninclude: [y.yaml]\n"})
    assert _issues(main) == [
        f"{tmp_path / 'x.yaml'}:2: include: only the main config file may include others"
    ]


def test_a_glob_matching_nothing_is_fine_a_missing_plain_path_is_not(tmp_path: Path) -> None:
    main = write(tmp_path, "include: [conf.d/*.yaml, missing.yaml]\n")
    assert _issues(main) == [f"{main}:1: include[1]: no such file: {tmp_path / 'missing.yaml'}"]


def test_the_main_file_matched_by_its_own_glob_is_not_merged_again(tmp_path: Path) -> None:
    main = _tree(
        tmp_path,
        "include: ['*.yaml']\nservices:\n  - {name: a, type: tcp, host: h, port: 1}\n",
        **{"b.yaml": "services:\n  - {name: b, type: tcp, host: h, port: 2}\n"},
    )
    assert [s.name for s in load_config(main, env={}).services] == ["a", "b"]


def test_bad_yaml_and_wrong_shapes_in_included_files(tmp_path: Path) -> None:
    main = _tree(
        tmp_path,
        "include: [a.yaml, b.yaml, c.yaml]\n",
        **{"a.yaml": "services: [\n", "b.yaml": "- just a list\n", "c.yaml": "services: 3\n"},
    )
    found = _issues(main)
    assert found[0].startswith(f"{tmp_path / 'a.yaml'}:2: invalid YAML")
    assert found[1:] == [
        f"{tmp_path / 'b.yaml'}:1: the top level must be a mapping of sections, got a list",
        f"{tmp_path / 'c.yaml'}:1: services: expected a list of services, got 3",
    ]


def test_unknown_key_in_an_included_file_is_reported_there(tmp_path: Path) -> None:
    main = _tree(tmp_path, "include: [x.yaml]\n", **{"x.yaml": "# more\nservise: []\n"})
    (found,) = _issues(main)
    assert found.startswith(f"{tmp_path / 'x.yaml'}:2: servise: unknown key")


def test_unset_variable_in_an_included_file_names_it(tmp_path: Path) -> None:
    main = _tree(
        tmp_path,
        "include: [x.yaml]\n",
        **{"x.yaml": "services:\n  - {name: a, type: tcp, host: '${NOPE}', port: 1}\n"},
    )
    assert _issues(main) == [
        f"{tmp_path / 'x.yaml'}:2: services[0].host: environment variable 'NOPE' is not set"
    ]


def test_checksum_covers_the_included_files(tmp_path: Path) -> None:
    main = _tree(tmp_path, "include: [x.yaml]\n", **{"x.yaml": "instance: {name: a}\n"})
    before = load_config(main, env={}).checksum
    assert before != hashlib.sha256(main.read_bytes()).hexdigest()
    (tmp_path / "x.yaml").write_text("instance: {name: b}\n")
    assert load_config(main, env={}).checksum != before


def test_validate_command_reports_errors_of_included_files(tmp_path: Path) -> None:
    main = _tree(
        tmp_path,
        "include: [x.yaml]\n",
        **{"x.yaml": "services:\n  - {name: a, type: nosuch}\n"},
    )
    out = pymon("config", "validate", str(main))
    assert out.returncode == 1
    assert out.stderr.startswith(f"{tmp_path / 'x.yaml'}:2: services[0].type: unknown check type")
