"""The http check's JSON, header, auth and body keys, and certificate expiry over https."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme
from aiohttp import web
from pydantic import ValidationError

from pymon.checks import REGISTRY
from pymon.checks.http import HttpSpec
from pymon.engine.rules import evaluate
from pymon.model import Status
from tests.checks.targets import RunCheck
from tests.checks.tls_targets import leaf_context, self_signed_context, serve_app

DOCUMENT = {
    "status": "ok",
    "count": 2,
    "ratio": 0.5,
    "up": True,
    "nothing": None,
    "version": "1.2.3-beta",
    "items": [{"name": "alpha", "tags": ["a", "b"]}, {"name": "beta"}],
}
USER, PASSWORD = "monitor", "s3cret pass"


async def _json(request: web.Request) -> web.Response:
    return web.json_response(DOCUMENT)


async def _not_json(request: web.Request) -> web.Response:
    return web.Response(text="<html>oops</html>", content_type="text/html")


async def _deep(request: web.Request) -> web.Response:
    return web.Response(text="[" * 100_000, content_type="application/json")


async def _private(request: web.Request) -> web.Response:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Basic" or base64.b64decode(credentials) != f"{USER}:{PASSWORD}".encode():
        raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Basic realm="pymon"'})
    return web.Response(text=f"welcome {USER}")


async def _echo(request: web.Request) -> web.Response:
    return web.Response(text=f"{request.method} {request.content_type}: {await request.text()}")


async def _headers(request: web.Request) -> web.Response:
    return web.Response(text="", headers={"X-Version": "1.2.3", "Cache-Control": "no-store"})


def _app() -> web.Application:
    app = web.Application()
    app.router.add_get("/json", _json)
    app.router.add_get("/not-json", _not_json)
    app.router.add_get("/deep", _deep)
    app.router.add_get("/private", _private)
    app.router.add_route("*", "/echo", _echo)
    app.router.add_get("/headers", _headers)
    return app


@pytest.fixture
async def url() -> AsyncIterator[str]:
    """Base URL of this module's app over plain HTTP."""
    async with serve_app(_app()) as port:
        yield f"http://127.0.0.1:{port}"


# -- expect_json -------------------------------------------------------------------


async def test_json_expectations_that_hold(check: RunCheck, url: str) -> None:
    expect = [
        {"path": "status", "equals": "ok"},
        {"path": "count", "equals": 2.0},
        {"path": "up", "equals": True},
        {"path": "nothing", "equals": None},
        {"path": "items.0.name", "equals": "alpha"},
        {"path": "items.-1", "equals": {"name": "beta"}},
        {"path": "items.0.tags", "contains": "b"},
        {"path": "version", "contains": "beta"},
        {"path": "items.1.name", "exists": True},
        {"path": "items.1.tags", "exists": False},
    ]
    result = await check("http", {"url": f"{url}/json", "expect_json": expect})
    assert result.status is Status.OK, result.message


async def test_json_value_that_differs_names_path_expected_and_actual(
    check: RunCheck, url: str
) -> None:
    expect = [{"path": "items.1.name", "equals": "gamma"}]
    result = await check("http", {"url": f"{url}/json", "expect_json": expect})
    assert result.status is Status.ERROR
    assert result.message.startswith('JSON items.1.name is "beta", expected "gamma" (HTTP 200 OK, ')


async def test_json_true_is_not_one(check: RunCheck, url: str) -> None:
    result = await check("http", {"url": f"{url}/json", "expect_json": {"path": "up", "equals": 1}})
    assert result.status is Status.ERROR
    assert result.message.startswith("JSON up is true, expected 1 (")


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("items.5.name", "items is a list of 2"),
        ("items.0.nme", "items.0 has no key 'nme'"),
        ("status.code", "status is a string"),
        ("state", "the document has no key 'state'"),
    ],
)
async def test_json_path_that_is_not_there(check: RunCheck, url: str, path: str, why: str) -> None:
    expect = [{"path": path, "equals": "x"}]
    result = await check("http", {"url": f"{url}/json", "expect_json": expect})
    assert result.status is Status.ERROR
    assert result.message.startswith(f"JSON {path} missing ({why}) (HTTP 200 OK, ")


async def test_json_value_expected_absent(check: RunCheck, url: str) -> None:
    expect = [{"path": "items.0.tags", "exists": False}]
    result = await check("http", {"url": f"{url}/json", "expect_json": expect})
    assert result.status is Status.ERROR
    assert result.message.startswith('JSON items.0.tags present (["a", "b"]), expected absent (')


async def test_json_list_without_the_item(check: RunCheck, url: str) -> None:
    expect = [{"path": "items.0.tags", "contains": "c"}]
    result = await check("http", {"url": f"{url}/json", "expect_json": expect})
    assert result.status is Status.ERROR
    assert result.message.startswith('JSON items.0.tags is ["a", "b"], expected it to contain "c"')


async def test_json_number_cannot_contain(check: RunCheck, url: str) -> None:
    expect = [{"path": "count", "contains": 2}]
    result = await check("http", {"url": f"{url}/json", "expect_json": expect})
    assert result.status is Status.ERROR
    assert result.message.startswith("JSON count is a number, which cannot contain 2 (")


async def test_body_that_is_not_json(check: RunCheck, url: str) -> None:
    expect = [{"path": "status", "equals": "ok"}]
    result = await check("http", {"url": f"{url}/not-json", "expect_json": expect})
    assert result.status is Status.ERROR
    assert result.message.startswith(
        "body is not JSON: Expecting value: line 1 column 1 (char 0) (HTTP 200 OK, "
    )


async def test_json_nested_beyond_reason(check: RunCheck, url: str) -> None:
    expect = [{"path": "status", "equals": "ok"}]
    result = await check("http", {"url": f"{url}/deep", "expect_json": expect})
    assert result.status is Status.ERROR
    assert result.message.startswith("body is not JSON pymon can read: nested too deeply (")


@pytest.mark.parametrize(
    ("item", "why"),
    [
        ({"path": "a", "equals": 1, "exists": True}, "give exactly one of equals, contains or"),
        ({"path": "a"}, "give exactly one of equals, contains or exists for path 'a'"),
        ({"path": "a..b", "exists": True}, "path 'a..b' has an empty part"),
        ({"path": "a", "equal": 1}, "Extra inputs are not permitted"),
    ],
)
def test_bad_json_expectation_is_a_config_error(item: dict[str, object], why: str) -> None:
    with pytest.raises(ValidationError) as info:
        HttpSpec.model_validate({"url": "http://x/", "expect_json": [item]})
    assert why in str(info.value)


def test_single_items_need_no_list() -> None:
    # As ``pymon check http --contains ok --expect-json '{path: a, exists: true}'`` gives them.
    spec = HttpSpec.model_validate(
        {"url": "http://x/", "contains": "ok", "expect_json": {"path": "a", "exists": True}}
    )
    assert spec.contains == ["ok"]
    assert [item.path for item in spec.expect_json] == ["a"]


# -- expect_header -----------------------------------------------------------------


async def test_expected_headers_present(check: RunCheck, url: str) -> None:
    expect = {"x-version": "1.2.3", "Cache-Control": {"regex": "no-(store|cache)"}}
    result = await check("http", {"url": f"{url}/headers", "expect_header": expect})
    assert result.status is Status.OK, result.message


async def test_missing_header_is_named(check: RunCheck, url: str) -> None:
    spec = {"url": f"{url}/headers", "expect_header": {"X-Frame-Options": "DENY"}}
    result = await check("http", spec)
    assert result.status is Status.ERROR
    assert result.message.startswith("header X-Frame-Options missing (HTTP 200 OK, ")


async def test_header_with_another_value(check: RunCheck, url: str) -> None:
    result = await check("http", {"url": f"{url}/headers", "expect_header": {"X-Version": "2"}})
    assert result.status is Status.ERROR
    assert result.message.startswith("header X-Version is '1.2.3', expected '2' (")


async def test_header_not_matching_regex(check: RunCheck, url: str) -> None:
    spec = {"url": f"{url}/headers", "expect_header": {"X-Version": {"regex": r"^2\."}}}
    result = await check("http", spec)
    assert result.status is Status.ERROR
    assert result.message.startswith(
        "header X-Version is '1.2.3', expected to match regex '^2\\\\.' ("
    )


def test_bad_header_regex_is_a_config_error() -> None:
    with pytest.raises(ValidationError) as info:
        HttpSpec.model_validate({"url": "http://x/", "expect_header": {"A": {"regex": "a("}}})
    assert "regex ('a(') is not a valid regular expression" in str(info.value)


# -- basic_auth --------------------------------------------------------------------


async def test_basic_auth_accepted(check: RunCheck, url: str) -> None:
    spec = {
        "url": f"{url}/private",
        "basic_auth": {"username": USER, "password": PASSWORD},
        "contains": [f"welcome {USER}"],
    }
    result = await check("http", spec)
    assert result.status is Status.OK, result.message
    assert result.metrics["status_code"] == 200


async def test_basic_auth_refused_warns_through_status_code(check: RunCheck, url: str) -> None:
    spec = {"url": f"{url}/private", "basic_auth": {"username": USER, "password": "wrong"}}
    result = await check("http", spec)
    assert result.metrics["status_code"] == 401
    status, message = evaluate(result, REGISTRY["http"].thresholds)
    assert status is Status.WARN
    assert message.startswith("status_code 401 is warn (")
    assert "wrong" not in message


def test_password_is_hidden_in_the_spec() -> None:
    spec = HttpSpec.model_validate(
        {"url": "http://x/", "basic_auth": {"username": USER, "password": PASSWORD}}
    )
    assert PASSWORD not in repr(spec)
    assert PASSWORD not in str(spec.model_dump(mode="json"))


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        (
            {
                "headers": {"authorization": "Bearer x"},
                "basic_auth": {"username": "a", "password": "b"},
            },
            "give basic_auth or an Authorization header, not both",
        ),
        (
            {"url": "http://u:p@x/", "basic_auth": {"username": "a", "password": "b"}},
            "give basic_auth or credentials in the URL, not both",
        ),
        (
            {"basic_auth": {"username": "a:b", "password": "c"}},
            "a Basic auth username cannot contain ':'",
        ),
    ],
)
def test_conflicting_credentials_are_a_config_error(spec: dict[str, object], why: str) -> None:
    with pytest.raises(ValidationError) as info:
        HttpSpec.model_validate({"url": "http://x/", **spec})
    assert why in str(info.value)


# -- request body ------------------------------------------------------------------


async def test_body_is_sent(check: RunCheck, url: str) -> None:
    spec = {
        "url": f"{url}/echo",
        "method": "PUT",
        "body": "hello pymon",
        "contains": ["PUT text/plain: hello pymon"],
    }
    result = await check("http", spec)
    assert result.status is Status.OK, result.message


async def test_body_content_type_from_headers(check: RunCheck, url: str) -> None:
    spec = {
        "url": f"{url}/echo",
        "method": "POST",
        "headers": {"Content-Type": "application/xml"},
        "body": "<ping/>",
        "contains": ["POST application/xml: <ping/>"],
    }
    result = await check("http", spec)
    assert result.status is Status.OK, result.message


async def test_json_body_is_sent_as_json(check: RunCheck, url: str) -> None:
    body = {"probe": [1, True, None]}
    spec = {
        "url": f"{url}/echo",
        "method": "PATCH",
        "json_body": body,
        "contains": [f"PATCH application/json: {json.dumps(body)}"],
    }
    result = await check("http", spec)
    assert result.status is Status.OK, result.message


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ({"body": "x"}, "a GET request sends no body; set method (POST, PUT, PATCH...)"),
        ({"method": "HEAD", "json_body": {}}, "a HEAD request sends no body"),
        ({"method": "POST", "body": "x", "json_body": 1}, "give body or json_body, not both"),
    ],
)
def test_misplaced_body_is_a_config_error(spec: dict[str, object], why: str) -> None:
    with pytest.raises(ValidationError) as info:
        HttpSpec.model_validate({"url": "http://x/", **spec})
    assert why in str(info.value)


# -- certificate expiry over https -------------------------------------------------


async def test_https_reports_cert_days_left(check: RunCheck, ca: trustme.CA) -> None:
    async with serve_app(_app(), leaf_context(ca, "127.0.0.1", days=90)) as port:
        result = await check("http", {"url": f"https://127.0.0.1:{port}/json"})
    assert result.status is Status.OK, result.message
    assert 89.98 <= result.metrics["cert_days_left"] < 90


async def test_https_certificate_about_to_expire_is_an_error(
    check: RunCheck, ca: trustme.CA
) -> None:
    async with serve_app(_app(), leaf_context(ca, "127.0.0.1", days=2)) as port:
        result = await check("http", {"url": f"https://127.0.0.1:{port}/json"})
    status, message = evaluate(result, REGISTRY["http"].thresholds)
    assert status is Status.ERROR
    assert message.startswith("cert_days_left 1.99 is error (-1000000-2.99) - HTTP 200 OK")


async def test_unverified_https_still_reports_cert_days_left(check: RunCheck) -> None:
    async with serve_app(_app(), self_signed_context()) as port:
        result = await check("http", {"url": f"https://127.0.0.1:{port}/json", "verify_tls": False})
    assert result.status is Status.OK, result.message
    assert result.metrics["cert_days_left"] > 300_000  # trustme CAs last until the year 3000


async def test_plain_http_has_no_cert_days_left(check: RunCheck, url: str) -> None:
    result = await check("http", {"url": f"{url}/json"})
    assert "cert_days_left" not in result.metrics


async def test_ca_file_trusts_a_private_ca(check: RunCheck, tmp_path: Path) -> None:
    private = trustme.CA()
    private.cert_pem.write_to_path(str(tmp_path / "private.pem"))
    async with serve_app(_app(), leaf_context(private, "127.0.0.1")) as port:
        spec = {"url": f"https://127.0.0.1:{port}/json", "ca_file": str(tmp_path / "private.pem")}
        result = await check("http", spec)
    assert result.status is Status.OK, result.message
