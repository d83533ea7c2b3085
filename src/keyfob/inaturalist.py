"""A drop-in for pyinaturalist's auth functions, backed by keyfob.

Same names, signatures, environment variables (``INAT_USERNAME``,
``INAT_PASSWORD``, ``INAT_APP_ID``, ``INAT_APP_SECRET``) and keyring entries
(service ``/inaturalist``, names ``username``, ``password``, ``app_id``,
``app_secret``), so a pyinaturalist user's stored credentials just work::

    from keyfob.inaturalist import get_access_token
    token = get_access_token()          # a JWT, cached for its 24 hours

Explicit arguments win over the environment, which wins over the keyring.
Unlike pyinaturalist, a cached token never crosses accounts, and
``refresh=True`` really gets a new JWT. Missing or refused credentials raise
:class:`AuthenticationError`, which is a ``requests.HTTPError`` as there.
"""

from __future__ import annotations

from requests import HTTPError

from keyfob import broker as _broker
from keyfob.errors import CredentialsMissing, InvalidCredentials, KeyfobError

KEYRING_KEY = "/inaturalist"
__all__ = [
    "AuthenticationError",
    "get_access_token",
    "get_keyring_credentials",
    "set_keyring_credentials",
]


class AuthenticationError(InvalidCredentials, HTTPError):
    """Missing or invalid credentials: a keyfob error and a ``requests.HTTPError``."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        InvalidCredentials.__init__(self, message, hint=hint)

    def __str__(self) -> str:
        return self.message


def get_access_token(
    username: str | None = None,
    password: str | None = None,
    app_id: str | None = None,
    app_secret: str | None = None,
    jwt: bool = True,
    refresh: bool = False,
) -> str:
    """An access token for the iNaturalist API: the JWT (``jwt=True``, what the v1
    API wants for private fields) or the OAuth access token (``jwt=False``)."""
    given = {"username": username, "password": password, "app_id": app_id, "app_secret": app_secret}
    credentials = {k: v for k, v in given.items() if v}
    try:
        token = _broker.default().get_token("inaturalist", refresh=refresh, **credentials)
    except (CredentialsMissing, InvalidCredentials) as exc:
        raise AuthenticationError(exc.message, hint=exc.hint) from None
    if jwt:
        return token.access_token
    if not token.refresh_token:
        raise AuthenticationError(
            "no OAuth access token: the JWT was pasted, not obtained with the password",
            hint="give username, password, app_id and app_secret",
        )
    return token.refresh_token


def get_keyring_credentials() -> dict[str, str | None]:
    """The credentials pyinaturalist keeps in the keyring, under its own key names."""
    try:
        stored = _broker.default().get_credentials("inaturalist")
    except KeyfobError as exc:
        raise AuthenticationError(exc.message, hint=exc.hint) from None
    return {
        "username": stored.get("username"),
        "password": stored.get("password"),
        "client_id": stored.get("app_id"),
        "client_secret": stored.get("app_secret"),
    }


def set_keyring_credentials(username: str, password: str, app_id: str, app_secret: str) -> None:
    """Store the credentials in the keyring where pyinaturalist looks for them."""
    _broker.default().set_credentials(
        "inaturalist",
        username=username,
        password=password,
        app_id=app_id,
        app_secret=app_secret,
    )
