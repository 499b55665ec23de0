"""The http check over TLS, with certificates from a trustme CA the test session trusts."""

from __future__ import annotations

from pymon.model import Status
from tests.checks.targets import RunCheck


async def test_valid_certificate(check: RunCheck, https_urls: dict[str, str]) -> None:
    result = await check("http", {"url": f"{https_urls['valid']}/", "contains": ["Hello"]})
    assert result.status is Status.OK, result.message
    assert result.metrics["status_code"] == 200


async def test_expired_certificate(check: RunCheck, https_urls: dict[str, str]) -> None:
    result = await check("http", {"url": f"{https_urls['expired']}/"})
    assert result.status is Status.FAILED
    assert result.message.startswith("TLS certificate verify failed: certificate has expired")


async def test_self_signed_certificate(check: RunCheck, https_urls: dict[str, str]) -> None:
    result = await check("http", {"url": f"{https_urls['self_signed']}/"})
    assert result.status is Status.FAILED
    assert result.message.startswith("TLS certificate verify failed: self-signed certificate")


async def test_certificate_for_another_host(check: RunCheck, https_urls: dict[str, str]) -> None:
    result = await check("http", {"url": f"{https_urls['wrong_host']}/"})
    assert result.status is Status.FAILED
    assert result.message.startswith(
        "TLS certificate verify failed: IP address mismatch, "
        "certificate is not valid for '127.0.0.1' ("
    )


async def test_unverified_accepts_self_signed(check: RunCheck, https_urls: dict[str, str]) -> None:
    spec = {"url": f"{https_urls['self_signed']}/", "verify_tls": False, "contains": ["Hello"]}
    result = await check("http", spec)
    assert result.status is Status.OK, result.message


async def test_plain_http_server_on_https_url(check: RunCheck, web_url: str) -> None:
    result = await check("http", {"url": web_url.replace("http:", "https:") + "/"})
    assert result.status is Status.FAILED
    assert result.message.startswith("TLS handshake failed: ")
