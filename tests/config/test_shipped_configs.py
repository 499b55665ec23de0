"""The built-in demo, the examples and the reference page stay loadable and complete."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ruamel.yaml import YAML

from pymon.checks import REGISTRY
from pymon.checks.tcp import TcpSpec
from pymon.config.load import DEMO_CONFIG, load_config, load_config_text, load_demo_config
from pymon.config.schema import Config, ServiceCommon
from tests.config.helpers import issues, load, write

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TOP_KEYS = [k for k in Config.model_fields if k not in ("source", "checksum")]


def test_demo_loads_and_checks_only_this_machine() -> None:
    config = load_demo_config()
    assert config.source == str(DEMO_CONFIG)
    assert {s.type for s in config.services} >= {"ping", "tcp", "http"}
    for service in config.services:
        target = json.dumps(service.check.model_dump())
        assert "127.0.0.1" in target, service.name
        assert 5 <= service.interval <= 15, service.name


def test_demo_has_a_service_that_fails_on_purpose() -> None:
    closed = load_demo_config().service("closed-port")
    assert closed is not None
    assert closed.check == TcpSpec(host="127.0.0.1", port=9)


def test_minimal_example_loads() -> None:
    config = load_config(EXAMPLES / "minimal.yaml", env={})
    assert [s.name for s in config.services] == ["website", "ssh"]


def test_full_example_loads_without_any_environment() -> None:
    config = load_config(EXAMPLES / "pymon.yaml", env={})
    assert config.services


def test_full_example_shows_every_section_and_service_key() -> None:
    raw = YAML(typ="safe").load((EXAMPLES / "pymon.yaml").read_text())
    assert set(raw) == set(TOP_KEYS)
    used = {key for service in raw["services"] for key in service}
    assert set(ServiceCommon.model_fields) <= used


def test_reference_page_names_every_key() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text()
    sections = {k: f.annotation for k, f in Config.model_fields.items() if k in TOP_KEYS}
    keys = set(TOP_KEYS) | set(ServiceCommon.model_fields)
    for annotation in sections.values():
        keys |= set(getattr(annotation, "model_fields", {}))
    missing = sorted(k for k in keys if f"`{k}`" not in page)
    assert not missing, f"docs/configuration.md does not mention: {missing}"


def test_reference_page_links_the_check_types() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text()
    assert "checks.md" in page
    for name in REGISTRY:
        assert f"`{name}`" in page


def test_empty_file_is_a_config_without_services(tmp_path: Path) -> None:
    config = load(tmp_path, "# nothing here yet\n")
    assert config.services == ()
    assert config.web.listen == "127.0.0.1:8080"


def test_empty_sections_mean_their_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, "web:\ndefaults:\nservices:\n")
    assert config == Config(source=config.source, checksum=config.checksum)


def test_source_and_checksum_come_from_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "instance: {name: a}\n")
    config = load_config(path)
    assert config.source == str(path)
    assert config.checksum == hashlib.sha256(path.read_bytes()).hexdigest()


def test_checksum_is_the_same_for_text_and_file(tmp_path: Path) -> None:
    text = "instance: {name: a}\n"
    assert load_config(write(tmp_path, text)).checksum == load_config_text(text).checksum


def test_checksum_changes_with_any_byte() -> None:
    assert load_config_text("instance: {name: a}\n").checksum != (
        load_config_text("instance: {name: a} \n").checksum
    )


def test_json_is_accepted() -> None:
    # JSON is YAML; `pymon check TYPE --key value` builds its one service this way.
    config = load_config_text(
        json.dumps({"services": [{"name": "t", "type": "tcp", "host": "h", "port": "22"}]})
    )
    assert config.services[0].check == TcpSpec(host="h", port=22)


def test_merge_keys_and_anchors_work(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        services:
          - &db {name: db1, type: tcp, host: a, port: 5432}
          - {<<: *db, name: db2, host: b}
        """,
    )
    assert [(s.name, s.check) for s in config.services] == [
        ("db1", TcpSpec(host="a", port=5432)),
        ("db2", TcpSpec(host="b", port=5432)),
    ]


def test_error_in_a_merged_key_points_where_it_is_written(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        services:
          - &db {name: db1, type: tcp, host: a, port: x}

          - {<<: *db, name: db2, host: b}
        """,
    )
    assert found == [
        "FILE:2: services[0].port: expected an integer, got 'x'",
        "FILE:2: services[1].port: expected an integer, got 'x'",
    ]


def test_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfinstance: {name: bom}\n")
    assert load_config(path).instance.name == "bom"
