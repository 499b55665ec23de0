"""``${VAR}`` in string values: from the environment, with defaults and an escape."""

from __future__ import annotations

from pathlib import Path

import pytest

from pymon.checks.http import HttpSpec
from pymon.checks.tcp import TcpSpec
from pymon.config.load import load_config, load_config_text
from tests.config.helpers import issues, write


def url(value: str, env: dict[str, str]) -> str:
    """``storage.url`` after loading ``url: value`` with ``env``."""
    return load_config_text(f"storage:\n  url: '{value}'\n", env=env).storage.url


def test_variable_is_replaced() -> None:
    assert url("postgresql://pymon:${PW}@db/pymon", {"PW": "s3cret"}) == (
        "postgresql://pymon:s3cret@db/pymon"
    )


def test_several_variables_in_one_value() -> None:
    assert url("${A}-${B}-${A}", {"A": "1", "B": "2"}) == "1-2-1"


def test_default_is_used_when_unset() -> None:
    assert url("${DB_URL:-sqlite:///x.db}", {}) == "sqlite:///x.db"


def test_default_is_used_when_empty() -> None:
    assert url("${DB_URL:-sqlite:///x.db}", {"DB_URL": ""}) == "sqlite:///x.db"


def test_set_value_beats_the_default() -> None:
    assert url("${DB_URL:-sqlite:///x.db}", {"DB_URL": "sqlite:///y.db"}) == "sqlite:///y.db"


def test_empty_default() -> None:
    assert url("a${X:-}b", {}) == "ab"


def test_set_but_empty_variable_without_default_is_empty() -> None:
    assert url("a${X}b", {"X": ""}) == "ab"


def test_double_dollar_escapes_a_literal_reference() -> None:
    assert url("$${NOT_A_VAR} and ${A}", {"A": "1"}) == "${NOT_A_VAR} and 1"


def test_other_dollars_are_left_alone() -> None:
    assert url("$HOME $$ a$b ${A}$", {"A": "1"}) == "$HOME $$ a$b 1$"


def test_interpolated_text_is_converted_by_the_model() -> None:
    config = load_config_text(
        "services:\n  - {name: db, type: tcp, host: '${HOST}', port: '${PORT:-5432}'}\n",
        env={"HOST": "db.example.com"},
    )
    assert config.services[0].check == TcpSpec(host="db.example.com", port=5432)


def test_values_in_lists_and_nested_mappings_are_interpolated() -> None:
    config = load_config_text(
        """
        services:
          - name: api
            type: http
            url: https://${API_HOST}/health
            headers: {Authorization: "Bearer ${TOKEN}"}
            contains: ["${EXPECT}"]
        """,
        env={"API_HOST": "api.example.com", "TOKEN": "t0k", "EXPECT": "healthy"},
    )
    spec = config.services[0].check
    assert isinstance(spec, HttpSpec)
    assert spec.url == "https://api.example.com/health"
    assert spec.headers == {"Authorization": "Bearer t0k"}
    assert spec.contains == ["healthy"]


def test_keys_are_not_interpolated() -> None:
    config = load_config_text(
        "services:\n  - {name: db, type: tcp, host: h, port: 1, thresholds: {'${M}': {ok: 1}}}\n",
        env={"M": "connect_ms"},
    )
    assert list(config.services[0].thresholds) == ["${M}"]


def test_process_environment_is_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYMON_TEST_LISTEN", "127.0.0.1:9999")
    config = load_config(write(tmp_path, "web:\n  listen: ${PYMON_TEST_LISTEN}\n"))
    assert config.web.listen == "127.0.0.1:9999"


def test_missing_variable_in_a_list_item(tmp_path: Path) -> None:
    found = issues(tmp_path, "defaults:\n  notify:\n    - log\n    - ${ONCALL}\n")
    assert found == ["FILE:4: defaults.notify[1]: environment variable 'ONCALL' is not set"]


def test_every_missing_variable_is_reported(tmp_path: Path) -> None:
    found = issues(tmp_path, "storage:\n  url: ${USER_}:${PASS}@${HOST:-db}\n")
    assert found == [
        "FILE:2: storage.url: environment variable 'USER_' is not set",
        "FILE:2: storage.url: environment variable 'PASS' is not set",
    ]


@pytest.mark.parametrize("ref", ["${1ABC}", "${}", "${A B}", "${A:default}", "${UNCLOSED"])
def test_malformed_reference(tmp_path: Path, ref: str) -> None:
    found = issues(tmp_path, f"instance:\n  name: '{ref}'\n")
    assert len(found) == 1
    assert found[0].startswith("FILE:2: instance.name: bad reference '${")
    assert found[0].endswith(": write ${NAME} or ${NAME:-default}, or $${ for a literal ${")


def test_messages_show_the_reference_not_the_secret(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        "services:\n  - {name: db, type: tcp, host: h, port: '${DB_PASSWORD}'}\n",
        env={"DB_PASSWORD": "hunter2"},
    )
    assert found == [
        "FILE:2: services[0].port: expected an integer, got '${DB_PASSWORD}' (from the environment)"
    ]
