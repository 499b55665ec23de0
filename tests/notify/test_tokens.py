"""Incident tokens: made from the incident id, checked in constant time, refused when odd."""

from __future__ import annotations

import pytest

from pymon.notify.tokens import AckTokens, message_id, tokens_in

TOKENS = AckTokens(b"k" * 32)


def test_the_token_of_an_incident_is_valid_in_any_case() -> None:
    token = TOKENS.token("inc-1")
    assert TOKENS.valid("inc-1", token)
    assert TOKENS.valid("inc-1", token.upper())
    assert not TOKENS.valid("inc-2", token)


@pytest.mark.parametrize("given", ["", "zz" * 10, "é" * 20, "0" * 19, "0" * 21])
def test_anything_that_is_not_a_token_is_refused(given: str) -> None:
    assert not TOKENS.valid("inc-1", given)


def test_replies_carry_the_token_in_their_references_and_address() -> None:
    token = TOKENS.token("inc-1")
    references = message_id("inc-1:problem:1", "mail", token, "example.org")
    assert tokens_in(f"{references} ack+{token.upper()}@example.org") == [token]
