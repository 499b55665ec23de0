"""Links in notices lead to the service's page, under the base path or the public URL."""

from __future__ import annotations

from pymon.config.load import load_config_text
from pymon.notify.notifier import service_url


def test_the_link_is_the_service_page_under_the_base_path() -> None:
    config = load_config_text('web: {listen: "127.0.0.1:8080", base_path: /pymon}\n')
    assert service_url(config, "web 1/<b>") == (
        "http://127.0.0.1:8080/pymon/services/web%201%2F%3Cb%3E"
    )


def test_the_public_url_wins() -> None:
    config = load_config_text("web: {public_url: 'https://mon.example.org/ops/'}\n")
    assert service_url(config, "db") == "https://mon.example.org/ops/services/db"
