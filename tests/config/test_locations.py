"""Locations in the config (issue 18): ``node``, ``locations``, ``quorum`` and
``notify_partial``, their errors with line and key path, and the location checks a
load adds (docs/configuration.md, "Locations")."""

from __future__ import annotations

from pathlib import Path

import pytest

from pymon import locations
from pymon.checks.tcp import TcpSpec
from pymon.config import expansion, schema
from pymon.config.schema import FlapGuard, MetricThresholds
from tests.config.helpers import issues, load


def web(*keys: str, before: str = "") -> str:
    """A config: ``before`` (top-level sections), then one tcp service ``web`` whose
    ``keys`` (lines under it) start on the 6th line after ``before``'s."""
    lines = ["services:", "  - name: web", "    type: tcp", "    host: h", "    port: 80"]
    return before + "\n".join([*lines, *(f"    {key}" for key in keys)]) + "\n"


NAME_RULE = (
    "is not a location name (letters, digits, '_', '.' and '-', starting with a letter "
    "or digit, at most 64 characters)"
)


def test_the_node_section_gives_this_node_its_location(tmp_path: Path) -> None:
    assert load(tmp_path, "node: {location: eu-west.2}\n").node.location == "eu-west.2"
    assert load(tmp_path, "instance: {name: a}\n").node.location == ""


@pytest.mark.parametrize("name", ["-x", "eu west", "a" * 65, "ü", "a@b", "a/b"])
def test_a_node_location_must_be_a_location_name(tmp_path: Path, name: str) -> None:
    shown = repr(name if len(name) <= 70 else name[:67] + "...")
    assert issues(tmp_path, f"instance: {{name: a}}\nnode:\n  location: '{name}'\n") == [
        f"FILE:3: node.location: {shown} {NAME_RULE}"
    ]


def test_the_longest_location_name_is_taken(tmp_path: Path) -> None:
    name = "A" + "z_.-9" * 12 + "abc"
    assert len(name) == 64
    assert load(tmp_path, f"node: {{location: '{name}'}}\n").node.location == name


def test_an_unknown_key_in_node_is_named(tmp_path: Path) -> None:
    assert issues(tmp_path, "node:\n  locaton: x\n") == [
        "FILE:2: node.locaton: unknown key (did you mean 'location'? allowed: location)"
    ]


def test_a_listed_location_must_be_a_location_name(tmp_path: Path) -> None:
    found = issues(tmp_path, web("locations:", "  - eu-west", '  - "us east"'))
    assert found == [f"FILE:8: services[0].locations[1]: 'us east' {NAME_RULE}"]


def test_a_location_listed_twice_is_an_error_at_the_list(tmp_path: Path) -> None:
    defaults = "defaults:\n  locations: [a, b, a]\n  http:\n    locations: [c, c]\n"
    found = issues(tmp_path, web("locations: [x, y, y]", before=defaults))
    assert found == [
        "FILE:2: defaults.locations: location 'a' is listed twice",
        "FILE:4: defaults.http.locations: location 'c' is listed twice",
        "FILE:10: services[0].locations: location 'y' is listed twice",
    ]


def test_at_most_32_locations(tmp_path: Path) -> None:
    listed = ", ".join(f"l{n}" for n in range(33))
    assert issues(tmp_path, f"defaults:\n  locations: [{listed}]\n") == [
        "FILE:2: defaults.locations: must have at most 32 items, got a list"
    ]


def test_a_quorum_above_the_locations_names_the_quorum_line(tmp_path: Path) -> None:
    found = issues(tmp_path, web("locations: [a, b]", "quorum: 3"))
    assert found == ["FILE:7: services[0].quorum: quorum 3 is more than the 2 locations listed"]


def test_an_inherited_quorum_above_the_own_locations_names_both_lines(tmp_path: Path) -> None:
    found = issues(tmp_path, web("locations: [a, b]", before="defaults:\n  tcp:\n    quorum: 3\n"))
    assert found == [
        "FILE:9: services[0].locations: quorum 3 is more than the 2 locations listed "
        "(quorum from defaults.tcp.quorum, line 3)"
    ]


def test_quorum_and_locations_both_from_defaults_are_one_issue_there(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        defaults:
          locations: [a, b]
          quorum: 3
        services:
          - {name: web, type: tcp, host: h, port: 80}
          - {name: db, type: tcp, host: h, port: 5432}
        """,
    )
    assert found == ["FILE:3: defaults.quorum: quorum 3 is more than the 2 locations listed"]


@pytest.mark.parametrize("quorum", ["1", "2", "all"])
def test_a_quorum_up_to_the_locations_or_all_is_taken(tmp_path: Path, quorum: str) -> None:
    config = load(
        tmp_path,
        f"services:\n  - {{name: web, type: tcp, host: h, port: 80, locations: [a, b],"
        f" quorum: {quorum}}}\n",
    )
    assert config.services[0].quorum == (quorum if quorum == "all" else int(quorum))


@pytest.mark.parametrize(
    ("quorum", "message"),
    [
        ("0", "must be at least 1, got 0"),
        ("33", "must be at most 32, got 33"),
        ("most", "expected an integer or all, got 'most'"),
    ],
)
def test_a_quorum_is_1_to_32_or_all(tmp_path: Path, quorum: str, message: str) -> None:
    assert issues(tmp_path, f"defaults:\n  quorum: {quorum}\n") == [
        f"FILE:2: defaults.quorum: {message}"
    ]
    assert issues(tmp_path, web("locations: [a, b]", f"quorum: {quorum}")) == [
        f"FILE:7: services[0].quorum: {message}"
    ]


def test_quorum_on_a_service_without_locations_is_an_error(tmp_path: Path) -> None:
    found = issues(tmp_path, web("quorum: all"))
    assert found == [
        "FILE:6: services[0].quorum: quorum is set but the service lists no locations "
        "(add locations, or drop quorum)"
    ]


def test_quorum_inherited_by_a_service_without_locations_is_fine(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        defaults: {quorum: 2}
        services:
          - {name: web, type: tcp, host: h, port: 80}
        """,
    )
    assert [(s.name, s.quorum, s.locations) for s in config.services] == [("web", 2, [])]


def test_at_is_reserved_in_a_service_name(tmp_path: Path) -> None:
    found = issues(tmp_path, web().replace("name: web", "name: web@eu-west"))
    assert found == [
        "FILE:2: services[0].name: 'web@eu-west': '@' is reserved for location checks "
        "(service@location)"
    ]


def test_locations_quorum_and_notify_partial_are_inherited(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        defaults:
          locations: [eu, us, ap]
          notify_partial: true
          http:
            quorum: all
        services:
          - {name: a, type: tcp, host: h, port: 1}
          - {name: b, type: http, url: "http://h/"}
          - {name: c, type: http, url: "http://h/", locations: [eu, us], quorum: 1,
             notify_partial: false}
          - {name: d, type: tcp, host: h, port: 1, locations: []}
        """,
    )
    got = {s.name: (s.locations, s.quorum, s.notify_partial) for s in config.listed_services}
    assert got == {
        "a": (["eu", "us", "ap"], None, True),
        "b": (["eu", "us", "ap"], "all", True),
        "c": (["eu", "us"], 1, False),
        "d": ([], None, True),
    }


def test_a_load_adds_a_location_check_after_each_service_with_locations(
    tmp_path: Path,
) -> None:
    config = load(
        tmp_path,
        """
        notifications:
          channels: {ops: {type: log}}
        defaults:
          notify: [ops]
          tags: [prod]
          sla: 99.9
        services:
          - {name: db, type: tcp, host: h, port: 5432}
          - name: web
            description: the shop
            type: tcp
            host: shop
            port: 443
            interval: 30s
            timeout: 3s
            locations: [eu-west, us-east]
            quorum: all
            notify_partial: true
            depends_on: [db]
            badge: true
            flap_guard: {failed: 5}
            thresholds:
              connect_ms: {warn: "200+"}
          - {name: mail, type: tcp, host: m, port: 25}
        """,
    )
    names = [s.name for s in config.services]
    assert names == ["db", "web", "web@eu-west", "web@us-east", "mail"]
    assert [s.name for s in config.listed_services] == ["db", "web", "mail"]
    web = config.service("web")
    assert web is not None
    # The service checks nothing itself: its status is combined at once, but for
    # unknown (too few locations reporting yet), which keeps the service's count.
    assert web.flap_guard == FlapGuard(ok=1, warn=1, error=1, failed=1, unknown=3)
    assert web.thresholds == {}
    assert (web.notify, web.depends_on, web.tags, web.sla, web.badge) == (
        ["ops"],
        ["db"],
        ["prod"],
        99.9,
        True,
    )
    assert (web.locations, web.quorum, web.notify_partial) == (["eu-west", "us-east"], "all", True)
    for location in ("eu-west", "us-east"):
        check = config.service(f"web@{location}")
        assert check is not None
        assert locations.split(check.name) == ("web", location)
        assert check.check == TcpSpec(host="shop", port=443)
        assert (check.interval, check.timeout) == (30.0, 3.0)
        assert check.flap_guard == FlapGuard(failed=5)
        assert check.thresholds == {"connect_ms": MetricThresholds.model_validate({"warn": "200+"})}
        assert check.notify is False
        assert (check.depends_on, check.tags, check.sla, check.badge) == ([], [], None, False)
        assert (check.locations, check.quorum, check.notify_partial) == ([], None, False)
        assert check.description == f"web from {location}"


def test_a_config_without_locations_lists_its_services_as_they_are(tmp_path: Path) -> None:
    config = load(tmp_path, "services:\n  - {name: a, type: tcp, host: h, port: 1}\n")
    assert config.listed_services is config.services


def test_the_names_live_in_the_config_package_and_pymon_locations_shows_them() -> None:
    assert locations.SEPARATOR == expansion.SEPARATOR == schema.SEPARATOR == "@"
    assert locations.expand is expansion.expand
    assert locations.at("web", "eu") == "web@eu"
    assert locations.split("web@eu") == ("web", "eu")
    assert locations.split("web") is None


TOKEN = "t0ken-t0ken-t0ken-1"
SHARED = (
    "a heartbeat service cannot be checked from locations: each location's check would "
    "share its token"
)


def test_a_heartbeat_cannot_have_locations(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        f"""
        defaults:
          heartbeat:
            locations: [a, b]
        services:
          - {{name: job, type: heartbeat, token: {TOKEN}, locations: [a]}}
          - {{name: job2, type: heartbeat, token: {TOKEN}x}}
        """,
    )
    assert found == [
        f"FILE:3: defaults.heartbeat.locations: {SHARED}",
        f"FILE:5: services[0].locations: {SHARED}",
    ]


def test_a_heartbeat_does_not_take_the_locations_of_defaults(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        f"""
        defaults: {{locations: [a, b]}}
        services:
          - {{name: job, type: heartbeat, token: {TOKEN}}}
          - {{name: web, type: tcp, host: h, port: 80}}
        """,
    )
    assert [(s.name, s.locations) for s in config.services] == [
        ("job", []),
        ("web", ["a", "b"]),
        ("web@a", []),
        ("web@b", []),
    ]
