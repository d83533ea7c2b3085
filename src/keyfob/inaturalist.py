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

Explicit arguments win over the environment, which wins over the keyring;
with all four given, the keyring is never opened. Unlike pyinaturalist, a
cached token never crosses accounts, and ``refresh=True`` really gets a new
JWT. Missing or refused credentials raise :class:`AuthenticationError`, which
is a ``requests.HTTPError`` as there, with ``response`` the server's answer.

Requests go out on ``requests`` (:mod:`keyfob.requests_transport`), so
requests-mock, responses, VCR.py and requests-cache see them; a network
failure is also a ``requests.ConnectionError`` or ``requests.Timeout``. The
keyring is read and written through this module's ``get_password`` and
``set_password``, the names pyinaturalist's auth module calls (a test that
patches ``pyinaturalist.auth.get_password`` patches the same seam here).
"""

from __future__ import annotations

import logging
from typing import Any

from requests import HTTPError

from keyfob import wiring
from keyfob.broker import Broker
from keyfob.clientauth import attach
from keyfob.errors import CredentialsMissing, InvalidCredentials, KeyfobError, StorageError
from keyfob.flow import AskPin, Person, ShowCode
from keyfob.provider import inaturalist as kind
from keyfob.token import Token

log = logging.getLogger("keyfob")
KEYRING_KEY = "/inaturalist"
#: pyinaturalist's keys of :func:`get_keyring_credentials` -> the keyring entry names
_KEYRING_NAMES = {
    "username": "username",
    "password": "password",
    "client_id": "app_id",
    "client_secret": "app_secret",
}
__all__ = [
    "AuthenticationError",
    "get_access_token",
    "get_access_token_via_auth_code",
    "get_keyring_credentials",
    "set_keyring_credentials",
    "validate_token",
]


class AuthenticationError(InvalidCredentials, HTTPError):
    """Missing or invalid credentials: a keyfob error and a ``requests.HTTPError``
    whose ``response`` is the server's answer (None where no request was made:
    credentials missing)."""

    def __init__(self, message: str, *, hint: str | None = None, response: Any = None) -> None:
        InvalidCredentials.__init__(self, message, hint=hint, response=response)

    def __str__(self) -> str:
        return self.message


_REFUSED = (CredentialsMissing, InvalidCredentials, StorageError)


def _refused(exc: KeyfobError) -> AuthenticationError:
    return AuthenticationError(exc.message, hint=exc.hint, response=exc.response)


def _broker() -> Broker:
    return wiring.via_requests()


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
    b = _broker()
    try:
        if jwt:
            return b.get_token("inaturalist", refresh=refresh, **credentials).access_token
        if not refresh:
            cached = b.cached("inaturalist", **credentials)
            if cached is not None and cached.refresh_token:
                return cached.refresh_token  # the OAuth token kept with the JWT
        return _oauth_token(b, credentials)
    except _REFUSED as exc:
        raise _refused(exc) from None


def _oauth_token(b: Broker, credentials: dict[str, str]) -> str:
    """The password grant alone: no JWT asked for, none cached (as pyinaturalist)."""
    p = b.provider("inaturalist")
    creds = b.credentials(p, "", credentials)
    b.require(p, "", creds)
    if any(name not in creds for name in p.required):  # only a pasted JWT is there
        raise AuthenticationError(
            "no OAuth access token: the JWT was pasted, not obtained with the password",
            hint="give username, password, app_id and app_secret",
        )
    grant = p.kind.acquire(kind.without_jwt(p), creds, b.clock())
    return b.transport.run(attach(p, grant)).access_token


def validate_token(access_token: str) -> bool:
    """Whether iNaturalist accepts ``access_token`` (a JWT or an OAuth token):
    ``GET /v1/users/me`` answers 200. A network failure raises (a
    ``requests.ConnectionError``), as in pyinaturalist."""
    b = _broker()
    p = b.provider("inaturalist")
    request = kind.users_me(p.api_url or kind.PROVIDER.api_url or "", access_token)
    try:
        return b.transport.send(request).status == 200
    except HTTPError:  # answers the retries could not get past (5xx)
        return False


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
    b = _broker()
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
            raise _refused(exc) from None
        if cached is not None:
            return _pick(cached, jwt)
    if person is None:
        from keyfob.loopback import Terminal

        person = Terminal()
    given = {k: v for k, v in {"app_id": app_id, "app_secret": app_secret}.items() if v}
    try:
        from keyfob.accounts import Accounts

        token = Accounts(b).login(
            "inaturalist",
            flow="browser",
            person=_OnPort(person, port),
            timeout=timeout,
            **given,
        )
    except _REFUSED as exc:
        raise _refused(exc) from None
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

    def ask_pin(self, ask: AskPin) -> str:
        return self.person.ask_pin(ask)

    def sleep(self, seconds: float, until: float | None) -> None:
        self.person.sleep(seconds, until)

    def close(self) -> None:
        self.person.close()


def get_password(service: str, name: str) -> str | None:
    """One keyring entry, from keyfob's secret store (bounded in time; the 0600
    file where the machine has no keyring)."""
    return _broker().store.get(service, name)


def set_password(service: str, name: str, value: str) -> None:
    """Store one keyring entry in keyfob's secret store."""
    b = _broker()
    b.store.set(service, name, value)
    b.stored_changed()


def get_keyring_credentials() -> dict[str, str | None]:
    """The credentials pyinaturalist keeps in the keyring, under its own key names;
    ``{}`` (and a warning) where the keyring refuses, as there."""
    from keyring.errors import KeyringError

    try:
        return {key: get_password(KEYRING_KEY, name) for key, name in _KEYRING_NAMES.items()}
    except (KeyringError, StorageError) as exc:
        log.warning("%s", exc)
        return {}


def set_keyring_credentials(username: str, password: str, app_id: str, app_secret: str) -> None:
    """Store the credentials in the keyring where pyinaturalist looks for them."""
    set_password(KEYRING_KEY, "username", username)
    set_password(KEYRING_KEY, "password", password)
    set_password(KEYRING_KEY, "app_id", app_id)
    set_password(KEYRING_KEY, "app_secret", app_secret)
    _broker().forget(("inaturalist", ""))  # a cached token of other credentials
