"""Reading (never trusting) the claims of a JWT: its ``exp`` and ``sub``.

keyfob does not verify signatures: it only reads when a token it was given
expires and whose it is. Cheap enough for the cached-token path.
"""

from __future__ import annotations

import base64
import binascii
import json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def claims(token: str) -> dict[str, Any] | None:
    """The payload of a compact JWS, or ``None`` if ``token`` is not one."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[1]:
        return None
    payload = parts[1]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def expiry(token: str) -> float | None:
    """The ``exp`` claim as epoch seconds, if there is a sane one."""
    data = claims(token)
    if data is None:
        return None
    exp = data.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    if not 0 < exp < 1e11:  # beyond year 5000: not a real expiry
        return None
    return float(exp)
