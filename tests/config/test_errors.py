"""Each kind of config mistake is reported as ``FILE:LINE: key.path: what is wrong``."""

from __future__ import annotations

from pathlib import Path

import pytest

from pymon.checks import REGISTRY
from pymon.checks.tcp import TcpSpec
from pymon.config import reading
from pymon.config.load import load_config, load_config_text
from pymon.errors import ConfigError
from tests.config.helpers import issues, write

KNOWN_TYPES = ", ".join(sorted(REGISTRY))
TOP_KEYS = (
    "instance, log, storage, web, scheduler, cluster, node, defaults, notifications, "
    "acknowledgements, maintenance, services, status_pages, reload, include"
)
TCP_KEYS = (
    "host, port, send, expect, name, type, description, interval, retry_interval, timeout, "
    "enabled, notify, thresholds, flap_guard, flap_detection, depends_on, tags, badge, sla, "
    "locations, quorum, notify_partial"
)


def test_unknown_top_level_key(tmp_path: Path) -> None:
    found = issues(tmp_path, "instance: {name: x}\nservise: []\n")
    assert found == [f"FILE:2: servise: unknown key (did you mean 'services'? allowed: {TOP_KEYS})"]


def test_computed_top_level_keys_cannot_be_set(tmp_path: Path) -> None:
    assert issues(tmp_path, "checksum: abc\n") == [
        f"FILE:1: checksum: unknown key (allowed: {TOP_KEYS})"
    ]


def test_unknown_service_key_lists_common_and_type_keys(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        services:
          - name: db
            type: tcp
            host: db.example.com
            prot: 5432
        """,
    )
    assert found == [
        "FILE:2: services[0].port: field required",
        f"FILE:5: services[0].prot: unknown key (did you mean 'port'? allowed: {TCP_KEYS})",
    ]


def test_unknown_key_in_a_nested_model(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        services:
          - name: web
            type: http
            url: http://example.com/
            thresholds:
              status_code: {ok: "200", okk: "201"}
        """,
    )
    assert found == [
        "FILE:6: services[0].thresholds.status_code.okk: "
        "unknown key (did you mean 'ok'? allowed: ok, warn, error, failed)"
    ]


def test_unknown_check_type(tmp_path: Path) -> None:
    found = issues(tmp_path, "services:\n  - name: x\n    type: carrier-pigeon\n    coop: 3\n")
    assert found == [
        f"FILE:3: services[0].type: unknown check type 'carrier-pigeon' (known: {KNOWN_TYPES})"
    ]


def test_missing_type(tmp_path: Path) -> None:
    assert issues(tmp_path, "services:\n  - name: x\n    host: h\n") == [
        "FILE:2: services[0].type: field required"
    ]


def test_missing_name_is_reported_on_the_service_line(tmp_path: Path) -> None:
    found = issues(tmp_path, "services:\n\n  - type: tcp\n    host: h\n    port: 1\n")
    assert found == ["FILE:3: services[0].name: field required"]


def test_wrong_value_type(tmp_path: Path) -> None:
    found = issues(tmp_path, "services:\n  - {name: x, type: tcp, host: h, port: abc}\n")
    assert found == ["FILE:2: services[0].port: expected an integer, got 'abc'"]


def test_value_out_of_bounds(tmp_path: Path) -> None:
    found = issues(tmp_path, "services:\n  - {name: x, type: tcp, host: h, port: 70000}\n")
    assert found == ["FILE:2: services[0].port: must be at most 65535, got 70000"]


def test_value_not_among_the_choices(tmp_path: Path) -> None:
    found = issues(tmp_path, "log:\n  level: loud\n")
    assert found == [
        "FILE:2: log.level: expected one of debug, info, warning, error, critical, got 'loud'"
    ]


def test_bad_duration(tmp_path: Path) -> None:
    found = issues(tmp_path, "defaults:\n  interval: 5 minutes\n")
    assert found == [
        "FILE:2: defaults.interval: "
        "'5 minutes' is not a duration (use e.g. 500ms, 30s, 5m, 1h, 1h30m)"
    ]


def test_zero_interval_shows_the_value_as_written(tmp_path: Path) -> None:
    found = issues(
        tmp_path, "services:\n  - {name: x, type: tcp, host: h, port: 1, interval: 0s}\n"
    )
    assert found == ["FILE:2: services[0].interval: must be greater than 0, got '0s'"]


def test_bad_range(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        services:
          - name: web
            type: http
            url: http://example.com/
            thresholds:
              status_code:
                ok: "200-2x9"
        """,
    )
    assert found == [
        "FILE:7: services[0].thresholds.status_code.ok: "
        "range item '200-2x9' is not N, A-B or A+ (e.g. '200-299, 304')"
    ]


def test_missing_required_key_points_at_its_service(tmp_path: Path) -> None:
    found = issues(tmp_path, "services:\n  - name: x\n    type: tcp\n    port: 1\n")
    assert found == ["FILE:2: services[0].host: field required"]


def test_duplicate_service_names_name_both_lines(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        services:
          - {name: db, type: tcp, host: a, port: 1}
          - {name: web, type: tcp, host: b, port: 2}
          - {name: db, type: tcp, host: c, port: 3}
        """,
    )
    assert found == [
        "FILE:4: services[2].name: duplicate service name 'db' (first defined at line 2)"
    ]


def test_a_shared_heartbeat_token_names_both_lines_and_never_the_token(tmp_path: Path) -> None:
    token = "s3cret-token-0123456789"
    found = issues(
        tmp_path,
        f"""
        services:
          - {{name: a, type: heartbeat, token: {token}}}
          - {{name: b, type: tcp, host: h, port: 1}}
          - {{name: c, type: heartbeat, token: {token}}}
          - {{name: d, type: heartbeat, token: other-token-0123456789}}
        """,
    )
    assert found == [
        "FILE:4: services[2].token: token already used by service 'a' (line 2); "
        "each heartbeat needs its own"
    ]


def test_any_check_type_may_declare_unique_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(TcpSpec, "unique_fields", ("port",))
    found = issues(
        tmp_path,
        """
        services:
          - {name: a, type: tcp, host: h, port: 1}
          - {name: b, type: tcp, host: other, port: 2}
          - {name: c, type: ping, host: h, port: 1}
          - {name: d, type: tcp, host: h, port: 1}
        """,
    )
    assert [f for f in found if "already used" in f] == [
        "FILE:5: services[3].port: port already used by service 'a' (line 2); "
        "each tcp needs its own"
    ]


def test_unknown_dependency(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        services:
          - {name: gateway, type: tcp, host: a, port: 1}
          - name: db
            type: tcp
            host: b
            port: 2
            depends_on: [gateway, gatway]
        """,
    )
    assert found == [
        "FILE:7: services[1].depends_on[1]: unknown service 'gatway' (did you mean 'gateway'?)"
    ]


def test_dependency_cycle_is_named(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        services:
          - {name: a, type: tcp, host: h, port: 1, depends_on: [b]}
          - {name: b, type: tcp, host: h, port: 1, depends_on: [c]}
          - {name: c, type: tcp, host: h, port: 1, depends_on: [a]}
          - {name: d, type: tcp, host: h, port: 1, depends_on: [a]}
        """,
    )
    assert found == ["FILE:2: services[0].depends_on[0]: dependency cycle: a -> b -> c -> a"]


def test_a_service_depending_on_itself_is_a_cycle(tmp_path: Path) -> None:
    found = issues(
        tmp_path, "services:\n  - {name: a, type: tcp, host: h, port: 1, depends_on: [a]}\n"
    )
    assert found == ["FILE:2: services[0].depends_on[0]: dependency cycle: a -> a"]


def test_dependency_on_a_service_with_errors_is_not_unknown(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        services:
          - {name: a, type: tcp, host: h, port: 1, depends_on: [b]}
          - {name: b, type: tcp, host: h}
        """,
    )
    assert found == ["FILE:3: services[1].port: field required"]


def test_missing_environment_variable(tmp_path: Path) -> None:
    found = issues(tmp_path, "storage:\n  url: postgresql://pymon:${DB_PASSWORD}@db/pymon\n")
    assert found == ["FILE:2: storage.url: environment variable 'DB_PASSWORD' is not set"]


def test_yaml_syntax_error(tmp_path: Path) -> None:
    found = issues(tmp_path, "services:\n  - name: x\n    type: [tcp\n  - name: y\n")
    assert len(found) == 1
    assert found[0].startswith("FILE:4: invalid YAML: while parsing a flow sequence")


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    found = issues(tmp_path, "web:\n  listen: 127.0.0.1:80\n  listen: 127.0.0.1:81\n")
    assert len(found) == 1
    assert found[0].startswith(
        'FILE:3: invalid YAML: while constructing a mapping, found duplicate key "listen"'
    )


def test_service_that_is_not_a_mapping(tmp_path: Path) -> None:
    found = issues(
        tmp_path, "services:\n  - {name: a, type: tcp, host: h, port: 1}\n  - db.example.com\n"
    )
    assert found == [
        "FILE:3: services[1]: expected a mapping (a service: name, type, ...), got 'db.example.com'"
    ]


def test_services_that_is_not_a_list(tmp_path: Path) -> None:
    assert issues(tmp_path, "services:\n  db: {type: tcp}\n") == [
        "FILE:1: services: expected a list of services, got a mapping"
    ]


def test_top_level_that_is_not_a_mapping(tmp_path: Path) -> None:
    assert issues(tmp_path, "- name: a\n  type: tcp\n") == [
        "FILE:1: the top level must be a mapping of sections, got a list"
    ]


def test_union_value_says_what_either_form_looks_like(tmp_path: Path) -> None:
    found = issues(tmp_path, "defaults:\n  notify: yes please\n")
    assert found == ["FILE:2: defaults.notify: expected a list or false, got 'yes please'"]


def test_union_value_with_a_bad_item_points_at_the_item(tmp_path: Path) -> None:
    found = issues(tmp_path, "defaults:\n  notify:\n    - log\n    - 42\n")
    assert found == ["FILE:4: defaults.notify[1]: expected a string, got 42"]


def test_keys_that_are_not_names_are_quoted_in_the_path(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        services:
          - name: web
            type: http
            url: http://example.com/
            headers:
              X-Trace.Id: 7
        """,
    )
    assert found == ['FILE:6: services[0].headers["X-Trace.Id"]: expected a string, got 7']


def test_bad_web_listen_address(tmp_path: Path) -> None:
    assert issues(tmp_path, "web:\n  listen: localhost\n") == [
        "FILE:2: web.listen: 'localhost' is not HOST:PORT "
        "(e.g. 127.0.0.1:8080, [::1]:8080, 0.0.0.0:8080)"
    ]


def test_unknown_defaults_section(tmp_path: Path) -> None:
    found = issues(tmp_path, "defaults:\n  htp:\n    verify_tls: false\n")
    assert found == [
        "FILE:2: defaults.htp: unknown key (allowed: interval, retry_interval, timeout, notify, "
        "thresholds, flap_guard, flap_detection, tags, badge, sla, locations, quorum, "
        f"notify_partial, or a check type: {KNOWN_TYPES})"
    ]


def test_bad_key_in_a_type_section_is_reported_once(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        defaults:
          tcp:
            port: none
            sned: x
        services:
          - {name: a, type: tcp, host: h, port: 1}
          - {name: b, type: tcp, host: h, port: 2}
        """,
    )
    assert found == [
        "FILE:3: defaults.tcp.port: expected an integer, got 'none'",
        "FILE:4: defaults.tcp.sned: unknown key (did you mean 'send'? allowed: host, port, send, "
        "expect, interval, retry_interval, timeout, notify, thresholds, flap_guard, "
        "flap_detection, tags, badge, sla, locations, quorum, notify_partial)",
    ]


def test_bad_defaults_value_is_reported_once(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        defaults:
          timeout: soon
        services:
          - {name: a, type: tcp, host: h, port: 1}
          - {name: b, type: tcp, host: h, port: 2}
        """,
    )
    assert found == [
        "FILE:2: defaults.timeout: 'soon' is not a duration (use e.g. 500ms, 30s, 5m, 1h, 1h30m)"
    ]


def test_many_errors_are_reported_at_once_in_line_order(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        instance:
          name: test
        flavour: blue
        defaults:
          interval: 0
        services:
          - name: a
            type: tcp
            host: h
            port: abc
            depends_on: [nobody]
          - name: b
            type: smoke-signal
          - just text
          - name: a
            type: ping
            host: ${PING_HOST}
        """,
    )
    assert found == [
        f"FILE:3: flavour: unknown key (allowed: {TOP_KEYS})",
        "FILE:5: defaults.interval: must be greater than 0, got 0",
        "FILE:10: services[0].port: expected an integer, got 'abc'",
        "FILE:11: services[0].depends_on[0]: unknown service 'nobody'",
        f"FILE:13: services[1].type: unknown check type 'smoke-signal' (known: {KNOWN_TYPES})",
        "FILE:14: services[2]: expected a mapping (a service: name, type, ...), got 'just text'",
        "FILE:15: services[3].name: duplicate service name 'a' (first defined at line 7)",
        "FILE:17: services[3].host: environment variable 'PING_HOST' is not set",
    ]


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(missing)
    assert [str(i) for i in info.value.issues] == [
        f"{missing}: cannot read: No such file or directory"
    ]


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("instance:\n  name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [str(i) for i in info.value.issues] == [f"{path}:2: not UTF-8 text (byte 0xe9)"]


def test_alias_expansion_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reading, "MAX_NODES", 1000)
    laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcd", "bcde", strict=True)
    )
    with pytest.raises(ConfigError) as info:
        load_config_text(laughs, "bomb.yaml")
    assert [str(i) for i in info.value.issues] == [
        "bomb.yaml: the config expands to more than 1,000 values (aliases?)"
    ]


def test_issues_name_the_file_as_given(tmp_path: Path) -> None:
    path = write(tmp_path, "bogus: 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert str(info.value).startswith(f"{path}:1: bogus: unknown key")


def test_keys_beside_a_bad_one_in_defaults_are_still_inherited(tmp_path: Path) -> None:
    # Only the bad key is left out; services get the good ones and no new errors.
    found = issues(
        tmp_path,
        """
        defaults:
          timeout: soon
          tcp:
            host: db.example.com
            sned: x
        services:
          - {name: a, type: tcp, port: 1}
        """,
    )
    assert found == [
        "FILE:2: defaults.timeout: 'soon' is not a duration (use e.g. 500ms, 30s, 5m, 1h, 1h30m)",
        "FILE:5: defaults.tcp.sned: unknown key (did you mean 'send'? allowed: host, port, send, "
        "expect, interval, retry_interval, timeout, notify, thresholds, flap_guard, "
        "flap_detection, tags, badge, sla, locations, quorum, notify_partial)",
    ]


def test_a_bad_secret_is_reported_without_its_value(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        "services:\n  - {name: j, type: heartbeat, token: [123456789012345678]}\n",
    )
    assert len(found) == 1
    assert found[0].startswith("FILE:2: services[0].token:")
    assert "123456789012345678" not in found[0]


def test_unknown_channels_are_named_where_they_are_used(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        "notifications:\n"
        "  channels: {ops: {type: log}}\n"
        "  escalation: [boss]\n"
        "  routes:\n"
        "    - {channels: [ops, pagr]}\n"
        "services:\n"
        "  - {name: a, type: tcp, host: h, port: 1, notify: [nobody]}\n",
    )
    assert found == [
        "FILE:3: notifications.escalation[0]: unknown channel 'boss' "
        "(channels under notifications.channels: ops)",
        "FILE:5: notifications.routes[0].channels[1]: unknown channel 'pagr' "
        "(channels under notifications.channels: ops)",
        "FILE:7: services[0].notify[0]: unknown channel 'nobody' "
        "(channels under notifications.channels: ops)",
    ]


def test_issues_on_one_line_follow_the_documented_key_order(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        "services:\n  - {tags: 3, interval: 0s, type: tcp, enabled: x, host: h, port: 1}\n",
    )
    assert found == [
        "FILE:2: services[0].name: field required",
        "FILE:2: services[0].interval: must be greater than 0, got '0s'",
        "FILE:2: services[0].enabled: expected true or false, got 'x'",
        "FILE:2: services[0].tags: expected a list, got 3",
    ]


@pytest.mark.parametrize(
    ("detection", "why"),
    [
        ("{changes: 1}", "changes must be 0 (off) or at least 2"),
        (
            "{window: 5, changes: 6}",
            "changes (6) must not be above window (5): the window could never hold them",
        ),
    ],
)
def test_flap_detection_changes_must_fit_the_window(
    tmp_path: Path, detection: str, why: str
) -> None:
    found = issues(tmp_path, f"defaults:\n  flap_detection: {detection}\n")
    assert found == [f"FILE:2: defaults.flap_detection: {why}"]
