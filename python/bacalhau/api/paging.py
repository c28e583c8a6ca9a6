"""Paging tokens of the REST API (reference §2.6).

A `NextToken` is the unpadded URL-safe base64 of `"<SortBy>:<Y|N>:<Limit>:<Offset>"` (Y when the
order is reversed). A client passes it back as `next_token`; its values then replace the query's
own sort, order, limit and offset, so that every page of one listing uses the same settings.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from bacalhau.errors import ValidationError


class PagingTokenError(ValidationError):
    """A `next_token` that this server did not produce."""


@dataclass(frozen=True, slots=True)
class PagingToken:
    sort_by: str = ""
    reverse: bool = False
    limit: int = 0
    offset: int = 0

    def encode(self) -> str:
        text = f"{self.sort_by}:{'Y' if self.reverse else 'N'}:{self.limit}:{self.offset}"
        return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()

    @classmethod
    def decode(cls, token: str, param: str = "next_token") -> PagingToken:
        """Parse a token; raise a ValidationError naming `param` when it is malformed."""
        padded = token + "=" * (-len(token) % 4)
        try:
            text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
        except (binascii.Error, UnicodeError, ValueError):
            raise PagingTokenError(f"{param}: invalid paging token {token!r}") from None
        parts = text.split(":")
        if len(parts) != 4 or parts[1] not in ("Y", "N"):
            raise PagingTokenError(f"{param}: invalid paging token {token!r}")
        try:
            limit, offset = int(parts[2]), int(parts[3])
        except ValueError:
            raise PagingTokenError(f"{param}: invalid paging token {token!r}") from None
        if not (0 <= limit < 2**63 and 0 <= offset < 2**63):
            raise PagingTokenError(f"{param}: invalid paging token {token!r}")
        return cls(sort_by=parts[0], reverse=parts[1] == "Y", limit=limit, offset=offset)


def next_page_token(
    *, sort_by: str, reverse: bool, limit: int, offset: int, returned: int, more: bool
) -> str:
    """The token for the page after one that started at `offset` and held `returned` items;
    empty when `more` is false (no rows beyond this page)."""
    if not more:
        return ""
    return PagingToken(sort_by, reverse, limit, offset + returned).encode()
