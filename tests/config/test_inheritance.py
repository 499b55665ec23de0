"""What a service inherits: built-in < defaults < defaults.<type> < the service."""

from __future__ import annotations

from pathlib import Path

from pymon.checks import REGISTRY
from pymon.checks.http import HttpSpec
from pymon.config.inheritance import rules
from pymon.config.load import load_config_text
from pymon.config.schema import Defaults, FlapGuard, Inheritable, ServiceCommon, ServiceConfig
from tests.config.helpers import issues, load

HTTP = "{name: web, type: http, url: 'http://example.com/'}"
TCP = "{name: db, type: tcp, host: db, port: 5432}"


def only(text: str) -> ServiceConfig:
    config = load_config_text(text, env={})
    assert len(config.services) == 1
    return config.services[0]


def test_built_in_defaults_apply_when_nothing_is_set() -> None:
    service = only(f"services: [{TCP}]")
    assert (service.interval, service.timeout, service.notify) == (60.0, 10.0, None)
    assert service.flap_guard == FlapGuard()
    assert service.thresholds == {}
    assert service.tags == []


def test_defaults_interval_and_timeout_are_inherited() -> None:
    service = only(f"defaults: {{interval: 30s, timeout: 500ms}}\nservices: [{TCP}]")
    assert (service.interval, service.timeout) == (30.0, 0.5)


def test_service_interval_beats_defaults() -> None:
    service = only(
        "defaults: {interval: 30s}\n"
        "services: [{name: db, type: tcp, host: db, port: 1, interval: 5m}]"
    )
    assert service.interval == 300.0


def test_type_section_sets_the_types_own_keys() -> None:
    config = load_config_text(
        f"defaults:\n  http: {{verify_tls: false, method: HEAD}}\nservices: [{HTTP}, {TCP}]"
    )
    spec = config.services[0].check
    assert isinstance(spec, HttpSpec)
    assert (spec.verify_tls, spec.method) == (False, "HEAD")


def test_service_keys_beat_the_type_section() -> None:
    service = only(
        "defaults:\n  http: {verify_tls: false, method: HEAD}\n"
        "services: [{name: web, type: http, url: 'http://x/', method: GET}]"
    )
    assert isinstance(service.check, HttpSpec)
    assert (service.check.verify_tls, service.check.method) == (False, "GET")


def test_type_section_common_keys_sit_between_defaults_and_the_service() -> None:
    config = load_config_text(
        """
        defaults:
          interval: 1m
          timeout: 20s
          tcp: {interval: 10s}
        services:
          - {name: a, type: tcp, host: h, port: 1}
          - {name: b, type: tcp, host: h, port: 1, interval: 2s}
          - {name: c, type: http, url: 'http://x/'}
        """
    )
    assert [(s.interval, s.timeout) for s in config.services] == [
        (10.0, 20.0),
        (2.0, 20.0),
        (60.0, 20.0),
    ]


def test_type_section_need_not_repeat_required_keys() -> None:
    # defaults.http has no url: a url belongs to each service.
    service = only(f"defaults:\n  http: {{follow_redirects: true}}\nservices: [{HTTP}]")
    assert isinstance(service.check, HttpSpec)
    assert service.check.follow_redirects is True


def test_thresholds_start_from_the_check_types_defaults() -> None:
    service = only(f"services: [{HTTP}]")
    assert service.thresholds == dict(REGISTRY["http"].thresholds)


def test_thresholds_merge_per_metric_each_entry_whole() -> None:
    service = only(
        """
        defaults:
          thresholds:
            status_code: {ok: "200-299"}
            latency_ms: {warn: "500-1999", error: "2000+"}
        services:
          - name: web
            type: http
            url: http://example.com/
            thresholds:
              latency_ms: {warn: "100+"}
        """
    )
    status_code = service.thresholds["status_code"]
    # defaults' entry replaced the http default whole: no warn/error ranges left.
    assert (str(status_code.ok), status_code.warn, status_code.error) == ("200-299", None, None)
    # the service's entry replaced defaults' whole: no error range left.
    latency = service.thresholds["latency_ms"]
    assert (str(latency.warn), latency.error) == ("100+", None)


def test_type_section_thresholds_sit_between_defaults_and_the_service() -> None:
    service = only(
        """
        defaults:
          thresholds: {rtt_ms: {warn: "100+"}, loss_pct: {ok: "0"}}
          ping:
            thresholds: {rtt_ms: {warn: "50+"}}
        services:
          - {name: gw, type: ping, host: 192.0.2.1}
        """
    )
    assert str(service.thresholds["rtt_ms"].warn) == "50+"
    assert str(service.thresholds["loss_pct"].ok) == "0"


def test_flap_guard_merges_per_status() -> None:
    config = load_config_text(
        """
        defaults:
          flap_guard: {failed: 5, warn: 4}
          tcp:
            flap_guard: {warn: 6}
        services:
          - {name: a, type: tcp, host: h, port: 1, flap_guard: {ok: 1}}
          - {name: b, type: http, url: 'http://x/'}
        """
    )
    a, b = config.services
    assert a.flap_guard == FlapGuard(ok=1, warn=6, failed=5)
    assert b.flap_guard == FlapGuard(warn=4, failed=5)


def test_tags_are_the_union_service_tags_first() -> None:
    service = only(
        """
        defaults:
          tags: [prod, all]
          tcp: {tags: [network, prod]}
        services:
          - {name: db, type: tcp, host: h, port: 1, tags: [db, all]}
        """
    )
    assert service.tags == ["db", "all", "network", "prod"]


def test_notify_is_inherited_unless_the_service_sets_it() -> None:
    config = load_config_text(
        """
        notifications: {channels: {ops: {type: log}, dev: {type: log}}}
        defaults: {notify: [ops]}
        services:
          - {name: a, type: tcp, host: h, port: 1}
          - {name: b, type: tcp, host: h, port: 1, notify: [dev]}
          - {name: c, type: tcp, host: h, port: 1, notify: false}
          - {name: d, type: tcp, host: h, port: 1, notify: null}
        """
    )
    assert [s.notify for s in config.services] == [["ops"], ["dev"], False, ["ops"]]


def test_timeout_longer_than_interval_is_allowed() -> None:
    service = only("services: [{name: a, type: tcp, host: h, port: 1, interval: 1s, timeout: 5s}]")
    assert (service.interval, service.timeout) == (1.0, 5.0)


def test_config_keeps_type_sections_as_written(tmp_path: Path) -> None:
    config = load(tmp_path, "defaults:\n  http: {verify_tls: false, timeout: 2s}\n")
    assert config.defaults.model_extra == {"http": {"verify_tls": False, "timeout": "2s"}}


def test_retry_interval_is_inherited_and_null_at_a_service_drops_it() -> None:
    config = load_config_text(
        """
        defaults:
          retry_interval: 20s
          tcp: {retry_interval: 5s}
        services:
          - {name: a, type: tcp, host: h, port: 1}
          - {name: b, type: http, url: 'http://x/'}
          - {name: c, type: tcp, host: h, port: 1, retry_interval: null}
        """
    )
    assert [s.retry_interval for s in config.services] == [5.0, 20.0, None]
    # Without retry_interval the retry is a third of the interval.
    assert config.services[2].retry_after == 20.0


def test_flap_detection_merges_per_key() -> None:
    service = only(
        """
        defaults:
          flap_detection: {high: 50}
          tcp:
            flap_detection: {low: 10}
        services:
          - {name: a, type: tcp, host: h, port: 1, flap_detection: {window: 10}}
        """
    )
    d = service.flap_detection
    assert (d.enabled, d.window, d.low, d.high) == (True, 10, 10.0, 50.0)


def test_type_section_notify_sits_between_defaults_and_the_service() -> None:
    config = load_config_text(
        """
        notifications: {channels: {ops: {type: log}, net: {type: log}}}
        defaults:
          notify: [ops]
          tcp: {notify: [net]}
          ping: {notify: false}
          http: {notify: null}
        services:
          - {name: a, type: tcp, host: h, port: 1}
          - {name: b, type: tcp, host: h, port: 1, notify: null}
          - {name: c, type: ping, host: h}
          - {name: d, type: http, url: 'http://x/'}
        """
    )
    assert [s.notify for s in config.services] == [["net"], ["net"], False, ["ops"]]


def test_type_section_thresholds_replace_the_check_types_entry_whole() -> None:
    service = only(
        """
        defaults:
          http:
            thresholds: {status_code: {ok: "200"}}
        services:
          - {name: web, type: http, url: 'http://x/'}
        """
    )
    assert set(service.thresholds) == set(REGISTRY["http"].thresholds)
    status_code = service.thresholds["status_code"]
    assert (str(status_code.ok), status_code.warn, status_code.error) == ("200", None, None)


def test_repeated_tags_within_one_level_are_dropped() -> None:
    service = only(f"defaults: {{tags: [a, b, a]}}\nservices: [{TCP}]")
    assert service.tags == ["a", "b"]


def test_keys_that_are_never_inherited_cannot_be_defaults(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        defaults:
          enabled: false
          tcp: {depends_on: [x]}
        services:
          - {name: a, type: tcp, host: h, port: 1}
        """,
    )
    assert [f.split(" (", 1)[0] for f in found] == [
        "FILE:2: defaults.enabled: unknown key",
        "FILE:3: defaults.tcp.depends_on: unknown key",
    ]


def test_config_defaults_hold_the_top_level_defaults_as_written(tmp_path: Path) -> None:
    config = load(tmp_path, "defaults:\n  interval: 30s\n  tags: [a, a]\n  tcp: {interval: 5s}\n")
    assert (config.defaults.interval, config.defaults.tags) == (30.0, ["a", "a"])


def test_the_inheritable_keys_are_defined_once_each_with_a_rule() -> None:
    inheritable = list(Inheritable.model_fields)
    assert list(rules(Inheritable)) == inheritable
    assert list(Defaults.model_fields) == inheritable
    assert list(rules(ServiceCommon)) == inheritable
    # key_order lists exactly the keys a service has, in the documented order.
    assert sorted(ServiceCommon.key_order) == sorted(ServiceCommon.model_fields)


def test_sla_is_inherited_from_defaults_and_a_service_may_drop_it() -> None:
    config = load_config_text(
        "defaults: {sla: 99.9, tcp: {sla: 99.5}}\n"
        "services:\n"
        "  - {name: a, type: tcp, host: h, port: 1}\n"
        "  - {name: b, type: tcp, host: h, port: 1, sla: 99.99}\n"
        "  - {name: c, type: tcp, host: h, port: 1, sla: null}\n"
        "  - {name: d, type: http, url: 'http://example.com/'}\n",
        env={},
    )
    assert [s.sla for s in config.services] == [99.5, 99.99, None, 99.9]
    assert only(f"services: [{TCP}]").sla is None


def test_a_bad_sla_names_its_key_path(tmp_path: Path) -> None:
    for bad in ("0", "100.5", "-1", "lots"):
        found = issues(
            tmp_path, f"services:\n  - {{name: a, type: tcp, host: h, port: 1, sla: {bad}}}\n"
        )
        assert any("services[0].sla" in line for line in found), (bad, found)
