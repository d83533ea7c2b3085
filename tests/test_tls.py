"""Certificate checks with a private CA: the emulator over https, its certificate
signed by a CA the tests make (trustme), under the three drivers and the command line.

Without the CA the token endpoint is refused with one line naming ``ca_bundle``;
with it (``[http] ca_bundle``, ``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE``) it is
accepted; certificate checks switch off for a loopback host only.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests
import trustme

from conftest import CliRun, Leaks, point_at
from keyfob import wiring
from keyfob.errors import ConfigError, TransportError
from keyfob.flow import HttpRequest
from keyfob.testing import (
    DEMO_INAT_APP_ID,
    DEMO_INAT_APP_SECRET,
    DEMO_INAT_PASSWORD,
    DEMO_INAT_USERNAME,
    LocalProvider,
)
from netparts import DISCOVERY, DRIVERS, TOKEN, Driver, PrivateCA


@pytest.fixture(params=sorted(DRIVERS))
def driver(request: pytest.FixtureRequest) -> Driver:
    return DRIVERS[request.param]()


@pytest.fixture
def tls_home(home: Path, tls_local: LocalProvider, monkeypatch: pytest.MonkeyPatch) -> Path:
    """config.toml points every built-in provider at the https emulator; demo secrets set."""
    point_at(home, tls_local, monkeypatch)
    return home


def add_http(home: Path, text: str) -> None:
    config = home / "config.toml"
    config.write_text(f"[http]\n{text}\n\n" + config.read_text())


# --------------------------------------------------------------------------- drivers
def test_a_server_the_ca_bundle_does_not_vouch_for_is_refused_naming_ca_bundle(
    tls_local: LocalProvider, driver: Driver, no_secret_leaks: Leaks
) -> None:
    with pytest.raises(TransportError) as exc:
        driver.token(driver.make(), tls_local.url + TOKEN)
    message = exc.value.one_line()
    no_secret_leaks.add("error", message)
    assert "certificate is not trusted" in message
    assert "[http] ca_bundle" in exc.value.hint and "SSL_CERT_FILE" in exc.value.hint
    assert "\n" not in message
    assert tls_local.count(TOKEN) == 0  # nothing was said to a server keyfob does not trust


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_the_private_ca_from_the_environment_is_trusted(
    tls_local: LocalProvider, private_ca: PrivateCA, driver: Driver, variable: str
) -> None:
    transport = driver.make(environ=((variable, str(private_ca.pem)),))
    token = driver.token(transport, tls_local.url + TOKEN)
    assert tls_local.is_active(token.access_token)
    assert tls_local.count(TOKEN) == 1


def test_the_private_ca_from_config_is_trusted_and_wins_over_the_environment(
    tls_local: LocalProvider, private_ca: PrivateCA, driver: Driver, tmp_path: Path
) -> None:
    other = tmp_path / "another-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    transport = driver.make(ca_bundle=str(private_ca.pem), environ=(("SSL_CERT_FILE", str(other)),))
    assert tls_local.is_active(driver.token(transport, tls_local.url + TOKEN).access_token)


def test_the_default_bundle_stays_certifi_and_is_said_so(driver: Driver) -> None:
    transport = driver.make()
    assert transport.network.ca.path is None
    assert transport.network.describe()[-1] == "CA bundle: the default (certifi's bundle)"


def test_verify_false_reaches_a_loopback_server_without_a_bundle(
    tls_local: LocalProvider, driver: Driver
) -> None:
    response = driver.send(
        driver.make(verify=False), HttpRequest("GET", tls_local.url + DISCOVERY, "discovery")
    )
    assert response.status == 200


@pytest.mark.parametrize(
    "url", ["https://auth.example.com/token", "https://10.0.0.7/token", "https://[::2]/token"]
)
def test_verify_false_is_refused_for_a_host_that_is_not_loopback(
    driver: Driver, url: str, no_secret_leaks: Leaks
) -> None:
    transport = driver.make(verify=False, path="/etc/keyfob/config.toml")
    with pytest.raises(ConfigError) as exc:
        driver.token(transport, url)
    no_secret_leaks.add("error", exc.value.one_line())
    assert "verify = false in /etc/keyfob/config.toml applies to loopback hosts only" in str(
        exc.value
    )
    assert "ca_bundle" in exc.value.hint


# --------------------------------------------------------------------------- bad bundles
def test_a_bundle_that_does_not_exist_is_a_config_error_naming_the_variable(
    driver: Driver, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere.pem"
    transport = driver.make(environ=(("SSL_CERT_FILE", str(missing)),))
    with pytest.raises(ConfigError) as exc:
        driver.token(transport, "https://127.0.0.1:9/token")
    assert str(exc.value) == f"the CA bundle {missing} (SSL_CERT_FILE) does not exist"
    assert exc.value.hint.startswith("fix or unset SSL_CERT_FILE")


@pytest.mark.parametrize(
    "content", [b"", b"not a certificate\n", b"-----BEGIN CERTIFICATE-----\nAAAA\n"]
)
def test_a_bundle_that_is_not_pem_is_a_config_error_naming_the_setting(
    driver: Driver, tmp_path: Path, content: bytes
) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(content)
    transport = driver.make(ca_bundle=str(bundle), path="/x/config.toml")
    with pytest.raises(ConfigError) as exc:
        driver.token(transport, "https://127.0.0.1:9/token")
    assert "holds no PEM certificate" in str(exc.value)
    assert "[http] ca_bundle in /x/config.toml" in str(exc.value)


def test_a_folder_without_hashed_certificates_says_to_rehash_it(
    driver: Driver, tmp_path: Path, private_ca: PrivateCA
) -> None:
    folder = tmp_path / "certs"
    folder.mkdir()
    (folder / "ca.pem").write_bytes(private_ca.pem.read_bytes())
    transport = driver.make(environ=(("SSL_CERT_DIR", str(folder)),))
    with pytest.raises(ConfigError) as exc:
        driver.token(transport, "https://127.0.0.1:9/token")
    assert "SSL_CERT_DIR" in str(exc.value) and "openssl rehash" in exc.value.hint


# --------------------------------------------------------------------------- command line
def test_cli_without_the_bundle_exits_4_with_one_line_naming_ca_bundle(
    tls_home: Path, cli: CliRun
) -> None:
    done = cli("token", "local")
    assert done.returncode == 4, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("keyfob: error: ") and "certificate is not trusted" in line
    assert "[http] ca_bundle" in line


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
def test_cli_gets_a_token_with_the_bundle_from_the_environment(
    tls_home: Path, tls_local: LocalProvider, private_ca: PrivateCA, cli: CliRun, variable: str
) -> None:
    done = cli("token", "local", env={variable: str(private_ca.pem)})
    assert done.returncode == 0, done.stderr
    assert tls_local.is_active(done.stdout.strip())


def test_cli_gets_a_token_with_ca_bundle_in_config(
    tls_home: Path, tls_local: LocalProvider, private_ca: PrivateCA, cli: CliRun
) -> None:
    add_http(tls_home, f'ca_bundle = "{private_ca.pem}"')
    done = cli("token", "local")
    assert done.returncode == 0, done.stderr
    assert tls_local.is_active(done.stdout.strip())


def test_cli_verify_false_works_on_loopback(
    tls_home: Path, tls_local: LocalProvider, cli: CliRun
) -> None:
    add_http(tls_home, "verify = false")
    done = cli("token", "local")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("setting", "env", "named"),
    [
        ('ca_bundle = "/nonexistent/ca.pem"', {}, "[http] ca_bundle in "),
        ("", {"SSL_CERT_FILE": "/nonexistent/ca.pem"}, "(SSL_CERT_FILE)"),
        ("", {"REQUESTS_CA_BUNDLE": os.devnull}, "(REQUESTS_CA_BUNDLE)"),
    ],
)
def test_cli_a_bad_bundle_exits_2_naming_where_it_was_set(
    tls_home: Path, cli: CliRun, setting: str, env: dict[str, str], named: str
) -> None:
    if setting:
        add_http(tls_home, setting)
    done = cli("token", "local", env=env)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert named in line


def test_providers_says_which_ca_bundle_and_where_it_came_from(
    tls_home: Path, private_ca: PrivateCA, cli: CliRun
) -> None:
    done = cli("providers", env={"SSL_CERT_FILE": str(private_ca.pem)})
    assert done.returncode == 0, done.stderr
    assert f"CA bundle: {private_ca.pem} (from SSL_CERT_FILE)" in done.stdout.splitlines()
    add_http(tls_home, f'ca_bundle = "{private_ca.pem}"')
    done = cli("providers", env={"SSL_CERT_FILE": os.devnull})
    assert f"CA bundle: {private_ca.pem} (from [http] ca_bundle in " in done.stdout


# --------------------------------------------------------------------------- keyfob.inaturalist
def test_the_pyinaturalist_drop_in_trusts_requests_ca_bundle(
    tls_home: Path, tls_local: LocalProvider, private_ca: PrivateCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keyfob import inaturalist

    args = (DEMO_INAT_USERNAME, DEMO_INAT_PASSWORD, DEMO_INAT_APP_ID, DEMO_INAT_APP_SECRET)
    with pytest.raises(requests.ConnectionError) as exc:
        inaturalist.get_access_token(*args)
    assert "certificate is not trusted" in str(exc.value)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(private_ca.pem))
    wiring.reset()
    token = inaturalist.get_access_token(*args)
    assert tls_local.is_active(token)


def test_status_says_which_ca_bundle_is_in_use(
    tls_home: Path, private_ca: PrivateCA, cli: CliRun
) -> None:
    env = {"REQUESTS_CA_BUNDLE": str(private_ca.pem)}
    assert cli("token", "local", env=env).returncode == 0
    done = cli("status", "local", env=env)
    assert f"CA bundle: {private_ca.pem} (from REQUESTS_CA_BUNDLE)" in done.stdout.splitlines()
