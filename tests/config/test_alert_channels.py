"""The apprise, pagerduty and opsgenie channels' config: keys checked with their path, URLs
and keys from the environment, secrets never shown in an error."""

from __future__ import annotations

from pathlib import Path

from pymon.config.schema import AppriseChannel, OpsgenieChannel, PagerDutyChannel
from tests.config.helpers import issues, load

TOKEN_URL = "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-100123"


def test_the_three_channels_load_with_their_defaults_and_secrets_from_the_environment(
    tmp_path: Path,
) -> None:
    config = load(
        tmp_path,
        """
        notifications:
          channels:
            chat: {type: apprise, urls: ["${CHAT_URL}", "json://127.0.0.1:8080/hook"]}
            pager: {type: pagerduty, routing_key: "${PD_KEY}", severity: {warn: info}}
            genie: {type: opsgenie, api_key: "${GENIE_KEY}", priority: {failed: P2}}
        services: []
        """,
        env={"CHAT_URL": TOKEN_URL, "PD_KEY": "pd-secret", "GENIE_KEY": "genie-secret"},
    )
    channels = config.notifications.channels
    chat, pager, genie = channels["chat"], channels["pager"], channels["genie"]
    assert isinstance(chat, AppriseChannel) and chat.urls[0] == TOKEN_URL
    assert (chat.timeout, chat.acknowledgements) == (30.0, False)
    assert isinstance(pager, PagerDutyChannel) and pager.routing_key == "pd-secret"
    assert pager.api_url == "https://events.pagerduty.com/v2/enqueue"
    assert (pager.severity, pager.acknowledgements) == ({"warn": "info"}, True)
    assert isinstance(genie, OpsgenieChannel) and genie.api_key == "genie-secret"
    assert (genie.api_url, genie.priority) == ("https://api.opsgenie.com", {"failed": "P2"})


def test_bad_keys_are_named_by_their_path_and_secrets_are_not_shown(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        notifications:
          channels:
            chat: {type: apprise, urls: ["json://127.0.0.1/x", "nosuch://s3cr3t-in-url/x"]}
            empty: {type: apprise, urls: []}
            pager: {type: pagerduty, routing_key: 12, api_url: "ftp://x", colour: red}
            genie: {type: opsgenie, api_key: "k", priority: {failed: P9, ok: P1}}
        services: []
        """,
    )
    text = "\n".join(found)
    assert (
        "FILE:3: notifications.channels.chat.urls[1]: not a URL apprise can use"
        " (scheme 'nosuch'; see apprise's list of services)" in found
    )
    assert "s3cr3t-in-url" not in text
    assert "FILE:4: notifications.channels.empty.urls: " in text
    assert "FILE:5: notifications.channels.pager.colour: unknown key" in text
    assert "FILE:5: notifications.channels.pager.api_url: 'ftp://x' is not an http" in text
    assert "notifications.channels.pager.routing_key: " in text
    assert "12" not in text.split("routing_key: ", 1)[1].split("\n", 1)[0]
    assert "notifications.channels.genie.priority.failed: expected one of P1" in text
    assert "notifications.channels.genie.priority.ok" in text and "got 'ok'" in text


def test_at_most_fifty_urls(tmp_path: Path) -> None:
    urls = ", ".join(f'"json://127.0.0.1:{8000 + i}/x"' for i in range(51))
    found = issues(
        tmp_path, f"notifications: {{channels: {{chat: {{type: apprise, urls: [{urls}]}}}}}}"
    )
    [problem] = found
    assert problem.startswith("FILE:1: notifications.channels.chat.urls: ")
    assert "50" in problem
