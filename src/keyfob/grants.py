"""The OAuth 2.0 grants as sans-I/O generators (see ``transport``).

Each builds its request, yields it, and reads the answer: a :class:`Token`, or
a keyfob error made from the OAuth error answer (RFC 6749 §5.2). No sockets.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from keyfob import _jwt
from keyfob.config import safe_url
from keyfob.errors import InvalidCredentials, KeyfobError, ProviderError
from keyfob.flow import (
    AwaitCallback,
    Finish,
    Flow,
    HttpRequest,
    HttpResponse,
    Listen,
    OpenBrowser,
    ShowCode,
    Sleep,
    basic_auth,
)
from keyfob.token import Token

log = logging.getLogger("keyfob")

#: the longest lifetime keyfob believes (ten years): a server's 1e15 or 1e308 is
#: clamped to it, which keeps expiries inside what datetime, gmtime and Redis take
MAX_LIFETIME = 10 * 365 * 86400.0

#: a provider's own reading of an error answer (a hook, see ``provider.base.Hooks``)
Refusal = Callable[[HttpResponse, tuple[str, ...]], KeyfobError | None]

# Errors that mean "these credentials are no good" (RFC 6749 §5.2), and the names
# GitHub gives the same refusals (its token endpoint's "Troubleshooting" pages).
CREDENTIAL_ERRORS = frozenset(
    {
        "invalid_grant",
        "invalid_client",
        "unauthorized_client",
        "incorrect_client_credentials",
        "bad_verification_code",
        "bad_refresh_token",
        "incorrect_device_code",
    }
)
#: content types a token answer comes as a form in (GitHub, without Accept: application/json)
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "text/plain"})
#: more pairs than any token answer has: a hostile body is not read further
MAX_FORM_FIELDS = 64
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_HEX = re.compile(r"%[0-9A-F]{2}")
#: what a token may hold: visible ASCII (%x21-7E). RFC 6750's b64token is narrower,
#: but X's bearer tokens hold ``%``; anything else (a line break, a space, a lone
#: surrogate) would end up inside an HTTP header or a terminal.
_VISIBLE = re.compile(r"[\x21-\x7e]+")
#: a plain HTTP auth scheme name (RFC 9110 §11.1 allows more; no server needs it)
_SCHEME = re.compile(r"[A-Za-z0-9_-]+")


def check_token(value: str, source: str, *, what: str = "token", server: bool = False) -> str:
    """``value`` if it can be a token; else an error naming ``source``, never the value.

    The one rule for a token wherever it enters: a paste, an environment variable,
    the keyring, a server's answer (``server=True``: a ``ProviderError``, exit 4;
    else ``InvalidCredentials``, exit 3).
    """
    if _VISIBLE.fullmatch(value):
        return value
    message = (
        f"the {what} from {source} holds characters a token cannot have "
        "(a line break, a space, a control or non-ASCII character); it was not used"
    )
    if server:
        raise ProviderError(message, hint="the server is broken or hostile; report it")
    raise InvalidCredentials(
        message, hint="copy the token again, without line breaks or spaces inside"
    )


def secret_forms(secret: str) -> set[str]:
    """Every form ``secret`` takes on the wire, as a server may echo it: raw,
    form-encoded (``PW+secret%40home``), percent-encoded (either case of hex), and
    JSON-escaped. (The Basic header's base64 of ``id:secret`` is a secret of its own
    in ``HttpRequest.secrets``, see :func:`token_request`.)"""
    import urllib.parse

    forms = {
        secret,
        urllib.parse.quote_plus(secret),
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote(secret),
        json.dumps(secret)[1:-1],
    }
    forms |= {_HEX.sub(lambda m: m.group(0).lower(), form) for form in forms}
    return forms


def clean(text: object, secrets: tuple[str, ...] = (), limit: int = 200) -> str:
    """Server text made fit for a one-line message: no secret, no control
    characters, no endless length (a hostile server chooses these bytes).

    Each secret is cut out in every form it takes on the wire; text that still
    holds one once percent-decoded (a form keyfob did not foresee) is left out."""
    import urllib.parse

    out = str(text)
    real = [s for s in secrets if s and len(s) >= 4]
    forms = sorted({f for s in real for f in secret_forms(s)}, key=len, reverse=True)
    for form in forms:
        out = out.replace(form, "***")
    decoded = (urllib.parse.unquote_plus(out), urllib.parse.unquote(out))
    if any(s in d for s in real for d in decoded):
        return "(the server's text is left out: it held a secret)"
    out = " ".join(_CONTROL.sub(" ", out).split())
    return out if len(out) <= limit else out[: limit - 1] + "…"


def _form(response: HttpResponse) -> dict[str, str] | None:
    """The body as ``name=value&...`` pairs, or None where it is not such a form."""
    import urllib.parse

    try:
        text = response.content.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    if "=" not in text or text[:1] in ("{", "[", "<"):
        return None
    try:
        pairs = urllib.parse.parse_qsl(
            text, keep_blank_values=True, strict_parsing=True, max_num_fields=MAX_FORM_FIELDS
        )
    except ValueError:
        return None
    fields = dict(pairs)
    if len(fields) != len(pairs):  # a name twice: which access_token is meant?
        raise ProviderError(
            f"{response.what} ({safe_url(response.url)}) answered with a form that names "
            "a field twice",
            hint="the server is broken or hostile; report it to its operator",
            status=response.status,
            response=response.raw,
        )
    return fields


def answer_fields(response: HttpResponse) -> Any:
    """A token-like answer's body: JSON (RFC 6749 §5.1), or a form where the server
    sends one (GitHub answers ``access_token=...&token_type=bearer`` as
    ``application/x-www-form-urlencoded`` when not asked for JSON). A body that is
    neither is a ProviderError naming what came instead."""
    if response.content_type in FORM_TYPES or not response.content_type:
        form = _form(response)
        if form is not None:
            return form
    return response.json()


def error_from_response(
    response: HttpResponse, secrets: tuple[str, ...] = (), *, hint: str | None = None
) -> KeyfobError:
    """An OAuth error answer (RFC 6749 §5.2) or any other failure, as a keyfob error."""
    where = f"{response.what} ({safe_url(response.url)})"
    not_json: ProviderError | None = None
    try:
        data = answer_fields(response)
    except ProviderError as exc:
        data, not_json = None, exc  # says what came instead: an HTML proxy or login page
    error = description = None
    if isinstance(data, dict):
        if isinstance(data.get("error"), str):
            error = clean(data["error"], secrets, 60)
        if isinstance(data.get("error_description"), str):
            description = clean(data["error_description"], secrets)
    said = f": {error}" + (f" ({description})" if description else "") if error else ""
    # 401 is a refusal whatever the body calls it (iNaturalist: {"error": "Unauthorized"}).
    if error in CREDENTIAL_ERRORS or response.status == 401:
        return InvalidCredentials(
            f"{where} refused the credentials (HTTP {response.status}){said}",
            hint=hint,
            error=error,
            description=description,
            status=response.status,
            response=response.raw,
        )
    if not_json is not None:
        return not_json
    return ProviderError(
        f"{where} answered HTTP {response.status}{said}",
        error=error,
        description=description,
        status=response.status,
        response=response.raw,
    )


def refused(
    response: HttpResponse, secrets: tuple[str, ...], refusal: Refusal | None
) -> KeyfobError:
    """An error answer as the provider's refusal hook reads it, else as an OAuth error."""
    return (refusal and refusal(response, secrets)) or error_from_response(response, secrets)


def number(value: object, what: str) -> float:
    """A JSON number, or a numeric string (some servers send ``"3599"``)."""
    if isinstance(value, bool):
        raise ValueError(what)
    if isinstance(value, str):
        value = value.strip()
    try:
        result = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):  # OverflowError: a JSON integer of 400 digits
        raise ValueError(what) from None
    if not math.isfinite(result):
        raise ValueError(what)
    return result


def _clamped(lifetime: float, name: str, where: str) -> float:
    """A lifetime no longer than :data:`MAX_LIFETIME`; a longer one is said at debug."""
    if lifetime <= MAX_LIFETIME:
        return lifetime
    log.debug("%s answered %s %g; keeping it %g s (ten years)", where, name, lifetime, MAX_LIFETIME)
    return MAX_LIFETIME


def parse_token_response(
    response: HttpResponse,
    *,
    requested_at: float,
    secrets: tuple[str, ...] = (),
    default_lifetime: float | None = None,
    refresh_ratio: float = 0.0,
    field: str = "access_token",
    refusal: Refusal | None = None,
) -> Token:
    """Read a token answer (RFC 6749 §5.1).

    The expiry comes from ``expires_in`` counted from ``requested_at`` (when the
    request was sent, so a slow answer errs on the early side), else from the
    JWT's ``exp``, else from the provider's documented lifetime, else never.
    """
    if not 200 <= response.status < 300:
        raise refused(response, secrets, refusal)
    where = f"{response.what} ({safe_url(response.url)})"
    data = answer_fields(response)
    if not isinstance(data, dict):
        raise ProviderError(f"{where} answered with JSON that is not an object")
    if isinstance(data.get("error"), str):  # GitHub sends its errors with HTTP 200
        raise refused(response, secrets, refusal)
    access_token = data.get(field)
    if not isinstance(access_token, str) or not access_token.strip():
        raise ProviderError(
            f"{where} answered without an {field}",
            hint="check that token_url points at the token endpoint",
        )
    access_token = check_token(access_token.strip(), where, what=field, server=True)
    token_type = data.get("token_type", "Bearer")
    if not isinstance(token_type, str) or not token_type.strip():
        token_type = "Bearer"
    if not _SCHEME.fullmatch(token_type.strip()):
        raise ProviderError(
            f"{where} answered with a token_type that is not a plain scheme name "
            "(letters, digits, - and _)",
            hint="the server is broken or hostile; report it",
        )

    expires: float | None = None
    if data.get("expires_in") is not None:
        try:
            expires_in = number(data["expires_in"], "expires_in")
        except ValueError:
            raise ProviderError(
                f"{where} answered with an expires_in that is not a number",
                hint="the server breaks RFC 6749 §5.1; report it to its operator",
            ) from None
        if expires_in < 0:
            raise ProviderError(
                f"{where} answered with a negative expires_in ({expires_in:g})",
                hint="the server's clock or configuration is wrong; report it to its operator",
            )
        expires = requested_at + _clamped(expires_in, "expires_in", where)
    else:
        expires = _jwt.expiry(access_token)
        if expires is None and default_lifetime is not None:
            expires = requested_at + default_lifetime

    refresh = data.get("refresh_token")
    if isinstance(refresh, str) and refresh.strip():
        check_token(refresh.strip(), where, what="refresh_token", server=True)
    refresh_expires = None
    # Keycloak says refresh_expires_in, GitHub refresh_token_expires_in; a value that
    # is no number leaves the refresh token's life unknown, as if unsaid.
    for name in ("refresh_token_expires_in", "refresh_expires_in"):
        if data.get(name) is None:
            continue
        try:
            lifetime = number(data[name], name)
        except ValueError:
            continue
        refresh_expires = requested_at + _clamped(lifetime, name, where)
        break
    scope = data.get("scope")
    return Token(
        access_token,
        token_type.strip(),
        expires=expires,
        issued=requested_at,
        refresh_token=refresh.strip() if isinstance(refresh, str) and refresh.strip() else None,
        refresh_expires=refresh_expires,
        scope=scope if isinstance(scope, str) else None,
        refresh_ratio=refresh_ratio,
    )


#: form parameters whose values are secrets (scrubbed from what a server echoes);
#: not ``grant_type`` or ``scope``, whose words ("password") a message needs
SECRET_PARAMS = frozenset(
    {"password", "refresh_token", "code", "code_verifier", "device_code", "token", "access_token"}
)


def token_request(
    url: str,
    params: Mapping[str, str | None],
    *,
    client_id: str | None,
    client_secret: str | None,
    client_auth: str = "client_secret_basic",
    secrets: tuple[str, ...] = (),
    what: str = "the token endpoint",
) -> HttpRequest:
    """A POST to a token-like endpoint with client authentication (RFC 6749 §2.3).

    ``private_key_jwt`` and ``tls_client_auth`` send the client id alone here: the
    assertion is signed as the request is sent (``keyfob.clientauth.attach``), the
    client certificate is presented by the transport."""
    form = {k: v for k, v in params.items() if v is not None}
    basic = None
    if client_id and client_secret and client_auth == "client_secret_basic":
        basic = (client_id, client_secret)
    elif client_id:
        form["client_id"] = client_id
        if client_secret and client_auth == "client_secret_post":
            form["client_secret"] = client_secret
    secret_values = (v for k, v in params.items() if k in SECRET_PARAMS)
    all_secrets = tuple(s for s in (*secrets, client_secret, *secret_values) if s)
    if basic is not None:  # the Basic header's base64, as a server may echo it
        all_secrets += (basic_auth(*basic).partition(" ")[2],)
    return HttpRequest(
        "POST",
        url,
        what,
        form=form,
        basic=basic,
        secrets=all_secrets,
        client_auth=client_auth if client_id else "",
    )


def client_credentials(
    url: str,
    *,
    client_id: str,
    client_secret: str | None,
    client_auth: str = "client_secret_basic",
    scope: str | None = None,
    now: float,
    default_lifetime: float | None = None,
    refusal: Refusal | None = None,
) -> Flow[Token]:
    """RFC 6749 §4.4."""
    request = token_request(
        url,
        {"grant_type": "client_credentials", "scope": scope},
        client_id=client_id,
        client_secret=client_secret,
        client_auth=client_auth,
    )
    response = yield request
    assert response is not None
    return parse_token_response(
        response,
        requested_at=now,
        secrets=request.secrets,
        default_lifetime=default_lifetime,
        refusal=refusal,
    )


def password(
    url: str,
    *,
    username: str,
    password: str,
    client_id: str | None,
    client_secret: str | None,
    client_auth: str = "client_secret_basic",
    scope: str | None = None,
    now: float,
    refusal: Refusal | None = None,
) -> Flow[Token]:
    """RFC 6749 §4.3: the resource owner's password."""
    request = token_request(
        url,
        {"grant_type": "password", "username": username, "password": password, "scope": scope},
        client_id=client_id,
        client_secret=client_secret,
        client_auth=client_auth,
    )
    response = yield request
    assert response is not None
    return parse_token_response(
        response, requested_at=now, secrets=request.secrets, refusal=refusal
    )


def refresh(
    url: str,
    refresh_token: str,
    *,
    client_id: str | None,
    client_secret: str | None,
    client_auth: str = "client_secret_basic",
    scope: str | None = None,
    now: float,
    refusal: Refusal | None = None,
) -> Flow[Token]:
    """RFC 6749 §6. A server that does not rotate keeps the old refresh token valid."""
    request = token_request(
        url,
        {"grant_type": "refresh_token", "refresh_token": refresh_token, "scope": scope},
        client_id=client_id,
        client_secret=client_secret,
        client_auth=client_auth,
    )
    response = yield request
    assert response is not None
    token = parse_token_response(
        response, requested_at=now, secrets=request.secrets, refusal=refusal
    )
    if token.refresh_token is None:
        token = token.replace(refresh_token=refresh_token)
    return token


def revoke(
    url: str,
    token: str,
    *,
    token_type_hint: str = "access_token",
    client_id: str | None,
    client_secret: str | None,
    client_auth: str = "client_secret_basic",
) -> Flow[None]:
    """RFC 7009: revoke a token. 200 (also for unknown tokens) is success."""
    request = token_request(
        url,
        {"token": token, "token_type_hint": token_type_hint},
        client_id=client_id,
        client_secret=client_secret,
        client_auth=client_auth,
        what="the revocation endpoint",
    )
    response = yield request
    assert response is not None
    if not 200 <= response.status < 300:
        raise error_from_response(response, request.secrets)
    return None


def discover(issuer: str) -> Flow[dict[str, Any]]:
    """Authorization server metadata: OpenID discovery, then RFC 8414 §3."""
    base = issuer.rstrip("/")
    split = base.split("/", 3)
    origin, path = "/".join(split[:3]), ("/" + split[3] if len(split) > 3 else "")
    candidates = [
        f"{base}/.well-known/openid-configuration",
        f"{origin}/.well-known/oauth-authorization-server{path}",
    ]
    last: HttpResponse | None = None
    for url in candidates:
        response = yield HttpRequest("GET", url, "the discovery document")
        assert response is not None
        last = response
        if response.status != 200:
            continue
        data = response.json()
        if not isinstance(data, dict):
            raise ProviderError(f"the discovery document at {safe_url(url)} is not a JSON object")
        # RFC 8414 §3.3: the document must name the issuer it was asked for; one that
        # names none, or another, could send the client secret anywhere.
        issuer_named = data.get("issuer")
        if not isinstance(issuer_named, str) or issuer_named.rstrip("/") != base:
            if isinstance(issuer_named, str):
                said = (
                    f"names the issuer {clean(issuer_named, (), 120)!r}, "
                    f"not the configured {safe_url(base)}"
                )
            else:
                said = "names no issuer"
            raise ProviderError(
                f"the discovery document at {safe_url(url)} {said}; nothing was sent to it",
                hint="set issuer in config.toml to the server's own issuer, if you trust it "
                "(RFC 8414 §3.3 and OpenID Connect Discovery §4.3 require the two to match)",
            )
        if not isinstance(data.get("token_endpoint"), str):
            raise ProviderError(
                f"the discovery document at {safe_url(url)} names no token_endpoint",
                hint="set token_url in config.toml",
            )
        return data
    assert last is not None
    raise ProviderError(
        f"no discovery document for {safe_url(base)} (HTTP {last.status})",
        hint="check issuer in config.toml, or give token_url",
        status=last.status,
    )


# -- grants that need a person ------------------------------------------------------------


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge (RFC 7636 §4.1-4.2)."""
    import base64
    import hashlib
    import secrets

    verifier = secrets.token_urlsafe(64)  # 86 characters of [A-Za-z0-9_-]
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def listen(redirect_uri: str | None) -> Listen:
    """A browser login's one-shot listener: at the port and path of the registered
    callback, else at ``/callback`` on any free port."""
    import urllib.parse

    if not redirect_uri:
        return Listen(port=0, path="/callback")
    parts = urllib.parse.urlsplit(redirect_uri)
    return Listen(port=parts.port or 80, path=parts.path or "/")


def authorization_code(
    url: str,
    code: str,
    *,
    redirect_uri: str,
    verifier: str,
    client_id: str,
    client_secret: str | None,
    client_auth: str = "client_secret_basic",
    clock: Callable[[], float],
    refusal: Refusal | None = None,
) -> Flow[Token]:
    """RFC 6749 §4.1.3 with the PKCE verifier (RFC 7636 §4.5)."""
    request = token_request(
        url,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        client_id=client_id,
        client_secret=client_secret,
        client_auth=client_auth,
    )
    requested_at = clock()
    response = yield request
    assert response is not None
    return parse_token_response(
        response, requested_at=requested_at, secrets=request.secrets, refusal=refusal
    )


def browser_login(
    *,
    authorize_url: str,
    token_url: str,
    client_id: str,
    client_secret: str | None,
    client_auth: str = "client_secret_basic",
    scope: str | None = None,
    redirect_uri: str | None = None,
    issuer: str | None = None,
    timeout: float = 300.0,
    extra: Mapping[str, str] | None = None,
    clock: Callable[[], float],
    refusal: Refusal | None = None,
) -> Flow[Token]:
    """Authorization code with PKCE (S256) and a random ``state``, through a
    one-shot listener on 127.0.0.1 (RFC 8252 §7.3); ``iss`` checked when sent
    (RFC 9207). A callback that fails a check is answered, and its code is
    never sent to the token endpoint."""
    import secrets
    import urllib.parse

    bound = yield listen(redirect_uri)
    assert isinstance(bound, str)
    # A registered callback is sent as registered (X compares it byte for byte:
    # ``localhost`` stays ``localhost``); the listener holds its port and path.
    bound = redirect_uri or bound
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(24)
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": bound,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **({"scope": scope} if scope else {}),
        **(extra or {}),
    }
    separator = "&" if urllib.parse.urlsplit(authorize_url).query else "?"
    yield OpenBrowser(authorize_url + separator + urllib.parse.urlencode(query))
    params = yield AwaitCallback(timeout=timeout)
    assert isinstance(params, dict)
    problem = _callback_problem(params, state, issuer)
    if problem is not None:
        yield Finish(ok=False, message=problem.message)
        raise problem
    try:
        token = yield from authorization_code(
            token_url,
            params["code"],
            redirect_uri=bound,
            verifier=verifier,
            client_id=client_id,
            client_secret=client_secret,
            client_auth=client_auth,
            clock=clock,
            refusal=refusal,
        )
    except KeyfobError as exc:  # the code was refused (replayed, expired): the tab says so
        yield Finish(ok=False, message=exc.message)
        raise
    yield Finish(ok=True, message="You are logged in, and keyfob has the tokens.")
    return token


def _callback_problem(
    params: Mapping[str, str], state: str, issuer: str | None
) -> KeyfobError | None:
    import hmac

    if not hmac.compare_digest(params.get("state", "").encode(), state.encode()):
        return InvalidCredentials(
            "the login callback did not carry this login's state: it was forged, or belongs "
            "to another login; its code was not used",
            hint="start the login again",
        )
    if "error" in params:
        error = clean(params["error"], (), 60)
        description = clean(params.get("error_description", ""))
        denied = error == "access_denied"
        return InvalidCredentials(
            ("the login was refused in the browser" if denied else "the login failed")
            + f" ({error}{': ' + description if description else ''})",
            hint="start the login again" + (" and allow access" if denied else ""),
            error=error,
            description=description or None,
        )
    if issuer and "iss" in params and params["iss"].rstrip("/") != issuer.rstrip("/"):
        return InvalidCredentials(
            "the login callback came from another issuer (RFC 9207 mix-up); its code was not used",
            hint="check issuer in config.toml, then start the login again",
        )
    if not params.get("code"):
        return InvalidCredentials(
            "the login callback carried no code", hint="start the login again"
        )
    return None


DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
#: the device flow polls no faster than this, whatever the server's interval says
MIN_POLL = 1.0


def _shown_uri(uri: str, name: str, where: str) -> str:
    """A URI fit to show a person and open: visible ASCII only (no terminal escapes),
    https, or http to a loopback host. A ProviderError (exit 4) otherwise."""
    import urllib.parse

    from keyfob.config import is_loopback

    try:
        parts = urllib.parse.urlsplit(uri) if _VISIBLE.fullmatch(uri) else None
    except ValueError:
        parts = None
    host = parts.hostname if parts is not None else None
    if (
        parts is None
        or not host
        or (parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(host)))
    ):
        raise ProviderError(
            f"{where} answered with a {name} that is not an https:// address of visible "
            "characters; it was not shown",
            hint="the server is broken or hostile; report it to its operator",
        )
    return uri


def device_login(
    *,
    device_url: str,
    token_url: str,
    client_id: str,
    client_secret: str | None,
    client_auth: str = "client_secret_basic",
    scope: str | None = None,
    interval: float | None = None,
    clock: Callable[[], float],
    refusal: Refusal | None = None,
) -> Flow[Token]:
    """The device authorization grant (RFC 8628): show the code, poll until approved."""
    request = token_request(
        device_url,
        {"scope": scope},
        client_id=client_id,
        client_secret=client_secret,
        client_auth=client_auth,
        what="the device authorization endpoint",
    )
    response = yield request
    assert response is not None
    data = answer_fields(response) if 200 <= response.status < 300 else None
    if data is None or (isinstance(data, dict) and isinstance(data.get("error"), str)):
        raise refused(response, request.secrets, refusal)
    where = f"the device authorization endpoint ({safe_url(device_url)})"
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), str) and data[k] for k in ("device_code", "user_code")
    ):
        raise ProviderError(f"{where} answered without device_code and user_code")
    uri = data.get("verification_uri") or data.get("verification_url")  # Google's old name
    if not isinstance(uri, str) or not uri:
        raise ProviderError(f"{where} answered without verification_uri")
    uri = _shown_uri(uri, "verification_uri", where)
    try:
        expires_in = number(data.get("expires_in", 600), "expires_in")
        wait = number(data.get("interval", 5), "interval")  # RFC 8628 §3.2: 5 s when absent
    except ValueError:
        raise ProviderError(f"{where} answered with a non-numeric expires_in or interval") from None
    # RFC 8628 §3.5 lets the server choose; "interval": 0 would poll as fast as it answers.
    wait = max(MIN_POLL, interval if interval is not None else wait)
    complete = data.get("verification_uri_complete")
    if isinstance(complete, str) and complete:
        complete = _shown_uri(complete, "verification_uri_complete", where)
    started = clock()
    deadline = started + max(1.0, expires_in)
    yield ShowCode(
        user_code=clean(data["user_code"], (), 40),
        verification_uri=uri,
        verification_uri_complete=complete if isinstance(complete, str) and complete else None,
        expires_at=deadline,
    )
    poll = token_request(
        token_url,
        {"grant_type": DEVICE_GRANT, "device_code": data["device_code"]},
        client_id=client_id,
        client_secret=client_secret,
        client_auth=client_auth,
        secrets=(data["device_code"],),
    )
    while True:
        if clock() + wait > deadline:
            raise InvalidCredentials(
                "the device code expired before the login was approved",
                hint="start the login again, and approve it in time",
                error="expired_token",
            )
        yield Sleep(wait, until=deadline)
        requested_at = clock()
        answer = yield poll
        assert answer is not None
        # The errors come with HTTP 400 (RFC 8628 §3.5) or, from GitHub, with 200.
        try:
            said = answer_fields(answer)
        except ProviderError:
            said = None
        error = said.get("error") if isinstance(said, dict) else None
        if error is None and 200 <= answer.status < 300:
            return parse_token_response(answer, requested_at=requested_at, secrets=poll.secrets)
        if error == "authorization_pending":
            continue
        if error == "slow_down":  # RFC 8628 §3.5: add 5 seconds, for this and later polls
            wait += 5
            with contextlib.suppress(ValueError):  # GitHub says the new interval: kept if longer
                wait = max(wait, min(number(said.get("interval"), "interval"), expires_in))
            continue
        if error == "access_denied":
            raise InvalidCredentials(
                "the login was refused on the verification page (access_denied)",
                hint="start the login again and approve it",
                error="access_denied",
            )
        if error == "expired_token":
            raise InvalidCredentials(
                "the device code expired before the login was approved (expired_token)",
                hint="start the login again, and approve it in time",
                error="expired_token",
            )
        raise refused(answer, poll.secrets, refusal)
