"""The API fuzzed against its own OpenAPI document (schemathesis), in process on the
fake port, with a token and without one: no answer may be a 5xx, and every answer's
status, content type, headers and body must be what the document declares.

Deterministic (hypothesis derandomized: the same cases every run) and bounded (a few
examples per operation), so it stays a quick, repeatable part of the suite. The live
stream (``/api/v1/stream``) never ends, so it is left to tests/web/test_stream.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, settings

from pymon.model import Status
from tests.support.port import fake_port

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is in the dev extra")

from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from pymon.web.app import create_app  # noqa: E402

TOKEN = "fuzz-t0ken"
TOKEN_HASH = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(TOKEN)
CONFIG = f"""
web:
  auth: {{tokens: [{{name: fuzz, token_hash: "{TOKEN_HASH}"}}]}}
defaults: {{flap_guard: {{failed: 1}}}}
maintenance:
  - {{name: Nightly, services: [db], cron: "0 3 * * *", duration: 1h}}
services:
  - {{name: web, type: tcp, host: 127.0.0.1, port: 9, tags: [core]}}
  - {{name: db, type: tcp, host: 127.0.0.1, port: 9}}
  - {{name: job, type: heartbeat, token: job-token-0123456789, interval: 1h}}
"""
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
FUZZ = settings(
    max_examples=10,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _app() -> Any:
    port = fake_port(CONFIG)
    # An open incident, so acknowledging and taking it back are reached too.
    port.check("web", Status.FAILED, "connection refused")
    return create_app(port)


schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", _app()).exclude(
    path="/api/v1/stream"
)
each_operation: Callable[[Callable[[Any], None]], Callable[[Any], None]] = schema.parametrize()


@each_operation
@FUZZ
def test_the_api_with_a_token_answers_as_documented(case: Any) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS)


@each_operation
@FUZZ
def test_the_api_without_a_token_answers_as_documented(case: Any) -> None:
    case.call_and_validate(checks=CHECKS)
