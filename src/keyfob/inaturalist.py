"""A drop-in for pyinaturalist's auth functions, backed by keyfob.

Same names, signatures, environment variables (``INAT_USERNAME``,
``INAT_PASSWORD``, ``INAT_APP_ID``, ``INAT_APP_SECRET``) and keyring entries
(service ``/inaturalist``, names ``username``, ``password``, ``app_id``,
``app_secret``), so a pyinaturalist user's stored credentials just work::

    from keyfob.inaturalist import get_access_token
    token = get_access_token()          # a JWT, cached for its 24 hours

Or, without a password, a browser login (authorization code + PKCE)::

    from keyfob.inaturalist import get_access_token_via_auth_code
    token = get_access_token_via_auth_code(app_id="...")   # opens the browser once

Explicit arguments win over the environment, which wins over the keyring.
Unlike pyinaturalist, a cached token never crosses accounts, and
``refresh=True`` really gets a new JWT. Missing or refused credentials raise
:class:`AuthenticationError`, which is a ``requests.HTTPError`` as there.
"""

from __future__ import annotations

from requests import HTTPError

from keyfob import wiring
from keyfob.errors import CredentialsMissing, InvalidCredentials, KeyfobError
from keyfob.flow import Person, ShowCode
from keyfob.token import Token

KEYRING_KEY = "/inaturalist"
__all__ = [
    "AuthenticationError",
    "get_access_token",
    "get_access_token_via_auth_code",
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
        token = wiring.default().get_token("inaturalist", refresh=refresh, **credentials)
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


def get_access_token_via_auth_code(
    app_id: str | None = None,
    app_secret: str | None = None,
    use_pkce: bool = True,
    jwt: bool = True,
    refresh: bool = False,
    port: int = 8080,
    timeout: float = 120,
    *,
    person: Person | None = None,
) -> str:
    """An access token from a browser login: the person signs in on iNaturalist,
    which sends the browser back to ``http://127.0.0.1:{port}/callback`` (register
    that redirect URI with the app); the code is traded for the OAuth token, and
    that for the JWT (``jwt=True``) as :func:`get_access_token` does.

    With ``refresh=False`` a cached, still valid token of this app is returned with
    no browser. keyfob always sends PKCE (S256): ``use_pkce=False`` is accepted for
    pyinaturalist's signature, only with an ``app_secret``, and changes nothing.
    The app id and secret are stored in the keyring once the login worked.
    ``person``: who opens the browser and takes the callback (default: the system
    browser via :class:`keyfob.loopback.Terminal`); ``timeout``: seconds to wait.
    """
    b = wiring.default()
    if not use_pkce and not (
        app_secret
        or b.credentials(b.provider("inaturalist"), "", {}, ("app_secret",)).get("app_secret")
    ):
        raise AuthenticationError(
            "use_pkce=False needs an app_secret (a confidential app)",
            hint="give app_secret (or set INAT_APP_SECRET), or leave use_pkce=True",
        )
    if not refresh:
        try:
            cached = b.cached("inaturalist", **({"app_id": app_id} if app_id else {}))
        except KeyfobError as exc:
            raise AuthenticationError(exc.message, hint=exc.hint) from None
        if cached is not None:
            return _pick(cached, jwt)
    if person is None:
        from keyfob.loopback import Terminal

        person = Terminal()
    given = {k: v for k, v in {"app_id": app_id, "app_secret": app_secret}.items() if v}
    try:
        token = wiring.accounts().login(
            "inaturalist",
            flow="browser",
            person=_OnPort(person, port),
            timeout=timeout,
            **given,
        )
    except (CredentialsMissing, InvalidCredentials) as exc:
        raise AuthenticationError(exc.message, hint=exc.hint) from None
    return _pick(token, jwt)


def _pick(token: Token, jwt: bool) -> str:
    if jwt:
        return token.access_token
    if not token.refresh_token:
        raise AuthenticationError(
            "no OAuth access token: the JWT was pasted, not obtained with a login",
            hint="log in again with refresh=True",
        )
    return token.refresh_token


class _OnPort:
    """The person, with the callback listener on ``port`` at ``/callback``: the
    redirect URI registered with the app, whatever config.toml says."""

    def __init__(self, person: Person, port: int) -> None:
        self.person = person
        self.port = port

    def listen(self, port: int, path: str) -> str:
        return self.person.listen(self.port, "/callback")

    def open_browser(self, url: str) -> None:
        self.person.open_browser(url)

    def await_callback(self, timeout: float) -> dict[str, str]:
        return self.person.await_callback(timeout)

    def finish(self, ok: bool, message: str) -> None:
        self.person.finish(ok, message)

    def show_code(self, code: ShowCode) -> None:
        self.person.show_code(code)

    def sleep(self, seconds: float, until: float | None) -> None:
        self.person.sleep(seconds, until)

    def close(self) -> None:
        self.person.close()


def get_keyring_credentials() -> dict[str, str | None]:
    """The credentials pyinaturalist keeps in the keyring, under its own key names."""
    try:
        stored = wiring.accounts().get_credentials("inaturalist")
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
    wiring.accounts().set_credentials(
        "inaturalist",
        username=username,
        password=password,
        app_id=app_id,
        app_secret=app_secret,
    )
