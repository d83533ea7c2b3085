"""Where proxies and CA bundles come from (``keyfob.network``), and ``[http]``'s new keys.

Plain values, no server: the variables as requests and curl read them, config.toml
winning over them, NO_PROXY's forms, and a proxy password kept out of every repr
and message. The same decisions against a real proxy and a private CA:
``test_proxy.py`` and ``test_tls.py``.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import Leaks
from keyfob import config
from keyfob.config import HttpSettings
from keyfob.errors import ConfigError
from keyfob.network import bypassed, resolve

PASSWORD = "proxy-password-planted"


def net(*pairs: tuple[str, str], **http: object) -> object:
    return resolve(HttpSettings(environ=pairs, **http))  # type: ignore[arg-type]


def proxy_of(url: str, *pairs: tuple[str, str], **http: object) -> str | None:
    proxy = resolve(HttpSettings(environ=pairs, **http)).proxy_for(url)  # type: ignore[arg-type]
    return proxy.source if proxy else None


# --------------------------------------------------------------------------- which variable
def test_https_urls_take_https_proxy_then_all_proxy() -> None:
    assert proxy_of("https://a.example/t", ("HTTPS_PROXY", "p:1"), ("ALL_PROXY", "q:2")) == (
        "HTTPS_PROXY"
    )
    assert proxy_of("https://a.example/t", ("ALL_PROXY", "q:2")) == "ALL_PROXY"
    assert proxy_of("https://a.example/t", ("HTTP_PROXY", "q:2")) is None


def test_lower_case_wins_as_in_urllib_and_curl() -> None:
    pairs = (("HTTPS_PROXY", "p:1"), ("https_proxy", "q:2"))
    assert proxy_of("https://a.example/t", *pairs) == "https_proxy"


def test_http_proxy_is_ignored_under_cgi() -> None:
    """httpoxy: a CGI request's ``Proxy:`` header arrives as HTTP_PROXY."""
    pairs = (("HTTP_PROXY", "evil:1"), ("REQUEST_METHOD", "GET"))
    assert proxy_of("http://127.0.0.1/t", *pairs) is None
    assert proxy_of("http://127.0.0.1/t", ("http_proxy", "p:1"), ("REQUEST_METHOD", "GET"))


def test_config_wins_over_the_environment_and_empty_means_none() -> None:
    pairs = (("HTTPS_PROXY", "p:1"),)
    assert proxy_of("https://a.example/", *pairs, proxy="http://c:3", path="/c.toml") == (
        "[http] proxy in /c.toml"
    )
    assert proxy_of("https://a.example/", *pairs, proxy="") is None


def test_config_no_proxy_wins_over_no_proxy() -> None:
    pairs = (("HTTPS_PROXY", "p:1"), ("NO_PROXY", "a.example"))
    assert proxy_of("https://a.example/", *pairs) is None
    assert proxy_of("https://a.example/", *pairs, no_proxy="b.example") == "HTTPS_PROXY"


@pytest.mark.parametrize(
    ("pairs", "source"),
    [
        ((), None),
        ((("SSL_CERT_DIR", "/etc/ssl/certs"), ("SSL_CERT_FILE", "F")), "SSL_CERT_FILE"),
        ((("SSL_CERT_FILE", "F"), ("REQUESTS_CA_BUNDLE", "R")), "REQUESTS_CA_BUNDLE"),
        ((("CURL_CA_BUNDLE", "C"), ("SSL_CERT_FILE", "F")), "CURL_CA_BUNDLE"),
    ],
)
def test_the_ca_variables_in_their_order(
    tmp_path: Path, pairs: tuple[tuple[str, str], ...], source: str | None
) -> None:
    for name in ("F", "R", "C"):
        (tmp_path / name).write_text("")
    pairs = tuple((k, v if v.startswith("/") else str(tmp_path / v)) for k, v in pairs)
    ca = resolve(HttpSettings(environ=pairs)).ca
    assert (ca.source or None) == source


def test_config_ca_bundle_wins_and_takes_a_tilde(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "corp.pem").write_text("")
    http = HttpSettings(ca_bundle="~/corp.pem", environ=(("SSL_CERT_FILE", "/nope"),), path="/c")
    ca = resolve(http).ca
    assert (ca.path, ca.source) == (str(tmp_path / "corp.pem"), "[http] ca_bundle in /c")


# --------------------------------------------------------------------------- NO_PROXY
@pytest.mark.parametrize(
    ("entries", "host", "port", "bypass"),
    [
        ("*", "anything.example", 443, True),
        ("example.com", "example.com", 443, True),
        ("example.com", "api.example.com", 443, True),
        (".example.com", "example.com", 443, True),
        (".example.com", "api.example.com", 443, True),
        ("*.example.com", "api.example.com", 443, True),
        ("example.com", "notexample.com", 443, False),
        ("example.com", "example.com.evil", 443, False),
        ("EXAMPLE.com", "Example.COM", 443, True),
        ("example.com.", "example.com", 443, True),
        ("example.com:8443", "example.com", 8443, True),
        ("example.com:8443", "example.com", 443, False),
        ("10.0.0.0/8", "10.1.2.3", 443, True),
        ("10.0.0.0/8", "11.1.2.3", 443, False),
        ("10.0.0.0/8", "ten.example", 443, False),
        ("10.1.2.3", "10.1.2.3", 80, True),
        ("::1", "::1", 443, True),
        ("[::1]:443", "::1", 443, True),
        ("fd00::/8", "fd12::7", 443, True),
        ("127.0.0.1", "localhost", 443, False),  # names are not looked up
        ("localhost", "127.0.0.1", 443, False),
        ("", "example.com", 443, False),
        ("not-a-network/99", "10.0.0.1", 443, False),
    ],
)
def test_no_proxy_forms(entries: str, host: str, port: int, bypass: bool) -> None:
    parsed = tuple(e for e in entries.lower().split(",") if e)
    assert bypassed(parsed, host, port) is bypass


@settings(max_examples=300, deadline=None)
@given(
    entries=st.lists(st.text(max_size=20), max_size=5),
    host=st.text(max_size=30),
    port=st.integers(min_value=1, max_value=65535),
)
def test_any_no_proxy_is_an_answer_never_an_exception(
    entries: list[str], host: str, port: int
) -> None:
    assert bypassed(tuple(e.lower() for e in entries), host, port) in (True, False)


@given(address=st.ip_addresses(v=4), prefix=st.integers(min_value=1, max_value=32))
def test_an_address_in_a_cidr_network_is_bypassed_and_one_outside_is_not(
    address: ipaddress.IPv4Address, prefix: int
) -> None:
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    assert bypassed((str(network),), str(address), 443)
    # the same address with the first bit of the network part flipped lies outside it
    outside = ipaddress.IPv4Address(int(address) ^ (1 << 31))
    assert not bypassed((str(network),), str(outside), 443)


@given(value=st.text(max_size=40))
def test_any_proxy_variable_is_a_proxy_or_a_config_error_naming_it(value: str) -> None:
    try:
        network = resolve(HttpSettings(environ=(("HTTPS_PROXY", value),)))
    except ConfigError as exc:
        assert str(exc).startswith("HTTPS_PROXY ")
        return
    proxy = network.proxies["https"]
    assert proxy is None or proxy.url.startswith(("http://", "https://"))


# --------------------------------------------------------------------------- passwords
def test_a_proxy_password_shows_in_no_repr_and_no_description(no_secret_leaks: Leaks) -> None:
    no_secret_leaks.plant(PASSWORD)
    url = f"http://someone:{PASSWORD}@proxy.internal:3128"
    http = HttpSettings(proxy=url)
    network = resolve(http)
    texts = [repr(http), repr(network), repr(network.proxies), *network.describe()]
    settings_ = config.Settings(path="/c", signature="", http=http)
    texts.append(repr(settings_))
    for text in texts:
        no_secret_leaks.add("repr", text)
    assert "proxy: http://proxy.internal:3128 (from [http] proxy in config.toml)" in texts


def test_a_proxy_url_that_is_not_one_names_the_setting_and_not_the_password(
    no_secret_leaks: Leaks,
) -> None:
    no_secret_leaks.plant(PASSWORD)
    with pytest.raises(ConfigError) as exc:
        resolve(HttpSettings(proxy=f"socks5h://u:{PASSWORD}@proxy:1080", path="/c.toml"))
    no_secret_leaks.add("error", exc.value.one_line())
    assert str(exc.value) == (
        "[http] proxy in /c.toml names a SOCKS proxy; keyfob speaks to HTTP proxies only"
    )


# --------------------------------------------------------------------------- config.toml
def write_config(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(text)
    return path


def test_http_text_keys_and_verify_are_read(home: Path) -> None:
    path = write_config(
        home,
        '[http]\nproxy = "http://p:3128"\nno_proxy = "a, b"\nca_bundle = "/x.pem"\n'
        "verify = false\n",
    )
    http = config.load({"HTTPS_PROXY": "http://e:1", "HOME": "/h"}).http
    assert (http.proxy, http.no_proxy, http.ca_bundle, http.verify) == (
        "http://p:3128",
        "a, b",
        "/x.pem",
        False,
    )
    assert http.environ == (("HTTPS_PROXY", "http://e:1"),)  # only the network's variables
    assert http.path == str(path)


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("proxy = 3128", "[http] proxy must be a string, not int"),
        ("ca_bundle = true", "[http] ca_bundle must be a string, not true/false"),
        ('no_proxy = ["a"]', "[http] no_proxy must be a string, not a list"),
        ('verify = "no"', "[http] verify must be true or false, not a string"),
        ('proxy = "http://p\\n:1"', "[http] proxy holds a control character"),
    ],
)
def test_a_wrong_http_text_or_flag_names_the_key_and_the_file(
    home: Path, line: str, said: str
) -> None:
    path = write_config(home, f"[http]\n{line}\n")
    with pytest.raises(ConfigError) as exc:
        config.load({})
    assert str(exc.value) == f"{path}: {said}"


@pytest.mark.parametrize(("typo", "near"), [("prxy", "proxy"), ("ca_bundel", "ca_bundle")])
def test_a_misspelt_network_key_says_did_you_mean(
    home: Path, typo: str, near: str, caplog: pytest.LogCaptureFixture
) -> None:
    write_config(home, f'[http]\n{typo} = "x"\n')
    config.load({})
    assert f"did you mean `{near}`?" in caplog.text


def test_a_network_key_outside_http_says_where_it_belongs(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_config(home, 'ca_bundle = "/x.pem"\n')
    config.load({})
    assert "did you mean `ca_bundle` under [http]?" in caplog.text
