"""``Transport``, the only code that talks HTTP, against the local emulator over loopback.

Every test that sends runs under the three drivers (``driver``: ``Transport.run``
on httpx.Client, ``Transport.arun`` on httpx.AsyncClient in its own event
loop, ``RequestsTransport.run`` on requests.Session), so they share one
behaviour. Waits are recorded through the injected ``sleep``/``asleep``
instead of slept, so the retry tests take no time and pin the exact waits
keyfob chose.
"""

from __future__ import annotations

import socket
import tomllib
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from hypothesis import example, given, settings
from hypothesis import strategies as st

from keyfob import grants
from keyfob.config import HttpSettings, Settings, check_url
from keyfob.errors import ConfigError, InvalidCredentials, TransportError
from keyfob.flow import Flow, HttpRequest, ShowCode
from keyfob.provider import Provider, registry
from keyfob.requests_transport import RequestsTransport
from keyfob.secretstore import Credentials, resolve
from keyfob.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, LocalProvider
from keyfob.transport import Transport, retry_after
from netparts import DRIVERS, Driver

PATH = "/std/.well-known/openid-configuration"  # answers GET 200 without credentials
NOW = 1_700_000_000.0


class Sleeps(list[float]):
    """Records what the transport would have slept, under either driver."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


class Person:
    """A person who records what a flow asked of them, and approves a browser login."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.opened = ""

    def listen(self, port: int, path: str) -> str:
        self.calls.append(("listen", port, path))
        return f"http://127.0.0.1:8765{path}"

    def open_browser(self, url: str) -> None:
        self.calls.append(("open_browser",))
        self.opened = url

    def await_callback(self, timeout: float) -> dict[str, str]:
        """The redirect back after approval: a code, and the state the flow sent."""
        self.calls.append(("await_callback", timeout))
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.opened).query))
        return {"code": "code-from-the-browser", "state": query["state"]}

    def finish(self, ok: bool, message: str) -> None:
        self.calls.append(("finish", ok, message))

    def show_code(self, code: ShowCode) -> None:
        self.calls.append(("show_code", code.user_code))

    def sleep(self, seconds: float, until: float | None) -> None:
        self.calls.append(("sleep", seconds, until))

    def close(self) -> None:
        self.calls.append(("close",))


@pytest.fixture(params=["sync", "async", "requests"])
def driver(request: pytest.FixtureRequest) -> Driver:
    return DRIVERS[request.param]()


@pytest.fixture
def transports(sleeps: Sleeps, driver: Driver) -> Iterator[Any]:
    made: list[Transport] = []

    def make(**settings: Any) -> Transport:
        base = {"connect_timeout": 2.0, "timeout": 5.0, "retries": 3, "max_wait": 60.0}
        base.update(settings)
        transport = driver.transport(
            HttpSettings(**base), sleep=sleeps, asleep=sleeps.asleep, clock=lambda: NOW
        )
        made.append(transport)
        return transport

    yield make
    for transport in made:
        transport.close()


def get(local: LocalProvider, path: str = PATH) -> HttpRequest:
    return HttpRequest("GET", local.url + path, "the discovery document")


def checked(leaks: Any, exc: pytest.ExceptionInfo[BaseException]) -> str:
    leaks.add("exception message", str(exc.value))
    return str(exc.value)


# --------------------------------------------------------------------------- retries
def test_429_then_success_waits_as_retry_after_says(
    local: LocalProvider, transports: Any, sleeps: Sleeps, driver: Driver
) -> None:
    local.fail(PATH, 429, times=1, retry_after="7")
    response = driver.send(transports(), get(local))
    assert response.status == 200
    assert sleeps == [7.0]
    assert local.count(PATH) == 2


def test_503_with_an_http_date_retry_after_waits_until_that_date(
    local: LocalProvider, transports: Any, sleeps: Sleeps, driver: Driver
) -> None:
    when = datetime.fromtimestamp(NOW + 30, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    local.fail(PATH, 503, times=1, retry_after=when)
    assert driver.send(transports(), get(local)).status == 200
    assert sleeps == [30.0]


def test_5xx_without_retry_after_backs_off_and_retries(
    local: LocalProvider, transports: Any, sleeps: Sleeps, driver: Driver
) -> None:
    local.fail(PATH, 502, times=2)
    assert driver.send(transports(), get(local)).status == 200
    assert local.count(PATH) == 3
    assert len(sleeps) == 2
    assert all(0 < wait <= 60 for wait in sleeps)


def test_503_on_every_attempt_is_a_transport_error_with_the_status(
    local: LocalProvider, transports: Any, sleeps: Sleeps, no_secret_leaks: Any, driver: Driver
) -> None:
    local.fail(PATH, 503, times=3, retry_after="1")
    with pytest.raises(TransportError) as exc:
        driver.send(transports(retries=2), get(local))
    assert exc.value.status == 503
    assert "503" in checked(no_secret_leaks, exc)
    assert local.count(PATH) == 3
    assert sleeps == [1.0, 1.0]


def test_retries_zero_makes_one_attempt(
    local: LocalProvider, transports: Any, sleeps: Sleeps, driver: Driver
) -> None:
    local.fail(PATH, 503, times=1, retry_after="1")
    with pytest.raises(TransportError):
        driver.send(transports(retries=0), get(local))
    assert local.count(PATH) == 1
    assert sleeps == []


def test_retry_after_longer_than_max_wait_fails_at_once_without_sleeping(
    local: LocalProvider, transports: Any, sleeps: Sleeps, no_secret_leaks: Any, driver: Driver
) -> None:
    local.fail(PATH, 429, times=1, retry_after="3600")
    with pytest.raises(TransportError) as exc:
        driver.send(transports(max_wait=60), get(local))
    assert exc.value.status == 429
    assert "max_wait" in checked(no_secret_leaks, exc)
    assert sleeps == []
    assert local.count(PATH) == 1


def test_4xx_other_than_429_is_returned_not_retried(
    local: LocalProvider, transports: Any, sleeps: Sleeps, driver: Driver
) -> None:
    local.fail(PATH, 400, times=1, retry_after="1")
    assert driver.send(transports(), get(local)).status == 400
    assert local.count(PATH) == 1
    assert sleeps == []


@settings(deadline=None)
@given(value=st.text() | st.integers(min_value=0).map(str) | st.datetimes().map(str))
@example(value="²")
@example(value="١٢")
@example(value="9" * 400)
@example(value="Fri, 31 Dec 9999 23:59:59 -2359")
@example(value="Mon, 01 Jan 99999 00:00:00 GMT")
@example(value="Wed, 21 Oct 2015 07:28:00")
def test_retry_after_of_any_string_is_seconds_or_none(value: str) -> None:
    wait = retry_after(value, NOW)
    assert wait is None or (isinstance(wait, float) and wait >= 0)


def test_retry_after_reads_delta_seconds() -> None:
    assert retry_after("120", NOW) == 120.0


def test_retry_after_reads_an_http_date() -> None:
    later = datetime.fromtimestamp(NOW + 90, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert retry_after(later, NOW) == 90.0


def test_retry_after_in_the_past_is_zero() -> None:
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", NOW) == 0.0


# --------------------------------------------------------------------------- network failures
def test_read_timeout_is_a_transport_error_and_is_not_retried(
    local: LocalProvider, transports: Any, sleeps: Sleeps, no_secret_leaks: Any, driver: Driver
) -> None:
    local.delay(PATH, 1.0)  # every request: a retry would time out too, and be counted
    with pytest.raises(TransportError) as exc:
        driver.send(transports(timeout=0.3, retries=3), get(local))
    assert "in time" in checked(no_secret_leaks, exc)
    assert local.count(PATH) == 1
    assert sleeps == []


def test_connection_refused_is_a_transport_error(
    transports: Any, no_secret_leaks: Any, driver: Driver
) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago, now closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    request = HttpRequest("GET", f"http://127.0.0.1:{port}/token?secret=query-value-x")
    with pytest.raises(TransportError) as exc:
        driver.send(transports(retries=0), request)
    text = checked(no_secret_leaks, exc)
    assert f"127.0.0.1:{port}" in text
    assert "query-value-x" not in text


# --------------------------------------------------------------------------- http:// policy
@pytest.mark.parametrize(
    "url",
    [
        # documentation addresses (RFC 5737), never routed: nothing public is ever asked
        "http://192.0.2.1/oauth/token",
        "http://198.51.100.7:8080/oauth/token",
        "http://127.0.0.1@192.0.2.1/oauth/token",  # userinfo does not make a host loopback
    ],
)
def test_plain_http_to_a_non_loopback_host_is_refused_before_connecting(
    url: str, transports: Any, sleeps: Sleeps, no_secret_leaks: Any, driver: Driver
) -> None:
    flow = grants.client_credentials(
        url, client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET, now=NOW
    )
    # a tiny connect timeout: a transport that tried to connect would fail with TransportError
    with pytest.raises(ConfigError) as exc:
        driver.run(transports(connect_timeout=0.05, timeout=0.05, retries=0), flow)
    assert "http://" in checked(no_secret_leaks, exc)
    assert sleeps == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/token",
        "http://127.9.9.9/token",
        "http://[::1]:8080/token",
        "http://localhost/token",
        "http://LOCALHOST:80/token",
    ],
)
def test_check_url_allows_plain_http_to_loopback(url: str) -> None:
    assert check_url(url, "token_url") == url


@pytest.mark.parametrize(
    "url",
    ["https://example.com/token", "https://10.0.0.1/token", "https://127.0.0.1/token"],
)
def test_check_url_allows_any_https(url: str) -> None:
    assert check_url(url, "token_url") == url


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/token",
        "http://example.com/token",
        "http://192.168.1.10:8080/token",
        "http://localhost.example.com/token",
        "http://127.0.0.1.example.com/token",
        "http://127.0.0.1@example.com/token",
        "http://[::ffff:10.0.0.1]/token",
    ],
)
def test_check_url_refuses_plain_http_to_other_hosts(url: str, no_secret_leaks: Any) -> None:
    with pytest.raises(ConfigError) as exc:
        check_url(url, "token_url")
    assert "token_url" in checked(no_secret_leaks, exc)


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/token", "file:///etc/passwd", "https:///token", "token", ""]
)
def test_check_url_refuses_what_is_not_an_http_url(url: str) -> None:
    with pytest.raises(ConfigError):
        check_url(url, "token_url")


# --------------------------------------------------------------------------- driving a grant
def test_run_drives_a_grant_to_a_token_at_the_emulator(
    local: LocalProvider, transports: Any, driver: Driver
) -> None:
    flow = grants.client_credentials(
        local.url + "/std/token",
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        now=NOW,
    )
    token = driver.run(transports(), flow)
    assert local.is_active(token.access_token)
    assert token.expires == NOW + local.access_token_lifetime


def test_basic_client_auth_form_encodes_id_and_secret(
    local: LocalProvider, transports: Any, no_secret_leaks: Any, driver: Driver
) -> None:
    # RFC 6749 §2.3.1: both are form-encoded before Basic, so ':' and '+' survive
    client_id, client_secret = "odd:client+id", "s3cret with spaces/&=+%"
    no_secret_leaks.plant(client_secret)
    local.add_oauth_client(client_id, client_secret)
    flow = grants.client_credentials(
        local.url + "/std/token", client_id=client_id, client_secret=client_secret, now=NOW
    )
    assert local.is_active(driver.run(transports(), flow).access_token)


# --------------------------------------------------------------------------- providers, end to end
def provider_at(local: LocalProvider, name: str, transport: Transport, driver: Driver) -> Provider:
    """``name`` as config.toml points it at the emulator, its endpoints discovered if need be."""
    table = tomllib.loads(local.config_toml())["providers"]
    p = registry(Settings(path="config.toml", signature="test", providers=table))[name]
    resolving = p.kind.resolve
    flow = resolving(p) if resolving is not None else None
    return p if flow is None else driver.run(transport, flow)


def secrets_of(p: Provider, local: LocalProvider) -> Credentials:
    return resolve(
        p.secrets,
        arguments={},
        environ=local.environ(),
        env_names={n: p.env_var(n) for n in p.secrets},
        store=None,
        service="",
    )


@pytest.mark.parametrize("name", ["inaturalist", "twitter", "local"])
def test_each_providers_grant_gets_an_active_token_at_the_emulator(
    name: str, local: LocalProvider, transports: Any, driver: Driver
) -> None:
    transport = transports()
    p = provider_at(local, name, transport, driver)
    token = driver.run(transport, p.kind.acquire(p, secrets_of(p, local), NOW))
    assert local.is_active(token.access_token)


def test_a_refresh_renews_the_token_at_the_emulator(
    local: LocalProvider, transports: Any, driver: Driver
) -> None:
    transport = transports()
    p = provider_at(local, "local", transport, driver)
    creds = secrets_of(p, local)
    first = driver.run(transport, p.kind.acquire(p, creds, NOW))
    flow = p.kind.renew(p, first, creds, NOW)
    assert flow is not None
    renewed = driver.run(transport, flow)
    assert renewed.access_token != first.access_token
    assert local.is_active(renewed.access_token)
    assert local.count("/std/token") == 2


# --------------------------------------------------------------------------- failures into the flow
def closed_port() -> int:
    with socket.socket() as probe:  # a port that was free a moment ago, now closed
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize(
    ("failure", "caught"),
    [("nobody listens", TransportError), ("plain http:// off loopback", ConfigError)],
)
def test_a_flow_catches_a_failed_request_and_falls_back(
    failure: str, caught: type[Exception], local: LocalProvider, transports: Any, driver: Driver
) -> None:
    if caught is TransportError:
        first_url = f"http://127.0.0.1:{closed_port()}/token"
    else:
        first_url = "http://192.0.2.1/token"  # RFC 5737: never routed, and refused before
    seen: list[Exception] = []

    def flow() -> Flow[int]:
        try:
            yield HttpRequest("GET", first_url, "the first choice")
        except caught as exc:
            seen.append(exc)
        response = yield get(local)
        return response.status

    assert driver.run(transports(retries=0, connect_timeout=0.5), flow()) == 200
    assert len(seen) == 1 and isinstance(seen[0], caught)
    assert local.count(PATH) == 1


def test_a_flow_catches_retries_spent_with_the_status(
    local: LocalProvider, transports: Any, sleeps: Sleeps, driver: Driver
) -> None:
    local.fail(PATH, 503, times=2, retry_after="1")

    def flow() -> Flow[int | None]:
        try:
            yield get(local)
        except TransportError as exc:
            return exc.status
        raise AssertionError("the request was expected to fail")

    assert driver.run(transports(retries=1), flow()) == 503
    assert sleeps == [1.0]
    assert local.count(PATH) == 2


def test_a_failure_the_flow_does_not_catch_leaves_run_as_send_raises_it(
    transports: Any, driver: Driver, no_secret_leaks: Any
) -> None:
    request = HttpRequest("GET", f"http://127.0.0.1:{closed_port()}/token", "the token endpoint")
    cleaned_up: list[bool] = []

    def flow() -> Flow[None]:
        try:
            yield request
        finally:
            cleaned_up.append(True)

    with pytest.raises(TransportError) as sent:
        driver.send(transports(retries=0), request)
    with pytest.raises(TransportError) as ran:
        driver.run(transports(retries=0), flow())
    assert checked(no_secret_leaks, ran) == checked(no_secret_leaks, sent)
    assert ran.value.hint == sent.value.hint
    assert cleaned_up == [True]


def test_a_browser_login_whose_code_cannot_be_sent_tells_the_tab_why(
    local: LocalProvider, transports: Any, driver: Driver, no_secret_leaks: Any
) -> None:
    flow = grants.browser_login(
        authorize_url=local.url + "/std/authorize",
        token_url=f"http://127.0.0.1:{closed_port()}/token",
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        clock=lambda: NOW,
    )
    person = Person()
    with pytest.raises(TransportError) as exc:
        driver.run(transports(retries=0), flow, person)
    message = checked(no_secret_leaks, exc)
    assert "cannot reach" in message
    assert person.calls[-2:] == [("finish", False, message), ("close",)]


# --------------------------------------------------------------------------- the requests driver
def requests_transport(**settings: Any) -> RequestsTransport:
    base = {"connect_timeout": 2.0, "timeout": 5.0, "retries": 0, "max_wait": 60.0}
    base.update(settings)
    return RequestsTransport(HttpSettings(**base), sleep=Sleeps(), clock=lambda: NOW)


def test_requests_driver_requests_are_seen_by_requests_mock(requests_mock: Any) -> None:
    requests_mock.post("https://auth.example.test/token", json={"access_token": "tok-a"})
    flow = grants.client_credentials(
        "https://auth.example.test/token",
        client_id="made-up-id",
        client_secret="made-up-secret",
        client_auth="client_secret_post",
        now=NOW,
    )

    token = requests_transport().run(flow)

    assert token.access_token == "tok-a"
    assert requests_mock.call_count == 1
    assert requests_mock.last_request.headers["Accept"] == "application/json"


def test_requests_driver_refusal_carries_the_requests_response(
    local: LocalProvider, no_secret_leaks: Any
) -> None:
    no_secret_leaks.plant("made-up-wrong-secret")
    flow = grants.client_credentials(
        local.url + "/std/token",
        client_id=DEMO_CLIENT_ID,
        client_secret="made-up-wrong-secret",
        now=NOW,
    )

    with pytest.raises(InvalidCredentials) as caught:
        requests_transport().run(flow)

    assert isinstance(caught.value.response, requests.Response)
    assert caught.value.response.status_code == 401
    assert local.count("/std/token") == 1


def test_requests_driver_spent_retries_are_an_http_error_with_the_last_answer(
    local: LocalProvider, no_secret_leaks: Any
) -> None:
    local.fail(PATH, 503, times=2)

    with pytest.raises(TransportError) as caught:
        requests_transport(retries=1).send(get(local))

    assert isinstance(caught.value, requests.HTTPError)
    assert caught.value.response.status_code == 503
    assert local.count(PATH) == 2


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (requests.ConnectionError, requests.ConnectionError),
        (requests.ReadTimeout, requests.Timeout),
        (requests.ConnectTimeout, requests.ConnectTimeout),
    ],
)
def test_requests_driver_network_failures_are_transport_errors_and_requests_errors(
    raised: type[Exception], expected: type[Exception], requests_mock: Any, no_secret_leaks: Any
) -> None:
    requests_mock.get("https://api.example.test/x", exc=raised)

    with pytest.raises(TransportError) as caught:
        requests_transport(retries=3).send(HttpRequest("GET", "https://api.example.test/x"))

    assert isinstance(caught.value, expected)
    assert requests_mock.call_count == 1  # a failed request is not retried
