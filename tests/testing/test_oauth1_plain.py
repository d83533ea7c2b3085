"""The emulator's plain OAuth 1.0a server (``/oauth1``, Trello and Flickr style), driven by
oauthlib's own Client: every signature method in every signature type, end to end, and
its refusals said with ``oauth_problem``."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oauthlib.oauth1 import Client

from keyfob.testing import (
    DEMO_OAUTH1_CONSUMER_KEY,
    DEMO_OAUTH1_CONSUMER_SECRET,
    LocalProvider,
)
from testing.oauth1_client import (
    CALLBACK,
    FORM,
    HTTP,
    access_token,
    authorize,
    consumer,
    form,
    login,
    request_token,
    send,
    signed_by,
    verifier_of,
)

METHODS = ("HMAC-SHA1", "HMAC-SHA256", "RSA-SHA1", "PLAINTEXT")
TYPES = ("AUTH_HEADER", "QUERY", "BODY")
RSA_CONSUMER = "demo-rsa-consumer-key"


@pytest.fixture(scope="module")
def rsa_key(lp: LocalProvider) -> str:
    """A made-up RSA key pair: its public half registered as an RSA-SHA1 consumer's."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    lp.add_oauth1_consumer(RSA_CONSUMER, "unused-rsa-secret", rsa_public_key=public.decode())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return private.decode()


def _signing(method: str, signature_type: str, rsa_key: str) -> dict[str, str]:
    kw = {"signature_method": method, "signature_type": signature_type}
    if method == "RSA-SHA1":
        kw |= {"client_key": RSA_CONSUMER, "client_secret": "", "rsa_key": rsa_key}
    return kw


@pytest.mark.parametrize("signature_type", TYPES)
@pytest.mark.parametrize("method", METHODS)
def test_every_method_and_type_end_to_end(
    lp: LocalProvider,
    rsa_key: str,
    method: str,
    signature_type: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if signature_type == "QUERY":
        # the signature (with PLAINTEXT, the secrets) is in the URL, which httpx logs
        caplog.set_level(logging.WARNING, logger="httpx")
    kw = _signing(method, signature_type, rsa_key)
    token, secret = request_token(lp, x=False, callback=CALLBACK, **kw)
    verifier = verifier_of(authorize(lp, token, x=False), token)
    got = form(access_token(lp, token, secret, verifier, x=False, **kw))
    assert set(got) == {"oauth_token", "oauth_token_secret"}
    client = signed_by(got["oauth_token"], got["oauth_token_secret"], x=False, **kw)
    url = lp.oauth1_urls()["resource"] + "?q=a+b%2Fc"
    answer = send(url, client, method="POST", data={"note": "ünïcode & more"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["params"] == {"q": "a b/c", "note": "ünïcode & more"}
    assert answer.json()["username"] == "demo-user"


def test_rsa_signature_with_another_key_is_refused(lp: LocalProvider, rsa_key: str) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    client = Client(
        RSA_CONSUMER, signature_method="RSA-SHA1", rsa_key=other.decode(), callback_uri=CALLBACK
    )
    answer = send(lp.oauth1_urls()["request_token"], client, method="POST")
    assert answer.status_code == 401
    assert form(answer)["oauth_problem"] == "signature_invalid"


def test_rsa_signature_of_a_consumer_without_a_key_is_refused(
    lp: LocalProvider, rsa_key: str
) -> None:
    client = Client(
        DEMO_OAUTH1_CONSUMER_KEY,
        signature_method="RSA-SHA1",
        rsa_key=rsa_key,
        callback_uri=CALLBACK,
    )
    answer = send(lp.oauth1_urls()["request_token"], client, method="POST")
    assert answer.status_code == 401
    assert form(answer)["oauth_problem"] == "signature_invalid"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"client_secret": "wrong-consumer-secret"}, "signature_invalid"),
        ({"resource_owner_secret": "wrong-token-secret"}, "signature_invalid"),
        ({"resource_owner_key": "unknown-access-token-0000000000"}, "token_rejected"),
        ({"client_key": "unknown-consumer-key"}, "consumer_key_unknown"),
        ({"timestamp": "1000000000"}, "timestamp_refused"),
    ],
)
def test_refusals_say_their_problem(
    lp: LocalProvider, change: dict[str, str], problem: str
) -> None:
    token, secret = login(lp, x=False)
    args = {
        "client_key": DEMO_OAUTH1_CONSUMER_KEY,
        "client_secret": DEMO_OAUTH1_CONSUMER_SECRET,
        "resource_owner_key": token,
        "resource_owner_secret": secret,
        **change,
    }
    answer = send(lp.oauth1_urls()["resource"], Client(**args))
    assert answer.status_code in (400, 401)
    assert answer.headers["www-authenticate"].startswith("OAuth ")
    assert form(answer)["oauth_problem"] == problem


def test_an_unknown_signature_method_is_rejected(lp: LocalProvider) -> None:
    client = Client(**consumer(x=False, callback_uri=CALLBACK, signature_method="HMAC-SHA512"))
    answer = send(lp.oauth1_urls()["request_token"], client, method="POST")
    assert answer.status_code == 400
    assert form(answer)["oauth_problem"] == "signature_method_rejected"


def test_flickr_style_get_with_query_signature(lp: LocalProvider) -> None:
    """Flickr asks for its request and access tokens with GET, signed in the query."""
    token, secret = login(lp, x=False, signature_type="QUERY", http_method="GET")
    answer = send(lp.oauth1_urls()["resource"], signed_by(token, secret, x=False))
    assert answer.status_code == 200


def test_reused_nonce_is_refused(lp: LocalProvider) -> None:
    uri, headers, _ = signed_by(*login(lp, x=False), x=False).sign(lp.oauth1_urls()["resource"])
    assert HTTP.get(uri, headers=headers).status_code == 200
    again = HTTP.get(uri, headers=headers)
    assert again.status_code == 401 and form(again)["oauth_problem"] == "nonce_used"


def test_the_timestamp_window_is_a_setting(own: LocalProvider) -> None:
    own.oauth1_timestamp_lifetime = 5
    token, secret = login(own, x=False)
    late = str(int(time.time()) - 30)
    answer = send(own.oauth1_urls()["resource"], signed_by(token, secret, x=False, timestamp=late))
    assert form(answer)["oauth_problem"] == "timestamp_refused"


def test_revoke_stops_the_token(lp: LocalProvider) -> None:
    token, secret = login(lp, x=False)
    urls = lp.oauth1_urls()
    assert send(urls["revoke"], signed_by(token, secret, x=False), method="POST").status_code == 200
    answer = send(urls["resource"], signed_by(token, secret, x=False))
    assert answer.status_code == 401 and form(answer)["oauth_problem"] == "token_rejected"


def test_provider_exports_its_endpoints(lp: LocalProvider) -> None:
    urls = lp.oauth1_urls()
    assert urls["request_token"] == lp.url + "/oauth1/request_token"
    assert lp.oauth1_consumer_key == DEMO_OAUTH1_CONSUMER_KEY
    assert lp.oauth1_consumer_secret == DEMO_OAUTH1_CONSUMER_SECRET
    assert lp.oauth1_environ() == {
        "LOCAL_OAUTH1_CLIENT_ID": DEMO_OAUTH1_CONSUMER_KEY,
        "LOCAL_OAUTH1_CLIENT_SECRET": DEMO_OAUTH1_CONSUMER_SECRET,
    }
    toml = lp.oauth1_config_toml()
    assert 'protocol = "oauth1"' in toml and urls["access_token"] in toml


# --------------------------------------------------------------------------- hostile input
@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


_PARAM = st.sampled_from(
    [
        "oauth_consumer_key",
        "oauth_token",
        "oauth_signature",
        "oauth_signature_method",
        "oauth_timestamp",
        "oauth_nonce",
        "oauth_callback",
        "oauth_verifier",
        "oauth_version",
        "realm",
        "status",
        "x",
    ]
)
_PRINTABLE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
_VALUE = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["HMAC-SHA1", "RSA-SHA1", "PLAINTEXT", "oob", "1.0", "%zz", '"', "=,"]),
    st.integers(0, 2**40).map(str),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(
        [
            "/oauth/request_token",
            "/oauth/access_token",
            "/1.1/statuses/update.json",
            "/oauth1/request_token",
            "/oauth1/access_token",
            "/oauth1/resource",
        ]
    ),
    header=st.lists(st.tuples(_PARAM, _VALUE), max_size=8),
    raw_header=st.one_of(st.none(), _PRINTABLE.map(str.strip).filter(bool)),
    body=st.one_of(st.binary(max_size=60), st.lists(st.tuples(_PARAM, _VALUE)).map(urlencode)),
    query=st.lists(st.tuples(_PARAM, _VALUE), max_size=3).map(urlencode),
)
def test_hostile_requests_are_refused_never_crash(
    lp: LocalProvider,
    http: httpx.Client,
    path: str,
    header: list[tuple[str, str]],
    raw_header: str | None,
    body: bytes | str,
    query: str,
) -> None:
    """Whatever arrives, the server answers a refusal (never 500, never a token)."""
    auth = raw_header or "OAuth " + ", ".join(f'{k}="{quote(v, safe="")}"' for k, v in header)
    answer = http.post(
        f"{lp.url}{path}?{query}",
        headers={"Authorization": auth.strip(), "Content-Type": FORM},
        content=body,
    )
    assert answer.status_code in (400, 401, 403), answer.text
    assert lp.errors == []


def test_importing_the_emulator_leaves_oauthlib_alone() -> None:
    code = "import sys, keyfob.testing; print('oauthlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
