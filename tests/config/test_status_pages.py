"""``status_pages`` and ``badge``: a valid page loads; every mistake names its key path
and line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.config.helpers import issues, load

SERVICES = """\
services:
  - {name: web-ok, type: tcp, host: 127.0.0.1, port: 80, tags: [web]}
  - {name: api-1, type: tcp, host: 127.0.0.1, port: 81, tags: [api]}
  - {name: api-2, type: tcp, host: 127.0.0.1, port: 82}
"""


def page_issues(tmp_path: Path, pages: str) -> list[str]:
    """The issues of a config of :data:`SERVICES` and the ``status_pages`` items ``pages``."""
    return issues(tmp_path, SERVICES + "status_pages:\n" + pages)


def test_a_valid_page_loads_with_its_components(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        defaults:
          tcp: {tags: [api]}
        services:
          - {name: web-ok, type: tcp, host: 127.0.0.1, port: 80, badge: true}
          - {name: api-1, type: tcp, host: 127.0.0.1, port: 81}
        status_pages:
          - slug: public
            title: Example status
            description: All of it.
            logo: https://example.org/logo.png
            groups:
              - name: Web
                components:
                  - {name: Website, service: web-ok}
                  - {name: API, tags: [api]}   # inherited from defaults.tcp
        """,
    )
    (page,) = config.status_pages
    assert (page.slug, page.title, page.logo, page.show_details) == (
        "public",
        "Example status",
        "https://example.org/logo.png",
        False,
    )
    assert [(c.name, c.selector) for c in page.components()] == [
        ("Website", ("web-ok",)),
        ("API", ("api",)),
    ]
    assert [s.badge for s in config.services] == [True, False]


def test_badge_is_inherited_from_defaults(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        defaults: {badge: true}
        services:
          - {name: a, type: tcp, host: 127.0.0.1, port: 80}
          - {name: b, type: tcp, host: 127.0.0.1, port: 81, badge: false}
        """,
    )
    assert [s.badge for s in config.services] == [True, False]


def test_unknown_service_and_unused_tag_name_their_key_path_and_line(tmp_path: Path) -> None:
    found = page_issues(
        tmp_path,
        """\
  - slug: public
    title: T
    groups:
      - name: G
        components:
          - {name: Website, service: web-okk}
          - {name: API, tags: [api, apx]}
""",
    )
    assert found == [
        "FILE:11: status_pages[0].groups[0].components[0].service: "
        "unknown service 'web-okk' (did you mean 'web-ok'?)",
        "FILE:12: status_pages[0].groups[0].components[1].tags[1]: "
        "no service has the tag 'apx' (tags: api, web)",
    ]


def test_duplicate_slug_names_the_first(tmp_path: Path) -> None:
    found = page_issues(
        tmp_path,
        """\
  - {slug: public, title: A, groups: [{name: G, components: [{name: W, service: web-ok}]}]}
  - {slug: public, title: B, groups: [{name: G, components: [{name: W, service: web-ok}]}]}
""",
    )
    assert found == [
        "FILE:7: status_pages[1].slug: duplicate slug 'public' (first defined at line 6)"
    ]


def test_shape_mistakes_name_their_key_path_and_line(tmp_path: Path) -> None:
    found = page_issues(
        tmp_path,
        """\
  - slug: Not a slug
    title: T
    logo: "javascript:alert(1)"
    groups:
      - name: G
        components:
          - {name: Both, service: web-ok, tags: [web]}
          - {name: Neither}
          - {service: web-ok}
  - slug: empty
    title: T
    groups: []
""",
    )
    assert found == [
        "FILE:6: status_pages[0].slug: 'Not a slug' is not a slug: 1 to 63 of a-z, 0-9, - and _, "
        "starting with a letter or digit",
        "FILE:8: status_pages[0].logo: 'javascript:alert(1)' is not an http:// or https:// URL",
        "FILE:12: status_pages[0].groups[0].components[0]: "
        "give exactly one of service (a name) or tags (a list)",
        "FILE:13: status_pages[0].groups[0].components[1]: "
        "give exactly one of service (a name) or tags (a list)",
        "FILE:14: status_pages[0].groups[0].components[2].name: field required",
        "FILE:17: status_pages[1].groups: must have at least 1 items, got a list",
    ]


def _page(slug: str, components: int) -> dict[str, object]:
    return {
        "slug": slug,
        "title": "T",
        "groups": [
            {
                "name": "G",
                "components": [{"name": f"c{k}", "service": "a"} for k in range(components)],
            }
        ],
    }


def _config(pages: list[dict[str, object]]) -> str:
    return json.dumps(
        {
            "services": [{"name": "a", "type": "tcp", "host": "127.0.0.1", "port": 80}],
            "status_pages": pages,
        },
        indent=1,
    )


def test_counts_are_bounded(tmp_path: Path) -> None:
    too_many_pages = issues(tmp_path, _config([_page(f"p{k}", 1) for k in range(51)]))
    assert len(too_many_pages) == 1
    assert too_many_pages[0].startswith("FILE:10: status_pages: must have at most 50 items")
    too_many_components = issues(tmp_path, _config([_page("p", 300), _page("q", 501)]))
    assert [i.split(": ", 2)[1] for i in too_many_components] == [
        "status_pages[1].groups[0].components"
    ]
    assert "must have at most 500 items" in too_many_components[0]
    split = _page("r", 300)
    split["groups"] = [*split["groups"], *split["groups"]]  # type: ignore[misc]
    over = issues(tmp_path, _config([split]))
    assert len(over) == 1
    assert over[0].endswith(
        "status_pages[0]: a status page may have at most 500 components, this one has 600"
    )
