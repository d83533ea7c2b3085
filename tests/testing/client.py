"""How the emulator tests speak to it: urllib only, and one small helper per endpoint."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import quote_plus, urlencode

from keyfob.testing import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_INAT_APP_ID,
    DEMO_INAT_APP_SECRET,
    DEMO_INAT_PASSWORD,
    DEMO_INAT_USERNAME,
    DEMO_PASSWORD,
    DEMO_TWITTER_API_KEY,
    DEMO_TWITTER_API_SECRET,
    DEMO_USERNAME,
    LocalProvider,
)

FORM = "application/x-www-form-urlencoded"


# --------------------------------------------------------------------------- helpers
@dataclass
class Answer:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def basic(user: str, secret: str) -> str:
    raw = f"{quote_plus(user)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def call(
    method: str,
    url: str,
    *,
    form: dict[str, str] | None = None,
    json_body: Any = None,
    raw: bytes | None = None,
    content_type: str | None = None,
    headers: dict[str, str] | None = None,
    bearer: str | None = None,
    auth: tuple[str, str] | None = None,
    timeout: float = 5,
) -> Answer:
    data: bytes | None = None
    all_headers = dict(headers or {})
    if form is not None:
        data = urlencode(form).encode()
        all_headers.setdefault("Content-Type", FORM)
    elif json_body is not None:
        data = json.dumps(json_body).encode()
        all_headers.setdefault("Content-Type", "application/json")
    elif raw is not None:
        data = raw
    if content_type is not None:
        all_headers["Content-Type"] = content_type
    if bearer is not None:
        all_headers["Authorization"] = f"Bearer {bearer}"
    if auth is not None:
        all_headers["Authorization"] = basic(*auth)
    request = urllib.request.Request(url, data=data, headers=all_headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as err:
        with err:
            return Answer(err.code, err.headers, err.read())


def b64url_json(segment: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    header, payload, signature = token.split(".")
    sig = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    return b64url_json(header), b64url_json(payload), sig


# iNaturalist helpers
def inat_token(lp: LocalProvider, **overrides: str) -> Answer:
    form = {
        "grant_type": "password",
        "client_id": DEMO_INAT_APP_ID,
        "client_secret": DEMO_INAT_APP_SECRET,
        "username": DEMO_INAT_USERNAME,
        "password": DEMO_INAT_PASSWORD,
        **overrides,
    }
    return call("POST", lp.url + "/oauth/token", form=form)


def inat_oauth(lp: LocalProvider, **overrides: str) -> str:
    answer = inat_token(lp, **overrides)
    assert answer.status == 200
    token: str = answer.json()["access_token"]
    return token


def inat_jwt(lp: LocalProvider, **overrides: str) -> str:
    answer = call("GET", lp.url + "/users/api_token", bearer=inat_oauth(lp, **overrides))
    assert answer.status == 200
    token: str = answer.json()["api_token"]
    return token


def observation(lp: LocalProvider, authorization: str | None, obs_id: int = 42) -> Answer:
    headers = {} if authorization is None else {"Authorization": authorization}
    return call("GET", f"{lp.url}/v1/observations/{obs_id}", headers=headers)


# TreeSnap helpers
def ts_refresh(lp: LocalProvider, header: str | None, body: str | None) -> Answer:
    form = {} if body is None else {"access_token": body}
    return call("POST", lp.url + "/web-services/v1/refresh-tokens", form=form, bearer=header)


def ts_observations(lp: LocalProvider, token: str | None) -> Answer:
    return call("GET", lp.url + "/web-services/v1/my-observations", bearer=token)


# Twitter helpers
def tw_token(
    lp: LocalProvider,
    auth: tuple[str, str] | None = (DEMO_TWITTER_API_KEY, DEMO_TWITTER_API_SECRET),
    form: dict[str, str] | None = None,
) -> Answer:
    body = {"grant_type": "client_credentials"} if form is None else form
    return call("POST", lp.url + "/oauth2/token", form=body, auth=auth)


def tw_invalidate(
    lp: LocalProvider,
    token: str,
    auth: tuple[str, str] = (DEMO_TWITTER_API_KEY, DEMO_TWITTER_API_SECRET),
) -> Answer:
    form = {"access_token": token}
    return call("POST", lp.url + "/oauth2/invalidate_token", form=form, auth=auth)


# /std helpers
STD_CLIENT = (DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)


def std_token(
    lp: LocalProvider, form: dict[str, str], auth: tuple[str, str] | None = STD_CLIENT
) -> Answer:
    return call("POST", lp.url + "/std/token", form=form, auth=auth)


def std_password(lp: LocalProvider, **extra: str) -> dict[str, Any]:
    form = {"grant_type": "password", "username": DEMO_USERNAME, "password": DEMO_PASSWORD}
    answer = std_token(lp, {**form, **extra})
    assert answer.status == 200
    payload: dict[str, Any] = answer.json()
    return payload


def std_introspect(lp: LocalProvider, token: str) -> dict[str, Any]:
    answer = call("POST", lp.url + "/std/introspect", form={"token": token}, auth=STD_CLIENT)
    assert answer.status == 200
    payload: dict[str, Any] = answer.json()
    return payload


def std_me(lp: LocalProvider, token: str | None) -> Answer:
    return call("GET", lp.url + "/std/api/me", bearer=token)
