"""The token value and its one lifecycle question, ``Token.state``.

This module is on the command line's cached-token path, which is measured in
milliseconds: it imports nothing but ``enum`` and ``time`` (``dataclasses``
would cost 12 ms there, ``typing`` 2.6 ms), and builds ``datetime`` values
only on demand.
"""

from __future__ import annotations

import enum
import time
from datetime import UTC

TYPE_CHECKING = False  # typing itself costs 2.6 ms on the cached-token path
if TYPE_CHECKING:
    from datetime import datetime
    from typing import Any

DEFAULT_LEEWAY = 60.0


class TokenState(enum.Enum):
    """What a token is good for right now (google-auth's FRESH/STALE/INVALID)."""

    FRESH = "fresh"  # use it
    STALE = "stale"  # still accepted, but due for refresh
    EXPIRED = "expired"  # do not send it


class Token:
    """An access token as the provider issued it.

    ``expires`` and ``issued`` are epoch seconds (``None``: unknown / never);
    ``refresh_ratio`` makes the token due for refresh once less than that share
    of its lifetime is left (TreeSnap: 0.1). ``repr`` never shows a secret.
    """

    __slots__ = (
        "access_token",
        "expires",
        "issued",
        "refresh_expires",
        "refresh_ratio",
        "refresh_token",
        "scope",
        "token_type",
    )

    def __init__(
        self,
        access_token: str,
        token_type: str = "Bearer",
        *,
        expires: float | None = None,
        issued: float | None = None,
        refresh_token: str | None = None,
        refresh_expires: float | None = None,
        scope: str | None = None,
        refresh_ratio: float = 0.0,
    ) -> None:
        self.access_token = access_token
        # RFC 6750 names the scheme "Bearer"; Twitter answers "bearer".
        self.token_type = "Bearer" if token_type.lower() == "bearer" else token_type
        self.expires = expires
        self.issued = issued
        self.refresh_token = refresh_token
        self.refresh_expires = refresh_expires
        self.scope = scope
        self.refresh_ratio = refresh_ratio

    @property
    def expires_at(self) -> datetime | None:
        """When the token expires, as an aware UTC datetime; ``None`` if it does not."""
        if self.expires is None:
            return None
        from datetime import datetime

        return datetime.fromtimestamp(self.expires, UTC)

    @property
    def authorization(self) -> str:
        """The value of the ``Authorization`` header: ``"Bearer …"``."""
        return f"{self.token_type} {self.access_token}"

    def fresh_until(self, leeway: float | None = None) -> float:
        """Epoch second from which ``state`` stops answering FRESH."""
        if self.expires is None:
            return float("inf")
        margin = DEFAULT_LEEWAY if leeway is None else leeway
        if self.issued is not None and self.expires > self.issued:
            lifetime = self.expires - self.issued
            # A leeway longer than half the lifetime would make a short-lived
            # token due for refresh the moment it arrives.
            margin = min(margin, lifetime / 2)
            margin = max(margin, lifetime * self.refresh_ratio)
        return self.expires - margin

    def state(self, now: float | None = None, leeway: float | None = None) -> TokenState:
        """FRESH, STALE (within ``leeway`` seconds of expiry, or inside the
        refresh share of its lifetime) or EXPIRED; the one answer used by the
        broker and by the command line alike."""
        if self.expires is None:
            return TokenState.FRESH
        if now is None:
            now = time.time()
        if now >= self.expires:
            return TokenState.EXPIRED
        if now >= self.fresh_until(leeway):
            return TokenState.STALE
        return TokenState.FRESH

    def can_refresh(self, now: float | None = None) -> bool:
        """Whether the refresh token (if any) is still worth trying."""
        if not self.refresh_token:
            return False
        if self.refresh_expires is None:
            return True
        return (time.time() if now is None else now) < self.refresh_expires

    def replace(self, **changes: Any) -> Token:
        fields = {name: getattr(self, name) for name in self.__slots__}
        fields.update(changes)
        access_token = fields.pop("access_token")
        token_type = fields.pop("token_type")
        return Token(access_token, token_type, **fields)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Token:
        data = dict(data)
        return cls(data.pop("access_token"), data.pop("token_type", "Bearer"), **data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Token):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        expires = "never" if self.expires is None else _iso(self.expires)
        refresh = ", refresh_token=<hidden>" if self.refresh_token else ""
        scope = f", scope={self.scope!r}" if self.scope else ""
        return f"<Token {self.token_type} access_token=<hidden> expires={expires}{scope}{refresh}>"

    __str__ = __repr__


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
