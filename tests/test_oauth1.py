"""Any OAuth 1.0a API, declared in config.toml with protocol = "oauth1": its config, every
signature method and type accepted by the emulator's plain OAuth 1.0a server (oauthlib's
endpoints), bad answers, and oauthlib's own debug logs kept out of every output."""

from __future__ import annotations

import asyncio
import http.server
import logging
import ssl
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import trustme
from hypothesis import given, settings
from hypothesis import strategies as st

import keyfob
from conftest import CliRun, Leaks
from keyfob import oauth1, wiring
from keyfob.errors import ConfigError, InvalidCredentials, ProviderError
from keyfob.flow import AskPin, HttpRequest, HttpResponse
from keyfob.testing import DEMO_OAUTH1_CONSUMER_KEY, DEMO_OAUTH1_CONSUMER_SECRET, LocalProvider
from oauth1_people import Browser, write_config

NAME = "local-oauth1"
RSA_CONSUMER = "rsa-consumer-key-0001"


@pytest.fixture
def plain(
    home: Path, local: LocalProvider, monkeypatch: pytest.MonkeyPatch, no_secret_leaks: Leaks
) -> LocalProvider:
    """local-oauth1 declared in config.toml at the emulator's plain OAuth 1.0a server."""
    no_secret_leaks.plant(DEMO_OAUTH1_CONSUMER_SECRET)
    write_config(home, local.oauth1_config_toml(NAME))
    monkeypatch.setenv("LOCAL_OAUTH1_CLIENT_ID", DEMO_OAUTH1_CONSUMER_KEY)
    monkeypatch.setenv("LOCAL_OAUTH1_CLIENT_SECRET", DEMO_OAUTH1_CONSUMER_SECRET)
    wiring.reset()
    return local


def resource(local: LocalProvider) -> str:
    return local.oauth1_urls()["resource"]


@pytest.fixture(scope="module")
def rsa_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """An RSA private key file (for keyfob) and its public half (for the server)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("rsa") / "consumer.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, public.decode()


def configure(
    home: Path,
    local: LocalProvider,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    kind: str,
    rsa_pair: tuple[Path, str],
) -> None:
    extra = f'signature_method = "{method}"\nsignature_type = "{kind}"\n'
    if method == "RSA-SHA1":
        path, public = rsa_pair
        local.add_oauth1_consumer(RSA_CONSUMER, "unused-secret-0123456789", rsa_public_key=public)
        monkeypatch.setenv("LOCAL_OAUTH1_CLIENT_ID", RSA_CONSUMER)
        monkeypatch.delenv("LOCAL_OAUTH1_CLIENT_SECRET")
        extra += f'rsa_key = "{path}"\n'
    write_config(home, local.oauth1_config_toml(NAME) + extra)
    wiring.reset()


# -- every signature method and type, end to end ------------------------------------------


@pytest.mark.parametrize("kind", ["header", "query", "body"])
@pytest.mark.parametrize("method", ["HMAC-SHA1", "HMAC-SHA256", "RSA-SHA1", "PLAINTEXT"])
def test_every_signature_method_and_type_is_accepted_by_the_server(
    plain: LocalProvider,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    rsa_pair: tuple[Path, str],
    caplog: pytest.LogCaptureFixture,
    method: str,
    kind: str,
) -> None:
    configure(home, plain, monkeypatch, method, kind, rsa_pair)
    if kind == "query":
        # The signature (with PLAINTEXT, the secrets) is in the URL, which the HTTP
        # clients log: the reason keyfob's own requests sign in the header.
        caplog.set_level(logging.WARNING, logger="httpx")
        caplog.set_level(logging.INFO, logger="urllib3")
    keyfob.login(NAME, flow="browser", person=Browser())
    url = resource(plain)
    s = keyfob.session(NAME)
    posted = s.post(url + "?page=2", data={"title": "a b&c", "tag": "ü"})
    assert posted.status_code == 200, posted.text
    assert posted.json()["params"] == {"page": "2", "title": "a b&c", "tag": "ü"}
    assert posted.json()["username"] == "demo-user"
    with httpx.Client(auth=keyfob.httpx_auth(NAME)) as client:
        again = client.post(url, data={"title": "from httpx"})
    assert again.status_code == 200, again.text
    if kind != "body":  # a body signature needs a form body to carry it
        got = requests.get(url, params={"q": "x y"}, auth=keyfob.requests_auth(NAME))
        assert got.status_code == 200, got.text
        assert got.json()["params"] == {"q": "x y"}
    assert plain.count("/oauth1/resource") == (2 if kind == "body" else 3)


def test_a_get_with_body_signatures_is_a_config_error(
    plain: LocalProvider, home: Path, monkeypatch: pytest.MonkeyPatch, rsa_pair: Any
) -> None:
    configure(home, plain, monkeypatch, "HMAC-SHA1", "body", rsa_pair)
    keyfob.login(NAME, flow="browser", person=Browser())
    with pytest.raises(ConfigError, match="Body signatures may only be used with form") as e:
        requests.get(resource(plain), auth=keyfob.requests_auth(NAME))
    assert "signature_type = 'body' needs a form body" in e.value.hint
    assert plain.count("/oauth1/resource") == 0


def test_the_pin_flow_of_a_declared_provider(plain: LocalProvider) -> None:
    person = Browser(pins=("0000000",))
    keyfob.login(NAME, flow="pin", person=person)
    assert [a.first for a in person.asked] == [True, False]
    assert keyfob.get_credentials(NAME)["token"] in plain.issued()
    got = requests.get(resource(plain), auth=keyfob.requests_auth(NAME))
    assert got.status_code == 200 and got.json()["user_id"] == "42"


def test_a_declared_provider_reads_its_prefixed_variables(
    plain: LocalProvider, cli: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyfob.login(NAME, flow="browser", person=Browser())
    kept = keyfob.get_credentials(NAME)
    keyfob.logout(NAME)
    monkeypatch.setenv("LOCAL_OAUTH1_TOKEN", kept["token"])
    monkeypatch.setenv("LOCAL_OAUTH1_TOKEN_SECRET", kept["token_secret"])
    url = resource(plain) + "?from=env"
    done = cli("header", NAME, "--url", url)
    assert done.returncode == 0, done.stderr
    value = done.stdout.strip().split(": ", 1)[1]
    assert httpx.get(url, headers={"Authorization": value}).status_code == 200


def test_logout_revoke_of_a_declared_provider(plain: LocalProvider) -> None:
    keyfob.login(NAME, flow="browser", person=Browser())
    kept = keyfob.get_credentials(NAME)
    keyfob.logout(NAME, revoke=True)
    assert plain.count("/oauth1/revoke") == 1
    auth = keyfob.requests_auth(NAME, token=kept["token"], token_secret=kept["token_secret"])
    refused = requests.get(resource(plain), auth=auth)
    assert refused.status_code == 401
    assert "token_rejected" in refused.text


# -- bad answers ---------------------------------------------------------------------------


def test_an_access_token_answer_without_its_secret_exits_4_and_stores_nothing(
    plain: LocalProvider,
) -> None:
    plain.garbage("/oauth1/access_token", "no_token_secret")
    with pytest.raises(ProviderError, match="answered without oauth_token_secret") as e:
        keyfob.login(NAME, flow="browser", person=Browser())
    assert e.value.exit_code == 4
    assert "token" not in keyfob.get_credentials(NAME)


def test_a_refused_consumer_says_so_with_the_servers_problem(
    plain: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCAL_OAUTH1_CLIENT_SECRET", "wrong-consumer-secret-0123")
    with pytest.raises(InvalidCredentials, match="HTTP 401") as e:
        keyfob.login(NAME, flow="browser", person=Browser())
    assert e.value.exit_code == 3
    assert "signature_invalid" in str(e.value)
    assert e.value.error == "consumer_refused"


# -- config --------------------------------------------------------------------------------


def bad_config(home: Path, cli: CliRun, text: str) -> str:
    write_config(home, text)
    done = cli("providers")
    assert done.returncode == 2, done.stderr
    return done.stderr.strip()


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ('protocol = "oauth3"', "protocol must be one of oauth2, oauth1"),
        ('signature_method = "HMAC-MD5"', "signature_method must be one of HMAC-SHA1"),
        ('signature_type = "cookie"', "signature_type must be one of header, query, body"),
        ("signature_method = 1", "signature_method must be one of"),
        ('signature_method = "RSA-SHA1"', "RSA-SHA1 needs rsa_key"),
        ('token_url = "https://example.com/token"', "an OAuth 1.0a provider has no token_url"),
    ],
)
def test_bad_oauth1_config_is_one_line_naming_the_key_and_file(
    plain: LocalProvider, home: Path, cli: CliRun, line: str, said: str
) -> None:
    text = plain.oauth1_config_toml(NAME).replace('protocol = "oauth1"\n', "")
    if not line.startswith("protocol"):
        text += 'protocol = "oauth1"\n'
    err = bad_config(home, cli, text + line + "\n")
    assert said in err and str(home / "config.toml") in err
    assert len(err.splitlines()) == 1


def test_a_declared_provider_needs_its_three_endpoints(home: Path, cli: CliRun) -> None:
    err = bad_config(
        home,
        cli,
        '[providers.flickr]\nprotocol = "oauth1"\n'
        'request_token_url = "https://www.flickr.com/services/oauth/request_token"\n',
    )
    assert "needs authorize_url, access_token_url" in err


def test_plain_http_is_refused_unless_loopback(home: Path, cli: CliRun) -> None:
    err = bad_config(
        home,
        cli,
        '[providers.trello]\nprotocol = "oauth1"\n'
        'request_token_url = "http://trello.example/1/OAuthGetRequestToken"\n'
        'authorize_url = "https://trello.example/1/OAuthAuthorizeToken"\n'
        'access_token_url = "https://trello.example/1/OAuthGetAccessToken"\n',
    )
    assert "refusing plain http:// for [providers.trello] request_token_url" in err


def test_oauth1_keys_on_an_oauth2_provider_are_an_error(home: Path, cli: CliRun) -> None:
    err = bad_config(home, cli, '[providers.twitter]\nsignature_method = "HMAC-SHA1"\n')
    assert "only mean something to an OAuth 1.0a provider" in err


def test_a_mistyped_key_is_a_warning_with_the_nearest_name(
    plain: LocalProvider, home: Path, cli: CliRun
) -> None:
    write_config(home, plain.oauth1_config_toml(NAME) + 'signature_metod = "HMAC-SHA1"\n')
    done = cli("providers")
    assert done.returncode == 0
    assert "did you mean `signature_method`?" in done.stderr


def test_an_unreadable_rsa_key_is_a_config_error_naming_the_key(
    plain: LocalProvider, home: Path, cli: CliRun
) -> None:
    write_config(
        home,
        plain.oauth1_config_toml(NAME) + 'signature_method = "RSA-SHA1"\nrsa_key = "missing.pem"\n',
    )
    done = cli("login", NAME, "--flow", "browser", "--no-browser")
    assert done.returncode == 2
    assert "cannot read rsa_key" in done.stderr and "missing.pem" in done.stderr


def test_pin_is_no_flow_of_an_oauth2_provider(home: Path, cli: CliRun) -> None:
    done = cli("login", "twitter", "--flow", "pin")
    assert done.returncode == 2
    assert "twitter cannot log in with --flow pin" in done.stderr


# -- the flows, sans I/O -------------------------------------------------------------------

CONSUMER = oauth1.Consumer("made-up-consumer-key", "made-up-consumer-secret")


def answer(status: int, body: bytes, kind: str = "application/x-www-form-urlencoded") -> Any:
    return HttpResponse(status, {"content-type": kind}, body, url="https://api.example/x")


def test_the_pin_flow_asks_for_an_oob_request_token_and_shows_the_authorize_address() -> None:
    ends = oauth1.Endpoints(
        "https://api.example/request_token",
        "https://api.example/authorize",
        "https://api.example/access_token",
    )
    flow = oauth1.pin_login(ends, CONSUMER)
    first = next(flow)
    assert isinstance(first, HttpRequest) and first.method == "POST"
    assert 'oauth_callback="oob"' in first.headers["Authorization"]
    ask = flow.send(
        answer(200, b"oauth_token=rt&oauth_token_secret=rs&oauth_callback_confirmed=true")
    )
    assert isinstance(ask, AskPin) and ask.url == "https://api.example/authorize?oauth_token=rt"
    exchange = flow.send(" 1234567 ")
    assert 'oauth_verifier="1234567"' in exchange.headers["Authorization"]
    with pytest.raises(StopIteration) as done:
        flow.send(answer(200, b"oauth_token=at&oauth_token_secret=as&user_id=7"))
    assert (done.value.value.token, done.value.value.secret) == ("at", "as")
    assert done.value.value.extra == {"user_id": "7"}


def test_a_request_token_without_the_callback_confirmed_is_not_oauth_1_0a() -> None:
    flow = oauth1.request_token("https://api.example/request_token", CONSUMER, "oob")
    next(flow)
    with pytest.raises(ProviderError, match="did not confirm the callback"):
        flow.send(answer(200, b"oauth_token=rt&oauth_token_secret=rs"))


@pytest.mark.parametrize(
    ("params", "said"),
    [
        ({"denied": "rt"}, "refused in the browser"),
        ({"oauth_token": "other", "oauth_verifier": "v"}, "forged"),
        ({"oauth_verifier": "v"}, "forged"),
        ({"oauth_token": "rt"}, "no oauth_verifier"),
    ],
)
def test_callback_problems(params: dict[str, str], said: str) -> None:
    problem = oauth1.callback_problem(params, oauth1.Credentials("rt", "rs"))
    assert problem is not None and said in problem.message and problem.exit_code == 3


@settings(max_examples=300, deadline=None)
@given(status=st.sampled_from([200, 201, 400, 401, 403, 500]), body=st.binary(max_size=300))
def test_any_token_answer_is_credentials_or_a_keyfob_error(status: int, body: bytes) -> None:
    try:
        found = oauth1.parse_credentials(answer(status, body))
    except (ProviderError, InvalidCredentials) as exc:
        assert "\n" not in exc.one_line()
    else:
        assert found.token and found.secret and status < 300


def test_a_signer_shows_no_secret_in_its_repr() -> None:
    signer = oauth1.Signer(CONSUMER, "made-up-token", "made-up-token-secret", who="user 1")
    assert "made-up" not in repr(signer) and "made-up" not in repr(CONSUMER)


def test_oauthlib_logs_nothing_below_info_when_keyfob_signs(
    caplog: pytest.LogCaptureFixture, no_secret_leaks: Leaks
) -> None:
    no_secret_leaks.plant("made-up-consumer-secret", "planted-token-secret-77", "planted-token-55")
    for name in ("oauthlib", "oauthlib.oauth1", "oauthlib.oauth1.rfc5849"):
        logging.getLogger(name).setLevel(logging.NOTSET)
    oauth1._quiet = False  # as in a new process
    caplog.set_level(logging.DEBUG)
    signer = oauth1.Signer(CONSUMER, "planted-token-55", "planted-token-secret-77", who="user 1")
    signer.header("POST", "https://api.example/x?a=1", {"b": "2"})
    records = [r for r in caplog.records if r.name.startswith("oauthlib")]
    assert records == [], [r.getMessage()[:80] for r in records]
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "base string" not in text and urllib.parse.quote("POST&") not in text


def test_oauthlib_is_imported_only_when_an_oauth1_provider_signs(
    plain: LocalProvider, home: Path
) -> None:
    write_config(home, plain.oauth1_config_toml(NAME) + 'signature_method = "HMAC-SHA256"\n')
    script = (
        "import sys, keyfob\n"
        "assert any(p.name == 'local-oauth1' for p in keyfob.providers())\n"
        "assert 'oauthlib' not in sys.modules, 'imported by the registry'\n"
        "keyfob.requests_auth('local-oauth1')\n"
        "assert 'oauthlib' not in sys.modules, 'imported by making an adapter'\n"
        "from keyfob.oauth1 import Consumer, Signer\n"
        "Signer(Consumer('made-up-key', 'made-up-secret'), 't', 's', who='u').header('GET', "
        "'https://api.example/x')\n"
        "assert 'oauthlib' in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


class _Busy(http.server.BaseHTTPRequestHandler):
    """An API that answers its first request 429 (Retry-After: 1), then 200, and keeps
    the Authorization header of each."""

    seen: list[str] = []

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization", ""))
        first = len(self.seen) % 2 == 1
        body = b"{}"
        self.send_response(429 if first else 200)
        if first:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def busy() -> Iterator[tuple[str, list[str]]]:
    _Busy.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Busy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api", _Busy.seen
    server.shutdown()
    server.server_close()


def nonce(header: str) -> str:
    return dict(oauth1_params(header))["oauth_nonce"]


def oauth1_params(header: str) -> list[tuple[str, str]]:
    from oauthlib.oauth1.rfc5849.utils import parse_authorization_header

    return list(parse_authorization_header(header))


@pytest.mark.parametrize("client", ["requests", "httpx", "httpx-async"])
def test_a_429_sent_again_is_signed_again_with_a_fresh_nonce(
    plain: LocalProvider, busy: tuple[str, list[str]], client: str
) -> None:
    url, seen = busy
    creds = {"token": "made-up-token-0123456789", "token_secret": "made-up-token-secret-01"}
    if client == "requests":
        status = requests.get(url, auth=keyfob.requests_auth(NAME, **creds)).status_code
    elif client == "httpx":
        with httpx.Client(auth=keyfob.httpx_auth(NAME, **creds)) as c:
            status = c.get(url).status_code
    else:

        async def get() -> int:
            async with httpx.AsyncClient(auth=keyfob.httpx_auth(NAME, **creds)) as c:
                return (await c.get(url)).status_code

        status = asyncio.run(get())
    assert status == 200
    assert len(seen) == 2 and nonce(seen[0]) != nonce(seen[1])


# -- a provider's own client certificate ---------------------------------------------------


def test_the_login_presents_the_providers_client_certificate(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The emulator over https, ending the handshake of a client without a certificate of
    # the tests' CA: the login's requests (request token, access token) carry the one in
    # [providers.local-oauth1], as every other request of that provider does.
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    server.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(server)
    client = ca.issue_cert("client.keyfob.test")
    client.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "client.pem"))
    (tmp_path / "client.pem").chmod(0o600)
    browser = ssl.create_default_context()
    ca.configure_trust(browser)
    client.configure_cert(browser)
    with LocalProvider(ssl_context=server) as strict:
        write_config(
            home,
            f'[http]\nca_bundle = "{tmp_path / "ca.pem"}"\n\n'
            + strict.oauth1_config_toml(NAME)
            + f'client_cert = "{tmp_path / "client.pem"}"\n',
        )
        monkeypatch.setenv("LOCAL_OAUTH1_CLIENT_ID", DEMO_OAUTH1_CONSUMER_KEY)
        monkeypatch.setenv("LOCAL_OAUTH1_CLIENT_SECRET", DEMO_OAUTH1_CONSUMER_SECRET)
        wiring.reset()

        keyfob.login(NAME, flow="browser", person=Browser(context=browser))

        assert strict.count("/oauth1/access_token") == 1
        assert keyfob.get_credentials(NAME)["token"]
