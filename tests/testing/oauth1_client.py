"""How the OAuth 1.0a emulator tests speak to it: oauthlib's own Client over httpx.

Not keyfob's client: the server is proven on its own, by the library it is built on.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from oauthlib.oauth1 import Client

from keyfob.testing import (
    DEMO_OAUTH1_CONSUMER_KEY,
    DEMO_OAUTH1_CONSUMER_SECRET,
    DEMO_TWITTER_API_KEY,
    DEMO_TWITTER_API_SECRET,
    LocalProvider,
)

FORM = "application/x-www-form-urlencoded"
CALLBACK = "http://127.0.0.1:8765/callback"
#: one client for every request of these tests (each new httpx client builds an SSL context)
HTTP = httpx.Client(timeout=10)


def consumer(*, x: bool = True, **kw: Any) -> dict[str, Any]:
    """Client arguments of the demo consumer of X (or of the plain server)."""
    if x:
        key, secret = DEMO_TWITTER_API_KEY, DEMO_TWITTER_API_SECRET
    else:
        key, secret = DEMO_OAUTH1_CONSUMER_KEY, DEMO_OAUTH1_CONSUMER_SECRET
    return {"client_key": key, "client_secret": secret, **kw}


def send(
    url: str,
    client: Client,
    *,
    method: str = "GET",
    data: dict[str, str] | None = None,
    sign_body: bool = True,
    send_url: str | None = None,
) -> httpx.Response:
    """One signed request. ``sign_body=False`` leaves the form body out of the signature;
    ``send_url`` sends it to another URL than the one signed."""
    if data is None and client.signature_type == "BODY":
        data = {}  # the protocol parameters go into a form body of their own
    headers = {"Content-Type": FORM} if data is not None else {}
    body = urlencode(data) if data is not None else None
    if sign_body:
        uri, signed_headers, signed_body = client.sign(url, method, body, headers)
    else:
        uri, signed_headers, signed_body = client.sign(url, method)
    if not sign_body:
        signed_body, signed_headers = body, {**signed_headers, **headers}
    return HTTP.request(method, send_url or uri, headers=signed_headers, content=signed_body)


def form(response: httpx.Response) -> dict[str, str]:
    assert response.headers["content-type"].startswith(FORM), response.text
    return dict(parse_qsl(response.text, strict_parsing=True))


def request_token(
    lp: LocalProvider,
    *,
    x: bool = True,
    callback: str = "oob",
    http_method: str = "POST",
    **kw: Any,
) -> tuple[str, str]:
    urls = lp.oauth1_urls(x=x)
    client = Client(**consumer(x=x, callback_uri=callback, **kw))
    answer = send(urls["request_token"], client, method=http_method)
    assert answer.status_code == 200, answer.text
    got = form(answer)
    assert got["oauth_callback_confirmed"] == "true"
    return got["oauth_token"], got["oauth_token_secret"]


def authorize(lp: LocalProvider, token: str, *, x: bool = True) -> httpx.Response:
    return HTTP.get(lp.oauth1_urls(x=x)["authorize"], params={"oauth_token": token})


def pin_of(page: httpx.Response) -> str:
    """The PIN on X's page, as the person reads it."""
    found = re.search(r"<code>(\d+)</code>", page.text)
    assert found, page.text
    return found.group(1)


def verifier_of(redirect: httpx.Response, token: str) -> str:
    assert redirect.status_code == 302
    query = dict(parse_qsl(urlsplit(redirect.headers["location"]).query))
    assert query["oauth_token"] == token
    return query["oauth_verifier"]


def access_token(
    lp: LocalProvider,
    token: str,
    secret: str,
    verifier: str,
    *,
    x: bool = True,
    http_method: str = "POST",
    **kw: Any,
) -> httpx.Response:
    client = Client(
        **consumer(
            x=x, resource_owner_key=token, resource_owner_secret=secret, verifier=verifier, **kw
        )
    )
    return send(lp.oauth1_urls(x=x)["access_token"], client, method=http_method)


def login(lp: LocalProvider, *, x: bool = True, **kw: Any) -> tuple[str, str]:
    """The PIN flow (X) or the callback flow (plain) end to end: (access token, secret)."""
    if x:
        token, secret = request_token(lp, x=x, **kw)
        verifier = pin_of(authorize(lp, token))
    else:
        token, secret = request_token(lp, x=x, callback=CALLBACK, **kw)
        verifier = verifier_of(authorize(lp, token, x=x), token)
    got = form(access_token(lp, token, secret, verifier, x=x, **kw))
    return got["oauth_token"], got["oauth_token_secret"]


def signed_by(token: str, secret: str, *, x: bool = True, **kw: Any) -> Client:
    return Client(**consumer(x=x, resource_owner_key=token, resource_owner_secret=secret, **kw))


def x_error(response: httpx.Response) -> tuple[int, int]:
    """(status, X's error code)."""
    return response.status_code, response.json()["errors"][0]["code"]
