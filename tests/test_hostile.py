"""Attacks from a hostile server and hostile tokens (issue 12), each performed here.

The attacker is the emulator with a hostile fault (``LocalProvider.garbage``), a
small purpose-built server on 127.0.0.1, or a token with bytes no token has. Each
attack ends in one line on stderr with the documented exit code, and no secret,
no token and no control character in any output.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import json
import logging
import threading
import time
import tracemalloc
import urllib.parse
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

import keyfob
from conftest import CliRun, Leaks, one_line_error
from keyfob import grants
from keyfob.body import BodyReader, total_deadline
from keyfob.config import HttpSettings
from keyfob.errors import InvalidCredentials, ProviderError, TransportError
from keyfob.flow import HttpRequest, HttpResponse, ShowCode, Sleep
from keyfob.provider import oauth2, treesnap
from keyfob.testing import DEMO_CLIENT_ID, DEMO_USERNAME, LocalProvider
from keyfob.transport import Transport
from netparts import AsyncDriver, Driver

NOW = 1_700_000_000.0
HOSTILE = "hostile-token"  # what the emulator's hostile faults put into a token


class Hostile:
    """A small server on 127.0.0.1 that answers every request with ``answer(handler)``:
    the attacker, when the emulator cannot misbehave this way."""

    def __init__(
        self, answer: Callable[[BaseHTTPRequestHandler], None], host: str = "127.0.0.1"
    ) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                outer.requests.append((self.command, self.path, dict(self.headers.items())))
                with contextlib.suppress(OSError):
                    answer(self)

            do_GET = do_POST = _any

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Hostile:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def send_json(handler: BaseHTTPRequestHandler, payload: Any, status: int = 200) -> None:
    body = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def answer(payload: Any, status: int = 200) -> HttpResponse:
    body = json.dumps(payload).encode()
    return HttpResponse(
        status, {"content-type": "application/json"}, body, "http://127.0.0.1:1/token"
    )


# ----------------------------------------------------- 2, 3, 15: tokens with control characters
def test_treesnap_token_with_a_line_break_in_the_environment_exits_3_naming_the_variable(
    configured: LocalProvider, cli: CliRun, no_secret_leaks: Leaks
) -> None:
    token = configured.issue_treesnap_token()
    broken = token[:20] + "\n" + token[20:]
    no_secret_leaks.plant(token[:20], token[20:])
    done = cli("header", "treesnap", env={"TREESNAP_TOKEN": broken})
    assert done.returncode == 3
    line = one_line_error(done.stderr)
    assert "TREESNAP_TOKEN" in line
    assert done.stdout == ""


def test_token_with_a_lone_surrogate_exits_3_instead_of_crashing(
    configured: LocalProvider, cli: CliRun, no_secret_leaks: Leaks
) -> None:
    # a byte that is not UTF-8 in the environment reaches Python as a lone surrogate
    no_secret_leaks.plant("personal-token-part")
    done = cli("token", "treesnap", env={"TREESNAP_TOKEN": "personal-token-part\udcff"})
    assert done.returncode == 3
    assert "TREESNAP_TOKEN" in one_line_error(done.stderr)


@pytest.mark.parametrize("kind", ["access_token_newline", "access_token_surrogate"])
def test_server_token_with_control_or_non_ascii_characters_exits_4(
    configured: LocalProvider, cli: CliRun, no_secret_leaks: Leaks, kind: str
) -> None:
    no_secret_leaks.plant(HOSTILE)
    configured.garbage("/std/token", kind)
    done = cli("header", "local")
    assert done.returncode == 4
    assert "/std/token" in one_line_error(done.stderr)
    assert done.stdout == ""


def test_inaturalist_jwt_with_a_line_break_exits_4(
    configured: LocalProvider, cli: CliRun, no_secret_leaks: Leaks
) -> None:
    no_secret_leaks.plant(HOSTILE)
    configured.garbage("/users/api_token", "access_token_newline")
    done = cli("token", "inaturalist")
    assert done.returncode == 4
    assert "api_token" in one_line_error(done.stderr)


def test_token_type_with_crlf_is_refused_and_no_second_header_is_printed(
    configured: LocalProvider, cli: CliRun
) -> None:
    configured.garbage("/std/token", "token_type_crlf")
    done = cli("header", "local")
    assert done.returncode == 4
    assert "token_type" in one_line_error(done.stderr)
    assert "X-Injected" not in done.stdout + done.stderr


PASTED = "pasted-secret-part"


@pytest.mark.parametrize("bad", [" en", "\ten", "\r\nX: y", "\x00", "\x7f", "ö", "\ud800"])
def test_pasted_token_outside_visible_ascii_is_refused_naming_where_it_came_from(
    bad: str, no_secret_leaks: Leaks
) -> None:
    no_secret_leaks.plant(PASTED)
    with pytest.raises(InvalidCredentials) as info:
        oauth2.pasted(PASTED + bad, NOW, "the environment (LOCAL_TOKEN)")
    no_secret_leaks.add("the error", str(info.value))
    assert "LOCAL_TOKEN" in str(info.value)
    assert info.value.exit_code == 3
    with pytest.raises(InvalidCredentials) as info:
        treesnap.personal(PASTED + bad, NOW, "the keyring")
    no_secret_leaks.add("the error", str(info.value))


def test_token_with_percent_as_x_bearer_tokens_have_is_accepted() -> None:
    value = "AAAAAAAAAAAAAAAAAAAAAMLheAAAAAAA0%2BuSeid%2BULvsea4JtiGRiSDSJSI%3DEUifiRBkKG5E2X"
    assert oauth2.pasted(value, NOW).access_token == value
    token = grants.parse_token_response(
        answer({"access_token": value, "token_type": "bearer"}), requested_at=NOW
    )
    assert token.authorization == f"Bearer {value}"


@given(st.text(max_size=40), st.text(max_size=20))
def test_a_parsed_token_never_holds_what_could_break_a_header(
    access_token: str, token_type: str
) -> None:
    try:
        token = grants.parse_token_response(
            answer({"access_token": access_token, "token_type": token_type}), requested_at=NOW
        )
    except ProviderError as exc:
        assert exc.exit_code == 4
        return
    assert token.authorization.isascii()
    assert token.authorization.isprintable()
    assert token.authorization.count(" ") == 1


def test_network_failure_never_quotes_the_exception_text(
    local: LocalProvider, no_secret_leaks: Leaks, caplog: pytest.LogCaptureFixture
) -> None:
    # h11 refuses the header and quotes it: "Illegal header value b'Bearer ...'"; a server
    # listens, so the request gets as far as h11 (a closed port would refuse it before).
    # httpcore's DEBUG trace quotes h11's error too: no token keyfob makes holds a line
    # break, so only this made-up header gets there; that trace is not what is tested here.
    caplog.set_level(logging.INFO, logger="httpcore")
    no_secret_leaks.plant("secret-in-a-header")
    request = HttpRequest(
        "GET",
        f"{local.url}/std/token",
        headers={"Authorization": "Bearer secret-in-a-header\n"},
    )
    transport = Transport(HttpSettings(retries=0, connect_timeout=2, timeout=2))
    try:
        with pytest.raises(TransportError) as info:
            transport.send(request)
    finally:
        transport.close()
    no_secret_leaks.add("the error", str(info.value))
    assert "could not be sent" in str(info.value)
    assert "secret-in-a-header" in repr(info.value.__context__)  # what was kept out


def test_refresh_token_from_the_environment_with_a_line_break_exits_3(
    configured: LocalProvider, cli: CliRun, no_secret_leaks: Leaks
) -> None:
    no_secret_leaks.plant("refresh-part")
    done = cli("token", "local", env={"LOCAL_REFRESH_TOKEN": "refresh-part\nrest"})
    assert done.returncode == 3
    assert "LOCAL_REFRESH_TOKEN" in one_line_error(done.stderr)


# ----------------------------------------------------- 4: a server that echoes the request
def wire_forms(*secrets: str) -> set[str]:
    """Each secret as the wire carries it, and as a server might quote it back."""
    forms = set()
    for secret in secrets:
        forms |= {
            secret,
            urllib.parse.quote_plus(secret),
            urllib.parse.quote(secret, safe=""),
        }
    return forms


@pytest.mark.parametrize("client_auth", ["client_secret_basic", "client_secret_post"])
def test_a_server_echoing_the_request_shows_no_secret_in_any_encoding(
    configured: LocalProvider,
    home: Path,
    cli: CliRun,
    no_secret_leaks: Leaks,
    client_auth: str,
) -> None:
    password, secret = "PW secret@home-123", "cs secret/456+x"
    configured.add_oauth_user(DEMO_USERNAME, password)
    configured.add_oauth_client(DEMO_CLIENT_ID, secret)
    basic = base64.b64encode(
        f"{urllib.parse.quote_plus(DEMO_CLIENT_ID)}:{urllib.parse.quote_plus(secret)}".encode()
    ).decode()
    no_secret_leaks.plant(*wire_forms(password, secret), basic)
    with (home / "config.toml").open("a") as fh:
        fh.write(f'\n[providers.echo]\ntoken_url = "{configured.url}/std/token"\n')
        fh.write(f'grant = "password"\nenv_prefix = "LOCAL"\nclient_auth = "{client_auth}"\n')
    configured.garbage("/std/token", "echo")
    done = cli("token", "echo", env={"LOCAL_PASSWORD": password, "LOCAL_CLIENT_SECRET": secret})
    assert done.returncode == 4
    line = one_line_error(done.stderr)
    assert "invalid_request" in line
    assert "grant_type=" in line  # the rest of the echo is still there
    for form in (*wire_forms(password, secret), basic):
        assert form not in line


@given(
    st.text(min_size=4, max_size=30).filter(lambda s: s.strip() == s and s.strip()),
    st.sampled_from(["raw", "plus", "quote", "quote_lower", "json"]),
    st.text(max_size=20),
)
def test_clean_cuts_out_a_secret_in_every_wire_form(secret: str, form: str, around: str) -> None:
    encoded = {
        "raw": secret,
        "plus": urllib.parse.quote_plus(secret),
        "quote": urllib.parse.quote(secret, safe=""),
        "quote_lower": urllib.parse.quote(secret, safe="").lower(),
        "json": json.dumps(secret)[1:-1],
    }[form]
    if form == "quote_lower" and encoded.lower() != encoded.upper().lower():
        return  # lower-casing changed the secret's own letters, not just the hex
    out = grants.clean(f"{around} {encoded} {around}", (secret,), limit=10_000)
    assert secret not in out
    assert urllib.parse.quote_plus(secret) not in out
    assert secret not in urllib.parse.unquote_plus(out)


def test_token_request_carries_the_basic_headers_base64_as_a_secret() -> None:
    request = grants.token_request(
        "http://127.0.0.1:1/token",
        {"grant_type": "client_credentials"},
        client_id="my-client",
        client_secret="my-client-secret",
    )
    basic = base64.b64encode(b"my-client:my-client-secret").decode()
    message = grants.clean(f"you sent Basic {basic}", request.secrets)
    assert basic not in message


# ----------------------------------------------------- 8: absurd lifetimes
TEN_YEARS = 10 * 365 * 86400


def test_an_absurd_expires_in_is_clamped_and_token_json_still_works(
    configured: LocalProvider, cli: CliRun
) -> None:
    configured.garbage("/std/token", "expires_in_huge")  # "expires_in": 1e300
    done = cli("token", "local", "--json")
    assert done.returncode == 0, done.stderr
    left = json.loads(done.stdout)["expires_at_epoch"] - time.time()
    assert TEN_YEARS - 60 < left <= TEN_YEARS


@given(st.floats(min_value=0, allow_infinity=False, allow_nan=False) | st.integers(0, 10**300))
def test_any_expires_in_gives_a_token_whose_expiry_can_be_shown(expires_in: float) -> None:
    token = grants.parse_token_response(
        answer({"access_token": "tok", "expires_in": expires_in, "refresh_expires_in": expires_in}),
        requested_at=NOW,
    )
    assert token.expires is not None and token.expires <= NOW + TEN_YEARS
    assert token.refresh_expires is not None and token.refresh_expires <= NOW + TEN_YEARS
    assert token.expires_at is not None
    assert "expires=" in repr(token)


def test_a_clamped_lifetime_is_said_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    grants.parse_token_response(
        answer({"access_token": "tok", "expires_in": 1e15}), requested_at=NOW
    )
    assert any(
        "expires_in" in r.getMessage() and "ten years" in r.getMessage() for r in caplog.records
    )


# ----------------------------------------------------- 10: discovery names its issuer
def hostile_discovery(issuer: object) -> Callable[[BaseHTTPRequestHandler], None]:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        host = f"http://{handler.headers['Host']}"
        document = {"token_endpoint": f"{host}/token"}
        if issuer is not None:
            document["issuer"] = issuer if issuer != "itself" else host
        send_json(handler, document if handler.command == "GET" else {"access_token": "x"})

    return answer


@pytest.mark.parametrize("issuer", [None, 42, ["x"], "https://elsewhere.example"])
def test_discovery_without_its_issuer_is_refused_before_the_secret_is_sent(
    home: Path, cli: CliRun, no_secret_leaks: Leaks, issuer: object
) -> None:
    secret = "client-secret-for-discovery"
    no_secret_leaks.plant(secret)
    with Hostile(hostile_discovery(issuer)) as server:
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text(
            f'[providers.hostile]\nissuer = "{server.url}"\ngrant = "client_credentials"\n'
            'env_prefix = "HOSTILE"\n'
        )
        done = cli(
            "token",
            "hostile",
            env={"HOSTILE_CLIENT_ID": "client", "HOSTILE_CLIENT_SECRET": secret},
        )
    assert done.returncode == 4
    line = one_line_error(done.stderr)
    assert "issuer" in line and "config.toml" in line
    assert [method for method, _, _ in server.requests] == ["GET"]


def test_discovery_naming_its_issuer_is_used(home: Path, cli: CliRun) -> None:
    with Hostile(hostile_discovery("itself")) as server:
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text(
            f'[providers.honest]\nissuer = "{server.url}"\ngrant = "client_credentials"\n'
            'env_prefix = "HONEST"\n'
        )
        done = cli("token", "honest", env={"HONEST_CLIENT_ID": "c", "HONEST_CLIENT_SECRET": "s"})
    assert done.returncode == 0, done.stderr
    assert [method for method, _, _ in server.requests] == ["GET", "POST"]


# ----------------------------------------------------- 11: the device prompt
class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def device_flow(clock: Clock, **authorization: Any) -> Any:
    flow = grants.device_login(
        device_url="https://id.example.test/device",
        token_url="https://id.example.test/token",
        client_id="client",
        client_secret=None,
        clock=clock,
    )
    next(flow)
    body = {
        "device_code": "device-code-123",
        "user_code": "WDJB-MJHT",
        "verification_uri": "https://id.example.test/device",
        "expires_in": 600,
        **authorization,
    }
    return flow, flow.send(answer(body))


@pytest.mark.parametrize(
    "uri",
    [
        "https://id.example.test/device\x1b]8;;https://evil.example\x1b\\",
        "https://id.example.test/device\x1b[2J",
        "https://id.example.test/\u202edevice",
        "http://evil.example/device",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "https:///no-host",
    ],
)
@pytest.mark.parametrize("field", ["verification_uri", "verification_uri_complete"])
def test_device_prompt_refuses_a_uri_with_escapes_or_another_scheme(uri: str, field: str) -> None:
    with pytest.raises(ProviderError) as info:
        device_flow(Clock(), **{field: uri})
    assert info.value.exit_code == 4
    assert field in str(info.value)
    assert "\x1b" not in info.value.one_line()


def test_device_prompt_takes_http_to_loopback() -> None:
    _, shown = device_flow(Clock(), verification_uri="http://127.0.0.1:8080/device")
    assert isinstance(shown, ShowCode)
    assert shown.verification_uri == "http://127.0.0.1:8080/device"


@given(st.text(max_size=60))
def test_a_shown_verification_uri_is_always_visible_https(uri: str) -> None:
    try:
        _, shown = device_flow(Clock(), verification_uri="https://" + uri)
    except ProviderError:
        return
    assert shown.verification_uri.isascii() and shown.verification_uri.isprintable()
    assert shown.verification_uri.startswith("https://")


@pytest.mark.parametrize("interval", [0, 0.001, "0"])
def test_device_flow_polls_no_faster_than_once_a_second(interval: Any) -> None:
    clock = Clock()
    flow, _ = device_flow(clock, interval=interval)
    polls = 0
    effect = flow.send(None)
    while clock.now < NOW + 5:
        assert isinstance(effect, Sleep)
        assert effect.seconds >= 1.0
        clock.now += effect.seconds
        effect = flow.send(None)
        assert isinstance(effect, HttpRequest)
        polls += 1
        effect = flow.send(answer({"error": "authorization_pending"}, 400))
    assert polls <= 5


# ----------------------------------------------------- 5, 6: answers without end
@pytest.fixture(params=["sync", "async"])
def driver(request: pytest.FixtureRequest) -> Driver:
    return AsyncDriver() if request.param == "async" else Driver()


def send(driver: Driver, url: str, **settings: Any) -> HttpResponse:
    base = {"connect_timeout": 2.0, "timeout": 5.0, "retries": 0}
    transport = Transport(HttpSettings(**{**base, **settings}))
    try:
        return driver.send(transport, HttpRequest("POST", url + "/token", form={"a": "b"}))
    finally:
        transport.close()


def endless(handler: BaseHTTPRequestHandler) -> None:
    """A token answer that claims 100 MB and keeps sending until the client hangs up."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(100 * 1024 * 1024))
    handler.end_headers()
    handler.wfile.write(b'{"access_token": "')
    chunk = b"a" * 65536
    for _ in range(1600):
        handler.wfile.write(chunk)


BOMB = gzip.compress(b'{"access_token": "' + b"a" * 64_000_000 + b'"}', 9)


def bomb(handler: BaseHTTPRequestHandler) -> None:
    """A 60 KB gzip answer that inflates to 64 MB."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Encoding", "gzip")
    handler.send_header("Content-Length", str(len(BOMB)))
    handler.end_headers()
    handler.wfile.write(BOMB)


@pytest.mark.parametrize("answer_with", [endless, bomb], ids=["100MB", "gzip-bomb"])
def test_an_answer_past_1_mib_is_refused_while_reading_it(
    driver: Driver, answer_with: Callable[[BaseHTTPRequestHandler], None]
) -> None:
    tracemalloc.start()
    try:
        with Hostile(answer_with) as server, pytest.raises(ProviderError) as info:
            send(driver, server.url)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "more than 1024 KiB" in info.value.one_line()
    assert info.value.exit_code == 4
    assert peak < 16 * 1024 * 1024


def test_a_compressed_answer_under_the_cap_is_decoded(driver: Driver) -> None:
    payload = json.dumps({"access_token": "compressed-token", "expires_in": 60}).encode()

    def compressed(handler: BaseHTTPRequestHandler) -> None:
        body = gzip.compress(payload)
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    with Hostile(compressed) as server:
        response = send(driver, server.url)
    assert response.content == payload
    assert server.requests[0][2]["Accept-Encoding"] == "gzip, deflate"


def drip(handler: BaseHTTPRequestHandler) -> None:
    """Headers at once, then the body one byte every 50 ms: each read well inside the
    read timeout, the whole answer never."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", "400")
    handler.end_headers()
    for _ in range(400):
        handler.wfile.write(b" ")
        handler.wfile.flush()
        time.sleep(0.05)


def drip_headers(handler: BaseHTTPRequestHandler) -> None:
    """The status line and headers one byte every 50 ms."""
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 400:
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()
        time.sleep(0.05)


def test_a_dripping_answer_ends_at_the_total_deadline(driver: Driver) -> None:
    # whole, the answer takes 20 s and no read waits past the read timeout: only
    # the total deadline ends it
    with Hostile(drip) as server, pytest.raises(TransportError) as info:
        send(driver, server.url, connect_timeout=0.2, timeout=0.4)  # deadline: 1 s
    assert "did not finish answering within 1 s" in info.value.one_line()
    assert info.value.exit_code == 4


def test_dripping_headers_end_at_the_total_deadline(driver: Driver) -> None:
    with Hostile(drip_headers) as server, pytest.raises(TransportError) as info:
        send(driver, server.url, connect_timeout=0.2, timeout=0.4)
    assert "within 1 s" in info.value.one_line()


def test_total_deadline_is_connect_plus_twice_the_read_timeout() -> None:
    assert total_deadline(5, 30) == 65


@given(st.binary(max_size=4096), st.integers(1, 512), st.sampled_from(["", "gzip", "deflate"]))
def test_body_reader_gives_back_what_was_sent_in_any_chunking(
    data: bytes, size: int, encoding: str
) -> None:
    wire = {"": data, "gzip": gzip.compress(data), "deflate": zlib.compress(data)}[encoding]
    reader = BodyReader("the token endpoint", encoding, deadline=float("inf"), seconds=1)
    for start in range(0, len(wire), size):
        reader.feed(wire[start : start + size])
    assert reader.finish() == data


@given(st.integers(1, 3000), st.sampled_from(["", "gzip", "deflate"]))
def test_body_reader_refuses_one_byte_past_its_limit(size: int, encoding: str) -> None:
    data = b"x" * size
    wire = {"": data, "gzip": gzip.compress(data), "deflate": zlib.compress(data)}[encoding]
    reader = BodyReader("x", encoding, deadline=float("inf"), seconds=1, limit=size - 1)
    with pytest.raises(ProviderError):
        reader.feed(wire)
        reader.finish()


def test_body_reader_refuses_an_encoding_it_cannot_read() -> None:
    with pytest.raises(ProviderError) as info:
        BodyReader("the token endpoint", "br", deadline=float("inf"), seconds=1)
    assert "(br)" in str(info.value)


def test_a_huge_token_answer_is_one_line_exit_4_at_the_command_line(
    home: Path, cli: CliRun
) -> None:
    with Hostile(endless) as server:
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text(
            f'[providers.huge]\ntoken_url = "{server.url}/token"\ngrant = "client_credentials"\n'
            'env_prefix = "HUGE"\n'
        )
        done = cli("token", "huge", env={"HUGE_CLIENT_ID": "c", "HUGE_CLIENT_SECRET": "s"})
    assert done.returncode == 4
    assert "more than 1024 KiB" in one_line_error(done.stderr)


# ----------------------------------------------------- 17: a 401 from a host without the token
def by_requests(url: str) -> int:
    return requests.get(url, auth=keyfob.requests_auth("local"), timeout=5).status_code


def by_httpx(url: str) -> int:
    with httpx.Client(auth=keyfob.httpx_auth("local"), follow_redirects=True) as client:
        return client.get(url).status_code


def by_async_httpx(url: str) -> int:
    async def get() -> int:
        auth = keyfob.httpx_auth("local")
        async with httpx.AsyncClient(auth=auth, follow_redirects=True) as client:
            return (await client.get(url)).status_code

    return asyncio.run(get())


@pytest.mark.parametrize("get", [by_requests, by_httpx, by_async_httpx])
def test_a_401_after_a_redirect_to_another_host_keeps_the_token_and_sends_it_nowhere(
    configured: LocalProvider, get: Callable[[str], int]
) -> None:
    keyfob.get_token("local")
    configured.reset_counts()
    with LocalProvider() as other:  # another host: by the name localhost
        other.fail("/elsewhere", 401)
        elsewhere = other.url.replace("127.0.0.1", "localhost") + "/elsewhere"
        configured.redirect("/api", elsewhere)
        assert get(configured.url + "/api") == 401
        assert other.authorizations("/elsewhere") == [""]  # B saw no token
    assert configured.authorizations("/api") == ["Bearer"]  # A got the token, once
    assert configured.count("/std/token") == 0  # no new token for a host that saw none
