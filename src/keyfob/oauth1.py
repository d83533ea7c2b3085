"""OAuth 1.0a (RFC 5849), sans I/O: the signer, and the logins as flows.

The flows speak :mod:`keyfob.flow`'s vocabulary, like :mod:`keyfob.grants`:
a temporary (request) token (§2.1), the address where the person authorizes
it (§2.2), its exchange for an access token with the verifier (§2.3), and
revoking the access token (X's ``invalidate_token``). Every signature is
oauthlib's (``oauthlib.oauth1.Client``), never keyfob's own: HMAC-SHA1 (the
default), HMAC-SHA256, RSA-SHA1 (with PyJWT and cryptography) and PLAINTEXT,
in the ``Authorization`` header, the query or a form body.

oauthlib is imported only here, and this module only when an OAuth 1.0a
provider is used. oauthlib logs each signature base string (the access token
in it) and the signature at DEBUG on its own loggers: :func:`_client` makes
sure those records are never made.
"""

from __future__ import annotations

import hmac
import logging
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from keyfob import grants
from keyfob.config import safe_url
from keyfob.errors import ConfigError, InvalidCredentials, KeyfobError, ProviderError
from keyfob.flow import (
    AskPin,
    AwaitCallback,
    Finish,
    Flow,
    HttpRequest,
    HttpResponse,
    OpenBrowser,
)

#: ``signature_method`` values (RFC 5849 §3.4; HMAC-SHA256 as oauthlib and X know it)
SIGNATURE_METHODS = ("HMAC-SHA1", "HMAC-SHA256", "RSA-SHA1", "PLAINTEXT")
#: ``signature_type``: where the oauth_* parameters go (RFC 5849 §3.5.1-3)
SIGNATURE_TYPES = ("header", "query", "body")
#: a PIN typed wrong is asked again, this many times in all
PIN_TRIES = 3
FORM = "application/x-www-form-urlencoded"

_quiet = False


def _silence_oauthlib() -> None:
    """oauthlib logs the signature base string, the parameters (the access token among
    them) and the signature at DEBUG. Those records are not made at all, whatever the
    root logger's (or "oauthlib"'s) level; only a level set by hand on the logger that
    signs ("oauthlib.oauth1.rfc5849") lets them through."""
    global _quiet
    if not _quiet:
        for name in ("oauthlib", "oauthlib.oauth1", "oauthlib.oauth1.rfc5849"):
            logger = logging.getLogger(name)
            if logger.level == logging.NOTSET:
                logger.setLevel(logging.INFO)
        _quiet = True


@dataclass(frozen=True, repr=False)
class Consumer:
    """The app (the client, RFC 5849 §1.1): its key and secret, and how it signs."""

    key: str
    secret: str = field(repr=False)
    method: str = "HMAC-SHA1"
    signature_type: str = "header"
    #: the RSA private key (PEM text) for RSA-SHA1
    rsa_key: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"<Consumer {self.method} {self.signature_type}>"


def _client(
    consumer: Consumer,
    token: str | None = None,
    token_secret: str | None = None,
    *,
    callback: str | None = None,
    verifier: str | None = None,
    signature_type: str | None = None,
) -> Any:
    _silence_oauthlib()
    from oauthlib import oauth1

    kind = signature_type or consumer.signature_type
    method = {
        "HMAC-SHA1": oauth1.SIGNATURE_HMAC_SHA1,
        "HMAC-SHA256": oauth1.SIGNATURE_HMAC_SHA256,
        "RSA-SHA1": oauth1.SIGNATURE_RSA_SHA1,
        "PLAINTEXT": oauth1.SIGNATURE_PLAINTEXT,
    }[consumer.method]
    where = {
        "header": oauth1.SIGNATURE_TYPE_AUTH_HEADER,
        "query": oauth1.SIGNATURE_TYPE_QUERY,
        "body": oauth1.SIGNATURE_TYPE_BODY,
    }[kind]
    return oauth1.Client(
        consumer.key,
        # RSA-SHA1 signs with the private key alone (RFC 5849 §3.4.3)
        client_secret=None if consumer.method == "RSA-SHA1" else consumer.secret,
        resource_owner_key=token,
        resource_owner_secret=token_secret,
        callback_uri=callback,
        verifier=verifier,
        signature_method=method,
        signature_type=where,
        rsa_key=consumer.rsa_key,
    )


def _sign(
    client: Any, method: str, url: str, headers: Mapping[str, str], body: bytes | None
) -> tuple[str, dict[str, str], bytes | None]:
    """oauthlib's signature of one request: the form body is signed with it (§3.4.1.3.1),
    any other body is sent as it is and left out, as RFC 5849 says."""
    headers = dict(headers)
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    form = content_type.split(";")[0].strip().lower() == FORM
    text: str | None = None
    if form and body:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(
                "a form body to sign is not UTF-8 text", hint="encode the form as UTF-8"
            ) from None
    if form and not text:
        # an empty form: nothing of it to sign; oauthlib refuses a form header without one
        headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    try:
        signed_url, signed_headers, signed_body = client.sign(
            url, http_method=method.upper(), body=text, headers=headers
        )
    except ValueError as exc:
        raise ConfigError(
            f"cannot sign this request with OAuth 1.0a: {_oauthlib_words(exc)}",
            hint="signature_type = 'body' needs a form body (application/x-www-form-urlencoded);"
            " use 'header' for other requests",
        ) from None
    if form and not text and content_type:
        signed_headers.setdefault("Content-Type", content_type)
    out = body
    if text is not None and isinstance(signed_body, str):  # the form, with oauth_* for "body"
        out = signed_body.encode("utf-8")
    return str(signed_url), {str(k): str(v) for k, v in signed_headers.items()}, out


def _oauthlib_words(exc: ValueError) -> str:
    """oauthlib's reason, without the values it may quote."""
    text = str(exc).split(".")[0]
    return grants.clean(text, (), 120) or "oauthlib refused it"


class Signer:
    """Signs requests for one user: the consumer and the access token with its secret.

    ``who`` names the user for the rate budget (X counts user-context requests per
    user), never a secret. A fresh nonce and timestamp each call (oauthlib's).
    """

    def __init__(self, consumer: Consumer, token: str, token_secret: str, *, who: str) -> None:
        self._client = _client(consumer, token, token_secret)
        self.consumer = consumer
        self.who = who

    def sign(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[str, dict[str, str], bytes | None]:
        """The request as it is sent: its URL (the oauth_* query with ``query``), its
        headers (``Authorization: OAuth ...`` with ``header``) and its body."""
        return _sign(self._client, method, url, headers, body)

    def header(self, method: str, url: str, form: Mapping[str, str] | None = None) -> str:
        """The ``Authorization`` value of one request (a form body signed with it)."""
        body = urllib.parse.urlencode(list((form or {}).items())).encode() if form else None
        headers = {"Content-Type": FORM} if form else {}
        _, signed, _ = _sign(self._client, method, url, headers, body)
        value = next((v for k, v in signed.items() if k.lower() == "authorization"), None)
        if value is None:
            raise ConfigError(
                f"the provider signs in the {self.consumer.signature_type}, not in a header",
                hint="set signature_type = 'header' for `keyfob header`, or use the adapters",
            )
        return value

    def __repr__(self) -> str:
        return f"<Signer {self.consumer.method} {self.consumer.signature_type} {self.who}>"


# -- the token dance: request token, authorize, access token, revoke -----------------------


@dataclass(frozen=True, repr=False)
class Credentials:
    """A token and its secret from the server (temporary or access), and what else the
    answer said (X: ``user_id``, ``screen_name``)."""

    token: str
    secret: str
    extra: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"<oauth1.Credentials {', '.join(sorted(self.extra)) or 'token'}>"


@dataclass(frozen=True)
class Endpoints:
    request_token_url: str
    authorize_url: str
    access_token_url: str
    revoke_url: str | None = None


#: where keyfob's own requests (the token endpoints, revoking) carry the oauth_*
#: parameters, whatever the provider's signature_type: the header (RFC 5849 §3.5.1, the
#: one every server reads). In a query they would be in every log line that shows a URL
#: (the signature, the tokens; with PLAINTEXT the secrets themselves); a body signature
#: needs a form to sign.
DANCE_TYPE = "header"


def _signed_post(
    client: Any,
    url: str,
    what: str,
    secrets: tuple[str, ...],
    form: Mapping[str, str] | None = None,
) -> HttpRequest:
    body = urllib.parse.urlencode(list(form.items())).encode() if form else None
    headers = {"Content-Type": FORM} if form else {}
    signed_url, signed_headers, _ = _sign(client, "POST", url, headers, body)
    signed_headers.pop("Content-Type", None)
    return HttpRequest(
        "POST",
        signed_url,
        what=what,
        form=form,
        headers=signed_headers,
        secrets=tuple(s for s in secrets if s),
    )


def refusal(response: HttpResponse, secrets: tuple[str, ...]) -> KeyfobError:
    """A token endpoint's refusal: 401 (and 400/403, RFC 5849 §3.2) is the credentials'."""
    said = _said(response, secrets)
    where = f"{response.what} ({safe_url(response.url)})"
    if response.status in (400, 401, 403):
        return InvalidCredentials(
            f"{where} refused the OAuth 1.0a request (HTTP {response.status}){said}",
            hint="check the consumer key and secret, and this machine's clock "
            "(a signature carries the time)",
            status=response.status,
            response=response.raw,
        )
    return ProviderError(
        f"{where} answered HTTP {response.status}{said}",
        hint="try again later; if it lasts, check the endpoint in config.toml",
        status=response.status,
        response=response.raw,
    )


def _said(response: HttpResponse, secrets: tuple[str, ...]) -> str:
    """What the server said of a refusal, in its own words: X's ``{"errors": [...]}``,
    the OAuth Problem Reporting form (``oauth_problem=...``), or its text."""
    if _is_html(response):
        return ""
    text = response.content.decode("utf-8", "replace")
    said = text
    try:
        data = response.json()
    except ProviderError:
        form = dict(urllib.parse.parse_qsl(text))
        if form.get("oauth_problem"):
            advice = form.get("oauth_problem_advice", "")
            said = form["oauth_problem"] + (f" ({advice})" if advice else "")
    else:
        errors = data.get("errors") if isinstance(data, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            said = f"{errors[0].get('message', '')} (code {errors[0].get('code')})"
    said = grants.clean(said, secrets, 120)
    return f": {said}" if said else ""


def _is_html(response: HttpResponse) -> bool:
    head = response.content.lstrip()[:200].lower()
    return "html" in response.content_type or head.startswith((b"<!doctype", b"<html", b"<"))


def parse_credentials(response: HttpResponse, secrets: tuple[str, ...] = ()) -> Credentials:
    """A token endpoint's answer (RFC 5849 §2.1, §2.3): a form with ``oauth_token`` and
    ``oauth_token_secret``. Anything else is a ProviderError naming what came."""
    where = f"{response.what} ({safe_url(response.url)})"
    if not 200 <= response.status < 300:
        raise refusal(response, secrets)
    if _is_html(response):
        raise ProviderError(
            f"{where} answered with an HTML page, not OAuth 1.0a credentials",
            hint="check the endpoint in config.toml; a proxy or login page may be in the way",
            status=response.status,
            response=response.raw,
        )
    try:
        text = response.content.decode("utf-8")
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        pairs = []
    values = dict(pairs)
    missing = [n for n in ("oauth_token", "oauth_token_secret") if not values.get(n)]
    if missing:
        raise ProviderError(
            f"{where} answered without {' and '.join(missing)}",
            hint="the server is not speaking OAuth 1.0a here; check the endpoint in config.toml",
            status=response.status,
            response=response.raw,
        )
    token = grants.check_token(values.pop("oauth_token"), where, server=True)
    secret = grants.check_token(
        values.pop("oauth_token_secret"), where, server=True, what="token secret"
    )
    extra = {
        k: v
        for k, v in values.items()
        if k in ("user_id", "screen_name", "oauth_callback_confirmed")
    }
    return Credentials(token, secret, extra)


def request_token(url: str, consumer: Consumer, callback: str) -> Flow[Credentials]:
    """RFC 5849 §2.1: temporary credentials, with ``oauth_callback`` (``oob`` for a PIN)."""
    client = _client(consumer, callback=callback, signature_type=DANCE_TYPE)
    request = _signed_post(client, url, "the request-token endpoint", (consumer.secret,))
    response = yield request
    assert response is not None
    try:
        temporary = parse_credentials(response, request.secrets)
    except InvalidCredentials as exc:
        exc.error = "consumer_refused"  # the app's key or secret: the one thing to ask again
        raise
    if temporary.extra.get("oauth_callback_confirmed") != "true":
        raise ProviderError(
            f"the request-token endpoint ({safe_url(url)}) did not confirm the callback "
            "(oauth_callback_confirmed=true): not an OAuth 1.0a server",
            hint="check request_token_url in config.toml",
            status=response.status,
        )
    return temporary


def authorize_address(url: str, temporary: Credentials) -> str:
    """RFC 5849 §2.2: where the person authorizes the temporary credentials."""
    separator = "&" if urllib.parse.urlsplit(url).query else "?"
    return url + separator + urllib.parse.urlencode({"oauth_token": temporary.token})


def access_token(
    url: str, consumer: Consumer, temporary: Credentials, verifier: str
) -> Flow[Credentials]:
    """RFC 5849 §2.3: the temporary credentials and the verifier, for the access token."""
    client = _client(
        consumer,
        temporary.token,
        temporary.secret,
        verifier=verifier,
        signature_type=DANCE_TYPE,
    )
    request = _signed_post(
        client,
        url,
        "the access-token endpoint",
        (consumer.secret, temporary.token, temporary.secret, verifier),
    )
    response = yield request
    assert response is not None
    return parse_credentials(response, request.secrets)


def revoke(url: str, consumer: Consumer, token: str, token_secret: str) -> Flow[None]:
    """Invalidate the access token (X: ``POST /1.1/oauth/invalidate_token``, signed)."""
    client = _client(consumer, token, token_secret, signature_type=DANCE_TYPE)
    request = _signed_post(
        client, url, "the revoke endpoint", (consumer.secret, token, token_secret)
    )
    response = yield request
    assert response is not None
    if not 200 <= response.status < 300:
        raise refusal(response, request.secrets)
    return None


# -- the logins ----------------------------------------------------------------------------


def pin_login(
    endpoints: Endpoints, consumer: Consumer, *, tries: int = PIN_TRIES
) -> Flow[Credentials]:
    """Out of band (``oauth_callback=oob``): the person opens the address, allows access
    and types the PIN it shows; a PIN the server refuses is asked again, ``tries`` in all."""
    temporary = yield from request_token(endpoints.request_token_url, consumer, "oob")
    address = authorize_address(endpoints.authorize_url, temporary)
    for left in range(tries - 1, -1, -1):
        pin = yield AskPin(address, tries_left=left + 1, first=left == tries - 1)
        assert isinstance(pin, str)
        try:
            return (
                yield from access_token(
                    endpoints.access_token_url, consumer, temporary, pin.strip()
                )
            )
        except InvalidCredentials as exc:
            if not left:
                raise InvalidCredentials(
                    f"the PIN was refused {tries} times; the login ended",
                    hint="start the login again and type the PIN the page shows",
                ) from exc
    raise AssertionError("unreachable")  # pragma: no cover


def browser_login(
    endpoints: Endpoints,
    consumer: Consumer,
    *,
    redirect_uri: str | None = None,
    timeout: float = 300.0,
) -> Flow[Credentials]:
    """The callback to a one-shot listener on 127.0.0.1 (RFC 5849 §2.2). A callback
    whose ``oauth_token`` is not this login's temporary token, or that was denied,
    ends the login; its verifier is never sent."""
    bound = yield grants.listen(redirect_uri)
    assert isinstance(bound, str)
    temporary = yield from request_token(endpoints.request_token_url, consumer, bound)
    yield OpenBrowser(authorize_address(endpoints.authorize_url, temporary))
    params = yield AwaitCallback(timeout=timeout)
    assert isinstance(params, dict)
    problem = callback_problem(params, temporary)
    if problem is not None:
        yield Finish(ok=False, message=problem.message)
        raise problem
    try:
        done = yield from access_token(
            endpoints.access_token_url, consumer, temporary, params["oauth_verifier"]
        )
    except KeyfobError as exc:
        yield Finish(ok=False, message=exc.message)
        raise
    yield Finish(ok=True, message="You are logged in, and keyfob has the access token.")
    return done


def callback_problem(params: Mapping[str, str], temporary: Credentials) -> KeyfobError | None:
    """What is wrong with a callback, or None: denied, another login's, or no verifier."""
    if "denied" in params:
        return InvalidCredentials(
            "the login was refused in the browser (denied)",
            hint="start the login again and allow access",
        )
    got = params.get("oauth_token", "").encode()
    if not hmac.compare_digest(got, temporary.token.encode()):
        return InvalidCredentials(
            "the login callback did not carry this login's request token: it was forged, "
            "or belongs to another login; its verifier was not used",
            hint="start the login again",
        )
    if not params.get("oauth_verifier"):
        return InvalidCredentials(
            "the login callback carried no oauth_verifier", hint="start the login again"
        )
    return None


def read_rsa_key(path: str, where: Callable[[], str]) -> str:
    """The PEM text of an RSA private key file; a ConfigError naming the key and file."""
    try:
        with open(path, encoding="ascii") as f:
            text = f.read(1 << 16)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{where()}: cannot read rsa_key {path!r} ({type(exc).__name__})",
            hint="give the path of a PEM file holding the RSA private key",
        ) from None
    if "PRIVATE KEY-----" not in text:
        raise ConfigError(
            f"{where()}: rsa_key {path!r} holds no PEM private key",
            hint="give the path of a PEM file holding the RSA private key",
        )
    return text
