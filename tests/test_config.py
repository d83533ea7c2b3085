"""config.toml and the environment, read into settings: every mistake names its fix."""

from __future__ import annotations

from typing import Any

import pytest

from keyfob.config import check_url
from keyfob.errors import ConfigError


# --------------------------------------------------------------------------- loopback
@pytest.mark.parametrize(
    "url",
    [
        "http://auth.localhost/token",
        "http://a.b.localhost:8080/token",
        "http://ip6-localhost/token",
        "http://localhost./token",
    ],
)
def test_names_that_resolve_through_dns_are_not_loopback(url: str, no_secret_leaks: Any) -> None:
    # *.localhost is answered by whatever resolver the machine has, which may be a
    # public address: plain http:// to it would carry secrets across the network.
    with pytest.raises(ConfigError) as exc:
        check_url(url, "token_url")
    no_secret_leaks.add("exception message", str(exc.value))
    assert "http://" in str(exc.value)


@pytest.mark.parametrize(
    "url", ["http://localhost/token", "http://127.0.0.1:1/t", "http://[::1]/t", "http://127.8.0.1/"]
)
def test_literal_loopback_and_localhost_itself_take_plain_http(url: str) -> None:
    assert check_url(url, "token_url") == url
