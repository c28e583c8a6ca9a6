"""Paging tokens of the REST API (reference §2.6)."""

from __future__ import annotations

import base64

import pytest

from bacalhau.api.paging import PagingToken, PagingTokenError, next_page_token

pytestmark = pytest.mark.unit


def test_token_encoding_is_unpadded_urlsafe_base64_of_the_reference_fields() -> None:
    token = PagingToken("created_at", True, 10, 20).encode()
    assert "=" not in token
    padded = token + "=" * (-len(token) % 4)
    assert base64.urlsafe_b64decode(padded).decode() == "created_at:Y:10:20"
    assert PagingToken.decode(token) == PagingToken("created_at", True, 10, 20)


@pytest.mark.parametrize("token", [
    PagingToken("", False, 0, 0), PagingToken("modified_at", False, 1, 999),
    PagingToken("id", True, 100, 5),
])
def test_round_trip(token: PagingToken) -> None:
    assert PagingToken.decode(token.encode()) == token


def test_decodes_tokens_written_by_go_with_raw_url_encoding() -> None:
    go_token = base64.urlsafe_b64encode(b"created_at:N:5:5").rstrip(b"=").decode()
    assert PagingToken.decode(go_token) == PagingToken("created_at", False, 5, 5)


@pytest.mark.parametrize("bad", [
    "!!!", base64.urlsafe_b64encode(b"a:b").decode(),
    base64.urlsafe_b64encode(b"x:Q:1:2").decode(),
    base64.urlsafe_b64encode(b"x:N:one:2").decode(),
    base64.urlsafe_b64encode(b"x:N:1:-2").decode(),
])
def test_malformed_tokens_raise_a_400_naming_the_param(bad: str) -> None:
    with pytest.raises(PagingTokenError) as err:
        PagingToken.decode(bad)
    assert err.value.status == 400
    assert str(err.value).startswith("next_token: invalid paging token")


def test_next_page_token_only_when_more_rows_exist() -> None:
    assert next_page_token(sort_by="created_at", reverse=False, limit=2, offset=4,
                           returned=2, more=False) == ""
    token = next_page_token(sort_by="created_at", reverse=False, limit=2, offset=4,
                            returned=2, more=True)
    assert PagingToken.decode(token).offset == 6
