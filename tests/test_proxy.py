"""Proxies, against a real forward proxy: tinyproxy from Debian on 127.0.0.1.

A token request with ``HTTPS_PROXY`` set goes through it (its log shows the
CONNECT to the token endpoint), an ``http://`` one as a forwarded request;
``NO_PROXY`` bypasses it (its log shows nothing); ``[http] proxy`` wins over the
environment. A proxy that refuses or hangs is one line naming it, never its
password. And ``~/.netrc`` is never read: the server counts no ``Authorization``
it did not expect.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from conftest import CliRun, Leaks
from keyfob import wiring
from keyfob.errors import ProviderError, TransportError
from keyfob.flow import HttpRequest
from keyfob.testing import LocalProvider
from netparts import (
    DISCOVERY,
    DRIVERS,
    TOKEN,
    Driver,
    PrivateCA,
    Silent,
    Tinyproxy,
    free_port,
    need_tinyproxy,
)

PROXY_USER, PROXY_PASSWORD = "proxy-user", "proxy-pass-s3cret-planted"


@pytest.fixture(params=sorted(DRIVERS))
def driver(request: pytest.FixtureRequest) -> Driver:
    return DRIVERS[request.param]()


def port_of(local: LocalProvider) -> int:
    return local.server_address[1]


# --------------------------------------------------------------------------- through it
def test_an_https_token_request_goes_through_https_proxy_by_connect(
    tls_local: LocalProvider, private_ca: PrivateCA, tinyproxy: Tinyproxy, driver: Driver
) -> None:
    environ = (("HTTPS_PROXY", tinyproxy.url), ("SSL_CERT_FILE", str(private_ca.pem)))
    token = driver.token(driver.make(environ=environ), tls_local.url + TOKEN)
    assert tls_local.is_active(token.access_token)
    [line] = tinyproxy.requests()
    assert line.startswith(f"CONNECT 127.0.0.1:{port_of(tls_local)} HTTP/1.")


def test_an_http_token_request_goes_through_http_proxy_as_a_forwarded_request(
    local: LocalProvider, tinyproxy: Tinyproxy, driver: Driver
) -> None:
    environ = (("http_proxy", tinyproxy.url),)
    token = driver.token(driver.make(environ=environ), local.url + TOKEN)
    assert local.is_active(token.access_token)
    assert tinyproxy.requests() == [f"POST {local.url}{TOKEN} HTTP/1.1"]


def test_https_proxy_is_not_used_for_an_http_url(
    local: LocalProvider, tinyproxy: Tinyproxy, driver: Driver
) -> None:
    driver.token(driver.make(environ=(("HTTPS_PROXY", tinyproxy.url),)), local.url + TOKEN)
    assert tinyproxy.requests() == []


@pytest.mark.parametrize(
    "no_proxy", ["127.0.0.1", "127.0.0.0/8", "*", "localhost,127.0.0.1:{port}", " ::1 127.0.0.1"]
)
def test_no_proxy_bypasses_the_proxy(
    local: LocalProvider, tinyproxy: Tinyproxy, driver: Driver, no_proxy: str
) -> None:
    environ = (("HTTP_PROXY", tinyproxy.url), ("NO_PROXY", no_proxy.format(port=port_of(local))))
    token = driver.token(driver.make(environ=environ), local.url + TOKEN)
    assert local.is_active(token.access_token)
    assert tinyproxy.requests() == []
    assert local.count(TOKEN) == 1


def test_no_proxy_for_another_port_does_not_bypass_it(
    local: LocalProvider, tinyproxy: Tinyproxy, driver: Driver
) -> None:
    environ = (("HTTP_PROXY", tinyproxy.url), ("no_proxy", "127.0.0.1:1"))
    driver.token(driver.make(environ=environ), local.url + TOKEN)
    assert len(tinyproxy.requests()) == 1


def test_config_proxy_wins_over_the_environment(
    local: LocalProvider, tinyproxy: Tinyproxy, driver: Driver
) -> None:
    refusing = f"http://127.0.0.1:{free_port()}"
    transport = driver.make(proxy=tinyproxy.url, environ=(("HTTP_PROXY", refusing),))
    assert local.is_active(driver.token(transport, local.url + TOKEN).access_token)
    assert len(tinyproxy.requests()) == 1


def test_an_empty_config_proxy_means_none_whatever_the_environment_says(
    local: LocalProvider, tinyproxy: Tinyproxy, driver: Driver
) -> None:
    transport = driver.make(proxy="", environ=(("HTTP_PROXY", tinyproxy.url),))
    assert local.is_active(driver.token(transport, local.url + TOKEN).access_token)
    assert tinyproxy.requests() == []


# --------------------------------------------------------------------------- credentials
@pytest.fixture
def guarded_proxy(tmp_path: Path, no_secret_leaks: Leaks) -> Tinyproxy:
    """tinyproxy that wants a user and password (Basic, RFC 7235 §4.4)."""
    no_secret_leaks.plant(PROXY_PASSWORD)
    proxy = Tinyproxy(need_tinyproxy(), tmp_path, basic_auth=(PROXY_USER, PROXY_PASSWORD))
    proxy.start()
    yield proxy  # type: ignore[misc]
    proxy.stop()


def test_proxy_credentials_in_the_url_are_sent_to_the_proxy(
    tls_local: LocalProvider, private_ca: PrivateCA, guarded_proxy: Tinyproxy, driver: Driver
) -> None:
    url = f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{guarded_proxy.port}"
    environ = (("HTTPS_PROXY", url), ("SSL_CERT_FILE", str(private_ca.pem)))
    token = driver.token(driver.make(environ=environ), tls_local.url + TOKEN)
    assert tls_local.is_active(token.access_token)


def test_a_proxy_that_wants_credentials_is_one_line_naming_it(
    tls_local: LocalProvider, guarded_proxy: Tinyproxy, driver: Driver, no_secret_leaks: Leaks
) -> None:
    url = f"http://{PROXY_USER}:wrong-{PROXY_PASSWORD}@127.0.0.1:{guarded_proxy.port}"
    no_secret_leaks.plant(f"wrong-{PROXY_PASSWORD}")
    with pytest.raises(TransportError) as exc:
        driver.token(driver.make(environ=(("HTTPS_PROXY", url),)), tls_local.url + TOKEN)
    message = exc.value.one_line()
    no_secret_leaks.add("error", message + repr(exc.value.__cause__))
    assert f"through the proxy http://127.0.0.1:{guarded_proxy.port}" in message
    # tinyproxy says 401 where RFC 7235 says 407
    assert "the proxy refused the connection (HTTP 401)" in message
    assert "user and password" in exc.value.hint and "HTTPS_PROXY" in exc.value.hint
    assert tls_local.count(TOKEN) == 0


def test_cli_with_proxy_credentials_never_shows_the_password(
    tls_local: LocalProvider,
    private_ca: PrivateCA,
    guarded_proxy: Tinyproxy,
    home: Path,
    cli: CliRun,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(tls_local.config_toml())
    for name, value in tls_local.environ().items():
        monkeypatch.setenv(name, value)
    url = f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{guarded_proxy.port}"
    env = {"HTTPS_PROXY": url, "SSL_CERT_FILE": str(private_ca.pem), "KEYFOB_LOG": "debug"}
    done = cli("--debug", "token", "local", "--refresh", env=env)
    assert done.returncode == 0, done.stderr
    assert tls_local.is_active(done.stdout.strip())
    done = cli("providers", env=env)
    shown = f"proxy for https:// URLs: http://127.0.0.1:{guarded_proxy.port} (from HTTPS_PROXY)"
    assert shown in done.stdout.splitlines()
    env["HTTPS_PROXY"] = f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{free_port()}"
    done = cli("--debug", "token", "local", "--refresh", env=env)
    assert done.returncode == 4
    # the outputs are searched for PROXY_PASSWORD by no_secret_leaks; and the user too
    assert PROXY_USER not in done.stderr


# --------------------------------------------------------------------------- bad proxies
def test_a_proxy_that_refuses_is_one_line_naming_it_without_its_password(
    configured: LocalProvider, cli: CliRun, no_secret_leaks: Leaks
) -> None:
    no_secret_leaks.plant(PROXY_PASSWORD)
    port = free_port()
    env = {"http_proxy": f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{port}"}
    done = cli("token", "local", env=env)
    assert done.returncode == 4, done.stderr
    [line] = done.stderr.splitlines()
    assert f"through the proxy http://127.0.0.1:{port}: connection failed" in line
    assert "Connection refused" in line and "(http_proxy)" in line
    assert PROXY_USER not in line


def test_a_proxy_that_hangs_is_bounded_by_the_timeouts(
    configured: LocalProvider, cli: CliRun, silent: Silent
) -> None:
    env = {"HTTP_PROXY": f"127.0.0.1:{silent.port}", "KEYFOB_TIMEOUT": "1"}
    started = time.monotonic()
    done = cli("token", "local", env=env)
    took = time.monotonic() - started
    assert done.returncode == 4, done.stderr
    [line] = done.stderr.splitlines()
    assert f"through the proxy http://127.0.0.1:{silent.port}" in line
    assert "(HTTP_PROXY)" in line
    assert took < 15  # connect 5 s at most, each read 1 s, the whole try bounded
    assert configured.count(DISCOVERY) == 0


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("socks5://127.0.0.1:1080", "HTTPS_PROXY names a SOCKS proxy"),
        ("http://127.0.0.1:99999", "HTTPS_PROXY is not a proxy URL"),
        ("ftp://127.0.0.1:21", "HTTPS_PROXY is not an http:// or https:// proxy URL"),
    ],
)
def test_a_proxy_that_is_not_one_exits_2_naming_the_variable(
    configured: LocalProvider, cli: CliRun, value: str, said: str
) -> None:
    done = cli("providers", env={"HTTPS_PROXY": value})
    assert done.returncode == 2, done.stderr
    assert said in done.stderr.splitlines()[-1]


def test_providers_says_no_proxy_and_the_config_proxy(
    configured: LocalProvider, home: Path, cli: CliRun
) -> None:
    done = cli("providers")
    assert "proxy: none" in done.stdout.splitlines()
    config = home / "config.toml"
    config.write_text('[http]\nproxy = "http://proxy.internal:3128"\n\n' + config.read_text())
    done = cli("providers", env={"NO_PROXY": "localhost,.corp"})
    assert f"proxy: http://proxy.internal:3128 (from [http] proxy in {config})" in done.stdout
    assert "no proxy for: localhost, .corp (from NO_PROXY)" in done.stdout


# --------------------------------------------------------------------------- ~/.netrc
NETRC_PASSWORD = "netrc-password-planted"


@pytest.fixture
def netrc_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_secret_leaks: Leaks) -> Path:
    """A HOME whose ~/.netrc holds a login for 127.0.0.1, where the emulator is."""
    folder = tmp_path / "person"
    folder.mkdir()
    netrc = folder / ".netrc"
    netrc.write_text(f"machine 127.0.0.1\nlogin netrc-user\npassword {NETRC_PASSWORD}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(folder))
    monkeypatch.delenv("NETRC", raising=False)
    no_secret_leaks.plant(NETRC_PASSWORD)
    return folder


def test_the_netrc_of_the_test_would_be_sent_by_a_client_that_reads_it(
    local: LocalProvider, netrc_home: Path
) -> None:
    """The check below can fail: requests with its defaults sends this ~/.netrc."""
    with requests.Session() as session:
        session.get(local.url + DISCOVERY, timeout=5).close()
    assert local.authorizations(DISCOVERY) == ["Basic"]


def test_netrc_is_never_sent_by_any_driver(
    local: LocalProvider, netrc_home: Path, driver: Driver
) -> None:
    response = driver.send(
        driver.make(), HttpRequest("GET", local.url + DISCOVERY, "the discovery document")
    )
    assert response.status == 200
    assert local.authorizations(DISCOVERY) == [""]


def test_netrc_is_never_sent_by_the_command_line(
    configured: LocalProvider, netrc_home: Path, home: Path, cli: CliRun
) -> None:
    config = home / "config.toml"
    config.write_text(config.read_text() + 'client_auth = "client_secret_post"\n')
    done = cli("token", "local")
    assert done.returncode == 0, done.stderr
    assert configured.authorizations(DISCOVERY) == [""]
    assert configured.authorizations(TOKEN) == [""]


def test_the_pyinaturalist_drop_in_goes_through_the_proxy_and_never_sends_netrc(
    configured: LocalProvider,
    netrc_home: Path,
    tinyproxy: Tinyproxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from keyfob import inaturalist
    from keyfob.testing import (
        DEMO_INAT_APP_ID,
        DEMO_INAT_APP_SECRET,
        DEMO_INAT_PASSWORD,
        DEMO_INAT_USERNAME,
    )

    monkeypatch.setenv("HTTP_PROXY", tinyproxy.url)
    wiring.reset()
    args = (DEMO_INAT_USERNAME, DEMO_INAT_PASSWORD, DEMO_INAT_APP_ID, DEMO_INAT_APP_SECRET)
    token = inaturalist.get_access_token(*args)
    assert configured.is_active(token)
    lines = tinyproxy.requests()
    assert f"POST {configured.url}/oauth/token HTTP/1.1" in lines
    assert configured.authorizations("/oauth/token") == [""]


def test_a_provider_error_through_a_proxy_names_the_proxy(
    local: LocalProvider, tinyproxy: Tinyproxy, driver: Driver
) -> None:
    local.garbage(TOKEN, "html")
    with pytest.raises(ProviderError):
        driver.token(driver.make(environ=(("HTTP_PROXY", tinyproxy.url),)), local.url + TOKEN)
    assert len(tinyproxy.requests()) == 1


def test_cli_config_proxy_carries_the_token_request(
    configured: LocalProvider, home: Path, tinyproxy: Tinyproxy, cli: CliRun
) -> None:
    config = home / "config.toml"
    config.write_text(f'[http]\nproxy = "{tinyproxy.url}"\n\n' + config.read_text())
    done = cli("token", "local", env={"HTTP_PROXY": f"http://127.0.0.1:{free_port()}"})
    assert done.returncode == 0, done.stderr
    assert configured.is_active(done.stdout.strip())
    assert f"POST {configured.url}{TOKEN} HTTP/1.1" in tinyproxy.requests()
    done = cli("status", "local")
    assert f"proxy: {tinyproxy.url} (from [http] proxy in {config})" in done.stdout
